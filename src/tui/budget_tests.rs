//! Continuing a plan paused over budget while a budget is still reached, from the room: the
//! engine refuses, and the room says how to raise it in the room (`:budget`), not with the
//! shell command `ocio budget` says. A plan that shares its name with another is named as the
//! room shows it (`<name>-2`) wherever its budget is told or settled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::KeyCode;

use super::app::{Effect, Mode, Msg, Request};
use super::link::Link;
use super::tests::{app, draw, key, plan_id, snapshot, typed};
use crate::domain::{Agent, AgentName, Backend, TaskStatus, Transition};
use crate::engine::{
    AgentSpec, BudgetTarget, BudgetThen, EngineEvent, EngineHandle, EngineOptions, Simulated,
};
use crate::store::{Store, StoreOptions};

/// A task whose first attempt spends 600 tokens of its 500 and holds until it is stopped.
const PLAN: &str = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\\nSIM-HOLD\"\nbudget = { tokens = 500 }\n";

/// Hand trial: `C` on a plan still over budget said `hint: raise it first, e.g. ocio budget
/// ... --tokens N`, a shell command, in the room.
#[test]
fn continuing_a_plan_still_over_budget_names_the_rooms_budget_command() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, plan) = runtime.block_on(async {
        let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
        let config = crate::config::SimulationConfig {
            duration: jiff::SignedDuration::from_millis(900),
            failure_rate: 0.0,
            seed: 1,
            ask_rate: 0.0,
        };
        let agent = AgentSpec {
            agent: Agent::new(AgentName::new("sim").unwrap(), Backend::Simulated, 1),
            runner: std::sync::Arc::new(Simulated { config }),
        };
        let options = EngineOptions {
            tick: Duration::from_millis(20),
            ..EngineOptions::default()
        };
        let engine = EngineHandle::start(store, vec![agent], options)
            .await
            .unwrap();
        let mut events = engine.subscribe();
        let path = dir.path().join("plan.toml");
        std::fs::write(&path, PLAN).unwrap();
        let plan = crate::plan::PlanFile::load(&path).unwrap();
        let plan = engine.submit_plan(plan).await.unwrap();
        // Paused, and its task stopped (failed, over its budget).
        let stopped = |event: &EngineEvent| match event {
            EngineEvent::Transition(e) => matches!(
                e.transition,
                Transition::Task {
                    to: TaskStatus::Failed,
                    ..
                }
            ),
            _ => false,
        };
        tokio::time::timeout(Duration::from_secs(30), async {
            while !events.recv().await.is_ok_and(|e| stopped(&e)) {}
        })
        .await
        .expect("the plan pauses over budget");
        (engine, plan)
    });
    let (to, from) = std::sync::mpsc::channel();
    let requests = Link::new(engine.clone()).worker(runtime.handle(), to, PathBuf::from("/"));
    requests.send(Request::Budget(
        plan,
        "p".into(),
        BudgetTarget::Plan,
        None,
        BudgetThen::Continue,
    ));
    let said = loop {
        if let Ok(Msg::Reply(_, said)) = from.recv_timeout(Duration::from_secs(30)) {
            break said.unwrap_err();
        }
    };
    assert!(
        said.starts_with("still over budget: task `a` budget 600/500 tokens"),
        "{said}"
    );
    assert!(said.contains(":budget p/a TOKENS"), "{said}");
    assert!(!said.contains("ocio budget"), "{said}");
    runtime.block_on(engine.shutdown()).unwrap();
}

/// Two plans named `add-pagination`, the newer (`add-pagination-2`, as the sessions pane and
/// the task tree show it) paused over budget: the room with its snapshot, and its id.
fn twins() -> (super::app::App, crate::domain::PlanId) {
    let second = crate::domain::PlanId::from_u128(plan_id().as_u128() + 1);
    let mut snapshot = snapshot();
    let mut twin = snapshot.plans[0].clone();
    snapshot.plans[0].key = "add-pagination".into();
    twin.id = second;
    twin.key = "add-pagination-2".into();
    for task in &mut twin.tasks {
        task.id = crate::domain::TaskId::from_u128(task.id.as_u128() + 100);
        task.session = None;
    }
    snapshot.plans.push(twin);
    let spend = |plan, held: bool| crate::engine::view::PlanSpendView {
        plan,
        name: "add-pagination".into(),
        budget: None,
        spent: crate::domain::Usage::default(),
        over_budget: held.then(|| "over budget: plan budget 600/500 tokens".into()),
        stopped: Vec::new(),
    };
    snapshot.budgets.plans = vec![spend(plan_id(), false), spend(second, true)];
    let mut app = app();
    app.update(Msg::Snapshot(Box::new(snapshot)));
    (app, second)
}

/// Hand trial: of two plans named `b1`, the second (shown `b1-2`) paused over budget; `C` in
/// its view sent the raw name, so the refusal's hint read `:budget b1 TOKENS`, which raised
/// the other plan's budget; the header read `over budget: b1`, its inbox row `b1`.
#[test]
fn a_plan_named_like_another_is_named_as_shown_wherever_its_budget_is_told() {
    use crate::engine::{BudgetTarget, BudgetThen};
    let (mut app, second) = twins();
    let screen = draw(&mut app, 220, 48);
    assert!(
        screen.contains("over budget: add-pagination-2 │"),
        "the header: {screen}"
    );
    let row = |l: &&str| l.contains("│add-pagination-2 ") && l.contains("plan budget 600/500");
    assert!(screen.lines().any(|l| row(&l)), "the inbox: {screen}");
    app.open_plan_review(second);
    let review = crate::domain::review::PlanReview {
        plan: second,
        name: "add-pagination".into(),
        branch: None,
        no_branch: Some("a shared checkout".into()),
        tasks: Vec::new(),
        usage: crate::domain::Usage::default(),
        budget: None,
        over_budget: Some("over budget: plan budget 600/500 tokens".into()),
        landing: None,
    };
    app.update(Msg::Review(second, Ok(Box::new(review))));
    let screen = draw(&mut app, 160, 36);
    assert!(
        screen.contains(" plan add-pagination-2 ("),
        "its view: {screen}"
    );
    let go_on = |then| {
        Effect::Request(Request::Budget(
            second,
            "add-pagination-2".into(),
            BudgetTarget::Plan,
            None,
            then,
        ))
    };
    assert_eq!(
        key(&mut app, KeyCode::Char('C')),
        [go_on(BudgetThen::Continue)]
    );
    assert!(key(&mut app, KeyCode::Char('X')).is_empty());
    let screen = draw(&mut app, 120, 36);
    assert!(
        screen.contains("Cancel plan add-pagination-2, paused over budget?"),
        "{screen}"
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        [go_on(BudgetThen::Cancel)]
    );
    app.mode = Mode::Normal;
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "budget add-pagination-2 900");
    let raise = Request::Budget(
        second,
        "add-pagination-2".into(),
        BudgetTarget::Plan,
        crate::domain::Budget::new(Some(900), None).ok(),
        BudgetThen::Continue,
    );
    assert_eq!(key(&mut app, KeyCode::Enter), [Effect::Request(raise)]);
}
