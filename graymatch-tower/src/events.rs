//! Evaluation events and the request's span, through `tracing`, following
//! OpenTelemetry's semantic conventions for feature flags.
//!
//! For every decision, [`Gray`](crate::Gray) emits a DEBUG event named
//! `feature_flag.evaluation` (target `graymatch`), off under the usual
//! production filters (`info`), on with `RUST_LOG=graymatch=debug`:
//!
//! | field | value |
//! |---|---|
//! | `feature_flag.key` | the deciding rule's name, or `graymatch` when no rule decided |
//! | `feature_flag.provider.name` | `graymatch` |
//! | `feature_flag.result.variant` | the decided variant |
//! | `feature_flag.result.reason` | `targeting_match` (a rule), `default`, or `cached` (a trusted incoming tag: decided upstream) |
//! | `feature_flag.version` | the rule set's version (12 hex digits of its SHA-256), when its source set one (graymatch-source does) |
//!
//! The inner service runs inside an INFO span named `gray` with the fields
//! `gray.variant` and `gray.rule`, so every log line and child span of the
//! request can be filtered by variant. A span of yours that declares
//! `gray.variant = tracing::field::Empty` (tower-http's `TraceLayer`
//! `make_span_with`, say) and is current when the layer runs gets the
//! variant recorded too.
//!
//! ```
//! use graymatch_tower::GrayLayer;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let m = graymatch::RuleSet::new("stable").compile().unwrap();
//! let svc = GrayLayer::new(m).layer(tower::service_fn(|_: http::Request<()>| async {
//!     tracing::info!("handled"); // carries gray.variant=stable in the `gray` span
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! }));
//! svc.oneshot(http::Request::new(())).await.unwrap();
//! # }
//! ```

use graymatch::{Decision, Reason};

/// Emits the evaluation event, records the variant on the current span,
/// and returns the request's `gray` span.
#[inline]
pub(crate) fn evaluated(d: &Decision) -> tracing::Span {
    let reason = match d.reason() {
        Reason::Rule => "targeting_match",
        Reason::Default => "default",
        Reason::Propagated => "cached",
    };
    tracing::event!(
        name: "feature_flag.evaluation",
        target: "graymatch",
        tracing::Level::DEBUG,
        {
            feature_flag.key = d.rule().unwrap_or("graymatch"),
            feature_flag.provider.name = "graymatch",
            feature_flag.result.variant = d.variant(),
            feature_flag.result.reason = reason,
            feature_flag.version = d.version().map(tracing::field::display),
        },
        "feature_flag.evaluation"
    );
    let current = tracing::Span::current();
    if !current.is_none() {
        current.record("gray.variant", d.variant());
    }
    tracing::info_span!(
        target: "graymatch",
        "gray",
        gray.variant = d.variant(),
        gray.rule = d.rule().unwrap_or("")
    )
}
