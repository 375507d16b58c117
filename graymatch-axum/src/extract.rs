//! Extractors for the decision [`GrayLayer`](graymatch_tower::GrayLayer)
//! made: [`Gray`] (required) and `Option<Gray>`.

use std::convert::Infallible;
use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use graymatch::{Decision, Tag};
use http::request::Parts;

use crate::rejection::MissingGrayLayer;

/// The gray decision of this request, and the tag sent on to other services.
///
/// Extracting it fails with a 500 ([`MissingGrayLayer`]) when no
/// [`GrayLayer`](graymatch_tower::GrayLayer) decided the request; use
/// `Option<Gray>` where the layer is optional. The layer must wrap the whole
/// `Router` (see the [crate docs](crate#where-the-layer-goes)).
///
/// ```
/// use axum::{routing::get, Router};
/// use graymatch_axum::Gray;
/// use graymatch_tower::GrayLayer;
/// use tower::{Layer, ServiceExt};
///
/// async fn handler(gray: Gray) -> String {
///     format!("{} ({})", gray.variant(), gray.rule().unwrap_or("default"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let matcher = graymatch::RuleSet::from_yaml(
///     "{default: stable, rules: [{name: beta, to: gray, when: {query: {name: beta, present: true}}}]}",
/// ).unwrap().compile().unwrap();
/// let app = GrayLayer::new(matcher).layer(Router::new().route("/", get(handler)));
///
/// let res = app.oneshot(http::Request::get("/?beta").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
/// assert_eq!(body, "gray (beta)");
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gray {
    decision: Decision,
    tag: Option<Tag>,
}

impl Gray {
    /// The decision.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// The tag this request carries to other services, when the layer
    /// stored one (it always does).
    pub fn tag(&self) -> Option<Tag> {
        self.tag
    }

    fn from_parts(parts: &Parts) -> Option<Self> {
        let decision = *parts.extensions.get::<Decision>()?;
        Some(Gray {
            decision,
            tag: parts.extensions.get::<Tag>().copied(),
        })
    }
}

impl Deref for Gray {
    type Target = Decision;

    fn deref(&self) -> &Decision {
        &self.decision
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Gray {
    type Rejection = MissingGrayLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Gray::from_parts(parts).ok_or(MissingGrayLayer::new())
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Gray {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(Gray::from_parts(parts))
    }
}
