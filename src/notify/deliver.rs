//! Sending one notice: the `[notify] command` run with the notice as one JSON object on its
//! stdin, and the `[notify] webhook` POSTed the same object. Each has a time limit; a failure
//! (no such program, a non-zero exit, an HTTP error, no answer in time) is logged and nothing
//! else: a notice is never worth stopping or slowing the engine for.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// How long a command or a webhook may take to take a notice.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a failing command's stderr or a refusing webhook's answer goes into the log.
const SHOWN: usize = 300;

/// Run `command` with `notice` on stdin, and log how it went.
pub(super) async fn run_command(command: &[String], notice: &Value) {
    let Some((program, args)) = command.split_first() else {
        return;
    };
    match tokio::time::timeout(SEND_TIMEOUT, command_output(program, args, notice)).await {
        Ok(Ok(output)) if output.status.success() => {
            tracing::debug!(program, "notification command ran");
        }
        Ok(Ok(output)) => tracing::warn!(
            program,
            status = %output.status,
            stderr = %clipped(&String::from_utf8_lossy(&output.stderr)),
            "the notification command failed"
        ),
        Ok(Err(e)) => tracing::warn!(program, error = %e, "cannot run the notification command"),
        Err(_) => tracing::warn!(
            program,
            "the notification command did not finish within {}s; killed",
            SEND_TIMEOUT.as_secs()
        ),
    }
}

/// The command's outcome; it is killed if this is dropped (on the time limit).
async fn command_output(
    program: &str,
    args: &[String],
    notice: &Value,
) -> std::io::Result<std::process::Output> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut line = notice.to_string();
        line.push('\n');
        // A command that does not read its stdin closes it: not a failure of the command.
        if let Err(e) = stdin.write_all(line.as_bytes()).await {
            tracing::debug!(program, error = %e, "the notification command did not read it all");
        }
    }
    child.wait_with_output().await
}

/// POST `notice` to `url`, with its title also in a `Title` header (ntfy shows it when the
/// body is not its JSON), and log how it went.
pub(super) async fn post(http: &reqwest::Client, url: &str, notice: &Value) {
    let shown = host_of(url);
    let mut request = http.post(url).timeout(SEND_TIMEOUT).json(notice);
    if let Some(title) = notice["title"].as_str() {
        request = request.header("Title", header_text(title));
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            tracing::debug!(url = %shown, status = %response.status(), "notification posted");
        }
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            tracing::warn!(url = %shown, %status, body = %clipped(&body), "the notification webhook refused it");
        }
        Err(e) => {
            tracing::warn!(url = %shown, error = %e.without_url(), "cannot post the notification")
        }
    }
}

/// The scheme and host of `url`: its path may hold a secret (a webhook's token), so the log
/// never gets it.
fn host_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}/...",
            parsed.scheme(),
            parsed.host_str().unwrap_or("?")
        ),
        Err(_) => "(not a URL)".into(),
    }
}

/// `text` as a header value can carry it: visible ASCII only.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The first [`SHOWN`] characters of `text`, trimmed.
fn clipped(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}
