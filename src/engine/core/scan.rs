//! Session diffs for the overlap map. The edits a session's events report (tool calls,
//! `file.edited`) miss what a shell command changes (`sed -i`, a code generator, `git
//! checkout`), so the worktrees of running sessions are asked what they changed since they were
//! made (`git diff` against their start, untracked files included). Only plans with two or more
//! sessions running, or one and a task to come that declares its `files` (held while a running
//! session touches them), are scanned, and only worktrees something says may have changed: a
//! session that finished a tool call or reported an edit since its last scan, or one not
//! scanned for [`FALLBACK`]. At most [`PER_SCAN`] at a time (those waiting longest first), two
//! git calls each (the worktree's base is read once per session), one scan at a time on a
//! blocking thread, and the next only [`SCAN_EVERY`] after the last ended: idle sessions cost
//! next to nothing, and the cost stays bounded however many sessions run. A session working on
//! a build box is asked through its runner instead (its server's diff of the session, in the
//! same batches): ocio cannot look in its worktree there.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use super::Core;
use super::merge::GitDone;
use super::workspace::blocking;
use crate::domain::{PlanId, SessionId};
use crate::engine::runner::ChangesFuture;
use crate::engine::view::Activity;
use crate::workspace::Workspace;

/// The pause between the end of one scan and the start of the next.
const SCAN_EVERY: Duration = Duration::from_secs(3);
/// Most worktrees one scan looks at.
const PER_SCAN: usize = 8;
/// A worktree nothing marked changed is still scanned this often (a change from outside the
/// session, or an event ocio missed).
const FALLBACK: Duration = Duration::from_secs(60);

/// Where the scans are. Times are the engine clock's.
#[derive(Default)]
pub(super) struct Scanner {
    /// When the last scan ended.
    last: Option<Timestamp>,
    busy: bool,
    /// Sessions whose worktrees may have changed since their last scan.
    dirty: HashSet<SessionId>,
    /// When each session's worktree was last scanned.
    scanned: HashMap<SessionId, Timestamp>,
    /// Each session's worktree base, once read.
    bases: HashMap<SessionId, String>,
}

/// What one session's worktree changed so far.
#[derive(Debug)]
pub(super) struct Scanned {
    plan: PlanId,
    session: SessionId,
    /// Its base, when this scan read it.
    base: Option<String>,
    files: Vec<String>,
}

/// One running session to scan.
struct Due {
    session: SessionId,
    plan: PlanId,
    look: Look,
}

/// Where a session's changes are read.
enum Look {
    /// Its worktree, with git (against its base, once read).
    Worktree {
        dir: PathBuf,
        base: Option<String>,
        workspace: Workspace,
    },
    /// Its build box, through its runner (the server's own diff of the session).
    Box(ChangesFuture),
}

impl Scanner {
    /// What `session` did may have changed its worktree.
    pub(super) fn mark(&mut self, session: SessionId, activity: &Activity) {
        let changing = match activity {
            Activity::Tool { status, .. } => status == "completed" || status == "error",
            Activity::Edited { .. } => true,
            _ => false,
        };
        if changing {
            self.dirty.insert(session);
        }
    }

    /// Whether the scanner is free and its pause since the last scan is over at `now`.
    fn ready(&self, now: Timestamp) -> bool {
        !self.busy && self.last.is_none_or(|last| since(last, now) >= SCAN_EVERY)
    }

    /// Of the `candidates`, those to scan at `now` (at most [`PER_SCAN`]): marked changed, never
    /// scanned, or not for [`FALLBACK`]; marked and never-scanned ones first, then the
    /// longest unscanned. They count as scanned from now, and unmarked.
    fn pick(&mut self, mut candidates: Vec<SessionId>, now: Timestamp) -> Vec<SessionId> {
        let last = |s: &SessionId| self.scanned.get(s).copied();
        candidates.retain(|s| {
            self.dirty.contains(s) || last(s).is_none_or(|at| since(at, now) >= FALLBACK)
        });
        candidates.sort_by_key(|s| {
            let urgent = self.dirty.contains(s) || last(s).is_none();
            (!urgent, last(s), *s)
        });
        candidates.truncate(PER_SCAN);
        for session in &candidates {
            self.dirty.remove(session);
            self.scanned.insert(*session, now);
        }
        candidates
    }

    /// Forgets sessions that no longer run.
    fn retain(&mut self, running: impl Fn(&SessionId) -> bool) {
        self.dirty.retain(&running);
        self.scanned.retain(|s, _| running(s));
        self.bases.retain(|s, _| running(s));
    }
}

fn since(then: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or(Duration::ZERO)
}

impl Core {
    /// Starts a scan if one is due and there is something to scan.
    pub(super) fn scan_worktrees(&mut self) {
        let now = self.now();
        if !self.scanner.ready(now) {
            return;
        }
        let running = &self.running;
        self.scanner.retain(|s| running.contains_key(s));
        let candidates = self.scan_candidates();
        let picked = self.scanner.pick(candidates, now);
        let due: Vec<Due> = picked.into_iter().filter_map(|s| self.due(s)).collect();
        if due.is_empty() {
            self.scanner.last = Some(now);
            return;
        }
        self.scanner.busy = true;
        let done = self.git_tx.clone();
        self.tasks.spawn(async move {
            let (boxes, worktrees): (Vec<Due>, Vec<Due>) = due
                .into_iter()
                .partition(|d| matches!(d.look, Look::Box(_)));
            let mut scanned = Vec::new();
            if !worktrees.is_empty() {
                let read = blocking(move || Ok(worktrees.into_iter().filter_map(scan).collect()));
                scanned = read.await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "worktree scan failed");
                    Vec::new()
                });
            }
            let asked = futures_util::future::join_all(boxes.into_iter().map(ask)).await;
            scanned.extend(asked.into_iter().flatten());
            let _ = done.send(GitDone::Scanned(scanned)).await;
        });
    }

    /// How to scan running `session`: its worktree, or (working on a build box) through its
    /// runner; `None` when neither can be read.
    fn due(&self, session: SessionId) -> Option<Due> {
        let run = self.running.get(&session)?;
        let look = match run.on_box() {
            Some(remote) => Look::Box(
                self.fleet
                    .runner(run.agent)
                    .changes(session, remote.clone())?,
            ),
            None => Look::Worktree {
                dir: run.overlap_dir.clone()?,
                base: self.scanner.bases.get(&session).cloned(),
                workspace: self.plans.get(&run.plan)?.work.workspace.clone()?,
            },
        };
        Some(Due {
            session,
            plan: run.plan,
            look,
        })
    }

    /// The running sessions whose changes may be scanned: those of plans where two sessions
    /// may overlap, or one may touch what a task to come declares (and is held off while a
    /// running session touches it).
    fn scan_candidates(&self) -> Vec<SessionId> {
        let mut by_plan: HashMap<PlanId, Vec<SessionId>> = HashMap::new();
        for run in self.running.values() {
            if run.overlap_dir.is_some() {
                by_plan.entry(run.plan).or_default().push(run.session.id);
            }
        }
        let mut candidates = Vec::new();
        for (plan, sessions) in by_plan {
            let Some(state) = self.plans.get(&plan) else {
                continue;
            };
            let declaring = || {
                state
                    .graph
                    .tasks()
                    .any(|task| !task.files.is_empty() && task.status.has_work_to_come())
            };
            if sessions.len() >= 2 || declaring() {
                candidates.extend(sessions);
            }
        }
        candidates
    }

    /// A scan ended: what running sessions changed goes into their plans' overlap maps.
    pub(super) fn on_scanned(&mut self, scanned: Vec<Scanned>) {
        self.scanner.busy = false;
        self.scanner.last = Some(self.now());
        for Scanned {
            plan,
            session,
            base,
            files,
        } in scanned
        {
            // A session that ended meanwhile keeps what it had; its files are released at
            // its merge.
            if !self.running.contains_key(&session) {
                continue;
            }
            if let Some(base) = base {
                self.scanner.bases.insert(session, base);
            }
            for path in files {
                self.touch(plan, session, path);
            }
        }
    }
}

/// One worktree's changes (on a blocking thread); `None` when it cannot be read: it may have
/// ended and its worktree gone meanwhile.
fn scan(due: Due) -> Option<Scanned> {
    let Due {
        session,
        plan,
        look: Look::Worktree {
            dir,
            base,
            workspace,
        },
    } = due
    else {
        return None;
    };
    let read = base.is_none();
    let found = match base {
        Some(base) => Ok(base),
        None => workspace.worktree_base(&dir),
    }
    .and_then(|base| Ok((workspace.touched_since(&dir, &base)?, base)));
    match found {
        Ok((files, base)) => Some(Scanned {
            plan,
            session,
            base: read.then_some(base),
            files,
        }),
        Err(e) => {
            tracing::debug!(%session, error = %e, "cannot scan a worktree");
            None
        }
    }
}

/// What a session on a build box changed, as its server tells; `None` when it cannot be
/// asked now (the next scan asks again).
async fn ask(due: Due) -> Option<Scanned> {
    let Look::Box(changes) = due.look else {
        return None;
    };
    match changes.await {
        Ok(changed) => Some(Scanned {
            plan: due.plan,
            session: due.session,
            base: None,
            files: changed.into_iter().map(|c| c.file).collect(),
        }),
        Err(e) => {
            tracing::debug!(session = %due.session, error = %e, "cannot ask a box what its session changed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sessions(n: u64) -> Vec<SessionId> {
        (0..n)
            .map(|i| SessionId::from_parts(1_000 + i, 0))
            .collect()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + seconds).unwrap()
    }

    fn completed(tool: &str) -> Activity {
        Activity::Tool {
            tool: tool.into(),
            status: "completed".into(),
            title: String::new(),
        }
    }

    #[test]
    fn an_idle_worktree_is_scanned_once_then_only_when_marked_or_after_the_fallback() {
        let running = sessions(2);
        let mut scanner = Scanner::default();
        assert_eq!(
            scanner.pick(running.clone(), at(0)),
            running,
            "never scanned"
        );
        for tick in 1..16 {
            assert!(scanner.pick(running.clone(), at(tick * 3)).is_empty());
        }
        scanner.mark(running[1], &completed("bash"));
        assert_eq!(scanner.pick(running.clone(), at(48)), [running[1]]);
        assert!(scanner.pick(running.clone(), at(51)).is_empty(), "unmarked");
        assert_eq!(
            scanner.pick(running.clone(), at(60)),
            [running[0]],
            "fallback"
        );
    }

    #[test]
    fn only_a_finished_tool_call_or_an_edit_marks_a_worktree() {
        let running = sessions(1);
        let mut scanner = Scanner::default();
        scanner.pick(running.clone(), at(0));
        let quiet = [
            Activity::Text { text: "hi".into() },
            Activity::Tool {
                tool: "bash".into(),
                status: "running".into(),
                title: String::new(),
            },
        ];
        for activity in &quiet {
            scanner.mark(running[0], activity);
        }
        assert!(scanner.pick(running.clone(), at(3)).is_empty());
        let file = "/w/a.rs".to_string();
        scanner.mark(running[0], &Activity::Edited { file });
        assert_eq!(scanner.pick(running.clone(), at(6)), running);
    }

    #[test]
    fn a_scan_takes_a_bounded_batch_marked_first_then_the_longest_unscanned() {
        let running = sessions(40);
        let mut scanner = Scanner::default();
        let mut scans = 0;
        let mut tick = 0;
        // Every worktree is scanned once, PER_SCAN at a time.
        while scanner.scanned.len() < running.len() {
            let picked = scanner.pick(running.clone(), at(tick));
            assert!(picked.len() <= PER_SCAN);
            scans += picked.len();
            tick += 3;
        }
        assert_eq!(scans, 40);
        // All busy at once: still PER_SCAN, the marked ones first.
        for session in &running {
            scanner.mark(*session, &completed("edit"));
        }
        let later = at(tick + 120);
        let picked = scanner.pick(running.clone(), later);
        assert_eq!(picked, running[..PER_SCAN]);
        scanner.retain(|s| *s != running[PER_SCAN]);
        let picked = scanner.pick(running[..PER_SCAN + 1].to_vec(), later);
        assert_eq!(picked, [running[PER_SCAN]], "forgotten: never scanned");
    }

    #[test]
    fn the_scanner_waits_its_pause_after_a_scan_by_the_engines_clock() {
        let mut scanner = Scanner {
            last: Some(at(0)),
            ..Scanner::default()
        };
        assert!(!scanner.ready(at(2)));
        assert!(scanner.ready(at(3)));
        scanner.busy = true;
        assert!(!scanner.ready(at(30)));
    }
}
