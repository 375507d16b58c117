//! The reports of `graymatch test --report`: JUnit XML for CI test reporters
//! and a JSON summary.
//!
//! The JUnit file follows the schema that Jenkins, GitLab and the GitHub
//! Actions test reporters read (Ant's format):
//!
//! ```text
//! testsuites(name, tests, failures, errors, time)
//!   testsuite(name, tests, failures, errors, skipped, time)   one per file
//!     testcase(name, classname, time)                         one per case
//!       failure(message, type) | error(message, type)        the details as text
//!       system-out                                            measured shares
//!     system-out                                              a file's warning
//! ```
//!
//! A case that ran and got another answer is a `failure`; a case that never
//! ran (its rule set did not load) is an `error`, and so is the testcase
//! `(file)` that stands for a file whose cases could not be read. `failures +
//! errors` is the `failed` of the summary line.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde::Serialize;

use crate::testfile::{CaseResult, FileResult, Status};

/// Text that XML 1.0 can hold: characters it forbids even escaped (control
/// characters other than tab, line feed and carriage return; U+FFFE, U+FFFF)
/// become U+FFFD.
fn xml_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Seconds as the schema's time type wants them: digits, a dot, digits.
fn seconds(t: f64) -> String {
    format!("{:.6}", t.max(0.0))
}

/// Jenkins splits a classname at its last dot into package and class; the
/// file's path with its dots made underscores stays whole.
fn classname(file: &str) -> String {
    xml_text(&file.replace('.', "_"))
}

/// The JUnit XML report of a run: one testsuite per file, one testcase per
/// case.
pub(crate) fn junit(files: &[FileResult]) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let _ = write_junit(&mut w, files);
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

fn count(cases: &[CaseResult], status: Status) -> usize {
    cases.iter().filter(|c| c.status == status).count()
}

fn write_junit(w: &mut Writer<Vec<u8>>, files: &[FileResult]) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let tests: usize = files.iter().map(|f| f.cases.len()).sum();
    let failures: usize = files.iter().map(|f| count(&f.cases, Status::Failed)).sum();
    let errors: usize = files.iter().map(|f| count(&f.cases, Status::Error)).sum();
    let time: f64 = files.iter().map(|f| f.time).sum();
    w.create_element("testsuites")
        .with_attributes([
            ("name", "graymatch test"),
            ("tests", tests.to_string().as_str()),
            ("failures", failures.to_string().as_str()),
            ("errors", errors.to_string().as_str()),
            ("time", seconds(time).as_str()),
        ])
        .write_inner_content(|w| {
            for file in files {
                write_suite(w, file)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_suite(w: &mut Writer<Vec<u8>>, file: &FileResult) -> io::Result<()> {
    let name = xml_text(&file.file);
    w.create_element("testsuite")
        .with_attributes([
            ("name", name.as_str()),
            ("tests", file.cases.len().to_string().as_str()),
            (
                "failures",
                count(&file.cases, Status::Failed).to_string().as_str(),
            ),
            (
                "errors",
                count(&file.cases, Status::Error).to_string().as_str(),
            ),
            ("skipped", "0"),
            ("time", seconds(file.time).as_str()),
        ])
        .write_inner_content(|w| {
            for case in &file.cases {
                write_case(w, &file.file, case)?;
            }
            if let Some(warning) = &file.warning {
                w.create_element("system-out")
                    .write_text_content(BytesText::new(&xml_text(warning)))?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, file: &str, case: &CaseResult) -> io::Result<()> {
    let name = xml_text(&case.name);
    let element = w.create_element("testcase").with_attributes([
        ("name", name.as_str()),
        ("classname", classname(file).as_str()),
        ("time", seconds(case.time).as_str()),
    ]);
    let outcome = match case.status {
        Status::Passed => None,
        Status::Failed => Some("failure"),
        Status::Error => Some("error"),
    };
    let shares = shares_text(case);
    if outcome.is_none() && shares.is_none() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|w| {
        if let Some(tag) = outcome {
            let message = xml_text(case.message.as_deref().unwrap_or("failed"));
            w.create_element(tag)
                .with_attributes([
                    ("message", message.as_str()),
                    ("type", case.kind.unwrap_or("failure")),
                ])
                .write_text_content(BytesText::new(&xml_text(&details(case))))?;
        }
        if let Some(shares) = &shares {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&xml_text(shares)))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The body of a failure: what was expected, what came, and the request.
fn details(case: &CaseResult) -> String {
    let mut lines = vec![case.message.clone().unwrap_or_default()];
    if let Some(e) = &case.expected {
        let mut parts = Vec::new();
        if let Some(v) = &e.variant {
            parts.push(format!("variant {v}"));
        }
        if let Some(r) = &e.rule {
            parts.push(format!("rule {}", r.as_deref().unwrap_or("null")));
        }
        if let Some(r) = &e.reason {
            parts.push(format!("reason {r}"));
        }
        lines.push(format!("expected: {}", parts.join(", ")));
    }
    if let Some(g) = &case.got {
        lines.push(format!(
            "got: variant {}, rule {}, reason {}",
            g.variant,
            g.rule.unwrap_or("null"),
            g.reason
        ));
    }
    if let Some(r) = &case.request {
        lines.push(format!("request: {r}"));
    }
    if let Some(s) = shares_text(case) {
        lines.push(s);
    }
    lines.join("\n")
}

/// `shares over 10000 requests: gray 20.13% (2013), stable 79.87% (7987);
/// expected gray in [18.5, 21.5]`, for a case that measured shares.
fn shares_text(case: &CaseResult) -> Option<String> {
    if case.shares.is_empty() {
        return None;
    }
    let measured: Vec<String> = case
        .shares
        .iter()
        .map(|(v, s)| format!("{v} {:.2}% ({})", s.percent, s.count))
        .collect();
    let mut text = format!(
        "shares over {} requests: {}",
        case.repeat,
        measured.join(", ")
    );
    if let Some(want) = &case.expect_share {
        let bounds: Vec<String> = want
            .iter()
            .map(|(v, (lo, hi))| format!("{v} in [{lo}, {hi}]"))
            .collect();
        text.push_str(&format!("; expected {}", bounds.join(", ")));
    }
    Some(text)
}

/// The JSON summary of a run.
#[derive(Serialize)]
struct Summary<'a> {
    passed: usize,
    failed: usize,
    warnings: usize,
    exit_code: u8,
    files: &'a [FileResult],
}

/// The JSON report of a run: the totals, the exit code, and every file and
/// case with what it expected and got.
pub(crate) fn json(files: &[FileResult], exit_code: u8) -> Vec<u8> {
    let summary = Summary {
        passed: files.iter().map(|f| f.passed).sum(),
        failed: files.iter().map(|f| f.failed).sum(),
        warnings: files.iter().filter(|f| f.warning.is_some()).count(),
        exit_code,
        files,
    };
    // Plain data with string keys and finite numbers: serialising cannot fail.
    let mut out = serde_json::to_vec_pretty(&summary).unwrap_or_default();
    out.push(b'\n');
    out
}
