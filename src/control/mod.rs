//! The control plane: how other ocio processes reach a running engine. The engine's host listens
//! on a Unix socket (mode 0600 in a 0700 directory); clients send newline-delimited JSON
//! requests and get one response line each, or, after `subscribe`, a stream of engine events.
//! This file owns the wire protocol and its errors; `server.rs` and `client.rs` speak it.
//!
//! Every line carries the protocol version `v`. A peer of another version gets a `version`
//! error naming both versions, never a misread reply.

pub mod client;
pub mod server;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{PlanId, SessionId, TaskId};
use crate::engine::approval::{Approver, Decision};
use crate::engine::{EngineError, EngineEvent, Entry, Logged, Proposal, Snapshot};

pub use client::{ControlClient, Feed};
pub use server::ControlServer;

/// The version of the protocol this build speaks.
pub const PROTOCOL: u32 = 1;

/// Longest request line the server reads (a plan file travels in one).
const MAX_REQUEST: usize = 16 * 1024 * 1024;

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Who is there: answered with [`EngineInfo`]. Clients send it first.
    Hello,
    Snapshot,
    Transcript {
        session: SessionId,
    },
    /// A plan file's text; `path` names it in errors and anchors its relative `repo`.
    Submit {
        path: PathBuf,
        text: String,
    },
    Cancel {
        task: TaskId,
    },
    Retry {
        task: TaskId,
    },
    /// `request`: the request's id or its short form.
    Approve {
        request: String,
        decision: Decision,
        /// Who answers (a client that does not say is [`Approver::Client`]).
        #[serde(default)]
        by: Approver,
    },
    Pause {
        paused: bool,
    },
    Drain {
        agent: String,
        drain: bool,
    },
    /// A session's changes as a unified diff.
    Diff {
        session: SessionId,
    },
    /// What a plan's finished tasks left for their dependents.
    Context {
        plan: PlanId,
    },
    /// Ask a planner for a plan towards `goal` in `repo`; nothing is queued.
    Plan {
        goal: String,
        repo: PathBuf,
    },
    /// The control log's newest `last` entries with a sequence number above `since` (0: from
    /// the start), oldest first.
    History {
        #[serde(default)]
        since: u64,
        last: usize,
    },
    /// Turn this connection into a stream of engine events, until either side closes it.
    Subscribe,
}

/// The engine's answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Hello {
        engine: EngineInfo,
    },
    Snapshot {
        snapshot: Box<Snapshot>,
    },
    Transcript {
        entries: Vec<Entry>,
    },
    Submitted {
        plan: PlanId,
    },
    Proposal {
        proposal: Proposal,
    },
    Diff {
        text: String,
    },
    Context {
        tasks: Vec<crate::domain::TaskContext>,
    },
    History {
        entries: Vec<Logged>,
    },
    Done,
}

impl Reply {
    /// The reply's `type`, to name it in a protocol error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Snapshot { .. } => "snapshot",
            Self::Transcript { .. } => "transcript",
            Self::Submitted { .. } => "submitted",
            Self::Proposal { .. } => "proposal",
            Self::Diff { .. } => "diff",
            Self::Context { .. } => "context",
            Self::History { .. } => "history",
            Self::Done => "done",
        }
    }
}

/// Who answers on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    pub protocol: u32,
    /// The ocio version hosting the engine.
    pub version: String,
    pub pid: u32,
    pub database: PathBuf,
    pub started_at: jiff::Timestamp,
    /// Where Prometheus metrics are served, when they are.
    #[serde(default)]
    pub metrics: Option<String>,
}

/// One line from client to server.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestLine {
    pub v: u32,
    pub request: Request,
}

/// One line from server to client.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResponseLine {
    pub v: u32,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Reply(Reply),
    Error(RemoteError),
    /// On a subscribed connection: one engine event.
    Event(EngineEvent),
    /// On a subscribed connection: this many events were dropped because the client read too
    /// slowly (take a fresh snapshot).
    Lagged(u64),
}

/// A request the engine could not carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Why a request failed, so a client can tell bad input from a broken engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The plan is invalid (the message names file, line and column).
    Plan,
    /// No such task, agent or permission request.
    NotFound,
    /// Not possible in the current state (e.g. retrying a task that is running).
    NotNow,
    /// The request line could not be read.
    BadRequest,
    /// The client speaks another protocol version.
    Version,
    /// The engine has stopped or its store failed.
    Failed,
}

impl ErrorKind {
    /// Whether the fault lies with what was asked (nothing was done; fix the input).
    pub fn is_input(self) -> bool {
        !matches!(self, Self::Failed)
    }
}

impl From<EngineError> for RemoteError {
    fn from(e: EngineError) -> Self {
        let kind = match &e {
            EngineError::Plan(_) | EngineError::Graph(_) => ErrorKind::Plan,
            EngineError::UnknownTask(_)
            | EngineError::UnknownAgent(_)
            | EngineError::UnknownApproval(_)
            | EngineError::UnknownPlan(_) => ErrorKind::NotFound,
            EngineError::NotNow { .. }
            | EngineError::DuplicateAgent(_)
            | EngineError::AgentBusy { .. }
            | EngineError::NoPlanner(_) => ErrorKind::NotNow,
            EngineError::Store(_)
            | EngineError::Stopped
            | EngineError::Workspace(_)
            | EngineError::Planner(_)
            | EngineError::Diff(_) => ErrorKind::Failed,
        };
        Self {
            kind,
            message: e.to_string(),
        }
    }
}

/// Why talking to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no engine is listening on {socket}")]
    NotRunning { socket: PathBuf },
    #[error(
        "the engine on {socket} speaks control protocol {theirs}{engine}, this ocio ({ours_version}) speaks {ours}\n  hint: use the same ocio build for both: restart the engine with this one"
    , engine = .engine_version.as_deref().map(|v| format!(" (ocio {v})")).unwrap_or_default(), ours_version = env!("CARGO_PKG_VERSION"))]
    Version {
        socket: PathBuf,
        theirs: u32,
        ours: u32,
        engine_version: Option<String>,
    },
    #[error("the engine refused: {}", .0.message)]
    Engine(RemoteError),
    #[error("the engine on {socket} sent something this ocio cannot read: {detail}")]
    Protocol { socket: PathBuf, detail: String },
    #[error("the engine on {socket} went away")]
    Gone { socket: PathBuf },
    #[error("control socket {socket}: {detail}")]
    Io { socket: PathBuf, detail: String },
}

/// Whether an engine answers on `socket` (plain `ocio` uses this to choose between hosting an
/// engine and attaching to the running one). A leftover socket file with no listener is no
/// engine.
pub fn is_running(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Reads one line (without its newline) of at most `limit` bytes; `None` at the end of the
/// stream.
async fn read_line<R>(reader: &mut R, limit: usize) -> std::io::Result<Option<Vec<u8>>>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut limited = tokio::io::AsyncReadExt::take(reader, limit as u64 + 1);
    let read = limited.read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {limit} bytes"),
        ));
    }
    Ok(Some(line))
}

/// Writes `value` as one JSON line.
async fn write_line<W>(writer: &mut W, value: &impl Serialize) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    writer.write_all(&bytes).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_carry_the_version() {
        let line = ResponseLine {
            v: PROTOCOL,
            body: Body::Reply(Reply::Submitted {
                plan: PlanId::generate(),
            }),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(
            text.starts_with("{\"v\":1,\"reply\":{\"type\":\"submitted\""),
            "{text}"
        );
        let back: ResponseLine = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.body, Body::Reply(Reply::Submitted { .. })));
        let request = serde_json::to_string(&RequestLine {
            v: PROTOCOL,
            request: Request::Cancel {
                task: TaskId::generate(),
            },
        })
        .unwrap();
        assert!(request.contains("\"type\":\"cancel\""), "{request}");
    }

    #[test]
    fn engine_errors_keep_their_message_and_say_whose_fault() {
        let e = RemoteError::from(EngineError::UnknownApproval("per_1".into()));
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.kind.is_input());
        assert!(e.message.contains("per_1"));
        assert!(!RemoteError::from(EngineError::Stopped).kind.is_input());
    }

    #[test]
    fn a_version_mismatch_names_both_versions() {
        let text = ControlError::Version {
            socket: "/run/x.sock".into(),
            theirs: 7,
            ours: PROTOCOL,
            engine_version: Some("9.9.9".into()),
        }
        .to_string();
        assert!(text.contains("protocol 7 (ocio 9.9.9)"), "{text}");
        assert!(
            text.contains("speaks 1") && text.contains("hint:"),
            "{text}"
        );
    }
}
