//! The current tag of a task: set by [`GrayLayer`](crate::GrayLayer) around
//! the inner service's future, read by outbound clients.
//!
//! A handler's outbound calls run in the handler's task, so
//! [`PropagateGrayLayer`](crate::PropagateGrayLayer) and the reqwest
//! middleware find the tag here without the handler passing it along. A task
//! started with `tokio::spawn` is a new task and does **not** inherit it
//! (the tag is set only while the future that carries it is polled, as a
//! tokio task-local is): start such work with [`spawn`], or wrap its future
//! with [`in_current`] or [`scope`].
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

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use graymatch::Tag;
use pin_project_lite::pin_project;

thread_local! {
    /// The tag of the future being polled on this thread: set by
    /// [`Scoped`] around each poll of its future and put back after, as a
    /// tokio task-local is (a plain `Cell`, since a tag is `Copy`).
    static CURRENT: Cell<Option<Tag>> = const { Cell::new(None) };
}

pin_project! {
    /// A future running with a tag in scope: while it is polled (and while
    /// it is dropped), [`current`] returns its tag.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use graymatch_tower::scope;
    /// let tag = graymatch::Tag::new("gray").unwrap();
    /// let fut: scope::Scoped<_> = scope::scope(tag, async { scope::current() });
    /// assert_eq!(fut.await, Some(tag));
    /// # }
    /// ```
    pub struct Scoped<F> {
        tag: Option<Tag>,
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _in = Enter::new(*this.tag);
            this.future.set(None);
        }
    }
}

/// Sets the tag in scope, and puts the one before it back when dropped
/// (also when the future panics).
struct Enter(Option<Tag>);

impl Enter {
    #[inline]
    fn new(tag: Option<Tag>) -> Self {
        Enter(CURRENT.try_with(|c| c.replace(tag)).ok().flatten())
    }
}

impl Drop for Enter {
    #[inline]
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.0));
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _in = Enter::new(*this.tag);
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            None => panic!("`Scoped` polled after it was dropped"),
        }
    }
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// The tag in scope for the current task, if any.
///
/// ```
/// assert_eq!(graymatch_tower::scope::current(), None);
/// ```
#[inline]
pub fn current() -> Option<Tag> {
    CURRENT.try_with(Cell::get).ok().flatten()
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
    Scoped {
        tag: Some(tag),
        future: Some(future),
    }
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
    Scoped {
        tag: current(),
        future: Some(future),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(v: &str) -> Tag {
        Tag::new(v).unwrap()
    }

    /// Records the tag in scope when dropped.
    struct OnDrop(std::sync::Arc<std::sync::Mutex<Option<Tag>>>);

    impl Drop for OnDrop {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = current();
        }
    }

    #[tokio::test]
    async fn nested_scopes_put_the_outer_tag_back() {
        let seen = scope(tag("a"), async {
            let inner = scope(tag("b"), async { current() }).await;
            let hidden = in_current(async { current() }).await;
            (inner, current(), hidden)
        })
        .await;
        assert_eq!(seen, (Some(tag("b")), Some(tag("a")), Some(tag("a"))));
        assert_eq!(current(), None);
    }

    #[tokio::test]
    async fn a_panicking_future_puts_the_tag_back() {
        // A current-thread runtime polls the task on this thread.
        let result = tokio::spawn(scope(tag("a"), async {
            panic!("handler failed");
        }))
        .await;
        assert!(result.unwrap_err().is_panic());
        assert_eq!(current(), None);
    }

    #[test]
    fn a_future_is_dropped_in_its_scope() {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let guard = OnDrop(slot.clone());
        let fut = scope(tag("a"), async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        drop(fut);
        assert_eq!(*slot.lock().unwrap(), Some(tag("a")));
        assert_eq!(current(), None);
    }
}
