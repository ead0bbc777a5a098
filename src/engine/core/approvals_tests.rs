//! A session with two requests pending at once (a permission and a question from parallel
//! tool calls): answering one leaves it shown waiting on the other, each decision its own
//! transition in the control log, and the run gets both answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::test_wait::{finished, said};
use crate::domain::{Agent, AgentName, Backend, SessionStatus, Transition};
use crate::engine::approval::{ApprovalPolicy, Approver, Ask, Decision};
use crate::engine::question::{Answer, Choice, QuestionItem, QuestionMode, QuestionPolicy};
use crate::engine::runner::{Job, Outcome, RunFuture, Runner};
use crate::engine::{AgentSpec, EngineApi, EngineEvent, EngineHandle, EngineOptions};
use crate::store::{Store, StoreOptions, query};

/// Asks for a permission outside its directory and a question at the same moment.
struct AsksTwice;

impl Runner for AsksTwice {
    fn run(&self, job: Job, _stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        Box::pin(async move {
            let permission = Ask {
                id: "per_two".into(),
                permission: "external_directory".into(),
                patterns: vec!["/srv/*".into()],
                questions: Vec::new(),
            };
            let question = Ask::question(
                "que_two".into(),
                vec![QuestionItem {
                    header: "Way".into(),
                    question: "Which way?".into(),
                    options: vec![Choice {
                        label: "left".into(),
                        description: String::new(),
                    }],
                    multiple: false,
                    custom: true,
                }],
            );
            let (decided, answered) = tokio::join!(
                job.reporter.permission(job.session, permission),
                job.reporter.question(job.session, question)
            );
            let decided = decided.map(|verdict| verdict.decision);
            // Rejected, OpenCode's turn ends there: the session answers the next message.
            if decided == Some(Decision::Reject) {
                said(&job).await;
            }
            Outcome::Completed {
                result: Some(format!("{decided:?} {answered:?}")),
                usage: Default::default(),
            }
        })
    }
}

#[tokio::test]
async fn answering_one_of_two_requests_leaves_the_session_waiting_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store, mut events) =
        running(dir.path(), Arc::new(AsksTwice), Duration::from_secs(60)).await;
    both_wait(&engine).await;
    engine
        .approve("per_two", Decision::Once, Approver::Cli)
        .await
        .unwrap();
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.approvals.len(), 1, "the question still waits");
    assert_eq!(
        snapshot.sessions[0].session.status,
        SessionStatus::WaitingApproval,
        "shown waiting on the question"
    );
    engine
        .answer("que_two", vec![Answer::Pick(vec![1])], Approver::Cli)
        .await
        .unwrap();
    let finished = finished(&mut events).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let tasks = store.read(query::tasks).await.unwrap();
    assert_eq!(
        tasks[0].result.as_deref(),
        Some("Some(Once) Some(Answers([[\"left\"]]))")
    );
    let log = store
        .read(|txn| query::events_after(txn, 0, usize::MAX))
        .await
        .unwrap();
    let moves: Vec<(SessionStatus, String)> = log
        .into_iter()
        .filter_map(|(_, e)| match e.transition {
            Transition::Session { to, .. } => Some((to, e.cause)),
            _ => None,
        })
        .filter(|(_, cause)| cause.contains("[per_two]") || cause.contains("[que_two]"))
        .collect();
    let decisions: Vec<&str> = moves
        .iter()
        .map(|(_, c)| c.split(':').next().unwrap_or_default())
        .collect();
    assert!(
        decisions.contains(&"approved once by the operator (ocio approve)")
            && decisions
                .iter()
                .any(|d| d.starts_with("still asks question"))
            && decisions.iter().any(|d| d.starts_with("answered \"left\"")),
        "each decision is its own transition: {moves:#?}"
    );
    engine.shutdown().await.unwrap();
}

/// An engine (questions asked, the policy's `timeout`) on a fresh database running a one-task
/// plan on `runner`; its store and events.
async fn running(dir: &std::path::Path, runner: Arc<dyn Runner>, timeout: Duration) -> Started {
    running_with(dir, runner, timeout, None).await
}

type Started = (
    EngineHandle,
    crate::store::StoreHandle,
    crate::engine::Subscription,
);

/// [`running`] with requests outside the session's directory decided by `outside`.
async fn running_with(
    dir: &std::path::Path,
    runner: Arc<dyn Runner>,
    timeout: Duration,
    outside: Option<Decision>,
) -> Started {
    let store = Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        approvals: ApprovalPolicy {
            inside: Some(Decision::Once),
            outside,
        },
        questions: QuestionPolicy {
            mode: QuestionMode::Ask,
            timeout,
        },
        ..EngineOptions::default()
    };
    let agent = AgentSpec {
        agent: Agent::new(AgentName::new("one").unwrap(), Backend::Simulated, 1),
        runner,
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let events = engine.subscribe();
    let path = dir.join("plan.toml");
    std::fs::write(
        &path,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\n",
    )
    .unwrap();
    engine
        .submit_plan(crate::plan::PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    (engine, store, events)
}

/// Asks a question that takes no typed answer, then (its turn ended by a rejection, as
/// OpenCode's is) answers the next message it is told.
struct AsksClosed;

impl Runner for AsksClosed {
    fn run(&self, job: Job, _stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        Box::pin(async move {
            let item = QuestionItem {
                header: "Way".into(),
                question: "Which way?".into(),
                options: vec![Choice {
                    label: "left".into(),
                    description: String::new(),
                }],
                multiple: false,
                custom: false,
            };
            let asked = Ask::question("que_closed".into(), vec![item]);
            let reply = job.reporter.question(job.session, asked).await;
            let told = said(&job).await;
            Outcome::Completed {
                result: Some(format!("{reply:?} then {told}")),
                usage: Default::default(),
            }
        })
    }
}

/// Nobody answers a question that takes no typed answer: it is rejected, which ends the
/// session's turn, and the session is told to decide itself, so the task ends (it waited for
/// an operator's word nobody would give, until its time limit).
#[tokio::test]
async fn an_unanswered_closed_question_ends_in_a_message_to_decide_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store, mut events) =
        running(dir.path(), Arc::new(AsksClosed), Duration::from_millis(200)).await;
    let finished = finished(&mut events).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let tasks = store.read(query::tasks).await.unwrap();
    let result = tasks[0].result.clone().unwrap_or_default();
    assert!(
        result.starts_with(
            "Some(Reject) then Your question was not answered (no answer within 200ms"
        ),
        "{result}"
    );
    engine.shutdown().await.unwrap();
}

/// The operator rejects one of two requests (which ends the session's turn) and answers the
/// other: the session still waits for their word, and is not shown running.
#[tokio::test]
async fn a_session_halted_by_a_rejection_waits_for_a_word_after_its_other_request() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _store, _events) =
        running(dir.path(), Arc::new(AsksTwice), Duration::from_secs(60)).await;
    both_wait(&engine).await;
    engine
        .approve("per_two", Decision::Reject, Approver::Cli)
        .await
        .unwrap();
    engine
        .answer("que_two", vec![Answer::Pick(vec![1])], Approver::Cli)
        .await
        .unwrap();
    let snapshot = engine.snapshot().await.unwrap();
    let session = &snapshot.sessions[0].session;
    assert_eq!(
        session.status,
        SessionStatus::WaitingApproval,
        "{session:?}"
    );
    engine.shutdown().await.unwrap();
}

/// Until the session's two requests wait in the inbox.
async fn both_wait(engine: &EngineHandle) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while engine.snapshot().await.unwrap().approvals.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "both requests wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks a question, and while it waits, for a directory outside its own: the policy rejects
/// that (with a word of why), and OpenCode rejects the waiting question with it, bare, which
/// ends the turn. Answers the next message it is told.
struct AsksThenReaches;

impl Runner for AsksThenReaches {
    fn run(&self, job: Job, _stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        Box::pin(async move {
            let (reporter, session) = (job.reporter.clone(), job.session);
            let item = QuestionItem {
                header: "Way".into(),
                question: "Which way?".into(),
                options: Vec::new(),
                multiple: false,
                custom: true,
            };
            let question = tokio::spawn(async move {
                let asked = Ask::question("que_first".into(), vec![item]);
                reporter.question(session, asked).await
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            let outside = Ask {
                id: "per_outside".into(),
                permission: "external_directory".into(),
                patterns: vec!["/srv/*".into()],
                questions: Vec::new(),
            };
            let verdict = job.reporter.permission(job.session, outside).await;
            let told = said(&job).await;
            question.abort();
            let feedback = verdict.and_then(|v| v.feedback).is_some();
            Outcome::Completed {
                result: Some(format!("feedback {feedback} then {told}")),
                usage: Default::default(),
            }
        })
    }
}

/// The policy rejects a request while another of the session's waits for the operator: the
/// agent is told why as a message too (OpenCode's bare rejection of the other ended its turn,
/// and the task was done with nothing).
#[tokio::test]
async fn a_policy_rejection_beside_a_waiting_request_is_followed_by_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store, mut events) = running_with(
        dir.path(),
        Arc::new(AsksThenReaches),
        Duration::from_secs(60),
        Some(Decision::Reject),
    )
    .await;
    finished(&mut events).await;
    let tasks = store.read(query::tasks).await.unwrap();
    let result = tasks[0].result.clone().unwrap_or_default();
    assert!(
        result.starts_with("feedback true then ocio's approval policy rejects this (outside"),
        "{result}"
    );
    engine.shutdown().await.unwrap();
}
