//! Managed local servers: ocio starts `opencode serve` itself, keeps it alive and never leaves it
//! behind.
//!
//! The server runs in its own process group. Beside it runs a tiny `sh` watchdog whose stdin is a
//! pipe from ocio: when ocio goes away for any reason (a clean stop, a panic, `kill -9`) the pipe
//! closes, and the watchdog sends the whole group SIGTERM, waits the grace period and sends
//! SIGKILL (`opencode serve` ignores SIGTERM). No `unsafe`, no reliance on `PR_SET_PDEATHSIG`.
//!
//! [`ManagedServer`] supervises one: it restarts a server that dies, with backoff, on the same
//! port and with the same password, and publishes its state on a `watch` channel.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};

use super::secret::Password;

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
        }
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

/// One started server process, with its watchdog.
#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    /// Closing this makes the watchdog kill the server's process group.
    watchdog_pipe: Option<ChildStdin>,
    watchdog: Child,
    url: String,
    grace: Duration,
}

impl RunningServer {
    /// Start `opencode serve` and wait until it says where it listens.
    pub async fn start(
        cmd: &ServerCommand,
        password: Option<&Password>,
    ) -> Result<Self, ManagedError> {
        // `opencode serve --port 0` tries 4096 first (1.18.33), so two managed servers, or one
        // and the user's own, would race for it: ocio picks a free port itself.
        let port = match cmd.port {
            0 => free_port().map_err(|source| ManagedError::Spawn {
                program: cmd.program.clone(),
                source,
            })?,
            port => port,
        };
        let mut command = Command::new(&cmd.program);
        command
            .args([
                "serve",
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .env_remove("OPENCODE_SERVER_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        for name in &cmd.withheld {
            command.env_remove(name);
        }
        if let Some(password) = password {
            command.env("OPENCODE_SERVER_PASSWORD", password.expose());
        }
        if let Some(cwd) = &cmd.cwd {
            command.current_dir(cwd);
        }
        let spawn_err = |source| ManagedError::Spawn {
            program: cmd.program.clone(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_err)?;
        let Some(pid) = child.id() else {
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_default();
            return Err(ManagedError::ExitedEarly {
                status,
                stderr: Vec::new(),
            });
        };
        let (watchdog, watchdog_pipe) = match spawn_watchdog(pid, cmd.stop_grace) {
            Ok(w) => w,
            Err(source) => {
                let _ = child.start_kill();
                return Err(ManagedError::Spawn {
                    program: "sh".into(),
                    source,
                });
            }
        };
        let mut server = Self {
            child,
            watchdog_pipe: Some(watchdog_pipe),
            watchdog,
            url: String::new(),
            grace: cmd.stop_grace,
        };
        match server.await_ready(cmd.ready_timeout).await {
            Ok(url) => {
                server.url = url;
                Ok(server)
            }
            Err(e) => {
                server.stop().await;
                Err(e)
            }
        }
    }

    async fn await_ready(&mut self, timeout: Duration) -> Result<String, ManagedError> {
        let stdout = self.child.stdout.take();
        let stderr = self.child.stderr.take();
        let (tail_tx, tail_rx) = watch::channel(Vec::<String>::new());
        if let Some(stderr) = stderr {
            tokio::spawn(drain(stderr, "stderr", Some(tail_tx.clone()), None));
        }
        let (url_tx, url_rx) = oneshot::channel();
        if let Some(stdout) = stdout {
            tokio::spawn(drain(stdout, "stdout", Some(tail_tx), Some(url_tx)));
        }
        let stderr_tail = || tail_rx.borrow().clone();
        tokio::select! {
            url = url_rx => match url {
                Ok(url) => Ok(url),
                Err(_) => {
                    let status = self.child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                    Err(ManagedError::ExitedEarly { status, stderr: stderr_tail() })
                }
            },
            status = self.child.wait() => Err(ManagedError::ExitedEarly {
                status: status.map(|s| s.to_string()).unwrap_or_default(),
                stderr: stderr_tail(),
            }),
            () = tokio::time::sleep(timeout) => Err(ManagedError::NotReady { timeout, stderr: stderr_tail() }),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Wait for the server to exit on its own.
    pub(crate) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// SIGTERM the group, wait the grace period, SIGKILL; returns once the server is gone.
    pub async fn stop(mut self) {
        drop(self.watchdog_pipe.take());
        let deadline = self.grace + Duration::from_secs(2);
        if tokio::time::timeout(deadline, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("opencode serve outlived its watchdog; killing it directly");
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        let _ = tokio::time::timeout(deadline, self.watchdog.wait()).await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Closing the pipe is all it takes: the watchdog does the rest, even if we are exiting.
        drop(self.watchdog_pipe.take());
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// `sh` waits for EOF on stdin, then kills the process group `pgid`. Only SIGKILL stops it.
fn spawn_watchdog(pgid: u32, grace: Duration) -> std::io::Result<(Child, ChildStdin)> {
    const SCRIPT: &str = "trap '' INT TERM HUP; cat >/dev/null; kill -TERM \"-$1\" 2>/dev/null; sleep \"$2\"; kill -KILL \"-$1\" 2>/dev/null; exit 0";
    let mut watchdog = Command::new("sh")
        .args([
            "-c",
            SCRIPT,
            "ocio-watchdog",
            &pgid.to_string(),
            &format!("{:.3}", grace.as_secs_f64()),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // It needs nothing of ocio's environment (secrets least of all) but PATH.
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        // Its own group and deaf to INT/TERM/HUP: a Ctrl-C in the terminal or `timeout` killing
        // ocio's group must not take the watchdog down before it has done its job.
        .process_group(0)
        .kill_on_drop(false)
        .spawn()?;
    let pipe = watchdog
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("watchdog stdin was not piped"))?;
    Ok((watchdog, pipe))
}

const TAIL_LINES: usize = 20;

/// Forward a server output stream to the log, keep its last lines, and report the listening URL.
async fn drain(
    stream: impl AsyncRead + Unpin,
    name: &'static str,
    tail: Option<watch::Sender<Vec<String>>>,
    mut url: Option<oneshot::Sender<String>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "ocio::opencode::server", stream = name, "{line}");
        if let Some(found) = listening_url(&line)
            && let Some(tx) = url.take()
        {
            let _ = tx.send(found.to_string());
        }
        if let Some(tail) = &tail {
            tail.send_modify(|t| {
                if t.len() == TAIL_LINES {
                    t.remove(0);
                }
                t.push(line);
            });
        }
    }
}

/// `opencode server listening on http://127.0.0.1:4096` -> the URL.
fn listening_url(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("listening on ")?;
    let url = rest.split_whitespace().next()?;
    url.starts_with("http").then_some(url)
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

/// A supervised managed server: started, restarted when it dies, stopped on shutdown or drop.
#[derive(Debug)]
pub struct ManagedServer {
    state: watch::Receiver<ServerState>,
    password: Password,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ManagedServer {
    /// Start supervising; returns at once (see [`ManagedServer::ready`]).
    pub fn spawn(cmd: ServerCommand, password: Password) -> Self {
        let (state_tx, state) = watch::channel(ServerState::Starting);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(supervise(cmd, password.clone(), state_tx, shutdown_rx));
        Self {
            state,
            password,
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

    /// Wait until the server listens; its URL.
    pub async fn ready(&self, timeout: Duration) -> Result<String, String> {
        let mut rx = self.state.clone();
        let wait = rx.wait_for(|s| matches!(s, ServerState::Ready { .. } | ServerState::Stopped));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(state)) => match &*state {
                ServerState::Ready { url, .. } => Ok(url.clone()),
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
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
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
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut attempt = 0u32;
    let mut backoff = BACKOFF_FIRST;
    loop {
        state.send_replace(ServerState::Starting);
        let started = tokio::select! {
            r = RunningServer::start(&cmd, Some(&password)) => r,
            _ = &mut shutdown => break,
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
                    status = server.wait() => {
                        if up_since.elapsed() >= STABLE_AFTER {
                            attempt = 0;
                            backoff = BACKOFF_FIRST;
                        }
                        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        format!("opencode serve exited ({status})")
                    }
                    _ = &mut shutdown => {
                        server.stop().await;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        assert_eq!(
            listening_url("opencode server listening on http://127.0.0.1:4096"),
            Some("http://127.0.0.1:4096")
        );
        assert_eq!(listening_url("Warning: server is unsecured"), None);
    }

    #[test]
    fn missing_binary_says_how_to_install() {
        let err = locate_opencode(Some(Path::new("/nonexistent/opencode"))).unwrap_err();
        assert!(err.to_string().contains("hint:"));
    }

    /// A stand-in server (a shell script that ignores SIGTERM like opencode does) proves the
    /// watchdog kills the whole group when the handle goes away.
    #[tokio::test]
    async fn dropping_the_server_kills_its_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("opencode");
        let pidfile = dir.path().join("pids");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\ntrap '' TERM\nsleep 1000 & echo $! > {pids}\necho \"opencode server listening on http://127.0.0.1:1\"\nwait\n",
                pids = pidfile.display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .unwrap();
        let mut cmd = ServerCommand::new(fake);
        cmd.stop_grace = Duration::from_millis(200);
        let server = RunningServer::start(&cmd, None).await.unwrap();
        assert_eq!(server.url(), "http://127.0.0.1:1");
        let grandchild = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string();
        assert!(alive(&grandchild));
        drop(server);
        let gone = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            !alive(&grandchild)
        });
        assert!(gone, "grandchild {grandchild} survived");
    }

    fn alive(pid: &str) -> bool {
        // A zombie still has a /proc entry; it is dead for our purposes.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }
}
