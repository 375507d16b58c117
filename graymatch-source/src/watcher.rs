//! Starting a source: the first wait, the fallbacks (backup file, embedded
//! default), readiness, and the running [`Watcher`].

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use graymatch::{Release, RuleSet, RuleSetVersion, SharedMatcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::feed::{Feed, Origin, Readiness, Status};
use crate::text::Format;

/// Something that keeps reading rule-set texts and hands them to a [`Feed`].
///
/// The built-in sources are [`file::FileSource`](crate::file::FileSource),
/// [`http::HttpSource`](crate::http::HttpSource) and
/// [`etcd::EtcdSource`](crate::etcd::EtcdSource). A source of your own
/// (a configuration center's client) implements this and gets the same
/// contract: compile before swap, refusals logged and counted, versions,
/// metrics, the first wait and the fallbacks.
///
/// ```
/// use graymatch_source::{Feed, Revision, Source, Watcher};
///
/// /// A source that offers one text, then nothing.
/// struct Once(&'static str);
///
/// impl Source for Once {
///     fn label(&self) -> &'static str { "once" }
///     fn location(&self) -> String { "memory".to_owned() }
///     async fn run(self, feed: Feed) {
///         feed.source_ok();
///         feed.offer(self.0.as_bytes(), Revision::new("v1"));
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let watcher = Watcher::builder(Once("default: gray")).start().await?;
/// assert_eq!(watcher.matcher().decide(&http::Request::new(())).variant(), "gray");
/// # Ok::<(), graymatch_source::Error>(()) }).unwrap();
/// ```
pub trait Source: Send + 'static {
    /// The `source` label of metrics and logs: `file`, `http`, `etcd`.
    fn label(&self) -> &'static str;

    /// Where the source reads (a path, a URL, endpoints and key), for logs,
    /// errors and [`Status`].
    fn location(&self) -> String;

    /// The format the source's texts are in, if the source knows it (a
    /// file's extension). [`Builder::format`] wins over it; YAML otherwise.
    fn format(&self) -> Option<Format> {
        None
    }

    /// Reads texts and offers them to `feed`, for as long as the watcher
    /// runs (the task is aborted when the [`Watcher`] is dropped).
    fn run(self, feed: Feed) -> impl Future<Output = ()> + Send;
}

/// How to start a [`Watcher`]: the format, the first wait, the backup file
/// and the embedded default.
///
/// Start-up: wait at most [`first_wait`](Builder::first_wait) (5 s by
/// default) for the source's first rule set; if none has been applied by
/// then, serve the [backup file](Builder::backup_file) (the last rule set
/// applied from the source by an earlier run, when it is readable and
/// matches its hash), else the [default](Builder::default_text); with
/// neither, [`start`](Builder::start) fails: a service never starts with no
/// rules. The source keeps running either way, and its first good rule set
/// replaces the fallback.
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct Builder<S> {
    source: S,
    format: Option<Format>,
    first_wait: Duration,
    backup: Option<PathBuf>,
    default: Option<(String, Option<Format>)>,
    label: Option<String>,
    readiness: Readiness,
}

impl<S: Source> Builder<S> {
    /// The format of the source's texts (default: what the source says, else
    /// YAML).
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// How long [`start`](Builder::start) waits for the source's first rule
    /// set before falling back (default 5 s).
    pub fn first_wait(mut self, wait: Duration) -> Self {
        self.first_wait = wait;
        self
    }

    /// Save every rule set applied from the source to this file (written to
    /// a temporary file and renamed), and read it back at start when the
    /// source gives nothing within the first wait.
    pub fn backup_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.backup = Some(path.into());
        self
    }

    /// The rule set to serve when neither the source (within the first wait)
    /// nor the backup file gives one; in the source's format unless `format`
    /// is given. Checked at start: a default that does not compile is an
    /// error only when it is needed, and is logged.
    pub fn default_text(mut self, text: impl Into<String>, format: Option<Format>) -> Self {
        self.default = Some((text.into(), format));
        self
    }

    /// [`default_text`](Builder::default_text) with a rule set built in code
    /// (its version is the hash of its JSON form).
    pub fn default_rules(self, rules: &RuleSet) -> Self {
        let text = serde_json::to_string(rules).unwrap_or_default();
        self.default_text(text, Some(Format::Json))
    }

    /// The `source` label of metrics and logs (default: the source's, such
    /// as `etcd`); set it when one process watches several sources.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The readiness flag, before starting: serve it on a readiness probe
    /// while [`start`](Builder::start) runs; it turns true when rules are in
    /// force.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Starts the source, waits for its first rule set (bounded), falls back
    /// if needed, and returns the running watcher.
    ///
    /// # Errors
    ///
    /// No rule set at all: none from the source in time, no usable backup,
    /// no default that compiles (the message says what was tried); or no
    /// tokio runtime.
    pub async fn start(self) -> Result<Watcher, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::no_runtime())?;
        let Builder {
            source,
            format,
            first_wait,
            backup,
            default,
            label,
            readiness,
        } = self;
        let format = format.or_else(|| source.format()).unwrap_or_default();
        let label = label.unwrap_or_else(|| source.label().to_owned());
        let location = source.location();
        let feed = Feed::build(
            label.clone(),
            location.clone(),
            format,
            backup.clone(),
            readiness.clone(),
        );
        let mut versions = feed.subscribe();
        let task = handle.spawn(source.run(feed.clone()));
        let first = tokio::time::timeout(first_wait, versions.wait_for(Option::is_some)).await;
        let mut tried = Vec::new();
        if !matches!(first, Ok(Ok(_))) {
            tried.push(format!(
                "nothing from {label} {location} within {first_wait:?}"
            ));
            if let Some(path) = &backup {
                match crate::backup::load(path) {
                    Ok(Some(b)) => {
                        match feed.fallback(
                            &b.text,
                            b.format,
                            b.revision.as_deref(),
                            Origin::Backup,
                        ) {
                            Ok(Some(v)) => tracing::warn!(
                                source = %label,
                                version = %v,
                                "no rule set from the source in time: serving the backup file {}",
                                path.display()
                            ),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(source = %label, "backup file {} ignored: {e}", path.display());
                                tried.push(format!("backup file {}: {e}", path.display()));
                            }
                        }
                    }
                    Ok(None) => tried.push(format!("no backup file at {}", path.display())),
                    Err(e) => {
                        tracing::warn!(source = %label, "{e}; ignored");
                        tried.push(e.to_string());
                    }
                }
            }
            if feed.matcher().is_none() {
                match &default {
                    Some((text, f)) => {
                        match feed.fallback(
                            text,
                            f.unwrap_or(format),
                            Some("embedded default"),
                            Origin::Default,
                        ) {
                            Ok(Some(v)) => tracing::warn!(
                                source = %label,
                                version = %v,
                                "no rule set from the source or a backup: serving the embedded default"
                            ),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::error!(source = %label, "the embedded default does not compile: {e}");
                                tried.push(format!("the default: {e}"));
                            }
                        }
                    }
                    None => tried.push("no default".to_owned()),
                }
            }
        }
        let Some(release) = feed.release() else {
            task.abort();
            return Err(Error::no_rules(tried.join("; ")));
        };
        readiness.set();
        Ok(Watcher {
            feed,
            shared: release.matcher(),
            release,
            task,
        })
    }
}

/// A running source: the shared matcher it keeps current, its status and
/// version, its readiness.
///
/// Dropping it stops the source (the matcher keeps the rules it has); keep
/// it for the life of the service.
///
/// ```no_run
/// # #[cfg(feature = "etcd")]
/// # async fn run() -> Result<(), graymatch_source::Error> {
/// use std::time::Duration;
/// use graymatch_source::{Watcher, etcd::EtcdSource};
///
/// let watcher = Watcher::builder(EtcdSource::new(["http://127.0.0.1:2379"], "/graymatch/checkout")?)
///     .first_wait(Duration::from_secs(5))
///     .backup_file("/var/lib/checkout/rules.backup.json")
///     .default_text(include_str!("../../examples/rules/quickstart.yaml"), None)
///     .start()
///     .await?;
/// let matcher = watcher.matcher(); // give it to GrayLayer / VariantRouter
/// println!("{}", watcher.status());
/// # Ok(()) }
/// ```
#[must_use = "dropping the Watcher stops the source; keep it for the life of the service"]
pub struct Watcher {
    feed: Feed,
    shared: SharedMatcher,
    release: Release,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("feed", &self.feed)
            .field("version", &self.feed.version())
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// A builder for a watcher of `source`.
    pub fn builder<S: Source>(source: S) -> Builder<S> {
        Builder {
            source,
            format: None,
            first_wait: Duration::from_secs(5),
            backup: None,
            default: None,
            label: None,
            readiness: Readiness::default(),
        }
    }

    /// The shared matcher this watcher keeps current (clones share it).
    pub fn matcher(&self) -> SharedMatcher {
        self.shared.clone()
    }

    /// The release the rules are in force through: its schedules step on
    /// time (a clock thread runs while the watcher does), its guards halt
    /// failing variants (give it to `graymatch_tower::GrayLayer::release`),
    /// and each new version starts from a fresh state.
    pub fn release(&self) -> Release {
        self.release.clone()
    }

    /// The version in force.
    pub fn version(&self) -> Option<RuleSetVersion> {
        self.shared.version()
    }

    /// A snapshot of the source's state.
    pub fn status(&self) -> Status {
        self.feed.status()
    }

    /// The readiness flag (true once started).
    pub fn readiness(&self) -> Readiness {
        self.feed.readiness()
    }

    /// A receiver that sees each version as it is applied.
    pub fn subscribe(&self) -> watch::Receiver<Option<RuleSetVersion>> {
        self.feed.subscribe()
    }

    /// Stops the source; the matcher keeps the rules it has.
    pub fn stop(self) {}
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
