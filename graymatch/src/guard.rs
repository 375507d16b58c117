//! Guards: a gray variant's outcomes judged against the default variant's
//! over a sliding window, to halt it when it does worse.
//!
//! [`GuardSpec`] is a guard of a rule set as compiled (thresholds checked);
//! the judging itself runs in a [`Release`](crate::Release), which the
//! service's middleware feeds with each request's outcome.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::rules::Guard;
use crate::schedule::duration;

/// The window when a guard gives none.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// The minimum request count when a guard gives none.
pub const DEFAULT_MIN_REQUESTS: u32 = 100;
/// How many slices a window is cut into: it slides by a tenth, and a
/// verdict is given at most once a tenth.
const SLICES: usize = 10;
/// Latency histogram buckets: 4 per power of two from 64 µs up to about
/// 67 s; the first holds everything faster, the last everything slower.
const BUCKETS: usize = 86;

/// A guard as compiled: the variant it watches and its thresholds.
///
/// ```
/// # #[cfg(feature = "yaml")] {
/// let m = graymatch::RuleSet::from_yaml(r#"
/// default: stable
/// rules: [{ name: canary, to: gray, percent: 5 }]
/// guards: [{ variant: gray, window: 30s, max_failure_rate: 0.05, max_p99: 800ms }]
/// "#)?.compile()?;
/// let g = &m.guards()[0];
/// assert_eq!(g.variant(), "gray");
/// assert_eq!(g.window(), std::time::Duration::from_secs(30));
/// assert_eq!(g.min_requests(), 100);
/// assert_eq!(g.max_failure_rate(), Some(0.05));
/// # }
/// # Ok::<(), graymatch::CompileError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GuardSpec {
    pub(crate) variant: &'static str,
    pub(crate) window: Duration,
    pub(crate) min_requests: u32,
    pub(crate) max_failure_rate: Option<f64>,
    pub(crate) max_failure_ratio: Option<f64>,
    pub(crate) max_p99: Option<Duration>,
    pub(crate) max_p99_ratio: Option<f64>,
}

impl GuardSpec {
    /// The guarded variant.
    pub fn variant(&self) -> &'static str {
        self.variant
    }
    /// The sliding window judged.
    pub fn window(&self) -> Duration {
        self.window
    }
    /// The requests needed in the window before a verdict.
    pub fn min_requests(&self) -> u32 {
        self.min_requests
    }
    /// The failure-rate bound (0 to 1), if set.
    pub fn max_failure_rate(&self) -> Option<f64> {
        self.max_failure_rate
    }
    /// The bound on the failure rate as a multiple of the default's, if set.
    pub fn max_failure_ratio(&self) -> Option<f64> {
        self.max_failure_ratio
    }
    /// The p99 latency bound, if set.
    pub fn max_p99(&self) -> Option<Duration> {
        self.max_p99
    }
    /// The bound on the p99 latency as a multiple of the default's, if set.
    pub fn max_p99_ratio(&self) -> Option<f64> {
        self.max_p99_ratio
    }

    /// Checks `guard`; `variants` are the rule set's, `default` its default.
    /// An error is the field it is about (empty for the guard as a whole)
    /// and the message.
    pub(crate) fn new(
        guard: &Guard,
        variants: &[&'static str],
        default: &str,
    ) -> Result<Self, (&'static str, String)> {
        let variant = *variants
            .iter()
            .find(|v| **v == guard.variant)
            .ok_or_else(|| {
                (
                    "variant",
                    format!(
                        "variant `{}` is not a variant of the rule set (neither declared nor named by a rule)",
                        guard.variant
                    ),
                )
            })?;
        if variant == default {
            return Err((
                "variant",
                format!(
                    "`{variant}` is the default variant, which cannot be guarded: a halted variant's traffic falls back to it"
                ),
            ));
        }
        let window = match &guard.window {
            Some(w) => duration(w).map_err(|m| ("window", m))?,
            None => DEFAULT_WINDOW,
        };
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&window) {
            return Err((
                "window",
                format!(
                    "{:?} is not between 1s and 1d",
                    guard.window.as_deref().unwrap_or_default()
                ),
            ));
        }
        let min_requests = guard.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS);
        if min_requests == 0 {
            return Err(("min_requests", "must be at least 1".into()));
        }
        if let Some(r) = guard.max_failure_rate
            && !(r.is_finite() && (0.0..1.0).contains(&r))
        {
            return Err((
                "max_failure_rate",
                format!("{r} is not a share from 0 up to (not including) 1"),
            ));
        }
        for (key, ratio) in [
            ("max_failure_ratio", guard.max_failure_ratio),
            ("max_p99_ratio", guard.max_p99_ratio),
        ] {
            if let Some(r) = ratio
                && !(r.is_finite() && (1.0..=1e6).contains(&r))
            {
                return Err((
                    key,
                    format!("{r} is not a ratio from 1 to 1000000 (a multiple of the default's)"),
                ));
            }
        }
        let max_p99 = guard
            .max_p99
            .as_deref()
            .map(duration)
            .transpose()
            .map_err(|m| ("max_p99", m))?;
        if guard.max_failure_rate.is_none()
            && guard.max_failure_ratio.is_none()
            && max_p99.is_none()
            && guard.max_p99_ratio.is_none()
        {
            return Err((
                "",
                "a guard needs at least one of max_failure_rate, max_failure_ratio, max_p99, max_p99_ratio"
                    .into(),
            ));
        }
        Ok(GuardSpec {
            variant,
            window,
            min_requests,
            max_failure_rate: guard.max_failure_rate,
            max_failure_ratio: guard.max_failure_ratio,
            max_p99,
            max_p99_ratio: guard.max_p99_ratio,
        })
    }
}

/// A guard that tripped: the variant and why.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Trip {
    pub(crate) variant: &'static str,
    pub(crate) reason: String,
}

/// The outcomes of one variant in one slice of a window.
#[derive(Clone)]
struct Slice {
    /// Which slice (time since the judge began, in slice widths).
    seq: u64,
    requests: u32,
    failures: u32,
    latency: [u32; BUCKETS],
}

impl Slice {
    const EMPTY: Slice = Slice {
        seq: u64::MAX,
        requests: 0,
        failures: 0,
        latency: [0; BUCKETS],
    };
}

/// A window of one variant's outcomes.
#[derive(Clone)]
struct Series {
    slices: [Slice; SLICES],
}

impl Series {
    fn new() -> Self {
        Series {
            slices: std::array::from_fn(|_| Slice::EMPTY),
        }
    }

    fn record(&mut self, seq: u64, failed: bool, latency: Duration) {
        let slice = &mut self.slices[(seq % SLICES as u64) as usize];
        if slice.seq != seq {
            *slice = Slice {
                seq,
                ..Slice::EMPTY
            };
        }
        slice.requests = slice.requests.saturating_add(1);
        slice.failures = slice.failures.saturating_add(u32::from(failed));
        let b = &mut slice.latency[bucket(latency)];
        *b = b.saturating_add(1);
    }

    /// Totals over the slices of the window ending at `seq`.
    fn totals(&self, seq: u64) -> Totals {
        let mut t = Totals {
            requests: 0,
            failures: 0,
            latency: [0; BUCKETS],
        };
        for s in &self.slices {
            if s.seq <= seq && seq - s.seq < SLICES as u64 {
                t.requests += u64::from(s.requests);
                t.failures += u64::from(s.failures);
                for (a, b) in t.latency.iter_mut().zip(&s.latency) {
                    *a += u64::from(*b);
                }
            }
        }
        t
    }
}

struct Totals {
    requests: u64,
    failures: u64,
    latency: [u64; BUCKETS],
}

impl Totals {
    fn rate(&self) -> f64 {
        self.failures as f64 / self.requests.max(1) as f64
    }

    /// Add-one smoothed failure rate, for ratios.
    fn smoothed(&self) -> f64 {
        (self.failures + 1) as f64 / (self.requests + 1) as f64
    }

    /// The p99 latency: the upper bound of the bucket holding it.
    fn p99(&self) -> Duration {
        let rank = (self.requests * 99).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper(i);
            }
        }
        upper(BUCKETS - 1)
    }
}

/// The histogram bucket of a latency.
fn bucket(latency: Duration) -> usize {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    if us < 64 {
        return 0;
    }
    let log = 63 - us.leading_zeros() as usize; // >= 6
    let sub = ((us >> (log - 2)) & 3) as usize;
    ((log - 6) * 4 + sub + 1).min(BUCKETS - 1)
}

/// The upper bound of a histogram bucket.
fn upper(bucket: usize) -> Duration {
    if bucket == 0 {
        return Duration::from_micros(64);
    }
    if bucket == BUCKETS - 1 {
        return Duration::MAX;
    }
    let log = (bucket - 1) / 4 + 6;
    let sub = ((bucket - 1) % 4) as u64;
    Duration::from_micros((4 + sub + 1) << (log - 2))
}

/// One guard at work: its spec and the two windows it compares.
struct Watch {
    spec: GuardSpec,
    width: Duration,
    state: Mutex<WatchState>,
}

struct WatchState {
    variant: Series,
    default: Series,
    /// The slice last judged.
    judged: Option<u64>,
    tripped: bool,
}

/// The guards of one rule set at work.
pub(crate) struct Judge {
    default: &'static str,
    watches: Box<[Watch]>,
    origin: Instant,
}

impl Judge {
    pub(crate) fn new(specs: &[GuardSpec], default: &'static str, origin: Instant) -> Self {
        Judge {
            default,
            watches: specs
                .iter()
                .map(|spec| Watch {
                    spec: spec.clone(),
                    width: spec.window / SLICES as u32,
                    state: Mutex::new(WatchState {
                        variant: Series::new(),
                        default: Series::new(),
                        judged: None,
                        tripped: false,
                    }),
                })
                .collect(),
            origin,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    /// Records one outcome of `variant`; a guard that trips returns why.
    pub(crate) fn record(
        &self,
        variant: &str,
        failed: bool,
        latency: Duration,
        now: Instant,
    ) -> Option<Trip> {
        let is_default = variant == self.default;
        let mut trip = None;
        for w in self.watches.iter() {
            let mine = w.spec.variant == variant;
            if !mine && !is_default {
                continue;
            }
            let seq = (now.saturating_duration_since(self.origin).as_nanos()
                / w.width.as_nanos().max(1)) as u64;
            let mut st = w.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.tripped {
                continue;
            }
            if mine {
                st.variant.record(seq, failed, latency);
            } else {
                st.default.record(seq, failed, latency);
            }
            // A verdict at most once a slice, on the variant's own outcomes.
            if mine && st.judged.is_none_or(|j| seq > j) {
                st.judged = Some(seq);
                if let Some(reason) = verdict(&w.spec, &st, seq) {
                    st.tripped = true;
                    trip = Some(Trip {
                        variant: w.spec.variant,
                        reason,
                    });
                }
            }
        }
        trip
    }

    /// Forgets what the guard of `variant` saw (on resume).
    pub(crate) fn reset(&self, variant: &str) {
        for w in self.watches.iter().filter(|w| w.spec.variant == variant) {
            let mut st = w.state.lock().unwrap_or_else(|e| e.into_inner());
            st.variant = Series::new();
            st.default = Series::new();
            st.tripped = false;
        }
    }
}

/// Why the guard trips now, if it does.
fn verdict(spec: &GuardSpec, st: &WatchState, seq: u64) -> Option<String> {
    let v = st.variant.totals(seq);
    let min = u64::from(spec.min_requests);
    if v.requests < min {
        return None;
    }
    let d = st.default.totals(seq);
    let window = format!(
        "over {:?} ({} requests, {} failed)",
        spec.window, v.requests, v.failures
    );
    let pct = |r: f64| format!("{:.1}%", r * 100.0);
    if let Some(max) = spec.max_failure_rate
        && v.rate() > max
    {
        return Some(format!(
            "failure rate {} > {} {window}",
            pct(v.rate()),
            pct(max)
        ));
    }
    let judged_default = d.requests >= min;
    if let Some(max) = spec.max_failure_ratio
        && judged_default
        && v.smoothed() > max * d.smoothed()
    {
        return Some(format!(
            "failure rate {} > {max}× the default's {} {window}",
            pct(v.rate()),
            pct(d.rate())
        ));
    }
    let p99 = v.p99();
    if let Some(max) = spec.max_p99
        && p99 > max
    {
        return Some(format!("p99 latency {p99:?} > {max:?} {window}"));
    }
    if let Some(max) = spec.max_p99_ratio
        && judged_default
    {
        let dp99 = d.p99();
        if p99.as_secs_f64() > max * dp99.as_secs_f64() {
            return Some(format!(
                "p99 latency {p99:?} > {max}× the default's {dp99:?} {window}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(variant: &'static str) -> GuardSpec {
        GuardSpec {
            variant,
            window: Duration::from_secs(10),
            min_requests: 100,
            max_failure_rate: None,
            max_failure_ratio: None,
            max_p99: None,
            max_p99_ratio: None,
        }
    }

    #[test]
    fn buckets_are_ordered_and_bound_their_latencies() {
        let mut last = 0;
        for us in [
            0, 63, 64, 80, 96, 127, 128, 1000, 5_000, 800_000, 60_000_000,
        ] {
            let d = Duration::from_micros(us);
            let b = bucket(d);
            assert!(b >= last, "{us}");
            assert!(
                upper(b) > d,
                "{us} µs in bucket {b} bounded by {:?}",
                upper(b)
            );
            if b > 0 {
                assert!(upper(b - 1) <= d, "{us}");
            }
            last = b;
        }
        assert_eq!(bucket(Duration::from_secs(100_000)), BUCKETS - 1);
    }

    #[test]
    fn verdicts() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // (name, spec, variant outcomes (n, failing every k-th, latency), default outcomes, trips)
        let cases: [(
            &str,
            GuardSpec,
            (u32, u32, u64),
            (u32, u32, u64),
            Option<&str>,
        ); 8] = [
            (
                "10 % failing over a 5 % bound",
                GuardSpec {
                    max_failure_rate: Some(0.05),
                    ..spec("gray")
                },
                (200, 10, 5),
                (0, 0, 5),
                Some("failure rate 10.0% > 5.0%"),
            ),
            (
                "exactly at the bound does not trip",
                GuardSpec {
                    max_failure_rate: Some(0.05),
                    ..spec("gray")
                },
                (200, 20, 5),
                (0, 0, 5),
                None,
            ),
            (
                "too few requests to judge",
                GuardSpec {
                    max_failure_rate: Some(0.05),
                    ..spec("gray")
                },
                (99, 2, 5),
                (0, 0, 5),
                None,
            ),
            (
                "twice the default's failures",
                GuardSpec {
                    max_failure_ratio: Some(2.0),
                    ..spec("gray")
                },
                (200, 10, 5),
                (200, 50, 5),
                Some("failure rate 10.0% > 2× the default's 2.0%"),
            ),
            (
                "ratio waits for the default's count",
                GuardSpec {
                    max_failure_ratio: Some(2.0),
                    ..spec("gray")
                },
                (200, 10, 5),
                (50, 50, 5),
                None,
            ),
            (
                "one failure against a clean default is not a ratio",
                GuardSpec {
                    max_failure_ratio: Some(2.0),
                    ..spec("gray")
                },
                (200, 200, 5),
                (200, 0, 5),
                None,
            ),
            (
                "slow p99",
                GuardSpec {
                    max_p99: Some(ms(100)),
                    ..spec("gray")
                },
                (200, 0, 300),
                (0, 0, 5),
                Some("p99 latency"),
            ),
            (
                "p99 ratio",
                GuardSpec {
                    max_p99_ratio: Some(2.0),
                    ..spec("gray")
                },
                (200, 0, 40),
                (200, 0, 10),
                Some("p99 latency"),
            ),
        ];
        for (name, spec, (vn, vk, vl), (dn, dk, dl), want) in cases {
            let judge = Judge::new(&[spec], "stable", t0);
            let now = t0 + ms(1);
            for i in 0..dn {
                judge.record("stable", dk > 0 && i % dk == 0, ms(dl), now);
            }
            let mut trip = None;
            for i in 0..vn {
                // A new slice for the last outcome, so a verdict is given
                // on everything recorded.
                let at = if i + 1 == vn { now + ms(1000) } else { now };
                trip = trip.or(judge.record("gray", vk > 0 && i % vk == 0, ms(vl), at));
            }
            match (trip, want) {
                (None, None) => {}
                (Some(t), Some(w)) => assert!(t.reason.starts_with(w), "{name}: {}", t.reason),
                (t, w) => panic!("{name}: got {t:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn the_window_slides() {
        let t0 = Instant::now();
        let judge = Judge::new(
            &[GuardSpec {
                max_failure_rate: Some(0.05),
                min_requests: 10,
                ..spec("gray")
            }],
            "stable",
            t0,
        );
        // Failures long ago, then a clean window: no trip.
        for _ in 0..9 {
            assert_eq!(judge.record("gray", true, Duration::ZERO, t0), None);
        }
        let later = t0 + Duration::from_secs(30);
        for _ in 0..100 {
            assert_eq!(judge.record("gray", false, Duration::ZERO, later), None);
        }
        judge.reset("gray");
        assert_eq!(judge.record("gray", true, Duration::ZERO, later), None);
    }
}
