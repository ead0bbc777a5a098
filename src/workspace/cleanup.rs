//! What happens to a plan's finished worktrees: kept for inspection, removed once merged, or
//! all removed. Committed work is never lost: a branch is deleted only when the integration
//! branch holds it, and the integration branch itself always stays (it is the plan's result).

use std::path::PathBuf;

use super::record::{self, Stamp};
use super::{Result, Workspace, names};

/// Which worktrees [`Workspace::cleanup`] removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
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
    pub const ALL: [Self; 3] = [Self::Keep, Self::RemoveMerged, Self::RemoveAll];

    /// The word for it in settings: `keep`, `remove-merged`, `remove-all`.
    pub fn text(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::RemoveMerged => "remove-merged",
            Self::RemoveAll => "remove-all",
        }
    }

    pub fn from_text(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|policy| policy.text() == text)
    }
}

/// What a cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub removed: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
    pub branches_deleted: Vec<String>,
}

impl Workspace {
    /// Applies `policy` to the worktrees of `plan`.
    pub fn cleanup(&self, plan: &str, policy: CleanupPolicy) -> Result<CleanupReport> {
        let _guard = self.guard();
        self.git.run(&self.git.repo, &["worktree", "prune"])?;
        let plan_dir = self.plan_dir(plan);
        let integration_path = self.integration_path(plan);
        let integration = names::integration_branch(plan);
        let mut report = CleanupReport::default();
        for entry in record::list(&self.git)? {
            if !entry.path.starts_with(&plan_dir) {
                continue;
            }
            if entry.path == integration_path {
                if policy == CleanupPolicy::RemoveAll {
                    self.remove(&entry.path)?;
                    report.removed.push(entry.path);
                } else {
                    report.kept.push(entry.path);
                }
                continue;
            }
            let Some(branch) = entry.branch.clone() else {
                report.kept.push(entry.path);
                continue;
            };
            let stamp = Stamp::read(&self.git, &entry.path)?;
            let tip = self
                .git
                .commit_of(&self.git.repo, &format!("refs/heads/{branch}"))?;
            let merged = match (&stamp, &tip) {
                (
                    Some(Stamp {
                        merged: Some(merged),
                        ..
                    }),
                    Some(tip),
                ) => {
                    merged == tip
                        && self.git.check(
                            &self.git.repo,
                            &["merge-base", "--is-ancestor", tip, &integration],
                        )?
                }
                _ => false,
            };
            let remove = match policy {
                CleanupPolicy::Keep => false,
                CleanupPolicy::RemoveMerged => merged,
                CleanupPolicy::RemoveAll => true,
            };
            if !remove {
                report.kept.push(entry.path);
                continue;
            }
            self.remove(&entry.path)?;
            report.removed.push(entry.path);
            if merged {
                self.git.run(&self.git.repo, &["branch", "-D", &branch])?;
                report.branches_deleted.push(branch);
            }
        }
        Ok(report)
    }
}
