//! Merging a finished task's branch into its plan's integration branch, in the plan's
//! integration worktree: merged, already there, or in conflict (aborted cleanly, or left with
//! conflict markers for a resolver session, then concluded or abandoned).

use std::path::Path;

use super::record::{self, Stamp};
use super::{Result, Workspace, WorkspaceError, names};

/// What [`Workspace::merge`] does when the task's changes conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// `git merge --abort`: the integration branch and worktree stay as they were.
    Abort,
    /// Leave the merge in progress with conflict markers in the files, for a resolver session
    /// working in the integration worktree; then `Workspace::conclude_merge` or
    /// `Workspace::abort_merge`.
    Leave,
}

/// How a merge went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The task's changes are on the integration branch now, in merge commit `commit`.
    Merged { commit: String },
    /// The integration branch already has every commit of the task's branch (the task changed
    /// nothing, or it was merged before).
    UpToDate,
    /// These files (repo-relative, sorted) were changed on both sides.
    Conflict { files: Vec<String> },
}

impl Workspace {
    /// Merges task `task`'s branch into the plan's integration branch (`--no-ff`, one merge
    /// commit per task) in the integration worktree. Commit the session's work first
    /// ([`Workspace::commit_all`]): only what is committed on the task branch is merged.
    pub fn merge(&self, plan: &str, task: &str, on_conflict: OnConflict) -> Result<MergeOutcome> {
        let _guard = self.guard();
        let path = self.integration_path(plan);
        self.ready_to_merge(plan, &path)?;
        let branch = names::task_branch(plan, task);
        let tip = self
            .git
            .commit_of(&self.git.repo, &format!("refs/heads/{branch}"))?
            .ok_or_else(|| WorkspaceError::NoTaskBranch {
                repo: self.git.repo.clone(),
                branch: branch.clone(),
            })?;
        if self
            .git
            .check(&path, &["merge-base", "--is-ancestor", &tip, "HEAD"])?
        {
            self.stamp_merged(plan, task, Some(&tip))?;
            return Ok(MergeOutcome::UpToDate);
        }
        let message = format!(
            "Merge task {task} of plan {plan}\n\nOcio-Task: {plan}/{task}\nOcio-Branch: {branch}"
        );
        let args = ["merge", "--no-ff", "--no-edit", "-m", &message, &tip];
        let output = self.git.exec(&path, &args)?;
        if output.status.success() {
            self.follow_modules(&path);
            let commit = self.git.run(&path, &["rev-parse", "HEAD"])?;
            self.stamp_merged(plan, task, Some(&tip))?;
            return Ok(MergeOutcome::Merged { commit });
        }
        let files = self.unmerged(&path)?;
        if files.is_empty() {
            // Not a content conflict (an untracked file in the way, ...): undo and report.
            let error = self.git.failed(&path, &args, &output);
            if self.merging(&path)? {
                self.git.run(&path, &["merge", "--abort"])?;
            }
            return Err(error);
        }
        if on_conflict == OnConflict::Abort {
            self.git.run(&path, &["merge", "--abort"])?;
        }
        // Left for a resolver: the submodules it merged cleanly checked out, so that
        // concluding the merge records them.
        self.follow_modules(&path);
        Ok(MergeOutcome::Conflict { files })
    }

    /// Finishes a merge left for a resolver ([`OnConflict::Leave`]) once the resolver has
    /// removed every conflict marker: stages everything in the integration worktree and
    /// commits the merge. The merge commit.
    pub(crate) fn conclude_merge(&self, plan: &str, task: &str) -> Result<String> {
        let _guard = self.guard();
        let commit = self.conclude(plan)?;
        let branch = names::task_branch(plan, task);
        if let Some(tip) = self
            .git
            .commit_of(&self.git.repo, &format!("refs/heads/{branch}"))?
        {
            self.stamp_merged(plan, task, Some(&tip))?;
        }
        Ok(commit)
    }

    /// The merge in progress in the integration worktree committed, under the caller's
    /// guard: refused while conflict markers remain. The merge commit.
    pub(super) fn conclude(&self, plan: &str) -> Result<String> {
        let path = self.integration_path(plan);
        if !self.merging(&path)? {
            return Err(WorkspaceError::NoMergeInProgress {
                repo: self.git.repo.clone(),
                path,
            });
        }
        // A submodule in conflict has no markers to tell: it is settled only once staged
        // (`git add` of it at the commit chosen), never by staging whatever is checked out.
        let links = super::modules::conflicted_links(&self.git, &path)?;
        let still: Vec<String> = self
            .unmerged(&path)?
            .into_iter()
            .filter(|file| links.contains(file) || has_markers(&path.join(file)))
            .collect();
        if !still.is_empty() {
            return Err(WorkspaceError::StillConflicted {
                repo: self.git.repo.clone(),
                path,
                files: still,
            });
        }
        super::modules::commit_modules(&self.git, &path, "ocio: a resolver's work")?;
        self.git.run(&path, &["add", "-A"])?;
        self.git
            .run(&path, &["commit", "-q", "--no-verify", "--no-edit"])?;
        self.forget_carried(&path);
        self.follow_modules(&path);
        self.git.run(&path, &["rev-parse", "HEAD"])
    }

    /// Gives up a merge left for a resolver: the integration worktree goes back to its last
    /// commit. Nothing to do when no merge is in progress.
    pub(crate) fn abort_merge(&self, plan: &str) -> Result<()> {
        let _guard = self.guard();
        let path = self.integration_path(plan);
        if self.merging(&path)? {
            self.git.run(&path, &["merge", "--abort"])?;
        }
        self.follow_modules(&path);
        Ok(())
    }

    /// The integration worktree exists (made again from its branch if a cleanup removed it:
    /// a task of a finished plan was run again), has no merge in progress and nothing
    /// uncommitted.
    pub(super) fn ready_to_merge(&self, plan: &str, path: &Path) -> Result<()> {
        // Asking git for every worktree would make each merge cost more as they pile up: only
        // when the integration worktree is not plainly there (a cleanup removed it, or someone
        // deleted it by hand, which git lists until pruned) is it looked up and made again.
        if !record::registered(path) {
            self.git.run(&self.git.repo, &["worktree", "prune"])?;
        }
        if !record::registered(path) {
            let branch = names::integration_branch(plan);
            if !self.branch_exists(&branch)? {
                return Err(WorkspaceError::NoIntegration {
                    repo: self.git.repo.clone(),
                    plan: plan.to_string(),
                    branch,
                });
            }
            self.clear_leftover(path)?;
            let path_text = path.to_string_lossy();
            self.git
                .run(&self.git.repo, &["worktree", "add", &path_text, &branch])?;
        }
        self.follow_modules(path);
        if self.merging(path)? {
            return Err(WorkspaceError::MergeInProgress {
                repo: self.git.repo.clone(),
                path: path.to_path_buf(),
                files: self.unmerged(path)?,
            });
        }
        let dirty = self.git.paths(path, &["status", "--porcelain", "-z"])?;
        if !dirty.is_empty() {
            return Err(WorkspaceError::IntegrationDirty {
                repo: self.git.repo.clone(),
                path: path.to_path_buf(),
                files: dirty
                    .iter()
                    .map(|entry| entry.get(3..).unwrap_or(entry).to_string())
                    .collect(),
            });
        }
        Ok(())
    }

    /// Whether a merge is in progress in `path`.
    pub(super) fn merging(&self, path: &Path) -> Result<bool> {
        Ok(self.git.commit_of(path, "MERGE_HEAD")?.is_some())
    }

    /// Files with unresolved conflicts in the index of `path`, sorted.
    pub(super) fn unmerged(&self, path: &Path) -> Result<Vec<String>> {
        let mut files = self
            .git
            .paths(path, &["diff", "--name-only", "-z", "--diff-filter=U"])?;
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// Records on the task's worktree (every one of its attempts on `branch`) that `tip` was
    /// merged, so the cleanup may remove it; `None`: not merged (any more).
    pub(super) fn stamp_merged(&self, plan: &str, task: &str, tip: Option<&str>) -> Result<()> {
        let branch = names::task_branch(plan, task);
        for entry in record::under(&self.task_dir(plan, task))? {
            if entry.branch.as_deref() != Some(branch.as_str()) {
                continue;
            }
            if let Some(mut stamp) = Stamp::read(&self.git, &entry.path)? {
                stamp.merged = tip.map(str::to_string);
                stamp.write(&self.git, &entry.path)?;
            }
        }
        Ok(())
    }
}

/// Whether the file still has a conflict marker line. An unreadable or missing file has none
/// (a resolver may delete a file to resolve a conflict).
fn has_markers(file: &Path) -> bool {
    let Ok(bytes) = std::fs::read(file) else {
        return false;
    };
    String::from_utf8_lossy(&bytes).lines().any(|line| {
        line.starts_with("<<<<<<< ") || line.starts_with(">>>>>>> ") || line == "<<<<<<<"
    })
}
