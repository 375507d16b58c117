//! Splitting one app between per-variant `Router`s.

use axum::Router;
use graymatch_tower::{Counters, GrayLayer, MatcherSource, PinCookie};
use tower_layer::Layer;

/// Builds an app that sends each request to the `Router` of its variant,
/// and to the default `Router` for variants that have none.
///
/// The result is a plain `axum::Router` (the variants' Routers behind a
/// [`GrayLayer`]): serve it with `axum::serve(listener, app)`, add layers
/// to it, or graft it into a larger app with `Router::nest` or
/// `Router::merge`. Layers added to the result run before the decision;
/// layers on a variant's `Router` run after it.
///
/// ```
/// use axum::{routing::get, Router};
/// use graymatch_axum::VariantRouter;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let matcher = graymatch_axum::RuleSet::from_yaml(
///     "{default: stable, rules: [{name: t, to: gray, when: {header: {name: x-tester, present: true}}}]}",
/// ).unwrap().compile().unwrap();
///
/// let stable = Router::new().route("/checkout", get(|| async { "old checkout" }));
/// let gray = Router::new().route("/checkout", get(|| async { "new checkout" }));
/// let app = VariantRouter::new(matcher).variant("gray", gray).default(stable);
///
/// let req = axum::http::Request::get("/checkout").header("x-tester", "1").body(axum::body::Body::empty()).unwrap();
/// let res = app.clone().oneshot(req).await.unwrap();
/// assert_eq!(axum::body::to_bytes(res.into_body(), 64).await.unwrap(), "new checkout");
///
/// // Grafted under a prefix of a larger app:
/// let site = Router::new().nest("/shop", app);
/// let res = site.oneshot(axum::http::Request::get("/shop/checkout").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(axum::body::to_bytes(res.into_body(), 64).await.unwrap(), "old checkout");
/// # }
/// ```
#[derive(Debug)]
pub struct VariantRouter {
    layer: GrayLayer<Router>,
}

impl VariantRouter {
    /// Routes by the decisions of `matcher` (a [`Matcher`](graymatch::Matcher)
    /// or a [`SharedMatcher`](graymatch::SharedMatcher)).
    pub fn new(matcher: impl Into<MatcherSource>) -> Self {
        VariantRouter {
            layer: GrayLayer::new(matcher),
        }
    }

    /// The `Router` that serves `variant`.
    #[must_use]
    pub fn variant(mut self, variant: impl Into<String>, router: Router) -> Self {
        self.layer = self.layer.route(variant, finished(router));
        self
    }

    /// Pins browsers to their variant with a cookie.
    #[must_use]
    pub fn pin(mut self, cookie: PinCookie) -> Self {
        self.layer = self.layer.pin(cookie);
        self
    }

    /// Counts decisions into `counters`.
    #[must_use]
    pub fn with_counters(mut self, counters: Counters) -> Self {
        self.layer = self.layer.with_counters(counters);
        self
    }

    /// Puts the client's address in each request for `client_ip` rules;
    /// see [`GrayLayer::client_ip`].
    #[must_use]
    pub fn client_ip(mut self, source: graymatch::ClientIpSource) -> Self {
        self.layer = self.layer.client_ip(source);
        self
    }

    /// Names the served variant in a response header (off by default; read
    /// the security note on [`GrayLayer::served_header`]).
    #[must_use]
    pub fn served_header(mut self, name: http::HeaderName) -> Self {
        self.layer = self.layer.served_header(name);
        self
    }

    /// Writes the tag headers onto every request, for handlers that forward
    /// requests with a client that does not propagate; see
    /// [`GrayLayer::tag_every_request`].
    #[must_use]
    pub fn tag_every_request(mut self, on: bool) -> Self {
        self.layer = self.layer.tag_every_request(on);
        self
    }

    /// Finishes with the `Router` of the default variant, which also serves
    /// variants without a `Router` of their own (a fallback: see
    /// [`GrayDecision::is_fallback`](crate::GrayDecision::is_fallback)).
    pub fn default(self, router: Router) -> Router {
        Router::new().fallback_service(self.layer.layer(finished(router)))
    }
}

/// `router` with its handlers made into routes once, as `axum::serve` makes
/// a top-level `Router`'s: a `Router` called as a plain service clones and
/// boxes each handler it runs, one allocation per request.
fn finished(router: Router) -> Router {
    router.with_state(())
}
