//! Dispatch: every round, waiting merges start, then resolver sessions and as many ready tasks
//! as agents, locks and the global cap allow, in order of effective priority (`routing`), in
//! one durable step. Runs start only once that step is committed.

use jiff::Timestamp;
use tokio::sync::oneshot;

use super::workspace::{self, Place, Start};
use super::{Core, Role, Running, Step, context, new_session, put_task};
use crate::domain::{CheckpointKind, PlanId, SessionKind, TaskId, TaskStatus};
use crate::engine::locking::TaskLocks;
use crate::engine::routing::{self, Candidate};
use crate::engine::runner::{Job, Reporter};
use crate::engine::{EngineError, EngineEvent};

/// What one dispatch round decided: the step to commit, the runs to start once it is durable,
/// and the holds to tell (observations, not durable).
#[derive(Default)]
pub(super) struct Round {
    pub(super) step: Step,
    pub(super) starts: Vec<(Job, Place, Running)>,
    pub(super) held: Vec<EngineEvent>,
}

/// Why a ready task does not start this round.
enum Wait {
    /// It cannot try for its locks now (worktree bound, retry backoff, held for overlap, no
    /// agent): it leaves their queue so it holds nobody back.
    Leaves,
    /// A lock it needs is taken: it keeps its turn in the queue.
    Queued,
}

impl Core {
    /// Start waiting merges, then place resolver sessions and as many ready tasks as agents and
    /// the global cap allow, in one durable step; the runs start once it is committed.
    pub(super) async fn dispatch(&mut self) -> Result<(), EngineError> {
        // Merges are not sessions: they go on while dispatching is paused.
        self.pump_merges().await?;
        let now = self.now();
        let round = self.decide_round(now)?;
        for event in round.held {
            self.events.tell(event);
        }
        if round.starts.is_empty() && round.step.batch.is_empty() {
            return Ok(());
        }
        self.commit(round.step).await?;
        for (job, place, mut run) in round.starts {
            let (stop, stopped) = oneshot::channel();
            run.stop = Some(stop);
            let runner = self.fleet.runner(run.agent);
            self.spawn(
                workspace::run_in(place, Start::Run(runner, Box::new(job), stopped)),
                run,
            );
        }
        Ok(())
    }

    /// Which sessions start now and where, without any I/O: resolvers first, then ready tasks
    /// in order of effective priority (`routing`) while agents, locks, worktrees and the
    /// global cap allow. The engine's memory already reflects the round; the store does once
    /// its step is committed.
    pub(super) fn decide_round(&mut self, now: Timestamp) -> Result<Round, EngineError> {
        let mut round = Round::default();
        let cap = self.options.max_parallel as usize;
        if self.paused || self.running.len() >= cap {
            return Ok(round);
        }
        let picked = self.ready_in_order(now);
        self.drop_stale_lock_waiters();
        self.start_resolvers(&mut round.step, &mut round.starts, cap, now)?;
        self.start_fixers(&mut round.step, &mut round.starts, cap, now)?;
        self.start_base_resolvers(&mut round.step, &mut round.starts, cap, now)?;
        let mut worktrees = self.worktrees_in_use();
        let full = self.options.worktree_bound();
        for (plan, key) in picked {
            if self.running.len() + round.starts.len() >= cap {
                break;
            }
            match self.try_start(plan, &key, worktrees >= full, &mut round, now)? {
                Ok(in_worktree) => worktrees += usize::from(in_worktree),
                Err(Wait::Leaves) => {
                    if let Some((_, task)) = self.task_of(plan, &key) {
                        self.locks.leave(&task.to_string());
                    }
                }
                Err(Wait::Queued) => {}
            }
        }
        Ok(round)
    }

    /// Every ready task of the plans with work to come, most urgent first.
    fn ready_in_order(&self, now: Timestamp) -> Vec<(PlanId, String)> {
        let mut candidates = Vec::new();
        // A plan whose work is over has nothing ready (a retry re-opens it first), so a long
        // history of finished plans costs dispatch nothing.
        // Nor has a plan paused over budget, until the operator settles it.
        let open = |s: &&super::plans::PlanState| !s.finished && s.work.work.over_budget.is_none();
        for (id, state) in self.plans.iter().filter(|(_, s)| open(s)) {
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
    }

    /// A task queued for its locks that is no longer ready holds nobody back.
    fn drop_stale_lock_waiters(&mut self) {
        let plans = &self.plans;
        self.locks.keep_waiting(|holder| {
            holder
                .parse::<TaskId>()
                .ok()
                .and_then(|task| plans.task(&task))
                .is_some_and(|t| t.status == TaskStatus::Ready)
        });
    }

    fn task_of(&self, plan: PlanId, key: &str) -> Option<(PlanId, TaskId)> {
        let task = self.plans.get(&plan)?.graph.get(key)?;
        Some((plan, task.id))
    }

    /// Start ready task `key` of `plan` into `round` if it can go now: `Ok(true)` when it
    /// runs in a task worktree of its own.
    fn try_start(
        &mut self,
        plan_id: PlanId,
        key: &str,
        worktrees_full: bool,
        round: &mut Round,
        now: Timestamp,
    ) -> Result<Result<bool, Wait>, EngineError> {
        if let Some(cause) = self.spent_before_start(plan_id, key) {
            self.hold_plan(plan_id, cause, Vec::new(), &mut round.step);
            return Ok(Err(Wait::Leaves)); // until the operator raises the budget
        }
        let Some(state) = self.plans.get_mut(&plan_id) else {
            return Ok(Err(Wait::Queued));
        };
        let Some(task) = state.graph.get(key) else {
            return Ok(Err(Wait::Queued));
        };
        let in_worktree = state.work.worktrees();
        if in_worktree && worktrees_full {
            return Ok(Err(Wait::Leaves)); // waits for a merge to let a worktree go
        }
        let avoid = match self.retry_at.get(&task.id) {
            Some((at, _)) if *at > now => return Ok(Err(Wait::Leaves)),
            Some((_, avoid)) => *avoid,
            None => None,
        };
        if let Some((session, file, news)) = state.work.hold(task) {
            if news {
                round.held.push(EngineEvent::TaskHeld {
                    plan: plan_id,
                    task: task.id,
                    key: key.to_string(),
                    session,
                    file,
                });
            }
            return Ok(Err(Wait::Leaves)); // ready again once that session's work is merged
        }
        let needs = crate::engine::routing::Needs {
            ocios_disk: state.work.in_plain_directory(),
        };
        let Some(index) = self.fleet.pick(task, needs, avoid) else {
            return Ok(Err(Wait::Leaves));
        };
        if self.agent_over_budget(index) {
            return Ok(Err(Wait::Leaves)); // its day's budget (or the engine's) is spent
        }
        let Some(state) = self.plans.get_mut(&plan_id) else {
            return Ok(Err(Wait::Queued));
        };
        let Some(task) = state.graph.get(key) else {
            return Ok(Err(Wait::Queued));
        };
        let holder = task.id.to_string();
        let mut names = TaskLocks::names(&state.plan.repo, &task.locks);
        names.extend(state.work.checkout_lock());
        let Some(leases) = self.locks.try_acquire_in_turn(&holder, &names, now) else {
            return Ok(Err(Wait::Queued)); // a lock is taken: a later round tries again
        };
        if !self.fleet.take(index) {
            self.locks.release(&holder);
            return Ok(Err(Wait::Queued));
        }
        for lease in &leases {
            round.step.batch.put_lease(lease);
        }
        self.retry_at.remove(&task.id);
        self.start_task(plan_id, key, index, round, now)?;
        Ok(Ok(in_worktree))
    }

    /// The next attempt at `key` on agent `index` (whose slot and locks it holds): its
    /// session made and running, its prompt checkpointed, its run queued in `round`.
    fn start_task(
        &mut self,
        plan_id: PlanId,
        key: &str,
        index: usize,
        round: &mut Round,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(state) = self.plans.get_mut(&plan_id) else {
            return Ok(());
        };
        let Some(task) = state.graph.get(key) else {
            return Ok(());
        };
        state.work.held.remove(key);
        let step = &mut round.step;
        let attempt = task.attempts + 1;
        let agent = self.fleet.agent(index).name.clone();
        let mut session = new_session(
            step,
            format!("{}/{} #{attempt}", state.plan.name, key),
            SessionKind::Code,
            plan_id,
            task,
            agent.clone(),
            attempt,
            now,
        )?;
        session.max_duration = task.timeout;
        let (directory, overlap_dir, place) =
            state
                .work
                .place(&state.plan.repo, task, attempt, agent.as_str());
        let continues = task.over_budget.clone();
        let (steer, steering) = crate::engine::runner::Steering::channel();
        let job = Job {
            reporter: Reporter {
                tx: self.report_tx.clone(),
            },
            session: session.id,
            title: session.title.clone(),
            prompt: continued(
                context::prompt(
                    &state.graph,
                    task,
                    &self.contexts,
                    self.options.context_budget,
                ),
                continues.as_deref(),
            ),
            task_key: key.to_string(),
            attempt,
            directory,
            adopt: false,
            questions: self.options.questions.offers_questions(),
            steering,
            word: None,
            said: Vec::new(),
            streamed: None,
            setup: Default::default(),
        };
        let task_id = task.id;
        self.observed.latest.insert(task_id, session.id);
        step.transition(state.graph.transition(
            key,
            TaskStatus::Running,
            format!("session {} on {agent}", session.id.short()),
            now,
        )?);
        state.ready_since.remove(key);
        if continues.is_some() {
            // This attempt continues from the work the stopped one kept; a later one starts
            // afresh as usual.
            state.graph.set_budget(key, None, None)?;
        }
        put_task(&mut step.batch, &state.graph, key);
        let handed =
            serde_json::json!({ "agent": agent, "prompt": crate::text::clip(&job.prompt, 4000) });
        step.batch
            .put_checkpoint(&session.checkpoint(CheckpointKind::PromptSent, handed, now));
        step.batch.put_session(&session);
        step.events.push(EngineEvent::Dispatched {
            plan: plan_id,
            task: task_id,
            key: key.to_string(),
            session: session.id,
            agent,
            attempt,
        });
        let mut run = Running::new(session, plan_id, key.to_string(), index, Role::Task);
        run.overlap_dir = overlap_dir;
        run.steer = Some(steer);
        run.stop_note = place.stop_note();
        round.starts.push((job, place, run));
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

/// A task's prompt for an attempt that continues one stopped over budget (`cause`): told
/// that the work so far is committed where it works.
fn continued(prompt: String, cause: Option<&str>) -> String {
    match cause {
        None => prompt,
        Some(cause) => format!(
            "{prompt}\n\nAn earlier attempt at this task was stopped ({cause}); what it did is committed in this directory. Continue from there: look at what is done and finish the task."
        ),
    }
}
