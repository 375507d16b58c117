//! [`FileSource`]: a rules file, watched for changes with `notify`.
//!
//! The file's **directory** is watched, not the file: a Kubernetes ConfigMap
//! volume updates by writing a new timestamped directory and atomically
//! swapping the `..data` symlink, after which a watch on the file itself
//! goes silent (the inode it watched is gone); editors that write a new file
//! and rename it over the old one do the same. Any change in the directory
//! (reads excepted) starts a short debounce, then the file is read again,
//! following symlinks; the [`Feed`] ignores a text it already serves. A
//! missing or unreadable file is a source error: the rules in force keep
//! serving, and the file is read again with backoff (and on the next change
//! in the directory). The file is also re-read every
//! [`rescan`](FileSource::rescan) interval, in case a change was missed (or
//! the directory could not be watched at all).
//!
//! The revision is the file's modification time, `mtime 2026-11-23T10:00:00.000Z`.
//!
//! ```no_run
//! # async fn run() -> Result<(), graymatch_source::Error> {
//! use graymatch_source::{Watcher, file::FileSource};
//!
//! // A ConfigMap mounted at /etc/graymatch with a key `rules.yaml`.
//! let watcher = Watcher::builder(FileSource::new("/etc/graymatch/rules.yaml"))
//!     .default_text("default: stable\n", None)
//!     .start()
//!     .await?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::feed::{Feed, Revision};
use crate::text::{Format, rfc3339};
use crate::watcher::Source;

/// A rules file (or a ConfigMap key mounted as a file), re-read when its
/// directory changes. See the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// let source = graymatch_source::file::FileSource::new("rules.yaml")
///     .debounce(Duration::from_millis(50))
///     .rescan(Duration::from_secs(60));
/// # let _ = source;
/// ```
#[derive(Clone, Debug)]
pub struct FileSource {
    path: PathBuf,
    debounce: Duration,
    rescan: Duration,
}

impl FileSource {
    /// Watches `path` (its format is taken from its extension unless the
    /// builder says otherwise). Debounce 100 ms, rescan every 30 s.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSource {
            path: path.into(),
            debounce: Duration::from_millis(100),
            rescan: Duration::from_secs(30),
        }
    }

    /// How long to wait after a change in the directory before reading, so
    /// a burst of events (a ConfigMap swap makes several) is one read.
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// How often the file is read even when no change was seen.
    pub fn rescan(mut self, rescan: Duration) -> Self {
        self.rescan = rescan.max(Duration::from_millis(10));
        self
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// Reads the file and offers it; whether it could be read.
    fn read(&self, feed: &Feed) -> bool {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                feed.source_ok();
                let revision = std::fs::metadata(&self.path)
                    .and_then(|m| m.modified())
                    .map_or_else(
                        |_| Revision::none(),
                        |t| Revision::new(format!("mtime {}", rfc3339(t))),
                    );
                feed.offer(&bytes, revision);
                true
            }
            Err(e) => {
                feed.source_error(Error::io(self.path.display(), "read", e));
                false
            }
        }
    }
}

/// Watches `dir`; every change but a read wakes `wake`.
fn watch_dir(dir: &Path, wake: &Arc<Notify>) -> Result<notify::RecommendedWatcher, notify::Error> {
    let wake = Arc::clone(wake);
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => {}
            _ => wake.notify_one(),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

impl Source for FileSource {
    fn label(&self) -> &'static str {
        "file"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn format(&self) -> Option<Format> {
        Format::from_path(&self.path)
    }

    async fn run(self, feed: Feed) {
        let wake = Arc::new(Notify::new());
        let dir = self.dir();
        let mut watcher = None;
        let mut retry = Backoff::new(self.debounce.max(Duration::from_millis(50)), self.rescan);
        loop {
            if watcher.is_none() {
                match watch_dir(&dir, &wake) {
                    Ok(w) => watcher = Some(w),
                    Err(e) => feed.source_error(format!(
                        "cannot watch {}: {e}; reading it every {:?}",
                        dir.display(),
                        self.rescan
                    )),
                }
            }
            let wait = if self.read(&feed) {
                retry.reset();
                self.rescan
            } else {
                retry.next_wait()
            };
            tokio::select! {
                () = wake.notified() => tokio::time::sleep(self.debounce).await,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
