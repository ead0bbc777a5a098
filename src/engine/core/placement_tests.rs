//! Where a plan's tasks can run, checked when it is submitted: a plan in a directory that is
//! no git repository, whose task only build boxes could run, is refused (it waited ready for
//! good, saying nothing); one that only a fleet's members could run waits for them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::domain::{Agent, AgentName, Backend};
use crate::engine::{AgentSpec, EngineApi, EngineError, EngineHandle, EngineOptions};
use crate::store::{Store, StoreOptions};

fn simulated(agent: Agent) -> AgentSpec {
    simulated_failing(agent, 0.0)
}

/// `agent` simulated, its runs failing at `failure_rate`.
fn simulated_failing(agent: Agent, failure_rate: f64) -> AgentSpec {
    AgentSpec {
        agent,
        runner: Arc::new(crate::engine::Simulated {
            config: crate::config::SimulationConfig {
                duration: jiff::SignedDuration::from_millis(10),
                failure_rate,
                seed: 1,
                ask_rate: 0.0,
            },
        }),
    }
}

/// A plan named `p` working in a directory that is no git repository (made in `dir`), with
/// `tasks`, its `[[tasks]]` entries as TOML.
fn plain_plan(dir: &std::path::Path, tasks: &str) -> crate::plan::PlanFile {
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let path = dir.join("plan.toml");
    let text = format!(
        "name = \"p\"\nrepo = {:?}\n{tasks}",
        plain.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    crate::plan::PlanFile::load(&path).unwrap()
}

#[tokio::test]
async fn a_plan_outside_git_that_only_a_build_box_could_run_is_refused_at_submit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let mut far = Agent::new(AgentName::new("far").unwrap(), Backend::Simulated, 2);
    far.works_away = true;
    let agent = simulated(far);
    let engine = EngineHandle::start(store, vec![agent], EngineOptions::default())
        .await
        .unwrap();
    let plan = plain_plan(dir.path(), "[[tasks]]\nid = \"a\"\nprompt = \"a\"\n");
    let refused = engine.submit_plan(plan).await.unwrap_err();
    let EngineError::Plan(errors) = &refused else {
        panic!("{refused:?}")
    };
    let text = errors.to_string();
    assert!(
        text.contains("is no git repository") && text.contains("(far) work on build boxes"),
        "{text}"
    );
    assert!(
        engine.snapshot().await.unwrap().plans.is_empty(),
        "nothing stored"
    );
    engine.shutdown().await.unwrap();
}

/// A fleet member told waiting as the engine starts, before anything was committed, is in the
/// notes a control room reads when it opens (hand trial: the room never showed why the
/// members there at the start could not join; only the headless lines did).
#[tokio::test]
async fn a_member_told_waiting_before_any_commit_is_in_the_notes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store, Vec::new(), EngineOptions::default())
        .await
        .unwrap();
    let fleet = AgentName::new("box").unwrap();
    engine
        .tell(crate::engine::EngineEvent::FleetMemberWaiting {
            fleet,
            url: "http://127.0.0.1:9".into(),
            why: "connection refused".into(),
        })
        .await;
    let notes = engine.notes(10).await.unwrap();
    assert!(
        notes.iter().any(|n| matches!(
            &n.event,
            crate::engine::EngineEvent::FleetMemberWaiting { url, .. } if url == "http://127.0.0.1:9"
        )),
        "{notes:?}"
    );
    engine.shutdown().await.unwrap();
}

/// A fleet none of whose members has joined yet (hand trial: its servers were still starting)
/// takes plans: their tasks wait ready, the snapshot names the fleet, and the first member
/// to join runs them. Before, every plan was refused: "no agent is configured to run it".
#[tokio::test]
async fn a_plan_waits_for_a_fleets_first_member() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let builders = crate::domain::Fleet {
        name: AgentName::new("builders").unwrap(),
        capabilities: ["rust".to_string()].into(),
        works_away: None,
        members: Vec::new(),
    };
    let options = EngineOptions {
        fleets: vec![builders.clone()],
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(store, Vec::new(), options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = plain_plan(
        dir.path(),
        "[[tasks]]\nid = \"a\"\nprompt = \"a\"\ncapabilities = [\"rust\"]\n[[tasks]]\nid = \"b\"\nprompt = \"b\"\nagent = \"builders-box-4096\"\n",
    );
    engine
        .submit_plan(plan)
        .await
        .expect("taken in while no member has joined");
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.fleets, [builders]);
    let statuses: Vec<_> = snapshot.plans[0].tasks.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            crate::domain::TaskStatus::Ready,
            crate::domain::TaskStatus::Ready
        ]
    );
    // Each says what it waits for (hand trial: they sat ready with no word).
    let waits: Vec<_> = snapshot.plans[0]
        .tasks
        .iter()
        .map(|t| t.waits.as_deref())
        .collect();
    assert_eq!(
        waits,
        [
            Some("for a member of fleet builders to join"),
            Some("for builders-box-4096, a member of fleet builders, to join")
        ]
    );
    let mut member = Agent::new(
        AgentName::new("builders-box-4096").unwrap(),
        Backend::Simulated,
        2,
    );
    member.capabilities = ["rust".to_string()].into();
    engine.add_agent(simulated(member)).await.unwrap();
    let finished = super::test_wait::finished(&mut events).await;
    assert!(
        matches!(
            finished,
            crate::engine::EngineEvent::PlanFinished { ok: true, .. }
        ),
        "{finished:?}"
    );
    engine.shutdown().await.unwrap();
}

/// Asked to plan while the fleet that offers `plan` has no member yet, the engine says so
/// (it told the operator to add the capability the fleet already offers).
#[tokio::test]
async fn planning_before_a_planning_fleets_member_joins_says_it_has_not_joined() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        fleets: vec![crate::domain::Fleet {
            name: AgentName::new("planners").unwrap(),
            capabilities: ["plan".to_string()].into(),
            works_away: None,
            members: Vec::new(),
        }],
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(store, Vec::new(), options)
        .await
        .unwrap();
    let refused = engine.plan("add a feature", dir.path()).await.unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains(
            "fleet planners offers the `plan` capability, but none of its members has joined yet"
        ),
        "{text}"
    );
    engine.shutdown().await.unwrap();
}

/// The stored agents are the running engine's: one an earlier engine had (taken out of the
/// config since, a fleet's member gone) is removed at the start (hand trial: `ocio status`
/// counted such agents online and `ocio agents` listed them, with the load they had).
#[tokio::test]
async fn agents_an_earlier_engine_had_are_not_kept_as_agents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocio.redb");
    let agent = |name: &str| {
        simulated(Agent::new(
            AgentName::new(name).unwrap(),
            Backend::Simulated,
            2,
        ))
    };
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![agent("kept"), agent("gone")],
        EngineOptions::default(),
    )
    .await
    .unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store.clone(), vec![agent("kept")], EngineOptions::default())
        .await
        .unwrap();
    let stored = store.read(crate::store::query::agents).await.unwrap();
    let names: Vec<&str> = stored.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["kept"]);
    engine.shutdown().await.unwrap();
}

/// A retry that nothing could ever run is refused, saying why and how to go on: the task is
/// pinned to an agent since removed (hand trial: `ocio retry` was taken and the task sat ready
/// for good). One pinned to an agent there is runs again.
#[tokio::test]
async fn a_retry_no_agent_could_ever_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let failing = |name: &str| {
        let agent = Agent::new(AgentName::new(name).unwrap(), Backend::Simulated, 2);
        simulated_failing(agent, 1.0)
    };
    let engine = EngineHandle::start(
        store,
        vec![failing("kept"), failing("gone")],
        EngineOptions::default(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let plan = plain_plan(
        dir.path(),
        "[[tasks]]\nid = \"a\"\nprompt = \"a\"\nagent = \"gone\"\n[[tasks]]\nid = \"b\"\nprompt = \"b\"\nagent = \"kept\"\n",
    );
    engine.submit_plan(plan).await.unwrap();
    super::test_wait::finished(&mut events).await;
    engine.remove_agent("gone").await.unwrap();
    let snapshot = engine.snapshot().await.unwrap();
    let id = |key: &str| {
        snapshot.plans[0]
            .tasks
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.id)
            .unwrap()
    };
    let refused = engine.retry(id("a")).await.unwrap_err();
    assert_eq!(refused.kind, crate::engine::api::ErrorKind::NotNow);
    assert!(
        refused
            .message
            .contains("a would wait for agent gone, which is not among the agents")
            && refused.message.contains("add an agent named gone"),
        "{}",
        refused.message
    );
    engine.retry(id("b")).await.expect("kept is there");
    let tasks = engine.snapshot().await.unwrap().plans[0].tasks.clone();
    let status = |key: &str| tasks.iter().find(|t| t.key == key).unwrap().status;
    assert_eq!(status("a"), crate::domain::TaskStatus::Failed, "unchanged");
    assert_ne!(status("b"), crate::domain::TaskStatus::Failed);
    engine.shutdown().await.unwrap();
}

/// A fleet that lists a member again lifts only its own drain: one the operator drained
/// stays drained (hand trial: the source dropping and listing it again undrained it).
#[tokio::test]
async fn a_fleet_listing_a_member_again_lifts_only_its_own_drain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = |name: &str| {
        simulated(Agent::new(
            AgentName::new(name).unwrap(),
            Backend::Simulated,
            2,
        ))
    };
    let engine = EngineHandle::start(
        store,
        vec![agent("mine"), agent("fleets"), agent("late")],
        EngineOptions::default(),
    )
    .await
    .unwrap();
    const LEFT: &str = "no longer listed by its fleet";
    engine.drain("mine", true).await.unwrap();
    // The operator drains one its fleet drained already (review: the fleet's lift won).
    engine
        .drain_because("late", true, LEFT, Some(LEFT))
        .await
        .unwrap();
    engine.drain("late", true).await.unwrap();
    engine
        .drain_because("late", false, "listed by its fleet again", Some(LEFT))
        .await
        .unwrap();
    for name in ["mine", "fleets"] {
        engine
            .drain_because(name, true, LEFT, Some(LEFT))
            .await
            .unwrap();
        engine
            .drain_because(name, false, "listed by its fleet again", Some(LEFT))
            .await
            .unwrap();
    }
    let agents = engine.snapshot().await.unwrap().agents;
    let status = |name: &str| {
        agents
            .iter()
            .find(|a| a.name.as_str() == name)
            .map(|a| a.status)
            .unwrap()
    };
    assert_eq!(status("mine"), crate::domain::AgentStatus::Draining);
    assert_eq!(status("late"), crate::domain::AgentStatus::Draining);
    assert_eq!(status("fleets"), crate::domain::AgentStatus::Online);
    engine.shutdown().await.unwrap();
}
