//! Counts of what consumers did, per variant and action: through the
//! `metrics` facade (nothing is recorded until the application installs a
//! recorder), and as plain counters on each running consumer.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `graymatch_messages_total` | counter | `group`, `lane`, `variant`, `action` | messages a consumer received: its group, the variant it runs (`lane`), the message's variant (`variant`: a trusted tag's, else the default), and `processed`, `rerouted` (a base consumer handled another variant's message because that lane did not take it), `skipped` (acknowledged without handling: another lane takes it) or `failed` (the handler returned an error) |
//!
//! Label values are group and variant names only, never a tag as sent, so
//! the number of series is bounded by the rule set: a forged or unknown tag
//! counts under the default variant.
//!
//! PromQL: messages a base consumer took over for a gray lane, per second:
//!
//! ```text
//! sum by (group, variant) (rate(graymatch_messages_total{action="rerouted"}[5m]))
//! ```

/// `graymatch_messages_total`: messages by group, lane, variant and action.
pub const MESSAGES: &str = "graymatch_messages_total";

// The consumers' counters, used by the broker modules.
#[cfg(any(feature = "nats", feature = "rabbitmq", test))]
mod count;
#[cfg(any(feature = "nats", feature = "rabbitmq"))]
pub(crate) use count::{Outcome, Stats};

/// What a running consumer has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Messages of its own lane, handled.
    pub processed: u64,
    /// Other variants' messages a base consumer handled because their lane
    /// did not take them.
    pub rerouted: u64,
    /// Messages acknowledged without handling: another lane takes them.
    pub skipped: u64,
    /// Messages whose handler returned an error.
    pub failed: u64,
}
