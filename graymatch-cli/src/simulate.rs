//! `graymatch simulate`: per-rule variant shares over synthetic users and
//! random draws, and the users a percent change would move.
//!
//! Each rule is run alone, without its condition, through the real matcher:
//! sticky rules with requests carrying `user-0`, `user-1`, ... as their key,
//! other rules with keyless requests (random draws).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use graymatch::{Matcher, Reason, Rule, RuleSet};
use http::Request;

use crate::load::{self, Error, Format};

/// The label of traffic that no target takes.
const THROUGH: &str = "(falls through)";

pub(crate) fn run(
    file: &Path,
    format: Option<Format>,
    users: u32,
    requests: u32,
    raise: Option<&str>,
    at: Option<&str>,
) -> Result<ExitCode, Error> {
    let at = crate::load::time(at)?;
    let (set, _) = match load::rules(file, format)? {
        Ok(r) => r,
        Err(e) => {
            println!("{}: invalid: {e}", load::display(file));
            return Ok(ExitCode::from(1));
        }
    };
    if users == 0 || requests == 0 {
        return Err(Error(
            "--users and --requests must be at least 1".to_owned(),
        ));
    }
    let (set, lines) = at_moment(&set, at)?;
    print!("{lines}");
    match raise {
        None => print!("{}", shares(&set, users, requests)?),
        Some(spec) => print!("{}", raised(&set, spec, users, requests)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// The rule set with each scheduled rule at its percent at `at` (and the
/// lines that say where each schedule stands).
pub(crate) fn at_moment(
    set: &RuleSet,
    at: std::time::SystemTime,
) -> Result<(RuleSet, String), Error> {
    let m = set.compile_at(at).map_err(|e| Error(e.to_string()))?;
    let mut out = String::new();
    let mut resolved = set.clone();
    for rule in &mut resolved.rules {
        if rule.schedule.is_none() {
            continue;
        }
        let Some(pos) = m.schedule(&rule.name) else {
            continue;
        };
        let step = match pos.step() {
            None => "before its start".to_owned(),
            Some(i) => format!("step {} of {}", i + 1, pos.steps()),
        };
        let next = pos.next_change().map_or_else(
            || "the last step".to_owned(),
            |n| format!("next step at {}", graymatch::schedule::rfc3339(n)),
        );
        let _ = writeln!(
            out,
            "at {}: {} is at {step}, {} percent ({next})",
            graymatch::schedule::rfc3339(at),
            rule.name,
            pos.percent()
        );
        rule.schedule = None;
        rule.percent = Some(pos.percent());
    }
    if !out.is_empty() {
        out.push('\n');
    }
    Ok((resolved, out))
}

/// The share table of every rule.
pub(crate) fn shares(set: &RuleSet, users: u32, requests: u32) -> Result<String, Error> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<28} share of the traffic that reaches the rule and holds its condition",
        "rule", "draw"
    );
    for rule in &set.rules {
        let (m, draws, kind) = alone(set, rule, users, requests)?;
        let counts = assign(&m, rule, draws)
            .into_iter()
            .fold(BTreeMap::new(), |mut acc, v| {
                *acc.entry(v).or_insert(0u32) += 1;
                acc
            });
        let cells: Vec<String> = order(rule)
            .into_iter()
            .map(|v| {
                let n = counts.get(v.as_str()).copied().unwrap_or(0);
                format!("{v} {:.2}%", f64::from(n) * 100.0 / f64::from(draws))
            })
            .collect();
        let _ = writeln!(out, "{:<24} {:<28} {}", rule.name, kind, cells.join("  "));
    }
    Ok(out)
}

/// Users entering and leaving each variant if a percent changed.
fn raised(set: &RuleSet, spec: &str, users: u32, requests: u32) -> Result<String, Error> {
    let (target, percent) = spec.split_once('=').ok_or_else(|| {
        Error(format!(
            "invalid --raise {spec:?}: write RULE=PERCENT or RULE/VARIANT=PERCENT"
        ))
    })?;
    let percent: f64 = percent.trim().parse().map_err(|_| {
        Error(format!(
            "invalid --raise {spec:?}: {percent:?} is not a number"
        ))
    })?;
    let (rule_name, variant) = match target.split_once('/') {
        Some((r, v)) => (r, Some(v)),
        None => (target, None),
    };
    let index = set
        .rules
        .iter()
        .position(|r| r.name == rule_name)
        .ok_or_else(|| {
            Error(format!(
                "invalid --raise {spec:?}: no rule named {rule_name:?}"
            ))
        })?;
    let before = &set.rules[index];
    let mut after = before.clone();
    match (&mut after.split, variant) {
        (Some(split), Some(v)) => {
            let t = split.iter_mut().find(|t| t.to == v).ok_or_else(|| {
                Error(format!(
                    "invalid --raise {spec:?}: rule {rule_name} has no target {v:?}"
                ))
            })?;
            t.percent = percent;
        }
        (Some(split), None) => split[0].percent = percent,
        (None, Some(v)) if after.to.as_deref() == Some(v) => after.percent = Some(percent),
        (None, Some(v)) => {
            return Err(Error(format!(
                "invalid --raise {spec:?}: rule {rule_name} has no target {v:?}"
            )));
        }
        (None, None) => after.percent = Some(percent),
    }
    let mut changed = set.clone();
    changed.rules[index] = after.clone();
    changed
        .compile()
        .map_err(|e| Error(format!("invalid --raise {spec:?}: {e}")))?;

    let (m_before, draws, kind) = alone(set, before, users, requests)?;
    let (m_after, _, _) = alone(set, &after, users, requests)?;
    let a = assign(&m_before, before, draws);
    let b = assign(&m_after, &after, draws);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "raise {spec} ({kind}, {draws} {}):",
        if kind.starts_with("sticky") {
            "users"
        } else {
            "random draws"
        }
    );
    if !kind.starts_with("sticky") {
        let _ = writeln!(
            out,
            "  a random rule keeps no user in place: every request draws again"
        );
    }
    let _ = writeln!(
        out,
        "  {:<20} {:>10} {:>10} {:>10} {:>10}",
        "variant", "before", "after", "entered", "left"
    );
    let mut labels = order(before);
    for l in order(&after) {
        if !labels.contains(&l) {
            labels.insert(labels.len() - 1, l);
        }
    }
    for v in labels {
        let v = v.as_str();
        let count = |xs: &[&str]| xs.iter().filter(|x| **x == v).count();
        let entered = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| **x != v && **y == v)
            .count();
        let left = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| **x == v && **y != v)
            .count();
        let _ = writeln!(
            out,
            "  {:<20} {:>10} {:>10} {:>10} {:>10}",
            v,
            count(&a),
            count(&b),
            entered,
            left
        );
    }
    Ok(out)
}

/// The variants of a rule's targets in order, then the fall-through label.
fn order(rule: &Rule) -> Vec<String> {
    let mut v: Vec<String> = match (&rule.to, &rule.split) {
        (Some(to), _) => vec![to.clone()],
        (None, Some(split)) => split.iter().map(|t| t.to.clone()).collect(),
        _ => vec![],
    };
    v.push(THROUGH.to_owned());
    v
}

/// A matcher holding `rule` alone, with no condition; how many draws to make;
/// and how the rule draws.
fn alone(
    set: &RuleSet,
    rule: &Rule,
    users: u32,
    requests: u32,
) -> Result<(Matcher, u32, String), Error> {
    let mut single = RuleSet::new(set.default.clone());
    single.variants = set.variants.clone();
    let mut r = rule.clone();
    r.when = None;
    single.rules.push(r);
    let m = single.compile().map_err(|e| Error(e.to_string()))?;
    Ok(match &rule.sticky {
        Some(s) => {
            let key = match (&s.header, &s.cookie, &s.query) {
                (Some(h), _, _) => format!("header {h}"),
                (_, Some(c), _) => format!("cookie {c}"),
                (_, _, Some(q)) => format!("query {q}"),
                _ => String::new(),
            };
            (m, users, format!("sticky {key}"))
        }
        None => {
            let random = rule.split.is_some() || rule.percent.is_some_and(|p| p > 0.0 && p < 100.0);
            (
                m,
                requests,
                if random {
                    "random".to_owned()
                } else {
                    "fixed".to_owned()
                },
            )
        }
    })
}

/// The variant (or the fall-through label) of each synthetic request.
fn assign(m: &Matcher, rule: &Rule, draws: u32) -> Vec<&'static str> {
    (0..draws)
        .map(|i| {
            let d = m.decide(&synthetic(rule, i));
            if d.reason() == Reason::Rule {
                d.variant()
            } else {
                THROUGH
            }
        })
        .collect()
}

/// A request carrying `user-{i}` as the rule's sticky key, if it has one.
fn synthetic(rule: &Rule, i: u32) -> Request<()> {
    let user = format!("user-{i}");
    let mut builder = Request::builder();
    if let Some(s) = &rule.sticky {
        if let Some(h) = &s.header {
            builder = builder.header(h.as_str(), user.as_str());
        } else if let Some(c) = &s.cookie {
            builder = builder.header("cookie", format!("{c}={user}"));
        } else if let Some(q) = &s.query {
            let name: String = form_encode(q);
            builder = builder.uri(format!("/?{name}={user}"));
        }
    }
    builder.body(()).unwrap_or_default()
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
