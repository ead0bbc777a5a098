//! A stand-in for an OpenCode 1.18.33 server: in-process (axum), it speaks the subset of the
//! REST + SSE protocol ocio's client uses, with the real server's JSON shapes, and its
//! sessions "work" without a model: a prompted session streams tool calls and text on
//! `GET /global/event` for a set time, then answers with usage (see `standin/turn.rs`).
//!
//! It counts the requests it gets by kind (`METHOD /path`, ids as `{id}`, like the counting
//! proxy) and those it has no route for, and records when each session was created, so a
//! bench can tell server calls per session-minute and dispatch latency. `tests/standin.rs`
//! keeps it honest: the same run through ocio's runner against it and a real server.

#![allow(dead_code)]

#[path = "standin/routes.rs"]
mod routes;
#[path = "standin/shapes.rs"]
pub mod shapes;
#[path = "standin/turn.rs"]
mod turn;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch};

/// How the stand-in's sessions work.
#[derive(Debug, Clone)]
pub struct StandinOptions {
    /// How long a prompted session works before it answers, give or take 25% (picked per
    /// prompt, so a fleet's sessions do not all end together).
    pub work: Duration,
    /// The pause between two events of one working session (its event rate).
    pub every: Duration,
    /// Text deltas per text part.
    pub deltas: u32,
    /// Tokens each model step reports (input, output).
    pub step_tokens: (u64, u64),
    /// Exactly this many tool steps before the final text, however long they take (`work`
    /// is then ignored).
    pub tool_steps: Option<u32>,
}

impl Default for StandinOptions {
    fn default() -> Self {
        Self {
            work: Duration::from_secs(2),
            every: Duration::from_millis(50),
            deltas: 3,
            step_tokens: (120, 30),
            tool_steps: None,
        }
    }
}

/// What the stand-in saw: requests by kind, unrouted ones, and session creations.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StandinStats {
    pub requests: BTreeMap<String, u64>,
    /// Requests no route of the stand-in takes (404 from the fallback).
    pub unrouted: BTreeMap<String, u64>,
    /// Per created session: its title and when it was created (µs since the epoch).
    pub created: Vec<(String, i64)>,
    /// Events sent on the stream (to one listener).
    pub events: u64,
}

/// A running stand-in server; stopped when dropped.
pub struct Standin {
    url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Standin {
    pub async fn start(options: StandinOptions) -> Self {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Each event goes out at once, as OpenCode's own server sends it (with Nagle's
        // algorithm a small write waits for the client's delayed ACK: ~40 ms an event).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let state = Arc::new(State::new(options));
        let app = routes::router(state.clone());
        let beat = state.clone();
        let task = tokio::spawn(async move {
            let heartbeat = tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(10));
                loop {
                    every.tick().await;
                    beat.emit(None, "server.heartbeat", serde_json::json!({}));
                }
            });
            let _ = axum::serve(listener, app).await;
            heartbeat.abort();
        });
        Self { url, state, task }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn stats(&self) -> StandinStats {
        self.state.stats()
    }

    /// Forget the counts so far (sessions stay).
    pub fn reset_counts(&self) {
        self.state.reset_counts();
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The server's state, shared by its handlers and its working sessions.
pub(crate) struct State {
    options: StandinOptions,
    sessions: Mutex<HashMap<String, Session>>,
    events: broadcast::Sender<Arc<str>>,
    stats: Mutex<StandinStats>,
    emitted: AtomicU64,
}

/// One session: its `Session` JSON, its messages (oldest first) and its turn, if working.
pub(crate) struct Session {
    pub(crate) info: Value,
    pub(crate) directory: String,
    pub(crate) messages: Vec<Message>,
    /// Per prompt (user message id): the final answer once the turn ends.
    pub(crate) answers: HashMap<String, watch::Receiver<Option<Value>>>,
    /// Set while a turn runs: dropping it (abort) ends the turn.
    pub(crate) busy: Option<watch::Sender<bool>>,
}

pub(crate) struct Message {
    pub(crate) info: Value,
    pub(crate) parts: Vec<Value>,
}

impl Message {
    pub(crate) fn json(&self) -> Value {
        serde_json::json!({"info": self.info, "parts": self.parts})
    }
}

impl State {
    fn new(options: StandinOptions) -> Self {
        Self {
            options,
            sessions: Mutex::new(HashMap::new()),
            events: broadcast::channel(8192).0,
            stats: Mutex::new(StandinStats::default()),
            emitted: AtomicU64::new(0),
        }
    }

    pub(crate) fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats_mut(&self) -> std::sync::MutexGuard<'_, StandinStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> StandinStats {
        let mut stats = self.stats_mut().clone();
        stats.events = self.emitted.load(Ordering::Relaxed);
        stats
    }

    fn reset_counts(&self) {
        let mut stats = self.stats_mut();
        stats.requests.clear();
        stats.unrouted.clear();
        self.emitted.store(0, Ordering::Relaxed);
    }

    pub(crate) fn count(&self, kind: String) {
        *self.stats_mut().requests.entry(kind).or_default() += 1;
    }

    pub(crate) fn unrouted(&self, kind: String) {
        *self.stats_mut().unrouted.entry(kind).or_default() += 1;
    }

    pub(crate) fn created(&self, title: String) {
        self.stats_mut().created.push((title, shapes::now_us()));
    }

    /// Send one event to every listener of the stream.
    pub(crate) fn emit(&self, directory: Option<&str>, kind: &str, properties: Value) {
        let line = shapes::global(directory, kind, properties);
        if self.events.send(Arc::from(line)).is_ok() {
            self.emitted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `METHOD /path` with each id segment as `{id}` (the counting proxy's kinds).
pub(crate) fn kind_of(method: &str, path: &str) -> String {
    let path: Vec<&str> = path
        .split('/')
        .map(|segment| match segment.split_once('_') {
            Some((prefix, rest)) if prefix.len() == 3 && rest.len() > 8 => "{id}",
            _ => segment,
        })
        .collect();
    format!("{method} {}", path.join("/"))
}
