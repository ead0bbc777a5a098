//! Why an OpenCode server answered a session's call with a 5xx, found out before the failure
//! reaches the operator: the server's health, and the session's directory as that server sees
//! it (ocio's disk when the server is on loopback, the server's own file listing otherwise).
//! A bare "Unexpected server error" becomes what went wrong and what to do, keeping the
//! server's `ref` for its logs.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::Path;

use super::client::{Client, ClientError};

/// A diagnosed failure: what the operator reads, and whether another agent may do better.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    pub(crate) error: String,
    pub(crate) agent_fault: bool,
}

/// The session's directory, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Directory,
    Missing,
    NotADirectory,
    /// The server cannot list it (missing, or not a directory), while ocio's disk has it.
    NotShared,
    /// The server cannot list it, and ocio's disk does not have it either.
    Absent,
    /// It could not be checked: why.
    Unknown(String),
}

/// The diagnosis of `error`, met calling `client` for a session in `dir`; `None` when it is
/// not a server error (5xx).
pub(crate) async fn server_error(
    client: &Client,
    dir: &str,
    error: &ClientError,
) -> Option<Diagnosis> {
    let ClientError::Status {
        status, body, what, ..
    } = error
    else {
        return None;
    };
    if *status < 500 {
        return None;
    }
    let server = client.base_url();
    let head = match server_ref(body) {
        Some(reference) => {
            format!("{what} on {server} failed with HTTP {status} (server log ref {reference})")
        }
        None => format!("{what} on {server} failed with HTTP {status}"),
    };
    let unhealthy = match client.health().await {
        Ok(health) if health.healthy => None,
        Ok(_) => Some("the server reports itself unhealthy".to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = unhealthy {
        return Some(Diagnosis {
            error: format!(
                "{head}: the server is unhealthy: {why}\nhint: check that server (its log, disk and memory); another agent may take the task"
            ),
            agent_fault: true,
        });
    }
    let place = match is_loopback(server) {
        true => local_place(Path::new(dir)),
        false => remote_place(client, dir).await,
    };
    Some(explain(&head, server, dir, place, body))
}

/// What the operator reads for a healthy server and the directory found at `place`.
fn explain(head: &str, server: &str, dir: &str, place: Place, body: &str) -> Diagnosis {
    let restore = "hint: restore the directory (or point the plan's `repo` at one that exists) and retry the task";
    let (error, agent_fault) = match place {
        Place::Missing | Place::Absent => (
            format!("{head}: the directory {dir} does not exist on {server}\n{restore}"),
            false,
        ),
        Place::NotADirectory => (
            format!(
                "{head}: {dir} is not a directory on {server} (it is a file)\nhint: point the plan's `repo` at a directory and retry the task"
            ),
            false,
        ),
        Place::NotShared => (
            format!(
                "{head}: the directory {dir} does not exist on {server} (or is not a directory there), though it exists here: the agent's server does not share ocio's disk?\nhint: for a build box set workspace = \"remote\" for this agent (ocio then carries each task's tree there; `ocio check` tells which fits), or give that server the same paths; another agent may take the task"
            ),
            true,
        ),
        Place::Directory => (
            format!(
                "{head}: the server is healthy and has the directory {dir}, and gave no reason ({})\nhint: look for the ref in that server's log; another agent may take the task",
                reason(body)
            ),
            true,
        ),
        Place::Unknown(why) => (
            format!(
                "{head}: the server is healthy; whether it has the directory {dir} could not be checked: {why}\nhint: look for the ref in that server's log"
            ),
            true,
        ),
    };
    Diagnosis { error, agent_fault }
}

/// The directory on ocio's own disk (the server's too, when it runs on loopback).
fn local_place(dir: &Path) -> Place {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Place::Directory,
        Ok(_) => Place::NotADirectory,
        Err(e) if e.kind() == ErrorKind::NotFound => Place::Missing,
        Err(e) => Place::Unknown(e.to_string()),
    }
}

/// The directory as a server elsewhere sees it, with ocio's disk telling a path the two do
/// not share from one that is gone.
async fn remote_place(client: &Client, dir: &str) -> Place {
    match client.has_directory(dir).await {
        Ok(true) => Place::Directory,
        Ok(false) if Path::new(dir).is_dir() => Place::NotShared,
        Ok(false) => Place::Absent,
        Err(e) => Place::Unknown(e.to_string()),
    }
}

/// Whether the server at `base` (`http://host:port`) runs on this machine.
fn is_loopback(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The `ref` OpenCode gives an unexpected error (`{"data":{"ref":"err_..."}}`), to find it in
/// the server's log.
fn server_ref(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.pointer("/data/ref")?.as_str().map(str::to_string)
}

/// The server's own message, or its body when it has none.
fn reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/data/message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"name":"UnknownError","data":{"message":"Unexpected server error. Check server logs for details.","ref":"err_1c22c3ba"}}"#;

    #[test]
    fn the_ref_is_kept_and_loopback_is_told_from_a_remote_host() {
        assert_eq!(server_ref(BODY).as_deref(), Some("err_1c22c3ba"));
        assert_eq!(server_ref("oops"), None);
        assert!(is_loopback("http://127.0.0.1:4096"));
        assert!(is_loopback("http://localhost:4096"));
        assert!(is_loopback("http://[::1]:4096"));
        assert!(!is_loopback("http://10.0.0.7:4096"));
        assert!(!is_loopback("https://agent.example:4096"));
    }

    #[test]
    fn a_directory_missing_or_not_shared_is_named_with_what_to_do() {
        let head = "prompt on http://h:1 failed with HTTP 500";
        let missing = explain(head, "http://h:1", "/x", Place::Missing, BODY);
        assert!(
            missing.error.contains("/x does not exist on http://h:1"),
            "{}",
            missing.error
        );
        assert!(!missing.agent_fault);
        let elsewhere = explain(head, "http://h:1", "/x", Place::NotShared, BODY);
        assert!(
            elsewhere.error.contains("does not share ocio's disk"),
            "{}",
            elsewhere.error
        );
        assert!(elsewhere.agent_fault);
        let file = explain(head, "http://h:1", "/x", Place::NotADirectory, BODY);
        assert!(file.error.contains("not a directory"), "{}", file.error);
        assert!(!file.agent_fault);
    }
}
