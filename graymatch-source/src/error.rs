//! The error of this crate: what went wrong, and where (a file, a URL, an
//! etcd endpoint and key, a rule set's place).

use std::fmt;

/// Something a source, a backup file, a start or the etcd client could not
/// do. The message names the place: the file, the URL, the endpoint and key,
/// or the place in the rule set (`rules[3] (canary-20): ...`).
///
/// ```
/// let err = graymatch_source::Format::from_name("ini").unwrap_err();
/// assert_eq!(err.to_string(), "unknown rule-set format `ini`: use yaml, json or toml");
/// ```
#[derive(Debug)]
pub struct Error {
    kind: Kind,
}

#[derive(Debug)]
#[allow(dead_code, reason = "some kinds come only from the source features")]
enum Kind {
    /// The text is not a valid rule set.
    Rules {
        origin: String,
        error: graymatch::CompileError,
    },
    /// The text is not UTF-8.
    NotUtf8 { origin: String, offset: usize },
    /// A file could not be read or written.
    Io {
        path: String,
        action: &'static str,
        error: std::io::Error,
    },
    /// A backup file that cannot be used.
    Backup { path: String, message: String },
    /// A request to a server failed or was answered with an error.
    Remote { place: String, message: String },
    /// A compare-and-swap write found the key at another revision.
    Conflict {
        key: String,
        expected: u64,
        found: u64,
    },
    /// Bad configuration (a URL, a format name, an endpoint list).
    Config { message: String },
    /// No rule set could be had at start.
    NoRules { message: String },
    /// `start` outside a tokio runtime.
    NoRuntime,
}

impl Error {
    pub(crate) fn rules(origin: impl Into<String>, error: graymatch::CompileError) -> Self {
        Error {
            kind: Kind::Rules {
                origin: origin.into(),
                error,
            },
        }
    }

    pub(crate) fn not_utf8(origin: impl Into<String>, offset: usize) -> Self {
        Error {
            kind: Kind::NotUtf8 {
                origin: origin.into(),
                offset,
            },
        }
    }

    pub(crate) fn io(path: impl fmt::Display, action: &'static str, error: std::io::Error) -> Self {
        Error {
            kind: Kind::Io {
                path: path.to_string(),
                action,
                error,
            },
        }
    }

    pub(crate) fn backup(path: impl fmt::Display, message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Backup {
                path: path.to_string(),
                message: message.into(),
            },
        }
    }

    #[cfg_attr(not(any(feature = "http", feature = "etcd")), allow(dead_code))]
    pub(crate) fn remote(place: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Remote {
                place: place.into(),
                message: message.into(),
            },
        }
    }

    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn conflict(key: impl Into<String>, expected: u64, found: u64) -> Self {
        Error {
            kind: Kind::Conflict {
                key: key.into(),
                expected,
                found,
            },
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Config {
                message: message.into(),
            },
        }
    }

    pub(crate) fn no_rules(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::NoRules {
                message: message.into(),
            },
        }
    }

    pub(crate) fn no_runtime() -> Self {
        Error {
            kind: Kind::NoRuntime,
        }
    }

    /// The place in the rule set when the error is a rule set that does not
    /// compile (`rules[3] (canary-20)`, `default`); `None` otherwise, and for
    /// text that could not be parsed (its message has the line and column).
    ///
    /// ```
    /// use graymatch_source::{Feed, Format, Revision};
    ///
    /// let feed = Feed::new("example", Format::Yaml);
    /// let refused = feed.offer(b"default: not valid", Revision::none());
    /// assert_eq!(refused.error().and_then(|e| e.place()), Some("default"));
    /// ```
    pub fn place(&self) -> Option<&str> {
        match &self.kind {
            Kind::Rules { error, .. } => error.place(),
            _ => None,
        }
    }

    /// The compile error, when the error is a rule set that does not compile.
    pub fn compile_error(&self) -> Option<&graymatch::CompileError> {
        match &self.kind {
            Kind::Rules { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether a server could not be reached or answered with an error (as
    /// opposed to a refusal of what was asked: a bad rule set, a bad
    /// variant, a conflict).
    ///
    /// ```
    /// let err = graymatch_source::etcd::Client::new(["not a url"]).unwrap_err();
    /// assert!(!err.is_remote());
    /// ```
    pub fn is_remote(&self) -> bool {
        matches!(self.kind, Kind::Remote { .. })
    }

    /// For a refused compare-and-swap write
    /// ([`etcd::Client::put_if`](crate::etcd::Client::put_if)): the revision the
    /// key was expected at and the one it is at (0: the key does not exist).
    pub fn conflict_revisions(&self) -> Option<(u64, u64)> {
        match &self.kind {
            Kind::Conflict {
                expected, found, ..
            } => Some((*expected, *found)),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Rules { origin, error } => write!(f, "{origin}: {error}"),
            Kind::NotUtf8 { origin, offset } => {
                write!(f, "{origin}: the text is not UTF-8 (at byte {offset})")
            }
            Kind::Io {
                path,
                action,
                error,
            } => write!(f, "{path}: cannot {action}: {error}"),
            Kind::Backup { path, message } => write!(f, "backup file {path}: {message}"),
            Kind::Remote { place, message } => write!(f, "{place}: {message}"),
            Kind::Conflict {
                key,
                expected,
                found: 0,
            } => write!(
                f,
                "{key}: refused: expected the key at revision {expected}, but it does not exist \
                 (deleted since you looked?); look again with `graymatch status`"
            ),
            Kind::Conflict {
                key,
                expected,
                found,
            } => write!(
                f,
                "{key}: refused: expected the key at revision {expected}, but it is at revision \
                 {found}: someone pushed since you looked; review with `graymatch status` and \
                 push again with --revision {found}"
            ),
            Kind::Config { message } => f.write_str(message),
            Kind::NoRules { message } => write!(f, "no rule set to serve: {message}"),
            Kind::NoRuntime => {
                f.write_str("graymatch-source needs a tokio runtime: call `start` from inside one")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Rules { error, .. } => Some(error),
            Kind::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// An error and its causes, `a: b: c` (reqwest keeps the cause apart).
#[cfg_attr(not(any(feature = "http", feature = "etcd")), allow(dead_code))]
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    let mut depth = 0;
    while let Some(c) = cause
        && depth < 8
    {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
        depth += 1;
    }
    out
}
