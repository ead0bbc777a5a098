//! Finished plans after a restart: the engine loads only the plans with work to come and the
//! newest fifty that ended; an older plan is read back from the store when the operator asks
//! about it or retries one of its tasks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ocio::engine::EngineApi;
use std::path::Path;
use std::time::Duration;

use jiff::SignedDuration;
use ocio::domain::{PlanId, TaskStatus};
use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
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

/// `a` completes on agent `good`; `b` fails on agent `bad` (no retry), so the plan ends.
const OLD: &str = r#"
name = "old"
repo = "."
[[tasks]]
id = "a"
prompt = "first"
agent = "good"
[[tasks]]
id = "b"
prompt = "second"
agent = "bad"
"#;

/// Runs the plan `OLD` (which ends with `b` failed), then 50 plans after it, and stops. Gives
/// the old plan's id.
async fn history(dir: &Path) -> PlanId {
    let store = open(dir);
    let agents = vec![
        support::sim_agent("good", 8, &[], 0, 0.0),
        support::sim_agent("bad", 8, &[], 0, 1.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let old = engine.submit_plan(plan(dir, OLD)).await.unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                done: 1,
                failed: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    for n in 0..50 {
        let text = format!(
            "name = \"p{n}\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\nagent = \"good\"\n"
        );
        engine.submit_plan(plan(dir, &text)).await.unwrap();
        support::until_finished(&mut events, PATIENCE).await;
    }
    engine.shutdown().await.unwrap();
    store.close().await;
    old
}

/// A restarted engine whose agents all succeed now.
async fn restart(dir: &Path) -> (StoreHandle, EngineHandle) {
    let store = open(dir);
    let agents = vec![
        support::sim_agent("good", 8, &[], 0, 0.0),
        support::sim_agent("bad", 8, &[], 0, 0.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    (store, engine)
}

async fn shown(engine: &EngineHandle) -> Vec<PlanId> {
    let snapshot = engine.snapshot().await.unwrap();
    snapshot.plans.iter().map(|p| p.id).collect()
}

#[tokio::test]
async fn a_retry_in_a_finished_plan_not_loaded_at_start_reopens_it_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let old = history(dir.path()).await;
    let (store, engine) = restart(dir.path()).await;
    let before = shown(&engine).await;
    assert_eq!(before.len(), 50, "the newest fifty that ended");
    assert!(!before.contains(&old), "the old plan stays in the store");

    let tasks = store.read(query::tasks).await.unwrap();
    let failed = tasks
        .iter()
        .find(|t| t.plan == old && t.key == "b")
        .unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    let mut events = engine.subscribe();
    engine.retry(failed.id).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            EngineEvent::Dispatched { plan, key, attempt: 2, .. } if *plan == old && key == "b"
        )),
        "the retried task ran again: {seen:?}"
    );
    assert!(
        matches!(finished, EngineEvent::PlanFinished { plan, ok: true, done: 2, .. } if plan == old),
        "{finished:?}"
    );
    let retried = store
        .read({
            let id = failed.id;
            move |txn| query::task(txn, id)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retried.status, retried.attempts), (TaskStatus::Done, 2));
    assert_eq!(
        shown(&engine).await,
        before,
        "once its work is over again, the old plan is let go: the newest fifty are listed"
    );

    // A retry of a task the store does not know is refused as before.
    let unknown = ocio::domain::TaskId::generate();
    assert!(engine.retry(unknown).await.is_err());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_context_of_an_old_plan_is_read_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = history(dir.path()).await;
    let (_store, engine) = restart(dir.path()).await;
    assert!(!shown(&engine).await.contains(&old), "not loaded at start");
    let context = engine.context(old).await.unwrap();
    let keys: Vec<&str> = context.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        ["a"],
        "what the completed task left (the failed one left nothing)"
    );
    assert!(context[0].summary.is_some());
    assert!(
        !shown(&engine).await.contains(&old),
        "asking did not load it"
    );
    assert!(engine.context(PlanId::generate()).await.is_err());
    engine.shutdown().await.unwrap();
}

/// A merge conflict parked for the operator stays in the conflicts queue however many plans
/// end after its own, while the engine runs and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_conflict_stays_listed_behind_fifty_newer_plans_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let repo = support::TestRepo::new();
    let store = open(dir.path());
    let agents = vec![
        support::sim_agent("good", 8, &[], 0, 0.0),
        support::sim_agent("racer", 2, &["race"], 500, 0.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let race = format!(
        "name = \"race\"\nrepo = {:?}\nconflicts = \"manual\"\n[[tasks]]\nid = \"one\"\ncapabilities = [\"race\"]\nprompt = 'SIM-WRITE shared.txt one'\n[[tasks]]\nid = \"two\"\ncapabilities = [\"race\"]\nprompt = 'SIM-WRITE shared.txt two'\n",
        repo.dir_str()
    );
    engine.submit_plan(plan(dir.path(), &race)).await.unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                done: 1,
                failed: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    assert_eq!(engine.snapshot().await.unwrap().conflicts.len(), 1);
    for n in 0..51 {
        let text = format!(
            "name = \"p{n}\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\nagent = \"good\"\n"
        );
        engine.submit_plan(plan(dir.path(), &text)).await.unwrap();
        support::until_finished(&mut events, PATIENCE).await;
    }
    let conflicts = engine.snapshot().await.unwrap().conflicts;
    assert_eq!(conflicts.len(), 1, "still listed while the engine runs");
    engine.shutdown().await.unwrap();
    store.close().await;

    let (_store, engine) = restart(dir.path()).await;
    let after = engine.snapshot().await.unwrap().conflicts;
    assert_eq!(after.len(), 1, "and after a restart");
    assert_eq!(after[0].key, conflicts[0].key);
    engine.shutdown().await.unwrap();
}

/// Sixty plans of five tasks, one after another: what the engine keeps in memory for them
/// stays with the plans it keeps loaded (those with work to come and the newest fifty that
/// ended), not with everything it ever ran.
#[tokio::test]
async fn what_the_engine_keeps_for_finished_work_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![support::sim_agent("good", 8, &[], 0, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    for n in 0..60 {
        let mut text = format!("name = \"p{n}\"\nrepo = \".\"\n");
        for t in 0..5 {
            text.push_str(&format!("[[tasks]]\nid = \"t{t}\"\nprompt = \"x\"\n"));
        }
        engine.submit_plan(plan(dir.path(), &text)).await.unwrap();
        let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
        assert!(
            matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
            "{finished:?}"
        );
    }
    let kept = engine.footprint().await.unwrap();
    assert_eq!((kept.plans, kept.tasks), (50, 250), "{kept:?}");
    assert!(
        kept.contexts <= kept.tasks && kept.latest_sessions <= kept.tasks,
        "per-task entries of plans no longer loaded: {kept:?}"
    );
    // The sessions table keeps the newest 500 ended sessions, transcripts the newest 64.
    assert!(
        kept.recent_sessions <= 500 && kept.transcripts <= 64,
        "{kept:?}"
    );
    assert_eq!((kept.retries, kept.running), (0, 0), "{kept:?}");
    engine.shutdown().await.unwrap();
    store.close().await;
}

/// What the engine told besides transitions (a plan taken in, its sessions dispatched, its
/// end) is kept: an engine started later, and so a control room opened on it, tells the past
/// as it was told, in order. Only state transitions were kept; the events pane of a room
/// opened after a restart had lost every other line.
#[tokio::test]
async fn what_was_told_besides_transitions_is_there_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = history(dir.path()).await;
    let (store, engine) = restart(dir.path()).await;
    let notes = engine.notes(10_000).await.unwrap();
    let submitted = notes
        .iter()
        .position(|n| matches!(&n.event, EngineEvent::PlanSubmitted { plan, .. } if *plan == old))
        .expect("the old plan's submission is kept");
    let dispatched = notes
        .iter()
        .position(|n| matches!(&n.event, EngineEvent::Dispatched { plan, key, .. } if *plan == old && key == "a"))
        .expect("its dispatch is kept");
    let finished = notes
        .iter()
        .position(|n| {
            matches!(&n.event, EngineEvent::PlanFinished { plan, done: 1, failed: 1, .. } if *plan == old)
        })
        .expect("its end is kept");
    assert!(submitted < dispatched && dispatched < finished);
    assert!(
        notes.windows(2).all(|w| w[0].at <= w[1].at),
        "in the order told"
    );
    let ends = notes
        .iter()
        .filter(|n| matches!(n.event, EngineEvent::PlanFinished { .. }))
        .count();
    assert_eq!(
        ends, 51,
        "every plan's end, the last told as the engine stopped"
    );
    assert!(
        notes.iter().all(|n| !matches!(
            n.event,
            EngineEvent::Transition(_) | EngineEvent::Activity { .. }
        )),
        "transitions are in the control log, a session's work in its transcript"
    );
    let newest = engine.notes(3).await.unwrap();
    assert_eq!(newest.len(), 3);
    assert!(matches!(newest[2].event, EngineEvent::PlanFinished { .. }));
    engine.shutdown().await.unwrap();
    store.close().await;
}
