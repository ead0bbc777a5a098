//! The engine's single owner of state: plans and their task graphs, agents, running sessions.
//! Commands and finished runs arrive on channels; each step builds one store batch, commits it,
//! and only then announces events and starts runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::locking::TaskLocks;
use super::routing::{self, Candidate};
use super::runner::{Health, Job, Outcome, RemoteReport, Reporter, Runner};
use super::{
    AgentSpec, Command, EngineError, EngineEvent, EngineOptions, PlanView, Snapshot, TaskView,
};
use crate::domain::{
    Agent, AgentStatus, CheckpointKind, DomainEvent, Lifecycle, Plan, PlanId, Session, SessionId,
    SessionKind, SessionStatus, TaskGraph, TaskId, TaskStatus, Transition,
};
use crate::plan::PlanFile;
use crate::store::{Batch, StoreHandle, query};

struct PlanState {
    plan: Plan,
    graph: TaskGraph,
    /// When each ready task became ready (for aging).
    ready_since: HashMap<String, Timestamp>,
    finished: bool,
}

struct Running {
    session: Session,
    plan: PlanId,
    key: String,
    agent: usize,
    stop: Option<oneshot::Sender<()>>,
    /// Why the engine stopped it, once it did.
    stopping: Option<SessionStatus>,
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
    finished_tx: mpsc::Sender<(SessionId, Outcome)>,
    finished_rx: mpsc::Receiver<(SessionId, Outcome)>,
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
    /// Load what the store holds and settle sessions that were running when the last engine
    /// stopped: their runs are gone with that process, so they end failed and their tasks go
    /// back to ready (never a second session for the same attempt).
    pub(super) async fn recover(
        store: StoreHandle,
        agents: Vec<AgentSpec>,
        options: EngineOptions,
        events: broadcast::Sender<EngineEvent>,
    ) -> Result<Self, EngineError> {
        let (plans, tasks, sessions, leases) = store
            .read(|txn| {
                Ok((
                    query::plans(txn)?,
                    query::tasks(txn)?,
                    query::sessions(txn)?,
                    query::leases(txn)?,
                ))
            })
            .await?;
        let (finished_tx, finished_rx) = mpsc::channel(1024);
        let (report_tx, report_rx) = mpsc::channel(1024);
        let (health_tx, health_rx) = mpsc::channel(256);
        let count = agents.len();
        let first_probe = tokio::time::Instant::now() + options.health_every / 10;
        let mut core = Self {
            store,
            options,
            plans: BTreeMap::new(),
            task_index: HashMap::new(),
            last_picked: vec![0; agents.len()],
            runners: agents.iter().map(|a| a.runner.clone()).collect(),
            agents: agents.into_iter().map(|a| a.agent).collect(),
            picks: 0,
            running: HashMap::new(),
            finished_tx,
            finished_rx,
            report_tx,
            report_rx,
            events,
            locks: TaskLocks::restore(leases),
            retry_at: HashMap::new(),
            health_tx,
            health_rx,
            probing: vec![false; count],
            removed: vec![false; count],
            // The first check comes soon after start, not in the middle of recovery.
            next_probe: first_probe,
        };
        let mut by_plan: HashMap<PlanId, Vec<crate::domain::Task>> = HashMap::new();
        for task in tasks {
            by_plan.entry(task.plan).or_default().push(task);
        }
        let now = Timestamp::now();
        for plan in plans {
            let graph = TaskGraph::from_tasks(by_plan.remove(&plan.id).unwrap_or_default())?;
            core.insert_plan(plan, graph, now);
        }
        let mut step = Step::default();
        let mut settled = 0;
        let mut reopened = 0;
        let mut resumed = Vec::new();
        for mut session in sessions.into_iter().filter(|s| s.is_active()) {
            if let Some(run) = core.resume(&session, now) {
                resumed.push(run);
                continue;
            }
            let cause = "engine restarted while it ran; the run did not survive";
            session.last_error = Some(cause.into());
            let to = if session.status.can_become(SessionStatus::Failed) {
                SessionStatus::Failed
            } else {
                SessionStatus::Cancelled
            };
            if let Ok(event) = session.transition(to, cause, now) {
                step.transition(event);
            }
            step.batch.put_session(&session);
            settled += 1;
        }
        for agent in &core.agents {
            step.batch.put_agent(agent);
        }
        // Locks held by work that is not resuming go back.
        for holder in core.locks.holders() {
            let resuming = resumed
                .iter()
                .any(|(_, r)| r.session.task.is_some_and(|t| t.to_string() == holder));
            if !resuming {
                for resource in core.locks.release(&holder, now) {
                    step.batch.remove_lease(&resource);
                }
            }
        }
        let resumed_tasks: Vec<(PlanId, String)> = resumed
            .iter()
            .map(|(_, r)| (r.plan, r.key.clone()))
            .collect();
        for (plan_id, state) in &mut core.plans {
            let running: Vec<String> = state
                .graph
                .tasks()
                .filter(|t| t.status == TaskStatus::Running)
                .filter(|t| !resumed_tasks.contains(&(*plan_id, t.key.clone())))
                .map(|t| t.key.clone())
                .collect();
            for key in running {
                if let Ok(event) = state.graph.transition(
                    &key,
                    TaskStatus::Ready,
                    "engine restarted; run again",
                    now,
                ) {
                    step.transition(event);
                    state.ready_since.insert(key.clone(), now);
                    reopened += 1;
                }
                put_task(&mut step.batch, &state.graph, &key);
            }
        }
        if settled + reopened + resumed.len() > 0 {
            step.events.push(EngineEvent::Recovered {
                sessions: settled,
                tasks: reopened,
                resumed: resumed.len(),
            });
        }
        core.commit(step).await?;
        for (future, run) in resumed {
            core.spawn(future, run);
        }
        Ok(core)
    }

    /// A session a previous engine left running at a server that can follow it: re-attach.
    fn resume(
        &mut self,
        session: &Session,
        now: Timestamp,
    ) -> Option<(super::runner::RunFuture, Running)> {
        let remote = session.remote.clone()?;
        let index = self
            .agents
            .iter()
            .position(|a| Some(&a.name) == session.agent.as_ref())?;
        let (plan_id, key) = self.task_index.get(&session.task?)?.clone();
        let state = self.plans.get(&plan_id)?;
        let task = state
            .graph
            .get(&key)
            .filter(|t| t.status == TaskStatus::Running)?;
        let job = Job {
            reporter: Reporter {
                tx: self.report_tx.clone(),
            },
            session: session.id,
            title: session.title.clone(),
            prompt: task.prompt.clone(),
            task_key: key.clone(),
            attempt: session.attempt,
            directory: remote.directory.clone(),
        };
        let (stop, stopped) = oneshot::channel();
        let future = self.runners[index].resume(job, remote, stopped)?;
        self.agents[index].acquire_slot().ok()?;
        tracing::info!(session = %session.id, task = %key, "re-attached to a session still on its server");
        let _ = now;
        Some((
            future,
            Running {
                session: session.clone(),
                plan: plan_id,
                key,
                agent: index,
                stop: Some(stop),
                stopping: None,
            },
        ))
    }

    fn spawn(&mut self, future: super::runner::RunFuture, run: Running) {
        let done = self.finished_tx.clone();
        let id = run.session.id;
        tokio::spawn(async move {
            let outcome = future.await;
            let _ = done.send((id, outcome)).await;
        });
        self.running.insert(id, run);
    }

    /// Record where a run lives remotely, durably, then let the runner go on.
    async fn record_remote(&mut self, report: RemoteReport) -> Result<(), EngineError> {
        let Some(run) = self.running.get_mut(&report.session) else {
            return Ok(());
        };
        let now = Timestamp::now();
        run.session.remote = Some(report.remote.clone());
        let data = serde_json::json!({
            "server": report.remote.server,
            "remote_session": report.remote.session_id,
            "directory": report.remote.directory,
        });
        let checkpoint = run.session.checkpoint(CheckpointKind::Note, data, now);
        let mut step = Step::default();
        step.batch
            .put_session(&run.session)
            .put_checkpoint(&checkpoint);
        self.commit(step).await?;
        let _ = report.durable.send(());
        Ok(())
    }
    fn insert_plan(&mut self, plan: Plan, graph: TaskGraph, now: Timestamp) {
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
                Some((session, outcome)) = self.finished_rx.recv() => self.finished(session, outcome).await,
                Some(report) = self.report_rx.recv() => self.record_remote(report).await,
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
            Command::Submit(file, reply) => {
                let result = self.submit(*file).await;
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
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
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

    async fn submit(&mut self, file: PlanFile) -> Result<PlanId, EngineError> {
        file.validate_against_agents(&self.agents)
            .map_err(EngineError::Plan)?;
        let now = Timestamp::now();
        let built = file.into_plan(PlanId::generate(), now)?;
        let (plan, mut graph) = (built.plan, built.graph);
        let mut step = Step::default();
        for event in graph.promote_ready(now) {
            step.transition(event);
        }
        step.batch.put_plan(&plan);
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
        self.insert_plan(plan, graph, now);
        Ok(id)
    }

    async fn cancel(&mut self, task: TaskId) -> Result<(), EngineError> {
        let (plan_id, key) = self
            .task_index
            .get(&task)
            .cloned()
            .ok_or(EngineError::UnknownTask(task))?;
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
        let status = state
            .graph
            .get(&key)
            .map(|t| t.status)
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
        persist_changed_tasks(&mut step, &state.graph);
        self.commit(step).await?;
        self.check_finished(plan_id).await
    }

    async fn retry(&mut self, task: TaskId) -> Result<(), EngineError> {
        let (plan_id, key) = self
            .task_index
            .get(&task)
            .cloned()
            .ok_or(EngineError::UnknownTask(task))?;
        let state = self
            .plans
            .get_mut(&plan_id)
            .ok_or(EngineError::UnknownTask(task))?;
        let status = state
            .graph
            .get(&key)
            .map(|t| t.status)
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
        persist_changed_tasks(&mut step, &state.graph);
        self.commit(step).await
    }

    /// Place as many ready tasks as agents and the global cap allow, in one durable step.
    async fn dispatch(&mut self) -> Result<(), EngineError> {
        let cap = self.options.max_parallel as usize;
        if self.running.len() >= cap {
            return Ok(());
        }
        let now = Timestamp::now();
        let picked: Vec<(PlanId, String)> = {
            let mut candidates = Vec::new();
            for (id, state) in &self.plans {
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
        if picked.is_empty() {
            return Ok(());
        }
        let mut step = Step::default();
        let mut starts = Vec::new();
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
            let Some(index) =
                routing::pick_agent_avoiding(task, &self.agents, &self.last_picked, avoid)
            else {
                continue;
            };
            self.retry_at.remove(&task.id);
            let holder = task.id.to_string();
            let names = TaskLocks::names(&state.plan.repo, &task.locks);
            let Some(leases) = self.locks.try_acquire(&holder, &names, now) else {
                continue; // a lock is taken: the task stays ready for a later round
            };
            if self.agents[index].acquire_slot().is_err() {
                self.locks.release(&holder, now);
                continue;
            }
            for lease in &leases {
                step.batch.put_lease(lease);
            }
            let attempt = task.attempts + 1;
            let mut session = Session::new(
                SessionId::generate(),
                format!("{}/{} #{attempt}", state.plan.name, key),
                SessionKind::Code,
                now,
            );
            session.plan = Some(plan_id);
            session.task = Some(task.id);
            session.agent = Some(self.agents[index].name.clone());
            session.attempt = attempt;
            session.max_duration = task.timeout;
            let job = Job {
                reporter: Reporter {
                    tx: self.report_tx.clone(),
                },
                session: session.id,
                title: session.title.clone(),
                // Upstream tasks are done, so their results are there; a task that finished
                // without text leaves its reference empty rather than holding this one up.
                prompt: crate::plan::template::render(&task.prompt, |k| {
                    Some(
                        state
                            .graph
                            .get(k)
                            .and_then(|t| t.result.as_deref())
                            .unwrap_or(""),
                    )
                })
                .unwrap_or_else(|_| task.prompt.clone()),
                task_key: key.clone(),
                attempt,
                directory: state.plan.repo.clone(),
            };
            let task_id = task.id;
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
            step.transition(state.graph.transition(
                &key,
                TaskStatus::Running,
                format!(
                    "session {} on {}",
                    session.id.short(),
                    self.agents[index].name
                ),
                now,
            )?);
            state.ready_since.remove(&key);
            put_task(&mut step.batch, &state.graph, &key);
            let handed = serde_json::json!({ "agent": self.agents[index].name, "prompt": clip(&job.prompt, 4000) });
            step.batch
                .put_checkpoint(&session.checkpoint(CheckpointKind::PromptSent, handed, now));
            step.batch.put_session(&session);
            let agent = &self.agents[index];
            self.picks += 1;
            self.last_picked[index] = self.picks;
            step.events.push(EngineEvent::Dispatched {
                plan: plan_id,
                task: task_id,
                key: key.clone(),
                session: session.id,
                agent: agent.name.clone(),
                attempt,
            });
            starts.push((
                job,
                Running {
                    session,
                    plan: plan_id,
                    key,
                    agent: index,
                    stop: None,
                    stopping: None,
                },
            ));
        }
        if starts.is_empty() {
            return Ok(());
        }
        self.commit(step).await?;
        for (job, mut run) in starts {
            let (stop, stopped) = oneshot::channel();
            run.stop = Some(stop);
            let future = self.runners[run.agent].run(job, stopped);
            self.spawn(future, run);
        }
        Ok(())
    }

    async fn finished(&mut self, id: SessionId, outcome: Outcome) -> Result<(), EngineError> {
        let Some(mut run) = self.running.remove(&id) else {
            return Ok(());
        };
        self.agents[run.agent].release_slot();
        let now = Timestamp::now();
        let mut step = Step::default();
        let Some(state) = self.plans.get_mut(&run.plan) else {
            return Ok(());
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
            "result": result.as_deref().map(|r| clip(r, 4000)),
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
        match session_to {
            SessionStatus::Completed => {
                state.graph.set_result(&key, result)?;
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
        persist_changed_tasks(&mut step, &state.graph);
        if let Some(task) = run.session.task {
            for resource in self.locks.release(&task.to_string(), now) {
                step.batch.remove_lease(&resource);
            }
        }
        let plan_id = run.plan;
        self.commit(step).await?;
        self.check_finished(plan_id).await
    }

    async fn on_tick(&mut self) -> Result<(), EngineError> {
        self.enforce_time_limits();
        self.probe_agents();
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

    /// Every `health_every`, ask each agent's runner how its server is (one probe at a time
    /// per agent; results come back on `health_rx`).
    fn probe_agents(&mut self) {
        let now = tokio::time::Instant::now();
        if now < self.next_probe {
            return;
        }
        self.next_probe = now + self.options.health_every;
        for (i, runner) in self.runners.iter().enumerate() {
            if self.probing[i] || self.removed[i] {
                continue;
            }
            let Some(probe) = runner.probe() else {
                continue;
            };
            self.probing[i] = true;
            let tx = self.health_tx.clone();
            tokio::spawn(async move {
                let _ = tx.send((i, probe.await)).await;
            });
        }
    }

    async fn health(&mut self, index: usize, health: Health) -> Result<(), EngineError> {
        self.probing[index] = false;
        let agent = &mut self.agents[index];
        if self.removed[index]
            || agent.status == AgentStatus::Draining
            || agent.status == health.status
        {
            return Ok(());
        }
        let Ok(event) = agent.transition(health.status, health.detail, Timestamp::now()) else {
            return Ok(());
        };
        let mut step = Step::default();
        step.batch.put_agent(agent);
        step.transition(event);
        self.commit(step).await
    }

    fn agent_index(&self, name: &str) -> Result<usize, EngineError> {
        self.agents
            .iter()
            .enumerate()
            .position(|(i, a)| !self.removed[i] && a.name.as_str() == name)
            .ok_or_else(|| EngineError::UnknownAgent(name.to_string()))
    }

    async fn add_agent(&mut self, spec: AgentSpec) -> Result<(), EngineError> {
        let name = spec.agent.name.to_string();
        if self.agent_index(&name).is_ok() {
            return Err(EngineError::DuplicateAgent(name));
        }
        let mut step = Step::default();
        step.batch.put_agent(&spec.agent);
        self.commit(step).await?;
        self.agents.push(spec.agent);
        self.runners.push(spec.runner);
        self.last_picked.push(0);
        self.probing.push(false);
        self.removed.push(false);
        self.next_probe = tokio::time::Instant::now();
        Ok(())
    }

    async fn remove_agent(&mut self, name: &str) -> Result<(), EngineError> {
        let index = self.agent_index(name)?;
        let agent = &mut self.agents[index];
        if agent.load > 0 {
            return Err(EngineError::AgentBusy {
                name: name.to_string(),
                running: agent.load,
            });
        }
        let now = Timestamp::now();
        let mut step = Step::default();
        if let Ok(event) = agent.transition(AgentStatus::Offline, "removed by the operator", now) {
            step.transition(event);
        }
        step.batch.remove_agent(&agent.name);
        self.commit(step).await?;
        self.removed[index] = true;
        Ok(())
    }

    async fn drain(&mut self, name: &str, drain: bool) -> Result<(), EngineError> {
        let index = self.agent_index(name)?;
        let agent = &mut self.agents[index];
        let (to, cause) = if drain {
            (AgentStatus::Draining, "drained by the operator")
        } else {
            (AgentStatus::Online, "undrained by the operator")
        };
        if agent.status == to {
            return Ok(());
        }
        let event = agent
            .transition(to, cause, Timestamp::now())
            .map_err(crate::domain::GraphError::from)?;
        let mut step = Step::default();
        step.batch.put_agent(agent);
        step.transition(event);
        self.commit(step).await?;
        if !drain {
            self.next_probe = tokio::time::Instant::now();
        }
        Ok(())
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

    fn snapshot(&self) -> Snapshot {
        let plans = self
            .plans
            .values()
            .map(|s| PlanView {
                id: s.plan.id,
                name: s.plan.name.clone(),
                tasks: s
                    .graph
                    .topological_order()
                    .into_iter()
                    .map(|t| TaskView {
                        id: t.id,
                        key: t.key.clone(),
                        status: t.status,
                        attempts: t.attempts,
                        needs: t.needs.clone(),
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            plans,
            running: self.running.len(),
            agents: self
                .agents
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.removed[*i])
                .map(|(_, a)| a.clone())
                .collect(),
        }
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

/// At most `max` bytes of `text` (on a character boundary), marked when cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes more)", &text[..end], text.len() - end)
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
fn persist_changed_tasks(step: &mut Step, graph: &TaskGraph) {
    let keys: Vec<String> = step
        .events
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
