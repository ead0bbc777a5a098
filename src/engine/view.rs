//! What front ends see of the engine: a [`Snapshot`] to start from, the recent past of the
//! control log ([`Logged`]) and the [`Activity`] of running sessions. Plain data, serializable both ways, so the control socket can carry it to
//! a front end in another process exactly as a local one gets it.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::approval::Ask;
use crate::domain::task::ConflictPolicy;
use crate::domain::{Agent, DomainEvent, PlanId, Session, SessionId, TaskId, TaskStatus, Usage};

/// Ended sessions a snapshot lists (after the running ones), and a front end keeps.
pub(crate) const RECENT_SESSIONS: usize = 500;

/// Everything a front end needs to draw, at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The number of the last event this snapshot reflects (see [`super::Told`]): apply the
    /// events numbered after it.
    #[serde(default)]
    pub seq: u64,
    /// Dispatching is paused: running sessions go on, nothing new starts.
    pub paused: bool,
    pub plans: Vec<PlanView>,
    /// Sessions running now, then the most recent that ended, newest first.
    pub sessions: Vec<SessionView>,
    /// How many sessions run now.
    pub running: usize,
    pub agents: Vec<Agent>,
    /// The fleets whose servers join as agents when they answer (none may have yet).
    #[serde(default)]
    pub fleets: Vec<crate::domain::Fleet>,
    /// Permission requests waiting for the operator.
    pub approvals: Vec<ApprovalView>,
    /// Tokens and cost of every session this engine has seen, including what running ones have
    /// used so far.
    pub usage: Usage,
    /// Merge conflicts a resolver works on or the operator has to settle, oldest task first.
    #[serde(default)]
    pub conflicts: Vec<ConflictView>,
    /// Spend against every budget there is, and the plans paused over budget.
    #[serde(default)]
    pub budgets: BudgetsView,
}

/// Spend against budgets, as of the newest completed model call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetsView {
    /// The UTC day the daily budgets count (`2026-12-04`).
    pub day: String,
    /// The engine's daily budget (none: unlimited) and what every agent spent today.
    pub daily: Option<crate::domain::Budget>,
    pub daily_spent: Usage,
    /// Each agent's daily budget and spend today.
    pub agents: Vec<SpendView>,
    /// Each shown plan's budget and spend, and why it is paused over budget.
    pub plans: Vec<PlanSpendView>,
}

/// One agent's budget for today and its spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendView {
    pub name: String,
    pub budget: Option<crate::domain::Budget>,
    pub spent: Usage,
}

/// One plan's budget and spend; `over_budget` while it waits for the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSpendView {
    pub plan: PlanId,
    pub name: String,
    pub budget: Option<crate::domain::Budget>,
    pub spent: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_budget: Option<String>,
    /// Its tasks stopped over budget (their work on their branches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
}

impl BudgetsView {
    /// The plans paused over budget: each an item in the operator's inbox.
    pub fn held(&self) -> impl Iterator<Item = &PlanSpendView> {
        self.plans.iter().filter(|p| p.over_budget.is_some())
    }

    /// `plan`'s spend, when the snapshot has it.
    pub fn plan(&self, plan: PlanId) -> Option<&PlanSpendView> {
        self.plans.iter().find(|p| p.plan == plan)
    }
}

/// Something the engine told besides a transition (a plan submitted, a task merged, a check's
/// end...), and when: kept so that a front end that starts later can show the past.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Noted {
    pub at: jiff::Timestamp,
    pub event: super::EngineEvent,
}

impl Noted {
    /// Whether `event` is kept as a note: what a person reads in the events pane, but for
    /// transitions (in the control log already), each part of a session's work (its
    /// transcript), a check's running line and the engine's own failure (nothing is written
    /// after it).
    pub(crate) fn keeps(event: &super::EngineEvent) -> bool {
        use super::EngineEvent as E;
        !matches!(
            event,
            E::Transition(_)
                | E::Activity { .. }
                | E::SessionUsage { .. }
                | E::CheckProgress { .. }
                | E::EngineFailed { .. }
        )
    }
}

/// One control log entry: a durable transition and its sequence number (from 1, no gaps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    pub seq: u64,
    #[serde(flatten)]
    pub event: DomainEvent,
}

/// How many entries the engine keeps in memory, structure by structure: each stays bounded
/// however much work has finished (finished work lives in the store). For diagnostics and
/// the tests that hold the engine to that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// Plans loaded: those with work to come and the newest that ended.
    pub plans: usize,
    /// Tasks of the loaded plans.
    pub tasks: usize,
    /// What finished tasks left for the tasks after them.
    pub contexts: usize,
    /// Each task's newest session.
    pub latest_sessions: usize,
    /// Ended sessions kept for the sessions table.
    pub recent_sessions: usize,
    /// Sessions whose transcripts are kept.
    pub transcripts: usize,
    /// Tasks waiting out a retry backoff.
    pub retries: usize,
    pub running: usize,
}

/// A task whose work conflicts with its plan's integration branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictView {
    pub(crate) plan: PlanId,
    pub(crate) task: TaskId,
    pub key: String,
    /// Repo-relative, sorted.
    pub files: Vec<String>,
    pub(crate) policy: ConflictPolicy,
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
    /// What its branches and worktrees are named after (`ocio/<key>/<task>`): its name, or
    /// `<name>-2`... when an earlier plan used the name (see `PlanSubmitted`).
    #[serde(default)]
    pub key: String,
    pub repo: PathBuf,
    pub tasks: Vec<TaskView>,
    /// Where its work was delivered (`ocio land`), once it was.
    #[serde(default)]
    pub landing: Option<crate::domain::PlanLanding>,
}

impl PlanView {
    /// What to call it among `plans`: its name, or its key (`<name>-2`) when another of them
    /// has the same name, so that two plans submitted from one file read apart.
    pub fn shown_name<'a>(&'a self, plans: &[PlanView]) -> &'a str {
        let twin = plans.iter().any(|p| p.id != self.id && p.name == self.name);
        match twin && !self.key.is_empty() {
            true => &self.key,
            false => &self.name,
        }
    }
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
    /// While the plan's check runs after its merge: the newest line it printed (the command
    /// until it prints one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// A ready task no agent there is now could ever run: what it waits for (`for a member
    /// of fleet box to join`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits: Option<String>,
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

impl SessionView {
    /// Its task and what it is to the task: `api #2` (its second attempt), `api resolver`.
    pub(crate) fn task_label(&self) -> String {
        match (self.session.kind.role(), self.task.is_empty()) {
            (None, _) => format!("{} #{}", self.task, self.session.attempt),
            (Some(role), true) => role.to_string(),
            (Some(role), false) => format!("{} {role}", self.task),
        }
    }

    /// The state to show: a running session whose server waits to retry the model provider is
    /// `retrying` (an observation of the live stream, not a stored state).
    /// What to say of a session not ended whose agent is offline (its server does not
    /// answer): it reads `running` all the same, which looked like work going on (hand trial).
    pub(crate) fn cut_off(&self, agents: &[crate::domain::Agent]) -> Option<String> {
        use crate::domain::Lifecycle as _;
        if self.session.status.is_terminal() {
            return None;
        }
        let agent = self.session.agent.as_ref()?;
        agents
            .iter()
            .find(|a| a.name == *agent && a.status == crate::domain::AgentStatus::Offline)
            .map(|a| {
                format!(
                    "{} is offline: followed again when its server answers",
                    a.name
                )
            })
    }

    pub(crate) fn state(&self) -> &'static str {
        crate::domain::Lifecycle::name(self.shown_status())
    }

    /// The status whose name [`state`](Self::state) is.
    pub(crate) fn shown_status(&self) -> crate::domain::SessionStatus {
        use crate::domain::SessionStatus;
        let retrying = self.session.status == SessionStatus::Running
            && self.last.as_ref().is_some_and(|e| e.activity.is_retry());
        if retrying {
            SessionStatus::Retrying
        } else {
            self.session.status
        }
    }
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
    /// The model provider failed and the session's server waits to try again: its attempt
    /// count, the provider's message, and when the next try is.
    Retry {
        attempt: u32,
        message: String,
        #[serde(default)]
        next: Option<Timestamp>,
    },
}

impl Activity {
    /// One line for tables and logs at `now`: a provider retry also says when the next try is.
    pub(crate) fn line(&self, now: Timestamp) -> String {
        match self {
            Self::Retry {
                attempt, message, ..
            } => match self.seconds_to_next(now) {
                Some(secs) => format!("retrying (attempt {attempt}: {message}, next in {secs}s)"),
                None => self.summary(),
            },
            _ => self.summary(),
        }
    }

    /// Like [`Activity::line`], shorter for a table whose state column already says retrying:
    /// when the next try is first, then the provider's message.
    pub(crate) fn brief(&self, now: Timestamp) -> String {
        match self {
            Self::Retry {
                attempt, message, ..
            } => {
                let when = self
                    .seconds_to_next(now)
                    .map(|s| format!(" in {s}s"))
                    .unwrap_or_default();
                format!("retry {attempt}{when}: {message}")
            }
            _ => self.summary(),
        }
    }

    fn seconds_to_next(&self, now: Timestamp) -> Option<i64> {
        let Self::Retry {
            next: Some(next), ..
        } = self
        else {
            return None;
        };
        let millis = (next.as_millisecond() - now.as_millisecond()).max(0);
        Some((millis + 999) / 1000)
    }

    /// Whether this says the session's server is waiting to retry the provider.
    pub(crate) fn is_retry(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }

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
            // The file's name first: where the line is clipped (a table's LAST column), the
            // directory went first and the name never showed (hand trial).
            Self::Edited { file } => {
                let path = std::path::Path::new(file);
                match (path.file_name(), path.parent()) {
                    (Some(name), Some(dir)) if !dir.as_os_str().is_empty() => {
                        format!("edited {} in {}", name.to_string_lossy(), dir.display())
                    }
                    _ => format!("edited {file}"),
                }
            }
            Self::Retry {
                attempt, message, ..
            } => format!("retrying (attempt {attempt}: {message})"),
        }
    }
}

/// `session`'s stored transcript, oldest first; a cut is stated where it happened (before the
/// oldest entry kept).
pub(crate) fn read_transcript(
    txn: &redb::ReadTransaction,
    session: SessionId,
) -> Result<Vec<Entry>, crate::store::StoreError> {
    let stored = crate::store::transcript::<Entry>(txn, session)?;
    let size = stored.size;
    let mut entries = Vec::with_capacity(stored.entries.len() + 1);
    if size.cut_entries > 0 {
        let at = stored.entries.first().map_or_else(Timestamp::now, |e| e.at);
        entries.push(Entry {
            at,
            part: None,
            activity: Activity::Note {
                text: format!(
                    "[{} ({}) cut here to keep the transcript under its cap ([engine] transcript_cap)]",
                    match size.cut_entries {
                        1 => "1 earlier entry".to_string(),
                        n => format!("{n} earlier entries"),
                    },
                    crate::text::bytes(size.cut_bytes),
                ),
            },
        });
    }
    entries.extend(stored.entries);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::SessionView;
    use crate::domain::{Session, SessionId, SessionKind};

    /// A resolver, a check fix or a planner reads apart from the task's attempts (hand trial:
    /// the room showed a resolver as `api #1`, like a retry).
    #[test]
    fn a_session_that_is_no_attempt_says_what_it_is_for() {
        let at: jiff::Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        let view = |kind: SessionKind, task: &str| {
            let mut session = Session::new(SessionId::generate(), "t", kind, at);
            session.attempt = 2;
            SessionView {
                session,
                task: task.into(),
                last: None,
            }
        };
        assert_eq!(view(SessionKind::Code, "api").task_label(), "api #2");
        assert_eq!(
            view(SessionKind::Resolve, "api").task_label(),
            "api resolver"
        );
        assert_eq!(view(SessionKind::Fix, "api").task_label(), "api check fix");
        assert_eq!(view(SessionKind::Plan, "").task_label(), "planner");
    }

    /// An edit is summed up by the file's name first (the LAST column clipped an absolute
    /// path before its name: hand trial).
    #[test]
    fn an_edit_says_the_files_name_first() {
        let edited = |file: &str| {
            super::Activity::Edited {
                file: file.to_string(),
            }
            .summary()
        };
        assert_eq!(
            edited("/tmp/box/cwd/.ocio-work/wt/p-t-1/src/lib.rs"),
            "edited lib.rs in /tmp/box/cwd/.ocio-work/wt/p-t-1/src"
        );
        assert_eq!(edited("README.md"), "edited README.md");
    }
}
