//! Full-link gray through message queues: messages carry the gray tag, and
//! consumers follow lanes.
//!
//! A gray request that publishes a message should be consumed by the gray
//! version of the consumer, and that consumer's own calls should stay gray.
//! graymatch already keeps the decided variant in a task-local scope
//! ([`graymatch_tower::scope`]); this crate carries it across a broker:
//!
//! - **Producers** stamp the scope's tag on every message (header `x-gray`
//!   and `baggage` member `gray`, as on HTTP; the default variant too, so
//!   an untagged message is clearly from outside graymatch):
//!   [`nats::Publisher`], [`rabbitmq::Publisher`], [`kafka::stamp`], or
//!   [`Tag::inject`](graymatch::Tag::inject) on any
//!   [carrier](graymatch::carrier).
//! - **Consumers** declare the variant they run ([`Lane`]) and take the
//!   messages of their lane; each handler runs inside the message's tag
//!   scope, so its HTTP and gRPC calls through graymatch's layers
//!   ([`PropagateGrayLayer`](graymatch_tower::PropagateGrayLayer), the
//!   reqwest middleware) carry the variant on.
//!
//! # Lane semantics
//!
//! A message's variant is its tag's when the consumer's rule set trusts
//! incoming tags (`propagation.incoming: trust`), the producer is trusted
//! (RabbitMQ: [`rabbitmq::Consumer::trusted_users`]), and the tag names a
//! declared variant; else the default variant's (untagged, forged, unknown
//! and malformed tags alike: see [`graymatch::carrier`] for how tags are
//! read, by the same rules as HTTP).
//!
//! - A **gray consumer** (a non-default variant) takes only messages of its
//!   variant.
//! - A **base consumer** (the default variant) takes the default variant's
//!   messages, and a gray variant's while no consumer of that lane takes
//!   them: it handles them as *rerouted*, still in the message's scope, so
//!   downstream services that do have that variant still serve it.
//! - Where the broker can filter, it does: RabbitMQ routes by the tag
//!   header into a queue per lane, NATS by subject (`orders.gray`). Where
//!   it cannot (Kafka, a NATS base that hears every subject), the consumer
//!   skips messages another lane takes and acknowledges them.
//!
//! | | liveness of a lane | lane stops | lane starts | delivery |
//! |---|---|---|---|---|
//! | [`rabbitmq`] | the broker: a message waits in the lane's queue at most the lane timeout (10 s), then is dead-lettered to the base | its messages reach the base within the lane timeout; none lost | takes its queue at once | at least once |
//! | [`nats`] JetStream | heartbeats on core NATS (1 s), a lane is down 3 s after its last beat or at its goodbye; the base probes at start | the base pulls the lane's durable consumer at the goodbye, or within the timeout after a crash; none lost | pulls its durable at once; the base stops at its first beat | at least once |
//! | [`nats`] core | the same heartbeats | graceful: no loss, duplicates possible in a ~200 ms handover; crash: messages published within the timeout are lost | from its first beat | at most once |
//! | [`kafka`] | yours to feed ([`Liveness`]) | as you wire it | as you wire it | the client's |
//!
//! Duplicates come only from a consumer that dies after handling a
//! message and before its acknowledgement reaches the broker (and from the
//! core NATS handover): make handlers idempotent, as with any
//! at-least-once queue.
//!
//! # Against MSE, Sermant and TSF
//!
//! - **Alibaba MSE** (RocketMQ): the tag is a message property; gray
//!   consumers join the group `<group>_<tag>`; the broker filters with
//!   SQL92. By default a base consumer takes gray messages too (both
//!   groups consume them) unless told to ignore tags. Here a base consumer
//!   never takes a message a live lane takes, and the lanes are named the
//!   same way: `<group>_<variant>` (RabbitMQ queue, NATS queue group and
//!   durable).
//! - **Sermant** mq-grayscale: in its AUTO mode (the default) the base asks
//!   the broker every 15 s which `<group>_<tag>` groups have consumers and
//!   excludes only those tags: the same rule as here, with a shorter
//!   bounded interval (RabbitMQ: the lane timeout; NATS: the heartbeat
//!   timeout). Its BASE mode (base always excludes gray tags, so a gray
//!   message with no gray consumer waits) is what a very long lane timeout
//!   gives on RabbitMQ.
//! - **Tencent TSF**: the lane id travels in a header (`tsf_laneId`);
//!   `mainConsumeLane` lets the main lane take a lane's messages while that
//!   lane is offline: here, always on.
//! - Istio and Flagger do nothing for queues.
//!
//! # Features
//!
//! | feature | enables |
//! |---|---|
//! | `nats` | [`nats`]: async-nats 0.50, core pub/sub and JetStream (NATS server 2.9 and later) |
//! | `rabbitmq` | [`rabbitmq`]: lapin 4, AMQP 0.9.1 headers (RabbitMQ 3.10 and later: `x-match: all-with-x`) |
//! | `kafka` | [`kafka`]: a carrier for record headers of any Kafka client, no client dependency |
//!
//! Every feature is off by default. Counts go through the `metrics`
//! facade ([`stats`]; nothing is recorded without a recorder) and each
//! running consumer's [`Running::stats`]; handler failures are logged with
//! `tracing`.
//!
//! ```
//! use graymatch_messaging::{Action, Lane};
//!
//! // The consumer service's rule set: its variants are the lanes.
//! let rules = std::sync::Arc::new(graymatch::RuleSet::from_yaml(
//!     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}")?.compile()?);
//! let base = Lane::new(rules.clone(), "orders-workers", "stable")?;
//!
//! // A producer in a gray request stamped this message.
//! let mut headers: Vec<(String, String)> = Vec::new();
//! graymatch::Tag::new("gray")?.inject(&mut headers);
//!
//! // No gray consumer takes it: the base handles it, in the gray scope.
//! let routed = base.route(&headers, true, |_lane| false);
//! assert_eq!((routed.action, routed.tag.variant()), (Action::Reroute, "gray"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
pub mod lane;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
#[cfg(feature = "rabbitmq")]
#[cfg_attr(docsrs, doc(cfg(feature = "rabbitmq")))]
pub mod rabbitmq;
// The consumers' shared loop, used by the broker modules.
#[cfg(any(feature = "nats", feature = "rabbitmq"))]
mod run;
pub mod stats;

pub use error::Error;
pub use lane::{Action, Lane, Liveness, Routed};
#[cfg(any(feature = "nats", feature = "rabbitmq"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "nats", feature = "rabbitmq"))))]
pub use run::{Incoming, Running};
pub use stats::Snapshot;
