//! The scripted model's HTTP server: binds 127.0.0.1:0 in the current tokio runtime, answers
//! each call as the script says, keeps a log of the calls, and on shutdown releases hung calls.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::MODEL_ID;
use super::openai::{
    CallView, ChatRequest, OTHER_SIDE_JOB_TEXT, Reply, SUMMARY_TEXT, SideJob, error_body,
    model_list,
};
use super::script::{DEFAULT_TITLE, Script, ScriptError};

/// How long `shutdown` waits for open connections to finish before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause between the partial answer of a `broken` turn and the cut, so the part is flushed.
const BROKEN_PAUSE: Duration = Duration::from_millis(50);
/// `retry-after-ms` sent with a failure when the turn does not set one.
const DEFAULT_RETRY_AFTER_MS: u64 = 10;
/// OpenCode's requests reach tens of kilobytes and grow with the transcript.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Why the scripted model could not start.
#[derive(Debug, thiserror::Error)]
pub enum ScriptedModelError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("the scripted model cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] io::Error),
}

/// One call the server received, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Arrival order, from 0.
    pub(crate) seq: u64,
    /// OpenCode's `x-session-id` header (the session that made the call), if sent.
    pub session_id: Option<String>,
    /// Text of the last `user` message.
    pub last_user_text: Option<String>,
    /// Set for OpenCode's own calls (title, summary); these never use the script's rules.
    pub side_job: Option<SideJob>,
    /// Index of the rule that matched (`None`: fallback, or a side job).
    pub(crate) rule: Option<usize>,
    pub(crate) rule_name: Option<String>,
    /// Which turn of the rule answered: assistant messages after the last user message.
    pub turn: usize,
    /// The conversation ran past the rule's last turn and got the plain `done` reply.
    pub(crate) past_end: bool,
    /// Names of the tools the call offered.
    pub tools: Vec<String>,
    /// What the tools called since the last user message answered, in order.
    pub tool_results: Vec<String>,
    /// When the call came.
    #[serde(skip)]
    pub at: Option<std::time::Instant>,
    pub(crate) stream: bool,
    pub(crate) served: Served,
}

/// How a call was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Served {
    Reply,
    Failed { status: u16 },
    Hung,
    Broken,
}

/// A running scripted model. Stops on [`ScriptedModel::shutdown`] or when dropped.
#[derive(Debug)]
pub struct ScriptedModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// A conversation (OpenCode session id, else the last user text), a rule and a turn.
type FailureKey = (String, Option<usize>, usize);

#[derive(Debug)]
struct Shared {
    script: Script,
    log: Mutex<Vec<RequestRecord>>,
    /// Number of log entries, for waiters.
    logged: watch::Sender<usize>,
    /// Failures served so far per (conversation, rule, turn), for `fail_times`.
    failures: Mutex<HashMap<FailureKey, u32>>,
    next_seq: AtomicU64,
    stop: watch::Receiver<bool>,
}

impl ScriptedModel {
    /// Checks the script, binds 127.0.0.1 on a free port and serves in the current runtime.
    pub async fn start(script: Script) -> Result<Self, ScriptedModelError> {
        script.validate()?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(ScriptedModelError::Bind)?;
        let addr = listener.local_addr().map_err(ScriptedModelError::Bind)?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            script,
            log: Mutex::new(Vec::new()),
            logged: watch::Sender::new(0),
            failures: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(0),
            stop: stop_rx.clone(),
        });
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::clone(&shared));
        let mut signal = stop_rx;
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|stopped| *stopped).await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "scripted model server stopped with an error");
            }
        });
        tracing::debug!(%addr, "scripted model listening");
        Ok(Self {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT/v1`, the provider's `baseURL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every call received so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock_log().clone()
    }

    /// The log once it holds at least `count` calls, or as it is when `timeout` runs out.
    #[cfg(test)]
    pub(crate) async fn wait_for_requests(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<RequestRecord> {
        let mut logged = self.shared.logged.subscribe();
        let _ = tokio::time::timeout(timeout, logged.wait_for(|n| *n >= count)).await;
        self.requests()
    }

    /// Stops taking calls, answers hung and delayed calls with 503, and waits (bounded) for
    /// open connections to close.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Shared {
    fn lock_log(&self) -> std::sync::MutexGuard<'_, Vec<RequestRecord>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, record: RequestRecord) {
        let count = {
            let mut log = self.lock_log();
            log.push(record);
            log.len()
        };
        self.logged.send_replace(count);
    }

    /// Whether this attempt of a failing turn fails (`limit` failures per key; `None`: always).
    fn take_failure(&self, key: FailureKey, limit: Option<u32>) -> bool {
        let Some(limit) = limit else { return true };
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let served = failures.entry(key).or_insert(0);
        if *served < limit {
            *served += 1;
            true
        } else {
            false
        }
    }

    /// Sleeps `duration`; false if the server began shutting down first.
    async fn pause(&self, duration: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            _ = stop.wait_for(|stopped| *stopped) => false,
        }
    }

    async fn until_stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

async fn models() -> Response {
    axum::Json(model_list(&[MODEL_ID])).into_response()
}

async fn not_found() -> Response {
    error_response(404, "no such endpoint on the scripted model", None)
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return error_response(400, &format!("bad chat completions request: {error}"), None);
        }
    };
    let view = request.view(MODEL_ID);
    let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
    let id = format!("chatcmpl-scripted-{seq}");
    let session_id = headers
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut record = RequestRecord {
        seq,
        session_id,
        last_user_text: view.last_user_text.clone(),
        side_job: view.side_job(),
        rule: None,
        rule_name: None,
        turn: view.turn_index,
        past_end: false,
        tools: view.tools.clone(),
        tool_results: view.tool_results.clone(),
        at: Some(std::time::Instant::now()),
        stream: view.stream,
        served: Served::Reply,
    };

    if let Some(job) = record.side_job {
        let text = match job {
            SideJob::Title => DEFAULT_TITLE,
            SideJob::Summary => SUMMARY_TEXT,
            SideJob::Other => OTHER_SIDE_JOB_TEXT,
        };
        shared.record(record);
        return reply_response(&Reply::text(text), &view, &id, false);
    }

    let user = view.last_user_text.as_deref().unwrap_or_default();
    let selection = shared
        .script
        .select(user, &view.system_text, view.turn_index);
    let turn = selection.turn;
    let conversation = record.session_id.clone().unwrap_or_else(|| user.to_owned());
    let fails = (turn.fail_status.is_some() || turn.broken)
        && shared.take_failure(
            (conversation, selection.rule, view.turn_index),
            turn.fail_times,
        );
    record.rule = selection.rule;
    record.rule_name = selection
        .rule
        .and_then(|i| shared.script.rules.get(i))
        .and_then(|r| r.name.clone());
    record.past_end = selection.past_end;
    record.served = match turn.fail_status {
        Some(status) if fails => Served::Failed { status },
        _ if turn.hang => Served::Hung,
        _ if turn.broken && fails => Served::Broken,
        _ => Served::Reply,
    };
    let served = record.served;
    shared.record(record);

    if turn.delay_ms > 0 && !shared.pause(Duration::from_millis(turn.delay_ms)).await {
        return shutting_down();
    }
    match served {
        Served::Failed { status } => {
            let message = turn
                .fail_message
                .clone()
                .unwrap_or_else(|| format!("scripted failure (status {status})"));
            let retry_after = turn.retry_after_ms.unwrap_or(DEFAULT_RETRY_AFTER_MS);
            error_response(status, &message, Some(retry_after))
        }
        Served::Hung => {
            shared.until_stopped().await;
            shutting_down()
        }
        Served::Broken | Served::Reply => {
            let reply = Reply::from_turn(&turn, &view.tools, seq);
            reply_response(&reply, &view, &id, served == Served::Broken)
        }
    }
}

fn shutting_down() -> Response {
    error_response(503, "the scripted model is shutting down", None)
}

fn error_response(status: u16, message: &str, retry_after_ms: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, axum::Json(error_body(status, message))).into_response();
    if let Some(ms) = retry_after_ms {
        response
            .headers_mut()
            .insert("retry-after-ms", HeaderValue::from(ms));
    }
    response
}

/// The reply as an event stream or one JSON body; `broken` sends only the first part and then
/// fails the body, which makes the server drop the connection mid-response.
fn reply_response(reply: &Reply, view: &CallView, id: &str, broken: bool) -> Response {
    let (content_type, parts): (&str, Vec<Bytes>) = match (view.stream, broken) {
        (true, false) => ("text/event-stream", reply.stream_events(id, &view.model)),
        (true, true) => (
            "text/event-stream",
            reply.broken_stream_events(id, &view.model),
        ),
        (false, false) => (
            "application/json",
            vec![Bytes::from(reply.completion(id, &view.model).to_string())],
        ),
        (false, true) => {
            let whole = Bytes::from(reply.completion(id, &view.model).to_string());
            ("application/json", vec![whole.slice(..whole.len() / 2)])
        }
    };
    let cut = broken.then_some(async {
        tokio::time::sleep(BROKEN_PAUSE).await;
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "scripted broken reply",
        ))
    });
    let body = stream::iter(parts.into_iter().map(Ok::<Bytes, io::Error>))
        .chain(stream::iter(cut).then(|cut| cut));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
