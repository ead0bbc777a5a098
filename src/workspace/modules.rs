//! Submodules in a task's worktree (blocking). `git worktree add` checks out no submodule: each
//! is an empty directory, so a session could not build what needs one. A task's worktree gets
//! each submodule initialized in the repository (its git directory under `.git/modules/`)
//! checked out at the commit the task's tree records, as a worktree of that git directory:
//! nothing is cloned or fetched, and a commit made there is in the submodule's git directory at
//! once. What a session does in one is committed there and recorded as the task's new gitlink
//! ([`commit_modules`]), as the work in a submodule on a build box is. A submodule not
//! initialized here stays an empty directory. Submodules of submodules are handled the same
//! way, in ocio's checkouts, where the repository has them initialized (`git submodule update
//! --init --recursive` puts their git directories under their parent's).

use std::path::{Path, PathBuf};

use super::Result;
use super::WorkspaceError;
use super::carry_modules::modules_of;
use super::git::Git;

/// The ref that keeps `commit`, made by a session in a submodule of a task's worktree, in the
/// submodule's git directory: once that worktree goes, nothing else names it.
pub(crate) fn kept_ref(commit: &str) -> String {
    format!("refs/ocio/module/kept/{commit}")
}

/// What [`follow_index`] does with a submodule that is checked out already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Follow {
    /// Leaves it as it is: a task's worktree found again after a restart, where what its
    /// session did in the submodule (commits too) stays.
    Missing,
    /// Moves it to the commit the index records (ocio moved HEAD or the index: a merge, a
    /// reset); one whose commit is not here is emptied, as a submodule not initialized is,
    /// rather than left at a commit the index does not record.
    All,
    /// As `All`, but checks out none that is not checked out: work laid down in a worktree
    /// that may be your checkout (a plan without worktrees), whose empty submodules are yours.
    Checkouts,
}

/// Checks out in `worktree` the initialized submodules its index records that are not checked
/// out yet (not with [`Follow::Checkouts`]) and, with [`Follow::All`] or
/// [`Follow::Checkouts`], moves those that are to the recorded commits, as `git
/// submodule update` would, without fetching. Only ocio's own checkouts (worktrees of the
/// submodules' git directories) are moved or emptied, never a checkout of yours. A merge in
/// progress: those it merged cleanly, so that concluding it records them; a conflicted one is
/// left as it is. Idempotent; a submodule that cannot follow does not stop the others.
pub(super) fn follow_index(git: &Git, worktree: &Path, follow: Follow) -> Result<()> {
    if !has_modules(worktree) {
        return Ok(());
    }
    let head = git.run(worktree, &["rev-parse", "HEAD"])?;
    let modules = modules_of(worktree, &head)?;
    let mut failed = None;
    for (path, commit) in staged_links(git, worktree)? {
        // Initialized here, whether or not it has the commit HEAD records.
        let Some(gitdir) = modules
            .iter()
            .find(|module| module.path == path)
            .map(|module| &module.home)
            .filter(|home| home.is_dir())
        else {
            continue;
        };
        let followed = follow_one(git, worktree, gitdir, &path, &commit, follow)
            .and_then(|()| follow_nested(git, &worktree.join(&path), follow));
        if let Err(e) = followed {
            tracing::warn!(worktree = %worktree.display(), submodule = %path, error = %e, "a submodule cannot be checked out at the commit its worktree records");
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The submodules of submodule checkout `at` followed in turn, when it is one of ocio's (their
/// git directories are under its own, as `git submodule update --recursive` makes them).
fn follow_nested(git: &Git, at: &Path, follow: Follow) -> Result<()> {
    if has_modules(at) && at.join(".git").is_file() && is_ocios(git, at)? {
        follow_index(git, at, follow)?;
    }
    Ok(())
}

fn follow_one(
    git: &Git,
    worktree: &Path,
    gitdir: &Path,
    path: &str,
    commit: &str,
    follow: Follow,
) -> Result<()> {
    let at = worktree.join(path);
    let here = git.commit_of(gitdir, commit)?.is_some();
    let gitdir_arg = format!("--git-dir={}", gitdir.display());
    let at_text = at.to_string_lossy();
    if !at.join(".git").exists() {
        if !here || follow == Follow::Checkouts {
            return Ok(());
        }
        // A worktree of it left by a task worktree removed since (its directory gone) would
        // hold on to the path.
        git.run(worktree, &[gitdir_arg.as_str(), "worktree", "prune"])?;
        std::fs::create_dir_all(&at).map_err(WorkspaceError::io(&at))?;
        let add = [gitdir_arg.as_str(), "worktree", "add", "-q", "--detach"];
        let mut args = add.to_vec();
        args.extend([at_text.as_ref(), commit]);
        git.run(worktree, &args)?;
        return Ok(());
    }
    if follow == Follow::Missing || !is_ocios(git, &at)? {
        return Ok(());
    }
    if !here {
        tracing::info!(worktree = %worktree.display(), submodule = %path, %commit, "the submodule's recorded commit is not in its git directory here: its checkout is emptied");
        git.run(
            worktree,
            &[
                gitdir_arg.as_str(),
                "worktree",
                "remove",
                "--force",
                &at_text,
            ],
        )?;
        return std::fs::create_dir_all(&at).map_err(WorkspaceError::io(&at));
    }
    if git.run(&at, &["rev-parse", "HEAD"])? != commit {
        git.run(&at, &["checkout", "-q", "--detach", commit])?;
    }
    Ok(())
}

/// Whether the checkout at `at` is one of ocio's: a worktree of its git directory (yours, made
/// by `git submodule`, is that git directory's own).
pub(super) fn is_ocios(git: &Git, at: &Path) -> Result<bool> {
    let dirs = git.run(
        at,
        &[
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
        ],
    )?;
    let mut lines = dirs.lines();
    Ok(lines.next() != lines.next())
}

/// The gitlinks of `worktree`'s index that are in conflict (a merge in progress).
pub(super) fn conflicted_links(git: &Git, worktree: &Path) -> Result<Vec<String>> {
    if !has_modules(worktree) {
        return Ok(Vec::new());
    }
    let entries = git.paths(worktree, &["ls-files", "-u", "-z"])?;
    let mut paths: Vec<String> = entries
        .iter()
        .filter(|entry| entry.starts_with("160000 "))
        .filter_map(|entry| Some(entry.split_once('\t')?.1.to_string()))
        .collect();
    paths.dedup();
    Ok(paths)
}

/// The git directories of the submodules checked out in `worktree` (none where it has none,
/// or they cannot be read).
pub(super) fn checkouts(git: &Git, worktree: &Path) -> Vec<PathBuf> {
    if !has_modules(worktree) {
        return Vec::new();
    }
    let modules = git
        .run(worktree, &["rev-parse", "HEAD"])
        .and_then(|head| modules_of(worktree, &head));
    let mut gitdirs = Vec::new();
    for module in modules.unwrap_or_default() {
        let at = worktree.join(&module.path);
        if let (Some(gitdir), true) = (module.gitdir, at.join(".git").is_file()) {
            gitdirs.push(gitdir);
            // Those of its own submodules, checked out in it.
            gitdirs.extend(checkouts(git, &at));
        }
    }
    gitdirs
}

/// The records `gitdirs` kept of their checkouts in `worktree`, removed now, pruned: a failure
/// only leaves them for git's own pruning (the next checkout prunes them too).
pub(super) fn forget_checkouts(git: &Git, worktree: &Path, gitdirs: &[PathBuf]) {
    for gitdir in gitdirs {
        let gitdir_arg = format!("--git-dir={}", gitdir.display());
        if let Err(e) = git.run(&git.repo, &[gitdir_arg.as_str(), "worktree", "prune"]) {
            tracing::debug!(worktree = %worktree.display(), error = %e, "cannot prune a submodule's record of a removed worktree");
        }
    }
}

/// The gitlinks `worktree`'s index records without conflict: (path, commit).
fn staged_links(git: &Git, worktree: &Path) -> Result<Vec<(String, String)>> {
    let entries = git.paths(worktree, &["ls-files", "-s", "-z"])?;
    // `MODE ID STAGE\tPATH`
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let (meta, path) = entry.split_once('\t')?;
            let mut fields = meta.split(' ');
            let (mode, id, stage) = (fields.next()?, fields.next()?, fields.next()?);
            (mode == "160000" && stage == "0").then(|| (path.to_string(), id.to_string()))
        })
        .collect())
}

/// What is uncommitted in each submodule checked out in `worktree` undone, and the untracked
/// files in it removed (ignored ones stay), as the superproject's own tidying does to its files.
pub(super) fn tidy_modules(git: &Git, worktree: &Path) -> Result<()> {
    if !has_modules(worktree) {
        return Ok(());
    }
    let head = git.run(worktree, &["rev-parse", "HEAD"])?;
    for module in modules_of(worktree, &head)? {
        let at = worktree.join(&module.path);
        if module.gitdir.is_some() && at.join(".git").is_file() {
            git.run(&at, &["reset", "-q", "--hard"])?;
            git.run(&at, &["clean", "-q", "-f", "-d"])?;
            tidy_modules(git, &at)?;
        }
    }
    Ok(())
}

/// Commits what a session left in each submodule checked out in `worktree` (new, changed and
/// deleted files) with `message`, so that the superproject's `git add -A` records the
/// submodule's commit as the task's gitlink, and keeps a commit the tree did not record under
/// [`kept_ref`]. Files written into a submodule that is not checked out (not initialized
/// here, and no checkout of its own) cannot be committed: an error naming it, rather than
/// work silently left behind.
/// Idempotent.
pub(super) fn commit_modules(git: &Git, worktree: &Path, message: &str) -> Result<()> {
    if !has_modules(worktree) {
        return Ok(());
    }
    let head = git.run(worktree, &["rev-parse", "HEAD"])?;
    let modules = modules_of(worktree, &head)?;
    let strays: Vec<String> = modules
        .iter()
        .filter(|module| module.gitdir.is_none())
        .filter(|module| {
            let at = worktree.join(&module.path);
            // One with a checkout of its own (a plan's `setup` ran `git submodule update
            // --init`) is git's to record, as it always was.
            !at.join(".git").exists()
                && std::fs::read_dir(&at).is_ok_and(|mut entries| entries.next().is_some())
        })
        .map(|module| module.path.clone())
        .collect();
    if !strays.is_empty() {
        return Err(WorkspaceError::ModuleNotCheckedOut {
            repo: git.repo.clone(),
            worktree: worktree.to_path_buf(),
            paths: strays,
            within: None,
        });
    }
    for module in modules {
        let at = worktree.join(&module.path);
        if module.gitdir.is_none() || !at.join(".git").is_file() {
            continue;
        }
        // Its own submodules' work first, so that it records their commits.
        follow_moved(git, &at, &module.commit)?;
        commit_modules(git, &at, message).map_err(|e| nested_error(e, worktree, &module.path))?;
        git.run(&at, &["add", "-A"])?;
        if !git.check(&at, &["diff", "--cached", "--quiet"])? {
            git.run(&at, &["commit", "-q", "--no-verify", "-m", message])?;
        }
        let now = git.run(&at, &["rev-parse", "HEAD"])?;
        if now != module.commit {
            git.run(&at, &["update-ref", &kept_ref(&now), &now])?;
        }
    }
    Ok(())
}

/// `e`, from committing in submodule `path` of `worktree`, told from `worktree`'s root.
fn nested_error(e: WorkspaceError, worktree: &Path, path: &str) -> WorkspaceError {
    match e {
        // `git submodule update --init --recursive` of the outermost initializes them.
        WorkspaceError::ModuleNotCheckedOut { repo, paths, .. } => {
            WorkspaceError::ModuleNotCheckedOut {
                repo,
                worktree: worktree.to_path_buf(),
                paths: paths.iter().map(|p| format!("{path}/{p}")).collect(),
                within: Some(path.to_string()),
            }
        }
        e => e,
    }
}

/// In ocio's submodule checkout `at`, which the task's tree had at commit `start`: when a
/// session moved it (a checkout, a pull, a resolver keeping the other side), which leaves its
/// own submodules where they were, those it left as they were (at `start`'s commits, nothing
/// changed) follow it, as `git submodule update` would. Else committing would record their old
/// commits over the ones it moved to, in a commit of the submodule nobody made.
fn follow_moved(git: &Git, at: &Path, start: &str) -> Result<()> {
    if !has_modules(at) {
        return Ok(());
    }
    let head = git.run(at, &["rev-parse", "HEAD"])?;
    if head == start {
        return Ok(());
    }
    for nested in modules_of(at, &head)? {
        let inner = at.join(&nested.path);
        if nested.gitdir.is_none() || !inner.join(".git").is_file() || !is_ocios(git, &inner)? {
            continue;
        }
        let was = git.run(at, &["rev-parse", &format!("{start}:{}", nested.path)]);
        let now = git.run(&inner, &["rev-parse", "HEAD"])?;
        let untouched = was.is_ok_and(|was| was == now)
            && git.run(&inner, &["status", "--porcelain"])?.is_empty();
        if untouched && now != nested.commit {
            git.run(&inner, &["checkout", "-q", "--detach", &nested.commit])?;
            follow_moved(git, &inner, &now)?;
        }
    }
    Ok(())
}

fn has_modules(worktree: &Path) -> bool {
    worktree.join(".gitmodules").is_file()
}

#[cfg(test)]
#[path = "modules_tests.rs"]
mod tests;
