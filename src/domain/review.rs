//! A plan's result as the operator reviews it: its integration branch against its base (commits
//! ahead and behind, the files changed and by which task, line counts, the combined diff), which
//! files the operator marked reviewed, and what each task answered and cost. Plain data, the
//! same in process and over the control socket.

use serde::{Deserialize, Serialize};

use crate::domain::{MergeState, PlanId, TaskStatus, Usage};

/// Longest combined diff a review carries; the rest is cut and said to be.
pub const REVIEW_DIFF_CAP: usize = 2 * 1024 * 1024;

/// Everything a review of one plan shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReview {
    pub plan: PlanId,
    pub name: String,
    /// The integration branch against its base; `None` for a plan without worktrees.
    #[serde(default)]
    pub branch: Option<BranchReview>,
    /// Why there is no branch to review (a shared checkout or a plain directory).
    #[serde(default)]
    pub no_branch: Option<String>,
    /// The plan's tasks in its order.
    pub tasks: Vec<ReviewTask>,
    /// Tokens and cost over every task's sessions.
    pub usage: Usage,
    /// The plan's budget, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<super::Budget>,
    /// Why it is paused over budget, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_budget: Option<String>,
    /// Where its work was delivered (`ocio land`), once it was: the branch against its base
    /// then shows only what was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<super::PlanLanding>,
}

/// A plan's integration branch against its base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchReview {
    /// `ocio/<key>/integration`.
    pub integration: String,
    /// The base as the plan names it (`HEAD` when it names none).
    pub base: String,
    /// The commit the base names now.
    pub base_commit: String,
    /// Commits on the integration branch that the base does not have.
    pub ahead: u64,
    /// Commits on the base that the integration branch does not have (the base moved on).
    pub behind: u64,
    /// Changed against the base (`git diff base...integration`), by path.
    pub files: Vec<ReviewFile>,
    /// The combined diff, cut at [`REVIEW_DIFF_CAP`] when longer.
    pub diff: String,
    /// The combined diff's whole size in bytes, when it was cut.
    #[serde(default)]
    pub diff_cut: Option<u64>,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewFile {
    /// `A`dded, `M`odified, `D`eleted, `R`enamed, `C`opied, `T`ype changed.
    pub status: char,
    pub path: String,
    /// The path it had before a rename or copy.
    #[serde(default)]
    pub from: Option<String>,
    /// What became of its mode, when that changed: `now executable`, `no longer executable`,
    /// `a symlink`... (the line counts cannot say it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Lines added and removed (`None` for a binary file).
    #[serde(default)]
    pub added: Option<u64>,
    #[serde(default)]
    pub removed: Option<u64>,
    /// Its blob on the integration branch (`None`: deleted there).
    #[serde(default)]
    pub blob: Option<String>,
    /// Keys of the merged tasks that changed it; empty: a resolver or the merge itself did.
    #[serde(default)]
    pub tasks: Vec<String>,
    #[serde(default)]
    pub reviewed: Reviewed,
}

/// Whether the operator marked a file reviewed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reviewed {
    #[default]
    No,
    Yes,
    /// Marked, but its content changed since: not reviewed any more.
    Changed,
}

impl Reviewed {
    /// How a person is told.
    pub fn text(self) -> &'static str {
        match self {
            Self::No => "not reviewed",
            Self::Yes => "reviewed",
            Self::Changed => "changed since reviewed",
        }
    }
}

/// One task of the plan: where it stands, what it answered and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewTask {
    pub key: String,
    pub title: String,
    pub status: TaskStatus,
    #[serde(default)]
    pub merge: MergeState,
    /// Its final answer.
    #[serde(default)]
    pub answer: Option<String>,
    /// Over all its sessions.
    pub usage: Usage,
    pub sessions: u32,
}

impl BranchReview {
    /// The part of the combined diff about `path` (its `diff --git` section), if shown.
    pub fn file_diff(&self, path: &str) -> Option<&str> {
        let mut start = None;
        let mut at = 0;
        for line in self.diff.split_inclusive('\n') {
            if line.starts_with("diff --git ") {
                if let Some(s) = start {
                    return Some(&self.diff[s..at]);
                }
                if diff_header_names(line, path) {
                    start = Some(at);
                }
            }
            at += line.len();
        }
        start.map(|s| &self.diff[s..])
    }
}

/// Whether a `diff --git a/x b/y` header is about `path` (its new name, or its old one).
fn diff_header_names(line: &str, path: &str) -> bool {
    let line = line.trim_end();
    line.ends_with(&format!(" b/{path}")) || line.ends_with(&format!(" b/\"{path}\""))
}

impl PlanReview {
    /// Files marked reviewed (and not changed since), and all files.
    pub fn reviewed_count(&self) -> (usize, usize) {
        let files = self.branch.as_ref().map_or(&[][..], |b| &b.files[..]);
        let done = files.iter().filter(|f| f.reviewed == Reviewed::Yes).count();
        (done, files.len())
    }
}
