//! Scheduled steps: a rule's percent as a function of time, checked and
//! parsed once at compile time.
//!
//! A matcher is compiled for one moment, with each scheduled rule at that
//! moment's percent, and knows when its next step begins
//! ([`Matcher::next_change`](crate::Matcher::next_change)); no clock is read
//! while deciding.

use std::time::{Duration, SystemTime};

use crate::rules::Schedule;

/// A schedule with its times parsed and its steps checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CompiledSchedule {
    pub(crate) start: SystemTime,
    /// Each step's percent in ppm and when it begins, as an offset from
    /// `start`; the last step holds forever.
    pub(crate) steps: Box<[(Duration, u32)]>,
}

/// Where a schedule stands at a moment.
///
/// ```
/// # #[cfg(feature = "yaml")] {
/// use std::time::{Duration, SystemTime};
///
/// let rules = graymatch::RuleSet::from_yaml(r#"
/// default: stable
/// rules:
///   - name: canary
///     to: gray
///     sticky: { header: x-user-id }
///     schedule:
///       start: 2026-11-24T10:00:00Z
///       steps: [{ percent: 5, for: 10m }, { percent: 20, for: 30m }, { percent: 100 }]
/// "#)?;
/// let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_514_400);
/// let m = rules.compile_at(start + Duration::from_secs(15 * 60))?;
/// let step = m.schedule("canary").unwrap();
/// assert_eq!((step.step(), step.percent()), (Some(1), 20.0));
/// assert_eq!(step.next_change(), Some(start + Duration::from_secs(40 * 60)));
/// # }
/// # Ok::<(), graymatch::CompileError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    step: Option<usize>,
    steps: usize,
    percent: f64,
    since: Option<SystemTime>,
    next: Option<SystemTime>,
}

impl Position {
    /// The index of the step in force, or `None` before the start.
    pub fn step(&self) -> Option<usize> {
        self.step
    }

    /// How many steps the schedule has.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The percent in force (0 before the start).
    pub fn percent(&self) -> f64 {
        self.percent
    }

    /// When the step in force began (`None` before the start).
    pub fn since(&self) -> Option<SystemTime> {
        self.since
    }

    /// When the next step begins (`None` on the last step).
    pub fn next_change(&self) -> Option<SystemTime> {
        self.next
    }
}

impl CompiledSchedule {
    /// Checks and parses `schedule`; an error is the place inside the rule
    /// (`schedule.steps[2]`) and the message.
    pub(crate) fn new(schedule: &Schedule) -> Result<Self, (String, String)> {
        let start = timestamp(&schedule.start).map_err(|m| ("schedule.start".to_owned(), m))?;
        if schedule.steps.is_empty() {
            return Err((
                "schedule.steps".into(),
                "a schedule needs at least one step".into(),
            ));
        }
        let mut steps = Vec::with_capacity(schedule.steps.len());
        let mut begin = Duration::ZERO;
        let last = schedule.steps.len() - 1;
        for (i, step) in schedule.steps.iter().enumerate() {
            let place = format!("schedule.steps[{i}]");
            let ppm = crate::compile::ppm(step.percent).map_err(|m| (place.clone(), m))?;
            if let Some(&(_, before)) = steps.last()
                && ppm < before
            {
                return Err((
                    place,
                    format!(
                        "percent {} is below the step before ({}): steps only go up, so no sticky user leaves",
                        step.percent,
                        schedule.steps[i - 1].percent
                    ),
                ));
            }
            steps.push((begin, ppm));
            match (&step.duration, i == last) {
                (Some(d), _) => {
                    let d = duration(d).map_err(|m| (format!("{place}.for"), m))?;
                    begin = begin
                        .checked_add(d)
                        .filter(|b| start.checked_add(*b).is_some())
                        .ok_or_else(|| {
                            (
                                format!("{place}.for"),
                                "the schedule ends too far away".into(),
                            )
                        })?;
                }
                (None, true) => {}
                (None, false) => {
                    return Err((
                        place,
                        "only the last step may leave out `for` (this one would never end, and the steps after it would overlap it)".into(),
                    ));
                }
            }
        }
        Ok(CompiledSchedule {
            start,
            steps: steps.into_boxed_slice(),
        })
    }

    /// The step in force at `time`: its index (`None` before the start), its
    /// ppm, and when the next step begins.
    pub(crate) fn at(&self, time: SystemTime) -> (Option<usize>, u32, Option<SystemTime>) {
        let Ok(elapsed) = time.duration_since(self.start) else {
            return (None, 0, Some(self.start));
        };
        // The last step whose beginning has passed.
        let i = self.steps.partition_point(|&(b, _)| b <= elapsed) - 1;
        let next = self.steps.get(i + 1).map(|&(b, _)| self.start + b);
        (Some(i), self.steps[i].1, next)
    }

    /// [`at`](Self::at) as a public [`Position`].
    pub(crate) fn step_at(&self, time: SystemTime) -> Position {
        let (step, ppm, next) = self.at(time);
        Position {
            step,
            steps: self.steps.len(),
            percent: f64::from(ppm) / 10_000.0,
            since: step.map(|i| self.start + self.steps[i].0),
            next,
        }
    }
}

/// An RFC 3339 time with an offset, as a `SystemTime`.
pub(crate) fn timestamp(text: &str) -> Result<SystemTime, String> {
    let t: jiff::Timestamp = text.trim().parse().map_err(|e| {
        format!("{text:?} is not an RFC 3339 time with an offset (2026-11-24T10:00:00Z): {e}")
    })?;
    Ok(SystemTime::from(t))
}

/// A positive duration: `10m`, `1h30m`, `90s`, `800ms`, `2d` (a day is 24
/// hours), or ISO 8601 (`PT10M`).
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let bad = |e: &dyn std::fmt::Display| {
        format!("{text:?} is not a duration such as 10m, 1h30m, 90s or 800ms: {e}")
    };
    let span: jiff::Span = text.trim().parse().map_err(|e| bad(&e))?;
    let d = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| bad(&e))?;
    match Duration::try_from(d) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{text:?} is not a positive duration")),
    }
}

/// `2026-11-24T10:00:00Z`: a time as RFC 3339 in UTC, to the second.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_514_400);
/// assert_eq!(graymatch::schedule::rfc3339(t), "2026-11-24T10:00:00Z");
/// ```
pub fn rfc3339(time: SystemTime) -> String {
    match jiff::Timestamp::try_from(time) {
        Ok(t) => format!("{:.0}", t),
        Err(_) => format!("{time:?}"),
    }
}

/// Parses an RFC 3339 time with an offset (`2026-11-24T10:00:00Z`), as rule
/// files, `--at` options and test files write it.
///
/// # Errors
///
/// A message naming the text, when it is not such a time.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let t = graymatch::schedule::parse_time("2026-11-24T18:00:00+08:00").unwrap();
/// assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_514_400));
/// assert!(graymatch::schedule::parse_time("tomorrow").is_err());
/// ```
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    timestamp(text)
}

/// Parses a duration as rule files write it (`10m`, `1h30m`, `90s`,
/// `800ms`, `2d`).
///
/// # Errors
///
/// A message naming the text, when it is not a positive duration.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(graymatch::schedule::parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert!(graymatch::schedule::parse_duration("0s").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Schedule;

    const START: u64 = 1_795_514_400; // 2026-11-24T10:00:00Z

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(START + secs)
    }

    #[test]
    fn steps_by_time() {
        let s = Schedule::new("2026-11-24T10:00:00Z")
            .step(5.0, "10m")
            .step(20.0, "30m")
            .step(50.0, "1h")
            .last(100.0);
        let c = CompiledSchedule::new(&s).unwrap();
        let cases = [
            ("before the start", 0, None, 0, Some(at(0))),
            ("at the start", START, Some(0), 50_000, Some(at(600))),
            (
                "one second before step 1",
                START + 599,
                Some(0),
                50_000,
                Some(at(600)),
            ),
            (
                "step 1 begins",
                START + 600,
                Some(1),
                200_000,
                Some(at(2400)),
            ),
            ("step 2", START + 2400, Some(2), 500_000, Some(at(6000))),
            (
                "the last step holds",
                START + 100_000,
                Some(3),
                1_000_000,
                None,
            ),
        ];
        for (name, secs, step, ppm, next) in cases {
            let t = if secs == 0 {
                at(0) - Duration::from_secs(1)
            } else {
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
            };
            assert_eq!(c.at(t), (step, ppm, next), "{name}");
        }
    }

    #[test]
    fn bad_schedules_name_the_place() {
        let cases: [(&str, Schedule, &str); 7] = [
            (
                "steps go down",
                Schedule::new("2026-11-24T10:00:00Z")
                    .step(20.0, "10m")
                    .last(5.0),
                "schedule.steps[1]: percent 5 is below the step before (20)",
            ),
            (
                "above 100",
                Schedule::new("2026-11-24T10:00:00Z")
                    .step(50.0, "10m")
                    .last(120.0),
                "schedule.steps[1]: percent 120 is not between 0 and 100",
            ),
            (
                "a step without for before the last overlaps",
                Schedule::new("2026-11-24T10:00:00Z").last(5.0).last(10.0),
                "schedule.steps[0]: only the last step may leave out `for`",
            ),
            (
                "no steps",
                Schedule::new("2026-11-24T10:00:00Z"),
                "schedule.steps: a schedule needs at least one step",
            ),
            (
                "no offset",
                Schedule::new("2026-11-24T10:00:00").last(5.0),
                "schedule.start: \"2026-11-24T10:00:00\" is not an RFC 3339 time",
            ),
            (
                "zero duration",
                Schedule::new("2026-11-24T10:00:00Z")
                    .step(5.0, "0s")
                    .last(10.0),
                "schedule.steps[0].for: \"0s\" is not a positive duration",
            ),
            (
                "not a duration",
                Schedule::new("2026-11-24T10:00:00Z")
                    .step(5.0, "soon")
                    .last(10.0),
                "schedule.steps[0].for: \"soon\" is not a duration",
            ),
        ];
        for (name, s, want) in cases {
            let (place, message) = CompiledSchedule::new(&s).unwrap_err();
            let err = format!("{place}: {message}");
            assert!(err.starts_with(want), "{name}: {err}");
        }
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("10m", 600),
            ("1h30m", 5400),
            ("90s", 90),
            ("2d", 172_800),
            ("PT10M", 600),
        ] {
            assert_eq!(duration(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(duration("800ms"), Ok(Duration::from_millis(800)));
        for bad in ["", "-5m", "0s", "10 parsecs", "1mo"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
