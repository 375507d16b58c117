//! Outcome metrics per variant, recorded by [`Gray`](crate::Gray) through
//! the [`metrics`] facade: nothing is recorded until the application
//! installs a recorder (for example `metrics-exporter-prometheus`).
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `graymatch_requests_total` | counter | `variant`, `rule`, `reason`, `status` | requests served, by the decided variant, the deciding rule (empty when none), `rule`/`default`/`propagated`, and the status class: `1xx` … `5xx`, or `error` when the inner service failed |
//! | `graymatch_request_duration_seconds` | histogram | `variant` | time from the decision to the response head |
//! | `graymatch_requests_in_flight` | gauge | `variant` | requests being served |
//! | `graymatch_fallbacks_total` | counter | `variant`, `served` | requests of a variant with no service of its own, served by the default's |
//! | `graymatch_shadow_requests_total` | counter | `variant`, `side`, `status` | requests copied by a [`ShadowLayer`](crate::shadow::ShadowLayer): each side (`primary`, `shadow`) by status class |
//! | `graymatch_shadow_request_duration_seconds` | histogram | `variant`, `side` | time to the response head on each side of a copied request |
//! | `graymatch_shadow_dropped_total` | counter | `variant`, `reason` | copies not sent or abandoned (`queue_full`, `body_too_large`, `timeout`, `incomplete`, `no_service`, `no_worker`) |
//!
//! Labels are variant and rule names only (never paths or header values),
//! so the number of series is bounded by the rule set. Every declared
//! variant has its series from the first request on (with empty `rule` and
//! `reason`), so a query for a variant no request has reached yet returns 0,
//! not nothing. Failures are `5xx` and `error` (a status of 600 or more,
//! which `http` allows, counts as `5xx`). A response future dropped before
//! the response (the client went away) counts as `error`, with no duration.
//!
//! With a Prometheus recorder, give the histogram OpenTelemetry's
//! `http.server.request.duration` buckets ([`DURATION_BUCKETS`]):
//!
//! ```
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! let recorder = PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full(graymatch_tower::metrics::DURATION.to_owned()),
//!         graymatch_tower::metrics::DURATION_BUCKETS,
//!     )
//!     .unwrap()
//!     .build_recorder();
//! let handle = recorder.handle();
//! // metrics::set_global_recorder(recorder) at startup; serve handle.render().
//! # let _ = handle;
//! ```
//!
//! PromQL for a release's checkpoint (what Flagger or Argo Rollouts would
//! query), gray against stable over five minutes:
//!
//! ```text
//! # success rate per variant
//! sum by (variant) (rate(graymatch_requests_total{status!~"5xx|error"}[5m]))
//!   / sum by (variant) (rate(graymatch_requests_total[5m]))
//! # p99 latency per variant
//! histogram_quantile(0.99,
//!   sum by (variant, le) (rate(graymatch_request_duration_seconds_bucket[5m])))
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use graymatch::{Decision, Matcher};
use metrics::{Key, Label, Level, Metadata};

/// `graymatch_requests_total`: requests by variant, rule, reason and status class.
pub const REQUESTS: &str = "graymatch_requests_total";
/// `graymatch_request_duration_seconds`: time to the response head, by variant.
pub const DURATION: &str = "graymatch_request_duration_seconds";
/// `graymatch_requests_in_flight`: requests being served, by variant.
pub const IN_FLIGHT: &str = "graymatch_requests_in_flight";
/// `graymatch_fallbacks_total`: requests served by the default's service
/// because their variant has none.
pub const FALLBACKS: &str = "graymatch_fallbacks_total";

/// `graymatch_shadow_requests_total`: mirrored requests by shadow variant,
/// side (`primary` or `shadow`) and status class; see [`crate::shadow`].
pub const SHADOW_REQUESTS: &str = "graymatch_shadow_requests_total";
/// `graymatch_shadow_request_duration_seconds`: time to the response head of
/// mirrored requests, by shadow variant and side.
pub const SHADOW_DURATION: &str = "graymatch_shadow_request_duration_seconds";
/// `graymatch_shadow_dropped_total`: copies not sent or abandoned, by shadow
/// variant and reason.
pub const SHADOW_DROPPED: &str = "graymatch_shadow_dropped_total";

/// The bucket bounds (seconds) OpenTelemetry's semantic conventions give
/// `http.server.request.duration`.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The status classes, in the order of [`Keys::requests`].
pub(crate) const STATUSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];

/// The index in [`STATUSES`] of a response's status (600 and above count
/// as `5xx`), or of `error` when the inner service failed.
#[inline]
pub(crate) fn status_index(status: Option<http::StatusCode>) -> usize {
    match status {
        Some(s) => usize::from(s.as_u16() / 100).clamp(1, 5) - 1,
        None => 5,
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of one (variant, rule, reason): built once and kept for the
/// life of the process, as the interned names they label are (their number
/// is bounded by the rule sets' variants and rules), then looked up by the
/// names' addresses.
#[derive(Debug)]
pub(crate) struct Keys {
    requests: [Key; 6],
    duration: Key,
    in_flight: Key,
}

/// A multiply hash of two addresses and a small number.
#[inline]
fn hash(a: usize, b: usize, c: u8) -> u64 {
    (a as u64 ^ (b as u64).rotate_left(29) ^ u64::from(c)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Finds `id` in a table of once-filled slots (a power of two of them),
/// probing up to [`PROBES`] slots from its hash, or fills the first empty
/// one with `make()`. An id takes the first empty slot on its path and
/// slots are never emptied, so every slot before its own holds another id:
/// probing finds it, or fills the slot it will keep. `None` when every
/// slot on the path holds another.
#[inline]
fn probe<K: Copy + Eq, V: Copy>(
    slots: &[OnceLock<(K, V)>],
    hash: u64,
    id: K,
    make: impl Fn() -> V,
) -> Option<V> {
    let start = (hash >> 32) as usize;
    for i in 0..PROBES {
        let slot = &slots[(start + i) & (slots.len() - 1)];
        // Runs `make` only when this call fills the slot.
        let &(held, value) = slot.get_or_init(|| (id, make()));
        if held == id {
            return Some(value);
        }
    }
    None
}

impl Keys {
    /// The keys of a decision's (variant, rule, reason), leaked: they live
    /// as long as the interned names they label.
    fn new(d: &Decision) -> &'static Keys {
        let labels = |status: Option<&'static str>| {
            let mut l = vec![Label::from_static_parts("variant", d.variant())];
            if let Some(status) = status {
                l.push(Label::from_static_parts("rule", d.rule().unwrap_or("")));
                l.push(Label::from_static_parts("reason", d.reason().as_str()));
                l.push(Label::from_static_parts("status", status));
            }
            l
        };
        Box::leak(Box::new(Keys {
            requests: STATUSES.map(|s| Key::from_parts(REQUESTS, labels(Some(s)))),
            duration: Key::from_parts(DURATION, labels(None)),
            in_flight: Key::from_parts(IN_FLIGHT, labels(None)),
        }))
    }
}

type Id = (usize, usize, u8);

/// Hashes an [`Id`] (two addresses and a small number) with one multiply
/// per word: the map is looked up on every request, and SipHash's
/// resistance to chosen keys buys nothing for addresses of interned names.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
}

type IdMap = HashMap<Id, &'static Keys, std::hash::BuildHasherDefault<IdHasher>>;

/// Slots of the lock-free key table, probed up to [`PROBES`] deep; the
/// (variant, rule, reason) combinations past them go to a map.
const KEY_SLOTS: usize = 256;
const PROBES: usize = 8;
/// Slots of the fallback keys; past them a key is built per fallback.
const FALLBACK_SLOTS: usize = 64;

/// The layer's recorder of outcomes: a cache of keys (a lock-free table
/// filled once per combination, then a read-mostly map), and the matcher
/// whose variants were last given their zero series.
#[derive(Debug)]
pub(crate) struct Outcomes {
    slots: Box<[OnceLock<(Id, &'static Keys)>]>,
    keys: ArcSwap<IdMap>,
    /// The fallback counters' keys by (variant, served) address.
    fallbacks: Box<[OnceLock<((usize, usize), &'static Key)>]>,
    writing: Mutex<()>,
    seen: AtomicUsize,
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes {
            slots: (0..KEY_SLOTS).map(|_| OnceLock::new()).collect(),
            keys: ArcSwap::default(),
            fallbacks: (0..FALLBACK_SLOTS).map(|_| OnceLock::new()).collect(),
            writing: Mutex::new(()),
            seen: AtomicUsize::new(0),
        }
    }
}

impl Outcomes {
    /// Gives every variant of `m` its zero series, once per matcher (a
    /// reload brings a new one).
    #[inline]
    pub(crate) fn observe(&self, m: &Matcher) {
        let id = std::ptr::from_ref(m) as usize;
        if self.seen.load(Ordering::Relaxed) == id || self.seen.swap(id, Ordering::Relaxed) == id {
            return;
        }
        metrics::with_recorder(|r| {
            for variant in m.variants() {
                for status in STATUSES {
                    let key = Key::from_parts(
                        REQUESTS,
                        vec![
                            Label::from_static_parts("variant", variant),
                            Label::from_static_parts("rule", ""),
                            Label::from_static_parts("reason", ""),
                            Label::from_static_parts("status", status),
                        ],
                    );
                    r.register_counter(&key, &METADATA).increment(0);
                }
                let only = |name: &'static str| {
                    Key::from_parts(name, vec![Label::from_static_parts("variant", variant)])
                };
                r.register_gauge(&only(IN_FLIGHT), &METADATA).increment(0.0);
                // Registering the histogram creates its series.
                let _ = r.register_histogram(&only(DURATION), &METADATA);
            }
        });
    }

    /// Starts the outcome of a request: counts it in flight.
    #[inline]
    pub(crate) fn start(&self, decision: &Decision) -> InFlight {
        let keys: &'static Keys = self.keys(decision);
        metrics::with_recorder(|r| r.register_gauge(&keys.in_flight, &METADATA).increment(1.0));
        InFlight {
            keys,
            start: Instant::now(),
            done: false,
        }
    }

    /// Counts a fallback: `variant` served by `served`'s service.
    #[inline]
    pub(crate) fn fallback(&self, variant: &'static str, served: &'static str) {
        let id = (variant.as_ptr() as usize, served.as_ptr() as usize);
        let key = || {
            Key::from_parts(
                FALLBACKS,
                vec![
                    Label::from_static_parts("variant", variant),
                    Label::from_static_parts("served", served),
                ],
            )
        };
        // Kept for the process's life in a slot (one per pair of names);
        // past the slots, built for this request and dropped.
        match probe(
            &self.fallbacks,
            hash(id.0, id.1, 0),
            id,
            || -> &'static Key { Box::leak(Box::new(key())) },
        ) {
            Some(kept) => {
                metrics::with_recorder(|r| r.register_counter(kept, &METADATA).increment(1))
            }
            None => {
                let once = key();
                metrics::with_recorder(|r| r.register_counter(&once, &METADATA).increment(1));
            }
        }
    }

    #[inline]
    fn keys(&self, d: &Decision) -> &'static Keys {
        let id: Id = (
            d.variant().as_ptr() as usize,
            d.rule().map_or(0, |r| r.as_ptr() as usize),
            d.reason() as u8,
        );
        probe(&self.slots, hash(id.0, id.1, id.2), id, || Keys::new(d))
            .unwrap_or_else(|| self.mapped(d, id))
    }

    /// The keys of a combination past the table's probes.
    #[cold]
    fn mapped(&self, d: &Decision, id: Id) -> &'static Keys {
        if let Some(k) = self.keys.load().get(&id) {
            return k;
        }
        // A new combination: build its keys and publish a new map.
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.keys.load_full();
        if let Some(k) = current.get(&id) {
            return k;
        }
        let keys = Keys::new(d);
        let mut next = IdMap::clone(&current);
        next.insert(id, keys);
        self.keys.store(Arc::new(next));
        keys
    }
}

/// One request in flight: ends with [`finish`](Self::finish), or, when the
/// response future is dropped first (the client went away), as `error`
/// without a duration.
#[derive(Debug)]
pub(crate) struct InFlight {
    keys: &'static Keys,
    start: Instant,
    done: bool,
}

impl InFlight {
    /// Records the outcome: a status code, or `None` for an inner error.
    pub(crate) fn finish(mut self, status: Option<http::StatusCode>) {
        self.done = true;
        let class = status_index(status);
        let elapsed = self.start.elapsed().as_secs_f64();
        metrics::with_recorder(|r| {
            r.register_counter(&self.keys.requests[class], &METADATA)
                .increment(1);
            r.register_histogram(&self.keys.duration, &METADATA)
                .record(elapsed);
            r.register_gauge(&self.keys.in_flight, &METADATA)
                .decrement(1.0);
        });
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            metrics::with_recorder(|r| {
                r.register_counter(&self.keys.requests[5], &METADATA)
                    .increment(1);
                r.register_gauge(&self.keys.in_flight, &METADATA)
                    .decrement(1.0);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More combinations than the table's slots: each keeps one set of
    /// keys, found again on every lookup, labelled with its own names.
    #[test]
    fn every_combination_keeps_its_keys() {
        let n = 2 * KEY_SLOTS;
        let rules: String = (0..n)
            .map(|i| format!("  - {{ name: r{i}, to: v{}, when: {{ header: {{ name: x-r, equals: \"{i}\" }} }} }}\n", i % 7))
            .collect();
        let variants: Vec<String> = (0..7).map(|i| format!("v{i}")).collect();
        let yaml = format!(
            "default: v0\nvariants: [{}]\nrules:\n{rules}",
            variants.join(", ")
        );
        let m = graymatch::RuleSet::from_yaml(&yaml)
            .unwrap()
            .compile()
            .unwrap();
        let decide = |i: usize| {
            m.decide(
                &http::Request::builder()
                    .header("x-r", i.to_string())
                    .body(())
                    .unwrap(),
            )
        };
        let outcomes = Outcomes::default();
        let first: Vec<&'static Keys> = (0..=n).map(|i| outcomes.keys(&decide(i))).collect();
        for round in 0..2 {
            for (i, keys) in first.iter().enumerate() {
                let again = outcomes.keys(&decide(i));
                assert!(std::ptr::eq(*keys, again), "round {round}, request {i}");
            }
        }
        for (i, keys) in first.iter().enumerate().take(n) {
            let labels: Vec<_> = keys.requests[1]
                .labels()
                .map(|l| (l.key(), l.value()))
                .collect();
            let rule = format!("r{i}");
            let variant = format!("v{}", i % 7);
            assert_eq!(
                labels,
                [
                    ("variant", variant.as_str()),
                    ("rule", rule.as_str()),
                    ("reason", "rule"),
                    ("status", "2xx")
                ],
                "request {i}"
            );
        }
        // The request no rule matched: the default.
        assert!(keys_label(first[n], "reason") == "default");
    }

    /// More (variant, served) pairs than the fallback slots: every
    /// fallback is counted under its own labels, those past the slots with
    /// a key built for the request (none kept for them).
    #[test]
    fn fallbacks_past_the_slots_are_counted() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let outcomes = Outcomes::default();
        let served = graymatch::Tag::new("stable").unwrap().variant();
        let n = 4 * FALLBACK_SLOTS;
        let variants: Vec<&'static str> = (0..n)
            .map(|i| graymatch::Tag::new(&format!("v{i}")).unwrap().variant())
            .collect();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..2 {
                for v in &variants {
                    outcomes.fallback(v, served);
                }
            }
        });
        // At most FALLBACK_SLOTS pairs are kept, so three in four at least
        // were counted with a key built for the request.
        let text = handle.render();
        for v in &variants {
            let line = format!("{FALLBACKS}{{variant=\"{v}\",served=\"stable\"}} 2");
            assert!(text.contains(&line), "{line} in\n{text}");
        }
    }

    fn keys_label(keys: &Keys, name: &str) -> String {
        keys.in_flight
            .labels()
            .chain(keys.requests[0].labels())
            .find(|l| l.key() == name)
            .map(|l| l.value().to_owned())
            .unwrap_or_default()
    }
}
