//! The integration worktree around the plan's check: what the check left cleared away, a
//! merge that failed the check undone, and what a fix session left committed.

use super::{Result, Workspace, WorkspaceError, names};

impl Workspace {
    /// The commit the integration branch was at before task `task`'s merge, when that merge is
    /// its last commit (`HEAD^2` is the task branch's tip); `None` otherwise.
    pub(crate) fn before_merge_of(&self, plan: &str, task: &str) -> Result<Option<String>> {
        let _guard = self.guard();
        let path = self.integration_path(plan);
        let branch = names::task_branch(plan, task);
        let tip = self
            .git
            .commit_of(&self.git.repo, &format!("refs/heads/{branch}"))?;
        let second = self.git.commit_of(&path, "HEAD^2")?;
        if tip.is_none() || tip != second {
            return Ok(None);
        }
        self.git.commit_of(&path, "HEAD^1")
    }

    /// Whether the integration branch holds task `task`'s work (its branch's tip is in its
    /// history); `None` when the task has no branch to tell by.
    pub(crate) fn holds_task(&self, plan: &str, task: &str) -> Result<Option<bool>> {
        let _guard = self.guard();
        let branch = names::task_branch(plan, task);
        let Some(tip) = self
            .git
            .commit_of(&self.git.repo, &format!("refs/heads/{branch}"))?
        else {
            return Ok(None);
        };
        let integration = format!("refs/heads/{}", names::integration_branch(plan));
        let held = self.git.check(
            &self.git.repo,
            &["merge-base", "--is-ancestor", &tip, &integration],
        )?;
        Ok(Some(held))
    }

    /// The integration worktree back to its last commit: tracked files as committed and the
    /// untracked files a check made removed (ignored ones, such as build caches, stay).
    pub(crate) fn tidy_integration(&self, plan: &str) -> Result<()> {
        let _guard = self.guard();
        let path = self.integration_path(plan);
        self.git.run(&path, &["reset", "-q", "--hard", "HEAD"])?;
        self.git.run(&path, &["clean", "-q", "-f", "-d"])?;
        super::modules::tidy_modules(&self.git, &path)?;
        self.follow_modules(&path);
        Ok(())
    }

    /// Undoes task `task`'s merge (and any fix on top of it): the integration branch goes back
    /// to `before`, the commit it was at ahead of the merge, which must be in its history.
    /// The task's work stays on its branch, no longer marked merged.
    pub(crate) fn undo_merge(&self, plan: &str, task: &str, before: &str) -> Result<()> {
        let _guard = self.guard();
        self.reset_to(plan, before)?;
        self.stamp_merged(plan, task, None)?;
        Ok(())
    }

    /// The integration branch back to `before`, which must be in its history (a merge that
    /// failed the check when landing is undone).
    pub(crate) fn reset_integration(&self, plan: &str, before: &str) -> Result<()> {
        let _guard = self.guard();
        self.reset_to(plan, before)
    }

    /// [`Self::reset_integration`] under the caller's guard.
    fn reset_to(&self, plan: &str, before: &str) -> Result<()> {
        let path = self.integration_path(plan);
        if !self
            .git
            .check(&path, &["merge-base", "--is-ancestor", before, "HEAD"])?
        {
            return Err(WorkspaceError::NotBefore {
                repo: self.git.repo.clone(),
                branch: names::integration_branch(plan),
                before: before.to_string(),
            });
        }
        self.git.run(&path, &["reset", "-q", "--hard", before])?;
        self.git.run(&path, &["clean", "-q", "-f", "-d"])?;
        super::modules::tidy_modules(&self.git, &path)?;
        self.follow_modules(&path);
        Ok(())
    }

    /// Commits what a session left in the integration worktree (a fix for the check) with
    /// `message`; the new commit, or `None` when it left nothing.
    pub(crate) fn commit_integration(&self, plan: &str, message: &str) -> Result<Option<String>> {
        let path = self.integration_path(plan);
        let commit = self.commit_all_in(&path, message)?;
        self.forget_carried(&path);
        Ok(commit)
    }

    /// What a build box brought back into the integration worktree at `path` (and the state
    /// it was handed) is committed now: forgotten.
    pub(super) fn forget_carried(&self, path: &std::path::Path) {
        if let Err(error) = super::carry::forget(&self.git.repo, path) {
            tracing::debug!(%error, "cannot forget what a box brought back");
        }
    }
}
