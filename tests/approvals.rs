//! Permission requests through the engine: every decision (the operator's, by any front end,
//! or the policy's) is a transition in the control log naming what was decided and by whom, and
//! an event the events pane and the headless runner tell as a line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ocio::engine::EngineApi;
use std::path::Path;
use std::time::Duration;

use ocio::domain::{DomainEvent, SessionStatus, Transition};
use ocio::engine::Subscription as Receiver;
use ocio::engine::approval::{self, ApprovalPolicy, Approver, Decision};
use ocio::engine::{AgentSpec, EngineEvent, EngineHandle, EngineOptions};
use ocio::narration::Narration;
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreHandle, StoreOptions, query};

const PATIENCE: Duration = Duration::from_secs(30);

const PLAN: &str = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n";

/// A simulated agent whose every session asks once for a directory outside its own.
fn asking_agent() -> AgentSpec {
    let mut spec = support::sim_agent("asker", 2, &[], 30, 0.0);
    spec.runner = std::sync::Arc::new(ocio::engine::Simulated {
        config: ocio::config::SimulationConfig {
            duration: jiff::SignedDuration::from_millis(30),
            failure_rate: 0.0,
            seed: 1,
            ask_rate: 1.0,
        },
    });
    spec
}

async fn start(dir: &Path, approvals: ApprovalPolicy) -> (EngineHandle, Receiver, StoreHandle) {
    let store = Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        approvals,
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(store.clone(), vec![asking_agent()], options)
        .await
        .unwrap();
    let events = engine.subscribe();
    let path = dir.join("plan.toml");
    std::fs::write(&path, PLAN).unwrap();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    (engine, events, store)
}

async fn next(events: &mut Receiver, wanted: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = events.recv().await.unwrap();
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the event came in time")
}

/// The decision: the session's move from waiting-approval back to running.
fn decided(event: &EngineEvent) -> Option<&DomainEvent> {
    match event {
        EngineEvent::Transition(e)
            if matches!(
                e.transition,
                Transition::Session {
                    from: SessionStatus::WaitingApproval,
                    to: SessionStatus::Running,
                    ..
                }
            ) =>
        {
            Some(e)
        }
        _ => None,
    }
}

#[tokio::test]
async fn an_operators_decision_by_short_id_is_an_event_and_a_log_entry_naming_who() {
    let dir = tempfile::tempdir().unwrap();
    let operator_decides = ApprovalPolicy {
        inside: Some(Decision::Once),
        outside: None,
    };
    let (engine, mut events, store) = start(dir.path(), operator_decides).await;
    let asked = next(&mut events, |e| {
        matches!(e, EngineEvent::ApprovalRequested { .. })
    })
    .await;
    let EngineEvent::ApprovalRequested { request, .. } = asked else {
        unreachable!()
    };
    // The short form the control room shows, in any case.
    let short = approval::short_id(&request).to_ascii_lowercase();
    assert_ne!(short, request);
    engine
        .approve(&short, Decision::Once, Approver::Cli)
        .await
        .unwrap();
    let event = next(&mut events, |e| decided(e).is_some()).await;
    let cause = decided(&event).unwrap().cause.clone();
    assert!(
        cause.starts_with(
            "approved once by the operator (ocio approve): permission external_directory"
        ),
        "{cause}"
    );
    assert!(cause.ends_with(&format!("[{request}]")), "{cause}");
    let line = Narration::of(&event).expect("the decision is told");
    assert!(line.text.contains(&cause), "{}", line.text);
    next(&mut events, |e| {
        matches!(e, EngineEvent::PlanFinished { .. })
    })
    .await;
    let logged = store
        .read(|txn| query::events_after(txn, 0, usize::MAX))
        .await
        .unwrap();
    assert!(
        logged.iter().any(|(_, e)| e.cause == cause),
        "the control log has the decision"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_policy_decision_is_told_as_an_event_too() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, mut events, _store) = start(dir.path(), ApprovalPolicy::default()).await;
    let event = next(&mut events, |e| decided(e).is_some()).await;
    let line = Narration::of(&event).expect("the policy's decision is told");
    assert!(
        line.text
            .contains("rejected by policy (outside the session's directory)"),
        "{}",
        line.text
    );
    engine.shutdown().await.unwrap();
}
