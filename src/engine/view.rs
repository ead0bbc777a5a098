//! What front ends see of the engine: a [`Snapshot`] to start from and the [`Activity`] of
//! running sessions. Plain data, serializable both ways, so the control socket can carry it to
//! a front end in another process exactly as a local one gets it.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::approval::Ask;
use crate::domain::task::ConflictPolicy;
use crate::domain::{Agent, PlanId, Session, SessionId, TaskId, TaskStatus, Usage};

/// Everything a front end needs to draw, at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Dispatching is paused: running sessions go on, nothing new starts.
    pub paused: bool,
    pub plans: Vec<PlanView>,
    /// Sessions running now, then the most recent that ended, newest first.
    pub sessions: Vec<SessionView>,
    /// How many sessions run now.
    pub running: usize,
    pub agents: Vec<Agent>,
    /// Permission requests waiting for the operator.
    pub approvals: Vec<ApprovalView>,
    /// Tokens and cost of every session this engine has seen, including what running ones have
    /// used so far.
    pub usage: Usage,
    /// Merge conflicts a resolver works on or the operator has to settle, oldest task first.
    #[serde(default)]
    pub conflicts: Vec<ConflictView>,
}

/// A task whose work conflicts with its plan's integration branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictView {
    pub plan: PlanId,
    pub task: TaskId,
    pub key: String,
    /// Repo-relative, sorted.
    pub files: Vec<String>,
    pub policy: ConflictPolicy,
    pub state: ConflictState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictState {
    /// A resolver session works on it in the plan's integration worktree.
    Resolving,
    /// The task failed on it: settle it (on the integration branch, or not at all) and retry
    /// the task, which then runs again on top of the integration branch.
    Parked,
}

/// A plan's tasks, in topological order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub id: PlanId,
    pub name: String,
    pub repo: PathBuf,
    pub tasks: Vec<TaskView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: TaskId,
    pub key: String,
    pub status: TaskStatus,
    pub attempts: u32,
    pub needs: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The task's latest session, when it has had one.
    #[serde(default)]
    pub session: Option<SessionId>,
}

/// A session and what it is doing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionView {
    pub session: Session,
    /// The task's id within its plan.
    pub task: String,
    /// The newest thing it did, when it has done anything this engine saw.
    #[serde(default)]
    pub last: Option<Entry>,
}

/// A permission request waiting for the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalView {
    pub session: SessionId,
    pub task: String,
    pub ask: Ask,
}

/// One line of a session's transcript as it is written. Entries with the same `part` replace
/// each other (a text that grows, a tool call that moves from running to completed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at: Timestamp,
    /// The server's id of the part this entry shows, when it has one.
    #[serde(default)]
    pub part: Option<String>,
    pub activity: Activity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activity {
    /// The model's answer so far.
    Text { text: String },
    /// A tool call and where it is: pending, running, completed or error.
    Tool {
        tool: String,
        status: String,
        title: String,
    },
    /// A model step ended; `usage` is the session's total so far.
    Step { usage: Usage },
    /// Something the engine or runner says about the session.
    Note { text: String },
    /// The session's server says it changed `file` (as the server names it: usually absolute).
    Edited { file: String },
}

impl Activity {
    /// One line for tables and logs.
    pub fn summary(&self) -> String {
        match self {
            Self::Text { text } => text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string(),
            Self::Tool {
                tool,
                status,
                title,
            } if title.is_empty() => format!("{tool} {status}"),
            Self::Tool {
                tool,
                status,
                title,
            } => format!("{tool} {status}: {title}"),
            Self::Step { usage } => format!("step done, {} tokens", usage.total_tokens()),
            Self::Note { text } => text.clone(),
            Self::Edited { file } => format!("edited {file}"),
        }
    }
}
