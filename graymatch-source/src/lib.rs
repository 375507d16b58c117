//! Sources that keep a graymatch [`SharedMatcher`](graymatch::SharedMatcher)
//! current across a fleet: a rules file or Kubernetes ConfigMap
//! ([`mod@file`]), an HTTP endpoint polled with `ETag` ([`http`]), and one etcd
//! key ([`etcd`]), each behind its feature, all with one contract.
//!
//! ```no_run
//! # #[cfg(feature = "etcd")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use graymatch_source::{Watcher, etcd::EtcdSource};
//!
//! let watcher = Watcher::builder(EtcdSource::new(["http://10.0.0.5:2379"], "/graymatch/checkout")?)
//!     .first_wait(Duration::from_secs(5))                  // bounded wait for the first rule set,
//!     .backup_file("/var/lib/checkout/graymatch.json")     // then the last good one saved here,
//!     .default_text("default: stable\n", None)             // then this
//!     .start()
//!     .await?;
//! let matcher = watcher.matcher(); // for GrayLayer / VariantRouter: always current
//! let ready = watcher.readiness(); // for the readiness probe
//! println!("{}", watcher.status()); // version, origin, reload and source health
//! # Ok(()) }
//! ```
//!
//! # The contract, the same for every source
//!
//! - **Compile before swap.** Every new text is parsed and compiled before
//!   the atomic swap. A text that does not compile is refused: the rules in
//!   force keep serving, the refusal is logged (`tracing`, at `warn`, with
//!   the error's place such as `rules[3] (canary-20)`) and counted, once per
//!   distinct text.
//! - **Versions.** A rule set's version is the SHA-256 of its exact text plus
//!   the source's own revision (etcd `mod_revision`, the `ETag`, the file's
//!   mtime). It is readable from the matcher
//!   ([`SharedMatcher::version`](graymatch::SharedMatcher::version)), carried by every
//!   [`Decision`](graymatch::Decision) as a short id
//!   ([`Decision::version`](graymatch::Decision::version)), shown by
//!   [`Status`], and exported as metrics (below). `graymatch check` and
//!   `graymatch status` print the same hash.
//! - **Start-up.** [`Builder::start`] waits a bounded time for the first rule
//!   set, then falls back to the backup file (the last good rule set saved
//!   by the source, ignored with a warning when it is corrupt), then to an
//!   embedded default; with none of them it fails: a service never starts
//!   serving with nothing. [`Readiness`] turns true when rules are in force
//!   and stays true.
//! - **Order.** No update is applied out of order: sources whose revisions
//!   are ordered (etcd) drop any offer at or below the highest revision seen;
//!   the others apply texts in the order they read them, one at a time.
//! - **Releases.** Each text is put in force through a
//!   [`Release`](graymatch::Release) ([`Watcher::release`]): scheduled
//!   steps swap in on time (a clock thread), guards halt failing variants
//!   (give the release to `graymatch_tower::GrayLayer::release`), and a new
//!   version starts with nothing halted. With
//!   [`EtcdSource::share_halts`](etcd::EtcdSource::share_halts) halts are
//!   shared through a marker key, so one instance's trip halts the fleet
//!   ([`etcd::halt`]).
//! - **Never in the request path.** Requests read the matcher in force
//!   (lock-free); a slow, failing or unreachable source only delays the next
//!   swap, and shows in [`Status`] and the metrics.
//!
//! # Metrics
//!
//! Through the [`metrics`](https://docs.rs/metrics) facade (nothing is
//! recorded until the application installs a recorder, such as
//! `metrics-exporter-prometheus`). Every series has a `source` label (the
//! source's [label](Builder::label): `file`, `http`, `etcd`).
//!
//! | series | kind | meaning |
//! |---|---|---|
//! | `graymatch_rules_info{source,version}` | gauge | 1 for the version in force (12 hex digits of its SHA-256), 0 for the one it replaced |
//! | `graymatch_rules_last_reload_successful{source}` | gauge | 1 when the last text offered was applied, 0 after a refusal |
//! | `graymatch_rules_last_reload_success_timestamp_seconds{source}` | gauge | when a text from the source was last applied (Unix seconds) |
//! | `graymatch_rules_reloads_total{source}` | counter | texts applied from the source |
//! | `graymatch_rules_reload_failures_total{source}` | counter | texts refused (do not compile) |
//! | `graymatch_rules_source_up{source}` | gauge | 1 when the last contact with the source succeeded |
//! | `graymatch_rules_source_errors_total{source}` | counter | failed contacts (unreachable, error answers, missing file or key) |
//! | `graymatch_rules_fallback{source}` | gauge | 1 while a backup or default serves instead of the source |
//!
//! # Features
//!
//! | feature | enables | dependencies |
//! |---|---|---|
//! | `file` | [`file::FileSource`] | notify |
//! | `http` | [`http::HttpSource`] | reqwest (no TLS of its own: pass a client built with your TLS features) |
//! | `etcd` | [`etcd::EtcdSource`], [`etcd::Client`] | reqwest, base64 (etcd's JSON gateway: no protoc, no gRPC stack) |
//!
//! The project's `docs/fleet.md` tells how to run graymatch across a fleet
//! with each source, what happens on each failure, and what to monitor.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod backup;
mod error;
mod feed;
mod text;
mod watcher;

#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub mod file;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;

pub use error::Error;
pub use feed::{Feed, Origin, Outcome, Readiness, Revision, Status};
pub use text::{Format, version_of};
pub use watcher::{Builder, Source, Watcher};
