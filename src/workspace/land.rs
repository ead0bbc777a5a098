//! Delivering a finished plan's integration branch into its base branch without touching any
//! checkout but the one the base branch is checked out in, and that one only by a fast-forward
//! that keeps uncommitted work: the base brought into the integration branch first (in the
//! integration worktree), the result commit made with `commit-tree` (merge, squash) or by a
//! rebase in a temporary detached worktree, then the base branch moved (`merge --ff-only` where
//! it is checked out, a compare-and-swap `update-ref` where it is not). Also: pushing the
//! integration branch to a remote.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::git::Git;
use super::record;
use super::{Result, Workspace, WorkspaceError, names};

/// How the integration branch's work becomes the base branch's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Combine {
    /// A merge commit: first parent the base, second the integration branch.
    Merge { message: String },
    /// One commit on the base with the integration branch's tree.
    Squash { message: String },
    /// The integration branch's non-merge commits replayed onto the base.
    Rebase,
}

/// Where the integration branch stands against the base after [`Workspace::bring_base_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BaseIn {
    /// It held the base already.
    Held,
    /// The base was merged in.
    Merged,
    /// Merging it conflicted in `files`; the merge is left in progress.
    Conflicted { files: Vec<String> },
}

/// The message of the merge that brings `base` into plan `plan`'s integration branch, by which
/// one left in progress is known again.
fn base_merge_message(plan: &str, base: &str) -> String {
    format!("Merge {base} into plan {plan} before landing")
}

/// What [`Workspace::land`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Landed {
    /// The base branch's commit now.
    pub(crate) commit: String,
    /// Files the landing changed on the base branch, repo-relative, sorted.
    pub(crate) files: Vec<String>,
    /// Where the base branch is checked out (moved by a fast-forward there), if anywhere.
    pub(crate) checkout: Option<PathBuf>,
}

impl Workspace {
    /// Whether the base branch already holds the plan's work: the integration branch is an
    /// ancestor of it (a merge or rebase landed), or it has the integration branch's tree (a
    /// squash landed). The base's commit then; `None` when not.
    pub(crate) fn landed_in(&self, plan: &str, base: &str) -> Result<Option<String>> {
        let _guard = self.guard();
        let (base_tip, integration) = self.tips(plan, base)?;
        let repo = &self.git.repo;
        let contained = self.git.check(
            repo,
            &["merge-base", "--is-ancestor", &integration, &base_tip],
        )?;
        let same_tree = self.tree(&base_tip)? == self.tree(&integration)?;
        Ok((contained || same_tree).then_some(base_tip))
    }

    /// Brings base branch `base` into the plan's integration branch when the base moved since
    /// the plan started (it is not an ancestor of the integration branch): a merge in the
    /// integration worktree. On conflicts, by `on_conflict`: the merge is aborted, everything
    /// stays as it was and the conflicted files are named in the error; or it is left in
    /// progress for a resolver session ([`BaseIn::Conflicted`], then
    /// [`Self::conclude_base_merge`] or [`Self::reset_integration`]).
    ///
    /// A merge of the base that an earlier landing left in progress (its resolver did not
    /// finish: the engine stopped) is aborted first; any other merge in progress (someone
    /// merging by hand, as the conflict's hint says) refuses.
    pub(crate) fn bring_base_in(
        &self,
        plan: &str,
        base: &str,
        on_conflict: super::OnConflict,
    ) -> Result<BaseIn> {
        let _guard = self.guard();
        let path = self.integration_path(plan);
        let message = base_merge_message(plan, base);
        if self.merging(&path)? && self.merge_message(&path).starts_with(&message) {
            tracing::info!(
                plan,
                base,
                "aborting a merge of the base an earlier landing left"
            );
            self.git.run(&path, &["merge", "--abort"])?;
        }
        self.ready_to_merge(plan, &path)?;
        let (base_tip, _) = self.tips(plan, base)?;
        if self
            .git
            .check(&path, &["merge-base", "--is-ancestor", &base_tip, "HEAD"])?
        {
            return Ok(BaseIn::Held);
        }
        let args = ["merge", "--no-ff", "--no-edit", "-m", &message, &base_tip];
        let output = self.git.exec(&path, &args)?;
        if output.status.success() {
            self.follow_modules(&path);
            return Ok(BaseIn::Merged);
        }
        let files = self.unmerged(&path)?;
        if !files.is_empty() && on_conflict == super::OnConflict::Leave {
            self.follow_modules(&path);
            return Ok(BaseIn::Conflicted { files });
        }
        let error = self.git.failed(&path, &args, &output);
        if self.merging(&path)? {
            self.git.run(&path, &["merge", "--abort"])?;
        }
        if files.is_empty() {
            return Err(error);
        }
        Err(WorkspaceError::BaseConflict {
            repo: self.git.repo.clone(),
            path,
            base: base.to_string(),
            branch: names::integration_branch(plan),
            files,
        })
    }

    /// Concludes the merge of the base that [`Self::bring_base_in`] left for a resolver
    /// session: refused while conflict markers remain. The merge commit.
    pub(crate) fn conclude_base_merge(&self, plan: &str) -> Result<String> {
        let _guard = self.guard();
        self.conclude(plan)
    }

    /// The message of the merge in progress in `path` (empty when it cannot be read).
    fn merge_message(&self, path: &Path) -> String {
        self.git
            .run(path, &["rev-parse", "--git-path", "MERGE_MSG"])
            .ok()
            .and_then(|file| std::fs::read_to_string(path.join(file.trim())).ok())
            .unwrap_or_default()
    }

    /// Makes the landing's commit from the integration branch (which holds the base: see
    /// [`Self::bring_base_in`]) and moves base branch `base` to it. Refused, with nothing
    /// changed, when the checkout the base is checked out in has uncommitted changes to a file
    /// the landing changes.
    pub(crate) fn land(&self, plan: &str, base: &str, how: &Combine) -> Result<Landed> {
        let _guard = self.guard();
        let (base_tip, integration) = self.tips(plan, base)?;
        let repo = self.git.repo.clone();
        // The result's tree is the integration branch's: it must hold every commit of the
        // base, or landing would undo what the base gained since it was brought in.
        let holds_base = ["merge-base", "--is-ancestor", &base_tip, &integration];
        if !self.git.check(&repo, &holds_base)? {
            return Err(WorkspaceError::BaseMoved {
                repo,
                base: base.to_string(),
            });
        }
        let tree = format!("{integration}^{{tree}}");
        let commit = match how {
            Combine::Merge { message } => self.git.run(
                &repo,
                &[
                    "commit-tree",
                    &tree,
                    "-p",
                    &base_tip,
                    "-p",
                    &integration,
                    "-m",
                    message,
                ],
            )?,
            Combine::Squash { message } => self.git.run(
                &repo,
                &["commit-tree", &tree, "-p", &base_tip, "-m", message],
            )?,
            Combine::Rebase => self.rebased(plan, base, &base_tip, &integration)?,
        };
        let files = self.git.paths(
            &repo,
            &[
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                &base_tip,
                &commit,
            ],
        )?;
        let checkout = self.move_base(base, &base_tip, &commit, &files)?;
        Ok(Landed {
            commit,
            files,
            checkout,
        })
    }

    /// The integration branch's non-merge commits replayed onto `base_tip` in a temporary
    /// detached worktree, which is removed however it went. On a conflict the rebase is
    /// aborted and refused.
    fn rebased(&self, plan: &str, base: &str, base_tip: &str, integration: &str) -> Result<String> {
        let path = self.plan_dir(plan).join(".landing");
        self.remove(&path)?;
        let path_text = path.to_string_lossy().into_owned();
        self.git.run(
            &self.git.repo,
            &["worktree", "add", "--detach", &path_text, integration],
        )?;
        let result = self.replay(&path, base, base_tip);
        let removed = self.remove(&path);
        let commit = result?;
        removed?;
        Ok(commit)
    }

    fn replay(&self, path: &Path, base: &str, base_tip: &str) -> Result<String> {
        let args = ["rebase", "--no-rebase-merges", base_tip];
        let output = self.git.exec(path, &args)?;
        if output.status.success() {
            return self.git.run(path, &["rev-parse", "HEAD"]);
        }
        let files = self.unmerged(path)?;
        let error = self.git.failed(path, &args, &output);
        let _ = Git::output(path, &["rebase", "--abort"]);
        if files.is_empty() {
            return Err(error);
        }
        Err(WorkspaceError::RebaseConflict {
            repo: self.git.repo.clone(),
            base: base.to_string(),
            files,
        })
    }

    /// Moves base branch `base` from `from` to `to`: a fast-forward in the checkout it is
    /// checked out in (after making sure that checkout's uncommitted changes touch none of
    /// `files`), else a compare-and-swap of the ref. Never resets, stashes or checks out.
    fn move_base(
        &self,
        base: &str,
        from: &str,
        to: &str,
        files: &[String],
    ) -> Result<Option<PathBuf>> {
        let listed = record::list(&self.git)?;
        let Some(entry) = listed.iter().find(|e| e.branch.as_deref() == Some(base)) else {
            let reference = format!("refs/heads/{base}");
            self.git
                .run(&self.git.repo, &["update-ref", &reference, to, from])?;
            return Ok(None);
        };
        let dirty = self.uncommitted(&entry.path)?;
        let touched: Vec<String> = files
            .iter()
            .filter(|f| dirty.contains(f.as_str()))
            .cloned()
            .collect();
        if !touched.is_empty() {
            return Err(WorkspaceError::CheckoutTouches {
                path: entry.path.clone(),
                base: base.to_string(),
                files: touched,
            });
        }
        self.git
            .run(&entry.path, &["merge", "--ff-only", "-q", to])?;
        Ok(Some(entry.path.clone()))
    }

    /// Every file with uncommitted changes in the checkout at `path`: staged, unstaged and
    /// untracked (not ignored).
    fn uncommitted(&self, path: &Path) -> Result<BTreeSet<String>> {
        let status = self.git.paths(
            path,
            &[
                "status",
                "--porcelain",
                "-z",
                "--untracked-files=all",
                "--no-renames",
            ],
        )?;
        Ok(status
            .iter()
            .filter_map(|entry| entry.get(3..))
            .map(str::to_string)
            .collect())
    }

    /// After a landing: the plan's integration worktree goes (so its branch can be checked
    /// out), then its other worktrees by `policy` (see [`Self::cleanup`]).
    pub(crate) fn after_landing(
        &self,
        plan: &str,
        policy: super::CleanupPolicy,
    ) -> Result<super::cleanup::CleanupReport> {
        let path = self.integration_path(plan);
        {
            let _guard = self.guard();
            self.git.run(&self.git.repo, &["worktree", "prune"])?;
            self.remove(&path)?;
        }
        let mut report = self.cleanup(plan, policy)?;
        report.removed.insert(0, path);
        Ok(report)
    }

    /// Pushes the plan's integration branch to `remote` under its own name; `None` for
    /// `remote` means the base branch's upstream remote, else `origin`. The remote used.
    pub(crate) fn push(&self, plan: &str, base: &str, remote: Option<&str>) -> Result<String> {
        let _guard = self.guard();
        let repo = self.git.repo.clone();
        let remote = match remote {
            Some(remote) => remote.to_string(),
            None => {
                let key = format!("branch.{base}.remote");
                let upstream = Git::output(&repo, &["config", "--get", &key])?;
                let upstream = String::from_utf8_lossy(&upstream.stdout).trim().to_string();
                if upstream.is_empty() || upstream == "." {
                    "origin".to_string()
                } else {
                    upstream
                }
            }
        };
        let branch = names::integration_branch(plan);
        let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
        self.git.run(&repo, &["push", "-q", &remote, &spec])?;
        Ok(remote)
    }

    /// The commit branch `branch` is at.
    pub(crate) fn branch_tip(&self, branch: &str) -> Result<String> {
        let reference = format!("refs/heads/{branch}");
        self.git
            .run(&self.git.repo, &["rev-parse", "--verify", &reference])
    }

    /// Whether `name` is a local branch.
    pub(crate) fn is_branch(&self, name: &str) -> Result<bool> {
        self.branch_exists(name)
    }

    /// The branch checked out in the repository's main checkout; `None` when detached.
    pub(crate) fn current_branch(&self) -> Result<Option<String>> {
        let output = Git::output(&self.git.repo, &["symbolic-ref", "-q", "--short", "HEAD"])?;
        let name = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok((output.status.success() && !name.is_empty()).then_some(name))
    }

    /// The base branch's and the integration branch's commits.
    fn tips(&self, plan: &str, base: &str) -> Result<(String, String)> {
        let repo = &self.git.repo;
        let base_tip = self
            .git
            .commit_of(repo, &format!("refs/heads/{base}"))?
            .ok_or_else(|| WorkspaceError::UnknownBase {
                repo: repo.clone(),
                base: base.to_string(),
            })?;
        let branch = names::integration_branch(plan);
        let integration = self
            .git
            .commit_of(repo, &format!("refs/heads/{branch}"))?
            .ok_or_else(|| WorkspaceError::NoIntegration {
                repo: repo.clone(),
                plan: plan.to_string(),
                branch,
            })?;
        Ok((base_tip, integration))
    }

    fn tree(&self, commit: &str) -> Result<String> {
        self.git.run(
            &self.git.repo,
            &["rev-parse", &format!("{commit}^{{tree}}")],
        )
    }
}
