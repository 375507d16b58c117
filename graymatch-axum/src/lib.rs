//! axum support for graymatch: an extractor for the gray decision, and
//! per-variant `Router`s.
//!
//! - [`Gray`]: the [`Decision`](graymatch::Decision) (and tag) of the
//!   request; `Option<Gray>` where the layer may be absent. A missing layer
//!   is a 500 naming [`GrayLayer`](graymatch_tower::GrayLayer).
//! - [`VariantRouter`]: one app split between a `Router` per variant, with
//!   the default variant's `Router` serving the rest.
//!
//! # Where the layer goes
//!
//! [`GrayLayer`](graymatch_tower::GrayLayer) must wrap the **whole** `Router`
//! (`GrayLayer::new(m).layer(router)`, or [`VariantRouter`]), not be added
//! with `Router::layer`: middleware added with `Router::layer` runs after
//! routing, for matched routes only, so it cannot choose among Routers, and
//! requests to unmatched paths would have no decision. A handler behind a
//! `Router::layer(GrayLayer)` does get a decision, but the request was
//! already routed.
//!
//! ```
//! use axum::{routing::get, Router};
//! use graymatch_axum::{Gray, VariantRouter};
//!
//! # async fn run() -> std::io::Result<()> {
//! let matcher = graymatch::RuleSet::from_yaml(r#"
//! default: stable
//! rules:
//!   - { name: canary-5, to: gray, percent: 5, sticky: { header: x-user-id } }
//! "#).unwrap().compile().unwrap();
//!
//! async fn hello(gray: Gray) -> String {
//!     format!("hello from {}", gray.variant())
//! }
//! let stable = Router::new().route("/", get(hello));
//! let gray = Router::new().route("/", get(hello)); // the new version's routes
//! let app = VariantRouter::new(matcher).variant("gray", gray).default(stable);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(app)).await
//! # }
//! ```

#![forbid(unsafe_code)]

mod extract;
mod rejection;
mod split;

pub use extract::Gray;
pub use rejection::MissingGrayLayer;
pub use split::VariantRouter;

/// The root README's examples compile (they use this crate, axum and tokio).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
