//! larder's own log events (the engine's `tracing`: a store that stops answering and its circuit
//! breaker opening, the store back, a value that could not be cached) reach Python's `logging`,
//! on the `larder` logger, where an app's handlers and levels already apply.
//!
//! Events are handed to one thread of their own through a bounded queue, and that thread takes
//! the GIL to log them: a runtime thread never waits for the GIL to log (a Python thread that
//! holds it while it waits on the runtime cannot deadlock with a log line), and a burst past the
//! queue's bound is dropped rather than held. At interpreter exit the bridge's `drain` closes
//! the crossing, and whatever is still queued is dropped.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::bridge;

/// Log lines waiting for the logging thread; past this, new ones are dropped.
const QUEUED: usize = 256;

/// One event, as Python's `logging` takes it.
struct Line {
    level: u8,
    message: String,
}

/// Installs the bridge as the process's `tracing` subscriber, unless the process has one
/// already (another extension's, or an embedding program's).
pub(crate) fn install() {
    let subscriber = tracing_subscriber::registry().with(ToPython);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct ToPython;

impl<S: Subscriber> Layer<S> for ToPython {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target().starts_with("larder") && *metadata.level() <= Level::INFO
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        if !fields.rest.is_empty() {
            let _ = write!(message, " ({})", fields.rest.trim_start());
        }
        let level = match *event.metadata().level() {
            Level::ERROR => 40,
            Level::WARN => 30,
            Level::INFO => 20,
            _ => 10,
        };
        // In a burst past the queue's bound the line is dropped rather than queued without bound.
        let _ = sender().try_send(Line { level, message });
    }
}

/// The message, and the other fields as `name=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

/// The queue to the logging thread, which starts with the first event.
fn sender() -> &'static SyncSender<Line> {
    static SENDER: OnceLock<SyncSender<Line>> = OnceLock::new();
    SENDER.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUED);
        let _ = std::thread::Builder::new()
            .name("larder-logging".into())
            .spawn(move || deliver(rx));
        tx
    })
}

fn deliver(lines: Receiver<Line>) {
    while let Ok(line) = lines.recv() {
        // Refused once the interpreter is shutting down: the line is dropped.
        let _ = bridge::attach(|py| {
            let logger = py
                .import("logging")?
                .call_method1("getLogger", ("larder",))?;
            logger.call_method1("log", (line.level, line.message))?;
            Ok(())
        });
    }
}
