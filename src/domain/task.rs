//! A task: one unit of work in a plan (a prompt, the capabilities it needs, what it depends on,
//! what it locks and touches), its status rules, and the plan that owns a set of tasks with the
//! plan-wide settings (conflict policy, worktrees, base branch).

use std::collections::BTreeSet;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::event::{DomainEvent, Transition, TransitionError};
use super::id::{AgentName, PlanId, TaskId};
use super::lifecycle::{Lifecycle, status_enum};

status_enum! {
    /// Where a task is. A task that fails blocks its dependents; a retry re-opens them.
    pub enum TaskStatus {
        /// Waiting for dependencies.
        Pending => "pending",
        /// Every dependency is done; waiting to be dispatched.
        Ready => "ready",
        /// A session is working on it.
        Running => "running",
        Done => "done",
        /// Its last attempt failed and no retry is left (the operator may still retry it).
        Failed => "failed",
        /// A dependency failed or was cancelled.
        Blocked => "blocked",
        Cancelled => "cancelled",
    }
}

impl Lifecycle for TaskStatus {
    const ALL: &'static [Self] = Self::VARIANTS;

    fn next(self) -> &'static [Self] {
        use TaskStatus::*;
        match self {
            Pending => &[Ready, Blocked, Cancelled],
            // Back to pending when a dependency is re-opened.
            Ready => &[Running, Pending, Blocked, Cancelled],
            // Back to ready when an attempt failed and a retry is left.
            Running => &[Done, Failed, Ready, Cancelled],
            Failed => &[Ready, Cancelled],
            Blocked => &[Pending, Cancelled],
            // The operator may retry a cancelled task.
            Cancelled => &[Ready],
            Done => &[],
        }
    }

    fn name(self) -> &'static str {
        self.text()
    }
}

impl TaskStatus {
    /// Whether dependents of a task in this status can never start until someone acts.
    pub(crate) fn blocks_dependents(self) -> bool {
        matches!(self, TaskStatus::Failed | TaskStatus::Cancelled)
    }

    /// Whether work is still to come from a task in this status (it waits, is ready or runs).
    /// A plan none of whose tasks has work to come is finished until one is retried.
    pub(crate) fn has_work_to_come(self) -> bool {
        matches!(
            self,
            TaskStatus::Pending | TaskStatus::Ready | TaskStatus::Running
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub plan: PlanId,
    /// The plan-local name (`id = "impl"` in a plan file), unique within the plan.
    pub key: String,
    pub(crate) title: String,
    pub(crate) prompt: String,
    /// Every one of these must be offered by the agent that runs the task.
    #[serde(default)]
    pub(crate) capabilities: BTreeSet<String>,
    /// Keys of the tasks this one depends on.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Higher runs first among ready tasks.
    #[serde(default)]
    pub(crate) priority: i32,
    pub(crate) timeout: Option<SignedDuration>,
    /// How many times a failed attempt is retried automatically.
    #[serde(default)]
    pub(crate) retries: u32,
    /// Attempts started so far.
    #[serde(default)]
    pub attempts: u32,
    /// Of those, attempts lost to ocio itself (their run did not survive an engine restart):
    /// not the task's failures, so they spend none of its `retries`; at most
    /// [`MAX_LOST_ATTEMPTS`] are run again.
    #[serde(default)]
    pub(crate) lost: u32,
    pub status: TaskStatus,
    /// What the task produced (its last answer), for dependents and the operator.
    pub result: Option<String>,
    pub(crate) created_at: Timestamp,
    /// Named resources (`src/api/`) the task must hold while it runs.
    #[serde(default)]
    pub(crate) locks: BTreeSet<String>,
    /// Repository-relative files it is expected to touch, for conflict avoidance.
    #[serde(default)]
    pub(crate) files: BTreeSet<String>,
    /// The agent the task is pinned to; any agent with its capabilities when unset.
    #[serde(default)]
    pub(crate) agent: Option<AgentName>,
    /// The check run after this task's merge instead of the plan's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) check: Option<String>,
    /// The most its attempts may spend together; reaching it stops the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<super::Budget>,
    /// Why its last attempt was stopped over a budget: the next attempt continues from the
    /// work that attempt committed on the task's branch instead of starting afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_budget: Option<String>,
    /// What the operator told its attempts while they ran, oldest first: a later attempt that
    /// starts afresh (the run was lost, or failed) is told it too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) steering: Vec<String>,
}

impl Task {
    pub fn new(
        id: TaskId,
        plan: PlanId,
        key: impl Into<String>,
        prompt: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        let key = key.into();
        Self {
            id,
            plan,
            title: key.clone(),
            key,
            prompt: prompt.into(),
            capabilities: BTreeSet::new(),
            needs: Vec::new(),
            priority: 0,
            timeout: None,
            retries: 0,
            attempts: 0,
            lost: 0,
            status: TaskStatus::Pending,
            result: None,
            created_at: at,
            locks: BTreeSet::new(),
            files: BTreeSet::new(),
            agent: None,
            check: None,
            budget: None,
            over_budget: None,
            steering: Vec::new(),
        }
    }

    pub(crate) fn transition(
        &mut self,
        to: TaskStatus,
        cause: impl Into<String>,
        at: Timestamp,
    ) -> Result<DomainEvent, TransitionError> {
        let from = self.status;
        if !from.can_become(to) {
            return Err(TransitionError::Task {
                id: self.id,
                key: self.key.clone(),
                from,
                to,
            });
        }
        self.status = to;
        if to == TaskStatus::Running {
            self.attempts += 1;
        }
        Ok(DomainEvent::new(
            Transition::Task {
                id: self.id,
                key: self.key.clone(),
                from,
                to,
            },
            cause,
            at,
        ))
    }

    /// Count the running attempt as lost to ocio; whether the task may run again for it.
    pub(crate) fn lose_attempt(&mut self) -> bool {
        self.lost += 1;
        self.lost <= MAX_LOST_ATTEMPTS
    }

    /// Whether a failed attempt may be retried automatically: attempts lost to ocio do not
    /// count.
    pub(crate) fn has_retry_left(&self) -> bool {
        self.attempts.saturating_sub(self.lost) <= self.retries
    }
}

/// How many attempts of one task lost to engine restarts are run again before the task fails
/// (an engine that dies every time the task runs is not a reason to run it for ever).
pub(crate) const MAX_LOST_ATTEMPTS: u32 = 3;

/// A submitted plan: a named set of tasks working in one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    /// The git repository the tasks work in.
    pub repo: PathBuf,
    pub tasks: Vec<TaskId>,
    pub created_at: Timestamp,
}

/// What happens when a task's changes no longer merge cleanly onto the plan's branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Run the task again on top of the current branch.
    #[default]
    Retry,
    /// Start a resolver session to merge the two.
    Resolver,
    /// Stop and wait for the operator.
    Manual,
}

impl ConflictPolicy {
    pub(crate) const ALL: [Self; 3] = [Self::Retry, Self::Resolver, Self::Manual];

    /// The word used in plan files.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Resolver => "resolver",
            Self::Manual => "manual",
        }
    }

    pub(crate) fn from_text(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|policy| policy.text() == text)
    }
}

/// What happens to a plan's worktrees once it has finished (`cleanup` in a plan file, or
/// `[engine] worktree_cleanup`); see `Workspace::cleanup`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanupPolicy {
    /// Remove nothing (for debugging a plan; `git worktree list` shows them).
    Keep,
    /// Remove a task's worktree and branch once its work is merged into the integration
    /// branch and nothing was committed on it since. Safe while the plan runs: a running
    /// attempt has never been merged.
    #[default]
    RemoveMerged,
    /// Remove every worktree of the plan, the integration worktree included (the integration
    /// branch stays); merged task branches are deleted, unmerged ones kept. Uncommitted
    /// changes are lost: use it only once the plan has finished.
    RemoveAll,
}

impl CleanupPolicy {
    pub(crate) const ALL: [Self; 3] = [Self::Keep, Self::RemoveMerged, Self::RemoveAll];

    /// The word for it in settings: `keep`, `remove-merged`, `remove-all`.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::RemoveMerged => "remove-merged",
            Self::RemoveAll => "remove-all",
        }
    }

    pub(crate) fn from_text(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|policy| policy.text() == text)
    }
}

/// How a plan's sessions use the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlanSettings {
    #[serde(default)]
    pub(crate) conflicts: ConflictPolicy,
    /// One git worktree per session.
    #[serde(default = "worktrees_by_default")]
    pub(crate) worktrees: bool,
    /// The branch tasks start from; the repository's HEAD when unset.
    #[serde(default)]
    pub(crate) base: Option<String>,
    /// What happens to its worktrees when it has finished; the engine's default when unset.
    #[serde(default)]
    pub(crate) cleanup: Option<CleanupPolicy>,
    /// Commands run (`sh -c`, in order) in each new task worktree before its session starts;
    /// one that fails fails the attempt with its output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) setup: Vec<String>,
    /// Repository-relative paths of git-ignored files or directories (`.env`,
    /// `node_modules`) copied from the checkout into each new task worktree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) copy: Vec<String>,
    /// The command run (`sh -c`) in the integration worktree after each merge; a task's own
    /// `check` replaces it for that task's merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) check: Option<String>,
    /// What a failing check leads to.
    #[serde(default)]
    pub(crate) on_check_failure: CheckFailurePolicy,
    /// The most all its sessions may spend together; reaching it pauses the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) budget: Option<super::Budget>,
}

/// What happens when the plan's check fails after a task's merge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckFailurePolicy {
    /// A fix session gets the check's output and works on top of the integration branch,
    /// a bounded number of times.
    Fix,
    /// The merge is reverted and the task runs again with the check's output.
    #[default]
    Revert,
    /// The plan stops merging and waits for the operator.
    Manual,
}

impl CheckFailurePolicy {
    pub(crate) const ALL: [Self; 3] = [Self::Fix, Self::Revert, Self::Manual];

    /// The word used in plan files.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Fix => "fix",
            Self::Revert => "revert",
            Self::Manual => "manual",
        }
    }

    pub(crate) fn from_text(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|policy| policy.text() == text)
    }
}

fn worktrees_by_default() -> bool {
    true
}

impl Default for PlanSettings {
    fn default() -> Self {
        Self {
            conflicts: ConflictPolicy::default(),
            worktrees: worktrees_by_default(),
            base: None,
            cleanup: None,
            setup: Vec::new(),
            copy: Vec::new(),
            check: None,
            on_check_failure: CheckFailurePolicy::default(),
            budget: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task::new(
            TaskId::from_parts(1, 1),
            PlanId::from_parts(1, 1),
            "impl",
            "do it",
            Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn running_counts_attempts_and_retries_run_out() {
        let mut t = task();
        t.retries = 1;
        let at = Timestamp::UNIX_EPOCH;
        t.transition(TaskStatus::Ready, "deps done", at).unwrap();
        t.transition(TaskStatus::Running, "dispatched", at).unwrap();
        assert!(t.has_retry_left());
        t.transition(TaskStatus::Ready, "retry", at).unwrap();
        t.transition(TaskStatus::Running, "dispatched", at).unwrap();
        assert_eq!(t.attempts, 2);
        assert!(!t.has_retry_left());
    }

    #[test]
    fn attempts_lost_to_ocio_spend_no_retries() {
        let mut t = task();
        t.retries = 1;
        let at = Timestamp::UNIX_EPOCH;
        t.transition(TaskStatus::Ready, "deps done", at).unwrap();
        for _ in 0..2 {
            t.transition(TaskStatus::Running, "dispatched", at).unwrap();
            assert!(t.lose_attempt(), "lost attempts are run again");
            t.transition(TaskStatus::Ready, "engine restarted", at)
                .unwrap();
        }
        t.transition(TaskStatus::Running, "dispatched", at).unwrap();
        assert!(t.has_retry_left(), "the first real failure is retried");
        t.transition(TaskStatus::Ready, "retry", at).unwrap();
        t.transition(TaskStatus::Running, "dispatched", at).unwrap();
        assert!(!t.has_retry_left(), "the second is not");
        assert!(t.lose_attempt(), "a third lost attempt is run again");
        assert!(!t.lose_attempt(), "a fourth is not");
    }

    #[test]
    fn tasks_stored_before_locks_files_and_agent_still_load() {
        let mut json = serde_json::to_value(task()).unwrap();
        let fields = json.as_object_mut().unwrap();
        for added in ["locks", "files", "agent"] {
            assert!(fields.remove(added).is_some(), "{added}");
        }
        let loaded: Task = serde_json::from_value(json).unwrap();
        assert_eq!(loaded, task());
    }

    #[test]
    fn plan_settings_default_to_retry_with_worktrees_from_head() {
        let settings: PlanSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, PlanSettings::default());
        assert_eq!(settings.conflicts, ConflictPolicy::Retry);
        assert!(settings.worktrees);
        for policy in ConflictPolicy::ALL {
            assert_eq!(ConflictPolicy::from_text(policy.text()), Some(policy));
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(json, format!("\"{}\"", policy.text()));
        }
        assert_eq!(ConflictPolicy::from_text("rebase"), None);
    }

    #[test]
    fn done_is_terminal_and_errors_name_the_key() {
        let mut t = task();
        let at = Timestamp::UNIX_EPOCH;
        for to in [TaskStatus::Ready, TaskStatus::Running, TaskStatus::Done] {
            t.transition(to, "", at).unwrap();
        }
        let err = t.transition(TaskStatus::Ready, "", at).unwrap_err();
        assert!(err.to_string().starts_with("task `impl`"), "{err}");
        assert!(
            err.to_string()
                .contains("from done to ready (it is terminal)"),
            "{err}"
        );
    }
}
