//! Starting from what the store holds: the plans with work to come and the newest that ended
//! (older ones stay in the store, `history.rs`) and their graphs, how they use their repositories
//! (worktrees re-attached, integration worktrees made again if missing), what finished tasks
//! left, leases, and the sessions the last engine left running, which are re-attached at their
//! server when the runner can, and otherwise settled as failed with their tasks set to run
//! again (never twice). A merge that was under way is aborted cleanly and done again; a
//! resolver session that did not survive has its merge aborted and done again too.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use redb::ReadTransaction;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::fleet::Fleet;
use super::observe::RECENT_PLANS;
use super::workspace::{
    EndFuture, Ended, Place, PlanWorkState, Start, Workspaces, blocking, run_in,
};
use super::{Core, Herald, Role, Running, Step, put_task};
use crate::domain::MergeState;
use crate::domain::{
    CheckpointKind, Lifecycle, PlanId, RemoteSession, Session, SessionId, SessionKind,
    SessionStatus, TaskGraph, TaskId, TaskStatus,
};
use crate::engine::locking::TaskLocks;
use crate::engine::runner::{Job, Reporter};
use crate::engine::view::{Entry, RECENT_SESSIONS};
use crate::engine::{AgentSpec, EngineError, EngineEvent, EngineOptions};
use crate::store::{StoreError, StoreHandle, query};

/// What became of the tasks the last engine left running whose runs are not followed.
#[derive(Default)]
struct LeftRunning {
    /// Their sessions had completed: merged again.
    merges: Vec<(PlanId, String)>,
    /// Their merge failed the check and a fix session was lost: fixed again.
    fixes: Vec<(PlanId, String)>,
    /// Run again.
    reopened: usize,
    /// Plans with a task failed after too many lost attempts: they may have ended.
    given_up: Vec<PlanId>,
}

/// The plans an engine loads when it starts, oldest first: those with work to come, the newest
/// [`RECENT_PLANS`] that ended, and those whose merge conflicts wait for the operator, wherever
/// they are.
pub(in crate::engine) fn loaded_plans(txn: &ReadTransaction) -> Result<Vec<PlanId>, StoreError> {
    let mut ids = query::open_plans(txn)?;
    ids.extend(query::newest_finished_plans(txn, RECENT_PLANS)?);
    ids.extend(query::conflict_plans(txn)?);
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

impl Core {
    /// Load what the store holds and settle sessions that were running when the last engine
    /// stopped: their runs are gone with that process, so they end failed and their tasks go
    /// back to ready (never a second session for the same attempt).
    pub(in crate::engine) async fn recover(
        store: StoreHandle,
        agents: Vec<AgentSpec>,
        options: EngineOptions,
        events: broadcast::Sender<crate::engine::Told>,
        workspaces: Workspaces,
        rooms: crate::engine::rooms::Rooms,
    ) -> Result<Self, EngineError> {
        // The plans with work to come and the newest that ended; older ones stay in the store
        // (`history.rs`), so a long history costs start-up nothing.
        let (records, sessions, leases, paused, history, past) = store
            .read(|txn| {
                let ids = loaded_plans(txn)?;
                let mut records = Vec::with_capacity(ids.len());
                for id in ids {
                    records.extend(query::plan_record(txn, id)?);
                }
                let active = query::active_sessions(txn)?;
                let history = query::newest_sessions(txn, 600)?;
                let past = Past {
                    lasts: last_entries(txn, &active, &history)?,
                    spent: spent_so_far(txn, &active)?,
                    agents: query::agent_names(txn)?,
                };
                Ok((
                    records,
                    active,
                    query::leases(txn)?,
                    query::meta(txn, super::observe::PAUSED_KEY)?.is_some_and(|v| v != 0),
                    history,
                    past,
                ))
            })
            .await?;
        let (finished_tx, finished_rx) = mpsc::channel(1024);
        let (git_tx, git_rx) = mpsc::channel(256);
        let (report_tx, report_rx) = mpsc::channel(1024);
        let (health_tx, health_rx) = mpsc::channel(256);
        // The first check comes soon after start, not in the middle of recovery.
        let fleet = Fleet::new(agents, options.health_every / 10, options.health_every);
        let clock = options.clock;
        let mut core = Self {
            store,
            options,
            budgets: Default::default(),
            plans: Default::default(),
            fleet,
            running: HashMap::new(),
            finished_tx,
            finished_rx,
            git_tx,
            git_rx,
            resolver_ends: Vec::new(),
            fix_ends: Vec::new(),
            checking: HashMap::new(),
            scanner: Default::default(),
            contexts: HashMap::new(),
            workspaces,
            report_tx,
            report_rx,
            events: Herald::new(events, clock),
            locks: TaskLocks::restore(leases),
            retry_at: HashMap::new(),
            health_tx,
            health_rx,
            approvals: HashMap::new(),
            rooms,
            paused,
            observed: super::observe::Observed::default(),
            journal: Default::default(),
            steps_waiting: Vec::new(),
            landing: std::collections::HashSet::new(),
            base_resolves: Default::default(),
            tasks: super::tasks::Tasks::default(),
        };
        let now = core.now();
        for record in records {
            core.load(record, now).await?;
        }
        core.observe_history(history, &past.lasts).await?;
        core.settle_left_running(sessions, &past, now).await?;
        core.apply_retention(now).await?;
        Ok(core)
    }

    /// The newest sessions for the sessions table, with their tasks' keys (read from the store
    /// for plans that are not loaded).
    async fn observe_history(
        &mut self,
        history: Vec<Session>,
        lasts: &HashMap<SessionId, Entry>,
    ) -> Result<(), EngineError> {
        let unknown: Vec<TaskId> = history
            .iter()
            .filter_map(|s| s.task)
            .filter(|t| self.plans.locate(t).is_none())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let keys: HashMap<TaskId, String> = if unknown.is_empty() {
            HashMap::new()
        } else {
            self.store
                .read(move |txn| {
                    let mut keys = HashMap::new();
                    for id in unknown {
                        if let Some(task) = query::task(txn, id)? {
                            keys.insert(id, task.key);
                        }
                    }
                    Ok(keys)
                })
                .await?
        };
        let plans = &self.plans;
        self.observed = super::observe::Observed::with_history(history, lasts, |session| {
            session
                .task
                .and_then(|t| {
                    plans
                        .locate(&t)
                        .map(|(_, key)| key)
                        .or(keys.get(&t).map(String::as_str))
                })
                .map(str::to_string)
                .unwrap_or_default()
        });
        Ok(())
    }

    /// The sessions the last engine left running: re-attached where their runner can follow
    /// them, otherwise ended, with their tasks run again (or merged again, or failed after too
    /// many lost attempts), in one durable step; then the re-attached runs go on.
    async fn settle_left_running(
        &mut self,
        sessions: Vec<Session>,
        past: &Past,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let mut step = Step::default();
        let (resumed, settled, cancelled) = self.resume_or_end(sessions, past, &mut step, now);
        for (_, agent) in self.fleet.live() {
            step.batch.put_agent(agent);
        }
        // The stored agents are this engine's: one an earlier engine had that this one has
        // not (taken out of the config, a fleet's member gone) is no agent any more (hand
        // trial: `ocio status` counted them online, `ocio agents` listed them).
        for name in &past.agents {
            if self.fleet.index_of(name.as_str()).is_err() {
                step.batch.remove_agent(name);
            }
        }
        // Locks held by work that is not resuming go back.
        for holder in self.locks.holders() {
            let resuming = resumed
                .iter()
                .any(|(_, r)| r.session.task.is_some_and(|t| t.to_string() == holder));
            if !resuming {
                for resource in self.locks.release(&holder) {
                    step.batch.remove_lease(&resource);
                }
            }
        }
        let resumed_tasks: Vec<(PlanId, String)> = resumed
            .iter()
            .map(|(_, r)| (r.plan, r.key.clone()))
            .collect();
        let left = self.reopen_lost_tasks(&resumed_tasks, &mut step, now);
        if settled + left.reopened + resumed.len() > 0 {
            step.events.push(EngineEvent::Recovered {
                sessions: settled,
                tasks: left.reopened,
                resumed: resumed.len(),
            });
        }
        self.commit(step).await?;
        for plan in left.given_up.into_iter().chain(cancelled) {
            self.check_finished(plan).await?;
        }
        self.redo_merges(left.merges).await;
        let mut step = Step::default();
        for (plan, key) in left.fixes {
            let Some(state) = self.plans.get_mut(&plan) else {
                continue;
            };
            tracing::info!(task = %key, "fixing the check again after a restart");
            // The merge lock went back with the lost session's: the fix holds it again.
            if let Some(task) = state.graph.get(&key) {
                let names = [format!("merge:{}", state.work.work.key)];
                for lease in self
                    .locks
                    .try_acquire(&task.id.to_string(), &names, now)
                    .unwrap_or_default()
                {
                    step.batch.put_lease(&lease);
                }
            }
            state.work.merging = Some(key.clone());
            state.work.fixes.push_back(key);
        }
        self.commit(step).await?;
        for (future, run) in resumed {
            self.spawn(future, run);
        }
        Ok(())
    }

    /// Each session left active: re-attached (its run to follow), or ended into `step`. The
    /// runs to follow, and how many sessions ended.
    fn resume_or_end(
        &mut self,
        sessions: Vec<Session>,
        past: &Past,
        step: &mut Step,
        now: Timestamp,
    ) -> (Vec<(EndFuture, Running)>, usize, Vec<PlanId>) {
        let mut resumed = Vec::new();
        let mut settled = 0;
        let mut cancelled = Vec::new();
        for mut session in sessions.into_iter().filter(|s| s.is_active()) {
            let last = past.lasts.get(&session.id);
            if let Some((future, mut run)) = self.resume(&session, last, now) {
                // Shown until the run's backfill tells what it did since.
                run.last = past.lasts.get(&session.id).cloned();
                // Asked to stop before the restart: stopped now, as it was asked.
                if let Some(to) = session.stop_asked {
                    run.ask_stop(to);
                }
                resumed.push((future, run));
                continue;
            }
            self.abandon(&session);
            if session.stop_asked == Some(SessionStatus::Cancelled) {
                cancelled.extend(self.cancel_left(&mut session, step, now));
                settled += 1;
                continue;
            }
            let cause = "engine restarted while it ran; the run did not survive";
            // What its steps spent until then stays its usage (it was told only at its end).
            if let Some(spent) = past.spent.get(&session.id)
                && session.usage.total_tokens() < spent.total_tokens()
            {
                session.usage = *spent;
            }
            session.last_error = Some(cause.into());
            let to = if session.status.can_become(SessionStatus::Lost) {
                SessionStatus::Lost
            } else {
                SessionStatus::Cancelled
            };
            if let Ok(event) = session.transition(to, cause, now) {
                step.transition(event);
            }
            step.batch.put_session(&session);
            let task = session.task.and_then(|t| self.plans.locate(&t));
            let key = task.map(|(_, key)| key.to_string()).unwrap_or_default();
            let last = past.lasts.get(&session.id).cloned();
            self.observed.settled(&session, key, last);
            settled += 1;
        }
        (resumed, settled, cancelled)
    }

    /// A session the operator cancelled whose run is not followed after the restart: it ends
    /// cancelled, and so does its task (its dependents blocked), as its run's end would have
    /// settled them; the task is not run again. Its plan, to be checked for its end.
    fn cancel_left(
        &mut self,
        session: &mut Session,
        step: &mut Step,
        now: Timestamp,
    ) -> Option<PlanId> {
        let cause = "cancelled by the operator";
        session.last_error = Some(cause.into());
        if let Ok(event) = session.transition(SessionStatus::Cancelled, cause, now) {
            step.transition(event);
        }
        step.batch.put_session(session);
        let (plan, key) = session.task.and_then(|t| self.plans.locate(&t))?;
        let key = key.to_string();
        let state = self.plans.get_mut(&plan)?;
        if let Ok(event) = state
            .graph
            .transition(&key, TaskStatus::Cancelled, cause, now)
        {
            step.transition(event);
            for event in state.graph.block_dependents(&key, now).unwrap_or_default() {
                step.transition(event);
            }
            super::persist_changed_tasks(step, &state.graph, 0);
        }
        self.observed.settled(session, key, None);
        Some(plan)
    }

    /// Tasks still running in the store whose run is not followed: merged again when their
    /// session had completed, otherwise ready again (a lost attempt spends no retries) or,
    /// after too many lost attempts, failed with their dependents blocked.
    fn reopen_lost_tasks(
        &mut self,
        resumed: &[(PlanId, String)],
        step: &mut Step,
        now: Timestamp,
    ) -> LeftRunning {
        let mut left = LeftRunning::default();
        for (plan_id, state) in self.plans.iter_mut() {
            let running: Vec<String> = state
                .graph
                .tasks()
                .filter(|t| t.status == TaskStatus::Running)
                .filter(|t| !resumed.contains(&(*plan_id, t.key.clone())))
                .map(|t| t.key.clone())
                .collect();
            for key in running {
                let merging = state.work.worktrees()
                    && state.graph.get(&key).is_some_and(|t| {
                        self.contexts.get(&t.id).is_some_and(|c| {
                            matches!(c.merge, MergeState::Pending | MergeState::Resolving { .. })
                        })
                    });
                if merging {
                    // Its session completed: merge it (again).
                    left.merges.push((*plan_id, key));
                    continue;
                }
                let fixing = state.graph.get(&key).is_some_and(|t| {
                    self.contexts
                        .get(&t.id)
                        .is_some_and(|c| matches!(c.merge, MergeState::Fixing { .. }))
                });
                if fixing && state.work.worktrees() {
                    // Its merge stands with a fix under way: a fix session starts again.
                    left.fixes.push((*plan_id, key));
                    continue;
                }
                if state.graph.lose_attempt(&key).unwrap_or(false) {
                    if let Ok(event) = state.graph.transition(
                        &key,
                        TaskStatus::Ready,
                        "engine restarted; run again (a lost attempt spends no retries)",
                        now,
                    ) {
                        step.transition(event);
                        state.ready_since.insert(key.clone(), now);
                        left.reopened += 1;
                    }
                } else {
                    if left.given_up.last() != Some(plan_id) {
                        left.given_up.push(*plan_id);
                    }
                    let mark = step.events.len();
                    let cause = format!(
                        "its run was lost to {} engine restarts; `ocio retry` runs it again",
                        crate::domain::task::MAX_LOST_ATTEMPTS + 1
                    );
                    if let Ok(event) = state.graph.transition(&key, TaskStatus::Failed, cause, now)
                    {
                        step.transition(event);
                    }
                    for event in state.graph.block_dependents(&key, now).unwrap_or_default() {
                        step.transition(event);
                    }
                    super::persist_changed_tasks(step, &state.graph, mark);
                }
                put_task(&mut step.batch, &state.graph, &key);
            }
        }
        left
    }

    /// A plan's work state after a restart: its workspace opened again (blocking, before the
    /// loop runs), or the reason it cannot be, which its runs then fail with.
    pub(super) async fn reattach(
        &self,
        plan: &crate::domain::Plan,
        graph: &TaskGraph,
        work: Option<crate::domain::PlanWork>,
    ) -> PlanWorkState {
        let Some(work) = work else {
            return PlanWorkState::plain(plan);
        };
        // A plan whose tasks are all done needs no git again (a failed one may be retried).
        let done = graph.tasks().all(|t| t.status == TaskStatus::Done);
        if done || work.mode == crate::domain::WorkMode::Plain {
            return PlanWorkState::new(work, None);
        }
        // An ended plan (a failed task may be retried) does not get its integration worktree
        // made again: its cleanup may have removed it, and a merge makes it when needed.
        let active = graph.tasks().any(|t| t.status.has_work_to_come());
        let (workspaces, p, w) = (self.workspaces.clone(), plan.clone(), work.clone());
        match blocking(move || workspaces.reattach(&p, &w, active)).await {
            Ok(workspace) => PlanWorkState::new(work, workspace),
            Err(error) => {
                tracing::error!(plan = %plan.name, %error, "cannot use the plan's repository again");
                let mut state = PlanWorkState::new(work, None);
                state.broken = Some(format!("the plan's repository cannot be used: {error}"));
                state
            }
        }
    }

    /// Merges that were waiting or under way when the last engine stopped: a merge left in
    /// the integration worktree (by a crash mid-merge, or for a resolver that did not survive)
    /// is aborted, then each is queued again, in task order.
    async fn redo_merges(&mut self, merges: Vec<(PlanId, String)>) {
        for (plan, key) in merges {
            let Some(state) = self.plans.get_mut(&plan) else {
                continue;
            };
            if state.work.merges.is_empty()
                && let Some(workspace) = state.work.workspace.clone()
            {
                let plan_key = state.work.work.key.clone();
                if let Err(e) = blocking(move || workspace.abort_merge(&plan_key)).await {
                    tracing::warn!(error = %e, "cannot abort a merge left in progress");
                }
            }
            tracing::info!(task = %key, "merging again after a restart");
            state.work.merges.push_back(key);
        }
    }

    /// A session a previous engine left running at a server that can follow it: re-attach.
    /// One whose remote session was never recorded (the engine stopped between making it and
    /// recording it) runs again as the same attempt where the runner can take that session up.
    pub(super) fn resume(
        &mut self,
        session: &Session,
        last: Option<&Entry>,
        now: Timestamp,
    ) -> Option<(EndFuture, Running)> {
        let index = self.fleet.index_of_session_agent(session.agent.as_ref())?;
        let remote = session.remote.clone();
        if remote.is_none()
            && (matches!(session.kind, SessionKind::Resolve | SessionKind::Fix)
                || !self.fleet.runner(index).adopts())
        {
            return None;
        }
        let (plan_id, key) = self.plans.locate(&session.task?)?;
        let key = key.to_string();
        let state = self.plans.get(&plan_id)?;
        let task = state
            .graph
            .get(&key)
            .filter(|t| t.status == TaskStatus::Running)?;
        let role = match session.kind {
            SessionKind::Resolve => match self.contexts.get(&task.id).map(|c| &c.merge) {
                Some(MergeState::Resolving { files }) => Role::Resolver {
                    files: files.clone(),
                },
                _ => return None,
            },
            SessionKind::Fix => match self.contexts.get(&task.id).map(|c| &c.merge) {
                Some(MergeState::Fixing { fix, .. }) => Role::Fixer { fix: *fix },
                _ => return None,
            },
            _ => Role::Task,
        };
        let (directory, overlap_dir, place) = match (&role, &remote) {
            (Role::Task, _) => {
                let agent = session.agent.as_ref().map_or("", |a| a.as_str());
                state
                    .work
                    .place(&state.plan.repo, task, session.attempt, agent)
            }
            // Its job works in the plan's integration worktree; the session may work on a
            // build box (its recorded directory there), whence its work comes back.
            (Role::Resolver { .. } | Role::Fixer { .. }, Some(remote)) => {
                let directory = match &state.work.workspace {
                    Some(workspace) => workspace.integration_path(&state.work.work.key),
                    None => remote.directory.clone(),
                };
                (directory, None, Place::AsIs)
            }
            // A landing's resolver is not followed after a restart: the next landing starts over.
            (Role::Resolver { .. } | Role::Fixer { .. }, None) | (Role::BaseResolver, _) => {
                return None;
            }
        };
        let (steer, steering) = crate::engine::runner::Steering::channel();
        let job = Job {
            reporter: Reporter {
                tx: self.report_tx.clone(),
            },
            session: session.id,
            title: session.title.clone(),
            // Sent only if it never reached the server: the prompt the attempt was given.
            prompt: match &role {
                Role::Task => super::context::prompt(
                    &state.graph,
                    task,
                    &self.contexts,
                    self.options.context_budget,
                ),
                Role::Resolver { files } => super::merge::resolver_prompt_of(state, task, files),
                Role::Fixer { .. } => match self.contexts.get(&task.id).map(|c| &c.merge) {
                    Some(MergeState::Fixing {
                        command, output, ..
                    }) => super::fix::fix_prompt(state, task, command, output),
                    _ => return None,
                },
                Role::BaseResolver => return None,
            },
            task_key: key.clone(),
            attempt: session.attempt,
            // Ocio's own directory for the run; where its session works (the same, or a build
            // box's) is the remote's.
            directory,
            adopt: remote.is_none(),
            questions: self.options.questions.offers_questions(),
            steering,
            word: session.word.clone().map(|word| match word {
                crate::domain::OperatorWord::Interrupt => crate::engine::runner::Steer::Interrupt,
                crate::domain::OperatorWord::Say { id, text } => {
                    crate::engine::runner::Steer::Say { id, text }
                }
            }),
            said: session.said.clone(),
            streamed: last
                .filter(|e| {
                    e.part.is_some() && matches!(e.activity, crate::engine::Activity::Text { .. })
                })
                .cloned(),
            setup: Default::default(),
        };
        let resolving = matches!(role, Role::Resolver { .. } | Role::Fixer { .. });
        let (stop, stopped) = oneshot::channel();
        let start = match remote {
            Some(remote) => Start::Resumed(self.fleet.runner(index).resume(job, remote, stopped)?),
            None => Start::Run(self.fleet.runner(index), Box::new(job), stopped),
        };
        self.fleet.take_resumed(index).then_some(())?;
        if resolving && let Some(state) = self.plans.get_mut(&plan_id) {
            state.work.merging = Some(key.clone());
        }
        tracing::info!(session = %session.id, task = %key, "re-attached to a session still on its server");
        let _ = now;
        let mut run = Running::new(session.clone(), plan_id, key, index, role);
        run.stop = Some(stop);
        run.steer = Some(steer);
        run.overlap_dir = overlap_dir;
        run.stop_note = place.stop_note();
        Some((Box::pin(run_in(place, start)), run))
    }

    /// A session left running remotely that this engine will not follow (its agent is gone
    /// or full, its task no longer runs): stopped at its server, best effort, so it never
    /// works beside the task's next attempt.
    fn abandon(&self, session: &Session) {
        let Some(remote) = session.remote.clone() else {
            return;
        };
        let runner = self
            .fleet
            .index_of_session_agent(session.agent.as_ref())
            .map(|index| self.fleet.runner(index));
        match runner.and_then(|r| r.abandon(remote.clone())) {
            Some(abort) => {
                self.tasks.spawn(abort);
            }
            // A host stops those of servers no longer configured before the engine starts
            // (`host::left`), and says so.
            None => tracing::debug!(
                session = %session.id,
                remote = %remote.session_id,
                server = %remote.server,
                "a remote session left running has no agent here to stop it"
            ),
        }
    }

    pub(super) fn spawn(
        &mut self,
        future: impl std::future::Future<Output = Ended> + Send + 'static,
        run: Running,
    ) {
        let done = self.finished_tx.clone();
        let id = run.session.id;
        self.tasks.spawn(async move {
            let ended = future.await;
            let _ = done.send((id, ended)).await;
        });
        self.running.insert(id, run);
    }

    /// Record where a run lives remotely, durably, then let the runner go on.
    pub(super) async fn record_remote(
        &mut self,
        session: SessionId,
        remote: RemoteSession,
        durable: oneshot::Sender<()>,
    ) -> Result<(), EngineError> {
        let Some(run) = self.running.get_mut(&session) else {
            return Ok(());
        };
        let now = self.options.clock.now();
        run.session.remote = Some(remote.clone());
        let data = serde_json::json!({
            "server": remote.server,
            "remote_session": remote.session_id,
            "directory": remote.directory,
        });
        let checkpoint = run.session.checkpoint(CheckpointKind::Note, data, now);
        let mut step = Step::default();
        step.batch
            .put_session(&run.session)
            .put_checkpoint(&checkpoint);
        self.commit(step).await?;
        let _ = durable.send(());
        Ok(())
    }
}

/// What the store says of the sessions the last engine left: what each did last, and what
/// each active one had spent at its newest step.
struct Past {
    lasts: HashMap<SessionId, Entry>,
    spent: HashMap<SessionId, crate::domain::Usage>,
    /// The agents stored by the engines before this one.
    agents: Vec<crate::domain::AgentName>,
}

/// What each active session had spent at its newest step checkpoint.
fn spent_so_far(
    txn: &redb::ReadTransaction,
    active: &[Session],
) -> Result<HashMap<SessionId, crate::domain::Usage>, StoreError> {
    each_readable(active.iter(), "spent", |id| {
        query::newest_step_usage(txn, id)
    })
}

/// What each session of `active` and the ended ones of `history` the sessions table shows
/// did last: its transcript's newest entry, where one is stored.
fn last_entries(
    txn: &redb::ReadTransaction,
    active: &[Session],
    history: &[Session],
) -> Result<HashMap<SessionId, Entry>, StoreError> {
    let ended = history
        .iter()
        .filter(|s| !s.is_active())
        .take(RECENT_SESSIONS);
    each_readable(active.iter().chain(ended), "did last", |id| {
        crate::store::last_transcript_entry(txn, id)
    })
}

/// What `read` finds of each of `sessions`, where it finds something. A record that cannot
/// be decoded (damaged, or written by a newer ocio) is left out and logged: reading what
/// sessions did and spent is never a reason for the engine not to start.
fn each_readable<'s, T>(
    sessions: impl Iterator<Item = &'s Session>,
    what: &str,
    read: impl Fn(SessionId) -> Result<Option<T>, StoreError>,
) -> Result<HashMap<SessionId, T>, StoreError> {
    let mut found = HashMap::new();
    for session in sessions {
        match read(session.id) {
            Ok(Some(value)) => {
                found.insert(session.id, value);
            }
            Ok(None) => {}
            Err(StoreError::Decode { detail, .. }) => {
                tracing::warn!(session = %session.id, %detail, "cannot read what the session {what}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}
