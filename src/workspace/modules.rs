//! Submodules in a task's worktree (blocking). `git worktree add` checks out no submodule: each
//! is an empty directory, so a session could not build what needs one. A task's worktree gets
//! each submodule initialized in the repository (its git directory under `.git/modules/`)
//! checked out at the commit the task's tree records, as a worktree of that git directory:
//! nothing is cloned or fetched, and a commit made there is in the submodule's git directory at
//! once. What a session does in one is committed there and recorded as the task's new gitlink
//! ([`commit_modules`]), as the work in a submodule on a build box is. A submodule not
//! initialized here stays an empty directory.

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

/// Checks out in `worktree` the initialized submodules its index records that are not checked
/// out yet, and moves those that are to the recorded commits (after ocio moved HEAD or the
/// index: a merge, a reset), as `git submodule update` would, without fetching. A merge in
/// progress: those it merged cleanly, so that concluding it records them; a conflicted one is
/// left as it is. Idempotent.
pub(super) fn follow_index(git: &Git, worktree: &Path) -> Result<()> {
    if !has_modules(worktree) {
        return Ok(());
    }
    let head = git.run(worktree, &["rev-parse", "HEAD"])?;
    let modules = modules_of(worktree, &head)?;
    for (path, commit) in staged_links(git, worktree)? {
        let Some(gitdir) = modules
            .iter()
            .find(|module| module.path == path)
            .and_then(|module| module.gitdir.as_ref())
        else {
            continue;
        };
        if git.commit_of(gitdir, &commit)?.is_none() {
            continue;
        }
        let at = worktree.join(&path);
        if at.join(".git").exists() {
            if git.run(&at, &["rev-parse", "HEAD"])? != commit {
                git.run(&at, &["checkout", "-q", "--detach", &commit])?;
            }
            continue;
        }
        let gitdir_arg = format!("--git-dir={}", gitdir.display());
        // A worktree of it left by a task worktree removed since (its directory gone) would
        // hold on to the path.
        git.run(worktree, &[gitdir_arg.as_str(), "worktree", "prune"])?;
        std::fs::create_dir_all(&at).map_err(WorkspaceError::io(&at))?;
        let at_text = at.to_string_lossy();
        let add = ["worktree", "add", "-q", "--detach", &at_text, &commit];
        let mut args = vec![gitdir_arg.as_str()];
        args.extend(add);
        git.run(worktree, &args)?;
    }
    Ok(())
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
    modules
        .unwrap_or_default()
        .into_iter()
        .filter(|module| worktree.join(&module.path).join(".git").is_file())
        .filter_map(|module| module.gitdir)
        .collect()
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
        });
    }
    for module in modules {
        let at = worktree.join(&module.path);
        if module.gitdir.is_none() || !at.join(".git").is_file() {
            continue;
        }
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

fn has_modules(worktree: &Path) -> bool {
    worktree.join(".gitmodules").is_file()
}

#[cfg(test)]
#[path = "modules_tests.rs"]
mod tests;
