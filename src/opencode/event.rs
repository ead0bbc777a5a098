//! Typed events of the OpenCode server's streams: one SSE `data` string of `GET /event`
//! (`{"id","type","properties"}`) or of `GET /global/event` (the same wrapped as
//! `{"directory","project","payload"}`) becomes a [`ServerEvent`], in one pass.
//!
//! `GET /event` only carries the events of one directory (the server's instance for
//! `?directory=`, its working directory by default); `GET /global/event` carries all of them.
//!
//! The envelope's `type` is read first (borrowed, no allocation) and picks what `properties` is
//! parsed into; types ocio does not use are skipped without building anything. Only if
//! `properties` comes before `type` is it buffered as a `serde_json::Value` first.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::wire::{
    FileDiff, MessageError, MessageInfo, Part, PermissionReply, PermissionRequest, QuestionRequest,
    SessionInfo, SessionStatus,
};

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;

/// An event ocio acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    Connected,
    /// Sent about every 10 s on an otherwise quiet stream.
    Heartbeat,
    SessionCreated {
        info: SessionInfo,
    },
    SessionUpdated {
        info: SessionInfo,
    },
    SessionDeleted {
        info: SessionInfo,
    },
    SessionStatus {
        session_id: String,
        status: SessionStatus,
    },
    /// Follows `SessionStatus` idle at the end of a turn.
    SessionIdle {
        session_id: String,
    },
    /// A turn failed (also when aborted: `MessageAbortedError`). Both fields may be missing.
    SessionError {
        session_id: Option<String>,
        error: Option<MessageError>,
    },
    SessionDiff {
        session_id: String,
        diff: Vec<FileDiff>,
    },
    MessageUpdated {
        info: MessageInfo,
    },
    MessageRemoved {
        session_id: String,
        message_id: String,
    },
    PartUpdated {
        part: Part,
    },
    /// Text appended to `field` (so far always `text`) of a part.
    PartDelta {
        session_id: String,
        message_id: String,
        part_id: String,
        field: String,
        delta: String,
    },
    PermissionAsked(PermissionRequest),
    PermissionReplied {
        session_id: String,
        request_id: String,
        reply: PermissionReply,
    },
    QuestionAsked(QuestionRequest),
    /// A question was answered (`rejected`: or rejected), by anyone.
    QuestionSettled {
        session_id: String,
        request_id: String,
        rejected: bool,
    },
    /// A tool of the agent edited this file (absolute path).
    FileEdited {
        file: String,
    },
}

impl ServerEvent {
    /// The session the event is about, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Self::Connected | Self::Heartbeat | Self::FileEdited { .. } => None,
            Self::SessionCreated { info }
            | Self::SessionUpdated { info }
            | Self::SessionDeleted { info } => Some(&info.id),
            Self::SessionStatus { session_id, .. }
            | Self::SessionIdle { session_id }
            | Self::SessionDiff { session_id, .. }
            | Self::MessageRemoved { session_id, .. }
            | Self::PartDelta { session_id, .. }
            | Self::PermissionReplied { session_id, .. }
            | Self::QuestionSettled { session_id, .. } => Some(session_id),
            Self::SessionError { session_id, .. } => session_id.as_deref(),
            Self::MessageUpdated { info } => info.session_id(),
            Self::PartUpdated { part } => Some(part.session_id()),
            Self::PermissionAsked(request) => Some(&request.session_id),
            Self::QuestionAsked(request) => Some(&request.session_id),
        }
    }

    /// The server's `type` string of the event (the tests check each decodes to its own).
    #[cfg(test)]
    pub(crate) fn kind(&self) -> &'static str {
        let kind = match self {
            Self::Connected => Kind::Connected,
            Self::Heartbeat => Kind::Heartbeat,
            Self::SessionCreated { .. } => Kind::SessionCreated,
            Self::SessionUpdated { .. } => Kind::SessionUpdated,
            Self::SessionDeleted { .. } => Kind::SessionDeleted,
            Self::SessionStatus { .. } => Kind::SessionStatus,
            Self::SessionIdle { .. } => Kind::SessionIdle,
            Self::SessionError { .. } => Kind::SessionError,
            Self::SessionDiff { .. } => Kind::SessionDiff,
            Self::MessageUpdated { .. } => Kind::MessageUpdated,
            Self::MessageRemoved { .. } => Kind::MessageRemoved,
            Self::PartUpdated { .. } => Kind::PartUpdated,
            Self::PartDelta { .. } => Kind::PartDelta,
            Self::PermissionAsked(_) => Kind::PermissionAsked,
            Self::PermissionReplied { .. } => Kind::PermissionReplied,
            Self::QuestionAsked(_) => Kind::QuestionAsked,
            Self::QuestionSettled {
                rejected: false, ..
            } => Kind::QuestionReplied,
            Self::QuestionSettled { rejected: true, .. } => Kind::QuestionRejected,
            Self::FileEdited { .. } => Kind::FileEdited,
        };
        kind.name()
    }
}

/// An event of `GET /global/event` with the directory (instance) it happened in. `directory` is
/// `None` for server-wide events (`server.connected`, `server.heartbeat`) and on `GET /event`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalEvent {
    pub(crate) directory: Option<String>,
    pub(crate) event: ServerEvent,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("malformed event from the OpenCode server: {0}")]
    Malformed(serde_json::Error),
    #[error("`{kind}` event from the OpenCode server that ocio cannot read: {detail}")]
    Invalid {
        kind: &'static str,
        detail: serde_json::Error,
    },
}

/// Decode one `data` string of `GET /event`. `Ok(None)` for event types ocio does not use (and
/// for any unknown type); `Err` only for malformed JSON or a known type missing what ocio needs
/// (ids). A `GET /global/event` line is accepted too (its directory is dropped).
pub fn decode(data: &str) -> Result<Option<ServerEvent>, EventError> {
    decode_global(data).map(|found| found.map(|g| g.event))
}

/// Decode one `data` string of `GET /global/event` (or of `GET /event`), keeping the directory.
/// Same rules as [`decode`]; the global stream's `sync` duplicates are ignored.
pub fn decode_global(data: &str) -> Result<Option<GlobalEvent>, EventError> {
    let mut kind = None;
    let mut de = serde_json::Deserializer::from_str(data);
    let result = ObjectSeed {
        kind: &mut kind,
        nested: false,
    }
    .deserialize(&mut de)
    .and_then(|found| de.end().map(|()| found));
    match result {
        Ok(Found { directory, event }) => Ok(event.map(|event| GlobalEvent { directory, event })),
        Err(detail) => Err(match kind {
            Some(kind) if kind != Kind::Ignored && detail.is_data() => EventError::Invalid {
                kind: kind.name(),
                detail,
            },
            _ => EventError::Malformed(detail),
        }),
    }
}

/// The event types ocio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connected,
    Heartbeat,
    SessionCreated,
    SessionUpdated,
    SessionDeleted,
    SessionStatus,
    SessionIdle,
    SessionError,
    SessionDiff,
    MessageUpdated,
    MessageRemoved,
    PartUpdated,
    PartDelta,
    PermissionAsked,
    PermissionReplied,
    QuestionAsked,
    QuestionReplied,
    QuestionRejected,
    FileEdited,
    Ignored,
}

const KINDS: [(Kind, &str); 19] = [
    (Kind::Connected, "server.connected"),
    (Kind::Heartbeat, "server.heartbeat"),
    (Kind::SessionCreated, "session.created"),
    (Kind::SessionUpdated, "session.updated"),
    (Kind::SessionDeleted, "session.deleted"),
    (Kind::SessionStatus, "session.status"),
    (Kind::SessionIdle, "session.idle"),
    (Kind::SessionError, "session.error"),
    (Kind::SessionDiff, "session.diff"),
    (Kind::MessageUpdated, "message.updated"),
    (Kind::MessageRemoved, "message.removed"),
    (Kind::PartUpdated, "message.part.updated"),
    (Kind::PartDelta, "message.part.delta"),
    (Kind::PermissionAsked, "permission.asked"),
    (Kind::PermissionReplied, "permission.replied"),
    (Kind::QuestionAsked, "question.asked"),
    (Kind::QuestionReplied, "question.replied"),
    (Kind::QuestionRejected, "question.rejected"),
    (Kind::FileEdited, "file.edited"),
];

impl Kind {
    fn parse(s: &str) -> Self {
        KINDS
            .iter()
            .find(|(_, name)| *name == s)
            .map_or(Self::Ignored, |(kind, _)| *kind)
    }

    fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("ignored", |(_, name)| name)
    }

    /// Events without properties ocio needs.
    fn bare(self) -> Option<ServerEvent> {
        match self {
            Self::Connected => Some(ServerEvent::Connected),
            Self::Heartbeat => Some(ServerEvent::Heartbeat),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event type")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
                Ok(Kind::parse(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// The keys of an event object that matter.
enum Key {
    Type,
    Properties,
    Payload,
    Directory,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "type" => Key::Type,
                    "properties" => Key::Properties,
                    "payload" => Key::Payload,
                    "directory" => Key::Directory,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// What one pass over an event object found.
struct Found {
    directory: Option<String>,
    event: Option<ServerEvent>,
}

/// Reads an event object; records the type it saw in `kind` so errors can name it. `nested` is
/// set inside a global envelope's `payload`.
struct ObjectSeed<'k> {
    kind: &'k mut Option<Kind>,
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Found;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let kind_slot = self.kind;
        let mut here: Option<Kind> = None;
        let mut directory = None;
        let mut event = None;
        let mut saw_properties = false;
        let mut early_properties: Option<serde_json::Value> = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type if here.is_none() => {
                    let kind: Kind = map.next_value()?;
                    here = Some(kind);
                    *kind_slot = Some(kind);
                    if let Some(value) = early_properties.take() {
                        event = PropertiesSeed(kind)
                            .deserialize(value)
                            .map_err(de::Error::custom)?;
                    }
                }
                Key::Properties if !saw_properties => {
                    saw_properties = true;
                    match here {
                        Some(kind) => event = map.next_value_seed(PropertiesSeed(kind))?,
                        None => early_properties = Some(map.next_value()?),
                    }
                }
                Key::Payload if !self.nested => {
                    let found = map.next_value_seed(ObjectSeed {
                        kind: &mut *kind_slot,
                        nested: true,
                    })?;
                    event = found.event;
                }
                Key::Directory if !self.nested => directory = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(kind) = here
            && !saw_properties
            && kind != Kind::Ignored
        {
            event = kind.bare();
            if event.is_none() {
                return Err(de::Error::missing_field("properties"));
            }
        }
        Ok(Found { directory, event })
    }
}

/// Reads `properties` as what the event type says.
struct PropertiesSeed(Kind);

impl<'de> DeserializeSeed<'de> for PropertiesSeed {
    type Value = Option<ServerEvent>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<ServerEvent>, D::Error> {
        let event = match self.0 {
            Kind::Ignored => {
                IgnoredAny::deserialize(d)?;
                return Ok(None);
            }
            Kind::Connected | Kind::Heartbeat => {
                IgnoredAny::deserialize(d)?;
                return Ok(self.0.bare());
            }
            Kind::SessionCreated => ServerEvent::SessionCreated {
                info: Info::deserialize(d)?.info,
            },
            Kind::SessionUpdated => ServerEvent::SessionUpdated {
                info: Info::deserialize(d)?.info,
            },
            Kind::SessionDeleted => ServerEvent::SessionDeleted {
                info: Info::deserialize(d)?.info,
            },
            Kind::SessionStatus => {
                let p = StatusProps::deserialize(d)?;
                ServerEvent::SessionStatus {
                    session_id: p.session_id,
                    status: p.status,
                }
            }
            Kind::SessionIdle => ServerEvent::SessionIdle {
                session_id: SessionOnly::deserialize(d)?.session_id,
            },
            Kind::SessionError => {
                let p = ErrorProps::deserialize(d)?;
                ServerEvent::SessionError {
                    session_id: p.session_id,
                    error: p.error,
                }
            }
            Kind::SessionDiff => {
                let p = DiffProps::deserialize(d)?;
                ServerEvent::SessionDiff {
                    session_id: p.session_id,
                    diff: p.diff,
                }
            }
            Kind::MessageUpdated => ServerEvent::MessageUpdated {
                info: Info::deserialize(d)?.info,
            },
            Kind::MessageRemoved => {
                let p = RemovedProps::deserialize(d)?;
                ServerEvent::MessageRemoved {
                    session_id: p.session_id,
                    message_id: p.message_id,
                }
            }
            Kind::PartUpdated => ServerEvent::PartUpdated {
                part: PartProps::deserialize(d)?.part,
            },
            Kind::PartDelta => {
                let p = DeltaProps::deserialize(d)?;
                ServerEvent::PartDelta {
                    session_id: p.session_id,
                    message_id: p.message_id,
                    part_id: p.part_id,
                    field: p.field,
                    delta: p.delta,
                }
            }
            Kind::PermissionAsked => {
                ServerEvent::PermissionAsked(PermissionRequest::deserialize(d)?)
            }
            Kind::PermissionReplied => {
                let p = RepliedProps::deserialize(d)?;
                ServerEvent::PermissionReplied {
                    session_id: p.session_id,
                    request_id: p.request_id,
                    reply: p.reply,
                }
            }
            Kind::QuestionAsked => ServerEvent::QuestionAsked(QuestionRequest::deserialize(d)?),
            Kind::QuestionReplied | Kind::QuestionRejected => {
                let p = QuestionProps::deserialize(d)?;
                ServerEvent::QuestionSettled {
                    session_id: p.session_id,
                    request_id: p.request_id,
                    rejected: self.0 == Kind::QuestionRejected,
                }
            }
            Kind::FileEdited => ServerEvent::FileEdited {
                file: FileProps::deserialize(d)?.file,
            },
        };
        Ok(Some(event))
    }
}

#[derive(Deserialize)]
struct Info<T> {
    info: T,
}

#[derive(Deserialize)]
struct StatusProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    status: SessionStatus,
}

#[derive(Deserialize)]
struct SessionOnly {
    #[serde(rename = "sessionID")]
    session_id: String,
}

#[derive(Deserialize)]
struct ErrorProps {
    #[serde(default, rename = "sessionID")]
    session_id: Option<String>,
    #[serde(default)]
    error: Option<MessageError>,
}

#[derive(Deserialize)]
struct DiffProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(default)]
    diff: Vec<FileDiff>,
}

#[derive(Deserialize)]
struct RemovedProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "messageID")]
    message_id: String,
}

#[derive(Deserialize)]
struct PartProps {
    part: Part,
}

#[derive(Deserialize)]
struct DeltaProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "messageID")]
    message_id: String,
    #[serde(rename = "partID")]
    part_id: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    delta: String,
}

#[derive(Deserialize)]
struct RepliedProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "requestID")]
    request_id: String,
    reply: PermissionReply,
}

#[derive(Deserialize)]
struct QuestionProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "requestID")]
    request_id: String,
}

#[derive(Deserialize)]
struct FileProps {
    file: String,
}
