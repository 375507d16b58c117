//! The contract every source keeps: a new text is parsed and compiled before
//! the atomic swap, a text that does not compile is refused (logged with its
//! place, counted) while the old rules keep serving, updates are never
//! applied out of order, and every change is visible as a version, a status
//! and metrics.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use graymatch::{Release, RuleSet, RuleSetVersion, SharedMatcher};
use tokio::sync::watch;

use crate::error::Error;
use crate::text::{self, Format, version_of};

/// The revision a source gives a text: shown in its version (`etcd revision
/// 42`, `etag "5f1c"`, `mtime 2026-11-23T10:00:00.000Z`) and, for sources
/// whose revisions are ordered (etcd), the number that keeps updates in
/// order: an offer whose order is not above the highest seen is dropped.
///
/// ```
/// use graymatch_source::Revision;
///
/// assert_eq!(Revision::ordered(42, "etcd revision 42").order(), Some(42));
/// assert_eq!(Revision::new("etag \"a1\"").order(), None);
/// assert_eq!(Revision::none().text(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revision {
    order: Option<u64>,
    text: Option<String>,
}

impl Revision {
    /// No revision: the content hash alone identifies the text.
    pub fn none() -> Self {
        Revision::default()
    }

    /// A revision that is shown but not ordered (an `ETag`, a file's mtime):
    /// such offers are applied in the order they are made.
    pub fn new(text: impl Into<String>) -> Self {
        Revision {
            order: None,
            text: Some(text.into()),
        }
    }

    /// An ordered revision (etcd's `mod_revision`): an offer at or below the
    /// highest order already seen is not applied.
    pub fn ordered(order: u64, text: impl Into<String>) -> Self {
        Revision {
            order: Some(order),
            text: Some(text.into()),
        }
    }

    /// The order, for ordered revisions.
    pub fn order(&self) -> Option<u64> {
        self.order
    }

    /// The text shown in the version.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

/// What became of an offered text.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Compiled and now serving, as this version.
    Applied(RuleSetVersion),
    /// The same text and revision already serve: nothing to do.
    Unchanged,
    /// An ordered revision at or below one already seen: dropped.
    Stale,
    /// The text does not compile (or is not UTF-8); the rules in force keep
    /// serving. A text refused before is refused again without a new log
    /// line or count.
    Refused(Error),
}

impl Outcome {
    /// The refusal's error, if refused.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the text was applied.
    pub fn is_applied(&self) -> bool {
        matches!(self, Outcome::Applied(_))
    }
}

/// Where the rules in force came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The source.
    Source,
    /// The local backup file (last good rule set from an earlier run),
    /// because the source gave nothing within the first wait.
    Backup,
    /// The embedded default, because neither the source nor a backup could.
    Default,
}

impl Origin {
    /// `source`, `backup` or `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Source => "source",
            Origin::Backup => "backup",
            Origin::Default => "default",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether this instance has a rule set in force: false until the first rule
/// set (from the source, or a fallback after the first wait) is serving,
/// then true for good. A failing source never turns it false again: the last
/// good rules keep serving, and [`Status`] and the metrics tell. Expose it as
/// the service's readiness probe.
///
/// ```
/// let ready = graymatch_source::Readiness::default();
/// assert!(!ready.is_ready());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Whether a rule set is in force.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A snapshot of a source's state: what serves, where it came from, and how
/// reloads and contacts with the source have gone.
///
/// Its `Display` is a short report for a status page:
///
/// ```
/// use graymatch_source::{Feed, Format, Revision};
///
/// let feed = Feed::new("etcd", Format::Yaml);
/// feed.offer(b"default: stable", Revision::ordered(7, "etcd revision 7"));
/// let status = feed.status();
/// assert!(status.last_reload_successful);
/// let text = status.to_string();
/// assert!(text.contains("(etcd revision 7), from the source"), "{text}");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// The source's label (the `source` label of the metrics).
    pub source: String,
    /// Where the source is (a path, a URL, endpoints and key).
    pub location: String,
    /// The version in force, if any.
    pub version: Option<RuleSetVersion>,
    /// Where the rules in force came from.
    pub origin: Option<Origin>,
    /// Whether a rule set is in force (see [`Readiness`]).
    pub ready: bool,
    /// Whether the last text offered was applied (false after a refusal, until
    /// a good one arrives).
    pub last_reload_successful: bool,
    /// When a text from the source was last applied.
    pub last_success: Option<SystemTime>,
    /// Texts refused because they do not compile.
    pub reload_failures: u64,
    /// Failed contacts with the source (connection errors, HTTP errors, a
    /// missing file or key).
    pub source_errors: u64,
    /// Whether the last contact with the source succeeded (`None`: none yet).
    pub source_up: Option<bool>,
    /// The last refusal or source error.
    pub last_error: Option<String>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source: {} {}", self.source, self.location)?;
        match (&self.version, self.origin) {
            (Some(v), Some(Origin::Source)) => writeln!(f, "version: {v}, from the source")?,
            (Some(v), Some(o)) => writeln!(f, "version: {v}, from the {o} (fallback)")?,
            _ => writeln!(f, "version: none")?,
        }
        writeln!(
            f,
            "ready: {}; last reload {}; last success {}; {} refused; {} source errors; source {}",
            if self.ready { "yes" } else { "no" },
            if self.last_reload_successful {
                "ok"
            } else {
                "refused"
            },
            self.last_success
                .map_or_else(|| "never".to_owned(), text::rfc3339),
            self.reload_failures,
            self.source_errors,
            match self.source_up {
                Some(true) => "up",
                Some(false) => "down",
                None => "not contacted yet",
            }
        )?;
        if let Some(e) = &self.last_error {
            writeln!(f, "last error: {e}")?;
        }
        Ok(())
    }
}

/// Where a source hands in what it reads. Cheap to clone.
///
/// The built-in sources ([`file`](mod@crate::file), [`http`](crate::http),
/// [`etcd`](crate::etcd)) use it; so can a source of your own (a
/// configuration center's client, a webhook): call [`offer`](Feed::offer)
/// with each text, [`source_ok`](Feed::source_ok) and
/// [`source_error`](Feed::source_error) as contacts succeed or fail. A
/// [`Watcher`](crate::Watcher) makes one for its source; [`Feed::new`] makes
/// one to drive by hand.
///
/// ```
/// use graymatch_source::{Feed, Format, Outcome, Revision};
///
/// let feed = Feed::new("webhook", Format::Yaml);
/// assert!(feed.offer(b"default: stable", Revision::ordered(1, "push 1")).is_applied());
/// let shared = feed.matcher().unwrap();
/// assert_eq!(shared.decide(&http::Request::new(())).variant(), "stable");
///
/// // Refused: does not compile. The old rules keep serving.
/// assert!(matches!(feed.offer(b"default: [", Revision::ordered(2, "push 2")), Outcome::Refused(_)));
/// // Out of order: dropped.
/// assert!(matches!(feed.offer(b"default: gray", Revision::ordered(1, "push 1")), Outcome::Stale));
/// assert_eq!(shared.decide(&http::Request::new(())).variant(), "stable");
/// assert_eq!(feed.status().reload_failures, 1);
/// ```
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    label: String,
    location: String,
    format: Format,
    backup: Option<PathBuf>,
    readiness: Readiness,
    versions: watch::Sender<Option<RuleSetVersion>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    release: Option<Release>,
    origin: Option<Origin>,
    version: Option<RuleSetVersion>,
    /// The highest ordered revision offered by the source (applied or not).
    seen: Option<u64>,
    /// The digest of the last refused text.
    refused: Option<[u8; 32]>,
    last_ok: bool,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
    reload_failures: u64,
    source_errors: u64,
    /// Errors since the source was last reachable.
    streak: u64,
    source_up: Option<bool>,
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("source", &self.inner.label)
            .field("location", &self.inner.location)
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed labelled `label` (the `source` label of its metrics and logs)
    /// whose texts are in `format`, not attached to any source or backup
    /// file: drive it by hand with [`offer`](Feed::offer). Its matcher exists
    /// once a text has been applied.
    pub fn new(label: impl Into<String>, format: Format) -> Self {
        let label = label.into();
        Feed::build(label.clone(), label, format, None, Readiness::default())
    }

    pub(crate) fn build(
        label: String,
        location: String,
        format: Format,
        backup: Option<PathBuf>,
        readiness: Readiness,
    ) -> Self {
        Feed {
            inner: Arc::new(Inner {
                label,
                location,
                format,
                backup,
                readiness,
                versions: watch::Sender::new(None),
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state torn in a
        // way that matters more than stopping would: keep going.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The label of this feed's source (`file`, `http`, `etcd` or your own).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The readiness flag of the watcher this feed belongs to.
    pub fn readiness(&self) -> Readiness {
        self.inner.readiness.clone()
    }

    /// The format texts are parsed in.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    /// The shared matcher the texts are swapped into, once one was applied.
    pub fn matcher(&self) -> Option<SharedMatcher> {
        self.state().release.as_ref().map(Release::matcher)
    }

    /// The release the texts are put in force through (its schedules,
    /// guards and halts), once one was applied.
    pub fn release(&self) -> Option<Release> {
        self.state().release.clone()
    }

    /// Puts `set` in force in the release (made on first use).
    fn put(
        st: &mut State,
        set: RuleSet,
        version: &RuleSetVersion,
    ) -> Result<(), graymatch::CompileError> {
        match &st.release {
            Some(release) => release.set_rules(set, Some(version.clone())),
            None => {
                let release = Release::new(set, Some(version.clone()))?;
                if let Err(e) = release.run_clock() {
                    tracing::error!("cannot start the schedule clock thread: {e}");
                }
                st.release = Some(release);
                Ok(())
            }
        }
    }

    /// The version in force, if any.
    pub fn version(&self) -> Option<RuleSetVersion> {
        self.state().version.clone()
    }

    /// A receiver that sees every version as it is applied (the first value
    /// is the one in force now).
    pub fn subscribe(&self) -> watch::Receiver<Option<RuleSetVersion>> {
        self.inner.versions.subscribe()
    }

    /// A snapshot of the state.
    pub fn status(&self) -> Status {
        let st = self.state();
        Status {
            source: self.inner.label.clone(),
            location: self.inner.location.clone(),
            version: st.version.clone(),
            origin: st.origin,
            ready: self.inner.readiness.is_ready(),
            last_reload_successful: st.last_ok,
            last_success: st.last_success,
            reload_failures: st.reload_failures,
            source_errors: st.source_errors,
            source_up: st.source_up,
            last_error: st.last_error.clone(),
        }
    }

    /// Offers a text read from the source: parsed and compiled, then swapped
    /// in atomically, unless it is refused (does not compile), stale (an
    /// ordered revision not above the highest seen) or unchanged. Requests
    /// being decided never wait for this: they read the matcher in force.
    ///
    /// Applying also saves the text to the backup file, when the watcher has
    /// one, and updates the metrics.
    pub fn offer(&self, text: &[u8], revision: Revision) -> Outcome {
        let Revision { order, text: shown } = revision;
        let mut version = version_of(text);
        if let Some(r) = shown {
            version = version.with_revision(r);
        }
        let mut st = self.state();
        if let (Some(order), Some(seen)) = (order, st.seen)
            && order <= seen
        {
            if st.version.as_ref() == Some(&version) {
                return Outcome::Unchanged;
            }
            tracing::debug!(
                source = %self.inner.label,
                order,
                seen,
                "dropped an update older than one already seen"
            );
            return Outcome::Stale;
        }
        if let Some(order) = order {
            st.seen = Some(order);
        }
        if st.origin == Some(Origin::Source) && st.version.as_ref() == Some(&version) {
            return Outcome::Unchanged;
        }
        let compiled = text::utf8(&self.inner.location, text).and_then(|t| {
            self.inner
                .format
                .parse(t)
                .and_then(|set| Self::put(&mut st, set, &version))
                .map_err(|e| Error::rules(&self.inner.location, e))
        });
        match compiled {
            Err(error) => {
                let digest = *version.digest();
                if st.refused != Some(digest) {
                    st.refused = Some(digest);
                    st.reload_failures += 1;
                    st.last_ok = false;
                    st.last_error = Some(error.to_string());
                    metrics::counter!("graymatch_rules_reload_failures_total", "source" => self.inner.label.clone()).increment(1);
                    metrics::gauge!("graymatch_rules_last_reload_successful", "source" => self.inner.label.clone()).set(0.0);
                    tracing::warn!(
                        source = %self.inner.label,
                        place = error.place().unwrap_or("text"),
                        refused = %version,
                        serving = %st.version.as_ref().map_or_else(|| "nothing yet".to_owned(), ToString::to_string),
                        "rule set refused, the rules in force keep serving: {error}"
                    );
                }
                Outcome::Refused(error)
            }
            Ok(()) => {
                st.refused = None;
                let previous = st.version.replace(version.clone());
                st.origin = Some(Origin::Source);
                st.last_ok = true;
                let now = SystemTime::now();
                st.last_success = Some(now);
                self.record_applied(previous.as_ref(), &version, Origin::Source, now);
                tracing::info!(
                    source = %self.inner.label,
                    version = %version,
                    previous = %previous.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string),
                    "rule set applied"
                );
                if let (Some(path), Ok(t)) = (&self.inner.backup, std::str::from_utf8(text)) {
                    let saved = crate::backup::save(
                        path,
                        &crate::backup::Backup {
                            text: t,
                            format: self.inner.format,
                            revision: version.revision(),
                            location: &self.inner.location,
                        },
                    );
                    if let Err(e) = saved {
                        tracing::warn!(source = %self.inner.label, "cannot save the backup: {e}");
                    }
                }
                drop(st);
                self.inner.versions.send_replace(Some(version.clone()));
                Outcome::Applied(version)
            }
        }
    }

    /// Puts a fallback rule set in force, if nothing is in force yet.
    pub(crate) fn fallback(
        &self,
        text: &str,
        format: Format,
        revision: Option<&str>,
        origin: Origin,
    ) -> Result<Option<RuleSetVersion>, Error> {
        let mut version = version_of(text.as_bytes());
        if let Some(r) = revision {
            version = version.with_revision(r);
        }
        let set = format
            .parse(text)
            .map_err(|e| Error::rules(origin.as_str(), e))?;
        let mut st = self.state();
        if st.release.is_some() {
            return Ok(None);
        }
        Self::put(&mut st, set, &version).map_err(|e| Error::rules(origin.as_str(), e))?;
        st.version = Some(version.clone());
        st.origin = Some(origin);
        st.last_ok = true;
        self.record_applied(None, &version, origin, SystemTime::now());
        drop(st);
        self.inner.versions.send_replace(Some(version.clone()));
        Ok(Some(version))
    }

    fn record_applied(
        &self,
        previous: Option<&RuleSetVersion>,
        version: &RuleSetVersion,
        origin: Origin,
        now: SystemTime,
    ) {
        let label = &self.inner.label;
        if let Some(p) = previous
            && p.id() != version.id()
        {
            metrics::gauge!("graymatch_rules_info", "source" => label.clone(), "version" => p.id().to_string()).set(0.0);
        }
        metrics::gauge!("graymatch_rules_info", "source" => label.clone(), "version" => version.id().to_string()).set(1.0);
        metrics::gauge!("graymatch_rules_fallback", "source" => label.clone())
            .set(if origin == Origin::Source { 0.0 } else { 1.0 });
        if origin == Origin::Source {
            metrics::gauge!("graymatch_rules_last_reload_successful", "source" => label.clone())
                .set(1.0);
            let secs = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            metrics::gauge!("graymatch_rules_last_reload_success_timestamp_seconds", "source" => label.clone()).set(secs);
            metrics::counter!("graymatch_rules_reloads_total", "source" => label.clone())
                .increment(1);
        }
    }

    /// Records a successful contact with the source (a response, a watch
    /// that started, a file read), even one that brought nothing new.
    pub fn source_ok(&self) {
        let mut st = self.state();
        if st.source_up != Some(true) {
            if st.source_up == Some(false) {
                tracing::info!(
                    source = %self.inner.label,
                    errors = st.streak,
                    "source reachable again"
                );
            }
            metrics::gauge!("graymatch_rules_source_up", "source" => self.inner.label.clone())
                .set(1.0);
        }
        st.source_up = Some(true);
        st.streak = 0;
    }

    /// Records a failed contact with the source: unreachable, an error
    /// answer, a missing file or key. The rules in force keep serving. The
    /// first error of a streak is logged as a warning, the rest at debug.
    pub fn source_error(&self, error: impl fmt::Display) {
        let mut st = self.state();
        st.source_errors += 1;
        st.streak += 1;
        st.last_error = Some(error.to_string());
        if st.streak == 1 {
            tracing::warn!(
                source = %self.inner.label,
                serving = %st.version.as_ref().map_or_else(|| "nothing yet".to_owned(), ToString::to_string),
                "source error, the rules in force keep serving: {error}"
            );
        } else {
            tracing::debug!(source = %self.inner.label, errors = st.streak, "source error: {error}");
        }
        st.source_up = Some(false);
        metrics::gauge!("graymatch_rules_source_up", "source" => self.inner.label.clone()).set(0.0);
        metrics::counter!("graymatch_rules_source_errors_total", "source" => self.inner.label.clone()).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b"default: stable\n";
    const GRAY: &[u8] = b"default: gray\n";
    const BAD: &[u8] = b"default: stable\nrules: [{name: x, to: gray, percent: 120}]\n";

    #[test]
    fn offers_table() {
        // (offers in order, expected outcome of the last, variant in force)
        let cases: [(&str, &[(&[u8], Option<u64>)], &str, &str); 7] = [
            ("first good", &[(GOOD, Some(1))], "applied", "stable"),
            (
                "newer",
                &[(GOOD, Some(1)), (GRAY, Some(2))],
                "applied",
                "gray",
            ),
            (
                "older dropped",
                &[(GRAY, Some(2)), (GOOD, Some(1))],
                "stale",
                "gray",
            ),
            (
                "same replayed",
                &[(GRAY, Some(2)), (GRAY, Some(2))],
                "unchanged",
                "gray",
            ),
            (
                "refused keeps old",
                &[(GOOD, Some(1)), (BAD, Some(2))],
                "refused",
                "stable",
            ),
            (
                "older than a refused one dropped",
                &[(GOOD, Some(1)), (BAD, Some(3)), (GRAY, Some(2))],
                "stale",
                "stable",
            ),
            (
                "unordered in arrival order",
                &[(GRAY, None), (GOOD, None)],
                "applied",
                "stable",
            ),
        ];
        for (name, offers, want, variant) in cases {
            let feed = Feed::new("t", Format::Yaml);
            let mut last = None;
            for (text, order) in offers {
                let rev = match order {
                    Some(o) => Revision::ordered(*o, format!("r{o}")),
                    None => Revision::none(),
                };
                last = Some(feed.offer(text, rev));
            }
            let got = match last.unwrap() {
                Outcome::Applied(_) => "applied",
                Outcome::Unchanged => "unchanged",
                Outcome::Stale => "stale",
                Outcome::Refused(_) => "refused",
            };
            assert_eq!(got, want, "{name}");
            let shared = feed.matcher().unwrap();
            assert_eq!(
                shared.decide(&http::Request::new(())).variant(),
                variant,
                "{name}"
            );
        }
    }

    #[test]
    fn refusal_counted_once_per_text_and_named() {
        let feed = Feed::new("t", Format::Yaml);
        feed.offer(GOOD, Revision::none());
        let out = feed.offer(BAD, Revision::none());
        let err = out.error().unwrap();
        assert_eq!(err.place(), Some("rules[0] (x)"));
        feed.offer(BAD, Revision::none());
        let status = feed.status();
        assert_eq!(status.reload_failures, 1);
        assert!(!status.last_reload_successful);
        assert!(status.last_error.unwrap().contains("rules[0] (x)"));
        assert!(
            feed.offer(b"\xff\xfe", Revision::none())
                .error()
                .unwrap()
                .to_string()
                .contains("not UTF-8")
        );
    }

    #[test]
    fn version_stamped_on_decisions() {
        let feed = Feed::new("t", Format::Yaml);
        let Outcome::Applied(v) = feed.offer(GOOD, Revision::new("etag \"x\"")) else {
            panic!("applied")
        };
        assert_eq!(v, crate::version_of(GOOD).with_revision("etag \"x\""));
        let shared = feed.matcher().unwrap();
        assert_eq!(shared.version(), Some(v.clone()));
        assert_eq!(
            shared.decide(&http::Request::new(())).version(),
            Some(v.id())
        );
    }
}
