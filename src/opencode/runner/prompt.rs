//! Sending a run's prompt and reading its answer: what it used, and how it ends the run.

use tokio::sync::oneshot;

use super::steer::Awaited;
use super::watch::Watch;
use super::{Interrupt, OpencodeRunner};
use crate::domain::{MessageId, RemoteSession, SessionId, Usage};
use crate::engine::runner::{Job, Outcome};
use crate::opencode::client::ClientError;
use crate::opencode::wire::{
    MessageInfo, MessageWithParts, ModelSelector, Part, PromptPart, PromptRequest,
};

impl OpencodeRunner {
    /// Send the prompt (with the attempt's own message id, so sending it again is never a
    /// second run) and wait for the answer, passing live events on meanwhile.
    pub(super) async fn prompt(
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
        // What the session asks comes on the stream, and again with the server's resyncs (after
        // a reconnect, while the stream is down, or when ocio dropped one of its events): no
        // poll per session.
        let mut awaited = Awaited::Prompt;
        let reply = loop {
            tokio::select! {
                reply = &mut reply => break reply,
                asked = &mut stop => return self.stop(dir, remote, Interrupt::of(asked)).await,
                Some(event) = watch.live.events.recv() => self.on_event(job, dir, &event, &mut watch).await,
                word = job.steering.next() => {
                    awaited = self.steer(dir, remote, word).await;
                    watch.heed(&awaited);
                }
            }
        };
        // Whatever the stream still holds (the last text, the final step) goes to the
        // transcript too.
        while let Ok(event) = watch.live.events.try_recv() {
            self.on_event(job, dir, &event, &mut watch).await;
        }
        let session = RemoteSession {
            server: self.client.base_url().into(),
            session_id: remote.to_string(),
            // Where the session works (a build box's directory, for a box's run).
            directory: std::path::PathBuf::from(dir),
        };
        // What the operator said while the answer came is followed, never dropped.
        while let Some(word) = job.steering.try_next() {
            awaited = self.steer(dir, remote, word).await;
            watch.heed(&awaited);
        }
        if awaited != Awaited::Prompt {
            // The operator steered it: the answer is the one to their last word, not this.
            let follow =
                self.clone()
                    .follow_awaiting(job.clone(), session, stop, awaited, Some(watch));
            return Box::pin(follow).await;
        }
        match reply {
            Ok(reply) => {
                let usage = self.answered(job, dir, remote, &reply, &mut watch).await;
                outcome_of(&reply, usage)
            }
            // The answer did not come back, but the session may well go on (its server is
            // away for a moment, or the run outlasts the prompt's timeout): follow it.
            Err(e @ (ClientError::Connect { .. } | ClientError::Timeout { .. })) => {
                tracing::info!(remote, error = %e, "lost the prompt's answer; following the session");
                let follow = self.clone().follow_awaiting(
                    job.clone(),
                    session,
                    stop,
                    Awaited::Prompt,
                    Some(watch),
                );
                Box::pin(follow).await
            }
            Err(e) => self.failed(dir, &e, e.is_the_servers()).await,
        }
    }

    /// The session answered with `last`: what the whole session used (the sum over all its
    /// assistant messages, one per model call), read from the server, and what its transcript
    /// does not have of them (the stream was down meanwhile) told. `last` stands in when the
    /// messages cannot be read.
    async fn answered(
        &self,
        job: &Job,
        dir: &str,
        remote: &str,
        last: &MessageWithParts,
        watch: &mut Watch,
    ) -> Usage {
        match self.client.messages(dir, remote, None).await {
            Ok(messages) => {
                self.tell_messages(job, &messages, watch).await;
                usage_of(&messages)
            }
            Err(e) => {
                tracing::warn!(remote, error = %e, "cannot read the session's messages; its usage counts only the last model call");
                usage_of(std::slice::from_ref(last))
            }
        }
    }
}

/// The message id of an attempt's prompt: OpenCode's own shape (`msg_`, 12 hex digits of
/// time, 14 base62 characters), made from the session's ULID (its time and its randomness),
/// so it is the same every time the prompt is sent, unique on any server, and sorts among the
/// server's ids by when the attempt began.
pub(super) fn prompt_message_id(session: SessionId) -> String {
    message_id(session.as_u128(), session.millis())
}

/// The server's id of an operator's message to a session, made from its [`MessageId`] as the
/// prompt's is from the session's id.
pub(super) fn said_message_id(id: MessageId) -> String {
    message_id(id.as_u128(), id.millis())
}

/// A message id in OpenCode's shape from a ULID and its milliseconds.
fn message_id(ulid: u128, millis: u64) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
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

/// Tokens and cost of every assistant message (each model call is one), added up.
pub(super) fn usage_of(messages: &[MessageWithParts]) -> Usage {
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
pub(super) fn outcome_of(reply: &MessageWithParts, usage: Usage) -> Outcome {
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
