//! Running a session on an OpenCode server: create the remote session (titled
//! `plan/task #attempt`, so it can be found in OpenCode's own UI) in the task's directory, send
//! the prompt and wait for the answer; on a stop request, abort it remotely.
//!
//! This runner waits on the blocking prompt call. Live progress (tool calls, permission
//! requests) comes from the server's event stream, which the engine does not follow yet: a
//! session waiting for a permission waits until its time limit.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::runner::{Job, Outcome, RunFuture, Runner};
use crate::domain::{ModelRef, Usage};
use crate::opencode::client::Client;
use crate::opencode::wire::{
    CreateSession, MessageInfo, ModelSelector, Part, PromptPart, PromptRequest,
};

#[derive(Debug, Clone)]
pub struct OpencodeRunner {
    client: Client,
    /// The OpenCode agent (`build`, `plan`, ...); the server's default when `None`.
    opencode_agent: Option<String>,
    model: Option<ModelRef>,
}

impl OpencodeRunner {
    pub fn new(
        client: Client,
        opencode_agent: Option<String>,
        model: Option<ModelRef>,
    ) -> Arc<Self> {
        Arc::new(Self {
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
}

impl OpencodeRunner {
    async fn drive(self, job: Job, stop: oneshot::Receiver<()>) -> Outcome {
        let dir = job.directory.to_string_lossy().into_owned();
        let create = CreateSession {
            title: Some(job.title.clone()),
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
        let reply = tokio::select! {
            reply = self.client.prompt(&dir, &session.id, &prompt) => reply,
            _ = stop => {
                if let Err(e) = self.client.abort(&dir, &session.id).await {
                    tracing::warn!(remote = %session.id, error = %e, "could not abort the remote session");
                }
                return Outcome::Stopped;
            }
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                let agent_fault = e.is_transient();
                return Outcome::Failed {
                    error: e.to_string(),
                    agent_fault,
                    usage: Usage::default(),
                };
            }
        };
        let MessageInfo::Assistant(answer) = &reply.info else {
            return Outcome::Failed {
                error: "the server answered without an assistant message".into(),
                agent_fault: true,
                usage: Usage::default(),
            };
        };
        let usage = Usage {
            input_tokens: answer.tokens.input,
            output_tokens: answer.tokens.output,
            reasoning_tokens: answer.tokens.reasoning,
            cache_read_tokens: answer.tokens.cache.read,
            cache_write_tokens: answer.tokens.cache.write,
            cost: answer.cost,
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
}
