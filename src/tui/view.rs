//! The control room's own copy of the engine's state, built from a snapshot and kept current by
//! engine events, so drawing never waits on the engine. Events are numbered and a snapshot says
//! the number of the last event it reflects: the room applies only events numbered after its
//! snapshot, and replays the newer ones it already has onto a snapshot that comes late. It asks
//! for a snapshot on connecting, after missing events, and when an event names something it
//! has never seen (a new plan, agent or session); never on a timer. Every change bumps
//! `generation`, which tells cached orderings and trees to rebuild.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;

use crate::domain::{
    Agent, AgentName, Backend, DomainEvent, Lifecycle, Session, SessionId, SessionKind,
    SessionStatus, Transition, Usage,
};
use crate::engine::view::{
    Activity, ApprovalView, ConflictState, ConflictView, Entry, PlanView, SessionView, Snapshot,
};
use crate::engine::{EngineEvent, Told};
use crate::narration::Narration;

/// Lines kept in the events pane.
pub(crate) const LOG: usize = 2000;
/// Control log entries a room asks for when it starts: about every other one is a line (a
/// session's moves are told by its task's), so this fills the events pane.
pub(crate) const HISTORY: usize = 3 * LOG;
/// Events kept to replay onto a snapshot that reflects fewer of them.
const RECENT: usize = 4096;
/// Load samples kept per agent for its sparkline.
pub(crate) const LOAD_SAMPLES: usize = 60;

/// A load ratio as a sample: whole percent, 0 to 100.
pub(super) fn percent(ratio: f64) -> u64 {
    (ratio * 100.0).round().clamp(0.0, 100.0) as u64
}

/// An event's line in the events pane (see [`Narration`]): live events and the control log's
/// history read the same.
pub(super) fn log_line(event: &EngineEvent) -> Option<LogLine> {
    let line = Narration::of(event)?;
    let at = match event {
        EngineEvent::Transition(e) => e.at,
        _ => Timestamp::now(),
    };
    Some(LogLine {
        at,
        tone: line.tone.to_string(),
        text: line.text,
    })
}

/// One line of the control log as the events pane shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub(crate) at: Timestamp,
    /// A status name (for its colour) or a kind: `plan`, `approval`, `engine`.
    pub(crate) tone: String,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct View {
    pub(crate) paused: bool,
    pub plans: Vec<PlanView>,
    /// Running first, then ended, newest first (as the engine gives them).
    pub sessions: Vec<SessionView>,
    pub agents: Vec<Agent>,
    /// The fleets whose servers join as agents when they answer.
    pub(crate) fleets: Vec<crate::domain::Fleet>,
    pub(crate) approvals: Vec<ApprovalView>,
    /// Merge conflicts being resolved or waiting for the operator.
    pub(crate) conflicts: Vec<ConflictView>,
    /// Tokens and cost of every session the engine knows, the running ones' so far.
    pub usage: Usage,
    /// Spend against budgets, and the plans paused over budget (each waits for the operator).
    pub(crate) budgets: crate::engine::view::BudgetsView,
    pub log: VecDeque<LogLine>,
    /// Load per agent, in percent of its capacity, oldest first.
    pub load: HashMap<AgentName, VecDeque<u64>>,
    /// Shared context of the plans whose sessions were opened in the detail view.
    pub(crate) contexts: HashMap<crate::domain::PlanId, Vec<crate::domain::TaskContext>>,
    /// The diff of the session the detail pane shows (or why there is none).
    pub(crate) diff: Option<(SessionId, Result<String, String>)>,
    /// The transcript of the session the detail pane shows.
    pub transcript: Option<(SessionId, Vec<Entry>)>,
    /// Bumped on every change.
    pub(crate) generation: u64,
    /// Bumped when plans or their tasks change (the task tree is rebuilt then).
    pub(crate) plans_generation: u64,
    /// Bumped when what the sessions table's columns hold may change: sessions listed anew or
    /// added, a session's state (a provider retry is one too). Not on other activity.
    pub(crate) sessions_generation: u64,
    /// A snapshot has arrived: until then the panes say they are loading.
    pub(crate) loaded: bool,
    /// An event arrived that only a fresh snapshot can show in full (a new plan), or events
    /// were missed.
    pub(crate) wants_snapshot: bool,
    /// The number of the last event the state reflects.
    pub seq: u64,
    /// The newest events received, oldest first: replayed onto a snapshot that is older.
    recent: VecDeque<Told>,
    /// The control log's recent past is shown (see `history.rs`).
    pub(crate) history: bool,
    /// Transitions shown live before the history came (it may hold them too), so that none
    /// is shown twice.
    pub(super) early: VecDeque<DomainEvent>,
}

impl View {
    /// Take `snapshot` as the state, then the events received that are newer than it.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        self.paused = snapshot.paused;
        if self.plans != snapshot.plans {
            self.plans = snapshot.plans;
            self.plans_generation += 1;
        }
        self.sessions = snapshot.sessions;
        self.agents = snapshot.agents;
        self.fleets = snapshot.fleets;
        self.approvals = snapshot.approvals;
        self.conflicts = snapshot.conflicts;
        self.usage = snapshot.usage;
        self.budgets = snapshot.budgets;
        self.seq = snapshot.seq;
        self.loaded = true;
        self.wants_snapshot = false;
        self.generation += 1;
        self.sessions_generation += 1;
        let newer: Vec<EngineEvent> = self
            .recent
            .iter()
            .filter(|t| t.seq > snapshot.seq)
            .map(|t| t.event.clone())
            .collect();
        let first = self
            .recent
            .iter()
            .map(|t| t.seq)
            .find(|s| *s > snapshot.seq);
        if first.is_some_and(|first| first != snapshot.seq + 1) {
            // Events between the snapshot and those kept are gone: another snapshot.
            self.wants_snapshot = true;
        }
        for event in &newer {
            self.change(event);
        }
        if let Some(last) = self.recent.back() {
            self.seq = self.seq.max(last.seq);
        }
    }

    /// Take one load sample per agent (called about once a second).
    pub(crate) fn sample_load(&mut self) {
        for agent in &self.agents {
            let samples = self.load.entry(agent.name.clone()).or_default();
            samples.push_back(percent(agent.load_ratio()));
            while samples.len() > LOAD_SAMPLES {
                samples.pop_front();
            }
        }
        self.generation += 1;
    }

    /// How many things wait for the operator: the inbox (permission requests and questions),
    /// and conflicts parked for them. The one count of waiting: the header and the terminal's
    /// title say it, and a new kind of waiting is one more term here (and one more arm in
    /// `crate::notify::Alert::of`, which says which events start something waiting).
    pub(crate) fn waiting(&self) -> usize {
        let parked = self
            .conflicts
            .iter()
            .filter(|c| c.state == ConflictState::Parked)
            .count();
        self.approvals.len()
            + parked
            + self.budgets.held().count()
            + self.waiting_for_a_message().count()
    }

    /// What the room calls plan `plan` (named `name`): as the sessions pane and the task tree
    /// show it (`<name>-2` where another plan has its name), so that a command it suggests
    /// names this plan and not the other; `name` for a plan it does not show.
    pub(crate) fn plan_called<'a>(&'a self, plan: crate::domain::PlanId, name: &'a str) -> &'a str {
        self.plans
            .iter()
            .find(|p| p.id == plan)
            .map_or(name, |p| p.shown_name(&self.plans))
    }

    /// The first task `which` picks: its id and `plan/task` name.
    pub(crate) fn task_named(
        &self,
        which: impl Fn(&crate::engine::view::TaskView) -> bool,
    ) -> Option<(crate::domain::TaskId, String)> {
        self.plans.iter().find_map(|p| {
            p.tasks
                .iter()
                .find(|t| which(t))
                .map(|t| (t.id, format!("{}/{}", p.name, t.key)))
        })
    }

    /// The rows of the approvals pane, in order: requests and questions, then merge
    /// conflicts, then plans paused over budget.
    pub(crate) fn inbox(&self) -> impl Iterator<Item = InboxRow<'_>> {
        let requests = self.approvals.iter().map(InboxRow::Request);
        let conflicts = self.conflicts.iter().map(InboxRow::Conflict);
        let held = self.budgets.held().map(InboxRow::Held);
        let messages = self.waiting_for_a_message().map(InboxRow::Message);
        requests.chain(conflicts).chain(held).chain(messages)
    }

    /// Request `id` answered here: out of the inbox at once. Its session, which the engine
    /// sets running as it takes the answer, is shown so now (until that word it read as
    /// waiting for a message), unless it was `rejected` (its turn ends: it does wait for one)
    /// or still asks something else.
    pub(crate) fn answered(&mut self, id: &str, rejected: bool) -> Option<ApprovalView> {
        let at = self.approvals.iter().position(|a| a.ask.id == id)?;
        let request = self.approvals.remove(at);
        self.generation += 1;
        let asks_more = self.approvals.iter().any(|a| a.session == request.session);
        if !rejected
            && !asks_more
            && let Some(view) = self
                .sessions
                .iter_mut()
                .find(|s| s.session.id == request.session)
            && view.session.status == crate::domain::SessionStatus::WaitingApproval
        {
            view.session.status = crate::domain::SessionStatus::Running;
        }
        Some(request)
    }

    pub(crate) fn inbox_len(&self) -> usize {
        self.inbox().count()
    }

    /// The sessions that wait for the operator with no request of theirs in the inbox: they
    /// wait for a message (interrupted, or a request rejected). They were counted nowhere and
    /// nothing said to send one (hand trial).
    fn waiting_for_a_message(&self) -> impl Iterator<Item = &crate::engine::view::SessionView> {
        self.sessions.iter().filter(|s| {
            s.session.status == crate::domain::SessionStatus::WaitingApproval
                && !self.approvals.iter().any(|a| a.session == s.session.id)
        })
    }

    pub fn running(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.session.is_active())
            .count()
    }

    /// Of the sessions not ended, those whose run stops with ocio: simulated in ocio, or on a
    /// server ocio started with no linger time.
    pub fn stopping_with_ocio(&self) -> usize {
        self.active_on(|backend| {
            matches!(
                backend,
                Backend::Simulated
                    | Backend::Opencode {
                        managed: true,
                        linger: Some(0),
                        ..
                    }
            )
        })
        .len()
    }

    /// Of the sessions not ended, those on a server ocio started itself (`managed`), which
    /// waits for the next ocio only its linger time: how many, and the linger times (seconds).
    pub fn on_managed_servers(&self) -> (usize, Vec<u64>) {
        let lingers = self.active_on(|backend| {
            matches!(backend, Backend::Opencode { managed: true, linger, .. } if *linger != Some(0))
        });
        let times = lingers.iter().map(|l| l.unwrap_or(3600)).collect();
        (lingers.len(), times)
    }

    /// The linger time (if any) of the agent of each session not ended whose agent's backend
    /// is one `backend` picks.
    fn active_on(&self, backend: impl Fn(&Backend) -> bool) -> Vec<Option<u64>> {
        let on = |name: &AgentName| {
            self.agents
                .iter()
                .find(|agent| agent.name == *name && backend(&agent.backend))
                .map(|agent| match agent.backend {
                    Backend::Opencode { linger, .. } => linger,
                    Backend::Simulated => None,
                })
        };
        self.sessions
            .iter()
            .filter(|s| s.session.is_active())
            .filter_map(|s| s.session.agent.as_ref().and_then(on))
            .collect()
    }

    /// A numbered event: its line is logged, and it changes the state unless the snapshot
    /// in hand reflects it already (before the first snapshot it waits for it).
    pub fn receive(&mut self, told: Told) {
        self.generation += 1;
        if let EngineEvent::Transition(e) = &told.event
            && !self.history
        {
            self.early.push_back(e.clone());
            if self.early.len() > HISTORY {
                self.early.pop_front();
            }
        }
        // Every event is told once: its line shows even when a snapshot overtook it.
        if let Some(line) = log_line(&told.event) {
            self.push_line(line);
        }
        if self.loaded && told.seq <= self.seq {
            return;
        }
        if self.loaded && told.seq != self.seq + 1 {
            // Events between are missing: applied on top of this, a snapshot mends it.
            self.wants_snapshot = true;
        }
        if self.loaded {
            self.change(&told.event);
            self.seq = told.seq;
        }
        self.recent.push_back(told);
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// What an event changes in the state.
    fn change(&mut self, event: &EngineEvent) {
        self.generation += 1;
        match event {
            EngineEvent::Transition(e) => self.transition(e),
            EngineEvent::PlanSubmitted { .. }
            | EngineEvent::MergeConflict { .. }
            | EngineEvent::PlanLanded { .. } => {
                self.wants_snapshot = true;
            }
            // The link turns it into `Msg::EngineGone`: the room shows it and closes.
            EngineEvent::EngineFailed { .. } => {}
            EngineEvent::CheckStarted {
                plan, key, command, ..
            } => self.set_check(*plan, key, Some(command.clone())),
            EngineEvent::CheckProgress { plan, key, line } => {
                self.set_check(*plan, key, Some(line.clone()))
            }
            EngineEvent::CheckEnded { plan, key, .. } => self.set_check(*plan, key, None),
            EngineEvent::Dispatched {
                plan,
                task,
                key,
                session,
                agent,
                attempt,
            } => {
                let now = Timestamp::now();
                self.wants_snapshot |= !self.plans.iter().any(|p| p.id == *plan);
                // A snapshot that overtook this event lists the session (and counts its
                // agent's slot) already.
                let listed = self.sessions.iter().any(|s| s.session.id == *session);
                let plan_name = self
                    .plans
                    .iter()
                    .find(|p| p.id == *plan)
                    .map(|p| p.name.as_str())
                    .unwrap_or("?");
                let mut s = Session::new(
                    *session,
                    format!("{plan_name}/{key} #{attempt}"),
                    SessionKind::Code,
                    now,
                );
                s.status = SessionStatus::Running;
                s.plan = Some(*plan);
                s.task = Some(*task);
                s.agent = Some(agent.clone());
                s.attempt = *attempt;
                s.started_at = Some(now);
                if !listed {
                    self.sessions_generation += 1;
                    self.sessions.insert(
                        0,
                        SessionView {
                            session: s,
                            task: key.clone(),
                            last: None,
                        },
                    );
                    if let Some(a) = self.agents.iter_mut().find(|a| a.name == *agent) {
                        a.load += 1;
                    }
                }
                if let Some(t) = self
                    .plans
                    .iter_mut()
                    .find(|p| p.id == *plan)
                    .and_then(|p| p.tasks.iter_mut().find(|t| t.id == *task))
                {
                    t.session = Some(*session);
                    self.plans_generation += 1;
                }
            }
            EngineEvent::ApprovalRequested {
                session,
                task,
                request,
                permission,
                patterns,
            } => {
                self.approvals.push(ApprovalView {
                    session: *session,
                    task: task.clone(),
                    ask: crate::engine::approval::Ask {
                        id: request.clone(),
                        permission: permission.clone(),
                        patterns: patterns.clone(),
                        questions: Vec::new(),
                    },
                });
            }
            EngineEvent::QuestionAsked {
                session,
                task,
                request,
                questions,
            } => {
                if !self.approvals.iter().any(|a| a.ask.id == *request) {
                    self.approvals.push(ApprovalView {
                        session: *session,
                        task: task.clone(),
                        ask: crate::engine::approval::Ask::question(
                            request.clone(),
                            questions.clone(),
                        ),
                    });
                }
            }
            EngineEvent::RequestWithdrawn { request, .. } => {
                self.approvals.retain(|a| a.ask.id != *request);
            }
            EngineEvent::Activity { session, entry } => self.activity(*session, entry),
            EngineEvent::SessionUsage { session, usage } => self.session_usage(*session, *usage),
            EngineEvent::Paused { paused } => self.paused = *paused,
            EngineEvent::OverBudget { .. } | EngineEvent::BudgetResolved { .. } => {
                self.wants_snapshot = true;
            }
            EngineEvent::AgentAdded { agent } => {
                if !self.agents.iter().any(|a| a.name == agent.name) {
                    self.agents.push((**agent).clone());
                }
                // What ready tasks wait for changes with the agents there are.
                self.wants_snapshot |= self.any_task_waits();
            }
            EngineEvent::AgentRemoved { agent } => {
                self.agents.retain(|a| a.name != *agent);
                self.wants_snapshot = true;
            }
            EngineEvent::PlanFinished { .. }
            | EngineEvent::FleetMemberWaiting { .. }
            | EngineEvent::FleetSourceFailed { .. }
            | EngineEvent::FleetSourceRead { .. }
            | EngineEvent::Recovered { .. }
            | EngineEvent::IntegrationReady { .. }
            | EngineEvent::TaskHeld { .. }
            | EngineEvent::Overlap { .. } => {}
            EngineEvent::Merged { task, .. } => {
                // The conflict it had is settled: the engine no longer lists it.
                self.wants_snapshot |= self.conflicts.iter().any(|c| c.task == *task);
            }
        }
    }

    /// A task's running check and its newest line, or none once it ended.
    /// Whether a ready task is said to wait for something no agent offers.
    fn any_task_waits(&self) -> bool {
        self.plans
            .iter()
            .flat_map(|p| &p.tasks)
            .any(|t| t.waits.is_some())
    }

    fn set_check(&mut self, plan: crate::domain::PlanId, key: &str, text: Option<String>) {
        let task = self
            .plans
            .iter_mut()
            .find(|p| p.id == plan)
            .and_then(|p| p.tasks.iter_mut().find(|t| t.key == key));
        if let Some(task) = task {
            task.check = text;
            self.plans_generation += 1;
        }
    }

    fn transition(&mut self, e: &DomainEvent) {
        match &e.transition {
            Transition::Session { id, to, .. } => {
                let known = self.sessions.iter().any(|s| s.session.id == *id);
                if !known && to.is_terminal() {
                    // A session this room never saw start (a conflict resolver's, say).
                    self.wants_snapshot = true;
                }
                if to.is_terminal() {
                    self.trim_ended();
                }
                if let Some(view) = self.sessions.iter_mut().find(|s| s.session.id == *id) {
                    self.sessions_generation += 1;
                    let was_active = view.session.is_active();
                    view.session.status = *to;
                    if matches!(
                        to,
                        SessionStatus::Failed | SessionStatus::TimedOut | SessionStatus::Lost
                    ) {
                        // Why, as the store has it (and a restarted room shows it).
                        view.session.last_error = Some(e.cause.clone());
                    }
                    if to.is_terminal() {
                        view.session.finished_at = Some(e.at);
                        if was_active
                            && let Some(agent) = view.session.agent.as_ref()
                            && let Some(a) = self.agents.iter_mut().find(|a| a.name == *agent)
                        {
                            a.load = a.load.saturating_sub(1);
                        }
                    }
                    let asks = self.approvals.iter().filter(|a| a.session == *id).count();
                    if *to != SessionStatus::WaitingApproval && asks > 0 {
                        if asks > 1 && !to.is_terminal() {
                            // One of several was answered: which, only the engine knows.
                            self.wants_snapshot = true;
                        } else {
                            self.approvals.retain(|a| a.session != *id);
                        }
                    }
                }
            }
            Transition::Task { id, to, .. } => {
                let known = self
                    .plans
                    .iter()
                    .flat_map(|p| &p.tasks)
                    .any(|t| t.id == *id);
                // A conflict's state follows its task's (resolving, parked, settled).
                let conflicted = self.conflicts.iter().any(|c| c.task == *id);
                self.wants_snapshot |= !known || conflicted;
                if let Some(task) = self
                    .plans
                    .iter_mut()
                    .flat_map(|p| p.tasks.iter_mut())
                    .find(|t| t.id == *id)
                {
                    task.status = *to;
                    if *to == crate::domain::TaskStatus::Running {
                        task.attempts += 1;
                    }
                    // What a ready task waits for is the engine's to say (the snapshot's); one
                    // no agent here offers all it needs may wait for good.
                    let offered = |a: &crate::domain::Agent| {
                        task.capabilities.iter().all(|c| a.capabilities.contains(c))
                    };
                    if *to != crate::domain::TaskStatus::Ready {
                        task.waits = None;
                    } else if !self.agents.iter().any(offered) {
                        self.wants_snapshot = true;
                    }
                    self.plans_generation += 1;
                }
            }
            Transition::Agent { name, to, .. } => {
                // What ready tasks wait for may change with it (an agent back online).
                self.wants_snapshot |= self.any_task_waits();
                match self.agents.iter_mut().find(|a| a.name == *name) {
                    Some(agent) => {
                        agent.status = *to;
                        agent.note(&e.cause, e.at);
                    }
                    None => self.wants_snapshot = true,
                }
            }
        }
    }

    /// Keep the running sessions and the newest ended ones, as many as a snapshot lists
    /// (sessions are listed newest first).
    fn trim_ended(&mut self) {
        let mut ended = 0;
        let before = self.sessions.len();
        self.sessions.retain(|s| {
            if s.session.is_active() {
                return true;
            }
            ended += 1;
            ended <= crate::engine::view::RECENT_SESSIONS
        });
        if self.sessions.len() != before {
            self.sessions_generation += 1;
        }
    }

    /// A session ended having spent `usage` in all (its steps may not have told all of it).
    fn session_usage(&mut self, session: SessionId, usage: Usage) {
        if let Some(view) = self.sessions.iter_mut().find(|s| s.session.id == session) {
            recount(&mut self.usage, &mut view.session.usage, usage);
        }
    }

    fn activity(&mut self, session: SessionId, entry: &Entry) {
        if let Some(view) = self.sessions.iter_mut().find(|s| s.session.id == session) {
            let was_retry = view.last.as_ref().is_some_and(|e| e.activity.is_retry());
            if entry.activity.is_retry() != was_retry {
                self.sessions_generation += 1;
            }
            // Step usage is the session's total so far (a step told late counts nothing).
            if let Activity::Step { usage } = &entry.activity
                && usage.total_tokens() >= view.session.usage.total_tokens()
            {
                recount(&mut self.usage, &mut view.session.usage, *usage);
            }
            view.last = Some(entry.clone());
        }
        if let Some((id, transcript)) = self.transcript.as_mut()
            && *id == session
        {
            match entry.part.as_ref().and_then(|p| {
                transcript
                    .iter_mut()
                    .rev()
                    .find(|e| e.part.as_ref() == Some(p))
            }) {
                Some(slot) => *slot = entry.clone(),
                None => transcript.push(entry.clone()),
            }
        }
    }

    pub fn log(&mut self, at: Timestamp, tone: &str, text: String) {
        self.push_line(LogLine {
            at,
            tone: tone.to_string(),
            text,
        });
    }

    fn push_line(&mut self, line: LogLine) {
        self.log.push_back(line);
        while self.log.len() > LOG {
            self.log.pop_front();
        }
    }

    /// Sessions by state, for the header. One pass, comparing statuses rather than their names:
    /// it is counted on every frame, over every session.
    pub(crate) fn counts(&self) -> Vec<(SessionStatus, usize)> {
        let mut counts = vec![0usize; SessionStatus::ALL.len()];
        for view in &self.sessions {
            let status = view.shown_status();
            if let Some(i) = SessionStatus::ALL.iter().position(|s| *s == status) {
                counts[i] += 1;
            }
        }
        SessionStatus::ALL
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (*s, n))
            .collect()
    }
}

/// A session's count goes from `session` to `now`, and `total` (all sessions') with it, every
/// kind of token and the cost.
fn recount(total: &mut Usage, session: &mut Usage, now: Usage) {
    let moved = |total: &mut u64, was: u64, is: u64| *total = (*total + is).saturating_sub(was);
    moved(
        &mut total.input_tokens,
        session.input_tokens,
        now.input_tokens,
    );
    moved(
        &mut total.output_tokens,
        session.output_tokens,
        now.output_tokens,
    );
    moved(
        &mut total.reasoning_tokens,
        session.reasoning_tokens,
        now.reasoning_tokens,
    );
    moved(
        &mut total.cache_read_tokens,
        session.cache_read_tokens,
        now.cache_read_tokens,
    );
    moved(
        &mut total.cache_write_tokens,
        session.cache_write_tokens,
        now.cache_write_tokens,
    );
    total.cost = (total.cost + now.cost - session.cost).max(0.0);
    *session = now;
}

/// What a row of the approvals pane is about, kept by the cursor: rows come and go above it
/// (a request answered or asked), and the cursor stays on what it was on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InboxKey {
    Request(String),
    Conflict(crate::domain::TaskId),
    Held(crate::domain::PlanId),
    Message(crate::domain::SessionId),
}

impl InboxRow<'_> {
    pub(crate) fn key(&self) -> InboxKey {
        match self {
            Self::Request(a) => InboxKey::Request(a.ask.id.clone()),
            Self::Conflict(c) => InboxKey::Conflict(c.task),
            Self::Held(p) => InboxKey::Held(p.plan),
            Self::Message(s) => InboxKey::Message(s.session.id),
        }
    }
}

/// One row of the approvals pane: what waits for the operator there.
#[derive(Debug, Clone, Copy)]
pub(crate) enum InboxRow<'v> {
    /// A permission request or a question: answered with its keys.
    Request(&'v ApprovalView),
    /// A merge conflict: resolving, or parked until the task is retried or cancelled.
    Conflict(&'v ConflictView),
    /// A plan paused over budget: settled in its plan's view.
    Held(&'v crate::engine::view::PlanSpendView),
    /// A session interrupted (or whose request was rejected) that waits for the operator's
    /// message: sent from its detail (`i`).
    Message(&'v crate::engine::view::SessionView),
}
