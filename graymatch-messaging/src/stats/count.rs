//! A consumer's counters (the broker modules' own), behind [`Snapshot`].

use std::sync::atomic::{AtomicU64, Ordering};

use super::{MESSAGES, Snapshot};
use crate::lane::Action;

/// What a consumer did with a message, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Routed(Action),
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Routed(a) => a.as_str(),
            Outcome::Failed => "failed",
        }
    }
}

/// A consumer's counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    processed: AtomicU64,
    rerouted: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
}

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
