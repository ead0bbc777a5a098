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
    let _group = crate::engine::shell::Group::of(&child);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            failed(format!(
                "did not finish within {}s",
                COMMAND_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| failed(format!("cannot be run: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = match stderr.trim() {
            "" => "(nothing on stderr)".to_string(),
            text => shown(text),
        };
        return Err(failed(format!("failed ({}): {said}", output.status)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
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
