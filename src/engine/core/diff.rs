//! A session's changes as a unified diff (through `crate::workspace`): a running session's
//! worktree against its last commit (on a build box: its server's diff of the session), or the
//! commit an ended session itself left on its task branch (read from its result checkpoint in
//! the store, so any session's, however old; an attempt that left none shows none, never
//! another attempt's). An ended box session whose work did not come back (cancelled while its
//! box was down, say) shows what its box's server says it changed, saying so. Git runs on a
//! blocking thread; the answer goes straight to the caller.

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
        // The runners of the agents, for an ended box session whose work stayed on its box.
        let runners: Vec<_> = match running {
            Some(_) => Vec::new(),
            None => self.fleet.runners(),
        };
        self.tasks.spawn(async move {
            // An ended session's commit and repository are durable: read them from the store,
            // whether its plan is loaded or not.
            let source = match running {
                Some(source) => Ok(source),
                None => store
                    .read(move |txn| ended_source(txn, session))
                    .await
                    .map(|ended| ended.and_then(|ended| ended.source(session, &runners))),
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
/// repository; none when the attempt left no work, never another attempt's. A box session
/// that left none: where it worked, to ask its box.
fn ended_source(txn: &ReadTransaction, session: SessionId) -> Result<Option<Ended>, StoreError> {
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
    let data = result.as_ref().map(|c| &c.data);
    let commit = match data.and_then(|d| d.get("commit")) {
        Some(commit) => commit.as_str().map(str::to_string),
        // Recorded before attempts kept their own commit: the task's, for a session that
        // completed (a failed or stopped one committed nothing).
        None if session.status == SessionStatus::Completed => {
            query::context(txn, task)?.and_then(|c| c.commit)
        }
        None => None,
    };
    let on_box = data.and_then(|d| d.get("on_box")) == Some(&serde_json::Value::Bool(true));
    let Some(commit) = commit else {
        return Ok(match (on_box, session.agent, session.remote) {
            (true, Some(agent), Some(remote)) => Some(Ended::Stayed { agent, remote }),
            _ => None,
        });
    };
    Ok(query::plan(txn, plan)?.map(|p| Ended::Commit {
        repo: p.repo,
        commit,
    }))
}

/// Where an ended session's work is.
enum Ended {
    /// On its task branch.
    Commit { repo: PathBuf, commit: String },
    /// On the build box it worked on: it did not come back.
    Stayed {
        agent: crate::domain::AgentName,
        remote: crate::domain::RemoteSession,
    },
}

impl Ended {
    fn source(self, session: SessionId, runners: &[RunnerOf]) -> Option<Source> {
        match self {
            Ended::Commit { repo, commit } => Some(Source::Commit { repo, commit }),
            Ended::Stayed { agent, remote } => {
                let runner = runners.iter().find(|(name, _)| *name == agent)?;
                let (server, dir) = (remote.server.clone(), remote.directory.clone());
                let changes = runner.1.changes(session, remote)?;
                Some(Source::Stayed {
                    changes,
                    server,
                    dir,
                })
            }
        }
    }
}

type RunnerOf = (
    crate::domain::AgentName,
    std::sync::Arc<dyn crate::engine::runner::Runner>,
);

enum Source {
    Worktree(PathBuf),
    Commit {
        repo: PathBuf,
        commit: String,
    },
    /// A running session on a build box: what its server says it changed.
    Box(ChangesFuture),
    /// An ended one that left no work on its task's branch (cancelled while its box was down,
    /// failed, or its work did not come back): the same, from the box at `server`.
    Stayed {
        changes: ChangesFuture,
        server: String,
        dir: PathBuf,
    },
}

impl Source {
    async fn diff(self) -> Result<String, String> {
        let local = match self {
            Source::Box(changes) => return Ok(patches(changes.await?)),
            Source::Stayed {
                changes,
                server,
                dir,
            } => {
                let dir = dir.display();
                let changed = changes.await.map_err(|e| {
                    format!("this session left no work on the task's branch, and its build box at {server} cannot be read now: {e}")
                })?;
                let said = match changed.is_empty() {
                    true => "it reports no changes for it".to_string(),
                    false => format!("what it says the session changed, in {dir} there"),
                };
                return Ok(format!(
                    "(this session left no work on the task's branch; from its build box at {server}: {said})\n{}",
                    patches(changed)
                ));
            }
            local => local,
        };
        tokio::task::spawn_blocking(move || match local {
            Source::Worktree(dir) => crate::workspace::worktree_diff(&dir),
            Source::Commit { repo, commit } => crate::workspace::commit_diff(&repo, &commit),
            Source::Box(_) | Source::Stayed { .. } => Ok(String::new()),
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
