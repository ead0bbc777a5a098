//! Git worktrees for a plan's sessions, in one repository: each coding session works in its own
//! worktree on its own branch `ocio/<plan>/<task>`, made from the plan's integration branch
//! `ocio/<plan>/integration`, where finished tasks are merged in a worktree of its own (the
//! user's checkout is never touched). Also: which files a session changed, committing what it
//! left, merging with conflicts reported or left for a resolver, and cleaning up.
//!
//! Layout under the root the caller gives (the engine: `<data dir>/worktrees`):
//! `<root>/<repo>-<hash>/<plan>/integration` and `<root>/<repo>-<hash>/<plan>/<task>/<attempt>`,
//! names made safe by `names::component`.
//!
//! Blocking: every operation runs `git` and waits for it; call from `spawn_blocking`. Operations
//! on one [`Workspace`] (and its clones) are serialized, so keep one per repository.
//!
//! A plan with `worktrees = false` uses none of this: its tasks share the checkout, one at a time
//! under the repository's lock (`repo:<path>`), and `Workspace::changed_since` tells what a
//! session changed there.

pub mod carry;
pub mod carry_modules;
mod cleanup;
pub(crate) mod conflict;
mod diff;
mod git;
mod integration;
mod land;
mod merge;
mod modules;
pub(crate) mod names;
pub(crate) mod overlap;
pub(crate) use setup_marks::SetupMarks;
mod prepare;
mod record;
mod review;
mod setup_marks;

#[cfg(test)]
mod land_tests;
#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub(crate) use cleanup::CleanupPolicy;
pub(crate) use diff::{commit_diff, enclosing_repository, worktree_diff};
pub(crate) use git::Author;
pub use git::WorkspaceError;
pub(crate) use land::{BaseIn, Combine};
pub use merge::{MergeOutcome, OnConflict};

use git::Git;
use record::{Listed, Stamp};

/// The worktrees of one repository.
#[derive(Debug, Clone)]
pub struct Workspace {
    git: Git,
    /// `<root>/<repo>-<hash>`, canonical.
    root: PathBuf,
    /// Serializes the operations (git's own locks would make parallel ones fail, not wait).
    lock: Arc<Mutex<()>>,
}

/// A plan's integration branch and the worktree it is checked out in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub(crate) branch: String,
    pub path: PathBuf,
    /// Its commit now.
    pub(crate) head: String,
}

/// A task's worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskWorktree {
    /// Give this to OpenCode as the session's directory.
    pub path: PathBuf,
    pub(crate) branch: String,
    /// The integration commit it was made from: what [`Workspace::changed_files`] compares to.
    pub(crate) base: String,
    pub(crate) attempt: u32,
}

type Result<T> = std::result::Result<T, WorkspaceError>;

/// How many names [`Workspace::claim_integration`] tries before giving up.
const MAX_CLAIMS: u32 = 1000;

impl Workspace {
    /// The workspace of the repository that contains `repo`, keeping worktrees under
    /// `worktree_root` (made if missing).
    pub fn open(repo: &Path, worktree_root: &Path) -> Result<Self> {
        if !repo.is_dir() {
            // Running git there would fail in a way that looks like a missing git.
            return Err(WorkspaceError::NotARepository {
                path: repo.to_path_buf(),
                stderr: "no such directory".into(),
            });
        }
        let output = Git::output(repo, &["rev-parse", "--show-toplevel"])?;
        if !output.status.success() {
            return Err(WorkspaceError::NotARepository {
                path: repo.to_path_buf(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let top = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let top = top.canonicalize().map_err(WorkspaceError::io(&top))?;
        let name = top
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repo".into());
        let key = format!(
            "{}-{:08x}",
            names::component(&name),
            names::fnv1a(top.as_os_str().as_encoded_bytes()) as u32
        );
        let root = worktree_root.join(key);
        std::fs::create_dir_all(&root).map_err(WorkspaceError::io(&root))?;
        let root = root.canonicalize().map_err(WorkspaceError::io(&root))?;
        Ok(Self {
            git: Git::for_repository(top),
            root,
            lock: Arc::new(Mutex::new(())),
        })
    }

    /// The repository's top level.
    pub(crate) fn repo(&self) -> &Path {
        &self.git.repo
    }

    /// Where this repository's worktrees are.
    #[cfg(test)]
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn plan_dir(&self, plan: &str) -> PathBuf {
        self.root.join(names::component(plan))
    }

    /// Where the plan's integration worktree is.
    pub(crate) fn integration_path(&self, plan: &str) -> PathBuf {
        self.plan_dir(plan).join(names::INTEGRATION)
    }

    /// Where a task's worktree for `attempt` is.
    pub(crate) fn task_path(&self, plan: &str, task: &str, attempt: u32) -> PathBuf {
        self.task_dir(plan, task).join(attempt.to_string())
    }

    /// Where a task's worktrees are, one directory per attempt.
    fn task_dir(&self, plan: &str, task: &str) -> PathBuf {
        self.plan_dir(plan).join(names::component(task))
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the plan's integration branch from `base` (a branch, tag or commit; the
    /// repository's current HEAD when `None`) and checks it out in the plan's integration
    /// worktree. Idempotent: an existing branch is kept as it is (it holds merged work), and
    /// its worktree is made again if it went missing.
    pub fn ensure_integration(&self, plan: &str, base: Option<&str>) -> Result<Integration> {
        let _guard = self.guard();
        self.git.run(&self.git.repo, &["worktree", "prune"])?;
        let branch = names::integration_branch(plan);
        let path = self.integration_path(plan);
        let listed = record::list(&self.git)?;
        let checked_out = listed.iter().find(|entry| entry.path == path);
        match checked_out {
            Some(entry) if entry.branch.as_deref() == Some(branch.as_str()) => {}
            Some(entry) => return Err(self.foreign(entry, &branch)),
            None => {
                self.clear_leftover(&path)?;
                let path_text = path.to_string_lossy();
                if self.branch_exists(&branch)? {
                    self.git
                        .run(&self.git.repo, &["worktree", "add", &path_text, &branch])?;
                } else {
                    let start = self.resolve_base(base)?;
                    self.git.run(
                        &self.git.repo,
                        &["worktree", "add", "-b", &branch, &path_text, &start],
                    )?;
                }
            }
        }
        self.follow_modules(&path);
        let head = self.git.run(&path, &["rev-parse", "HEAD"])?;
        Ok(Integration { branch, path, head })
    }

    /// Gives a new plan named `name` branches of its own: `ocio/<name>/...` when nothing in the
    /// repository uses that prefix yet and no directory of that name is under the root, else
    /// the first free of `<name>-2`, `<name>-3`, ... Makes its integration branch from `base`
    /// and checks it out, like [`Self::ensure_integration`]. Returns the key the plan's branches
    /// and worktrees are named by from now on (keep it: it is not derivable from `name`).
    ///
    /// Safe against another process claiming at the same moment, and a name is never given
    /// twice in a repository even after the first plan's branches are deleted: the claim is a
    /// ref `refs/ocio/plans/<key>` made only if absent (see [`names::plan_marker`]). When the
    /// plan's branch or worktree cannot be made, the claim is given back and the error
    /// returned.
    pub(crate) fn claim_integration(
        &self,
        name: &str,
        base: Option<&str>,
    ) -> Result<(String, Integration)> {
        let start = {
            let _guard = self.guard();
            self.resolve_base(base)?
        };
        for number in 1..=MAX_CLAIMS {
            let key = if number == 1 {
                name.to_string()
            } else {
                format!("{name}-{number}")
            };
            let _guard = self.guard();
            if self.plan_dir(&key).exists() || self.has_branches_under(&key)? {
                continue;
            }
            // The claim: a ref outside the branches, made only if it is not there (atomic,
            // against another process too), which stays when the plan's branches are deleted,
            // so a name is never given to two plans of one repository.
            let marker = names::plan_marker(&key);
            let claim = ["update-ref", marker.as_str(), start.as_str(), ""];
            let claimed = Git::output(&self.git.repo, &claim)?;
            if !claimed.status.success() {
                if self.git.commit_of(&self.git.repo, &marker)?.is_some() {
                    continue; // an earlier plan had it
                }
                return Err(self.git.failed(&self.git.repo, &claim, &claimed));
            }
            let give_back = |branch: Option<&str>| {
                if let Some(branch) = branch {
                    let _ = self.git.run(&self.git.repo, &["branch", "-D", branch]);
                }
                let _ = self.git.run(&self.git.repo, &["update-ref", "-d", &marker]);
                let _ = self.clear_leftover(&self.plan_dir(&key));
            };
            let branch = names::integration_branch(&key);
            if let Err(error) = self.git.run(&self.git.repo, &["branch", &branch, &start]) {
                give_back(None);
                return Err(error);
            }
            self.git.run(&self.git.repo, &["worktree", "prune"])?;
            let path = self.integration_path(&key);
            let path_text = path.to_string_lossy();
            if let Err(error) = self
                .git
                .run(&self.git.repo, &["worktree", "add", &path_text, &branch])
            {
                // The branch holds nothing but the base: the name goes back.
                give_back(Some(&branch));
                return Err(error);
            }
            self.follow_modules(&path);
            let head = self.git.run(&path, &["rev-parse", "HEAD"])?;
            return Ok((key, Integration { branch, path, head }));
        }
        Err(WorkspaceError::NamesExhausted {
            repo: self.git.repo.clone(),
            name: name.to_string(),
            tried: MAX_CLAIMS,
        })
    }

    /// Gives back the name a plan claimed with [`Self::claim_integration`] and never used
    /// (it was refused after the claim): its integration worktree, branch and mark go.
    pub(crate) fn release_claim(&self, plan: &str) -> Result<()> {
        let _guard = self.guard();
        let path = self.integration_path(plan);
        self.remove(&path)?;
        let branch = names::integration_branch(plan);
        if self.branch_exists(&branch)? {
            self.git.run(&self.git.repo, &["branch", "-D", &branch])?;
        }
        let marker = names::plan_marker(plan);
        self.git
            .run(&self.git.repo, &["update-ref", "-d", &marker])?;
        Ok(())
    }

    /// Whether a branch `ocio/<plan>` or any `ocio/<plan>/...` exists (the first would keep
    /// git from making the second; plans from before names were claimed have no marker).
    fn has_branches_under(&self, plan: &str) -> Result<bool> {
        let name = format!("{}/{}", names::BRANCH_PREFIX, names::component(plan));
        if self.branch_exists(&name)? {
            return Ok(true);
        }
        let prefix = format!("refs/heads/{name}/");
        let listed = self.git.run(
            &self.git.repo,
            &["for-each-ref", "--count=1", "--format=%(refname)", &prefix],
        )?;
        Ok(!listed.is_empty())
    }

    /// The commit the plan starts from.
    fn resolve_base(&self, base: Option<&str>) -> Result<String> {
        let repo = &self.git.repo;
        let Some(base) = base else {
            return self
                .git
                .commit_of(repo, "HEAD")?
                .ok_or_else(|| WorkspaceError::NoCommits { repo: repo.clone() });
        };
        if self.git.commit_of(repo, "HEAD")?.is_none() {
            return Err(WorkspaceError::NoCommits { repo: repo.clone() });
        }
        self.git
            .commit_of(repo, base)?
            .ok_or_else(|| WorkspaceError::UnknownBase {
                repo: repo.clone(),
                base: base.to_string(),
            })
    }

    /// The worktree of a task's `attempt`, made from the integration branch's current commit on
    /// branch `ocio/<plan>/<task>`.
    ///
    /// Idempotent: asked again for the same attempt (after a restart), the existing worktree is
    /// returned untouched. A later attempt starts fresh: the earlier attempt's worktree is
    /// removed and the branch is reset to the integration branch's current commit.
    pub fn create_worktree(&self, plan: &str, task: &str, attempt: u32) -> Result<TaskWorktree> {
        self.make_worktree(plan, task, attempt, false)
    }

    /// The worktree of a task's `attempt` that continues the earlier attempt's work: made from
    /// the task branch's tip (what the earlier attempt committed), keeping its base, rather than
    /// from the integration branch. An attempt stopped over budget continues this way.
    pub fn continue_worktree(&self, plan: &str, task: &str, attempt: u32) -> Result<TaskWorktree> {
        self.make_worktree(plan, task, attempt, true)
    }

    fn make_worktree(
        &self,
        plan: &str,
        task: &str,
        attempt: u32,
        continues: bool,
    ) -> Result<TaskWorktree> {
        let _guard = self.guard();
        self.git.run(&self.git.repo, &["worktree", "prune"])?;
        let branch = names::task_branch(plan, task);
        let path = self.task_path(plan, task, attempt);
        let listed = record::list(&self.git)?;
        if let Some(entry) = listed.iter().find(|entry| entry.path == path) {
            if entry.branch.as_deref() != Some(branch.as_str()) {
                return Err(self.foreign(entry, &branch));
            }
            if let Some(stamp) = Stamp::read(&self.git, &path)? {
                self.follow_modules_as(&path, modules::Follow::Missing);
                return Ok(TaskWorktree {
                    path,
                    branch,
                    base: stamp.base,
                    attempt: stamp.attempt,
                });
            }
            // Made, but stopped before it was stamped: make it again below.
        }
        let mut earlier_base = None;
        for earlier in listed
            .iter()
            .filter(|entry| entry.branch.as_deref() == Some(branch.as_str()))
        {
            if continues && let Some(stamp) = Stamp::read(&self.git, &earlier.path)? {
                earlier_base = Some(stamp.base);
            }
            self.remove_registered(&earlier.path)?;
            self.remove_empty_parents(&earlier.path);
        }
        self.clear_leftover(&path)?;
        let integration = names::integration_branch(plan);
        let base = self
            .git
            .commit_of(&self.git.repo, &format!("refs/heads/{integration}"))?;
        let base = base.ok_or_else(|| WorkspaceError::NoIntegration {
            repo: self.git.repo.clone(),
            plan: plan.to_string(),
            branch: integration,
        })?;
        let tip = match continues {
            true => self
                .git
                .commit_of(&self.git.repo, &format!("refs/heads/{branch}"))?,
            false => None,
        };
        let (start, base) = match tip {
            Some(tip) => (tip, earlier_base.unwrap_or(base)),
            None => (base.clone(), base),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(WorkspaceError::io(parent))?;
        }
        self.git.run(
            &self.git.repo,
            &[
                "worktree",
                "add",
                "-B",
                &branch,
                &path.to_string_lossy(),
                &start,
            ],
        )?;
        let stamp = Stamp {
            attempt,
            base: base.clone(),
            merged: None,
        };
        stamp.write(&self.git, &path)?;
        self.follow_modules(&path);
        Ok(TaskWorktree {
            path,
            branch,
            base,
            attempt,
        })
    }

    /// A worktree's initialized submodules checked out at the commits its HEAD records (see
    /// `modules.rs`); where that fails they stay as they are (empty, as `git worktree add`
    /// leaves them), and the log says why.
    pub(super) fn follow_modules(&self, worktree: &Path) {
        self.follow_modules_as(worktree, modules::Follow::All);
    }

    fn follow_modules_as(&self, worktree: &Path, follow: modules::Follow) {
        if let Err(e) = modules::follow_index(&self.git, worktree, follow) {
            tracing::warn!(worktree = %worktree.display(), error = %e, "cannot check out the submodules of a worktree at the commits it records");
        }
    }

    /// The files a task's worktree changed since it was made: committed, staged, unstaged and
    /// new (untracked, not ignored) files, deleted ones included, repo-relative, sorted.
    pub fn changed_files(&self, worktree: &Path) -> Result<Vec<String>> {
        let _guard = self.guard();
        let stamp = self.stamp(worktree)?;
        self.changed(worktree, &stamp.base)
    }

    /// What a task's worktree has changed so far, for watching a session at work: like
    /// [`Self::changed_files`] but without touching the worktree's index (plain `git diff`
    /// refreshes it, which could make the session's own `git add` find `index.lock` taken)
    /// and without waiting for the other operations on the repository.
    ///
    /// `base`: the worktree's [`Self::worktree_base`], read once per session by the caller, so a
    /// look costs two git calls.
    pub(crate) fn touched_since(&self, worktree: &Path, base: &str) -> Result<Vec<String>> {
        // Committed since it was made (a session may commit), then what the index and the
        // files add to that.
        let mut files: BTreeSet<String> = self
            .git
            .paths(
                worktree,
                &["diff", "--name-only", "-z", "--no-renames", base, "HEAD"],
            )?
            .into_iter()
            .collect();
        let status = self.git.paths(
            worktree,
            &[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "-z",
                "--untracked-files=all",
                "--no-renames",
            ],
        )?;
        files.extend(
            status
                .iter()
                .filter_map(|entry| entry.get(3..))
                .map(str::to_string),
        );
        Ok(files.into_iter().collect())
    }

    /// The commit a task's worktree was made from (its stamp's).
    pub(crate) fn worktree_base(&self, worktree: &Path) -> Result<String> {
        Ok(self.stamp(worktree)?.base)
    }

    /// The files changed in `dir` (any checkout of the repository) since commit `base`:
    /// for plans without worktrees, with `base` the commit the session started from.
    pub(crate) fn changed_since(&self, dir: &Path, base: &str) -> Result<Vec<String>> {
        let _guard = self.guard();
        self.changed(dir, base)
    }

    /// Who the commits ocio makes in this repository are by.
    pub(crate) fn author(&self) -> &git::Author {
        &self.git.author
    }

    /// The commit checked out in `dir`.
    pub(crate) fn head(&self, dir: &Path) -> Result<String> {
        self.git.run(dir, &["rev-parse", "HEAD"])
    }

    fn changed(&self, dir: &Path, base: &str) -> Result<Vec<String>> {
        let mut files: BTreeSet<String> = self
            .git
            .paths(dir, &["diff", "--name-only", "-z", "--no-renames", base])?
            .into_iter()
            .collect();
        files.extend(
            self.git
                .paths(dir, &["ls-files", "--others", "--exclude-standard", "-z"])?,
        );
        Ok(files.into_iter().collect())
    }

    /// Commits everything the session left in `worktree` (new, changed and deleted files,
    /// ignored ones excepted) as `ocio <ocio@localhost>`, hooks off. The new commit, or `None`
    /// when there was nothing to commit.
    pub fn commit_all(&self, worktree: &Path, message: &str) -> Result<Option<String>> {
        self.commit_all_in(worktree, message)
    }

    fn commit_all_in(&self, worktree: &Path, message: &str) -> Result<Option<String>> {
        let _guard = self.guard();
        // Work in a task worktree's submodules first: the superproject records their commits.
        if worktree.starts_with(&self.root) {
            modules::commit_modules(&self.git, worktree, message)?;
        }
        self.git.run(worktree, &["add", "-A"])?;
        if self.git.check(worktree, &["diff", "--cached", "--quiet"])? {
            return Ok(None);
        }
        self.git
            .run(worktree, &["commit", "-q", "--no-verify", "-m", message])?;
        self.git.run(worktree, &["rev-parse", "HEAD"]).map(Some)
    }

    /// Removes a worktree ocio made (uncommitted changes in it are lost; its branch stays).
    /// The engine removes worktrees as part of its merges; this is the same removal alone.
    #[cfg(test)]
    pub(crate) fn remove_worktree(&self, worktree: &Path) -> Result<()> {
        let _guard = self.guard();
        self.remove(worktree)
    }

    fn remove(&self, worktree: &Path) -> Result<()> {
        if !worktree.starts_with(&self.root) || worktree == self.root {
            return Err(WorkspaceError::NotOurs {
                repo: self.git.repo.clone(),
                path: worktree.to_path_buf(),
            });
        }
        let listed = record::list(&self.git)?;
        if listed.iter().any(|entry| entry.path == worktree) {
            self.remove_registered(worktree)?;
        }
        self.clear_leftover(worktree)?;
        self.remove_empty_parents(worktree);
        Ok(())
    }

    /// Where the setup of the task worktree at `worktree` notes how far it got.
    pub(crate) fn setup_marks(&self, worktree: &Path) -> Result<SetupMarks> {
        let dir = self
            .git
            .run(worktree, &["rev-parse", "--absolute-git-dir"])?;
        Ok(SetupMarks::in_git_dir(PathBuf::from(dir.trim()), worktree))
    }

    /// `git worktree remove --force` of a worktree git lists, and the records its submodules'
    /// git directories kept of their checkouts in it pruned.
    /// A setup a killed ocio left running in it is stopped first (`SetupMarks`).
    fn remove_registered(&self, worktree: &Path) -> Result<()> {
        if let Ok(marks) = self.setup_marks(worktree) {
            marks.stop_left();
        }
        let gitdirs = modules::checkouts(&self.git, worktree);
        self.git.run(
            &self.git.repo,
            &["worktree", "remove", "--force", &worktree.to_string_lossy()],
        )?;
        modules::forget_checkouts(&self.git, worktree, &gitdirs);
        Ok(())
    }

    fn stamp(&self, worktree: &Path) -> Result<Stamp> {
        let stamp = worktree
            .starts_with(&self.root)
            .then(|| Stamp::read(&self.git, worktree))
            .transpose()?
            .flatten();
        stamp.ok_or_else(|| WorkspaceError::NotOurs {
            repo: self.git.repo.clone(),
            path: worktree.to_path_buf(),
        })
    }

    fn branch_exists(&self, branch: &str) -> Result<bool> {
        let reference = format!("refs/heads/{branch}");
        self.git.check(
            &self.git.repo,
            &["show-ref", "--verify", "--quiet", &reference],
        )
    }

    fn foreign(&self, entry: &Listed, expected: &str) -> WorkspaceError {
        WorkspaceError::ForeignWorktree {
            repo: self.git.repo.clone(),
            path: entry.path.clone(),
            found: entry
                .branch
                .clone()
                .unwrap_or_else(|| "(detached HEAD)".into()),
            expected: expected.to_string(),
        }
    }

    /// Removes a directory under the root that git no longer knows as a worktree (left by a
    /// crash between `mkdir` and `worktree add`, or by a removal git could not finish).
    fn clear_leftover(&self, path: &Path) -> Result<()> {
        if path.starts_with(&self.root) && path != self.root && path.exists() {
            std::fs::remove_dir_all(path).map_err(WorkspaceError::io(path))?;
        }
        Ok(())
    }

    /// Removes the empty directories between `path` and the root (best effort).
    fn remove_empty_parents(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(parent) = dir {
            if parent == self.root || !parent.starts_with(&self.root) {
                break;
            }
            if std::fs::remove_dir(parent).is_err() {
                break;
            }
            dir = parent.parent();
        }
    }
}
