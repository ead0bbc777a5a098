//! The orchestrator: schedules plan tasks as sessions over agents, through a durable control
//! loop. Front ends (the TUI, headless mode, the control socket) reach it only through an
//! [`EngineHandle`]: commands in, [`EngineEvent`]s out. The engine never imports a UI crate.
//!
//! One task owns all engine state (`core/`); every change is committed to the store before it
//! is announced or acted on, so a restart (even `kill -9`) resumes from what was acknowledged.
//!
//! A plan whose `repo` is a git repository runs each session in a git worktree of its own and
//! merges finished tasks into the plan's integration branch (`worktrees = true`, the default),
//! or runs its sessions one at a time in the checkout (`worktrees = false`). A plan whose
//! `repo` is not in a git repository runs its sessions in that directory as it is, in
//! parallel, with no branches, merges or changed-file records. Git runs on blocking threads,
//! never on the engine's loop.

pub(crate) mod api;
pub mod approval;
mod clock;
mod core;
mod locking;
pub mod question;
mod rooms;
pub(crate) mod routing;
pub(crate) mod runner;
pub(crate) mod shell;
mod simulated;
pub(crate) mod spend;
pub mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::domain::task::{CleanupPolicy, ConflictPolicy};
use crate::domain::{Agent, AgentName, DomainEvent, PlanId, SessionId, TaskId, TaskStatus, Usage};
use crate::plan::{PlanErrors, PlanFile};
use crate::store::{StoreError, StoreHandle};
use crate::workspace::WorkspaceError;
pub use api::{
    ApiError, BudgetTarget, BudgetThen, Engine, EngineApi, ErrorKind, Feed, Landing, Push, Reply,
    Request, StillOver, Told,
};
pub use clock::Clock;
pub(crate) use core::review_at_rest;
pub use rooms::Follower;
pub(crate) use rooms::Rooms;
pub use runner::{Job, Outcome, PlanRequest, Proposal, Runner};
pub use simulated::Simulated;
pub use view::{
    Activity, ApprovalView, ConflictState, ConflictView, Entry, Footprint, Logged, Noted, PlanView,
    SessionView, Snapshot, TaskView,
};

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Sessions running at once over all agents.
    pub max_parallel: u32,
    /// A waiting task gains one priority point per step.
    pub aging_step: SignedDuration,
    /// How often time limits are checked.
    pub tick: Duration,
    /// Wait before an automatic retry; doubles with each attempt, up to 5 minutes.
    pub retry_backoff: SignedDuration,
    /// How often agents' servers are health-checked.
    pub health_every: Duration,
    /// Which permission requests are answered without the operator.
    pub approvals: approval::ApprovalPolicy,
    /// Where plans' git worktrees go; `None`: `worktrees/` beside the database file.
    pub worktree_root: Option<PathBuf>,
    /// Most bytes of the "context from upstream tasks" section of a prompt.
    pub context_budget: usize,
    /// Where `ocio land --pr` looks for `gh` and `glab` (and the PATH they run with);
    /// `None`: this process's PATH.
    pub tool_path: Option<std::ffi::OsString>,
    /// What happens to a finished plan's worktrees when the plan does not say.
    pub cleanup: CleanupPolicy,
    /// Most task worktrees holding work not merged yet (running sessions' and completed ones
    /// waiting for their merge); at the bound a task waits for a merge rather than making
    /// another. `None`: twice `max_parallel`.
    pub max_worktrees: Option<u32>,
    /// Where the engine reads the time of day (a test's clock follows paused tokio time).
    pub clock: Clock,
    /// Whether sessions may ask the operator questions, and how long one may wait.
    pub questions: question::QuestionPolicy,
    /// The most every agent together may spend in one UTC day (`[engine] daily_budget`).
    pub daily_budget: Option<crate::domain::Budget>,
    /// Most bytes of a session's stored transcript; its oldest entries are cut beyond it.
    pub transcript_cap: u64,
    /// Transcripts of sessions that ended longer ago are removed at start-up; `None`: kept.
    pub transcript_retention: Option<SignedDuration>,
    /// The `[[fleets]]`: a plan may count on their members before any has joined.
    pub fleets: Vec<crate::domain::Fleet>,
}

/// Default for [`EngineOptions::transcript_cap`]: 2 MiB.
pub const DEFAULT_TRANSCRIPT_CAP: u64 = 2 * 1024 * 1024;

impl EngineOptions {
    /// The bound on unmerged task worktrees, at least 1.
    pub(crate) fn worktree_bound(&self) -> usize {
        let bound = self
            .max_worktrees
            .unwrap_or_else(|| self.max_parallel.saturating_mul(2));
        bound.max(1) as usize
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_parallel: 8,
            aging_step: SignedDuration::from_secs(30),
            tick: Duration::from_millis(200),
            retry_backoff: SignedDuration::from_secs(2),
            health_every: Duration::from_secs(10),
            approvals: approval::ApprovalPolicy::default(),
            worktree_root: None,
            context_budget: 16 * 1024,
            tool_path: None,
            cleanup: CleanupPolicy::default(),
            max_worktrees: None,
            clock: Clock::system(),
            questions: question::QuestionPolicy::default(),
            daily_budget: None,
            transcript_cap: DEFAULT_TRANSCRIPT_CAP,
            transcript_retention: None,
            fleets: Vec::new(),
        }
    }
}

/// An agent and what runs its sessions.
#[derive(Clone)]
pub struct AgentSpec {
    pub agent: Agent,
    pub runner: Arc<dyn Runner>,
}

/// What the engine tells its front ends, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A durable state change.
    Transition(DomainEvent),
    /// A plan was taken in. `key` names its branches and worktrees (`ocio/<key>/<task>`): its
    /// name, or `<name>-2`... when an earlier plan's branches use the name in that repository;
    /// `branch` is its integration branch (`None` for a plan without worktrees).
    PlanSubmitted {
        plan: PlanId,
        name: String,
        tasks: usize,
        #[serde(default)]
        key: String,
        #[serde(default)]
        branch: Option<String>,
    },
    Dispatched {
        plan: PlanId,
        task: TaskId,
        key: String,
        session: SessionId,
        agent: AgentName,
        attempt: u32,
    },
    /// Every task is done, or nothing more can run.
    PlanFinished {
        plan: PlanId,
        name: String,
        /// What its branches are named after (`<name>-2` for a later plan of the name), for a
        /// plan in worktrees (empty otherwise).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        key: String,
        ok: bool,
        done: usize,
        failed: usize,
        blocked: usize,
        cancelled: usize,
    },
    /// A session waits for the operator to answer a permission request (`request`).
    ApprovalRequested {
        session: SessionId,
        task: String,
        request: String,
        permission: String,
        patterns: Vec<String>,
    },
    /// A session asks the operator `questions` (request `request`) and waits for an answer.
    QuestionAsked {
        session: SessionId,
        task: String,
        request: String,
        questions: Vec<question::QuestionItem>,
    },
    /// Request `request` (a permission request or a question) left the inbox unanswered: its
    /// server no longer has it (answered there, or gone with a restart of the server).
    RequestWithdrawn {
        session: SessionId,
        request: String,
        why: String,
    },
    /// Sessions found running at start were settled (see the cause of their transitions).
    /// At start: sessions whose runs were lost (settled as failed), tasks set to run again,
    /// and sessions re-attached at their server.
    Recovered {
        sessions: usize,
        tasks: usize,
        resumed: usize,
    },
    /// A running session did something (written to its stored transcript shortly after).
    Activity { session: SessionId, entry: Entry },
    /// A session's usage as it ended (durable with its end): its steps told what they had
    /// spent as they went, but its end counts every call (also any its steps did not tell).
    SessionUsage { session: SessionId, usage: Usage },
    /// Dispatching was paused or resumed (durable).
    Paused { paused: bool },
    /// A plan paused over budget (durable): `tasks` were stopped, their work so far kept on
    /// their branches; it waits for the operator to raise the budget and continue, or cancel.
    OverBudget {
        plan: PlanId,
        name: String,
        cause: String,
        tasks: Vec<String>,
    },
    /// A plan paused over budget goes on: its budget raised, its stopped tasks run again
    /// from their branches (`continued`), or cancelled.
    BudgetResolved {
        plan: PlanId,
        name: String,
        continued: bool,
    },
    /// An agent was added while the engine runs (durable); it takes work at once.
    AgentAdded { agent: Box<Agent> },
    /// An agent was removed while the engine runs (durable); it takes no more work.
    AgentRemoved { agent: AgentName },
    /// A server that `fleet` lists could not join it, because of `why`; it is asked again at
    /// each read of the fleet's source. Not durable (kept for later front ends as a note):
    /// told once per reason (reasons that differ only in their numbers are one), at most three
    /// reasons a minute per server.
    FleetMemberWaiting {
        fleet: AgentName,
        url: String,
        why: String,
    },
    /// `fleet`'s source (its DNS name, its command) could not be read, because of `why`: the
    /// fleet keeps its `kept` members and reads the source again every `refresh`. Not durable
    /// (kept as a note): told once per reason (reasons that differ only in their numbers are
    /// one), at most three reasons a minute.
    FleetSourceFailed {
        fleet: AgentName,
        why: String,
        kept: usize,
    },
    /// `fleet`'s source, told as failed, was read again: it lists `listed` servers. Not
    /// durable (kept as a note).
    FleetSourceRead { fleet: AgentName, listed: usize },
    /// A plan's integration branch is checked out in its own worktree; finished tasks are
    /// merged there.
    IntegrationReady {
        plan: PlanId,
        branch: String,
        path: PathBuf,
    },
    /// A ready task waits because a running session already touches `file`, one of the files
    /// it declares (told once per wait; it starts when that session's work is merged or ends).
    TaskHeld {
        plan: PlanId,
        task: TaskId,
        key: String,
        session: SessionId,
        file: String,
    },
    /// `session` touched `path`, which running sessions `with` touch too (told the moment it
    /// happens, once per session and file).
    Overlap {
        plan: PlanId,
        path: String,
        session: SessionId,
        with: Vec<SessionId>,
    },
    /// A task's work is on its plan's integration branch, which is at `commit` now (durable;
    /// the task's transition to done follows).
    Merged {
        plan: PlanId,
        task: TaskId,
        key: String,
        commit: String,
    },
    /// A task's work conflicts with the integration branch in `files`; `policy` says what
    /// follows (durable: the transitions that follow say how it went).
    MergeConflict {
        plan: PlanId,
        task: TaskId,
        key: String,
        files: Vec<String>,
        policy: ConflictPolicy,
    },
    /// The plan's check `command` started in the integration worktree after a task's merge
    /// (not durable: the task's transitions say how it went).
    CheckStarted {
        plan: PlanId,
        task: TaskId,
        key: String,
        command: String,
    },
    /// The newest line a running check printed (not durable; at most about once a second).
    CheckProgress {
        plan: PlanId,
        key: String,
        line: String,
    },
    /// The check after a task's merge (or after fix session `fix`) passed or failed;
    /// `report` says how, with the end of its output (not durable: the transitions that
    /// follow say what was done about it).
    CheckEnded {
        plan: PlanId,
        task: TaskId,
        key: String,
        command: String,
        passed: bool,
        report: String,
        #[serde(default)]
        fix: Option<u32>,
    },
    /// A plan's work was delivered (durable): landed on its base branch, or pushed.
    PlanLanded {
        plan: PlanId,
        name: String,
        landing: crate::domain::PlanLanding,
    },
    /// The engine stopped because something it must do failed (a store write: a full disk, a
    /// broken file). Nothing more is made durable or done; the last event a front end gets.
    EngineFailed { error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Plan(PlanErrors),
    #[error("the plan cannot be built: {0}")]
    Graph(#[from] crate::domain::GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no task {0}")]
    UnknownTask(TaskId),
    #[error("task {key} is {status}; {what}")]
    NotNow {
        key: String,
        status: TaskStatus,
        what: &'static str,
    },
    #[error("no agent named {0}")]
    UnknownAgent(String),
    #[error("an agent named {0} already exists")]
    DuplicateAgent(String),
    #[error(
        "agent {name} still runs {running} sessions\nhint: drain it first and remove it when they have finished"
    )]
    AgentBusy { name: String, running: u32 },
    #[error(
        "no pending permission request or question {0}\nhint: name one by its whole id, or by 4 or more characters from its end or from the start of its last 8, which the room shows (`ocio status` lists them)"
    )]
    UnknownApproval(String),
    #[error("{wanted} names {} pending requests: {}; give more of the id", candidates.len(), candidates.join(", "))]
    AmbiguousApproval {
        wanted: String,
        candidates: Vec<String>,
    },
    /// An answer that does not fit its request (the message says what would).
    #[error("{0}")]
    BadAnswer(String),
    /// A session that cannot take the operator's word now (the message says why).
    #[error("{0}")]
    NotSteerable(String),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("no plan {0}")]
    UnknownPlan(PlanId),
    /// A plan whose work cannot be delivered now (the message says why and what to do).
    #[error("{0}")]
    NotLandable(String),
    #[error("no agent can plan: {0}")]
    NoPlanner(String),
    #[error("the planner failed: {0}")]
    Planner(String),
    #[error("no diff: {0}")]
    Diff(String),
    #[error("the landing failed: {0}")]
    LandFailed(String),
    /// A plan without an integration branch asked for what only one has (the message says
    /// which plan and why).
    #[error("{0}")]
    NoBranch(String),
    /// A task that nothing this engine runs could ever run (the message says why and how).
    #[error("{0}")]
    NeverRuns(String),
    /// A file a plan did not change, asked to be marked reviewed.
    #[error("{0}")]
    NotChanged(String),
    /// A plan paused over budget asked to go on while a budget its work counts against is
    /// still reached: it cannot until that budget is raised. The facts, for each front end
    /// to say how in its own way (`scope`: which budget; `cause`: what it says of it).
    #[error("still {cause}")]
    OverBudget {
        plan: PlanId,
        scope: crate::domain::BudgetScope,
        cause: String,
    },
    #[error("the engine has stopped")]
    Stopped,
    /// The loop stops because of this (a store write failed while answering a request).
    #[error("{0}")]
    Halted(String),
}

enum Command {
    /// A front end's request, answered in the loop.
    Call(Request, core::Answer),
    /// Check a plan against the agents before its repository is prepared; gives it back.
    Check(
        Box<PlanFile>,
        oneshot::Sender<Result<Box<PlanFile>, EngineError>>,
    ),
    Submit(
        Box<core::Prepared>,
        oneshot::Sender<Result<PlanId, EngineError>>,
    ),
    Footprint(oneshot::Sender<Footprint>),
    AddAgent(Box<AgentSpec>, oneshot::Sender<Result<(), EngineError>>),
    /// The agent's name and why.
    RemoveAgent(String, String, oneshot::Sender<Result<(), EngineError>>),
    /// The agent's name, drain or undrain, why, and for an undrain, the cause of the drain it
    /// may lift (any when `None`).
    Drain(
        String,
        bool,
        String,
        Option<String>,
        oneshot::Sender<Result<(), EngineError>>,
    ),
    Shutdown(oneshot::Sender<()>),
    /// Tell the front ends what the host saw (a fleet member that cannot join).
    Tell(Box<EngineEvent>),
}

/// How the engine's loop ended, as [`EngineHandle::failed`] tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    Running,
    /// Asked to stop (a shutdown, or every handle dropped).
    Stopped,
    /// Stopped by itself: a step failed (a store write, most often).
    Failed(String),
}

/// The front ends' way in. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Told>,
    workspaces: core::Workspaces,
    /// Why the engine stopped by itself, once it did.
    failure: watch::Receiver<Ending>,
    /// The control rooms following the events.
    rooms: rooms::Rooms,
}

impl EngineHandle {
    /// The control rooms following this engine (the one hosting it among them).
    pub(crate) fn rooms(&self) -> Rooms {
        self.rooms.clone()
    }

    /// Start the engine on the current tokio runtime: recover what the store holds, then run.
    pub async fn start(
        store: StoreHandle,
        agents: Vec<AgentSpec>,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        Ok(Self::start_subscribed(store, agents, options).await?.0)
    }

    /// [`Self::start`], with a subscription made before recovery: it misses no event, not even
    /// `Recovered` or the first dispatches.
    pub(crate) async fn start_subscribed(
        store: StoreHandle,
        agents: Vec<AgentSpec>,
        options: EngineOptions,
    ) -> Result<(Self, Subscription), EngineError> {
        let (commands, rx) = mpsc::channel(256);
        let (events, first) = broadcast::channel(16 * 1024);
        let root = options
            .worktree_root
            .clone()
            .unwrap_or_else(|| crate::paths::worktree_root(store.path()));
        let workspaces = core::Workspaces::new(root);
        let rooms = rooms::Rooms::default();
        let mut core = core::Core::recover(
            store,
            agents,
            options,
            events.clone(),
            workspaces.clone(),
            rooms.clone(),
        )
        .await?;
        core.load_budgets().await?;
        let (failed, failure) = watch::channel(Ending::Running);
        tokio::spawn(core.run(rx, failed));
        let handle = Self {
            commands,
            events,
            workspaces,
            failure,
            rooms,
        };
        Ok((handle, Subscription(first)))
    }

    /// Resolves when the engine stops by itself (not when asked to), with why: a store write
    /// that failed, or the engine's task ending unexpectedly. Pending forever otherwise, also
    /// after a stop that was asked for.
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.clone();
        let ending = match failure.wait_for(|e| *e != Ending::Running).await {
            Ok(ending) => ending.clone(),
            Err(_) => return "the engine's task ended unexpectedly; see the log".into(),
        };
        match ending {
            Ending::Failed(why) => why,
            Ending::Running | Ending::Stopped => std::future::pending().await,
        }
    }

    /// Every event from now on, numbered. A subscriber that falls far behind misses events
    /// (and is told so by the channel); the store's control log has the durable ones.
    pub fn subscribe(&self) -> Subscription {
        Subscription(self.events.subscribe())
    }

    /// Validate a plan against the agents, prepare its repository (the integration branch and
    /// its worktree, for a git repository with `worktrees = true`) and queue it. Nothing is
    /// queued from an invalid plan or when the repository cannot be prepared (a `base` that
    /// does not exist, a repository without commits, ...). The git work runs on a blocking
    /// thread, not on the engine's loop. What [`Request::Submit`] does once its text is parsed.
    pub async fn submit_plan(&self, mut plan: PlanFile) -> Result<PlanId, EngineError> {
        // A plan file named by a relative path (`ocio run plans/x.toml`) is anchored here, so
        // its `repo` is kept absolute and a later start in another directory finds it.
        if plan.path.is_relative() {
            plan.path = std::path::absolute(&plan.path).unwrap_or(plan.path);
        }
        let plan = self
            .ask(|reply| Command::Check(Box::new(plan), reply))
            .await??;
        let workspaces = self.workspaces.clone();
        let prepared =
            tokio::task::spawn_blocking(move || workspaces.prepare(*plan, PlanId::generate()))
                .await
                .map_err(|_| EngineError::Stopped)??;
        self.ask(|reply| Command::Submit(Box::new(prepared), reply))
            .await?
    }

    /// Add an agent at runtime; it takes work at once.
    pub async fn add_agent(&self, spec: AgentSpec) -> Result<(), EngineError> {
        self.ask(|reply| Command::AddAgent(Box::new(spec), reply))
            .await?
    }

    /// Remove an agent that runs nothing (drain it first).
    pub async fn remove_agent(&self, name: &str) -> Result<(), EngineError> {
        self.remove_agent_because(name, "removed by the operator")
            .await
    }

    /// The same, saying why (the cause of its transition to offline).
    pub async fn remove_agent_because(&self, name: &str, cause: &str) -> Result<(), EngineError> {
        let (name, cause) = (name.to_string(), cause.to_string());
        self.ask(|reply| Command::RemoveAgent(name, cause, reply))
            .await?
    }

    /// Drain agent `name` (or undrain it), saying why: for what is not the operator's doing
    /// (a fleet whose source no longer lists it), which `EngineApi::drain` is. `lifts` names
    /// the cause of this doer's own drains: an undrain gives the agent work again only when it
    /// was drained because of it, so a drain of another's doing (the operator's) stands.
    pub async fn drain_because(
        &self,
        name: &str,
        drain: bool,
        cause: &str,
        lifts: Option<&str>,
    ) -> Result<(), EngineError> {
        let (name, cause) = (name.to_string(), cause.to_string());
        let lifts = lifts.map(str::to_string);
        self.ask(|reply| Command::Drain(name, drain, cause, lifts, reply))
            .await?
    }

    /// Tell the front ends what the engine does not see itself (a fleet's member that cannot
    /// join, its source that cannot be read), as a note.
    pub(crate) async fn tell(&self, event: EngineEvent) {
        let _ = self.commands.send(Command::Tell(Box::new(event))).await;
    }

    /// How many entries the engine keeps in memory, structure by structure.
    pub async fn footprint(&self) -> Result<Footprint, EngineError> {
        self.ask(Command::Footprint).await
    }

    /// Stop dispatching and end the engine task. Running sessions are left as they are: the
    /// next start settles them from the store.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        self.ask(Command::Shutdown).await
    }

    async fn serve(&self, request: Request) -> Result<Reply, EngineError> {
        match request {
            Request::Submit { path, text } => {
                let plan = PlanFile::parse(&text, &path).map_err(EngineError::Plan)?;
                Ok(Reply::Submitted {
                    plan: self.submit_plan(plan).await?,
                })
            }
            request => {
                self.ask(|reply| Command::Call(request, core::Answer::new(reply)))
                    .await?
            }
        }
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }
}

impl Engine for EngineHandle {
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
        Box::pin(async move { self.serve(request).await.map_err(ApiError::from) })
    }

    fn feed(&self, follower: Follower) -> BoxFuture<'_, Result<mpsc::Receiver<Feed>, ApiError>> {
        let mut events = self.subscribe();
        let engine = self.clone();
        let (tx, rx) = mpsc::channel(1024);
        let attendance = self.rooms.attend(follower);
        tokio::spawn(async move {
            let _attendance = attendance;
            loop {
                // The failure is watched as well as told: a front end that lags behind the
                // events may never see the telling.
                let item = tokio::select! {
                    biased;
                    received = events.next() => match received {
                        Ok(told) => Feed::Event(told),
                        Err(broadcast::error::RecvError::Lagged(n)) => Feed::Lagged(n),
                        Err(broadcast::error::RecvError::Closed) => {
                            Feed::Gone(api::STOPPED.into())
                        }
                    },
                    why = engine.failed() => Feed::Gone(why),
                    () = tx.closed() => return,
                };
                let last = matches!(item, Feed::Gone(_));
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        Box::pin(std::future::ready(Ok(rx)))
    }
}

/// The engine's events as an in-process subscriber gets them.
pub struct Subscription(broadcast::Receiver<Told>);

impl Subscription {
    /// The next event with its number.
    pub async fn next(&mut self) -> Result<Told, broadcast::error::RecvError> {
        self.0.recv().await
    }

    /// The next event.
    pub async fn recv(&mut self) -> Result<EngineEvent, broadcast::error::RecvError> {
        self.0.recv().await.map(|told| told.event)
    }
}
