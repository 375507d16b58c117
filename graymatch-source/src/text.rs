//! Rule-set text: its format, its SHA-256 version, and parsing it.

use std::fmt;
use std::path::Path;

use graymatch::{RuleSet, RuleSetVersion};
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// The format of a rule-set text.
///
/// ```
/// use graymatch_source::Format;
///
/// assert_eq!(Format::from_path("rules.yml".as_ref()), Some(Format::Yaml));
/// assert_eq!(Format::from_path("rules.json".as_ref()), Some(Format::Json));
/// assert_eq!(Format::from_name("TOML")?, Format::Toml);
/// # Ok::<(), graymatch_source::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML (the default; JSON is valid YAML too).
    #[default]
    Yaml,
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

impl Format {
    /// The format a path's extension names (`.yaml`, `.yml`, `.json`,
    /// `.toml`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    /// The format called `name` (`yaml`, `yml`, `json`, `toml`; any case).
    ///
    /// # Errors
    ///
    /// Another name.
    pub fn from_name(name: &str) -> Result<Format, Error> {
        match name.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            "toml" => Ok(Format::Toml),
            _ => Err(Error::config(format!(
                "unknown rule-set format `{name}`: use yaml, json or toml"
            ))),
        }
    }

    /// `yaml`, `json` or `toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Toml => "toml",
        }
    }

    /// Parses `text` in this format.
    ///
    /// # Errors
    ///
    /// The parse error, naming the rule and the path inside it.
    pub fn parse(self, text: &str) -> Result<RuleSet, graymatch::CompileError> {
        match self {
            Format::Yaml => RuleSet::from_yaml(text),
            Format::Json => RuleSet::from_json(text),
            Format::Toml => RuleSet::from_toml(text),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version of a text: the SHA-256 digest of its exact bytes (what
/// `sha256sum` prints), with no revision. The same bytes give the same
/// version on every instance, in `graymatch check` and in `graymatch push`.
///
/// ```
/// let v = graymatch_source::version_of(b"default: stable\n");
/// assert_eq!(v.hash().len(), 64);
/// assert_eq!(v, graymatch_source::version_of(b"default: stable\n"));
/// assert_ne!(v, graymatch_source::version_of(b"default: stable"));
/// // sha256("") is well known.
/// assert!(graymatch_source::version_of(b"").hash().starts_with("e3b0c44298fc"));
/// ```
pub fn version_of(text: &[u8]) -> RuleSetVersion {
    RuleSetVersion::new(Sha256::digest(text).into())
}

/// `text` as UTF-8, or an error naming `origin` and the first bad byte.
pub(crate) fn utf8<'a>(origin: &str, text: &'a [u8]) -> Result<&'a str, Error> {
    std::str::from_utf8(text).map_err(|e| Error::not_utf8(origin, e.valid_up_to()))
}

/// `SystemTime` as RFC 3339 UTC with milliseconds (`2026-11-23T10:00:00.123Z`).
pub(crate) fn rfc3339(time: std::time::SystemTime) -> String {
    let d = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_table() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.005Z"),
            (1_763_892_000, 123, "2025-11-23T10:00:00.123Z"),
            (4_102_444_799, 999, "2099-12-31T23:59:59.999Z"),
        ];
        for (secs, millis, want) in cases {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
            assert_eq!(rfc3339(t), want, "{secs}");
        }
    }

    #[test]
    fn formats_by_extension() {
        let cases = [
            ("a.yaml", Some(Format::Yaml)),
            ("a.YML", Some(Format::Yaml)),
            ("a.json", Some(Format::Json)),
            ("a.toml", Some(Format::Toml)),
            ("a.txt", None),
            ("a", None),
        ];
        for (path, want) in cases {
            assert_eq!(Format::from_path(Path::new(path)), want, "{path}");
        }
    }
}
