//! Merging finished tasks into their plan's integration branch, one at a time per plan under
//! the `merge:<plan>` lock, and what follows a conflict, by the plan's `conflicts` policy:
//!
//! - `retry`: the merge is aborted and the task runs again on top of the integration branch,
//!   told what conflicted. A conflict rerun needs no `retries` left (a conflict is not the
//!   task's failure), but it is an attempt like any other (so it counts in `attempts`, which a
//!   later failure's automatic retries are measured against), and a task gets at most
//!   [`MAX_CONFLICT_RERUNS`]; after that it is parked as with `manual`.
//! - `resolver`: the merge is left in progress in the integration worktree and a resolver
//!   session works there; when it completes the merge is concluded, otherwise aborted and the
//!   task parked.
//! - `manual`: the merge is aborted and the task fails naming the files (the snapshot's
//!   conflicts queue lists it); the operator settles it and retries the task, which then runs
//!   again on top of the integration branch.
//!
//! Git runs on blocking threads and reports back over the engine's git channel.

use jiff::Timestamp;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::gate::{CheckJob, Gate};
use super::plans::PlanState;
use super::workspace::{MergeEnd, Place, blocking, merge_task, tidy_merged};
use super::{Core, Role, Running, Step, context, new_session, persist_changed_tasks};
use crate::domain::task::ConflictPolicy;
use crate::domain::{
    CheckpointKind, PlanId, SessionKind, SessionStatus, Task, TaskStatus, Transition,
};
use crate::domain::{MergeState, TaskContext};
use crate::engine::runner::{Job, Reporter};
use crate::engine::{EngineError, EngineEvent};
use crate::workspace::conflict::{ResolverBrief, resolver_prompt};
use crate::workspace::{OnConflict, names};

/// The prompt of the resolver session for `task`'s conflicts in `files`.
pub(super) fn resolver_prompt_of(state: &PlanState, task: &Task, files: &[String]) -> String {
    let plan_key = &state.work.work.key;
    let rendered = context::render(&state.graph, task);
    resolver_prompt(&ResolverBrief {
        plan: &state.plan.name,
        task: &task.key,
        branch: &names::task_branch(plan_key, &task.key),
        integration_branch: &names::integration_branch(plan_key),
        files,
        task_prompt: &rendered,
        task_summary: task.result.as_deref(),
        landing: false,
    })
}

/// A task's merge on git's side, then the plan's check when it has one.
struct MergeJob {
    plan: PlanId,
    key: String,
    workspace: crate::workspace::Workspace,
    plan_key: String,
    on_conflict: OnConflict,
    policy: crate::workspace::CleanupPolicy,
    check: Option<CheckJob>,
}

impl MergeJob {
    async fn run(self, done: mpsc::Sender<GitDone>) {
        let MergeJob {
            plan,
            key,
            workspace,
            plan_key,
            on_conflict,
            policy,
            check,
        } = self;
        let (task, ws, pk) = (key.clone(), workspace.clone(), plan_key.clone());
        // A checked merge keeps its task's worktree until the check passed.
        let tidy = check.is_none();
        let merged = blocking(move || {
            // Where the branch was: what a merge that fails the check is undone to.
            let before = ws.branch_tip(&names::integration_branch(&pk)).ok();
            let end = merge_task(&ws, &pk, &task, on_conflict, policy, tidy)?;
            Ok((end, before))
        })
        .await;
        let (end, before) = merged.unwrap_or_else(|error| (MergeEnd::Failed { error }, None));
        let (commit, merged_now, before, check) = match (&end, check) {
            (MergeEnd::Merged { commit }, Some(check)) => (commit.clone(), true, before, check),
            // Merged before a restart: where it was before is found from the merge.
            (MergeEnd::UpToDate { commit }, Some(check)) => (commit.clone(), false, None, check),
            _ => {
                let _ = done.send(GitDone::Merge { plan, key, end }).await;
                return;
            }
        };
        let gate = Gate {
            plan,
            key,
            plan_key,
            workspace,
            check,
            commit,
            merged_now,
            cleanup: policy,
            before,
            fix: None,
            stop: CancellationToken::new(),
        };
        gate.run(done).await;
    }
}

/// A session beside a task's own in the integration worktree (a resolver, a fix), before it
/// starts.
pub(super) struct Aside<'a> {
    pub(super) plan: PlanId,
    pub(super) task: &'a Task,
    pub(super) kind: SessionKind,
    pub(super) title: String,
    pub(super) prompt: String,
    pub(super) directory: std::path::PathBuf,
    pub(super) role: Role,
    /// The agent's position and name (its slot already taken).
    pub(super) agent: (usize, crate::domain::AgentName),
    /// The session whose work it works on.
    pub(super) parent: Option<crate::domain::SessionId>,
    pub(super) report: Reporter,
    pub(super) questions: bool,
}

/// Starts `aside` into `step`: its session made, its prompt checkpointed and its dispatch
/// told; the run, for the round to start.
pub(super) fn start_aside(
    step: &mut Step,
    aside: Aside<'_>,
    now: Timestamp,
) -> Result<(Job, Place, Running), EngineError> {
    let Aside {
        plan,
        task,
        kind,
        title,
        prompt,
        directory,
        role,
        agent: (index, agent),
        parent,
        report,
        questions,
    } = aside;
    let attempt = task.attempts;
    let mut session = new_session(step, title, kind, plan, task, agent.clone(), attempt, now)?;
    session.parent = parent;
    session.max_duration = task.timeout;
    let (steer, steering) = crate::engine::runner::Steering::channel();
    let job = Job {
        reporter: report,
        session: session.id,
        title: session.title.clone(),
        prompt,
        task_key: task.key.clone(),
        attempt,
        directory,
        adopt: false,
        questions,
        steering,
        word: None,
        said: Vec::new(),
        streamed: None,
        setup: Default::default(),
    };
    let handed =
        serde_json::json!({ "agent": agent, "prompt": crate::text::clip(&job.prompt, 4000) });
    step.batch
        .put_checkpoint(&session.checkpoint(CheckpointKind::PromptSent, handed, now));
    step.batch.put_session(&session);
    step.events.push(EngineEvent::Dispatched {
        plan,
        task: task.id,
        key: task.key.clone(),
        session: session.id,
        agent,
        attempt,
    });
    let mut run = Running::new(session, plan, task.key.clone(), index, role);
    run.steer = Some(steer);
    Ok((job, Place::AsIs, run))
}

/// Reruns after merge conflicts a task gets before it is parked for the operator.
pub const MAX_CONFLICT_RERUNS: u32 = 3;

/// What a git job of the engine found.
#[derive(Debug)]
pub(super) enum GitDone {
    /// A task's merge ended.
    Merge {
        plan: PlanId,
        key: String,
        end: MergeEnd,
    },
    /// A resolver's merge concluded or was abandoned.
    Resolved {
        plan: PlanId,
        key: String,
        files: Vec<String>,
        end: ResolvedEnd,
        /// The operator cancelled the task while its resolver ran.
        cancelled: bool,
    },
    /// What running sessions' worktrees changed (a scan for the overlap map).
    Scanned(Vec<super::scan::Scanned>),
    /// The plan's check started after a task's merge; `stop` stops it.
    Checking {
        plan: PlanId,
        key: String,
        command: String,
        stop: CancellationToken,
    },
    /// The newest line the check printed.
    CheckProgress {
        plan: PlanId,
        key: String,
        line: String,
    },
    /// The check ended, and git's side of what follows is done.
    Checked(Box<super::gate::Checked>),
    /// A fix session did not complete (why); the merge was undone, or could not be.
    FixFailed {
        plan: PlanId,
        key: String,
        why: String,
        undone: Result<(), String>,
        cancelled: bool,
    },
    /// A plan's landing's git work ended.
    Landed(Box<super::land::LandDone>),
}

/// How the merge a resolver session worked on ended.
#[derive(Debug)]
pub(super) enum ResolvedEnd {
    /// The resolver's work was committed: the merge commit.
    Concluded { commit: String },
    /// Given up (why), the merge aborted cleanly.
    Abandoned { why: String },
    /// Given up (why), and the merge could not be aborted: the plan's next merge cannot start
    /// until someone looks.
    Stuck { why: String },
}

/// A resolver session's end, to act on once it is durable.
pub(super) struct ResolverEnd {
    plan: PlanId,
    key: String,
    files: Vec<String>,
    /// Why it did not complete; `None` when it did.
    failure: Option<String>,
    /// The operator cancelled the task while its resolver ran.
    cancelled: bool,
}

/// What cancelling a task did to its merge, when its session has ended and the task waits
/// for its work to be merged.
pub(super) enum CancelledMerge {
    /// The task had no merge waiting or under way.
    None,
    /// It was waiting in its plan's merge queue: taken out, its files and locks released.
    Dequeued,
    /// Its conflicts were waiting for a resolver session: the merge is being abandoned, and
    /// the task ends cancelled when that is done.
    Abandoning,
    /// Git is merging it right now.
    Merging,
}

impl Core {
    /// Cancelling `key`, whose session has ended: out of the merge queue, or its waiting
    /// resolver given up (the merge aborted, then the task parked as cancelled).
    pub(super) fn cancel_merge(
        &mut self,
        plan: PlanId,
        key: &str,
        step: &mut Step,
    ) -> CancelledMerge {
        let Some(state) = self.plans.get_mut(&plan) else {
            return CancelledMerge::None;
        };
        let work = &mut state.work;
        if let Some(at) = work.resolvers.iter().position(|(k, _)| k == key) {
            let files = work
                .resolvers
                .remove(at)
                .map(|(_, f)| f)
                .unwrap_or_default();
            self.resolver_ends.push(ResolverEnd {
                plan,
                key: key.to_string(),
                files,
                failure: Some("cancelled by the operator before a resolver session took it".into()),
                cancelled: true,
            });
            self.finish_resolvers();
            return CancelledMerge::Abandoning;
        }
        if let Some(at) = work.fixes.iter().position(|k| k == key) {
            work.fixes.remove(at);
            self.fix_ends.push(super::fix::FixEnd::cancelled(plan, key));
            self.finish_fixers();
            return CancelledMerge::Abandoning;
        }
        if let Some((_, stop)) = work.checking.as_ref().filter(|(k, _)| k == key) {
            // Its check runs: stopped, the merge undone, the task parked as cancelled.
            stop.cancel();
            return CancelledMerge::Abandoning;
        }
        if work.merging.as_deref() == Some(key) {
            return CancelledMerge::Merging;
        }
        if let Some(at) = work.merges.iter().position(|k| k == key) {
            work.merges.remove(at);
            self.end_merge(plan, key, step);
            return CancelledMerge::Dequeued;
        }
        CancelledMerge::None
    }

    /// Start the next merge of every plan that has one waiting and none under way.
    pub(super) async fn pump_merges(&mut self) -> Result<(), EngineError> {
        let now = self.now();
        let mut step = Step::default();
        let mut jobs = Vec::new();
        for (id, state) in self.plans.iter_mut() {
            let work = &mut state.work;
            // A landing's resolver may be settling the moved base in the integration worktree.
            if work.merging.is_some() || work.merges.is_empty() || self.landing.contains(id) {
                continue;
            }
            let Some(workspace) = work.workspace.clone() else {
                continue;
            };
            while let Some(key) = work.merges.pop_front() {
                let Some(task) = state
                    .graph
                    .get(&key)
                    .filter(|t| t.status == TaskStatus::Running)
                else {
                    continue; // cancelled while it waited
                };
                let names = [format!("merge:{}", work.work.key)];
                let Some(leases) = self.locks.try_acquire(&task.id.to_string(), &names, now) else {
                    work.merges.push_front(key);
                    break;
                };
                for lease in &leases {
                    step.batch.put_lease(lease);
                }
                work.merging = Some(key.clone());
                let on_conflict = match work.work.settings.conflicts {
                    ConflictPolicy::Resolver => OnConflict::Leave,
                    _ => OnConflict::Abort,
                };
                jobs.push(MergeJob {
                    plan: *id,
                    key,
                    workspace,
                    plan_key: work.work.key.clone(),
                    on_conflict,
                    policy: work.cleanup(self.options.cleanup),
                    check: CheckJob::for_task(
                        &work.work.settings,
                        task,
                        self.contexts.get(&task.id),
                    ),
                });
                break;
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        self.commit(step).await?;
        for job in jobs {
            self.tasks.spawn(job.run(self.git_tx.clone()));
        }
        Ok(())
    }

    pub(super) async fn on_git(&mut self, done: GitDone) -> Result<(), EngineError> {
        match done {
            GitDone::Scanned(scanned) => {
                self.on_scanned(scanned);
                Ok(())
            }
            GitDone::Checking {
                plan,
                key,
                command,
                stop,
            } => {
                if let Some(state) = self.plans.get_mut(&plan) {
                    state.work.checking = Some((key.clone(), stop));
                }
                self.on_checking(plan, &key, command, true);
                Ok(())
            }
            GitDone::CheckProgress { plan, key, line } => {
                self.on_checking(plan, &key, line, false);
                Ok(())
            }
            GitDone::Checked(checked) => self.on_checked(*checked).await,
            GitDone::FixFailed {
                plan,
                key,
                why,
                undone,
                cancelled,
            } => self.fix_failed(plan, &key, why, undone, cancelled).await,
            GitDone::Landed(done) => self.on_landed(*done).await,
            GitDone::Merge { plan, key, end } => match end {
                MergeEnd::Merged { commit } => {
                    let cause = "merged into the integration branch";
                    self.merged(plan, &key, commit, cause, true).await
                }
                // Nothing to merge: the attempt changed nothing (or, after a restart, its
                // merge was done before it was recorded).
                MergeEnd::UpToDate { commit } => {
                    let cause = "merged into the integration branch";
                    self.merged(plan, &key, commit, cause, false).await
                }
                MergeEnd::Conflicted { files } => self.conflicted(plan, &key, files).await,
                MergeEnd::Failed { error } => {
                    let why = format!("the merge failed: {}", crate::text::clip(&error, 2000));
                    self.park(plan, &key, Vec::new(), None, why, TaskStatus::Failed)
                        .await
                }
            },
            GitDone::Resolved {
                plan,
                key,
                files,
                end,
                cancelled,
            } => match end {
                ResolvedEnd::Concluded { commit } => {
                    self.merged(plan, &key, commit, "merged after a resolver session", true)
                        .await
                }
                // A merge that could not be aborted is a failure whatever the operator asked:
                // the next merge of the plan cannot start until someone looks.
                ResolvedEnd::Abandoned { why } if cancelled => {
                    let policy = Some(ConflictPolicy::Resolver);
                    let end = TaskStatus::Cancelled;
                    self.park(plan, &key, files, policy, why, end).await
                }
                ResolvedEnd::Abandoned { why } | ResolvedEnd::Stuck { why } => {
                    let policy = Some(ConflictPolicy::Resolver);
                    let end = TaskStatus::Failed;
                    self.park(plan, &key, files, policy, why, end).await
                }
            },
        }
    }

    /// The merge is over: its lock goes back and the task's files leave the overlap map.
    pub(super) fn end_merge(&mut self, plan: PlanId, key: &str, step: &mut Step) {
        let Some(state) = self.plans.get_mut(&plan) else {
            return;
        };
        if state.work.merging.as_deref() == Some(key) {
            state.work.merging = None;
        }
        if let Some(session) = state.work.awaiting.remove(key) {
            state.work.overlap.release(session);
        }
        if let Some(task) = state.graph.get(key) {
            for resource in self.locks.release(&task.id.to_string()) {
                step.batch.remove_lease(&resource);
            }
        }
    }

    pub(super) async fn merged(
        &mut self,
        plan: PlanId,
        key: &str,
        commit: String,
        cause: &str,
        merged_now: bool,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let mut step = Step::default();
        self.end_merge(plan, key, &mut step);
        let Some(state) = self.plans.get_mut(&plan) else {
            return Ok(());
        };
        let Some(task) = state
            .graph
            .get(key)
            .filter(|t| t.status == TaskStatus::Running)
        else {
            tracing::warn!(task = key, "merged, but the task was no longer running");
            return self.commit(step).await;
        };
        let task_id = task.id;
        // Nothing merged for an attempt that left no commit: it changed nothing, said so.
        let changed = merged_now
            || self
                .contexts
                .get(&task_id)
                .is_none_or(|c| c.commit.is_some());
        if let Some(context) = self.contexts.get_mut(&task_id) {
            context.merge = match changed {
                true => MergeState::Merged {
                    commit: commit.clone(),
                },
                false => MergeState::Unchanged,
            };
            step.batch.put_context(context);
        }
        let cause = match changed {
            true => cause,
            false => "changed nothing: no work to merge",
        };
        if changed {
            step.events.push(EngineEvent::Merged {
                plan,
                task: task_id,
                key: key.to_string(),
                commit,
            });
        }
        let mark = step.events.len();
        step.transition(state.graph.transition(key, TaskStatus::Done, cause, now)?);
        for event in state.graph.promote_dependents(key, now)? {
            if let Transition::Task { key, .. } = &event.transition {
                state.ready_since.insert(key.clone(), now);
            }
            step.transition(event);
        }
        persist_changed_tasks(&mut step, &state.graph, mark);
        self.commit(step).await?;
        self.check_finished(plan).await
    }

    async fn conflicted(
        &mut self,
        plan: PlanId,
        key: &str,
        files: Vec<String>,
    ) -> Result<(), EngineError> {
        let Some(state) = self.plans.get_mut(&plan) else {
            return Ok(());
        };
        let policy = state.work.work.settings.conflicts;
        let Some(task) = state.graph.get(key) else {
            return Ok(());
        };
        let task_id = task.id;
        let conflict = EngineEvent::MergeConflict {
            plan,
            task: task_id,
            key: key.to_string(),
            files: files.clone(),
            policy,
        };
        let reruns = self.contexts.get(&task_id).map_or(0, |c| c.conflict_reruns);
        let mut step = Step::default();
        step.events.push(conflict);
        match policy {
            ConflictPolicy::Retry if reruns < MAX_CONFLICT_RERUNS => {
                let cause = format!(
                    "merge conflict in {}: runs again on top of the integration branch (rerun {} of {MAX_CONFLICT_RERUNS})",
                    files.join(", "),
                    reruns + 1
                );
                self.run_again_on_top(plan, key, step, cause, |context| {
                    context.conflict_reruns += 1;
                    context.merge = MergeState::Conflict { files, policy };
                })
                .await
            }
            ConflictPolicy::Retry => {
                self.commit(step).await?;
                let why = format!("still conflicting after {MAX_CONFLICT_RERUNS} reruns");
                self.park(plan, key, files, Some(policy), why, TaskStatus::Failed)
                    .await
            }
            ConflictPolicy::Resolver => {
                if let Some(context) = self.contexts.get_mut(&task_id) {
                    context.merge = MergeState::Resolving {
                        files: files.clone(),
                    };
                    step.batch.put_context(context);
                }
                state.work.resolvers.push_back((key.to_string(), files));
                self.commit(step).await
            }
            ConflictPolicy::Manual => {
                self.commit(step).await?;
                let why = "left for the operator (conflicts = \"manual\")".to_string();
                self.park(plan, key, files, Some(policy), why, TaskStatus::Failed)
                    .await
            }
        }
    }

    /// The task's merge ended without its work on the branch: it runs again on top of the
    /// integration branch, `record` saying why in its context, in `step` with what came before.
    pub(super) async fn run_again_on_top(
        &mut self,
        plan: PlanId,
        key: &str,
        mut step: Step,
        cause: String,
        record: impl FnOnce(&mut TaskContext),
    ) -> Result<(), EngineError> {
        let now = self.now();
        self.end_merge(plan, key, &mut step);
        let Some(state) = self.plans.get_mut(&plan) else {
            return Ok(());
        };
        let Some(task) = state.graph.get(key) else {
            return Ok(());
        };
        if let Some(context) = self.contexts.get_mut(&task.id) {
            record(context);
            step.batch.put_context(context);
        }
        step.transition(state.graph.transition(key, TaskStatus::Ready, cause, now)?);
        state.ready_since.insert(key.to_string(), now);
        persist_changed_tasks(&mut step, &state.graph, 0);
        self.commit(step).await
    }

    /// The task ends on its merge (`end`: failed, or cancelled when the operator stopped its
    /// resolver) and waits for the operator; its dependents are blocked.
    pub(super) async fn park(
        &mut self,
        plan: PlanId,
        key: &str,
        files: Vec<String>,
        policy: Option<ConflictPolicy>,
        why: String,
        end: TaskStatus,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let mut step = Step::default();
        self.end_merge(plan, key, &mut step);
        let Some(state) = self.plans.get_mut(&plan) else {
            return Ok(());
        };
        let Some(task) = state
            .graph
            .get(key)
            .filter(|t| t.status == TaskStatus::Running)
        else {
            return self.commit(step).await;
        };
        let task_id = task.id;
        let integration = names::integration_branch(&state.work.work.key);
        let cause = match policy {
            Some(policy) => {
                if let Some(context) = self.contexts.get_mut(&task_id) {
                    context.merge = MergeState::Conflict {
                        files: files.clone(),
                        policy,
                    };
                    step.batch.put_context(context);
                }
                if end == TaskStatus::Cancelled {
                    format!(
                        "{why}; its merge (conflicts in {}) was abandoned, so {integration} has only the other tasks' work; retry the task to run it again on top of that branch",
                        files.join(", ")
                    )
                } else {
                    format!(
                        "merge conflict in {}: {why}; settle it on {integration} (or leave it), then retry the task to run it again on top of that branch",
                        files.join(", ")
                    )
                }
            }
            None => {
                // What the merge came to (a failed check) is kept with the task.
                if let Some(context) = self.contexts.get(&task_id) {
                    step.batch.put_context(context);
                }
                format!("{why}; retry the task to run it again")
            }
        };
        step.transition(state.graph.transition(key, end, cause, now)?);
        for event in state.graph.block_dependents(key, now)? {
            step.transition(event);
        }
        state.ready_since.remove(key);
        persist_changed_tasks(&mut step, &state.graph, 0);
        self.commit(step).await?;
        self.check_finished(plan).await
    }

    /// Start resolver sessions for conflicts waiting for one, within the caps, into `step`.
    pub(super) fn start_resolvers(
        &mut self,
        step: &mut Step,
        starts: &mut Vec<(Job, Place, Running)>,
        cap: usize,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        for (plan_id, state) in self.plans.iter_mut() {
            while let Some((key, files)) = state.work.resolvers.front().cloned() {
                if self.running.len() + starts.len() >= cap {
                    return Ok(());
                }
                let task = state
                    .graph
                    .get(&key)
                    .filter(|t| t.status == TaskStatus::Running);
                let (Some(task), Some(workspace)) = (task, state.work.workspace.as_ref()) else {
                    state.work.resolvers.pop_front();
                    continue;
                };
                let Some(index) = self.fleet.pick(task, Default::default(), None) else {
                    break;
                };
                if !self.fleet.take(index) {
                    break;
                }
                state.work.resolvers.pop_front();
                let prompt = resolver_prompt_of(state, task, &files);
                let aside = Aside {
                    plan: *plan_id,
                    task,
                    kind: SessionKind::Resolve,
                    title: format!("{}/{} resolve #{}", state.plan.name, key, task.attempts),
                    prompt,
                    directory: workspace.integration_path(&state.work.work.key),
                    role: Role::Resolver { files },
                    agent: (index, self.fleet.agent(index).name.clone()),
                    // A resolver is a child of the session whose work it settles.
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

    /// A resolver session ended: conclude or abandon its merge once that is durable.
    pub(super) fn resolver_ended(
        &mut self,
        run: &Running,
        files: Vec<String>,
        failure: Option<String>,
    ) {
        let cancelled = run.stopping == Some(SessionStatus::Cancelled);
        let failure = match failure {
            Some(_) if cancelled => {
                Some("cancelled by the operator while its resolver session ran".into())
            }
            failure => failure,
        };
        self.resolver_ends.push(ResolverEnd {
            plan: run.plan,
            key: run.key.clone(),
            files,
            failure,
            cancelled,
        });
    }

    /// Conclude or abandon the merges of resolver sessions that ended (after their end is
    /// durable).
    pub(super) fn finish_resolvers(&mut self) {
        for end in std::mem::take(&mut self.resolver_ends) {
            let Some(state) = self.plans.get(&end.plan) else {
                continue;
            };
            let Some(workspace) = state.work.workspace.clone() else {
                continue;
            };
            let plan_key = state.work.work.key.clone();
            let policy = state.work.cleanup(self.options.cleanup);
            // A concluded merge is checked like any other (the riskiest ones, even).
            let check = state.graph.get(&end.key).and_then(|task| {
                CheckJob::for_task(&state.work.work.settings, task, self.contexts.get(&task.id))
            });
            let stop = CancellationToken::new();
            let done = self.git_tx.clone();
            self.tasks.spawn(async move {
                let task = end.key.clone();
                let failure = end.failure;
                let cancelled = end.cancelled;
                let (ws, pk, checked) = (workspace.clone(), plan_key.clone(), check.is_some());
                let resolved = blocking(move || {
                    let (workspace, plan_key) = (ws, pk);
                    let why = match failure {
                        Some(why) => why,
                        None => match workspace.conclude_merge(&plan_key, &task) {
                            Ok(commit) => {
                                if !checked {
                                    tidy_merged(&workspace, &plan_key, &task, policy);
                                }
                                return Ok(ResolvedEnd::Concluded { commit });
                            }
                            Err(e) => format!("the resolver session left it unresolved: {e}"),
                        },
                    };
                    Ok(match workspace.abort_merge(&plan_key) {
                        Ok(()) => ResolvedEnd::Abandoned { why },
                        Err(e) => ResolvedEnd::Stuck {
                            why: format!("{why}; the merge could not be aborted: {e}"),
                        },
                    })
                })
                .await
                .unwrap_or_else(|why| ResolvedEnd::Stuck { why });
                if let (ResolvedEnd::Concluded { commit }, Some(check)) = (&resolved, check) {
                    let gate = Gate {
                        plan: end.plan,
                        key: end.key,
                        plan_key,
                        workspace,
                        check,
                        commit: commit.clone(),
                        merged_now: true,
                        cleanup: policy,
                        // The concluded merge is the branch's last commit: found from it.
                        before: None,
                        fix: None,
                        stop,
                    };
                    gate.run(done).await;
                    return;
                }
                let _ = done
                    .send(GitDone::Resolved {
                        plan: end.plan,
                        key: end.key,
                        files: end.files,
                        end: resolved,
                        cancelled,
                    })
                    .await;
            });
        }
    }
}
