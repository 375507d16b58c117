//! What a handler receives ([`Incoming`]) and the handle of a running
//! consumer ([`Running`]): stop it gracefully, or abort it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use graymatch::Decision;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::lane::{Action, Lane, Routed};
use crate::stats::{Outcome, Snapshot, Stats};

/// A message handed to a consumer's handler, with the variant it is
/// handled as. The handler runs inside the message's tag scope
/// ([`graymatch_tower::scope`]), so its calls through graymatch's HTTP and
/// gRPC layers carry the variant on.
#[derive(Debug)]
pub struct Incoming<M> {
    message: M,
    routed: Routed,
}

impl<M> Incoming<M> {
    pub(crate) fn new(message: M, routed: Routed) -> Self {
        Incoming { message, routed }
    }

    /// The message.
    pub fn message(&self) -> &M {
        &self.message
    }

    /// The message, owned.
    pub fn into_message(self) -> M {
        self.message
    }

    /// The variant the message is handled as: its trusted tag's, else the
    /// default.
    pub fn variant(&self) -> &'static str {
        self.routed.decision.variant()
    }

    /// The decision: the variant and whether it came from the message's
    /// tag (`Reason::Propagated`) or is the default (`Reason::Default`).
    pub fn decision(&self) -> Decision {
        self.routed.decision
    }

    /// Whether a base consumer handles it because its own lane did not
    /// take it.
    pub fn rerouted(&self) -> bool {
        self.routed.action == Action::Reroute
    }

    /// The declared variant the message's tag names, whether trusted or
    /// not (a forged tag shows here, not in [`variant`](Self::variant)).
    pub fn claimed(&self) -> Option<&'static str> {
        self.routed.claimed
    }
}

/// Runs `handler` on a routed message inside its tag scope, counts the
/// outcome, and says whether it succeeded.
pub(crate) async fn handle<M, F, Fut, E>(
    lane: &Lane,
    stats: &Stats,
    handler: &F,
    message: M,
    routed: Routed,
) -> bool
where
    F: Fn(Incoming<M>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let variant = routed.decision.variant();
    let tag = routed.tag;
    let action = routed.action;
    let result = graymatch_tower::scope::scope(tag, handler(Incoming::new(message, routed))).await;
    match result {
        Ok(()) => {
            stats.count(
                lane.group(),
                lane.variant(),
                variant,
                Outcome::Routed(action),
            );
            true
        }
        Err(e) => {
            tracing::warn!(group = lane.group(), lane = lane.variant(), variant, error = %e, "message handler failed");
            stats.count(lane.group(), lane.variant(), variant, Outcome::Failed);
            false
        }
    }
}

/// A running consumer. [`stop`](Running::stop) it to leave gracefully
/// (lane consumers say goodbye, so the base takes their variant's messages
/// at once); dropping or [`abort`](Running::abort)ing it ends it at once,
/// as a crash would (the base takes over after the liveness timeout).
#[derive(Debug)]
pub struct Running {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), Error>>>,
    stats: Arc<Stats>,
    lane: Lane,
}

impl Running {
    pub(crate) fn spawn<Fut>(
        lane: Lane,
        stats: Arc<Stats>,
        run: impl FnOnce(watch::Receiver<bool>) -> Fut,
    ) -> Self
    where
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(stopped));
        Running {
            stop,
            task: Some(task),
            stats,
            lane,
        }
    }

    /// The lane it runs.
    pub fn lane(&self) -> &Lane {
        &self.lane
    }

    /// What it has done so far.
    pub fn stats(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// Whether it has ended (stopped, aborted, or failed).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops gracefully: a lane consumer says goodbye first, the message
    /// being handled is finished and acknowledged, and messages received
    /// but not handled are returned to the broker where it keeps them.
    ///
    /// # Errors
    ///
    /// The error that ended the consumer, if one did.
    pub async fn stop(mut self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task.await.map_err(|e| {
                Error::config(format!("consumer {}", self.lane.variant()), e.to_string())
            })?,
            None => Ok(()),
        }
    }

    /// Ends it at once, as a crash would: no goodbye; what the broker keeps
    /// unacknowledged is redelivered by the broker's rules.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Waits until `stopped` says stop (or its sender is gone).
pub(crate) async fn stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}
