//! The fleet's halt marker: one etcd key holding a release's state (its
//! halted variants and frozen schedules), written when an instance's guard
//! trips and followed by every instance, so one instance that sees a
//! failing variant halts it across the fleet.
//!
//! The marker of the rules at `KEY` is `KEY/halt` ([`marker_key`]), a JSON
//! [`ReleaseState`]:
//!
//! ```json
//! {"version": "4f9c…", "halted": [{"variant": "gray", "at": "2026-11-24T10:12:03.114Z",
//!   "reason": "guard: failure rate 9.8% > 5.0% over 60s (412 requests, 40 failed)"}],
//!  "frozen_at": "2026-11-24T10:12:03.114Z", "paused": 0}
//! ```
//!
//! - **Writing.** A trip (or a [`Release::halt`](graymatch::Release::halt)
//!   or [`resume`](graymatch::Release::resume) on an instance) is applied
//!   to the marker as read-modify-write with compare-and-swap on its
//!   revision, retried on a conflict, so trips on several instances at once
//!   add up. `graymatch halt` and `graymatch resume` do the same from a
//!   terminal ([`halt`], [`resume`]).
//! - **Following.** Every instance reads the marker, watches it, and
//!   applies each new value to its release; it reads it again whenever a new
//!   rule set is applied. A marker for another rule-set version (the
//!   SHA-256 of the text) is ignored, so pushing new rules clears every halt.
//!   A marker that is not a release state is ignored with a warning. A
//!   deleted marker resumes every variant.
//! - **Never in the request path.** Requests read the matcher in force; an
//!   unreachable etcd delays the spread of a halt (the tripping instance has
//!   halted at once) and is retried with backoff.

use std::time::{Duration, SystemTime};

use graymatch::{ChangedBy, Release, ReleaseEvent, ReleaseState};
use tokio::sync::mpsc;

use super::client::Client;
use crate::backoff::Backoff;
use crate::error::Error;
use crate::feed::Feed;

/// The marker key of the rules at `rules_key`: `rules_key` + `/halt`.
///
/// ```
/// assert_eq!(graymatch_source::etcd::halt::marker_key("/graymatch/checkout"), "/graymatch/checkout/halt");
/// ```
pub fn marker_key(rules_key: &str) -> String {
    format!("{rules_key}/halt")
}

/// A change to apply to the marker.
#[derive(Debug)]
enum Change {
    Halt {
        variant: String,
        reason: String,
        at: SystemTime,
    },
    Resume {
        variant: Option<String>,
        at: SystemTime,
    },
}

impl Change {
    /// Applies the change to `state`; whether it changed.
    fn apply(&self, state: &mut ReleaseState) -> bool {
        match self {
            Change::Halt {
                variant,
                reason,
                at,
            } => state.halt(variant, reason, *at),
            Change::Resume { variant, at } => state.resume(variant.as_deref(), *at),
        }
    }
}

/// Reads the marker: its state (if any, and if it is one) and revision.
async fn read(client: &Client, key: &str) -> Result<(Option<ReleaseState>, u64), Error> {
    let read = client.get(key).await?;
    Ok(match read.kv {
        Some(kv) => (parse(key, &kv.value), kv.mod_revision),
        None => (None, 0),
    })
}

fn parse(key: &str, value: &[u8]) -> Option<ReleaseState> {
    match serde_json::from_slice::<ReleaseState>(value) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(key, "the halt marker is not a release state, ignored: {e}");
            None
        }
    }
}

/// Applies `change` to the marker for rule-set version `version` (a marker
/// for another version is replaced), with compare-and-swap, retried on a
/// conflict. The state written, or `None` when the change changed nothing.
async fn write(
    client: &Client,
    key: &str,
    version: Option<&str>,
    change: &Change,
) -> Result<Option<ReleaseState>, Error> {
    let mut last = None;
    for _ in 0..8 {
        let (theirs, revision) = read(client, key).await?;
        let mut state = match theirs {
            Some(s) if s.version.as_deref() == version => s,
            _ => ReleaseState {
                version: version.map(str::to_owned),
                ..ReleaseState::default()
            },
        };
        if !change.apply(&mut state) {
            return Ok(None);
        }
        let json = serde_json::to_vec(&state).map_err(|e| Error::config(e.to_string()))?;
        match client.put_if(key, &json, revision).await {
            Ok(_) => return Ok(Some(state)),
            Err(e) if e.conflict_revisions().is_some() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::config("the halt marker kept changing")))
}

/// What a terminal halt or resume did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerUpdate {
    /// The rules' version the marker is about (SHA-256 in hex).
    pub version: String,
    /// The marker as written, or `None` when nothing changed (already
    /// halted, or nothing to resume).
    pub state: Option<ReleaseState>,
}

/// The rules at `rules_key` and their version, checked to know `variant`
/// (not the default) when one is given.
async fn rules_version(
    client: &Client,
    rules_key: &str,
    variant: Option<&str>,
) -> Result<String, Error> {
    let read = client.get(rules_key).await?;
    let kv = read
        .kv
        .ok_or_else(|| Error::config(format!("etcd key {rules_key}: no such key")))?;
    let version = crate::text::version_of(&kv.value).hash();
    if let Some(variant) = variant {
        let text = crate::text::utf8(rules_key, &kv.value)?;
        let m = crate::text::Format::Yaml
            .parse(text)
            .or_else(|_| crate::text::Format::Json.parse(text))
            .or_else(|_| crate::text::Format::Toml.parse(text))
            .and_then(|s| s.compile())
            .map_err(|e| Error::rules(rules_key, e))?;
        if m.default_variant() == variant {
            return Err(Error::config(format!(
                "`{variant}` is the default variant of {rules_key}, which cannot be halted"
            )));
        }
        if !m.variants().any(|v| v == variant) {
            return Err(Error::config(format!(
                "`{variant}` is not a variant of the rules at {rules_key} (variants: {})",
                m.variants().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(version)
}

/// Halts `variant` across the fleet following the rules at `rules_key`:
/// writes it to the marker (what `graymatch halt` does).
///
/// # Errors
///
/// No rules at the key, a variant they do not have (or their default), or
/// etcd cannot be reached.
pub async fn halt(
    client: &Client,
    rules_key: &str,
    variant: &str,
    reason: &str,
) -> Result<MarkerUpdate, Error> {
    let version = rules_version(client, rules_key, Some(variant)).await?;
    let change = Change::Halt {
        variant: variant.to_owned(),
        reason: reason.to_owned(),
        at: SystemTime::now(),
    };
    let state = write(client, &marker_key(rules_key), Some(&version), &change).await?;
    Ok(MarkerUpdate { version, state })
}

/// Resumes `variant` (`None`: every halted variant) across the fleet
/// following the rules at `rules_key` (what `graymatch resume` does).
///
/// # Errors
///
/// No rules at the key, or etcd cannot be reached.
pub async fn resume(
    client: &Client,
    rules_key: &str,
    variant: Option<&str>,
) -> Result<MarkerUpdate, Error> {
    let version = rules_version(client, rules_key, None).await?;
    let change = Change::Resume {
        variant: variant.map(str::to_owned),
        at: SystemTime::now(),
    };
    let state = write(client, &marker_key(rules_key), Some(&version), &change).await?;
    Ok(MarkerUpdate { version, state })
}

/// The marker of the rules at `rules_key` and the rules' current version:
/// `(marker, version)`; the marker is `None` when there is none (or it is
/// not a release state).
///
/// # Errors
///
/// etcd cannot be reached.
pub async fn status(
    client: &Client,
    rules_key: &str,
) -> Result<(Option<ReleaseState>, Option<String>), Error> {
    let (marker, _) = read(client, &marker_key(rules_key)).await?;
    let version = client
        .get(rules_key)
        .await?
        .kv
        .map(|kv| crate::text::version_of(&kv.value).hash());
    Ok((marker, version))
}

/// Follows the marker at `key` for the release of `feed`, and writes this
/// instance's halts and resumes to it. Runs for the life of the source.
pub(crate) async fn follow(client: Client, key: String, feed: Feed, backoff: (Duration, Duration)) {
    let mut versions = feed.subscribe();
    let release = loop {
        if let Some(r) = feed.release() {
            break r;
        }
        if versions.changed().await.is_err() {
            return;
        }
    };
    let (tx, mut changes) = mpsc::unbounded_channel();
    release.subscribe(move |event| {
        let change = match event {
            ReleaseEvent::Halted {
                variant,
                reason,
                origin: ChangedBy::Guard | ChangedBy::Operator,
            } => Change::Halt {
                variant: variant.clone(),
                reason: reason.clone(),
                at: SystemTime::now(),
            },
            ReleaseEvent::Resumed {
                variant,
                origin: ChangedBy::Operator,
            } => Change::Resume {
                variant: Some(variant.clone()),
                at: SystemTime::now(),
            },
            _ => return,
        };
        let _ = tx.send(change);
    });
    let mut backoff = Backoff::new(backoff.0, backoff.1);
    let endpoints = client.endpoints().len();
    let mut endpoint = 0;
    loop {
        // Read, apply, then watch from the next revision.
        let start = match client.get_at(endpoint, &key).await {
            Ok(read) => {
                apply(&release, &key, read.kv.as_ref().map(|kv| &kv.value[..]));
                read.revision + 1
            }
            Err(e) => {
                tracing::warn!(key, "cannot read the halt marker: {e}");
                endpoint = (endpoint + 1) % endpoints;
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        let mut stream = match client.watch_at(endpoint, &key, start, false).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(key, "cannot watch the halt marker: {e}");
                endpoint = (endpoint + 1) % endpoints;
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                result = stream.next() => match result {
                    Ok(Some(r)) if !r.canceled && r.compact_revision == 0 => {
                        backoff.reset();
                        if let Some(last) = r.events.last() {
                            apply(&release, &key, (!last.delete).then_some(&last.kv.value[..]));
                        }
                    }
                    // Ended, canceled or compacted: read again.
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(key, "the halt marker's watch broke: {e}");
                        endpoint = (endpoint + 1) % endpoints;
                        tokio::time::sleep(backoff.next_wait()).await;
                        break;
                    }
                },
                Some(change) = changes.recv() => {
                    let version = release.state().version;
                    match write(&client, &key, version.as_deref(), &change).await {
                        Ok(_) => {}
                        Err(e) => tracing::warn!(key, "cannot write the halt marker (this instance has halted; the fleet has not yet): {e}"),
                    }
                }
                changed = versions.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // New rules: a marker for them may be there already.
                    break;
                }
            }
        }
    }
}

/// Applies the marker's value (`None`: deleted) to `release`.
fn apply(release: &Release, key: &str, value: Option<&[u8]>) {
    let state = match value {
        Some(v) => match parse(key, v) {
            Some(s) => s,
            None => return,
        },
        // Deleted: every variant resumes, the schedules going on from
        // where they froze.
        None => {
            let mut s = release.state();
            s.resume(None, SystemTime::now());
            s
        }
    };
    if release.apply_state(state) {
        tracing::info!(key, state = ?release.state(), "applied the fleet's halt marker");
    }
}
