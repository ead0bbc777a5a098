//! The OpenCode server's JSON shapes (version 1.18.33): what its REST calls and events carry, and
//! the request bodies ocio sends. Kept apart from ocio's domain types and tolerant on reading:
//! unknown fields are ignored, missing fields default (only ids are required), unknown tags
//! become an `Unknown`/`Other` variant, and numbers the spec calls `number` may be integer or
//! float.
//!
//! Variants that carry several shapes (`Part`, `ToolState`, `MessageInfo`, `SessionStatus`) are
//! read in one pass, without buffering, by `wire_read.rs`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[path = "wire_read.rs"]
mod read;
#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;

use read::num;

/// `GET /global/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Health {
    pub healthy: bool,
    pub version: String,
}

/// Token counts of a session, message or step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Tokens {
    #[serde(deserialize_with = "num::u64")]
    pub input: u64,
    #[serde(deserialize_with = "num::u64")]
    pub output: u64,
    #[serde(deserialize_with = "num::u64")]
    pub(crate) reasoning: u64,
    pub(crate) cache: CacheTokens,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct CacheTokens {
    #[serde(deserialize_with = "num::u64")]
    pub(crate) read: u64,
    #[serde(deserialize_with = "num::u64")]
    pub(crate) write: u64,
}

/// A session (`Session` in the spec): `POST /session`, `GET /session[/{id}]`, `session.*` events.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub(crate) directory: String,
    #[serde(default, rename = "parentID")]
    pub(crate) parent_id: Option<String>,
    #[serde(default)]
    pub(crate) version: Option<String>,
    #[serde(default, deserialize_with = "num::f64")]
    pub(crate) cost: f64,
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub(crate) time: SessionTime,
    #[serde(default)]
    pub(crate) slug: String,
    #[serde(default, rename = "projectID")]
    pub(crate) project_id: String,
    /// Set once the session has run (the agent of its last prompt).
    #[serde(default)]
    pub(crate) agent: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<SessionModel>,
    /// Line counts of the session's changes. In 1.18.33 these stayed 0 even after edits.
    #[serde(default)]
    pub(crate) summary: Option<SessionSummary>,
    #[serde(default)]
    pub(crate) permission: Option<Vec<PermissionRule>>,
}

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct SessionTime {
    #[serde(deserialize_with = "num::i64")]
    pub(crate) created: i64,
    #[serde(deserialize_with = "num::i64")]
    pub(crate) updated: i64,
    #[serde(deserialize_with = "num::opt_i64")]
    pub(crate) archived: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct SessionSummary {
    #[serde(deserialize_with = "num::u64")]
    pub(crate) additions: u64,
    #[serde(deserialize_with = "num::u64")]
    pub(crate) deletions: u64,
    #[serde(deserialize_with = "num::u64")]
    pub(crate) files: u64,
}

/// The model of a session, as `Session.model` and the `POST /session` body name it (`id`, not
/// `modelID`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionModel {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default, rename = "providerID")]
    pub(crate) provider_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) variant: Option<String>,
}

/// What a session is doing. `GET /session/status` lists only busy and retrying sessions, so a
/// session missing from it is idle (the `Default`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "read::StatusUnion")]
pub enum SessionStatus {
    #[default]
    Idle,
    Busy,
    /// The model call failed and will be retried at `next` (ms since epoch).
    Retry {
        attempt: u32,
        message: String,
        next: i64,
    },
    Unknown,
}

/// `GET /session/status`: session id to status.
pub(crate) type SessionStatusMap = HashMap<String, SessionStatus>;

/// One message's header (`Message` in the spec), by `role`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "read::MessageUnion")]
pub enum MessageInfo {
    User(UserMessage),
    Assistant(AssistantMessage),
    Unknown,
}

impl MessageInfo {
    /// The message's id (the tests check each part names its message).
    #[cfg(test)]
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Self::User(m) => Some(&m.id),
            Self::Assistant(m) => Some(&m.id),
            Self::Unknown => None,
        }
    }

    /// When the message was made (milliseconds since the Unix epoch).
    pub(crate) fn created(&self) -> Option<i64> {
        match self {
            Self::User(m) => Some(m.time.created),
            Self::Assistant(m) => Some(m.time.created),
            Self::Unknown => None,
        }
    }

    pub(crate) fn session_id(&self) -> Option<&str> {
        match self {
            Self::User(m) => Some(&m.session_id),
            Self::Assistant(m) => Some(&m.session_id),
            Self::Unknown => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserMessage {
    pub id: String,
    pub(crate) session_id: String,
    pub(crate) time: MessageTime,
    pub(crate) agent: Option<String>,
    pub(crate) model: Option<ModelSelector>,
    /// The files this prompt's turn changed, filled in after the turn (`message.updated`).
    pub(crate) summary: Option<UserSummary>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssistantMessage {
    pub(crate) id: String,
    pub(crate) session_id: String,
    /// The user message this replies to.
    pub(crate) parent_id: String,
    pub(crate) cost: f64,
    pub(crate) tokens: Tokens,
    pub error: Option<MessageError>,
    /// Why the last step ended: `stop`, `tool-calls`, `length`, ...
    pub(crate) finish: Option<String>,
    pub(crate) time: MessageTime,
    /// The JSON produced for a prompt with `format: json_schema` (field `structured`).
    pub(crate) structured: Option<Value>,
    pub(crate) model_id: String,
    pub(crate) provider_id: String,
    pub(crate) agent: String,
}

/// Milliseconds since the Unix epoch; `completed` is set once the message is done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct MessageTime {
    #[serde(deserialize_with = "num::i64")]
    pub(crate) created: i64,
    #[serde(deserialize_with = "num::opt_i64")]
    pub(crate) completed: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct UserSummary {
    pub(crate) title: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) diffs: Vec<FileDiff>,
}

/// An error object of the server: `{"name": "APIError", "data": {"message": ..}}` (message and
/// session errors: ProviderAuthError, UnknownError, MessageAbortedError, APIError,
/// StructuredOutputError, ...) and also the REST error bodies, including the
/// `{"_tag": "PermissionNotFoundError", "message": ..}` kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "read::ErrorUnion")]
pub struct MessageError {
    pub name: String,
    pub message: Option<String>,
    /// HTTP status of the provider call (APIError).
    pub(crate) status_code: Option<u16>,
    /// Whether the server considers the provider call worth retrying (APIError).
    pub(crate) is_retryable: Option<bool>,
}

/// A message with its parts: the items of `GET /session/{id}/message` and the reply of the
/// blocking `POST /session/{id}/message`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageWithParts {
    pub info: MessageInfo,
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// One part of a message, by `type`. Types ocio does not look into (reasoning, file, agent,
/// subtask, snapshot, retry, compaction and any new one) are `Other`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "read::PartUnion")]
pub enum Part {
    Text(TextPart),
    Tool(ToolPart),
    StepStart(StepStartPart),
    StepFinish(StepFinishPart),
    Patch(PatchPart),
    Other {
        kind: String,
        id: String,
        session_id: String,
        message_id: String,
    },
}

impl Part {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Text(p) => &p.id,
            Self::Tool(p) => &p.id,
            Self::StepStart(p) => &p.id,
            Self::StepFinish(p) => &p.id,
            Self::Patch(p) => &p.id,
            Self::Other { id, .. } => id,
        }
    }

    pub(crate) fn session_id(&self) -> &str {
        match self {
            Self::Text(p) => &p.session_id,
            Self::Tool(p) => &p.session_id,
            Self::StepStart(p) => &p.session_id,
            Self::StepFinish(p) => &p.session_id,
            Self::Patch(p) => &p.session_id,
            Self::Other { session_id, .. } => session_id,
        }
    }

    /// The id of the message the part belongs to.
    #[cfg(test)]
    pub(crate) fn message_id(&self) -> &str {
        match self {
            Self::Text(p) => &p.message_id,
            Self::Tool(p) => &p.message_id,
            Self::StepStart(p) => &p.message_id,
            Self::StepFinish(p) => &p.message_id,
            Self::Patch(p) => &p.message_id,
            Self::Other { message_id, .. } => message_id,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextPart {
    pub(crate) id: String,
    pub(crate) session_id: String,
    pub(crate) message_id: String,
    /// The whole text so far (`message.part.delta` carries the increments).
    pub text: String,
    /// Written by OpenCode itself, not the model or the user.
    pub(crate) synthetic: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolPart {
    pub(crate) id: String,
    pub(crate) session_id: String,
    pub(crate) message_id: String,
    pub(crate) call_id: String,
    pub tool: String,
    pub state: ToolState,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepStartPart {
    pub(crate) id: String,
    pub(crate) session_id: String,
    pub(crate) message_id: String,
    pub(crate) snapshot: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepFinishPart {
    pub(crate) id: String,
    pub(crate) session_id: String,
    pub(crate) message_id: String,
    /// `stop`, `tool-calls`, ...
    pub(crate) reason: String,
    pub(crate) cost: f64,
    pub(crate) tokens: Tokens,
    pub(crate) snapshot: Option<String>,
}

/// The files a step changed, as a snapshot `hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchPart {
    pub(crate) id: String,
    pub(crate) session_id: String,
    pub(crate) message_id: String,
    pub(crate) hash: String,
    pub(crate) files: Vec<String>,
}

/// Where a tool call is, by `status`. `input` is the tool's arguments (`{}` while pending).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "read::ToolStateUnion")]
pub enum ToolState {
    Pending {
        input: Value,
    },
    Running {
        input: Value,
        title: Option<String>,
    },
    Completed {
        input: Value,
        output: String,
        title: String,
    },
    Error {
        input: Value,
        error: String,
    },
    Unknown,
}

/// A tool call waiting for approval (`GET /permission`, `permission.asked`). The session waits
/// until someone replies.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PermissionRequest {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// What is asked for: `bash`, `edit`, `external_directory`, ...
    #[serde(default)]
    pub(crate) permission: String,
    #[serde(default)]
    pub(crate) patterns: Vec<String>,
    #[serde(default)]
    pub(crate) metadata: Value,
    /// The patterns an `always` reply would allow from now on.
    #[serde(default)]
    pub(crate) always: Vec<String>,
    #[serde(default)]
    pub(crate) tool: Option<ToolRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ToolRef {
    #[serde(rename = "messageID")]
    pub(crate) message_id: String,
    #[serde(rename = "callID")]
    pub(crate) call_id: String,
}

/// The answer to a permission request. `Unknown` only comes from reading a value this version
/// does not know; serializing it is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionReply {
    Once,
    Always,
    Reject,
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Body of `POST /permission/{requestID}/reply`; `message` goes to the model with a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PermissionReplyBody {
    pub(crate) reply: PermissionReply,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

/// A question a session's model asks with OpenCode's `question` tool (`GET /question`,
/// `question.asked`). The session waits until someone answers or rejects it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct QuestionRequest {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(default)]
    pub(crate) questions: Vec<crate::engine::question::QuestionItem>,
}

/// Body of `POST /question/{requestID}/reply`: per question, the labels picked (or the typed
/// text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct QuestionReplyBody {
    pub(crate) answers: Vec<Vec<String>>,
}

/// One rule of a permission ruleset (agents, sessions): may `permission` touch `pattern`?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRule {
    #[serde(default)]
    pub(crate) permission: String,
    #[serde(default)]
    pub(crate) pattern: String,
    pub(crate) action: PermissionAction,
}

impl PermissionRule {
    /// The rules for a session whose questions nobody will answer (`[engine] questions =
    /// "deny"`), on top of its agent's. OpenCode's `question` tool waits for a person to pick an
    /// answer: denied, the model is not offered it and decides by itself instead of the session
    /// waiting until its time limit.
    pub(crate) fn unattended() -> Vec<Self> {
        vec![Self {
            permission: "question".into(),
            pattern: "*".into(),
            action: PermissionAction::Deny,
        }]
    }

    /// The rules for a session whose questions ocio relays to the operator: the `question`
    /// tool allowed (it asks the operator through `question.asked`, not a permission).
    pub(crate) fn relayed() -> Vec<Self> {
        vec![Self {
            permission: "question".into(),
            pattern: "*".into(),
            action: PermissionAction::Allow,
        }]
    }
}

/// `Unknown` only comes from reading; serializing it is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PermissionAction {
    Allow,
    Deny,
    Ask,
    #[serde(other, skip_serializing)]
    Unknown,
}

/// One changed file. `GET /session/{id}/diff`, the `session.diff` event, `GET /vcs/diff` and
/// user message summaries send `file` (`SnapshotFileDiff`, `VcsFileDiff`); the spec's `FileDiff`
/// sends `path`: both are read. `GET /vcs/status` sends no `patch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FileDiff {
    #[serde(alias = "path")]
    pub file: String,
    /// `added`, `deleted` or `modified`.
    pub(crate) status: Option<String>,
    #[serde(deserialize_with = "num::u64")]
    pub(crate) additions: u64,
    #[serde(deserialize_with = "num::u64")]
    pub(crate) deletions: u64,
    pub(crate) patch: Option<String>,
}

/// `GET /vcs/diff?mode=..`: changed files with patches.
pub(crate) type VcsDiff = Vec<FileDiff>;

/// The required `mode` query parameter of `GET /vcs/diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VcsDiffMode {
    /// Working tree against HEAD.
    Git,
    /// Against the default branch.
    Branch,
}

impl VcsDiffMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Git => "git",
            Self::Branch => "branch",
        }
    }
}

/// An agent (`GET /agent`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AgentInfo {
    pub name: String,
    pub(crate) description: Option<String>,
    /// `primary`, `subagent` or `all`.
    pub(crate) mode: Option<String>,
    /// Built into OpenCode rather than configured.
    pub(crate) native: bool,
    pub(crate) hidden: bool,
    pub(crate) model: Option<ModelSelector>,
    pub(crate) permission: Vec<PermissionRule>,
}

/// A provider's model, as prompts and agents name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSelector {
    #[serde(default, rename = "providerID")]
    pub provider_id: String,
    #[serde(default, rename = "modelID")]
    pub model_id: String,
}

/// Body of `POST /session`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateSession {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(rename = "parentID", skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<SessionModel>,
    /// Rules for this session on top of the agent's (`PermissionRuleset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Vec<PermissionRule>>,
}

/// Body of `POST /session/{id}/prompt_async` and the blocking `POST /session/{id}/message`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromptRequest {
    /// The id the user message gets (it must start with `msg` and be unique on the server).
    /// The same prompt sent again with the same id is the same message: the server runs it
    /// once (1.18.33).
    #[serde(rename = "messageID", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Beware (1.18.33): once any prompt of a session carried `format` (even `Text`), `GET
    /// /session/{id}/message` answers 400 for every page that includes that prompt, so send it
    /// only when structured output is wanted and read the result from the prompt's reply or
    /// the `message.updated` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
    /// Turn tools on or off for this prompt, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<BTreeMap<String, bool>>,
    pub parts: Vec<PromptPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PromptPart {
    Text { text: String },
}

/// What the reply must look like (`OutputFormatText`, `OutputFormatJsonSchema`). With a schema
/// the model must call a `StructuredOutput` tool; the result lands in
/// `AssistantMessage::structured`, or the message gets a `StructuredOutputError`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum OutputFormat {
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "json_schema")]
    JsonSchema {
        schema: Value,
        /// How often the server asks again for valid output (server default 2).
        #[serde(rename = "retryCount", skip_serializing_if = "Option::is_none")]
        retry_count: Option<u32>,
    },
}
