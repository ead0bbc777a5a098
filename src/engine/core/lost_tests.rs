//! What a lost run spent stays its session's: lost with its server while the engine runs, or
//! with the engine itself (a restart that cannot follow it). Both showed 0 tokens though the
//! session's steps had told what they spent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::test_wait::{finished, next};
use crate::domain::{Agent, AgentName, Backend, SessionStatus, Usage};
use crate::engine::runner::{Job, Outcome, RunFuture, Runner};
use crate::engine::view::Activity;
use crate::engine::{AgentSpec, EngineApi, EngineEvent, EngineHandle, EngineOptions};
use crate::store::{Store, StoreHandle, StoreOptions, query};

fn tokens(input: u64) -> Usage {
    Usage {
        input_tokens: input,
        ..Usage::default()
    }
}

/// A first attempt tells a step of 500 tokens, then is lost (`lose`) or works until stopped;
/// a later one answers having spent 300.
struct LosesItsFirst {
    lose: bool,
}

impl Runner for LosesItsFirst {
    fn run(&self, job: Job, stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        let lose = self.lose;
        Box::pin(async move {
            if job.attempt > 1 {
                return Outcome::Completed {
                    result: Some("done".into()),
                    usage: tokens(300),
                };
            }
            let step = Activity::Step { usage: tokens(500) };
            job.reporter
                .activity(job.session, step, Some("step-1".into()));
            if lose {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Outcome::Lost {
                    error: "its server went away".into(),
                    unreachable: false,
                };
            }
            let _ = stop.await;
            Outcome::Stopped
        })
    }
}

async fn start(dir: &std::path::Path, lose: bool) -> (StoreHandle, EngineHandle) {
    let store = Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let agent = AgentSpec {
        agent: Agent::new(AgentName::new("box").unwrap(), Backend::Simulated, 1),
        runner: Arc::new(LosesItsFirst { lose }),
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    (store, engine)
}

async fn submit(dir: &std::path::Path, engine: &EngineHandle) {
    let path = dir.join("plan.toml");
    std::fs::write(
        &path,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n",
    )
    .unwrap();
    engine
        .submit_plan(crate::plan::PlanFile::load(&path).unwrap())
        .await
        .unwrap();
}

async fn lost_usage(store: &StoreHandle) -> Usage {
    let sessions = store.read(query::sessions).await.unwrap();
    let lost = sessions
        .iter()
        .find(|s| s.status == SessionStatus::Lost)
        .unwrap_or_else(|| panic!("no lost session: {sessions:#?}"));
    lost.usage
}

#[tokio::test]
async fn a_run_lost_with_its_server_keeps_what_its_steps_spent() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = start(dir.path(), true).await;
    let mut events = engine.subscribe();
    submit(dir.path(), &engine).await;
    let ended = finished(&mut events).await;
    assert!(
        matches!(ended, EngineEvent::PlanFinished { ok: true, .. }),
        "{ended:?}"
    );
    assert_eq!(lost_usage(&store).await.input_tokens, 500);
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.usage.input_tokens, 800, "both attempts' spend");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_run_lost_with_the_engine_keeps_what_its_steps_spent() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = start(dir.path(), false).await;
    let mut events = engine.subscribe();
    submit(dir.path(), &engine).await;
    next(&mut events, |e| {
        matches!(e, EngineEvent::Activity { entry, .. } if matches!(entry.activity, Activity::Step { .. }))
    })
    .await;
    engine.shutdown().await.unwrap();
    store.close().await;

    let (store, engine) = start(dir.path(), false).await;
    assert_eq!(lost_usage(&store).await.input_tokens, 500);
    let snapshot = engine.snapshot().await.unwrap();
    assert!(snapshot.usage.input_tokens >= 500, "{:?}", snapshot.usage);
    engine.shutdown().await.unwrap();
}
