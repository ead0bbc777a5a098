//! A managed server's record, so that the next ocio adopts a server the last one left running.
//!
//! A managed server outlives ocio while its sessions work (a quit with sessions running, or a
//! crash): its watchdog lets it run for the agent's `linger` time before stopping it. The record
//! beside the database says where it is (pid, URL, password, its watchdog); the next ocio finds
//! the server alive, takes its watchdog over, and its sessions are re-attached like those on any
//! server. The record is private (0600, in a 0700 directory): it holds the server's password.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::opencode::secret::Password;

/// What the next ocio needs to find and take over a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// The server's pid, also its process group.
    pub(super) pid: u32,
    /// When the process started (clock ticks since boot, `/proc/PID/stat`): a pid used again
    /// by another process is not taken for the server.
    pub(super) since: u64,
    pub(super) url: String,
    /// The watchdog's pid, also its process group.
    pub(super) watchdog: u32,
    /// The `opencode` it runs: a server of another program (the config changed) is not adopted.
    pub(super) program: PathBuf,
    pub(super) password: String,
}

impl Record {
    /// Write it whole or not at all: a temp file, then a rename.
    pub(super) fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            crate::paths::ensure_private_dir(dir)?;
        }
        let staged = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)?;
        let text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(staged, path)
    }
}

/// When process `pid` started, while it lives (a zombie counts as gone).
pub(super) fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold anything.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    // `rest` starts at field 3 (state); the start time is field 22.
    fields.nth(18)?.parse().ok()
}

/// A server a previous ocio left running, found alive and of the same program.
#[derive(Debug)]
pub struct Leftover {
    path: PathBuf,
    record: Record,
}

impl Leftover {
    /// The server recorded at `path`, if it still runs `program`. A record of a server that is
    /// gone is removed; one of a server running another program is stopped (after `grace`).
    pub(crate) async fn find(path: &Path, program: &Path, grace: Duration) -> Option<Self> {
        let found = Self::read(path)?;
        if found.record.program != program {
            tracing::info!(
                pid = found.record.pid,
                "a managed server of another program is stopped"
            );
            found.discard(grace).await;
            return None;
        }
        Some(found)
    }

    /// The server recorded at `path`, while it lives; a record of one that is gone is removed.
    fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read(path).ok()?;
        let found = match serde_json::from_slice::<Record>(&text) {
            Ok(record) => Self {
                path: path.to_path_buf(),
                record,
            },
            Err(e) => {
                tracing::warn!(record = %path.display(), error = %e, "unreadable managed server record; removed");
                let _ = std::fs::remove_file(path);
                return None;
            }
        };
        if !found.is_alive() {
            tracing::info!(record = %path.display(), "the managed server recorded here is gone");
            let _ = std::fs::remove_file(path);
            return None;
        }
        Some(found)
    }

    /// Stop the servers recorded in `dir` for agents (the records' names) not in `kept`: no
    /// agent will take them over.
    pub(crate) async fn sweep(dir: &Path, kept: &[&str], grace: Duration) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "json") || kept.contains(&name) {
                continue;
            }
            if let Some(left) = Self::read(&path) {
                tracing::info!(
                    agent = name,
                    "the managed server of an agent no longer managed is stopped"
                );
                left.discard(grace).await;
            }
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.record.url
    }

    pub(crate) fn password(&self) -> Password {
        Password::new(self.record.password.clone())
    }

    pub(super) fn pid(&self) -> u32 {
        self.record.pid
    }

    pub(super) fn record(&self) -> &Record {
        &self.record
    }

    fn is_alive(&self) -> bool {
        started(self.record.pid) == Some(self.record.since)
    }

    /// Stop the old watchdog (and its `sleep`): the caller watches the server from now on.
    pub(super) fn release_watchdog(&self) {
        if watchdog_of(self.record.watchdog, self.record.pid) {
            let _ = killpg(Pid::from_raw(self.record.watchdog as i32), Signal::SIGKILL);
        }
    }

    /// Stop the server (SIGTERM, `grace`, SIGKILL to its group) and forget it.
    pub(crate) async fn discard(self, grace: Duration) {
        self.release_watchdog();
        let group = Pid::from_raw(self.record.pid as i32);
        if self.is_alive() {
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = tokio::time::Instant::now() + grace;
            while self.is_alive() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if self.is_alive() {
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `pid` is an ocio watchdog of the server `server` (and not a process that took its
/// pid since).
fn watchdog_of(pid: u32, server: u32) -> bool {
    let Ok(line) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = line.split(|b| *b == 0).collect();
    args.iter().any(|a| *a == b"ocio-watchdog")
        && args.iter().any(|a| *a == server.to_string().as_bytes())
}
