//! Records of the work behind a plan, kept beside its tasks: how the plan uses its repository
//! ([`PlanWork`]) and what each finished task left for the tasks after it and where its merge
//! stands ([`TaskContext`]). Plain data, serializable both ways: front ends get them as they are
//! stored.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::task::{CheckFailurePolicy, ConflictPolicy, PlanSettings};
use crate::domain::{PlanId, TaskId};

/// How a plan's sessions use its repository, decided once when it is submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlanWork {
    pub(crate) plan: PlanId,
    pub(crate) settings: PlanSettings,
    /// What its branches and worktrees are named after (`ocio/<key>/<task>`): for a worktree
    /// plan, its name, or `<name>-2`, `<name>-3`... when an earlier plan's branches already use
    /// the name in that repository (plans stored before names were claimed this way kept their
    /// `<name>-<short id>`); for other plans, name and short id.
    pub(crate) key: String,
    pub(crate) mode: WorkMode,
    /// The branch checked out in the repository when the plan was submitted without a `base`
    /// (where `ocio land` delivers its work); `None` when HEAD was detached, for a plan with a
    /// `base`, or one stored before this was recorded.
    #[serde(default)]
    pub(crate) base_branch: Option<String>,
    /// Why the plan is paused over budget ("over budget: plan budget 1200/1000 tokens"): no
    /// new session starts in it until the operator raises the budget and continues, or
    /// cancels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) over_budget: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum WorkMode {
    /// One git worktree per session, merged into `integration` (a branch).
    Worktrees { integration: String },
    /// A git repository with `worktrees = false`: sessions take turns in the checkout under
    /// the `repo:<path>` lock.
    Shared,
    /// Not a git repository: sessions run in the directory as it is, with no branches and no
    /// record of changed files.
    Plain,
}

/// What a finished task left for the tasks that need it, and where its merge stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskContext {
    pub(crate) plan: PlanId,
    pub(crate) task: TaskId,
    /// The task's id in its plan.
    pub key: String,
    /// Its final answer.
    #[serde(default)]
    pub summary: Option<String>,
    /// Repo-relative paths its session changed (empty for plans outside git).
    #[serde(default)]
    pub files_changed: Vec<String>,
    /// Values it published with `OCIO-PUBLISH name=value` lines, in order.
    #[serde(default)]
    pub values: Vec<(String, String)>,
    /// The commit of its work on its task branch (worktree plans; `None`: it changed nothing).
    #[serde(default)]
    pub(crate) commit: Option<String>,
    #[serde(default)]
    pub merge: MergeState,
    /// Runs again after merge conflicts so far (policy `retry`).
    #[serde(default)]
    pub conflict_reruns: u32,
    /// Runs again after its merge failed the plan's check so far (`on_check_failure =
    /// "revert"`).
    #[serde(default)]
    pub check_reruns: u32,
}

/// Where a task's work stands against its plan's integration branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MergeState {
    /// Nothing merged: a plan without worktrees, or a task whose work is not done (running,
    /// failed, blocked...).
    #[default]
    None,
    /// Its session completed; the merge is queued or under way.
    Pending,
    /// The merge stopped on conflicts in `files`, left for a resolver session.
    Resolving { files: Vec<String> },
    /// On the integration branch, which was at `commit` after the merge.
    Merged { commit: String },
    /// Its session completed without changing a file: nothing was merged.
    Unchanged,
    /// The merge conflicted in `files` and was aborted; `policy` says what followed (`retry`:
    /// the task runs again on top of the integration branch; `manual` or a failed resolver:
    /// the task waits for the operator).
    Conflict {
        files: Vec<String>,
        policy: ConflictPolicy,
    },
    /// After its merge the plan's check `command` failed (`output`: the end of what it
    /// printed) and the merge was undone; `policy` says what followed (`revert`: the task runs
    /// again, told the output; `manual`, or reruns used up: the task waits for the operator;
    /// `fix`: fix sessions did not make it pass).
    CheckFailed {
        command: String,
        output: String,
        policy: CheckFailurePolicy,
    },
    /// After its merge the plan's check failed; fix session number `fix` works on the
    /// integration branch, which was at `before` ahead of the merge.
    Fixing {
        command: String,
        output: String,
        fix: u32,
        before: String,
    },
}

impl std::fmt::Display for MergeState {
    /// How a person is told where the work stands: `merged at 9c3a1f0e2b4d`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Not "(no worktrees)": a task of a worktree plan that has not finished is here too.
            Self::None => f.write_str("nothing merged"),
            Self::Pending => f.write_str("waiting to be merged"),
            Self::Unchanged => f.write_str("changed nothing: no work to merge"),
            Self::Resolving { files } => {
                write!(
                    f,
                    "a resolver session works on conflicts in {}",
                    files.join(", ")
                )
            }
            Self::Merged { commit } => write!(
                f,
                "merged; the integration branch was at {} after it",
                commit.get(..12).unwrap_or(commit)
            ),
            Self::CheckFailed {
                command, policy, ..
            } => {
                write!(f, "its merge failed the check `{command}` and was undone; ")?;
                f.write_str(match policy {
                    CheckFailurePolicy::Revert => "the task runs again, told the output",
                    CheckFailurePolicy::Fix | CheckFailurePolicy::Manual => {
                        "the task waits for you (retry it once the cause is known)"
                    }
                })
            }
            Self::Fixing { command, fix, .. } => write!(
                f,
                "merged, but the check `{command}` failed: fix session {fix} works on it"
            ),
            Self::Conflict { files, policy } => {
                write!(f, "conflicted in {}; ", files.join(", "))?;
                f.write_str(match policy {
                    ConflictPolicy::Retry => "the task runs again on the integration branch",
                    ConflictPolicy::Resolver | ConflictPolicy::Manual => {
                        "the task waits for you (retry it once settled)"
                    }
                })
            }
        }
    }
}

/// How `ocio land` brings a plan's integration branch into its base branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandMode {
    /// A merge commit on the base whose second parent is the integration branch.
    #[default]
    Merge,
    /// One commit on the base with the plan's whole change.
    Squash,
    /// The plan's commits replayed onto the base: linear history, no merge commits.
    Rebase,
}

impl LandMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Squash => "squash",
            Self::Rebase => "rebase",
        }
    }
}

/// A plan's work delivered: landed on its base branch, or pushed to a remote (and a pull
/// request opened) for someone else to land. Recorded before it is announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLanding {
    pub plan: PlanId,
    /// How it landed; `None` when it was pushed rather than landed here.
    pub mode: Option<LandMode>,
    /// The base branch.
    pub base: String,
    /// The base branch's commit after the landing (pushed: the integration branch's commit).
    pub commit: String,
    /// Files the landing changed on the base branch, repo-relative.
    #[serde(default)]
    pub files: Vec<String>,
    pub at: Timestamp,
    /// `remote branch` the integration branch was pushed to.
    #[serde(default)]
    pub pushed_to: Option<String>,
    #[serde(default)]
    pub pr_url: Option<String>,
}

impl PlanLanding {
    /// `landed on main at 1a2b3c4d5e`, or `pushed to origin ocio/p/integration at ... · PR`.
    pub fn summary(&self) -> String {
        let commit: String = self.commit.chars().take(10).collect();
        match (&self.mode, &self.pushed_to) {
            (None, Some(to)) => {
                let pr = self
                    .pr_url
                    .as_ref()
                    .map(|u| format!(" · {u}"))
                    .unwrap_or_default();
                format!("pushed to {to} at {commit}{pr}")
            }
            _ => format!("landed on {} at {commit}", self.base),
        }
    }

    /// A line for lists and the events: `plan p landed on main (squash) at 1a2b3c4d5e6f`,
    /// `plan p pushed to origin b at ...`, `plan p: pull request URL`.
    pub fn told(&self, name: &str) -> String {
        let short = self.commit.get(..12).unwrap_or(&self.commit);
        match (&self.mode, &self.pushed_to, &self.pr_url) {
            (_, _, Some(url)) => format!("plan {name}: pull request {url}"),
            (_, Some(to), None) => format!("plan {name} pushed to {to} at {short}"),
            (mode, None, None) => format!(
                "plan {name} landed on {} ({}) at {short}",
                self.base,
                mode.map_or("merge", LandMode::name)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MergeState;

    /// Hand trial: a running, failed or blocked task of a worktree plan read "nothing to merge
    /// (no worktrees)" in `ocio review`.
    #[test]
    fn work_not_merged_does_not_claim_the_plan_has_no_worktrees() {
        let text = MergeState::None.to_string();
        assert_eq!(text, "nothing merged");
    }
}
