//! Shadow traffic: copy a share of requests, chosen by rules, to another
//! variant's service and drop its response.
//!
//! [`ShadowLayer`] decides each request with its own rule set, as
//! [`GrayLayer`](crate::GrayLayer) does. A request decided to the rule set's
//! **default** variant is not copied: the default means "no copy". A request
//! decided to another variant is copied to the shadow service registered for
//! that variant with [`ShadowBuilder::mirror`]:
//!
//! ```yaml
//! default: none                                  # no copy
//! rules:
//!   - { name: mirror-10, to: gray, percent: 10 }  # 10 % copied to gray's shadow service
//! ```
//!
//! The primary request is never held back by its copy:
//!
//! - the request goes on to the wrapped service at once. Its body is teed
//!   as the primary service reads it: frames are copied into a buffer of at
//!   most [`body_limit`](ShadowBuilder::body_limit) bytes, and the copy is
//!   queued when the body ends. A body that outgrows the limit (or whose
//!   `Content-Length` already exceeds it) is not mirrored and counted as
//!   `body_too_large`. A request with an empty body is queued at once. A
//!   body the primary service drops unread, or that fails, is counted as
//!   `incomplete`: the copy is only what the primary actually received;
//! - copies go through a bounded queue
//!   ([`queue`](ShadowBuilder::queue)); when it is full the copy is
//!   dropped and counted as `queue_full`, never waited for;
//! - one worker task drains the queue and runs at most
//!   [`concurrency`](ShadowBuilder::concurrency) copies at once, each with a
//!   [`timeout`](ShadowBuilder::timeout) (counted as `timeout` when it
//!   fires). The shadow service's response body is read and dropped. The
//!   worker is spawned on the tokio runtime of the first request to be
//!   copied, and ends when the layer, its services and their pending copies
//!   are all dropped. The timeout needs the runtime's time driver
//!   (`#[tokio::main]` and `#[tokio::test]` turn it on; a hand-built
//!   runtime needs `enable_time` or `enable_all`).
//!
//! Memory held for copies is thus bounded by
//! `(queue + concurrency) × body_limit`, plus the buffers of requests whose
//! bodies are being read.
//!
//! Each copy has the request's method, URI, version and headers, with:
//! - hop-by-hop headers removed (`Connection` and the headers it names,
//!   `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
//!   `Upgrade`) and `Expect` removed; `Content-Length` set to the copied
//!   body's length;
//! - the shadow variant's tag written as the shadow rule set's
//!   `propagation` says, replacing any tag on the request
//!   ([`Tag::write`]), and the tag in the task scope while the shadow
//!   service runs (so its outbound calls carry it);
//! - the marker header ([`marker`](ShadowBuilder::marker), `x-gray-shadow:
//!   1` by default). A request that already carries the marker is never
//!   copied again, so two services that mirror to each other cannot loop.
//!
//! Extensions and trailers are not copied; `CONNECT` and `Upgrade` requests
//! are not copied. The copy's URI is the request's: a server sees
//! origin-form URIs (`/path?q`), so a shadow service that is an HTTP client
//! must set the scheme and authority itself (see the test
//! `graymatch-tower/tests/shadow.rs` for a hyper client behind
//! `tower::util::MapRequest`). The primary request is unchanged: no tag, no
//! marker, no decision in its extensions; the shadow decision stays inside
//! this layer. (When the shadow rule set has `client_ip` rules, the
//! client's [`ClientIp`](graymatch::ClientIp) is put in the extensions, as
//! [`GrayLayer`](crate::GrayLayer) does.)
//!
//! # Outcomes
//!
//! [`ShadowStats`] counts copies without a recorder (selected, queued,
//! completed, failed, dropped by reason, in flight and the most ever in
//! flight). With the `metrics` feature (on by default) the layer also
//! records, per shadow variant, through the `metrics` facade:
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `graymatch_shadow_requests_total` | counter | `variant`, `side`, `status` | mirrored requests by side: `primary` (the original, for the requests selected for a copy) or `shadow` (the copy); status class `1xx` … `5xx` or `error` |
//! | `graymatch_shadow_request_duration_seconds` | histogram | `variant`, `side` | time to the response head, on each side |
//! | `graymatch_shadow_dropped_total` | counter | `variant`, `reason` | copies not sent or abandoned: `queue_full`, `body_too_large`, `timeout`, `incomplete`, `no_service` (the rules chose a variant with no shadow service, after a reload), `no_worker` (no tokio runtime to run the worker) |
//!
//! Comparing the two sides of one variant compares the shadow version
//! with the primary on the same requests.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use graymatch::RuleSet;
//! use graymatch_tower::shadow::{CopyBody, ShadowLayer};
//! use http::{HeaderMap, Request, Response};
//! use http_body_util::Full;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rules = RuleSet::from_yaml(r#"
//! default: none
//! rules:
//!   - { name: mirror-testers, to: gray, when: { header: { name: x-tester, present: true } } }
//! "#)?.compile()?;
//!
//! // The shadow service: here it reports the headers of each copy.
//! let (seen, mut copies) = tokio::sync::mpsc::unbounded_channel::<HeaderMap>();
//! let shadow = service_fn(move |req: Request<CopyBody>| {
//!     let seen = seen.clone();
//!     async move {
//!         let _ = seen.send(req.headers().clone());
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//!     }
//! });
//!
//! let layer = ShadowLayer::builder(rules).mirror("gray", shadow).queue(100).build()?;
//! let stats = layer.stats().clone();
//! let app = layer.layer(service_fn(|req: Request<_>| async move {
//!     // The primary sees no tag and no marker.
//!     assert!(req.headers().get("x-gray-shadow").is_none());
//!     Ok::<_, Infallible>(Response::new("primary"))
//! }));
//!
//! let req = Request::get("/orders").header("x-tester", "1").body(Full::new(Bytes::new()))?;
//! assert_eq!(*app.clone().oneshot(req).await?.body(), "primary");
//! // Not selected by the rules: not copied.
//! app.oneshot(Request::new(Full::new(Bytes::new()))).await?;
//!
//! let copy = copies.recv().await.unwrap();
//! assert_eq!(copy["x-gray-shadow"], "1");
//! assert_eq!(copy["x-gray"], "gray");
//! assert_eq!(stats.snapshot().selected, 1);
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use graymatch::{ClientIpSource, Tag};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc};
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::gray::MatcherSource;
use crate::scope;

/// The body of a copy, as the shadow service receives it: the whole body,
/// already read.
pub type CopyBody = http_body_util::Full<Bytes>;

/// Default queue capacity: 64 copies.
pub const DEFAULT_QUEUE: usize = 64;
/// Largest queue capacity: 1,048,576 copies.
pub const MAX_QUEUE: usize = 1 << 20;
/// Default body limit: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Largest body limit: 64 MiB.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Default number of copies in flight at once: 16.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Largest number of copies in flight at once: 65,536.
pub const MAX_CONCURRENCY: usize = 1 << 16;
/// Default time a copy may take, response body included: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default marker header: `x-gray-shadow` (value `1`).
pub const DEFAULT_MARKER: &str = "x-gray-shadow";

/// A shadow layer that cannot be built: the message says why, for example
/// `shadow queue capacity must be 1 to 1048576, not 0`.
///
/// ```
/// let m = graymatch::RuleSet::from_yaml("{default: none, rules: [{name: all, to: gray}]}")
///     .unwrap().compile().unwrap();
/// let err = graymatch_tower::shadow::ShadowLayer::builder(m).build().unwrap_err();
/// assert_eq!(err.to_string(), "shadow layer has no shadow service: add one with .mirror(variant, service)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowError {
    message: String,
}

impl ShadowError {
    fn new(message: impl Into<String>) -> Self {
        ShadowError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ShadowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ShadowError {}

/// Why a copy was not sent, or abandoned.
#[derive(Clone, Copy, Debug)]
enum DropReason {
    QueueFull,
    BodyTooLarge,
    Timeout,
    Incomplete,
    NoService,
    NoWorker,
}

impl DropReason {
    #[cfg(test)]
    const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::BodyTooLarge,
        DropReason::Timeout,
        DropReason::Incomplete,
        DropReason::NoService,
        DropReason::NoWorker,
    ];

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::BodyTooLarge => "body_too_large",
            DropReason::Timeout => "timeout",
            DropReason::Incomplete => "incomplete",
            DropReason::NoService => "no_service",
            DropReason::NoWorker => "no_worker",
        }
    }
}

/// Counts of a [`ShadowLayer`]'s copies, readable without a metrics
/// recorder. Cloning shares the counts.
///
/// Once every copy has been settled, `selected` equals `enqueued` plus
/// the copies dropped for every reason but `timeout`, and `enqueued`
/// equals `completed + failed`.
#[derive(Clone, Default)]
pub struct ShadowStats {
    inner: Arc<StatsInner>,
}

#[derive(Default)]
struct StatsInner {
    selected: AtomicU64,
    enqueued: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    dropped: [AtomicU64; 6],
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl ShadowStats {
    /// The counts now.
    ///
    /// ```
    /// let stats = graymatch_tower::shadow::ShadowStats::default();
    /// assert_eq!(stats.snapshot().dropped(), 0);
    /// ```
    pub fn snapshot(&self) -> ShadowSnapshot {
        let i = &*self.inner;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let d = |r: DropReason| load(&i.dropped[r as usize]);
        ShadowSnapshot {
            selected: load(&i.selected),
            enqueued: load(&i.enqueued),
            completed: load(&i.completed),
            failed: load(&i.failed),
            queue_full: d(DropReason::QueueFull),
            body_too_large: d(DropReason::BodyTooLarge),
            timeout: d(DropReason::Timeout),
            incomplete: d(DropReason::Incomplete),
            no_service: d(DropReason::NoService),
            no_worker: d(DropReason::NoWorker),
            in_flight: load(&i.in_flight),
            max_in_flight: load(&i.max_in_flight),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn dropped(&self, variant: &'static str, reason: DropReason) {
        Self::add(&self.inner.dropped[reason as usize]);
        record::dropped(variant, reason);
    }

    /// Counts a copy in flight until the guard is dropped.
    fn start(&self) -> InFlight {
        let now = self.inner.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

impl fmt::Debug for ShadowStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShadowStats")
            .field(&self.snapshot())
            .finish()
    }
}

struct InFlight(ShadowStats);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The counts of a [`ShadowStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShadowSnapshot {
    /// Requests the rules chose to copy (decided to a variant other than
    /// the default).
    pub selected: u64,
    /// Copies put in the queue.
    pub enqueued: u64,
    /// Copies the shadow service answered (any status).
    pub completed: u64,
    /// Copies the shadow service failed on, or that timed out before an
    /// answer.
    pub failed: u64,
    /// Copies dropped because the queue was full.
    pub queue_full: u64,
    /// Requests not mirrored because their body exceeded the limit.
    pub body_too_large: u64,
    /// Copies abandoned at their timeout (before or after the answer's head).
    pub timeout: u64,
    /// Requests not mirrored because the primary service did not read their
    /// whole body, or it failed.
    pub incomplete: u64,
    /// Requests decided to a variant without a shadow service.
    pub no_service: u64,
    /// Copies dropped because no worker could run: no tokio runtime, or the
    /// runtime that ran it has shut down.
    pub no_worker: u64,
    /// Copies being sent now.
    pub in_flight: u64,
    /// The most copies ever in flight at once.
    pub max_in_flight: u64,
}

impl ShadowSnapshot {
    /// Copies dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.queue_full
            + self.body_too_large
            + self.timeout
            + self.incomplete
            + self.no_service
            + self.no_worker
    }
}

/// Builds a [`ShadowLayer`]; see [`ShadowLayer::builder`].
pub struct ShadowBuilder {
    source: MatcherSource,
    mirrors: Vec<(String, Box<dyn Mirror>)>,
    queue: usize,
    body_limit: usize,
    concurrency: usize,
    timeout: Duration,
    marker: HeaderName,
    client_ip: ClientIpSource,
}

impl fmt::Debug for ShadowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShadowBuilder")
            .field("source", &self.source)
            .field(
                "mirrors",
                &self.mirrors.iter().map(|(v, _)| v).collect::<Vec<_>>(),
            )
            .field("queue", &self.queue)
            .field("body_limit", &self.body_limit)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("marker", &self.marker)
            .finish_non_exhaustive()
    }
}

impl ShadowBuilder {
    /// Sends copies of requests decided for `variant` to `service`; a second
    /// call for the same variant replaces the first.
    ///
    /// The service gets a [`CopyBody`] (the copied body, whole) and may
    /// answer with any body, which is read and dropped. It is cloned for
    /// each copy and driven with `oneshot`, in a task of its own. `variant`
    /// must be one of the rule set's variants and not its default; this is
    /// checked by [`build`](Self::build).
    #[must_use]
    pub fn mirror<S, RB>(mut self, variant: impl Into<String>, service: S) -> Self
    where
        S: Service<Request<CopyBody>, Response = Response<RB>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        RB: Body + Send + 'static,
    {
        let variant = variant.into();
        self.mirrors.retain(|(v, _)| *v != variant);
        self.mirrors
            .push((variant, Box::new(MirrorService { service })));
        self
    }

    /// How many copies may wait for the shadow services (default
    /// [`DEFAULT_QUEUE`]); a copy that finds the queue full is dropped.
    /// 1 to [`MAX_QUEUE`], checked by [`build`](Self::build).
    #[must_use]
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// The largest body copied, in bytes (default [`DEFAULT_BODY_LIMIT`]);
    /// requests with larger bodies are not mirrored. 0 mirrors only
    /// requests without a body. At most [`MAX_BODY_LIMIT`], checked by
    /// [`build`](Self::build).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How many copies are sent at once (default [`DEFAULT_CONCURRENCY`]);
    /// more wait in the queue. 1 to [`MAX_CONCURRENCY`], checked by
    /// [`build`](Self::build).
    #[must_use]
    pub fn concurrency(mut self, copies: usize) -> Self {
        self.concurrency = copies;
        self
    }

    /// How long a copy may take, its response body included (default
    /// [`DEFAULT_TIMEOUT`]); then it is abandoned. Must not be zero,
    /// checked by [`build`](Self::build).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The header that marks a copy, with the value `1` (default
    /// [`DEFAULT_MARKER`]). Requests that already carry it are not copied.
    /// It may not be a hop-by-hop header, `Host` or `Content-Length`,
    /// checked by [`build`](Self::build).
    #[must_use]
    pub fn marker(mut self, name: HeaderName) -> Self {
        self.marker = name;
        self
    }

    /// Where `client_ip` rules in the shadow rule set take the client's
    /// address from; as [`GrayLayer::client_ip`](crate::GrayLayer::client_ip).
    #[must_use]
    pub fn client_ip(mut self, source: ClientIpSource) -> Self {
        self.client_ip = source;
        self
    }

    /// The layer.
    ///
    /// # Errors
    ///
    /// A [`ShadowError`] when no shadow service was registered, when a
    /// shadow service is registered for a variant the rule set does not
    /// have or for its default (which means "no copy"), when the queue
    /// capacity, the body limit or the concurrency is out of range, when
    /// the timeout is zero, or when the marker is a header the copy cannot
    /// carry.
    ///
    /// ```
    /// use graymatch_tower::shadow::ShadowLayer;
    /// let m = || graymatch::RuleSet::from_yaml("{default: none, rules: [{name: all, to: gray}]}")
    ///     .unwrap().compile().unwrap();
    /// let svc = tower::service_fn(|_: http::Request<_>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// });
    /// let err = ShadowLayer::builder(m()).mirror("blue", svc).build().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"shadow service for variant "blue", which the rule set does not have (variants: none, gray)"#
    /// );
    /// let err = ShadowLayer::builder(m()).mirror("gray", svc).queue(0).build().unwrap_err();
    /// assert_eq!(err.to_string(), "shadow queue capacity must be 1 to 1048576, not 0");
    /// ```
    pub fn build(self) -> Result<ShadowLayer, ShadowError> {
        if self.mirrors.is_empty() {
            return Err(ShadowError::new(
                "shadow layer has no shadow service: add one with .mirror(variant, service)",
            ));
        }
        let (variants, default) = self.source.with_matcher(|m| {
            (
                m.variants().collect::<Vec<&'static str>>(),
                m.default_variant(),
            )
        });
        for (variant, _) in &self.mirrors {
            if variant == default {
                return Err(ShadowError::new(format!(
                    "shadow service for variant {variant:?}, the rule set's default, \
                     which means \"no copy\": give the rule set another default"
                )));
            }
            if !variants.contains(&variant.as_str()) {
                return Err(ShadowError::new(format!(
                    "shadow service for variant {variant:?}, which the rule set does not have \
                     (variants: {})",
                    variants.join(", ")
                )));
            }
        }
        if !(1..=MAX_QUEUE).contains(&self.queue) {
            return Err(ShadowError::new(format!(
                "shadow queue capacity must be 1 to {MAX_QUEUE}, not {}",
                self.queue
            )));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(ShadowError::new(format!(
                "shadow concurrency must be 1 to {MAX_CONCURRENCY}, not {}",
                self.concurrency
            )));
        }
        if self.body_limit > MAX_BODY_LIMIT {
            return Err(ShadowError::new(format!(
                "shadow body limit must be at most {MAX_BODY_LIMIT} bytes, not {}",
                self.body_limit
            )));
        }
        if self.timeout.is_zero() {
            return Err(ShadowError::new("shadow timeout must be more than zero"));
        }
        if is_hop_by_hop(&self.marker)
            || self.marker == header::HOST
            || self.marker == header::CONTENT_LENGTH
            || self.marker == header::EXPECT
        {
            return Err(ShadowError::new(format!(
                "shadow marker header {:?} is one a copy cannot carry: choose another name",
                self.marker.as_str()
            )));
        }
        let (tx, rx) = mpsc::channel(self.queue);
        let stats = ShadowStats::default();
        let names = self.mirrors.iter().map(|(v, _)| v.clone().into()).collect();
        let worker = Worker {
            rx,
            mirrors: self.mirrors.into_iter().map(|(_, m)| m).collect(),
            concurrency: self.concurrency,
            timeout: self.timeout,
            stats: stats.clone(),
        };
        Ok(ShadowLayer {
            shared: Arc::new(Shared {
                source: self.source,
                names,
                tx,
                worker: Mutex::new(Some(worker)),
                started: AtomicBool::new(false),
                body_limit: self.body_limit,
                marker: self.marker,
                client_ip: self.client_ip,
                stats,
            }),
        })
    }
}

/// Layer that applies [`Shadow`]: copies a share of requests to shadow
/// services. Build it with [`ShadowLayer::builder`]; see the
/// [module docs](crate::shadow).
///
/// Clones of the layer, and every service it makes, share one queue, one
/// worker and one [`ShadowStats`].
#[derive(Clone)]
pub struct ShadowLayer {
    shared: Arc<Shared>,
}

impl ShadowLayer {
    /// A builder for a layer deciding with `matcher` (a
    /// [`Matcher`](graymatch::Matcher), `Arc<Matcher>` or
    /// [`SharedMatcher`](graymatch::SharedMatcher) for hot reload). Requests
    /// decided to its default variant are not copied.
    pub fn builder(matcher: impl Into<MatcherSource>) -> ShadowBuilder {
        ShadowBuilder {
            source: matcher.into(),
            mirrors: Vec::new(),
            queue: DEFAULT_QUEUE,
            body_limit: DEFAULT_BODY_LIMIT,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
            marker: HeaderName::from_static(DEFAULT_MARKER),
            client_ip: ClientIpSource::Peer,
        }
    }

    /// The counts of this layer's copies.
    pub fn stats(&self) -> &ShadowStats {
        &self.shared.stats
    }
}

impl fmt::Debug for ShadowLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl<S> Layer<S> for ShadowLayer {
    type Service = Shadow<S>;

    fn layer(&self, inner: S) -> Shadow<S> {
        Shadow {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Middleware that copies a share of requests to shadow services; see the
/// [module docs](crate::shadow).
///
/// It wraps one service and passes `poll_ready` on to it. The wrapped
/// service receives the request with its body in a [`RequestBody`].
pub struct Shadow<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Shadow<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The counts of the copies.
    pub fn stats(&self) -> &ShadowStats {
        &self.shared.stats
    }
}

impl<S: Clone> Clone for Shadow<S> {
    fn clone(&self) -> Self {
        Shadow {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Shadow<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shadow")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for Shadow<S>
where
    S: Service<Request<RequestBody<B>>, Response = Response<ResBody>>,
    B: Body,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let (tee, primary) = match self.shared.select(&mut req) {
            Some(chosen) => self.shared.start_copy(&req, chosen),
            None => (None, None),
        };
        let req = req.map(|inner| RequestBody { inner, tee });
        ResponseFuture {
            inner: self.inner.call(req),
            primary,
        }
    }
}

/// The layer's state, shared by its clones and services.
struct Shared {
    source: MatcherSource,
    /// The variants with a shadow service, in the worker's order.
    names: Box<[Box<str>]>,
    tx: mpsc::Sender<Job>,
    /// The worker, until it is spawned.
    worker: Mutex<Option<Worker>>,
    started: AtomicBool,
    body_limit: usize,
    marker: HeaderName,
    client_ip: ClientIpSource,
    stats: ShadowStats,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShadowLayer")
            .field("source", &self.source)
            .field("mirrors", &self.names)
            .field("body_limit", &self.body_limit)
            .field("marker", &self.marker)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// A request chosen for a copy: the shadow service's index, its variant
/// and tag.
#[derive(Clone, Copy)]
struct Chosen {
    mirror: usize,
    variant: &'static str,
    tag: Tag,
}

impl Shared {
    /// Decides whether `req` is copied, and where.
    fn select<B>(&self, req: &mut Request<B>) -> Option<Chosen> {
        if req.headers().contains_key(&self.marker)
            || req.method() == Method::CONNECT
            || req.headers().contains_key(header::UPGRADE)
        {
            return None;
        }
        let (decision, tag, default) = self.source.with_matcher(|m| {
            if m.reads_client_ip() {
                crate::client_ip::fill(req, &self.client_ip);
            }
            let d = m.decide(&*req);
            (d, m.tag(&d), m.default_variant())
        });
        let variant = decision.variant();
        if variant == default {
            return None;
        }
        ShadowStats::add(&self.stats.inner.selected);
        match self.names.iter().position(|v| **v == *variant) {
            Some(mirror) => Some(Chosen {
                mirror,
                variant,
                tag,
            }),
            None => {
                self.stats.dropped(variant, DropReason::NoService);
                None
            }
        }
    }

    /// Starts the copy of a chosen request: queued now when its body is
    /// empty, teed when it may fit, dropped when it cannot.
    fn start_copy<B: Body>(
        self: &Arc<Self>,
        req: &Request<B>,
        chosen: Chosen,
    ) -> (Option<Pending>, Option<Primary>) {
        let hint = req.body().size_hint();
        if hint.lower() > self.body_limit as u64 {
            self.stats.dropped(chosen.variant, DropReason::BodyTooLarge);
            return (None, None);
        }
        let mut head = Request::new(());
        *head.method_mut() = req.method().clone();
        *head.uri_mut() = req.uri().clone();
        *head.version_mut() = req.version();
        *head.headers_mut() = copy_headers(req.headers());
        chosen.tag.write(head.headers_mut());
        head.headers_mut()
            .insert(self.marker.clone(), HeaderValue::from_static("1"));
        let had_length = req.headers().contains_key(header::CONTENT_LENGTH);
        let (head, ()) = head.into_parts();
        let primary = Some(Primary {
            variant: chosen.variant,
            start: Instant::now(),
            done: false,
        });
        let mut pending = Pending {
            shared: self.clone(),
            job: Some((chosen, head, had_length)),
            buf: BytesMut::new(),
        };
        if hint.exact() == Some(0) || req.body().is_end_stream() {
            pending.send();
            return (None, primary);
        }
        let expected = usize::try_from(hint.upper().unwrap_or(hint.lower())).unwrap_or(usize::MAX);
        pending.buf.reserve(expected.min(self.body_limit));
        (Some(pending), primary)
    }

    /// Queues a copy, or counts why it cannot be.
    fn enqueue(&self, job: Job) {
        if !self.ensure_worker() {
            self.stats.dropped(job.variant, DropReason::NoWorker);
            return;
        }
        match self.tx.try_send(job) {
            Ok(()) => ShadowStats::add(&self.stats.inner.enqueued),
            Err(TrySendError::Full(job)) => self.stats.dropped(job.variant, DropReason::QueueFull),
            Err(TrySendError::Closed(job)) => {
                self.stats.dropped(job.variant, DropReason::NoWorker);
            }
        }
    }

    /// Spawns the worker on the current runtime if it is not running yet;
    /// false when there is no runtime.
    fn ensure_worker(&self) -> bool {
        if self.started.load(Ordering::Acquire) {
            return true;
        }
        let mut slot = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(worker) = slot.take() else {
            return true;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(worker.run());
                self.started.store(true, Ordering::Release);
                true
            }
            Err(_) => {
                *slot = Some(worker);
                false
            }
        }
    }
}

/// Whether `name` is a hop-by-hop header (RFC 9110 section 7.6.1, with
/// `Transfer-Encoding` and the older `Keep-Alive` and `Proxy-Connection`).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// The request's headers for a copy: without hop-by-hop headers (and those
/// `Connection` names), `Expect` and `Content-Length`.
fn copy_headers(headers: &HeaderMap) -> HeaderMap {
    let mut copy = headers.clone();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for name in value.split(',') {
            if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                copy.remove(name);
            }
        }
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::EXPECT,
        header::CONTENT_LENGTH,
    ] {
        copy.remove(name);
    }
    copy.remove("keep-alive");
    copy.remove("proxy-connection");
    copy
}

/// A copy being assembled from the primary's body.
struct Pending {
    shared: Arc<Shared>,
    /// Until sent or abandoned: the choice, the copy's head, and whether the
    /// request had a `Content-Length`.
    job: Option<(Chosen, http::request::Parts, bool)>,
    buf: BytesMut,
}

impl Pending {
    /// Adds a frame of data; false when it outgrows the limit.
    fn push(&mut self, data: &[u8]) -> bool {
        if self.buf.len() + data.len() > self.shared.body_limit {
            return false;
        }
        self.buf.extend_from_slice(data);
        true
    }

    /// Queues the copy.
    fn send(mut self) {
        let Some((chosen, mut head, had_length)) = self.job.take() else {
            return;
        };
        let body = std::mem::take(&mut self.buf).freeze();
        if had_length || !body.is_empty() {
            head.headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        self.shared.enqueue(Job {
            mirror: chosen.mirror,
            variant: chosen.variant,
            tag: chosen.tag,
            request: Request::from_parts(head, CopyBody::new(body)),
        });
    }

    /// Gives the copy up.
    fn abandon(mut self, reason: DropReason) {
        if let Some((chosen, _, _)) = self.job.take() {
            self.shared.stats.dropped(chosen.variant, reason);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some((chosen, _, _)) = self.job.take() {
            self.shared
                .stats
                .dropped(chosen.variant, DropReason::Incomplete);
        }
    }
}

pin_project! {
    /// The body the wrapped service of a [`Shadow`] receives: the request's
    /// body, unchanged (its data as [`Bytes`]), copied for the shadow
    /// service as it is read when the request is mirrored.
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        tee: Option<Pending>,
    }
}

impl<B> RequestBody<B> {
    /// Whether this body is being copied.
    pub fn is_mirrored(&self) -> bool {
        self.tee.is_some()
    }
}

impl<B: fmt::Debug> fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("inner", &self.inner)
            .field("mirrored", &self.tee.is_some())
            .finish()
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        match ready!(this.inner.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => {
                let frame = frame.map_data(|mut d| d.copy_to_bytes(d.remaining()));
                if let (Some(data), Some(tee)) = (frame.data_ref(), this.tee.as_mut())
                    && !tee.push(data)
                    && let Some(tee) = this.tee.take()
                {
                    tee.abandon(DropReason::BodyTooLarge);
                }
                if this.inner.is_end_stream()
                    && let Some(tee) = this.tee.take()
                {
                    tee.send();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                if let Some(tee) = this.tee.take() {
                    tee.abandon(DropReason::Incomplete);
                }
                Poll::Ready(Some(Err(e)))
            }
            None => {
                if let Some(tee) = this.tee.take() {
                    tee.send();
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The primary side of a mirrored request: its status class and latency.
struct Primary {
    variant: &'static str,
    start: Instant,
    done: bool,
}

impl Primary {
    fn finish(mut self, status: Option<StatusCode>) {
        self.done = true;
        record::side(self.variant, "primary", status, Some(self.start.elapsed()));
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        if !self.done {
            // Dropped before its response: the client went away.
            record::side(self.variant, "primary", None, None);
        }
    }
}

pin_project! {
    /// Response future of [`Shadow`]: the wrapped service's, which also
    /// records the primary side of mirrored requests.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        primary: Option<Primary>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx));
        if let Some(primary) = this.primary.take() {
            primary.finish(res.as_ref().ok().map(Response::status));
        }
        Poll::Ready(res)
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("mirrored", &self.primary.is_some())
            .finish_non_exhaustive()
    }
}

/// A copy in the queue.
struct Job {
    mirror: usize,
    variant: &'static str,
    tag: Tag,
    request: Request<CopyBody>,
}

type CopyFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A shadow service, its types erased.
trait Mirror: Send {
    /// Sends `request`, reports the head of the answer to `probe`, and reads
    /// and drops its body.
    fn send(&mut self, request: Request<CopyBody>, probe: Arc<Probe>) -> CopyFuture;
}

struct MirrorService<S> {
    service: S,
}

impl<S, RB> Mirror for MirrorService<S>
where
    S: Service<Request<CopyBody>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    RB: Body + Send + 'static,
{
    fn send(&mut self, request: Request<CopyBody>, probe: Arc<Probe>) -> CopyFuture {
        let service = self.service.clone();
        Box::pin(async move {
            let Ok(res) = service.oneshot(request).await else {
                probe.head(None);
                return;
            };
            probe.head(Some(res.status()));
            drain(res.into_body()).await;
        })
    }
}

/// Reads `body` to its end (or first error), dropping every frame, and
/// yields to the runtime every 64 frames.
async fn drain<B: Body>(body: B) {
    let mut body = std::pin::pin!(body);
    std::future::poll_fn(move |cx| {
        for _ in 0..64 {
            match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Poll::Ready(()),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// The shadow side of one copy.
struct Probe {
    variant: &'static str,
    start: Instant,
    answered: AtomicBool,
    stats: ShadowStats,
}

impl Probe {
    /// Records the shadow service's answer: a status, or `None` when it
    /// failed or timed out first. Only the first report counts.
    fn head(&self, status: Option<StatusCode>) {
        if self.answered.swap(true, Ordering::Relaxed) {
            return;
        }
        let stats = &self.stats.inner;
        ShadowStats::add(if status.is_some() {
            &stats.completed
        } else {
            &stats.failed
        });
        record::side(self.variant, "shadow", status, Some(self.start.elapsed()));
    }
}

/// Drains the queue: at most `concurrency` copies at once, each in a task
/// of its own with the timeout.
struct Worker {
    rx: mpsc::Receiver<Job>,
    mirrors: Vec<Box<dyn Mirror>>,
    concurrency: usize,
    timeout: Duration,
    stats: ShadowStats,
}

impl Worker {
    async fn run(mut self) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        loop {
            // A permit first: while every copy slot is busy, copies wait
            // in the queue, which fills, and then drops.
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let Some(job) = self.rx.recv().await else {
                return;
            };
            let Some(mirror) = self.mirrors.get_mut(job.mirror) else {
                continue;
            };
            let probe = Arc::new(Probe {
                variant: job.variant,
                start: Instant::now(),
                answered: AtomicBool::new(false),
                stats: self.stats.clone(),
            });
            let copy = mirror.send(job.request, probe.clone());
            let in_flight = self.stats.start();
            let timeout = self.timeout;
            tokio::spawn(async move {
                let _permit = permit;
                let _in_flight = in_flight;
                let copy = scope::scope(job.tag, copy);
                if tokio::time::timeout(timeout, copy).await.is_err() {
                    probe.head(None);
                    probe.stats.dropped(probe.variant, DropReason::Timeout);
                }
            });
        }
    }
}

/// Recording through the `metrics` facade.
#[cfg(feature = "metrics")]
mod record {
    use std::time::Duration;

    use http::StatusCode;

    use super::DropReason;
    use crate::metrics::{
        SHADOW_DROPPED, SHADOW_DURATION, SHADOW_REQUESTS, STATUSES, status_index,
    };

    /// One side's outcome: the status class, and the time to it.
    pub(super) fn side(
        variant: &'static str,
        side: &'static str,
        status: Option<StatusCode>,
        elapsed: Option<Duration>,
    ) {
        let status = STATUSES[status_index(status)];
        metrics::counter!(SHADOW_REQUESTS, "variant" => variant, "side" => side, "status" => status)
            .increment(1);
        if let Some(elapsed) = elapsed {
            metrics::histogram!(SHADOW_DURATION, "variant" => variant, "side" => side)
                .record(elapsed.as_secs_f64());
        }
    }

    /// A dropped copy.
    pub(super) fn dropped(variant: &'static str, reason: DropReason) {
        metrics::counter!(SHADOW_DROPPED, "variant" => variant, "reason" => reason.as_str())
            .increment(1);
    }
}

/// Without the `metrics` feature, nothing is recorded.
#[cfg(not(feature = "metrics"))]
mod record {
    use std::time::Duration;

    use http::StatusCode;

    use super::DropReason;

    pub(super) fn side(
        _: &'static str,
        _: &'static str,
        _: Option<StatusCode>,
        _: Option<Duration>,
    ) {
    }

    pub(super) fn dropped(_: &'static str, _: DropReason) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_not_copied() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "s".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("content-length", "10".parse().unwrap());
        h.insert("expect", "100-continue".parse().unwrap());
        h.insert("x-kept", "k".parse().unwrap());
        let copy = copy_headers(&h);
        assert_eq!(copy.len(), 1, "{copy:?}");
        assert_eq!(copy["x-kept"], "k");
    }

    #[test]
    fn every_reason_has_a_slot() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
