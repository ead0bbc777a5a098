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

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};

use super::secret::Password;
pub use leftover::Leftover;
use leftover::Record;

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

/// The server's process: started by this ocio, or left running by an earlier one and adopted.
#[derive(Debug)]
enum Process {
    Child(Child),
    Adopted { pid: u32, since: u64 },
}

/// One server process, with its watchdog.
#[derive(Debug)]
pub struct RunningServer {
    process: Process,
    /// Closing this makes the watchdog stop the server's process group: at once after `stop`
    /// was written to it, else after the linger time.
    watchdog_pipe: Option<ChildStdin>,
    watchdog: Child,
    url: String,
    grace: Duration,
    /// Where it is recorded for the next ocio, if anywhere.
    record: Option<PathBuf>,
    /// Hears its log file (when it writes one) for ocio's log.
    output: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Start `opencode serve` and wait until it says where it listens.
    pub async fn start(
        cmd: &ServerCommand,
        password: Option<&Password>,
    ) -> Result<Self, ManagedError> {
        let spawn_err = |source| ManagedError::Spawn {
            program: cmd.program.clone(),
            source,
        };
        // `opencode serve --port 0` tries 4096 first (1.18.33), so two managed servers, or one
        // and the user's own, would race for it: ocio picks a free port itself.
        let port = match cmd.port {
            0 => free_port().map_err(spawn_err)?,
            port => port,
        };
        let mut command = serve_command(cmd, port, password);
        let log = match &cmd.record {
            Some(record) => {
                let (file, path, from) = output::open_log(record).map_err(spawn_err)?;
                command
                    .stdout(file.try_clone().map_err(spawn_err)?)
                    .stderr(file);
                Some((path, from))
            }
            None => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                None
            }
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
        let (watchdog, watchdog_pipe) = match spawn_watchdog(pid, cmd.stop_grace, cmd.linger) {
            Ok(w) => w,
            Err(source) => {
                let _ = child.start_kill();
                return Err(ManagedError::Spawn {
                    program: "sh".into(),
                    source,
                });
            }
        };
        let (ears, heard) = output::ears();
        let output = match log {
            Some((path, from)) => Some(tokio::spawn(output::follow(path, from, ears))),
            None => {
                hear_pipes(&mut child, ears);
                None
            }
        };
        let mut server = Self {
            process: Process::Child(child),
            watchdog_pipe: Some(watchdog_pipe),
            watchdog,
            url: String::new(),
            grace: cmd.stop_grace,
            record: cmd.record.clone(),
            output,
        };
        match server.await_ready(heard, cmd.ready_timeout).await {
            Ok(url) => {
                server.url = url;
                server.save_record(cmd, password);
                Ok(server)
            }
            Err(e) => {
                server.stop().await;
                Err(e)
            }
        }
    }

    /// Take over a server an earlier ocio left running: a watchdog of ours replaces its.
    pub(crate) fn adopt(cmd: &ServerCommand, left: Leftover) -> Result<Self, ManagedError> {
        let pid = left.pid();
        let (watchdog, watchdog_pipe) =
            spawn_watchdog(pid, cmd.stop_grace, cmd.linger).map_err(|source| {
                ManagedError::Spawn {
                    program: "sh".into(),
                    source,
                }
            })?;
        left.release_watchdog();
        let mut record = left.record().clone();
        record.watchdog = watchdog.id().unwrap_or_default();
        let output = cmd.record.as_ref().map(|path| {
            if let Err(e) = record.save(path) {
                tracing::warn!(record = %path.display(), error = %e, "could not record the adopted managed server");
            }
            let log = path.with_extension("log");
            let from = std::fs::metadata(&log).map_or(0, |m| m.len());
            tokio::spawn(output::follow(log, from, output::ears().0))
        });
        Ok(Self {
            process: Process::Adopted {
                pid,
                since: record.since,
            },
            watchdog_pipe: Some(watchdog_pipe),
            watchdog,
            url: record.url,
            grace: cmd.stop_grace,
            record: cmd.record.clone(),
            output,
        })
    }

    async fn await_ready(
        &mut self,
        heard: output::Heard,
        timeout: Duration,
    ) -> Result<String, ManagedError> {
        let output::Heard { tail, url } = heard;
        let stderr_tail = || tail.borrow().clone();
        tokio::select! {
            url = url => match url {
                Ok(url) => Ok(url),
                Err(_) => Err(ManagedError::ExitedEarly { status: self.exited().await, stderr: stderr_tail() }),
            },
            status = self.exited() => Err(ManagedError::ExitedEarly { status, stderr: stderr_tail() }),
            () = tokio::time::sleep(timeout) => Err(ManagedError::NotReady { timeout, stderr: stderr_tail() }),
        }
    }

    /// What the next ocio needs to adopt this server, written beside the database. Without it
    /// the server still works; it is only not adopted.
    fn save_record(&self, cmd: &ServerCommand, password: Option<&Password>) {
        let (Some(path), Some(pid)) = (&self.record, self.pid()) else {
            return;
        };
        let Some(since) = leftover::started(pid) else {
            return;
        };
        let record = Record {
            pid,
            since,
            url: self.url.clone(),
            watchdog: self.watchdog.id().unwrap_or_default(),
            program: cmd.program.clone(),
            password: password.map(|p| p.expose().to_string()).unwrap_or_default(),
        };
        if let Err(e) = record.save(path) {
            tracing::warn!(record = %path.display(), error = %e, "could not record the managed server; the next ocio will not adopt it");
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Process::Child(child) => child.id(),
            Process::Adopted { pid, .. } => Some(*pid),
        }
    }

    /// Wait for the server to exit on its own; how it ended.
    pub(crate) async fn exited(&mut self) -> String {
        match &mut self.process {
            Process::Child(child) => child
                .wait()
                .await
                .map_or_else(|e| e.to_string(), |status| status.to_string()),
            Process::Adopted { pid, since } => {
                // Not our child: watched through /proc.
                while leftover::started(*pid) == Some(*since) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                "its status is unknown: it was started by an earlier ocio".into()
            }
        }
    }

    /// SIGTERM the group, wait the grace period, SIGKILL; returns once the server is gone, and
    /// forgets it (no record for the next ocio).
    pub async fn stop(mut self) {
        if let Some(mut pipe) = self.watchdog_pipe.take() {
            let _ = pipe.write_all(b"stop\n").await;
        }
        let deadline = self.grace + Duration::from_secs(2);
        if tokio::time::timeout(deadline, self.exited()).await.is_err() {
            tracing::warn!("opencode serve outlived its watchdog; killing it directly");
            self.kill().await;
        }
        let _ = tokio::time::timeout(deadline, self.watchdog.wait()).await;
        self.forget();
    }

    /// After the server exited on its own: its watchdog goes too (it has nothing to stop, and
    /// must not signal the group later, when the number may be another's).
    pub(crate) async fn retire(mut self) {
        let _ = self.watchdog.start_kill();
        let _ = self.watchdog.wait().await;
        self.forget();
    }

    /// Let ocio go without the server: it runs on for its linger time, for the next ocio to
    /// adopt (its record stays).
    pub(crate) fn leave(self) {
        // Dropping closes the watchdog's pipe without a word: it lingers.
    }

    async fn kill(&mut self) {
        match &mut self.process {
            Process::Child(child) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
            Process::Adopted { pid, .. } => {
                use nix::sys::signal::{Signal, killpg};
                let _ = killpg(nix::unistd::Pid::from_raw(*pid as i32), Signal::SIGKILL);
            }
        }
    }

    fn forget(&mut self) {
        if let Some(record) = &self.record {
            let _ = std::fs::remove_file(record);
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Closing the pipe is all it takes: the watchdog does the rest, even if we are exiting.
        drop(self.watchdog_pipe.take());
        if let Some(output) = self.output.take() {
            output.abort();
        }
    }
}

/// `opencode serve` on 127.0.0.1:`port`, in its own process group, with the password and none
/// of the withheld variables.
fn serve_command(cmd: &ServerCommand, port: u16, password: Option<&Password>) -> Command {
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
    command
}

/// Hear the child's stdout and stderr (both piped).
fn hear_pipes(child: &mut Child, ears: output::Ears) {
    let stderr_ears = ears.without_url();
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(output::drain(stderr, "stderr", stderr_ears));
    }
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(output::drain(stdout, "stdout", ears));
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// `sh` waits for a word or EOF on stdin, then stops the process group `pgid`: at once after
/// `stop`, else once `linger` is over (or sooner: it leaves when the group is gone). Only
/// SIGKILL stops it.
fn spawn_watchdog(
    pgid: u32,
    grace: Duration,
    linger: Duration,
) -> std::io::Result<(Child, ChildStdin)> {
    const SCRIPT: &str = r#"trap '' INT TERM HUP
read -r word
if [ "$word" != stop ]; then
  left=$3
  while [ "$left" -gt 0 ] && kill -0 "-$1" 2>/dev/null; do sleep 1; left=$((left - 1)); done
fi
kill -TERM "-$1" 2>/dev/null && sleep "$2" && kill -KILL "-$1" 2>/dev/null
exit 0"#;
    let mut watchdog = Command::new("sh")
        .args([
            "-c",
            SCRIPT,
            "ocio-watchdog",
            &pgid.to_string(),
            &format!("{:.3}", grace.as_secs_f64()),
            &linger.as_secs().to_string(),
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

/// A supervised managed server: started (or adopted), restarted when it dies, stopped or left
/// on shutdown, stopped on drop.
#[derive(Debug)]
pub struct ManagedServer {
    state: watch::Receiver<ServerState>,
    password: Password,
    shutdown: Option<oneshot::Sender<Farewell>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ManagedServer {
    /// Start supervising; returns at once (see [`ManagedServer::ready`]).
    pub fn spawn(cmd: ServerCommand, password: Password) -> Self {
        Self::supervise(cmd, password, None)
    }

    /// Supervise a server an earlier ocio left running (see [`Leftover`]): restarted like a
    /// started one when it dies.
    pub fn adopt(cmd: ServerCommand, left: Leftover) -> Result<Self, ManagedError> {
        let password = left.password();
        let server = RunningServer::adopt(&cmd, left)?;
        Ok(Self::supervise(cmd, password, Some(server)))
    }

    fn supervise(cmd: ServerCommand, password: Password, first: Option<RunningServer>) -> Self {
        let (state_tx, state) = watch::channel(ServerState::Starting);
        let (shutdown, shutdown_rx) = oneshot::channel();
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
    pub async fn shutdown(self) {
        self.end(Farewell::Stop).await;
    }

    /// Stop supervising and leave the server running for its linger time, for the next ocio
    /// to adopt: its sessions work on meanwhile.
    pub async fn leave(self) {
        self.end(Farewell::Leave).await;
    }

    async fn end(mut self, farewell: Farewell) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(farewell);
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
    mut shutdown: oneshot::Receiver<Farewell>,
    mut adopted: Option<RunningServer>,
) {
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
                                tracing::info!(pid, "managed opencode server left running for the next ocio");
                                server.leave();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_how_to_install() {
        let err = locate_opencode(Some(Path::new("/nonexistent/opencode"))).unwrap_err();
        assert!(err.to_string().contains("hint:"));
    }

    /// A stand-in server: a shell script that ignores SIGTERM like opencode does, with a child
    /// of its own (whose pid it writes to `pids`), saying where it listens.
    fn fake_server(dir: &Path) -> (PathBuf, PathBuf) {
        let fake = dir.join("opencode");
        let pidfile = dir.join("pids");
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
        (fake, pidfile)
    }

    fn child_of(pidfile: &Path) -> String {
        std::fs::read_to_string(pidfile).unwrap().trim().to_string()
    }

    /// Whether `pid` is gone within `within`.
    fn gone_within(pid: &str, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            if !alive(pid) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The watchdog kills the whole group when the handle goes away.
    #[tokio::test]
    async fn dropping_the_server_kills_its_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let (fake, pidfile) = fake_server(dir.path());
        let mut cmd = ServerCommand::new(fake);
        cmd.stop_grace = Duration::from_millis(200);
        let server = RunningServer::start(&cmd, None).await.unwrap();
        assert_eq!(server.url(), "http://127.0.0.1:1");
        let grandchild = child_of(&pidfile);
        assert!(alive(&grandchild));
        drop(server);
        assert!(
            gone_within(&grandchild, Duration::from_secs(5)),
            "grandchild {grandchild} survived"
        );
    }

    /// A server that may outlive ocio writes its output to a log file beside its record (where
    /// its URL is read from), and when ocio leaves it, its watchdog lets it run for the linger
    /// time and then stops the whole group.
    #[tokio::test]
    async fn a_server_left_running_lingers_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (fake, pidfile) = fake_server(dir.path());
        let record = dir.path().join("servers").join("local.json");
        let mut cmd = ServerCommand::new(fake).outliving(record.clone(), Duration::from_secs(2));
        cmd.stop_grace = Duration::from_millis(200);
        let password = Password::new("secret");
        let server = RunningServer::start(&cmd, Some(&password)).await.unwrap();
        assert_eq!(server.url(), "http://127.0.0.1:1");
        let log = std::fs::read_to_string(record.with_extension("log")).unwrap();
        assert!(log.contains("listening on"), "{log}");
        assert!(record.is_file(), "recorded for the next ocio");
        let grandchild = child_of(&pidfile);
        server.leave();
        std::thread::sleep(Duration::from_millis(700));
        assert!(alive(&grandchild), "stopped at once instead of lingering");
        assert!(
            gone_within(&grandchild, Duration::from_secs(6)),
            "grandchild {grandchild} outlived the linger time"
        );
    }

    /// The next ocio finds the server an earlier one left (alive, the same program), takes over
    /// its watchdog (the old one is gone, so it no longer counts down the linger time) and
    /// stops it for good when asked: the whole group, and its record.
    #[tokio::test]
    async fn a_left_server_is_adopted_and_stopped_by_the_adopter() {
        let dir = tempfile::tempdir().unwrap();
        let (fake, pidfile) = fake_server(dir.path());
        let record = dir.path().join("servers").join("local.json");
        let mut cmd =
            ServerCommand::new(fake.clone()).outliving(record.clone(), Duration::from_secs(1));
        cmd.stop_grace = Duration::from_millis(200);
        let server = RunningServer::start(&cmd, Some(&Password::new("secret")))
            .await
            .unwrap();
        let pid = server.pid().unwrap();
        server.leave();
        let grandchild = child_of(&pidfile);

        let other = dir.path().join("another-opencode");
        assert!(
            Leftover::find(&record, &other, cmd.stop_grace)
                .await
                .is_none(),
            "a server of another program is not adopted"
        );
        assert!(
            gone_within(&grandchild, Duration::from_secs(2)),
            "it is stopped instead"
        );
        assert!(!record.exists());

        let server = RunningServer::start(&cmd, Some(&Password::new("secret")))
            .await
            .unwrap();
        let pid_again = server.pid().unwrap();
        assert_ne!(pid, pid_again);
        server.leave();
        let grandchild = child_of(&pidfile);
        let left = Leftover::find(&record, &fake, cmd.stop_grace)
            .await
            .expect("the server left running is found");
        assert_eq!(left.url(), "http://127.0.0.1:1");
        assert_eq!(left.password().expose(), "secret");
        let old_watchdog = left.record().watchdog.to_string();
        let adopted = RunningServer::adopt(&cmd, left).unwrap();
        assert_eq!(adopted.pid(), Some(pid_again));
        assert!(gone_within(&old_watchdog, Duration::from_secs(2)));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            alive(&grandchild),
            "the linger of the old watchdog still ran"
        );
        adopted.stop().await;
        assert!(gone_within(&grandchild, Duration::from_secs(2)));
        assert!(!record.exists(), "a stopped server is forgotten");
    }

    /// At the next start, the servers left for agents no longer managed (no longer in the
    /// config, or given a `url`) are stopped; those of managed agents are kept for adoption.
    #[tokio::test]
    async fn servers_of_agents_no_longer_managed_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("servers");
        let mut left = Vec::new();
        for agent in ["kept", "gone"] {
            let home = dir.path().join(agent);
            std::fs::create_dir_all(&home).unwrap();
            let (fake, pidfile) = fake_server(&home);
            let mut cmd = ServerCommand::new(fake).outliving(
                records.join(format!("{agent}.json")),
                Duration::from_secs(60),
            );
            cmd.stop_grace = Duration::from_millis(200);
            let server = RunningServer::start(&cmd, None).await.unwrap();
            server.leave();
            left.push((child_of(&pidfile), cmd));
        }
        Leftover::sweep(&records, &["kept"], Duration::from_millis(200)).await;
        let [(kept, kept_cmd), (gone, _)] = &left[..] else {
            unreachable!()
        };
        assert!(
            gone_within(gone, Duration::from_secs(2)),
            "gone's server runs on"
        );
        assert!(!records.join("gone.json").exists());
        assert!(alive(kept), "kept's server was stopped");
        let found = Leftover::find(
            &records.join("kept.json"),
            &kept_cmd.program,
            kept_cmd.stop_grace,
        )
        .await
        .unwrap();
        found.discard(kept_cmd.stop_grace).await;
        assert!(gone_within(kept, Duration::from_secs(2)));
    }

    /// A record whose server is gone is removed, and nothing is adopted.
    #[tokio::test]
    async fn a_record_of_a_server_that_is_gone_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (fake, _) = fake_server(dir.path());
        let record = dir.path().join("servers").join("local.json");
        let mut cmd = ServerCommand::new(fake.clone()).outliving(record.clone(), Duration::ZERO);
        cmd.stop_grace = Duration::from_millis(200);
        let server = RunningServer::start(&cmd, None).await.unwrap();
        let pid = server.pid().unwrap().to_string();
        server.leave();
        assert!(gone_within(&pid, Duration::from_secs(5)));
        assert!(record.exists(), "left as it was");
        assert!(
            Leftover::find(&record, &fake, cmd.stop_grace)
                .await
                .is_none()
        );
        assert!(!record.exists());
    }

    fn alive(pid: &str) -> bool {
        // A zombie still has a /proc entry; it is dead for our purposes.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }
}
