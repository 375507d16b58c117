//! `graymatch test`: rule-test files, each a rule set (a path or inline) and
//! cases of a request and the decision it must get.
//!
//! Every file counts in the summary: a file that cannot be read is one
//! failure, a rule set that does not load fails each of its file's cases
//! (unless `expect_error` asks for that), and a file without cases is a
//! warning (a failure with `--strict`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use graymatch::{Matcher, RuleSet};
use http::{HeaderName, HeaderValue, Method, Request};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::load::{self, Error, Format};
use crate::report;

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
    /// The moment the case is decided at (RFC 3339): scheduled rules take
    /// the percent of their step then. Absent: now.
    #[serde(default)]
    at: Option<String>,
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
    /// The client's address as the server saw it (a `ClientIp`).
    #[serde(default)]
    client_ip: Option<String>,
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

/// How a case ended. A case that never ran because its file or its rule set
/// could not be loaded is an `Error`; one that ran and got another answer is
/// `Failed`. The summary counts both as failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Passed,
    Failed,
    Error,
}

/// What a case expected: the fields it checks.
#[derive(Serialize)]
pub(crate) struct Expected {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) variant: Option<String>,
    /// Absent: not checked; `null`: no rule decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// The decision a case's request got.
#[derive(Serialize)]
pub(crate) struct Got {
    pub(crate) variant: &'static str,
    pub(crate) rule: Option<&'static str>,
    pub(crate) reason: &'static str,
}

/// The measured share of one variant over a repeated case.
#[derive(Serialize)]
pub(crate) struct Share {
    pub(crate) count: u32,
    pub(crate) percent: f64,
}

/// The outcome of one case (or, named `(file)`, of a file whose cases could
/// not be read).
#[derive(Serialize)]
pub(crate) struct CaseResult {
    pub(crate) name: String,
    pub(crate) status: Status,
    /// What went wrong, on one line; absent when the case passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
    /// The kind of problem: `mismatch`, `share`, `invalid-case`,
    /// `expect-error`, `rules`, `unreadable` or `no-cases`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expected: Option<Expected>,
    /// The decision: of the only request, or of the repetition that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) got: Option<Got>,
    /// The request that got `got`, as `METHOD URI; name: value; ...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<String>,
    pub(crate) repeat: u32,
    /// The measured share of each variant, when the case ran more than once
    /// (or checks shares) and every repetition ran.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) shares: BTreeMap<String, Share>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expect_share: Option<BTreeMap<String, (f64, f64)>>,
    /// Seconds.
    pub(crate) time: f64,
}

impl CaseResult {
    fn new(name: &str, status: Status) -> Self {
        CaseResult {
            name: name.to_owned(),
            status,
            message: None,
            kind: None,
            expected: None,
            got: None,
            request: None,
            repeat: 1,
            shares: BTreeMap::new(),
            expect_share: None,
            time: 0.0,
        }
    }

    fn problem(mut self, kind: &'static str, message: String) -> Self {
        self.kind = Some(kind);
        self.message = Some(message);
        self
    }
}

/// The name of the case that stands for a whole file whose cases could not
/// be read or run.
pub(crate) const FILE_CASE: &str = "(file)";

/// The outcome of one rule-test file.
#[derive(Serialize)]
pub(crate) struct FileResult {
    pub(crate) file: String,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    /// The file, or the rule file it names, cannot be read, or it is not a
    /// rule-test file: `graymatch test` exits 2.
    pub(crate) unreadable: bool,
    /// What stopped the file's cases from running, as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// A file that tests nothing, as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
    pub(crate) cases: Vec<CaseResult>,
    /// Seconds.
    pub(crate) time: f64,
}

impl FileResult {
    fn new(file: String) -> Self {
        FileResult {
            file,
            passed: 0,
            failed: 0,
            unreadable: false,
            error: None,
            warning: None,
            cases: Vec::new(),
            time: 0.0,
        }
    }

    /// A file whose cases cannot be read: one failure, standing for the file.
    fn unreadable(file: String, error: String) -> Self {
        let mut r = FileResult::new(file);
        r.unreadable = true;
        r.cases
            .push(CaseResult::new(FILE_CASE, Status::Error).problem("unreadable", error.clone()));
        r.error = Some(error);
        r.count();
        r
    }

    fn count(&mut self) {
        self.passed = self
            .cases
            .iter()
            .filter(|c| c.status == Status::Passed)
            .count();
        self.failed = self.cases.len() - self.passed;
    }

    /// The lines `graymatch test` prints for this file.
    pub(crate) fn print(&self) {
        if let Some(e) = &self.error {
            let not_run = self
                .cases
                .iter()
                .filter(|c| c.status == Status::Error && c.name != FILE_CASE)
                .count();
            match not_run {
                0 => println!("{e}"),
                1 => println!("{e} (1 case not run, counted as failed)"),
                n => println!("{e} ({n} cases not run, counted as failed)"),
            }
        }
        if let Some(w) = &self.warning {
            println!("{w}");
        }
        for case in &self.cases {
            if case.status == Status::Failed {
                let why = case.message.as_deref().unwrap_or("failed");
                println!("{}: {}: {why}", self.file, case.name);
            }
        }
    }
}

/// A report file asked for with `--report FORMAT=PATH`.
pub(crate) struct Report {
    format: ReportFormat,
    path: PathBuf,
}

#[derive(Clone, Copy)]
enum ReportFormat {
    Junit,
    Json,
}

impl Report {
    /// Reads `junit=PATH` or `json=PATH`.
    pub(crate) fn parse(spec: &str) -> Result<Report, Error> {
        let bad = |why: &str| Error(format!("invalid --report {spec:?}: {why}"));
        let (format, path) = spec
            .split_once('=')
            .ok_or_else(|| bad("write junit=PATH or json=PATH"))?;
        let format = match format.to_ascii_lowercase().as_str() {
            "junit" => ReportFormat::Junit,
            "json" => ReportFormat::Json,
            other => return Err(bad(&format!("unknown format {other:?}; use junit or json"))),
        };
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        Ok(Report {
            format,
            path: PathBuf::from(path),
        })
    }

    fn write(&self, files: &[FileResult], exit_code: u8) -> Result<(), Error> {
        let bytes = match self.format {
            ReportFormat::Junit => report::junit(files),
            ReportFormat::Json => report::json(files, exit_code),
        };
        let shown = self.path.display();
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error(format!("cannot write report {shown}: {e}")))?;
        }
        std::fs::write(&self.path, bytes)
            .map_err(|e| Error(format!("cannot write report {shown}: {e}")))
    }
}

/// `graymatch test`: runs every file, prints failures and the summary, and
/// writes the reports.
pub(crate) fn run(files: &[PathBuf], strict: bool, reports: &[String]) -> Result<ExitCode, Error> {
    let reports = reports
        .iter()
        .map(|r| Report::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let results: Vec<FileResult> = files
        .iter()
        .map(|path| {
            let r = run_file(path, strict);
            r.print();
            r
        })
        .collect();
    let passed: usize = results.iter().map(|r| r.passed).sum();
    let failed: usize = results.iter().map(|r| r.failed).sum();
    let code: u8 = if results.iter().any(|r| r.unreadable) {
        2
    } else if failed > 0 {
        1
    } else {
        0
    };
    println!("{passed} passed, {failed} failed");
    for report in &reports {
        report.write(&results, code)?;
    }
    Ok(ExitCode::from(code))
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
fn inline_rules(text: &str, format: Format, names: &[Option<String>]) -> Result<RuleSet, String> {
    #[derive(Deserialize)]
    struct Inline {
        rules: RuleSet,
    }
    // The place is given inside the rule set, as `check` gives it, with the
    // rule's name after its index: `rules[0] (canary).when`.
    let place = |path: &str| -> String {
        let inner = path.strip_prefix("rules.").unwrap_or(path);
        let named = inner.strip_prefix("rules[").and_then(|rest| {
            let close = rest.find(']')?;
            let name = names
                .get(rest[..close].parse::<usize>().ok()?)?
                .as_deref()?;
            Some(format!(
                "rules[{}] ({name}){}",
                &rest[..close],
                &rest[close + 1..]
            ))
        });
        named.unwrap_or_else(|| inner.to_owned())
    };
    let join = |path: &str, message: &str| {
        let path = place(path);
        if path.is_empty() || path == "rules" || path == "." {
            message.to_owned()
        } else {
            format!("{path}: {message}")
        }
    };
    match format {
        Format::Yaml => serde_yaml_ng::from_str::<Inline>(text)
            .map(|i| i.rules)
            .map_err(|e| {
                let message = e.to_string();
                let message = match message.split_once(": ") {
                    Some((path, rest)) if path.starts_with("rules") && !path.contains(' ') => {
                        join(path, rest)
                    }
                    _ => message,
                };
                format!("invalid YAML rule set: {message}")
            }),
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize::<_, Inline>(&mut de)
                .map(|i| i.rules)
                .map_err(|e| {
                    let path = e.path().to_string();
                    format!(
                        "invalid JSON rule set: {}",
                        join(&path, &e.into_inner().to_string())
                    )
                })
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text)
                .map_err(|e| format!("invalid TOML rule set: {}", toml_error(text, &e)))?;
            serde_path_to_error::deserialize::<_, Inline>(de)
                .map(|i| i.rules)
                .map_err(|e| {
                    let path = e.path().to_string();
                    format!(
                        "invalid TOML rule set: {}",
                        join(&path, &toml_error(text, e.inner()))
                    )
                })
        }
    }
}

/// The rules' names in an inline rule set, in order, for error places.
fn rule_names(rules: &Value) -> Vec<Option<String>> {
    rules
        .get("rules")
        .and_then(Value::as_sequence)
        .map(|list| {
            list.iter()
                .map(|r| r.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs one file, without printing. A file that cannot be read counts as one
/// failure; a rule set that does not load fails every case of its file.
pub(crate) fn run_file(path: &Path, strict: bool) -> FileResult {
    let start = Instant::now();
    let mut result = run_file_timed(path, strict);
    result.time = start.elapsed().as_secs_f64();
    result
}

fn run_file_timed(path: &Path, strict: bool) -> FileResult {
    let shown = load::display(path);
    let (text, format, file) = match read_test_file(path) {
        Ok(f) => f,
        Err(e) => return FileResult::unreadable(shown, e.0),
    };
    let mut result = FileResult::new(shown.clone());
    if file.expect_error.is_some() && !file.cases.is_empty() {
        return FileResult::unreadable(
            shown.clone(),
            format!("{shown}: a file with expect_error has no cases"),
        );
    }
    let compiled: Result<Matcher, String> = match &file.rules {
        Value::String(rel) => {
            let target = path.parent().unwrap_or(Path::new(".")).join(rel);
            match load::rules(&target, None) {
                Ok(r) => r.map(|(_, m)| m).map_err(|e| e.to_string()),
                Err(e) => {
                    // The rule file itself cannot be read: the cases cannot run.
                    result.unreadable = true;
                    Err(e.0)
                }
            }
        }
        _ => inline_rules(&text, format, &rule_names(&file.rules))
            .and_then(|set| set.compile().map_err(|e| e.to_string())),
    };

    if let Some(want) = &file.expect_error {
        let case = CaseResult::new("expect_error", Status::Passed);
        let case = match compiled {
            Err(e) if e.contains(want.as_str()) && !result.unreadable => case,
            Err(e) => CaseResult {
                status: Status::Failed,
                ..case.problem(
                    "expect-error",
                    format!("expected an error containing {want:?}, got {e:?}"),
                )
            },
            Ok(_) => CaseResult {
                status: Status::Failed,
                ..case.problem(
                    "expect-error",
                    format!("expected an error containing {want:?}, got a valid rule set"),
                )
            },
        };
        result.cases.push(case);
        result.count();
        return result;
    }

    let m = match compiled {
        Ok(m) => Some(m),
        Err(e) => {
            let line = format!("{shown}: rules: {e}");
            if file.cases.is_empty() {
                // No cases to count as failed: the file is the failure.
                result
                    .cases
                    .push(CaseResult::new(FILE_CASE, Status::Error).problem("rules", line.clone()));
            }
            for case in &file.cases {
                result.cases.push(
                    CaseResult::new(&case.name, Status::Error)
                        .problem("rules", format!("not run: the rule set did not load: {e}")),
                );
            }
            result.error = Some(line);
            None
        }
    };
    if let Some(m) = &m {
        if file.cases.is_empty() {
            if strict {
                let line = format!("{shown}: error: no cases (--strict)");
                result.cases.push(
                    CaseResult::new(FILE_CASE, Status::Error).problem("no-cases", line.clone()),
                );
                result.error = Some(line);
            } else {
                result.warning = Some(format!("{shown}: warning: no cases, nothing tested"));
            }
        }
        for case in &file.cases {
            let start = Instant::now();
            let at_moment = case.at.as_deref().map(|t| {
                graymatch::schedule::parse_time(t)
                    .map_err(|e| format!("at: {e}"))
                    .and_then(|t| m.rule_set().compile_at(t).map_err(|e| e.to_string()))
            });
            let mut r = match &at_moment {
                None => run_case(m, case),
                Some(Ok(m)) => run_case(m, case),
                Some(Err(e)) => CaseResult::new(&case.name, Status::Error)
                    .problem("at", format!("{shown}: {}: {e}", case.name)),
            };
            r.time = start.elapsed().as_secs_f64();
            result.cases.push(r);
        }
    }
    result.count();
    result
}

/// Calls `f` with the name of each case of a rule-test file and each of its
/// requests (every repetition, `{i}` replaced). The file's rule set is not
/// read.
pub(crate) fn for_each_request(
    path: &Path,
    mut f: impl FnMut(&str, &Request<()>),
) -> Result<(), Error> {
    let shown = load::display(path);
    let (_, _, file) = read_test_file(path)?;
    for case in &file.cases {
        for i in 0..case.repeat.unwrap_or(1).max(1) {
            let req = build(&case.request, i)
                .map_err(|e| Error(format!("{shown}: {}: {e}", case.name)))?;
            f(&case.name, &req);
        }
    }
    Ok(())
}

/// `METHOD URI; name: value; ...`
fn describe(req: &Request<()>) -> String {
    let mut s = format!("{} {}", req.method(), req.uri());
    for (name, value) in req.headers() {
        s.push_str(&format!(
            "; {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    s
}

/// Runs one case: every repetition of its request against the matcher.
fn run_case(m: &Matcher, case: &Case) -> CaseResult {
    let repeat = case.repeat.unwrap_or(1).max(1);
    let mut result = CaseResult::new(&case.name, Status::Passed);
    result.repeat = repeat;
    result.expect_share = case.expect_share.clone();
    if case.expect.is_some() || case.rule.is_some() || case.reason.is_some() {
        result.expected = Some(Expected {
            variant: case.expect.clone(),
            rule: case.rule.clone(),
            reason: case.reason.clone(),
        });
    }
    if case.expect.is_none() && case.expect_share.is_none() {
        result.status = Status::Failed;
        return result.problem(
            "invalid-case",
            "a case needs expect or expect_share".to_owned(),
        );
    }
    let mut counts: HashMap<&'static str, u32> = HashMap::new();
    for i in 0..repeat {
        let req = match build(&case.request, i) {
            Ok(r) => r,
            Err(e) => {
                result.status = Status::Failed;
                return result.problem("invalid-case", e);
            }
        };
        let d = m.decide(&req);
        *counts.entry(d.variant()).or_default() += 1;
        let got = Got {
            variant: d.variant(),
            rule: d.rule(),
            reason: d.reason().as_str(),
        };
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
                let message = format!(
                    "expected {expected}, got {} (rule {}) (reason {}){at}",
                    d.variant(),
                    d.rule().unwrap_or("null"),
                    d.reason()
                );
                result.status = Status::Failed;
                result.got = Some(got);
                result.request = Some(describe(&req));
                return result.problem("mismatch", message);
            }
        }
        if repeat == 1 {
            result.got = Some(got);
            result.request = Some(describe(&req));
        }
    }
    if repeat > 1 || case.expect_share.is_some() {
        result.shares = counts
            .iter()
            .map(|(v, n)| {
                let share = Share {
                    count: *n,
                    percent: f64::from(*n) * 100.0 / f64::from(repeat),
                };
                ((*v).to_owned(), share)
            })
            .collect();
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
            result.status = Status::Failed;
            return result.problem(
                "share",
                format!(
                    "expected shares, got {} over {repeat} requests",
                    wrong.join(", ")
                ),
            );
        }
    }
    result
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
    if let Some(ip) = &spec.client_ip {
        let ip = sub(ip);
        let ip = ip
            .parse()
            .map_err(|_| format!("invalid client_ip {ip:?}: not an IP address"))?;
        req.extensions_mut().insert(graymatch::ClientIp(ip));
    }
    Ok(req)
}
