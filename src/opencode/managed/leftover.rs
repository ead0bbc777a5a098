//! A managed server's record, so that the next ocio adopts a server the last one left running.
//!
//! A managed server outlives ocio while its sessions work (a quit with sessions running, or a
//! crash): its watchdog lets it run for the agent's `linger` time before stopping it. The record
//! beside the database says where it is (pid, URL, password, its watchdog); the next ocio finds
//! the server alive, takes its watchdog over, and its sessions are re-attached like those on any
//! server. The record is private (0600, in a 0700 directory of the user's own): it holds the
//! server's password, and a record planted by someone else could name any process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::opencode::secret::Password;

/// The name a watchdog runs under (`$0` of its `sh -c`), how it is told from other processes.
pub(super) const WATCHDOG: &str = "ocio-watchdog";

/// What the next ocio needs to find and take over a server.
#[derive(Clone, Serialize, Deserialize)]
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
    /// How long its watchdog lets it run once ocio is gone (absent in records of ocio before
    /// it was kept).
    #[serde(default)]
    pub(super) linger_secs: Option<u64>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("pid", &self.pid)
            .field("url", &self.url)
            .field("watchdog", &self.watchdog)
            .field("program", &self.program)
            .field("linger_secs", &self.linger_secs)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// Write it whole or not at all: a temp file, then a rename. Blocking (it syncs).
    pub(super) fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            crate::paths::ensure_private_dir(dir)?;
        }
        let staged = staged(path);
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

    /// [`Record::save`] off the async runtime's threads.
    pub(super) async fn save_blocking(self, path: PathBuf) -> std::io::Result<()> {
        tokio::task::spawn_blocking(move || self.save(&path))
            .await
            .map_err(std::io::Error::other)?
    }
}

fn staged(record: &Path) -> PathBuf {
    record.with_extension("json.tmp")
}

/// The file the watchdog of the server recorded at `record` creates when ocio goes without
/// stopping the server: when it was left, for `ocio status` to say when it stops.
pub(super) fn left_marker(record: &Path) -> PathBuf {
    record.with_extension("left")
}

/// Forget the server recorded at `record`: the record, a half-written one, and when it was left.
pub(super) fn remove_record(record: &Path) {
    let _ = std::fs::remove_file(record);
    let _ = std::fs::remove_file(staged(record));
    let _ = std::fs::remove_file(left_marker(record));
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

/// Stop every watchdog of the server `server` but `keep` (and their `sleep`s): each one found
/// in `/proc`, so that one a lost record no longer names cannot stop the server later.
pub(super) fn release_watchdogs(server: u32, keep: Option<u32>) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let server = server.to_string();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if Some(pid) == keep {
            continue;
        }
        let Ok(line) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        // sh -c SCRIPT ocio-watchdog PGID GRACE LINGER
        let args: Vec<&[u8]> = line.split(|b| *b == 0).collect();
        if args.get(3) == Some(&WATCHDOG.as_bytes()) && args.get(4) == Some(&server.as_bytes()) {
            // Its own process group: its `sleep` goes with it.
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Whether `dir` is a directory of this user's that nobody else may write to: only there are
/// records trusted (one planted by another user could name any of ours to stop).
fn trusted(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    let Ok(own) = std::fs::metadata("/proc/self") else {
        return false;
    };
    let ok = meta.is_dir() && meta.uid() == own.uid() && meta.mode() & 0o022 == 0;
    if !ok {
        tracing::warn!(dir = %dir.display(), "managed server records ignored: the directory is not private to this user");
    }
    ok
}

/// Whether two programs are the same file (paths found on two PATHs may differ).
fn same_program(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    a == b || canonical(a) == canonical(b)
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
        if !same_program(&found.record.program, program) {
            tracing::info!(
                pid = found.record.pid,
                "a managed server of another program is stopped"
            );
            found.discard(grace).await;
            return None;
        }
        Some(found)
    }

    /// The server recorded at `path`, if it lives, read without touching anything: the one an
    /// engine runs now, or left running (for `ocio check` to check instead of starting one).
    pub(crate) fn peek(path: &Path) -> Option<Self> {
        if !path.exists() || !trusted(path.parent()?) {
            return None;
        }
        let record = serde_json::from_slice::<Record>(&std::fs::read(path).ok()?).ok()?;
        let found = Self {
            path: path.to_path_buf(),
            record,
        };
        found.is_alive().then_some(found)
    }

    /// Every server recorded in `dir` that lives, by agent (see [`Leftover::peek`]).
    pub(crate) fn running_in(dir: &Path) -> Vec<(String, Self)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<(String, Self)> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .filter_map(|path| {
                let agent = path.file_stem()?.to_str()?.to_string();
                Some((agent, Self::peek(&path)?))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    pub(crate) fn server_pid(&self) -> u32 {
        self.record.pid
    }

    /// When ocio went without stopping it, and when its watchdog stops it at the latest (the
    /// linger over): `None` while an ocio runs it (or for records of an older ocio).
    pub(crate) fn left(&self) -> Option<(SystemTime, SystemTime)> {
        let since = std::fs::metadata(left_marker(&self.path))
            .and_then(|m| m.modified())
            .ok()?;
        let linger = Duration::from_secs(self.record.linger_secs?);
        Some((since, since + linger))
    }

    /// The server recorded at `path`, while it lives; a record that cannot be read, or of a
    /// server that is gone, is removed.
    fn read(path: &Path) -> Option<Self> {
        // Only a record in a trusted directory is ever removed (peek checks it again, quietly
        // when it holds).
        if !path.exists() || !path.parent().is_some_and(trusted) {
            return None;
        }
        let found = Self::peek(path);
        if found.is_none() {
            tracing::info!(record = %path.display(), "the managed server recorded here is gone (or its record unreadable); record removed");
            remove_record(path);
        }
        found
    }

    /// Stop the servers recorded in `dir` for agents (the records' names) not in `kept`: no
    /// agent will take them over. Their records and logs go.
    pub(crate) async fn sweep(dir: &Path, kept: &[&str], grace: Duration) {
        if !dir.exists() || !trusted(dir) {
            return;
        }
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
            let _ = std::fs::remove_file(path.with_extension("log"));
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

    /// Stop the server (SIGTERM, `grace`, SIGKILL to its group) and forget it: the record goes
    /// first, so that no other ocio adopts a server on its way out.
    pub(crate) async fn discard(self, grace: Duration) {
        remove_record(&self.path);
        release_watchdogs(self.record.pid, None);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record is trusted only in a directory of this user's that nobody else may write to.
    #[test]
    fn records_in_a_directory_others_may_write_to_are_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("servers");
        crate::paths::ensure_private_dir(&records).unwrap();
        assert!(trusted(&records));
        std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!trusted(&records));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&records, &link).unwrap();
        std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!trusted(&link), "a symlink is not the directory itself");
        assert!(!trusted(&dir.path().join("none")));
    }

    /// The password never shows in a record's `Debug`.
    #[test]
    fn a_record_never_prints_its_password() {
        let record = Record {
            pid: 1,
            since: 2,
            url: "http://127.0.0.1:1".into(),
            watchdog: 3,
            program: "opencode".into(),
            password: "hunter2".into(),
            linger_secs: Some(60),
        };
        assert!(!format!("{record:?}").contains("hunter2"));
    }
}
