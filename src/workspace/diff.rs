//! Changes as unified diffs, for the operator: a worktree's work in progress against its last
//! commit (with the new files it has not added), or what one commit changed. Read-only.

use std::path::{Path, PathBuf};

use super::WorkspaceError;
use super::git::Git;

/// The git repository around `dir` (the nearest directory upwards holding `.git`).
pub(crate) fn enclosing_repository(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `dir`'s changes against its `HEAD`, new untracked files included (as added files).
pub(crate) fn worktree_diff(dir: &Path) -> Result<String, WorkspaceError> {
    let git = Git::reader(dir);
    let mut text = git.run(dir, &["diff", "--no-color", "HEAD"])?;
    let untracked = git.run(dir, &["ls-files", "--others", "--exclude-standard"])?;
    for file in untracked.lines().filter(|l| !l.is_empty()) {
        // `--no-index` exits 1 when the files differ, which they always do here.
        let args = ["diff", "--no-color", "--no-index", "--", "/dev/null", file];
        let output = Git::output(dir, &args)?;
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(String::from_utf8_lossy(&output.stdout).trim_end());
    }
    Ok(text)
}

/// What `commit` changed, with its hash and subject first.
pub(crate) fn commit_diff(repo: &Path, commit: &str) -> Result<String, WorkspaceError> {
    let git = Git::reader(repo);
    git.run(
        repo,
        &[
            "show",
            "--no-color",
            "--format=commit %H%n%n    %s%n",
            commit,
        ],
    )
}
