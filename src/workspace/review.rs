//! A plan's integration branch against its base, for the operator's review: commits ahead and
//! behind, the files changed (renames and deletions included) with their line counts and
//! blobs, and the combined diff, cut at a size. Read-only.

use std::collections::HashMap;

use super::git::Git;
use super::{Result, Workspace};
use crate::domain::review::{BranchReview, ReviewFile};

impl Workspace {
    /// `integration` (a branch) against `base` (a branch, tag or commit; `None`: the
    /// repository's HEAD), the diff cut after `cap` bytes (0: no diff is made at all). Files come without tasks and marks:
    /// the caller knows those.
    pub(crate) fn review(
        &self,
        integration: &str,
        base: Option<&str>,
        cap: usize,
    ) -> Result<BranchReview> {
        let _guard = self.guard();
        let git = &self.git;
        let repo = &git.repo;
        let base_name = base.unwrap_or("HEAD");
        let base_commit = self.resolve_base(base)?;
        let tip = format!("refs/heads/{integration}");
        if git.commit_of(repo, &tip)?.is_none() {
            return Err(super::WorkspaceError::NoBranchToReview {
                repo: repo.clone(),
                branch: integration.to_string(),
            });
        }
        let range = format!("{base_commit}...{tip}");
        let counts = git.run(repo, &["rev-list", "--left-right", "--count", &range])?;
        let mut counts = counts.split_whitespace().map(|n| n.parse().unwrap_or(0));
        let (behind, ahead) = (counts.next().unwrap_or(0), counts.next().unwrap_or(0));
        let mut files = name_status(git, &range)?;
        let numbers = numstat(git, &range)?;
        let blobs = blobs(git, &tip)?;
        for file in &mut files {
            if let Some((added, removed)) = numbers.get(&file.path) {
                (file.added, file.removed) = (*added, *removed);
            }
            file.blob = blobs.get(&file.path).cloned();
        }
        let (diff, diff_cut) = match cap {
            0 => (String::new(), None),
            _ => cut(git.run(repo, &["diff", "--no-color", "-M", &range])?, cap),
        };
        Ok(BranchReview {
            integration: integration.to_string(),
            base: base_name.to_string(),
            base_commit,
            ahead,
            behind,
            files,
            diff,
            diff_cut,
        })
    }
}

/// `git diff --raw` over `range`: each file's status letter, path, former path and what
/// became of its mode.
fn name_status(git: &Git, range: &str) -> Result<Vec<ReviewFile>> {
    let args = ["diff", "--raw", "-M", "-z", range];
    let fields = git.paths(&git.repo, &args)?;
    let mut fields = fields.into_iter();
    let mut files = Vec::new();
    // `:<old mode> <new mode> <old blob> <new blob> <status>`, then the path(s).
    while let Some(meta) = fields.next() {
        let meta: Vec<&str> = meta.trim_start_matches(':').split_whitespace().collect();
        let status = meta.get(4).and_then(|s| s.chars().next()).unwrap_or('M');
        let (from, path) = if matches!(status, 'R' | 'C') {
            (fields.next(), fields.next())
        } else {
            (None, fields.next())
        };
        let Some(path) = path else { break };
        let (old, new) = (meta.first().copied(), meta.get(1).copied());
        files.push(ReviewFile {
            status,
            path,
            from,
            mode: old.zip(new).and_then(|(old, new)| mode_change(old, new)),
            added: None,
            removed: None,
            blob: None,
            tasks: Vec::new(),
            reviewed: Default::default(),
        });
    }
    Ok(files)
}

/// What became of a file's mode, from git's `old` and `new` modes (`000000`: none, the file
/// was added or deleted), when a person would want to know.
fn mode_change(old: &str, new: &str) -> Option<String> {
    let kind = |mode: &str| match mode {
        "100755" => Some("executable"),
        "120000" => Some("a symlink"),
        "160000" => Some("a submodule"),
        _ => None,
    };
    match (old, new) {
        _ if old == new => None,
        (_, "000000") => None,
        ("000000", new) => kind(new).map(str::to_string),
        ("100755", "100644") => Some("no longer executable".into()),
        (_, new) => match kind(new) {
            Some(kind) => Some(format!("now {kind}")),
            None => Some(format!("mode {old} -> {new}")),
        },
    }
}

type Counts = (Option<u64>, Option<u64>);

/// `git diff --numstat` over `range`: lines added and removed by (new) path; binary files
/// have no counts.
fn numstat(git: &Git, range: &str) -> Result<HashMap<String, Counts>> {
    let output = Git::output(&git.repo, &["diff", "--numstat", "-M", "-z", range])?;
    if !output.status.success() {
        let args = ["diff", "--numstat", "-M", "-z", range];
        return Err(git.failed(&git.repo, &args, &output));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split('\0');
    let mut found = HashMap::new();
    while let Some(record) = fields.next() {
        let mut parts = record.splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // A rename's record ends at its counts; its old and new paths follow.
        let path = if path.is_empty() {
            let _from = fields.next();
            fields.next().unwrap_or_default().to_string()
        } else {
            path.to_string()
        };
        found.insert(path, (added.parse().ok(), removed.parse().ok()));
    }
    Ok(found)
}

/// Every file's blob on `tip`, by path.
fn blobs(git: &Git, tip: &str) -> Result<HashMap<String, String>> {
    let output = Git::output(&git.repo, &["ls-tree", "-r", "-z", tip])?;
    if !output.status.success() {
        return Err(git.failed(&git.repo, &["ls-tree", "-r", "-z", tip], &output));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .split('\0')
        .filter_map(|entry| {
            let (meta, path) = entry.split_once('\t')?;
            let blob = meta.split_whitespace().nth(2)?;
            Some((path.to_string(), blob.to_string()))
        })
        .collect())
}

/// The diff, and its whole size when it is longer than `cap` bytes (then cut at a line's end
/// where one is near, with a last line saying so).
fn cut(text: String, cap: usize) -> (String, Option<u64>) {
    if text.len() <= cap {
        return (text, None);
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(end, |n| n + 1);
    let mut shown = text[..end].to_string();
    if !shown.ends_with('\n') {
        shown.push('\n');
    }
    shown.push_str(&format!(
        "… diff cut here: {} of {} bytes shown\n",
        end,
        text.len()
    ));
    (shown, Some(text.len() as u64))
}
