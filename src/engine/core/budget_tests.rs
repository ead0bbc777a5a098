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

/// An engine on a store in `dir` with one agent of `slots` running `runner`, a daily budget
/// of `daily` tokens, and plan `text` submitted: once the plan is paused over budget, the
/// engine, the plan and its events after that.
async fn paused_over_budget(
    dir: &std::path::Path,
    runner: Arc<dyn Runner>,
    slots: u32,
    daily: u64,
    text: &str,
) -> (
    EngineHandle,
    crate::domain::PlanId,
    crate::engine::Subscription,
) {
    let store = Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        daily_budget: Some(Budget::new(Some(daily), None).unwrap()),
        ..EngineOptions::default()
    };
    let agent = AgentSpec {
        agent: Agent::new(AgentName::new("box").unwrap(), Backend::Simulated, slots),
        runner,
    };
    let engine = EngineHandle::start(store, vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    let plan = engine
        .submit_plan(crate::plan::PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    next(&mut events, |e| matches!(e, EngineEvent::OverBudget { .. })).await;
    (engine, plan, events)
}

#[tokio::test]
async fn work_whose_stop_was_on_its_way_continues_when_the_budget_is_raised() {
    let dir = tempfile::tempdir().unwrap();
    let plan = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n[[tasks]]\nid = \"b\"\nprompt = \"b\"\n";
    let (engine, plan, mut events) =
        paused_over_budget(dir.path(), Arc::new(SlowToStop), 2, 1000, plan).await;
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

/// Spends 600 tokens, then works until told to stop.
struct Spends600;

impl Runner for Spends600 {
    fn run(&self, job: Job, stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        Box::pin(async move {
            let usage = Usage {
                input_tokens: 600,
                ..Usage::default()
            };
            job.reporter
                .activity(job.session, Activity::Step { usage }, Some("step-1".into()));
            let _ = stop.await;
            Outcome::Stopped
        })
    }
}

/// A raise refused (the plan would still be over it) changes nothing: it was kept in the
/// engine's memory, not stored, so `ocio budget` showed the refused limit until a restart
/// (hand trial).
#[tokio::test]
async fn a_raise_refused_as_still_over_budget_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = "name = \"p\"\nrepo = \".\"\nbudget = { tokens = 500 }\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n";
    let (engine, plan, _events) =
        paused_over_budget(dir.path(), Arc::new(Spends600), 1, 10_000, plan).await;
    let budgets = |snapshot: crate::engine::Snapshot| {
        (snapshot.budgets.plans[0].budget, snapshot.budgets.daily)
    };
    let before = budgets(engine.snapshot().await.unwrap());
    // Each lowered or raised to where the plan's 600 are still over it.
    for target in [BudgetTarget::Plan, BudgetTarget::Daily] {
        let still_over = Budget::new(Some(580), None).unwrap();
        let refused = engine
            .budget(plan, target.clone(), Some(still_over), BudgetThen::Continue)
            .await;
        assert!(refused.is_err(), "{target:?}: {refused:?}");
        assert_eq!(
            budgets(engine.snapshot().await.unwrap()),
            before,
            "{target:?}: refused, yet changed"
        );
    }
    engine.shutdown().await.unwrap();
}
