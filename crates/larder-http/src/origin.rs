//! What the layer needs of the service behind it and of its bodies, named once: the fill's
//! functions say `S: Origin<ReqB, ResB>, ResB: OriginBody` instead of six bounds each.

use std::future::Future;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::BoxError;

/// The service the layer wraps, called from tasks of its own: `Send + 'static`, and so are its
/// futures and errors. Implemented for every such service.
pub(crate) trait Origin<ReqB, ResB>:
    Service<Request<ReqB>, Response = Response<ResB>, Future = Self::Call, Error = Self::Failure>
    + Send
    + 'static
{
    /// The service's future (its `Future`), with the bounds the fill relies on.
    type Call: Future<Output = Result<Response<ResB>, Self::Failure>> + Send + 'static;
    /// The service's error (its `Error`).
    type Failure: Send + 'static;
}

impl<S, ReqB, ResB> Origin<ReqB, ResB> for S
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Call = S::Future;
    type Failure = S::Error;
}

/// A response body the layer can record and stream: bytes, sendable, errors it can box.
pub(crate) trait OriginBody:
    Body<Data = Bytes, Error = Self::Failure> + Send + 'static
{
    /// The body's error (its `Error`).
    type Failure: Into<BoxError>;
}

impl<B> OriginBody for B
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Failure = B::Error;
}
