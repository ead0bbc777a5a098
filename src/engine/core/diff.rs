//! A session's changes as a unified diff (through `crate::workspace`): a running session's
//! worktree against its last commit, or the commit an ended session's task left on its branch.
//! Git runs on a blocking thread; the answer goes straight to the caller.

use std::path::PathBuf;

use tokio::sync::oneshot;

use super::Core;
use crate::domain::SessionId;
use crate::engine::EngineError;

/// Longest diff handed to a front end.
const MOST: usize = 512 * 1024;

impl Core {
    pub(super) fn diff(
        &self,
        session: SessionId,
        reply: oneshot::Sender<Result<String, EngineError>>,
    ) {
        let source = if let Some(dir) = self
            .running
            .get(&session)
            .and_then(|r| r.overlap_dir.clone())
        {
            Some(Source::Worktree(dir))
        } else {
            self.ended_task(session).and_then(|(task, plan)| {
                let commit = self.contexts.get(&task)?.commit.clone()?;
                let repo = self.plans.get(&plan)?.plan.repo.clone();
                Some(Source::Commit { repo, commit })
            })
        };
        let Some(source) = source else {
            let _ = reply.send(Ok(String::new()));
            return;
        };
        tokio::spawn(async move {
            let result = tokio::task::spawn_blocking(move || source.diff())
                .await
                .unwrap_or_else(|e| Err(format!("the diff did not finish: {e}")))
                .map(|text| crate::text::clip(&text, MOST))
                .map_err(EngineError::Diff);
            let _ = reply.send(result);
        });
    }

    /// The task and plan of a session this engine knows (running or recently ended).
    fn ended_task(
        &self,
        session: SessionId,
    ) -> Option<(crate::domain::TaskId, crate::domain::PlanId)> {
        let found = self.observed.session(session)?;
        Some((found.task?, found.plan?))
    }
}

enum Source {
    Worktree(PathBuf),
    Commit { repo: PathBuf, commit: String },
}

impl Source {
    fn diff(&self) -> Result<String, String> {
        match self {
            Source::Worktree(dir) => crate::workspace::worktree_diff(dir),
            Source::Commit { repo, commit } => crate::workspace::commit_diff(repo, commit),
        }
        .map_err(|e| e.to_string())
    }
}
