//! The stand-in's routes: what ocio's client calls, answered in the real server's shapes, each
//! request counted by kind; a request no route takes is counted apart (and answered 404).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State as Shared};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::shapes::{self, now_ms};
use super::{Session, State, kind_of, turn};

type S = Shared<Arc<State>>;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/global/health", get(health))
        .route("/global/event", get(events))
        .route("/session", get(list).post(create))
        .route("/session/status", get(status))
        .route("/session/{id}", get(one).delete(delete))
        .route("/session/{id}/message", get(messages).post(prompt))
        .route("/session/{id}/prompt_async", post(prompt_async))
        .route("/session/{id}/abort", post(abort))
        .route("/session/{id}/diff", get(empty_list))
        .route("/permission", get(empty_list))
        .route("/permission/{id}/reply", post(yes))
        .route("/question", get(empty_list))
        .route("/question/{id}/reply", post(yes))
        .route("/question/{id}/reject", post(yes))
        .route("/agent", get(agents))
        .route("/file", get(empty_list))
        .route("/vcs/diff", get(empty_list))
        .route("/path", get(paths))
        .route("/__standin/stats", get(stats))
        .fallback(unrouted)
        .layer(middleware::from_fn_with_state(state.clone(), counted))
        .with_state(state)
}

/// Counts each request by kind (the stand-in's own stats route aside).
async fn counted(Shared(state): S, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/__standin") {
        state.count(kind_of(request.method().as_str(), path));
    }
    next.run(request).await
}

async fn unrouted(Shared(state): S, request: Request) -> Response {
    state.unrouted(kind_of(request.method().as_str(), request.uri().path()));
    not_found("no such route")
}

fn not_found(what: &str) -> Response {
    let body = json!({"name": "NotFoundError", "data": {"message": what}});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

fn json_ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

/// Query parameter `key`, percent-decoded.
fn param(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory a request is for: `?directory=`, else the server's own.
fn directory(uri: &Uri) -> String {
    param(uri, "directory").unwrap_or_else(|| {
        std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

async fn health() -> Response {
    json_ok(json!({"healthy": true, "version": shapes::VERSION}))
}

async fn stats(Shared(state): S) -> Response {
    json_ok(serde_json::to_value(state.stats()).unwrap_or_default())
}

async fn create(Shared(state): S, uri: Uri, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let dir = directory(&uri);
    let id = shapes::id("ses");
    let title = body["title"].as_str().unwrap_or("New session").to_string();
    let info = shapes::session(&id, &dir, &title, now_ms());
    state.created(title);
    state.sessions().insert(
        id.clone(),
        Session {
            info: info.clone(),
            directory: dir.clone(),
            messages: Vec::new(),
            answers: HashMap::new(),
            busy: None,
        },
    );
    let props = json!({"sessionID": id, "info": info});
    state.emit(Some(&dir), "session.created", props.clone());
    state.emit(Some(&dir), "session.updated", props);
    json_ok(info)
}

async fn list(Shared(state): S, uri: Uri) -> Response {
    let dir = param(&uri, "directory");
    let sessions = state.sessions();
    let mut listed: Vec<&Session> = sessions
        .values()
        .filter(|s| dir.as_ref().is_none_or(|d| *d == s.directory))
        .collect();
    // Newest first, as the real server lists them.
    listed.sort_by_key(|s| std::cmp::Reverse(s.info["time"]["created"].as_i64()));
    json_ok(Value::Array(
        listed.iter().map(|s| s.info.clone()).collect(),
    ))
}

async fn one(Shared(state): S, Path(id): Path<String>) -> Response {
    match state.sessions().get(&id) {
        Some(session) => json_ok(session.info.clone()),
        None => not_found(&format!("Session not found: {id}")),
    }
}

async fn delete(Shared(state): S, Path(id): Path<String>) -> Response {
    match state.sessions().remove(&id) {
        Some(_) => json_ok(json!(true)),
        None => not_found(&format!("Session not found: {id}")),
    }
}

async fn status(Shared(state): S) -> Response {
    let sessions = state.sessions();
    let busy: serde_json::Map<String, Value> = sessions
        .iter()
        .filter(|(_, s)| s.busy.is_some())
        .map(|(id, _)| (id.clone(), json!({"type": "busy"})))
        .collect();
    json_ok(Value::Object(busy))
}

async fn messages(Shared(state): S, Path(id): Path<String>, uri: Uri) -> Response {
    let limit: Option<usize> = param(&uri, "limit").and_then(|l| l.parse().ok());
    let sessions = state.sessions();
    let Some(session) = sessions.get(&id) else {
        return not_found(&format!("Session not found: {id}"));
    };
    let skip = limit.map_or(0, |l| session.messages.len().saturating_sub(l));
    let listed = session.messages[skip..].iter().map(super::Message::json);
    json_ok(Value::Array(listed.collect()))
}

/// The blocking prompt: answers when the turn ends.
async fn prompt(Shared(state): S, Path(id): Path<String>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(mut answer) = turn::start(&state, &id, &body) else {
        return not_found(&format!("Session not found: {id}"));
    };
    match answer.wait_for(Option::is_some).await {
        Ok(done) => json_ok(done.clone().unwrap_or_default()),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the turn vanished").into_response(),
    }
}

async fn prompt_async(Shared(state): S, Path(id): Path<String>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    match turn::start(&state, &id, &body) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(&format!("Session not found: {id}")),
    }
}

async fn abort(Shared(state): S, Path(id): Path<String>) -> Response {
    match state.sessions().get_mut(&id) {
        Some(session) => {
            session.busy = None;
            json_ok(json!(true))
        }
        None => not_found(&format!("Session not found: {id}")),
    }
}

async fn empty_list() -> Response {
    json_ok(json!([]))
}

async fn yes() -> Response {
    json_ok(json!(true))
}

async fn agents() -> Response {
    json_ok(json!([shapes::agent()]))
}

async fn paths(uri: Uri) -> Response {
    let dir = directory(&uri);
    json_ok(json!({"home": dir, "state": dir, "config": dir, "worktree": dir, "directory": dir}))
}

/// `GET /global/event`: `server.connected`, then every event, one `data:` line each.
async fn events(Shared(state): S) -> Response {
    let first = shapes::global(None, "server.connected", json!({}));
    let receiver = state.events.subscribe();
    let lines = futures_util::stream::unfold(
        (Some(first), receiver),
        |(first, mut receiver)| async move {
            let line: Arc<str> = match first {
                Some(line) => Arc::from(line),
                None => loop {
                    match receiver.recv().await {
                        Ok(line) => break line,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return None,
                    }
                },
            };
            let bytes = Bytes::from(format!("data: {line}\n\n"));
            Some((Ok::<_, std::io::Error>(bytes), (None, receiver)))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(lines))
        .unwrap_or_default()
}
