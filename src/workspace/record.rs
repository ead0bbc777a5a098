//! What git and ocio know about existing worktrees: git's list (`git worktree list
//! --porcelain`) and ocio's stamp on each task worktree (attempt, base commit, merged commit),
//! kept in the worktree's private git directory so the session never sees it and it goes away
//! with the worktree.

use std::path::{Path, PathBuf};

use super::git::{Git, WorkspaceError};

/// File name of ocio's stamp inside a worktree's git directory (`.git/worktrees/<name>/`).
const STAMP_FILE: &str = "ocio-worktree";

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    pub(super) path: PathBuf,
    /// `refs/heads/...` shortened to the branch name; `None` when detached or bare.
    pub(super) branch: Option<String>,
}

/// Every worktree of the repository, the main checkout first.
pub(super) fn list(git: &Git) -> Result<Vec<Listed>, WorkspaceError> {
    let text = git.run(&git.repo, &["worktree", "list", "--porcelain"])?;
    Ok(parse_list(&text))
}

/// The worktrees in the directories right under `dir` (a task's attempts), without asking git
/// for its whole list: what it costs does not grow with the repository's other worktrees. A
/// directory counts when its `.git` file points at git's record of it, which still exists.
pub(super) fn under(dir: &Path) -> Result<Vec<Listed>, WorkspaceError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(WorkspaceError::io(dir)(err)),
    };
    let mut listed = Vec::new();
    for entry in entries {
        let path = entry.map_err(WorkspaceError::io(dir))?.path();
        if !registered(&path) {
            continue;
        }
        let head = Git::output(&path, &["symbolic-ref", "-q", "HEAD"])?;
        let head = String::from_utf8_lossy(&head.stdout);
        let branch = head.trim().strip_prefix("refs/heads/").map(str::to_string);
        listed.push(Listed { path, branch });
    }
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listed)
}

/// Whether `path` is a linked worktree git still knows: its `.git` file names a directory
/// (`gitdir: <repo>/.git/worktrees/<name>`, or relative to the worktree) that is there.
/// Reads a file, runs no git.
pub(super) fn registered(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path.join(".git")) else {
        return false;
    };
    text.lines()
        .find_map(|line| line.strip_prefix("gitdir: "))
        .is_some_and(|admin| path.join(admin.trim()).is_dir())
}

fn parse_list(text: &str) -> Vec<Listed> {
    let mut listed = Vec::new();
    let mut current: Option<Listed> = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("worktree ") {
            listed.extend(current.take());
            current = Some(Listed {
                path: PathBuf::from(path),
                branch: None,
            });
        } else if let (Some(entry), Some(branch)) = (current.as_mut(), line.strip_prefix("branch "))
        {
            let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
            entry.branch = Some(branch.to_string());
        }
    }
    listed.extend(current);
    listed
}

/// ocio's record of a task worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) attempt: u32,
    /// The integration commit the worktree was made from.
    pub(super) base: String,
    /// The task branch's commit that was merged into the integration branch, once it was.
    pub(super) merged: Option<String>,
}

impl Stamp {
    fn to_text(&self) -> String {
        let mut text = format!("attempt={}\nbase={}\n", self.attempt, self.base);
        if let Some(merged) = &self.merged {
            text.push_str(&format!("merged={merged}\n"));
        }
        text
    }

    fn from_text(text: &str) -> Option<Self> {
        let mut stamp = Self::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("attempt", value)) => stamp.attempt = value.trim().parse().ok()?,
                Some(("base", value)) => stamp.base = value.trim().to_string(),
                Some(("merged", value)) => stamp.merged = Some(value.trim().to_string()),
                _ => {}
            }
        }
        (!stamp.base.is_empty()).then_some(stamp)
    }

    /// The stamp of the worktree at `path`; `None` when it has none (not made by ocio).
    pub(super) fn read(git: &Git, path: &Path) -> Result<Option<Self>, WorkspaceError> {
        let Some(file) = stamp_path(git, path)? else {
            return Ok(None);
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(Self::from_text(&text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(WorkspaceError::io(&file)(err)),
        }
    }

    pub(super) fn write(&self, git: &Git, path: &Path) -> Result<(), WorkspaceError> {
        let file = stamp_path(git, path)?.ok_or_else(|| WorkspaceError::NotOurs {
            repo: git.repo.clone(),
            path: path.to_path_buf(),
        })?;
        std::fs::write(&file, self.to_text()).map_err(WorkspaceError::io(&file))
    }
}

/// Where the stamp of the worktree at `path` lives; `None` when `path` is not a worktree.
fn stamp_path(git: &Git, path: &Path) -> Result<Option<PathBuf>, WorkspaceError> {
    if !path.is_dir() {
        return Ok(None);
    }
    let output = Git::output(path, &["rev-parse", "--absolute-git-dir"])?;
    if !output.status.success() {
        return Ok(None);
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    // Only linked worktrees have a private directory under `.git/worktrees/`; the main
    // checkout's git directory is shared by every worktree and never stamped.
    let common = git.run(
        path,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    Ok((dir != Path::new(&common)).then(|| dir.join(STAMP_FILE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_lists_paths_and_branches() {
        let text = "worktree /r\nHEAD abc\nbranch refs/heads/main\n\nworktree /w/a\nHEAD def\ndetached\n\nworktree /w/b\nHEAD 123\nbranch refs/heads/ocio/p/b\n";
        let listed = parse_list(text);
        assert_eq!(
            listed,
            [
                Listed {
                    path: "/r".into(),
                    branch: Some("main".into())
                },
                Listed {
                    path: "/w/a".into(),
                    branch: None
                },
                Listed {
                    path: "/w/b".into(),
                    branch: Some("ocio/p/b".into())
                },
            ]
        );
    }

    #[test]
    fn stamps_round_trip() {
        let stamp = Stamp {
            attempt: 3,
            base: "abc".into(),
            merged: Some("def".into()),
        };
        assert_eq!(Stamp::from_text(&stamp.to_text()), Some(stamp));
        assert_eq!(Stamp::from_text("attempt=1\n"), None, "no base: not ours");
    }
}
