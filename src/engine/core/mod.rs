//! The engine's single owner of state: plans and their task graphs, agents, running sessions.
//! Commands and finished runs arrive on channels; each step builds one store batch, commits it,
//! and only then announces events and starts runs. Start-up (`recovery.rs`), agent
//! management (`agents.rs`), repositories and worktrees (`workspace.rs`), merges and conflicts
//! (`merge.rs`) and shared context (`context.rs`) live beside this file.

mod agents;
mod approvals;
mod context;
mod diff;
mod merge;
mod observe;
mod recovery;
mod scan;
mod workspace;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::locking::TaskLocks;
use super::routing::{self, Candidate};
use super::runner::{Health, Job, Outcome, RemoteReport, Reporter, Runner};
use super::view::Entry;
use super::{Command, EngineError, EngineEvent, EngineOptions};
use crate::domain::{
    Agent, AgentName, CheckpointKind, DomainEvent, Lifecycle, Plan, PlanId, Session, SessionId,
    SessionKind, SessionStatus, Task, TaskGraph, TaskId, TaskStatus, Transition,
};
use crate::store::{Batch, MergeState, StoreHandle, TaskContext};
use workspace::{Ended, PlanWorkState, Start};
pub(super) use workspace::{Prepared, Workspaces};

struct PlanState {
    plan: Plan,
    graph: TaskGraph,
    /// When each ready task became ready (for aging).
    ready_since: HashMap<String, Timestamp>,
    finished: bool,
    /// How it uses its repository, its overlap map and its merges.
    work: PlanWorkState,
}

/// What a running session does for its task.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    /// An attempt at the task.
    Task,
    /// Resolves the conflicts in `files` of the task's merge, in the integration worktree.
    Resolver { files: Vec<String> },
}

struct Running {
    session: Session,
    plan: PlanId,
    key: String,
    agent: usize,
    role: Role,
    /// The session's worktree, where the files it edits count for the overlap map.
    overlap_dir: Option<PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    /// Why the engine stopped it, once it did.
    stopping: Option<SessionStatus>,
    /// The newest thing it did.
    last: Option<Entry>,
    /// Usage reported while it runs (the outcome's usage replaces it).
    live: crate::domain::Usage,
}

impl Running {
    fn new(session: Session, plan: PlanId, key: String, agent: usize, role: Role) -> Self {
        Self {
            session,
            plan,
            key,
            agent,
            role,
            overlap_dir: None,
            stop: None,
            stopping: None,
            last: None,
            live: crate::domain::Usage::default(),
        }
    }
}

pub(super) struct Core {
    store: StoreHandle,
    options: EngineOptions,
    plans: BTreeMap<PlanId, PlanState>,
    task_index: HashMap<TaskId, (PlanId, String)>,
    /// Agents and their runners, index for index.
    agents: Vec<Agent>,
    runners: Vec<Arc<dyn Runner>>,
    last_picked: Vec<u64>,
    picks: u64,
    running: HashMap<SessionId, Running>,
    finished_tx: mpsc::Sender<(SessionId, Ended)>,
    finished_rx: mpsc::Receiver<(SessionId, Ended)>,
    /// Git jobs (merges, resolvers' conclusions) report here.
    git_tx: mpsc::Sender<merge::GitDone>,
    git_rx: mpsc::Receiver<merge::GitDone>,
    /// Resolver sessions that ended, acted on once their end is durable.
    resolver_ends: Vec<merge::ResolverEnd>,
    /// Session diffs for the overlap map.
    scanner: scan::Scanner,
    /// What finished tasks left for the tasks after them (durable, in the store).
    contexts: HashMap<TaskId, TaskContext>,
    workspaces: Workspaces,
    report_tx: mpsc::Sender<RemoteReport>,
    report_rx: mpsc::Receiver<RemoteReport>,
    events: broadcast::Sender<EngineEvent>,
    locks: TaskLocks,
    /// Tasks waiting out a retry backoff: not before this time, and not on this agent (when
    /// the agent was at fault) if another can take it.
    retry_at: HashMap<TaskId, (Timestamp, Option<usize>)>,
    health_tx: mpsc::Sender<(usize, Health)>,
    health_rx: mpsc::Receiver<(usize, Health)>,
    /// A probe of agent i is under way.
    probing: Vec<bool>,
    /// Agent i was removed (its slot stays so indices hold).
    removed: Vec<bool>,
    next_probe: tokio::time::Instant,
    /// Permission requests waiting for the operator, by request id.
    approvals: HashMap<String, approvals::Pending>,
    /// No new sessions start while set (durable, in the store's meta table).
    paused: bool,
    observed: observe::Observed,
}

/// One step's changes: committed together, then announced.
#[derive(Default)]
struct Step {
    batch: Batch,
    events: Vec<EngineEvent>,
}

impl Step {
    fn transition(&mut self, event: DomainEvent) {
        self.batch.append_event(&event);
        self.events.push(EngineEvent::Transition(event));
    }
}

impl Core {
    fn insert_plan(&mut self, plan: Plan, graph: TaskGraph, work: PlanWorkState, now: Timestamp) {
        let ready_since = graph
            .tasks()
            .filter(|t| t.status == TaskStatus::Ready)
            .map(|t| (t.key.clone(), now))
            .collect();
        for task in graph.tasks() {
            self.task_index.insert(task.id, (plan.id, task.key.clone()));
        }
        let finished = !graph.tasks().any(|t| is_active(t.status));
        self.plans.insert(
            plan.id,
            PlanState {
                plan,
                graph,
                ready_since,
                finished,
                work,
            },
        );
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.options.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Err(e) = self.dispatch().await {
            tracing::error!(error = %e, "engine: first dispatch failed");
        }
        loop {
            let result = tokio::select! {
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Shutdown(reply)) => {
                        let _ = reply.send(());
                        break;
                    }
                    Some(command) => self.command(command).await,
                },
                Some((session, ended)) = self.finished_rx.recv() => self.finished(session, ended).await,
                Some(done) = self.git_rx.recv() => self.on_git(done).await,
                Some(report) = self.report_rx.recv() => match report {
                    RemoteReport::Remote { session, remote, durable } => self.record_remote(session, remote, durable).await,
                    RemoteReport::Permission { session, ask, decision } => self.on_permission(session, ask, decision).await,
                    RemoteReport::Activity { session, entry } => match self.on_activity(session, entry) {
                        Some(step) => self.record_step(session, step).await,
                        None => continue, // nothing durable changed: no dispatch round needed
                    },
                },
                Some((agent, health)) = self.health_rx.recv() => self.health(agent, health).await,
                _ = tick.tick() => self.on_tick().await,
            };
            let result = match result {
                Ok(()) => self.dispatch().await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                // A store failure means nothing more can be made durable: stop rather than act
                // on state that was never recorded.
                tracing::error!(error = %e, "engine stopping: {e}");
                break;
            }
        }
        tracing::info!(running = self.running.len(), "engine stopped");
    }

    async fn command(&mut self, command: Command) -> Result<(), EngineError> {
        match command {
            Command::Check(file, reply) => {
                let checked = file.validate_against_agents(&self.agents);
                let _ = reply.send(checked.map(|()| file).map_err(EngineError::Plan));
            }
            Command::Diff(session, reply) => self.diff(session, reply),
            Command::Context(plan, reply) => {
                let _ = reply.send(self.context_of(plan));
            }
            Command::Submit(prepared, reply) => {
                let result = self.submit(*prepared).await;
                let failed_on_store = matches!(result, Err(EngineError::Store(_)));
                let _ = reply.send(result);
                if failed_on_store {
                    return Err(EngineError::Stopped);
                }
            }
            Command::Cancel(task, reply) => {
                let _ = reply.send(self.cancel(task).await);
            }
            Command::Retry(task, reply) => {
                let _ = reply.send(self.retry(task).await);
            }
            Command::Approve(id, decision, reply) => {
                let _ = reply.send(self.approve(&id, decision).await);
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Plan(goal, repo, reply) => self.plan(goal, repo, reply),
            Command::Transcript(session, reply) => {
                let _ = reply.send(self.transcript(session));
            }
            Command::Pause(paused, reply) => {
                let result = self.pause(paused).await;
                let failed_on_store = matches!(result, Err(EngineError::Store(_)));
                let _ = reply.send(result);
                if failed_on_store {
                    return Err(EngineError::Stopped);
                }
            }
            Command::AddAgent(spec, reply) => {
                let _ = reply.send(self.add_agent(*spec).await);
            }
            Command::RemoveAgent(name, reply) => {
                let _ = reply.send(self.remove_agent(&name).await);
            }
            Command::Drain(name, drain, reply) => {
                let _ = reply.send(self.drain(&name, drain).await);
            }
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn submit(&mut self, prepared: Prepared) -> Result<PlanId, EngineError> {
        let Prepared {
            file,
            id,
            work,
            workspace,
            integration,
        } = prepared;
        file.validate_against_agents(&self.agents)
            .map_err(EngineError::Plan)?;
        let now = Timestamp::now();
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
            },
        );
        let id = plan.id;
        self.commit(step).await?;
        self.insert_plan(plan, graph, PlanWorkState::new(work, workspace), now);
        Ok(id)
    }

    /// The plan, key and status of a task this engine knows.
    fn locate(&self, task: TaskId) -> Result<(PlanId, String, TaskStatus), EngineError> {
        let (plan_id, key) = self
            .task_index
            .get(&task)
            .cloned()
            .ok_or(EngineError::UnknownTask(task))?;
        let status = self
            .plans
            .get(&plan_id)
            .and_then(|state| state.graph.get(&key))
            .map(|t| t.status)
            .ok_or(EngineError::UnknownTask(task))?;
        Ok((plan_id, key, status))
    }

    async fn cancel(&mut self, task: TaskId) -> Result<(), EngineError> {
        let (plan_id, key, status) = self.locate(task)?;
        if let Some(run) = self
            .running
            .values_mut()
            .find(|r| r.plan == plan_id && r.key == key)
        {
            run.stopping = Some(SessionStatus::Cancelled);
            if let Some(stop) = run.stop.take() {
                let _ = stop.send(());
            }
            return Ok(()); // settled when the run reports back
        }
        let state = self
            .plans
            .get_mut(&plan_id)
            .ok_or(EngineError::UnknownTask(task))?;
        if !status.can_become(TaskStatus::Cancelled) {
            return Err(EngineError::NotNow {
                key,
                status,
                what: "only a task that has not ended can be cancelled",
            });
        }
        let now = Timestamp::now();
        let mut step = Step::default();
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

    async fn retry(&mut self, task: TaskId) -> Result<(), EngineError> {
        let (plan_id, key, status) = self.locate(task)?;
        let state = self
            .plans
            .get_mut(&plan_id)
            .ok_or(EngineError::UnknownTask(task))?;
        if !matches!(status, TaskStatus::Failed | TaskStatus::Cancelled) {
            return Err(EngineError::NotNow {
                key,
                status,
                what: "only a failed or cancelled task can be retried",
            });
        }
        let now = Timestamp::now();
        let mut step = Step::default();
        step.transition(state.graph.transition(
            &key,
            TaskStatus::Ready,
            "retried by the operator",
            now,
        )?);
        for event in state.graph.reopen_dependents(&key, now)? {
            step.transition(event);
        }
        state.ready_since.insert(key, now);
        state.finished = false;
        persist_changed_tasks(&mut step, &state.graph, 0);
        self.commit(step).await
    }

    /// Start waiting merges, then place resolver sessions and as many ready tasks as agents and
    /// the global cap allow, in one durable step.
    async fn dispatch(&mut self) -> Result<(), EngineError> {
        // Merges are not sessions: they go on while dispatching is paused.
        self.pump_merges().await?;
        let cap = self.options.max_parallel as usize;
        if self.paused || self.running.len() >= cap {
            return Ok(());
        }
        let now = Timestamp::now();
        let picked: Vec<(PlanId, String)> = {
            let mut candidates = Vec::new();
            // A plan whose work is over has nothing ready (a retry re-opens it first), so a
            // long history of finished plans costs dispatch nothing.
            for (id, state) in self.plans.iter().filter(|(_, s)| !s.finished) {
                for task in state
                    .graph
                    .tasks()
                    .filter(|t| t.status == TaskStatus::Ready)
                {
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
        let mut step = Step::default();
        let mut starts = Vec::new();
        self.start_resolvers(&mut step, &mut starts, cap, now)?;
        let mut held = Vec::new();
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
            let avoid = match self.retry_at.get(&task.id) {
                Some((at, _)) if *at > now => continue,
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
                continue; // stays ready until that session's work is merged or it ends
            }
            let Some(index) =
                routing::pick_agent_avoiding(task, &self.agents, &self.last_picked, avoid)
            else {
                continue;
            };
            let holder = task.id.to_string();
            let mut names = TaskLocks::names(&state.plan.repo, &task.locks);
            names.extend(state.work.checkout_lock());
            let Some(leases) = self.locks.try_acquire(&holder, &names, now) else {
                continue; // a lock is taken: the task stays ready for a later round
            };
            if self.agents[index].acquire_slot().is_err() {
                self.locks.release(&holder, now);
                continue;
            }
            self.retry_at.remove(&task.id);
            state.work.held.remove(&key);
            for lease in &leases {
                step.batch.put_lease(lease);
            }
            let attempt = task.attempts + 1;
            let agent = self.agents[index].name.clone();
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
            self.picks += 1;
            self.last_picked[index] = self.picks;
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
        }
        // Not durable: a hold is an observation, like activity.
        for event in held {
            let _ = self.events.send(event);
        }
        if starts.is_empty() {
            return Ok(());
        }
        self.commit(step).await?;
        for (job, place, mut run) in starts {
            let (stop, stopped) = oneshot::channel();
            run.stop = Some(stop);
            let runner = self.runners[run.agent].clone();
            self.spawn(
                workspace::run_in(place, Start::Run(runner, job, stopped)),
                run,
            );
        }
        Ok(())
    }

    /// Settle every run that has finished by now (up to a batch) in one durable step.
    async fn finished(&mut self, id: SessionId, ended: Ended) -> Result<(), EngineError> {
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
        self.agents[run.agent].release_slot();
        let now = Timestamp::now();
        let Some(state) = self.plans.get_mut(&run.plan) else {
            return Ok(None);
        };
        let key = run.key.clone();
        let mut blame = None;
        let (session_to, result, error) = match outcome {
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
            // Its files stay in the overlap map until its work is merged.
            state.work.awaiting.insert(key.clone(), run.session.id);
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
                for event in state.graph.promote_ready(now) {
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
                let retry = state.graph.get(&key).is_some_and(|t| t.has_retry_left());
                if let Some(task) = state.graph.get(&key).filter(|_| retry) {
                    let doublings = task.attempts.saturating_sub(1).min(16);
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

    async fn on_tick(&mut self) -> Result<(), EngineError> {
        self.enforce_time_limits();
        self.probe_agents();
        self.scan_worktrees();
        let now = Timestamp::now();
        let holders: Vec<String> = self
            .running
            .values()
            .filter_map(|r| r.session.task)
            .map(|t| t.to_string())
            .collect();
        let renewed = self
            .locks
            .renew_due(holders.iter().map(String::as_str), now);
        if renewed.is_empty() {
            return Ok(());
        }
        let mut step = Step::default();
        for lease in &renewed {
            step.batch.put_lease(lease);
        }
        self.commit(step).await
    }

    fn enforce_time_limits(&mut self) {
        let now = Timestamp::now();
        for run in self.running.values_mut() {
            if run.stopping.is_none() && run.session.is_overdue(now) {
                tracing::info!(session = %run.session.id, "time limit reached; stopping");
                run.stopping = Some(SessionStatus::TimedOut);
                if let Some(stop) = run.stop.take() {
                    let _ = stop.send(());
                }
            }
        }
    }

    /// Announce a plan whose work is over: nothing ready or running is left in it.
    async fn check_finished(&mut self, plan_id: PlanId) -> Result<(), EngineError> {
        let Some(state) = self.plans.get_mut(&plan_id) else {
            return Ok(());
        };
        let active = state.graph.tasks().any(|t| is_active(t.status));
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
            // By default the worktrees of merged tasks go; the integration branch stays (it is
            // the plan's result), as do unmerged tasks' branches.
            let plan_key = state.work.work.key.clone();
            let policy = state
                .work
                .work
                .settings
                .cleanup
                .unwrap_or(self.options.cleanup);
            tokio::spawn(async move {
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
        let _ = self.events.send(event);
        Ok(())
    }

    /// Durable first, then announced.
    async fn commit(&mut self, step: Step) -> Result<(), EngineError> {
        if !step.batch.is_empty() {
            self.store.commit(step.batch).await?;
        }
        for event in step.events {
            let _ = self.events.send(event);
        }
        Ok(())
    }
}

/// A session's first steps, into `step`: made, queued, starting and running (started `now`).
#[allow(clippy::too_many_arguments)]
fn new_session(
    step: &mut Step,
    title: String,
    kind: SessionKind,
    plan: PlanId,
    task: &Task,
    agent: AgentName,
    attempt: u32,
    now: Timestamp,
) -> Result<Session, EngineError> {
    let mut session = Session::new(SessionId::generate(), title, kind, now);
    session.plan = Some(plan);
    session.task = Some(task.id);
    session.agent = Some(agent);
    session.attempt = attempt;
    for to in [
        SessionStatus::Queued,
        SessionStatus::Starting,
        SessionStatus::Running,
    ] {
        step.transition(
            session
                .transition(to, "dispatched", now)
                .map_err(crate::domain::GraphError::from)?,
        );
    }
    session.started_at = Some(now);
    Ok(session)
}

/// Work is still to come from a task in this state.
fn is_active(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Ready | TaskStatus::Running | TaskStatus::Pending
    )
}

fn put_task(batch: &mut Batch, graph: &TaskGraph, key: &str) {
    if let Some(task) = graph.get(key) {
        batch.put_task(task);
    }
}

/// Every task a step's transitions touched, as it is now.
fn persist_changed_tasks(step: &mut Step, graph: &TaskGraph, from: usize) {
    let keys: Vec<String> = step.events[from..]
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Transition(DomainEvent {
                transition: Transition::Task { key, .. },
                ..
            }) => Some(key.clone()),
            _ => None,
        })
        .collect();
    for key in keys {
        put_task(&mut step.batch, graph, &key);
    }
}
