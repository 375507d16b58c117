//! [`EtcdSource`]: one key in an etcd cluster, read and then watched; and
//! [`Client`], the small etcd client it uses (also for `graymatch push` and
//! `graymatch status`).
//!
//! # How the key is followed
//!
//! 1. Read the key at the cluster's revision R (a linearizable read), offer
//!    its value (ordered by its `mod_revision`), and watch from R + 1.
//! 2. Each `PUT` event is offered with its `mod_revision`; of several events
//!    in one watch result only the last matters, and the [`Feed`] drops any
//!    offer at or below a revision already seen, so no update is applied out
//!    of order. A `DELETE` keeps the rules in force (a source error).
//! 3. When the stream breaks (etcd restarted, a member lost, a network cut),
//!    the watch resumes on the next endpoint from the revision after the last
//!    one seen, after a backoff (100 ms doubling to 5 s, with jitter). A
//!    member's leader changes do not end a watch; a member cut off from the
//!    leader is found by the periodic check below and left.
//! 4. If that revision has been compacted, etcd cancels the watch; the key
//!    is read again (its current value is the latest push) and watched from
//!    the new revision: the latest update is never missed.
//! 5. Every [`resync`](EtcdSource::resync) interval (30 s) the key is read
//!    again on the watched member: a failed read (no leader, a half-open
//!    connection) moves to the next endpoint, and a newer value than the
//!    stream delivered is offered at once.
//!
//! # The client: etcd's JSON gateway
//!
//! etcd serves its v3 API as JSON on its client URLs too (grpc-gateway:
//! `/v3/kv/range`, `/v3/kv/txn`, `/v3/watch` streaming one result per line).
//! This module speaks that over reqwest, which the crate already uses,
//! rather than the gRPC client crate, whose build needs `protoc` and the
//! protobuf includes (a fresh machine with only a Rust toolchain could not
//! build it) and whose watch does no reconnect or resume: that part had to be
//! written here either way, and one key needs little else.
//!
//! ```no_run
//! # async fn run() -> Result<(), graymatch_source::Error> {
//! use graymatch_source::{Watcher, etcd::EtcdSource};
//!
//! let source = EtcdSource::new(
//!     ["http://etcd-0:2379", "http://etcd-1:2379", "http://etcd-2:2379"],
//!     "/graymatch/checkout",
//! )?;
//! let watcher = Watcher::builder(source)
//!     .backup_file("/var/lib/checkout/graymatch.json")
//!     .default_text("default: stable\n", None)
//!     .start()
//!     .await?;
//! # Ok(()) }
//! ```

mod client;
pub mod halt;

use std::time::Duration;

pub use client::{Client, KeyValue, Read};

use crate::backoff::Backoff;
use crate::error::Error;
use crate::feed::{Feed, Revision};
use crate::watcher::Source;

/// One etcd key, followed with read-then-watch. See the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// let source = graymatch_source::etcd::EtcdSource::new(["http://127.0.0.1:2379"], "/graymatch/checkout")?
///     .resync(Duration::from_secs(30))
///     .backoff(Duration::from_millis(100), Duration::from_secs(5));
/// # Ok::<(), graymatch_source::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EtcdSource {
    client: Client,
    key: String,
    resync: Duration,
    backoff: (Duration, Duration),
    share_halts: bool,
}

/// Why a watch ended.
enum End {
    /// The start revision was compacted: read again.
    Compacted,
    /// The stream broke: resume elsewhere after a backoff.
    Failed(Error),
}

impl EtcdSource {
    /// Follows `key` on the cluster at `endpoints` (members' client URLs).
    ///
    /// # Errors
    ///
    /// No endpoint, one that is not a URL, or an empty key.
    pub fn new<I, E>(endpoints: I, key: impl Into<String>) -> Result<Self, Error>
    where
        I: IntoIterator<Item = E>,
        E: AsRef<str>,
    {
        EtcdSource::with_client(Client::new(endpoints)?, key)
    }

    /// Follows `key` with this client (its endpoints, TLS, timeout).
    ///
    /// # Errors
    ///
    /// An empty key.
    pub fn with_client(client: Client, key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::config("the etcd key is empty"));
        }
        Ok(EtcdSource {
            client,
            key,
            resync: Duration::from_secs(30),
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            share_halts: false,
        })
    }

    /// Shares the release's halts with the fleet through the marker key
    /// ([`halt::marker_key`]): this instance's guard trips (and its
    /// `Release::halt`/`resume` calls) are written there, and every halt or
    /// resume written there by another instance or by `graymatch halt` /
    /// `graymatch resume` is applied here, so one instance that sees a
    /// failing variant halts the whole fleet. See [`halt`] for the marker.
    ///
    /// ```
    /// let source = graymatch_source::etcd::EtcdSource::new(["http://127.0.0.1:2379"], "/graymatch/checkout")?
    ///     .share_halts();
    /// # Ok::<(), graymatch_source::Error>(())
    /// ```
    pub fn share_halts(mut self) -> Self {
        self.share_halts = true;
        self
    }

    /// How often the watched member is asked for the key, to find a stalled
    /// stream or a member without a leader (default 30 s).
    pub fn resync(mut self, every: Duration) -> Self {
        self.resync = every.max(Duration::from_millis(10));
        self
    }

    /// The wait before reconnecting: `initial`, doubling up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max);
        self
    }

    fn offer(&self, feed: &Feed, kv: &KeyValue) {
        feed.offer(
            &kv.value,
            Revision::ordered(
                kv.mod_revision,
                format!("etcd revision {}", kv.mod_revision),
            ),
        );
    }

    fn missing(&self, feed: &Feed, endpoint: usize) {
        feed.source_error(format!(
            "etcd {} key {}: no such key; the rules in force keep serving",
            self.client.endpoint_name(endpoint),
            self.key
        ));
    }

    /// Watches from `*next` on `endpoint` until the stream ends.
    async fn watch(
        &self,
        feed: &Feed,
        endpoint: usize,
        next: &mut u64,
        backoff: &mut Backoff,
    ) -> End {
        let mut stream = match self.client.watch_at(endpoint, &self.key, *next, true).await {
            Ok(s) => s,
            Err(e) => return End::Failed(e),
        };
        let mut resync =
            tokio::time::interval_at(tokio::time::Instant::now() + self.resync, self.resync);
        loop {
            tokio::select! {
                result = stream.next() => {
                    let result = match result {
                        Ok(Some(r)) => r,
                        Ok(None) => return End::Failed(Error::remote(
                            format!("etcd {} key {}", self.client.endpoint_name(endpoint), self.key),
                            "the watch stream ended",
                        )),
                        Err(e) => return End::Failed(e),
                    };
                    if result.created {
                        feed.source_ok();
                        backoff.reset();
                    }
                    if result.compact_revision > 0 {
                        tracing::info!(
                            source = %feed.label(),
                            start = *next,
                            compacted = result.compact_revision,
                            "the watch's start revision was compacted: reading the key again"
                        );
                        return End::Compacted;
                    }
                    if result.canceled {
                        return End::Failed(Error::remote(
                            format!("etcd {} key {}", self.client.endpoint_name(endpoint), self.key),
                            format!("the watch was canceled: {}", result.cancel_reason),
                        ));
                    }
                    if result.events.is_empty() && !result.created && result.revision >= *next {
                        // A progress notification: nothing for the key up to here.
                        *next = result.revision + 1;
                    }
                    if let Some(last) = result.events.last() {
                        *next = (*next).max(last.kv.mod_revision + 1);
                        if last.delete {
                            self.missing(feed, endpoint);
                        } else {
                            self.offer(feed, &last.kv);
                        }
                    }
                }
                _ = resync.tick() => {
                    match self.client.get_at(endpoint, &self.key).await {
                        Ok(read) => {
                            if let Some(kv) = read.kv.as_ref().filter(|kv| kv.mod_revision >= *next) {
                                tracing::debug!(source = %feed.label(), revision = kv.mod_revision, "resync found a newer value than the watch delivered");
                                self.offer(feed, kv);
                            }
                        }
                        Err(e) => return End::Failed(e),
                    }
                }
            }
        }
    }
}

impl Source for EtcdSource {
    fn label(&self) -> &'static str {
        "etcd"
    }

    fn location(&self) -> String {
        let endpoints: Vec<String> = (0..self.client.endpoints().len())
            .map(|i| self.client.endpoint_name(i))
            .collect();
        format!("{} key {}", endpoints.join(","), self.key)
    }

    async fn run(self, feed: Feed) {
        if self.share_halts {
            let marker = halt::follow(
                self.client.clone(),
                halt::marker_key(&self.key),
                feed.clone(),
                self.backoff,
            );
            tokio::join!(self.follow(feed), marker);
        } else {
            self.follow(feed).await;
        }
    }
}

impl EtcdSource {
    /// Follows the rules key for the life of the source.
    async fn follow(&self, feed: Feed) {
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        let endpoints = self.client.endpoints().len();
        let mut endpoint = 0;
        // The revision to watch from; None: read the key first.
        let mut next: Option<u64> = None;
        loop {
            let start = match next {
                Some(n) => n,
                None => match self.client.get_at(endpoint, &self.key).await {
                    Ok(read) => {
                        feed.source_ok();
                        match &read.kv {
                            Some(kv) => self.offer(&feed, kv),
                            None => self.missing(&feed, endpoint),
                        }
                        read.revision + 1
                    }
                    Err(e) => {
                        feed.source_error(e);
                        endpoint = (endpoint + 1) % endpoints;
                        tokio::time::sleep(backoff.next_wait()).await;
                        continue;
                    }
                },
            };
            let mut watched = start;
            match self
                .watch(&feed, endpoint, &mut watched, &mut backoff)
                .await
            {
                End::Compacted => next = None,
                End::Failed(e) => {
                    next = Some(watched);
                    feed.source_error(e);
                    endpoint = (endpoint + 1) % endpoints;
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
    }
}
