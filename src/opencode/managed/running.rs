//! One `opencode serve` process and its watchdog: started here, or adopted from an earlier ocio.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

use super::leftover::{self, Leftover, Record};
use super::output;
use super::{ManagedError, ServerCommand};
use crate::opencode::secret::Password;

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
    /// Whether going away without a word lets it linger: once it is recorded (the next ocio
    /// can adopt it). Before that, dropping or leaving it stops it at once.
    lingers: bool,
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
        let log = output::Log::attach(cmd.record.as_deref(), &mut command)?;
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
        let (watchdog, watchdog_pipe) = match spawn_watchdog(pid, cmd) {
            Ok(w) => w,
            Err(e) => {
                let _ = child.start_kill();
                return Err(e);
            }
        };
        let (ears, mut heard) = output::ears();
        let output = match &log {
            Some(log) => Some(tokio::spawn(log.follow(ears))),
            None => {
                heard.drains = hear_pipes(&mut child, ears);
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
            lingers: false,
            output,
        };
        match server.await_ready(heard, log, cmd.ready_timeout).await {
            Ok(url) => {
                server.url = url;
                server.save_record(cmd, password).await;
                Ok(server)
            }
            Err(e) => {
                server.stop().await;
                Err(e)
            }
        }
    }

    /// Take over a server an earlier ocio left running: a watchdog of ours replaces its.
    pub(crate) async fn adopt(cmd: &ServerCommand, left: Leftover) -> Result<Self, ManagedError> {
        let pid = left.pid();
        let (watchdog, watchdog_pipe) = spawn_watchdog(pid, cmd)?;
        leftover::release_watchdogs(pid, watchdog.id());
        let mut record = left.record().clone();
        record.watchdog = watchdog.id().unwrap_or_default();
        record.linger_secs = Some(cmd.linger.as_secs());
        let since = record.since;
        let url = record.url.clone();
        let mut output = None;
        let mut recorded = false;
        if let Some(path) = &cmd.record {
            // An ocio runs it again: it is no longer left.
            let _ = std::fs::remove_file(leftover::left_marker(path));
            match record.save_blocking(path.clone()).await {
                Ok(()) => recorded = true,
                // The record it was adopted from is still there (the new one goes in by a
                // rename): the next ocio adopts it from that one.
                Err(e) if path.is_file() => {
                    tracing::warn!(record = %path.display(), error = %e, "could not update the adopted managed server's record; the one it was adopted from stands");
                    recorded = true;
                }
                Err(e) => {
                    tracing::warn!(record = %path.display(), error = %e, "could not record the adopted managed server; it stops with ocio");
                }
            }
            let log = output::Log::at_end(path);
            output = Some(tokio::spawn(log.follow(output::ears().0)));
        }
        Ok(Self {
            process: Process::Adopted { pid, since },
            watchdog_pipe: Some(watchdog_pipe),
            watchdog,
            url,
            grace: cmd.stop_grace,
            record: cmd.record.clone(),
            lingers: recorded,
            output,
        })
    }

    async fn await_ready(
        &mut self,
        heard: output::Heard,
        log: Option<output::Log>,
        timeout: Duration,
    ) -> Result<String, ManagedError> {
        let output::Heard { tail, url, drains } = heard;
        let exited = tokio::select! {
            url = url => match url {
                Ok(url) => return Ok(url),
                Err(_) => self.exited().await,
            },
            status = self.exited() => status,
            () = tokio::time::sleep(timeout) => {
                return Err(ManagedError::NotReady { timeout, stderr: tail.borrow().clone() });
            }
        };
        // Its last words: from a log file, read again now (the follower reads it only every so
        // often); from pipes, once they are drained (they end with the process).
        let stderr = match log {
            Some(log) => log.last_lines(),
            None => {
                let drained = futures_util::future::join_all(drains);
                let _ = tokio::time::timeout(Duration::from_secs(1), drained).await;
                tail.borrow().clone()
            }
        };
        Err(ManagedError::ExitedEarly {
            status: exited,
            stderr,
        })
    }

    /// What the next ocio needs to adopt this server, written beside the database. Without it
    /// the server still works; it is only not adopted (and so does not linger either).
    async fn save_record(&mut self, cmd: &ServerCommand, password: Option<&Password>) {
        let (Some(path), Some(pid)) = (&self.record, self.pid()) else {
            return;
        };
        // One a watchdog left when an ocio went before it recorded its server says nothing now.
        let _ = std::fs::remove_file(leftover::left_marker(path));
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
            linger_secs: Some(cmd.linger.as_secs()),
        };
        match record.save_blocking(path.clone()).await {
            Ok(()) => self.lingers = true,
            Err(e) => {
                tracing::warn!(record = %path.display(), error = %e, "could not record the managed server; it stops with ocio");
            }
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

    /// SIGTERM the group, wait the grace period, SIGKILL; returns once the server is gone. Its
    /// record goes first, so that no other ocio adopts a server on its way out.
    pub async fn stop(mut self) {
        self.forget();
        self.tell_watchdog_to_stop().await;
        let deadline = self.grace + Duration::from_secs(2);
        if tokio::time::timeout(deadline, self.exited()).await.is_err() {
            tracing::warn!("opencode serve outlived its watchdog; killing it directly");
            self.kill().await;
        }
        let _ = tokio::time::timeout(deadline, self.watchdog.wait()).await;
    }

    /// After the server exited on its own: the watchdog stops what is left of its group (the
    /// server's own children) and goes too, so it never signals the group later, when the
    /// number may be another's.
    pub(crate) async fn retire(mut self) {
        self.forget();
        self.tell_watchdog_to_stop().await;
        let deadline = self.grace + Duration::from_secs(2);
        if tokio::time::timeout(deadline, self.watchdog.wait())
            .await
            .is_err()
        {
            let _ = self.watchdog.start_kill();
        }
    }

    /// Let ocio go without the server: it runs on for its linger time, for the next ocio to
    /// adopt (its record stays). One that is not recorded (its record could not be written)
    /// could not be adopted, so its sessions would be lost anyway: it is stopped. Whether it
    /// runs on.
    pub(crate) async fn leave(self) -> bool {
        if !self.lingers {
            tracing::warn!(url = %self.url, "the managed server is not recorded for the next ocio: stopped instead of left running");
            self.stop().await;
            return false;
        }
        // Dropping closes the watchdog's pipe without a word: it lingers.
        true
    }

    async fn tell_watchdog_to_stop(&mut self) {
        if let Some(mut pipe) = self.watchdog_pipe.take() {
            let _ = pipe.write_all(b"stop\n").await;
        }
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
            leftover::remove_record(record);
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Closing the pipe is all it takes: the watchdog does the rest, even if we are exiting.
        // A server nobody could adopt (not recorded yet: dropped while starting) is told to stop
        // at once instead of lingering.
        if let Some(pipe) = self.watchdog_pipe.take()
            && !self.lingers
            && let Ok(fd) = pipe.into_owned_fd()
        {
            use std::io::Write;
            // Five bytes into an empty pipe: never blocks.
            let _ = std::fs::File::from(fd).write_all(b"stop\n");
        }
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

/// Hear the child's stdout and stderr (both piped), until each ends.
fn hear_pipes(child: &mut Child, ears: output::Ears) -> Vec<tokio::task::JoinHandle<()>> {
    let stderr_ears = ears.without_url();
    let mut drains = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        drains.push(tokio::spawn(output::drain(stderr, "stderr", stderr_ears)));
    }
    if let Some(stdout) = child.stdout.take() {
        drains.push(tokio::spawn(output::drain(stdout, "stdout", ears)));
    }
    drains
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// `sh` waits for a word or EOF on stdin, then stops the process group `pgid`: at once after
/// `stop`, else once the server's linger is over (or sooner: it leaves when the group is
/// gone), having marked when it was left (see [`leftover::left_marker`]). Only SIGKILL stops
/// it.
fn spawn_watchdog(pgid: u32, cmd: &ServerCommand) -> Result<(Child, ChildStdin), ManagedError> {
    // $1 the group, $2 the grace, $3 the linger, $4 the marker (may be empty).
    const SCRIPT: &str = r#"trap '' INT TERM HUP
read -r word
if [ "$word" != stop ]; then
  [ -z "$4" ] || : > "$4"
  left=$3
  while [ "$left" -gt 0 ] && kill -0 "-$1" 2>/dev/null; do sleep 1; left=$((left - 1)); done
fi
kill -TERM "-$1" 2>/dev/null && sleep "$2" && kill -KILL "-$1" 2>/dev/null
exit 0"#;
    let spawned = Command::new("sh")
        .args([
            "-c",
            SCRIPT,
            leftover::WATCHDOG,
            &pgid.to_string(),
            &format!("{:.3}", cmd.stop_grace.as_secs_f64()),
            &cmd.linger.as_secs().to_string(),
        ])
        .arg(
            cmd.record
                .as_deref()
                .map(leftover::left_marker)
                .unwrap_or_default(),
        )
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
        .spawn();
    let spawn_err = |source| ManagedError::Spawn {
        program: "sh".into(),
        source,
    };
    let mut watchdog = spawned.map_err(spawn_err)?;
    let pipe = watchdog
        .stdin
        .take()
        .ok_or_else(|| spawn_err(std::io::Error::other("watchdog stdin was not piped")))?;
    Ok((watchdog, pipe))
}

#[cfg(test)]
#[path = "running_tests.rs"]
mod tests;
