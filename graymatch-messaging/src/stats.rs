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

#[cfg(any(feature = "nats", feature = "rabbitmq", test))]
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(any(feature = "nats", feature = "rabbitmq", test))]
use crate::lane::Action;

/// `graymatch_messages_total`: messages by group, lane, variant and action.
pub const MESSAGES: &str = "graymatch_messages_total";

#[cfg(any(feature = "nats", feature = "rabbitmq", test))]
/// What a consumer did with a message, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Routed(Action),
    Failed,
}

#[cfg(any(feature = "nats", feature = "rabbitmq", test))]
impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Routed(a) => a.as_str(),
            Outcome::Failed => "failed",
        }
    }
}

#[cfg(any(feature = "nats", feature = "rabbitmq", test))]
/// A consumer's counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    processed: AtomicU64,
    rerouted: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
}

#[cfg(any(feature = "nats", feature = "rabbitmq", test))]
impl Stats {
    /// Counts one message, here and through the `metrics` facade.
    pub(crate) fn count(
        &self,
        group: &str,
        lane: &'static str,
        variant: &'static str,
        outcome: Outcome,
    ) {
        let counter = match outcome {
            Outcome::Routed(Action::Process) => &self.processed,
            Outcome::Routed(Action::Reroute) => &self.rerouted,
            Outcome::Routed(Action::Skip) => &self.skipped,
            Outcome::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(
            MESSAGES,
            "group" => group.to_owned(),
            "lane" => lane,
            "variant" => variant,
            "action" => outcome.label(),
        )
        .increment(1);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            processed: self.processed.load(Ordering::Relaxed),
            rerouted: self.rerouted.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reach_the_metrics_facade() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let stats = Stats::default();
        metrics::with_local_recorder(&recorder, || {
            let cases: &[(&str, &'static str, Outcome, usize)] = &[
                (
                    "gray processed",
                    "gray",
                    Outcome::Routed(Action::Process),
                    3,
                ),
                ("gray rerouted", "gray", Outcome::Routed(Action::Reroute), 2),
                ("stable skipped", "stable", Outcome::Routed(Action::Skip), 1),
                ("gray failed", "gray", Outcome::Failed, 1),
            ];
            for (_, variant, outcome, n) in cases {
                for _ in 0..*n {
                    stats.count("orders", "stable", variant, *outcome);
                }
            }
        });
        assert_eq!(
            stats.snapshot(),
            Snapshot {
                processed: 3,
                rerouted: 2,
                skipped: 1,
                failed: 1
            }
        );
        let text = handle.render();
        for line in [
            r#"graymatch_messages_total{group="orders",lane="stable",variant="gray",action="processed"} 3"#,
            r#"graymatch_messages_total{group="orders",lane="stable",variant="gray",action="rerouted"} 2"#,
            r#"graymatch_messages_total{group="orders",lane="stable",variant="stable",action="skipped"} 1"#,
            r#"graymatch_messages_total{group="orders",lane="stable",variant="gray",action="failed"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
