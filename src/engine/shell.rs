//! The plan's own shell commands (`setup` in a new worktree, `check` after a merge): `sh -c` in
//! a directory, in a process group of its own that is killed, children and all, when the run
//! times out or is dropped (a cancelled task, a stopping engine). Its output (stdout and stderr
//! interleaved, as a terminal would show them) is passed on line by line as it comes and kept
//! as a bounded tail for the report.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::mpsc;

/// How many of the last output lines a run keeps.
const TAIL_LINES: usize = 60;
/// The longest line kept (longer ones are cut, said with `…`).
const LINE_MAX: usize = 400;

/// How a shell command ended, with the last lines it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShellRun {
    pub(crate) end: ShellEnd,
    pub(crate) tail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShellEnd {
    Passed,
    /// Its exit code, or the signal that ended it (as `signal N`).
    Failed(String),
    TimedOut(Duration),
    /// It could not be started at all (why).
    NotStarted(String),
}

impl ShellRun {
    pub(crate) fn passed(&self) -> bool {
        self.end == ShellEnd::Passed
    }

    /// `` `npm ci` failed (exit 1) `` and its output's tail: for a failed attempt's error or
    /// a fix session's prompt.
    pub(crate) fn report(&self, command: &str) -> String {
        let how = match &self.end {
            ShellEnd::Passed => "passed".to_string(),
            ShellEnd::Failed(code) => format!("failed ({code})"),
            ShellEnd::TimedOut(limit) => {
                format!("ran longer than {}s and was stopped", limit.as_secs())
            }
            ShellEnd::NotStarted(why) => format!("could not start: {why}"),
        };
        if self.tail.is_empty() {
            format!("`{command}` {how}, printing nothing")
        } else {
            format!("`{command}` {how}; its output ends:\n{}", self.tail)
        }
    }
}

/// Kills a command's process group (it was spawned with `process_group(0)`) when dropped:
/// its children with it, which killing `sh` alone leaves running.
pub(crate) struct Group(Option<Pid>);

impl Group {
    /// The group `child` leads.
    pub(crate) fn of(child: &tokio::process::Child) -> Self {
        Self(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw),
        )
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

/// How long the output is read after the command ended and its group was killed: a process
/// that left the group (a daemon) may hold the pipe open for ever.
const EOF_GRACE: Duration = Duration::from_secs(2);

/// Runs `command` with `sh -c` in `dir` with `env` added, for at most `limit`; each line of its
/// output goes to `lines` as it comes (dropped when nobody reads fast enough). Returns within
/// `limit` and a short grace however the command and its children behave.
pub(crate) async fn run(
    command: &str,
    dir: &Path,
    env: &[(&str, String)],
    limit: Duration,
    lines: Option<mpsc::Sender<String>>,
) -> ShellRun {
    let not_started = |why: String| ShellRun {
        end: ShellEnd::NotStarted(why),
        tail: String::new(),
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => return not_started(format!("no pipe for its output: {e}")),
    };
    let writer_too = match writer.try_clone() {
        Ok(writer) => writer,
        Err(e) => return not_started(format!("no pipe for its output: {e}")),
    };
    let reader = match pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
        Ok(reader) => reader,
        Err(e) => return not_started(format!("cannot read its output: {e}")),
    };
    let mut shell = Command::new("sh");
    shell
        .args(["-c", command])
        .current_dir(dir)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_too)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match shell.spawn() {
        Ok(child) => child,
        Err(e) => return not_started(format!("cannot run sh in {}: {e}", dir.display())),
    };
    // `shell` holds the pipe's writing ends: without dropping it, the reader never sees EOF.
    drop(shell);
    let group = Group::of(&child);
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let mut reading = tokio::spawn(read_tail(reader, lines, tail.clone()));
    let end = ended(tokio::time::timeout(limit, child.wait()).await, limit);
    // The group goes now (background children with it), and with it the pipe's writers; one
    // that left the group is not waited for beyond the grace.
    drop(group);
    if tokio::time::timeout(EOF_GRACE, &mut reading).await.is_err() {
        reading.abort();
    }
    let tail = tail
        .lock()
        .map(|t| Vec::from(t.clone()).join("\n"))
        .unwrap_or_default();
    ShellRun { end, tail }
}

fn ended(
    waited: Result<std::io::Result<std::process::ExitStatus>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> ShellEnd {
    match waited {
        Ok(Ok(status)) if status.success() => ShellEnd::Passed,
        Ok(Ok(status)) => ShellEnd::Failed(match status.code() {
            Some(code) => format!("exit {code}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("signal {}", status.signal().unwrap_or(0))
            }
        }),
        Ok(Err(e)) => ShellEnd::Failed(format!("cannot wait for it: {e}")),
        Err(_) => ShellEnd::TimedOut(limit),
    }
}

/// Reads the output to its end, passing each line on and keeping the last [`TAIL_LINES`].
async fn read_tail(
    reader: pipe::Receiver,
    lines: Option<mpsc::Sender<String>>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(reader);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = crate::text::without_control(&String::from_utf8_lossy(&buffer));
        let line = crate::text::clip(line.trim_end(), LINE_MAX);
        if let Some(lines) = &lines {
            let _ = lines.try_send(line.clone());
        }
        let Ok(mut tail) = tail.lock() else { break };
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_passes_or_fails_with_the_tail_of_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let env = [("OCIO_TASK", "t1".to_string())];
        let long = Duration::from_secs(30);
        let run1 = run(
            "echo out $OCIO_TASK; echo err >&2",
            dir.path(),
            &env,
            long,
            None,
        )
        .await;
        assert!(run1.passed(), "{run1:?}");
        assert_eq!(run1.tail, "out t1\nerr");
        let run2 = run("seq 1 100; exit 3", dir.path(), &[], long, None).await;
        assert_eq!(run2.end, ShellEnd::Failed("exit 3".into()));
        assert!(run2.tail.starts_with("41\n") && run2.tail.ends_with("\n100"));
        assert!(
            run2.report("make")
                .starts_with("`make` failed (exit 3); its output ends:\n41")
        );
    }

    #[tokio::test]
    async fn a_command_that_runs_too_long_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("alive");
        // A grandchild in the background that would write the marker after the limit.
        let command = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let (tx, mut rx) = mpsc::channel(8);
        let started = std::time::Instant::now();
        let ran = run(
            &command,
            dir.path(),
            &[],
            Duration::from_millis(300),
            Some(tx),
        )
        .await;
        assert_eq!(ran.end, ShellEnd::TimedOut(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!marker.exists(), "the background child was killed too");
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_daemon_that_keeps_the_output_open_does_not_hold_the_run() {
        let dir = tempfile::tempdir().unwrap();
        // `setsid` leaves the process group: killing the group does not reach it, and it
        // holds the pipe open for a minute.
        let command = "echo starting; setsid sleep 60 & echo started";
        let started = std::time::Instant::now();
        let ran = run(command, dir.path(), &[], Duration::from_secs(30), None).await;
        assert!(ran.passed(), "{ran:?}");
        assert!(ran.tail.contains("started"), "{ran:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn lines_are_passed_on_as_they_come() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let long = Duration::from_secs(30);
        let ran = run("echo one; echo two", dir.path(), &[], long, Some(tx)).await;
        assert!(ran.passed());
        assert_eq!(rx.recv().await.as_deref(), Some("one"));
        assert_eq!(rx.recv().await.as_deref(), Some("two"));
    }
}
