//! The engine's single owner of state: plans and their task graphs, agents, running sessions.
//! Commands and finished runs arrive on channels; each step builds one store batch, commits it,
//! and only then announces events and starts runs. Start-up (`recovery.rs`), what front ends
//! ask of plans and tasks (`operator.rs`), dispatching (`dispatch.rs`), settling ended runs
//! (`settle.rs`), finished plans kept in the store and loaded on demand (`history.rs`), agent
//! management (`agents.rs`), repositories and worktrees (`workspace.rs`), merges and conflicts
//! (`merge.rs`) and shared context (`context.rs`) live beside this file.

mod agents;
mod approvals;
mod budget;
mod budget_ops;
mod context;
mod diff;
mod dispatch;
mod fix;
mod fleet;
mod gate;
mod history;
mod journal;
mod land;
mod land_base;
mod merge;
mod observe;
mod operator;
mod plans;
mod pull;
mod recovery;
mod review;
pub(crate) use review::review_at_rest;
mod runs;
mod scan;
mod settle;
mod steer;
mod tasks;
mod timeline;
mod tree;
mod workspace;

pub(super) use recovery::loaded_plans;

#[cfg(test)]
mod approvals_tests;
#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod lost_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod test_wait;

use std::collections::HashMap;

use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::locking::TaskLocks;
use super::runner::{Health, RemoteReport};
use super::{
    Command, Ending, EngineError, EngineEvent, EngineOptions, Noted, Reply, Request, Told,
};
use crate::domain::TaskContext;
use crate::domain::{
    AgentName, DomainEvent, PlanId, Session, SessionId, SessionKind, SessionStatus, Task,
    TaskGraph, TaskId, Transition,
};
use crate::store::{Batch, StoreHandle};
use plans::Plans;
use runs::{Role, Running};
use workspace::Ended;

pub(super) use workspace::{Prepared, Workspaces};

pub(super) struct Core {
    store: StoreHandle,
    options: EngineOptions,
    /// The plans with work to come and the newest that ended; older ones stay in the store
    /// until the operator acts on them (`history.rs`).
    plans: Plans,
    /// Agents and their runners.
    fleet: fleet::Fleet,
    running: HashMap<SessionId, Running>,
    finished_tx: mpsc::Sender<(SessionId, Ended)>,
    finished_rx: mpsc::Receiver<(SessionId, Ended)>,
    /// Git jobs (merges, resolvers' conclusions) report here.
    git_tx: mpsc::Sender<merge::GitDone>,
    git_rx: mpsc::Receiver<merge::GitDone>,
    /// Resolver sessions that ended, acted on once their end is durable.
    resolver_ends: Vec<merge::ResolverEnd>,
    fix_ends: Vec<fix::FixEnd>,
    /// Tasks whose merge the plan's check is testing now, with its newest output line.
    checking: HashMap<TaskId, String>,
    /// Session diffs for the overlap map.
    scanner: scan::Scanner,
    /// What the finished tasks of `plans` left for the tasks after them (durable, in the
    /// store).
    contexts: HashMap<TaskId, TaskContext>,
    workspaces: Workspaces,
    report_tx: mpsc::Sender<RemoteReport>,
    report_rx: mpsc::Receiver<RemoteReport>,
    events: Herald,
    locks: TaskLocks,
    /// Tasks waiting out a retry backoff: not before this time, and not on this agent (when
    /// the agent was at fault) if another can take it.
    retry_at: HashMap<TaskId, (Timestamp, Option<usize>)>,
    health_tx: mpsc::Sender<(usize, Health)>,
    health_rx: mpsc::Receiver<(usize, Health)>,
    /// Permission requests and questions waiting for the operator, by request id.
    approvals: HashMap<String, approvals::Pending>,
    /// The control rooms attached (questions wait for the operator while one is).
    rooms: super::rooms::Rooms,
    /// No new sessions start while set (durable, in the store's meta table).
    paused: bool,
    observed: observe::Observed,
    /// Transcript entries waiting to be written.
    journal: journal::Journal,
    /// Steps running sessions reported, to be recorded at the next tick.
    steps_waiting: Vec<crate::domain::Checkpoint>,
    /// Plans whose landing's git work is under way (one at a time per plan).
    landing: std::collections::HashSet<PlanId>,
    /// Landings waiting for a resolver session to settle their moved base's conflicts.
    base_resolves: land_base::BaseResolves,
    /// Everything spawned beside the loop; stopped when the loop ends.
    tasks: tasks::Tasks,
    /// Spend against budgets, and budgets set while ocio runs (durable, in the store).
    budgets: budget::Ledger,
}

/// Tells the front ends what happened, numbering each event from 1 (see [`Told`]). Only the
/// core tells, so a snapshot it takes reflects exactly the events numbered up to
/// [`Herald::last`]. What a later front end shows of the past besides transitions it keeps
/// as notes, written with the next commit (see [`Noted`]).
pub(super) struct Herald {
    tx: broadcast::Sender<Told>,
    last: u64,
    clock: super::Clock,
    notes: Vec<Noted>,
}

impl Herald {
    pub(super) fn new(tx: broadcast::Sender<Told>, clock: super::Clock) -> Self {
        Self {
            tx,
            last: 0,
            clock,
            notes: Vec::new(),
        }
    }

    fn tell(&mut self, event: EngineEvent) {
        self.last += 1;
        if Noted::keeps(&event) {
            self.notes.push(Noted {
                at: self.clock.now(),
                event: event.clone(),
            });
        }
        let _ = self.tx.send(Told {
            seq: self.last,
            event,
        });
    }

    /// The notes told since the last commit, into `batch`.
    fn note_into(&mut self, batch: &mut crate::store::Batch) {
        for note in self.notes.drain(..) {
            batch.append_note(&note);
        }
    }

    /// The notes told and not yet written (they go with the next commit).
    fn pending_notes(&self) -> Vec<Noted> {
        self.notes.clone()
    }

    /// The number of the last event told (0: none yet).
    fn last(&self) -> u64 {
        self.last
    }
}

/// A reply to a [`super::Request`] that the core answers as one of its typed results; work
/// that finishes off the loop (a diff, a planning session, a store read) answers through it.
pub(crate) struct Answer {
    tx: oneshot::Sender<Result<Reply, EngineError>>,
}

impl Answer {
    pub(crate) fn new(tx: oneshot::Sender<Result<Reply, EngineError>>) -> Self {
        Self { tx }
    }

    fn send(self, result: Result<Reply, EngineError>) {
        let _ = self.tx.send(result);
    }

    /// Answer with `T`, made a reply by `wrap`, when it comes.
    fn of<T>(self, wrap: fn(T) -> Reply) -> Typed<T> {
        Typed { answer: self, wrap }
    }
}

/// An [`Answer`] that takes a typed result.
pub(super) struct Typed<T> {
    answer: Answer,
    wrap: fn(T) -> Reply,
}

impl<T> Typed<T> {
    fn send(self, result: Result<T, EngineError>) {
        self.answer.send(result.map(self.wrap));
    }
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
    /// The control loop, until a front end asks it to stop or a step fails; a failure is
    /// announced (an [`EngineEvent::EngineFailed`] and `failed`) before the loop ends.
    pub(super) async fn run(
        mut self,
        commands: mpsc::Receiver<Command>,
        ending: watch::Sender<Ending>,
    ) {
        let result = match self.dispatch().await {
            Ok(()) => self.steps(commands).await,
            Err(e) => Err(e),
        };
        // The last notes (a plan's end told as it stopped) are kept too.
        let result = match result {
            Ok(()) => self.commit(Step::default()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // A store failure means nothing more can be made durable: stop rather than act
            // on state that was never recorded, and say so to every front end.
            tracing::error!(error = %e, "engine stopping: {e}");
            let error = e.to_string();
            self.events.tell(EngineEvent::EngineFailed {
                error: error.clone(),
            });
            ending.send_replace(Ending::Failed(error));
        } else {
            ending.send_replace(Ending::Stopped);
        }
        self.tasks.stop().await;
        tracing::info!(running = self.running.len(), "engine stopped");
    }

    /// One step per command, ended run, report or tick, each followed by a dispatch round;
    /// `Ok` when asked to stop, the first error otherwise.
    async fn steps(&mut self, mut commands: mpsc::Receiver<Command>) -> Result<(), EngineError> {
        let mut tick = tokio::time::interval(self.options.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                command = commands.recv() => match command {
                    None => {
                        self.record_steps().await?;
                        return self.flush_transcripts().await;
                    }
                    Some(Command::Shutdown(reply)) => {
                        self.tasks.stop().await;
                        // What the runs said last is kept (they are stopped: nothing follows).
                        while let Ok(report) = self.report_rx.try_recv() {
                            if let RemoteReport::Activity { session, entry } = report
                                && let Some(step) = self.on_activity(session, entry)
                            {
                                self.steps_waiting.push(step);
                            }
                        }
                        self.record_steps().await?;
                        self.flush_transcripts().await?;
                        let _ = reply.send(());
                        return Ok(());
                    }
                    Some(command) => self.command(command).await,
                },
                Some((session, ended)) = self.finished_rx.recv() => self.finished_after_reports(session, ended).await,
                Some(done) = self.git_rx.recv() => self.on_git(done).await,
                Some(report) = self.report_rx.recv() => match self.on_report(report).await {
                    Ok(false) => continue, // nothing durable changed: no dispatch round needed
                    result => result.map(drop),
                },
                Some((agent, health)) = self.health_rx.recv() => self.health(agent, health).await,
                _ = tick.tick() => self.on_tick().await,
            };
            result?;
            self.dispatch().await?;
        }
    }

    /// A run ended: what it reported before it ended (its last step, its last words) is taken
    /// first. The loop picks among waiting channels at random, and a busy store can leave
    /// both a run's last report and its end waiting.
    async fn finished_after_reports(
        &mut self,
        session: SessionId,
        ended: Ended,
    ) -> Result<(), EngineError> {
        while let Ok(report) = self.report_rx.try_recv() {
            self.on_report(report).await?;
        }
        self.record_steps().await?;
        self.finished(session, ended).await
    }

    /// What a run reported; `false` when nothing durable changed.
    async fn on_report(&mut self, report: RemoteReport) -> Result<bool, EngineError> {
        match report {
            RemoteReport::Remote {
                session,
                remote,
                durable,
            } => self.record_remote(session, remote, durable).await?,
            RemoteReport::Permission {
                session,
                ask,
                decision,
            } => self.on_permission(session, ask, decision).await?,
            RemoteReport::Question {
                session,
                ask,
                reply,
            } => self.on_question(session, ask, reply).await?,
            RemoteReport::Withdrawn {
                session,
                request,
                why,
                answered,
            } => self.on_withdrawn(session, request, why, answered).await?,
            RemoteReport::Activity { session, entry } => {
                let Some(step) = self.on_activity(session, entry) else {
                    if self.journal.is_full() {
                        self.flush_transcripts().await?;
                    }
                    return Ok(false);
                };
                self.steps_waiting.push(step);
                // A step that may reach a budget counts at once: the stop it calls for cannot
                // wait for a tick the run may not live to see. Other steps count at the next
                // tick, many in one commit.
                if !self.may_reach_budget(session, &self.steps_waiting) {
                    return Ok(false);
                }
                self.record_steps().await?;
            }
            RemoteReport::Backfill { session, entries } => {
                self.on_backfill(session, entries).await?
            }
        }
        Ok(true)
    }

    async fn command(&mut self, command: Command) -> Result<(), EngineError> {
        match command {
            Command::Call(request, answer) => return self.call(request, answer).await,
            Command::Check(file, reply) => {
                let checked =
                    file.validate_against_agents(&self.fleet.live_agents(), &self.options.fleets);
                let _ = reply.send(checked.map(|()| file).map_err(EngineError::Plan));
            }
            Command::Submit(prepared, reply) => {
                let result = self.submit(*prepared).await;
                let halt = halted_by(&result);
                let _ = reply.send(result);
                if let Some(halt) = halt {
                    return Err(halt);
                }
            }
            Command::Footprint(reply) => {
                let _ = reply.send(self.footprint());
            }
            Command::AddAgent(spec, reply) => {
                let _ = reply.send(self.add_agent(*spec).await);
            }
            Command::RemoveAgent(name, cause, reply) => {
                let _ = reply.send(self.remove_agent(&name, &cause).await);
            }
            Command::Drain(name, drain, cause, lifts, reply) => {
                let _ = reply.send(self.drain(&name, drain, &cause, lifts.as_deref()).await);
            }
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
            Command::Tell(event) => self.events.tell(*event),
        }
        Ok(())
    }

    /// A front end's request. Work that runs off the loop answers when it is done.
    async fn call(&mut self, request: Request, answer: Answer) -> Result<(), EngineError> {
        let done = |()| Reply::Done;
        let result = match request {
            Request::Snapshot => Ok(Reply::Snapshot {
                snapshot: Box::new(self.snapshot()),
            }),
            Request::Transcript { session } => {
                let answer = answer.of(|entries| Reply::Transcript { entries });
                return self.transcript(session, answer).await;
            }
            Request::Diff { session } => {
                self.diff(session, answer.of(|text| Reply::Diff { text }));
                return Ok(());
            }
            Request::Context { plan } => {
                self.context(plan, answer.of(|tasks| Reply::Context { tasks }));
                return Ok(());
            }
            Request::Review { plan } => {
                let answer = answer.of(|review| Reply::Review {
                    review: Box::new(review),
                });
                self.review(plan, answer);
                return Ok(());
            }
            Request::MarkReviewed {
                plan,
                file,
                reviewed,
            } => {
                self.mark_reviewed(plan, file, reviewed, answer.of(done));
                return Ok(());
            }
            Request::History { since, last } => {
                self.history(since, last, answer.of(|entries| Reply::History { entries }));
                return Ok(());
            }
            Request::Notes { last } => {
                self.notes(last, answer.of(|notes| Reply::Notes { notes }));
                return Ok(());
            }
            Request::PruneTranscripts { ended_before } => {
                self.prune_transcripts(ended_before, answer.of(|pruned| Reply::Pruned { pruned }));
                return Ok(());
            }
            Request::Land { plan, mode, push } => {
                let answer = answer.of(|landing| Reply::Landed {
                    landing: Box::new(landing),
                });
                self.land(plan, mode, push, answer).await;
                // It may have loaded an old plan from the store (`history.rs`).
                self.trim_finished();
                return Ok(());
            }
            Request::Timeline { plan, by, since } => {
                let answer = answer.of(|timeline| Reply::Timeline {
                    timeline: Box::new(timeline),
                });
                self.timeline(plan, by, since, answer);
                return Ok(());
            }
            Request::Search { query } => {
                let answer = answer.of(|found| Reply::Found { found });
                self.search(query, answer);
                return Ok(());
            }
            Request::Plan { goal, repo } => {
                let answer = answer.of(|proposal| Reply::Proposal { proposal });
                self.plan(goal, repo, answer);
                return Ok(());
            }
            // Either may have loaded an old plan from the store (`history.rs`).
            Request::Cancel { task } => {
                let result = self.cancel(task).await.map(done);
                self.trim_finished();
                result
            }
            Request::Retry { task } => {
                let result = self.retry(task).await.map(done);
                self.trim_finished();
                result
            }
            Request::Approve {
                request,
                decision,
                by,
            } => self.approve(&request, decision, by).await.map(done),
            Request::Answer {
                request,
                answers,
                by,
            } => self.answer(&request, &answers, by).await.map(done),
            Request::Say { session, text } => self.say(session, text).await.map(done),
            Request::Interrupt { session } => self.interrupt(session).await.map(done),
            Request::Pause { paused } => self.pause(paused).await.map(done),
            Request::Budget {
                plan,
                target,
                raise,
                then,
            } => {
                let result = self.settle_budget(plan, target, raise, then).await;
                // It may have loaded an old plan from the store (`history.rs`).
                self.trim_finished();
                result.map(done)
            }
            Request::Drain { agent, drain } => {
                let cause = match drain {
                    true => "drained by the operator",
                    false => "undrained by the operator",
                };
                self.drain(&agent, drain, cause, None).await.map(done)
            }
            // Parsed and prepared off the loop, then sent as `Command::Submit`.
            Request::Submit { .. } => Err(EngineError::Stopped),
        };
        let halt = halted_by(&result);
        answer.send(result);
        match halt {
            Some(halt) => Err(halt),
            None => Ok(()),
        }
    }

    async fn on_tick(&mut self) -> Result<(), EngineError> {
        self.record_steps().await?;
        // Notes told since the last commit (a plan's end, a check's) are written now.
        self.commit(Step::default()).await?;
        let now = std::time::Instant::now();
        self.flush_journal(journal::Drain::Due(now)).await?;
        self.enforce_time_limits();
        self.expire_questions().await?;
        self.probe_agents();
        self.scan_worktrees();
        let now = self.now();
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
        let now = self.now();
        for run in self.running.values_mut() {
            if run.stopping.is_none() && run.session.is_overdue(now) {
                tracing::info!(session = %run.session.id, "time limit reached; stopping");
                run.ask_stop(SessionStatus::TimedOut);
            }
        }
    }

    /// The time of day, from the engine's clock.
    fn now(&self) -> Timestamp {
        self.options.clock.now()
    }

    /// Durable first, then announced: commits `step` (with the transcript entries waiting in
    /// the journal), then tells its events.
    async fn commit(&mut self, mut step: Step) -> Result<(), EngineError> {
        self.events.note_into(&mut step.batch);
        if !step.batch.is_empty() {
            let cap = self.options.transcript_cap;
            self.journal
                .drain_into(&mut step.batch, cap, journal::Drain::All);
            self.store.commit(step.batch).await?;
        }
        for event in step.events {
            self.events.tell(event);
        }
        Ok(())
    }
}

/// A store failure answered to a front end also stops the loop: nothing more can be made
/// durable. The loop's error names it, so every front end is told why.
fn halted_by<T>(result: &Result<T, EngineError>) -> Option<EngineError> {
    match result {
        Err(EngineError::Store(e)) => Some(EngineError::Halted(e.to_string())),
        _ => None,
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
