//! Running a session on an OpenCode server: create the remote session (titled
//! `plan/task #attempt`, so it can be found in OpenCode's own UI) in the task's directory, send
//! the prompt and wait for the answer; on a stop request, abort it remotely.
//!
//! The remote session is made durable (through the engine's [`Reporter`]) before the prompt is
//! sent, so a restarted engine re-attaches with [`Runner::resume`]: it reads the transcript and
//! takes the finished answer, waits for a busy session, or sends a prompt that never arrived;
//! it never starts a second remote session for the same attempt.
//!
//! While the answer is awaited, the server's live event stream (one per server, see
//! [`LiveHub`]) tells the run what its session does: that becomes transcript activity for the
//! engine, and permission requests are handed to the engine (its policy or the operator) the
//! moment they are asked, with the answers sent back to the server. Pending requests are also
//! looked up every few seconds, in case the stream dropped one.

use std::sync::Arc;

use tokio::sync::oneshot;

use std::collections::HashSet;
use std::time::Duration;

use super::approval::{Ask, Decision};
use super::live::{LiveHub, Subscription, Transcriber};
use super::runner::{
    Health, Job, Outcome, PlanFuture, PlanRequest, ProbeFuture, Proposal, RunFuture, Runner,
};
use crate::domain::{AgentStatus, ModelRef, RemoteSession, Usage};
use crate::opencode::breaker::BreakerState;
use crate::opencode::client::{Client, ClientError};
use crate::opencode::event::ServerEvent;
use crate::opencode::wire::{
    CreateSession, MessageInfo, MessageWithParts, ModelSelector, Part, PermissionReply,
    PermissionRequest, PermissionRule, PromptPart, PromptRequest,
};
use crate::plan::planner::{PlannerRequest, plan_with};

/// How often a running session's pending permission requests are looked up (the stream brings
/// them at once; this catches any it dropped).
const PERMISSION_POLL: Duration = Duration::from_secs(3);

/// How often a re-attached run checks on a busy remote session.
const RESUME_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct OpencodeRunner {
    client: Client,
    /// The OpenCode agent (`build`, `plan`, ...); the server's default when `None`.
    opencode_agent: Option<String>,
    model: Option<ModelRef>,
    live: LiveHub,
}

impl OpencodeRunner {
    pub fn new(
        client: Client,
        opencode_agent: Option<String>,
        model: Option<ModelRef>,
    ) -> Arc<Self> {
        Arc::new(Self {
            live: LiveHub::new(client.clone()),
            client,
            opencode_agent,
            model,
        })
    }
}

impl Runner for OpencodeRunner {
    fn run(&self, job: Job, stop: oneshot::Receiver<()>) -> RunFuture {
        let this = self.clone();
        Box::pin(async move { this.drive(job, stop).await })
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

    fn resume(
        &self,
        job: Job,
        remote: RemoteSession,
        stop: oneshot::Receiver<()>,
    ) -> Option<RunFuture> {
        let this = self.clone();
        Some(Box::pin(
            async move { this.follow(job, remote, stop).await },
        ))
    }
}

impl OpencodeRunner {
    async fn drive(self, job: Job, stop: oneshot::Receiver<()>) -> Outcome {
        let dir = job.directory.to_string_lossy().into_owned();
        let create = CreateSession {
            title: Some(job.title.clone()),
            permission: Some(PermissionRule::unattended()),
            ..CreateSession::default()
        };
        let session = match self.client.create_session(&dir, &create).await {
            Ok(session) => session,
            Err(e) => {
                return Outcome::Failed {
                    error: e.to_string(),
                    agent_fault: true,
                    usage: Usage::default(),
                };
            }
        };
        tracing::info!(session = %job.session, remote = %session.id, server = self.client.base_url(), "remote session created");
        let remote = RemoteSession {
            server: self.client.base_url().into(),
            session_id: session.id.clone(),
            directory: job.directory.clone(),
        };
        if !job.reporter.remote(job.session, remote).await {
            let _ = self.client.delete_session(&dir, &session.id).await;
            return Outcome::Stopped;
        }
        self.prompt(&job, &dir, &session.id, stop).await
    }

    async fn prompt(
        &self,
        job: &Job,
        dir: &str,
        remote: &str,
        mut stop: oneshot::Receiver<()>,
    ) -> Outcome {
        let prompt = PromptRequest {
            model: self.model.as_ref().map(|m| ModelSelector {
                provider_id: m.provider.clone(),
                model_id: m.model.clone(),
            }),
            agent: self.opencode_agent.clone(),
            parts: vec![PromptPart::Text {
                text: job.prompt.clone(),
            }],
            ..PromptRequest::default()
        };
        // Subscribed before the prompt goes out, so no event of this turn is missed.
        let mut watch = Watch::new(self.live.subscribe(remote, dir));
        let reply = self.client.prompt(dir, remote, &prompt);
        tokio::pin!(reply);
        let mut poll = tokio::time::interval(PERMISSION_POLL);
        let reply = loop {
            tokio::select! {
                reply = &mut reply => break reply,
                asked = &mut stop => return self.stop(dir, remote, Interrupt::of(asked)).await,
                Some(event) = watch.live.events.recv() => self.on_event(job, dir, &event, &mut watch),
                _ = poll.tick() => self.relay_permissions(job, dir, remote, &mut watch.seen).await,
            }
        };
        // Whatever the stream still holds (the last text, the final step) goes to the
        // transcript too.
        while let Ok(event) = watch.live.events.try_recv() {
            self.on_event(job, dir, &event, &mut watch);
        }
        match reply {
            Ok(reply) => outcome_of(&reply, self.usage(dir, remote, &reply).await),
            Err(e) => Outcome::Failed {
                agent_fault: e.is_the_servers(),
                error: e.to_string(),
                usage: Usage::default(),
            },
        }
    }

    /// The run ends early. Asked by the engine (cancel, time limit): the remote session is
    /// aborted. The engine gone (ocio stopping): it is left running on its server, and the
    /// next start re-attaches it.
    async fn stop(&self, dir: &str, remote: &str, why: Interrupt) -> Outcome {
        match why {
            Interrupt::Stop => {
                if let Err(e) = self.client.abort(dir, remote).await {
                    tracing::warn!(remote, error = %e, "could not abort the remote session");
                }
            }
            Interrupt::Detach => {
                tracing::info!(remote, "ocio is stopping; the remote session keeps running");
            }
        }
        Outcome::Stopped
    }

    /// What the whole session used: the sum over all its assistant messages (one per model
    /// call), read from the server. `last` (the final message) stands in when the transcript
    /// cannot be read.
    async fn usage(&self, dir: &str, remote: &str, last: &MessageWithParts) -> Usage {
        match self.client.messages(dir, remote, None).await {
            Ok(messages) => usage_of(&messages),
            Err(e) => {
                tracing::warn!(remote, error = %e, "cannot read the session's messages; its usage counts only the last model call");
                usage_of(std::slice::from_ref(last))
            }
        }
    }

    /// Re-attached after a restart: find out how far the remote session got and finish from
    /// there.
    async fn follow(
        self,
        job: Job,
        remote: RemoteSession,
        mut stop: oneshot::Receiver<()>,
    ) -> Outcome {
        let dir = remote.directory.to_string_lossy().into_owned();
        let id = remote.session_id.as_str();
        let mut watch = Watch::new(self.live.subscribe(id, &dir));
        loop {
            let messages = match self.client.messages(&dir, id, None).await {
                Ok(messages) => messages,
                Err(ClientError::NotFound { .. }) => {
                    return Outcome::Failed {
                        error: format!("remote session {id} no longer exists on {}", remote.server),
                        agent_fault: true,
                        usage: Usage::default(),
                    };
                }
                Err(e) => {
                    tracing::debug!(remote = id, error = %e, "re-attach: transcript unavailable; trying again");
                    if let Some(why) = self.pause(&mut stop, &job, &dir, &mut watch).await {
                        return self.stop(&dir, id, why).await;
                    }
                    continue;
                }
            };
            let asked = messages
                .iter()
                .rposition(|m| matches!(m.info, MessageInfo::User(_)));
            let Some(asked) = asked else {
                // The prompt never arrived: send it now (once: this is the only sender).
                return self.prompt(&job, &dir, id, stop).await;
            };
            let answer = messages[asked..].iter().rev().find(|m| matches!(&m.info, MessageInfo::Assistant(a) if a.time.completed.is_some() || a.error.is_some()));
            let busy = self
                .client
                .session_status(&dir)
                .await
                .map(|s| s.contains_key(id))
                .unwrap_or(true);
            match answer {
                Some(answer) if !busy => {
                    for part in &answer.parts {
                        let event = ServerEvent::PartUpdated { part: part.clone() };
                        self.on_event(&job, &dir, &event, &mut watch);
                    }
                    return outcome_of(answer, usage_of(&messages));
                }
                None if !busy => {
                    return Outcome::Failed {
                        error:
                            "the remote session stopped without an answer (its server restarted?)"
                                .into(),
                        agent_fault: true,
                        usage: Usage::default(),
                    };
                }
                _ => {
                    self.relay_permissions(&job, &dir, id, &mut watch.seen)
                        .await;
                    if let Some(why) = self.pause(&mut stop, &job, &dir, &mut watch).await {
                        return self.stop(&dir, id, why).await;
                    }
                }
            }
        }
    }

    /// Hand the session's new permission requests to the engine (policy or operator) and send
    /// each answer back to the server, without holding up the run.
    async fn relay_permissions(
        &self,
        job: &Job,
        dir: &str,
        remote: &str,
        seen: &mut HashSet<String>,
    ) {
        let Ok(pending) = self.client.permissions(dir).await else {
            return;
        };
        for request in pending.into_iter().filter(|p| p.session_id == remote) {
            self.relay(job, dir, request, seen);
        }
    }

    /// One live event: transcript activity for the engine, or a permission request to relay.
    fn on_event(&self, job: &Job, dir: &str, event: &ServerEvent, watch: &mut Watch) {
        if let ServerEvent::PermissionAsked(request) = event {
            self.relay(job, dir, request.clone(), &mut watch.seen);
            return;
        }
        if let Some((activity, part)) = watch.transcriber.activity(event) {
            job.reporter.activity(job.session, activity, part);
        }
    }

    /// Hand one permission request to the engine (once) and send its answer back to the
    /// server, without holding up the run.
    fn relay(&self, job: &Job, dir: &str, request: PermissionRequest, seen: &mut HashSet<String>) {
        if !seen.insert(request.id.clone()) {
            return;
        }
        let (reporter, client, dir, session) = (
            job.reporter.clone(),
            self.client.clone(),
            dir.to_string(),
            job.session,
        );
        tokio::spawn(async move {
            let ask = Ask {
                id: request.id.clone(),
                permission: request.permission,
                patterns: request.patterns,
            };
            let Some(decision) = reporter.permission(session, ask).await else {
                return;
            };
            let reply = match decision {
                Decision::Once => PermissionReply::Once,
                Decision::Always => PermissionReply::Always,
                Decision::Reject => PermissionReply::Reject,
            };
            if let Err(e) = client
                .reply_permission(&dir, &request.id, reply, None)
                .await
            {
                tracing::warn!(request = %request.id, error = %e, "could not answer a permission request");
            }
        });
    }

    /// Wait a poll interval, passing on live events meanwhile; why the run must end, if it
    /// must.
    async fn pause(
        &self,
        stop: &mut oneshot::Receiver<()>,
        job: &Job,
        dir: &str,
        watch: &mut Watch,
    ) -> Option<Interrupt> {
        let sleep = tokio::time::sleep(RESUME_POLL);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return None,
                asked = &mut *stop => return Some(Interrupt::of(asked)),
                Some(event) = watch.live.events.recv() => self.on_event(job, dir, &event, watch),
            }
        }
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

/// What a run follows of its session: the live events, the transcript made of them, and the
/// permission requests already handed on.
struct Watch {
    live: Subscription,
    transcriber: Transcriber,
    seen: HashSet<String>,
}

impl Watch {
    fn new(live: Subscription) -> Self {
        Self {
            live,
            transcriber: Transcriber::default(),
            seen: HashSet::new(),
        }
    }
}

/// Tokens and cost of every assistant message (each model call is one), added up.
fn usage_of(messages: &[MessageWithParts]) -> Usage {
    let mut usage = Usage::default();
    for message in messages {
        if let MessageInfo::Assistant(answer) = &message.info {
            usage += Usage {
                input_tokens: answer.tokens.input,
                output_tokens: answer.tokens.output,
                reasoning_tokens: answer.tokens.reasoning,
                cache_read_tokens: answer.tokens.cache.read,
                cache_write_tokens: answer.tokens.cache.write,
                cost: answer.cost,
            };
        }
    }
    usage
}

/// How a finished assistant message ends the run, having used `usage` in all.
fn outcome_of(reply: &MessageWithParts, usage: Usage) -> Outcome {
    let MessageInfo::Assistant(answer) = &reply.info else {
        return Outcome::Failed {
            error: "the server answered without an assistant message".into(),
            agent_fault: true,
            usage,
        };
    };
    if let Some(error) = &answer.error {
        let message = error.message.as_deref().unwrap_or("no details");
        return Outcome::Failed {
            error: format!("{}: {message}", error.name),
            agent_fault: false,
            usage,
        };
    }
    let text: Vec<&str> = reply
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    let result = answer
        .structured
        .as_ref()
        .map(|v| v.to_string())
        .or_else(|| (!text.is_empty()).then(|| text.join("\n")));
    Outcome::Completed { result, usage }
}
