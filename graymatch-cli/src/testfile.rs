//! `graymatch test`: rule-test files, each a rule set (a path or inline) and
//! cases of a request and the decision it must get.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use graymatch::{Matcher, RuleSet};
use http::{HeaderName, HeaderValue, Method, Request};
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::load::{self, Error, Format};

/// A rule-test file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// A path relative to the file, or an inline rule set.
    rules: Value,
    #[serde(default)]
    cases: Vec<Case>,
    /// The rule set must be refused with an error containing this.
    #[serde(default)]
    expect_error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    request: RequestSpec,
    #[serde(default)]
    expect: Option<String>,
    /// Absent: not checked; `null`: no rule decided.
    #[serde(default, deserialize_with = "some")]
    rule: Option<Option<String>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    repeat: Option<u32>,
    #[serde(default)]
    expect_share: Option<BTreeMap<String, (f64, f64)>>,
}

/// Tells a field that is `null` (`Some(None)`) from one that is absent (`None`).
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RequestSpec {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    headers: Option<Headers>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Headers {
    Map(BTreeMap<String, Scalar>),
    List(Vec<(String, Scalar)>),
}

/// A header value as YAML may write it: `42` and `true` are text too.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// The outcome of one file.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) unreadable: bool,
}

pub(crate) fn run(files: &[PathBuf]) -> Result<ExitCode, Error> {
    let mut total = Tally::default();
    for path in files {
        match run_file(path) {
            Ok(t) => {
                total.passed += t.passed;
                total.failed += t.failed;
            }
            Err(e) => {
                println!("{e}");
                total.unreadable = true;
            }
        }
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if total.unreadable {
        ExitCode::from(2)
    } else if total.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads a file's text as a YAML value whatever its format (YAML is a
/// superset of JSON; TOML is converted).
fn parse_value(text: &str, format: Format, shown: &str) -> Result<Value, Error> {
    match format {
        Format::Yaml => {
            serde_yaml_ng::from_str(text).map_err(|e| Error(format!("{shown}: invalid YAML: {e}")))
        }
        Format::Json => {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| Error(format!("{shown}: invalid JSON: {e}")))?;
            serde_yaml_ng::to_value(v).map_err(|e| Error(format!("{shown}: {e}")))
        }
        Format::Toml => {
            let v: toml::Value = toml::from_str(text)
                .map_err(|e| Error(format!("{shown}: invalid TOML: {}", toml_error(text, &e))))?;
            serde_yaml_ng::to_value(v).map_err(|e| Error(format!("{shown}: {e}")))
        }
    }
}

/// A TOML error on one line: its message and where it starts.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let mut start = span.start.min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} at line {line} column {column}")
        }
        None => message.to_owned(),
    }
}

/// Reads a rule-test file: its text, format and shape.
fn read_test_file(path: &Path) -> Result<(String, Format, TestFile), Error> {
    let shown = load::display(path);
    let format = load::format_of(path, None)?;
    let text = load::read_text(path)?;
    let file: TestFile = serde_yaml_ng::from_value(parse_value(&text, format, &shown)?)
        .map_err(|e| Error(format!("{shown}: not a rule-test file: {e}")))?;
    Ok((text, format, file))
}

/// The inline rule set of a test file, read again from the file's own text
/// so that an error names the place (`rules[0].when`) and the line in the
/// test file, as `graymatch check` does for a rule file.
fn inline_rules(text: &str, format: Format) -> Result<RuleSet, String> {
    #[derive(Deserialize)]
    struct Inline {
        rules: RuleSet,
    }
    // The place is given inside the rule set, as `check` gives it.
    let place = |message: String| -> String {
        match message
            .strip_prefix("rules.")
            .or_else(|| message.strip_prefix("rules: "))
        {
            Some(rest) => rest.to_owned(),
            None => message,
        }
    };
    match format {
        Format::Yaml => serde_yaml_ng::from_str::<Inline>(text)
            .map(|i| i.rules)
            .map_err(|e| format!("invalid YAML rule set: {}", place(e.to_string()))),
        Format::Json => serde_json::from_str::<Inline>(text)
            .map(|i| i.rules)
            .map_err(|e| format!("invalid JSON rule set: {e}")),
        Format::Toml => toml::from_str::<Inline>(text)
            .map(|i| i.rules)
            .map_err(|e| format!("invalid TOML rule set: {}", toml_error(text, &e))),
    }
}

/// Runs one file: `Err` when it cannot be read or is not a rule-test file.
pub(crate) fn run_file(path: &Path) -> Result<Tally, Error> {
    let shown = load::display(path);
    let (text, format, file) = read_test_file(path)?;
    let compiled: Result<Matcher, String> = match &file.rules {
        Value::String(rel) => {
            let target = path.parent().unwrap_or(Path::new(".")).join(rel);
            match load::rules(&target, None) {
                Ok(r) => r.map(|(_, m)| m).map_err(|e| e.to_string()),
                Err(e) => return Err(Error(format!("{shown}: rules: {e}"))),
            }
        }
        _ => inline_rules(&text, format).and_then(|set| set.compile().map_err(|e| e.to_string())),
    };

    let mut tally = Tally::default();
    if let Some(want) = &file.expect_error {
        if !file.cases.is_empty() {
            return Err(Error(format!(
                "{shown}: a file with expect_error has no cases"
            )));
        }
        match compiled {
            Err(e) if e.contains(want.as_str()) => tally.passed += 1,
            Err(e) => {
                println!("{shown}: expect_error: expected an error containing {want:?}, got {e:?}");
                tally.failed += 1;
            }
            Ok(_) => {
                println!(
                    "{shown}: expect_error: expected an error containing {want:?}, got a valid rule set"
                );
                tally.failed += 1;
            }
        }
        return Ok(tally);
    }
    let m = compiled.map_err(|e| Error(format!("{shown}: rules: {e}")))?;
    for case in &file.cases {
        match run_case(&m, case) {
            Ok(()) => tally.passed += 1,
            Err(why) => {
                println!("{shown}: {}: {why}", case.name);
                tally.failed += 1;
            }
        }
    }
    Ok(tally)
}

/// Checks one case; `Err` says what was expected and what came.
fn run_case(m: &Matcher, case: &Case) -> Result<(), String> {
    if case.expect.is_none() && case.expect_share.is_none() {
        return Err("a case needs expect or expect_share".to_owned());
    }
    let repeat = case.repeat.unwrap_or(1).max(1);
    let mut counts: HashMap<&'static str, u32> = HashMap::new();
    for i in 0..repeat {
        let req = build(&case.request, i)?;
        let d = m.decide(&req);
        *counts.entry(d.variant()).or_default() += 1;
        if let Some(want) = &case.expect {
            let mut wrong = d.variant() != want;
            if let Some(rule) = &case.rule {
                wrong |= d.rule() != rule.as_deref();
            }
            if let Some(reason) = &case.reason {
                wrong |= d.reason().as_str() != reason;
            }
            if wrong {
                let mut expected = want.clone();
                if let Some(rule) = &case.rule {
                    expected.push_str(&format!(" (rule {})", rule.as_deref().unwrap_or("null")));
                }
                if let Some(reason) = &case.reason {
                    expected.push_str(&format!(" (reason {reason})"));
                }
                let at = if repeat > 1 {
                    format!(" at repetition {i}")
                } else {
                    String::new()
                };
                return Err(format!(
                    "expected {expected}, got {} (rule {}) (reason {}){at}",
                    d.variant(),
                    d.rule().unwrap_or("null"),
                    d.reason()
                ));
            }
        }
    }
    if let Some(shares) = &case.expect_share {
        let mut wrong = Vec::new();
        for (variant, (lo, hi)) in shares {
            let n = counts.get(variant.as_str()).copied().unwrap_or(0);
            let share = f64::from(n) * 100.0 / f64::from(repeat);
            if share < *lo || share > *hi {
                wrong.push(format!("{variant} {share:.2}% not in [{lo}, {hi}]"));
            }
        }
        if !wrong.is_empty() {
            return Err(format!(
                "expected shares, got {} over {repeat} requests",
                wrong.join(", ")
            ));
        }
    }
    Ok(())
}

/// The request of a case, `{i}` replaced by the repetition index.
fn build(spec: &RequestSpec, i: u32) -> Result<Request<()>, String> {
    let sub = |s: &str| s.replace("{i}", &i.to_string());
    let mut req = Request::new(());
    let method = spec.method.as_deref().unwrap_or("GET");
    *req.method_mut() =
        Method::from_bytes(method.as_bytes()).map_err(|_| format!("invalid method {method:?}"))?;
    let uri = sub(spec.uri.as_deref().unwrap_or("/"));
    *req.uri_mut() = uri
        .parse()
        .map_err(|e| format!("invalid uri {uri:?}: {e}"))?;
    let pairs: Vec<(String, Scalar)> = match &spec.headers {
        None => Vec::new(),
        Some(Headers::Map(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(Headers::List(l)) => l.clone(),
    };
    for (name, value) in pairs {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let text = sub(&value.text());
        let v =
            HeaderValue::from_str(&text).map_err(|_| format!("invalid value for header {name}"))?;
        req.headers_mut().append(n, v);
    }
    Ok(req)
}
