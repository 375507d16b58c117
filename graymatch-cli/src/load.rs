//! Reading rule files: the format from the extension (or `--format`), the
//! text from a file or standard input.

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use graymatch::{CompileError, RuleSet};

/// A rule-file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Yaml,
    Json,
    Toml,
}

/// A problem that stops the command: bad arguments, an unreadable file.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name to show for a path (`<stdin>` for `-`).
pub(crate) fn display(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

/// The format of `path`: `explicit`, else by extension.
pub(crate) fn format_of(path: &Path, explicit: Option<Format>) -> Result<Format, Error> {
    if let Some(f) = explicit {
        return Ok(f);
    }
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("yaml" | "yml") => Ok(Format::Yaml),
        Some("json") => Ok(Format::Json),
        Some("toml") => Ok(Format::Toml),
        _ if path == Path::new("-") => Err(Error(
            "reading standard input needs --format yaml|json|toml".to_owned(),
        )),
        _ => Err(Error(format!(
            "{}: unknown extension; use .yaml, .yml, .json or .toml, or --format",
            display(path)
        ))),
    }
}

/// The text of `path`, or of standard input for `-`.
pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error(format!("<stdin>: cannot read: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| Error(format!("{}: cannot read: {e}", display(path))))
}

/// Parses rule-set text.
pub(crate) fn parse(text: &str, format: Format) -> Result<RuleSet, CompileError> {
    match format {
        Format::Yaml => RuleSet::from_yaml(text),
        Format::Json => RuleSet::from_json(text),
        Format::Toml => RuleSet::from_toml(text),
    }
}

/// Reads a rule file: `Err` when it cannot be read, `Ok(Err)` when it is not
/// a valid rule set.
pub(crate) fn rules(
    path: &Path,
    format: Option<Format>,
) -> Result<Result<(RuleSet, graymatch::Matcher), CompileError>, Error> {
    let format = format_of(path, format)?;
    let text = read_text(path)?;
    Ok(parse(&text, format).and_then(|set| {
        let m = set.compile()?;
        Ok((set, m))
    }))
}

/// `--at TIME` as a moment: RFC 3339, or now when absent.
pub(crate) fn time(at: Option<&str>) -> Result<std::time::SystemTime, Error> {
    match at {
        None => Ok(std::time::SystemTime::now()),
        Some(t) => {
            graymatch::schedule::parse_time(t).map_err(|e| Error(format!("invalid --at: {e}")))
        }
    }
}
