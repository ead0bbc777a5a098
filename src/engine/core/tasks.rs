//! The tasks the engine spawns beside its loop (runs, planner calls, probes, merges, diffs,
//! history loads), tracked so that stopping the engine stops them: each is dropped at its next
//! await once the engine stops, so a pending long request (a planner's prompt may take 30
//! minutes) neither outlives the engine nor holds a reply that a front end waits for.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long stopping waits for the tracked tasks to end (they end at their next await; only a
/// task stuck in blocking code could take longer, and it is left to the process's exit).
const STOP_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub(super) struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Tasks {
    /// Run `future` until it ends or the engine stops, whichever comes first.
    pub(super) fn spawn<F>(&self, future: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = future => {}
                () = stop.cancelled() => {}
            }
        });
    }

    /// Stop every task and wait (bounded) until they have ended.
    pub(super) async fn stop(&self) {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(STOP_WAIT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.len(),
                "engine tasks still running after {STOP_WAIT:?}; leaving them"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stopping_ends_a_pending_task_and_drops_what_it_holds() {
        let tasks = Tasks::default();
        let (reply, answer) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            // A request that would answer in 30 minutes.
            tokio::time::sleep(Duration::from_secs(30 * 60)).await;
            let _ = reply.send(());
        });
        let started = tokio::time::Instant::now();
        tasks.stop().await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(answer.await.is_err(), "the reply was dropped unanswered");
    }
}
