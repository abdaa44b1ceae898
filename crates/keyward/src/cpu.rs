//! CPU-heavy request work (parsing and translating a large body, counting its tokens) runs on
//! tokio's blocking threads, at most one job per core at a time, instead of on the serving thread
//! that received it: a serving thread runs every connection it holds, and an 8 MiB body's
//! tokenizing took seconds during which they all waited. Small bodies, the usual ones, stay on
//! the serving thread, where they cost less than a hand-over would.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

/// Work on a body smaller than this runs where it is asked for.
pub(crate) const INLINE_BYTES: usize = 256 << 10;

/// One turn per core: heavy jobs beyond that wait their turn, so they never take every core.
static TURNS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from)));

/// The runtime stopped before the work ran.
#[derive(Debug, thiserror::Error)]
#[error("keyward is stopping")]
pub(crate) struct Stopping;

/// Runs `work`, sized by `bytes` of input: inline when small, else on a blocking thread.
pub(crate) async fn run<T, F>(bytes: usize, work: F) -> Result<T, Stopping>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if bytes < INLINE_BYTES {
        return Ok(work());
    }
    let _turn = TURNS.acquire().await.map_err(|_| Stopping)?;
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Ok(done),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Stopping),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small work runs on the calling thread; large work on another.
    #[tokio::test(flavor = "current_thread")]
    async fn large_work_leaves_the_serving_thread() -> Result<(), Stopping> {
        let here = std::thread::current().id();
        assert_eq!(run(10, move || std::thread::current().id()).await?, here);
        assert_ne!(
            run(INLINE_BYTES, move || std::thread::current().id()).await?,
            here
        );
        Ok(())
    }
}
