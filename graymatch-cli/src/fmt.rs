//! `graymatch fmt`: rewrites rule files in one canonical form, so that a rule
//! change reviews as the change it is.
//!
//! YAML is written by hand from the model, in a fixed key order (`default`,
//! `variants`, `propagation`, `rules`; in a rule `name`, `to`, `percent`,
//! `split`, `sticky`, `when`), with short leaves, lists and maps in flow
//! style and the rest in block style. Full-line comments before a rule (and
//! a trailing comment on its `name` line) stay above that rule, and the
//! comments at the top of the file stay at the top; other comments cannot be
//! placed and are reported. JSON is pretty-printed; TOML is written by the
//! `toml` crate (comments are dropped and reported). Every output is read
//! back and must give the same rule set, or nothing is written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use graymatch::{
    Algorithm, Condition, Incoming, Missing, Op, Propagation, Rule, RuleSet, Sticky, Test,
};

use crate::load::{self, Error, Format};

/// The widest line a flow-style value may make.
const WIDTH: usize = 100;

pub(crate) fn run(
    files: &[PathBuf],
    format: Option<Format>,
    check: bool,
) -> Result<ExitCode, Error> {
    let mut changed = Vec::new();
    let mut invalid = false;
    for path in files {
        let shown = load::display(path);
        let fmt = load::format_of(path, format)?;
        let text = load::read_text(path)?;
        let set = match load::parse(&text, fmt) {
            Ok(set) => set,
            Err(e) => {
                eprintln!("{shown}: invalid: {e}");
                invalid = true;
                continue;
            }
        };
        let (out, lost) =
            format_text(&set, &text, fmt).map_err(|e| Error(format!("{shown}: {e}")))?;
        if lost > 0 {
            eprintln!(
                "{shown}: warning: {lost} comment line{} could not be kept (only comments at the top and above a rule are)",
                if lost == 1 { "" } else { "s" }
            );
        }
        if path == Path::new("-") {
            print!("{out}");
        } else if out != text {
            changed.push(shown.clone());
            if !check {
                std::fs::write(path, &out)
                    .map_err(|e| Error(format!("{shown}: cannot write: {e}")))?;
            }
        }
    }
    for name in &changed {
        if check {
            println!("{name}: not formatted");
        } else {
            println!("{name}: formatted");
        }
    }
    Ok(if invalid || (check && !changed.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The canonical text of `set` in `format`, and how many comment lines of
/// `original` could not be kept.
pub(crate) fn format_text(
    set: &RuleSet,
    original: &str,
    format: Format,
) -> Result<(String, usize), String> {
    let (out, lost) = match format {
        Format::Yaml => {
            let comments = Comments::of(original);
            (yaml(set, &comments), comments.unplaced)
        }
        Format::Json => {
            let mut s = serde_json::to_string_pretty(set).map_err(|e| e.to_string())?;
            s.push('\n');
            (s, 0)
        }
        Format::Toml => (
            toml::to_string_pretty(set).map_err(|e| format!("cannot write TOML: {e}"))?,
            original
                .lines()
                .filter(|l| l.trim_start().starts_with('#'))
                .count(),
        ),
    };
    // Never write a file that reads back as another rule set.
    match load::parse(&out, format) {
        Ok(back) if back == *set => Ok((out, lost)),
        Ok(_) => Err("the formatted text reads back as another rule set; nothing written (a bug: please report it)".to_owned()),
        Err(e) => Err(format!("the formatted text does not read back ({e}); nothing written (a bug: please report it)")),
    }
}

/// The full-line comments of a YAML file: those at the top, and those above
/// (or trailing the `name` of) each rule.
#[derive(Default)]
struct Comments {
    top: Vec<String>,
    rules: Vec<(String, Vec<String>)>,
    unplaced: usize,
}

impl Comments {
    fn of(text: &str) -> Self {
        let mut c = Comments::default();
        let mut pending: Vec<String> = Vec::new();
        let mut seen_key = false;
        let mut in_rules = false;
        // The indentation of the rules list's `- ` items, once seen.
        let mut item_indent: Option<usize> = None;
        // Comments waiting for the name of the rule whose item they precede.
        let mut waiting: Option<Vec<String>> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.starts_with('#') {
                pending.push(trimmed.to_owned());
                continue;
            }
            if trimmed.is_empty() {
                continue;
            }
            let trailing = trailing_comment(line).map(str::to_owned);
            if indent == 0 && !trimmed.starts_with('-') {
                // A top-level key.
                if seen_key {
                    c.unplaced += pending.len();
                } else {
                    c.top.append(&mut pending);
                }
                pending.clear();
                c.unplaced += usize::from(trailing.is_some());
                c.unplaced += waiting.take().map_or(0, |w| w.len());
                in_rules = trimmed.starts_with("rules:");
                seen_key = true;
                continue;
            }
            seen_key = true;
            let starts_item = in_rules
                && trimmed.starts_with('-')
                && *item_indent.get_or_insert(indent) == indent;
            if starts_item {
                c.unplaced += waiting.take().map_or(0, |w| w.len());
                let mut lines = std::mem::take(&mut pending);
                lines.extend(trailing);
                match rule_name(trimmed) {
                    Some(name) if !lines.is_empty() => c.rules.push((name, lines)),
                    Some(_) => {}
                    None => waiting = Some(lines),
                }
                continue;
            }
            // Inside a rule: its `name:` key takes the waiting comments.
            let is_name =
                item_indent.is_some_and(|i| indent == i + 2) && trimmed.starts_with("name:");
            if let Some(mut lines) = waiting.take_if(|_| is_name) {
                lines.append(&mut pending);
                lines.extend(trailing);
                if let Some(name) = rule_name(&format!("- {trimmed}")) {
                    if !lines.is_empty() {
                        c.rules.push((name, lines));
                    }
                } else {
                    c.unplaced += lines.len();
                }
                continue;
            }
            c.unplaced += pending.len() + usize::from(trailing.is_some());
            pending.clear();
        }
        c.unplaced += pending.len() + waiting.map_or(0, |w| w.len());
        c
    }

    fn above(&self, rule: &str) -> &[String] {
        self.rules
            .iter()
            .find(|(n, _)| n == rule)
            .map_or(&[], |(_, lines)| lines.as_slice())
    }
}

/// The rule a line starts (`- name: x`, `- { name: x, ...`), if it does.
fn rule_name(trimmed: &str) -> Option<String> {
    let rest = trimmed.strip_prefix('-')?.trim_start();
    let rest = rest.strip_prefix('{').map_or(rest, str::trim_start);
    let value = rest.strip_prefix("name:")?.trim_start();
    let end = value
        .find(|c: char| c == ',' || c == '}' || c == '#' || c.is_whitespace())
        .unwrap_or(value.len());
    let name = value[..end].trim_matches(|c| c == '"' || c == '\'');
    (!name.is_empty()).then(|| name.to_owned())
}

/// A `# comment` after the content of a line, outside quotes.
fn trailing_comment(line: &str) -> Option<&str> {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() && i > 0 => {
                return Some(line[i..].trim_end());
            }
            _ => {}
        }
        prev = c;
    }
    None
}

fn yaml(set: &RuleSet, comments: &Comments) -> String {
    let mut out = String::new();
    for line in &comments.top {
        out.push_str(line);
        out.push('\n');
    }
    let _ = writeln!(out, "default: {}", scalar(&set.default));
    if let Some(variants) = &set.variants {
        let _ = writeln!(out, "variants: {}", flow_list(variants));
    }
    if set.propagation != Propagation::default() {
        let p = &set.propagation;
        let opt = |v: &Option<String>| v.as_deref().map_or("null".to_owned(), scalar);
        let incoming = match p.incoming {
            Incoming::Ignore => "ignore",
            Incoming::Trust => "trust",
        };
        let _ = writeln!(
            out,
            "propagation: {{ header: {}, baggage: {}, incoming: {incoming} }}",
            opt(&p.header),
            opt(&p.baggage)
        );
    }
    if set.rules.is_empty() {
        out.push_str("rules: []\n");
    } else {
        out.push_str("rules:\n");
    }
    for rule in &set.rules {
        for line in comments.above(&rule.name) {
            let _ = writeln!(out, "  {line}");
        }
        write_rule(&mut out, rule);
    }
    if !set.guards.is_empty() {
        out.push_str("guards:\n");
        for g in &set.guards {
            let mut parts = vec![format!("variant: {}", scalar(&g.variant))];
            if let Some(w) = &g.window {
                parts.push(format!("window: {}", scalar(w)));
            }
            if let Some(n) = g.min_requests {
                parts.push(format!("min_requests: {n}"));
            }
            if let Some(r) = g.max_failure_rate {
                parts.push(format!("max_failure_rate: {}", number(r)));
            }
            if let Some(r) = g.max_failure_ratio {
                parts.push(format!("max_failure_ratio: {}", number(r)));
            }
            if let Some(d) = &g.max_p99 {
                parts.push(format!("max_p99: {}", scalar(d)));
            }
            if let Some(r) = g.max_p99_ratio {
                parts.push(format!("max_p99_ratio: {}", number(r)));
            }
            let _ = writeln!(out, "  - {{ {} }}", parts.join(", "));
        }
    }
    out
}

fn write_rule(out: &mut String, rule: &Rule) {
    let _ = writeln!(out, "  - name: {}", scalar(&rule.name));
    if let Some(to) = &rule.to {
        let _ = writeln!(out, "    to: {}", scalar(to));
    }
    if let Some(p) = rule.percent {
        let _ = writeln!(out, "    percent: {}", number(p));
    }
    if let Some(split) = &rule.split {
        out.push_str("    split:\n");
        for t in split {
            let _ = writeln!(
                out,
                "      - {{ to: {}, percent: {} }}",
                scalar(&t.to),
                number(t.percent)
            );
        }
    }
    if let Some(s) = &rule.sticky {
        let _ = writeln!(out, "    sticky: {}", sticky(s));
    }
    if let Some(schedule) = &rule.schedule {
        out.push_str("    schedule:\n");
        let _ = writeln!(out, "      start: {}", scalar(&schedule.start));
        out.push_str("      steps:\n");
        for step in &schedule.steps {
            match &step.duration {
                Some(d) => {
                    let _ = writeln!(
                        out,
                        "        - {{ percent: {}, for: {} }}",
                        number(step.percent),
                        scalar(d)
                    );
                }
                None => {
                    let _ = writeln!(out, "        - {{ percent: {} }}", number(step.percent));
                }
            }
        }
    }
    if let Some(when) = &rule.when {
        write_cond(out, "when", when, 4);
    }
}

fn sticky(s: &Sticky) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &s.header {
        parts.push(format!("header: {}", scalar(h)));
    }
    if let Some(c) = &s.cookie {
        parts.push(format!("cookie: {}", scalar(c)));
    }
    if let Some(q) = &s.query {
        parts.push(format!("query: {}", scalar(q)));
    }
    if let Some(salt) = &s.salt {
        parts.push(format!("salt: {}", scalar(salt)));
    }
    if s.algorithm == Algorithm::Unleash {
        parts.push("algorithm: unleash".to_owned());
    }
    if s.missing == Missing::Skip {
        parts.push("missing: skip".to_owned());
    }
    format!("{{ {} }}", parts.join(", "))
}

/// `key: VALUE` at `indent` spaces: flow style when it fits, else block.
fn write_cond(out: &mut String, key: &str, cond: &Condition, indent: usize) {
    let pad = " ".repeat(indent);
    let flow = flow_cond(cond);
    if pad.len() + key.len() + 2 + flow.len() <= WIDTH {
        let _ = writeln!(out, "{pad}{key}: {flow}");
        return;
    }
    let _ = writeln!(out, "{pad}{key}:");
    write_cond_block(out, cond, indent + 2);
}

/// A condition as a block mapping at `indent` (its one key on the first line).
fn write_cond_block(out: &mut String, cond: &Condition, indent: usize) {
    let pad = " ".repeat(indent);
    match cond {
        Condition::All(cs) | Condition::Any(cs) if cs.is_empty() => {
            let _ = writeln!(out, "{pad}{}: []", cond.keyword());
        }
        Condition::All(cs) | Condition::Any(cs) => {
            let _ = writeln!(out, "{pad}{}:", cond.keyword());
            for c in cs {
                let flow = flow_cond(c);
                if pad.len() + 2 + flow.len() <= WIDTH {
                    let _ = writeln!(out, "{pad}  - {flow}");
                } else {
                    // The item's mapping starts on the dash's line.
                    let mut block = String::new();
                    write_cond_block(&mut block, c, indent + 4);
                    let block = block.trim_start();
                    let _ = write!(out, "{pad}  - {block}");
                }
            }
        }
        Condition::Not(c) => write_cond(out, "not", c, indent),
        leaf => {
            let (key, entries) = leaf_entries(leaf);
            let _ = writeln!(out, "{pad}{key}:");
            for (k, v) in entries {
                let _ = writeln!(out, "{pad}  {k}: {v}");
            }
        }
    }
}

/// A condition in flow style: `{ header: { name: x, equals: v } }`.
fn flow_cond(cond: &Condition) -> String {
    match cond {
        Condition::All(cs) | Condition::Any(cs) => {
            let items: Vec<String> = cs.iter().map(flow_cond).collect();
            format!("{{ {}: [{}] }}", cond.keyword(), items.join(", "))
        }
        Condition::Not(c) => format!("{{ not: {} }}", flow_cond(c)),
        leaf => {
            let (key, entries) = leaf_entries(leaf);
            let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{{ {key}: {{ {} }} }}", inner.join(", "))
        }
    }
}

/// A leaf's key and its `name`, operation and modifiers, in canonical order
/// (callers pass leaves only; a combination has no entries).
fn leaf_entries(cond: &Condition) -> (&'static str, Vec<(&'static str, String)>) {
    let (name, test, name_fold): (Option<&str>, &Test, bool) = match cond {
        Condition::Header(f) | Condition::Cookie(f) | Condition::Query(f) => {
            (Some(&f.name), &f.test, f.name_ignore_case)
        }
        Condition::Path(t) | Condition::Method(t) | Condition::Host(t) | Condition::ClientIp(t) => {
            (None, t, false)
        }
        Condition::All(_) | Condition::Any(_) | Condition::Not(_) => {
            return (cond.keyword(), Vec::new());
        }
    };
    let mut entries = Vec::new();
    if let Some(n) = name {
        entries.push(("name", scalar(n)));
    }
    let op = match &test.op {
        Op::Equals(s)
        | Op::Prefix(s)
        | Op::Suffix(s)
        | Op::Contains(s)
        | Op::Regex(s)
        | Op::SegmentPrefix(s) => scalar(s),
        Op::Gt(s) | Op::Gte(s) | Op::Lt(s) | Op::Lte(s) => scalar(s),
        Op::In(list) | Op::Cidr(list) => flow_list(list),
        Op::Present(p) => p.to_string(),
    };
    entries.push((test.op.keyword(), op));
    if let Some(ty) = test.value_type {
        entries.push(("as", ty.keyword().to_owned()));
    }
    if test.ignore_case {
        entries.push(("ignore_case", "true".to_owned()));
    }
    if name_fold {
        entries.push(("name_ignore_case", "true".to_owned()));
    }
    (cond.keyword(), entries)
}

fn flow_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| scalar(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A percent as written: `20`, `12.5`, `0.0001`.
fn number(p: f64) -> String {
    if p.fract() == 0.0 && p.abs() < 1e15 {
        format!("{}", p as i64)
    } else {
        p.to_string()
    }
}

/// A string as a YAML scalar: plain where YAML reads it back as the same
/// string, else double-quoted (a JSON string is a valid YAML one).
fn scalar(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let keyword = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
    );
    // A whole decimal number reads back as the same text; anything else that
    // starts like a number (5.10, 1e3, 0x1f, 012, .5, +1) is quoted.
    let digits = s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    let numberish = first.is_ascii_digit() || matches!(first, '+' | '-' | '.');
    let allowed = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '*' | '%'));
    !keyword && allowed && (digits || !numberish) && !s.starts_with('*') && !s.starts_with('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_read_back_as_themselves() {
        for s in [
            "gray",
            "x-user-id",
            "5.10",
            "1e3",
            "012",
            "0",
            "20",
            "true",
            "Yes",
            "null",
            "",
            "a b",
            "a: b",
            "#x",
            "- x",
            "[a]",
            "{a}",
            "*",
            "%61",
            "/api/",
            "v5.2",
            "-1",
            ".5",
            "'q'",
            "\"q\"",
            "a,b",
            "é",
            "~",
        ] {
            let text = format!("v: {}\n", scalar(s));
            let back: std::collections::BTreeMap<String, serde_yaml_ng::Value> =
                serde_yaml_ng::from_str(&text).unwrap();
            // Whole numbers stay plain: a rule value read as a number keeps
            // its text (`20`), which is what the rule-set reader does.
            let read = match &back["v"] {
                serde_yaml_ng::Value::Number(n) if n.is_u64() => n.to_string(),
                v => v.as_str().map(str::to_owned).unwrap_or_default(),
            };
            assert_eq!(read, s, "{s:?} written as {text:?}");
        }
    }

    #[test]
    fn rule_names_and_trailing_comments() {
        assert_eq!(rule_name("- name: canary-20"), Some("canary-20".to_owned()));
        assert_eq!(rule_name("- { name: abc, to: v2 }"), Some("abc".to_owned()));
        assert_eq!(rule_name("- name: \"x\"  # c"), Some("x".to_owned()));
        assert_eq!(rule_name("name: x"), None);
        assert_eq!(trailing_comment("  - name: x   # twenty"), Some("# twenty"));
        assert_eq!(trailing_comment("  equals: \"a # b\""), None);
        assert_eq!(trailing_comment("# whole line"), None);
    }
}
