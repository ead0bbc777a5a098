//! Budgets that stop work: a task's, a plan's, an agent's and the engine's daily budget stop
//! the sessions counted against them right after the model call that reached them, pause the
//! plan for the operator, survive a restart, and the operator raises them and continues, or
//! cancels. Simulated sessions here (each reports 600 tokens after its first step and 1200 in
//! all); a real OpenCode server with the scripted model below.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use ocio::domain::{Budget, PlanId, TaskStatus};
use ocio::engine::{
    BudgetTarget, BudgetThen, Clock, EngineApi, EngineEvent, EngineHandle, EngineOptions,
    ErrorKind, Subscription,
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

fn options(clock: Clock, daily: Option<Budget>) -> EngineOptions {
    EngineOptions {
        tick: Duration::from_millis(20),
        retry_backoff: jiff::SignedDuration::from_millis(10),
        clock,
        daily_budget: daily,
        ..EngineOptions::default()
    }
}

/// A plan of two independent tasks, `a` and `b`.
/// Two tasks whose first attempts hold after their step until the engine stops them (they never
/// race their own end).
const TWO_TASKS: &str = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\\nSIM-HOLD\"\n[[tasks]]\nid = \"b\"\nprompt = \"b\\nSIM-HOLD\"\n";

fn tokens(n: u64) -> Budget {
    Budget::new(Some(n), None).unwrap()
}

async fn submit(engine: &EngineHandle, dir: &std::path::Path, text: &str) -> PlanId {
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap()
}

async fn over_budget(events: &mut Subscription) -> (String, Vec<String>) {
    match next(events, |e| matches!(e, EngineEvent::OverBudget { .. })).await {
        EngineEvent::OverBudget { cause, tasks, .. } => (cause, tasks),
        _ => unreachable!(),
    }
}

async fn task_status(store: &ocio::store::StoreHandle, key: &str) -> (TaskStatus, Option<String>) {
    let tasks = store.read(query::tasks).await.unwrap();
    let task = tasks.into_iter().find(|t| t.key == key).unwrap();
    (task.status, task.over_budget)
}

/// Waits until the plan's tasks are all in `status`.
async fn all_become(store: &ocio::store::StoreHandle, status: TaskStatus) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let tasks = store.read(query::tasks).await.unwrap();
            if tasks.iter().all(|t| t.status == status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the tasks got there in time");
}

#[tokio::test]
async fn a_task_over_its_budget_stops_pauses_its_plan_and_continues_once_raised() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 1, &[], 900, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = submit(
        &engine,
        dir.path(),
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\\nSIM-HOLD\"\nretries = 2\nbudget = { tokens = 500 }\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"b\"\n",
    )
    .await;
    let (cause, tasks) = over_budget(&mut events).await;
    assert_eq!(cause, "over budget: task `a` budget 600/500 tokens");
    assert_eq!(tasks, ["a"]);
    all_become_some(&store).await;
    let (status, over) = task_status(&store, "a").await;
    assert_eq!(status, TaskStatus::Failed, "no automatic retry");
    assert_eq!(over.as_deref(), Some(cause.as_str()));
    assert_eq!(task_status(&store, "b").await.0, TaskStatus::Blocked);
    let snapshot = engine.snapshot().await.unwrap();
    let held: Vec<_> = snapshot.budgets.held().collect();
    assert_eq!(held.len(), 1, "one item in the inbox");
    assert_eq!(held[0].stopped, ["a"]);
    assert_eq!(held[0].spent.total_tokens(), 600);
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(
        sessions[0].usage.total_tokens(),
        600,
        "a stopped session keeps the usage of its calls"
    );
    assert_eq!(sessions[0].last_error.as_deref(), Some(cause.as_str()));

    let refused = engine
        .budget(plan, BudgetTarget::Plan, None, BudgetThen::Continue)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotNow, "{}", refused.message);
    assert!(
        refused
            .message
            .starts_with("still over budget: task `a` budget 600/500 tokens"),
        "{}",
        refused.message
    );
    let key = BudgetTarget::Task { key: "a".into() };
    engine
        .budget(plan, key, Some(tokens(5000)), BudgetThen::Continue)
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let snapshot = engine.snapshot().await.unwrap();
    let spend = snapshot.budgets.plan(plan).unwrap();
    assert_eq!(spend.over_budget, None);
    assert_eq!(
        spend.spent.total_tokens(),
        600 + 1200 + 1200,
        "every call counted once"
    );
    assert_eq!(snapshot.budgets.daily_spent.total_tokens(), 3000);
    engine.shutdown().await.unwrap();
}

/// A session whose end (every call counted) brings spend over its task's budget, where no step
/// it told had reached it, has nothing left to stop: its work stands, and its end says it
/// went over rather than counting it silently.
#[tokio::test]
async fn a_session_that_ends_over_its_budget_says_so_and_its_work_stands() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 1, &[], 300, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    submit(
        &engine,
        dir.path(),
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\nbudget = { tokens = 1000 }\n",
    )
    .await;
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, EngineEvent::OverBudget { .. })),
        "its step (600) was under the budget: nothing was stopped"
    );
    let ended = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::Transition(event)
                if matches!(
                    event.transition,
                    ocio::domain::Transition::Session {
                        to: ocio::domain::SessionStatus::Completed,
                        ..
                    }
                ) =>
            {
                Some(event.cause.clone())
            }
            _ => None,
        })
        .expect("the session completed");
    assert_eq!(
        ended,
        "finished, over budget: task `a` budget 1200/1000 tokens: it ended before it could be stopped"
    );
    assert_eq!(task_status(&store, "a").await.0, TaskStatus::Done);
    engine.shutdown().await.unwrap();
}

/// Waits until no task of the store runs.
async fn all_become_some(store: &ocio::store::StoreHandle) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let tasks = store.read(query::tasks).await.unwrap();
            if !tasks.iter().any(|t| t.status == TaskStatus::Running) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stop was settled in time");
}

/// A budget set below what the plan has spent applies at once: its running sessions (which
/// hold after their step and would tell no more) are stopped and the plan paused, without
/// waiting for a step that may never come.
#[tokio::test]
async fn a_budget_lowered_below_the_spend_stops_the_work_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 2, &[], 300, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = submit(&engine, dir.path(), TWO_TASKS).await;
    // Both have told their step (600 tokens each) and hold.
    tokio::time::timeout(PATIENCE, async {
        loop {
            let snapshot = engine.snapshot().await.unwrap();
            if snapshot
                .budgets
                .plan(plan)
                .is_some_and(|s| s.spent.total_tokens() == 1200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both steps were counted");
    engine
        .budget(
            plan,
            BudgetTarget::Plan,
            Some(tokens(1000)),
            BudgetThen::Continue,
        )
        .await
        .unwrap();
    let (cause, mut tasks) = over_budget(&mut events).await;
    tasks.sort();
    assert_eq!(cause, "over budget: plan budget 1200/1000 tokens");
    assert_eq!(tasks, ["a", "b"]);
    all_become_some(&store).await;
    for task in ["a", "b"] {
        assert_eq!(
            task_status(&store, task).await.0,
            TaskStatus::Failed,
            "{task}"
        );
    }
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.budgets.held().count(), 1, "paused, in the inbox");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_plan_over_its_budget_stops_the_task_that_reached_it_and_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 1, &[], 600, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = submit(
        &engine,
        dir.path(),
        "name = \"p\"\nrepo = \".\"\nbudget = { tokens = 1500 }\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"b\\nSIM-HOLD\"\n[[tasks]]\nid = \"c\"\nneeds = [\"b\"]\nprompt = \"c\"\n",
    )
    .await;
    let (cause, tasks) = over_budget(&mut events).await;
    assert_eq!(cause, "over budget: plan budget 1800/1500 tokens");
    assert_eq!(tasks, ["b"], "a finished within it; b reached it");
    all_become_some(&store).await;
    assert_eq!(task_status(&store, "a").await.0, TaskStatus::Done);
    assert_eq!(task_status(&store, "b").await.0, TaskStatus::Failed);
    engine
        .budget(plan, BudgetTarget::Plan, None, BudgetThen::Cancel)
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                done: 1,
                cancelled: 1,
                blocked: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_agents_daily_budget_stops_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let mut agent = support::sim_agent("sim", 1, &[], 600, 0.0);
    agent.agent.budget = Some(tokens(1000));
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = submit(
        &engine,
        dir.path(),
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n",
    )
    .await;
    // 600 after its first call: under; 1200 when it ends: over, but it has ended.
    let _ = support::until_finished(&mut events, PATIENCE).await;
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.budgets.agents[0].spent.total_tokens(), 1200);
    let second = submit(
        &engine,
        dir.path(),
        "name = \"q\"\nrepo = \".\"\n[[tasks]]\nid = \"b\"\nprompt = \"b\"\n",
    )
    .await;
    // The agent's day is spent: nothing starts.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(task_status(&store, "b").await.0, TaskStatus::Ready);
    let agent = BudgetTarget::Agent {
        agent: "sim".into(),
    };
    engine
        .budget(second, agent, Some(tokens(1500)), BudgetThen::Continue)
        .await
        .unwrap();
    let (cause, tasks) = over_budget(&mut events).await;
    assert_eq!(
        cause,
        "over budget: agent `sim` daily budget (UTC) 1800/1500 tokens"
    );
    assert_eq!(tasks, ["b"]);
    let _ = plan;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_daily_budget_stops_every_session_survives_a_restart_and_resets_at_utc_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ocio.redb");
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let noon: jiff::Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
    let agent = support::sim_agent("sim", 2, &[], 900, 0.0);
    let engine = EngineHandle::start(
        store.clone(),
        vec![agent],
        options(Clock::following_tokio(noon), Some(tokens(1000))),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let plan = submit(&engine, dir.path(), TWO_TASKS).await;
    let (cause, _) = over_budget(&mut events).await;
    assert_eq!(
        cause,
        "over budget: engine daily budget (UTC) 1200/1000 tokens"
    );
    all_become(&store, TaskStatus::Failed).await;
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(snapshot.budgets.day, "2026-12-04");
    assert_eq!(snapshot.budgets.daily_spent.total_tokens(), 1200);
    let stopped = &snapshot.budgets.plan(plan).unwrap().stopped;
    assert_eq!(stopped, &["a", "b"], "both sessions counted against it");
    engine.shutdown().await.unwrap();
    drop(engine);

    // The next UTC day, a new engine: the pause is still there, the day's spend is new.
    let midnight: jiff::Timestamp = "2026-12-05T00:00:01Z".parse().unwrap();
    let agent = support::sim_agent("sim", 2, &[], 300, 0.0);
    let engine = EngineHandle::start(
        store.clone(),
        vec![agent],
        options(Clock::following_tokio(midnight), Some(tokens(1000))),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let snapshot = engine.snapshot().await.unwrap();
    let held = snapshot.budgets.plan(plan).unwrap();
    assert_eq!(
        held.over_budget.as_deref(),
        Some(cause.as_str()),
        "paused across the restart"
    );
    assert_eq!(held.spent.total_tokens(), 1200);
    assert_eq!(snapshot.budgets.day, "2026-12-05");
    assert_eq!(snapshot.budgets.daily_spent.total_tokens(), 0);
    assert_eq!(task_status(&store, "a").await.0, TaskStatus::Failed);
    engine
        .budget(plan, BudgetTarget::Plan, None, BudgetThen::Continue)
        .await
        .unwrap();
    // 1200 each would pass the day's 1000 again: the one that reaches it first stops both.
    let (cause, _) = over_budget(&mut events).await;
    assert_eq!(
        cause,
        "over budget: engine daily budget (UTC) 1200/1000 tokens"
    );
    engine
        .budget(
            plan,
            BudgetTarget::Daily,
            Some(tokens(100_000)),
            BudgetThen::Continue,
        )
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    engine.shutdown().await.unwrap();
}

/// In a git repository, what a simulated session wrote before it was stopped over budget is
/// committed on its task's branch, and the attempt that continues starts from it.
#[tokio::test]
async fn work_stopped_over_budget_is_committed_on_the_task_branch_and_continued() {
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 1, &[], 600, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let text = format!(
        "name = \"w\"\nrepo = {:?}\n[[tasks]]\nid = \"a\"\nprompt = \"SIM-WRITE notes.txt first draft\\nSIM-HOLD\"\nbudget = {{ tokens = 500 }}\n",
        repo.dir_str()
    );
    let plan = submit(&engine, state.path(), &text).await;
    let (cause, _) = over_budget(&mut events).await;
    all_become_some(&store).await;
    assert_eq!(repo.git(&["show", "ocio/w/a:notes.txt"]), "first draft");
    let message = repo.git(&["log", "-1", "--format=%B", "ocio/w/a"]);
    assert!(message.contains(&format!("Stopped {cause}")), "{message}");
    let stopped = repo.git(&["rev-parse", "ocio/w/a"]);
    let key = BudgetTarget::Task { key: "a".into() };
    engine
        .budget(plan, key, Some(tokens(10_000)), BudgetThen::Continue)
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let integration = repo.git(&["log", "--format=%H", "ocio/w/integration"]);
    assert!(
        integration.contains(stopped.trim()),
        "the continued attempt built on the stopped one's commit:\n{integration}"
    );
    engine.shutdown().await.unwrap();
}

/// A task whose budget an earlier attempt spent does not start again (its retry would be
/// stopped after its first call): its plan pauses, and a raise lets the retry run.
#[tokio::test]
async fn a_retry_whose_budget_is_spent_does_not_start_until_it_is_raised() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    // Every attempt fails, after 600 tokens at its step and 1200 in all.
    let agent = support::sim_agent("sim", 1, &[], 300, 1.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = submit(
        &engine,
        dir.path(),
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\nretries = 1\nbudget = { tokens = 1000 }\n",
    )
    .await;
    let (cause, tasks) = over_budget(&mut events).await;
    assert_eq!(cause, "over budget: task `a` budget 1200/1000 tokens");
    assert!(tasks.is_empty(), "no session was stopped: {tasks:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store.read(query::sessions).await.unwrap().len(),
        1,
        "no second attempt"
    );
    assert_eq!(task_status(&store, "a").await.0, TaskStatus::Ready);
    let refused = engine
        .budget(plan, BudgetTarget::Plan, None, BudgetThen::Continue)
        .await
        .unwrap_err();
    assert!(
        refused.message.contains("task `a` budget 1200/1000"),
        "{}",
        refused.message
    );
    let key = BudgetTarget::Task { key: "a".into() };
    engine
        .budget(plan, key, Some(tokens(5000)), BudgetThen::Continue)
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                failed: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    assert_eq!(store.read(query::sessions).await.unwrap().len(), 2);
    engine.shutdown().await.unwrap();
}

/// Spend counted from a session's steps survives an engine that stops while the session runs:
/// the lost run counted what it reported, its rerun adds its own, nothing twice.
#[tokio::test]
async fn spend_survives_a_stop_in_the_middle_of_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 1, &[], 1500, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = submit(
        &engine,
        dir.path(),
        "name = \"p\"\nrepo = \".\"\nbudget = { tokens = 100_000 }\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n",
    )
    .await;
    next(&mut events, |e| {
        matches!(e, EngineEvent::Activity { entry, .. } if matches!(entry.activity, ocio::engine::Activity::Step { .. }))
    })
    .await;
    // Let the step's checkpoint and spend be committed, then stop in the middle of the run.
    tokio::time::sleep(Duration::from_millis(100)).await;
    engine.shutdown().await.unwrap();
    drop(engine);

    let agent = support::sim_agent("sim", 1, &[], 300, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let snapshot = engine.snapshot().await.unwrap();
    let spent = snapshot.budgets.plan(plan).map(|p| p.spent.total_tokens());
    assert!(
        matches!(spent, Some(600)),
        "counted before the stop: {spent:?}"
    );
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let snapshot = engine.snapshot().await.unwrap();
    let spent = snapshot.budgets.plan(plan).unwrap().spent.total_tokens();
    assert_eq!(spent, 600 + 1200);
    engine.shutdown().await.unwrap();
}

/// Against a real `opencode serve` with the scripted model, whose usage per call is set: a
/// task of four calls (120 tokens each) with a budget of 200 tokens is stopped right after its
/// second call, the files it wrote so far committed on its branch; its plan waits for the
/// operator; raised, the task continues from its branch and the plan finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_session_is_stopped_at_the_call_that_reaches_its_budget_and_continues_from_its_branch()
 {
    use ocio::scripted::{Rule, Script, Turn};
    let repo = support::TestRepo::new();
    let script = Script::new()
        .rule(
            Rule::when("An earlier attempt at this task was stopped")
                .turn(Turn::write("c.txt", "c\n").usage(100, 20))
                .turn(Turn::text("finished the letters").usage(100, 20)),
        )
        .rule(
            Rule::when("Write the letters")
                .turn(Turn::write("a.txt", "a\n").usage(100, 20))
                .turn(Turn::write("b.txt", "b\n").usage(100, 20))
                // Still under way when the stop comes: it never completes. The stop cuts it
                // short, so its length costs nothing; it only gives a loaded machine time to
                // tell the step and stop the session.
                .turn(Turn::write("c.txt", "c\n").usage(100, 20).delay_ms(30_000))
                .turn(Turn::text("wrote the letters").usage(100, 20)),
        );
    let server = support::TestServer::start(script).await;
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::scripted_agent(server.client());
    let engine = EngineHandle::start(store.clone(), vec![agent], options(Clock::system(), None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let text = format!(
        "name = \"letters\"\nrepo = {:?}\n[[tasks]]\nid = \"write\"\nprompt = \"Write the letters\"\nbudget = {{ tokens = 200 }}\n",
        repo.dir_str()
    );
    let plan = submit(&engine, state.path(), &text).await;
    let (cause, tasks) = over_budget(&mut events).await;
    assert_eq!(cause, "over budget: task `write` budget 240/200 tokens");
    assert_eq!(tasks, ["write"]);
    all_become_some(&store).await;
    let (status, _) = task_status(&store, "write").await;
    assert_eq!(status, TaskStatus::Failed);
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].usage.total_tokens(),
        240,
        "exactly the two calls it made"
    );
    // The work so far is on the task's branch, in a commit that says why it stopped.
    let branch = "ocio/letters/write";
    assert_eq!(repo.git(&["show", &format!("{branch}:a.txt")]), "a\n");
    assert_eq!(repo.git(&["show", &format!("{branch}:b.txt")]), "b\n");
    let message = repo.git(&["log", "-1", "--format=%B", branch]);
    assert!(
        message.contains("Stopped over budget: task `write` budget 240/200 tokens"),
        "{message}"
    );
    let snapshot = engine.snapshot().await.unwrap();
    assert_eq!(
        snapshot.budgets.held().count(),
        1,
        "in the operator's inbox"
    );

    let key = BudgetTarget::Task {
        key: "write".into(),
    };
    engine
        .budget(plan, key, Some(tokens(10_000)), BudgetThen::Continue)
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let _ = seen;
    let integration = "ocio/letters/integration";
    for (file, content) in [("a.txt", "a\n"), ("b.txt", "b\n"), ("c.txt", "c\n")] {
        let shown = repo.git(&["show", &format!("{integration}:{file}")]);
        assert_eq!(shown, content, "{file} merged");
    }
    let snapshot = engine.snapshot().await.unwrap();
    let spend = snapshot.budgets.plan(plan).unwrap();
    assert_eq!(
        spend.spent.total_tokens(),
        240 + 240,
        "two calls, then two more"
    );
    engine.shutdown().await.unwrap();
}

/// Steps that no budget is near wait for the engine's next tick to be recorded (many in one
/// commit), but steps that reach a budget only together must stop the work at once: here no
/// tick comes at all, and the second step, with the first still waiting, brings the day's
/// spend to its budget. Both sessions are stopped while they run, not after they finished.
#[tokio::test]
async fn steps_that_reach_a_budget_together_stop_the_work_without_waiting_for_a_tick() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::sim_agent("sim", 2, &[], 900, 0.0);
    let options = EngineOptions {
        tick: Duration::from_secs(3600),
        ..options(Clock::system(), Some(tokens(1000)))
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    submit(&engine, dir.path(), TWO_TASKS).await;
    let (cause, _) = over_budget(&mut events).await;
    assert_eq!(
        cause,
        "over budget: engine daily budget (UTC) 1200/1000 tokens"
    );
    all_become(&store, TaskStatus::Failed).await;
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions.len(), 2);
    for session in &sessions {
        assert_eq!(session.status, ocio::domain::SessionStatus::Failed);
        assert_eq!(session.last_error.as_deref(), Some(cause.as_str()));
    }
    engine.shutdown().await.unwrap();
}
