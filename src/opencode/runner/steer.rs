//! The operator's words to a running OpenCode session: a follow-up message goes to the same
//! remote session (`prompt_async` with an id made from the message's own, so sending it again
//! is never a second message), an interrupt aborts the step under way. Either way the run then
//! follows the session to the answer to the operator's last message.

use super::OpencodeRunner;
use super::prompt::said_message_id;
use crate::domain::MessageId;
use crate::engine::runner::Steer;
use crate::opencode::wire::{ModelSelector, PromptPart, PromptRequest};

/// What a followed run waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Awaited {
    /// The answer to the session's last user message (the attempt's prompt, unless the
    /// operator added one in OpenCode itself).
    Prompt,
    /// Nothing yet: interrupted, the session waits for the operator's next message.
    Word,
    /// The answer to the operator's message `id` (`text`, sent again if it never arrives).
    Said { id: MessageId, text: String },
}

impl Awaited {
    /// The server's id of the user message whose answer ends the run, if it is not simply
    /// the last one.
    pub(super) fn message(&self) -> Option<String> {
        match self {
            Self::Said { id, .. } => Some(said_message_id(*id)),
            Self::Prompt | Self::Word => None,
        }
    }
}

impl OpencodeRunner {
    /// Pass the operator's `word` to the remote session; what the run waits for after it.
    pub(super) async fn steer(&self, dir: &str, remote: &str, word: Steer) -> Awaited {
        match word {
            Steer::Interrupt => {
                if let Err(e) = self.client.abort(dir, remote).await {
                    tracing::warn!(remote, error = %e, "could not interrupt the remote session");
                }
                Awaited::Word
            }
            // Its loop ended at the rejection: the answer it may have written since is not
            // the task's result.
            Steer::Halted => Awaited::Word,
            Steer::Say { text, id } => {
                self.send_said(dir, remote, id, &text).await;
                Awaited::Said { id, text }
            }
        }
    }

    /// Send the operator's message `id` (again: the same id is the same message).
    pub(super) async fn send_said(&self, dir: &str, remote: &str, id: MessageId, text: &str) {
        let body = PromptRequest {
            message_id: Some(said_message_id(id)),
            model: self.model.as_ref().map(|m| ModelSelector {
                provider_id: m.provider.clone(),
                model_id: m.model.clone(),
            }),
            agent: self.opencode_agent.clone(),
            parts: vec![PromptPart::Text {
                text: text.to_string(),
            }],
            ..PromptRequest::default()
        };
        if let Err(e) = self.client.prompt_async(dir, remote, &body).await {
            // Followed, the message is sent again if it does not show up.
            tracing::warn!(remote, error = %e, "could not send the operator's message yet");
        }
    }
}
