//! The operator steers running sessions: a follow-up message reaches the session and its
//! answer becomes the task's result; an interrupt stops the step under way, the session waits
//! for the next message (waiting-approval), and the task does not fail. Simulated sessions
//! here; a real OpenCode server below.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use ocio::domain::{SessionId, SessionStatus};
use ocio::engine::{
    Activity, EngineApi, EngineEvent, EngineHandle, EngineOptions, ErrorKind, Subscription,
};
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreOptions, query};

const PATIENCE: Duration = Duration::from_secs(60);

async fn next(events: &mut Subscription, wanted: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
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

async fn dispatched(events: &mut Subscription) -> SessionId {
    match next(events, |e| matches!(e, EngineEvent::Dispatched { .. })).await {
        EngineEvent::Dispatched { session, .. } => session,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_simulated_session_is_told_interrupted_and_told_again_and_its_task_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    // Runs of 3 s: long enough to be steered.
    let agent = support::sim_agent("sim", 1, &[], 3000, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let path = dir.path().join("plan.toml");
    std::fs::write(
        &path,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"work\"\nprompt = \"work\"\n",
    )
    .unwrap();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let session = dispatched(&mut events).await;

    let empty = engine.say(session, "  ").await.unwrap_err();
    assert_eq!(empty.kind, ErrorKind::Invalid, "{}", empty.message);
    engine.say(session, "use blue").await.unwrap();
    engine.interrupt(session).await.unwrap();
    let waiting = next(&mut events, |e| {
        matches!(e, EngineEvent::Transition(t) if t.cause.starts_with("interrupted by the operator"))
    })
    .await;
    let EngineEvent::Transition(waiting) = waiting else {
        unreachable!()
    };
    assert!(matches!(
        waiting.transition,
        ocio::domain::Transition::Session {
            to: SessionStatus::WaitingApproval,
            ..
        }
    ));
    // Interrupted, it waits however long its run would have taken.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions[0].status, SessionStatus::WaitingApproval);
    engine.say(session, "now finish").await.unwrap();
    let resumed = next(
        &mut events,
        |e| matches!(e, EngineEvent::Transition(t) if t.cause == "the operator says: now finish"),
    )
    .await;
    assert!(matches!(resumed, EngineEvent::Transition(_)));
    let finished = next(&mut events, |e| {
        matches!(e, EngineEvent::PlanFinished { .. })
    })
    .await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );

    let tasks = store.read(query::tasks).await.unwrap();
    let result = tasks[0].result.clone().unwrap();
    assert!(
        result.contains("steered: use blue") && result.contains("steered: now finish"),
        "{result}"
    );
    let transcript = engine.transcript(session).await.unwrap();
    let notes: Vec<String> = transcript
        .iter()
        .filter_map(|e| match &e.activity {
            Activity::Note { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        [
            "operator: use blue",
            "operator: interrupt",
            "operator: now finish"
        ],
        "in the transcript"
    );
    let checkpoints = store
        .read(move |txn| query::checkpoints(txn, session))
        .await
        .unwrap();
    let said: Vec<String> = checkpoints
        .iter()
        .filter_map(|c| {
            c.data
                .get("operator")
                .and_then(|v| v.as_str())
                .map(String::from)
        })
        .collect();
    assert_eq!(said, ["use blue", "interrupt", "now finish"], "durable");

    let over = engine.say(session, "too late").await.unwrap_err();
    assert_eq!(over.kind, ErrorKind::NotNow);
    assert!(over.message.contains("is not running"), "{}", over.message);
    engine.shutdown().await.unwrap();
}

/// Against a real OpenCode server: a message sent while the session works on its prompt is
/// queued on the same remote session, and the task's result is the answer to it; an interrupt
/// aborts the step under way (the model call is cut), the session waits, and the next message
/// gets the answer that ends the task, which succeeds at its first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_session_is_told_more_and_interrupted_without_failing_its_task() {
    use ocio::scripted::{Rule, Script, Turn};

    let script = Script::new()
        .rule(Rule::when("long job").turn(Turn::text("long done").delay_ms(3000)))
        .rule(Rule::when("also add tests").turn(Turn::text("tests added")))
        .rule(Rule::when("stuck job").turn(Turn::text("never").delay_ms(120_000)))
        .rule(Rule::when("do it quickly").turn(Turn::text("quick answer")));
    let server = support::TestServer::start(script).await;
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        EngineOptions::default(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let calls = |text: &str| {
        server
            .model
            .requests()
            .into_iter()
            .filter(|r| {
                r.side_job.is_none()
                    && r.last_user_text
                        .as_deref()
                        .is_some_and(|t| t.contains(text))
            })
            .count()
    };
    for (key, prompt, word, answer) in [
        ("told", "long job", "also add tests", "tests added"),
        ("interrupted", "stuck job", "do it quickly", "quick answer"),
    ] {
        let plan = state.path().join(format!("{key}.toml"));
        std::fs::write(
            &plan,
            format!(
                "name = \"{key}\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"{key}\"\nprompt = \"{prompt}\"\n",
                repo.dir_str()
            ),
        )
        .unwrap();
        engine
            .submit_plan(PlanFile::load(&plan).unwrap())
            .await
            .unwrap();
        let session = dispatched(&mut events).await;
        let deadline = std::time::Instant::now() + PATIENCE;
        while calls(prompt) == 0 {
            assert!(std::time::Instant::now() < deadline, "never prompted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if key == "interrupted" {
            engine.interrupt(session).await.unwrap();
            next(&mut events, |e| {
                matches!(e, EngineEvent::Transition(t) if t.cause.starts_with("interrupted by the operator"))
            })
            .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let sessions = store.read(query::sessions).await.unwrap();
            let waiting = sessions.iter().find(|s| s.id == session).unwrap();
            assert_eq!(
                waiting.status,
                SessionStatus::WaitingApproval,
                "waits for the operator"
            );
        }
        engine.say(session, word).await.unwrap();
        let finished = next(&mut events, |e| {
            matches!(e, EngineEvent::PlanFinished { .. })
        })
        .await;
        assert!(
            matches!(
                finished,
                EngineEvent::PlanFinished {
                    ok: true,
                    done: 1,
                    ..
                }
            ),
            "{key}: {finished:?}"
        );
        let tasks = store.read(query::tasks).await.unwrap();
        let task = tasks.iter().find(|t| t.key == key).unwrap();
        assert_eq!(task.result.as_deref(), Some(answer), "{key}");
        assert_eq!(task.attempts, 1, "{key}: not failed, not run again");
        assert_eq!(calls(word), 1, "{key}: the message was sent once");
        assert_eq!(calls(prompt), 1, "{key}: the prompt was sent once");
        // The operator's word is in the transcript once, as theirs (the server's copy of the
        // message was told again as the session's own text).
        let transcript = engine.transcript(session).await.unwrap();
        let lines: Vec<String> = transcript.iter().map(|e| e.activity.summary()).collect();
        let mentions = lines.iter().filter(|l| l.contains(word)).count();
        assert_eq!(mentions, 1, "{key}: {lines:#?}");
    }
    let remote = server.client().sessions(&repo.dir_str()).await.unwrap();
    assert_eq!(remote.len(), 2, "one remote session per task: {remote:#?}");
    engine.shutdown().await.unwrap();
    server.stop().await;
}

/// The operator's last word is durable: a session interrupted before ocio stops is still
/// waiting for the operator after the next start (not failed by its aborted step), and the
/// message then ends its task. What they said before the interrupt is theirs after the restart
/// too: the server's copy read back with the session's messages is not the session's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_session_still_waits_for_the_operator_after_a_restart() {
    use ocio::scripted::{Rule, Script, Turn};

    let script = Script::new()
        .rule(Rule::when("stuck job").turn(Turn::text("never").delay_ms(120_000)))
        .rule(Rule::when("look at the logs").turn(Turn::text("still never").delay_ms(120_000)))
        .rule(Rule::when("carry on").turn(Turn::text("carried on")));
    let server = support::TestServer::start(script).await;
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("ocio.redb");
    let start = || async {
        let store = Store::open(&db, StoreOptions::default()).unwrap();
        let engine = EngineHandle::start(
            store.clone(),
            vec![support::scripted_agent(server.client())],
            EngineOptions::default(),
        )
        .await
        .unwrap();
        (store, engine)
    };
    let (store, engine) = start().await;
    let mut events = engine.subscribe();
    let plan = state.path().join("p.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"p\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"t\"\nprompt = \"stuck job\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    engine
        .submit_plan(PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let session = dispatched(&mut events).await;
    let deadline = std::time::Instant::now() + PATIENCE;
    while server.model.requests().iter().all(|r| r.side_job.is_some()) {
        assert!(std::time::Instant::now() < deadline, "never prompted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.say(session, "look at the logs").await.unwrap();
    // The server queues it behind the turn under way: two user messages there.
    let client = server.client();
    let dir = repo.dir_str();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let remote = client.sessions(&dir).await.unwrap();
        let messages = client.messages(&dir, &remote[0].id, None).await.unwrap();
        let users = messages
            .iter()
            .filter(|m| matches!(m.info, ocio::opencode::wire::MessageInfo::User(_)))
            .count();
        if users == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the message never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stopped at once: the run may not have passed the interrupt on to the server yet, and
    // the next start must still make it so.
    engine.interrupt(session).await.unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;

    let (store, engine) = start().await;
    let mut events = engine.subscribe();
    // Longer than a re-attached run takes to judge a session neither busy nor answered.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert_eq!(
        sessions[0].status,
        SessionStatus::WaitingApproval,
        "still waits for the operator: {sessions:#?}"
    );
    engine.say(session, "carry on").await.unwrap();
    let finished = next(&mut events, |e| {
        matches!(e, EngineEvent::PlanFinished { .. })
    })
    .await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let tasks = store.read(query::tasks).await.unwrap();
    assert_eq!(tasks[0].result.as_deref(), Some("carried on"));
    assert_eq!(tasks[0].attempts, 1);
    let transcript = engine.transcript(session).await.unwrap();
    let lines: Vec<String> = transcript.iter().map(|e| e.activity.summary()).collect();
    for said in ["look at the logs", "carry on"] {
        let mentions = lines.iter().filter(|l| l.contains(said)).count();
        assert_eq!(mentions, 1, "{said:?} once, as the operator's: {lines:#?}");
    }
    engine.shutdown().await.unwrap();
    server.stop().await;
}

/// A run that ends while the operator's interrupt is on its way (here: a runner that never
/// listens) ends its session as it ended, from waiting-approval; the engine goes on (before,
/// that transition was refused and stopped the engine, and every restart stopped it again).
#[tokio::test]
async fn a_run_that_ends_as_it_is_interrupted_ends_and_the_engine_goes_on() {
    use ocio::engine::{Job, Outcome, Runner};
    use std::future::Future;
    use std::pin::Pin;

    struct Deaf;
    impl Runner for Deaf {
        fn run(
            &self,
            job: Job,
            _stop: tokio::sync::oneshot::Receiver<()>,
        ) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
            Box::pin(async move {
                let _never_read = job;
                tokio::time::sleep(Duration::from_millis(1500)).await;
                Outcome::Completed {
                    result: Some("done anyway".into()),
                    usage: Default::default(),
                }
            })
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let mut agent = support::sim_agent("deaf", 1, &[], 10, 0.0);
    agent.runner = std::sync::Arc::new(Deaf);
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let path = dir.path().join("plan.toml");
    std::fs::write(
        &path,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\n",
    )
    .unwrap();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let session = dispatched(&mut events).await;
    // The first steer may come before the run counts as running.
    let deadline = std::time::Instant::now() + PATIENCE;
    while let Err(e) = engine.interrupt(session).await {
        assert!(e.message.contains("has not started yet"), "{}", e.message);
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let finished = next(&mut events, |e| {
        matches!(
            e,
            EngineEvent::PlanFinished { .. } | EngineEvent::EngineFailed { .. }
        )
    })
    .await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions[0].status, SessionStatus::Completed);
    assert!(engine.snapshot().await.is_ok(), "the engine goes on");
    engine.shutdown().await.unwrap();
}

/// What the operator told an attempt is told to the attempt that starts afresh after it: a
/// simulated session's run does not survive the engine stopping, and the task's next attempt
/// is prompted with the operator's words. They were lost with the attempt.
#[tokio::test]
async fn what_the_operator_said_reaches_the_attempt_that_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ocio.redb");
    let options = || EngineOptions {
        tick: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 1, &[], 60_000, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let path = dir.path().join("plan.toml");
    std::fs::write(
        &path,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"work\"\nprompt = \"paint the shed\"\n",
    )
    .unwrap();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let first = dispatched(&mut events).await;
    engine.say(first, "use blue paint").await.unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;

    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 1, &[], 10, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let second = dispatched(&mut events).await;
    assert_ne!(first, second);
    let checkpoints = store
        .read(move |txn| query::checkpoints(txn, second))
        .await
        .unwrap();
    let prompt = checkpoints[0].data["prompt"].as_str().unwrap().to_string();
    assert!(
        prompt.starts_with("paint the shed")
            && prompt.contains("What the operator told an earlier attempt")
            && prompt.contains("- use blue paint"),
        "{prompt}"
    );
    engine.shutdown().await.unwrap();
}
