//! Running a session on an OpenCode server, OpenCode's side of the engine's [`Runner`]: create
//! the remote session (titled `plan/task #attempt`, so it can be found in OpenCode's own UI) in
//! the task's directory, send the prompt and wait for the answer; on a stop request, abort it
//! remotely.
//!
//! The remote session is made durable (through the engine's `Reporter`) before the prompt is
//! sent, so a restarted engine re-attaches with [`Runner::resume`]: it reads the transcript and
//! takes the finished answer, waits for a busy session, or sends a prompt that never arrived;
//! it never starts a second remote session for the same attempt.
//!
//! While the answer is awaited, the server's live event stream (one per server, see
//! `LiveHub`) tells the run what its session does: that becomes transcript activity for the
//! engine, and permission requests are handed to the engine (its policy or the operator) the
//! moment they are asked, with the answers sent back to the server. The hub's resyncs bring
//! pending requests again whenever the stream may have dropped one (see `stream`).
//!
//! `create` makes or takes up the remote session, `prompt` sends the prompt and reads the
//! answer, `follow` re-attaches, `watch` passes live events and permission requests on.

mod create;
mod follow;
mod placed;
mod prompt;
mod steer;
mod watch;

use std::sync::Arc;

use tokio::sync::oneshot;

use super::boxes::BoxWorkspace;
use super::breaker::BreakerState;
use super::client::{Client, ClientError};
use super::diagnose;
use super::live::LiveHub;
use super::planner::plan_with;
use crate::config::WorkspaceMode;
use crate::domain::{AgentStatus, ModelRef, RemoteSession, SessionId, Usage};
use crate::engine::runner::{
    ChangesFuture, Health, Job, Outcome, PlanFuture, PlanRequest, ProbeFuture, Proposal, RunFuture,
    Runner, Steer,
};
use crate::plan::planner::PlannerRequest;
use steer::Awaited;
use watch::Watch;

#[derive(Debug, Clone)]
pub struct OpencodeRunner {
    client: Client,
    /// The OpenCode agent (`build`, `plan`, ...); the server's default when `None`.
    opencode_agent: Option<String>,
    model: Option<ModelRef>,
    live: LiveHub,
    /// Where its sessions work: ocio's worktrees, or a build box's.
    placement: placed::Placement,
}

impl OpencodeRunner {
    /// A runner whose sessions work in ocio's worktrees (the server shares ocio's disk).
    pub fn new(
        client: Client,
        opencode_agent: Option<String>,
        model: Option<ModelRef>,
    ) -> Arc<Self> {
        Self::placed(client, opencode_agent, model, WorkspaceMode::Shared, None)
    }

    /// A runner whose sessions work where `mode` says; `remote_dir`: ocio's root on a build
    /// box.
    pub fn placed(
        client: Client,
        opencode_agent: Option<String>,
        model: Option<ModelRef>,
        mode: WorkspaceMode,
        remote_dir: Option<String>,
    ) -> Arc<Self> {
        let boxes = BoxWorkspace::shared(client.clone(), opencode_agent.clone(), remote_dir);
        Arc::new(Self {
            live: LiveHub::new(client.clone()),
            client,
            opencode_agent,
            model,
            placement: placed::Placement::new(mode, boxes),
        })
    }
}

impl Runner for OpencodeRunner {
    fn run(&self, job: Job, stop: oneshot::Receiver<()>) -> RunFuture {
        let this = self.clone();
        Box::pin(async move { this.run_placed(job, stop).await })
    }

    /// A health call through the server's circuit breaker: a refused or failing call means
    /// offline, a half-open breaker degraded. The probe is also what lets an open breaker try
    /// the server again once its cooldown is over.
    fn probe(&self) -> Option<ProbeFuture> {
        let client = self.client.clone();
        Some(Box::pin(async move {
            match client.health().await {
                Ok(h) if h.healthy => match client.breaker_state() {
                    BreakerState::Closed => Health {
                        status: AgentStatus::Online,
                        detail: format!("opencode {}", h.version),
                    },
                    _ => Health {
                        status: AgentStatus::Degraded,
                        detail: "recovering from failures".into(),
                    },
                },
                Ok(_) => Health {
                    status: AgentStatus::Degraded,
                    detail: "the server reports itself unhealthy".into(),
                },
                Err(e) => Health {
                    status: AgentStatus::Offline,
                    detail: e.to_string(),
                },
            }
        }))
    }

    /// A planning session on this server, asked through structured output.
    fn plan(&self, request: PlanRequest) -> Option<PlanFuture> {
        let this = self.clone();
        Some(Box::pin(async move {
            let planner = PlannerRequest {
                goal: &request.goal,
                repo: &request.repo,
                name: None,
                capabilities: &request.capabilities,
                model: this.model.as_ref(),
                opencode_agent: this.opencode_agent.as_deref(),
            };
            let planned = plan_with(&this.client, &planner)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Proposal {
                name: planned.plan.name.clone(),
                tasks: planned.plan.tasks.len(),
                toml: planned.toml,
                agent: String::new(),
                session: planned.session,
            })
        }))
    }

    fn changes(&self, session: SessionId, remote: RemoteSession) -> Option<ChangesFuture> {
        Some(Box::pin(self.clone().changes_since_prompt(session, remote)))
    }

    fn adopts(&self) -> bool {
        true
    }

    fn works_away(&self) -> bool {
        self.placement.works_away()
    }

    fn abandon(
        &self,
        remote: RemoteSession,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        let client = self.client.clone();
        Some(Box::pin(async move {
            let dir = remote.directory.to_string_lossy().into_owned();
            match client.abort(&dir, &remote.session_id).await {
                Ok(_) => {
                    tracing::info!(remote = %remote.session_id, "aborted a remote session that cannot be followed again")
                }
                Err(e) => {
                    tracing::warn!(remote = %remote.session_id, server = %remote.server, error = %e, "cannot abort a remote session that cannot be followed again")
                }
            }
        }))
    }

    fn resume(
        &self,
        job: Job,
        remote: RemoteSession,
        stop: oneshot::Receiver<()>,
    ) -> Option<RunFuture> {
        let this = self.clone();
        Some(Box::pin(async move {
            this.resume_placed(job, remote, stop).await
        }))
    }
}

impl OpencodeRunner {
    /// Follows a run a previous engine started, to its end.
    async fn follow_resumed(
        self,
        job: Job,
        remote: RemoteSession,
        stop: oneshot::Receiver<()>,
    ) -> Outcome {
        let this = self;
        // Interrupted or told more before the restart: followed as it was.
        let awaited = match job.word.clone() {
            Some(Steer::Interrupt | Steer::Halted) => Awaited::Word,
            Some(Steer::Say { id, text }) => Awaited::Said { id, text },
            None => Awaited::Prompt,
        };
        if awaited == Awaited::Word {
            // The last engine may have stopped before its run passed the interrupt on:
            // the step is aborted now (harmless on a session already idle).
            let dir = remote.directory.to_string_lossy().into_owned();
            if let Err(e) = this.client.abort(&dir, &remote.session_id).await {
                tracing::warn!(remote = %remote.session_id, error = %e, "could not interrupt the re-attached session");
            }
        }
        // Followed from now on; what it did while nobody did is read from its server.
        let dir = remote.directory.to_string_lossy().into_owned();
        let mut watch = Watch::new(this.live.subscribe(&remote.session_id, &dir));
        watch.heed(&awaited);
        for id in &job.said {
            watch.said(*id);
        }
        if let Some(entry) = &job.streamed {
            watch.streamed(entry);
        }
        this.backfill(&job, &dir, &remote.session_id, &mut watch)
            .await;
        this.follow_awaiting(job, remote, stop, awaited, Some(watch))
            .await
    }
}

impl OpencodeRunner {
    /// A call for the session failed: a server error (5xx) is diagnosed first (the server's
    /// health, the directory as it sees it), so the operator reads what went wrong and what to
    /// do; any other error is told as it is, blaming the agent when `agent_fault`.
    async fn failed(&self, dir: &str, e: &ClientError, agent_fault: bool) -> Outcome {
        let (error, agent_fault) = match diagnose::server_error(&self.client, dir, e).await {
            Some(found) => (found.error, found.agent_fault),
            None => (e.to_string(), agent_fault),
        };
        Outcome::Failed {
            error,
            agent_fault,
            usage: Usage::default(),
        }
    }

    /// The run ends early. Asked by the engine (cancel, time limit): the remote session is
    /// aborted. The engine gone (ocio stopping): it is left running on its server, and the
    /// next start re-attaches it.
    async fn stop(&self, dir: &str, remote: &str, why: Interrupt) -> Outcome {
        match why {
            Interrupt::Stop => {
                if let Err(e) = self.client.abort(dir, remote).await {
                    tracing::warn!(remote, error = %e, retried = e.is_the_servers(), "could not abort the remote session (tried again while its server does not answer)");
                    if e.is_the_servers() {
                        tokio::spawn(abort_when_answered(
                            self.client.clone(),
                            dir.to_string(),
                            remote.to_string(),
                            tokio::time::Instant::now() + ABORT_PATIENCE,
                        ));
                    }
                }
            }
            Interrupt::Detach => {
                tracing::info!(remote, "ocio is stopping; the remote session keeps running");
            }
        }
        Outcome::Stopped
    }
}

/// How long a stopped session's abort is tried again while its server does not answer.
pub(crate) const ABORT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60 * 60);
/// The longest wait between two tries.
const ABORT_GAP_MAX: std::time::Duration = std::time::Duration::from_secs(60);
/// The first wait (short in the tests).
const ABORT_GAP_FIRST: std::time::Duration = match cfg!(test) {
    true => std::time::Duration::from_millis(20),
    false => std::time::Duration::from_secs(2),
};

/// The abort of a session the engine stopped (cancelled, timed out) while its server could not
/// be reached, tried again (2 s, doubling to a minute apart) until the server takes it or
/// `deadline` (an hour after the stop) has passed: it went on working, and spending, once the
/// server answered again (hand trial). An abort is harmless on a session already idle. The
/// next ocio takes it up where this one left it (`host::left`).
pub(crate) async fn abort_when_answered(
    client: Client,
    dir: String,
    remote: String,
    deadline: tokio::time::Instant,
) {
    let mut gap = ABORT_GAP_FIRST;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(gap).await;
        gap = (gap * 2).min(ABORT_GAP_MAX);
        match client.abort(&dir, &remote).await {
            Ok(_) => {
                tracing::info!(%remote, "aborted the stopped session once its server answered");
                return;
            }
            Err(e) if e.is_the_servers() => {
                tracing::debug!(%remote, error = %e, "the stopped session's server still does not answer");
            }
            Err(e) => {
                tracing::warn!(%remote, error = %e, "cannot abort the stopped session");
                return;
            }
        }
    }
    tracing::warn!(%remote, "gave up aborting the stopped session an hour after its stop; abort it on its server");
}

/// The run lost with a server that cannot be reached.
fn lost(error: &ClientError) -> Outcome {
    Outcome::Lost {
        error: error.to_string(),
        unreachable: true,
    }
}

/// Why a run ends before its session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    /// The engine asked (cancel or time limit): abort the remote session.
    Stop,
    /// The engine is gone (ocio stopping, its stop sender dropped): leave the remote session
    /// running for the next start to re-attach.
    Detach,
}

impl Interrupt {
    fn of(asked: Result<(), oneshot::error::RecvError>) -> Self {
        match asked {
            Ok(()) => Self::Stop,
            Err(_) => Self::Detach,
        }
    }
}
