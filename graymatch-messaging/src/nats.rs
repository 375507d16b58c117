//! NATS with async-nats: the tag on message headers, lanes as subjects, for
//! core pub/sub and JetStream.
//!
//! # Subjects
//!
//! A [`Publisher`] for subject `orders` publishes from inside a tag scope
//! to `orders.<variant>` (`orders.gray`, `orders.stable`: the default
//! variant is tagged too) with the tag in the headers, and outside any
//! scope to `orders`, untagged. The broker filters by subject:
//!
//! | consumer | core NATS subscribes | JetStream durable (stream subjects `orders`, `orders.>`) |
//! |---|---|---|
//! | lane `gray` of group `workers` | `orders.gray`, queue group `workers_gray` | `workers_gray`, filter `orders.gray` |
//! | base | `orders` and `orders.>`, queue group `workers` | `workers`, no filter; and it takes over `workers_<v>` while lane `v` is down |
//!
//! # Liveness
//!
//! Lane consumers beat on `_GRAYMATCH.lanes.<group>` (core NATS, payload
//! `up <variant> <instance>`) every [`Consumer::heartbeat`] (1 s), answer a
//! base's `probe` at once, and say `down` when stopped. A base consumer
//! counts a lane live while an instance beat within
//! [`Consumer::liveness_timeout`] (3 s), and probes before it starts, so it
//! knows the live lanes from its first message.
//!
//! # What happens around a lane's start and stop
//!
//! - **Core NATS: at most once.** Messages exist only in flight. A base
//!   consumer skips a live lane's messages (it receives them through
//!   `orders.>`) and handles them, as rerouted, while the lane is down. A
//!   gray consumer that stops gracefully says `down` first and keeps
//!   handling for a short handover, so no message is lost and a message
//!   published in that window may be handled twice. One that crashes loses
//!   what it held, and its lane's messages published before the base sees
//!   its heartbeats stop (at most the liveness timeout) are lost. A lane
//!   that starts is live from its first beat; messages the base handled
//!   before it heard the beat are not handled again.
//! - **JetStream: at least once, none lost.** Every lane has its own
//!   durable consumer, created by the base at start for every declared
//!   variant, so the stream keeps a lane's messages whoever is up. The base
//!   always skips (acknowledges) lane subjects in its own durable and pulls
//!   from a lane's durable while that lane is down, so each message is
//!   handled by one consumer; a message is handled twice only when a
//!   consumer dies after handling it and before its acknowledgement
//!   arrives (it is redelivered after the ack wait, 30 s by default, to
//!   whoever pulls). A lane that starts pulls its durable at once; the
//!   base stops pulling it when it hears the first beat.
//!
//! # Trust
//!
//! NATS messages carry no verified producer identity: the rule set's
//! `incoming: trust` decides whether tags are followed. Grant publish
//! permission on `orders.>` only to trusted producers (NATS
//! authorization); with `incoming: ignore`, every message is the default
//! variant's and the base handles them all (lane consumers skip them).
//!
//! ```no_run
//! use graymatch_messaging::{nats, Lane};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = async_nats::connect("127.0.0.1:4222").await?;
//! let rules = Arc::new(graymatch::RuleSet::from_yaml(
//!     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}")?.compile()?);
//!
//! // A consumer of the gray lane; its handler's HTTP calls carry `gray` on.
//! let gray = nats::Consumer::core(client.clone(), "orders", Lane::new(rules.clone(), "workers", "gray")?)
//!     .start(|msg: graymatch_messaging::Incoming<async_nats::Message>| async move {
//!         println!("{} handled {:?}", msg.variant(), msg.message().payload);
//!         Ok::<_, std::convert::Infallible>(())
//!     })
//!     .await?;
//!
//! // The orders service publishes from inside its request's scope.
//! let publisher = nats::Publisher::core(client, "orders");
//! let tag = graymatch::Tag::new("gray")?;
//! graymatch_tower::scope::scope(tag, publisher.publish("order 42".into())).await?; // to orders.gray
//! gray.stop().await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, consumer::pull};
use async_nats::{Client, HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use futures_util::StreamExt;
use graymatch::Tag;
use graymatch::carrier::{Extractor, Injector};
use std::ops::ControlFlow;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::Error;
use crate::lane::{Action, Lane, Liveness};
use crate::run::{self, Incoming, Running};
use crate::stats::{Outcome, Stats};

/// NATS message headers as a tag carrier. Keys compare without ASCII case;
/// writing replaces every value of the key (in any case).
///
/// ```
/// use graymatch_messaging::nats::NatsHeaders;
///
/// let mut headers = async_nats::HeaderMap::new();
/// headers.insert("Baggage", "tenant=acme");
/// graymatch::Tag::new("gray")?.inject(&mut NatsHeaders(&mut headers));
/// assert_eq!(headers.get("x-gray").map(|v| v.as_str()), Some("gray"));
/// assert_eq!(headers.get("baggage").map(|v| v.as_str()), Some("tenant=acme,gray=gray"));
/// assert!(headers.get("Baggage").is_none());
/// # Ok::<(), graymatch::InvalidTag>(())
/// ```
#[derive(Debug)]
pub struct NatsHeaders<T>(pub T);

fn nats_values(map: &HeaderMap, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
    for (name, values) in map.iter() {
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case(key) {
            for v in values {
                if f(v.as_str().as_bytes()).is_break() {
                    return;
                }
            }
        }
    }
}

fn nats_replace(map: &mut HeaderMap, key: &str, value: &str) {
    let mut out = HeaderMap::new();
    for (name, values) in map.iter() {
        let n: &str = name.as_ref();
        if !n.eq_ignore_ascii_case(key) {
            for v in values {
                out.append(name.clone(), v.clone());
            }
        }
    }
    // Names and values the client would refuse are not written (it panics
    // on some through `From`, so parse them).
    if let (Ok(name), Ok(value)) = (HeaderName::from_str(key), HeaderValue::from_str(value)) {
        out.insert(name, value);
    }
    *map = out;
}

// Borrowed, mutably borrowed or owned: one implementation each.
impl<H: std::borrow::Borrow<HeaderMap>> Extractor for NatsHeaders<H> {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        nats_values(self.0.borrow(), key, f);
    }
}

impl<H: std::borrow::BorrowMut<HeaderMap>> Injector for NatsHeaders<H> {
    fn replace(&mut self, key: &str, value: &str) {
        nats_replace(self.0.borrow_mut(), key, value);
    }
}

/// Stamps the current scope's tag (if any) on `headers`, and returns it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use graymatch_messaging::nats;
/// let tag = graymatch::Tag::new("stable").unwrap();
/// let mut headers = async_nats::HeaderMap::new();
/// let stamped = graymatch_tower::scope::scope(tag, async { nats::stamp(&mut headers) }).await;
/// assert_eq!(stamped, Some(tag));
/// assert_eq!(headers.get("x-gray").map(|v| v.as_str()), Some("stable"));
/// assert_eq!(nats::stamp(&mut async_nats::HeaderMap::new()), None);
/// # }
/// ```
pub fn stamp(headers: &mut HeaderMap) -> Option<Tag> {
    let tag = graymatch_tower::scope::current()?;
    tag.inject(&mut NatsHeaders(headers));
    Some(tag)
}

/// The subject a tag's messages go to: `orders.gray` for `orders` and
/// `gray`; `orders` without a tag.
///
/// ```
/// let tag = graymatch::Tag::new("gray").unwrap();
/// assert_eq!(graymatch_messaging::nats::lane_subject("orders", Some(tag)), "orders.gray");
/// assert_eq!(graymatch_messaging::nats::lane_subject("orders", None), "orders");
/// ```
pub fn lane_subject(subject: &str, tag: Option<Tag>) -> String {
    match tag {
        Some(tag) => format!("{subject}.{}", tag.variant()),
        None => subject.to_owned(),
    }
}

/// The subject lane consumers beat on.
fn heartbeat_subject(group: &str) -> String {
    format!("_GRAYMATCH.lanes.{group}")
}

/// Whether `subject` can be published to: non-empty tokens, no wildcards,
/// no whitespace.
fn is_valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.bytes().any(|b| b.is_ascii_whitespace())
        })
}

/// Creates the JetStream stream for `subject` if it is missing: subjects
/// `subject` (untagged) and `subject.>` (the lanes), limits retention.
///
/// # Errors
///
/// When the subject is invalid or JetStream refuses.
pub async fn ensure_stream(
    context: &jetstream::Context,
    name: &str,
    subject: &str,
) -> Result<(), Error> {
    if !is_valid_subject(subject) {
        return Err(Error::config(
            format!("nats: stream {name}"),
            format!("invalid subject {subject:?}"),
        ));
    }
    context
        .get_or_create_stream(jetstream::stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned(), format!("{subject}.>")],
            ..Default::default()
        })
        .await
        .map_err(|e| Error::broker(format!("nats: create stream {name}"), e))?;
    Ok(())
}

#[derive(Clone, Debug)]
enum Target {
    Core(Client),
    JetStream(jetstream::Context),
}

/// Publishes with the current scope's tag: to `subject.<variant>` with the
/// tag in the headers inside a scope, to `subject` untagged outside one.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = async_nats::connect("127.0.0.1:4222").await?;
/// let publisher = graymatch_messaging::nats::Publisher::jetstream(
///     async_nats::jetstream::new(client), "orders");
/// let tag = graymatch_tower::scope::scope(graymatch::Tag::new("gray")?, publisher.publish("42".into())).await?;
/// assert_eq!(tag.map(|t| t.variant()), Some("gray"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Publisher {
    target: Target,
    subject: String,
}

impl Publisher {
    /// Publishes on core NATS.
    pub fn core(client: Client, subject: impl Into<String>) -> Self {
        Publisher {
            target: Target::Core(client),
            subject: subject.into(),
        }
    }

    /// Publishes to JetStream and waits for the stream's acknowledgement.
    pub fn jetstream(context: jetstream::Context, subject: impl Into<String>) -> Self {
        Publisher {
            target: Target::JetStream(context),
            subject: subject.into(),
        }
    }

    /// Publishes `payload`; returns the tag it was stamped with.
    ///
    /// # Errors
    ///
    /// When the subject is invalid or the publish fails.
    pub async fn publish(&self, payload: Bytes) -> Result<Option<Tag>, Error> {
        self.publish_with_headers(HeaderMap::new(), payload).await
    }

    /// Publishes `payload` with `headers` and the current tag.
    ///
    /// # Errors
    ///
    /// When the subject is invalid or the publish fails.
    pub async fn publish_with_headers(
        &self,
        mut headers: HeaderMap,
        payload: Bytes,
    ) -> Result<Option<Tag>, Error> {
        if !is_valid_subject(&self.subject) {
            return Err(Error::config(
                "nats: publish",
                format!("invalid subject {:?}", self.subject),
            ));
        }
        let tag = stamp(&mut headers);
        let subject = lane_subject(&self.subject, tag);
        let place = || format!("nats: publish {subject}");
        match &self.target {
            Target::Core(client) => client
                .publish_with_headers(subject.clone(), headers, payload)
                .await
                .map_err(|e| Error::broker(place(), e))?,
            Target::JetStream(js) => {
                js.publish_with_headers(subject.clone(), headers, payload)
                    .await
                    .map_err(|e| Error::broker(place(), e))?
                    .await
                    .map_err(|e| Error::broker(place(), e))?;
            }
        }
        Ok(tag)
    }
}

#[derive(Clone, Debug)]
enum Mode {
    Core,
    JetStream {
        stream: String,
        ack_wait: Duration,
        max_deliver: i64,
    },
}

/// A lane-following consumer of one subject: core NATS or JetStream. See
/// the [module docs](self) for the subjects, liveness, and what happens
/// around a lane's start and stop.
#[derive(Clone, Debug)]
pub struct Consumer {
    client: Client,
    subject: String,
    lane: Lane,
    mode: Mode,
    heartbeat: Duration,
    timeout: Duration,
    probe_wait: Duration,
    handover: Duration,
    batch: usize,
    pull_wait: Duration,
}

/// How long a base consumer waits for answers to its probe.
const PROBE_WAIT: Duration = Duration::from_millis(250);

impl Consumer {
    fn new(client: Client, subject: impl Into<String>, lane: Lane, mode: Mode) -> Self {
        Consumer {
            client,
            subject: subject.into(),
            lane,
            mode,
            heartbeat: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
            probe_wait: PROBE_WAIT,
            handover: Duration::from_millis(200),
            batch: 64,
            pull_wait: Duration::from_millis(500),
        }
    }

    /// A consumer on core NATS (at most once).
    pub fn core(client: Client, subject: impl Into<String>, lane: Lane) -> Self {
        Consumer::new(client, subject, lane, Mode::Core)
    }

    /// A consumer of JetStream stream `stream` (create it with
    /// [`ensure_stream`]), at least once. Heartbeats go over `client`'s
    /// core NATS.
    pub fn jetstream(
        client: Client,
        stream: impl Into<String>,
        subject: impl Into<String>,
        lane: Lane,
    ) -> Self {
        Consumer::new(
            client,
            subject,
            lane,
            Mode::JetStream {
                stream: stream.into(),
                ack_wait: Duration::from_secs(30),
                max_deliver: 10,
            },
        )
    }

    /// How often a lane consumer beats (1 s).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// How long a base consumer counts a lane live after its last beat
    /// (3 s): the longest a crashed lane's messages wait (JetStream) or are
    /// lost (core NATS) before the base takes them.
    pub fn liveness_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// JetStream: how long a message handed out waits for its
    /// acknowledgement before it is redelivered (30 s), and how many times
    /// it is delivered at most (10). Set the same on every instance of a
    /// group: the first to create a durable consumer sets its config.
    pub fn ack_wait(mut self, wait: Duration, max_deliver: i64) -> Self {
        if let Mode::JetStream {
            ack_wait,
            max_deliver: m,
            ..
        } = &mut self.mode
        {
            *ack_wait = wait;
            *m = max_deliver;
        }
        self
    }

    /// How many messages one JetStream pull takes (64), and how long it
    /// waits for them (500 ms).
    pub fn pull(mut self, batch: usize, wait: Duration) -> Self {
        self.batch = batch.clamp(1, 10_000);
        self.pull_wait = wait.max(Duration::from_millis(10));
        self
    }

    /// Starts consuming: each message's handler runs inside the message's
    /// tag scope, one message at a time.
    ///
    /// # Errors
    ///
    /// When the subject is invalid or a subscription, stream or durable
    /// consumer cannot be set up.
    pub async fn start<F, Fut, E>(self, handler: F) -> Result<Running, Error>
    where
        F: Fn(Incoming<async_nats::Message>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        if !is_valid_subject(&self.subject) {
            return Err(Error::config(
                format!(
                    "nats: lane {} of group {}",
                    self.lane.variant(),
                    self.lane.group()
                ),
                format!("invalid subject {:?}", self.subject),
            ));
        }
        let stats = Arc::new(Stats::default());
        let lane = self.lane.clone();
        let client = self.client.clone();
        let instance = fastrand::u64(..);
        let beats = self
            .client
            .subscribe(heartbeat_subject(lane.group()))
            .await
            .map_err(|e| {
                Error::broker(
                    format!("nats: subscribe {}", heartbeat_subject(lane.group())),
                    e,
                )
            })?;
        let running = match self.mode.clone() {
            Mode::Core if lane.is_base() => {
                let liveness = self.probe(beats).await?;
                let place = |s: &str| format!("nats: subscribe {s}");
                let plain = self
                    .client
                    .queue_subscribe(self.subject.clone(), lane.group().to_owned())
                    .await
                    .map_err(|e| Error::broker(place(&self.subject), e))?;
                let lanes_subject = format!("{}.>", self.subject);
                let lanes = self
                    .client
                    .queue_subscribe(lanes_subject.clone(), lane.group().to_owned())
                    .await
                    .map_err(|e| Error::broker(place(&lanes_subject), e))?;
                let st = stats.clone();
                Ok(Running::spawn(lane, stats, move |stop| {
                    self.core_base(plain, lanes, liveness, st, handler, stop)
                }))
            }
            Mode::Core => {
                let subject = format!("{}.{}", self.subject, lane.variant());
                let sub = self
                    .client
                    .queue_subscribe(
                        subject.clone(),
                        durable_name(lane.group(), Some(lane.variant())),
                    )
                    .await
                    .map_err(|e| Error::broker(format!("nats: subscribe {subject}"), e))?;
                let st = stats.clone();
                let beat = self.beat(instance, "up").await;
                beat?;
                Ok(Running::spawn(lane, stats, move |stop| {
                    self.core_lane(sub, beats, instance, st, handler, stop)
                }))
            }
            Mode::JetStream { .. } if lane.is_base() => {
                let durables = self.durables().await?;
                let liveness = self.probe(beats).await?;
                let st = stats.clone();
                Ok(Running::spawn(lane, stats, move |stop| {
                    self.js_base(durables, liveness, st, handler, stop)
                }))
            }
            Mode::JetStream { .. } => {
                let durables = self.durables().await?;
                self.beat(instance, "up").await?;
                let st = stats.clone();
                let client = self.client.clone();
                let running = Running::spawn(lane, stats, move |stop| {
                    self.js_lane(durables, beats, instance, st, handler, stop)
                });
                return flushed(&client, running).await;
            }
        };
        // The server has every subscription once the client has flushed.
        flushed(&client, running?).await
    }

    async fn beat(&self, instance: u64, kind: &str) -> Result<(), Error> {
        let subject = heartbeat_subject(self.lane.group());
        let payload = format!("{kind} {} {instance:016x}", self.lane.variant());
        self.client
            .publish(subject.clone(), payload.into())
            .await
            .map_err(|e| Error::broker(format!("nats: publish {subject}"), e))?;
        // A beat that waits in the client's buffer tells nobody anything.
        self.client
            .flush()
            .await
            .map_err(|e| Error::broker(format!("nats: flush {subject}"), e))
    }

    /// Probes the lanes and listens for their answers; then keeps listening
    /// in a task that ends with the returned guard.
    async fn probe(
        &self,
        mut beats: async_nats::Subscriber,
    ) -> Result<(Arc<Liveness>, AbortOnDrop), Error> {
        let liveness = Arc::new(Liveness::new(self.lane.gray_variants(), self.timeout));
        let subject = heartbeat_subject(self.lane.group());
        self.client
            .publish(subject.clone(), "probe".into())
            .await
            .map_err(|e| Error::broker(format!("nats: publish {subject}"), e))?;
        let _ = self.client.flush().await;
        let deadline = Instant::now() + self.probe_wait;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                beat = beats.next() => match beat {
                    Some(beat) => apply_beat(&liveness, &beat.payload),
                    None => break,
                },
            }
        }
        let live = liveness.clone();
        let task = tokio::spawn(async move {
            while let Some(beat) = beats.next().await {
                apply_beat(&live, &beat.payload);
            }
        });
        Ok((liveness, AbortOnDrop(task)))
    }

    /// The durable consumers: this lane's, and for a base every lane's too.
    async fn durables(&self) -> Result<Durables, Error> {
        let Mode::JetStream {
            stream,
            ack_wait,
            max_deliver,
        } = &self.mode
        else {
            return Err(Error::config("nats", "not a JetStream consumer"));
        };
        let js = jetstream::new(self.client.clone());
        let stream = js
            .get_stream(stream)
            .await
            .map_err(|e| Error::broker(format!("nats: stream {stream}"), e))?;
        let config = |variant: Option<&str>| pull::Config {
            durable_name: Some(durable_name(self.lane.group(), variant)),
            filter_subject: variant
                .map(|v| format!("{}.{v}", self.subject))
                .unwrap_or_default(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: *ack_wait,
            max_deliver: *max_deliver,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let mut names = std::collections::HashSet::new();
        let mut wanted: Vec<Option<&'static str>> = Vec::new();
        if self.lane.is_base() {
            wanted.push(None);
            wanted.extend(self.lane.gray_variants().map(Some));
        } else {
            wanted.push(Some(self.lane.variant()));
        }
        let mut own = None;
        let mut lanes = Vec::new();
        for variant in wanted {
            let cfg = config(variant);
            let name = cfg.durable_name.clone().unwrap_or_default();
            if !names.insert(name.clone()) {
                return Err(Error::config(
                    format!("nats: group {}", self.lane.group()),
                    format!(
                        "two lanes share the durable name {name} (a `.` in a variant becomes `_`)"
                    ),
                ));
            }
            let consumer: PullConsumer = stream
                .get_or_create_consumer(&name, cfg)
                .await
                .map_err(|e| Error::broker(format!("nats: durable consumer {name}"), e))?;
            match variant {
                Some(v) if self.lane.is_base() => lanes.push((v, consumer)),
                _ => own = Some(consumer),
            }
        }
        let own = own.ok_or_else(|| Error::config("nats", "no durable consumer"))?;
        Ok(Durables { own, lanes })
    }

    async fn core_base<F, Fut, E>(
        self,
        mut plain: async_nats::Subscriber,
        mut lanes: async_nats::Subscriber,
        (liveness, _listener): (Arc<Liveness>, AbortOnDrop),
        stats: Arc<Stats>,
        handler: F,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Error>
    where
        F: Fn(Incoming<async_nats::Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        loop {
            let message = tokio::select! {
                () = run::stopped(&mut stop) => break,
                m = plain.next() => m,
                m = lanes.next() => m,
            };
            let Some(message) = message else {
                return Err(Error::config(
                    "nats",
                    format!("subscription to {} ended", self.subject),
                ));
            };
            self.core_message(&liveness, &stats, &handler, message)
                .await;
        }
        // Stop receiving, then handle what was already received.
        let _ = plain.unsubscribe().await;
        let _ = lanes.unsubscribe().await;
        let deadline = Instant::now() + self.handover;
        loop {
            let message = tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                m = plain.next() => m,
                m = lanes.next() => m,
            };
            match message {
                Some(m) => self.core_message(&liveness, &stats, &handler, m).await,
                None => break,
            }
        }
        Ok(())
    }

    async fn core_message<F, Fut, E>(
        &self,
        liveness: &Liveness,
        stats: &Stats,
        handler: &F,
        message: async_nats::Message,
    ) where
        F: Fn(Incoming<async_nats::Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let empty = HeaderMap::new();
        let headers = message.headers.as_ref().unwrap_or(&empty);
        let suffix = message
            .subject
            .as_str()
            .strip_prefix(self.subject.as_str())
            .and_then(|s| s.strip_prefix('.'));
        let now = Instant::now().into_std();
        let routed = self.lane.route(&NatsHeaders(headers), true, |v| {
            suffix == Some(v) && liveness.is_live(v, now)
        });
        self.dispatch(stats, handler, message, routed).await;
    }

    async fn dispatch<F, Fut, E>(
        &self,
        stats: &Stats,
        handler: &F,
        message: async_nats::Message,
        routed: crate::lane::Routed,
    ) -> bool
    where
        F: Fn(Incoming<async_nats::Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        match routed.action {
            Action::Skip => {
                stats.count(
                    self.lane.group(),
                    self.lane.variant(),
                    routed.decision.variant(),
                    Outcome::Routed(Action::Skip),
                );
                true
            }
            Action::Process | Action::Reroute => {
                run::handle(&self.lane, stats, handler, message, routed).await
            }
        }
    }

    async fn core_lane<F, Fut, E>(
        self,
        mut sub: async_nats::Subscriber,
        beats: async_nats::Subscriber,
        instance: u64,
        stats: Arc<Stats>,
        handler: F,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Error>
    where
        F: Fn(Incoming<async_nats::Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let heart = self.heart(beats, instance);
        loop {
            let message = tokio::select! {
                () = run::stopped(&mut stop) => break,
                m = sub.next() => m,
            };
            let Some(message) = message else {
                return Err(Error::config(
                    "nats",
                    format!(
                        "subscription to {}.{} ended",
                        self.subject,
                        self.lane.variant()
                    ),
                ));
            };
            let empty = HeaderMap::new();
            let routed = self.lane.route(
                &NatsHeaders(message.headers.as_ref().unwrap_or(&empty)),
                true,
                |_| false,
            );
            self.dispatch(&stats, &handler, message, routed).await;
        }
        // Goodbye first, then a short handover: the base takes the lane's
        // messages from the goodbye on, and this instance handles what
        // arrives until it unsubscribes (duplicates, not losses).
        drop(heart);
        let _ = self.beat(instance, "down").await;
        let deadline = Instant::now() + self.handover;
        let mut unsubscribed = false;
        loop {
            let message = tokio::select! {
                () = tokio::time::sleep_until(deadline), if !unsubscribed => {
                    let _ = sub.unsubscribe().await;
                    unsubscribed = true;
                    continue;
                }
                () = tokio::time::sleep_until(deadline + self.handover), if unsubscribed => break,
                m = sub.next() => m,
            };
            let Some(message) = message else { break };
            let empty = HeaderMap::new();
            let routed = self.lane.route(
                &NatsHeaders(message.headers.as_ref().unwrap_or(&empty)),
                true,
                |_| false,
            );
            self.dispatch(&stats, &handler, message, routed).await;
        }
        Ok(())
    }

    /// The heartbeat task of a lane consumer: beats every interval and
    /// answers probes until the guard drops.
    fn heart(&self, mut beats: async_nats::Subscriber, instance: u64) -> AbortOnDrop {
        let this = self.clone();
        AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    beat = beats.next() => match beat {
                        Some(b) if &b.payload[..] == b"probe" => {}
                        Some(_) => continue,
                        None => return,
                    },
                }
                if let Err(e) = this.beat(instance, "up").await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }))
    }

    async fn js_base<F, Fut, E>(
        self,
        durables: Durables,
        (liveness, _listener): (Arc<Liveness>, AbortOnDrop),
        stats: Arc<Stats>,
        handler: F,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Error>
    where
        F: Fn(Incoming<async_nats::Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        while !*stop.borrow() {
            // The lanes that are down: take their messages first.
            for (variant, durable) in &durables.lanes {
                if liveness.is_live(variant, Instant::now().into_std()) {
                    continue;
                }
                let batch = durable.fetch().max_messages(self.batch).messages().await;
                let Ok(mut batch) = batch else { continue };
                while let Some(Ok(message)) = batch.next().await {
                    let (message, acker) = message.split();
                    let empty = HeaderMap::new();
                    let mut routed = self.lane.route(
                        &NatsHeaders(message.headers.as_ref().unwrap_or(&empty)),
                        true,
                        |_| false,
                    );
                    // Only the lane's own variant: anything else on its
                    // subject was the base's from its own durable.
                    if routed.decision.variant() != *variant {
                        routed.action = Action::Skip;
                    }
                    let ok = self.dispatch(&stats, &handler, message, routed).await;
                    ack(&acker, ok).await;
                }
            }
            // Its own durable, waiting up to the pull wait.
            let Some(batch) = self.pull_batch(&durables.own, &mut stop).await else {
                break;
            };
            let Some(mut batch) = batch else { continue };
            while let Some(message) = batch.next().await {
                let Ok(message) = message else { continue };
                let (message, acker) = message.split();
                let empty = HeaderMap::new();
                let suffix = message
                    .subject
                    .as_str()
                    .strip_prefix(self.subject.as_str())
                    .and_then(|s| s.strip_prefix('.'))
                    .map(str::to_owned);
                // Every declared lane has a durable that holds its subject's
                // messages: those are taken there (by the lane, or by this
                // base while the lane is down).
                let routed = self.lane.route(
                    &NatsHeaders(message.headers.as_ref().unwrap_or(&empty)),
                    true,
                    |v| suffix.as_deref() == Some(v),
                );
                let ok = self.dispatch(&stats, &handler, message, routed).await;
                ack(&acker, ok).await;
            }
        }
        Ok(())
    }

    /// A batch from `own`, waiting up to the pull wait: `None` once
    /// stopped, `Some(None)` after a failed pull (logged and waited out).
    async fn pull_batch(
        &self,
        own: &PullConsumer,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Option<jetstream::consumer::pull::Batch>> {
        let batch = tokio::select! {
            () = run::stopped(stop) => return None,
            b = own.batch().max_messages(self.batch).expires(self.pull_wait).messages() => b,
        };
        match batch {
            Ok(b) => Some(Some(b)),
            Err(e) => {
                tracing::warn!(error = %e, "jetstream pull failed");
                tokio::time::sleep(self.pull_wait).await;
                Some(None)
            }
        }
    }

    async fn js_lane<F, Fut, E>(
        self,
        durables: Durables,
        beats: async_nats::Subscriber,
        instance: u64,
        stats: Arc<Stats>,
        handler: F,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Error>
    where
        F: Fn(Incoming<async_nats::Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let heart = self.heart(beats, instance);
        while !*stop.borrow() {
            let Some(batch) = self.pull_batch(&durables.own, &mut stop).await else {
                break;
            };
            let Some(mut batch) = batch else { continue };
            while let Some(message) = batch.next().await {
                let Ok(message) = message else { continue };
                let (message, acker) = message.split();
                let empty = HeaderMap::new();
                let routed = self.lane.route(
                    &NatsHeaders(message.headers.as_ref().unwrap_or(&empty)),
                    true,
                    |_| false,
                );
                let ok = self.dispatch(&stats, &handler, message, routed).await;
                ack(&acker, ok).await;
            }
        }
        drop(heart);
        let _ = self.beat(instance, "down").await;
        Ok(())
    }
}

async fn flushed(client: &Client, running: Running) -> Result<Running, Error> {
    client
        .flush()
        .await
        .map_err(|e| Error::broker("nats: flush", e))?;
    Ok(running)
}

/// Acknowledges a handled or skipped message; asks for redelivery of one
/// whose handler failed.
async fn ack(acker: &jetstream::message::Acker, ok: bool) {
    let result = if ok {
        acker.ack().await
    } else {
        acker.ack_with(AckKind::Nak(None)).await
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "jetstream acknowledgement failed");
    }
}

struct Durables {
    own: PullConsumer,
    lanes: Vec<(&'static str, PullConsumer)>,
}

/// The durable (and core queue group) name of a lane: `group` for the
/// base, `group_variant` for a lane (`.` becomes `_`).
fn durable_name(group: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{group}_{}", v.replace('.', "_")),
        None => group.to_owned(),
    }
}

/// Applies a heartbeat payload: `up <variant> <instance>`, `down ...`.
/// Anything else (probes, garbage) is ignored.
fn apply_beat(liveness: &Liveness, payload: &[u8]) {
    let Ok(text) = std::str::from_utf8(payload) else {
        return;
    };
    let mut parts = text.split(' ');
    let (Some(kind), Some(variant), Some(instance), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Ok(instance) = u64::from_str_radix(instance, 16) else {
        return;
    };
    match kind {
        "up" => liveness.beat(variant, instance, Instant::now().into_std()),
        "down" => liveness.leave(variant, instance),
        _ => {}
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_payload_cases() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("up", b"up gray 00000000000000ff", true),
            ("down after up", b"down gray 00000000000000ff", false),
            ("unknown variant", b"up blue 0000000000000001", false),
            ("probe", b"probe", false),
            ("not hex", b"up gray zz", false),
            ("extra field", b"up gray 01 x", false),
            ("not UTF-8", b"up gr\xffay 01", false),
            ("empty", b"", false),
        ];
        for (name, payload, live) in cases {
            let liveness = Liveness::new(["gray"], Duration::from_secs(5));
            if *name == "down after up" {
                apply_beat(&liveness, b"up gray 00000000000000ff");
            }
            apply_beat(&liveness, payload);
            assert_eq!(
                liveness.is_live("gray", Instant::now().into_std()),
                *live,
                "case {name}"
            );
        }
    }

    #[test]
    fn subject_cases() {
        let cases: &[(&str, bool)] = &[
            ("orders", true),
            ("orders.eu", true),
            ("", false),
            ("orders.", false),
            (".orders", false),
            ("orders.*", false),
            ("orders.>", false),
            ("or ders", false),
        ];
        for (subject, ok) in cases {
            assert_eq!(is_valid_subject(subject), *ok, "case {subject:?}");
        }
        assert_eq!(durable_name("w", Some("v1.2")), "w_v1_2");
        assert_eq!(durable_name("w", None), "w");
    }

    #[test]
    fn nats_headers_carrier_cases() {
        let mut h = HeaderMap::new();
        h.insert("X-Gray", "stable");
        h.append("baggage", "a=1");
        h.append("Baggage", "b=2");
        h.insert("other", "kept");
        graymatch::Tag::new("gray")
            .unwrap()
            .inject(&mut NatsHeaders(&mut h));
        assert_eq!(h.get("x-gray").map(HeaderValue::as_str), Some("gray"));
        assert!(h.get("X-Gray").is_none());
        let b = h
            .get("baggage")
            .map(HeaderValue::as_str)
            .unwrap_or_default();
        // The two baggage values are joined in the map's order.
        assert!(b == "a=1,b=2,gray=gray" || b == "b=2,a=1,gray=gray", "{b}");
        assert_eq!(h.get("other").map(HeaderValue::as_str), Some("kept"));
        // A value with a newline is refused by the client: not written, no panic.
        nats_replace(&mut h, "x-bad", "a\r\nb");
        assert!(h.get("x-bad").is_none());
    }
}
