//! A release in progress: a rule set whose schedules move with the clock and
//! whose guards halt failing variants, kept current in a [`SharedMatcher`].
//!
//! Every change (a schedule's step, a halt, a resume, new rules) compiles a
//! new matcher and swaps it in; deciding a request never reads a clock or
//! takes a lock. The [`ReleaseState`] (halted variants, frozen schedules) is
//! plain data, so a fleet can share it through a store: one instance's trip
//! halts them all (`graymatch-source`'s etcd halt marker does this).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::compile::Moment;
use crate::decision::Decision;
use crate::error::CompileError;
use crate::guard::Judge;
use crate::matcher::Matcher;
use crate::rules::RuleSet;
use crate::shared::SharedMatcher;
use crate::version::RuleSetVersion;

/// How long before a step begins its matcher is compiled.
const LEAD: Duration = Duration::from_millis(250);
/// The clock thread checks at least this often whether the release is gone.
const CLOCK_CHECK: Duration = Duration::from_secs(1);

/// The state of a release that is not in its rule set: which variants are
/// halted, and how the schedules' clock stands. Plain data (serde), so a
/// fleet can share it.
///
/// While any variant is halted the schedules are frozen at `frozen_at`; on
/// the last resume the time they stood frozen is added to `paused`, and
/// they go on from the step where they stopped. A state belongs to one
/// rule-set version (`version`, the SHA-256 in hex): a new version starts
/// from a fresh state, and a state for another version is ignored.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let mut state = graymatch::ReleaseState::default();
/// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_514_400);
/// assert!(state.halt("gray", "too many 5xx", t));
/// assert!(!state.halt("gray", "again", t)); // already halted
/// assert_eq!(state.schedule_time(t + Duration::from_secs(60)), t);
/// assert!(state.resume(None, t + Duration::from_secs(60)));
/// assert_eq!(state.paused, Duration::from_secs(60));
/// assert_eq!(state.schedule_time(t + Duration::from_secs(90)), t + Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseState {
    /// The rule-set version this state is about (SHA-256 in hex), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The halted variants, in the order they were halted.
    #[serde(default)]
    pub halted: Vec<Halt>,
    /// When the schedules froze (the first halt), while a variant is halted.
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub frozen_at: Option<SystemTime>,
    /// How long the schedules stood frozen before: their clock runs this far
    /// behind the wall clock.
    #[serde(default, with = "millis")]
    pub paused: Duration,
}

/// A halted variant: since when, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halt {
    /// The variant.
    pub variant: String,
    /// When it was halted.
    #[serde(with = "time")]
    pub at: SystemTime,
    /// Why (a guard's verdict, an operator's note).
    pub reason: String,
}

impl ReleaseState {
    /// Halts `variant` at `now` (freezing the schedules if nothing was
    /// halted); `false` if it was already halted.
    pub fn halt(&mut self, variant: &str, reason: &str, now: SystemTime) -> bool {
        let now = to_millis(now);
        if self.is_halted(variant) {
            return false;
        }
        if self.halted.is_empty() {
            self.frozen_at = Some(now);
        }
        self.halted.push(Halt {
            variant: variant.to_owned(),
            at: now,
            reason: reason.to_owned(),
        });
        true
    }

    /// Resumes `variant` (`None`: every variant) at `now`; when none is left
    /// halted the schedules go on from where they froze. `false` if nothing
    /// was halted.
    pub fn resume(&mut self, variant: Option<&str>, now: SystemTime) -> bool {
        let now = to_millis(now);
        let before = self.halted.len();
        self.halted
            .retain(|h| variant.is_some_and(|v| v != h.variant));
        if self.halted.is_empty()
            && let Some(frozen) = self.frozen_at.take()
        {
            self.paused += now.duration_since(frozen).unwrap_or_default();
        }
        self.halted.len() != before
    }

    /// Whether `variant` is halted.
    pub fn is_halted(&self, variant: &str) -> bool {
        self.halted.iter().any(|h| h.variant == variant)
    }

    /// The schedules' clock at wall-clock time `now`: stopped while frozen,
    /// and behind by the time spent frozen.
    pub fn schedule_time(&self, now: SystemTime) -> SystemTime {
        let t = self.frozen_at.unwrap_or(now);
        t.checked_sub(self.paused).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// Who changed a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangedBy {
    /// This instance's guard tripped.
    Guard,
    /// A call of [`Release::halt`] or [`Release::resume`] (an operator, a
    /// test, an admin endpoint).
    Operator,
    /// A state from the fleet ([`Release::apply_state`]): another instance
    /// or the CLI.
    Fleet,
}

/// What changed in a release, told to its [subscribers](Release::subscribe)
/// after the new matcher is in force.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReleaseEvent {
    /// A variant was halted: its rules stopped deciding.
    Halted {
        /// The variant.
        variant: String,
        /// Why.
        reason: String,
        /// Who halted it.
        origin: ChangedBy,
    },
    /// A halted variant was resumed.
    Resumed {
        /// The variant.
        variant: String,
        /// Who resumed it.
        origin: ChangedBy,
    },
    /// The schedules moved to their next step.
    Stepped {
        /// When the step after it begins, if any.
        next_change: Option<SystemTime>,
    },
    /// A new rule set is in force; a new version starts from a fresh state.
    Rules {
        /// Its version.
        version: Option<RuleSetVersion>,
        /// Whether the state (halts, frozen schedules) was reset.
        reset: bool,
    },
}

type Observer = Arc<dyn Fn(&ReleaseEvent) + Send + Sync>;

/// A release in progress: a rule set, the state of its schedules and halts,
/// and its guards, kept current in a [`SharedMatcher`].
///
/// Give [`matcher`](Release::matcher) to the middleware that decides
/// (`GrayLayer`), feed each request's outcome to [`record`](Release::record)
/// (`graymatch-tower`'s `GuardLayer` does), and start
/// [`run_clock`](Release::run_clock) so schedules step on time. Cloning is
/// cheap; every clone is the same release.
///
/// ```
/// # #[cfg(feature = "yaml")] {
/// use std::time::{Duration, Instant};
/// use graymatch::{Release, RuleSet};
///
/// let release = Release::new(RuleSet::from_yaml(r#"
/// default: stable
/// rules: [{ name: canary, to: gray }]
/// guards: [{ variant: gray, window: 10s, min_requests: 10, max_failure_rate: 0.05 }]
/// "#)?, None)?;
/// let shared = release.matcher();
/// let req = http::Request::new(());
/// assert_eq!(shared.decide(&req).variant(), "gray");
///
/// // Gray fails one request in five: the guard halts it (a verdict is
/// // given once a tenth of the window).
/// let start = Instant::now();
/// for i in 0..20 {
///     let now = start + Duration::from_millis(i * 100);
///     release.record_at("gray", i % 5 == 0, Duration::from_millis(3), now);
/// }
/// let halt = &release.state().halted[0];
/// assert_eq!(halt.variant, "gray");
/// assert_eq!(halt.reason, "guard: failure rate 27.3% > 5.0% over 10s (11 requests, 3 failed)");
/// assert_eq!(shared.decide(&req).variant(), "stable");
///
/// // An operator resumes it.
/// assert!(release.resume(Some("gray")));
/// assert_eq!(shared.decide(&req).variant(), "gray");
/// # }
/// # Ok::<(), graymatch::CompileError>(())
/// ```
#[derive(Clone)]
pub struct Release {
    inner: Arc<Inner>,
}

struct Inner {
    shared: SharedMatcher,
    core: Mutex<Core>,
    /// Wakes the clock thread when the next change may have moved.
    wake: Condvar,
    judge: ArcSwap<Judge>,
    observers: RwLock<Vec<Observer>>,
    clock: AtomicBool,
}

struct Core {
    rules: RuleSet,
    version: Option<RuleSetVersion>,
    state: ReleaseState,
    /// Counts swaps, so a matcher compiled ahead is dropped if anything
    /// changed meanwhile.
    generation: u64,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Release {
    /// A release of `rules` (labelled with `version`, when known), compiled
    /// for now with nothing halted.
    ///
    /// # Errors
    ///
    /// The compile error of `rules`.
    pub fn new(rules: RuleSet, version: Option<RuleSetVersion>) -> Result<Self, CompileError> {
        let state = ReleaseState {
            version: version.as_ref().map(RuleSetVersion::hash),
            ..ReleaseState::default()
        };
        let matcher = compile(&rules, version.as_ref(), &state, SystemTime::now())?;
        let judge = Judge::new(matcher.guards(), matcher.default_variant(), Instant::now());
        Ok(Release {
            inner: Arc::new(Inner {
                shared: SharedMatcher::new(matcher),
                core: Mutex::new(Core {
                    rules,
                    version,
                    state,
                    generation: 0,
                }),
                wake: Condvar::new(),
                judge: ArcSwap::from_pointee(judge),
                observers: RwLock::new(Vec::new()),
                clock: AtomicBool::new(false),
            }),
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.inner
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The matcher in force, always current: give it to the middleware.
    pub fn matcher(&self) -> SharedMatcher {
        self.inner.shared.clone()
    }

    /// The state: halted variants and the schedules' clock.
    pub fn state(&self) -> ReleaseState {
        self.core().state.clone()
    }

    /// The rule set in force.
    pub fn rules(&self) -> RuleSet {
        self.core().rules.clone()
    }

    /// Calls `observer` after every change, with the new matcher in force
    /// (for logs, metrics, and sharing the state with a fleet). It runs on
    /// the thread that made the change: keep it short, and do not call
    /// back into a method that changes the release.
    pub fn subscribe(&self, observer: impl Fn(&ReleaseEvent) + Send + Sync + 'static) {
        self.inner
            .observers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(observer));
    }

    fn emit(&self, events: &[ReleaseEvent]) {
        if events.is_empty() {
            return;
        }
        let observers = self
            .inner
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for e in events {
            for o in &observers {
                o(e);
            }
        }
    }

    /// Compiles for the core's state now and swaps it in.
    fn swap(&self, core: &mut Core, now: SystemTime) -> Result<(), CompileError> {
        let matcher = compile(&core.rules, core.version.as_ref(), &core.state, now)?;
        self.inner.shared.store(matcher);
        core.generation += 1;
        self.inner.wake.notify_all();
        Ok(())
    }

    /// Puts a new rule set in force. A new version (another SHA-256) starts
    /// from a fresh state: halts are cleared and the guards start over; the
    /// same version (the same text, read again) keeps the state.
    ///
    /// # Errors
    ///
    /// The compile error; the rules in force keep serving.
    pub fn set_rules(
        &self,
        rules: RuleSet,
        version: Option<RuleSetVersion>,
    ) -> Result<(), CompileError> {
        let now = SystemTime::now();
        let mut core = self.core();
        let hash = version.as_ref().map(RuleSetVersion::hash);
        let reset = hash.is_none() || hash != core.state.version;
        let state = if reset {
            ReleaseState {
                version: hash,
                ..ReleaseState::default()
            }
        } else {
            core.state.clone()
        };
        let matcher = compile(&rules, version.as_ref(), &state, now)?;
        let judge = Judge::new(matcher.guards(), matcher.default_variant(), Instant::now());
        self.inner.shared.store(matcher);
        self.inner.judge.store(Arc::new(judge));
        core.rules = rules;
        core.version = version.clone();
        core.state = state;
        core.generation += 1;
        self.inner.wake.notify_all();
        drop(core);
        self.emit(&[ReleaseEvent::Rules { version, reset }]);
        Ok(())
    }

    /// Halts `variant` now: the rules that send traffic to it stop deciding
    /// (requests go on to later rules and the default, and are tagged
    /// accordingly), its incoming tags are not trusted, and the schedules
    /// freeze. It stays halted until [`resume`](Release::resume) or a new
    /// rule-set version.
    ///
    /// Returns `false` if it was already halted.
    ///
    /// # Errors
    ///
    /// When `variant` is not a variant of the rule set, or is its default.
    ///
    /// ```
    /// let release = graymatch::Release::new(graymatch::RuleSet::from_yaml(
    ///     "{default: stable, rules: [{name: all, to: gray}]}")?, None)?;
    /// assert_eq!(release.halt("gray", "operator: bad build"), Ok(true));
    /// assert_eq!(release.matcher().decide(&http::Request::new(())).variant(), "stable");
    /// assert!(release.halt("stable", "no").is_err());
    /// assert!(release.halt("grey", "no").is_err());
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn halt(&self, variant: &str, reason: &str) -> Result<bool, CompileError> {
        self.halt_by(variant, reason, ChangedBy::Operator, SystemTime::now())
    }

    fn halt_by(
        &self,
        variant: &str,
        reason: &str,
        origin: ChangedBy,
        now: SystemTime,
    ) -> Result<bool, CompileError> {
        let mut core = self.core();
        {
            let m = self.inner.shared.load();
            if !m.variants().any(|v| v == variant) {
                return Err(CompileError::invalid(
                    "halt",
                    format!("`{variant}` is not a variant of the rule set"),
                ));
            }
            if m.default_variant() == variant {
                return Err(CompileError::invalid(
                    "halt",
                    format!("`{variant}` is the default variant, which cannot be halted"),
                ));
            }
        }
        if !core.state.halt(variant, reason, now) {
            return Ok(false);
        }
        self.swap(&mut core, now)?;
        drop(core);
        self.emit(&[ReleaseEvent::Halted {
            variant: variant.to_owned(),
            reason: reason.to_owned(),
            origin,
        }]);
        Ok(true)
    }

    /// Resumes `variant` (`None`: every halted variant): its rules decide
    /// again, its guard starts over, and when nothing is left halted the
    /// schedules go on from the step where they froze. Returns `false` if
    /// nothing was halted.
    pub fn resume(&self, variant: Option<&str>) -> bool {
        let now = SystemTime::now();
        let mut core = self.core();
        let before = halted_names(&core.state);
        if !core.state.resume(variant, now) {
            return false;
        }
        let events = self.resumed(&mut core, &before, ChangedBy::Operator, now);
        drop(core);
        self.emit(&events);
        true
    }

    fn resumed(
        &self,
        core: &mut Core,
        before: &[String],
        origin: ChangedBy,
        now: SystemTime,
    ) -> Vec<ReleaseEvent> {
        // The rules compiled before, with these variants; the swap cannot
        // fail, and if it did the old matcher would keep serving.
        let _ = self.swap(core, now);
        let judge = self.inner.judge.load();
        before
            .iter()
            .filter(|v| !core.state.is_halted(v))
            .map(|v| {
                judge.reset(v);
                ReleaseEvent::Resumed {
                    variant: v.clone(),
                    origin,
                }
            })
            .collect()
    }

    /// Applies a state shared by the fleet (another instance's trip, the
    /// CLI's halt or resume). Ignored (`false`) when it is about another
    /// rule-set version or changes nothing.
    pub fn apply_state(&self, state: ReleaseState) -> bool {
        let now = SystemTime::now();
        let mut core = self.core();
        if state.version.is_some() && state.version != core.state.version {
            return false;
        }
        let known = {
            let m = self.inner.shared.load();
            let default = m.default_variant();
            let names: Vec<&str> = m.variants().collect();
            state
                .halted
                .iter()
                .all(|h| h.variant != default && names.contains(&h.variant.as_str()))
        };
        let mut state = state;
        state.version.clone_from(&core.state.version);
        if !known || state == core.state {
            return false;
        }
        let before = halted_names(&core.state);
        let mut events: Vec<ReleaseEvent> = state
            .halted
            .iter()
            .filter(|h| !before.contains(&h.variant))
            .map(|h| ReleaseEvent::Halted {
                variant: h.variant.clone(),
                reason: h.reason.clone(),
                origin: ChangedBy::Fleet,
            })
            .collect();
        core.state = state;
        events.extend(self.resumed(&mut core, &before, ChangedBy::Fleet, now));
        drop(core);
        self.emit(&events);
        true
    }

    /// Moves the schedules to the step in force at `now`, if it changed.
    /// Returns when the next step begins. [`run_clock`](Release::run_clock)
    /// calls this on time; tests call it with their own clock.
    pub fn tick_at(&self, now: SystemTime) -> Option<SystemTime> {
        let mut core = self.core();
        let due = self
            .inner
            .shared
            .load()
            .next_change()
            .is_some_and(|n| n <= now);
        if !due {
            return self.inner.shared.load().next_change();
        }
        // A rule set that compiled once compiles again.
        let _ = self.swap(&mut core, now);
        drop(core);
        let next_change = self.inner.shared.load().next_change();
        self.emit(&[ReleaseEvent::Stepped { next_change }]);
        next_change
    }

    /// Counts one outcome of a request decided by this release: a failure
    /// (a `5xx` or an error) or not, and its latency. When a guard trips,
    /// its variant is halted at once. Cheap when the rule set has no
    /// guards (one atomic load).
    pub fn record(&self, decision: &Decision, failed: bool, latency: Duration) {
        self.record_at(decision.variant(), failed, latency, Instant::now());
    }

    /// [`record`](Release::record) with the variant's name and the time of
    /// the outcome given.
    pub fn record_at(&self, variant: &str, failed: bool, latency: Duration, now: Instant) {
        let judge = self.inner.judge.load();
        if judge.is_empty() {
            return;
        }
        if let Some(trip) = judge.record(variant, failed, latency, now) {
            drop(judge);
            let reason = format!("guard: {}", trip.reason);
            // The guard's variant is in the rule set and is not the default.
            let _ = self.halt_by(trip.variant, &reason, ChangedBy::Guard, SystemTime::now());
        }
    }

    /// Starts a thread that steps the schedules on time: it compiles the
    /// next step's matcher shortly before the step begins and swaps it in
    /// at the boundary. Calling it again does nothing; the thread ends
    /// within a second of the last clone of the release being dropped.
    ///
    /// # Errors
    ///
    /// When the thread cannot be spawned.
    pub fn run_clock(&self) -> std::io::Result<()> {
        if self.inner.clock.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let weak = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("graymatch-release-clock".into())
            .spawn(move || clock(&weak))
            .map(drop)
            .inspect_err(|_| self.inner.clock.store(false, Ordering::Release))
    }
}

/// The clock thread: compile each step ahead, swap it in on time.
fn clock(weak: &Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let release = Release { inner };
        let now = SystemTime::now();
        let next = release.inner.shared.load().next_change();
        match next.map(|n| n.duration_since(now)) {
            // Due (or the clock went backwards past it): step now.
            Some(Err(_)) | Some(Ok(Duration::ZERO)) => {
                release.tick_at(now);
            }
            Some(Ok(left)) if left <= LEAD => {
                let n = next.unwrap_or(now);
                let (ahead, generation) = {
                    let core = release.core();
                    let m = compile(&core.rules, core.version.as_ref(), &core.state, n);
                    (m, core.generation)
                };
                std::thread::sleep(left);
                let mut core = release.core();
                if let Ok(m) = ahead
                    && core.generation == generation
                {
                    release.inner.shared.store(m);
                    core.generation += 1;
                    drop(core);
                    let next_change = release.inner.shared.load().next_change();
                    release.emit(&[ReleaseEvent::Stepped { next_change }]);
                }
            }
            left => {
                let wait = left
                    .and_then(Result::ok)
                    .map_or(CLOCK_CHECK, |l| (l - LEAD).min(CLOCK_CHECK));
                let core = release.core();
                let _ = release
                    .inner
                    .wake
                    .wait_timeout(core, wait)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

/// The names of the variants `state` halts.
fn halted_names(state: &ReleaseState) -> Vec<String> {
    state.halted.iter().map(|h| h.variant.clone()).collect()
}

/// Compiles `rules` for `state` at wall-clock time `now`.
fn compile(
    rules: &RuleSet,
    version: Option<&RuleSetVersion>,
    state: &ReleaseState,
    now: SystemTime,
) -> Result<Matcher, CompileError> {
    let halted = halted_names(state);
    let m = rules.compile_moment(&Moment {
        time: state.schedule_time(now),
        shift: state.paused,
        frozen: state.frozen_at.is_some(),
        halted: &halted,
    })?;
    Ok(match version {
        Some(v) => m.with_version(v.clone()),
        None => m,
    })
}

/// `SystemTime` as RFC 3339 text.
mod time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_precise(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        crate::schedule::timestamp(&text).map_err(serde::de::Error::custom)
    }
}

/// `Option<SystemTime>` as RFC 3339 text.
mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub(super) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::rfc3339_precise(*t)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| crate::schedule::timestamp(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `Duration` as whole milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// `t` to the millisecond, as states keep times (so a state read back is
/// the state written).
fn to_millis(t: SystemTime) -> SystemTime {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// RFC 3339 in UTC to the millisecond.
fn rfc3339_precise(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(to_millis(t)) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => "1970-01-01T00:00:00Z".to_owned(),
    }
}
