//! The plan's check after each merge (`check = "cargo test"`, a task's own `check` first): run
//! in the integration worktree while the plan's merge lock is held, so it tests exactly that
//! merge. A failing check never leaves a broken integration branch behind silently; by the
//! plan's `on_check_failure`:
//!
//! - `revert` (the default): the merge is undone and the task runs again, told the check's
//!   output, at most [`MAX_CHECK_RERUNS`] times; then it waits for the operator.
//! - `fix`: a fix session gets the output and works on top of the merge in the integration
//!   worktree; its work is committed and checked again, at most [`MAX_FIXES`] sessions; then
//!   the merge (and the fixes) are undone and the task waits for the operator.
//! - `manual`: the merge is undone and the task waits for the operator.
//!
//! A task whose attempt changed nothing merges nothing and is not checked. The check's output
//! is passed on as it comes (throttled) so the room can show a long check's progress.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::merge::GitDone;
use super::workspace::{blocking, tidy_merged};
use super::{Core, Step};
use crate::domain::task::{CheckFailurePolicy, PlanSettings};
use crate::domain::{MergeState, PlanId, Task, TaskContext, TaskId, TaskStatus};
use crate::engine::shell::{self, ShellEnd, ShellRun};
use crate::engine::{EngineError, EngineEvent};
use crate::workspace::{CleanupPolicy, Workspace};

/// Runs again after a failing check (`revert`) before the task waits for the operator.
pub const MAX_CHECK_RERUNS: u32 = 3;
/// Fix sessions for one merge (`fix`) before it is undone and the task waits.
pub const MAX_FIXES: u32 = 2;
/// How long a check may run.
const CHECK_LIMIT: Duration = Duration::from_secs(60 * 60);
/// Why a passing check does not count.
const LOST: &str = "the integration branch no longer holds the task's work (its merge was undone, or a session reset the branch)";
/// How often a running check's newest output line is passed on.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The check a task's merge gets.
#[derive(Debug, Clone)]
pub(super) struct CheckJob {
    pub(super) command: String,
    pub(super) policy: CheckFailurePolicy,
    /// The plan's check (which the branch passed before this merge), not a task's own (which
    /// may well fail without the task's work).
    pub(super) plan_wide: bool,
}

impl CheckJob {
    /// The task's own `check`, else the plan's; none for an attempt that changed nothing.
    pub(super) fn for_task(
        settings: &PlanSettings,
        task: &Task,
        context: Option<&TaskContext>,
    ) -> Option<Self> {
        let plan_wide = task.check.is_none();
        let command = task.check.clone().or_else(|| settings.check.clone())?;
        context.is_none_or(|c| c.commit.is_some()).then_some(Self {
            command,
            policy: settings.on_check_failure,
            plan_wide,
        })
    }
}

/// A merge (or a fix on top of it) to check, and where.
pub(super) struct Gate {
    pub(super) plan: PlanId,
    pub(super) key: String,
    pub(super) plan_key: String,
    pub(super) workspace: Workspace,
    pub(super) check: CheckJob,
    /// The integration branch's commit after the merge (or the fix).
    pub(super) commit: String,
    pub(super) merged_now: bool,
    pub(super) cleanup: CleanupPolicy,
    /// The integration branch's commit ahead of the merge, when known (a fix knows it).
    pub(super) before: Option<String>,
    /// The fix session whose work this checks.
    pub(super) fix: Option<u32>,
    /// Cancelled when the operator cancels the task while its check runs.
    pub(super) stop: CancellationToken,
}

/// What the check after a merge (or a fix) found and what was done about it.
#[derive(Debug)]
pub(super) struct Checked {
    pub(super) plan: PlanId,
    pub(super) key: String,
    pub(super) command: String,
    pub(super) policy: CheckFailurePolicy,
    pub(super) commit: String,
    pub(super) merged_now: bool,
    pub(super) run: ShellRun,
    pub(super) before: Option<String>,
    pub(super) fix: Option<u32>,
    /// For a failure that is not left to a (further) fix session: whether the merge was
    /// undone, or why not.
    pub(super) undone: Option<Result<(), String>>,
    /// The operator cancelled the task while the check ran (it was stopped, the merge undone).
    pub(super) cancelled: bool,
    /// The merge undone, the check failed on the integration branch without the task's work
    /// too: the branch is red, not the task's doing.
    pub(super) red_without: bool,
}

impl Gate {
    /// Whether a failure is settled by undoing the merge rather than by a fix session: not
    /// under `fix`, fixes used up, a check that could not even start (no session can fix
    /// that), or no known commit to undo the merge to later.
    fn undoes(&self, run: &ShellRun, before: Option<&str>) -> bool {
        self.stop.is_cancelled()
            || self.check.policy != CheckFailurePolicy::Fix
            || self.fix.unwrap_or(0) >= MAX_FIXES
            || matches!(run.end, ShellEnd::NotStarted(_))
            || before.is_none()
    }

    /// Runs the check and what follows it on git's side; reports each step on `done`.
    pub(super) async fn run(self, done: mpsc::Sender<GitDone>) {
        let (plan, key, command) = (self.plan, self.key.clone(), self.check.command.clone());
        let _ = done
            .send(GitDone::Checking {
                plan,
                key: key.clone(),
                command: command.clone(),
                stop: self.stop.clone(),
            })
            .await;
        let before = match self.before.clone() {
            Some(before) => Some(before),
            None => {
                let (ws, p, t) = (self.workspace.clone(), self.plan_key.clone(), key.clone());
                blocking(move || ws.before_merge_of(&p, &t))
                    .await
                    .ok()
                    .flatten()
            }
        };
        let dir = self.workspace.integration_path(&self.plan_key);
        let env = [
            ("OCIO_PLAN", self.plan_key.clone()),
            ("OCIO_TASK", key.clone()),
            ("OCIO_REPO", self.workspace.repo().display().to_string()),
            ("OCIO_WORKTREE", dir.display().to_string()),
        ];
        let (lines, progress) = mpsc::channel(256);
        let forwarding = tokio::spawn(forward_progress(plan, key.clone(), progress, done.clone()));
        let check = shell::run(&command, &dir, &env, CHECK_LIMIT, Some(lines));
        let mut run = tokio::select! {
            run = check => run,
            // Dropping the run kills the check's process group.
            () = self.stop.cancelled() => ShellRun {
                end: ShellEnd::Failed("stopped: the operator cancelled the task".into()),
                tail: String::new(),
            },
        };
        // Its last line goes out before the end (the sender is gone with the run).
        let _ = forwarding.await;
        let (undone, lost) = self.after(&run, before.as_deref()).await;
        if let Some(lost) = lost {
            // Passed, but not on the task's work: it is not merged any more.
            run.end = ShellEnd::Failed(lost);
        }
        // Undone after a failure of its own: does the branch pass without the task's work? If
        // not, the branch is red and running the task again cannot help.
        let red_without = match (&undone, &run.end, self.stop.is_cancelled()) {
            (Some(Ok(())), ShellEnd::Failed(_) | ShellEnd::TimedOut(_), false)
                if self.fix.is_none() && self.check.plan_wide =>
            {
                let again = shell::run(&command, &dir, &env, CHECK_LIMIT, None).await;
                let (ws, pk) = (self.workspace.clone(), self.plan_key.clone());
                if let Err(e) = blocking(move || ws.tidy_integration(&pk)).await {
                    tracing::warn!(error = %e, "cannot tidy the integration worktree");
                }
                !again.passed()
            }
            _ => false,
        };
        let checked = Checked {
            plan,
            key,
            command,
            policy: self.check.policy,
            commit: self.commit,
            merged_now: self.merged_now,
            run,
            before,
            fix: self.fix,
            undone,
            cancelled: self.stop.is_cancelled(),
            red_without,
        };
        let _ = done.send(GitDone::Checked(Box::new(checked))).await;
    }

    /// Git's side of the check's end: the worktree tidied; a passed merge's task worktree let
    /// go, a failed one undone (unless a fix session is to work on it). Also, for a pass, why
    /// it does not count: the integration branch no longer holds the task's work (a session
    /// reset it, or a restart found the merge undone).
    async fn after(
        &self,
        run: &ShellRun,
        before: Option<&str>,
    ) -> (Option<Result<(), String>>, Option<String>) {
        let (ws, plan_key, task) = (
            self.workspace.clone(),
            self.plan_key.clone(),
            self.key.clone(),
        );
        let policy = self.cleanup;
        let passed = run.passed();
        let undo = (!passed && self.undoes(run, before)).then(|| before.map(str::to_string));
        let ended = blocking(move || {
            ws.tidy_integration(&plan_key)?;
            if passed {
                if ws.holds_task(&plan_key, &task)? == Some(false) {
                    return Ok((Some(Err(LOST.to_string())), Some(LOST.to_string())));
                }
                tidy_merged(&ws, &plan_key, &task, policy);
            }
            Ok((
                match undo {
                    None => None,
                    Some(None) => Some(Err(
                        "the integration branch's commit before the merge is not known".into(),
                    )),
                    Some(Some(before)) => Some(
                        ws.undo_merge(&plan_key, &task, &before)
                            .map_err(|e| e.to_string()),
                    ),
                },
                None,
            ))
        })
        .await;
        ended.unwrap_or_else(|e| ((!passed).then_some(Err(e)), None))
    }
}

/// Passes the newest output line on at most every [`PROGRESS_EVERY`].
async fn forward_progress(
    plan: PlanId,
    key: String,
    mut lines: mpsc::Receiver<String>,
    done: mpsc::Sender<GitDone>,
) {
    let mut last_sent = tokio::time::Instant::now() - PROGRESS_EVERY;
    let mut pending: Option<String> = None;
    loop {
        let wait =
            (last_sent + PROGRESS_EVERY).saturating_duration_since(tokio::time::Instant::now());
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => pending = Some(line),
                None => break,
            },
            _ = tokio::time::sleep(wait), if pending.is_some() => {}
        }
        if pending.is_some() && last_sent.elapsed() >= PROGRESS_EVERY {
            let line = pending.take().unwrap_or_default();
            last_sent = tokio::time::Instant::now();
            let progress = GitDone::CheckProgress {
                plan,
                key: key.clone(),
                line,
            };
            if done.try_send(progress).is_err() {
                continue; // the engine is busy: a later line will do
            }
        }
    }
}

impl Core {
    /// The check's end, as git's side left it: the task merged, run again, left for a fix
    /// session, or waiting for the operator.
    pub(super) async fn on_checked(&mut self, checked: Checked) -> Result<(), EngineError> {
        let (plan, key) = (checked.plan, checked.key.clone());
        let Some(task) = self.plans.get(&plan).and_then(|s| s.graph.get(&key)) else {
            return Ok(());
        };
        let task_id = task.id;
        self.checking.remove(&task_id);
        if let Some(state) = self.plans.get_mut(&plan) {
            state.work.checking = None;
        }
        let (command, run) = (&checked.command, &checked.run);
        self.events.tell(EngineEvent::CheckEnded {
            plan,
            task: task_id,
            key: key.clone(),
            command: command.clone(),
            passed: run.passed(),
            report: crate::text::clip_end(&run.report(command), 4000),
            fix: checked.fix,
        });
        if !run.passed() {
            return self.check_failed(task_id, checked).await;
        }
        let cause = match checked.fix {
            None => format!("merged into the integration branch; `{command}` passed"),
            Some(n) => format!("merged; `{command}` passed after fix session {n}"),
        };
        let (commit, merged_now) = (checked.commit, checked.merged_now);
        self.merged(plan, &key, commit, &cause, merged_now).await
    }

    /// A failed check: a fix session, a rerun, or the task waiting for the operator.
    async fn check_failed(&mut self, task_id: TaskId, checked: Checked) -> Result<(), EngineError> {
        let Checked {
            plan,
            key,
            command,
            policy,
            run,
            before,
            fix,
            undone,
            cancelled,
            red_without,
            ..
        } = checked;
        let output = crate::text::clip_end(&run.tail, 4000);
        let undone_text = |undone: &Option<Result<(), String>>| match undone {
            Some(Ok(())) => "the merge was undone (its work is on the task's branch)".to_string(),
            Some(Err(e)) => format!("the merge could not be undone: {e}"),
            None => "the merge stands".to_string(),
        };
        let parked = match (&run.end, &undone) {
            _ if cancelled => Some((
                format!(
                    "cancelled by the operator while its check ran; {}",
                    undone_text(&undone)
                ),
                TaskStatus::Cancelled,
            )),
            // Not the task's doing: running it again cannot help.
            _ if red_without => Some((
                format!(
                    "`{command}` failed after its merge and, the merge undone, fails on the integration branch without the task's work too: the branch (or the check) is broken, not the task; fix that, then retry the task"
                ),
                TaskStatus::Failed,
            )),
            // Not the task's doing: no rerun or fix session can help.
            (ShellEnd::NotStarted(why), _) => Some((
                format!(
                    "the check `{command}` could not start ({why}); {}",
                    undone_text(&undone)
                ),
                TaskStatus::Failed,
            )),
            (end, Some(Err(why))) => Some((
                match *end == ShellEnd::Failed(LOST.into()) {
                    true => format!("{LOST}, so `{command}` passing does not count"),
                    false => format!(
                        "`{command}` failed after its merge, and the merge could not be undone: {why}"
                    ),
                },
                TaskStatus::Failed,
            )),
            _ => None,
        };
        if let Some((why, end)) = parked {
            self.set_check_failed(task_id, command, output, policy);
            return self.park(plan, &key, Vec::new(), None, why, end).await;
        }
        if undone.is_none() {
            let fix = fix.map_or(1, |n| n + 1);
            // A fix is only started with `before` known (see `Gate::undoes`).
            let before = before.unwrap_or_default();
            return self
                .start_fix(plan, &key, command, output, fix, before)
                .await;
        }
        let reruns = self.contexts.get(&task_id).map_or(0, |c| c.check_reruns);
        self.set_check_failed(task_id, command.clone(), output, policy);
        if policy == CheckFailurePolicy::Revert && reruns < MAX_CHECK_RERUNS {
            return self.rerun_after_check(plan, &key, &command, reruns).await;
        }
        let why = match (policy, fix) {
            (CheckFailurePolicy::Revert, _) => format!(
                "`{command}` still failed after the task ran again {MAX_CHECK_RERUNS} times; the merge was undone (its work is on the task's branch)"
            ),
            (CheckFailurePolicy::Fix, Some(n)) => format!(
                "`{command}` still failed after {n} fix sessions; the merge and the fixes were undone (the task's work is on its branch)"
            ),
            _ => format!(
                "`{command}` failed after its merge, which was undone (its work is on the task's branch; on_check_failure = \"manual\")"
            ),
        };
        self.park(plan, &key, Vec::new(), None, why, TaskStatus::Failed)
            .await
    }

    /// The check started (`text`: its command) or printed line `text`: told, and kept for
    /// snapshots.
    pub(super) fn on_checking(&mut self, plan: PlanId, key: &str, text: String, started: bool) {
        let Some(task) = self.plans.get(&plan).and_then(|s| s.graph.get(key)) else {
            return;
        };
        let task_id = task.id;
        self.checking.insert(task_id, text.clone());
        let key = key.to_string();
        self.events.tell(match started {
            true => EngineEvent::CheckStarted {
                plan,
                task: task_id,
                key,
                command: text,
            },
            false => EngineEvent::CheckProgress {
                plan,
                key,
                line: text,
            },
        });
    }

    fn set_check_failed(
        &mut self,
        task: TaskId,
        command: String,
        output: String,
        policy: CheckFailurePolicy,
    ) {
        if let Some(context) = self.contexts.get_mut(&task) {
            context.merge = MergeState::CheckFailed {
                command,
                output,
                policy,
            };
        }
    }

    /// The merge was undone: the task runs again on top of the integration branch, its next
    /// prompt telling it the check's output.
    async fn rerun_after_check(
        &mut self,
        plan: PlanId,
        key: &str,
        command: &str,
        reruns: u32,
    ) -> Result<(), EngineError> {
        let cause = format!(
            "`{command}` failed after its merge, which was undone: runs again, told the output (rerun {} of {MAX_CHECK_RERUNS})",
            reruns + 1
        );
        self.run_again_on_top(plan, key, Step::default(), cause, |context| {
            context.check_reruns = reruns + 1;
        })
        .await
    }
}
