//! Store tests against real redb files in temporary directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::tables::{META, SCHEMA_VERSION, SCHEMA_VERSION_KEY, SESSION_STATUS, SESSIONS, TASKS};
use super::*;
use crate::domain::{
    Agent, AgentName, Backend, CheckpointKind, Lease, PlanId, SessionId, SessionKind,
    SessionStatus, Task, TaskId, TaskStatus, Transition, WorkMode,
};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("ocio.redb");
    (dir, path)
}

fn open(path: &Path) -> StoreHandle {
    Store::open(path, StoreOptions::default()).unwrap()
}

/// A session moved to `status` through the state machine, and the events it yielded.
fn session_in(status: SessionStatus) -> (Session, Vec<DomainEvent>) {
    use SessionStatus::*;
    let mut session = Session::new(
        SessionId::generate(),
        "plan/task #1",
        SessionKind::Code,
        at(0),
    );
    let path: &[SessionStatus] = match status {
        Pending => &[],
        Queued => &[Queued],
        Running => &[Queued, Starting, Running],
        Completed => &[Queued, Starting, Running, Completed],
        Failed => &[Queued, Starting, Failed],
        other => panic!("no path to {other} in this test"),
    };
    let events = path
        .iter()
        .map(|&to| session.transition(to, "test", at(1)).unwrap())
        .collect();
    (session, events)
}

fn store_session(store: &StoreHandle, status: SessionStatus) -> (Session, Receipt) {
    let (session, events) = session_in(status);
    let mut batch = Batch::new();
    batch.put_session(&session);
    for event in &events {
        batch.append_event(event);
    }
    let receipt = store.commit_blocking(batch).unwrap();
    (session, receipt)
}

#[test]
fn a_fresh_database_is_private_and_current() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    assert!(store.open_info().created);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let version = store.read_blocking(query::schema_version).unwrap();
    assert_eq!(version, Some(SCHEMA_VERSION));
    store.close_blocking();
    let store = open(&path);
    assert!(!store.open_info().created);
    assert_eq!(store.open_info().migrated_from, None);
    assert!(
        !store.open_info().recovered,
        "a clean close needs no recovery"
    );
}

#[test]
fn every_entity_round_trips() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let (mut session, events) = session_in(SessionStatus::Running);
    let checkpoint = session.checkpoint(
        CheckpointKind::PromptSent,
        serde_json::json!({"prompt": "hi"}),
        at(2),
    );
    let plan_id = PlanId::generate();
    let task = Task::new(TaskId::generate(), plan_id, "impl", "write it", at(0));
    let plan = Plan {
        id: plan_id,
        name: "demo".into(),
        repo: "/src/demo".into(),
        tasks: vec![task.id],
        created_at: at(0),
    };
    let mut agent = Agent::new(AgentName::new("sim").unwrap(), Backend::Simulated, 3);
    agent.capabilities.insert("code".into());
    let lease = Lease {
        resource: "repo:/src/demo".into(),
        holder: session.id.to_string(),
        fence: 1,
        granted_at: at(1),
        expires_at: at(61),
    };

    let mut batch = Batch::new();
    batch
        .put_session(&session)
        .put_checkpoint(&checkpoint)
        .put_task(&task)
        .put_plan(&plan)
        .put_agent(&agent)
        .put_lease(&lease);
    for event in &events {
        batch.append_event(event);
    }
    let receipt = store.commit_blocking(batch).unwrap();
    assert_eq!(receipt.event_seqs, vec![1, 2, 3]);
    store.close_blocking();

    let store = open(&path);
    let id = session.id;
    let (s, c, t, p, a, l, e) = store
        .read_blocking(move |txn| {
            Ok((
                query::session(txn, id)?,
                query::checkpoints(txn, id)?,
                query::tasks(txn)?,
                query::plans(txn)?,
                query::agents(txn)?,
                query::leases(txn)?,
                query::events_after(txn, 0, 100)?,
            ))
        })
        .unwrap();
    assert_eq!(s, Some(session));
    assert_eq!(c, vec![checkpoint]);
    assert_eq!(t, vec![task]);
    assert_eq!(p, vec![plan]);
    assert_eq!(a, vec![agent.clone()]);
    assert_eq!(l, vec![lease]);
    assert_eq!(
        e.into_iter().collect::<Vec<_>>(),
        events
            .into_iter()
            .enumerate()
            .map(|(i, ev)| (i as u64 + 1, ev))
            .collect::<Vec<_>>()
    );

    let mut batch = Batch::new();
    batch
        .remove_agent(&agent.name)
        .remove_lease("repo:/src/demo");
    store.commit_blocking(batch).unwrap();
    let (agents, leases) = store
        .read_blocking(|txn| Ok((query::agents(txn)?, query::leases(txn)?)))
        .unwrap();
    assert!(agents.is_empty() && leases.is_empty());
}

#[test]
fn event_sequence_continues_after_reopen() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let (_, first) = store_session(&store, SessionStatus::Completed);
    assert_eq!(first.event_seqs, vec![1, 2, 3, 4]);
    store.close_blocking();
    let store = open(&path);
    let (_, second) = store_session(&store, SessionStatus::Queued);
    assert_eq!(second.event_seqs, vec![5]);
    assert_eq!(store.read_blocking(query::last_event_seq).unwrap(), 5);
    let tail = store
        .read_blocking(|txn| query::events_after(txn, 3, 10))
        .unwrap();
    assert_eq!(
        tail.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    let seqs = |after, limit| {
        store
            .read_blocking(move |txn| query::events_newest(txn, after, limit))
            .unwrap()
            .into_iter()
            .map(|(seq, _)| seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(0, 2), vec![4, 5], "the newest, oldest first");
    assert_eq!(seqs(3, 10), vec![4, 5]);
    assert_eq!(seqs(0, 10), vec![1, 2, 3, 4, 5]);
    assert!(seqs(5, 10).is_empty());
}

#[test]
fn durable_commits_are_counted_not_the_events_they_carry() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    assert_eq!(store.commits(), 0, "opening commits nothing");
    let (_, first) = store_session(&store, SessionStatus::Completed);
    assert_eq!(first.event_seqs.len(), 4);
    assert_eq!(store.commits(), 1, "four events, one commit");
    store_session(&store, SessionStatus::Queued);
    assert_eq!(store.commits(), 2);
    store.read_blocking(query::last_event_seq).unwrap();
    assert_eq!(store.commits(), 2, "a read is no commit");
}

#[test]
fn status_index_follows_every_change() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let (mut moving, _) = store_session(&store, SessionStatus::Queued);
    store_session(&store, SessionStatus::Queued);
    store_session(&store, SessionStatus::Failed);
    for to in [SessionStatus::Starting, SessionStatus::Running] {
        let event = moving.transition(to, "dispatch", at(5)).unwrap();
        let mut batch = Batch::new();
        batch.put_session(&moving).append_event(&event);
        store.commit_blocking(batch).unwrap();
    }
    let counts = store.read_blocking(query::session_counts).unwrap();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        vec![
            (SessionStatus::Queued, 1),
            (SessionStatus::Running, 1),
            (SessionStatus::Failed, 1)
        ]
    );
    let running = store
        .read_blocking(|txn| query::sessions_in(txn, SessionStatus::Running))
        .unwrap();
    assert_eq!(running, vec![moving]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_are_all_acknowledged_in_one_gapless_log() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let mut writers = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for _ in 0..10 {
                let (session, events) = session_in(SessionStatus::Queued);
                let mut batch = Batch::new();
                batch.put_session(&session).append_event(&events[0]);
                seqs.extend(store.commit(batch).await.unwrap().event_seqs);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.unwrap());
    }
    all.sort();
    assert_eq!(
        all,
        (1..=320).collect::<Vec<u64>>(),
        "every write acknowledged once, no gaps"
    );
    let counts = store.read(query::session_counts).await.unwrap();
    assert_eq!(counts.get(&SessionStatus::Queued), Some(&320));
    store.close().await;
}

#[test]
fn a_second_writer_is_refused_but_readers_may_follow() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    store_session(&store, SessionStatus::Running);
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains("in use by another ocio process"),
        "{err}"
    );

    let reader = Store::open_read_only(&path).unwrap();
    let counts = reader.read(query::session_counts).unwrap();
    assert_eq!(counts.get(&SessionStatus::Running), Some(&1));
    store_session(&store, SessionStatus::Running);
    let counts = Store::open_read_only(&path)
        .unwrap()
        .read(query::session_counts)
        .unwrap();
    assert_eq!(
        counts.get(&SessionStatus::Running),
        Some(&2),
        "a new read sees new commits"
    );
}

#[test]
fn a_clean_close_seals_the_file_and_a_sealed_file_opens_without_a_walk() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    store_session(&store, SessionStatus::Completed);
    assert!(
        !seal::holds(&path),
        "no seal while the file is open and written"
    );
    store.close_blocking();
    assert!(seal::holds(&path), "a clean close seals the file");
    // Reopening a sealed file reads its schema in place, and still refuses a second writer.
    let store = open(&path);
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let counts = store.read_blocking(query::session_counts).unwrap();
    assert_eq!(counts.get(&SessionStatus::Completed), Some(&1));
    store.close_blocking();
}

#[test]
fn a_sealed_file_with_a_newer_schema_is_refused_untouched() {
    let (_dir, path) = temp_db();
    open(&path).close_blocking();
    {
        let db = redb::Database::builder().open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    seal::write(&path);
    assert!(seal::holds(&path));
    assert_refused_untouched(
        &path,
        &format!("newer ocio (schema {};", SCHEMA_VERSION + 1),
    );
}

#[test]
fn a_file_damaged_after_its_seal_is_verified_in_full_and_refused() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    for _ in 0..200 {
        store_session(&store, SessionStatus::Completed);
    }
    store.close_blocking();
    assert!(seal::holds(&path));
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip bytes in the middle of a stored page: a plain redb open would not notice.
    let page = bytes.len() / 4096 / 2 * 4096;
    for b in &mut bytes[page + 100..page + 116] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert_refused_untouched(&path, "damaged");
    let err = Store::open_read_only(&path).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[test]
fn a_commit_is_single_phase() {
    // redb's header (docs/design.md in redb): 9 magic bytes, then the god byte, whose third
    // bit says the primary commit was written in two phases (two fsyncs instead of one).
    const GOD_BYTE: usize = 9;
    const TWO_PHASE_COMMIT: u8 = 4;
    let (_dir, path) = temp_db();
    let store = open(&path);
    for _ in 0..3 {
        store_session(&store, SessionStatus::Completed);
        let header = std::fs::read(&path).unwrap();
        assert_eq!(
            header[GOD_BYTE] & TWO_PHASE_COMMIT,
            0,
            "the last commit took two fsyncs"
        );
    }
    store.close_blocking();
}

#[test]
fn handles_report_closed_after_close() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let other = store.clone();
    store.close_blocking();
    assert!(matches!(
        other.commit_blocking(Batch::new()),
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        other.read_blocking(query::last_event_seq),
        Err(StoreError::Closed)
    ));
}

// ---- files that are not ours: refused, named, untouched ----

fn assert_refused_untouched(path: &Path, expected: &str) {
    let before = std::fs::read(path).unwrap();
    let err = Store::open(path, StoreOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error must name the file: {text}"
    );
    assert!(text.contains(expected), "expected `{expected}` in: {text}");
    assert!(text.contains("hint:"), "error must say what to do: {text}");
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file must be left untouched"
    );
}

#[test]
fn a_file_that_is_not_redb_is_refused() {
    let (dir, _) = temp_db();
    let path = dir.path().join("notes.redb");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200)).unwrap();
    assert_refused_untouched(&path, "not a usable ocio database");
}

#[test]
fn a_truncated_database_is_refused() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    for _ in 0..50 {
        store_session(&store, SessionStatus::Completed);
    }
    store.close_blocking();
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() / 2, 4096, 100] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        assert_refused_untouched(&path, "not a usable ocio database");
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let (_dir, path) = temp_db();
    open(&path).close_blocking();
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .open(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION + 7)
            .unwrap();
        txn.commit().unwrap();
    }
    assert_refused_untouched(
        &path,
        &format!("newer ocio (schema {};", SCHEMA_VERSION + 7),
    );
    assert!(matches!(
        Store::open_read_only(&path),
        Err(StoreError::TooNew { .. })
    ));
}

#[test]
fn another_programs_redb_file_is_refused() {
    let (dir, _) = temp_db();
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let table: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("theirs");
        txn.open_table(table).unwrap().insert("k", "v").unwrap();
        txn.commit().unwrap();
    }
    assert_refused_untouched(&path, "not one ocio wrote");
}

#[test]
fn a_directory_in_place_of_the_file_is_refused() {
    let (dir, _) = temp_db();
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn a_version_1_database_is_migrated_and_indexed() {
    let (_dir, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let sessions: Vec<Session> = [
        SessionStatus::Running,
        SessionStatus::Completed,
        SessionStatus::Completed,
    ]
    .into_iter()
    .map(|s| session_in(s).0)
    .collect();
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .create(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        migrate::create_v1(&txn).unwrap();
        {
            let mut table = txn.open_table(SESSIONS).unwrap();
            for s in &sessions {
                table
                    .insert(s.id.as_u128(), serde_json::to_vec(s).unwrap().as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }
    // A reader migrates its private copy only; the file is migrated by the next writer.
    let before = std::fs::read(&path).unwrap();
    let copy = Store::open_read_only(&path).unwrap();
    assert_eq!(
        copy.read(query::schema_version).unwrap(),
        Some(SCHEMA_VERSION)
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a reader never writes"
    );
    let store = open(&path);
    assert_eq!(store.open_info().migrated_from, Some(1));
    let (version, counts) = store
        .read_blocking(|txn| Ok((query::schema_version(txn)?, query::session_counts(txn)?)))
        .unwrap();
    assert_eq!(version, Some(SCHEMA_VERSION));
    assert_eq!(counts.get(&SessionStatus::Completed), Some(&2));
    assert_eq!(counts.get(&SessionStatus::Running), Some(&1));
    store.close_blocking();
    assert_eq!(open(&path).open_info().migrated_from, None, "migrated once");
}

#[test]
fn events_decode_with_their_transition() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let (session, _) = store_session(&store, SessionStatus::Queued);
    let events = store
        .read_blocking(|txn| query::events_after(txn, 0, 10))
        .unwrap();
    assert_eq!(
        events[0].1.transition,
        Transition::Session {
            id: session.id,
            from: SessionStatus::Pending,
            to: SessionStatus::Queued
        }
    );
}

#[test]
fn plan_work_and_task_contexts_round_trip_and_older_files_read_as_empty() {
    let (_dir, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        // A file from before the additive tables.
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .create(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        migrate::create_v1(&txn).unwrap();
        txn.commit().unwrap();
    }
    let store = open(&path);
    let empty = store
        .read_blocking(|txn| Ok((query::plan_work(txn)?, query::contexts(txn)?)))
        .unwrap();
    assert_eq!(empty, (Vec::new(), Vec::new()));
    let plan = PlanId::generate();
    let work = PlanWork {
        plan,
        settings: crate::domain::task::PlanSettings::default(),
        key: "demo-01abcdef".into(),
        mode: WorkMode::Worktrees {
            integration: "ocio/demo-01abcdef/integration".into(),
        },
        base_branch: None,
        over_budget: None,
    };
    let mut context = TaskContext {
        plan,
        task: TaskId::generate(),
        key: "a".into(),
        summary: Some("did it\nOCIO-PUBLISH port=8080".into()),
        files_changed: vec!["src/a.rs".into()],
        values: vec![("port".into(), "8080".into())],
        commit: Some("abc".into()),
        merge: MergeState::Pending,
        conflict_reruns: 0,
        check_reruns: 0,
    };
    let stored = Plan {
        id: plan,
        name: "demo".into(),
        repo: "/src/demo".into(),
        tasks: vec![context.task],
        created_at: at(0),
    };
    let mut batch = Batch::new();
    batch
        .put_plan(&stored)
        .put_plan_work(&work)
        .put_context(&context);
    store.commit_blocking(batch).unwrap();
    context.merge = MergeState::Conflict {
        files: vec!["src/a.rs".into()],
        policy: crate::domain::task::ConflictPolicy::Manual,
    };
    let mut batch = Batch::new();
    batch.put_context(&context);
    store.commit_blocking(batch).unwrap();
    store.close_blocking();
    let store = open(&path);
    let (works, contexts, other) = store
        .read_blocking(move |txn| {
            Ok((
                query::plan_work(txn)?,
                query::contexts_of(txn, plan)?,
                query::contexts_of(txn, PlanId::generate())?,
            ))
        })
        .unwrap();
    assert_eq!(works, [work]);
    assert_eq!(contexts, [context.clone()], "the newest record of the task");
    assert!(other.is_empty());

    // The conflicts index follows the context's merge state.
    let conflicted = store.read_blocking(query::conflict_plans).unwrap();
    assert_eq!(conflicted, [plan]);
    context.merge = MergeState::Merged {
        commit: "def".into(),
    };
    let mut batch = Batch::new();
    batch.put_context(&context);
    store.commit_blocking(batch).unwrap();
    let conflicted = store.read_blocking(query::conflict_plans).unwrap();
    assert!(conflicted.is_empty());
}

/// A plan of tasks in the given statuses (made in order, so ids rise), unwritten.
fn plan_of(statuses: &[TaskStatus]) -> (Plan, Vec<Task>) {
    let id = PlanId::generate();
    let tasks: Vec<Task> = statuses
        .iter()
        .enumerate()
        .map(|(i, &status)| {
            let mut task = Task::new(TaskId::generate(), id, format!("t{i}"), "p", at(0));
            task.status = status;
            task
        })
        .collect();
    let plan = Plan {
        id,
        name: "demo".into(),
        repo: "/src/demo".into(),
        tasks: tasks.iter().map(|t| t.id).collect(),
        created_at: at(0),
    };
    (plan, tasks)
}

fn put_plan_with(batch: &mut Batch, plan: &Plan, tasks: &[Task]) {
    batch.put_plan(plan);
    for task in tasks {
        batch.put_task(task);
    }
}

#[test]
fn the_open_tasks_index_tells_plans_with_work_to_come_from_finished_ones() {
    use TaskStatus::*;
    let (_dir, path) = temp_db();
    let store = open(&path);
    let (old, old_tasks) = plan_of(&[Done, Failed, Blocked]);
    let (running, mut running_tasks) = plan_of(&[Done, Running, Pending]);
    let (done, done_tasks) = plan_of(&[Done, Done]);
    let (cancelled, cancelled_tasks) = plan_of(&[Cancelled]);
    let mut batch = Batch::new();
    put_plan_with(&mut batch, &old, &old_tasks);
    put_plan_with(&mut batch, &running, &running_tasks);
    put_plan_with(&mut batch, &done, &done_tasks);
    put_plan_with(&mut batch, &cancelled, &cancelled_tasks);
    store.commit_blocking(batch).unwrap();
    let read = |store: &StoreHandle| {
        store
            .read_blocking(|txn| {
                Ok((
                    query::open_plans(txn)?,
                    query::newest_finished_plans(txn, 2)?,
                ))
            })
            .unwrap()
    };
    assert_eq!(
        read(&store),
        (vec![running.id], vec![cancelled.id, done.id])
    );

    // The running plan's work ends; a retry re-opens the oldest.
    running_tasks[1].status = Done;
    running_tasks[2].status = Failed;
    let mut reopened = old_tasks.clone();
    reopened[1].status = Ready;
    let mut batch = Batch::new();
    batch
        .put_task(&running_tasks[1])
        .put_task(&running_tasks[2])
        .put_task(&reopened[1]);
    store.commit_blocking(batch).unwrap();
    store.close_blocking();
    let store = open(&path);
    assert_eq!(read(&store), (vec![old.id], vec![cancelled.id, done.id]));

    let (record, missing) = store
        .read_blocking(move |txn| {
            Ok((
                query::plan_record(txn, old.id)?,
                query::plan_record(txn, PlanId::generate())?,
            ))
        })
        .unwrap();
    let record = record.unwrap();
    assert_eq!(record.plan.id, old_tasks[0].plan);
    let statuses: Vec<_> = record.tasks.iter().map(|t| t.status).collect();
    assert_eq!(statuses, [Done, Ready, Blocked], "in the plan's order");
    assert!(record.work.is_none() && record.contexts.is_empty());
    assert!(missing.is_none());
}

#[test]
fn a_version_2_database_is_migrated_with_its_open_tasks_indexed() {
    use TaskStatus::*;
    let (_dir, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (finished, finished_tasks) = plan_of(&[Done, Failed]);
    let (open_plan, open_tasks) = plan_of(&[Done, Ready]);
    {
        // A version 2 file: the version 1 tables and the session status index.
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .create(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        migrate::create_v1(&txn).unwrap();
        txn.open_table(SESSION_STATUS).unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(SCHEMA_VERSION_KEY, 2).unwrap();
            let mut table = txn.open_table(TASKS).unwrap();
            for task in finished_tasks.iter().chain(&open_tasks) {
                table
                    .insert(
                        task.id.as_u128(),
                        serde_json::to_vec(task).unwrap().as_slice(),
                    )
                    .unwrap();
            }
            // The finished plan's failed task was parked on a merge conflict.
            let parked = TaskContext {
                plan: finished.id,
                task: finished_tasks[1].id,
                key: "t1".into(),
                summary: None,
                files_changed: vec!["a.rs".into()],
                values: Vec::new(),
                commit: None,
                merge: MergeState::Conflict {
                    files: vec!["a.rs".into()],
                    policy: crate::domain::task::ConflictPolicy::Manual,
                },
                conflict_reruns: 0,
                check_reruns: 0,
            };
            let mut contexts = txn.open_table(tables::TASK_CONTEXT).unwrap();
            contexts
                .insert(
                    parked.task.as_u128(),
                    serde_json::to_vec(&parked).unwrap().as_slice(),
                )
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = open(&path);
    let mut batch = Batch::new();
    batch.put_plan(&finished).put_plan(&open_plan);
    store.commit_blocking(batch).unwrap();
    assert_eq!(store.open_info().migrated_from, Some(2));
    let (open_plans, finished_plans) = store
        .read_blocking(|txn| {
            Ok((
                query::open_plans(txn)?,
                query::newest_finished_plans(txn, 10)?,
            ))
        })
        .unwrap();
    assert_eq!(open_plans, [open_plan.id]);
    assert_eq!(finished_plans, [finished.id]);
    let conflicted = store.read_blocking(query::conflict_plans).unwrap();
    assert_eq!(conflicted, [finished.id], "conflicts indexed too");
    store.close_blocking();
    assert_eq!(open(&path).open_info().migrated_from, None, "migrated once");
}
