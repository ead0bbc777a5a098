//! The client's side of the control socket: how an attached control room or a command like
//! `ocio cancel` reaches an engine in another process. It is an [`Engine`], so it speaks the
//! engine's typed API ([`crate::engine::EngineApi`]) exactly as the in-process engine does.
//! One connection answers requests in order; [`Engine::feed`] opens a second one that streams
//! numbered engine events.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc};

use super::{
    Answer, Ask, Body, ControlError, EngineInfo, PROTOCOL, RequestLine, ResponseLine, read_line,
    write_line,
};
use crate::engine::{ApiError, Engine, ErrorKind, Feed, Follower, Reply, Request};

/// Longest reply line read (a snapshot of a big engine is large, but not this large).
const MAX_REPLY: usize = 512 * 1024 * 1024;

struct Connection {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// A connection to a running engine. Requests are answered in order.
pub struct ControlClient {
    socket: PathBuf,
    engine: EngineInfo,
    connection: Mutex<Connection>,
}

impl ControlClient {
    /// Connect and greet the engine; fails with [`ControlError::NotRunning`] when nothing
    /// listens and [`ControlError::Version`] when it speaks another protocol.
    pub async fn connect(socket: &Path) -> Result<Self, ControlError> {
        let (connection, engine) = open(socket).await?;
        Ok(Self {
            socket: socket.to_path_buf(),
            engine,
            connection: Mutex::new(connection),
        })
    }

    /// Who answered: version, pid, database, metrics address.
    pub fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    async fn ask(&self, request: Request) -> Result<Reply, ControlError> {
        if let Request::Land { .. } = request {
            // A landing may wait minutes for a resolver session (which may wait for an
            // approval sent on the shared connection): it gets a connection of its own.
            let (mut own, _) = open(&self.socket).await?;
            return reply_of(
                &self.socket,
                exchange(&self.socket, &mut own, Ask::Call(request)).await?,
            );
        }
        let mut connection = self.connection.lock().await;
        reply_of(
            &self.socket,
            exchange(&self.socket, &mut connection, Ask::Call(request)).await?,
        )
    }

    /// Numbered engine events from now on, on a connection of their own.
    async fn subscribe(&self, follower: Follower) -> Result<mpsc::Receiver<Feed>, ControlError> {
        let (mut connection, _) = open(&self.socket).await?;
        match exchange(&self.socket, &mut connection, Ask::Subscribe { follower }).await? {
            Answer::Reply(Reply::Done) => {}
            _ => {
                return Err(ControlError::Protocol {
                    socket: self.socket.clone(),
                    detail: "an unexpected reply to subscribe".into(),
                });
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(forward(self.socket.clone(), connection, tx));
        Ok(rx)
    }
}

impl Engine for ControlClient {
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
        Box::pin(async move { self.ask(request).await.map_err(ApiError::from) })
    }

    fn feed(&self, follower: Follower) -> BoxFuture<'_, Result<mpsc::Receiver<Feed>, ApiError>> {
        Box::pin(async move { self.subscribe(follower).await.map_err(ApiError::from) })
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Engine(refusal) => refusal,
            ControlError::Version { .. } => ApiError::new(ErrorKind::Version, e.to_string()),
            other => ApiError::new(ErrorKind::Failed, other.to_string()),
        }
    }
}

/// A subscribed connection's lines into `tx`, until either side goes; the last item says why
/// the feed ended.
async fn forward(socket: PathBuf, connection: Connection, tx: mpsc::Sender<Feed>) {
    let Connection { mut read, write } = connection;
    // Dropping the write half would tell the server this client has gone.
    let _write = write;
    loop {
        let item = tokio::select! {
            _ = tx.closed() => return,
            line = receive(&socket, &mut read) => match line {
                Ok(ResponseLine { body: Body::Event(told), .. }) => Feed::Event(told),
                Ok(ResponseLine { body: Body::Lagged(missed), .. }) => Feed::Lagged(missed),
                Ok(ResponseLine { body: Body::Gone(why), .. }) => Feed::Gone(why),
                Ok(_) => continue,
                Err(ControlError::Gone { .. }) => Feed::Gone(crate::engine::api::WENT_AWAY.into()),
                Err(e) => Feed::Gone(format!("the event stream ended: {e}")),
            },
        };
        let last = matches!(item, Feed::Gone(_));
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

/// Connect and say hello.
/// The reply in `answer`; a hello there breaks the protocol.
fn reply_of(socket: &Path, answer: Answer) -> Result<Reply, ControlError> {
    match answer {
        Answer::Reply(reply) => Ok(reply),
        Answer::Hello { .. } => Err(ControlError::Protocol {
            socket: socket.to_path_buf(),
            detail: "a hello where a reply was expected".into(),
        }),
    }
}

async fn open(socket: &Path) -> Result<(Connection, EngineInfo), ControlError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ControlError::NotRunning {
                    socket: socket.to_path_buf(),
                }
            }
            _ => ControlError::Io {
                socket: socket.to_path_buf(),
                detail: e.to_string(),
            },
        })?;
    let (read, write) = stream.into_split();
    let mut connection = Connection {
        read: BufReader::new(read),
        write,
    };
    match exchange(socket, &mut connection, Ask::Hello).await? {
        Answer::Hello { engine } => Ok((connection, engine)),
        Answer::Reply(other) => Err(ControlError::Protocol {
            socket: socket.to_path_buf(),
            detail: format!("an unexpected `{}` reply to hello", other.kind()),
        }),
    }
}

async fn exchange(
    socket: &Path,
    connection: &mut Connection,
    request: Ask,
) -> Result<Answer, ControlError> {
    let line = RequestLine {
        v: PROTOCOL,
        request,
    };
    write_line(&mut connection.write, &line)
        .await
        .map_err(|_| ControlError::Gone {
            socket: socket.to_path_buf(),
        })?;
    match receive(socket, &mut connection.read).await?.body {
        Body::Reply(reply) => Ok(reply),
        Body::Error(error) => Err(ControlError::Engine(error)),
        Body::Event(_) | Body::Lagged(_) | Body::Gone(_) => Err(ControlError::Protocol {
            socket: socket.to_path_buf(),
            detail: "an event where a reply was expected".into(),
        }),
    }
}

/// One line from the engine, checked for its protocol version first.
async fn receive(
    socket: &Path,
    read: &mut BufReader<OwnedReadHalf>,
) -> Result<ResponseLine, ControlError> {
    let gone = || ControlError::Gone {
        socket: socket.to_path_buf(),
    };
    let bytes = read_line(read, MAX_REPLY)
        .await
        .map_err(|_| gone())?
        .ok_or_else(gone)?;
    let protocol = |detail: String| ControlError::Protocol {
        socket: socket.to_path_buf(),
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| protocol(e.to_string()))?;
    let theirs = value.get("v").and_then(serde_json::Value::as_u64);
    if theirs != Some(u64::from(PROTOCOL)) {
        return Err(ControlError::Version {
            socket: socket.to_path_buf(),
            theirs: theirs.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            ours: PROTOCOL,
            engine_version: value
                .pointer("/reply/engine/version")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        });
    }
    serde_json::from_value(value).map_err(|e| protocol(e.to_string()))
}
