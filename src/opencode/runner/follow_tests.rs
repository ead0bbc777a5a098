#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::*;
use crate::config::WorkspaceMode;
use crate::domain::SessionId;
use crate::engine::runner::{Reporter, Steering};
use crate::opencode::client::Client;
use crate::opencode::runner::OpencodeRunner;

/// A prompt (from a real 1.18.33 server's transcript) and the answer it began: `completed`
/// unset, as a server leaves it when it restarts while the model answers.
fn half_answered() -> Value {
    let messages = recorded();
    let mut begun = messages[1].clone();
    begun["info"]["time"]["completed"] = Value::Null;
    begun["info"]["finish"] = Value::Null;
    json!([messages[0], begun])
}

/// The prompt alone, no answer begun: as a session is for a moment after its prompt is stored.
fn asked_only() -> Value {
    json!([recorded()[0]])
}

/// A real 1.18.33 server's transcript of a session.
fn recorded() -> Vec<Value> {
    let path = format!(
        "{}/tests/fixtures/opencode/rest/session-messages.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A server whose session shows `messages` and is not busy; it counts the reads of them.
async fn server(messages: Value, reads: Arc<AtomicUsize>) -> String {
    let json = |v: Value| ([("content-type", "application/json")], v.to_string());
    let app = Router::new()
        .route(
            "/session/{id}/message",
            get(move || async move {
                reads.fetch_add(1, Ordering::SeqCst);
                json(messages)
            }),
        )
        .route(
            "/session/status",
            get(move || async move { json(json!({})) }),
        )
        .route("/permission", get(move || async move { json(json!([])) }))
        .route("/question", get(move || async move { json(json!([])) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn job() -> Job {
    Job {
        reporter: Reporter::unheard(),
        session: SessionId::generate(),
        title: "p/t #1".into(),
        prompt: "x".into(),
        task_key: "p/t".into(),
        attempt: 1,
        directory: "/work".into(),
        adopt: false,
        questions: false,
        steering: Steering::none(),
        word: None,
        said: Vec::new(),
        streamed: None,
        setup: Default::default(),
    }
}

/// The runner following a session that `messages` shows on a server that says it is not busy:
/// how its run ends, and how many checks it made.
async fn followed(messages: Value) -> (Outcome, usize) {
    followed_as(messages, job()).await
}

/// [`followed`], the run being `job`.
async fn followed_as(messages: Value, job: Job) -> (Outcome, usize) {
    let reads = Arc::new(AtomicUsize::new(0));
    let url = server(messages, reads.clone()).await;
    let client = Client::new(&url, None, Default::default()).unwrap();
    let runner = OpencodeRunner::placed(client, None, None, WorkspaceMode::Shared, None);
    let remote = RemoteSession {
        server: url,
        session_id: "ses_dee49214cffeyyvVp1SSRj1hBN".into(),
        directory: "/work".into(),
    };
    let (_stop, stop) = oneshot::channel();
    let outcome = (*runner)
        .clone()
        .follow_awaiting(job, remote, stop, Awaited::Prompt, None)
        .await;
    (outcome, reads.load(Ordering::SeqCst))
}

/// A prompt stored with no answer begun and the session not busy yet (a moment after the
/// prompt, or a loaded server) is given its ten checks: counted dead sooner, its task would
/// run twice.
#[tokio::test]
async fn a_prompt_with_no_answer_begun_is_given_ten_checks() {
    let (outcome, checks) = followed(asked_only()).await;
    assert!(matches!(outcome, Outcome::Lost { .. }), "{outcome:?}");
    assert!(checks >= STALL_LIMIT as usize, "{checks} checks");
}

/// A session whose server restarted while the model answered is left with the answer
/// half-written and not busy: counted dead after a few checks (it took ten, ten seconds, and
/// with the restarted server's slow first calls a box's task waited half a minute to run again).
#[tokio::test]
async fn an_answer_its_restarted_server_left_half_written_is_given_up_in_a_few_checks() {
    let (outcome, checks) = followed(half_answered()).await;
    match outcome {
        Outcome::Lost { error, unreachable } => {
            assert!(
                error.contains("stopped working on it (restarted?) without an answer"),
                "{error}"
            );
            assert!(!unreachable);
        }
        other => panic!("{other:?}"),
    }
    assert!(checks <= ABANDONED_LIMIT as usize, "{checks} checks");
}

/// A session the engine stops (a cancel, a time limit) while its server does not answer is
/// aborted once the server answers again (hand trial: the abort was tried once, the breaker
/// open, and the session went on working and spending on the box).
#[tokio::test]
async fn a_stop_while_the_server_does_not_answer_is_aborted_once_it_does() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = Router::new().route(
        "/session/{id}/abort",
        axum::routing::post(move || async move {
            match counted.fetch_add(1, Ordering::SeqCst) {
                0..3 => (StatusCode::BAD_GATEWAY, "box unreachable").into_response(),
                _ => ([("content-type", "application/json")], "true").into_response(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let options = crate::opencode::client::ClientOptions {
        retries: 0,
        ..Default::default()
    };
    let client = Client::new(&url, None, options).unwrap();
    let runner = OpencodeRunner::placed(client, None, None, WorkspaceMode::Shared, None);
    let outcome = runner
        .stop("/work", "ses_1", crate::opencode::runner::Interrupt::Stop)
        .await;
    assert!(matches!(outcome, Outcome::Stopped), "{outcome:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while calls.load(Ordering::SeqCst) < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "tried {} times",
            calls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4, "no more once it is taken");
}

/// A session that ended while its server's stream was down is told whole when its run ends:
/// every message's parts, not only its answer's (the tool calls of its earlier steps were
/// missing from its transcript for good; hand trial).
#[tokio::test]
async fn a_session_that_ended_unseen_is_told_whole_when_its_run_ends() {
    let (reporter, told) = Reporter::recording();
    let job = Job { reporter, ..job() };
    let (outcome, _) = followed_as(Value::Array(recorded()), job).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    // The reports are read by a task of their own: given a moment.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let told = told.lock().unwrap();
    let tools = told
        .iter()
        .filter(|e| matches!(e.activity, crate::engine::view::Activity::Tool { .. }))
        .count();
    assert_eq!(tools, 2, "both steps' tool calls: {told:#?}");
}

/// The session told again at a run's end (the server's copy) tells nothing it told before as
/// it was: each step's usage was re-told as the whole session's, the earlier steps rewritten
/// to the final total (review).
#[tokio::test]
async fn a_session_told_again_tells_only_what_it_had_not_told() {
    let client = Client::new("http://127.0.0.1:9", None, Default::default()).unwrap();
    let runner = OpencodeRunner::placed(client, None, None, WorkspaceMode::Shared, None);
    let (reporter, told) = Reporter::recording();
    let job = Job { reporter, ..job() };
    let messages: Vec<crate::opencode::wire::MessageWithParts> =
        serde_json::from_value(Value::Array(recorded())).unwrap();
    let mut watch = Watch::new(runner.live.subscribe("ses_1", "/work"));
    runner.tell_messages(&job, &messages, &mut watch).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let first = told.lock().unwrap().len();
    assert!(first > 0);
    runner.tell_messages(&job, &messages, &mut watch).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let told = told.lock().unwrap();
    assert_eq!(told.len(), first, "told again: {:#?}", &told[first..]);
}
