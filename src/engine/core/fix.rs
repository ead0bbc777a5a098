//! Fix sessions (`on_check_failure = "fix"`): the plan's check failed after a task's merge, so
//! a session gets the check's output and works on top of the merge in the integration
//! worktree while the plan's merge lock stays taken. When it completes, its work is committed
//! and the check runs again ([`super::gate`]); when it fails or is cancelled, the merge is
//! undone and the task waits for the operator. The state (`MergeState::Fixing`: the command,
//! its output, the fix's number and the commit before the merge) is durable, so a restart
//! re-attaches the session or starts the fix again.

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::gate::{CheckJob, Gate};
use super::merge::{Aside, GitDone, start_aside};
use super::workspace::{Place, blocking};
use super::{Core, Role, Running, Step, context};
use crate::domain::task::CheckFailurePolicy;
use crate::domain::{MergeState, PlanId, SessionKind, SessionStatus, Task, TaskStatus};
use crate::engine::EngineError;
use crate::engine::runner::{Job, Reporter};
use crate::workspace::names;

/// A fix session's end, to act on once it is durable.
pub(super) struct FixEnd {
    plan: PlanId,
    key: String,
    /// Why it did not complete; `None` when it did.
    failure: Option<String>,
    cancelled: bool,
}

/// Git's side of a fix session's end: its work committed and checked (`gate`), or, when it
/// failed or its work cannot be committed, the merge undone.
async fn after_fix(mut gate: Gate, end: FixEnd, done: mpsc::Sender<GitDone>) {
    let before = gate.before.clone().unwrap_or_default();
    let fix = gate.fix.unwrap_or(1);
    let (ws, pk, task) = (
        gate.workspace.clone(),
        gate.plan_key.clone(),
        end.key.clone(),
    );
    let why = match end.failure {
        Some(why) => why,
        None => {
            let message = format!(
                "Fix `{}` after merging {task}\n\nOcio-Task: {pk}/{task} (fix {fix})",
                gate.check.command
            );
            let (ws, pk) = (ws.clone(), pk.clone());
            let committed = blocking(move || {
                ws.commit_integration(&pk, &message)?;
                ws.head(&ws.integration_path(&pk))
            })
            .await;
            match committed {
                Ok(commit) => {
                    gate.commit = commit;
                    return gate.run(done).await;
                }
                // Checking uncommitted edits would pass a check on work that is not on the
                // branch: the fix failed, and the merge is undone.
                Err(e) => format!("fix session {fix}'s work could not be committed: {e}"),
            }
        }
    };
    let undone = blocking(move || ws.undo_merge(&pk, &task, &before)).await;
    let ended = GitDone::FixFailed {
        plan: end.plan,
        key: end.key,
        why,
        undone,
        cancelled: end.cancelled,
    };
    let _ = done.send(ended).await;
}

impl FixEnd {
    /// The operator cancelled the task while its fix waited for an agent.
    pub(super) fn cancelled(plan: PlanId, key: &str) -> Self {
        Self {
            plan,
            key: key.to_string(),
            failure: Some("cancelled by the operator before a fix session took it".into()),
            cancelled: true,
        }
    }
}

/// The prompt of fix session for `task`, whose merge made `command` fail with `output`.
pub(super) fn fix_prompt(
    state: &super::plans::PlanState,
    task: &Task,
    command: &str,
    output: &str,
) -> String {
    let rendered = context::render(&state.graph, task);
    let integration = names::integration_branch(&state.work.work.key);
    let answer = task.result.as_deref().unwrap_or("(no answer)");
    format!(
        "You are in the integration worktree of plan \"{plan}\" (branch {integration}). Task \
         \"{key}\" was just merged here.\n\n## The task that was merged\n\n{rendered}\n\n\
         ## Its session's answer\n\n{answer}\n\n## What to do\n\nSince the merge, the \
         plan's check `{command}` fails. Its output ended:\n\n```\n{output}\n```\n\nMake \
         `{command}` pass: change what is needed in this worktree, keeping the task's intent. \
         Run the check yourself to see it pass. Do not run `git commit`, `git merge`, `git \
         reset` or `git checkout`: ocio commits your work and runs the check again.\n",
        plan = state.plan.name,
        key = task.key,
    )
}

impl Core {
    /// The check failed after `key`'s merge (policy `fix`): fix session `fix` waits for an
    /// agent; the plan's merges wait for it.
    pub(super) async fn start_fix(
        &mut self,
        plan: PlanId,
        key: &str,
        command: String,
        output: String,
        fix: u32,
        before: String,
    ) -> Result<(), EngineError> {
        let mut step = Step::default();
        let Some(state) = self.plans.get_mut(&plan) else {
            return Ok(());
        };
        let Some(task) = state.graph.get(key) else {
            return Ok(());
        };
        if let Some(context) = self.contexts.get_mut(&task.id) {
            context.merge = MergeState::Fixing {
                command,
                output,
                fix,
                before,
            };
            step.batch.put_context(context);
        }
        state.work.fixes.push_back(key.to_string());
        self.commit(step).await
    }

    /// Start fix sessions waiting for an agent, within the caps, into `step`.
    pub(super) fn start_fixers(
        &mut self,
        step: &mut Step,
        starts: &mut Vec<(Job, Place, Running)>,
        cap: usize,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        for (plan_id, state) in self.plans.iter_mut() {
            while let Some(key) = state.work.fixes.front().cloned() {
                if self.running.len() + starts.len() >= cap {
                    return Ok(());
                }
                let task = state
                    .graph
                    .get(&key)
                    .filter(|t| t.status == TaskStatus::Running);
                let fixing = task.and_then(|t| match self.contexts.get(&t.id).map(|c| &c.merge) {
                    Some(MergeState::Fixing {
                        command,
                        output,
                        fix,
                        ..
                    }) => Some((command.clone(), output.clone(), *fix)),
                    _ => None,
                });
                let (Some(task), Some(workspace), Some((command, output, fix))) =
                    (task, state.work.workspace.as_ref(), fixing)
                else {
                    state.work.fixes.pop_front();
                    continue;
                };
                let Some(index) = self.fleet.pick(task, Default::default(), None) else {
                    break;
                };
                if !self.fleet.take(index) {
                    break;
                }
                state.work.fixes.pop_front();
                let aside = Aside {
                    plan: *plan_id,
                    task,
                    kind: SessionKind::Fix,
                    title: format!("{}/{} fix {fix} #{}", state.plan.name, key, task.attempts),
                    prompt: fix_prompt(state, task, &command, &output),
                    directory: workspace.integration_path(&state.work.work.key),
                    role: Role::Fixer { fix },
                    agent: (index, self.fleet.agent(index).name.clone()),
                    parent: self.observed.latest.get(&task.id).copied(),
                    report: Reporter {
                        tx: self.report_tx.clone(),
                    },
                    questions: self.options.questions.offers_questions(),
                };
                starts.push(start_aside(step, aside, now)?);
            }
        }
        Ok(())
    }

    /// A fix session ended: its work checked, or the merge undone, once that is durable.
    pub(super) fn fixer_ended(&mut self, run: &Running, failure: Option<String>) {
        let cancelled = run.stopping == Some(SessionStatus::Cancelled);
        self.fix_ends.push(FixEnd {
            plan: run.plan,
            key: run.key.clone(),
            failure,
            cancelled,
        });
    }

    /// Act on fix sessions that ended (after their end is durable), on git's side.
    pub(super) fn finish_fixers(&mut self) {
        for end in std::mem::take(&mut self.fix_ends) {
            let Some(state) = self.plans.get(&end.plan) else {
                continue;
            };
            let Some(task) = state.graph.get(&end.key) else {
                continue;
            };
            let Some(MergeState::Fixing {
                command,
                fix,
                before,
                ..
            }) = self.contexts.get(&task.id).map(|c| c.merge.clone())
            else {
                continue;
            };
            let Some(workspace) = state.work.workspace.clone() else {
                continue;
            };
            let gate = Gate {
                plan: end.plan,
                key: end.key.clone(),
                plan_key: state.work.work.key.clone(),
                workspace,
                check: CheckJob {
                    command,
                    policy: CheckFailurePolicy::Fix,
                    plan_wide: false,
                },
                commit: String::new(), // the fix's commit, once made
                merged_now: true,
                cleanup: state.work.cleanup(self.options.cleanup),
                before: Some(before),
                fix: Some(fix),
                stop: CancellationToken::new(),
            };
            self.tasks.spawn(after_fix(gate, end, self.git_tx.clone()));
        }
    }

    /// A fix session did not complete: the merge was undone (or could not be), and the task
    /// waits for the operator.
    pub(super) async fn fix_failed(
        &mut self,
        plan: PlanId,
        key: &str,
        why: String,
        undone: Result<(), String>,
        cancelled: bool,
    ) -> Result<(), EngineError> {
        let task = self.plans.get(&plan).and_then(|s| s.graph.get(key));
        let Some(task_id) = task.map(|t| t.id) else {
            return Ok(());
        };
        if let Some(context) = self.contexts.get_mut(&task_id)
            && let MergeState::Fixing {
                command, output, ..
            } = context.merge.clone()
        {
            context.merge = MergeState::CheckFailed {
                command,
                output,
                policy: CheckFailurePolicy::Fix,
            };
        }
        let why = match undone {
            Ok(()) => format!("{why}; the merge was undone (the task's work is on its branch)"),
            Err(e) => format!("{why}; the merge could not be undone: {e}"),
        };
        let end = match cancelled {
            true => TaskStatus::Cancelled,
            false => TaskStatus::Failed,
        };
        self.park(plan, key, Vec::new(), None, why, end).await
    }
}
