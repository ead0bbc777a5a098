//! Making a new task worktree ready for its session: the untracked files a build needs that git
//! does not carry (`.env`, `node_modules`), copied from the user's checkout. Only git-ignored
//! paths are copied, so that nothing copied is committed with the task's work.

use std::path::Path;

use super::{Result, Workspace, WorkspaceError};

impl Workspace {
    /// Copies each of `paths` (repository-relative files or directories, git-ignored) from the
    /// checkout into `worktree`, replacing what is there. Symbolic links are copied as links,
    /// file modes are kept. Refuses a path that is missing in the checkout or that git does not
    /// ignore, before copying anything.
    pub(crate) fn copy_ignored(&self, worktree: &Path, paths: &[String]) -> Result<()> {
        for path in paths {
            let source = self.git.repo.join(path);
            let Ok(meta) = std::fs::symlink_metadata(&source) else {
                return Err(WorkspaceError::CopyMissing {
                    repo: self.git.repo.clone(),
                    path: path.clone(),
                });
            };
            // The worktree does not have it yet: a trailing `/` tells git it is a directory,
            // which patterns such as `node_modules/` need.
            let asked = if meta.is_dir() {
                format!("{}/", path.trim_end_matches('/'))
            } else {
                path.clone()
            };
            // Exit 0: ignored; 1: not. A tracked file is not ignored, whatever the patterns.
            let by_pattern = ["check-ignore", "-q", "--no-index", "--", &asked];
            let tracked = ["ls-files", "--error-unmatch", "--", path.as_str()];
            let ignored = self.git.check(worktree, &by_pattern)?
                && !self.git.check(&self.git.repo, &tracked)?;
            if !ignored {
                return Err(WorkspaceError::CopyNotIgnored {
                    repo: self.git.repo.clone(),
                    path: path.clone(),
                });
            }
        }
        for path in paths {
            let target = worktree.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(WorkspaceError::io(parent))?;
            }
            copy_tree(&self.git.repo.join(path), &target)?;
        }
        Ok(())
    }
}

impl Workspace {
    /// Tracked files changed (staged or not) in the worktree at `dir`, repo-relative.
    pub(crate) fn tracked_changes(&self, dir: &Path) -> Result<Vec<String>> {
        let status = self.git.paths(
            dir,
            &[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "-z",
                "--untracked-files=no",
                "--no-renames",
            ],
        )?;
        Ok(status
            .iter()
            .filter_map(|entry| entry.get(3..))
            .map(str::to_string)
            .collect())
    }
}

/// Copies a file, link or directory (recursively) to `to`, replacing a file or link there.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from).map_err(WorkspaceError::io(from))?;
    let kind = meta.file_type();
    if !(kind.is_dir() || kind.is_file() || kind.is_symlink()) {
        return Ok(()); // a socket or a FIFO: nothing a build reads (and opening a FIFO hangs)
    }
    if meta.is_dir() {
        // A link there would be followed out of the worktree: replaced by the directory.
        if std::fs::symlink_metadata(to).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(to).map_err(WorkspaceError::io(to))?;
        }
        std::fs::create_dir_all(to).map_err(WorkspaceError::io(to))?;
        for entry in std::fs::read_dir(from).map_err(WorkspaceError::io(from))? {
            let entry = entry.map_err(WorkspaceError::io(from))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if std::fs::symlink_metadata(to).is_ok_and(|m| !m.is_dir()) {
        std::fs::remove_file(to).map_err(WorkspaceError::io(to))?;
    }
    if meta.file_type().is_symlink() {
        let link = std::fs::read_link(from).map_err(WorkspaceError::io(from))?;
        std::os::unix::fs::symlink(&link, to).map_err(WorkspaceError::io(to))?;
    } else {
        std::fs::copy(from, to).map_err(WorkspaceError::io(to))?;
    }
    Ok(())
}
