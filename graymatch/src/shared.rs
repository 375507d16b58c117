//! A matcher shared between threads and swapped atomically for hot reload.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::decision::Decision;
use crate::error::CompileError;
use crate::matcher::Matcher;
use crate::request::RequestHead;
use crate::rules::RuleSet;
use crate::version::RuleSetVersion;

/// A [`Matcher`] that can be replaced while requests are being decided.
///
/// Cloning is cheap (an `Arc`); every clone sees the same current matcher.
/// Reading is lock-free and allocation-free (`arc-swap`); a swap is atomic, so
/// each request is decided wholly by the old rules or wholly by the new. A
/// rule set that fails to compile is refused with its error and the current
/// matcher keeps serving.
///
/// ```
/// use graymatch::{RuleSet, SharedMatcher};
///
/// let shared = SharedMatcher::new(RuleSet::new("stable").compile()?);
/// let req = http::Request::new(());
/// assert_eq!(shared.decide(&req).variant(), "stable");
///
/// shared.reload(&RuleSet::from_json(r#"{"default": "gray"}"#)?)?;
/// assert_eq!(shared.decide(&req).variant(), "gray");
///
/// // A bad rule set is refused; the old one keeps serving.
/// assert!(shared.reload(&RuleSet::new("not valid")).is_err());
/// assert_eq!(shared.decide(&req).variant(), "gray");
/// # Ok::<(), graymatch::CompileError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SharedMatcher {
    current: Arc<ArcSwap<Matcher>>,
}

impl SharedMatcher {
    /// Shares `matcher`.
    pub fn new(matcher: Matcher) -> Self {
        SharedMatcher {
            current: Arc::new(ArcSwap::from_pointee(matcher)),
        }
    }

    /// Decides `request` with the current matcher.
    ///
    /// ```
    /// let shared = graymatch::SharedMatcher::new(graymatch::RuleSet::new("stable").compile()?);
    /// assert_eq!(shared.decide(&http::Request::new(())).variant(), "stable");
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    #[inline]
    pub fn decide<R: RequestHead + ?Sized>(&self, request: &R) -> Decision {
        self.current.load().decide(request)
    }

    /// A short-lived handle to the current matcher. Do not hold it across an
    /// `.await` (use [`load_full`](Self::load_full) for that).
    ///
    /// ```
    /// let shared = graymatch::SharedMatcher::new(graymatch::RuleSet::new("stable").compile()?);
    /// let m = shared.load();
    /// let d = m.decide(&http::Request::new(()));
    /// let mut headers = http::HeaderMap::new();
    /// m.tag(&d).write(&mut headers);
    /// assert_eq!(headers["x-gray"], "stable");
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    #[inline]
    pub fn load(&self) -> Guard<Arc<Matcher>> {
        self.current.load()
    }

    /// The current matcher, as an `Arc` that may be kept.
    pub fn load_full(&self) -> Arc<Matcher> {
        self.current.load_full()
    }

    /// Replaces the current matcher.
    pub fn store(&self, matcher: Matcher) {
        self.current.store(Arc::new(matcher));
    }

    /// The version of the current matcher, when it was labelled with one
    /// ([`Matcher::with_version`]): which rule set this instance runs.
    ///
    /// ```
    /// use graymatch::{RuleSet, RuleSetVersion, SharedMatcher};
    ///
    /// let shared = SharedMatcher::new(RuleSet::new("stable").compile()?);
    /// assert_eq!(shared.version(), None);
    /// let v = RuleSetVersion::new([9; 32]).with_revision("etag \"a1\"");
    /// shared.store(RuleSet::new("gray").compile()?.with_version(v.clone()));
    /// assert_eq!(shared.version(), Some(v));
    /// # Ok::<(), graymatch::CompileError>(())
    /// ```
    pub fn version(&self) -> Option<RuleSetVersion> {
        self.current.load().version().cloned()
    }

    /// Compiles `rules` and, if that succeeds, makes it current.
    ///
    /// # Errors
    ///
    /// The compile error; the current matcher is left serving.
    pub fn reload(&self, rules: &RuleSet) -> Result<(), CompileError> {
        let matcher = rules.compile()?;
        self.store(matcher);
        Ok(())
    }
}

impl From<Matcher> for SharedMatcher {
    fn from(matcher: Matcher) -> Self {
        SharedMatcher::new(matcher)
    }
}
