//! The engine end to end on a real redb file with simulated agents: dependencies, load
//! balancing, failures blocking dependents, retries, time limits, cancel, invalid plans and
//! recovery after the engine stops mid-run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ocio::engine::EngineApi;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jiff::SignedDuration;
use ocio::domain::{Agent, AgentName, AgentStatus, Backend, SessionStatus, TaskStatus, Transition};
use ocio::engine::{AgentSpec, EngineError, EngineEvent, EngineHandle, EngineOptions};
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreHandle, StoreOptions, query};

/// How long a test waits for the engine's next event.
const PATIENCE: Duration = Duration::from_secs(30);

fn plan(dir: &Path, text: &str) -> PlanFile {
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    PlanFile::load(&path).unwrap()
}

fn open(dir: &Path) -> StoreHandle {
    Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap()
}

fn options() -> EngineOptions {
    EngineOptions {
        tick: Duration::from_millis(20),
        retry_backoff: SignedDuration::from_millis(10),
        ..EngineOptions::default()
    }
}

async fn task_statuses(store: &StoreHandle) -> BTreeMap<String, (TaskStatus, u32)> {
    store
        .read(query::tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.key, (t.status, t.attempts)))
        .collect()
}

const DIAMOND: &str = r#"
name = "diamond"
repo = "."
[[tasks]]
id = "a"
prompt = "first"
[[tasks]]
id = "b"
needs = ["a"]
prompt = "left"
[[tasks]]
id = "c"
needs = ["a"]
prompt = "right"
[[tasks]]
id = "d"
needs = ["b", "c"]
prompt = "join"
"#;

#[tokio::test]
async fn a_plan_runs_in_dependency_order_and_every_step_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 4, &[], 20, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    engine.submit_plan(plan(dir.path(), DIAMOND)).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 4,
                ..
            }
        ),
        "{finished:?}"
    );

    let order: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Dispatched { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        order.len(),
        4,
        "each task dispatched exactly once: {order:?}"
    );
    assert_eq!(order[0], "a");
    assert_eq!(order[3], "d");

    // Everything announced is in the store.
    let tasks = task_statuses(&store).await;
    assert!(
        tasks
            .values()
            .all(|(s, attempts)| *s == TaskStatus::Done && *attempts == 1),
        "{tasks:?}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions.len(), 4);
    assert!(
        sessions
            .iter()
            .all(|s| s.status == SessionStatus::Completed && s.usage.input_tokens > 0)
    );
    assert!(
        sessions.iter().any(|s| s.title == "diamond/d #1"),
        "titles name plan, task and attempt"
    );
    let first = sessions[0].id;
    let checkpoints = store
        .read(move |txn| query::checkpoints(txn, first))
        .await
        .unwrap();
    let kinds: Vec<String> = checkpoints
        .iter()
        .map(|c| format!("{:?}", c.kind))
        .collect();
    assert_eq!(
        kinds,
        ["PromptSent", "Step", "Result"],
        "handed over, each step, then how it ended"
    );
    assert_eq!(checkpoints[2].data["status"], "completed");
    let logged = store.read(query::last_event_seq).await.unwrap();
    let announced = seen
        .iter()
        .filter(|e| matches!(e, EngineEvent::Transition(_)))
        .count() as u64;
    assert_eq!(
        logged, announced,
        "every announced transition is in the control log"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn work_is_spread_over_capable_agents_within_their_caps() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![
        support::sim_agent("one", 2, &["code"], 50, 0.0),
        support::sim_agent("two", 2, &["code"], 50, 0.0),
        support::sim_agent("planner", 4, &["plan"], 50, 0.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let mut text = String::from("name = \"wide\"\nrepo = \".\"\n");
    for i in 0..8 {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = \"p\"\ncapabilities = [\"code\"]\n"
        ));
    }
    engine.submit_plan(plan(dir.path(), &text)).await.unwrap();
    let mut running: BTreeMap<String, i32> = BTreeMap::new();
    let mut peak: BTreeMap<String, i32> = BTreeMap::new();
    let mut per_agent: BTreeMap<String, u32> = BTreeMap::new();
    let mut session_agent = BTreeMap::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap()
            .unwrap();
        match event {
            EngineEvent::Dispatched { agent, session, .. } => {
                let a = agent.to_string();
                *per_agent.entry(a.clone()).or_default() += 1;
                let now = running.entry(a.clone()).or_default();
                *now += 1;
                let p = peak.entry(a.clone()).or_default();
                *p = (*p).max(*now);
                session_agent.insert(session, a);
            }
            EngineEvent::Transition(e) => {
                if let Transition::Session { id, to, .. } = e.transition
                    && to == SessionStatus::Completed
                {
                    *running.get_mut(&session_agent[&id]).unwrap() -= 1;
                }
            }
            EngineEvent::PlanFinished { ok, .. } => {
                assert!(ok);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(per_agent.get("one"), Some(&4), "{per_agent:?}");
    assert_eq!(per_agent.get("two"), Some(&4), "{per_agent:?}");
    assert!(
        !per_agent.contains_key("planner"),
        "planner lacks the code capability"
    );
    assert!(
        peak.values().all(|p| *p <= 2),
        "an agent ran more than max_concurrent: {peak:?}"
    );
}

#[tokio::test]
async fn a_failure_retries_then_blocks_its_dependents_and_an_operator_retry_reopens_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![
        support::sim_agent("flaky", 2, &["flaky"], 10, 1.0),
        support::sim_agent("good", 2, &[], 10, 0.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let text = "name = \"fragile\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\ncapabilities = [\"flaky\"]\nretries = 1\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"p\"\n[[tasks]]\nid = \"c\"\nneeds = [\"b\"]\nprompt = \"p\"\n[[tasks]]\nid = \"free\"\nprompt = \"p\"\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                done: 1,
                failed: 1,
                blocked: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    let tasks = task_statuses(&store).await;
    assert_eq!(tasks["a"], (TaskStatus::Failed, 2), "one automatic retry");
    assert_eq!(tasks["b"].0, TaskStatus::Blocked);
    assert_eq!(tasks["c"].0, TaskStatus::Blocked);
    assert_eq!(
        tasks["free"].0,
        TaskStatus::Done,
        "unrelated work is not held up"
    );

    let snapshot = engine.snapshot().await.unwrap();
    let a = snapshot.plans[0]
        .tasks
        .iter()
        .find(|t| t.key == "a")
        .unwrap()
        .id;
    engine.retry(a).await.unwrap();
    let (seen, _) = support::until_finished(&mut events, PATIENCE).await;
    let reopened = seen.iter().any(|e| matches!(e, EngineEvent::Transition(d) if matches!(&d.transition, Transition::Task { key, from: TaskStatus::Blocked, to: TaskStatus::Pending, .. } if key == "b")));
    assert!(reopened, "retry re-opens the blocked dependents");
    assert_eq!(task_statuses(&store).await["a"].1, 3);
    let err = engine
        .retry(
            snapshot.plans[0]
                .tasks
                .iter()
                .find(|t| t.key == "free")
                .unwrap()
                .id,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ocio::engine::ErrorKind::NotNow, "{err}");
}

#[tokio::test]
async fn a_time_limit_stops_the_session_and_cancel_blocks_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("slow", 4, &[], 60_000, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let text = "name = \"limits\"\nrepo = \".\"\n[[tasks]]\nid = \"quick\"\nprompt = \"p\"\ntimeout = \"200ms\"\n[[tasks]]\nid = \"long\"\nprompt = \"p\"\n[[tasks]]\nid = \"after\"\nneeds = [\"long\"]\nprompt = \"p\"\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    // Wait for both to run, then cancel the long one.
    let mut dispatched = 0;
    while dispatched < 2 {
        if let EngineEvent::Dispatched { .. } = events.recv().await.unwrap() {
            dispatched += 1;
        }
    }
    let snapshot = engine.snapshot().await.unwrap();
    let long = snapshot.plans[0]
        .tasks
        .iter()
        .find(|t| t.key == "long")
        .unwrap()
        .id;
    engine.cancel(long).await.unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                failed: 1,
                cancelled: 1,
                blocked: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    let by_title: BTreeMap<_, _> = sessions
        .iter()
        .map(|s| (s.title.as_str(), s.status))
        .collect();
    assert_eq!(by_title["limits/quick #1"], SessionStatus::TimedOut);
    assert_eq!(by_title["limits/long #1"], SessionStatus::Cancelled);
}

#[tokio::test]
async fn an_invalid_plan_is_refused_and_nothing_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 1, &["code"], 10, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let text = "name = \"x\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\ncapabilities = [\"gpu\"]\n";
    let err = engine
        .submit_plan(plan(dir.path(), text))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("plan.toml:") && message.contains("gpu"),
        "{message}"
    );
    assert!(store.read(query::plans).await.unwrap().is_empty());
    assert!(store.read(query::tasks).await.unwrap().is_empty());
}

#[tokio::test]
async fn after_a_stop_mid_run_a_new_engine_finishes_every_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let slow = vec![support::sim_agent("sim", 2, &[], 60_000, 0.0)];
    let engine = EngineHandle::start(store.clone(), slow, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    engine.submit_plan(plan(dir.path(), DIAMOND)).await.unwrap();
    while !matches!(events.recv().await.unwrap(), EngineEvent::Dispatched { .. }) {}
    engine.shutdown().await.unwrap();
    store.close().await;

    let store = open(dir.path());
    let fast = vec![support::sim_agent("sim", 2, &[], 10, 0.0)];
    let engine = EngineHandle::start(store.clone(), fast, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    // The session the restart ended is listed, with its task and what it spent, as front
    // ends show it (it had vanished from them, though the store and `ocio status` had it).
    let shown = engine.snapshot().await.unwrap();
    let ended = shown
        .sessions
        .iter()
        .find(|s| s.session.status == SessionStatus::Lost)
        .unwrap_or_else(|| panic!("the lost session is listed as lost: {:#?}", shown.sessions));
    assert_eq!(ended.task, "a");
    assert!(
        ended
            .session
            .last_error
            .as_deref()
            .unwrap()
            .contains("restarted")
    );
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 4,
                ..
            }
        ),
        "{finished:?}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    let completed: Vec<&str> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Completed)
        .map(|s| s.title.as_str())
        .collect();
    assert_eq!(
        completed.len(),
        4,
        "each task completed exactly once: {completed:?}"
    );
    let lost: Vec<_> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Lost)
        .collect();
    assert_eq!(
        lost.len(),
        1,
        "the interrupted attempt is settled, not left running"
    );
    assert!(lost[0].last_error.as_deref().unwrap().contains("restarted"));
    assert!(
        completed.contains(&"diamond/a #2"),
        "the interrupted task ran again as attempt 2: {completed:?}"
    );
}

/// Attempts lost to engine restarts are not the task's failures: with `retries = 1`, two lost
/// attempts still leave the one retry for a real failure; and a task whose run is lost at every
/// start runs again only so many times, then fails (before: `retries` were spent on lost runs,
/// and with `retries = 0` a lost run ran again without end).
#[tokio::test]
async fn attempts_lost_to_restarts_spend_no_retries_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "name = \"lost\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\nretries = 1\n";
    let mut plan_file = Some(plan(dir.path(), text));
    // Two starts whose run is lost with the engine.
    for _ in 0..2 {
        let store = open(dir.path());
        let slow = vec![support::sim_agent("sim", 1, &[], 60_000, 0.0)];
        let engine = EngineHandle::start(store.clone(), slow, options())
            .await
            .unwrap();
        let mut events = engine.subscribe();
        if let Some(file) = plan_file.take() {
            engine.submit_plan(file).await.unwrap();
        }
        while !matches!(events.recv().await.unwrap(), EngineEvent::Dispatched { .. }) {}
        engine.shutdown().await.unwrap();
        store.close().await;
    }
    // Then every attempt fails: the one retry is still there.
    let store = open(dir.path());
    let failing = vec![support::sim_agent("sim", 1, &[], 10, 1.0)];
    let engine = EngineHandle::start(store.clone(), failing, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: false, .. }),
        "{finished:?}"
    );
    let failed = store
        .read(query::sessions)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| !e.contains("restarted"))
        })
        .count();
    assert_eq!(failed, 2, "one real failure and its retry");
    engine.shutdown().await.unwrap();
    store.close().await;

    // retries = 0, lost at every start: run again three times, then failed.
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"forever\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n";
    let mut plan_file = Some(plan(dir.path(), text));
    let mut dispatched = 0;
    for _ in 0..6 {
        let store = open(dir.path());
        let slow = vec![support::sim_agent("sim", 1, &[], 60_000, 0.0)];
        let engine = EngineHandle::start(store.clone(), slow, options())
            .await
            .unwrap();
        let mut events = engine.subscribe();
        if let Some(file) = plan_file.take() {
            engine.submit_plan(file).await.unwrap();
        }
        let next = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match events.recv().await.unwrap() {
                    EngineEvent::Dispatched { .. } => return true,
                    EngineEvent::PlanFinished { .. } => return false,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or(false);
        dispatched += usize::from(next);
        engine.shutdown().await.unwrap();
        store.close().await;
    }
    assert_eq!(
        dispatched, 4,
        "the first attempt and three lost ones run again"
    );
    let store = open(dir.path());
    let tasks = task_statuses(&store).await;
    assert_eq!(tasks["a"], (TaskStatus::Failed, 4), "{tasks:?}");
    // An operator's retry starts the bound afresh: it runs, and a lost run of it runs again.
    let id = store.read(query::tasks).await.unwrap()[0].id;
    for round in 0..2 {
        let slow = vec![support::sim_agent("sim", 1, &[], 60_000, 0.0)];
        let engine = EngineHandle::start(store.clone(), slow, options())
            .await
            .unwrap();
        let mut events = engine.subscribe();
        if round == 0 {
            engine.retry(id).await.unwrap();
        }
        let dispatched = tokio::time::timeout(PATIENCE, async {
            while !matches!(events.recv().await.unwrap(), EngineEvent::Dispatched { .. }) {}
        })
        .await;
        assert!(dispatched.is_ok(), "round {round}: the retried task runs");
        engine.shutdown().await.unwrap();
    }
    store.close().await;
}

#[tokio::test]
async fn tasks_with_overlapping_locks_never_run_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 4, &[], 100, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let text = "name = \"locked\"\nrepo = \".\"\n[[tasks]]\nid = \"api\"\nprompt = \"p\"\nlocks = [\"src/api/\"]\n[[tasks]]\nid = \"users\"\nprompt = \"p\"\nlocks = [\"src/api/users.rs\"]\n[[tasks]]\nid = \"docs\"\nprompt = \"p\"\nlocks = [\"docs/\"]\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    let mut running: Vec<String> = Vec::new();
    let mut key_of = BTreeMap::new();
    let mut overlapped_unrelated = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            EngineEvent::Dispatched { key, session, .. } => {
                assert!(
                    !(key == "users" && running.contains(&"api".to_string())
                        || key == "api" && running.contains(&"users".to_string())),
                    "api and users ran at the same time"
                );
                overlapped_unrelated |= !running.is_empty();
                running.push(key.clone());
                key_of.insert(session, key);
            }
            EngineEvent::Transition(e) => {
                if let Transition::Session {
                    id,
                    to: SessionStatus::Completed,
                    ..
                } = e.transition
                {
                    running.retain(|k| *k != key_of[&id]);
                }
            }
            EngineEvent::PlanFinished { ok, .. } => {
                assert!(ok);
                break;
            }
            _ => {}
        }
    }
    assert!(
        overlapped_unrelated,
        "docs (no conflict) ran alongside another task"
    );
    assert!(
        store.read(query::leases).await.unwrap().is_empty(),
        "every lease given back"
    );
}

#[tokio::test]
async fn a_retry_after_the_agent_failed_goes_to_another_agent() {
    use ocio::opencode::client::{Client, ClientOptions};
    use ocio::opencode::runner::OpencodeRunner;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // A real OpenCode runner pointed at a port nothing listens on: the agent is at fault.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        ClientOptions::default(),
    )
    .unwrap();
    let mut dead = Agent::new(AgentName::new("dead").unwrap(), Backend::Simulated, 2);
    dead.capabilities = ["code".to_string()].into();
    let agents = vec![
        AgentSpec {
            agent: dead,
            runner: OpencodeRunner::new(client, None, None),
        },
        support::sim_agent("sim", 2, &["code"], 10, 0.0),
    ];
    // No health probe during the test: the point is what a failed session does.
    let quiet = EngineOptions {
        health_every: Duration::from_secs(3600),
        ..options()
    };
    let engine = EngineHandle::start(store.clone(), agents, quiet)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let text = "name = \"hop\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\ncapabilities = [\"code\"]\nretries = 1\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let hops: Vec<(String, u32)> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Dispatched { agent, attempt, .. } => Some((agent.to_string(), *attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(hops, vec![("dead".to_string(), 1), ("sim".to_string(), 2)]);
    let sessions = store.read(query::sessions).await.unwrap();
    let failed = sessions.iter().find(|s| s.attempt == 1).unwrap();
    assert_eq!(
        failed.status,
        SessionStatus::Lost,
        "lost with its server, not failed"
    );
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("cannot reach"),
        "{:?}",
        failed.last_error
    );
    // The task never failed: it was ready again at once, saying its run was lost (it said
    // "failed", then "automatic retry", for an attempt that spent no retry).
    let task_moves: Vec<(ocio::domain::TaskStatus, String)> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Transition(t) => match &t.transition {
                ocio::domain::Transition::Task { to, .. } => Some((*to, t.cause.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(
        task_moves
            .iter()
            .all(|(to, _)| *to != ocio::domain::TaskStatus::Failed),
        "{task_moves:#?}"
    );
    assert!(
        task_moves
            .iter()
            .any(|(to, cause)| *to == ocio::domain::TaskStatus::Ready
                && cause.starts_with("its run was lost (")
                && cause.contains("spends no retries")),
        "{task_moves:#?}"
    );
}

#[tokio::test]
async fn agents_are_probed_drained_added_and_removed_at_runtime() {
    use ocio::opencode::client::{Client, ClientOptions};
    use ocio::opencode::runner::OpencodeRunner;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        ClientOptions {
            retries: 0,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let dead = AgentSpec {
        agent: Agent::new(AgentName::new("dead").unwrap(), Backend::Simulated, 2),
        runner: OpencodeRunner::new(client, None, None),
    };
    let fast = EngineOptions {
        health_every: Duration::from_millis(100),
        ..options()
    };
    let engine = EngineHandle::start(
        store.clone(),
        vec![dead, support::sim_agent("sim", 2, &[], 10, 0.0)],
        fast,
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    // The probe finds the dead server and takes its agent offline.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let EngineEvent::Transition(e) = event
            && let Transition::Agent {
                name,
                to: AgentStatus::Offline,
                ..
            } = &e.transition
        {
            assert_eq!(name.as_str(), "dead");
            assert!(e.cause.contains("cannot reach"), "{}", e.cause);
            break;
        }
    }
    engine.drain("sim", true).await.unwrap();
    engine
        .add_agent(support::sim_agent("late", 1, &[], 10, 0.0))
        .await
        .unwrap();
    assert!(matches!(
        engine
            .add_agent(support::sim_agent("late", 1, &[], 10, 0.0))
            .await,
        Err(EngineError::DuplicateAgent(_))
    ));
    engine
        .submit_plan(plan(
            dir.path(),
            "name = \"x\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n",
        ))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished { ok: true, .. }
    ));
    let agents: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Dispatched { agent, .. } => Some(agent.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        agents,
        vec!["late".to_string()],
        "the drained and the offline agent took nothing"
    );
    engine.remove_agent("late").await.unwrap();
    assert!(matches!(
        engine.remove_agent("late").await,
        Err(EngineError::UnknownAgent(_))
    ));
    let names: Vec<String> = engine
        .snapshot()
        .await
        .unwrap()
        .agents
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    assert_eq!(names, vec!["dead".to_string(), "sim".to_string()]);
    let stored = store.read(query::agents).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .find(|a| a.name.as_str() == "sim")
            .unwrap()
            .status,
        AgentStatus::Draining
    );
    assert!(!stored.iter().any(|a| a.name.as_str() == "late"));
}

#[tokio::test]
async fn pause_holds_new_work_across_a_restart_and_front_ends_see_sessions_and_activity() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 4, &[], 60, 0.0)],
        options(),
    )
    .await
    .unwrap();
    engine.pause(true).await.unwrap();
    let plan_id = engine.submit_plan(plan(dir.path(), DIAMOND)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let snapshot = engine.snapshot().await.unwrap();
    assert!(snapshot.paused);
    assert_eq!(snapshot.running, 0, "nothing starts while paused");
    assert!(snapshot.sessions.is_empty());
    let view = snapshot.plans.iter().find(|p| p.id == plan_id).unwrap();
    assert_eq!(view.tasks[0].status, TaskStatus::Ready);

    // Paused survives a restart.
    engine.shutdown().await.unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 4, &[], 60, 0.0)],
        options(),
    )
    .await
    .unwrap();
    assert!(engine.snapshot().await.unwrap().paused);
    let mut events = engine.subscribe();
    engine.pause(false).await.unwrap();

    // While `a` runs: the snapshot shows its session, with activity from the runner.
    let session = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("no activity")
            .unwrap()
        {
            EngineEvent::Activity { session, .. } => break session,
            _ => continue,
        }
    };
    let snapshot = engine.snapshot().await.unwrap();
    assert!(!snapshot.paused);
    let running = snapshot
        .sessions
        .iter()
        .find(|s| s.session.id == session)
        .unwrap();
    assert_eq!(running.task, "a");
    assert_eq!(running.session.status, SessionStatus::Running);
    assert!(running.last.is_some());
    let view = snapshot.plans.iter().find(|p| p.id == plan_id).unwrap();
    assert_eq!(view.tasks[0].session, Some(session));

    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished { ok: true, .. }
    ));
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.sessions.len(), 4, "every ended session is listed");
    assert!(
        snapshot
            .sessions
            .iter()
            .all(|s| s.session.status == SessionStatus::Completed)
    );
    assert_eq!(snapshot.usage.input_tokens, 4 * 1000);
    // The transcript: a text, one tool call (its running entry replaced by completed), a
    // step, the result.
    let transcript = engine.transcript(session).await.unwrap();
    let kinds: Vec<String> = transcript.iter().map(|e| e.activity.summary()).collect();
    assert_eq!(transcript.len(), 4, "{kinds:?}");
    assert!(kinds[1].starts_with("edit completed"), "{kinds:?}");
    assert_eq!(kinds[3], "simulated result of a");
    // Checkpoints: the prompt sent, each step (with its usage), the result.
    let checkpoints = store
        .read(move |txn| query::checkpoints(txn, session))
        .await
        .unwrap();
    let kinds: Vec<String> = checkpoints
        .iter()
        .map(|c| {
            serde_json::to_value(c.kind)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["prompt-sent", "step", "result"], "{checkpoints:#?}");
    assert_eq!(checkpoints[1].data["usage"]["input_tokens"], 500);
    engine.shutdown().await.unwrap();

    // A new engine lists the sessions of the last one.
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 4, &[], 60, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.sessions.len(), 4);
    assert_eq!(snapshot.usage.input_tokens, 4 * 1000);
    assert_eq!(snapshot.sessions[0].task, "d", "newest first");
    // Its transcript is the one the last engine kept: durable, entry for entry.
    let after = engine.transcript(session).await.unwrap();
    assert_eq!(
        after, transcript,
        "the stored transcript outlives the engine"
    );
    // And what each did last shows in the sessions table, as before the restart.
    let listed = snapshot
        .sessions
        .iter()
        .find(|s| s.session.id == session)
        .unwrap();
    assert_eq!(listed.last.as_ref(), transcript.last(), "{listed:#?}");
    assert!(snapshot.sessions.iter().all(|s| s.last.is_some()));
    engine.shutdown().await.unwrap();
}

/// A session whose run did not survive a restart is listed lost with what it did last (it
/// showed nothing: an empty LAST beside "lost" told the operator nothing of where it stopped).
#[tokio::test]
async fn a_session_lost_to_a_restart_shows_what_it_did_last() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"lost\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n";
    let store = open(dir.path());
    let slow = || vec![support::sim_agent("sim", 1, &[], 60_000, 0.0)];
    let engine = EngineHandle::start(store.clone(), slow(), options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    let session = loop {
        if let EngineEvent::Activity { session, .. } = events.recv().await.unwrap() {
            break session;
        }
    };
    let before = engine.transcript(session).await.unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;

    let store = open(dir.path());
    let engine = EngineHandle::start(store.clone(), slow(), options())
        .await
        .unwrap();
    let snapshot = engine.snapshot().await.unwrap();
    let lost = snapshot
        .sessions
        .iter()
        .find(|s| s.session.id == session)
        .unwrap();
    assert_eq!(lost.session.status, SessionStatus::Lost);
    assert!(lost.last.is_some(), "{lost:#?}");
    assert_eq!(lost.last.as_ref(), before.last(), "{before:#?}");
    engine.shutdown().await.unwrap();
    store.close().await;
}

/// A session whose newest transcript entry cannot be read (written by a newer ocio, or
/// damaged) is listed without its LAST; the engine starts all the same (reading what each
/// session did last at start must never keep it from starting).
#[tokio::test]
async fn an_unreadable_transcript_entry_does_not_keep_the_engine_from_starting() {
    use ocio::domain::{Session, SessionId, SessionKind};
    use ocio::store::Batch;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let now = jiff::Timestamp::now();
    let mut session = Session::new(SessionId::generate(), "p/t #1", SessionKind::Code, now);
    let mut batch = Batch::new();
    for to in [
        SessionStatus::Queued,
        SessionStatus::Starting,
        SessionStatus::Running,
        SessionStatus::Completed,
    ] {
        batch.append_event(&session.transition(to, "seed", now).unwrap());
    }
    batch.put_session(&session);
    let newer = serde_json::json!({
        "at": now, "part": "p1", "activity": { "kind": "hologram", "beams": 3 }
    });
    batch.put_transcript(session.id, Some("p1"), &newer, u64::MAX);
    let seeding = store.clone();
    tokio::task::spawn_blocking(move || seeding.commit_blocking(batch))
        .await
        .unwrap()
        .unwrap();
    let engine = EngineHandle::start(store.clone(), Vec::new(), options())
        .await
        .expect("the engine starts");
    let snapshot = engine.snapshot().await.unwrap();
    let listed = snapshot
        .sessions
        .iter()
        .find(|s| s.session.id == session.id)
        .unwrap();
    assert!(listed.last.is_none(), "{listed:#?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_snapshot_lists_plans_with_work_to_come_and_the_newest_fifty_that_ended() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 8, &[], 0, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let mut ids = Vec::new();
    for n in 0..55 {
        let text =
            format!("name = \"p{n}\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\n");
        ids.push(engine.submit_plan(plan(dir.path(), &text)).await.unwrap());
        support::until_finished(&mut events, PATIENCE).await;
    }
    engine.pause(true).await.unwrap();
    let waiting = engine.submit_plan(plan(dir.path(), DIAMOND)).await.unwrap();
    let shown: Vec<_> = engine
        .snapshot()
        .await
        .unwrap()
        .plans
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(shown.len(), 51, "fifty ended plans and the one waiting");
    assert_eq!(shown[..50], ids[5..], "the newest that ended, oldest first");
    assert_eq!(shown[50], waiting);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_repo_deleted_between_load_and_submit_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 1, &[], 10, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let text = "name = \"x\"\nrepo = \"project\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n";
    let loaded = plan(dir.path(), text);
    std::fs::remove_dir(&project).unwrap();
    let err = engine.submit_plan(loaded).await.unwrap_err();
    assert!(matches!(err, EngineError::Plan(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("plan.toml:2:8") && message.contains("project"),
        "{message}"
    );
    assert!(store.read(query::plans).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stop_that_was_asked_for_is_not_reported_as_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 1, &[], 20, 0.0)],
        options(),
    )
    .await
    .unwrap();
    engine.shutdown().await.unwrap();
    // Let the engine's loop end and let go of its side of the failure watch.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let failed = tokio::time::timeout(Duration::from_millis(500), engine.failed()).await;
    assert!(
        failed.is_err(),
        "a clean stop must not read as a failure: {failed:?}"
    );
}

#[tokio::test]
async fn a_store_that_fails_under_a_request_is_named_as_why_the_engine_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 1, &[], 20, 0.0)],
        options(),
    )
    .await
    .unwrap();
    // Whatever the engine writes next fails.
    store.clone().close().await;
    let refused = engine.pause(true).await.unwrap_err();
    assert!(refused.message.contains("closed"), "{refused:?}");
    let why = tokio::time::timeout(PATIENCE, engine.failed())
        .await
        .unwrap();
    assert!(
        why.contains("the store has been closed"),
        "the engine must say the store failed, not only that it stopped: {why}"
    );
}

/// The room follows the engine by a snapshot and the events after it: an agent removed while
/// it watches leaves its list, as it leaves the engine's.
#[tokio::test]
async fn a_removed_agent_leaves_a_room_that_follows_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![
            support::sim_agent("stays", 1, &[], 20, 0.0),
            support::sim_agent("goes", 1, &[], 20, 0.0),
        ],
        options(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let mut view = ocio::tui::view::View::default();
    view.apply_snapshot(engine.snapshot().await.unwrap());
    engine.remove_agent("goes").await.unwrap();
    let truth = engine.snapshot().await.unwrap();
    while let Ok(Ok(told)) = tokio::time::timeout(Duration::from_millis(300), events.next()).await {
        view.receive(told);
    }
    let names = |agents: &[ocio::domain::Agent]| -> Vec<String> {
        agents.iter().map(|a| a.name.to_string()).collect()
    };
    assert_eq!(names(&truth.agents), ["stays"]);
    assert_eq!(names(&view.agents), names(&truth.agents));
}

/// The room's token counts follow the engine's: a snapshot plus the events after it give the
/// same totals as a snapshot taken at the end, per session and in all. (A session's end counts
/// calls its steps did not tell: the room kept the last step's count, half the truth here.)
#[tokio::test]
async fn a_room_that_follows_the_events_counts_the_tokens_the_engine_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 2, &[], 150, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let mut view = ocio::tui::view::View::default();
    view.apply_snapshot(engine.snapshot().await.unwrap());
    let text = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n[[tasks]]\nid = \"b\"\nprompt = \"b\"\n[[tasks]]\nid = \"c\"\nneeds = [\"a\"]\nprompt = \"c\"\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    loop {
        let told = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("the plan finished in time")
            .unwrap();
        let finished = matches!(told.event, EngineEvent::PlanFinished { .. });
        view.receive(told);
        if finished {
            break;
        }
    }
    let truth = engine.snapshot().await.unwrap();
    assert_eq!(
        truth.usage.total_tokens(),
        3 * 1200,
        "the engine counts every call"
    );
    assert_eq!(view.usage.total_tokens(), truth.usage.total_tokens());
    assert_eq!(view.sessions.len(), 3);
    for seen in &view.sessions {
        let known = truth
            .sessions
            .iter()
            .find(|s| s.session.id == seen.session.id)
            .unwrap();
        assert_eq!(seen.session.usage, known.session.usage, "{}", seen.task);
    }
    engine.shutdown().await.unwrap();
}

/// A session's stored transcript is kept under `transcript_cap`: its oldest entries are cut
/// and the transcript says so where they were, naming the setting.
#[tokio::test]
async fn a_transcript_over_its_cap_says_where_it_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let capped = EngineOptions {
        transcript_cap: 300,
        ..options()
    };
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 1, &[], 0, 0.0)],
        capped,
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let text = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"go\"\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    support::until_finished(&mut events, PATIENCE).await;
    let session = store.read(query::sessions).await.unwrap()[0].id;
    let transcript = engine.transcript(session).await.unwrap();
    let first = transcript[0].activity.summary();
    assert!(
        first.contains("earlier entries") && first.contains("cut here"),
        "{transcript:#?}"
    );
    assert!(first.contains("[engine] transcript_cap"), "{first}");
    assert_eq!(
        transcript.last().unwrap().activity.summary(),
        "simulated result of a",
        "the newest entries are kept"
    );
    engine.shutdown().await.unwrap();
}

/// `transcript_retention`: a starting engine removes the transcripts of sessions that ended
/// longer ago; a younger one is kept.
#[tokio::test]
async fn a_starting_engine_removes_transcripts_past_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = || vec![support::sim_agent("sim", 1, &[], 0, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents(), options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let text = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"go\"\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    support::until_finished(&mut events, PATIENCE).await;
    let session = store.read(query::sessions).await.unwrap()[0].id;
    let stored = engine.transcript(session).await.unwrap();
    assert!(!stored.is_empty());
    engine.shutdown().await.unwrap();

    let keep = EngineOptions {
        transcript_retention: Some(SignedDuration::from_hours(1)),
        ..options()
    };
    let engine = EngineHandle::start(store.clone(), agents(), keep)
        .await
        .unwrap();
    assert_eq!(engine.transcript(session).await.unwrap(), stored);
    engine.shutdown().await.unwrap();

    tokio::time::sleep(Duration::from_millis(50)).await;
    let prune = EngineOptions {
        transcript_retention: Some(SignedDuration::from_millis(10)),
        ..options()
    };
    let engine = EngineHandle::start(store.clone(), agents(), prune)
        .await
        .unwrap();
    assert!(engine.transcript(session).await.unwrap().is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_engine_searches_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![support::sim_agent("sim", 2, &[], 20, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let text = "name = \"zoo\"\nrepo = \".\"\n[[tasks]]\nid = \"okapi\"\nprompt = \"p\"\n";
    engine.submit_plan(plan(dir.path(), text)).await.unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(event, EngineEvent::PlanFinished { .. }) {
            break;
        }
    }
    let query = ocio::store::SearchQuery {
        text: "OKAPI".into(),
        ..Default::default()
    };
    let found = engine.search(query).await.unwrap();
    assert!(!found.is_empty(), "the task's session or events name it");
    assert!(found.iter().all(|f| f.plan.is_some()), "{found:#?}");
    let none = ocio::store::SearchQuery {
        text: "elephant".into(),
        ..Default::default()
    };
    assert!(engine.search(none).await.unwrap().is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn what_a_run_said_before_it_ended_is_taken_before_its_end() {
    // Runs that report their last step and end at once: the step must still be checkpointed
    // (its run is still running when it is taken), however the engine's loop picks among the
    // reports and the ends that are waiting for it.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::sim_agent("sim", 24, &[], 0, 0.0)],
        options(),
    )
    .await
    .unwrap();
    let mut text = String::from("name = \"burst\"\nrepo = \".\"\n");
    for n in 0..24 {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{n}\"\nprompt = \"task {n}\"\n"
        ));
    }
    let mut events = engine.subscribe();
    engine.submit_plan(plan(dir.path(), &text)).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished { ok: true, .. }
    ));
    let sessions: Vec<_> = engine
        .snapshot()
        .await
        .unwrap()
        .sessions
        .iter()
        .map(|s| s.session.id)
        .collect();
    assert_eq!(sessions.len(), 24, "{seen:?}");
    let mut missing = Vec::new();
    for session in sessions {
        let checkpoints = store
            .read(move |txn| query::checkpoints(txn, session))
            .await
            .unwrap();
        let kinds: Vec<String> = checkpoints
            .iter()
            .map(|c| {
                serde_json::to_value(c.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if kinds != ["prompt-sent", "step", "result"] {
            missing.push(kinds);
        }
    }
    assert!(
        missing.is_empty(),
        "runs whose step was taken after their end: {missing:?}"
    );
    engine.shutdown().await.unwrap();
}
