//! The control plane: how other ocio processes reach a running engine. The engine's host listens
//! on a Unix socket (mode 0600 in a 0700 directory); clients send newline-delimited JSON
//! requests and get one response line each, or, after `subscribe`, a stream of engine events.
//! This file owns the wire protocol and its errors; `server.rs` and `client.rs` speak it.
//!
//! Every line carries the protocol version `v`. A peer of another version gets a `version`
//! error naming both versions, never a misread reply.

pub(crate) mod client;
pub(crate) mod server;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{ApiError, Reply, Request, Told};

pub use client::ControlClient;
pub(crate) use server::ControlServer;

/// The version of the protocol this build speaks.
pub(crate) const PROTOCOL: u32 = 4;

/// Longest request line the server reads (a plan file travels in one).
const MAX_REQUEST: usize = 16 * 1024 * 1024;

/// What a client sends on a connection: a greeting, a subscription, or one of the engine's
/// requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Ask {
    /// Who is there: answered with [`EngineInfo`]. Clients send it first.
    Hello,
    /// Turn this connection into a stream of numbered engine events, until either side
    /// closes it; a control room says so (questions wait for an answer while one follows).
    Subscribe {
        #[serde(default)]
        follower: crate::engine::Follower,
    },
    #[serde(untagged)]
    Call(Request),
}

/// What the server answers a line with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Answer {
    Hello {
        engine: EngineInfo,
    },
    #[serde(untagged)]
    Reply(Reply),
}

/// Who answers on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    pub(crate) protocol: u32,
    /// The ocio version hosting the engine.
    pub(crate) version: String,
    pub pid: u32,
    pub database: PathBuf,
    pub(crate) started_at: jiff::Timestamp,
    /// Where Prometheus metrics are served, when they are.
    #[serde(default)]
    pub(crate) metrics: Option<String>,
}

/// One line from client to server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RequestLine {
    pub(crate) v: u32,
    pub(crate) request: Ask,
}

/// One line from server to client.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ResponseLine {
    pub(crate) v: u32,
    #[serde(flatten)]
    pub(crate) body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Body {
    Reply(Answer),
    Error(ApiError),
    /// On a subscribed connection: one engine event and its number.
    Event(Told),
    /// On a subscribed connection: this many events were dropped because the client read too
    /// slowly (take a fresh snapshot).
    Lagged(u64),
    /// On a subscribed connection: the engine stopped, and why; the connection closes.
    Gone(String),
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
    Engine(ApiError),
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
        use crate::domain::{PlanId, TaskId};
        let line = ResponseLine {
            v: PROTOCOL,
            body: Body::Reply(Answer::Reply(Reply::Submitted {
                plan: PlanId::generate(),
            })),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(
            text.starts_with("{\"v\":4,\"reply\":{\"type\":\"submitted\""),
            "{text}"
        );
        let back: ResponseLine = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            back.body,
            Body::Reply(Answer::Reply(Reply::Submitted { .. }))
        ));
        let request = serde_json::to_string(&RequestLine {
            v: PROTOCOL,
            request: Ask::Call(Request::Cancel {
                task: TaskId::generate(),
            }),
        })
        .unwrap();
        assert!(request.contains("\"type\":\"cancel\""), "{request}");
        let back: RequestLine = serde_json::from_str(&request).unwrap();
        assert!(matches!(back.request, Ask::Call(Request::Cancel { .. })));
        let hello: RequestLine =
            serde_json::from_str(r#"{"v":4,"request":{"type":"hello"}}"#).unwrap();
        assert!(matches!(hello.request, Ask::Hello));
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
            text.contains("speaks 4") && text.contains("hint:"),
            "{text}"
        );
    }
}
