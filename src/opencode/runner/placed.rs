//! Where a run's session works: in ocio's own worktree when the server shares ocio's disk, or
//! on a build box ([`BoxWorkspace`]): the task's tree carried there first, the work brought
//! back into ocio's worktree after (uncommitted, so the engine commits and merges it as it
//! does any session's work).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::OpencodeRunner;
use crate::config::WorkspaceMode;
use crate::domain::{RemoteSession, SessionId, Usage};
use crate::engine::runner::{Changed, Job, Outcome, Reporter};
use crate::engine::view::Activity;
use crate::opencode::boxes::{BoxError, BoxWorkspace, SetupFor};
use crate::opencode::client::ClientError;

/// Where an agent's sessions work.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    mode: WorkspaceMode,
    boxes: Arc<BoxWorkspace>,
    /// What the server last answered (`auto`) about seeing ocio's disk: a change is logged.
    shares: Arc<Mutex<Option<bool>>>,
}

impl Placement {
    pub(crate) fn new(mode: WorkspaceMode, boxes: Arc<BoxWorkspace>) -> Self {
        Self {
            mode,
            boxes,
            shares: Arc::new(Mutex::new(None)),
        }
    }

    /// Whether its sessions are known to work away from ocio's disk: set so, or the server
    /// said last that it does not see ocio's files (`auto`).
    pub(crate) fn works_away(&self) -> bool {
        match self.mode {
            WorkspaceMode::Remote => true,
            WorkspaceMode::Shared => false,
            WorkspaceMode::Auto => {
                *self.shares.lock().unwrap_or_else(PoisonError::into_inner) == Some(false)
            }
        }
    }
}

impl OpencodeRunner {
    /// What `session`'s remote session changed since its prompt (`GET /session/{id}/diff`
    /// from the prompt's message: OpenCode's own snapshots of where it works, so edits made
    /// by shell commands and commits count too).
    pub(super) async fn changes_since_prompt(
        self,
        session: SessionId,
        remote: RemoteSession,
    ) -> Result<Vec<Changed>, String> {
        let dir = remote.directory.to_string_lossy();
        let since = super::prompt::prompt_message_id(session);
        let diff = self
            .client
            .session_diff(&dir, &remote.session_id, Some(&since))
            .await
            .map_err(|e| e.to_string())?;
        Ok(diff
            .into_iter()
            .map(|d| Changed {
                file: d.file,
                patch: d.patch,
            })
            .collect())
    }

    /// A new run, on the box when the agent's sessions work there.
    pub(super) async fn run_placed(self, mut job: Job, stop: oneshot::Receiver<()>) -> Outcome {
        let boxes = match self.box_for(&job.directory).await {
            Ok(None) => return self.drive(job, stop).await,
            Ok(Some(boxes)) => boxes,
            Err(outcome) => return outcome,
        };
        let local = job.directory.clone();
        let dir = match boxes.prepare(&local).await {
            Ok(dir) => dir,
            Err(e) => return self.not_carried("carry the task's tree to", &e),
        };
        tracing::info!(session = %job.session, server = self.client.base_url(), %dir, "the task's tree is on its build box");
        let who = SetupFor {
            plan: &job.setup.plan,
            task: &job.task_key,
            attempt: job.attempt,
        };
        if let Err(e) = boxes.set_up(&local, &dir, &job.setup, &who).await {
            if !e.unreachable() {
                boxes.discard(&local, &dir).await;
            }
            return self.not_set_up(&e);
        }
        job.directory = PathBuf::from(&dir);
        let (stop, asked) = told(stop);
        let told = Told::of(&job);
        let outcome = self.clone().drive(job, stop).await;
        self.brought_back(&boxes, &local, &dir, outcome, &asked, told)
            .await
    }

    /// A re-attached run whose session works on a box (its recorded directory is not ocio's
    /// worktree): followed, then its work brought back as for a new run.
    pub(super) async fn resume_placed(
        self,
        job: Job,
        remote: RemoteSession,
        stop: oneshot::Receiver<()>,
    ) -> Outcome {
        let local = job.directory.clone();
        let dir = remote.directory.to_string_lossy().into_owned();
        let on_box = remote.directory != local && self.placement.mode != WorkspaceMode::Shared;
        let (stop, asked) = told(stop);
        let told = Told::of(&job);
        let outcome = self.clone().follow_resumed(job, remote, stop).await;
        if !on_box {
            return outcome;
        }
        let boxes = self.placement.boxes.clone();
        self.brought_back(&boxes, &local, &dir, outcome, &asked, told)
            .await
    }

    /// The box a job's session works on; `None` for ocio's own directory; an outcome when it
    /// cannot run here at all. `shared` is taken at its word (a server that does not see the
    /// directory fails the run with a diagnosis saying so); `auto` asks the server, for each
    /// task, whether it sees the task's directory: one request, and the answer is never stale
    /// (a mount that came or went on the box, or repositories of which it sees only some).
    async fn box_for(&self, directory: &Path) -> Result<Option<Arc<BoxWorkspace>>, Outcome> {
        let placement = &self.placement;
        match placement.mode {
            WorkspaceMode::Shared => return Ok(None),
            WorkspaceMode::Remote => {
                return Ok(Some(placement.boxes.clone()));
            }
            WorkspaceMode::Auto => {}
        }
        // A directory missing here says nothing about the server: the run goes on and its
        // failure is diagnosed.
        if !directory.is_dir() {
            return Ok(None);
        }
        let dir = directory.to_string_lossy().into_owned();
        let shares = self.client.has_directory(&dir).await;
        if let Ok(now) = shares {
            let before = placement
                .shares
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replace(now);
            match before {
                None if !now => tracing::info!(
                    server = self.client.base_url(),
                    "the server does not see ocio's files: its sessions work on its own machine (workspace \"remote\")"
                ),
                Some(before) if before != now => {
                    tracing::debug!(server = self.client.base_url(), sees = now, %dir, "the server's view of ocio's files changed")
                }
                _ => {}
            }
        }
        match shares {
            // Not an answer (the server is restarting, or its breaker is open): the run is
            // lost, not failed, and the question is asked again.
            Err(e) if e.is_transient() || matches!(e, ClientError::CircuitOpen { .. }) => {
                Err(super::lost(&e))
            }
            Err(e) => Err(self.failed(&dir, &e, true).await),
            Ok(true) => Ok(None),
            Ok(false) if !is_repository(directory).await => Err(Outcome::Lost {
                // Not the task's failure: the engine now knows this agent works away and
                // gives the task to one on ocio's disk (or it waits for one).
                error: format!(
                    "{} does not see {dir}, which is no git repository, so its tree cannot be carried there: the task runs on an agent that shares ocio's disk",
                    self.client.base_url()
                ),
                unreachable: false,
            }),
            Ok(false) => Ok(Some(placement.boxes.clone())),
        }
    }

    /// After the session: its work brought back into `local`. A session that completed
    /// without its work coming back did not complete. Work that stays on the box is told in
    /// the task's transcript, with why.
    async fn brought_back(
        &self,
        boxes: &BoxWorkspace,
        local: &Path,
        dir: &str,
        outcome: Outcome,
        asked: &CancellationToken,
        told: Told,
    ) -> Outcome {
        let (done, needed) = match &outcome {
            Outcome::Completed { .. } => (true, true),
            // Stopped by the engine (cancel, time limit, budget): its session is aborted and its
            // work kept (a stop's note says so), as a local session's.
            Outcome::Stopped if asked.is_cancelled() => (true, false),
            // ocio is stopping and leaves the session running: nothing is taken from under it;
            // the next start follows it and brings its work back when it ends.
            Outcome::Stopped => return outcome,
            // What it did is in ocio's worktree as a local session's would be (for a look, or
            // the cleanup policy), and the box's worktree goes.
            Outcome::Failed { .. } | Outcome::Lost { .. } => (true, false),
        };
        match self
            .bring_back_patiently(boxes, local, dir, done, asked)
            .await
        {
            Ok(returned) => {
                tracing::info!(server = self.client.base_url(), %dir, ?returned, "brought a session's work back from its build box");
                // Work that is not the task's (a failed or lost attempt's) is kept: said where,
                // or nothing pointed to it (hand trial).
                if matches!(outcome, Outcome::Failed { .. } | Outcome::Lost { .. }) {
                    let kept = crate::workspace::carry::returned_ref(
                        &crate::workspace::carry::box_name(local),
                    );
                    told.note(format!(
                        "what it did on its build box came back: in {} until a later attempt replaces that worktree, and under {kept} in the repository",
                        local.display()
                    ))
                    .await;
                }
                outcome
            }
            Err(e) if !needed || asked.is_cancelled() => {
                tracing::warn!(
                    server = self.client.base_url(), %dir, error = %e,
                    "cannot bring an unfinished session's work back from its build box: it stays in the box's worktree (kept in the box's mirror under refs/ocio/abandoned/ once swept)"
                );
                told.note(format!(
                    "its work did not come back from its build box at {} (it stays in {dir} there, kept in the box's mirror under refs/ocio/abandoned/ once swept): {e}",
                    self.client.base_url()
                ))
                .await;
                // A completed session whose work did not come back before the engine asked
                // for the stop: stopped, as the engine asked, not failed.
                match needed {
                    true => Outcome::Stopped,
                    false => outcome,
                }
            }
            Err(e) => {
                let failed = self.not_carried("bring the session's work back from", &e);
                with_usage(failed, &outcome)
            }
        }
    }

    /// The work brought back, tried again for a while (75 s) when the box cannot be reached
    /// (its server restarting): the work waits there. Tried again every 2 s, or when the
    /// server's circuit breaker lets a call through, so the work comes back soon after the
    /// server does. Not once the engine has `asked` for the run's stop (a cancel, time limit
    /// or budget, which must not wait for a box that is down): one try, and a stop asked while
    /// it waits ends the wait.
    async fn bring_back_patiently(
        &self,
        boxes: &BoxWorkspace,
        local: &Path,
        dir: &str,
        done: bool,
        asked: &CancellationToken,
    ) -> Result<crate::opencode::boxes::Returned, BoxError> {
        const PATIENCE: Duration = Duration::from_secs(75);
        let until = tokio::time::Instant::now() + PATIENCE;
        let mut said = false;
        loop {
            match boxes.bring_back(local, dir, done).await {
                Err(e)
                    if e.unreachable()
                        && !asked.is_cancelled()
                        && tokio::time::Instant::now() < until =>
                {
                    if !said {
                        tracing::info!(server = self.client.base_url(), %dir, error = %e, "the build box cannot be reached; trying again for a while to bring the work back");
                        said = true;
                    }
                    let pause = match &e {
                        BoxError::Server(ClientError::CircuitOpen { retry_in, .. }) => {
                            (*retry_in).clamp(Duration::from_millis(100), Duration::from_secs(2))
                        }
                        _ => Duration::from_secs(2),
                    };
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = asked.cancelled() => return Err(e),
                    }
                }
                result => return result,
            }
        }
    }

    /// Why the tree could not be carried: the run lost with an unreachable server, else
    /// failed (the agent's fault: another may do better).
    /// The plan's setup failed on the box: the task's failure, as in ocio's worktree.
    fn not_set_up(&self, e: &BoxError) -> Outcome {
        match e {
            BoxError::Setup(_) => Outcome::Failed {
                error: e.to_string(),
                agent_fault: false,
                usage: Usage::default(),
            },
            _ => self.not_carried("run the plan's setup on", e),
        }
    }

    fn not_carried(&self, what: &str, e: &BoxError) -> Outcome {
        let error = format!(
            "cannot {what} the build box at {}: {e}",
            self.client.base_url()
        );
        match e.unreachable() {
            true => Outcome::Lost {
                error,
                unreachable: true,
            },
            // Ocio's own git failing, or a tree that cannot travel, is not the agent's fault.
            false => Outcome::Failed {
                error,
                agent_fault: !matches!(e, BoxError::Local(_) | BoxError::Refused(_)),
                usage: Usage::default(),
            },
        }
    }
}

/// Where a run tells its task's transcript what became of its work on the box.
struct Told {
    reporter: Reporter,
    session: SessionId,
}

impl Told {
    fn of(job: &Job) -> Self {
        Self {
            reporter: job.reporter.clone(),
            session: job.session,
        }
    }

    async fn note(&self, text: String) {
        let note = Activity::Note { text };
        self.reporter.lasting(self.session, note).await;
    }
}

/// Whether `directory` is in a git repository (its tree can be carried to a box).
async fn is_repository(directory: &Path) -> bool {
    let directory = directory.to_path_buf();
    tokio::task::spawn_blocking(move || crate::workspace::carry::is_repository(&directory))
        .await
        .unwrap_or(false)
}

/// `stop` passed on, and a token cancelled when it fires (the engine asked for the stop)
/// rather than being dropped (ocio stopping, which leaves the session running).
fn told(stop: oneshot::Receiver<()>) -> (oneshot::Receiver<()>, CancellationToken) {
    let (tell, told) = oneshot::channel();
    let asked = CancellationToken::new();
    let flag = asked.clone();
    tokio::spawn(async move {
        if stop.await.is_ok() {
            flag.cancel();
            let _ = tell.send(());
        }
    });
    (told, asked)
}

/// `failed`, with what the session `ended` as spent (it is spent even if its work is lost).
fn with_usage(failed: Outcome, ended: &Outcome) -> Outcome {
    match (failed, ended) {
        (
            Outcome::Failed {
                error, agent_fault, ..
            },
            Outcome::Completed { usage, .. },
        ) => Outcome::Failed {
            error,
            agent_fault,
            usage: *usage,
        },
        (failed, _) => failed,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashSet;

    use axum::Router;
    use axum::extract::State;
    use axum::http::{StatusCode, Uri};
    use axum::routing::get;

    use super::*;
    use crate::opencode::client::Client;

    type Seen = Arc<Mutex<HashSet<String>>>;

    /// A server that sees the directories in its set and its own (`/srv`, as `GET /path`
    /// says), answering `GET /file` as OpenCode does for one it does not have (500; checked
    /// against a real server by `far_box`).
    async fn server(seen: Seen) -> String {
        async fn list(State(seen): State<Seen>, uri: Uri) -> (StatusCode, &'static str) {
            let url = reqwest::Url::parse(&format!("http://server{uri}")).unwrap();
            let dir = url
                .query_pairs()
                .find(|(key, _)| key == "directory")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            match dir == "/srv" || seen.lock().unwrap().contains(&dir) {
                true => (StatusCode::OK, "[]"),
                false => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"name":"UnknownError"}"#,
                ),
            }
        }
        let paths =
            r#"{"home":"/root","state":"/s","config":"/c","worktree":"/","directory":"/srv"}"#;
        let app = Router::new()
            .route("/file", get(list))
            .route(
                "/path",
                get(move || async move { ([("content-type", "application/json")], paths) }),
            )
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn a_tree_that_cannot_travel_fails_the_task_saying_why_not_the_agent() {
        let client = Client::new("http://127.0.0.1:9", None, Default::default()).unwrap();
        let runner = OpencodeRunner::placed(client, None, None, WorkspaceMode::Remote, None);
        let refused = BoxError::Refused("the task's tree has Git LFS files: big.bin".into());
        match runner.not_carried("carry the task's tree to", &refused) {
            Outcome::Failed {
                error, agent_fault, ..
            } => {
                assert!(!agent_fault, "another agent would do no better");
                assert!(error.contains("big.bin"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn auto_asks_for_each_task_so_a_box_whose_view_changes_is_followed() {
        let seen: Seen = Arc::default();
        let url = server(seen.clone()).await;
        let client = Client::new(&url, None, Default::default()).unwrap();
        let runner = OpencodeRunner::placed(client, None, None, WorkspaceMode::Auto, None);
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        for d in [&one, &two] {
            std::fs::create_dir(d).unwrap();
            let init = std::process::Command::new("git")
                .args(["init", "-q"])
                .current_dir(d)
                .status()
                .unwrap();
            assert!(init.success());
        }
        let shown = |p: &Path| p.to_string_lossy().into_owned();
        seen.lock().unwrap().insert(shown(&one));
        assert!(
            runner.box_for(&one).await.unwrap().is_none(),
            "seen: works in place"
        );
        assert!(
            runner.box_for(&two).await.unwrap().is_some(),
            "a directory it does not see (another repository) goes to the box"
        );
        // The box's mount went away: the next task there is carried, not failed.
        seen.lock().unwrap().clear();
        assert!(runner.box_for(&one).await.unwrap().is_some());
        // And it came back.
        seen.lock().unwrap().insert(shown(&two));
        assert!(runner.box_for(&two).await.unwrap().is_none());
    }

    /// A directory that is no git repository on a server that does not see it: its tree
    /// cannot be carried, so the attempt is lost (spending no retry) and the runner says it
    /// works away, which routing reads to give such tasks to an agent on ocio's disk (the
    /// task went to the box and failed there for good).
    #[tokio::test]
    async fn a_directory_outside_git_is_not_sent_to_a_box_that_does_not_see_it() {
        let seen: Seen = Arc::default();
        let url = server(seen.clone()).await;
        let client = Client::new(&url, None, Default::default()).unwrap();
        let runner = OpencodeRunner::placed(client, None, None, WorkspaceMode::Auto, None);
        assert!(!runner.placement.works_away(), "not known yet");
        let plain = tempfile::tempdir().unwrap();
        match runner.box_for(plain.path()).await {
            Err(Outcome::Lost { error, unreachable }) => {
                assert!(!unreachable);
                assert!(error.contains("no git repository"), "{error}");
            }
            other => panic!("{:?}", other.map(|b| b.is_some())),
        }
        assert!(runner.placement.works_away());
        // Seen, it works in place.
        seen.lock()
            .unwrap()
            .insert(plain.path().to_string_lossy().into_owned());
        assert!(runner.box_for(plain.path()).await.unwrap().is_none());
        assert!(!runner.placement.works_away());
    }
}
