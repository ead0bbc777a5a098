//! Retries against a real local HTTP server that fails the first calls with 503.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Client, ClientError, ClientOptions};
use crate::opencode::wire::CreateSession;

/// A server whose `/global/health` and `POST /session` fail with 503 `fails` times, then
/// answer; it counts the calls it gets.
async fn flaky(fails: u32) -> (String, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    async fn answer(State((calls, fails)): State<(Arc<AtomicU32>, u32)>, ok: &str) -> Response {
        if calls.fetch_add(1, Ordering::SeqCst) < fails {
            return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
        }
        ([("content-type", "application/json")], ok.to_string()).into_response()
    }
    let app = Router::new()
        .route(
            "/global/health",
            get(|state| answer(state, r#"{"healthy":true,"version":"1.18.33"}"#)),
        )
        .route(
            "/session",
            post(|state| answer(state, r#"{"id":"ses_1","title":"t","directory":"/d","time":{"created":1,"updated":1}}"#)),
        )
        .with_state((calls.clone(), fails));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn client(url: &str, retries: u32) -> Client {
    let options = ClientOptions {
        retries,
        first_backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    };
    Client::new(url, None, options).unwrap()
}

#[tokio::test]
async fn an_idempotent_call_is_tried_again_after_transient_failures() {
    let (url, calls) = flaky(2).await;
    let health = client(&url, 2).health().await.unwrap();
    assert_eq!(health.version, "1.18.33");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two failures, then the answer"
    );
}

#[tokio::test]
async fn retries_stop_at_the_bound_with_the_last_failure() {
    let (url, calls) = flaky(10).await;
    let error = client(&url, 2).health().await.unwrap_err();
    assert!(
        matches!(error, ClientError::Status { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one try and two retries");
}

#[tokio::test]
async fn a_call_that_is_not_idempotent_is_sent_once() {
    let (url, calls) = flaky(1).await;
    let body = CreateSession::default();
    let error = client(&url, 2)
        .create_session("/d", &body)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a session is never made twice by a retry"
    );
}

/// Whether a server sees a directory: a listing says it does; OpenCode's 500 (its answer for a
/// directory its machine lacks) that it does not, but only when the server lists its own
/// directory (a server that fails every listing is failing, not answering); and a gateway's
/// 502/503/504 neither: those are transient failures, not an answer to keep.
#[tokio::test]
async fn only_a_500_from_a_server_that_lists_its_own_directory_says_it_does_not_see_one() {
    use axum::extract::RawQuery;
    use std::sync::atomic::AtomicU16;
    type Codes = (Arc<AtomicU16>, Arc<AtomicU16>);
    let (asked, own) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicU16::new(200)));
    let app = Router::new()
        .route(
            "/file",
            get(
                |State((asked, own)): State<Codes>, RawQuery(q): RawQuery| async move {
                    let q = q.unwrap_or_default();
                    let code = if q.contains("directory=%2Fsrv") || q.contains("directory=/srv") {
                        &own
                    } else {
                        &asked
                    };
                    let code = StatusCode::from_u16(code.load(Ordering::SeqCst)).unwrap();
                    (code, [("content-type", "application/json")], "[]").into_response()
                },
            ),
        )
        .route(
            "/path",
            get(|| async {
                let paths = r#"{"home":"/root","state":"/s","config":"/c","worktree":"/","directory":"/srv"}"#;
                ([("content-type", "application/json")], paths).into_response()
            }),
        )
        .with_state((asked.clone(), own.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // A new client each time: failures in a row open a client's breaker.
    let fresh = || super::Client::new(&url, None, ClientOptions::default()).unwrap();
    assert!(fresh().has_directory("/d").await.unwrap());
    asked.store(500, Ordering::SeqCst);
    assert!(!fresh().has_directory("/d").await.unwrap());
    own.store(500, Ordering::SeqCst);
    let error = fresh().has_directory("/d").await.unwrap_err();
    assert!(
        error.is_transient(),
        "a server failing every listing is failing, not saying it lacks /d: {error:?}"
    );
    own.store(200, Ordering::SeqCst);
    for gateway in [502, 503, 504] {
        asked.store(gateway, Ordering::SeqCst);
        let error = fresh().has_directory("/d").await.unwrap_err();
        assert!(error.is_transient(), "{gateway}: {error:?}");
    }
}

/// A refused password read from an agent's `password_env` is named by its variable, so the
/// operator knows which one to fix (the hint used to say only "the agent's password_env").
#[tokio::test]
async fn a_refused_password_names_the_variable_it_came_from() {
    let app = Router::new().route(
        "/global/health",
        get(|| async { (StatusCode::UNAUTHORIZED, "no").into_response() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let from_path = crate::opencode::secret::Password::from_env("PATH").unwrap();
    let refused = Client::new(&url, Some(from_path), ClientOptions::default())
        .unwrap()
        .health()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("the password in PATH (its password_env) does not match"),
        "{refused}"
    );
    let none = client(&url, 0).health().await.unwrap_err().to_string();
    assert!(none.contains("set password_env"), "{none}");
}

/// A URL with a path a real `opencode serve` does not know is answered with its web app (an
/// HTML page, 200; checked against 1.18.33): the error says so and how to fix the URL (it read
/// "unexpected response: expected value at line 1 column 1": hand trial).
#[tokio::test]
async fn a_web_page_for_an_answer_says_the_url_is_not_the_apis() {
    let app = Router::new().fallback(get(|| async {
        (
            [("content-type", "text/html")],
            "\n<!doctype html>\n<html><title>OpenCode</title></html>",
        )
            .into_response()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let error = client(&url, 0).health().await.unwrap_err();
    let said = error.to_string();
    assert!(said.contains("the answer is a web page"), "{said}");
    assert!(said.contains("drop the path from the URL"), "{said}");
    assert!(error.is_the_servers(), "another agent may do better");
}

/// An open breaker's words carry no countdown: they stay as an offline agent's reason, where
/// "calls are paused for 3s 397ms" read minutes later misled (hand trial).
#[test]
fn an_open_breaker_says_no_countdown() {
    let said = ClientError::CircuitOpen {
        server: "http://box:4096".into(),
        retry_in: Duration::from_millis(3397),
    }
    .to_string();
    assert!(!said.contains("3s"), "{said}");
    assert!(said.contains("circuit breaker open"), "{said}");
}
