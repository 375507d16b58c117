//! axum support for graymatch: an extractor for the gray decision, and
//! per-variant `Router`s. The one dependency an axum app needs: it
//! re-exports what such an app uses from `graymatch` and `graymatch-tower`
//! (both crates whole, too) and turns on reading YAML rule files.
//!
//! ```toml
//! [dependencies]
//! graymatch-axum = "0.1"
//! axum = "0.8"
//! tokio = { version = "1", features = ["full"] }
//! ```
//!
//! - [`GrayDecision`]: the [`Decision`] (and tag) of the request, and
//!   whether this service serves it as a fallback; `Option<GrayDecision>`
//!   where the layer may be absent. A missing layer is a 500 naming
//!   [`GrayLayer`].
//! - [`VariantRouter`]: one app split between a `Router` per variant, with
//!   the default variant's `Router` serving the rest; the result is an
//!   `axum::Router`.
//!
//! # Features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `yaml` | on | `RuleSet::from_yaml` |
//! | `metrics` | on | outcome metrics per variant (`graymatch_tower::metrics`) |
//! | `json` | | `RuleSet::from_json` |
//! | `toml` | | `RuleSet::from_toml` |
//! | `reqwest` | | `GrayPropagation` for outbound reqwest-middleware clients |
//!
//! # Where the layer goes
//!
//! [`GrayLayer`] must wrap the **whole** `Router`: use [`VariantRouter`], or
//! `Router::new().fallback_service(GrayLayer::new(m).layer(router.with_state(())))`
//! (with `tower::Layer` in scope; `with_state(())` makes the handlers into
//! routes once, where a `Router` called as a plain service boxes each
//! handler it runs, an allocation per request, as [`VariantRouter`] does
//! for you), not `Router::layer`: middleware added with `Router::layer` runs after
//! routing, for matched routes only, so it cannot choose among Routers, and
//! requests to unmatched paths would have no decision. A handler behind a
//! `Router::layer(GrayLayer)` does get a decision, but the request was
//! already routed.
//!
//! ```
//! use axum::{routing::get, Router};
//! use graymatch_axum::{GrayDecision, RuleSet, VariantRouter};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let matcher = RuleSet::from_yaml(r#"
//! default: stable
//! rules:
//!   - { name: canary-5, to: gray, percent: 5, sticky: { header: x-user-id } }
//! "#)?.compile()?;
//!
//! async fn hello(gray: GrayDecision) -> String {
//!     format!("hello from {}", gray.served_variant())
//! }
//! let stable = Router::new().route("/", get(hello));
//! let gray = Router::new().route("/", get(hello)); // the new version's routes
//! let app = VariantRouter::new(matcher).variant("gray", gray).default(stable);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod extract;
mod rejection;
mod split;

pub use extract::GrayDecision;
pub use rejection::MissingGrayLayer;
pub use split::VariantRouter;

pub use graymatch::{
    self, ClientIp, ClientIpSource, CompileError, Decision, Matcher, Reason, Release, RuleSet,
    SharedMatcher, Tag,
};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use graymatch_tower::GrayPropagation;
pub use graymatch_tower::{
    self, Fallback, GrayLayer, PinCookie, PropagateGray, PropagateGrayLayer, scope,
};

/// The root README's examples compile (they use this crate, axum and tokio).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
