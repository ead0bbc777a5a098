//! A session: one OpenCode conversation ocio drives (one attempt at a task, a planner, a
//! reviewer, a conflict resolver or an ad-hoc prompt), its strict state machine, its usage and
//! its checkpoints.

use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::event::{DomainEvent, Transition, TransitionError};
use super::id::{AgentName, PlanId, SessionId, TaskId};
use super::lifecycle::{Lifecycle, status_enum};

status_enum! {
    /// Where a session is in its life. See [`Lifecycle::next`] for the transition table.
    pub enum SessionStatus {
        /// Created, not yet eligible to run (e.g. its task waits for dependencies).
        Pending => "pending",
        /// Eligible to run, waiting for an agent slot.
        Queued => "queued",
        /// An agent was chosen; the remote session is being created and prompted.
        Starting => "starting",
        /// The remote session is working.
        Running => "running",
        /// The remote session waits for a permission decision.
        WaitingApproval => "waiting-approval",
        /// The remote model call failed and the server is retrying it.
        Retrying => "retrying",
        /// Held by the operator or the engine; resumes to queued or running.
        Paused => "paused",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
        TimedOut => "timed-out",
        /// Its run did not survive (its server lost the session, or an engine restart found it
        /// gone): nothing it did failed, and its task runs again without spending a retry.
        Lost => "lost",
    }
}

impl Lifecycle for SessionStatus {
    const ALL: &'static [Self] = Self::VARIANTS;

    fn next(self) -> &'static [Self] {
        use SessionStatus::*;
        match self {
            Pending => &[Queued, Cancelled],
            Queued => &[Starting, Paused, Cancelled],
            // Back to queued when the agent could not even create the remote session.
            Starting => &[Running, Queued, Failed, Cancelled, TimedOut, Lost],
            Running => &[
                WaitingApproval,
                Retrying,
                Paused,
                Completed,
                Failed,
                Cancelled,
                TimedOut,
                Lost,
            ],
            // Completed too: a run may end while the operator's interrupt or answer is on its
            // way (the session finished first).
            WaitingApproval => &[Running, Completed, Failed, Cancelled, TimedOut, Lost],
            Retrying => &[Running, Completed, Failed, Cancelled, TimedOut, Lost],
            Paused => &[Queued, Running, Cancelled, TimedOut, Lost],
            Completed | Failed | Cancelled | TimedOut | Lost => &[],
        }
    }

    fn name(self) -> &'static str {
        self.text()
    }
}

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    /// Decomposes work into a task graph.
    Plan,
    /// Writes code for a task.
    Code,
    /// Reviews another session's work.
    Review,
    /// Settles a merge conflict between sessions.
    Resolve,
    /// Makes the plan's check pass again after a merge broke it.
    Fix,
    /// A prompt the operator sent directly, outside any plan.
    Prompt,
}

impl SessionKind {
    /// What a person calls a session of this kind beside its task's name, when it is not
    /// the task's own attempt (`None`): a resolver reads apart from a retry.
    pub fn role(self) -> Option<&'static str> {
        match self {
            Self::Code | Self::Prompt => None,
            Self::Resolve => Some("resolver"),
            Self::Fix => Some("check fix"),
            Self::Review => Some("review"),
            Self::Plan => Some("planner"),
        }
    }
}

/// Where the session lives on its OpenCode server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSession {
    /// Base URL of the server, e.g. `http://127.0.0.1:4096`.
    pub(crate) server: String,
    /// OpenCode's own id (`ses_...`).
    pub(crate) session_id: String,
    /// The directory (worktree) the session's tools run in.
    pub directory: PathBuf,
}

/// Tokens and cost, as OpenCode reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// US dollars.
    pub cost: f64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.reasoning_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cost += other.cost;
    }
}

/// What a checkpoint records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointKind {
    PromptSent,
    Step,
    Result,
    Recovery,
    Note,
}

impl std::fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PromptSent => "prompt sent",
            Self::Step => "step",
            Self::Result => "result",
            Self::Recovery => "recovery",
            Self::Note => "note",
        })
    }
}

/// A sequence-numbered record of progress, enough to re-attach to or explain a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub(crate) session: SessionId,
    /// 1 for the first checkpoint of a session, then consecutive.
    pub(crate) seq: u64,
    pub(crate) at: Timestamp,
    pub kind: CheckpointKind,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub title: String,
    pub kind: SessionKind,
    pub status: SessionStatus,
    pub parent: Option<SessionId>,
    pub plan: Option<PlanId>,
    pub task: Option<TaskId>,
    pub agent: Option<AgentName>,
    pub remote: Option<RemoteSession>,
    pub(crate) max_duration: Option<SignedDuration>,
    pub(crate) created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub(crate) deleted_at: Option<Timestamp>,
    #[serde(default)]
    pub usage: Usage,
    /// 1 for the first attempt at a task, then one more per retry.
    pub attempt: u32,
    pub last_error: Option<String>,
    /// Sequence number of the newest checkpoint; 0 before the first.
    #[serde(default)]
    pub(crate) checkpoint_seq: u64,
    /// The operator's latest word to the session while it runs, so a restarted engine follows
    /// it the same way (waiting for their message, or for the answer to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) word: Option<OperatorWord>,
    /// Every message the operator (or ocio on their behalf) sent the session while it runs,
    /// the last word's included: a restarted engine knows the server's copies of them as
    /// theirs, never as the session's own text. Cleared when it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) said: Vec<crate::domain::MessageId>,
    /// The operator asked it to stop (a cancel) and its run has not ended yet: a restarted
    /// engine stops it the same way, whatever it finds (a cancel confirmed and then lost with a
    /// restart ran the task on: hand trial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stop_asked: Option<SessionStatus>,
}

/// What the operator last told a running session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum OperatorWord {
    /// Interrupted: it waits for their next message.
    Interrupt,
    /// A message (its id, so sending it again is never a second one).
    Say {
        id: crate::domain::MessageId,
        text: String,
    },
}

impl Session {
    pub fn new(id: SessionId, title: impl Into<String>, kind: SessionKind, at: Timestamp) -> Self {
        Self {
            id,
            title: title.into(),
            kind,
            status: SessionStatus::Pending,
            parent: None,
            plan: None,
            task: None,
            agent: None,
            remote: None,
            max_duration: None,
            created_at: at,
            started_at: None,
            finished_at: None,
            deleted_at: None,
            usage: Usage::default(),
            attempt: 1,
            last_error: None,
            checkpoint_seq: 0,
            word: None,
            said: Vec::new(),
            stop_asked: None,
        }
    }

    /// Moves to `to` if the transition table allows it, stamping start and finish times and
    /// keeping the cause of a failure or time-out as the last error.
    pub fn transition(
        &mut self,
        to: SessionStatus,
        cause: impl Into<String>,
        at: Timestamp,
    ) -> Result<DomainEvent, TransitionError> {
        let from = self.status;
        if !from.can_become(to) {
            return Err(TransitionError::Session {
                id: self.id,
                from,
                to,
            });
        }
        let cause = cause.into();
        self.status = to;
        if to == SessionStatus::Running && self.started_at.is_none() {
            self.started_at = Some(at);
        }
        if to.is_terminal() {
            self.finished_at = Some(at);
            // Known only to re-attach a running session: an ended one does not carry them on.
            self.said.clear();
        }
        if matches!(
            to,
            SessionStatus::Failed | SessionStatus::TimedOut | SessionStatus::Lost
        ) {
            self.last_error = Some(cause.clone());
        }
        Ok(DomainEvent::new(
            Transition::Session {
                id: self.id,
                from,
                to,
            },
            cause,
            at,
        ))
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.status.is_terminal()
    }

    /// When the time limit runs out, counted from the first start.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        let started = self.started_at?;
        let limit = self.max_duration?;
        started.checked_add(limit).ok()
    }

    /// Whether an active session has run past its time limit at `now`.
    pub(crate) fn is_overdue(&self, now: Timestamp) -> bool {
        self.is_active() && self.deadline().is_some_and(|deadline| now >= deadline)
    }

    pub(crate) fn add_usage(&mut self, usage: Usage) {
        self.usage += usage;
    }

    /// The next checkpoint of this session, numbered after the last one.
    pub(crate) fn checkpoint(
        &mut self,
        kind: CheckpointKind,
        data: serde_json::Value,
        at: Timestamp,
    ) -> Checkpoint {
        self.checkpoint_seq += 1;
        Checkpoint {
            session: self.id,
            seq: self.checkpoint_seq,
            at,
            kind,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionStatus::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn session() -> Session {
        Session::new(
            SessionId::from_parts(1, 1),
            "plan/impl #1",
            SessionKind::Code,
            at(0),
        )
    }

    #[test]
    fn happy_path_stamps_times_and_yields_events() {
        let mut s = session();
        let mut events = Vec::new();
        for (i, to) in [Queued, Starting, Running, Completed]
            .into_iter()
            .enumerate()
        {
            events.push(s.transition(to, "test", at(i as i64 + 1)).unwrap());
        }
        assert_eq!(s.started_at, Some(at(3)));
        assert_eq!(s.finished_at, Some(at(4)));
        assert_eq!(
            events.last().unwrap().transition,
            Transition::Session {
                id: s.id,
                from: Running,
                to: Completed
            }
        );
        assert_eq!(events.last().unwrap().at, at(4));
    }

    /// The ids of the messages sent to a running session are kept only while it runs (to
    /// re-attach it): an ended session's record does not grow with them.
    #[test]
    fn what_was_said_to_a_session_is_forgotten_when_it_ends() {
        let mut s = session();
        for to in [Queued, Starting, Running] {
            s.transition(to, "test", at(1)).unwrap();
        }
        s.said.push(crate::domain::MessageId::generate());
        s.transition(WaitingApproval, "test", at(2)).unwrap();
        assert_eq!(s.said.len(), 1, "kept while it runs");
        s.transition(Cancelled, "test", at(3)).unwrap();
        assert!(s.said.is_empty());
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("said"), "{json}");
    }

    #[test]
    fn illegal_transition_names_from_and_to() {
        let mut s = session();
        let err = s.transition(Running, "skip the queue", at(1)).unwrap_err();
        assert_eq!(
            err,
            TransitionError::Session {
                id: s.id,
                from: Pending,
                to: Running
            }
        );
        assert!(err.to_string().contains("from pending to running"));
        assert_eq!(s.status, Pending, "a refused transition changes nothing");
    }

    #[test]
    fn terminal_states_are_terminal() {
        for terminal in [Completed, Failed, Cancelled, TimedOut, Lost] {
            assert!(terminal.is_terminal());
            for &to in SessionStatus::ALL {
                assert!(!terminal.can_become(to));
            }
        }
        let mut s = session();
        s.transition(Cancelled, "operator", at(1)).unwrap();
        let err = s.transition(Queued, "again", at(2)).unwrap_err();
        assert!(err.to_string().ends_with("(it is terminal)"), "{err}");
    }

    #[test]
    fn every_non_terminal_state_can_be_cancelled() {
        for &status in SessionStatus::ALL {
            if !status.is_terminal() {
                assert!(status.can_become(Cancelled), "{status} cannot be cancelled");
            }
        }
    }

    #[test]
    fn failure_keeps_its_cause() {
        let mut s = session();
        for to in [Queued, Starting] {
            s.transition(to, "", at(1)).unwrap();
        }
        s.transition(Failed, "server refused: 503", at(2)).unwrap();
        assert_eq!(s.last_error.as_deref(), Some("server refused: 503"));
    }

    #[test]
    fn time_limit_counts_from_first_start() {
        let mut s = session();
        s.max_duration = Some(SignedDuration::from_mins(20));
        assert!(!s.is_overdue(at(10_000)), "not started, not overdue");
        for to in [Queued, Starting, Running] {
            s.transition(to, "", at(60)).unwrap();
        }
        assert_eq!(s.deadline(), Some(at(60 + 20 * 60)));
        assert!(!s.is_overdue(at(60 + 20 * 60 - 1)));
        assert!(s.is_overdue(at(60 + 20 * 60)));
        s.transition(Completed, "", at(100)).unwrap();
        assert!(
            !s.is_overdue(at(100_000)),
            "finished sessions are never overdue"
        );
    }

    #[test]
    fn checkpoints_are_numbered_consecutively() {
        let mut s = session();
        let first = s.checkpoint(
            CheckpointKind::PromptSent,
            serde_json::json!({"p": 1}),
            at(1),
        );
        let second = s.checkpoint(CheckpointKind::Step, serde_json::Value::Null, at(2));
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(s.checkpoint_seq, 2);
        assert_eq!(second.session, s.id);
    }

    #[test]
    fn usage_adds_up() {
        let mut s = session();
        let step = Usage {
            input_tokens: 100,
            output_tokens: 20,
            cost: 0.5,
            ..Usage::default()
        };
        s.add_usage(step);
        s.add_usage(step);
        assert_eq!(s.usage.total_tokens(), 240);
        assert!((s.usage.cost - 1.0).abs() < 1e-9);
    }

    #[test]
    fn status_names_round_trip() {
        for &status in SessionStatus::ALL {
            assert_eq!(status.name().parse::<SessionStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.name()));
        }
        assert!(
            "sleeping"
                .parse::<SessionStatus>()
                .unwrap_err()
                .to_string()
                .contains("waiting-approval")
        );
    }

    #[test]
    fn session_round_trips_through_json() {
        let mut s = session();
        s.remote = Some(RemoteSession {
            server: "http://127.0.0.1:4096".into(),
            session_id: "ses_abc".into(),
            directory: "/tmp/wt".into(),
        });
        s.max_duration = Some(SignedDuration::from_secs(90));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), s);
    }
}
