//! Managed local servers: ocio starts `opencode serve` itself, keeps it alive, and never leaves
//! it behind for longer than its sessions need.
//!
//! The server runs in its own process group. Beside it runs a tiny `sh` watchdog whose stdin is a
//! pipe from ocio. ocio stopping the server writes `stop` and closes the pipe: the watchdog sends
//! the whole group SIGTERM, waits the grace period and sends SIGKILL (`opencode serve` ignores
//! SIGTERM). When ocio goes away without that word (a quit while the server's sessions work, a
//! panic, `kill -9`), the pipe just closes and the watchdog first waits the server's `linger`
//! time: the sessions go on, and the next ocio adopts the server (see [`Leftover`]), taking its
//! watchdog over. No `unsafe`, no reliance on `PR_SET_PDEATHSIG`.
//!
//! [`ManagedServer`] supervises one: it restarts a server that dies, with backoff, on the same
//! port and with the same password, and publishes its state on a `watch` channel.

mod leftover;
mod output;
mod running;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::secret::Password;
pub use leftover::Leftover;
pub use running::RunningServer;

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    /// The `opencode` executable (see [`locate_opencode`]).
    pub(crate) program: PathBuf,
    /// Working directory of the server.
    pub cwd: Option<PathBuf>,
    /// Extra environment (isolated XDG dirs, `OPENCODE_CONFIG_CONTENT`, ...).
    pub env: Vec<(OsString, OsString)>,
    /// Variables of ocio's environment the server must not see: the passwords of other
    /// servers (every agent's `password_env`), which its shell tool could otherwise read.
    pub(crate) withheld: Vec<OsString>,
    /// 0: ocio picks a free port.
    pub port: u16,
    /// Between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    /// How long the server may take to say it listens.
    pub(crate) ready_timeout: Duration,
    /// Where the running server is recorded, for the next ocio to adopt it (its output goes
    /// to the same path with `.log`). `None` for servers that never outlive this ocio (`ocio
    /// check`'s): their output comes through pipes.
    pub(crate) record: Option<PathBuf>,
    /// How long the server keeps running once ocio is gone without stopping it.
    pub(crate) linger: Duration,
}

impl ServerCommand {
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            cwd: None,
            env: Vec::new(),
            withheld: Vec::new(),
            port: 0,
            stop_grace: Duration::from_secs(3),
            ready_timeout: Duration::from_secs(60),
            record: None,
            linger: Duration::ZERO,
        }
    }

    /// Record the server at `record` and let it run `linger` after ocio is gone (see the
    /// fields).
    pub fn outliving(mut self, record: PathBuf, linger: Duration) -> Self {
        self.record = Some(record);
        self.linger = linger;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error(
        "`opencode` was not found on PATH\nhint: install it with `{}`, or set opencode_path in the agent's config",
        super::INSTALL_OPENCODE
    )]
    NotOnPath,
    #[error(
        "the configured opencode_path {0} does not exist or is not a file\nhint: point opencode_path at the `opencode` executable (e.g. <prefix>/node_modules/.bin/opencode)"
    )]
    BadPath(PathBuf),
    #[error("could not start {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write the managed server's log {}: {source}\nhint: ocio keeps it beside its database; make that directory writable, or free space there", .path.display()
    )]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("opencode serve exited before it was ready ({status}){}", tail(.stderr))]
    ExitedEarly { status: String, stderr: Vec<String> },
    #[error(
        "opencode serve did not report a listening address within {}{}",
        crate::text::duration(*.timeout),
        tail(.stderr)
    )]
    NotReady {
        timeout: Duration,
        stderr: Vec<String>,
    },
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last output:\n  {}", lines.join("\n  "))
    }
}

/// The `opencode` executable: the configured path, else the first one on PATH.
pub(crate) fn locate_opencode(configured: Option<&Path>) -> Result<PathBuf, ManagedError> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(ManagedError::BadPath(path.to_path_buf()))
        };
    }
    let path = std::env::var_os("PATH").ok_or(ManagedError::NotOnPath)?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("opencode"))
        .find(|candidate| candidate.is_file())
        .ok_or(ManagedError::NotOnPath)
}

/// What a supervised server is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    Starting,
    Ready {
        url: String,
        pid: u32,
    },
    /// It died (or would not start); another try follows after a backoff.
    Restarting {
        attempt: u32,
        error: String,
    },
    Stopped,
}

impl std::fmt::Display for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Starting => f.write_str("starting"),
            Self::Ready { url, pid } => write!(f, "ready at {url} (pid {pid})"),
            Self::Restarting { attempt, error } => {
                write!(f, "restarting (attempt {attempt}) after: {error}")
            }
            Self::Stopped => f.write_str("stopped"),
        }
    }
}

/// How supervision ends for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Farewell {
    /// Stop it now.
    Stop,
    /// Let it run on for its linger time, for the next ocio to adopt.
    Leave,
}

/// A managed server left running for its sessions when ocio went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftRunning {
    pub pid: u32,
    /// It stops this long after ocio went, unless the next ocio adopts it first.
    pub linger: Duration,
}

/// A supervised managed server: started (or adopted), restarted when it dies, stopped or left
/// on shutdown, stopped on drop.
#[derive(Debug)]
pub struct ManagedServer {
    state: watch::Receiver<ServerState>,
    password: Password,
    /// How long it runs on when left (zero: leaving it stops it).
    linger: Duration,
    shutdown: Option<oneshot::Sender<Farewell>>,
    /// The supervisor: the server's pid when it left it running.
    task: Option<tokio::task::JoinHandle<Option<u32>>>,
}

impl ManagedServer {
    /// Start supervising; returns at once (see [`ManagedServer::ready`]).
    pub fn spawn(cmd: ServerCommand, password: Password) -> Self {
        Self::supervise(cmd, password, None)
    }

    /// Supervise a server an earlier ocio left running (see [`Leftover`]): restarted like a
    /// started one when it dies.
    pub async fn adopt(cmd: ServerCommand, left: Leftover) -> Result<Self, ManagedError> {
        let password = left.password();
        let server = RunningServer::adopt(&cmd, left).await?;
        Ok(Self::supervise(cmd, password, Some(server)))
    }

    fn supervise(cmd: ServerCommand, password: Password, first: Option<RunningServer>) -> Self {
        let (state_tx, state) = watch::channel(ServerState::Starting);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let linger = cmd.linger;
        let task = tokio::spawn(supervise(
            cmd,
            password.clone(),
            state_tx,
            shutdown_rx,
            first,
        ));
        Self {
            state,
            password,
            linger,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn password(&self) -> &Password {
        &self.password
    }

    pub fn state(&self) -> watch::Receiver<ServerState> {
        self.state.clone()
    }

    /// Wait until the server listens; its URL. A first start that fails is the answer at once
    /// (the supervisor goes on trying): a server that will not start says why now, not after
    /// `timeout`.
    pub async fn ready(&self, timeout: Duration) -> Result<String, String> {
        let mut rx = self.state.clone();
        let wait = rx.wait_for(|s| !matches!(s, ServerState::Starting));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(state)) => match &*state {
                ServerState::Ready { url, .. } => Ok(url.clone()),
                ServerState::Restarting { error, .. } => Err(error.clone()),
                other => Err(format!("managed server is {other}")),
            },
            Ok(Err(_)) => Err("managed server supervisor ended".into()),
            Err(_) => Err(format!(
                "managed server not ready after {}: {}",
                crate::text::duration(timeout),
                *self.state.borrow()
            )),
        }
    }

    /// Stop the server and wait until it is gone.
    pub async fn shutdown(self) {
        let _ = self.end(Farewell::Stop).await;
    }

    /// Stop supervising and leave the server running for its linger time, for the next ocio
    /// to adopt: its sessions work on meanwhile. With no linger time, stop it. What was left
    /// running, if anything (a server down at the time is not).
    pub async fn leave(self) -> Option<LeftRunning> {
        let linger = self.linger;
        let farewell = match linger.is_zero() {
            true => Farewell::Stop,
            false => Farewell::Leave,
        };
        let pid = self.end(farewell).await?;
        Some(LeftRunning { pid, linger })
    }

    async fn end(mut self, farewell: Farewell) -> Option<u32> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(farewell);
        }
        self.task.take()?.await.ok().flatten()
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        // Dropping the sender wakes the supervisor, which stops the server.
        drop(self.shutdown.take());
    }
}

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A server up this long counts as healthy again: the backoff starts over.
const STABLE_AFTER: Duration = Duration::from_secs(60);

async fn supervise(
    mut cmd: ServerCommand,
    password: Password,
    state: watch::Sender<ServerState>,
    mut shutdown: oneshot::Receiver<Farewell>,
    mut adopted: Option<RunningServer>,
) -> Option<u32> {
    let mut attempt = 0u32;
    let mut backoff = BACKOFF_FIRST;
    loop {
        let started = match adopted.take() {
            Some(server) => Ok(server),
            None => {
                state.send_replace(ServerState::Starting);
                tokio::select! {
                    r = RunningServer::start(&cmd, Some(&password)) => r,
                    _ = &mut shutdown => break,
                }
            }
        };
        let error = match started {
            Ok(mut server) => {
                let url = server.url().to_string();
                // Keep the port across restarts so clients holding the URL keep working.
                if let Some(port) = url.rsplit(':').next().and_then(|p| p.parse().ok()) {
                    cmd.port = port;
                }
                let pid = server.pid().unwrap_or_default();
                tracing::info!(%url, pid, "managed opencode server ready");
                state.send_replace(ServerState::Ready { url, pid });
                let up_since = tokio::time::Instant::now();
                tokio::select! {
                    status = server.exited() => {
                        if up_since.elapsed() >= STABLE_AFTER {
                            attempt = 0;
                            backoff = BACKOFF_FIRST;
                        }
                        server.retire().await;
                        format!("opencode serve exited ({status})")
                    }
                    farewell = &mut shutdown => {
                        match farewell {
                            Ok(Farewell::Leave) => {
                                let left = server.leave().await;
                                state.send_replace(ServerState::Stopped);
                                if left {
                                    tracing::info!(pid, "managed opencode server left running for the next ocio");
                                }
                                return left.then_some(pid);
                            }
                            Ok(Farewell::Stop) | Err(_) => server.stop().await,
                        }
                        break;
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        attempt += 1;
        tracing::warn!(attempt, %error, ?backoff, "managed opencode server down; restarting");
        state.send_replace(ServerState::Restarting { attempt, error });
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = &mut shutdown => break,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    state.send_replace(ServerState::Stopped);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_how_to_install() {
        let err = locate_opencode(Some(Path::new("/nonexistent/opencode"))).unwrap_err();
        assert!(err.to_string().contains("hint:"));
    }
}
