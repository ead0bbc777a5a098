//! The scripted model: a small, deterministic OpenAI-compatible server that a real
//! `opencode serve` uses as its model provider, replying as a [`Script`] says. Used by tests and
//! demos to make real sessions edit files, take a set time, fail, hang or break.
//!
//! # Use
//! ```no_run
//! # async fn demo() -> Result<(), ocio::scripted::ScriptedModelError> {
//! use ocio::scripted::{Rule, Script, ScriptedModel, Turn};
//! let script = Script::new().rule(
//!     Rule::when("write hello")
//!         .turn(Turn::write("hello.txt", "hi\n").usage(100, 20))
//!         .turn(Turn::text("wrote it").usage(120, 5)),
//! );
//! let model = ScriptedModel::start(script).await?;
//! // Start `opencode serve` with OPENCODE_CONFIG_CONTENT =
//! // ocio::scripted::opencode_config(&model.base_url()), then
//! // prompt with {"model": {"providerID": "scripted", "modelID": "scripted-coder"}, ...}.
//! model.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # How a call is answered
//! `POST /v1/chat/completions`: OpenCode always sends `stream: true` and gets
//! `data: {chunk}` events ending in `data: [DONE]`; `stream: false` gets one
//! `chat.completion`. `GET /v1/models` lists [`MODEL_ID`]. A malformed body gets a 400 with an
//! OpenAI-style error.
//! - A call without tools is one of OpenCode's side jobs ([`SideJob`]): it gets a short fixed
//!   text (`DEFAULT_TITLE` for the title job) and never touches the rules.
//! - Otherwise the first rule whose `Match` holds for the last user message (and system
//!   prompt) gives the turns, else the script's `fallback`. The call's turn index N is the number
//!   of assistant messages after the last user message: 0 answers the prompt, 1 answers after
//!   the tool results of turn 0, and so on. Past the last turn (or with no rule and no
//!   fallback) the reply is the plain text [`DONE_TEXT`] with `finish_reason: "stop"`, so
//!   OpenCode ends the prompt. A new prompt in the same session starts again at turn 0.
//!
//! # What OpenCode 1.18.33 sends (observed with a real `opencode serve`)
//! - Every call: `POST {baseURL}/chat/completions`, `Authorization: Bearer <apiKey>`,
//!   `x-session-id: ses_...` (also `x-session-affinity`), body with `model`, `max_tokens: 32000`,
//!   `messages`, `stream: true`, `stream_options: {include_usage: true}`. It asks
//!   `GET {baseURL}/models` at start-up. Usage is read from the final chunk.
//! - Coding calls: one `system` message ("You are opencode, an interactive CLI tool..."),
//!   the `user` messages as plain strings, and `tools` bash, edit, glob, grep, question, read,
//!   skill, task, todowrite, webfetch, write with `tool_choice: "auto"`. After a tool call it
//!   sends the assistant message (`content: ""`, `tool_calls`) and a `role: "tool"` message
//!   (`tool_call_id`, e.g. "Wrote file successfully.").
//! - Tool arguments: `bash {command, timeout?, workdir?}`, `write {filePath, content}`,
//!   `edit {filePath, oldString, newString, replaceAll?}`, `read {filePath, offset?, limit?}`,
//!   `glob {pattern, path?}`, `grep {pattern, path?, include?}`. The schemas say paths must be
//!   absolute, but a relative `filePath` is taken from the session's directory.
//! - Structured output (`format: {type: "json_schema", schema}` on a prompt): no
//!   `response_format`. OpenCode adds a tool `StructuredOutput` whose parameters are the
//!   schema, and sets `tool_choice: "required"`. Answering with a `StructuredOutput` tool call
//!   whose arguments are the JSON ends the prompt at once: the assistant message gets
//!   `structured: {...}` and `finish: "tool-calls"`, and no further call is made. A text reply
//!   instead gives the message `error: {name: "StructuredOutputError", data: {message: "Model
//!   did not produce structured output", ...}}`.
//! - Side jobs carry no `tools` key at all. The title job (sessions created without a title)
//!   has system "You are a title generator. You output ONLY a thread title..." and user
//!   messages "Generate a title for this conversation:\n" then the prompt text, so matching
//!   on the last user text alone would wrongly hit a coding rule. The summary job
//!   (`POST /session/{id}/summarize`) has system "You are a context summarization agent..."
//!   and one user message holding the transcript.
//! - Errors: OpenCode retries every 5xx, and also a 4xx whose body says
//!   `type: "server_error"`; other 4xx put `error: {name: "APIError", data: {statusCode,
//!   isRetryable: false, ...}}` on the assistant message at once. Retries back off 2 s, 4 s,
//!   8 s, ... (session status `{type: "retry", attempt, message, next}`) unless the answer has
//!   a `retry-after-ms` header; after 5 retries (6 calls) the message gets the `APIError`. So a
//!   `fail_status` turn sends `retry-after-ms` (10 ms by default: a 500 ends in an error on the
//!   assistant message within a fraction of a second) and, with `fail_times`, can model a
//!   transient failure that a retry gets past.
//! - A stream cut before `[DONE]` (`broken`) is retried the same way, without regard to
//!   `retry-after-ms`: after about a minute the message gets `APIError` "Connection reset by
//!   server" (`ECONNRESET`, `isRetryable: true`). With `fail_times = 1` the retry 2 s later
//!   succeeds and the cut text is dropped.
//! - A call that never answers (`hang`) leaves the session `busy` indefinitely;
//!   `POST /session/{id}/abort` ends it with `MessageAbortedError`. On shutdown the hung call
//!   gets a 503, which OpenCode retries against the stopped server.
//! - A later prompt in the same session resends the whole transcript; the turn index restarts
//!   at 0 because it counts only assistant messages after the last user message.

mod openai;
mod script;
mod server;

#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod tests;

pub use openai::SideJob;
pub use script::{
    DONE_TEXT, Rule, STRUCTURED_OUTPUT_TOOL, Script, ScriptError, ToolCall, Turn, Usage,
};
pub use server::{RequestRecord, ScriptedModel, ScriptedModelError};

use serde_json::{Value, json};

/// Provider id of the scripted model in OpenCode's config.
pub const PROVIDER_ID: &str = "scripted";
/// Model id of the scripted model in OpenCode's config.
pub const MODEL_ID: &str = "scripted-coder";

/// The JSON for `OPENCODE_CONFIG_CONTENT` (or an `opencode.json`) that makes provider
/// [`PROVIDER_ID`] / model [`MODEL_ID`] the scripted model at `base_url`
/// (`http://127.0.0.1:PORT/v1`) and the default model.
pub fn opencode_config(base_url: &str) -> Value {
    json!({
        "provider": {
            PROVIDER_ID: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Scripted",
                "options": { "baseURL": base_url, "apiKey": "unused" },
                "models": { MODEL_ID: { "name": "Scripted Coder" } },
            }
        },
        "model": format!("{PROVIDER_ID}/{MODEL_ID}"),
    })
}
