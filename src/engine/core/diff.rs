//! A session's changes as a unified diff, from git: a running session's worktree against its
//! last commit (with the new files it has not added), or the commit an ended session's task
//! left on its branch. Git runs on a blocking thread; the answer goes straight to the caller.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::sync::oneshot;

use super::Core;
use crate::domain::SessionId;
use crate::engine::EngineError;

/// Longest diff handed to a front end.
const MOST: usize = 512 * 1024;

impl Core {
    pub(super) fn diff(
        &self,
        session: SessionId,
        reply: oneshot::Sender<Result<String, EngineError>>,
    ) {
        let source = if let Some(dir) = self
            .running
            .get(&session)
            .and_then(|r| r.overlap_dir.clone())
        {
            Some(Source::Worktree(dir))
        } else {
            self.ended_task(session).and_then(|(task, plan)| {
                let commit = self.contexts.get(&task)?.commit.clone()?;
                let repo = self.plans.get(&plan)?.plan.repo.clone();
                Some(Source::Commit { repo, commit })
            })
        };
        let Some(source) = source else {
            let _ = reply.send(Ok(String::new()));
            return;
        };
        tokio::spawn(async move {
            let result = tokio::task::spawn_blocking(move || source.diff())
                .await
                .unwrap_or_else(|e| Err(format!("the diff did not finish: {e}")))
                .map(|text| crate::text::clip(&text, MOST))
                .map_err(EngineError::Diff);
            let _ = reply.send(result);
        });
    }

    /// The task and plan of a session this engine knows (running or recently ended).
    fn ended_task(
        &self,
        session: SessionId,
    ) -> Option<(crate::domain::TaskId, crate::domain::PlanId)> {
        let found = self.observed.session(session)?;
        Some((found.task?, found.plan?))
    }
}

enum Source {
    Worktree(PathBuf),
    Commit { repo: PathBuf, commit: String },
}

impl Source {
    fn diff(&self) -> Result<String, String> {
        match self {
            Source::Worktree(dir) => {
                let mut text = git(dir, &["diff", "--no-color", "HEAD"])?;
                let untracked = git(dir, &["ls-files", "--others", "--exclude-standard"])?;
                for file in untracked.lines().filter(|l| !l.is_empty()) {
                    // `--no-index` exits 1 when the files differ, which they do.
                    text.push_str(&git_any(
                        dir,
                        &["diff", "--no-color", "--no-index", "--", "/dev/null", file],
                    )?);
                }
                Ok(text)
            }
            Source::Commit { repo, commit } => git(
                repo,
                &[
                    "show",
                    "--no-color",
                    "--format=commit %H%n%n    %s%n",
                    commit,
                ],
            ),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = run(dir, args)?;
    if !out.status.success() {
        return Err(format!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Like [`git`], for commands whose exit status says something other than failure.
fn git_any(dir: &Path, args: &[&str]) -> Result<String, String> {
    Ok(String::from_utf8_lossy(&run(dir, args)?.stdout).into_owned())
}

fn run(dir: &Path, args: &[&str]) -> Result<std::process::Output, String> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run git in {}: {e}", dir.display()))
}
