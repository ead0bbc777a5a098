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
    start_with(dir, Arc::new(LosesItsFirst { lose })).await
}

/// An engine on the store in `dir`, its one agent (`box`, one session at a time) running
/// sessions with `runner`.
async fn start_with(dir: &std::path::Path, runner: Arc<dyn Runner>) -> (StoreHandle, EngineHandle) {
    let store = Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let agent = AgentSpec {
        agent: Agent::new(AgentName::new("box").unwrap(), Backend::Simulated, 1),
        runner,
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

/// A run that takes its time to stop: told to, it ends only long after.
struct SlowToStop;

impl Runner for SlowToStop {
    fn run(&self, _job: Job, stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        Box::pin(async move {
            let _ = stop.await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Outcome::Stopped
        })
    }
}

/// A cancel the engine confirmed, and then the engine stopped before the run came back: the
/// next engine ends the session and the task cancelled, and does not run the task again (hand
/// trial: it was re-attached and ended failed, or run again).
#[tokio::test]
async fn a_cancel_confirmed_before_a_restart_stays_a_cancel() {
    use crate::domain::TaskStatus;
    let dir = tempfile::tempdir().unwrap();
    let start =
        |dir: std::path::PathBuf| async move { start_with(&dir, Arc::new(SlowToStop)).await };
    let (store, engine) = start(dir.path().to_path_buf()).await;
    let mut events = engine.subscribe();
    submit(dir.path(), &engine).await;
    next(&mut events, |e| matches!(e, EngineEvent::Dispatched { .. })).await;
    let task = engine.snapshot().await.unwrap().plans[0].tasks[0].id;
    engine.cancel(task).await.unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;

    let (store, engine) = start(dir.path().to_path_buf()).await;
    let tasks = store.read(query::tasks).await.unwrap();
    assert_eq!(tasks[0].status, TaskStatus::Cancelled, "{tasks:?}");
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions.len(), 1, "not run again: {sessions:#?}");
    assert_eq!(sessions[0].status, SessionStatus::Cancelled);
    engine.shutdown().await.unwrap();
}

/// A run that tells where it lives and streams some text, then takes its time to stop.
/// Followed again after a restart, it keeps the text it is given to go on from, and says
/// when it is told to stop.
#[derive(Default)]
struct Followable {
    stopped: Arc<tokio::sync::Notify>,
    given: Arc<std::sync::Mutex<Option<crate::engine::view::Entry>>>,
}

impl Runner for Followable {
    fn run(&self, job: Job, stop: tokio::sync::oneshot::Receiver<()>) -> RunFuture {
        Box::pin(async move {
            let remote = crate::domain::RemoteSession {
                server: "http://box".into(),
                session_id: "ses_far".into(),
                directory: job.directory.clone(),
            };
            if !job.reporter.remote(job.session, remote).await {
                return Outcome::Stopped;
            }
            let text = Activity::Text {
                text: "word0 word1 ".into(),
            };
            job.reporter
                .activity(job.session, text, Some("prt_1".into()));
            let _ = stop.await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Outcome::Stopped
        })
    }

    fn resume(
        &self,
        job: Job,
        _remote: crate::domain::RemoteSession,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> Option<RunFuture> {
        *self.given.lock().unwrap() = job.streamed;
        let stopped = self.stopped.clone();
        Some(Box::pin(async move {
            let _ = stop.await;
            stopped.notify_one();
            Outcome::Stopped
        }))
    }
}

/// The same cancel, of a run the next engine follows again: it is stopped at once, and the
/// session and the task end cancelled, the task not run again.
#[tokio::test]
async fn a_cancel_confirmed_before_a_restart_stops_the_run_followed_again() {
    use crate::domain::TaskStatus;
    let dir = tempfile::tempdir().unwrap();
    let runner = Arc::new(Followable::default());
    let stopped = runner.stopped.clone();
    let start = |dir: std::path::PathBuf| {
        let runner = runner.clone();
        async move { start_with(&dir, runner).await }
    };
    let (store, engine) = start(dir.path().to_path_buf()).await;
    submit(dir.path(), &engine).await;
    // Until where it lives is recorded: a restart follows it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !store
        .read(query::sessions)
        .await
        .unwrap()
        .iter()
        .any(|s| s.remote.is_some())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never told where it lives"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let task = engine.snapshot().await.unwrap().plans[0].tasks[0].id;
    engine.cancel(task).await.unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;

    let (store, engine) = start(dir.path().to_path_buf()).await;
    tokio::time::timeout(Duration::from_secs(10), stopped.notified())
        .await
        .expect("the run followed again was told to stop");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = store.read(query::tasks).await.unwrap();
        if tasks[0].status == TaskStatus::Cancelled {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{tasks:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions.len(), 1, "not run again: {sessions:#?}");
    assert_eq!(sessions[0].status, SessionStatus::Cancelled);
    engine.shutdown().await.unwrap();
}

/// A session re-attached while it streamed a text goes on from what its transcript had of
/// it: it went on from nothing (the server keeps a text part empty until it is whole), so
/// the words before the restart were lost from the transcript, for good if the session then
/// ended early (hand trial).
#[tokio::test]
async fn a_run_followed_again_goes_on_from_the_text_it_was_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Arc::new(Followable::default());
    let given = runner.given.clone();
    let start = |dir: std::path::PathBuf| {
        let runner = runner.clone();
        async move { start_with(&dir, runner).await }
    };
    let (store, engine) = start(dir.path().to_path_buf()).await;
    let mut events = engine.subscribe();
    submit(dir.path(), &engine).await;
    next(&mut events, |e| {
        matches!(e, EngineEvent::Activity { entry, .. } if matches!(entry.activity, Activity::Text { .. }))
    })
    .await;
    engine.shutdown().await.unwrap();
    store.close().await;

    let (_store, engine) = start(dir.path().to_path_buf()).await;
    let streamed = given.lock().unwrap().clone().expect("followed again");
    assert_eq!(streamed.part.as_deref(), Some("prt_1"));
    assert_eq!(
        streamed.activity,
        Activity::Text {
            text: "word0 word1 ".into()
        }
    );
    engine.shutdown().await.unwrap();
}
