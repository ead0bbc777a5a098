//! The OpenAI chat-completions wire format as the scripted model needs it: reading a request
//! (last user text, system prompt, turn index, offered tools, side-job kind) and writing the
//! answer as streaming chunks, a whole completion, an error body or the model list.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::script::{STRUCTURED_OUTPUT_TOOL, Turn, Usage};

/// The parts of a `POST /v1/chat/completions` body the scripted model reads. Everything else
/// (`max_tokens`, `tool_choice`, `stream_options`, ...) is ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    #[serde(default)]
    pub(crate) model: Option<String>,
    pub(crate) messages: Vec<ChatMessage>,
    #[serde(default)]
    pub(crate) tools: Option<Vec<Value>>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatMessage {
    pub(crate) role: String,
    #[serde(default)]
    pub(crate) content: Option<Value>,
}

/// A model call OpenCode makes for itself rather than for the conversation: recognised by
/// carrying no tools (every coding call of OpenCode 1.18.33 offers some; an agent with every
/// tool disabled would look like a side job too), told apart by the system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideJob {
    /// "You are a title generator..." with the first user message: the session title.
    Title,
    /// "You are a context summarization agent..." (`POST /session/{id}/summarize`, compaction).
    Summary,
    /// Any other call without tools.
    Other,
}

/// Text answered to the summary side job.
pub(crate) const SUMMARY_TEXT: &str = "## Summary\nScripted conversation; nothing to carry over.";
/// Text answered to an unrecognised side job.
pub(crate) const OTHER_SIDE_JOB_TEXT: &str = "ok";

/// What the scripted model needs to know about one call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallView {
    pub(crate) last_user_text: Option<String>,
    pub(crate) system_text: String,
    /// Assistant messages after the last user message: which turn of the rule this call is.
    pub(crate) turn_index: usize,
    pub(crate) tools: Vec<String>,
    /// What the tools called since the last user message answered (`tool` messages), in order.
    pub(crate) tool_results: Vec<String>,
    pub(crate) stream: bool,
    pub(crate) model: String,
}

impl ChatRequest {
    pub(crate) fn view(&self, default_model: &str) -> CallView {
        let last_user = self.messages.iter().rposition(|m| m.role == "user");
        let after_user = last_user.map_or(0, |i| i + 1);
        let turn_index = self
            .messages
            .iter()
            .skip(after_user)
            .filter(|m| m.role == "assistant")
            .count();
        let system_text = self
            .messages
            .iter()
            .filter(|m| m.role == "system" || m.role == "developer")
            .map(|m| content_text(m.content.as_ref()))
            .collect::<Vec<_>>()
            .join("\n");
        let tools = self
            .tools
            .iter()
            .flatten()
            .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        CallView {
            last_user_text: last_user
                .and_then(|i| self.messages.get(i))
                .map(|m| content_text(m.content.as_ref())),
            system_text,
            turn_index,
            tools,
            tool_results: self
                .messages
                .iter()
                .skip(after_user)
                .filter(|m| m.role == "tool")
                .map(|m| content_text(m.content.as_ref()))
                .collect(),
            stream: self.stream.unwrap_or(false),
            model: self
                .model
                .clone()
                .unwrap_or_else(|| default_model.to_owned()),
        }
    }
}

impl CallView {
    pub(crate) fn side_job(&self) -> Option<SideJob> {
        if !self.tools.is_empty() {
            return None;
        }
        let system = self.system_text.to_lowercase();
        Some(if system.contains("title generator") {
            SideJob::Title
        } else if system.contains("summarization") {
            SideJob::Summary
        } else {
            SideJob::Other
        })
    }
}

/// The text of a message's `content`: a string, or the `text` of each part of an array.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// One assistant reply, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) content: Option<String>,
    /// `(id, name, arguments as JSON text)`.
    pub(crate) tool_calls: Vec<(String, String, String)>,
    pub(crate) usage: Option<Usage>,
}

impl Reply {
    pub(crate) fn text(text: &str) -> Self {
        Self {
            content: Some(text.to_owned()),
            tool_calls: Vec::new(),
            usage: None,
        }
    }

    /// The reply a turn gives; tool call ids are `call_{call_seq}_{i}`. A structured answer
    /// becomes a `StructuredOutput` call when the request offered that tool, else JSON text.
    pub(crate) fn from_turn(turn: &Turn, offered: &[String], call_seq: u64) -> Self {
        let mut content = turn.text.clone();
        let mut calls: Vec<(String, String)> = turn
            .tool_calls
            .iter()
            .map(|c| (c.name.clone(), arguments_text(&c.arguments)))
            .collect();
        if let Some(value) = &turn.structured {
            if offered.iter().any(|t| t == STRUCTURED_OUTPUT_TOOL) {
                calls.push((STRUCTURED_OUTPUT_TOOL.to_owned(), arguments_text(value)));
            } else {
                content
                    .get_or_insert_with(String::new)
                    .push_str(&value.to_string());
            }
        }
        Self {
            content,
            tool_calls: calls
                .into_iter()
                .enumerate()
                .map(|(i, (name, args))| (format!("call_{call_seq}_{i}"), name, args))
                .collect(),
            usage: turn.usage,
        }
    }

    fn finish_reason(&self) -> &'static str {
        if self.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    fn usage_json(&self) -> Option<Value> {
        self.usage.map(|u| {
            json!({
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "total_tokens": u.prompt_tokens + u.completion_tokens,
            })
        })
    }

    /// The whole reply as server-sent events: a role chunk, the text, one chunk per tool call,
    /// a final chunk with `finish_reason` (and `usage`), then `[DONE]`.
    pub(crate) fn stream_events(&self, id: &str, model: &str) -> Vec<Bytes> {
        let mut events = vec![self.role_event(id, model)];
        if let Some(text) = self.content.as_deref().filter(|t| !t.is_empty()) {
            events.push(event(&chunk(id, model, json!({ "content": text }), None)));
        }
        for (i, (call_id, name, args)) in self.tool_calls.iter().enumerate() {
            events.push(event(&chunk(
                id,
                model,
                json!({ "tool_calls": [tool_call_delta(i, call_id, name, args)] }),
                None,
            )));
        }
        let mut last = chunk(id, model, json!({}), Some(self.finish_reason()));
        if let Some(usage) = self.usage_json() {
            last["usage"] = usage;
        }
        events.push(event(&last));
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        events
    }

    /// The first part of the reply only: the role chunk, then half the text (or the first tool
    /// call with half its arguments).
    pub(crate) fn broken_stream_events(&self, id: &str, model: &str) -> Vec<Bytes> {
        let mut events = vec![self.role_event(id, model)];
        if let Some(text) = self.content.as_deref().filter(|t| !t.is_empty()) {
            events.push(event(&chunk(
                id,
                model,
                json!({ "content": first_half(text) }),
                None,
            )));
        } else if let Some((call_id, name, args)) = self.tool_calls.first() {
            events.push(event(&chunk(
                id,
                model,
                json!({ "tool_calls": [tool_call_delta(0, call_id, name, first_half(args))] }),
                None,
            )));
        }
        events
    }

    /// The reply as one `chat.completion` object (for `stream: false`).
    pub(crate) fn completion(&self, id: &str, model: &str) -> Value {
        let mut message = json!({ "role": "assistant", "content": self.content });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|(call_id, name, args)| {
                    json!({
                        "id": call_id,
                        "type": "function",
                        "function": { "name": name, "arguments": args },
                    })
                })
                .collect();
        }
        let mut body = json!({
            "id": id,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{ "index": 0, "message": message, "finish_reason": self.finish_reason() }],
        });
        if let Some(usage) = self.usage_json() {
            body["usage"] = usage;
        }
        body
    }

    fn role_event(&self, id: &str, model: &str) -> Bytes {
        event(&chunk(
            id,
            model,
            json!({ "role": "assistant", "content": "" }),
            None,
        ))
    }
}

fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

fn first_half(text: &str) -> &str {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

fn tool_call_delta(index: usize, call_id: &str, name: &str, args: &str) -> Value {
    json!({
        "index": index,
        "id": call_id,
        "type": "function",
        "function": { "name": name, "arguments": args },
    })
}

fn chunk(id: &str, model: &str, delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
    })
}

fn event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// An OpenAI-style error body. OpenCode retries any 5xx, and also a 4xx whose `type` is
/// `server_error`, so 4xx answers use `invalid_request_error`.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        429 => "rate_limit_error",
        500.. => "server_error",
        _ => "invalid_request_error",
    };
    json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
}

/// The `GET /v1/models` answer.
pub(crate) fn model_list(ids: &[&str]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "scripted" }))
        .collect();
    json!({ "object": "list", "data": data })
}
