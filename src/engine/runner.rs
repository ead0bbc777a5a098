//! The port between the engine and whatever runs a session: a [`Runner`] takes a [`Job`] and
//! reports how it ended. Two implementations: the in-process simulator here, and OpenCode
//! servers (`crate::opencode::runner`, which depends on this module, never the other way).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use super::approval::{Ask, Verdict};
use super::question::QuestionReply;
use super::view::{Activity, Entry};
use crate::domain::{AgentStatus, RemoteSession, SessionId, Usage};

/// Tells the engine where a run lives on a server. The engine records it durably (and a
/// checkpoint) before `remote` returns, so a restarted engine finds the run again instead of
/// starting a second one for the same attempt.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    pub(super) tx: mpsc::Sender<RemoteReport>,
}

/// What a run tells the engine while it goes on.
#[derive(Debug)]
pub(super) enum RemoteReport {
    /// Where the run lives; `durable` fires once that is recorded.
    Remote {
        session: SessionId,
        remote: RemoteSession,
        durable: oneshot::Sender<()>,
    },
    /// The session asks for a permission; `decision` carries the answer.
    Permission {
        session: SessionId,
        ask: Ask,
        decision: oneshot::Sender<Verdict>,
    },
    /// The session asks the operator a question; `reply` carries the answer.
    Question {
        session: SessionId,
        ask: Ask,
        reply: oneshot::Sender<QuestionReply>,
    },
    /// The server no longer has request `request` (answered there, or gone with a restart);
    /// `answered`: the engine had answered it, and the answer was not sent.
    Withdrawn {
        session: SessionId,
        request: String,
        why: String,
        answered: bool,
    },
    /// The session did something (for the transcript and live usage).
    Activity { session: SessionId, entry: Entry },
    /// What a re-attached session did while nobody followed it, read from its server: for
    /// its transcript (parts already stored are replaced, never repeated).
    Backfill {
        session: SessionId,
        entries: Vec<Entry>,
    },
}

#[cfg(test)]
impl Reporter {
    /// A reporter whose reports are read and dropped (a runner's tests without an engine);
    /// within a tokio runtime.
    pub(crate) fn unheard() -> Self {
        let (tx, mut rx) = mpsc::channel(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Self { tx }
    }

    /// A reporter that keeps the transcript entries told to it, live or backfilled (a
    /// runner's tests without an engine); within a tokio runtime.
    pub(crate) fn recording() -> (Self, std::sync::Arc<std::sync::Mutex<Vec<Entry>>>) {
        let (tx, mut rx) = mpsc::channel(64);
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = told.clone();
        tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                let mut kept = kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match report {
                    RemoteReport::Activity { entry, .. } => kept.push(entry),
                    RemoteReport::Backfill { entries, .. } => kept.extend(entries),
                    _ => {}
                }
            }
        });
        (Self { tx }, told)
    }
}

impl Reporter {
    /// `false` when the engine could not record it (it is stopping): do not go on.
    pub(crate) async fn remote(&self, session: SessionId, remote: RemoteSession) -> bool {
        let (durable, done) = oneshot::channel();
        if self
            .tx
            .send(RemoteReport::Remote {
                session,
                remote,
                durable,
            })
            .await
            .is_err()
        {
            return false;
        }
        done.await.is_ok()
    }

    /// Tell the engine what the session is doing. Never waits: when the engine is behind,
    /// the entry is dropped (a later entry of its part, or the final answer, still reaches
    /// the stored transcript; the outcome still counts).
    pub(crate) fn activity(&self, session: SessionId, activity: Activity, part: Option<String>) {
        let entry = Entry {
            at: jiff::Timestamp::now(),
            part,
            activity,
        };
        self.told(session, entry);
    }

    /// [`Reporter::activity`] of an entry stamped by the run (when its part was first told);
    /// `false` when it was dropped.
    pub(crate) fn told(&self, session: SessionId, entry: Entry) -> bool {
        self.tx
            .try_send(RemoteReport::Activity { session, entry })
            .is_ok()
    }

    /// Tell the engine something about the session that must not be dropped (waits for room,
    /// as a backfill; stored at once).
    pub(crate) async fn lasting(&self, session: SessionId, activity: Activity) {
        let entry = Entry {
            at: jiff::Timestamp::now(),
            part: None,
            activity,
        };
        self.backfill(session, vec![entry]).await;
    }

    /// Hand the engine what the session did while nobody followed it (waits for room: a
    /// backfill is not dropped when the engine is behind).
    pub(crate) async fn backfill(&self, session: SessionId, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let _ = self
            .tx
            .send(RemoteReport::Backfill { session, entries })
            .await;
    }

    /// Ask the engine (its policy or the operator) about a permission request. `None` when
    /// the engine is gone or the run is being stopped.
    pub(crate) async fn permission(&self, session: SessionId, ask: Ask) -> Option<Verdict> {
        let (decision, answer) = oneshot::channel();
        self.tx
            .send(RemoteReport::Permission {
                session,
                ask,
                decision,
            })
            .await
            .ok()?;
        answer.await.ok()
    }
}

impl Reporter {
    /// Ask the operator a question for the session (the policy rejects it when nobody answers
    /// in time). `None` when the engine is gone or the run is being stopped.
    pub(crate) async fn question(&self, session: SessionId, ask: Ask) -> Option<QuestionReply> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(RemoteReport::Question {
                session,
                ask,
                reply,
            })
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Tell the engine the server no longer has request `request`, and why; `answered`: the
    /// engine's answer to it was not sent.
    pub(crate) async fn withdrawn(
        &self,
        session: SessionId,
        request: String,
        why: String,
        answered: bool,
    ) {
        let report = RemoteReport::Withdrawn {
            session,
            request,
            why,
            answered,
        };
        let _ = self.tx.send(report).await;
    }
}

/// What the operator tells a running session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Steer {
    /// A follow-up message; its id is chosen once, so sending it again is never a second
    /// message.
    Say {
        text: String,
        id: crate::domain::MessageId,
    },
    /// Stop the step under way and wait for the operator's next message; the task does not
    /// fail.
    Interrupt,
    /// The session stopped by itself at the operator's word (they rejected what it asked):
    /// wait for their next message, as after an interrupt, with nothing to stop.
    Halted,
}

/// The operator's words to one run, as the run receives them. Cloned with its [`Job`]; one
/// receiver behind them all.
#[derive(Debug, Clone)]
pub(crate) struct Steering(std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Steer>>>);

impl Steering {
    /// A sender for the engine and the steering for the run.
    pub(crate) fn channel() -> (mpsc::Sender<Steer>, Self) {
        let (tx, rx) = mpsc::channel(16);
        (tx, Self(std::sync::Arc::new(tokio::sync::Mutex::new(rx))))
    }

    /// A run nobody steers.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self::channel().1
    }

    /// A word already waiting, if any (a run that is about to end takes up what the operator
    /// said meanwhile instead of dropping it).
    pub(crate) fn try_next(&self) -> Option<Steer> {
        self.0.try_lock().ok()?.try_recv().ok()
    }

    /// The next word; pending forever once the engine can send no more.
    pub(crate) async fn next(&self) -> Steer {
        match self.0.lock().await.recv().await {
            Some(steer) => steer,
            None => std::future::pending().await,
        }
    }
}

/// One attempt at one task, as the runner needs it.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) reporter: Reporter,
    pub(crate) session: SessionId,
    /// `plan/task #attempt`, findable in OpenCode's own UI.
    pub(crate) title: String,
    pub(crate) prompt: String,
    pub(crate) task_key: String,
    pub(crate) attempt: u32,
    pub(crate) directory: PathBuf,
    /// The attempt was started before a restart that came before its remote session was
    /// recorded: the runner looks for that session (by its title) and takes it up rather than
    /// making a second one.
    pub(crate) adopt: bool,
    /// The session may ask the operator questions (OpenCode's `question` tool is offered).
    pub(crate) questions: bool,
    /// What the operator tells the run while it goes on.
    pub(crate) steering: Steering,
    /// Re-attached: the operator's last word before the restart, which the run follows as it
    /// would have.
    pub(crate) word: Option<Steer>,
    /// Re-attached: every message the operator sent the session before the restart (the
    /// server's copies of them are theirs, already in the transcript, not the session's text).
    pub(crate) said: Vec<crate::domain::MessageId>,
    /// Re-attached: the text the session was streaming when the last engine stopped, as its
    /// transcript has it (a server keeps a text part empty until it is whole, so the run goes
    /// on from this, not from nothing).
    pub(crate) streamed: Option<Entry>,
    /// The plan's `setup`, which ran in ocio's worktree of the attempt: a runner whose
    /// session works elsewhere (on a build box) runs it there too.
    pub(crate) setup: Setup,
}

/// A plan's `setup` commands for one attempt, with what they are told in their environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Setup {
    /// The plan's key (`OCIO_PLAN`).
    pub(crate) plan: String,
    pub(crate) commands: Vec<String>,
    /// The git-ignored paths the plan's `copy` brought into ocio's worktree (`.env`,
    /// `node_modules`): a box's worktree gets them too, before the commands run.
    pub(crate) copy: Vec<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed {
        result: Option<String>,
        usage: Usage,
    },
    /// `agent_fault`: the agent (not the task) is to blame, so a retry goes elsewhere.
    Failed {
        error: String,
        agent_fault: bool,
        usage: Usage,
    },
    /// Stopped on request (cancel or time limit); the engine knows which.
    Stopped,
    /// Not the task's failure: the run was lost with its server (unreachable for too long, or
    /// it lost the session). The task runs again (another agent first) without spending a
    /// retry; `unreachable` marks the agent offline at once.
    Lost { error: String, unreachable: bool },
}

pub(crate) type RunFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
pub(crate) type ProbeFuture = Pin<Box<dyn Future<Output = Health> + Send>>;
/// What a run's session changed so far, or why it could not be read.
pub(crate) type ChangesFuture = Pin<Box<dyn Future<Output = Result<Vec<Changed>, String>> + Send>>;

/// A file a session changed since its prompt: its path relative to the session's directory,
/// and its patch when the server gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub(crate) file: String,
    pub(crate) patch: Option<String>,
}

/// What a health probe found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Online, degraded or offline.
    pub(crate) status: AgentStatus,
    pub(crate) detail: String,
}

/// Runs sessions for one agent. `stop` fires when the engine wants the run ended early; the
/// runner must then stop the remote work and return `Outcome::Stopped`.
pub trait Runner: Send + Sync {
    fn run(&self, job: Job, stop: oneshot::Receiver<()>) -> RunFuture;

    /// Follow a run a previous engine started at `remote` to its end, without starting it
    /// again. `None`: this runner cannot (its runs die with the engine).
    fn resume(
        &self,
        job: Job,
        remote: RemoteSession,
        stop: oneshot::Receiver<()>,
    ) -> Option<RunFuture> {
        let _ = (job, remote, stop);
        None
    }

    /// Stop, as well as can be, the remote session of a run that the engine will not follow
    /// again (it cannot re-attach it after a restart): so it never works beside the task's
    /// next attempt. `None`: nothing to stop.
    fn abandon(&self, remote: RemoteSession) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let _ = remote;
        None
    }

    /// Whether its sessions are known to work away from ocio's disk (a build box: set so, or
    /// found out): a task in a directory that is no git repository cannot go to it.
    fn works_away(&self) -> bool {
        false
    }

    /// Whether a run started by an engine that stopped before recording its remote session
    /// can be run again as the same attempt, taking up that session if it exists (`run` with
    /// `job.adopt`). `false`: such a run is lost with the engine.
    fn adopts(&self) -> bool {
        false
    }

    /// What the session of a run working away from ocio's disk (on a build box, at `remote`)
    /// has changed since its prompt, read where it works: the engine cannot look in its
    /// worktree itself. `None`: this runner's sessions work where the engine can look.
    fn changes(&self, session: SessionId, remote: RemoteSession) -> Option<ChangesFuture> {
        let _ = (session, remote);
        None
    }

    /// Check whatever runs the sessions. `None`: nothing to check (always online).
    fn probe(&self) -> Option<ProbeFuture> {
        None
    }

    /// Ask this agent for a plan towards a goal (a planning session answering with structured
    /// output). `None`: this runner cannot plan.
    fn plan(&self, request: PlanRequest) -> Option<PlanFuture> {
        let _ = request;
        None
    }
}

/// What a planner is asked: a goal, the repository it is for, and the capabilities the agents
/// offer (the only ones its tasks may need).
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub(crate) goal: String,
    pub(crate) repo: std::path::PathBuf,
    pub(crate) capabilities: std::collections::BTreeSet<String>,
}

/// A planner's answer, checked like a plan file: its text, or why there is none.
pub(crate) type PlanFuture = Pin<Box<dyn Future<Output = Result<Proposal, String>> + Send>>;

/// A plan a planner proposes, for the operator to approve before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Proposal {
    pub(crate) name: String,
    /// The plan as plan-file text: what is shown, and what is submitted once approved.
    pub(crate) toml: String,
    pub(crate) tasks: usize,
    /// The agent that planned it, and its planning session (empty for simulated agents).
    pub(crate) agent: String,
    pub(crate) session: String,
}
