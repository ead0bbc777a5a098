//! Reading a fleet's source once: the URLs of its members now, from its list, its DNS name
//! (each address is a member) or its command (one URL a line). The watcher and `ocio check`
//! both read sources this way.

use std::time::Duration;

use crate::config::{FleetConfig, FleetSource};
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
    #[error(
        "command `{command}` printed `{line}`, which is not an http:// or https:// URL; print one URL a line"
    )]
    NotUrl { command: String, line: String },
    #[error("the fleet has no source (one of urls, dns or command)")]
    None,
}

/// The members' URLs, sorted, each once.
pub(crate) async fn read(fleet: &FleetConfig) -> Result<Vec<String>, SourceError> {
    let mut urls = match fleet.source() {
        Some(FleetSource::Urls(urls)) => urls.to_vec(),
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

/// The URLs `command` prints (run with `sh -c`), one a line; blank lines are skipped.
async fn run(command: &str) -> Result<Vec<String>, SourceError> {
    let failed = |detail: String| SourceError::Command {
        command: shown(command),
        detail,
    };
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child)
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
        .filter(|line| !line.is_empty())
        .map(|line| {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                Ok(line.to_string())
            } else {
                Err(SourceError::NotUrl {
                    command: shown(command),
                    line: shown(line),
                })
            }
        })
        .collect()
}
