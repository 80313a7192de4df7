//! The body of a client's request on its way to the origin: streamed from the client as it
//! comes, or already read whole (a POST the cache keyed on its body, see
//! [`larder_http::key_bodies`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A request body: the client's stream, or the bytes read from it for the cache's key.
///
/// ```
/// use http_body::Body;
/// let read = larder_proxy::request_body::RequestBody::from(bytes::Bytes::from_static(b"{}"));
/// assert_eq!(read.size_hint().exact(), Some(2));
/// ```
#[derive(Debug)]
pub enum RequestBody {
    /// Streamed from the client.
    Client(Incoming),
    /// Read whole; `None` once sent.
    Read(Option<Bytes>),
}

impl From<Incoming> for RequestBody {
    fn from(body: Incoming) -> Self {
        Self::Client(body)
    }
}

impl From<Bytes> for RequestBody {
    fn from(bytes: Bytes) -> Self {
        Self::Read((!bytes.is_empty()).then_some(bytes))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Client(body) => Pin::new(body).poll_frame(cx),
            Self::Read(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Client(body) => body.is_end_stream(),
            Self::Read(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Client(body) => body.size_hint(),
            Self::Read(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
