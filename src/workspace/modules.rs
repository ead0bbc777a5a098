//! Submodules in a task's worktree (blocking). `git worktree add` checks out no submodule: each
//! is an empty directory, so a session could not build what needs one. A task's worktree gets
//! each submodule initialized in the repository (its git directory under `.git/modules/`)
//! checked out at the commit the task's tree records, as a worktree of that git directory:
//! nothing is cloned or fetched, and a commit made there is in the submodule's git directory at
//! once. What a session does in one is committed there and recorded as the task's new gitlink
//! ([`commit_modules`]), as the work in a submodule on a build box is. A submodule not
//! initialized here stays an empty directory.

use std::path::Path;

use super::Result;
use super::WorkspaceError;
use super::carry_modules::{Module, modules_of};
use super::git::Git;

/// The ref that keeps `commit`, made by a session in a submodule of a task's worktree, in the
/// submodule's git directory: once that worktree goes, nothing else names it.
pub(crate) fn kept_ref(commit: &str) -> String {
    format!("refs/ocio/module/kept/{commit}")
}

/// Checks out in `worktree` the initialized submodules of `commit` (its tree) that are not
/// checked out yet. Idempotent.
pub(super) fn check_out_modules(git: &Git, worktree: &Path, commit: &str) -> Result<()> {
    for module in populated(worktree, commit)? {
        let Some(gitdir) = &module.gitdir else {
            continue;
        };
        let at = worktree.join(&module.path);
        if at.join(".git").exists() {
            continue;
        }
        let gitdir_arg = format!("--git-dir={}", gitdir.display());
        // A worktree of it left by a task worktree removed since (its directory gone) would
        // hold on to the path.
        git.run(worktree, &[gitdir_arg.as_str(), "worktree", "prune"])?;
        std::fs::create_dir_all(&at).map_err(WorkspaceError::io(&at))?;
        let at_text = at.to_string_lossy();
        git.run(
            worktree,
            &[
                gitdir_arg.as_str(),
                "worktree",
                "add",
                "-q",
                "--detach",
                &at_text,
                &module.commit,
            ],
        )?;
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
    let modules = populated(worktree, &head)?;
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

/// The submodules of `commit` when `worktree` has any (none, quickly, without).
fn populated(worktree: &Path, commit: &str) -> Result<Vec<Module>> {
    match has_modules(worktree) {
        true => modules_of(worktree, commit),
        false => Ok(Vec::new()),
    }
}

fn has_modules(worktree: &Path) -> bool {
    worktree.join(".gitmodules").is_file()
}

#[cfg(test)]
#[path = "modules_tests.rs"]
mod tests;
