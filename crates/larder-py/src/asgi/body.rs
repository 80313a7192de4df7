//! The app's response body as an `http_body::Body`: the parts its `send` queued, ending with the
//! message that says there is no more. A body that ends any other way is an error, so larder-http
//! never stores a response the app did not finish.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::mpsc;

use super::app::AppError;

/// One `http.response.body` message.
pub(crate) enum Part {
    Data(Bytes),
    /// The message with `more_body` false.
    Last(Bytes),
}

pub(crate) struct AppBody {
    parts: mpsc::Receiver<Result<Part, AppError>>,
    ended: bool,
}

impl AppBody {
    pub(crate) fn new(parts: mpsc::Receiver<Result<Part, AppError>>) -> Self {
        Self {
            parts,
            ended: false,
        }
    }
}

impl Body for AppBody {
    type Data = Bytes;
    type Error = AppError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AppError>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let part = match self.parts.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(AppError::Truncated)));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(part))) => part,
            };
            let data = match part {
                Part::Data(data) => data,
                Part::Last(data) => {
                    self.ended = true;
                    data
                }
            };
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}
