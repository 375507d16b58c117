//! Tower middleware for graymatch: decide each request's variant, route it
//! to that variant's service, and carry the tag on every outbound call.
//!
//! - [`GrayLayer`] / [`Gray`]: around an axum `Router`, a tonic server or any
//!   `http` tower service. Decides with a [`Matcher`](graymatch::Matcher) or
//!   a [`SharedMatcher`](graymatch::SharedMatcher) (hot reload), writes the
//!   tag over any tag the request arrived with (on every request with
//!   [`GrayLayer::tag_every_request`]), stores the
//!   [`Decision`](graymatch::Decision) in its extensions, and calls the
//!   service of the
//!   decided variant (the default's when that variant has none) with the tag
//!   in the task's [`scope`].
//! - [`PropagateGrayLayer`] / [`PropagateGray`]: around an outbound client
//!   (hyper-util, tonic `Channel`); writes the current tag on each request.
//! - [`reqwest::GrayPropagation`] (feature `reqwest`): the same for
//!   `reqwest-middleware` clients.
//! - [`scope::spawn`]: `tokio::spawn` that keeps the tag (a spawned task
//!   does not inherit the scope).
//! - [`metrics`] (feature `metrics`, on by default): outcome metrics per
//!   variant (requests by status class, latency, in flight, fallbacks)
//!   through the `metrics` facade, and the PromQL for a release's checks.
//! - [`events`]: a `feature_flag.evaluation` event per decision and a
//!   `gray` span with the variant around the request (`tracing`).
//! - [`otel`] (feature `otel`): the tag merged into the OpenTelemetry
//!   context's baggage, so OTel propagators carry it, and the outcome
//!   metrics as OpenTelemetry instruments.
//! - [`openfeature`] (feature `openfeature`): an OpenFeature provider that
//!   resolves flags with rule sets.
//! - [`release`]: [`GrayLayer::release`] runs a
//!   [`Release`](graymatch::Release): scheduled steps, and guards fed with
//!   each response that halt a failing variant; its changes logged and
//!   exported.
//! - [`shadow::ShadowLayer`] / [`shadow::Shadow`]: shadow traffic. Copies
//!   a share of requests, chosen by rules, to another variant's service
//!   through a bounded queue and drops its answers; the primary never
//!   waits for a copy.
//! - [`Counters`]: lock-free decision counts.
//! - [`client_ip`]: the client's address for `client_ip` rules, from the
//!   connection or from forwarding headers with trusted hops
//!   ([`GrayLayer::client_ip`]).
//!
//! # Full-link gray
//!
//! The edge service decides (`incoming: ignore`, so clients cannot pick a
//! variant) and its outbound clients send the tag; internal services run
//! `GrayLayer` with `incoming: trust`, so the tag decides there and the
//! request keeps its variant on every hop, even for random splits.
//!
//! ```
//! use graymatch::RuleSet;
//! use graymatch_tower::{GrayLayer, PropagateGrayLayer};
//! use http::{Request, Response};
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An internal service that trusts tags and reports what it saw.
//! let internal = GrayLayer::new(RuleSet::from_yaml(
//!     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}")?.compile()?)
//!     .layer(service_fn(|req: Request<()>| async move {
//!         let d = *req.extensions().get::<graymatch::Decision>().unwrap();
//!         Ok::<_, Infallible>(Response::new(d.variant()))
//!     }));
//! // Its client, as the edge's handler would hold it.
//! let client = PropagateGrayLayer::new().layer(internal);
//!
//! // The edge: 50 % at random, then a call to the internal service.
//! let edge = GrayLayer::new(RuleSet::from_yaml(
//!     "{default: stable, rules: [{name: half, to: gray, percent: 50}]}")?.compile()?)
//!     .layer(service_fn(move |req: Request<()>| {
//!         let client = client.clone();
//!         async move {
//!             let edge = req.extensions().get::<graymatch::Decision>().unwrap().variant();
//!             let internal = client.oneshot(Request::new(())).await?.into_body();
//!             Ok::<_, Infallible>(Response::new((edge, internal)))
//!         }
//!     }));
//!
//! for _ in 0..20 {
//!     let (edge_variant, internal_variant) = edge.clone().oneshot(Request::new(())).await?.into_body();
//!     assert_eq!(edge_variant, internal_variant);
//! }
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | enables |
//! |---|---|
//! | `reqwest` | [`reqwest::GrayPropagation`], a `reqwest_middleware::Middleware` |

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client_ip;
pub mod counters;
pub mod events;
pub mod gray;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "openfeature")]
#[cfg_attr(docsrs, doc(cfg(feature = "openfeature")))]
pub mod openfeature;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
mod pin;
pub mod propagate;
pub mod release;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
pub mod scope;
pub mod shadow;

pub use counters::{Counters, Snapshot};
pub use gray::{Fallback, Gray, GrayLayer, MatcherSource};
pub use pin::PinCookie;
pub use propagate::{PropagateGray, PropagateGrayLayer};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use reqwest::GrayPropagation;
pub use shadow::{Shadow, ShadowError, ShadowLayer};

/// Every public type is `Send + Sync` when its inner service is.
#[allow(dead_code)]
mod auto_traits {
    use super::*;

    fn assert_all<T: Send + Sync + Unpin>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    fn check() {
        assert_all::<GrayLayer<()>>();
        assert_all::<Gray<()>>();
        assert_all::<PropagateGrayLayer>();
        assert_all::<PropagateGray<()>>();
        assert_all::<Counters>();
        assert_all::<PinCookie>();
        assert_all::<MatcherSource>();
        assert_send_sync::<gray::ResponseFuture<std::future::Ready<()>>>();
        assert_all::<ShadowLayer>();
        assert_all::<Shadow<()>>();
        assert_all::<shadow::ShadowStats>();
        assert_send::<shadow::ShadowBuilder>();
        assert_all::<shadow::RequestBody<()>>();
        assert_send_sync::<shadow::ResponseFuture<std::future::Ready<()>>>();
    }
}
