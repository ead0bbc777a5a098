//! What happens to a plan's finished worktrees: kept for inspection, removed once merged, or
//! all removed. Committed work is never lost: a branch is deleted only when the integration
//! branch holds it, and the integration branch itself always stays (it is the plan's result).

use std::path::PathBuf;

pub use crate::domain::task::CleanupPolicy;

use super::record::{self, Stamp};
use super::{Result, Workspace, names};

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
