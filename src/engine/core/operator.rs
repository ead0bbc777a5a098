//! What front ends ask of plans and tasks: submit a plan, cancel a task, retry one. Each is
//! one durable step; dispatching follows in the engine's loop.

use super::merge::CancelledMerge;
use super::workspace::{PlanWorkState, blocking};
use super::{Core, Prepared, Step, persist_changed_tasks};
use crate::domain::{Lifecycle, PlanId, SessionStatus, TaskId, TaskStatus, WorkMode};
use crate::engine::{EngineError, EngineEvent};

impl Core {
    pub(super) async fn submit(&mut self, prepared: Prepared) -> Result<PlanId, EngineError> {
        let claim = prepared
            .integration
            .as_ref()
            .and(prepared.workspace.clone())
            .map(|workspace| (workspace, prepared.work.key.clone()));
        let submitted = self.store_plan(prepared).await;
        if submitted.is_err()
            && let Some((workspace, key)) = claim
        {
            // Nothing was stored: the branch name it claimed goes back.
            self.tasks.spawn(async move {
                if let Err(e) = blocking(move || workspace.release_claim(&key)).await {
                    tracing::warn!(error = %e, "cannot give back a refused plan's branch name");
                }
            });
        }
        submitted
    }

    async fn store_plan(&mut self, prepared: Prepared) -> Result<PlanId, EngineError> {
        let Prepared {
            file,
            id,
            work,
            workspace,
            integration,
        } = prepared;
        // Working away as configured (`workspace = "remote"`): an `auto` agent found working
        // away in one directory may see another.
        let agents = self.fleet.live_agents();
        let fleets = &self.options.fleets;
        file.validate_against_agents(&agents, fleets)
            .map_err(EngineError::Plan)?;
        if matches!(work.mode, WorkMode::Plain) {
            file.validate_on_ocios_disk(&agents, fleets)
                .map_err(EngineError::Plan)?;
        }
        let now = self.now();
        let built = file.into_plan(id, now)?;
        let (plan, mut graph) = (built.plan, built.graph);
        let mut step = Step::default();
        for event in graph.promote_ready(now) {
            step.transition(event);
        }
        step.batch.put_plan(&plan).put_plan_work(&work);
        if let Some(integration) = integration {
            step.events.push(EngineEvent::IntegrationReady {
                plan: plan.id,
                branch: integration.branch,
                path: integration.path,
            });
        }
        for task in graph.tasks() {
            step.batch.put_task(task);
        }
        step.events.insert(
            0,
            EngineEvent::PlanSubmitted {
                plan: plan.id,
                name: plan.name.clone(),
                tasks: graph.len(),
                key: work.key.clone(),
                branch: match &work.mode {
                    WorkMode::Worktrees { integration } => Some(integration.clone()),
                    WorkMode::Shared | WorkMode::Plain => None,
                },
            },
        );
        let id = plan.id;
        self.commit(step).await?;
        self.plans
            .insert(plan, graph, PlanWorkState::new(work, workspace), now);
        Ok(id)
    }

    pub(super) async fn cancel(&mut self, task: TaskId) -> Result<(), EngineError> {
        let cancellable = |status: TaskStatus| status.can_become(TaskStatus::Cancelled);
        let (plan_id, key, status) = self.locate(task, cancellable).await?;
        if let Some(run) = self
            .running
            .values_mut()
            .find(|r| r.plan == plan_id && r.key == key)
        {
            // Settled when the run reports back; asked durably first, so an engine stopped
            // before then stops it as cancelled too.
            run.ask_stop(SessionStatus::Cancelled);
            run.session.stop_asked = Some(SessionStatus::Cancelled);
            let mut step = Step::default();
            step.batch.put_session(&run.session);
            return self.commit(step).await;
        }
        let mut step = Step::default();
        match self.cancel_merge(plan_id, &key, &mut step) {
            CancelledMerge::Abandoning => return Ok(()), // parked once the merge is aborted
            CancelledMerge::Merging => {
                return Err(EngineError::NotNow {
                    key,
                    status,
                    what: "its work is being merged this moment; cancel it again if it is still running",
                });
            }
            CancelledMerge::Dequeued | CancelledMerge::None => {}
        }
        if !cancellable(status) {
            return Err(EngineError::NotNow {
                key,
                status,
                what: "only a task that has not ended can be cancelled",
            });
        }
        let state = self
            .plans
            .get_mut(&plan_id)
            .ok_or(EngineError::UnknownTask(task))?;
        let now = self.options.clock.now();
        step.transition(state.graph.transition(
            &key,
            TaskStatus::Cancelled,
            "cancelled by the operator",
            now,
        )?);
        for event in state.graph.block_dependents(&key, now)? {
            step.transition(event);
        }
        state.ready_since.remove(&key);
        persist_changed_tasks(&mut step, &state.graph, 0);
        self.commit(step).await?;
        self.check_finished(plan_id).await
    }

    pub(super) async fn retry(&mut self, task: TaskId) -> Result<(), EngineError> {
        let retriable = |status| matches!(status, TaskStatus::Failed | TaskStatus::Cancelled);
        let (plan_id, key, status) = self.locate(task, retriable).await?;
        if !retriable(status) {
            return Err(EngineError::NotNow {
                key,
                status,
                what: "only a failed or cancelled task can be retried",
            });
        }
        self.not_while_landing(plan_id, &format!("a retry of {key}"))?;
        self.could_ever_run(plan_id, &key)?;
        let state = self
            .plans
            .get_mut(&plan_id)
            .ok_or(EngineError::UnknownTask(task))?;
        let now = self.options.clock.now();
        let mut step = Step::default();
        step.transition(state.graph.transition(
            &key,
            TaskStatus::Ready,
            "retried by the operator",
            now,
        )?);
        state.graph.forgive_lost(&key)?;
        for event in state.graph.reopen_dependents(&key, now)? {
            step.transition(event);
        }
        state.ready_since.insert(key, now);
        state.finished = false;
        persist_changed_tasks(&mut step, &state.graph, 0);
        self.commit(step).await
    }

    /// Refuses a retry that would wait for good: the task is pinned to an agent no longer among
    /// the agents (nor one a fleet would name), or needs what none offers. Only a change to
    /// the config could run it; accepted, it sat ready with nothing to run it (hand trial).
    fn could_ever_run(&self, plan: PlanId, key: &str) -> Result<(), EngineError> {
        let Some(state) = self.plans.get(&plan) else {
            return Ok(());
        };
        let Some(task) = state.graph.get(key) else {
            return Ok(());
        };
        let needs = crate::engine::routing::Needs {
            ocios_disk: state.work.in_plain_directory(),
        };
        let agents = self.fleet.live_agents();
        match crate::engine::routing::why_waiting(task, needs, &agents, &self.options.fleets) {
            Some(waits) if waits.for_good() => Err(EngineError::NeverRuns(format!(
                "{key} would wait {waits}, and nothing running could end that\nhint: {}",
                match &waits {
                    crate::engine::routing::Waits::Gone(agent) => format!(
                        "add an agent named {agent} to the config and start ocio again, or submit the task again without `agent`"
                    ),
                    _ => "add an agent that can run it to the config and start ocio again".into(),
                }
            ))),
            _ => Ok(()),
        }
    }
}
