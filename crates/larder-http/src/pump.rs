//! The body pump: one task per fill that reads the service's body into the recording, so a
//! client that hangs up stops nobody else's response. Every wait is bounded: the service's body
//! gets the body idle timeout between chunks, and a fill nobody reads any more stops unless it is
//! small enough to be worth finishing for the cache.

use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;

use crate::body::BoxError;
use crate::coalesce::LeadGuard;
use crate::recording::{BodyError, Pushed, Room, Stop};
use crate::stats::Event;
use crate::write::StoreJob;

/// Feeds `body` into the guard's recording until it ends, then stores it if it was kept whole.
pub(crate) async fn pump<B>(body: B, mut guard: LeadGuard, job: StoreJob, idle: Duration)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let recording = guard.recording().clone();
    let counters = job.state.counters.clone();
    let mut body = std::pin::pin!(body);
    loop {
        if poll_fn(|cx| recording.poll_room(cx)).await == Room::Stop {
            counters.incr(Event::Abandoned);
            recording.finish(Err(BodyError::Abandoned));
            return;
        }
        // The error becomes text inside the poll, so the service's error type need not be Send.
        let next = poll_fn(|cx| {
            body.as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| Into::<BoxError>::into(e).to_string())))
        });
        let Ok(frame) = tokio::time::timeout(idle, next).await else {
            // Cut now: its readers get an error at once, and the guard's drop unregisters the
            // key, so the next request starts a fresh fill.
            counters.incr(Event::Stalled);
            recording.finish(Err(BodyError::Stalled));
            return;
        };
        match frame {
            Some(Ok(frame)) => {
                // Trailers are neither stored nor forwarded by a recording.
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                let pushed = recording.push(data);
                if pushed == Pushed::Stopped(Stop::OutOfRoom) {
                    counters.incr(Event::Unrecorded);
                }
                if pushed != Pushed::Kept {
                    // No longer kept whole: later requests must not join a recording that lets
                    // go of its start.
                    guard.release();
                }
            }
            Some(Err(e)) => {
                recording.finish(Err(BodyError::Upstream(e.into())));
                return;
            }
            None => {
                recording.finish(Ok(()));
                let turn = job.turn(recording.total()).await;
                if let Some(body) = recording.body_to_store() {
                    job.store(body, guard.lead()).await;
                }
                drop(turn);
                return;
            }
        }
    }
}
