//! Durable transcripts against a real `opencode serve` driven by the scripted model, one server
//! for both rounds: a finished session's transcript (its text and tool calls) is printed by
//! `ocio logs` after the engine that ran it has stopped; a session that went on while ocio was
//! down is re-attached and its transcript backfilled from its server, without duplicates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ocio::engine::{Activity, EngineApi, EngineEvent, EngineHandle, Entry};
use ocio::scripted::{self, Rule, Script, Turn};
use ocio::store::{Store, StoreHandle, StoreOptions, query};
use support::home::{Engine, Home, stderr, stdout};
use support::{TestRepo, TestServer};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_outlive_the_engine_and_are_backfilled_after_a_restart() {
    let script = Script::new()
        .rule(
            Rule::when("write hello")
                .turn(Turn::write("hello.txt", "hello\n").usage(100, 10))
                .turn(Turn::text("Wrote the greeting.\nhello done").usage(200, 20)),
        )
        .rule(
            Rule::when("slow work")
                .turn(
                    Turn::write("slow.txt", "slow\n")
                        .delay_ms(2000)
                        .usage(300, 30),
                )
                .turn(Turn::text("slow done").usage(400, 40)),
        )
        .rule(
            Rule::when("long work")
                .turn(Turn::write("long.txt", "long\n").usage(300, 30))
                .turn(Turn::text("long done").delay_ms(4000).usage(400, 40)),
        );
    let server = TestServer::start(script).await;
    logs_of_an_old_session_after_the_engine_stopped(&server);
    a_reattached_session_is_backfilled_without_duplicates(&server).await;
    a_session_reattached_while_it_works_keeps_its_times(&server).await;
    server.stop().await;
}

/// `ocio run` runs the task to its end and exits; `ocio logs` (no engine) prints what the
/// session did: the prompt, the tool call with its file, the answer.
fn logs_of_an_old_session_after_the_engine_stopped(server: &TestServer) {
    let repo = TestRepo::new();
    let home = Home::new();
    home.write_config(&format!(
        "[[agents]]\nname = \"box\"\nurl = {:?}\nmodel = \"{}/{}\"\n",
        server.url(),
        scripted::PROVIDER_ID,
        scripted::MODEL_ID
    ));
    let plan = home.write_plan(
        "hello.toml",
        &format!(
            "name = \"hello\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"greet\"\nprompt = \"write hello\"\n",
            repo.dir_str()
        ),
    );
    let run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    let (code, _, err) = run.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(!home.socket().exists(), "no engine runs now");

    let out = home.ocio(&["logs", "hello/greet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("write hello"), "the prompt: {text}");
    assert!(
        text.contains("write completed") && text.contains("hello.txt"),
        "the tool call, its file and final state: {text}"
    );
    assert!(text.contains("hello done"), "the answer: {text}");
    assert!(text.contains("step done"), "the steps: {text}");
    let logs = home.json(&["logs", "greet", "--json"]);
    assert_eq!(logs["source"], "database");
    let entries: Vec<Entry> = serde_json::from_value(logs["entries"].clone()).unwrap();
    assert_unique_parts(&entries);
}

/// The engine stops while the session's model is still working; the session finishes on its
/// server meanwhile. The next engine re-attaches it: the transcript holds what happened while
/// ocio was down, each part once, and a further restart adds nothing.
async fn a_reattached_session_is_backfilled_without_duplicates(server: &TestServer) {
    let (repo, state, store, engine) = one_task_started(server, "slow", "slow work").await;
    let db = state.path().join("ocio.redb");
    let agents = || vec![support::scripted_agent(server.client())];
    let asked = server.model.requests().len();
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.model.requests().len() == asked {
        assert!(tokio::time::Instant::now() < deadline, "never prompted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let session = store.read(query::sessions).await.unwrap()[0].id;
    let before = engine.transcript(session).await.unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;
    let stopped = jiff::Timestamp::now();
    assert!(
        !before
            .iter()
            .any(|e| e.activity.summary().contains("slow done")),
        "stopped before the answer: {before:#?}"
    );

    // The session finishes while no ocio follows it.
    let client = server.client();
    let dir = repo.dir_str();
    let deadline = tokio::time::Instant::now() + WAIT;
    while repo.read("slow.txt").is_none() || !client.session_status(&dir).await.unwrap().is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store.clone(), agents(), Default::default())
        .await
        .unwrap();
    // A front end knows what the session spent before the restart: from its first snapshot, or
    // told as the session is re-attached (its tokens showed 0 until its transcript was read).
    let mut events = engine.subscribe();
    let snapshot = engine.snapshot().await.unwrap();
    let spent = |s: &ocio::engine::Snapshot| {
        s.sessions
            .iter()
            .find(|v| v.session.id == session)
            .map_or(0, |v| v.session.usage.total_tokens())
    };
    // What it did last shows from the first snapshot (it showed nothing until the backfill).
    let last = snapshot
        .sessions
        .iter()
        .find(|v| v.session.id == session)
        .and_then(|v| v.last.clone());
    assert!(last.is_some(), "{:#?}", snapshot.sessions);
    let (seen, finished) = support::until_finished(&mut events, WAIT).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let told = seen.iter().any(|e| {
        matches!(e, EngineEvent::Activity { session: s, entry }
            if *s == session && matches!(&entry.activity, ocio::engine::Activity::Step { usage } if usage.total_tokens() > 0))
    });
    assert!(
        spent(&snapshot) > 0 || told,
        "a front end was never told what the re-attached session spent"
    );
    let after = engine.transcript(session).await.unwrap();
    let summaries: Vec<String> = after.iter().map(|e| e.activity.summary()).collect();
    assert!(
        after.iter().any(|e| matches!(&e.activity,
            Activity::Tool { tool, status, title } if tool == "write" && status == "completed" && title.contains("slow.txt"))),
        "the tool call made while ocio was down: {summaries:#?}"
    );
    let answers = summaries.iter().filter(|s| *s == "slow done").count();
    assert_eq!(answers, 1, "the answer, once: {summaries:#?}");
    let prompts = summaries.iter().filter(|s| *s == "slow work").count();
    assert_eq!(prompts, 1, "the prompt, once: {summaries:#?}");
    assert_unique_parts(&after);
    // Each entry keeps the time it happened, and they read in that order.
    let times: Vec<_> = after.iter().map(|e| (e.at, e.activity.summary())).collect();
    let prompt = after
        .iter()
        .find(|e| e.activity.summary() == "slow work")
        .unwrap();
    assert!(
        prompt.at < stopped,
        "the prompt stamped at {} (stopped at {stopped}): {times:#?}",
        prompt.at
    );
    assert!(
        times.windows(2).all(|w| w[0].0 <= w[1].0),
        "out of order: {times:#?}"
    );
    engine.shutdown().await.unwrap();
    store.close().await;

    // Read by later engines (nothing runs now): each part once, the same each time.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let store = Store::open(&db, StoreOptions::default()).unwrap();
        let engine = EngineHandle::start(store.clone(), agents(), Default::default())
            .await
            .unwrap();
        seen.push(engine.transcript(session).await.unwrap());
        engine.shutdown().await.unwrap();
        store.close().await;
    }
    assert_unique_parts(&seen[0]);
    assert_eq!(seen[0], seen[1], "nothing added by a restart");
    let parts = |entries: &[Entry]| {
        entries
            .iter()
            .filter_map(|e| e.part.clone())
            .collect::<HashSet<_>>()
    };
    assert!(
        parts(&after).is_subset(&parts(&seen[0])),
        "{after:#?}\n{:#?}",
        seen[0]
    );
    if seen[0].len() != after.len() {
        eprintln!("after: {after:#?}\nstored: {:#?}", seen[0]);
    }
}

/// A session still working when ocio stops and starts again: what it did before keeps the
/// time it happened, and the transcript reads in order (entries filled in at the restart were
/// stamped with the restart's time).
async fn a_session_reattached_while_it_works_keeps_its_times(server: &TestServer) {
    let (repo, state, store, engine) = one_task_started(server, "long", "long work").await;
    let db = state.path().join("ocio.redb");
    let agents = || vec![support::scripted_agent(server.client())];
    let deadline = tokio::time::Instant::now() + WAIT;
    while repo.read("long.txt").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never wrote");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Stopped once the first model call's step is seen (it is checkpointed as the engine
    // stops); a fixed wait let a loaded machine stop before it came, and the step then had no
    // checkpoint of its own.
    let session = store.read(query::sessions).await.unwrap()[0].id;
    loop {
        let seen = engine.transcript(session).await.unwrap();
        if seen
            .iter()
            .any(|e| matches!(e.activity, Activity::Step { .. }))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no step");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.shutdown().await.unwrap();
    store.close().await;
    let stopped = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (store, engine) = started_until_done(&db, agents()).await;
    let after = engine.transcript(session).await.unwrap();
    let times: Vec<_> = after.iter().map(|e| (e.at, e.activity.summary())).collect();
    for said in ["long work", "write completed: long.txt"] {
        let entry = after
            .iter()
            .find(|e| e.activity.summary().starts_with(said));
        let entry = entry.unwrap_or_else(|| panic!("{said}: {times:#?}"));
        assert!(
            entry.at < stopped,
            "{said} stamped after the stop ({stopped}): {times:#?}"
        );
    }
    assert!(
        times.windows(2).all(|w| w[0].0 <= w[1].0),
        "out of order: {times:#?}"
    );
    assert_unique_parts(&after);
    engine.shutdown().await.unwrap();
    store.close().await;
    // One step checkpoint a model call: none again for a step told again after the restart.
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let checkpoints = store
        .read(move |txn| query::checkpoints(txn, session))
        .await
        .unwrap();
    let steps: Vec<String> = checkpoints
        .iter()
        .filter(|c| c.kind == ocio::domain::CheckpointKind::Step)
        .map(|c| c.data.to_string())
        .collect();
    assert_eq!(steps.len(), 2, "{steps:#?}");
    store.close().await;
}

/// An engine started again on the database at `db`: once its plan finished, and well.
async fn started_until_done(
    db: &std::path::Path,
    agents: Vec<ocio::engine::AgentSpec>,
) -> (StoreHandle, EngineHandle) {
    let store = Store::open(db, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store.clone(), agents, Default::default())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let (_, finished) = support::until_finished(&mut events, WAIT).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    (store, engine)
}

/// A one-task plan `name` (prompt `prompt`, in a new repository's checkout) submitted to an
/// engine on a new database (`ocio.redb` in the state directory) with the scripted agent.
async fn one_task_started(
    server: &TestServer,
    name: &str,
    prompt: &str,
) -> (TestRepo, tempfile::TempDir, StoreHandle, EngineHandle) {
    let repo = TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let plan = state.path().join(format!("{name}.toml"));
    std::fs::write(
        &plan,
        format!(
            "name = {name:?}\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = {name:?}\nprompt = {prompt:?}\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![support::scripted_agent(server.client())];
    let engine = EngineHandle::start(store.clone(), agents, Default::default())
        .await
        .unwrap();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    (repo, state, store, engine)
}

fn assert_unique_parts(entries: &[Entry]) {
    let mut seen = HashSet::new();
    for entry in entries {
        if let Some(part) = &entry.part {
            assert!(seen.insert(part.clone()), "part {part} twice: {entries:#?}");
        }
    }
}
