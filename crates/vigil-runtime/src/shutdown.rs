//! The one shutdown pattern of every Vigil binary (`vigil-agent`, `vigil-hub`, `vigil-sim`),
//! in the mini-redis style: one [`Shutdown`] handle carries the cancellation every task
//! watches (a [`CancellationToken`]) and the tracking of the tasks started under it (a
//! [`TaskTracker`]), so that stopping is: cancel, then wait for the tracked tasks — for a
//! bounded time, after which the stragglers are named in the log and left to the runtime's
//! end.
//!
//! The binary makes the handle, installs the signal handlers with
//! [`Shutdown::stop_on_signal`] (SIGINT or SIGTERM cancels it), and hands the token to its
//! `run`; `run` starts its tasks with [`Shutdown::spawn`] and ends with
//! [`Shutdown::stop`]. Tests cancel the token themselves instead of sending a signal.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

/// Cancellation and the tasks that must end before the process does. Clones share both.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

/// How [`Shutdown::stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Stopped {
    /// Every tracked task ended within the grace period.
    Clean,
    /// The grace period ran out with `running` tasks still going.
    TimedOut {
        /// Tracked tasks still running.
        running: usize,
    },
}

impl Shutdown {
    /// A handle nothing has cancelled yet.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// A handle cancelled by `token` (given by whoever started the component: the binary,
    /// or a test), tracking tasks of its own.
    pub fn with_token(token: CancellationToken) -> Self {
        Shutdown {
            token,
            tracker: TaskTracker::new(),
        }
    }

    /// The token tasks watch (`token.cancelled().await`).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Asks every task to stop.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once stopping is asked for.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Starts `task` on the runtime, tracked: [`Shutdown::stop`] waits for it.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Tracked tasks still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives at once is not
    /// missed) and cancels this handle when one of them arrives. Call it inside the runtime,
    /// before announcing readiness. The watcher is not tracked: it ends with the runtime.
    pub fn stop_on_signal(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let token = self.token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
                _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
                () = token.cancelled() => return,
            }
            token.cancel();
        });
        Ok(())
    }

    /// Cancels, then waits for the tracked tasks, at most `grace`. Tasks still running then
    /// are logged (a warning with their count) and left to end with the runtime.
    pub async fn stop(&self, grace: Duration) -> Stopped {
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => Stopped::Clean,
            Err(_) => {
                let running = self.tracker.len();
                tracing::warn!(
                    running,
                    grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    "some tasks did not stop in time; leaving them to the runtime's end"
                );
                Stopped::TimedOut { running }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Tasks that watch the token end on `stop`, which returns once they have.
    #[tokio::test(start_paused = true)]
    async fn stop_cancels_and_waits_for_the_tracked_tasks() {
        let shutdown = Shutdown::new();
        let ended = Arc::new(AtomicUsize::new(0));
        for i in 0..3u64 {
            let token = shutdown.token().clone();
            let ended = Arc::clone(&ended);
            shutdown.spawn(async move {
                token.cancelled().await;
                // Some clean-up that takes a while (paused time: no real wait).
                tokio::time::sleep(Duration::from_millis(100 * i)).await;
                ended.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(shutdown.running(), 3);
        assert!(!shutdown.is_cancelled());
        assert_eq!(shutdown.stop(Duration::from_secs(10)).await, Stopped::Clean);
        assert!(shutdown.is_cancelled());
        assert_eq!(
            ended.load(Ordering::SeqCst),
            3,
            "stop waited for every task"
        );
        assert_eq!(shutdown.running(), 0);
    }

    /// A task that ignores the token does not hold the process: `stop` gives up after the
    /// grace period and says how many are still running.
    #[tokio::test(start_paused = true)]
    async fn stop_is_bounded_by_the_grace_period() {
        let shutdown = Shutdown::new();
        let stuck = shutdown.spawn(std::future::pending::<()>());
        let token = shutdown.token().clone();
        shutdown.spawn(async move { token.cancelled().await });
        assert_eq!(
            shutdown.stop(Duration::from_secs(10)).await,
            Stopped::TimedOut { running: 1 }
        );
        stuck.abort();
    }

    /// A handle made from a token is cancelled by it, and its clones share the tracking.
    #[tokio::test(start_paused = true)]
    async fn a_token_from_outside_cancels_the_handle() {
        let token = CancellationToken::new();
        let shutdown = Shutdown::with_token(token.clone());
        let clone = shutdown.clone();
        let watcher = clone.token().clone();
        clone.spawn(async move { watcher.cancelled().await });
        assert_eq!(shutdown.running(), 1);
        token.cancel();
        shutdown.cancelled().await;
        assert_eq!(shutdown.stop(Duration::from_secs(1)).await, Stopped::Clean);
    }

    /// SIGTERM to this process cancels a handle that installed the handlers.
    #[tokio::test]
    async fn a_signal_cancels() {
        let shutdown = Shutdown::new();
        shutdown.stop_on_signal().expect("handlers");
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).expect("raise");
        tokio::time::timeout(Duration::from_secs(30), shutdown.cancelled())
            .await
            .expect("cancelled by SIGTERM");
    }
}
