//! A session's changes as a unified diff (through `crate::workspace`): a running session's
//! worktree against its last commit (on a build box: its server's diff of the session), or the commit an ended session itself left on its task
//! branch (read from its result checkpoint in the store, so any session's, however old; an
//! attempt that left none shows none, never another attempt's). Git runs on a blocking thread; the
//! answer goes straight to the caller.

use std::path::PathBuf;

use redb::ReadTransaction;

use super::Core;
use crate::domain::{CheckpointKind, SessionId, SessionStatus};
use crate::engine::EngineError;
use crate::engine::runner::{Changed, ChangesFuture};
use crate::store::{StoreError, query};

/// Longest diff handed to a front end.
const MOST: usize = 512 * 1024;

impl Core {
    pub(super) fn diff(&self, session: SessionId, reply: super::Typed<String>) {
        let running = self.running.get(&session).map(|run| match run.on_box() {
            Some(remote) => self
                .fleet
                .runner(run.agent)
                .changes(session, remote.clone())
                .map(Source::Box),
            None => run.overlap_dir.clone().map(Source::Worktree),
        });
        let store = self.store.clone();
        self.tasks.spawn(async move {
            // An ended session's commit and repository are durable: read them from the store,
            // whether its plan is loaded or not.
            let source = match running {
                Some(source) => Ok(source),
                None => store.read(move |txn| ended_source(txn, session)).await,
            };
            let source = match source {
                Ok(Some(source)) => source,
                Ok(None) => {
                    reply.send(Ok(String::new()));
                    return;
                }
                Err(e) => {
                    reply.send(Err(e.into()));
                    return;
                }
            };
            let result = source
                .diff()
                .await
                .map(|text| crate::text::clip(&text, MOST))
                .map_err(EngineError::Diff);
            reply.send(result);
        });
    }
}

/// The commit an ended session left (recorded in its result checkpoint), and the plan's
/// repository; none when the attempt left no work, never another attempt's.
fn ended_source(txn: &ReadTransaction, session: SessionId) -> Result<Option<Source>, StoreError> {
    let Some(session) = query::session(txn, session)? else {
        return Ok(None);
    };
    let (Some(task), Some(plan)) = (session.task, session.plan) else {
        return Ok(None);
    };
    let result = query::checkpoints(txn, session.id)?
        .into_iter()
        .rev()
        .find(|c| c.kind == CheckpointKind::Result);
    let commit = match result.as_ref().and_then(|c| c.data.get("commit")) {
        Some(commit) => commit.as_str().map(str::to_string),
        // Recorded before attempts kept their own commit: the task's, for a session that
        // completed (a failed or stopped one committed nothing).
        None if session.status == SessionStatus::Completed => {
            query::context(txn, task)?.and_then(|c| c.commit)
        }
        None => None,
    };
    let Some(commit) = commit else {
        return Ok(None);
    };
    Ok(query::plan(txn, plan)?.map(|p| Source::Commit {
        repo: p.repo,
        commit,
    }))
}

enum Source {
    Worktree(PathBuf),
    Commit {
        repo: PathBuf,
        commit: String,
    },
    /// A running session on a build box: what its server says it changed.
    Box(ChangesFuture),
}

impl Source {
    async fn diff(self) -> Result<String, String> {
        let local = match self {
            Source::Box(changes) => return Ok(patches(changes.await?)),
            local => local,
        };
        tokio::task::spawn_blocking(move || match local {
            Source::Worktree(dir) => crate::workspace::worktree_diff(&dir),
            Source::Commit { repo, commit } => crate::workspace::commit_diff(&repo, &commit),
            Source::Box(_) => Ok(String::new()),
        })
        .await
        .map_err(|e| format!("the diff did not finish: {e}"))?
        .map_err(|e| e.to_string())
    }
}

/// A box session's changes as one text: each file's patch, or its name where the server
/// gave none.
fn patches(changed: Vec<Changed>) -> String {
    let mut text = String::new();
    for Changed { file, patch } in changed {
        match patch {
            Some(patch) => text.push_str(&patch),
            None => text.push_str(&format!("{file}: changed (no patch from the server)")),
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}
