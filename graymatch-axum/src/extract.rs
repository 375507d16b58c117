//! Extractors for the decision [`GrayLayer`](graymatch_tower::GrayLayer)
//! made: [`GrayDecision`] (required) and `Option<GrayDecision>`.

use std::convert::Infallible;
use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use graymatch::{Decision, Reason, Tag};
use graymatch_tower::Fallback;
use http::request::Parts;

use crate::rejection::MissingGrayLayer;

/// The gray decision of this request, the tag sent on to other services,
/// and whether this service serves as a fallback.
///
/// Extracting it fails with a 500 ([`MissingGrayLayer`]) when no
/// [`GrayLayer`](graymatch_tower::GrayLayer) decided the request; use
/// `Option<GrayDecision>` where the layer is optional. The layer must wrap
/// the whole `Router` (see the [crate docs](crate#where-the-layer-goes)).
///
/// What a handler sees:
/// - [`variant`](Decision::variant) (through `Deref` to [`Decision`]) is the
///   decided variant, the one the tag names. When that variant has no
///   `Router` here, the default variant's `Router` serves the request:
///   [`is_fallback`](Self::is_fallback) is true and
///   [`served_variant`](Self::served_variant) names the default. The tag is
///   not rewritten, so a downstream service that trusts tags and has the
///   decided variant serves it (the request stays in its lane).
/// - In a service with `incoming: trust`, the decision is the tag that
///   arrived ([`reason`](Decision::reason) is [`Reason::Propagated`]);
///   otherwise this service's rules decided ([`Reason::Rule`] or
///   [`Reason::Default`]). Either way, where the request arrived with an
///   `x-gray` header or a `gray` baggage member, they now carry this
///   service's tag, not necessarily what the client sent (a request that
///   arrived without one gets none unless the layer's
///   `tag_every_request` is on).
///
/// ```
/// use axum::{routing::get, Router};
/// use graymatch_axum::{GrayDecision, GrayLayer};
/// use tower::{Layer, ServiceExt};
///
/// async fn handler(gray: GrayDecision) -> String {
///     format!("{} ({})", gray.variant(), gray.rule().unwrap_or("default"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let matcher = graymatch_axum::RuleSet::from_yaml(
///     "{default: stable, rules: [{name: beta, to: gray, when: {query: {name: beta, present: true}}}]}",
/// ).unwrap().compile().unwrap();
/// let app = GrayLayer::new(matcher).layer(Router::new().route("/", get(handler)));
///
/// let res = app.oneshot(axum::http::Request::get("/?beta").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
/// assert_eq!(body, "gray (beta)");
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrayDecision {
    decision: Decision,
    tag: Option<Tag>,
    fallback: Option<Fallback>,
}

impl GrayDecision {
    /// The decision.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// The tag this request carries to other services: the one in the
    /// task's scope, so `None` outside the handler's task (a spawned task
    /// that was not given the scope with `graymatch_tower::scope::spawn`).
    pub fn tag(&self) -> Option<Tag> {
        self.tag
    }

    /// Whether the decided variant has no `Router` here, so the default
    /// variant's serves the request.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use graymatch_axum::{GrayDecision, VariantRouter};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let m = graymatch_axum::RuleSet::from_yaml("default: stable\nrules: [{name: all, to: gray}]")
    ///     .unwrap().compile().unwrap();
    /// let stable = Router::new().route("/", get(|g: GrayDecision| async move {
    ///     format!("{} for {}, fallback {}", g.served_variant(), g.variant(), g.is_fallback())
    /// }));
    /// // This service has no gray Router yet.
    /// let app = VariantRouter::new(m).default(stable);
    /// let res = app.oneshot(axum::http::Request::new(axum::body::Body::empty())).await.unwrap();
    /// let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
    /// assert_eq!(body, "stable for gray, fallback true");
    /// # }
    /// ```
    pub fn is_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// The variant whose `Router` serves the request: the decided one, or the
    /// default in a fallback.
    pub fn served_variant(&self) -> &'static str {
        self.fallback.map_or(self.decision.variant(), |f| f.served)
    }

    /// Whether the variant came from a trusted incoming tag rather than this
    /// service's rules.
    pub fn is_propagated(&self) -> bool {
        self.decision.reason() == Reason::Propagated
    }

    fn from_parts(parts: &Parts) -> Option<Self> {
        let decision = *parts.extensions.get::<Decision>()?;
        Some(GrayDecision {
            decision,
            tag: graymatch_tower::scope::current(),
            fallback: parts.extensions.get::<Fallback>().copied(),
        })
    }
}

impl Deref for GrayDecision {
    type Target = Decision;

    fn deref(&self) -> &Decision {
        &self.decision
    }
}

impl<S: Send + Sync> FromRequestParts<S> for GrayDecision {
    type Rejection = MissingGrayLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        GrayDecision::from_parts(parts).ok_or(MissingGrayLayer::new())
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for GrayDecision {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(GrayDecision::from_parts(parts))
    }
}
