//! `graymatch check`: validate rule files and summarise them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use graymatch::{Algorithm, Matcher, Missing, Rule, RuleSet};

use crate::load::{self, Error, Format};

pub(crate) fn run(files: &[PathBuf], format: Option<Format>) -> Result<ExitCode, Error> {
    let mut invalid = false;
    for path in files {
        let fmt = load::format_of(path, format)?;
        let text = load::read_text(path)?;
        let loaded = load::parse(&text, fmt).and_then(|set| {
            let m = set.compile()?;
            Ok((set, m))
        });
        match loaded {
            Ok((set, m)) => {
                print!("{}", summary(&load::display(path), &set, &m));
                println!("  {}", version_line(text.as_bytes()));
                for w in warnings(&set, &m) {
                    eprintln!("{}: warning: {w}", load::display(path));
                }
            }
            Err(e) => {
                println!("{}: invalid: {e}", load::display(path));
                invalid = true;
            }
        }
    }
    Ok(if invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What is valid but probably not meant.
pub(crate) fn warnings(set: &RuleSet, m: &Matcher) -> Vec<String> {
    let mut w = Vec::new();
    if m.trusts_incoming() && set.variants.is_none() {
        w.push(format!(
            "incoming: trust without `variants`: only {} (the default and the rules' targets) \
             are taken from incoming tags; list the variants this service serves",
            m.variants().collect::<Vec<_>>().join(", ")
        ));
    }
    w
}

/// `version: 3f2a9c1b7d4e (sha256 3f2a9c1b7d4e...)`: the id that metrics,
/// decisions and `graymatch status` show, and the full SHA-256 of the bytes.
pub(crate) fn version_line(text: &[u8]) -> String {
    let v = graymatch_source::version_of(text);
    format!("version: {} (sha256 {})", v.id(), v.hash())
}

/// The summary `check` prints for a valid rule set.
pub(crate) fn summary(name: &str, set: &RuleSet, m: &Matcher) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{name}: ok");
    let _ = writeln!(out, "  default: {}", m.default_variant());
    let _ = writeln!(
        out,
        "  variants: {}",
        m.variants().collect::<Vec<_>>().join(", ")
    );
    let p = &set.propagation;
    let _ = writeln!(
        out,
        "  propagation: header {}, baggage {}, incoming {}",
        p.header.as_deref().unwrap_or("off"),
        p.baggage.as_deref().unwrap_or("off"),
        match p.incoming {
            graymatch::Incoming::Ignore => "ignore",
            graymatch::Incoming::Trust => "trust",
        }
    );
    let _ = writeln!(out, "  rules:");
    if set.rules.is_empty() {
        let _ = writeln!(
            out,
            "    (none: every request gets {})",
            m.default_variant()
        );
    }
    for (i, rule) in set.rules.iter().enumerate() {
        let _ = writeln!(out, "    {}. {}", i + 1, describe(rule));
        if let Some(pos) = m.schedule(&rule.name) {
            let step = match pos.step() {
                None => "before its start".to_owned(),
                Some(i) => format!("step {} of {}", i + 1, pos.steps()),
            };
            let _ = writeln!(out, "       now: {step}, {}%", pos.percent());
        }
    }
    for g in m.guards() {
        let mut limits = Vec::new();
        if let Some(r) = g.max_failure_rate() {
            limits.push(format!("failure rate > {}%", r * 100.0));
        }
        if let Some(r) = g.max_failure_ratio() {
            limits.push(format!("failure rate > {r}x the default's"));
        }
        if let Some(d) = g.max_p99() {
            limits.push(format!("p99 > {d:?}"));
        }
        if let Some(r) = g.max_p99_ratio() {
            limits.push(format!("p99 > {r}x the default's"));
        }
        let _ = writeln!(
            out,
            "  guard: {} halts on {} over {:?} (at least {} requests)",
            g.variant(),
            limits.join(" or "),
            g.window(),
            g.min_requests()
        );
    }
    out
}

/// `canary-20 -> gray 20% sticky header x-user-id when header x-region in ["hz"]`
pub(crate) fn describe(rule: &Rule) -> String {
    let mut s = format!("{} -> ", rule.name);
    match (&rule.to, &rule.split) {
        (Some(to), _) => match &rule.schedule {
            Some(schedule) => {
                let steps: Vec<String> = schedule
                    .steps
                    .iter()
                    .map(|st| match &st.duration {
                        Some(d) => format!("{}% for {d}", st.percent),
                        None => format!("{}%", st.percent),
                    })
                    .collect();
                let _ = write!(
                    s,
                    "{to} on a schedule from {}: {}",
                    schedule.start,
                    steps.join(", then ")
                );
            }
            None => {
                let _ = write!(s, "{to} {}%", rule.percent.unwrap_or(100.0));
            }
        },
        (None, Some(split)) => {
            let parts: Vec<String> = split
                .iter()
                .map(|t| format!("{} {}%", t.to, t.percent))
                .collect();
            s.push_str(&parts.join(", "));
        }
        _ => {}
    }
    if let Some(sticky) = &rule.sticky {
        let key = match (&sticky.header, &sticky.cookie, &sticky.query) {
            (Some(h), _, _) => format!("header {h}"),
            (_, Some(c), _) => format!("cookie {c}"),
            (_, _, Some(q)) => format!("query {q}"),
            _ => String::new(),
        };
        let _ = write!(
            s,
            " sticky {key} (salt {}, {}, missing {})",
            sticky.salt.as_deref().unwrap_or(&rule.name),
            match sticky.algorithm {
                Algorithm::Graymatch => "graymatch",
                Algorithm::Unleash => "unleash",
            },
            match sticky.missing {
                Missing::Random => "random",
                Missing::Skip => "skip",
            }
        );
    } else if rule.percent.is_some_and(|p| p < 100.0) || rule.split.is_some() {
        s.push_str(" random");
    }
    if let Some(when) = &rule.when {
        let _ = write!(s, " when {when}");
    }
    s
}
