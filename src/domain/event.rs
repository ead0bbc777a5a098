//! Domain events: the record every transition of a session, task or agent yields, and the error
//! an illegal transition gives. The store appends events to the control log in order.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::agent::AgentStatus;
use super::id::{AgentName, SessionId, TaskId};
use super::lifecycle::Lifecycle;
use super::session::SessionStatus;
use super::task::TaskStatus;

/// Which entity moved, from which status to which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entity", rename_all = "snake_case")]
pub enum Transition {
    Session {
        id: SessionId,
        from: SessionStatus,
        to: SessionStatus,
    },
    Task {
        id: TaskId,
        key: String,
        from: TaskStatus,
        to: TaskStatus,
    },
    Agent {
        name: AgentName,
        from: AgentStatus,
        to: AgentStatus,
    },
}

impl Transition {
    /// The entity kind, as written in the control log.
    pub(crate) fn entity(&self) -> &'static str {
        match self {
            Transition::Session { .. } => "session",
            Transition::Task { .. } => "task",
            Transition::Agent { .. } => "agent",
        }
    }

    pub(crate) fn to_name(&self) -> &'static str {
        match self {
            Transition::Session { to, .. } => to.name(),
            Transition::Task { to, .. } => to.name(),
            Transition::Agent { to, .. } => to.name(),
        }
    }
}

/// One transition, why it happened and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub transition: Transition,
    pub cause: String,
    pub(crate) at: Timestamp,
}

impl DomainEvent {
    pub fn new(transition: Transition, cause: impl Into<String>, at: Timestamp) -> Self {
        Self {
            transition,
            cause: cause.into(),
            at,
        }
    }
}

/// A transition the entity's table does not allow. Names the entity, from and to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("session {id} cannot go from {from} to {to}{}", terminal_note(from.is_terminal()))]
    Session {
        id: SessionId,
        from: SessionStatus,
        to: SessionStatus,
    },
    #[error("task `{key}` ({id}) cannot go from {from} to {to}{}", terminal_note(from.is_terminal()))]
    Task {
        id: TaskId,
        key: String,
        from: TaskStatus,
        to: TaskStatus,
    },
    #[error("agent `{name}` cannot go from {from} to {to}")]
    Agent {
        name: AgentName,
        from: AgentStatus,
        to: AgentStatus,
    },
}

fn terminal_note(terminal: bool) -> &'static str {
    if terminal { " (it is terminal)" } else { "" }
}
