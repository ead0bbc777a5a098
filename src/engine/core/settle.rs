//! Settling runs that ended: their sessions, their tasks and what follows in the graph
//! (dependents promoted or blocked, an automatic retry after a backoff, a merge queued), in one
//! durable step per batch of ended runs; then the plans whose work is over are announced.

use jiff::Timestamp;

use super::plans::PlanState;
use super::workspace::{self, Ended};
use super::{Core, Role, Running, Step, context, persist_changed_tasks};
use crate::domain::MergeState;
use crate::domain::{
    AgentStatus, CheckpointKind, PlanId, SessionId, SessionStatus, TaskStatus, Transition,
};
use crate::engine::runner::Outcome;
use crate::engine::{EngineError, EngineEvent};

impl Core {
    /// Settle every run that has finished by now (up to a batch) in one durable step.
    pub(super) async fn finished(
        &mut self,
        id: SessionId,
        ended: Ended,
    ) -> Result<(), EngineError> {
        const MOST: usize = 1024;
        let mut step = Step::default();
        let mut plans = Vec::new();
        let mut next = Some((id, ended));
        let mut settled = 0;
        while let Some((id, ended)) = next {
            if let Some(plan) = self.settle(id, ended, &mut step)? {
                plans.push(plan);
            }
            settled += 1;
            next = if settled < MOST {
                self.finished_rx.try_recv().ok()
            } else {
                None
            };
        }
        // What they spent may have reached a budget that other running work counts against.
        let stops = self.enforce_budgets(&mut step);
        self.commit(step).await?;
        self.stop_over_budget(stops);
        self.finish_resolvers();
        self.finish_fixers();
        self.finish_base_resolves();
        plans.sort();
        plans.dedup();
        for plan in plans {
            self.check_finished(plan).await?;
        }
        Ok(())
    }

    /// One finished run into `step`: its session, its task and what follows for the graph.
    /// The plan it belongs to, when there was one to change.
    fn settle(
        &mut self,
        id: SessionId,
        ended: Ended,
        step: &mut Step,
    ) -> Result<Option<PlanId>, EngineError> {
        let Ended { outcome, work } = ended;
        let mark = step.events.len();
        // Requests of a run that ended need no answer any more.
        self.approvals.retain(|_, p| p.session != id);
        let Some(mut run) = self.running.remove(&id) else {
            return Ok(None);
        };
        self.fleet.release(run.agent);
        let now = self.now();
        if !self.plans.contains_key(&run.plan) {
            return Ok(None);
        }
        let mut verdict = Verdict::of(&mut run, outcome);
        if let Some(error) = verdict.unreachable.as_deref()
            && !self.fleet.is_removed(run.agent)
        {
            agent_unreachable(self.fleet.agent_mut(run.agent), error, step, now);
        }
        let day = crate::domain::budget::utc_day(now);
        let over_before = self.reached_by(&run, day);
        self.count_end(&run, step);
        if verdict.status == SessionStatus::Completed && run.role == Role::Task {
            // Its last call (or a step the stream never told) took it over a budget before
            // anything could stop it: said with its end, not silently counted (only when its
            // own end reached it, not another session's settled in the same batch).
            verdict.overshoot = self.reached_by(&run, day).filter(|_| over_before.is_none());
        }
        record_end(&mut run, &verdict, work.commit.as_deref(), step, now)?;
        self.observed.ended(&run);
        // A session beside the task's own: what did not complete, said once for all of them.
        let failure = |what: &str| {
            (verdict.status != SessionStatus::Completed)
                .then(|| format!("{what} ended {}: {}", verdict.status, verdict.cause()))
        };
        match run.role.clone() {
            Role::Task => {}
            Role::BaseResolver => {
                // The landing goes on or is refused once this is durable; the plan's tasks
                // are not touched.
                self.base_resolver_ended(&run, failure("the resolver session"));
                return Ok(None);
            }
            Role::Resolver { files } => {
                // The task waits for the merge: concluded or abandoned once this is durable.
                // Its locks (the merge lock among them) stay until then.
                self.resolver_ended(&run, files, failure("the resolver session"));
                return Ok(Some(run.plan));
            }
            Role::Fixer { fix } => {
                // The merge lock stays until the fix is checked or the merge undone.
                self.fixer_ended(&run, failure(&format!("fix session {fix}")));
                return Ok(Some(run.plan));
            }
        }
        self.settle_task(&run, verdict, work, step, now)?;
        if let Some(state) = self.plans.get(&run.plan) {
            persist_changed_tasks(step, &state.graph, mark);
        }
        if let Some(task) = run.session.task {
            for resource in self.locks.release(&task.to_string()) {
                step.batch.remove_lease(&resource);
            }
        }
        Ok(Some(run.plan))
    }

    /// What a task's ended attempt means for the task and the graph: its work merged or done,
    /// its dependents promoted; or cancelled, failed for good or retried after a backoff, its
    /// dependents blocked.
    fn settle_task(
        &mut self,
        run: &Running,
        verdict: Verdict,
        work: workspace::Work,
        step: &mut Step,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(state) = self.plans.get_mut(&run.plan) else {
            return Ok(());
        };
        let key = run.key.as_str();
        let merges = verdict.status == SessionStatus::Completed && state.work.worktrees();
        if merges {
            // Its files stay in the overlap map until its work is merged: all of them, also
            // those no event or scan saw while it ran.
            state.work.awaiting.insert(key.to_string(), run.session.id);
            for path in &work.files {
                if let Some(overlap) = state.work.overlap.touch(run.session.id, path) {
                    step.events.push(EngineEvent::Overlap {
                        plan: run.plan,
                        path: overlap.path,
                        session: run.session.id,
                        with: overlap.with,
                    });
                }
            }
        } else {
            state.work.overlap.release(run.session.id);
        }
        let cause = verdict.cause();
        match verdict.status {
            SessionStatus::Completed => {
                let merge = if merges {
                    MergeState::Pending
                } else {
                    MergeState::None
                };
                let result = verdict.result.as_deref();
                let task = state.graph.set_result(key, verdict.result.clone())?;
                let previous = self.contexts.get(&task.id);
                let context = context::record(task, result, work, merge, previous);
                step.batch.put_context(&context);
                self.contexts.insert(context.task, context);
                if merges {
                    // The task stays running until its work is merged (`merge.rs`).
                    state.work.merges.push_back(key.to_string());
                    return Ok(());
                }
                step.transition(state.graph.transition(
                    key,
                    TaskStatus::Done,
                    "session completed",
                    now,
                )?);
                for event in state.graph.promote_dependents(key, now)? {
                    if let Transition::Task { key, .. } = &event.transition {
                        state.ready_since.insert(key.clone(), now);
                    }
                    step.transition(event);
                }
            }
            SessionStatus::Cancelled => {
                step.transition(
                    state
                        .graph
                        .transition(key, TaskStatus::Cancelled, cause, now)?,
                );
                for event in state.graph.block_dependents(key, now)? {
                    step.transition(event);
                }
            }
            _ if verdict.over_budget && state.work.work.over_budget.is_none() => {
                // The operator raised the budget while its stop was on the way: it continues
                // from the work on its branch as those stopped before did.
                state.graph.set_budget(key, Some(cause), None)?;
                let cause = "continues within its raised budget, from the work on its branch";
                let zero = jiff::SignedDuration::ZERO;
                ready_again(state, key, cause.into(), zero, step, now)?;
            }
            _ if verdict.over_budget => {
                // No automatic retry: it waits with its plan for the operator, its work so far
                // on its branch for the attempt that continues it.
                step.transition(state.graph.transition(
                    key,
                    TaskStatus::Failed,
                    cause.clone(),
                    now,
                )?);
                state.graph.set_budget(key, Some(cause), None)?;
                for event in state.graph.block_dependents(key, now)? {
                    step.transition(event);
                }
            }
            _ => {
                let backoff = self.options.retry_backoff;
                if let Some((task, at)) = fail(state, key, &verdict, backoff, step, now)? {
                    self.retry_at.insert(task, (at, verdict.blame));
                }
            }
        }
        Ok(())
    }

    /// Announce a plan whose work is over: nothing ready or running is left in it.
    pub(super) async fn check_finished(&mut self, plan_id: PlanId) -> Result<(), EngineError> {
        let Some(state) = self.plans.get_mut(&plan_id) else {
            return Ok(());
        };
        let active = state.graph.tasks().any(|t| t.status.has_work_to_come());
        // A plan paused over budget has not ended: it waits for the operator.
        if state.finished || active || state.work.work.over_budget.is_some() {
            return Ok(());
        }
        state.finished = true;
        if let Some(workspace) = state
            .work
            .workspace
            .clone()
            .filter(|_| state.work.worktrees())
        {
            // By the plan's policy (or the engine's): merged tasks' worktrees went as they
            // merged; by default what is left of merged work goes now, and the integration
            // branch stays (it is the plan's result), as do unmerged tasks' branches.
            let plan_key = state.work.work.key.clone();
            let policy = state.work.cleanup(self.options.cleanup);
            self.tasks.spawn(async move {
                let cleanup =
                    workspace::blocking(move || workspace.cleanup(&plan_key, policy)).await;
                match cleanup {
                    Ok(report) => tracing::info!(
                        removed = report.removed.len(),
                        kept = report.kept.len(),
                        "plan worktrees cleaned up"
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot clean up the plan's worktrees"),
                }
            });
        }
        let count = |s: TaskStatus| state.graph.tasks().filter(|t| t.status == s).count();
        let (done, failed, blocked, cancelled) = (
            count(TaskStatus::Done),
            count(TaskStatus::Failed),
            count(TaskStatus::Blocked),
            count(TaskStatus::Cancelled),
        );
        let event = EngineEvent::PlanFinished {
            plan: plan_id,
            name: state.plan.name.clone(),
            key: match state.work.work.mode {
                crate::domain::WorkMode::Worktrees { .. } => state.work.work.key.clone(),
                _ => String::new(),
            },
            ok: done == state.graph.len(),
            done,
            failed,
            blocked,
            cancelled,
        };
        self.events.tell(event);
        self.trim_finished();
        Ok(())
    }
}

/// A failed attempt at `key` into `step`: the task failed, then ready again when a retry is
/// left with when it may run (after a backoff doubling with each failure, up to 5 minutes);
/// otherwise its dependents blocked. A lost attempt is [`lose`]'s.
fn fail(
    state: &mut PlanState,
    key: &str,
    verdict: &Verdict,
    backoff: jiff::SignedDuration,
    step: &mut Step,
    now: Timestamp,
) -> Result<Option<(crate::domain::TaskId, Timestamp)>, EngineError> {
    if verdict.lost {
        return lose(state, key, verdict, backoff, step, now);
    }
    let cause = verdict.cause();
    step.transition(
        state
            .graph
            .transition(key, TaskStatus::Failed, cause, now)?,
    );
    let retry = state.graph.get(key).is_some_and(|t| t.has_retry_left());
    let Some(task) = state.graph.get(key).filter(|_| retry) else {
        block_dependents(state, key, step, now)?;
        return Ok(None);
    };
    let doublings = task.attempts.saturating_sub(task.lost + 1).min(16);
    let delay = (backoff * 2i32.pow(doublings)).min(jiff::SignedDuration::from_mins(5));
    let cause = format!("automatic retry in {:#}", delay);
    ready_again(state, key, cause, delay, step, now)
}

/// A lost attempt at `key` into `step`: nothing the task did failed, so it is ready again
/// after the first backoff, spending no retry, and says so; after too many lost attempts it
/// fails, its dependents blocked.
fn lose(
    state: &mut PlanState,
    key: &str,
    verdict: &Verdict,
    backoff: jiff::SignedDuration,
    step: &mut Step,
    now: Timestamp,
) -> Result<Option<(crate::domain::TaskId, Timestamp)>, EngineError> {
    let why = verdict.cause();
    if !state.graph.lose_attempt(key)? {
        let cause = format!(
            "its run was lost ({why}), {} times now; `ocio retry` runs it again",
            crate::domain::task::MAX_LOST_ATTEMPTS + 1
        );
        step.transition(
            state
                .graph
                .transition(key, TaskStatus::Failed, cause, now)?,
        );
        block_dependents(state, key, step, now)?;
        return Ok(None);
    }
    let cause = format!(
        "its run was lost ({why}); run again in {:#} (a lost attempt spends no retries)",
        backoff
    );
    ready_again(state, key, cause, backoff, step, now)
}

/// `key` ready again into `step`, for `cause`: the task and when it may run (after `delay`).
fn ready_again(
    state: &mut PlanState,
    key: &str,
    cause: String,
    delay: jiff::SignedDuration,
    step: &mut Step,
    now: Timestamp,
) -> Result<Option<(crate::domain::TaskId, Timestamp)>, EngineError> {
    step.transition(state.graph.transition(key, TaskStatus::Ready, cause, now)?);
    state.ready_since.insert(key.to_string(), now);
    Ok(state.graph.get(key).map(|task| (task.id, now + delay)))
}

/// The tasks after failed `key` blocked, into `step`.
fn block_dependents(
    state: &mut PlanState,
    key: &str,
    step: &mut Step,
    now: Timestamp,
) -> Result<(), EngineError> {
    for event in state.graph.block_dependents(key, now)? {
        step.transition(event);
    }
    Ok(())
}

/// How a run ended, as the engine settles it.
struct Verdict {
    status: SessionStatus,
    result: Option<String>,
    error: Option<String>,
    /// The agent to avoid on a retry (it was at fault).
    blame: Option<usize>,
    /// Lost with its server, not failed: it runs again without spending a retry.
    lost: bool,
    /// Why its agent is offline now (its server could not be reached).
    unreachable: Option<String>,
    /// Stopped over budget (the error says which): no automatic retry.
    over_budget: bool,
    /// Completed, but over a budget it counts against (which, with the spend): its end
    /// brought spend there before a stop could.
    overshoot: Option<String>,
}

impl Verdict {
    /// The verdict on `run`'s `outcome`, its usage added to the session.
    fn of(run: &mut Running, outcome: Outcome) -> Self {
        // A cancel or time limit asked for while the run was being lost wins: the task is not
        // run again.
        let outcome = match outcome {
            Outcome::Lost { .. } if run.stopping.is_some() => Outcome::Stopped,
            outcome => outcome,
        };
        let mut verdict = Self {
            status: SessionStatus::Failed,
            result: None,
            error: None,
            blame: None,
            lost: false,
            unreachable: None,
            over_budget: false,
            overshoot: None,
        };
        match outcome {
            Outcome::Lost { error, unreachable } => {
                // What its steps spent until it was lost stays its usage.
                let live = run.live;
                run.session.add_usage(live);
                verdict.status = SessionStatus::Lost;
                verdict.lost = true;
                verdict.blame = Some(run.agent);
                verdict.unreachable = unreachable.then(|| error.clone());
                verdict.error = Some(error);
            }
            Outcome::Completed { result, usage } => {
                run.session.add_usage(usage);
                verdict.status = SessionStatus::Completed;
                verdict.result = result;
            }
            Outcome::Failed {
                error,
                usage,
                agent_fault,
            } => {
                run.session.add_usage(usage);
                verdict.blame = agent_fault.then_some(run.agent);
                verdict.error = Some(error);
            }
            Outcome::Stopped => {
                // What it spent until it was stopped (its steps' usage) stays its usage.
                let live = run.live;
                run.session.add_usage(live);
                verdict.status = run.stopping.unwrap_or(SessionStatus::Cancelled);
                verdict.over_budget = run.over_budget.is_some();
                verdict.error = Some(match (&run.over_budget, verdict.status) {
                    (Some(cause), _) => cause.clone(),
                    (None, SessionStatus::TimedOut) => "time limit reached".to_string(),
                    (None, _) => "cancelled by the operator".to_string(),
                });
            }
        }
        verdict
    }

    /// Why the session ended as it did.
    fn cause(&self) -> String {
        match (&self.error, &self.overshoot) {
            (Some(error), _) => error.clone(),
            (None, Some(over)) => format!("finished, {over}: it ended before it could be stopped"),
            (None, None) => "finished".into(),
        }
    }
}

/// The session's end into `step`: its result checkpoint (with this attempt's own commit, for
/// its diff) and its last transition.
fn record_end(
    run: &mut Running,
    verdict: &Verdict,
    commit: Option<&str>,
    step: &mut Step,
    now: Timestamp,
) -> Result<(), EngineError> {
    run.session.last_error = verdict.error.clone();
    run.session.finished_at = Some(now);
    let record = serde_json::json!({
        "status": verdict.status,
        "result": verdict.result.as_deref().map(|r| crate::text::clip(r, 4000)),
        "error": verdict.error,
        "usage": run.session.usage,
        // This attempt's own work (null: it left none), for its diff.
        "commit": commit,
        // It worked on a build box: what did not come back may still be read there.
        "on_box": run.on_box().is_some(),
    });
    let checkpoint = run.session.checkpoint(CheckpointKind::Result, record, now);
    step.batch.put_checkpoint(&checkpoint);
    step.events.push(EngineEvent::SessionUsage {
        session: run.session.id,
        usage: run.session.usage,
    });
    step.transition(
        run.session
            .transition(verdict.status, verdict.cause(), now)
            .map_err(crate::domain::GraphError::from)?,
    );
    step.batch.put_session(&run.session);
    Ok(())
}

/// An agent whose server could not be reached is offline from now (not when the next probe
/// finds out): no more work goes there until a probe finds it back.
fn agent_unreachable(agent: &mut crate::domain::Agent, why: &str, step: &mut Step, now: Timestamp) {
    if matches!(agent.status, AgentStatus::Offline | AgentStatus::Draining) {
        return;
    }
    if let Ok(event) = agent.transition(AgentStatus::Offline, why.to_string(), now) {
        step.batch.put_agent(agent);
        step.transition(event);
    }
}
