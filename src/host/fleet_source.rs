//! Reading a fleet's source once: the URLs of its members now, from its list, its DNS name
//! (each address is a member) or its command (one URL a line). The watcher and `ocio check`
//! both read sources this way.

use std::time::Duration;

use crate::config::{FleetConfig, FleetSource, member_url, redacted};
use crate::text::shown;

/// The longest a source command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A source that could not be read; the fleet keeps the members it has.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("cannot resolve {name}: {source}")]
    Dns {
        name: String,
        source: std::io::Error,
    },
    #[error("command `{command}` {detail}")]
    Command { command: String, detail: String },
    #[error("command `{command}` printed `{line}`, which {why}; print one URL a line")]
    NotUrl {
        command: String,
        line: String,
        why: String,
    },
    #[error("the fleet has no source (one of urls, dns or command)")]
    None,
    #[error("reading the fleet's source stopped: {0}")]
    Stopped(String),
}

/// The members' URLs, each in its one spelling ([`member_url`]), sorted, each once.
pub(crate) async fn read(fleet: &FleetConfig) -> Result<Vec<String>, SourceError> {
    let mut urls = match fleet.source() {
        // Checked with the config: each is a URL.
        Some(FleetSource::Urls(urls)) => urls.iter().filter_map(|u| member_url(u).ok()).collect(),
        Some(FleetSource::Dns(name)) => resolve(name).await?,
        Some(FleetSource::Command(command)) => run(command).await?,
        None => return Err(SourceError::None),
    };
    urls.sort();
    urls.dedup();
    Ok(urls)
}

/// `http://<address>:<port>` for each address `name` (`host:port`) resolves to.
async fn resolve(name: &str) -> Result<Vec<String>, SourceError> {
    let addrs = tokio::net::lookup_host(name)
        .await
        .map_err(|source| SourceError::Dns {
            name: name.to_string(),
            source,
        })?;
    // A SocketAddr shows an IPv6 address in brackets, as a URL wants it.
    Ok(addrs.map(|addr| format!("http://{addr}")).collect())
}

/// How long a command's output is read after it ended.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// A command's output as it is read.
type Read = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Reads `pipe` to its end into `read`, chunk by chunk (what came is kept if the end never
/// does).
async fn read_into(mut pipe: impl tokio::io::AsyncRead + Unpin, read: Read) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = tokio::io::AsyncReadExt::read(&mut pipe, &mut chunk).await {
        if n == 0 {
            break;
        }
        read.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(&chunk[..n]);
    }
}

/// Starts reading `pipe`: the reader, and what it has read.
fn reading(
    pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
) -> (Option<tokio::task::JoinHandle<()>>, Read) {
    let read = Read::default();
    let reader = pipe.map(|pipe| tokio::spawn(read_into(pipe, read.clone())));
    (reader, read)
}

/// What was read of a command's output, its reader given [`OUTPUT_GRACE`] to reach the end.
async fn output_of((reader, read): (Option<tokio::task::JoinHandle<()>>, Read)) -> String {
    if let Some(mut reader) = reader
        && tokio::time::timeout(OUTPUT_GRACE, &mut reader)
            .await
            .is_err()
    {
        reader.abort();
    }
    let bytes = read.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The URLs `command` prints (run with `sh -c`), one a line; blank lines and `#` comments are
/// skipped.
async fn run(command: &str) -> Result<Vec<String>, SourceError> {
    let failed = |detail: String| SourceError::Command {
        command: shown(command),
        detail,
    };
    // In a group of its own, killed whole when it times out or is dropped (an engine
    // stopping): killing `sh` alone left its children running (hand trial: a `sleep` per
    // timed-out read).
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot be run: {e}")))?;
    let mut child = child;
    let group = crate::engine::shell::Group::of(&child);
    let stdout = reading(child.stdout.take());
    let stderr = reading(child.stderr.take());
    let status = tokio::time::timeout(COMMAND_TIMEOUT, child.wait())
        .await
        .map_err(|_| {
            failed(format!(
                "did not finish within {}s",
                COMMAND_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| failed(format!("cannot be run: {e}")))?;
    // Ended: what it printed is read for a moment more; a process it left in the background
    // (holding the output open) does not keep the read waiting, and goes with its group.
    let stdout = output_of(stdout).await;
    let stderr = output_of(stderr).await;
    drop(group);
    if !status.success() {
        let said = match stderr.trim() {
            "" => "(nothing on stderr)".to_string(),
            text => shown(text),
        };
        return Err(failed(format!("failed ({status}): {said}")));
    }
    stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            member_url(line).map_err(|why| SourceError::NotUrl {
                command: shown(command),
                line: shown(&redacted(line)),
                why,
            })
        })
        .collect()
}
