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

/// Whether a server sees a directory: a listing says it does, OpenCode's 500 (its answer for a
/// directory its machine lacks) that it does not, and a gateway's 502/503/504 neither: those
/// are transient failures, not an answer to keep.
#[tokio::test]
async fn only_a_500_says_the_server_does_not_see_a_directory() {
    use std::sync::atomic::AtomicU16;
    let status = Arc::new(AtomicU16::new(200));
    let app = Router::new()
        .route(
            "/file",
            get(|State(status): State<Arc<AtomicU16>>| async move {
                let code = StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                (code, [("content-type", "application/json")], "[]").into_response()
            }),
        )
        .with_state(status.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = client(&url, 0);
    assert!(client.has_directory("/d").await.unwrap());
    status.store(500, Ordering::SeqCst);
    assert!(!client.has_directory("/d").await.unwrap());
    for gateway in [502, 503, 504] {
        status.store(gateway, Ordering::SeqCst);
        // A new client each time: failures in a row open a client's breaker.
        let error = super::Client::new(&url, None, ClientOptions::default())
            .unwrap()
            .has_directory("/d")
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{gateway}: {error:?}");
    }
}
