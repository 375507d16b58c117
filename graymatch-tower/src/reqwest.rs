//! A `reqwest_middleware::Middleware` that writes the gray tag on outbound
//! reqwest calls (feature `reqwest`).
//!
//! ```no_run
//! use graymatch_tower::reqwest::GrayPropagation;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(GrayPropagation::new())
//!     .build();
//! // Inside a handler behind GrayLayer, every call now carries the tag:
//! # async fn call(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
//! let res = client.get("http://orders.internal/orders").send().await?;
//! # Ok(()) }
//! ```
//!
//! The tag comes from the request's extensions
//! (`RequestBuilder::with_extension(tag)`), else from the task's
//! [scope](crate::scope); with neither, the request is sent unchanged.

use async_trait::async_trait;
use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};

use crate::propagate::outbound_tag;

/// Writes the current gray tag (header and baggage member) on each request.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrayPropagation {
    _priv: (),
}

impl GrayPropagation {
    /// The middleware.
    pub const fn new() -> Self {
        GrayPropagation { _priv: () }
    }
}

#[async_trait]
impl Middleware for GrayPropagation {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        if let Some(tag) = outbound_tag(extensions) {
            tag.write(req.headers_mut());
        }
        next.run(req, extensions).await
    }
}
