//! The current tag of a task: set by [`GrayLayer`](crate::GrayLayer) around
//! the inner service's future, read by outbound clients.
//!
//! A handler's outbound calls run in the handler's task, so
//! [`PropagateGrayLayer`](crate::PropagateGrayLayer) and the reqwest
//! middleware find the tag here without the handler passing it along. A task
//! started with `tokio::spawn` is a new task and does **not** inherit it
//! (tokio task-locals are per task): start such work with [`spawn`], or wrap
//! its future with [`in_current`] or [`scope`].
//!
//! ```
//! use graymatch::Tag;
//! use graymatch_tower::scope;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let tag = Tag::new("gray").unwrap();
//! scope::scope(tag, async {
//!     assert_eq!(scope::current(), Some(tag));
//!     // A plain tokio::spawn loses the tag; scope::spawn keeps it.
//!     let lost = tokio::spawn(async { scope::current() }).await.unwrap();
//!     let kept = scope::spawn(async { scope::current() }).await.unwrap();
//!     assert_eq!((lost, kept), (None, Some(tag)));
//! }).await;
//! assert_eq!(scope::current(), None);
//! # }
//! ```

use std::future::Future;

use graymatch::Tag;
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    static CURRENT: Option<Tag>;
}

/// A future running with a tag in scope.
pub type Scoped<F> = TaskLocalFuture<Option<Tag>, F>;

/// The tag in scope for the current task, if any.
///
/// ```
/// assert_eq!(graymatch_tower::scope::current(), None);
/// ```
pub fn current() -> Option<Tag> {
    CURRENT.try_with(|t| *t).ok().flatten()
}

/// Runs `future` with `tag` in scope.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tag = graymatch::Tag::new("v2").unwrap();
/// let seen = graymatch_tower::scope::scope(tag, async { graymatch_tower::scope::current() }).await;
/// assert_eq!(seen, Some(tag));
/// # }
/// ```
pub fn scope<F: Future>(tag: Tag, future: F) -> Scoped<F> {
    CURRENT.scope(Some(tag), future)
}

/// Wraps `future` so that it runs with the tag that is current now (if any),
/// wherever it is later polled.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use graymatch_tower::scope;
/// let tag = graymatch::Tag::new("gray").unwrap();
/// let job = scope::scope(tag, async { scope::in_current(async { scope::current() }) }).await;
/// // Polled outside the scope, it still sees the tag it was made under.
/// assert_eq!(tokio::spawn(job).await.unwrap(), Some(tag));
/// # }
/// ```
pub fn in_current<F: Future>(future: F) -> Scoped<F> {
    CURRENT.scope(current(), future)
}

/// `tokio::spawn` that carries the current tag into the new task.
///
/// # Panics
///
/// As `tokio::spawn`: when called outside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use graymatch_tower::scope;
/// let tag = graymatch::Tag::new("gray").unwrap();
/// let handle = scope::scope(tag, async { scope::spawn(async { scope::current() }) }).await;
/// assert_eq!(handle.await.unwrap(), Some(tag));
/// # }
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(in_current(future))
}
