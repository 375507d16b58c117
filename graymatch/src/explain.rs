//! Explaining a decision: for every rule before the deciding one, why it did
//! not decide. For operators and tests, not the hot path: it allocates.

use std::fmt::{self, Write as _};

use crate::cond::{Cond, Leaf, Source, ValueTest};
use crate::decision::{Decision, Reason};
use crate::matcher::{CompiledRule, Draw, Landing, Matcher};
use crate::request::RequestHead;
use crate::rules::{Algorithm, Condition, Field, Op, Test};
use crate::typed::{Cmp, TypedTest};

/// A decision with the story of how it was reached.
///
/// `Display` prints one line per rule looked at, then the decision.
///
/// ```
/// let m = graymatch::RuleSet::from_yaml(r#"
/// default: stable
/// rules:
///   - { name: never, to: stable, when: { header: { name: x-canary, equals: never } } }
///   - { name: canary-20, to: gray, percent: 20, sticky: { header: x-user-id } }
/// "#)?.compile()?;
/// let req = http::Request::get("/").header("x-user-id", "user-3").body(())?;
/// let e = m.explain(&req);
/// assert_eq!(e.decision(), m.decide(&req));
/// assert_eq!(e.rules()[0].to_string(),
///     r#"never: did not hold: header x-canary equals "never" (no x-canary header)"#);
/// assert!(e.rules()[1].to_string().starts_with(r#"canary-20: decided gray: sticky x-user-id="user-3" bucket"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Explanation {
    decision: Decision,
    rules: Vec<RuleTrace>,
}

impl Explanation {
    /// The decision (for sticky and fixed rules, the one
    /// [`decide`](Matcher::decide) gives; random draws are drawn anew).
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// The rules looked at, in order; the last one decided, unless the
    /// decision is the default or propagated.
    pub fn rules(&self) -> &[RuleTrace] {
        &self.rules
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.decision.reason() == Reason::Propagated {
            writeln!(f, "trusted incoming tag: {}", self.decision.variant())?;
        }
        for r in &self.rules {
            writeln!(f, "{r}")?;
        }
        write!(
            f,
            "decision: variant={} rule={} reason={}",
            self.decision.variant(),
            self.decision.rule().unwrap_or("-"),
            self.decision.reason()
        )
    }
}

/// What one rule did with the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleTrace {
    rule: &'static str,
    decided: Option<&'static str>,
    why: String,
}

impl RuleTrace {
    /// The rule's name.
    pub fn rule(&self) -> &'static str {
        self.rule
    }

    /// The variant this rule decided, if it did.
    pub fn decided(&self) -> Option<&'static str> {
        self.decided
    }

    /// Why the rule did or did not decide, in words.
    pub fn why(&self) -> &str {
        &self.why
    }
}

impl fmt::Display for RuleTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decided {
            Some(v) => write!(f, "{}: decided {v}: {}", self.rule, self.why),
            None => write!(f, "{}: {}", self.rule, self.why),
        }
    }
}

impl Matcher {
    /// Decides `request` as [`decide`](Self::decide) does and records why
    /// each rule before the deciding one did not decide: the condition that
    /// failed, or where the weight draw landed.
    ///
    /// ```
    /// let m = graymatch::RuleSet::from_json(r#"{"default": "stable", "rules": [
    ///     {"name": "off", "to": "gray", "percent": 0},
    ///     {"name": "beta", "to": "gray", "when": {"query": {"name": "beta", "equals": "on"}}}]}"#)?.compile()?;
    /// let text = m.explain(&http::Request::get("/?beta=off").body(())?).to_string();
    /// assert_eq!(text, "off: 0 percent: never decides\n\
    ///     beta: did not hold: query beta equals \"on\" (beta=\"off\")\n\
    ///     decision: variant=stable rule=- reason=default");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn explain<R: RequestHead + ?Sized>(&self, request: &R) -> Explanation {
        // A trusted tag decides before any rule; no draw is made twice.
        if self.tagging.trust
            && let Some(v) = self.incoming(request.headers())
        {
            return Explanation {
                decision: self.decision(self.variants[v], None, Reason::Propagated),
                rules: Vec::new(),
            };
        }
        let mut rules = Vec::new();
        for (rule, model) in self.rules.iter().zip(&self.source.rules) {
            let trace = self.trace(rule, model.when.as_ref(), request);
            let decided = trace.decided;
            rules.push(trace);
            if let Some(variant) = decided {
                return Explanation {
                    decision: self.decision(variant, Some(rule.name), Reason::Rule),
                    rules,
                };
            }
        }
        Explanation {
            decision: self.decision(self.default_variant(), None, Reason::Default),
            rules,
        }
    }

    fn trace<R: RequestHead + ?Sized>(
        &self,
        rule: &CompiledRule,
        model: Option<&Condition>,
        request: &R,
    ) -> RuleTrace {
        let mut trace = RuleTrace {
            rule: rule.name,
            decided: None,
            why: String::new(),
        };
        if let (Some(cond), Some(model)) = (&rule.when, model)
            && let Some(why) = why_not(model, cond, request)
        {
            trace.why = format!("did not hold: {why}");
            return trace;
        }
        let variant = |t: usize| self.variants[usize::from(rule.targets[t].0)];
        let halted = |t: usize| rule.halted.as_ref().is_some_and(|h| h[t]);
        match &rule.draw {
            Draw::Never if rule.halted.is_some() => {
                let names: Vec<&str> = (0..rule.targets.len()).map(variant).collect();
                trace.why = format!("halted: {} (goes on)", names.join(", "));
            }
            Draw::Never => trace.why = "0 percent: never decides".to_owned(),
            Draw::Always => {
                trace.decided = Some(variant(0));
                trace.why = "condition held, 100 percent".to_owned();
                if let Some(cond) = &rule.when {
                    let mut notes = Vec::new();
                    held_notes(cond, request, &mut notes);
                    if !notes.is_empty() {
                        trace.why = format!("condition held ({}), 100 percent", notes.join("; "));
                    }
                }
            }
            Draw::Random | Draw::Sticky(_) => {
                let drawn = self.draw(rule, request);
                let unleash =
                    matches!(&rule.draw, Draw::Sticky(k) if k.algorithm == Algorithm::Unleash);
                let mut why = String::new();
                match &rule.draw {
                    Draw::Sticky(key) if drawn.sticky || drawn.landing == Landing::NoKey => {
                        let name = source_name(&key.source);
                        match key
                            .source
                            .first(request, |v| String::from_utf8_lossy(v).into_owned())
                        {
                            Some(v) => {
                                let _ = write!(why, "sticky {name}={v:?}");
                            }
                            None => {
                                trace.why = format!("no sticky key {name} (missing: skip)");
                                return trace;
                            }
                        }
                    }
                    Draw::Sticky(key) => {
                        let _ = write!(why, "no sticky key {}, random", source_name(&key.source));
                    }
                    _ => why.push_str("random"),
                }
                if unleash {
                    let _ = write!(why, " n {} of 1..=100", drawn.value);
                } else {
                    let _ = write!(why, " bucket {} of 1000000", drawn.value);
                }
                why.push_str(" (targets ");
                let mut lower = 0;
                for (i, &(v, upper)) in rule.targets.iter().enumerate() {
                    if i > 0 {
                        why.push_str(", ");
                    }
                    let name = self.variants[usize::from(v)];
                    if unleash {
                        let _ = write!(why, "{name} {}..={}", lower / 10_000 + 1, upper / 10_000);
                    } else {
                        let _ = write!(why, "{name} [{lower}, {upper})");
                    }
                    lower = upper;
                }
                why.push(')');
                match drawn.landing {
                    Landing::Target(t) if halted(t) => {
                        let _ = write!(why, ": in {}, which is halted (goes on)", variant(t));
                    }
                    Landing::Target(t) => trace.decided = Some(variant(t)),
                    Landing::Outside => why.push_str(": outside every target"),
                    Landing::NoKey => {}
                }
                trace.why = why;
            }
        }
        if let Some(s) = &rule.schedule {
            let step = s.step_at(self.moment);
            let at = match step.step() {
                None => "before its start".to_owned(),
                Some(i) => format!("step {} of {}", i + 1, step.steps()),
            };
            let next = step.next_change().map_or_else(String::new, |n| {
                format!(", next at {}", crate::schedule::rfc3339(n))
            });
            let _ = write!(
                trace.why,
                " [schedule {at}: {} percent{next}]",
                step.percent()
            );
        }
        trace
    }
}

fn source_name(source: &Source) -> String {
    match source {
        Source::Header(h) => h.as_str().to_owned(),
        Source::Cookie(c) => format!("cookie {c}"),
        Source::CookieAnyCase(c) => format!("cookie {c} (any case)"),
        Source::Query(q) => format!("query {q}"),
        Source::Path => "path".to_owned(),
        Source::Method => "method".to_owned(),
        Source::Host => "host".to_owned(),
        Source::ClientIp => "client_ip".to_owned(),
    }
}

/// Why `cond` does not hold, or `None` when it does.
fn why_not<R: RequestHead + ?Sized>(model: &Condition, cond: &Cond, req: &R) -> Option<String> {
    match (model, cond) {
        (Condition::All(ms), Cond::All(cs)) => ms
            .iter()
            .zip(cs.iter())
            .find_map(|(m, c)| why_not(m, c, req)),
        (Condition::Any(ms), Cond::Any(cs)) => {
            if ms.is_empty() {
                return Some("any: [] never holds".to_owned());
            }
            let reasons: Option<Vec<String>> = ms
                .iter()
                .zip(cs.iter())
                .map(|(m, c)| why_not(m, c, req))
                .collect();
            reasons.map(|r| format!("none of any: {}", r.join("; ")))
        }
        (Condition::Not(m), Cond::Not(c)) => {
            if c.eval(req) {
                Some(format!("not: {m} held"))
            } else {
                None
            }
        }
        (_, Cond::Leaf(leaf)) => {
            if leaf.eval(req) {
                None
            } else {
                Some(format!("{model} ({})", seen(leaf, req)))
            }
        }
        _ => Some(format!("{model}")),
    }
}

/// What the request had for a leaf's field.
fn seen<R: RequestHead + ?Sized>(leaf: &Leaf, req: &R) -> String {
    let mut values = Vec::new();
    leaf.source.any(req, |v| {
        values.push(v.to_vec());
        false
    });
    let name = match &leaf.source {
        Source::Header(h) => format!("{h} header"),
        Source::Cookie(c) => format!("cookie {c}"),
        Source::CookieAnyCase(c) => format!("cookie {c} (any case)"),
        Source::Query(q) => format!("query parameter {q}"),
        Source::Path => "path".to_owned(),
        Source::Method => "method".to_owned(),
        Source::Host => "host".to_owned(),
        Source::ClientIp => "client address".to_owned(),
    };
    if values.is_empty() {
        return format!("no {name}");
    }
    if matches!(leaf.test, ValueTest::Present(false)) {
        return format!("{name} present");
    }
    let short = match &leaf.source {
        Source::Cookie(c) => c.to_string(),
        Source::CookieAnyCase(c) | Source::Query(c) => c.to_string(),
        other => source_name(other),
    };
    if let ValueTest::Typed(t) = &leaf.test {
        return values
            .iter()
            .map(|v| typed_line(&short, t, v))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let shown: Vec<String> = values
        .iter()
        .map(|v| {
            let text = String::from_utf8_lossy(v);
            match leaf.source {
                Source::Host => format!("{:?}", text.to_ascii_lowercase()),
                _ => format!("{text:?}"),
            }
        })
        .collect();
    format!("{short}={}", shown.join(", "))
}

/// One typed comparison in words: `x-app-version 5.10 (version) >= 5.2.0:
/// held`, or why the value is not of the type.
fn typed_line(short: &str, t: &TypedTest, v: &[u8]) -> String {
    let text = String::from_utf8_lossy(v);
    if t.show(v).is_none() {
        return format!("{short} {text:?} is not a {}", t.type_name());
    }
    let verdict = if t.matches(v) { "held" } else { "failed" };
    let sym = if t.cmp == Cmp::Eq && t.show_values().starts_with('[') {
        "in"
    } else {
        t.cmp.symbol()
    };
    format!(
        "{short} {text} ({}) {sym} {}: {verdict}",
        t.type_name(),
        t.show_values()
    )
}

/// The typed and network comparisons that held in a condition that holds,
/// for the trace of the rule that decided.
fn held_notes<R: RequestHead + ?Sized>(cond: &Cond, req: &R, out: &mut Vec<String>) {
    match cond {
        Cond::All(cs) => cs.iter().for_each(|c| held_notes(c, req, out)),
        Cond::Any(cs) => {
            if let Some(c) = cs.iter().find(|c| c.eval(req)) {
                held_notes(c, req, out);
            }
        }
        Cond::Not(_) => {}
        Cond::Leaf(leaf) => {
            let short = source_name(&leaf.source);
            match &leaf.test {
                ValueTest::Typed(t) => leaf.source.any(req, |v| {
                    if t.matches(v) {
                        out.push(typed_line(&short, t, v));
                        true
                    } else {
                        false
                    }
                }),
                ValueTest::Cidr(_) if leaf.eval(req) => {
                    leaf.source.first(req, |v| {
                        out.push(format!(
                            "{short} {} in cidr: held",
                            String::from_utf8_lossy(v)
                        ));
                    });
                    true
                }
                _ => false,
            };
        }
    }
}

impl fmt::Display for Condition {
    /// A one-line form: `header x-region in ["hz", "sh"] ignore_case`,
    /// `all(...)`, `not(...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, key: &str, cs: &[Condition]| {
            write!(f, "{key}(")?;
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str(")")
        };
        match self {
            Condition::All(cs) => list(f, "all", cs),
            Condition::Any(cs) => list(f, "any", cs),
            Condition::Not(c) => write!(f, "not({c})"),
            Condition::Header(Field { name, test, .. }) => write!(f, "header {name} {test}"),
            Condition::Cookie(Field {
                name,
                test,
                name_ignore_case,
            }) => {
                write!(f, "cookie {name} {test}")?;
                if *name_ignore_case {
                    f.write_str(" name_ignore_case")?;
                }
                Ok(())
            }
            Condition::Query(Field { name, test, .. }) => write!(f, "query {name} {test}"),
            Condition::Path(test) => write!(f, "path {test}"),
            Condition::Method(test) => write!(f, "method {test}"),
            Condition::Host(test) => write!(f, "host {test}"),
            Condition::ClientIp(test) => write!(f, "client_ip {test}"),
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::Equals(s)
            | Op::Prefix(s)
            | Op::Suffix(s)
            | Op::Contains(s)
            | Op::Regex(s)
            | Op::SegmentPrefix(s) => {
                write!(f, "{} {s:?}", self.op.keyword())?;
            }
            Op::Gt(s) => write!(f, "> {s:?}")?,
            Op::Gte(s) => write!(f, ">= {s:?}")?,
            Op::Lt(s) => write!(f, "< {s:?}")?,
            Op::Lte(s) => write!(f, "<= {s:?}")?,
            Op::In(list) => write!(f, "in {list:?}")?,
            Op::Cidr(list) => write!(f, "cidr {list:?}")?,
            Op::Present(p) => write!(f, "present {p}")?,
        }
        if let Some(ty) = self.value_type {
            write!(f, " as {}", ty.keyword())?;
        }
        if self.ignore_case {
            f.write_str(" ignore_case")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn explain_matches_decide_for_sticky_and_fixed_rules() {
        let m = crate::RuleSet::from_json(
            r#"{"default": "stable", "rules": [
            {"name": "h", "to": "gray", "when": {"all": [
                {"header": {"name": "x-a", "equals": "1"}},
                {"not": {"cookie": {"name": "c", "present": true}}}]}},
            {"name": "s", "split": [{"to": "v2", "percent": 30}, {"to": "v3", "percent": 30}],
             "sticky": {"query": "uid", "missing": "skip"}},
            {"name": "u", "to": "gray", "percent": 50, "sticky": {"header": "x-u", "algorithm": "unleash"}}
        ]}"#,
        )
        .unwrap()
        .compile()
        .unwrap();
        for i in 0..200 {
            let req = http::Request::get(format!("/?uid=u{i}"))
                .header("x-a", if i % 3 == 0 { "1" } else { "0" })
                .header("x-u", format!("{i}"))
                .header("cookie", if i % 5 == 0 { "c=1" } else { "d=1" })
                .body(())
                .unwrap();
            let e = m.explain(&req);
            assert_eq!(e.decision(), m.decide(&req), "request {i}: {e}");
        }
    }
}
