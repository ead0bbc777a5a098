//! A session with two requests pending at once (a permission and a question from parallel
//! tool calls): answering one leaves it shown waiting on the other, each decision its own
//! transition in the control log, and the run gets both answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

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
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        approvals: ApprovalPolicy {
            inside: Some(Decision::Once),
            outside: None,
        },
        questions: QuestionPolicy {
            mode: QuestionMode::Ask,
            timeout: Duration::from_secs(60),
        },
        ..EngineOptions::default()
    };
    let agent = AgentSpec {
        agent: Agent::new(AgentName::new("two").unwrap(), Backend::Simulated, 1),
        runner: Arc::new(AsksTwice),
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let path = dir.path().join("plan.toml");
    std::fs::write(
        &path,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\n",
    )
    .unwrap();
    engine
        .submit_plan(crate::plan::PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while engine.snapshot().await.unwrap().approvals.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "both requests wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(EngineEvent::PlanFinished { ok, .. }) = events.recv().await {
                assert!(ok);
                return;
            }
        }
    })
    .await
    .unwrap();
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
