//! The script: which reply the scripted model gives to which call. Rules match a conversation's
//! last user message (or its system prompt); the N-th call of a conversation gets the rule's N-th
//! turn. Plain data, with builders.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Text of the reply given when a conversation runs past the last turn of its rule (or when no
/// rule and no fallback apply): a plain `stop`, so OpenCode ends the prompt.
pub const DONE_TEXT: &str = "done";

/// The title given to OpenCode's title side job.
pub(crate) const DEFAULT_TITLE: &str = "Scripted session";

/// Name of the tool OpenCode adds when a prompt asks for structured output.
pub const STRUCTURED_OUTPUT_TOOL: &str = "StructuredOutput";

/// A whole script: ordered rules, then an optional fallback for calls no rule matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Tried in order; the first whose `when` matches wins.
    #[serde(default)]
    pub(crate) rules: Vec<Rule>,
    /// Turns for conversations no rule matches. `None` behaves like an empty list: every such
    /// call gets the plain [`DONE_TEXT`] reply.
    #[serde(default)]
    pub(crate) fallback: Option<Vec<Turn>>,
}

/// One rule: when it applies and the replies it gives, one per model call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A label shown in the request log.
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) when: Match,
    /// Turn N answers the N-th call of the conversation (N counted from 0).
    #[serde(default)]
    pub(crate) turns: Vec<Turn>,
}

/// Conditions on a call, all of which must hold. Case-sensitive substrings; empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Match {
    /// Substring of the text of the last `user` message.
    pub(crate) contains: String,
    /// Substring of the system prompt (all `system` messages joined).
    pub(crate) system_contains: String,
}

/// One model reply and how it is delivered.
///
/// Precedence when several modifiers are set: `delay_ms` first, then `fail_status` (while it
/// still has failures left), then `hang`, then `broken`, else the normal reply. The reply's
/// `finish_reason` is `tool_calls` if there is any tool call (including `structured`), else
/// `stop`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Turn {
    /// Assistant text.
    pub text: Option<String>,
    /// Tool calls, streamed as `tool_calls` deltas in this order.
    pub tool_calls: Vec<ToolCall>,
    /// A structured answer: sent as a call of OpenCode's `StructuredOutput` tool with this
    /// value as its arguments (as JSON text if the call did not offer that tool).
    pub structured: Option<Value>,
    /// Wait this long before answering.
    pub delay_ms: u64,
    /// Token counts put in the final chunk (OpenCode reports them on the message).
    pub usage: Option<Usage>,
    /// Answer with this HTTP status and an OpenAI-style error body instead of the reply.
    pub fail_status: Option<u16>,
    /// The error message of a failure (a default names the status).
    pub fail_message: Option<String>,
    /// Fail (by `fail_status` or `broken`) only the first N attempts of this turn in a
    /// conversation, then give the reply: OpenCode retries 5xx answers and cut streams, so
    /// this models a transient fault. `None`: every attempt fails.
    pub fail_times: Option<u32>,
    /// `retry-after-ms` header sent with a failure (default 10, so OpenCode's retries of a 5xx
    /// are quick; OpenCode honours it instead of its 2 s..30 s backoff).
    pub retry_after_ms: Option<u64>,
    /// Accept the call and never answer until the server shuts down.
    pub hang: bool,
    /// Send the first part of the reply, then cut the connection without `[DONE]`.
    /// OpenCode retries this with its own backoff (2 s, 4 s, ...; no `retry-after-ms` here).
    pub broken: bool,
}

/// One function call of an assistant reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The tool's name as OpenCode offers it (`write`, `bash`, ...).
    pub(crate) name: String,
    /// The arguments object (sent as JSON text). Absent means `{}`.
    #[serde(default)]
    pub(crate) arguments: Value,
}

/// Token counts reported for one reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
}

/// Why a script was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("invalid script: {0}")]
    Invalid(String),
}

/// What the script says to answer to one (non side-job) call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    /// Index of the rule that matched, `None` for the fallback.
    pub(crate) rule: Option<usize>,
    pub(crate) turn: Turn,
    /// The conversation ran past the last turn: `turn` is the plain [`DONE_TEXT`] reply.
    pub(crate) past_end: bool,
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule after the existing ones.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets the turns for calls no rule matches.
    #[cfg(test)]
    pub(crate) fn fallback(mut self, turns: impl IntoIterator<Item = Turn>) -> Self {
        self.fallback = Some(turns.into_iter().collect());
        self
    }

    /// Checks what serde cannot: failure statuses must be HTTP error codes.
    pub(crate) fn validate(&self) -> Result<(), ScriptError> {
        let rule_turns = self.rules.iter().enumerate().flat_map(|(r, rule)| {
            let name = rule.name.clone().unwrap_or_else(|| format!("rule {r}"));
            rule.turns
                .iter()
                .enumerate()
                .map(move |(t, turn)| (format!("{name}, turn {t}"), turn))
        });
        let fallback_turns = self
            .fallback
            .iter()
            .flatten()
            .enumerate()
            .map(|(t, turn)| (format!("fallback, turn {t}"), turn));
        for (place, turn) in rule_turns.chain(fallback_turns) {
            if let Some(status) = turn.fail_status
                && !(400..=599).contains(&status)
            {
                return Err(ScriptError::Invalid(format!(
                    "{place}: fail_status {status} is not an HTTP error status (400..=599)"
                )));
            }
        }
        Ok(())
    }

    /// Picks the turn for the `turn_index`-th call of a conversation whose last user message is
    /// `user` and whose system prompt is `system`.
    pub(crate) fn select(&self, user: &str, system: &str, turn_index: usize) -> Selection {
        let found = self.rules.iter().position(|r| r.when.matches(user, system));
        let turns: &[Turn] = match found {
            Some(i) => self.rules.get(i).map(|r| r.turns.as_slice()).unwrap_or(&[]),
            None => self.fallback.as_deref().unwrap_or(&[]),
        };
        match turns.get(turn_index) {
            Some(turn) => Selection {
                rule: found,
                turn: turn.clone(),
                past_end: false,
            },
            None => Selection {
                rule: found,
                turn: Turn::text(DONE_TEXT),
                past_end: true,
            },
        }
    }
}

impl Match {
    pub(crate) fn matches(&self, user: &str, system: &str) -> bool {
        user.contains(&self.contains) && system.contains(&self.system_contains)
    }
}

impl Rule {
    /// A rule for conversations whose last user message contains `text`.
    pub fn when(text: impl Into<String>) -> Self {
        Self {
            when: Match {
                contains: text.into(),
                system_contains: String::new(),
            },
            ..Self::default()
        }
    }

    /// Also requires the system prompt to contain `text`.
    #[cfg(test)]
    pub(crate) fn and_system(mut self, text: impl Into<String>) -> Self {
        self.when.system_contains = text.into();
        self
    }

    /// Names the rule in the request log.
    #[cfg(test)]
    pub(crate) fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds the reply to the next call.
    pub fn turn(mut self, turn: Turn) -> Self {
        self.turns.push(turn);
        self
    }
}

impl Turn {
    /// A text reply (`finish_reason: "stop"`).
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// A call of tool `name` with the arguments object `arguments`.
    pub fn tool(name: impl Into<String>, arguments: Value) -> Self {
        Self::default().and_tool(name, arguments)
    }

    /// OpenCode's `bash` tool (argument `command`).
    pub fn bash(command: impl Into<String>) -> Self {
        Self::tool("bash", json!({ "command": command.into() }))
    }

    /// OpenCode's `write` tool (arguments `filePath`, `content`). A relative path is taken
    /// from the session's directory.
    pub fn write(path: impl Into<String>, content: impl Into<String>) -> Self {
        Self::tool(
            "write",
            json!({ "filePath": path.into(), "content": content.into() }),
        )
    }

    /// OpenCode's `edit` tool (arguments `filePath`, `oldString`, `newString`).
    pub fn edit(path: impl Into<String>, old: impl Into<String>, new: impl Into<String>) -> Self {
        Self::tool(
            "edit",
            json!({ "filePath": path.into(), "oldString": old.into(), "newString": new.into() }),
        )
    }

    /// OpenCode's `read` tool (argument `filePath`).
    pub fn read(path: impl Into<String>) -> Self {
        Self::tool("read", json!({ "filePath": path.into() }))
    }

    /// A structured answer for a prompt sent with `format: {type: "json_schema", ...}`.
    pub fn structured(value: Value) -> Self {
        Self {
            structured: Some(value),
            ..Self::default()
        }
    }

    /// An HTTP error answer with this status.
    pub fn fail(status: u16) -> Self {
        Self {
            fail_status: Some(status),
            ..Self::default()
        }
    }

    /// A call that is accepted and never answered until the server shuts down.
    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::default()
        }
    }

    /// Adds another tool call to this reply.
    pub(crate) fn and_tool(mut self, name: impl Into<String>, arguments: Value) -> Self {
        self.tool_calls.push(ToolCall {
            name: name.into(),
            arguments,
        });
        self
    }

    /// Sets the assistant text that goes with tool calls or a structured answer.
    #[cfg(test)]
    pub(crate) fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Waits `ms` milliseconds before answering.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// Reports these token counts in the final chunk.
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.usage = Some(Usage {
            prompt_tokens,
            completion_tokens,
        });
        self
    }

    /// Fails (by `fail_status` or `broken`) only the first `times` attempts of this turn in a
    /// conversation, then gives the reply.
    pub fn fail_times(mut self, times: u32) -> Self {
        self.fail_times = Some(times);
        self
    }

    /// Sets the failure's error message.
    pub fn fail_message(mut self, message: impl Into<String>) -> Self {
        self.fail_message = Some(message.into());
        self
    }

    /// Sets the `retry-after-ms` header of a failure.
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// Cuts the connection part-way through the reply.
    #[cfg(test)]
    pub(crate) fn broken(mut self) -> Self {
        self.broken = true;
        self
    }
}
