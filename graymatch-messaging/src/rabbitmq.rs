//! RabbitMQ with lapin: the tag in AMQP headers, lanes as queues that the
//! broker fills through a headers exchange.
//!
//! # Topology
//!
//! Producers publish to an exchange of any type (`orders`) with the tag in
//! the message headers ([`Publisher`]). Each consumer group declares
//! ([`Consumer::declare`], also run by [`Consumer::start`]):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `<group>.lanes` | headers exchange, `alternate-exchange: <group>.base`, bound to `orders` with the group's binding key (`#`) | sorts the group's messages by tag |
//! | `<group>.base` | fanout exchange | the base lane's way in |
//! | `<group>` | queue, bound to `<group>.base` | the base lane |
//! | `<group>_<variant>` | queue, bound to `<group>.lanes` with `x-match: all-with-x, x-gray: <variant>`; `x-message-ttl: <lane timeout>`, `x-dead-letter-exchange: <group>.base` | a gray lane |
//!
//! **`all-with-x`**: a headers exchange ignores headers that start with
//! `x-` under `x-match: all`/`any`; the tag header is `x-gray`, so the lane
//! bindings use `all-with-x` (RabbitMQ 3.10 and later). Write the same in
//! bindings of your own.
//!
//! The broker does all the filtering: a message tagged `gray` goes to
//! `<group>_gray`; an untagged one, one of the default variant, and one of
//! a variant with no lane queue match no binding, so the alternate exchange
//! sends them to the base. A message a lane does not take within the lane
//! timeout (10 s by default) is dead-lettered to the base.
//!
//! # Liveness, and what happens around a lane's start and stop
//!
//! The broker is the liveness check: a lane's queue hands its messages to
//! the lane's consumers, and a message that waits there longer than the
//! lane timeout (no consumer, or one too slow) moves to the base. So:
//!
//! - **At least once, none lost.** While a lane has no consumer its
//!   messages reach the base after at most the lane timeout. A consumer
//!   that stops (gracefully or by crashing) returns what it held
//!   unacknowledged to its queue, where the next consumer of the lane takes
//!   it, or the base after the timeout (counted from when the message was
//!   first queued). A message is handled twice only when a consumer dies
//!   after handling it and before its acknowledgement reaches the broker.
//! - A lane that starts takes its queue's messages at once, those that
//!   waited for it included.
//! - The base never skips: what reaches its queue is the default variant's
//!   (processed) or another variant's that no lane took (rerouted, handled
//!   in that variant's scope).
//! - A lane's queue outlives its consumers (its binding keeps routing to
//!   it, each message then waiting the lane timeout). To retire a lane,
//!   delete its queue (`rabbitmqctl delete_queue <group>_<variant>`) after
//!   its last consumer stops; what is in it then is lost.
//!
//! # Trust
//!
//! The rule set's `incoming: trust` decides whether tags are followed.
//! With [`Consumer::trusted_users`], a tag is followed only on messages
//! whose `user_id` property names one of those users: RabbitMQ checks that
//! `user_id` is the publishing connection's user (unless that user has the
//! `impersonator` tag), so it cannot be forged. The broker routes by the
//! header alone, so a forged tag reaches a lane's queue: the lane consumer
//! forwards such a message to the base (without its `user_id`) and counts
//! it skipped; the base handles it as the default variant's.
//!
//! ```no_run
//! use graymatch_messaging::{rabbitmq, Lane};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let conn = lapin::Connection::connect("amqp://127.0.0.1:5672/%2f", Default::default()).await?;
//! let rules = Arc::new(graymatch::RuleSet::from_yaml(
//!     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}")?.compile()?);
//!
//! let publisher = rabbitmq::Publisher::new(conn.create_channel().await?, "orders");
//! publisher.declare(lapin::ExchangeKind::Topic).await?;
//!
//! let gray = rabbitmq::Consumer::new(
//!     conn.create_channel().await?, "orders", Lane::new(rules, "workers", "gray")?)
//!     .start(|msg: graymatch_messaging::Incoming<rabbitmq::Message>| async move {
//!         println!("{} handled {:?}", msg.variant(), msg.message().data);
//!         Ok::<_, std::convert::Infallible>(())
//!     })
//!     .await?;
//!
//! let tag = graymatch::Tag::new("gray")?;
//! graymatch_tower::scope::scope(tag, publisher.publish("order.created", b"42", Default::default())).await?;
//! gray.stop().await?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use graymatch::Tag;
use graymatch::carrier::{Extractor, Injector};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ExchangeBindOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use tokio::sync::watch;

use crate::error::Error;
use crate::lane::{Action, Lane};
use crate::run::{self, Incoming, Running};
use crate::stats::{Outcome, Stats};

/// AMQP message headers (a `FieldTable`) as a tag carrier. Long strings,
/// short strings and byte arrays are read as bytes; other values are not
/// tag values. Keys compare without ASCII case; the tag is written as long
/// strings.
///
/// ```
/// use graymatch_messaging::rabbitmq::AmqpHeaders;
/// use lapin::types::FieldTable;
///
/// let mut headers = FieldTable::default();
/// graymatch::Tag::new("gray")?.inject(&mut AmqpHeaders(&mut headers));
/// let rules = graymatch::RuleSet::from_yaml(
///     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}").unwrap().compile().unwrap();
/// assert_eq!(rules.extract(&AmqpHeaders(&headers)).map(|t| t.variant()), Some("gray"));
/// # Ok::<(), graymatch::InvalidTag>(())
/// ```
#[derive(Debug)]
pub struct AmqpHeaders<T>(pub T);

fn amqp_values(table: &FieldTable, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
    for (k, v) in table {
        if !k.as_str().eq_ignore_ascii_case(key) {
            continue;
        }
        let bytes: &[u8] = match v {
            AMQPValue::LongString(s) => s.as_bytes(),
            AMQPValue::ShortString(s) => s.as_str().as_bytes(),
            AMQPValue::ByteArray(b) => b.as_slice(),
            _ => continue,
        };
        if f(bytes).is_break() {
            return;
        }
    }
}

fn amqp_replace(table: &mut FieldTable, key: &str, value: &str) {
    let Ok(name) = ShortString::try_new(key) else {
        return;
    };
    let mut map: BTreeMap<ShortString, AMQPValue> = table.inner().clone();
    map.retain(|k, _| !k.as_str().eq_ignore_ascii_case(key));
    map.insert(name, AMQPValue::LongString(LongString::from(value)));
    *table = FieldTable::from(map);
}

// Borrowed, mutably borrowed or owned: one implementation each.
impl<T: std::borrow::Borrow<FieldTable>> Extractor for AmqpHeaders<T> {
    fn values(&self, key: &str, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) {
        amqp_values(self.0.borrow(), key, f);
    }
}

impl<T: std::borrow::BorrowMut<FieldTable>> Injector for AmqpHeaders<T> {
    fn replace(&mut self, key: &str, value: &str) {
        amqp_replace(self.0.borrow_mut(), key, value);
    }
}

/// `properties` with the current scope's tag (if any) in its headers, and
/// the tag.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use graymatch_messaging::rabbitmq::{stamp, AmqpHeaders};
/// let tag = graymatch::Tag::new("stable").unwrap();
/// let (props, stamped) = graymatch_tower::scope::scope(tag, async { stamp(Default::default()) }).await;
/// assert_eq!(stamped, Some(tag));
/// assert!(props.headers().as_ref().unwrap().contains_key("x-gray"));
/// assert_eq!(stamp(Default::default()).1, None);
/// # }
/// ```
pub fn stamp(properties: BasicProperties) -> (BasicProperties, Option<Tag>) {
    let Some(tag) = graymatch_tower::scope::current() else {
        return (properties, None);
    };
    let mut headers = properties.headers().clone().unwrap_or_default();
    tag.inject(&mut AmqpHeaders(&mut headers));
    (properties.with_headers(headers), Some(tag))
}

/// Publishes to an exchange with the current scope's tag in the headers.
#[derive(Clone, Debug)]
pub struct Publisher {
    channel: Channel,
    exchange: String,
}

impl Publisher {
    /// Publishes to `exchange` on `channel`.
    pub fn new(channel: Channel, exchange: impl Into<String>) -> Self {
        Publisher {
            channel,
            exchange: exchange.into(),
        }
    }

    /// Declares the exchange (durable) with `kind`.
    ///
    /// # Errors
    ///
    /// When the broker refuses (an exchange of that name with another kind
    /// exists, for example).
    pub async fn declare(&self, kind: ExchangeKind) -> Result<(), Error> {
        self.channel
            .exchange_declare(
                self.exchange.as_str().into(),
                kind,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| Error::broker(format!("rabbitmq: declare exchange {}", self.exchange), e))
    }

    /// Publishes `payload` with `routing_key` and `properties`, the current
    /// tag added to its headers; waits for the broker's confirmation when
    /// the channel is in confirm mode. Returns the tag.
    ///
    /// # Errors
    ///
    /// When the publish fails or the broker refuses it.
    pub async fn publish(
        &self,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<Option<Tag>, Error> {
        let (properties, tag) = stamp(properties);
        let place = || format!("rabbitmq: publish to {}", self.exchange);
        let key =
            ShortString::try_new(routing_key).map_err(|e| Error::broker(place(), e.to_string()))?;
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                key,
                BasicPublishOptions::default(),
                payload,
                properties,
            )
            .await
            .map_err(|e| Error::broker(place(), e))?
            .await
            .map_err(|e| Error::broker(place(), e))?;
        Ok(tag)
    }
}

/// A delivered message, as the handler gets it (the consumer keeps the
/// acknowledgement).
#[derive(Clone, Debug)]
pub struct Message {
    /// The exchange it was published to (or dead-lettered through).
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    /// Its properties and headers.
    pub properties: BasicProperties,
    /// Its body.
    pub data: Vec<u8>,
}

/// A lane-following consumer of one group on RabbitMQ. See the [module
/// docs](self) for the topology and what happens around a lane's start and
/// stop.
#[derive(Clone, Debug)]
pub struct Consumer {
    channel: Channel,
    exchange: String,
    binding_key: String,
    lane: Lane,
    lane_timeout: Duration,
    prefetch: u16,
    trusted_users: Option<Arc<HashSet<String>>>,
}

impl Consumer {
    /// A consumer of `lane` for messages published to `exchange`.
    pub fn new(channel: Channel, exchange: impl Into<String>, lane: Lane) -> Self {
        Consumer {
            channel,
            exchange: exchange.into(),
            binding_key: "#".to_owned(),
            lane,
            lane_timeout: Duration::from_secs(10),
            prefetch: 32,
            trusted_users: None,
        }
    }

    /// The key that binds the group's lanes exchange to the producers'
    /// exchange (`#`: every message of a topic exchange; ignored by fanout).
    pub fn binding_key(mut self, key: impl Into<String>) -> Self {
        self.binding_key = key.into();
        self
    }

    /// How long a message waits in a lane's queue before it moves to the
    /// base (10 s). It is part of the queue's declaration: every consumer
    /// of a lane must use the same (the broker refuses a different one).
    pub fn lane_timeout(mut self, timeout: Duration) -> Self {
        self.lane_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many unacknowledged messages the broker hands it at once (32).
    pub fn prefetch(mut self, count: u16) -> Self {
        self.prefetch = count.max(1);
        self
    }

    /// Follow tags only on messages whose broker-checked `user_id` is one
    /// of `users`; other messages are the default variant's.
    pub fn trusted_users<I, S>(mut self, users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_users = Some(Arc::new(users.into_iter().map(Into::into).collect()));
        self
    }

    fn base_exchange(&self) -> String {
        format!("{}.base", self.lane.group())
    }

    fn lanes_exchange(&self) -> String {
        format!("{}.lanes", self.lane.group())
    }

    /// The queue this consumer reads: `<group>` for the base,
    /// `<group>_<variant>` for a lane.
    pub fn queue(&self) -> String {
        if self.lane.is_base() {
            self.lane.group().to_owned()
        } else {
            format!("{}_{}", self.lane.group(), self.lane.variant())
        }
    }

    /// Declares the group's exchanges and this lane's queue and bindings
    /// (idempotent). The producers' exchange must exist.
    ///
    /// # Errors
    ///
    /// When the rule set carries no tag header (the broker can only route
    /// on a header), or the broker refuses a declaration.
    pub async fn declare(&self) -> Result<(), Error> {
        let header = self.lane.default_tag().header().ok_or_else(|| {
            Error::config(
                format!(
                    "rabbitmq: lane {} of group {}",
                    self.lane.variant(),
                    self.lane.group()
                ),
                "the rule set's propagation.header is off: lanes route on that header",
            )
        })?;
        let ch = &self.channel;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let (base_x, lanes_x) = (self.base_exchange(), self.lanes_exchange());
        let place =
            |what: String| move |e: lapin::Error| Error::broker(format!("rabbitmq: {what}"), e);
        ch.exchange_declare(
            base_x.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(place(format!("declare exchange {base_x}")))?;
        let mut args = FieldTable::default();
        args.insert("alternate-exchange".into(), long(&base_x));
        ch.exchange_declare(
            lanes_x.as_str().into(),
            ExchangeKind::Headers,
            durable,
            args,
        )
        .await
        .map_err(place(format!("declare exchange {lanes_x}")))?;
        let key = ShortString::try_new(self.binding_key.as_str())
            .map_err(|e| Error::config("rabbitmq: binding key", e.to_string()))?;
        ch.exchange_bind(
            lanes_x.as_str().into(),
            self.exchange.as_str().into(),
            key,
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(place(format!("bind {lanes_x} to {}", self.exchange)))?;
        let queue = self.queue();
        let (exchange, mut queue_args, mut bind_args) = if self.lane.is_base() {
            (base_x.clone(), FieldTable::default(), FieldTable::default())
        } else {
            let mut q = FieldTable::default();
            let ms = i64::try_from(self.lane_timeout.as_millis()).unwrap_or(i64::MAX);
            q.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms));
            q.insert("x-dead-letter-exchange".into(), long(&base_x));
            let mut b = FieldTable::default();
            b.insert("x-match".into(), long("all-with-x"));
            b.insert(
                ShortString::try_new(header)
                    .map_err(|e| Error::config("rabbitmq: header", e.to_string()))?,
                long(self.lane.variant()),
            );
            (lanes_x.clone(), q, b)
        };
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::durable(),
            std::mem::take(&mut queue_args),
        )
        .await
        .map_err(place(format!("declare queue {queue}")))?;
        ch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            std::mem::take(&mut bind_args),
        )
        .await
        .map_err(place(format!("bind queue {queue} to {exchange}")))?;
        Ok(())
    }

    /// Declares the topology and starts consuming: each message's handler
    /// runs inside the message's tag scope, one message at a time; a
    /// message is acknowledged after its handler succeeds. A failed one is
    /// requeued once, then rejected (dropped) when it fails again.
    ///
    /// # Errors
    ///
    /// When declaring or consuming fails.
    pub async fn start<F, Fut, E>(self, handler: F) -> Result<Running, Error>
    where
        F: Fn(Incoming<Message>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.declare().await?;
        self.channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| Error::broker("rabbitmq: basic.qos", e))?;
        let tag = format!("graymatch-{}-{:016x}", self.queue(), fastrand::u64(..));
        let consumer = self
            .channel
            .basic_consume(
                self.queue().as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| Error::broker(format!("rabbitmq: consume {}", self.queue()), e))?;
        let stats = Arc::new(Stats::default());
        let st = stats.clone();
        let lane = self.lane.clone();
        Ok(Running::spawn(lane, stats, move |stop| {
            self.run(consumer, tag, st, handler, stop)
        }))
    }

    async fn run<F, Fut, E>(
        self,
        mut consumer: lapin::Consumer,
        tag: String,
        stats: Arc<Stats>,
        handler: F,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Error>
    where
        F: Fn(Incoming<Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        loop {
            let delivery = tokio::select! {
                () = run::stopped(&mut stop) => break,
                d = consumer.next() => d,
            };
            match delivery {
                Some(Ok(delivery)) => self.delivery(&stats, &handler, delivery).await?,
                Some(Err(e)) => {
                    return Err(Error::broker(
                        format!("rabbitmq: consume {}", self.queue()),
                        e,
                    ));
                }
                None => {
                    return Err(Error::config(
                        format!("rabbitmq: consume {}", self.queue()),
                        "the consumer was cancelled",
                    ));
                }
            }
        }
        // Stop deliveries, then hand back what was delivered but not handled.
        let _ = self
            .channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Some(Ok(delivery))) = tokio::time::timeout_at(deadline, consumer.next()).await
        {
            let _ = delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await;
        }
        Ok(())
    }

    async fn delivery<F, Fut, E>(
        &self,
        stats: &Stats,
        handler: &F,
        delivery: lapin::message::Delivery,
    ) -> Result<(), Error>
    where
        F: Fn(Incoming<Message>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let empty = FieldTable::default();
        let headers = delivery.properties.headers().as_ref().unwrap_or(&empty);
        let trusted = self.trusted_users.as_ref().is_none_or(|users| {
            delivery
                .properties
                .user_id()
                .as_ref()
                .is_some_and(|u| users.contains(u.as_str()))
        });
        let routed = self.lane.route(&AmqpHeaders(headers), trusted, |_| false);
        let lapin::message::Delivery {
            exchange,
            routing_key,
            redelivered,
            properties,
            data,
            acker,
            ..
        } = delivery;
        if routed.action == Action::Skip {
            // A lane consumer got a message that is not its lane's (a forged
            // or untrusted tag): the base's, by the base's way in.
            let base = self.base_exchange();
            let forwarded = self
                .channel
                .basic_publish(
                    base.as_str().into(),
                    routing_key,
                    BasicPublishOptions::default(),
                    &data,
                    without_user_id(&properties),
                )
                .await
                .map_err(|e| Error::broker(format!("rabbitmq: forward to {base}"), e))?
                .await;
            if let Err(e) = forwarded {
                return Err(Error::broker(format!("rabbitmq: forward to {base}"), e));
            }
            stats.count(
                self.lane.group(),
                self.lane.variant(),
                routed.decision.variant(),
                Outcome::Routed(Action::Skip),
            );
            let _ = acker.ack(BasicAckOptions::default()).await;
            return Ok(());
        }
        let message = Message {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            redelivered,
            properties,
            data,
        };
        if run::handle(&self.lane, stats, handler, message, routed).await {
            if let Err(e) = acker.ack(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "rabbitmq acknowledgement failed");
            }
        } else {
            // Requeued once; a second failure drops it.
            let _ = acker
                .nack(BasicNackOptions {
                    requeue: !redelivered,
                    ..Default::default()
                })
                .await;
        }
        Ok(())
    }
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// `properties` without `user_id`: a forwarding consumer publishes as its
/// own user, and the broker refuses a `user_id` that is not.
fn without_user_id(p: &BasicProperties) -> BasicProperties {
    let mut out = BasicProperties::default();
    macro_rules! copy {
        ($($get:ident => $set:ident),* $(,)?) => {
            $(if let Some(v) = p.$get().clone() { out = out.$set(v); })*
        };
    }
    copy!(
        content_type => with_content_type,
        content_encoding => with_content_encoding,
        headers => with_headers,
        delivery_mode => with_delivery_mode,
        priority => with_priority,
        correlation_id => with_correlation_id,
        reply_to => with_reply_to,
        expiration => with_expiration,
        message_id => with_message_id,
        timestamp => with_timestamp,
        kind => with_type,
        app_id => with_app_id,
        cluster_id => with_cluster_id,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    #[test]
    fn amqp_value_cases() {
        let m = graymatch::RuleSet::from_yaml(
            "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}",
        )
        .unwrap()
        .compile()
        .unwrap();
        let cases: &[(&str, FieldTable, Option<&str>)] = &[
            (
                "long string",
                table(&[("x-gray", long("gray"))]),
                Some("gray"),
            ),
            (
                "short string",
                table(&[("x-gray", AMQPValue::ShortString("gray".into()))]),
                Some("gray"),
            ),
            (
                "byte array",
                table(&[("x-gray", AMQPValue::ByteArray(b"gray".to_vec().into()))]),
                Some("gray"),
            ),
            (
                "key in another case",
                table(&[("X-Gray", long("gray"))]),
                Some("gray"),
            ),
            (
                "number is no tag",
                table(&[("x-gray", AMQPValue::LongInt(1))]),
                None,
            ),
            (
                "not UTF-8",
                table(&[(
                    "x-gray",
                    AMQPValue::LongString(LongString::from(vec![0xff, 0xfe])),
                )]),
                None,
            ),
            (
                "baggage",
                table(&[("baggage", long("a=1,gray=gray"))]),
                Some("gray"),
            ),
            ("none", FieldTable::default(), None),
        ];
        for (name, t, want) in cases {
            assert_eq!(
                m.extract(&AmqpHeaders(t)).map(|t| t.variant()),
                *want,
                "case {name}"
            );
        }
    }

    #[test]
    fn inject_replaces_in_any_case() {
        let mut t = table(&[
            ("X-GRAY", long("stable")),
            ("Baggage", long("a=1")),
            ("n", AMQPValue::LongInt(3)),
        ]);
        Tag::new("gray").unwrap().inject(&mut AmqpHeaders(&mut t));
        let keys: Vec<&str> = t.inner().keys().map(ShortString::as_str).collect();
        assert_eq!(keys, ["baggage", "n", "x-gray"]);
        assert_eq!(t.inner()["baggage"], long("a=1,gray=gray"));
        assert_eq!(t.inner()["x-gray"], long("gray"));
    }

    #[test]
    fn forwarded_properties_lose_only_user_id() {
        let p = BasicProperties::default()
            .with_user_id("mallory".into())
            .with_app_id("shop".into())
            .with_headers(table(&[("x-gray", long("gray"))]))
            .with_delivery_mode(2);
        let q = without_user_id(&p);
        assert_eq!(q.user_id(), &None);
        assert_eq!(q.clone().with_user_id("mallory".into()), p);
    }
}
