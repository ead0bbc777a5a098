//! A task attempt's run in its own worktree: the worktree made and made ready (the plan's
//! `copy`, then its `setup` commands) before the session starts, and what the session left
//! committed after it, as the repository's author, with a message made from the task's title
//! and the agent's answer.

use std::time::Duration;

use super::workspace::{Ended, Start, Work, blocking, failed};
use crate::engine::runner::{Outcome, Setup};
use crate::engine::shell;
use crate::workspace::Author;
use crate::workspace::{SetupMarks, Workspace};

/// How long one `setup` command may run.
const SETUP_LIMIT: Duration = Duration::from_secs(30 * 60);
/// The longest answer quoted in a commit message.
const ANSWER_MAX: usize = 4000;

/// A task attempt's worktree and what is done around its session.
pub(in crate::engine) struct TaskTree {
    pub(super) workspace: Workspace,
    /// The plan's key (names its branches).
    pub(super) plan: String,
    pub(super) task: String,
    pub(super) attempt: u32,
    /// The task's title, the subject of its commit.
    pub(super) title: String,
    /// The agent that runs it, named in the commit.
    pub(super) agent: String,
    pub(super) setup: Vec<String>,
    pub(super) copy: Vec<String>,
    /// It continues the work the earlier attempt committed on the task's branch (that
    /// attempt was stopped over budget) instead of starting from the integration branch.
    pub(super) continues: bool,
    /// Set by the engine before it stops the session over budget: what was done so far is
    /// committed with this said in the message.
    pub(super) stop_note: StopNote,
}

/// Why the engine stops a run and keeps its work (over budget), once it does.
pub(in crate::engine) type StopNote = std::sync::Arc<std::sync::OnceLock<String>>;

/// Runs the session in the attempt's worktree and keeps what it left.
pub(super) async fn in_worktree(tree: TaskTree, start: Start) -> Ended {
    let run = match start {
        Start::Run(runner, mut job, mut stop) => {
            let made = tokio::select! {
                made = make_ready(&tree) => made,
                _ = &mut stop => return Ended { outcome: Outcome::Stopped, work: Work::default() },
            };
            match made {
                Ok(path) => job.directory = path,
                Err(error) => return failed(error),
            }
            job.setup = Setup {
                plan: tree.plan.clone(),
                commands: tree.setup.clone(),
                copy: tree.copy.clone(),
            };
            runner.run(*job, stop)
        }
        Start::Resumed(future) => future,
    };
    let outcome = run.await;
    let answer = match (&outcome, tree.stop_note.get()) {
        (Outcome::Completed { result, .. }, _) => result.clone(),
        // Stopped over budget: the work so far is kept on the task's branch.
        (Outcome::Stopped, Some(note)) => Some(format!("Stopped {note}: the work so far.")),
        _ => {
            return Ended {
                outcome,
                work: Work::default(),
            };
        }
    };
    let message = commit_message(&tree, tree.workspace.author(), answer.as_deref());
    let TaskTree {
        workspace,
        plan,
        task,
        attempt,
        ..
    } = tree;
    let dir = workspace.task_path(&plan, &task, attempt);
    let kept = blocking(move || {
        let commit = workspace.commit_all(&dir, &message)?;
        let files = workspace.changed_files(&dir)?;
        Ok(Work { files, commit })
    })
    .await;
    match kept {
        Ok(work) => Ended { outcome, work },
        Err(e) => failed(format!(
            "the session finished but its work could not be committed: {e}"
        )),
    }
}

/// The attempt's worktree made, the plan's `copy` paths copied in and its `setup` commands
/// run there, in order: its path, or why the attempt fails.
async fn make_ready(tree: &TaskTree) -> Result<std::path::PathBuf, String> {
    let (workspace, plan, task, copy) = (
        tree.workspace.clone(),
        tree.plan.clone(),
        tree.task.clone(),
        tree.copy.clone(),
    );
    let attempt = tree.attempt;
    let continues = tree.continues;
    let path = blocking(move || {
        let made = match continues {
            true => workspace.continue_worktree(&plan, &task, attempt)?,
            false => workspace.create_worktree(&plan, &task, attempt)?,
        };
        workspace.copy_ignored(&made.path, &copy)?;
        Ok(made.path)
    })
    .await
    .map_err(|e| format!("cannot make the task's worktree ready: {e}"))?;
    let env = [
        ("OCIO_PLAN", tree.plan.clone()),
        ("OCIO_TASK", tree.task.clone()),
        ("OCIO_ATTEMPT", tree.attempt.to_string()),
        ("OCIO_REPO", tree.workspace.repo().display().to_string()),
        ("OCIO_WORKTREE", path.display().to_string()),
    ];
    if !tree.setup.is_empty() {
        let marks = setup_marks(tree, &path).await?;
        for (index, command) in tree.setup.iter().enumerate() {
            if finished(&marks, index).await {
                continue;
            }
            let wrapped = marks
                .wrapped(index, command)
                .map_err(|e| format!("cannot write the setup's command: {e}"))?;
            let ran = shell::run(&wrapped, &path, &env, SETUP_LIMIT, None).await;
            // Its shell takes it away when the command ends; not when cut short at its limit.
            let _ = std::fs::remove_file(marks.pid());
            if !ran.passed() {
                return Err(format!("setup {}", ran.report(command)));
            }
        }
        // What setup changes in tracked files would be committed as the task's work.
        let (workspace, dir) = (tree.workspace.clone(), path.clone());
        let changed = blocking(move || workspace.tracked_changes(&dir)).await?;
        if !changed.is_empty() {
            return Err(format!(
                "setup changed tracked files, which would be committed with the task's work: {}\nhint: make setup leave them as they are (e.g. `npm ci` rather than `npm install`), or commit what it changes in the repository first",
                changed.join(", ")
            ));
        }
    }
    Ok(path)
}

/// How often a setup left running by the last ocio is looked at while it is waited for.
const LEFT_SETUP_POLL: Duration = Duration::from_millis(500);

/// The marks of the setup of the worktree at `path` (`workspace::SetupMarks`). A setup a
/// killed ocio left running in an earlier attempt's worktree was stopped as that worktree went
/// (the task's branch is checked out in one worktree at a time).
async fn setup_marks(tree: &TaskTree, path: &std::path::Path) -> Result<SetupMarks, String> {
    let (workspace, path) = (tree.workspace.clone(), path.to_path_buf());
    blocking(move || workspace.setup_marks(&path))
        .await
        .map_err(|e| format!("cannot find the task's worktree's git directory: {e}"))
}

/// Whether setup command `index` finished, once a run of it the last ocio left going in this
/// worktree (its shell still alive) has ended.
async fn finished(marks: &SetupMarks, index: usize) -> bool {
    let deadline = tokio::time::Instant::now() + SETUP_LIMIT;
    while tokio::time::Instant::now() < deadline && marks.left_running().is_some() {
        tokio::time::sleep(LEFT_SETUP_POLL).await;
    }
    marks.finished(index)
}

/// The task's title, the agent's answer, and trailers naming the task, the agent and (when
/// the commit is the repository author's) ocio.
pub(super) fn commit_message(tree: &TaskTree, author: &Author, answer: Option<&str>) -> String {
    let mut message = tree.title.trim().to_string();
    if let Some(answer) = answer.map(str::trim).filter(|a| !a.is_empty()) {
        message.push_str("\n\n");
        message.push_str(&crate::text::clip(answer, ANSWER_MAX));
    }
    message.push_str(&format!(
        "\n\nOcio-Task: {}/{} (attempt {})\nOcio-Agent: {}",
        tree.plan, tree.task, tree.attempt, tree.agent
    ));
    if !author.is_ocio() {
        let ocio = Author::ocio();
        message.push_str(&format!("\nCo-authored-by: {} <{}>", ocio.name, ocio.email));
    }
    message
}
