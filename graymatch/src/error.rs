//! The errors of this crate: a rule set that cannot be loaded or compiled,
//! and a tag that is not a valid variant name.

use std::fmt;

/// A rule set that could not be read or compiled.
///
/// The message names the place and the problem, for example
/// `rules[3] (canary-20): percents sum to 120, more than 100`. Compiling
/// never panics: every problem with a rule set is one of these.
///
/// ```
/// use graymatch::{Rule, RuleSet, Target};
///
/// let mut rules = RuleSet::new("stable");
/// rules.rules.push(Rule::split("abc", [Target::new("a", 60.0), Target::new("b", 60.0)]));
/// let err = rules.compile().unwrap_err();
/// assert_eq!(err.to_string(), "rules[0] (abc): percents sum to 120, more than 100");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    not(any(feature = "json", feature = "yaml", feature = "toml")),
    allow(dead_code, reason = "parse errors come from the format features")
)]
enum Kind {
    /// The text is not in the format, or not in the shape of a rule set.
    Parse {
        format: &'static str,
        message: String,
    },
    /// The rule set is well formed but invalid at `place`.
    Invalid { place: String, message: String },
}

impl CompileError {
    #[cfg(any(feature = "json", feature = "yaml", feature = "toml"))]
    pub(crate) fn parse(format: &'static str, message: String) -> Self {
        CompileError {
            kind: Kind::Parse { format, message },
        }
    }

    pub(crate) fn invalid(place: impl Into<String>, message: impl Into<String>) -> Self {
        CompileError {
            kind: Kind::Invalid {
                place: place.into(),
                message: message.into(),
            },
        }
    }

    /// Where the problem is (`rules[3] (canary-20)`, `default`, `variants[1]`),
    /// or `None` when the text itself could not be read (its message then
    /// gives the line and column).
    ///
    /// ```
    /// let err = graymatch::RuleSet::new("no spaces").compile().unwrap_err();
    /// assert_eq!(err.place(), Some("default"));
    /// ```
    pub fn place(&self) -> Option<&str> {
        match &self.kind {
            Kind::Parse { .. } => None,
            Kind::Invalid { place, .. } => Some(place),
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Parse { format, message } => write!(f, "invalid {format} rule set: {message}"),
            Kind::Invalid { place, message } => write!(f, "{place}: {message}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// A string that is not a valid variant name, so cannot be a tag: variant
/// names are 1 to 64 of `[A-Za-z0-9._-]`.
///
/// ```
/// assert!(graymatch::Tag::new("gray").is_ok());
/// let err = graymatch::Tag::new("gray; drop").unwrap_err();
/// assert_eq!(err.to_string(), "invalid gray tag: variant names are 1 to 64 of [A-Za-z0-9._-]");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTag {
    _priv: (),
}

impl InvalidTag {
    pub(crate) fn new() -> Self {
        InvalidTag { _priv: () }
    }
}

impl fmt::Display for InvalidTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid gray tag: variant names are 1 to 64 of [A-Za-z0-9._-]")
    }
}

impl std::error::Error for InvalidTag {}
