//! The engine's public API: every request a front end can make and its reply, as plain data,
//! and the numbered events it tells. The control room, the CLI, headless mode and the control
//! socket speak only this, through an [`Engine`]: the engine in this process
//! ([`super::EngineHandle`]) or one in another process
//! ([`crate::control::ControlClient`]). The typed calls ([`EngineApi`]) are written once, for
//! both; a new command is one [`Request`] variant, its arm in the engine's core and its typed
//! call here.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Follower;
use super::approval::{Approver, Decision};
use super::question::Answer;
use super::view::{Entry, Logged, Noted, Snapshot};
use super::{EngineError, EngineEvent, Proposal};
use crate::domain::review::PlanReview;
use crate::domain::{Budget, LandMode, PlanLanding, TaskContext};
use crate::domain::{PlanId, SessionId, TaskId};
use crate::store::{Found, SearchQuery};
use crate::timeline::{LaneBy, Timeline};

/// What a front end asks of the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Everything a front end draws, tagged with the number of the last event it reflects.
    Snapshot,
    /// What a session has done, as stored (with what waits to be written), oldest first.
    Transcript { session: SessionId },
    /// A plan file's text; `path` names it in errors and anchors its relative `repo`.
    Submit { path: PathBuf, text: String },
    /// Stop a task: a running session is stopped; its dependents are blocked.
    Cancel { task: TaskId },
    /// Run a failed or cancelled task again; its blocked dependents are re-opened.
    Retry { task: TaskId },
    /// Answer a permission request: `request` is its id or the id's short form.
    Approve {
        request: String,
        decision: Decision,
        /// Who answers (a client that does not say is [`Approver::Client`]).
        #[serde(default)]
        by: Approver,
    },
    /// Answer a question: `request` is its id or the id's short form; one answer per question
    /// it asks, in order. (Reject one with [`Request::Approve`] and `reject`.)
    Answer {
        request: String,
        answers: Vec<Answer>,
        #[serde(default)]
        by: Approver,
    },
    /// Send a running session a follow-up message: the task's result becomes the answer to
    /// it.
    Say { session: SessionId, text: String },
    /// Stop what a running session does now, keeping it for the operator's next message
    /// (its task does not fail).
    Interrupt { session: SessionId },
    /// Stop starting new sessions (`true`) or start again.
    Pause { paused: bool },
    /// Stop giving an agent new work (`true`) or let it take work again.
    Drain { agent: String, drain: bool },
    /// A session's changes as a unified diff.
    Diff { session: SessionId },
    /// What a plan's finished tasks left for their dependents.
    Context { plan: PlanId },
    /// A plan's result for review: its integration branch against its base, the files
    /// changed and by which task, the combined diff, and each task's answer and cost.
    Review { plan: PlanId },
    /// Mark one of a plan's changed files reviewed as it is now (`true`), or not reviewed.
    MarkReviewed {
        plan: PlanId,
        file: String,
        reviewed: bool,
    },
    /// Ask a planner for a plan towards `goal` in `repo`; nothing is queued.
    Plan { goal: String, repo: PathBuf },
    /// The control log's newest `last` entries with a sequence number above `since` (0: from
    /// the start), oldest first.
    History {
        #[serde(default)]
        since: u64,
        last: usize,
    },
    /// The newest `last` notes: what the engine told besides transitions, oldest first.
    Notes { last: usize },
    /// Remove the stored transcripts of sessions that ended before `ended_before`.
    PruneTranscripts { ended_before: jiff::Timestamp },
    /// Deliver a finished plan's work: land its integration branch on its base branch
    /// (`mode`), or with `push`, push the branch (and open a pull request) instead.
    Land {
        plan: PlanId,
        #[serde(default)]
        mode: LandMode,
        #[serde(default)]
        push: Option<Push>,
    },
    /// Sessions on a time axis from the control log: plan `plan`'s, or (`None`) every
    /// session since `since` (default: the last 2 hours), lanes `by` agent or task.
    Timeline {
        #[serde(default)]
        plan: Option<PlanId>,
        #[serde(default)]
        by: LaneBy,
        #[serde(default)]
        since: Option<jiff::Timestamp>,
    },
    /// The sessions (and tasks) whose title, control-log events or transcript have every
    /// word of `query.text`, newest first (`ocio search`, `/` in the room).
    Search { query: SearchQuery },
    /// Raise one of a plan's budgets (or an agent's or the engine's daily one) to `raise`'s
    /// limits (those it does not set are kept), then settle the plan if it is paused over
    /// budget: `then` continue (its stopped tasks run again from their branches) or cancel.
    Budget {
        plan: PlanId,
        #[serde(default)]
        target: BudgetTarget,
        #[serde(default)]
        raise: Option<Budget>,
        #[serde(default)]
        then: BudgetThen,
    },
}

/// Which budget a [`Request::Budget`] raises.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum BudgetTarget {
    /// The plan's own.
    #[default]
    Plan,
    /// One of its tasks'.
    Task { key: String },
    /// An agent's for each UTC day (until ocio's config says otherwise at its next start:
    /// kept in the store, it replaces the config's while ocio runs).
    Agent { agent: String },
    /// The engine's for each UTC day (kept the same way).
    Daily,
}

/// What a [`Request::Budget`] does with a plan paused over budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetThen {
    /// Its stopped tasks run again, each from the work it committed on its branch; refused
    /// while a budget they count against is still reached.
    #[default]
    Continue,
    /// Its stopped tasks and every task of it that has not ended are cancelled.
    Cancel,
    /// Nothing more: it stays paused.
    Hold,
}

/// Where `ocio land --push` sends a plan's integration branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// The remote; `None`: the base branch's upstream remote, else `origin`.
    #[serde(default)]
    pub remote: Option<String>,
    /// Open a pull request (`gh pr create`, or `glab mr create`) from it into the base.
    #[serde(default)]
    pub pr: bool,
}

/// What a [`Request::Land`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landing {
    /// The durable record (also the `plan_landed` event's).
    pub record: PlanLanding,
    /// The plan's name.
    pub name: String,
    /// It had landed before: nothing was done now (the record is the earlier one).
    #[serde(default)]
    pub already: bool,
    /// The base branch already held the work though nothing recorded it (an earlier landing
    /// stopped before it was recorded): recorded now, no new commit made.
    #[serde(default)]
    pub recovered: bool,
    /// The base had moved since the plan started and was merged into the integration branch
    /// first.
    #[serde(default)]
    pub base_merged: bool,
    /// Files in which the moved base conflicted with the plan's work, settled by a resolver
    /// session before the landing (plan `conflicts = "resolver"`).
    #[serde(default)]
    pub base_resolved: Vec<String>,
    /// Tasks whose work is not in what landed (they failed, were cancelled or changed
    /// nothing), as `key: why`.
    #[serde(default)]
    pub left_out: Vec<String>,
    /// Worktrees removed afterwards, and task branches deleted.
    #[serde(default)]
    pub removed: Vec<PathBuf>,
    #[serde(default)]
    pub branches_deleted: Vec<String>,
}

/// The engine's answer to one [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Snapshot { snapshot: Box<Snapshot> },
    Transcript { entries: Vec<Entry> },
    Submitted { plan: PlanId },
    Proposal { proposal: Proposal },
    Diff { text: String },
    Context { tasks: Vec<TaskContext> },
    Review { review: Box<PlanReview> },
    History { entries: Vec<Logged> },
    Notes { notes: Vec<Noted> },
    Pruned { pruned: crate::store::Pruned },
    Landed { landing: Box<Landing> },
    Timeline { timeline: Box<Timeline> },
    Found { found: Vec<Found> },
    Done,
}

impl Reply {
    /// The reply's `type`, to name it in a protocol error.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Snapshot { .. } => "snapshot",
            Self::Transcript { .. } => "transcript",
            Self::Submitted { .. } => "submitted",
            Self::Proposal { .. } => "proposal",
            Self::Diff { .. } => "diff",
            Self::Context { .. } => "context",
            Self::Review { .. } => "review",
            Self::History { .. } => "history",
            Self::Notes { .. } => "notes",
            Self::Pruned { .. } => "pruned",
            Self::Landed { .. } => "landed",
            Self::Timeline { .. } => "timeline",
            Self::Found { .. } => "found",
            Self::Done => "done",
        }
    }
}

/// An engine event and its number: events are numbered from 1 in the order the engine tells
/// them, and a [`Snapshot`] says the number of the last one it reflects, so a snapshot plus
/// the events numbered after it is the engine's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Told {
    pub seq: u64,
    pub event: EngineEvent,
}

/// Why a feed ended when the engine stopped cleanly (its host quit), as [`Feed::Gone`] says it;
/// any other reason is a failure, or the engine went away without a word.
pub const STOPPED: &str = "the engine stopped";

/// Why a control client's feed ended when its connection closed without a word (the engine's
/// process was killed).
pub const WENT_AWAY: &str = "the engine went away";

/// What a subscription delivers.
#[derive(Debug, Clone)]
pub enum Feed {
    Event(Told),
    /// This many events were dropped because this front end read too slowly: take a fresh
    /// snapshot and apply the events numbered after it.
    Lagged(u64),
    /// The engine stopped (or went away), and why. Nothing follows.
    Gone(String),
}

/// A request the engine could not carry out, or could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// A plan paused over budget that cannot go on yet: the budget to raise, for the front
    /// end to say how it raises it (the message says only what is reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_budget: Option<StillOver>,
}

/// The budget still reached that keeps plan `plan` paused: raised, the plan can go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StillOver {
    pub plan: PlanId,
    pub scope: crate::domain::BudgetScope,
}

/// Why a request failed, so a front end can tell bad input from a broken engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The plan is invalid (the message names file, line and column).
    Plan,
    /// No such task, agent, plan or permission request.
    NotFound,
    /// Not possible in the current state (e.g. retrying a task that is running).
    NotNow,
    /// The request line could not be read.
    BadRequest,
    /// What was asked does not fit what it is for (an option a question does not offer).
    Invalid,
    /// The client speaks another protocol version.
    Version,
    /// The engine has stopped, its store failed, or the work asked for failed.
    Failed,
}

impl ErrorKind {
    /// Whether the fault lies with what was asked (nothing was done; fix the input).
    pub(crate) fn is_input(self) -> bool {
        !matches!(self, Self::Failed)
    }
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            over_budget: None,
        }
    }

    /// A reply of another kind than the request calls for.
    fn unexpected(reply: &Reply) -> Self {
        Self::new(
            ErrorKind::Failed,
            format!("the engine sent an unexpected `{}` reply", reply.kind()),
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let kind = match &e {
            EngineError::Plan(_) | EngineError::Graph(_) => ErrorKind::Plan,
            EngineError::UnknownTask(_)
            | EngineError::UnknownAgent(_)
            | EngineError::UnknownApproval(_)
            | EngineError::UnknownPlan(_) => ErrorKind::NotFound,
            EngineError::BadAnswer(_)
            | EngineError::NotChanged(_)
            | EngineError::AmbiguousApproval { .. } => ErrorKind::Invalid,
            EngineError::NotNow { .. }
            | EngineError::NotLandable(_)
            | EngineError::NotSteerable(_)
            | EngineError::DuplicateAgent(_)
            | EngineError::AgentBusy { .. }
            | EngineError::NoPlanner(_)
            | EngineError::NoBranch(_)
            | EngineError::NeverRuns(_)
            | EngineError::OverBudget { .. } => ErrorKind::NotNow,
            EngineError::Store(_)
            | EngineError::Stopped
            | EngineError::Halted(_)
            | EngineError::Workspace(_)
            | EngineError::Planner(_)
            | EngineError::Diff(_)
            | EngineError::LandFailed(_) => ErrorKind::Failed,
        };
        let over_budget = match &e {
            EngineError::OverBudget { plan, scope, .. } => Some(StillOver {
                plan: *plan,
                scope: scope.clone(),
            }),
            _ => None,
        };
        Self {
            over_budget,
            ..Self::new(kind, e.to_string())
        }
    }
}

/// A way to an engine: in this process or over its control socket. The two implementations
/// are [`super::EngineHandle`] and [`crate::control::ControlClient`].
pub trait Engine: Send + Sync {
    /// One request, answered.
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>>;

    /// The engine's events from now on, numbered; ends with [`Feed::Gone`] when the engine
    /// stops or goes away. Dropping the receiver ends the subscription. A control room says
    /// so (`follower`): while one follows, questions wait for the operator (`auto`).
    fn feed(&self, follower: Follower) -> BoxFuture<'_, Result<mpsc::Receiver<Feed>, ApiError>>;
}

/// The engine's requests as typed calls, for every [`Engine`].
// Its one implementation is the blanket one below, so a caller's future is that concrete one,
// `Send` as the engine's `call` future is: nothing needs the bound spelt out.
#[allow(async_fn_in_trait)]
pub trait EngineApi: Engine {
    async fn snapshot(&self) -> Result<Snapshot, ApiError> {
        match self.call(Request::Snapshot).await? {
            Reply::Snapshot { snapshot } => Ok(*snapshot),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    async fn transcript(&self, session: SessionId) -> Result<Vec<Entry>, ApiError> {
        match self.call(Request::Transcript { session }).await? {
            Reply::Transcript { entries } => Ok(entries),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// Submit a plan file's text; `path` names it in errors (which give file, line and
    /// column) and anchors its relative `repo`, so give it absolute. The plan is checked
    /// against the agents and its repository prepared before anything is queued.
    async fn submit(&self, path: &Path, text: String) -> Result<PlanId, ApiError> {
        let path = path.to_path_buf();
        match self.call(Request::Submit { path, text }).await? {
            Reply::Submitted { plan } => Ok(plan),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// [`Self::submit`] for a plan file on disk.
    async fn submit_file(&self, path: &Path) -> Result<PlanId, ApiError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ApiError::new(
                ErrorKind::Plan,
                format!("{}: cannot read the plan file: {e}", path.display()),
            )
        })?;
        self.submit(path, text).await
    }

    async fn cancel(&self, task: TaskId) -> Result<(), ApiError> {
        done(self.call(Request::Cancel { task }).await?)
    }

    async fn retry(&self, task: TaskId) -> Result<(), ApiError> {
        done(self.call(Request::Retry { task }).await?)
    }

    /// Answer a permission request by its id (`per_...`) or 4 or more characters from its
    /// end or of its last 8 (see [`crate::engine::approval::names`]); `by` says who answers.
    async fn approve(
        &self,
        request: &str,
        decision: Decision,
        by: Approver,
    ) -> Result<(), ApiError> {
        let request = request.to_string();
        done(
            self.call(Request::Approve {
                request,
                decision,
                by,
            })
            .await?,
        )
    }

    /// Answer a question by its id (`que_...`) or 4 or more characters from its end or of
    /// its last 8: one answer per question it asks, in order.
    async fn answer(
        &self,
        request: &str,
        answers: Vec<Answer>,
        by: Approver,
    ) -> Result<(), ApiError> {
        let request = request.to_string();
        done(
            self.call(Request::Answer {
                request,
                answers,
                by,
            })
            .await?,
        )
    }

    /// Send a running session a follow-up message.
    async fn say(&self, session: SessionId, text: &str) -> Result<(), ApiError> {
        let text = text.to_string();
        done(self.call(Request::Say { session, text }).await?)
    }

    /// Stop what a running session does now; it waits for the next message.
    async fn interrupt(&self, session: SessionId) -> Result<(), ApiError> {
        done(self.call(Request::Interrupt { session }).await?)
    }

    async fn pause(&self, paused: bool) -> Result<(), ApiError> {
        done(self.call(Request::Pause { paused }).await?)
    }

    async fn drain(&self, agent: &str, drain: bool) -> Result<(), ApiError> {
        let agent = agent.to_string();
        done(self.call(Request::Drain { agent, drain }).await?)
    }

    /// A session's changes as a unified diff (empty when it did not work in a git worktree).
    async fn diff(&self, session: SessionId) -> Result<String, ApiError> {
        match self.call(Request::Diff { session }).await? {
            Reply::Diff { text } => Ok(text),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    async fn context(&self, plan: PlanId) -> Result<Vec<TaskContext>, ApiError> {
        match self.call(Request::Context { plan }).await? {
            Reply::Context { tasks } => Ok(tasks),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// Sessions on a time axis: plan `plan`'s, or every session since `since`.
    async fn timeline(
        &self,
        plan: Option<PlanId>,
        by: LaneBy,
        since: Option<jiff::Timestamp>,
    ) -> Result<Timeline, ApiError> {
        match self.call(Request::Timeline { plan, by, since }).await? {
            Reply::Timeline { timeline } => Ok(*timeline),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// What the search index finds for `query` (see [`crate::store::search`]).
    async fn search(&self, query: SearchQuery) -> Result<Vec<Found>, ApiError> {
        match self.call(Request::Search { query }).await? {
            Reply::Found { found } => Ok(found),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// A plan's result for review.
    async fn review(&self, plan: PlanId) -> Result<PlanReview, ApiError> {
        match self.call(Request::Review { plan }).await? {
            Reply::Review { review } => Ok(*review),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// Mark a plan's changed file reviewed as it is now, or (`false`) not reviewed; durable
    /// when this returns.
    async fn mark_reviewed(
        &self,
        plan: PlanId,
        file: &str,
        reviewed: bool,
    ) -> Result<(), ApiError> {
        let file = file.to_string();
        done(
            self.call(Request::MarkReviewed {
                plan,
                file,
                reviewed,
            })
            .await?,
        )
    }

    /// Ask the engine's planner for a plan towards `goal` in `repo` (absolute); nothing is
    /// queued until the proposal's text is submitted.
    async fn plan(&self, goal: &str, repo: &Path) -> Result<Proposal, ApiError> {
        let (goal, repo) = (goal.to_string(), repo.to_path_buf());
        match self.call(Request::Plan { goal, repo }).await? {
            Reply::Proposal { proposal } => Ok(proposal),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// Deliver a finished plan's work (see [`Request::Land`]).
    async fn land(
        &self,
        plan: PlanId,
        mode: LandMode,
        push: Option<Push>,
    ) -> Result<Landing, ApiError> {
        match self.call(Request::Land { plan, mode, push }).await? {
            Reply::Landed { landing } => Ok(*landing),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// Raise a budget and settle a plan paused over budget ([`Request::Budget`]).
    async fn budget(
        &self,
        plan: PlanId,
        target: BudgetTarget,
        raise: Option<Budget>,
        then: BudgetThen,
    ) -> Result<(), ApiError> {
        done(
            self.call(Request::Budget {
                plan,
                target,
                raise,
                then,
            })
            .await?,
        )
    }

    async fn history(&self, since: u64, last: usize) -> Result<Vec<Logged>, ApiError> {
        match self.call(Request::History { since, last }).await? {
            Reply::History { entries } => Ok(entries),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// The newest `last` notes (what the engine told besides transitions), oldest first.
    async fn notes(&self, last: usize) -> Result<Vec<Noted>, ApiError> {
        match self.call(Request::Notes { last }).await? {
            Reply::Notes { notes } => Ok(notes),
            other => Err(ApiError::unexpected(&other)),
        }
    }

    /// Remove the stored transcripts of sessions that ended before `ended_before`; what that
    /// freed.
    async fn prune_transcripts(
        &self,
        ended_before: jiff::Timestamp,
    ) -> Result<crate::store::Pruned, ApiError> {
        match self
            .call(Request::PruneTranscripts { ended_before })
            .await?
        {
            Reply::Pruned { pruned } => Ok(pruned),
            other => Err(ApiError::unexpected(&other)),
        }
    }
}

impl<T: Engine + ?Sized> EngineApi for T {}

fn done(reply: Reply) -> Result<(), ApiError> {
    match reply {
        Reply::Done => Ok(()),
        other => Err(ApiError::unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_message_and_say_whose_fault() {
        let e = ApiError::from(EngineError::UnknownApproval("per_1".into()));
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.kind.is_input());
        assert!(e.message.contains("per_1"));
        assert!(!ApiError::from(EngineError::Stopped).kind.is_input());
    }
}
