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
use std::path::Path;
use std::time::Duration;

use super::approval::{Ask, Decision};
use super::diagnose;
use super::live::{LiveHub, Subscription, Transcriber};
use super::runner::{
    Health, Job, Outcome, PlanFuture, PlanRequest, ProbeFuture, Proposal, RunFuture, Runner,
};
use crate::domain::{AgentStatus, ModelRef, RemoteSession, Usage};
use crate::opencode::breaker::BreakerState;
use crate::opencode::client::{Client, ClientError};
use crate::opencode::event::ServerEvent;
use crate::opencode::planner::plan_with;
use crate::opencode::wire::{
    CreateSession, MessageInfo, MessageWithParts, ModelSelector, Part, PermissionReply,
    PermissionRequest, PermissionRule, PromptPart, PromptRequest,
};
use crate::plan::planner::PlannerRequest;

/// How often a running session's pending permission requests are looked up (the stream brings
/// them at once; this catches any it dropped).
const PERMISSION_POLL: Duration = Duration::from_secs(3);

/// How often a re-attached run checks on a busy remote session.
const RESUME_POLL: Duration = Duration::from_secs(1);

/// Checks a re-attached run waits for its prompt to show up before sending it again: the last
/// engine may have stopped while the prompt was on its way (the server stores it a moment
/// after it answers; the first prompt in a directory takes over a second). Sent again, it is
/// the same message (same id), so a late first copy never runs it twice.
const PROMPT_GRACE: u32 = 5;

/// Checks in a row (about five minutes) a followed session's server may be unreachable before
/// the run is given up as lost and its task goes to another agent.
const UNREACHABLE_LIMIT: u32 = 300;

/// Checks in a row a re-attached run must find its session neither busy nor answered before
/// it counts the session as dead: a session is not busy for a moment after its prompt is
/// stored, and a server under load is slower still.
const STALL_LIMIT: u32 = 10;

/// How long a create that timed out is given to show its session: a server busy with many
/// sessions may take this long to get to it, and a second create would only add to its load.
const CREATE_PATIENCE: Duration = Duration::from_secs(60);

/// How often the sessions are listed while waiting for a slow create's session.
const CREATE_LOOK_EVERY: Duration = Duration::from_secs(2);

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

    fn adopts(&self) -> bool {
        true
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
        let adopted = match job.adopt {
            true => self.unrecorded(&job, &dir).await,
            false => None,
        };
        let session = match adopted {
            Some(id) => id,
            None => match self.client.create_session(&dir, &create).await {
                Ok(session) => session.id,
                // A slow create may well make the session yet: wait for it and take it up,
                // rather than add another create to a server that is busy already.
                Err(e @ ClientError::Timeout { .. }) => match self.made_late(&job, &dir).await {
                    Some(id) => id,
                    None => return slow(&e),
                },
                Err(e @ (ClientError::Connect { .. } | ClientError::CircuitOpen { .. })) => {
                    return lost(&e);
                }
                Err(e) => return self.failed(&dir, &e, true).await,
            },
        };
        tracing::info!(session = %job.session, remote = %session, server = self.client.base_url(), "remote session ready");
        let remote = RemoteSession {
            server: self.client.base_url().into(),
            session_id: session.clone(),
            directory: job.directory.clone(),
        };
        if !job.reporter.remote(job.session, remote).await {
            let _ = self.client.delete_session(&dir, &session).await;
            return Outcome::Stopped;
        }
        self.prompt(&job, &dir, &session, stop).await
    }

    /// After a create timed out: the session the server makes once it gets to it, looked for
    /// every [`CREATE_LOOK_EVERY`] for [`CREATE_PATIENCE`].
    async fn made_late(&self, job: &Job, dir: &str) -> Option<String> {
        let give_up = tokio::time::Instant::now() + CREATE_PATIENCE;
        loop {
            if let Some(id) = self.unrecorded(job, dir).await {
                return Some(id);
            }
            if tokio::time::Instant::now() + CREATE_LOOK_EVERY > give_up {
                tracing::warn!(session = %job.session, "no remote session appeared after a slow create");
                return None;
            }
            tokio::time::sleep(CREATE_LOOK_EVERY).await;
        }
    }

    /// The remote session an earlier engine made for this attempt and stopped before
    /// recording: titled like the attempt, in its directory, made after the attempt began
    /// (give or take the server's clock). The oldest is taken up and any others deleted, so
    /// an attempt has one remote session at most.
    async fn unrecorded(&self, job: &Job, dir: &str) -> Option<String> {
        /// How far the server's clock may be behind ours.
        const SKEW_MS: i64 = 60_000;
        let began = i64::try_from(job.session.millis()).unwrap_or(i64::MAX) - SKEW_MS;
        let ended = jiff::Timestamp::now().as_millisecond() + SKEW_MS;
        let listed = match self.client.sessions(dir).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(session = %job.session, error = %e, "cannot look for an unrecorded remote session; making a new one");
                return None;
            }
        };
        let mut found: Vec<_> = listed
            .into_iter()
            .filter(|s| {
                s.title == job.title
                    && s.parent_id.is_none()
                    && (Path::new(&s.directory) == job.directory
                        || std::fs::canonicalize(&job.directory).ok().as_deref()
                            == Some(Path::new(&s.directory)))
                    && (began..=ended).contains(&s.time.created)
            })
            .collect();
        found.sort_by_key(|s| s.time.created);
        let mut found = found.into_iter();
        let first = found.next()?;
        for extra in found {
            tracing::info!(remote = %extra.id, "deleting a second remote session of one attempt");
            if let Err(e) = self.client.delete_session(dir, &extra.id).await {
                tracing::warn!(remote = %extra.id, error = %e, "cannot delete a second remote session");
            }
        }
        tracing::info!(session = %job.session, remote = %first.id, "taking up a remote session made before the restart");
        Some(first.id)
    }

    async fn prompt(
        &self,
        job: &Job,
        dir: &str,
        remote: &str,
        mut stop: oneshot::Receiver<()>,
    ) -> Outcome {
        let prompt = PromptRequest {
            message_id: Some(prompt_message_id(job.session)),
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
            // The answer did not come back, but the session may well go on (its server is
            // away for a moment, or the run outlasts the prompt's timeout): follow it.
            Err(e @ (ClientError::Connect { .. } | ClientError::Timeout { .. })) => {
                tracing::info!(remote, error = %e, "lost the prompt's answer; following the session");
                let session = RemoteSession {
                    server: self.client.base_url().into(),
                    session_id: remote.to_string(),
                    directory: job.directory.clone(),
                };
                Box::pin(self.clone().follow(job.clone(), session, stop)).await
            }
            Err(e) => self.failed(dir, &e, e.is_the_servers()).await,
        }
    }

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
    /// there. The prompt is sent only when it has not shown up for a few checks, and then with
    /// the same message id (never a second run); a session is counted dead only when it has
    /// been neither busy nor answered for several checks in a row.
    async fn follow(
        self,
        job: Job,
        remote: RemoteSession,
        mut stop: oneshot::Receiver<()>,
    ) -> Outcome {
        let dir = remote.directory.to_string_lossy().into_owned();
        let id = remote.session_id.as_str();
        let mut watch = Watch::new(self.live.subscribe(id, &dir));
        let (mut unasked, mut stalled, mut away) = (0, 0, 0);
        loop {
            let progress = self.progress(&dir, id).await;
            away = if progress.is_err() { away + 1 } else { 0 };
            match progress {
                Ok(Progress::Unasked) if unasked >= PROMPT_GRACE => {
                    return self.prompt(&job, &dir, id, stop).await;
                }
                Ok(Progress::Unasked) => unasked += 1,
                Ok(Progress::Answered(answer, usage)) => {
                    for part in &answer.parts {
                        let event = ServerEvent::PartUpdated { part: part.clone() };
                        self.on_event(&job, &dir, &event, &mut watch);
                    }
                    return outcome_of(&answer, usage);
                }
                Ok(Progress::Stalled) if stalled + 1 >= STALL_LIMIT => {
                    return Outcome::Lost {
                        error: format!(
                            "remote session {id} stopped without an answer (its server restarted?)"
                        ),
                        unreachable: false,
                    };
                }
                Ok(Progress::Stalled) => stalled += 1,
                Ok(Progress::Busy) => {
                    stalled = 0;
                    self.relay_permissions(&job, &dir, id, &mut watch.seen)
                        .await;
                }
                Err(ClientError::NotFound { .. }) => {
                    return Outcome::Lost {
                        error: format!("remote session {id} no longer exists on {}", remote.server),
                        unreachable: false,
                    };
                }
                // Away too long: lost with its server when it cannot be reached, failed when
                // it answers what ocio cannot use.
                Err(e) if away >= UNREACHABLE_LIMIT => {
                    return match e {
                        ClientError::Connect { .. }
                        | ClientError::Timeout { .. }
                        | ClientError::CircuitOpen { .. } => lost(&e),
                        e => Outcome::Failed {
                            error: e.to_string(),
                            agent_fault: true,
                            usage: Usage::default(),
                        },
                    };
                }
                Err(e) => {
                    tracing::debug!(remote = id, error = %e, "re-attach: the session cannot be read; trying again");
                }
            }
            if let Some(why) = self.pause(&mut stop, &job, &dir, &mut watch).await {
                return self.stop(&dir, id, why).await;
            }
        }
    }

    /// How far a remote session got with its prompt (its last user message: ocio's, or one
    /// an operator added).
    async fn progress(&self, dir: &str, id: &str) -> Result<Progress, ClientError> {
        let messages = self.client.messages(dir, id, None).await?;
        let asked = messages
            .iter()
            .rposition(|m| matches!(m.info, MessageInfo::User(_)));
        let Some(asked) = asked else {
            return Ok(Progress::Unasked);
        };
        let answer = messages[asked..].iter().rev().find(|m| {
            matches!(&m.info, MessageInfo::Assistant(a)
                if a.error.is_some() || (a.time.completed.is_some() && a.finish.as_deref() != Some("tool-calls")))
        });
        // A failed status call is a failed check (counted towards the server being away),
        // never taken as the session having ended.
        let busy = self.client.session_status(dir).await?.contains_key(id);
        Ok(match answer {
            _ if busy => Progress::Busy,
            Some(answer) => Progress::Answered(Box::new(answer.clone()), usage_of(&messages)),
            None => Progress::Stalled,
        })
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

/// The run lost with a server that cannot be reached.
fn lost(error: &ClientError) -> Outcome {
    Outcome::Lost {
        error: error.to_string(),
        unreachable: true,
    }
}

/// The server answered too slowly to start the run, and no session appeared in the time
/// given: lost (no retry spent), but the server is busy, not away.
fn slow(error: &ClientError) -> Outcome {
    Outcome::Lost {
        error: format!(
            "{error}; the server is busy, and no session appeared within {} after",
            crate::text::duration(CREATE_PATIENCE)
        ),
        unreachable: false,
    }
}

/// What a re-attached run finds at its remote session.
enum Progress {
    /// Its prompt has not arrived (yet).
    Unasked,
    /// Working on it (or the server could not say).
    Busy,
    /// Finished: the answer, and what the whole session used.
    Answered(Box<MessageWithParts>, Usage),
    /// Asked, but neither busy nor answered.
    Stalled,
}

/// The message id of an attempt's prompt: OpenCode's own shape (`msg_`, 12 hex digits of
/// time, 14 base62 characters), made from the session's ULID (its time and its randomness),
/// so it is the same every time the prompt is sent, unique on any server, and sorts among the
/// server's ids by when the attempt began.
pub fn prompt_message_id(session: crate::domain::SessionId) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let ulid = session.as_u128();
    let millis = session.millis();
    // OpenCode: the time in milliseconds times 0x1000 plus a counter, its low 48 bits.
    let time = millis.wrapping_mul(0x1000) & 0xffff_ffff_ffff;
    let mut random = ulid & ((1u128 << 80) - 1);
    let mut tail = [b'0'; 14];
    for slot in tail.iter_mut().rev() {
        *slot = BASE62[(random % 62) as usize];
        random /= 62;
    }
    format!("msg_{time:012x}{}", String::from_utf8_lossy(&tail))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionId;

    #[test]
    fn a_prompt_id_has_opencodes_shape_is_stable_per_attempt_and_sorts_by_time() {
        let millis = 1_796_309_125_048;
        let a = SessionId::from_parts(millis, 7);
        let id = prompt_message_id(a);
        assert_eq!(id.len(), 30, "{id}");
        assert!(id.starts_with("msg_"), "{id}");
        assert!(id[4..16].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert!(id[16..].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        // OpenCode's own id for that millisecond starts with the same 12 digits.
        assert_eq!(
            &id[4..16],
            &format!("{:012x}", (millis * 0x1000) & 0xffff_ffff_ffff)
        );
        assert_eq!(id, prompt_message_id(a), "the same attempt, the same id");
        let other = SessionId::from_parts(millis, 8);
        assert_ne!(id, prompt_message_id(other), "another attempt, another id");
        let later = SessionId::from_parts(millis + 1, 0);
        assert!(prompt_message_id(later) > id);
        let max = SessionId::from_parts(millis, (1u128 << 80) - 1);
        assert_eq!(prompt_message_id(max).len(), 30);
    }
}
