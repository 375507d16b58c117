//! Scheduled steps, halted variants and releases, through the public API:
//! a schedule driven by a test clock, sticky users that never leave gray
//! while steps rise, halts that send traffic on, and the errors of bad
//! schedules and guards.

mod support;

use std::time::{Duration, Instant, SystemTime};

use graymatch::{ChangedBy, Reason, Release, ReleaseEvent, ReleaseState, RuleSet};
use support::req;

/// 2100-11-24T10:00:00Z: in the future, as a `Release` compiles for the
/// wall clock when it is made, and its test clock then starts before the
/// schedule.
// Regression: the start was 2026-11-24, and once the wall clock passed the
// schedule's end, `Release::new` compiled its last step and the test clock's
// ticks, all earlier, found nothing due.
fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(4_130_733_600)
}

fn min(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

const SCHEDULED: &str = r#"
default: stable
variants: [stable, gray]
propagation: { incoming: trust }
rules:
  - name: testers
    to: gray
    when: { header: { name: x-tester, equals: "1" } }
  - name: canary
    to: gray
    sticky: { header: x-user-id }
    schedule:
      start: 2100-11-24T10:00:00Z
      steps:
        - { percent: 5, for: 10m }
        - { percent: 20, for: 30m }
        - { percent: 50, for: 1h }
        - { percent: 100 }
guards:
  - { variant: gray, window: 10s, min_requests: 20, max_failure_rate: 0.05 }
"#;

fn users() -> Vec<http::Request<()>> {
    (0..2000)
        .map(|i| req("GET", "/", &[("x-user-id", format!("user-{i}").as_bytes())]))
        .collect()
}

fn gray_users(m: &graymatch::Matcher, users: &[http::Request<()>]) -> Vec<bool> {
    users
        .iter()
        .map(|r| m.decide(r).variant() == "gray")
        .collect()
}

#[test]
fn a_schedule_driven_by_a_test_clock_rises_and_no_sticky_user_leaves() {
    let rules = RuleSet::from_yaml(SCHEDULED).unwrap();
    let users = users();
    // (moment, step in force, expected percent, next change)
    let cases = [
        (
            "a minute before the start",
            start() - min(1),
            None,
            0.0,
            Some(start()),
        ),
        ("the start", start(), Some(0), 5.0, Some(start() + min(10))),
        (
            "step 2",
            start() + min(10),
            Some(1),
            20.0,
            Some(start() + min(40)),
        ),
        (
            "inside step 2",
            start() + min(39),
            Some(1),
            20.0,
            Some(start() + min(40)),
        ),
        (
            "step 3",
            start() + min(40),
            Some(2),
            50.0,
            Some(start() + min(100)),
        ),
        ("the last step", start() + min(100), Some(3), 100.0, None),
        ("a day later", start() + min(1440), Some(3), 100.0, None),
    ];
    let mut before: Option<Vec<bool>> = None;
    for (name, at, step, percent, next) in cases {
        let m = rules.compile_at(at).unwrap();
        let pos = m.schedule("canary").unwrap();
        assert_eq!((pos.step(), pos.percent()), (step, percent), "{name}");
        assert_eq!(m.next_change(), next, "{name}");
        let gray = gray_users(&m, &users);
        let share = gray.iter().filter(|&&g| g).count() as f64 / users.len() as f64 * 100.0;
        assert!(
            (share - percent).abs() < 3.0,
            "{name}: {share}% gray, want about {percent}%"
        );
        if let Some(b) = &before {
            for (i, (was, is)) in b.iter().zip(&gray).enumerate() {
                assert!(!was || *is, "{name}: user-{i} left gray as the steps rose");
            }
        }
        before = Some(gray);
    }
}

#[test]
fn a_release_steps_at_each_boundary_and_freezes_while_halted() {
    let release = Release::new(RuleSet::from_yaml(SCHEDULED).unwrap(), None).unwrap();
    let shared = release.matcher();
    let percent = || shared.load().schedule("canary").unwrap().percent();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    release.subscribe(move |e| seen.lock().unwrap().push(e.clone()));

    // Driven by a test clock: nothing moves before a boundary, each tick
    // past one swaps in the step then in force.
    let t0 = start() + min(5);
    release.tick_at(t0);
    assert_eq!(percent(), 5.0);
    assert_eq!(release.tick_at(t0 + min(4)), Some(start() + min(10)));
    assert_eq!(percent(), 5.0, "not yet at the boundary");
    assert_eq!(release.tick_at(start() + min(10)), Some(start() + min(40)));
    assert_eq!(percent(), 20.0);

    // Halting freezes the schedule: the state's clock stops, and goes on
    // from where it stopped after the resume.
    let mut state = release.state();
    assert!(state.halt("gray", "operator", t0));
    assert_eq!(state.schedule_time(t0 + min(60)), t0);
    assert!(state.resume(None, t0 + min(60)));
    assert_eq!(state.paused, min(60));
    assert_eq!(state.schedule_time(t0 + min(65)), t0 + min(5));

    // Halt and resume through the release: events tell each change.
    assert_eq!(release.halt("gray", "operator: bad build"), Ok(true));
    assert_eq!(release.halt("gray", "again"), Ok(false));
    let tester = req("GET", "/", &[("x-tester", b"1")]);
    assert_eq!(shared.decide(&tester).variant(), "stable");
    assert_eq!(shared.load().next_change(), None, "frozen: no next step");
    assert!(release.resume(Some("gray")));
    assert!(!release.resume(Some("gray")));
    assert_eq!(shared.decide(&tester).variant(), "gray");
    let events = events.lock().unwrap().clone();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            ReleaseEvent::Stepped { .. } => "stepped".to_owned(),
            ReleaseEvent::Halted {
                variant,
                origin: ChangedBy::Operator,
                ..
            } => format!("halted {variant}"),
            ReleaseEvent::Resumed {
                variant,
                origin: ChangedBy::Operator,
            } => format!("resumed {variant}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["stepped", "stepped", "halted gray", "resumed gray"]);
}

#[test]
fn halted_variants_send_traffic_on() {
    let rules = RuleSet::from_yaml(
        r#"
default: stable
variants: [stable, gray, blue]
propagation: { incoming: trust }
rules:
  - { name: testers, to: gray, when: { header: { name: x-tester, equals: "1" } } }
  - { name: ab, split: [{ to: gray, percent: 50 }, { to: blue, percent: 50 }], sticky: { header: x-user-id, missing: skip } }
"#,
    )
    .unwrap();
    let release = Release::new(rules, None).unwrap();
    let m = release.matcher();
    let users = users();
    let before: Vec<&str> = users.iter().map(|r| m.decide(r).variant()).collect();
    release.halt("gray", "test").unwrap();
    let halted = m.load();
    assert_eq!(halted.halted().collect::<Vec<_>>(), ["gray"]);
    for (i, (r, was)) in users.iter().zip(&before).enumerate() {
        let d = halted.decide(r);
        match *was {
            // Blue's users stay where they were: the draw's ranges do not move.
            "blue" => assert_eq!(d.variant(), "blue", "user-{i}"),
            // Gray's go on to the next rule: here, the default.
            _ => assert_eq!(
                (d.variant(), d.reason()),
                ("stable", Reason::Default),
                "user-{i}"
            ),
        }
    }
    // A trusted tag naming a halted variant is not followed, from the
    // header or from baggage; other tags still are.
    let cases: [(&str, &[(&str, &[u8])], &str, Reason); 4] = [
        (
            "gray header",
            &[("x-gray", b"gray")],
            "stable",
            Reason::Default,
        ),
        (
            "gray baggage",
            &[("baggage", b"gray=gray")],
            "stable",
            Reason::Default,
        ),
        (
            "blue header",
            &[("x-gray", b"blue")],
            "blue",
            Reason::Propagated,
        ),
        ("tester", &[("x-tester", b"1")], "stable", Reason::Default),
    ];
    for (name, headers, variant, reason) in cases {
        let d = halted.decide(&req("GET", "/", headers));
        assert_eq!((d.variant(), d.reason()), (variant, reason), "{name}");
    }
    let why = halted.explain(&req("GET", "/", &[("x-tester", b"1")]));
    assert!(why.to_string().contains("halted: gray (goes on)"), "{why}");
    // Messages too: a halted lane's tag goes to the default.
    assert_eq!(halted.extract(&[("x-gray", "gray")][..]), None);
}

#[test]
fn a_new_version_clears_the_state_and_the_same_version_keeps_it() {
    let rules = RuleSet::from_yaml(SCHEDULED).unwrap();
    let v1 = graymatch::RuleSetVersion::new([1; 32]);
    let v2 = graymatch::RuleSetVersion::new([2; 32]);
    let release = Release::new(rules.clone(), Some(v1.clone())).unwrap();
    release.halt("gray", "test").unwrap();
    release
        .set_rules(rules.clone(), Some(v1.clone().with_revision("etcd 7")))
        .unwrap();
    assert_eq!(release.state().halted.len(), 1, "same text: still halted");
    // A state for another version is ignored; for this one, applied.
    let mut other = ReleaseState {
        version: Some(v2.hash()),
        ..ReleaseState::default()
    };
    assert!(!release.apply_state(other.clone()));
    other.version = Some(v1.hash());
    assert!(release.apply_state(other), "the fleet resumed gray");
    assert!(release.state().halted.is_empty());
    release.halt("gray", "test").unwrap();
    release.set_rules(rules, Some(v2.clone())).unwrap();
    assert!(
        release.state().halted.is_empty(),
        "a new version starts afresh"
    );
    assert_eq!(release.state().version, Some(v2.hash()));
    // Unknown or default variants from the fleet are refused.
    let bad = ReleaseState {
        version: Some(v2.hash()),
        halted: vec![graymatch::Halt {
            variant: "stable".into(),
            at: start(),
            reason: "x".into(),
        }],
        ..ReleaseState::default()
    };
    assert!(!release.apply_state(bad));
}

#[test]
fn the_guard_halts_a_failing_variant_and_not_a_healthy_one() {
    let release = Release::new(RuleSet::from_yaml(SCHEDULED).unwrap(), None).unwrap();
    let t0 = Instant::now();
    // Healthy: 4 % failing (under 5 %), over 20 windows of 10 s.
    for i in 0..20_000u64 {
        let at = t0 + Duration::from_millis(i * 10);
        release.record_at("gray", i % 25 == 0, Duration::from_millis(5), at);
        release.record_at("stable", false, Duration::from_millis(5), at);
    }
    assert!(release.state().halted.is_empty(), "{:?}", release.state());
    // 10 % failing: halted within one window (10 s, here 1,000 requests).
    let t1 = t0 + Duration::from_secs(200);
    let mut halted_after = None;
    for i in 0..2_000u64 {
        release.record_at(
            "gray",
            i % 10 == 0,
            Duration::from_millis(5),
            t1 + Duration::from_millis(i * 10),
        );
        if !release.state().halted.is_empty() {
            halted_after = Some(i);
            break;
        }
    }
    let n = halted_after.expect("halted");
    assert!(n < 1_000, "halted after {n} requests");
}

#[test]
fn bad_schedules_and_guards_name_their_place() {
    let cases = [
        (
            "steps go down",
            "{name: c, to: gray, schedule: {start: '2026-11-24T10:00:00Z', steps: [{percent: 20, for: 10m}, {percent: 5}]}}",
            "",
            "rules[0] (c).schedule.steps[1]: percent 5 is below the step before (20)",
        ),
        (
            "a step without for overlaps the next",
            "{name: c, to: gray, schedule: {start: '2026-11-24T10:00:00Z', steps: [{percent: 5}, {percent: 20}]}}",
            "",
            "rules[0] (c).schedule.steps[0]: only the last step may leave out `for`",
        ),
        (
            "above 100",
            "{name: c, to: gray, schedule: {start: '2026-11-24T10:00:00Z', steps: [{percent: 5, for: 1h}, {percent: 120}]}}",
            "",
            "rules[0] (c).schedule.steps[1]: percent 120 is not between 0 and 100",
        ),
        (
            "schedule and percent",
            "{name: c, to: gray, percent: 5, schedule: {start: '2026-11-24T10:00:00Z', steps: [{percent: 5}]}}",
            "",
            "rules[0] (c): `percent` or `schedule`, not both",
        ),
        (
            "schedule on a split",
            "{name: c, split: [{to: gray, percent: 5}], schedule: {start: '2026-11-24T10:00:00Z', steps: [{percent: 5}]}}",
            "",
            "rules[0] (c): a schedule goes with `to`",
        ),
        (
            "unleash steps must be whole",
            "{name: c, to: gray, sticky: {header: u, algorithm: unleash}, schedule: {start: '2026-11-24T10:00:00Z', steps: [{percent: 5.5}]}}",
            "",
            "rules[0] (c).schedule.steps[0]: percent 5.5 is not a whole number",
        ),
        (
            "guard on an undeclared variant",
            "{name: c, to: gray}",
            "[{variant: grey, max_failure_rate: 0.1}]",
            "guards[0] (grey).variant: variant `grey` is not a variant of the rule set",
        ),
        (
            "guard on the default",
            "{name: c, to: gray}",
            "[{variant: stable, max_failure_rate: 0.1}]",
            "guards[0] (stable).variant: `stable` is the default variant, which cannot be guarded",
        ),
        (
            "failure rate out of range",
            "{name: c, to: gray}",
            "[{variant: gray, max_failure_rate: 1.5}]",
            "guards[0] (gray).max_failure_rate: 1.5 is not a share from 0 up to (not including) 1",
        ),
        (
            "ratio below 1",
            "{name: c, to: gray}",
            "[{variant: gray, max_failure_ratio: 0.5}]",
            "guards[0] (gray).max_failure_ratio: 0.5 is not a ratio from 1",
        ),
        (
            "window too short",
            "{name: c, to: gray}",
            "[{variant: gray, window: 10ms, max_p99: 1s}]",
            "guards[0] (gray).window: \"10ms\" is not between 1s and 1d",
        ),
        (
            "no threshold",
            "{name: c, to: gray}",
            "[{variant: gray, window: 1m}]",
            "guards[0] (gray): a guard needs at least one of",
        ),
        (
            "zero min_requests",
            "{name: c, to: gray}",
            "[{variant: gray, min_requests: 0, max_p99: 1s}]",
            "guards[0] (gray).min_requests: must be at least 1",
        ),
        (
            "guarded twice",
            "{name: c, to: gray}",
            "[{variant: gray, max_p99: 1s}, {variant: gray, max_p99: 2s}]",
            "guards[1] (gray): variant `gray` is guarded twice",
        ),
    ];
    for (name, rule, guards, want) in cases {
        let guards = if guards.is_empty() {
            String::new()
        } else {
            format!("guards: {guards}\n")
        };
        let text = format!("default: stable\nrules:\n  - {rule}\n{guards}");
        let err = RuleSet::from_yaml(&text)
            .unwrap()
            .compile()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "{name}: {err}");
    }
}

/// `t` as RFC 3339 to the millisecond.
fn rfc3339_ms(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    graymatch::schedule::rfc3339(t).replace('Z', &format!(".{ms:03}Z"))
}

/// A rule set whose canary steps 10 % for 600 ms from `start`, then 100 %.
fn quick_schedule(start: SystemTime) -> RuleSet {
    RuleSet::from_yaml(&format!(
        "default: stable\nrules:\n  - name: canary\n    to: gray\n    sticky: {{ header: x-user-id }}\n    schedule: {{ start: \"{}\", steps: [{{ percent: 10, for: 600ms }}, {{ percent: 100 }}] }}\n",
        rfc3339_ms(start)
    ))
    .unwrap()
}

#[test]
fn the_clock_thread_swaps_each_step_in_on_time_and_stops_while_frozen() {
    // Steps a few hundred milliseconds apart, from just after now.
    let start = SystemTime::now() + Duration::from_millis(400);
    let release = Release::new(quick_schedule(start), None).unwrap();
    release.run_clock().unwrap();
    release.run_clock().unwrap(); // a second call does nothing
    let shared = release.matcher();
    let percent = || shared.load().schedule("canary").unwrap().percent();
    assert_eq!(percent(), 0.0, "before the start");
    // (the percent awaited, the moment it is due)
    for (want, due) in [(10.0, start), (100.0, start + Duration::from_millis(600))] {
        let deadline = due + Duration::from_secs(2);
        while percent() != want {
            assert!(
                SystemTime::now() < deadline,
                "no step to {want}% by 2 s after it was due"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Never early: the step comes at or after its boundary (to the
        // millisecond the start was written with).
        assert!(
            SystemTime::now() + Duration::from_millis(1) >= due,
            "stepped to {want}% before its time"
        );
    }
    assert_eq!(shared.load().next_change(), None, "the last step");

    // Frozen: a release halted before its start does not step; resumed, it
    // goes on from where it froze (still before its start).
    let start = SystemTime::now() + Duration::from_millis(500);
    let release = Release::new(quick_schedule(start), None).unwrap();
    release.run_clock().unwrap();
    release.halt("gray", "test").unwrap();
    std::thread::sleep(Duration::from_millis(1300));
    let percent = || {
        release
            .matcher()
            .load()
            .schedule("canary")
            .unwrap()
            .percent()
    };
    assert_eq!(percent(), 0.0, "frozen");
    assert!(release.resume(None));
    assert_eq!(percent(), 0.0, "resumed where it froze");
    let next = release.matcher().load().next_change().expect("a next step");
    assert!(
        next > SystemTime::now() + Duration::from_millis(100),
        "the start moved by the time frozen"
    );
}
