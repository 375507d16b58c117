//! The error of this crate: a lane that cannot be set up, or a broker
//! operation that failed, with the place it happened.

use std::fmt;

/// A lane that cannot be set up, or a broker operation that failed.
///
/// The message names the place (`lane gray of group orders`, `nats:
/// subscribe orders.gray`) and the problem. Nothing in this crate panics
/// on a message, however malformed: bad input is routed by the rules in
/// the crate docs, and only configuration and broker failures are errors.
///
/// ```
/// let rules = graymatch::RuleSet::new("stable").compile()?;
/// let err = graymatch_messaging::Lane::new(rules, "", "stable").unwrap_err();
/// assert_eq!(err.to_string(), "lane stable of group : group names are 1 to 64 of [A-Za-z0-9_-]");
/// # Ok::<(), graymatch::CompileError>(())
/// ```
#[derive(Debug)]
pub struct Error {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// The lane or consumer is configured wrongly.
    Config { place: String, message: String },
    /// The broker or its client failed.
    #[cfg_attr(
        not(any(feature = "nats", feature = "rabbitmq")),
        allow(dead_code, reason = "broker errors come from the client features")
    )]
    Broker {
        place: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn config(place: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Config {
                place: place.into(),
                message: message.into(),
            },
        }
    }

    #[cfg_attr(
        not(any(feature = "nats", feature = "rabbitmq")),
        allow(dead_code, reason = "broker errors come from the client features")
    )]
    pub(crate) fn broker(
        place: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error {
            kind: Kind::Broker {
                place: place.into(),
                source: source.into(),
            },
        }
    }

    /// Whether the broker or its client failed (rather than the
    /// configuration).
    ///
    /// ```
    /// let err = graymatch_messaging::Lane::new(graymatch::RuleSet::new("s").compile()?, "g", "x").unwrap_err();
    /// assert!(!err.is_broker());
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn is_broker(&self) -> bool {
        matches!(self.kind, Kind::Broker { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Config { place, message } => write!(f, "{place}: {message}"),
            Kind::Broker { place, source } => write!(f, "{place}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Config { .. } => None,
            Kind::Broker { source, .. } => Some(&**source),
        }
    }
}
