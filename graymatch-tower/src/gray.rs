//! Middleware that decides each request's variant, tags the request, and
//! routes it to the service of its variant.
//!
//! Per request, [`Gray`]:
//! 1. decides with the matcher (a [`Matcher`], or a [`SharedMatcher`] for
//!    hot reload), first putting the client's address in the extensions
//!    when a rule reads it ([`GrayLayer::client_ip`]);
//! 2. writes the tag over any tag the request arrived with, as the rule
//!    set's `propagation` says (`x-gray` header and `gray` baggage member
//!    by default), so that a client's tag never reaches the handler unless
//!    it was trusted (`incoming: trust`, and then the tag is the one that
//!    arrived). A request that arrived without one is left as it is (its
//!    header map is not grown), unless [`GrayLayer::tag_every_request`] is
//!    on: outbound clients write the tag from the task's [`scope`]. Only
//!    the carriers the rule set turns on are checked and written: at an
//!    edge with `header: null` or `baggage: null`, strip that carrier from
//!    incoming requests yourself, or a handler that forwards it passes a
//!    client's choice on to trusting services;
//! 3. puts the [`Decision`] in the request extensions (one insert; the
//!    [`Tag`] is in the task's [`scope`] for outbound calls);
//! 4. calls the service of the decided variant, or the default service when
//!    that variant has none (counted as a fallback, and marked with a
//!    [`Fallback`] extension; the tag still names the decided variant, so a
//!    trusting downstream service that has it serves it), inside a task-local
//!    scope holding the tag, so outbound clients called from the handler
//!    ([`PropagateGrayLayer`](crate::PropagateGrayLayer), the reqwest
//!    middleware) send it on;
//! 5. records the outcome per variant ([`metrics`](crate::metrics)), emits
//!    a `feature_flag.evaluation` event and runs the service in a `gray`
//!    span carrying the variant ([`events`](crate::events));
//! 6. optionally pins the variant in a cookie on the response, and names the
//!    served variant in a response header ([`GrayLayer::served_header`], off
//!    by default).
//!
//! # Backpressure
//!
//! Like axum's `Router`, [`Gray`] is always ready: `poll_ready` returns
//! `Ready(Ok(()))` and each request is driven with `clone().oneshot(req)` on
//! the chosen service, which waits for that service's readiness inside the
//! response future. Waiting for every variant's service to be ready first (as
//! `tower::steer` does) would stall stable traffic behind a saturated gray
//! service. Inner services that rely on `poll_ready` for backpressure (a
//! concurrency limit, say) should be wrapped in `tower::buffer::Buffer` or
//! `load_shed`.
//!
//! # Example
//!
//! ```
//! use graymatch::RuleSet;
//! use graymatch_tower::GrayLayer;
//! use http::{Request, Response};
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let matcher = RuleSet::from_yaml(r#"
//! default: stable
//! rules:
//!   - { name: testers, to: gray, when: { header: { name: x-tester, equals: "yes" } } }
//! "#)?.compile()?;
//!
//! let handler = |name: &'static str| service_fn(move |req: Request<String>| async move {
//!     // The decision is in the extensions, the tag in the task's scope.
//!     let decided = req.extensions().get::<graymatch::Decision>().unwrap().variant();
//!     let tag = graymatch_tower::scope::current().unwrap();
//!     assert_eq!(tag.variant(), decided);
//!     Ok::<_, Infallible>(Response::new(format!("{name} served {decided}")))
//! });
//! // Both services must have one type: box them, or use axum Routers.
//! let stable = tower::util::BoxCloneSyncService::new(handler("stable"));
//! let gray = tower::util::BoxCloneSyncService::new(handler("gray"));
//! let svc = GrayLayer::new(matcher).route("gray", gray).layer(stable);
//!
//! let req = Request::get("/").header("x-tester", "yes").body(String::new())?;
//! let res = svc.clone().oneshot(req).await?;
//! assert_eq!(res.body(), "gray served gray");
//!
//! let res = svc.oneshot(Request::new(String::new())).await?;
//! assert_eq!(res.body(), "stable served stable");
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use graymatch::{ClientIpSource, Decision, Matcher, Release, SharedMatcher, Tag};
use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower::util::{Oneshot, ServiceExt};
use tower_layer::Layer;
use tower_service::Service;

use crate::counters::Counters;
#[cfg(feature = "metrics")]
use crate::metrics::{InFlight, Outcomes};
use crate::pin::PinCookie;
use crate::release::Ticket;
use crate::scope::{self, Scoped};

/// Put in a request's extensions when the decided variant has no service of
/// its own and the default variant's service serves it instead. The
/// [`Decision`] and the [`Tag`] still name the decided variant, so a
/// trusting downstream service that has that variant serves it there (lane
/// behaviour); this marker tells the handler it serves as a stand-in.
///
/// ```
/// use graymatch_tower::{Fallback, GrayLayer};
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let m = graymatch::RuleSet::from_yaml("default: stable\nrules: [{name: all, to: gray}]")
///     .unwrap().compile().unwrap();
/// // No service for gray: the default serves, and says so.
/// let svc = GrayLayer::new(m).layer(tower::service_fn(|req: http::Request<()>| async move {
///     let fallback = req.extensions().get::<Fallback>().copied();
///     Ok::<_, std::convert::Infallible>(http::Response::new(fallback))
/// }));
/// let res = svc.oneshot(http::Request::new(())).await.unwrap();
/// assert_eq!(*res.body(), Some(Fallback { decided: "gray", served: "stable" }));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fallback {
    /// The variant the rules decided (and the tag names).
    pub decided: &'static str,
    /// The variant whose service serves the request: the default.
    pub served: &'static str,
}

/// Where a [`Gray`] service gets its matcher: a fixed [`Matcher`] or a
/// hot-reloadable [`SharedMatcher`].
///
/// ```
/// use graymatch::{RuleSet, SharedMatcher};
/// use graymatch_tower::MatcherSource;
/// let fixed: MatcherSource = RuleSet::new("stable").compile().unwrap().into();
/// let shared: MatcherSource = SharedMatcher::new(RuleSet::new("stable").compile().unwrap()).into();
/// # let _ = (fixed, shared);
/// ```
#[derive(Clone, Debug)]
pub struct MatcherSource(SourceInner);

#[derive(Clone, Debug)]
enum SourceInner {
    Fixed(Arc<Matcher>),
    Shared(SharedMatcher),
}

impl MatcherSource {
    /// The decision, its tag, and the rule set's default variant. When the
    /// rule set reads the client's address, it is looked up first.
    #[inline]
    fn decide<B>(
        &self,
        req: &mut Request<B>,
        client_ip: &ClientIpSource,
        outcomes: &Outcomes,
    ) -> (Decision, Tag, &'static str) {
        let mut decide = |m: &Matcher| {
            outcomes.observe(m);
            if m.reads_client_ip() {
                crate::client_ip::fill(req, client_ip);
            }
            let d = m.decide(&*req);
            (d, m.tag(&d), m.default_variant())
        };
        match &self.0 {
            SourceInner::Fixed(m) => decide(m),
            SourceInner::Shared(s) => decide(&s.load()),
        }
    }
}

impl From<Matcher> for MatcherSource {
    fn from(m: Matcher) -> Self {
        MatcherSource(SourceInner::Fixed(Arc::new(m)))
    }
}

impl From<Arc<Matcher>> for MatcherSource {
    fn from(m: Arc<Matcher>) -> Self {
        MatcherSource(SourceInner::Fixed(m))
    }
}

impl From<SharedMatcher> for MatcherSource {
    fn from(m: SharedMatcher) -> Self {
        MatcherSource(SourceInner::Shared(m))
    }
}

/// Layer that applies [`Gray`]: the wrapped service is the default
/// variant's, and [`route`](GrayLayer::route) adds one per variant.
///
/// See the [module docs](crate::gray) for an example.
pub struct GrayLayer<S> {
    source: MatcherSource,
    routes: Vec<(String, S)>,
    pin: Option<PinCookie>,
    counters: Counters,
    client_ip: ClientIpSource,
    served_header: Option<HeaderName>,
    release: Option<Release>,
    tag_every_request: bool,
}

impl<S> GrayLayer<S> {
    /// A layer deciding with `matcher` (a [`Matcher`], `Arc<Matcher>` or
    /// [`SharedMatcher`]).
    pub fn new(matcher: impl Into<MatcherSource>) -> Self {
        GrayLayer {
            source: matcher.into(),
            routes: Vec::new(),
            pin: None,
            counters: Counters::new(),
            client_ip: ClientIpSource::Peer,
            served_header: None,
            release: None,
            tag_every_request: false,
        }
    }

    /// A layer deciding with `release`'s matcher (its schedules step and
    /// its halts apply at once) that counts each response against the
    /// variant that served it, for the release's guards, and logs and
    /// exports the release's changes ([`crate::release::observe`]). See
    /// [`crate::release`] for what counts as a failure.
    pub fn release(release: &Release) -> Self {
        crate::release::observe(release);
        GrayLayer {
            release: Some(release.clone()),
            ..GrayLayer::new(release.matcher())
        }
    }

    /// Adds a response header naming the variant that served the request and
    /// how it was decided, for debugging and for clients that log it:
    /// `gray; rule=canary-20`, `stable; reason=default`, `gray;
    /// reason=propagated`, and for a fallback `stable; decided=gray;
    /// rule=canary-20`. Off by default.
    ///
    /// # Security
    ///
    /// Turn it on only where the clients are yours (internal services, a
    /// debugging environment, an app that reports it). On a public edge it
    /// tells anyone which version served them and the names of your rules
    /// (which may name customers or regions), so an outsider can find the
    /// new, less-tried version and aim at it, or learn how to land on it.
    /// The tag that travels to your own services is not affected.
    ///
    /// ```
    /// use graymatch_tower::GrayLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let m = graymatch::RuleSet::from_yaml(
    ///     "default: stable\nrules: [{name: beta, to: gray, when: {query: {name: beta, present: true}}}]",
    /// ).unwrap().compile().unwrap();
    /// let svc = GrayLayer::new(m)
    ///     .served_header(http::HeaderName::from_static("x-gray-served"))
    ///     .layer(tower::service_fn(|_: http::Request<()>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(()))
    ///     }));
    /// let res = svc.oneshot(http::Request::get("/?beta").body(()).unwrap()).await.unwrap();
    /// assert_eq!(res.headers()["x-gray-served"], "stable; decided=gray; rule=beta");
    /// # }
    /// ```
    #[must_use]
    pub fn served_header(mut self, name: HeaderName) -> Self {
        self.served_header = Some(name);
        self
    }

    /// Writes the tag headers onto every request, not only over a tag the
    /// request arrived with. Off by default: a handler finds the decision
    /// in the [`Decision`] extension, and outbound clients
    /// ([`PropagateGrayLayer`](crate::PropagateGrayLayer), the reqwest
    /// middleware, tonic through the same layer) write the tag from the
    /// task's [`scope`]. Turn it on when handlers forward the
    /// incoming request (or copy its headers) with a client that does not
    /// propagate, so that the request still carries this service's
    /// decision. It costs two header inserts per request (and a merge
    /// where other baggage came), and a request whose header map is full
    /// grows it (two allocations).
    ///
    /// Either way, a tag the client sent (an `x-gray` line, a `gray`
    /// baggage member) never reaches the handler unreplaced: such a request
    /// always gets this service's tag written over it.
    ///
    /// ```
    /// use graymatch_tower::GrayLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let m = graymatch::RuleSet::new("stable").compile().unwrap();
    /// let handler = tower::service_fn(|req: http::Request<()>| async move {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(req.headers()["x-gray"].clone()))
    /// });
    /// let svc = GrayLayer::new(m).tag_every_request(true).layer(handler);
    /// let res = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(res.body(), "stable");
    /// # }
    /// ```
    #[must_use]
    pub fn tag_every_request(mut self, on: bool) -> Self {
        self.tag_every_request = on;
        self
    }

    /// Where `client_ip` rules take the client's address from: the
    /// connection's peer (the default), or a forwarding header with the
    /// number of proxies you run in front. Read the trust model in
    /// [`graymatch::client_ip`] before choosing a header. The address is
    /// looked up only when the rule set has a `client_ip` leaf; see
    /// [`crate::client_ip`] for where the peer address comes from.
    ///
    /// ```
    /// use graymatch::ClientIpSource;
    /// let layer: graymatch_tower::GrayLayer<()> =
    ///     graymatch_tower::GrayLayer::new(graymatch::RuleSet::new("stable").compile().unwrap())
    ///         .client_ip(ClientIpSource::XForwardedFor { trusted_hops: 1 });
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn client_ip(mut self, source: ClientIpSource) -> Self {
        self.client_ip = source;
        self
    }

    /// Sends requests decided for `variant` to `service`. Variants without a
    /// route go to the wrapped (default) service.
    #[must_use]
    pub fn route(mut self, variant: impl Into<String>, service: S) -> Self {
        let variant = variant.into();
        self.routes.retain(|(v, _)| *v != variant);
        self.routes.push((variant, service));
        self
    }

    /// Pins each browser to its variant with a `Set-Cookie`; see [`PinCookie`].
    #[must_use]
    pub fn pin(mut self, cookie: PinCookie) -> Self {
        self.pin = Some(cookie);
        self
    }

    /// Counts into `counters` (shared with other layers, say) instead of
    /// this layer's own.
    #[must_use]
    pub fn with_counters(mut self, counters: Counters) -> Self {
        self.counters = counters;
        self
    }

    /// The decision counters of the services this layer makes.
    ///
    /// ```
    /// let layer: graymatch_tower::GrayLayer<()> =
    ///     graymatch_tower::GrayLayer::new(graymatch::RuleSet::new("stable").compile().unwrap());
    /// assert_eq!(layer.counters().snapshot().defaults, 0);
    /// ```
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl<S: Clone> Clone for GrayLayer<S> {
    fn clone(&self) -> Self {
        GrayLayer {
            source: self.source.clone(),
            routes: self.routes.clone(),
            pin: self.pin.clone(),
            counters: self.counters.clone(),
            client_ip: self.client_ip.clone(),
            served_header: self.served_header.clone(),
            release: self.release.clone(),
            tag_every_request: self.tag_every_request,
        }
    }
}

impl<S> fmt::Debug for GrayLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrayLayer")
            .field("source", &self.source)
            .field(
                "routes",
                &self.routes.iter().map(|(v, _)| v).collect::<Vec<_>>(),
            )
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl MatcherSource {
    /// Whether the matcher in force knows `variant`.
    fn knows(&self, variant: &str) -> bool {
        self.with_matcher(|m| m.variants().any(|v| v == variant))
    }

    /// Runs `f` with the matcher in force.
    #[inline]
    pub(crate) fn with_matcher<R>(&self, f: impl FnOnce(&Matcher) -> R) -> R {
        match &self.0 {
            SourceInner::Fixed(m) => f(m),
            SourceInner::Shared(s) => f(&s.load()),
        }
    }
}

impl<S: Clone> Layer<S> for GrayLayer<S> {
    type Service = Gray<S>;

    /// Wraps `default`, the default variant's service. A route for a
    /// variant the rule set does not have is logged (`tracing` WARN): it
    /// can only serve after a reload that adds the variant.
    fn layer(&self, default: S) -> Gray<S> {
        for (variant, _) in &self.routes {
            if !self.source.knows(variant) {
                tracing::warn!(
                    target: "graymatch",
                    variant = variant.as_str(),
                    "a route for variant {variant:?}, which the rule set does not have: \
                     no request goes there until a reload adds it"
                );
            }
        }
        Gray {
            default,
            shared: Arc::new(Shared {
                source: self.source.clone(),
                // Interned as decided variants are; a name no variant can
                // have (not 1 to 64 of `[A-Za-z0-9._-]`) never serves.
                routes: self
                    .routes
                    .iter()
                    .filter_map(|(v, svc)| Some((Tag::new(v).ok()?.variant(), svc.clone())))
                    .collect(),
                pin: self.pin.clone(),
                counters: self.counters.clone(),
                client_ip: self.client_ip.clone(),
                served_header: self.served_header.clone(),
                outcomes: Outcomes::default(),
                release: self.release.clone(),
                tag_every_request: self.tag_every_request,
            }),
        }
    }
}

/// Middleware that decides, tags and routes each request; see the
/// [module docs](crate::gray).
pub struct Gray<S> {
    default: S,
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    source: MatcherSource,
    routes: Vec<(&'static str, S)>,
    pin: Option<PinCookie>,
    counters: Counters,
    client_ip: ClientIpSource,
    served_header: Option<HeaderName>,
    outcomes: Outcomes,
    release: Option<Release>,
    tag_every_request: bool,
}

impl<S> Gray<S> {
    /// A [`GrayLayer`] deciding with `matcher`.
    pub fn layer(matcher: impl Into<MatcherSource>) -> GrayLayer<S> {
        GrayLayer::new(matcher)
    }

    /// The default variant's service.
    pub fn get_ref(&self) -> &S {
        &self.default
    }

    /// The default variant's service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.default
    }

    /// The default variant's service.
    pub fn into_inner(self) -> S {
        self.default
    }

    /// The decision counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

impl<S: Clone> Clone for Gray<S> {
    fn clone(&self) -> Self {
        Gray {
            default: self.default.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S> fmt::Debug for Gray<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gray")
            .field("source", &self.shared.source)
            .field(
                "routes",
                &self
                    .shared
                    .routes
                    .iter()
                    .map(|(v, _)| v)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Gray<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Oneshot<S, Request<ReqBody>>>;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Always ready: the chosen service is driven with `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        let (decision, tag, default) =
            shared
                .source
                .decide(&mut req, &shared.client_ip, &shared.outcomes);
        let in_flight = shared.outcomes.start(&decision);
        let otel = OtelState::start(&decision, &tag);
        let span = crate::events::evaluated(&decision);
        // Over a tag the client sent, always; elsewhere only when asked:
        // outbound clients write it from the scope.
        if shared.tag_every_request || tag.found_in(req.headers()) {
            tag.write(req.headers_mut());
        }
        let set_cookie = shared
            .pin
            .as_ref()
            .and_then(|pin| pin.set_cookie(req.headers(), decision.variant()));
        let extensions = req.extensions_mut();
        extensions.insert(decision);
        shared.counters.record(&decision);
        let mut served = decision.variant();
        let service = match shared
            .routes
            .iter()
            .find(|(v, _)| same(v, decision.variant()))
        {
            Some((_, svc)) => svc.clone(),
            None => {
                if decision.variant() != default {
                    shared.counters.record_fallback(decision.variant());
                    shared.outcomes.fallback(decision.variant(), default);
                    OtelState::fallback(decision.variant(), default);
                    served = default;
                    extensions.insert(Fallback {
                        decided: decision.variant(),
                        served,
                    });
                }
                self.default.clone()
            }
        };
        let served_header = shared
            .served_header
            .as_ref()
            .map(|name| (name.clone(), served_value(&decision, served)));
        // Counted against the decided variant: handlers that branch on the
        // decision (no routes) are that variant's code.
        let guard = shared
            .release
            .as_ref()
            .map(|r| Ticket::new(r, decision.variant()));
        ResponseFuture {
            inner: scope::scope(tag, service.oneshot(req)),
            set_cookie,
            served_header,
            in_flight: Some(in_flight),
            guard,
            span,
            otel,
        }
    }
}

/// Whether a route's variant is the decided one: route names are interned
/// when the layer is made, so the addresses match when the names do.
#[inline]
fn same(route: &str, variant: &'static str) -> bool {
    std::ptr::eq(route, variant) || route == variant
}

/// Without the `metrics` feature, outcomes are not recorded.
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Default)]
struct Outcomes {}

#[cfg(not(feature = "metrics"))]
#[derive(Debug)]
struct InFlight;

#[cfg(not(feature = "metrics"))]
impl Outcomes {
    #[inline]
    fn observe(&self, _: &Matcher) {}
    #[inline]
    fn start(&self, _: &Decision) -> InFlight {
        InFlight
    }
    #[inline]
    fn fallback(&self, _: &'static str, _: &'static str) {}
}

#[cfg(not(feature = "metrics"))]
impl InFlight {
    #[inline]
    fn finish(self, _: Option<http::StatusCode>) {}
}

/// The OpenTelemetry side of a request (feature `otel`): the context the
/// inner service runs under, and its outcome.
#[cfg(feature = "otel")]
struct OtelState {
    cx: Option<opentelemetry::Context>,
    outcome: Option<crate::otel::Outcome>,
}

#[cfg(feature = "otel")]
impl OtelState {
    #[inline]
    fn start(decision: &Decision, tag: &Tag) -> Self {
        OtelState {
            cx: crate::otel::context_with(tag),
            outcome: Some(crate::otel::Outcome::start(decision)),
        }
    }
    #[inline]
    fn fallback(variant: &'static str, served: &'static str) {
        crate::otel::fallback(variant, served);
    }
    #[inline]
    fn enter(&self) -> Option<opentelemetry::ContextGuard> {
        self.cx.clone().map(opentelemetry::Context::attach)
    }
    #[inline]
    fn finish(&mut self, status: Option<http::StatusCode>) {
        if let Some(o) = self.outcome.take() {
            o.finish(crate::metrics::STATUSES[crate::metrics::status_index(status)]);
        }
    }
}

#[cfg(not(feature = "otel"))]
struct OtelState;

/// What [`OtelState::enter`] holds while the inner service is polled:
/// nothing without the `otel` feature.
#[cfg(not(feature = "otel"))]
struct NoContext;

#[cfg(not(feature = "otel"))]
impl OtelState {
    #[inline]
    fn start(_: &Decision, _: &Tag) -> Self {
        OtelState
    }
    #[inline]
    fn fallback(_: &'static str, _: &'static str) {}
    #[inline]
    fn enter(&self) -> NoContext {
        NoContext
    }
    #[inline]
    fn finish(&mut self, _: Option<http::StatusCode>) {}
}

/// `served; decided=..; rule=..` or `served; reason=..` (names are
/// header-safe: variants and rules are `[A-Za-z0-9._-]`).
fn served_value(decision: &Decision, served: &'static str) -> HeaderValue {
    let mut text = String::from(served);
    if served != decision.variant() {
        text.push_str("; decided=");
        text.push_str(decision.variant());
    }
    match decision.rule() {
        Some(rule) => {
            text.push_str("; rule=");
            text.push_str(rule);
        }
        None => {
            text.push_str("; reason=");
            text.push_str(decision.reason().as_str());
        }
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

pin_project! {
    /// Response future of [`Gray`]: the chosen service's future, run with
    /// the tag in scope.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Scoped<F>,
        set_cookie: Option<HeaderValue>,
        served_header: Option<(HeaderName, HeaderValue)>,
        in_flight: Option<InFlight>,
        guard: Option<Ticket>,
        span: tracing::Span,
        otel: OtelState,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let _otel = this.otel.enter();
        let mut res = match ready!(this.inner.poll(cx)) {
            Ok(res) => {
                if let Some(f) = this.in_flight.take() {
                    f.finish(Some(res.status()));
                }
                if let Some(t) = this.guard.take() {
                    t.finish(Some((res.status(), res.headers())));
                }
                this.otel.finish(Some(res.status()));
                res
            }
            Err(e) => {
                if let Some(f) = this.in_flight.take() {
                    f.finish(None);
                }
                if let Some(t) = this.guard.take() {
                    t.finish(None);
                }
                this.otel.finish(None);
                return Poll::Ready(Err(e));
            }
        };
        if let Some(cookie) = this.set_cookie.take() {
            res.headers_mut().append(http::header::SET_COOKIE, cookie);
        }
        if let Some((name, value)) = this.served_header.take() {
            res.headers_mut().insert(name, value);
        }
        Poll::Ready(Ok(res))
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
