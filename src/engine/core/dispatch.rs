//! Dispatch: every round, waiting merges start, then resolver sessions and as many ready tasks
//! as agents, locks and the global cap allow, in order of effective priority (`routing`), in
//! one durable step. Runs start only once that step is committed.

use tokio::sync::oneshot;

use super::workspace::{self, Start};
use super::{Core, Role, Running, Step, context, new_session, put_task};
use crate::domain::{CheckpointKind, PlanId, SessionKind, TaskStatus};
use crate::engine::locking::TaskLocks;
use crate::engine::routing::{self, Candidate};
use crate::engine::runner::{Job, Reporter};
use crate::engine::{EngineError, EngineEvent};

impl Core {
    /// Start waiting merges, then place resolver sessions and as many ready tasks as agents and
    /// the global cap allow, in one durable step.
    pub(super) async fn dispatch(&mut self) -> Result<(), EngineError> {
        // Merges are not sessions: they go on while dispatching is paused.
        self.pump_merges().await?;
        let cap = self.options.max_parallel as usize;
        if self.paused || self.running.len() >= cap {
            return Ok(());
        }
        let now = self.now();
        let picked: Vec<(PlanId, String)> = {
            let mut candidates = Vec::new();
            // A plan whose work is over has nothing ready (a retry re-opens it first), so a
            // long history of finished plans costs dispatch nothing.
            for (id, state) in self.plans.iter().filter(|(_, s)| !s.finished) {
                for task in state.graph.ready() {
                    let ready_since = state.ready_since.get(&task.key).copied().unwrap_or(now);
                    candidates.push(Candidate {
                        plan: *id,
                        task,
                        ready_since,
                    });
                }
            }
            routing::order(&mut candidates, now, self.options.aging_step);
            candidates
                .iter()
                .map(|c| (c.plan, c.task.key.clone()))
                .collect()
        };
        // A task queued for its locks that is no longer ready holds nobody back.
        let (plans, index) = (&self.plans, &self.task_index);
        self.locks.keep_waiting(|holder| {
            let Ok(task) = holder.parse::<crate::domain::TaskId>() else {
                return false;
            };
            index
                .get(&task)
                .and_then(|(plan, key)| plans.get(plan)?.graph.get(key))
                .is_some_and(|t| t.status == TaskStatus::Ready)
        });
        let mut step = Step::default();
        let mut starts = Vec::new();
        self.start_resolvers(&mut step, &mut starts, cap, now)?;
        let mut held = Vec::new();
        let (mut worktrees, worktree_bound) =
            (self.worktrees_in_use(), self.options.worktree_bound());
        for (plan_id, key) in picked {
            if self.running.len() + starts.len() >= cap {
                break;
            }
            let Some(state) = self.plans.get_mut(&plan_id) else {
                continue;
            };
            let Some(task) = state.graph.get(&key) else {
                continue;
            };
            let in_worktree = state.work.worktrees();
            // A task that cannot try for its locks now does not hold its place in their queue.
            let cannot_go = |locks: &mut TaskLocks| locks.leave(&task.id.to_string());
            if in_worktree && worktrees >= worktree_bound {
                cannot_go(&mut self.locks);
                continue; // waits for a merge to let a worktree go
            }
            let avoid = match self.retry_at.get(&task.id) {
                Some((at, _)) if *at > now => {
                    cannot_go(&mut self.locks);
                    continue;
                }
                Some((_, avoid)) => *avoid,
                None => None,
            };
            if let Some((session, file, news)) = state.work.hold(task) {
                if news {
                    held.push(EngineEvent::TaskHeld {
                        plan: plan_id,
                        task: task.id,
                        key: key.clone(),
                        session,
                        file,
                    });
                }
                cannot_go(&mut self.locks);
                continue; // stays ready until that session's work is merged or it ends
            }
            let Some(index) = self.fleet.pick(task, avoid) else {
                cannot_go(&mut self.locks);
                continue;
            };
            let holder = task.id.to_string();
            let mut names = TaskLocks::names(&state.plan.repo, &task.locks);
            names.extend(state.work.checkout_lock());
            let Some(leases) = self.locks.try_acquire_in_turn(&holder, &names, now) else {
                continue; // a lock is taken: the task stays ready for a later round
            };
            if !self.fleet.take(index) {
                self.locks.release(&holder, now);
                continue;
            }
            self.retry_at.remove(&task.id);
            state.work.held.remove(&key);
            for lease in &leases {
                step.batch.put_lease(lease);
            }
            let attempt = task.attempts + 1;
            let agent = self.fleet.agent(index).name.clone();
            let mut session = new_session(
                &mut step,
                format!("{}/{} #{attempt}", state.plan.name, key),
                SessionKind::Code,
                plan_id,
                task,
                agent.clone(),
                attempt,
                now,
            )?;
            session.max_duration = task.timeout;
            let (directory, overlap_dir, place) = state.work.place(&state.plan.repo, &key, attempt);
            let job = Job {
                reporter: Reporter {
                    tx: self.report_tx.clone(),
                },
                session: session.id,
                title: session.title.clone(),
                prompt: context::prompt(
                    &state.graph,
                    task,
                    &self.contexts,
                    self.options.context_budget,
                ),
                task_key: key.clone(),
                attempt,
                directory,
                adopt: false,
            };
            let task_id = task.id;
            self.observed.latest.insert(task_id, session.id);
            step.transition(state.graph.transition(
                &key,
                TaskStatus::Running,
                format!("session {} on {agent}", session.id.short()),
                now,
            )?);
            state.ready_since.remove(&key);
            put_task(&mut step.batch, &state.graph, &key);
            let handed = serde_json::json!({ "agent": agent, "prompt": crate::text::clip(&job.prompt, 4000) });
            step.batch
                .put_checkpoint(&session.checkpoint(CheckpointKind::PromptSent, handed, now));
            step.batch.put_session(&session);
            step.events.push(EngineEvent::Dispatched {
                plan: plan_id,
                task: task_id,
                key: key.clone(),
                session: session.id,
                agent,
                attempt,
            });
            let mut run = Running::new(session, plan_id, key, index, Role::Task);
            run.overlap_dir = overlap_dir;
            starts.push((job, place, run));
            worktrees += usize::from(in_worktree);
        }
        // Not durable: a hold is an observation, like activity.
        for event in held {
            self.events.tell(event);
        }
        if starts.is_empty() {
            return Ok(());
        }
        self.commit(step).await?;
        for (job, place, mut run) in starts {
            let (stop, stopped) = oneshot::channel();
            run.stop = Some(stop);
            let runner = self.fleet.runner(run.agent);
            self.spawn(
                workspace::run_in(place, Start::Run(runner, job, stopped)),
                run,
            );
        }
        Ok(())
    }

    /// Task worktrees holding work not merged yet: running sessions' and completed ones
    /// waiting for their merge (bounded by `max_worktrees`).
    fn worktrees_in_use(&self) -> usize {
        let running = self.running.values().filter(|r| r.overlap_dir.is_some());
        let unmerged: usize = self.plans.values().map(|s| s.work.unmerged()).sum();
        running.count() + unmerged
    }
}
