//! What happens to a plan's finished worktrees: kept for inspection, removed once merged, or
//! all removed. Committed work is never lost: a branch is deleted only when the integration
//! branch holds it, and the integration branch itself always stays (it is the plan's result).
//! A task's worktree goes as soon as its work is merged ([`Workspace::cleanup_task`]), and what
//! is left goes when the plan ends ([`Workspace::cleanup`]).

use std::path::{Path, PathBuf};

pub(crate) use crate::domain::task::CleanupPolicy;

use super::record::{self, Listed, Stamp};
use super::{Result, Workspace, names};

/// What a cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CleanupReport {
    pub(crate) removed: Vec<PathBuf>,
    pub(crate) kept: Vec<PathBuf>,
    pub(crate) branches_deleted: Vec<String>,
}

impl Workspace {
    /// Applies `policy` to the worktrees of `plan`.
    pub(crate) fn cleanup(&self, plan: &str, policy: CleanupPolicy) -> Result<CleanupReport> {
        let _guard = self.guard();
        self.git.run(&self.git.repo, &["worktree", "prune"])?;
        let plan_dir = self.plan_dir(plan);
        let integration_path = self.integration_path(plan);
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
            self.clean_entry(plan, entry, policy, &mut report)?;
        }
        Ok(report)
    }

    /// Applies `policy` to the worktrees of one task whose work was just merged, while the
    /// plan runs: under `remove-merged` and `remove-all` they go, with the task's branch, when
    /// the integration branch holds what they committed; `keep` keeps them. Only the task's
    /// own directory is looked at, so this costs the same however many worktrees the
    /// repository has.
    pub(crate) fn cleanup_task(
        &self,
        plan: &str,
        task: &str,
        policy: CleanupPolicy,
    ) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        if policy == CleanupPolicy::Keep {
            return Ok(report);
        }
        let _guard = self.guard();
        for entry in record::under(&self.task_dir(plan, task))? {
            // Unmerged work of a running plan stays whatever the policy: `remove-all` removes
            // it only once the plan has ended.
            self.clean_entry(plan, entry, CleanupPolicy::RemoveMerged, &mut report)?;
        }
        Ok(report)
    }

    /// One task worktree under `policy`: removed (and its branch deleted when merged) or kept.
    fn clean_entry(
        &self,
        plan: &str,
        entry: Listed,
        policy: CleanupPolicy,
        report: &mut CleanupReport,
    ) -> Result<()> {
        let Some(branch) = entry.branch.clone() else {
            report.kept.push(entry.path);
            return Ok(());
        };
        let merged = self.holds_merged(plan, &entry.path, &branch)?;
        let remove = match policy {
            CleanupPolicy::Keep => false,
            CleanupPolicy::RemoveMerged => merged,
            CleanupPolicy::RemoveAll => true,
        };
        if !remove {
            report.kept.push(entry.path);
            return Ok(());
        }
        self.remove(&entry.path)?;
        // The work a build box brought back for it, if one did, is on its branch now.
        if let Err(error) = super::carry::forget(&self.git.repo, &entry.path) {
            tracing::debug!(%error, "cannot forget a box's returned work");
        }
        report.removed.push(entry.path);
        if merged {
            self.git.run(&self.git.repo, &["branch", "-D", &branch])?;
            report.branches_deleted.push(branch);
        }
        Ok(())
    }

    /// Whether the worktree at `path` was stamped merged at its branch's tip, and the plan's
    /// integration branch holds that tip (nothing was committed on the branch since).
    fn holds_merged(&self, plan: &str, path: &Path, branch: &str) -> Result<bool> {
        let stamp = Stamp::read(&self.git, path)?;
        let tip = self
            .git
            .commit_of(&self.git.repo, &format!("refs/heads/{branch}"))?;
        let (
            Some(Stamp {
                merged: Some(merged),
                ..
            }),
            Some(tip),
        ) = (stamp, tip)
        else {
            return Ok(false);
        };
        let integration = names::integration_branch(plan);
        Ok(merged == tip
            && self.git.check(
                &self.git.repo,
                &["merge-base", "--is-ancestor", &tip, &integration],
            )?)
    }
}
