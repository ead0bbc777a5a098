//! A budget raised while the engine is still stopping the work it stopped over budget: the work
//! whose stop was on its way continues with the rest (it failed, and its plan ended failed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::test_wait::{finished, next};
use crate::domain::{Agent, AgentName, Backend, Budget, Usage};
use crate::engine::EngineOptions;
use crate::engine::runner::{Job, Outcome, RunFuture, Runner};
use crate::engine::view::Activity;
use crate::engine::{AgentSpec, BudgetTarget, BudgetThen, EngineApi, EngineEvent, EngineHandle};
use crate::store::{Store, StoreOptions};

/// A first attempt spends 600 tokens, then takes half a second to stop when told; a later one
/// (continuing) answers at once.
struct SlowToStop;

impl Runner for SlowToStop {
    fn run(&self, job: Job, mut stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        Box::pin(async move {
            if job.attempt > 1 {
                return Outcome::Completed {
                    result: Some("continued".into()),
                    usage: Usage::default(),
                };
            }
            let usage = Usage {
                input_tokens: 600,
                ..Usage::default()
            };
            let step = Activity::Step { usage };
            job.reporter
                .activity(job.session, step, Some("step-1".into()));
            let _ = (&mut stop).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            Outcome::Stopped
        })
    }
}

#[tokio::test]
async fn work_whose_stop_was_on_its_way_continues_when_the_budget_is_raised() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        daily_budget: Some(Budget::new(Some(1000), None).unwrap()),
        ..EngineOptions::default()
    };
    let agent = AgentSpec {
        agent: Agent::new(AgentName::new("slow").unwrap(), Backend::Simulated, 2),
        runner: Arc::new(SlowToStop),
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let path = dir.path().join("plan.toml");
    std::fs::write(
        &path,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n[[tasks]]\nid = \"b\"\nprompt = \"b\"\n",
    )
    .unwrap();
    let plan = engine
        .submit_plan(crate::plan::PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    next(&mut events, |e| matches!(e, EngineEvent::OverBudget { .. })).await;
    // At once: both runs are still stopping.
    let raised = Budget::new(Some(100_000), None).unwrap();
    engine
        .budget(
            plan,
            BudgetTarget::Daily,
            Some(raised),
            BudgetThen::Continue,
        )
        .await
        .unwrap();
    let finished = finished(&mut events).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    engine.shutdown().await.unwrap();
}
