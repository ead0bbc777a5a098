//! The client's side of the control socket: what an attached TUI or a command like `ocio
//! cancel` uses to drive an engine in another process. One connection answers requests in
//! order; [`ControlClient::events`] opens a second one that streams engine events.

use std::path::{Path, PathBuf};

use crate::engine::Proposal;

use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc};

use super::{
    Body, ControlError, EngineInfo, PROTOCOL, Reply, Request, RequestLine, ResponseLine, read_line,
    write_line,
};
use crate::domain::{PlanId, SessionId, TaskId};
use crate::engine::approval::{Approver, Decision};
use crate::engine::{EngineEvent, Entry, Logged, Snapshot};

/// Longest reply line read (a snapshot of a big engine is large, but not this large).
const MAX_REPLY: usize = 512 * 1024 * 1024;

/// What a subscription delivers.
#[derive(Debug, Clone)]
pub enum Feed {
    Event(EngineEvent),
    /// This many events were dropped because this client read too slowly: take a fresh
    /// snapshot.
    Lagged(u64),
}

struct Connection {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// A connection to a running engine. Methods take `&self`; requests are answered in order.
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

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn snapshot(&self) -> Result<Snapshot, ControlError> {
        match self.ask(Request::Snapshot).await? {
            Reply::Snapshot { snapshot } => Ok(*snapshot),
            other => Err(self.unexpected(&other)),
        }
    }

    pub async fn transcript(&self, session: SessionId) -> Result<Vec<Entry>, ControlError> {
        match self.ask(Request::Transcript { session }).await? {
            Reply::Transcript { entries } => Ok(entries),
            other => Err(self.unexpected(&other)),
        }
    }

    /// The control log's newest `last` entries above sequence number `since`, oldest first.
    pub async fn history(&self, since: u64, last: usize) -> Result<Vec<Logged>, ControlError> {
        match self.ask(Request::History { since, last }).await? {
            Reply::History { entries } => Ok(entries),
            other => Err(self.unexpected(&other)),
        }
    }

    /// What a plan's finished tasks left for their dependents.
    pub async fn context(
        &self,
        plan: crate::domain::PlanId,
    ) -> Result<Vec<crate::domain::TaskContext>, ControlError> {
        match self.ask(Request::Context { plan }).await? {
            Reply::Context { tasks } => Ok(tasks),
            other => Err(self.unexpected(&other)),
        }
    }

    /// A session's changes as a unified diff (empty when it did not work in a git worktree).
    pub async fn diff(&self, session: SessionId) -> Result<String, ControlError> {
        match self.ask(Request::Diff { session }).await? {
            Reply::Diff { text } => Ok(text),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Ask the engine's planner for a plan towards `goal` in `repo` (absolute); nothing is
    /// queued until the proposal's text is submitted.
    pub async fn plan(&self, goal: &str, repo: &Path) -> Result<Proposal, ControlError> {
        let request = Request::Plan {
            goal: goal.to_string(),
            repo: repo.to_path_buf(),
        };
        match self.ask(request).await? {
            Reply::Proposal { proposal } => Ok(proposal),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Submit a plan file's text; `path` names it in errors (which give file, line and
    /// column) and anchors its relative `repo`, so pass it absolute.
    pub async fn submit(&self, path: &Path, text: String) -> Result<PlanId, ControlError> {
        let request = Request::Submit {
            path: path.to_path_buf(),
            text,
        };
        match self.ask(request).await? {
            Reply::Submitted { plan } => Ok(plan),
            other => Err(self.unexpected(&other)),
        }
    }

    pub async fn cancel(&self, task: TaskId) -> Result<(), ControlError> {
        self.done(Request::Cancel { task }).await
    }

    pub async fn retry(&self, task: TaskId) -> Result<(), ControlError> {
        self.done(Request::Retry { task }).await
    }

    /// Answer a permission request by its id (`per_...`) or the id's last 8 characters; `by`
    /// says who answers.
    pub async fn approve(
        &self,
        request: &str,
        decision: Decision,
        by: Approver,
    ) -> Result<(), ControlError> {
        let request = Request::Approve {
            request: request.to_string(),
            decision,
            by,
        };
        self.done(request).await
    }

    pub async fn pause(&self, paused: bool) -> Result<(), ControlError> {
        self.done(Request::Pause { paused }).await
    }

    pub async fn drain(&self, agent: &str, drain: bool) -> Result<(), ControlError> {
        let request = Request::Drain {
            agent: agent.to_string(),
            drain,
        };
        self.done(request).await
    }

    /// Engine events from now on, on a connection of their own. The channel ends when the
    /// engine goes away (or stops serving); dropping the receiver closes the connection.
    pub async fn events(&self) -> Result<mpsc::Receiver<EngineEvent>, ControlError> {
        let mut feed = self.subscribe().await?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(item) = feed.recv().await {
                match item {
                    Feed::Event(event) => {
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    Feed::Lagged(missed) => {
                        tracing::warn!(missed, "control client: engine events were dropped");
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Like [`Self::events`], and also says when events were dropped.
    pub async fn subscribe(&self) -> Result<mpsc::Receiver<Feed>, ControlError> {
        let (mut connection, _) = open(&self.socket).await?;
        let reply = exchange(&self.socket, &mut connection, Request::Subscribe).await?;
        if !matches!(reply, Reply::Done) {
            return Err(self.unexpected(&reply));
        }
        let (tx, rx) = mpsc::channel(1024);
        let socket = self.socket.clone();
        let Connection { mut read, write } = connection;
        tokio::spawn(async move {
            // Dropping the write half would tell the server this client has gone.
            let _write = write;
            loop {
                let item = tokio::select! {
                    _ = tx.closed() => return,
                    line = receive(&socket, &mut read) => match line {
                        Ok(ResponseLine { body: Body::Event(event), .. }) => Feed::Event(event),
                        Ok(ResponseLine { body: Body::Lagged(missed), .. }) => Feed::Lagged(missed),
                        Ok(_) => continue,
                        Err(ControlError::Gone { .. }) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "control client: event stream ended");
                            return;
                        }
                    },
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn done(&self, request: Request) -> Result<(), ControlError> {
        match self.ask(request).await? {
            Reply::Done => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn ask(&self, request: Request) -> Result<Reply, ControlError> {
        let mut connection = self.connection.lock().await;
        exchange(&self.socket, &mut connection, request).await
    }

    fn unexpected(&self, reply: &Reply) -> ControlError {
        ControlError::Protocol {
            socket: self.socket.clone(),
            detail: format!("an unexpected `{}` reply", reply.kind()),
        }
    }
}

/// Connect and say hello.
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
    match exchange(socket, &mut connection, Request::Hello).await? {
        Reply::Hello { engine } => Ok((connection, engine)),
        other => Err(ControlError::Protocol {
            socket: socket.to_path_buf(),
            detail: format!("an unexpected `{}` reply to hello", other.kind()),
        }),
    }
}

async fn exchange(
    socket: &Path,
    connection: &mut Connection,
    request: Request,
) -> Result<Reply, ControlError> {
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
        Body::Event(_) | Body::Lagged(_) => Err(ControlError::Protocol {
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
