//! Continuing a plan paused over budget while a budget is still reached, from the room: the
//! engine refuses, and the room says how to raise it in the room (`:budget`), not with the
//! shell command `ocio budget` says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use super::app::{Msg, Request};
use super::link::Link;
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
