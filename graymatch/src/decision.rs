//! The outcome of deciding one request: a variant, the rule that chose it,
//! and why.

use std::fmt;

use crate::version::VersionId;

/// Which variant a request goes to, the rule that decided it, and why.
///
/// Small and `Copy` (names are interned when the rule set is compiled), so it
/// can be stored in request extensions, logged, or used as a metric label
/// without borrowing the [`Matcher`](crate::Matcher).
///
/// ```
/// use graymatch::{Reason, RuleSet};
///
/// let rules = RuleSet::from_json(r#"{"default": "stable", "rules": [
///     {"name": "beta", "to": "gray", "when": {"query": {"name": "beta", "present": true}}}
/// ]}"#)?;
/// let m = rules.compile()?;
///
/// let d = m.decide(&http::Request::get("/?beta").body(()).unwrap());
/// assert_eq!((d.variant(), d.rule(), d.reason()), ("gray", Some("beta"), Reason::Rule));
///
/// let d = m.decide(&http::Request::get("/").body(()).unwrap());
/// assert_eq!((d.variant(), d.rule(), d.reason()), ("stable", None, Reason::Default));
/// # Ok::<(), graymatch::CompileError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    variant: &'static str,
    rule: Option<&'static str>,
    reason: Reason,
    version: Option<VersionId>,
}

impl Decision {
    pub(crate) fn new(
        variant: &'static str,
        rule: Option<&'static str>,
        reason: Reason,
        version: Option<VersionId>,
    ) -> Self {
        Decision {
            variant,
            rule,
            reason,
            version,
        }
    }

    /// The variant's name.
    #[inline]
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// The name of the rule that decided, or `None` for the default and for a
    /// trusted incoming tag.
    #[inline]
    pub fn rule(&self) -> Option<&'static str> {
        self.rule
    }

    /// Why the request got this variant.
    #[inline]
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The version of the rule set that decided, when its matcher was
    /// labelled with one ([`Matcher::with_version`](crate::Matcher::with_version);
    /// `graymatch-source` labels every rule set it loads), so a log line or a
    /// trace can say which rules routed the request.
    ///
    /// ```
    /// use graymatch::{RuleSet, RuleSetVersion};
    ///
    /// let m = RuleSet::new("stable").compile()?;
    /// assert_eq!(m.decide(&http::Request::new(())).version(), None);
    /// let m = m.with_version(RuleSetVersion::new([0x5e; 32]));
    /// let d = m.decide(&http::Request::new(()));
    /// assert_eq!(d.version().map(|v| v.to_string()).as_deref(), Some("5e5e5e5e5e5e"));
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    #[inline]
    pub fn version(&self) -> Option<VersionId> {
        self.version
    }
}

impl fmt::Display for Decision {
    /// `gray (rule canary-20)`, `stable (default)`, `gray (propagated)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(rule) => write!(f, "{} (rule {rule})", self.variant),
            None => write!(f, "{} ({})", self.variant, self.reason),
        }
    }
}

/// Why a request got its variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A rule decided.
    Rule,
    /// No rule decided: the rule set's default.
    Default,
    /// A trusted incoming tag named a declared variant (`incoming: trust`).
    Propagated,
}

impl Reason {
    /// `rule`, `default` or `propagated`, as rule-test files write it.
    ///
    /// ```
    /// assert_eq!(graymatch::Reason::Propagated.as_str(), "propagated");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::Default => "default",
            Reason::Propagated => "propagated",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
