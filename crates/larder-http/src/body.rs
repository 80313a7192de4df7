//! The response body the layer sends: a stored body, the service's own body passed through, or a
//! reader of a response still being recorded.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::recording::Reader;

/// An error from a body the layer sends: the service's own body error, or a recorded body that
/// failed or was abandoned (see [`BodyError`](crate::BodyError)).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The body of a response from [`CacheService`](crate::CacheService).
    ///
    /// ```
    /// use http_body::Body;
    /// fn sendable<B: Body<Data = bytes::Bytes> + Send + 'static>(_: B) {}
    /// sendable(larder_http::CacheBody::<String>::full("cached".into()));
    /// ```
    pub struct CacheBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Full { data: Option<Bytes> },
        Delivered { delivery: crate::deliver::Delivery },
        Passthrough { #[pin] body: B },
        Recorded { reader: Reader },
        Coded { coded: Box<crate::coding::Coded<CacheBody<B>>> },
    }
}

impl<B> CacheBody<B> {
    /// A complete body (a stored response; empty for HEAD and 304).
    pub fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// A large stored body, sent in slices that keep its response held (see `deliver.rs`).
    pub(crate) fn delivered(delivery: crate::deliver::Delivery) -> Self {
        Self {
            kind: Kind::Delivered { delivery },
        }
    }

    pub(crate) fn passthrough(body: B) -> Self {
        Self {
            kind: Kind::Passthrough { body },
        }
    }

    pub(crate) fn recorded(reader: Reader) -> Self {
        Self {
            kind: Kind::Recorded { reader },
        }
    }

    /// This body, encoded or decoded as it goes out (see `coding`).
    pub(crate) fn coded(self, coder: crate::coding::Coder, hold: crate::budget::Hold) -> Self {
        Self {
            kind: Kind::Coded {
                coded: Box::new(crate::coding::Coded::new(self, coder, hold)),
            },
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Delivered { delivery } => delivery
                .poll_piece(cx)
                .map(|piece| piece.map(|p| Ok(Frame::data(p)))),
            KindProj::Passthrough { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Recorded { reader } => reader
                .poll_chunk(cx)
                .map(|c| c.map(|r| r.map(Frame::data).map_err(|e| Box::new(e) as BoxError))),
            KindProj::Coded { coded } => Pin::new(&mut **coded).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Delivered { delivery } => delivery.remaining() == 0,
            Kind::Passthrough { body } => body.is_end_stream(),
            Kind::Recorded { reader } => reader.is_end(),
            Kind::Coded { coded } => coded.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Delivered { delivery } => SizeHint::with_exact(delivery.remaining() as u64),
            Kind::Passthrough { body } => body.size_hint(),
            Kind::Recorded { .. } | Kind::Coded { .. } => SizeHint::default(),
        }
    }
}

impl<B> std::fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Full { .. } => "Full",
            Kind::Delivered { .. } => "Delivered",
            Kind::Passthrough { .. } => "Passthrough",
            Kind::Recorded { .. } => "Recorded",
            Kind::Coded { .. } => "Coded",
        };
        f.debug_tuple("CacheBody").field(&kind).finish()
    }
}
