//! What a managed server prints: forwarded to ocio's log, its last lines kept for an error, and
//! the line saying where it listens. From pipes (a server that stops with ocio), or from the log
//! file a server that may outlive ocio writes to (a pipe would break when ocio goes).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeekExt, BufReader};
use tokio::sync::{oneshot, watch};

use super::ManagedError;

const TAIL_LINES: usize = 20;
/// How often a log file is read for more.
const LOG_POLL: Duration = Duration::from_millis(250);
/// A log file past this size is started afresh when a server starts.
const LOG_MAX: u64 = 16 << 20;

/// Where the heard lines go.
pub(super) struct Ears {
    tail: watch::Sender<Vec<String>>,
    url: Option<oneshot::Sender<String>>,
}

/// What was heard: the last lines, and the URL once the server says it listens; from pipes,
/// the tasks that hear them (they end with the pipes).
pub(super) struct Heard {
    pub(super) tail: watch::Receiver<Vec<String>>,
    pub(super) url: oneshot::Receiver<String>,
    pub(super) drains: Vec<tokio::task::JoinHandle<()>>,
}

pub(super) fn ears() -> (Ears, Heard) {
    let (tail, tail_rx) = watch::channel(Vec::new());
    let (url, url_rx) = oneshot::channel();
    let ears = Ears {
        tail,
        url: Some(url),
    };
    (
        ears,
        Heard {
            tail: tail_rx,
            url: url_rx,
            drains: Vec::new(),
        },
    )
}

impl Ears {
    /// Ears on another stream of the same server, keeping the same tail.
    pub(super) fn without_url(&self) -> Ears {
        Ears {
            tail: self.tail.clone(),
            url: None,
        }
    }

    fn hear(&mut self, stream: &str, line: String) {
        tracing::debug!(target: "ocio::opencode::server", stream, "{line}");
        if let Some(found) = listening_url(&line)
            && let Some(tx) = self.url.take()
        {
            let _ = tx.send(found.to_string());
        }
        self.tail.send_modify(|t| {
            if t.len() == TAIL_LINES {
                t.remove(0);
            }
            t.push(line);
        });
    }
}

/// Hear a server's output stream (a pipe) until it ends.
pub(super) async fn drain(stream: impl AsyncRead + Unpin, name: &'static str, mut ears: Ears) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        ears.hear(name, line);
    }
}

/// The log file a server that may outlive ocio writes to, beside its record (a pipe would
/// break when ocio goes), and where the output of this run of it starts.
pub(super) struct Log {
    path: PathBuf,
    from: u64,
}

impl Log {
    /// With a `record`, the server's stdout and stderr go to its log file: opened to append
    /// (and emptied first when it has grown past [`LOG_MAX`]). Without, they are piped.
    pub(super) fn attach(
        record: Option<&Path>,
        command: &mut tokio::process::Command,
    ) -> Result<Option<Log>, ManagedError> {
        let Some(record) = record else {
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            return Ok(None);
        };
        let path = record.with_extension("log");
        let opened = open_log(&path).map_err(|source| ManagedError::Log {
            path: path.clone(),
            source,
        })?;
        let (file, copy, from) = opened;
        command.stdout(copy).stderr(file);
        Ok(Some(Log { path, from }))
    }

    /// The log of an adopted server, from what it writes next.
    pub(super) fn at_end(record: &Path) -> Log {
        let path = record.with_extension("log");
        let from = std::fs::metadata(&path).map_or(0, |m| m.len());
        Log { path, from }
    }

    /// Hear what is written to it, as it grows, until the task is aborted.
    pub(super) fn follow(&self, ears: Ears) -> impl std::future::Future<Output = ()> + use<> {
        follow(self.path.clone(), self.from, ears)
    }

    /// Its last lines from this run on (for an error when the server would not start).
    pub(super) fn last_lines(&self) -> Vec<String> {
        let Ok(text) = std::fs::read(&self.path) else {
            return Vec::new();
        };
        let from = usize::try_from(self.from)
            .unwrap_or(usize::MAX)
            .min(text.len());
        let text = String::from_utf8_lossy(&text[from..]);
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        lines[start..].iter().map(|l| l.to_string()).collect()
    }
}

/// Open `path` to append, emptied first past [`LOG_MAX`]: the file twice (for stdout and
/// stderr) and its length.
fn open_log(path: &Path) -> std::io::Result<(std::fs::File, std::fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        crate::paths::ensure_private_dir(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let mut len = file.metadata()?.len();
    if len > LOG_MAX {
        file.set_len(0)?;
        len = 0;
    }
    let copy = file.try_clone()?;
    Ok((file, copy, len))
}

/// Hear what is written to the log file at `path` from byte `from` on, as it grows, until the
/// task is aborted.
async fn follow(path: PathBuf, from: u64, mut ears: Ears) {
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return;
    };
    if file.seek(SeekFrom::Start(from)).await.is_err() {
        return;
    }
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        match file.read(&mut chunk).await {
            Ok(0) => tokio::time::sleep(LOG_POLL).await,
            Ok(n) => {
                pending.extend_from_slice(&chunk[..n]);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    ears.hear("log", String::from_utf8_lossy(&line[..end]).into_owned());
                }
            }
            Err(_) => return,
        }
    }
}

/// `opencode server listening on http://127.0.0.1:4096` -> the URL.
fn listening_url(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("listening on ")?;
    let url = rest.split_whitespace().next()?;
    url.starts_with("http").then_some(url)
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

    /// Lines written in pieces are heard whole, once each, and only those after `from`.
    #[tokio::test]
    async fn a_growing_log_is_heard_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("servers").join("local.log");
        let (mut file, _, from) = open_log(&path).unwrap();
        assert_eq!(from, 0);
        use std::io::Write;
        writeln!(file, "from the last run").unwrap();
        let (_, _, from) = open_log(&path).unwrap();
        let (ears, mut heard) = ears();
        let task = tokio::spawn(follow(path.clone(), from, ears));
        write!(file, "opencode server listen").unwrap();
        tokio::time::sleep(LOG_POLL * 2).await;
        write!(file, "ing on http://127.0.0.1:9\nnext").unwrap();
        let url = tokio::time::timeout(Duration::from_secs(5), &mut heard.url)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(url, "http://127.0.0.1:9");
        writeln!(file, " line").unwrap();
        tokio::time::timeout(
            Duration::from_secs(5),
            heard.tail.wait_for(|t| t.len() == 2),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            *heard.tail.borrow(),
            [
                "opencode server listening on http://127.0.0.1:9",
                "next line"
            ]
        );
        task.abort();
        let log = Log { path, from };
        assert_eq!(
            log.last_lines(),
            [
                "opencode server listening on http://127.0.0.1:9",
                "next line"
            ],
            "this run's lines, read from the file"
        );
    }
}
