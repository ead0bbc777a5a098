//! How the tagged wire shapes are read in one pass: each is read into a flat "union" struct with
//! the fields of all its variants, then sorted by its tag (which may come anywhere in the
//! object; nothing is buffered). Also the lenient number readers.

use serde::Deserialize;
use serde_json::Value;

use super::{
    AssistantMessage, MessageError, MessageInfo, MessageTime, ModelSelector, Part, PatchPart,
    SessionStatus, StepFinishPart, StepStartPart, TextPart, Tokens, ToolPart, ToolState,
    UserMessage, UserSummary,
};

#[derive(Deserialize)]
pub(super) struct StatusUnion {
    #[serde(default, rename = "type")]
    kind: StatusTag,
    #[serde(default, deserialize_with = "num::u32")]
    attempt: u32,
    #[serde(default)]
    message: String,
    #[serde(default, deserialize_with = "num::i64")]
    next: i64,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StatusTag {
    Idle,
    Busy,
    Retry,
    #[default]
    #[serde(other)]
    Unknown,
}

impl From<StatusUnion> for SessionStatus {
    fn from(u: StatusUnion) -> Self {
        match u.kind {
            StatusTag::Idle => Self::Idle,
            StatusTag::Busy => Self::Busy,
            StatusTag::Retry => Self::Retry {
                attempt: u.attempt,
                message: u.message,
                next: u.next,
            },
            StatusTag::Unknown => Self::Unknown,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct MessageUnion {
    #[serde(default)]
    role: Role,
    id: String,
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(default)]
    time: MessageTime,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    model: Option<ModelSelector>,
    #[serde(default)]
    summary: Option<SummaryField>,
    #[serde(default, rename = "parentID")]
    parent_id: String,
    #[serde(default, deserialize_with = "num::f64")]
    cost: f64,
    #[serde(default)]
    tokens: Tokens,
    #[serde(default)]
    error: Option<MessageError>,
    #[serde(default)]
    finish: Option<String>,
    #[serde(default)]
    structured: Option<Value>,
    #[serde(default, rename = "modelID")]
    model_id: String,
    #[serde(default, rename = "providerID")]
    provider_id: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Assistant,
    #[default]
    #[serde(other)]
    Unknown,
}

/// `summary` is an object on user messages and a flag on assistant ones.
enum SummaryField {
    Flag,
    User(UserSummary),
}

impl<'de> Deserialize<'de> for SummaryField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SummaryField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a summary object or flag")
            }
            fn visit_bool<E>(self, _: bool) -> Result<SummaryField, E> {
                Ok(SummaryField::Flag)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SummaryField, A::Error> {
                UserSummary::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(SummaryField::User)
            }
        }
        d.deserialize_any(V)
    }
}

impl From<MessageUnion> for MessageInfo {
    fn from(u: MessageUnion) -> Self {
        match u.role {
            Role::User => Self::User(UserMessage {
                id: u.id,
                session_id: u.session_id,
                time: u.time,
                agent: u.agent,
                model: u.model,
                summary: match u.summary {
                    Some(SummaryField::User(s)) => Some(s),
                    _ => None,
                },
            }),
            Role::Assistant => Self::Assistant(AssistantMessage {
                id: u.id,
                session_id: u.session_id,
                parent_id: u.parent_id,
                cost: u.cost,
                tokens: u.tokens,
                error: u.error,
                finish: u.finish,
                time: u.time,
                structured: u.structured.filter(|v| !v.is_null()),
                model_id: u.model_id,
                provider_id: u.provider_id,
                agent: u.agent.unwrap_or_default(),
            }),
            Role::Unknown => Self::Unknown,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorUnion {
    name: Option<String>,
    #[serde(rename = "_tag")]
    tag: Option<String>,
    message: Option<String>,
    data: Option<ErrorData>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ErrorData {
    message: Option<String>,
    #[serde(rename = "statusCode")]
    status_code: Option<u16>,
    #[serde(rename = "isRetryable")]
    is_retryable: Option<bool>,
}

impl From<ErrorUnion> for MessageError {
    fn from(u: ErrorUnion) -> Self {
        let data = u.data.unwrap_or_default();
        Self {
            name: u.name.or(u.tag).unwrap_or_default(),
            message: data.message.or(u.message),
            status_code: data.status_code,
            is_retryable: data.is_retryable,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct PartUnion {
    #[serde(default, rename = "type")]
    kind: String,
    id: String,
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "messageID")]
    message_id: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    synthetic: bool,
    #[serde(default, rename = "callID")]
    call_id: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    state: Option<ToolState>,
    #[serde(default)]
    reason: String,
    #[serde(default, deserialize_with = "num::f64")]
    cost: f64,
    #[serde(default)]
    tokens: Tokens,
    #[serde(default)]
    snapshot: Option<String>,
    #[serde(default)]
    hash: String,
    #[serde(default)]
    files: Vec<String>,
}

impl From<PartUnion> for Part {
    fn from(u: PartUnion) -> Self {
        let (id, session_id, message_id) = (u.id, u.session_id, u.message_id);
        match u.kind.as_str() {
            "text" => Self::Text(TextPart {
                id,
                session_id,
                message_id,
                text: u.text,
                synthetic: u.synthetic,
            }),
            "tool" => Self::Tool(ToolPart {
                id,
                session_id,
                message_id,
                call_id: u.call_id,
                tool: u.tool,
                state: u.state.unwrap_or(ToolState::Unknown),
            }),
            "step-start" => Self::StepStart(StepStartPart {
                id,
                session_id,
                message_id,
                snapshot: u.snapshot,
            }),
            "step-finish" => Self::StepFinish(StepFinishPart {
                id,
                session_id,
                message_id,
                reason: u.reason,
                cost: u.cost,
                tokens: u.tokens,
                snapshot: u.snapshot,
            }),
            "patch" => Self::Patch(PatchPart {
                id,
                session_id,
                message_id,
                hash: u.hash,
                files: u.files,
            }),
            _ => Self::Other {
                kind: u.kind,
                id,
                session_id,
                message_id,
            },
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ToolStateUnion {
    #[serde(default)]
    status: ToolTag,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    output: String,
    #[serde(default)]
    error: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ToolTag {
    Pending,
    Running,
    Completed,
    Error,
    #[default]
    #[serde(other)]
    Unknown,
}

impl From<ToolStateUnion> for ToolState {
    fn from(u: ToolStateUnion) -> Self {
        let input = u.input;
        match u.status {
            ToolTag::Pending => Self::Pending { input },
            ToolTag::Running => Self::Running {
                input,
                title: u.title,
            },
            ToolTag::Completed => Self::Completed {
                input,
                output: u.output,
                title: u.title.unwrap_or_default(),
            },
            ToolTag::Error => Self::Error {
                input,
                error: u.error,
            },
            ToolTag::Unknown => Self::Unknown,
        }
    }
}

/// Numbers read leniently: integer or float (rounded, clamped to the target range), and `null`
/// as zero / `None`. Use with `#[serde(default, deserialize_with = "num::..")]`.
pub(super) mod num {
    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    enum Num {
        U(u64),
        I(i64),
        F(f64),
        Null,
    }

    struct NumVisitor;

    impl<'de> Visitor<'de> for NumVisitor {
        type Value = Num;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Num, E> {
            Ok(Num::U(v))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Num, E> {
            Ok(Num::I(v))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Num, E> {
            Ok(Num::F(v))
        }
        fn visit_unit<E: Error>(self) -> Result<Num, E> {
            Ok(Num::Null)
        }
        fn visit_none<E: Error>(self) -> Result<Num, E> {
            Ok(Num::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Num, D::Error> {
            d.deserialize_any(NumVisitor)
        }
    }

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        d.deserialize_any(NumVisitor)
    }

    // `as` from f64 saturates and maps NaN to 0, which is what we want here.
    pub(crate) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(match read(d)? {
            Num::U(v) => v,
            Num::I(v) => u64::try_from(v).unwrap_or(0),
            Num::F(v) => v.round() as u64,
            Num::Null => 0,
        })
    }

    pub(crate) fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        u64(d).map(|v| u32::try_from(v).unwrap_or(u32::MAX))
    }

    pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        opt_i64(d).map(Option::unwrap_or_default)
    }

    pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(match read(d)? {
            Num::U(v) => Some(i64::try_from(v).unwrap_or(i64::MAX)),
            Num::I(v) => Some(v),
            Num::F(v) => Some(v.round() as i64),
            Num::Null => None,
        })
    }

    pub(crate) fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(match read(d)? {
            Num::U(v) => v as f64,
            Num::I(v) => v as f64,
            Num::F(v) => v,
            Num::Null => 0.0,
        })
    }
}
