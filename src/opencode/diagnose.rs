//! Why an OpenCode server answered a session's call with a 5xx, found out before the failure
//! reaches the operator: the server's health, and the session's directory as that server sees
//! it (always asked of the server: one on loopback may still not see ocio's disk, in another
//! mount namespace or behind a `kubectl port-forward`).
//! A bare "Unexpected server error" becomes what went wrong and what to do, keeping the
//! server's `ref` for its logs.

use std::io::ErrorKind;

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
    /// The server cannot list it, and ocio's disk has a file there.
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
    let place = server_place(client, dir).await;
    Some(explain(&head, server, dir, place, body))
}

/// What the operator reads for a healthy server and the directory found at `place`.
fn explain(head: &str, server: &str, dir: &str, place: Place, body: &str) -> Diagnosis {
    let restore = "hint: restore the directory (or point the plan's `repo` at one that exists) and retry the task";
    let (error, agent_fault) = match place {
        Place::Absent => (
            format!("{head}: the directory {dir} does not exist on {server}\n{restore}"),
            false,
        ),
        Place::NotADirectory => (
            format!(
                "{head}: {dir} is not a directory (a file here, and {server} cannot list it)\nhint: point the plan's `repo` at a directory and retry the task"
            ),
            false,
        ),
        Place::NotShared => (
            format!(
                "{head}: the server does not see ocio's files: the directory {dir} exists here but not on {server} (another machine, mount namespace or a port-forward)\nhint: set workspace = \"remote\" for this agent, or leave `workspace` out (ocio then carries each task's tree there; `ocio check` tells which fits), or give that server the same paths; another agent may take the task"
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

/// The directory as the server sees it (asked of the server, as `auto` workspaces and `ocio
/// check` ask it), with ocio's disk telling a path the two do not share from one that is gone.
async fn server_place(client: &Client, dir: &str) -> Place {
    match client.has_directory(dir).await {
        Ok(true) => Place::Directory,
        Ok(false) => match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Place::NotShared,
            Ok(_) => Place::NotADirectory,
            Err(e) if e.kind() == ErrorKind::NotFound => Place::Absent,
            Err(e) => Place::Unknown(e.to_string()),
        },
        Err(e) => Place::Unknown(e.to_string()),
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
    fn the_ref_is_kept() {
        assert_eq!(server_ref(BODY).as_deref(), Some("err_1c22c3ba"));
        assert_eq!(server_ref("oops"), None);
    }

    #[test]
    fn a_directory_missing_or_not_shared_is_named_with_what_to_do() {
        let head = "prompt on http://h:1 failed with HTTP 500";
        let missing = explain(head, "http://h:1", "/x", Place::Absent, BODY);
        assert!(
            missing.error.contains("/x does not exist on http://h:1"),
            "{}",
            missing.error
        );
        assert!(!missing.agent_fault);
        let elsewhere = explain(head, "http://h:1", "/x", Place::NotShared, BODY);
        assert!(
            elsewhere.error.contains("does not see ocio's files"),
            "{}",
            elsewhere.error
        );
        assert!(elsewhere.agent_fault);
        let file = explain(head, "http://h:1", "/x", Place::NotADirectory, BODY);
        assert!(file.error.contains("not a directory"), "{}", file.error);
        assert!(!file.agent_fault);
    }
}

#[cfg(test)]
mod server_tests {
    #![allow(clippy::unwrap_used)]
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;

    /// A healthy server on loopback that does not see ocio's disk (another mount namespace, a
    /// `kubectl port-forward`): it answers `GET /file` as OpenCode does for a directory it does
    /// not have (500; checked against a real server by `far_box`) and lists only its own
    /// directory (`/srv`, as `GET /path` says).
    async fn server_elsewhere() -> String {
        async fn list(uri: axum::http::Uri) -> (StatusCode, &'static str) {
            match uri.query().unwrap_or_default().contains("directory=%2Fsrv") {
                true => (StatusCode::OK, "[]"),
                false => (StatusCode::INTERNAL_SERVER_ERROR, BODY),
            }
        }
        let json = |body: &'static str| ([("content-type", "application/json")], body);
        let paths =
            r#"{"home":"/root","state":"/s","config":"/c","worktree":"/","directory":"/srv"}"#;
        let app = Router::new()
            .route("/file", get(list))
            .route("/path", get(move || async move { json(paths) }))
            .route(
                "/global/health",
                get(move || async move { json(r#"{"healthy":true,"version":"1.18.33"}"#) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    const BODY: &str = r#"{"name":"UnknownError","data":{"message":"Unexpected server error. Check server logs for details.","ref":"err_1c22c3ba"}}"#;

    #[tokio::test]
    async fn a_loopback_server_that_does_not_see_ocios_disk_is_told_to_use_a_remote_workspace() {
        let url = server_elsewhere().await;
        let client = Client::new(&url, None, Default::default()).unwrap();
        let here = tempfile::tempdir().unwrap();
        let dir = here.path().to_string_lossy().into_owned();
        let error = ClientError::Status {
            server: url.clone(),
            what: "prompt".into(),
            status: 500,
            body: BODY.into(),
        };
        let diagnosis = server_error(&client, &dir, &error).await.unwrap();
        assert!(
            diagnosis.error.contains("does not see ocio's files")
                && diagnosis.error.contains("workspace = \"remote\""),
            "{}",
            diagnosis.error
        );
        assert!(
            !diagnosis.error.contains("has the directory"),
            "{}",
            diagnosis.error
        );
        assert!(diagnosis.agent_fault, "another agent may see them");
    }
}
