//! `graymatch diff`: what a rule change does to traffic.
//!
//! The same requests go through the old and the new rule set: synthetic
//! users (one request per user carrying `user-{i}` in every sticky key that
//! either rule set names: headers, cookies and query parameters) and the
//! requests of rule-test files (every repetition of every case; the files'
//! own rule sets are not read). Random draws are seeded per request, the
//! same seed for both rule sets, so a random rule that did not change gives
//! each request the same answer in both.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use graymatch::{Decision, Matcher, Reason, RuleSet};
use http::Request;

use crate::load::{self, Error, Format};
use crate::testfile;

/// How many rows each table shows before it summarises the rest.
const ROWS: usize = 15;

pub(crate) fn run(
    old: &Path,
    new: &Path,
    format: Option<Format>,
    users: u32,
    tests: &[PathBuf],
) -> Result<ExitCode, Error> {
    let a = load::rules(old, format)?;
    let b = load::rules(new, format)?;
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            for (path, r) in [(old, a), (new, b)] {
                if let Err(e) = r {
                    println!("{}: invalid: {e}", load::display(path));
                }
            }
            return Ok(ExitCode::from(1));
        }
    };
    let mut diff = Diff::new(&a.1, &b.1);
    for path in tests {
        let shown = load::display(path);
        testfile::for_each_request(path, |case, req| {
            diff.add(Some(format!("{shown}: {case}")), req);
        })?;
    }
    let test_requests = diff.total;
    if users == 0 && test_requests == 0 {
        return Err(Error(
            "nothing to compare: give --users N (at least 1) or --tests FILE with cases".to_owned(),
        ));
    }
    let keys = StickyKeys::of(&[&a.0, &b.0]);
    for i in 0..users {
        diff.add(None, &keys.request(i));
    }
    print!(
        "{}",
        diff.table(
            &load::display(old),
            &load::display(new),
            &keys,
            users,
            tests.len(),
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// The sticky keys of rule sets, each named once.
#[derive(Default)]
struct StickyKeys {
    headers: Vec<String>,
    cookies: Vec<String>,
    queries: Vec<String>,
}

impl StickyKeys {
    fn of(sets: &[&RuleSet]) -> Self {
        let mut keys = StickyKeys::default();
        for rule in sets.iter().flat_map(|s| &s.rules) {
            let Some(s) = &rule.sticky else { continue };
            if let Some(h) = &s.header {
                let h = h.to_ascii_lowercase();
                if !keys.headers.contains(&h) {
                    keys.headers.push(h);
                }
            }
            if let Some(c) = &s.cookie
                && !keys.cookies.contains(c)
            {
                keys.cookies.push(c.clone());
            }
            if let Some(q) = &s.query
                && !keys.queries.contains(q)
            {
                keys.queries.push(q.clone());
            }
        }
        keys
    }

    /// `header x-user-id, cookie uid`, or `none`.
    fn describe(&self) -> String {
        let all: Vec<String> = self
            .headers
            .iter()
            .map(|h| format!("header {h}"))
            .chain(self.cookies.iter().map(|c| format!("cookie {c}")))
            .chain(self.queries.iter().map(|q| format!("query {q}")))
            .collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    }

    /// The request of synthetic user `i`: `user-{i}` in every key.
    fn request(&self, i: u32) -> Request<()> {
        let user = format!("user-{i}");
        let mut req = Request::new(());
        if !self.queries.is_empty() {
            let query: Vec<String> = self
                .queries
                .iter()
                .map(|q| format!("{}={user}", crate::simulate::form_encode(q)))
                .collect();
            if let Ok(uri) = format!("/?{}", query.join("&")).parse() {
                *req.uri_mut() = uri;
            }
        }
        for h in &self.headers {
            // The names were checked when the rule sets compiled.
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(h.as_bytes()),
                http::HeaderValue::from_str(&user),
            ) {
                req.headers_mut().append(name, value);
            }
        }
        if !self.cookies.is_empty() {
            let pairs: Vec<String> = self.cookies.iter().map(|c| format!("{c}={user}")).collect();
            if let Ok(value) = http::HeaderValue::from_str(&pairs.join("; ")) {
                req.headers_mut().append(http::header::COOKIE, value);
            }
        }
        req
    }
}

/// The rule that decided, or how the variant came without one.
fn decided_by(d: &Decision) -> &'static str {
    match (d.rule(), d.reason()) {
        (Some(rule), _) => rule,
        (None, Reason::Propagated) => "(propagated)",
        (None, _) => "(default)",
    }
}

/// The counts of a comparison.
struct Diff<'m> {
    old: &'m Matcher,
    new: &'m Matcher,
    total: u64,
    changed: u64,
    /// Requests that keep their variant but are decided by another rule.
    moved: u64,
    users: u64,
    users_changed: u64,
    transitions: HashMap<(&'static str, &'static str), u64>,
    rules_old: HashMap<&'static str, u64>,
    rules_new: HashMap<&'static str, u64>,
    /// Per test case: requests, changed, and the transitions seen.
    cases: BTreeMap<String, (u64, u64, BTreeMap<(&'static str, &'static str), u64>)>,
    case_order: Vec<String>,
}

impl<'m> Diff<'m> {
    fn new(old: &'m Matcher, new: &'m Matcher) -> Self {
        Diff {
            old,
            new,
            total: 0,
            changed: 0,
            moved: 0,
            users: 0,
            users_changed: 0,
            transitions: HashMap::new(),
            rules_old: HashMap::new(),
            rules_new: HashMap::new(),
            cases: BTreeMap::new(),
            case_order: Vec::new(),
        }
    }

    /// Decides `req` under both rule sets; `case` names the test case it
    /// comes from (`None`: a synthetic user).
    fn add(&mut self, case: Option<String>, req: &Request<()>) {
        // The same random draws for both rule sets.
        let seed = self.total;
        fastrand::seed(seed);
        let a = self.old.decide(req);
        fastrand::seed(seed);
        let b = self.new.decide(req);
        self.total += 1;
        let changed = a.variant() != b.variant();
        *self.rules_old.entry(decided_by(&a)).or_default() += 1;
        *self.rules_new.entry(decided_by(&b)).or_default() += 1;
        if changed {
            self.changed += 1;
            *self
                .transitions
                .entry((a.variant(), b.variant()))
                .or_default() += 1;
        } else if decided_by(&a) != decided_by(&b) {
            self.moved += 1;
        }
        match case {
            None => {
                self.users += 1;
                self.users_changed += u64::from(changed);
            }
            Some(name) => {
                if !self.cases.contains_key(&name) {
                    self.case_order.push(name.clone());
                }
                let entry = self.cases.entry(name).or_default();
                entry.0 += 1;
                if changed {
                    entry.1 += 1;
                    *entry.2.entry((a.variant(), b.variant())).or_default() += 1;
                }
            }
        }
    }

    /// The one-screen report.
    fn table(
        &self,
        old: &str,
        new: &str,
        keys: &StickyKeys,
        users: u32,
        test_files: usize,
    ) -> String {
        let mut out = String::new();
        let pct = |n: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                n as f64 * 100.0 / of as f64
            }
        };
        let _ = writeln!(out, "{old} -> {new}");
        let tests = self.total - self.users;
        let _ = writeln!(
            out,
            "requests: {} ({users} synthetic users, sticky keys: {}; {tests} from {test_files} test file{})",
            self.total,
            keys.describe(),
            if test_files == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            out,
            "changed variant: {} of {} ({:.2}%): {} of {} synthetic users, {} of {tests} test requests",
            self.changed,
            self.total,
            pct(self.changed, self.total),
            self.users_changed,
            self.users,
            self.changed - self.users_changed,
        );
        let _ = writeln!(out, "same variant, decided by another rule: {}", self.moved);

        let _ = writeln!(out);
        let mut transitions: Vec<_> = self.transitions.iter().collect();
        transitions.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        if transitions.is_empty() {
            let _ = writeln!(out, "no request changes variant");
        } else {
            let _ = writeln!(out, "{:<40} {:>10}", "variant change", "requests");
            for ((from, to), n) in transitions.iter().take(ROWS) {
                let _ = writeln!(out, "{:<40} {n:>10}", format!("{from} -> {to}"));
            }
            if transitions.len() > ROWS {
                let _ = writeln!(out, "... {} more changes", transitions.len() - ROWS);
            }
        }

        let _ = writeln!(out);
        let mut labels: Vec<&'static str> = Vec::new();
        for name in self.old.rule_names().chain(self.new.rule_names()) {
            if !labels.contains(&name) {
                labels.push(name);
            }
        }
        labels.push("(default)");
        labels.push("(propagated)");
        let rows: Vec<(&str, u64, u64)> = labels
            .iter()
            .map(|l| {
                (
                    *l,
                    self.rules_old.get(l).copied().unwrap_or(0),
                    self.rules_new.get(l).copied().unwrap_or(0),
                )
            })
            .filter(|(_, a, b)| *a > 0 || *b > 0)
            .collect();
        let quiet = labels
            .iter()
            .filter(|l| !l.starts_with('(') && !rows.iter().any(|r| r.0 == **l))
            .count();
        // More than a screen: only the rules whose count changed.
        let (shown, hidden): (Vec<_>, Vec<_>) = if rows.len() > 2 * ROWS {
            rows.iter().partition(|(_, a, b)| a != b)
        } else {
            (rows.iter().collect(), Vec::new())
        };
        let width = shown.iter().map(|r| r.0.len()).max().unwrap_or(0).max(24);
        let _ = writeln!(
            out,
            "{:<width$} {:>10} {:>10} {:>10}",
            "rule", "OLD", "NEW", "delta"
        );
        for (label, a, b) in shown.iter().take(2 * ROWS) {
            let delta = i128::from(*b) - i128::from(*a);
            let delta = if delta > 0 {
                format!("+{delta}")
            } else {
                delta.to_string()
            };
            let _ = writeln!(out, "{label:<width$} {a:>10} {b:>10} {delta:>10}");
        }
        if shown.len() > 2 * ROWS {
            let _ = writeln!(
                out,
                "... {} more rules whose count changed",
                shown.len() - 2 * ROWS
            );
        }
        if !hidden.is_empty() {
            let _ = writeln!(out, "... {} rules with the same count", hidden.len());
        }
        if quiet > 0 {
            let _ = writeln!(
                out,
                "{quiet} rule{} decided no request in either",
                if quiet == 1 { "" } else { "s" }
            );
        }

        let changed_cases: Vec<&String> = self
            .case_order
            .iter()
            .filter(|c| self.cases.get(*c).is_some_and(|e| e.1 > 0))
            .collect();
        if !changed_cases.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "test cases whose requests change variant:");
            for name in changed_cases.iter().take(ROWS) {
                let Some((n, changed, moves)) = self.cases.get(*name) else {
                    continue;
                };
                let moves: Vec<String> = moves
                    .iter()
                    .map(|((from, to), k)| {
                        if *n == 1 {
                            format!("{from} -> {to}")
                        } else {
                            format!("{from} -> {to} {k}")
                        }
                    })
                    .collect();
                let count = if *n == 1 {
                    String::new()
                } else {
                    format!(" {changed} of {n}:")
                };
                let _ = writeln!(out, "  {name}:{count} {}", moves.join(", "));
            }
            if changed_cases.len() > ROWS {
                let _ = writeln!(out, "  ... {} more cases", changed_cases.len() - ROWS);
            }
        }
        out
    }
}
