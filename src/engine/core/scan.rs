//! Session diffs for the overlap map. The edits a session's events report (tool calls,
//! `file.edited`) miss what a shell command changes (`sed -i`, a code generator, `git
//! checkout`), so every few seconds the worktrees of running sessions are asked what they
//! changed since they were made (`git diff` against their start, untracked files included).
//! Only plans with two or more sessions running, or one and a task to come that declares its
//! `files` (held while a running session touches them), are scanned, at most [`PER_SCAN`]
//! sessions at a time, taking turns, one scan at a time on a blocking thread,
//! and the next only [`SCAN_EVERY`] after the last ended: the cost stays bounded however many
//! sessions run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Core;
use super::merge::GitDone;
use super::workspace::blocking;
use crate::domain::{PlanId, SessionId};
use crate::workspace::Workspace;

/// The pause between the end of one scan and the start of the next.
const SCAN_EVERY: Duration = Duration::from_secs(3);
/// Most worktrees one scan looks at.
const PER_SCAN: usize = 32;

/// Where the scans are.
#[derive(Default)]
pub(super) struct Scanner {
    /// When the last scan ended.
    last: Option<Instant>,
    busy: bool,
    /// The last session scanned: the next scan starts after it.
    cursor: Option<SessionId>,
}

/// What one session's worktree changed so far.
#[derive(Debug)]
pub(super) struct Scanned {
    plan: PlanId,
    session: SessionId,
    files: Vec<String>,
}

impl Core {
    /// Starts a scan if one is due and there is something to scan.
    pub(super) fn scan_worktrees(&mut self) {
        let scanner = &self.scanner;
        if scanner.busy || scanner.last.is_some_and(|last| last.elapsed() < SCAN_EVERY) {
            return;
        }
        let mut by_plan: HashMap<PlanId, Vec<(SessionId, PathBuf)>> = HashMap::new();
        for run in self.running.values() {
            if let Some(dir) = &run.overlap_dir {
                by_plan
                    .entry(run.plan)
                    .or_default()
                    .push((run.session.id, dir.clone()));
            }
        }
        let mut due: Vec<(SessionId, PlanId, PathBuf, Workspace)> = Vec::new();
        for (plan, sessions) in by_plan {
            let Some(state) = self.plans.get(&plan) else {
                continue;
            };
            // Two sessions may overlap; one may touch what a task to come declares (and is
            // held off while a running session touches it).
            let declaring = || {
                state
                    .graph
                    .tasks()
                    .any(|task| !task.files.is_empty() && task.status.has_work_to_come())
            };
            if sessions.len() < 2 && !declaring() {
                continue;
            }
            let Some(workspace) = state.work.workspace.clone() else {
                continue;
            };
            for (session, dir) in sessions {
                due.push((session, plan, dir, workspace.clone()));
            }
        }
        if due.is_empty() {
            self.scanner.last = Some(Instant::now());
            return;
        }
        // Taking turns: the sessions after the last one scanned first, then from the start.
        due.sort_by_key(|(session, ..)| *session);
        let start = self
            .scanner
            .cursor
            .map_or(0, |cursor| due.partition_point(|(s, ..)| *s <= cursor));
        let start = start.min(due.len());
        due.rotate_left(start);
        due.truncate(PER_SCAN);
        self.scanner.cursor = due.last().map(|(session, ..)| *session);
        self.scanner.busy = true;
        let done = self.git_tx.clone();
        self.tasks.spawn(async move {
            let scanned = blocking(move || {
                let mut scanned = Vec::with_capacity(due.len());
                for (session, plan, dir, workspace) in due {
                    match workspace.touched_files(&dir) {
                        Ok(files) => scanned.push(Scanned {
                            plan,
                            session,
                            files,
                        }),
                        // It may have ended and its worktree gone meanwhile.
                        Err(e) => tracing::debug!(%session, error = %e, "cannot scan a worktree"),
                    }
                }
                Ok(scanned)
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "worktree scan failed");
                Vec::new()
            });
            let _ = done.send(GitDone::Scanned(scanned)).await;
        });
    }

    /// A scan ended: what running sessions changed goes into their plans' overlap maps.
    pub(super) fn on_scanned(&mut self, scanned: Vec<Scanned>) {
        self.scanner.busy = false;
        self.scanner.last = Some(Instant::now());
        for Scanned {
            plan,
            session,
            files,
        } in scanned
        {
            // A session that ended meanwhile keeps what it had; its files are released at
            // its merge.
            if !self.running.contains_key(&session) {
                continue;
            }
            for path in files {
                self.touch(plan, session, path);
            }
        }
    }
}
