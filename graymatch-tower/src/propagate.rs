//! Middleware for outbound HTTP clients that writes the gray tag on every
//! request: hyper-util's client, tonic's `Channel`, any tower HTTP client.
//!
//! The tag comes from the request's extensions (a [`Tag`] put there by the
//! caller), else from the task's scope (set by [`GrayLayer`](crate::GrayLayer)
//! around the handler). It is written as [`Tag::write`] says: the header set,
//! the baggage member merged into an existing `baggage` (never duplicated).
//! No tag, no change.
//!
//! ```
//! use graymatch::Tag;
//! use graymatch_tower::{scope, PropagateGrayLayer};
//! use http::{Request, Response};
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Infallible> {
//! // Stands in for a hyper or tonic client: echoes what it was sent.
//! let client = PropagateGrayLayer::new().layer(service_fn(|req: Request<()>| async move {
//!     Ok::<_, Infallible>(Response::new(req.headers().clone()))
//! }));
//!
//! let tag = Tag::new("gray").unwrap();
//! let sent = scope::scope(tag, async {
//!     let req = Request::get("http://orders/").header("baggage", "tenant=acme").body(()).unwrap();
//!     client.clone().oneshot(req).await
//! }).await?.into_body();
//! assert_eq!(sent["x-gray"], "gray");
//! assert_eq!(sent["baggage"], "tenant=acme,gray=gray");
//!
//! // Outside a scope, nothing is added.
//! let sent = client.oneshot(Request::new(())).await?.into_body();
//! assert!(sent.get("x-gray").is_none());
//! # Ok(()) }
//! ```

use std::task::{Context, Poll};

use graymatch::Tag;
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::scope;

/// Layer that applies [`PropagateGray`]. See the [module docs](crate::propagate).
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateGrayLayer {
    _priv: (),
}

impl PropagateGrayLayer {
    /// The layer.
    pub const fn new() -> Self {
        PropagateGrayLayer { _priv: () }
    }
}

impl<S> Layer<S> for PropagateGrayLayer {
    type Service = PropagateGray<S>;

    fn layer(&self, inner: S) -> PropagateGray<S> {
        PropagateGray { inner }
    }
}

/// Middleware that writes the current gray tag on outbound requests. See
/// the [module docs](crate::propagate).
#[derive(Clone, Debug)]
pub struct PropagateGray<S> {
    inner: S,
}

impl<S> PropagateGray<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S) -> Self {
        PropagateGray { inner }
    }

    /// The wrapped client.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped client, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped client.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The tag an outbound request should carry: its own extension, else the
/// task's.
pub(crate) fn outbound_tag(extensions: &http::Extensions) -> Option<Tag> {
    extensions.get::<Tag>().copied().or_else(scope::current)
}

impl<S, B> Service<Request<B>> for PropagateGray<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(tag) = outbound_tag(req.extensions()) {
            tag.write(req.headers_mut());
        }
        self.inner.call(req)
    }
}
