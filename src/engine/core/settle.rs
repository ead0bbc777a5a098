//! Settling runs that ended: their sessions, their tasks and what follows in the graph
//! (dependents promoted or blocked, an automatic retry after a backoff, a merge queued), in one
//! durable step per batch of ended runs; then the plans whose work is over are announced.

use jiff::Timestamp;

use super::workspace::{self, Ended};
use super::{Core, Role, Step, context, persist_changed_tasks};
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
        self.commit(step).await?;
        self.finish_resolvers();
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
        let Some(state) = self.plans.get_mut(&run.plan) else {
            return Ok(None);
        };
        let key = run.key.clone();
        let mut blame = None;
        let mut lost = false;
        // A cancel or time limit asked for while the run was being lost wins: the task is not
        // run again.
        let outcome = match outcome {
            Outcome::Lost { .. } if run.stopping.is_some() => Outcome::Stopped,
            outcome => outcome,
        };
        let (session_to, result, error) = match outcome {
            Outcome::Lost { error, unreachable } => {
                lost = true;
                blame = Some(run.agent);
                if unreachable && !self.fleet.is_removed(run.agent) {
                    agent_unreachable(self.fleet.agent_mut(run.agent), &error, step, now);
                }
                (SessionStatus::Failed, None, Some(format!("lost: {error}")))
            }
            Outcome::Completed { result, usage } => {
                run.session.add_usage(usage);
                (SessionStatus::Completed, result, None)
            }
            Outcome::Failed {
                error,
                usage,
                agent_fault,
            } => {
                run.session.add_usage(usage);
                blame = agent_fault.then_some(run.agent);
                (SessionStatus::Failed, None, Some(error))
            }
            Outcome::Stopped => {
                let why = run.stopping.unwrap_or(SessionStatus::Cancelled);
                let error = match why {
                    SessionStatus::TimedOut => "time limit reached".to_string(),
                    _ => "cancelled by the operator".to_string(),
                };
                (why, None, Some(error))
            }
        };
        run.session.last_error = error.clone();
        run.session.finished_at = Some(now);
        let record = serde_json::json!({
            "status": session_to,
            "result": result.as_deref().map(|r| crate::text::clip(r, 4000)),
            "error": error,
            "usage": run.session.usage,
            // This attempt's own work (null: it left none), for its diff.
            "commit": work.commit,
        });
        let checkpoint = run.session.checkpoint(CheckpointKind::Result, record, now);
        step.batch.put_checkpoint(&checkpoint);
        let cause = error.clone().unwrap_or_else(|| "finished".into());
        step.transition(
            run.session
                .transition(session_to, cause.clone(), now)
                .map_err(crate::domain::GraphError::from)?,
        );
        step.batch.put_session(&run.session);
        if let Role::Resolver { files } = run.role.clone() {
            // The task waits for the merge: concluded or abandoned once this is durable. Its
            // locks (the merge lock among them) stay until then.
            let failure = (session_to != SessionStatus::Completed)
                .then(|| format!("the resolver session ended {session_to}: {cause}"));
            self.observed.ended(&run);
            self.resolver_ended(&run, files, failure);
            return Ok(Some(run.plan));
        }
        let merges = session_to == SessionStatus::Completed && state.work.worktrees();
        if merges {
            // Its files stay in the overlap map until its work is merged: all of them, also
            // those no event or scan saw while it ran.
            state.work.awaiting.insert(key.clone(), run.session.id);
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
        match session_to {
            SessionStatus::Completed if merges => {
                // The task stays running until its work is merged (`merge.rs`).
                let task = state.graph.set_result(&key, result.clone())?;
                let previous = self.contexts.get(&task.id);
                let context =
                    context::record(task, result.as_deref(), work, MergeState::Pending, previous);
                step.batch.put_context(&context);
                self.contexts.insert(context.task, context);
                state.work.merges.push_back(key.clone());
            }
            SessionStatus::Completed => {
                let task = state.graph.set_result(&key, result.clone())?;
                let previous = self.contexts.get(&task.id);
                let context =
                    context::record(task, result.as_deref(), work, MergeState::None, previous);
                step.batch.put_context(&context);
                self.contexts.insert(context.task, context);
                step.transition(state.graph.transition(
                    &key,
                    TaskStatus::Done,
                    "session completed",
                    now,
                )?);
                for event in state.graph.promote_dependents(&key, now)? {
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
                        .transition(&key, TaskStatus::Cancelled, cause, now)?,
                );
                for event in state.graph.block_dependents(&key, now)? {
                    step.transition(event);
                }
            }
            _ => {
                step.transition(
                    state
                        .graph
                        .transition(&key, TaskStatus::Failed, cause, now)?,
                );
                // A lost attempt is not the task's failure: it runs again, bounded apart.
                let retry = match lost {
                    true => state.graph.lose_attempt(&key)?,
                    false => state.graph.get(&key).is_some_and(|t| t.has_retry_left()),
                };
                if let Some(task) = state.graph.get(&key).filter(|_| retry) {
                    let doublings = match lost {
                        true => 0,
                        false => task.attempts.saturating_sub(task.lost + 1).min(16),
                    };
                    let delay = (self.options.retry_backoff * 2i32.pow(doublings))
                        .min(jiff::SignedDuration::from_mins(5));
                    let task_id = task.id;
                    let cause = format!("automatic retry in {:#}", delay);
                    step.transition(
                        state
                            .graph
                            .transition(&key, TaskStatus::Ready, cause, now)?,
                    );
                    state.ready_since.insert(key.clone(), now);
                    self.retry_at.insert(task_id, (now + delay, blame));
                } else {
                    for event in state.graph.block_dependents(&key, now)? {
                        step.transition(event);
                    }
                }
            }
        }
        persist_changed_tasks(step, &state.graph, mark);
        self.observed.ended(&run);
        if let Some(task) = run.session.task {
            for resource in self.locks.release(&task.to_string(), now) {
                step.batch.remove_lease(&resource);
            }
        }
        Ok(Some(run.plan))
    }

    /// Announce a plan whose work is over: nothing ready or running is left in it.
    pub(super) async fn check_finished(&mut self, plan_id: PlanId) -> Result<(), EngineError> {
        let Some(state) = self.plans.get_mut(&plan_id) else {
            return Ok(());
        };
        let active = state.graph.tasks().any(|t| t.status.has_work_to_come());
        if state.finished || active {
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
