//! The control room's own copy of the engine's state, built from a snapshot and kept current by
//! engine events, so drawing never waits on the engine. Every change bumps `generation`, which
//! tells cached orderings and trees to rebuild.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;

use crate::domain::{
    Agent, AgentName, DomainEvent, Lifecycle, Session, SessionId, SessionKind, SessionStatus,
    Transition, Usage,
};
use crate::engine::EngineEvent;
use crate::engine::view::{
    Activity, ApprovalView, ConflictView, Entry, PlanView, SessionView, Snapshot,
};
use crate::narration::Narration;

/// Lines kept in the events pane.
pub const LOG: usize = 2000;
/// Control log entries a room asks for when it starts: about every other one is a line (a
/// session's moves are told by its task's), so this fills the events pane.
pub const HISTORY: usize = 3 * LOG;
/// Load samples kept per agent for its sparkline.
pub const LOAD_SAMPLES: usize = 60;

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
    pub at: Timestamp,
    /// A status name (for its colour) or a kind: `plan`, `approval`, `engine`.
    pub tone: String,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct View {
    pub paused: bool,
    pub plans: Vec<PlanView>,
    /// Running first, then ended, newest first (as the engine gives them).
    pub sessions: Vec<SessionView>,
    pub agents: Vec<Agent>,
    pub approvals: Vec<ApprovalView>,
    /// Merge conflicts being resolved or waiting for the operator.
    pub conflicts: Vec<ConflictView>,
    pub usage: Usage,
    pub log: VecDeque<LogLine>,
    /// Load per agent, in percent of its capacity, oldest first.
    pub load: HashMap<AgentName, VecDeque<u64>>,
    /// Shared context of the plans whose sessions were opened in the detail view.
    pub contexts: HashMap<crate::domain::PlanId, Vec<crate::domain::TaskContext>>,
    /// The diff of the session the detail pane shows (or why there is none).
    pub diff: Option<(SessionId, Result<String, String>)>,
    /// The transcript of the session the detail pane shows.
    pub transcript: Option<(SessionId, Vec<Entry>)>,
    /// Bumped on every change.
    pub generation: u64,
    /// Bumped when plans or their tasks change (the task tree is rebuilt then).
    pub plans_generation: u64,
    /// Bumped when what the sessions table's columns hold may change: sessions listed anew or
    /// added, a session's state (a provider retry is one too). Not on other activity.
    pub sessions_generation: u64,
    /// A snapshot has arrived: until then the panes say they are loading.
    pub loaded: bool,
    /// An event arrived that only a fresh snapshot can show in full (a new plan).
    pub wants_snapshot: bool,
    /// The control log's recent past is shown (see `history.rs`).
    pub history: bool,
    /// Transitions shown live before the history came (it may hold them too), so that none
    /// is shown twice.
    pub(super) early: VecDeque<DomainEvent>,
}

impl View {
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        self.paused = snapshot.paused;
        if self.plans != snapshot.plans {
            self.plans = snapshot.plans;
            self.plans_generation += 1;
        }
        let mut sessions = snapshot.sessions;
        let mut agents = snapshot.agents;
        self.keep_ended(&mut sessions, &mut agents);
        self.sessions = sessions;
        self.agents = agents;
        self.approvals = snapshot.approvals;
        self.conflicts = snapshot.conflicts;
        self.usage = snapshot.usage;
        self.loaded = true;
        self.wants_snapshot = false;
        self.generation += 1;
        self.sessions_generation += 1;
    }

    /// A snapshot and events reach the app by different paths, so a snapshot taken just
    /// before a session ended can arrive after the event that ended it. A session that ended
    /// stays ended (a retry is a new session), so such a snapshot's stale copy (and the agent
    /// slot it still holds) gives way to what the events said.
    fn keep_ended(&self, sessions: &mut [SessionView], agents: &mut [Agent]) {
        if !sessions.iter().any(|s| s.session.is_active()) {
            return;
        }
        let ended: HashMap<SessionId, &Session> = self
            .sessions
            .iter()
            .filter(|s| !s.session.is_active())
            .map(|s| (s.session.id, &s.session))
            .collect();
        for view in sessions.iter_mut().filter(|s| s.session.is_active()) {
            let Some(known) = ended.get(&view.session.id) else {
                continue;
            };
            view.session.status = known.status;
            view.session.finished_at = known.finished_at;
            if let Some(agent) = view.session.agent.as_ref()
                && let Some(a) = agents.iter_mut().find(|a| a.name == *agent)
            {
                a.load = a.load.saturating_sub(1);
            }
        }
    }

    /// Take one load sample per agent (called about once a second).
    pub fn sample_load(&mut self) {
        for agent in &self.agents {
            let samples = self.load.entry(agent.name.clone()).or_default();
            samples.push_back(percent(agent.load_ratio()));
            while samples.len() > LOAD_SAMPLES {
                samples.pop_front();
            }
        }
        self.generation += 1;
    }

    pub fn running(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.session.is_active())
            .count()
    }

    /// Apply an event to the view, and log its line (see [`Narration`]).
    pub fn apply(&mut self, event: &EngineEvent) {
        self.generation += 1;
        match event {
            EngineEvent::Transition(e) => {
                if !self.history {
                    self.early.push_back(e.clone());
                    if self.early.len() > HISTORY {
                        self.early.pop_front();
                    }
                }
                self.transition(e);
            }
            EngineEvent::PlanSubmitted { .. } | EngineEvent::MergeConflict { .. } => {
                self.wants_snapshot = true;
            }
            // The link turns it into `Msg::EngineGone`: the room shows it and closes.
            EngineEvent::EngineFailed { .. } => {}
            EngineEvent::Dispatched {
                plan,
                task,
                key,
                session,
                agent,
                attempt,
            } => {
                let now = Timestamp::now();
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
                    },
                });
            }
            EngineEvent::Activity { session, entry } => self.activity(*session, entry),
            EngineEvent::Paused { paused } => self.paused = *paused,
            EngineEvent::PlanFinished { .. }
            | EngineEvent::Recovered { .. }
            | EngineEvent::IntegrationReady { .. }
            | EngineEvent::TaskHeld { .. }
            | EngineEvent::Overlap { .. }
            | EngineEvent::Merged { .. } => {}
        }
        if let Some(line) = log_line(event) {
            self.push_line(line);
        }
    }

    fn transition(&mut self, e: &DomainEvent) {
        match &e.transition {
            Transition::Session { id, to, .. } => {
                if let Some(view) = self.sessions.iter_mut().find(|s| s.session.id == *id) {
                    self.sessions_generation += 1;
                    let was_active = view.session.is_active();
                    view.session.status = *to;
                    if to.is_terminal() {
                        view.session.finished_at = Some(e.at);
                        if was_active
                            && let Some(agent) = view.session.agent.as_ref()
                            && let Some(a) = self.agents.iter_mut().find(|a| a.name == *agent)
                        {
                            a.load = a.load.saturating_sub(1);
                        }
                    }
                    if *to != SessionStatus::WaitingApproval {
                        self.approvals.retain(|a| a.session != *id);
                    }
                }
            }
            Transition::Task { id, to, .. } => {
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
                    self.plans_generation += 1;
                }
            }
            Transition::Agent { name, to, .. } => {
                if let Some(agent) = self.agents.iter_mut().find(|a| a.name == *name) {
                    agent.status = *to;
                    agent.note(&e.cause, e.at);
                }
            }
        }
    }

    fn activity(&mut self, session: SessionId, entry: &Entry) {
        if let Some(view) = self.sessions.iter_mut().find(|s| s.session.id == session) {
            let was_retry = view.last.as_ref().is_some_and(|e| e.activity.is_retry());
            if entry.activity.is_retry() != was_retry {
                self.sessions_generation += 1;
            }
            if let Activity::Step { usage } = &entry.activity {
                // Step usage is the session's total so far: count only what is new.
                let before = view.session.usage;
                if usage.total_tokens() >= before.total_tokens() {
                    self.usage.input_tokens +=
                        usage.input_tokens.saturating_sub(before.input_tokens);
                    self.usage.output_tokens +=
                        usage.output_tokens.saturating_sub(before.output_tokens);
                    self.usage.cost += (usage.cost - before.cost).max(0.0);
                    view.session.usage = *usage;
                }
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

    /// Sessions by state, for the header.
    pub fn counts(&self) -> Vec<(SessionStatus, usize)> {
        SessionStatus::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    self.sessions
                        .iter()
                        .filter(|v| v.state() == s.name())
                        .count(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}
