//! The engine with plans in real git repositories, a real redb file and simulated agents that
//! really write files (`SIM-WRITE` in their prompts): sessions in worktrees of their own, live
//! overlap warnings, tasks held off files a running session touches, each conflict policy's
//! end state on the integration branch, shared context in a dependent's prompt, and a restart
//! mid-plan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "worktrees/gate.rs"]
mod gate;
#[path = "worktrees/ready.rs"]
mod ready;

use ocio::engine::EngineApi;
use std::path::Path;
use std::time::Duration;

use ocio::domain::MergeState;
use ocio::domain::task::ConflictPolicy;
use ocio::domain::{PlanId, SessionKind, SessionStatus, TaskStatus, Transition};
use ocio::engine::{ConflictState, EngineEvent, EngineHandle, EngineOptions};
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreHandle, StoreOptions, query};
use support::{TestRepo, integration_branch};

/// How long a test waits for the engine's next event.
const PATIENCE: Duration = Duration::from_secs(60);

fn options() -> EngineOptions {
    EngineOptions {
        tick: Duration::from_millis(20),
        ..EngineOptions::default()
    }
}

/// A plan file for `repo`; `body` is the rest of the TOML (settings and tasks).
fn plan(dir: &Path, repo: &TestRepo, name: &str, body: &str) -> PlanFile {
    let path = dir.join(format!("{name}.toml"));
    let text = format!("name = \"{name}\"\nrepo = {:?}\n{body}", repo.dir_str());
    std::fs::write(&path, text).unwrap();
    PlanFile::load(&path).unwrap()
}

fn open(dir: &Path) -> StoreHandle {
    Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap()
}

/// The task whose merge conflicted (the one that finished second) and the files.
fn conflict(seen: &[EngineEvent]) -> (String, Vec<String>, ConflictPolicy) {
    seen.iter()
        .find_map(|e| match e {
            EngineEvent::MergeConflict {
                key, files, policy, ..
            } => Some((key.clone(), files.clone(), *policy)),
            _ => None,
        })
        .expect("a merge conflict")
}

fn merged_keys(seen: &[EngineEvent]) -> Vec<String> {
    seen.iter()
        .filter_map(|e| match e {
            EngineEvent::Merged { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// Two tasks that write different contents to one new file, at the same time.
const RACE: &str = r#"
[[tasks]]
id = "one"
prompt = 'SIM-WRITE shared.txt one\n'
[[tasks]]
id = "two"
prompt = 'SIM-WRITE shared.txt two\n'
"#;

/// A fresh repository and database, and an engine with one simulated agent running `slots`
/// sessions at once, each taking `millis`.
async fn setup(
    slots: u32,
    millis: i64,
) -> (TestRepo, tempfile::TempDir, EngineHandle, StoreHandle) {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![support::sim_agent("sim", slots, &[], millis, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    (repo, dir, engine, store)
}

/// The id of task `key` of plan `plan`.
async fn task_id(store: &StoreHandle, plan: PlanId, key: &str) -> ocio::domain::TaskId {
    let tasks = store.read(query::tasks).await.unwrap();
    tasks
        .into_iter()
        .find(|t| t.key == key && t.plan == plan)
        .expect("the task is stored")
        .id
}

/// The engine's next event.
async fn next_event(events: &mut ocio::engine::Subscription) -> EngineEvent {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("the engine went quiet")
        .unwrap()
}

/// In the race plan, where `loser`'s merge conflicted: the integration branch holds the
/// other task's `shared.txt` only.
fn only_the_winner_merged(repo: &TestRepo, seen: &[EngineEvent], loser: &str) {
    let winner = if loser == "one" { "two" } else { "one" };
    let branch = integration_branch(seen);
    let content = repo.git(&["show", &format!("{branch}:shared.txt")]);
    assert_eq!(content, format!("{winner}\n"));
}

/// Why task `task` went to `status`, the first time it did.
fn cause_of(seen: &[EngineEvent], task: &str, status: TaskStatus) -> Option<String> {
    seen.iter().find_map(|e| match e {
        EngineEvent::Transition(e) => match &e.transition {
            Transition::Task { key, to, .. } if key == task && *to == status => {
                Some(e.cause.clone())
            }
            _ => None,
        },
        _ => None,
    })
}

/// The integration worktree has nothing uncommitted and no merge in progress.
fn integration_is_clean(seen: &[EngineEvent]) -> bool {
    let integration = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::IntegrationReady { path, .. } => Some(path.clone()),
            _ => None,
        })
        .expect("the plan got an integration worktree");
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&integration)
        .output()
        .unwrap();
    status.status.success() && status.stdout.is_empty()
}

/// A fresh repository, database and engine, and the race plan with `conflicts = policy`.
async fn race(
    policy: &str,
) -> (
    TestRepo,
    tempfile::TempDir,
    EngineHandle,
    StoreHandle,
    PlanFile,
) {
    let (repo, dir, engine, store) = setup(2, 1000).await;
    let body = format!("conflicts = \"{policy}\"\n{RACE}");
    let plan = plan(dir.path(), &repo, &format!("race-{policy}"), &body);
    (repo, dir, engine, store, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_edits_overlap_live_and_a_retry_runs_the_loser_again_on_top() {
    let (repo, _dir, engine, store, plan) = race("retry").await;
    let mut events = engine.subscribe();
    let plan_id = engine.submit_plan(plan).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    let overlap = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::Overlap { path, with, .. } => Some((path.clone(), with.len())),
            _ => None,
        })
        .expect("an overlap was reported while both ran");
    assert_eq!(overlap, ("shared.txt".to_string(), 1));
    let (loser, files, policy) = conflict(&seen);
    assert_eq!(
        (files, policy),
        (vec!["shared.txt".to_string()], ConflictPolicy::Retry)
    );
    let attempts: Vec<u32> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Dispatched { key, attempt, .. } if *key == loser => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2], "the loser ran again");
    let mut merged = merged_keys(&seen);
    merged.sort();
    assert_eq!(merged, ["one", "two"]);

    // The loser's second run started from the winner's work and wrote over it.
    let branch = integration_branch(&seen);
    let content = repo.git(&["show", &format!("{branch}:shared.txt")]);
    assert_eq!(content, format!("{loser}\n"));
    assert_eq!(
        repo.read("shared.txt"),
        None,
        "the user's checkout is untouched"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // The rerun was told why; the context store says how each merge went.
    let sessions = store.read(query::sessions).await.unwrap();
    let rerun = sessions
        .iter()
        .find(|s| s.title.ends_with(&format!("/{loser} #2")))
        .unwrap()
        .id;
    let checkpoints = store
        .read(move |txn| query::checkpoints(txn, rerun))
        .await
        .unwrap();
    let prompt = checkpoints[0].data["prompt"].as_str().unwrap().to_string();
    assert!(
        prompt.contains("This is a retry after a merge conflict"),
        "{prompt}"
    );
    assert!(prompt.contains("- shared.txt\n"), "{prompt}");
    let context = engine.context(plan_id).await.unwrap();
    assert_eq!(context.len(), 2);
    for task in &context {
        assert!(matches!(task.merge, MergeState::Merged { .. }), "{task:?}");
        assert_eq!(task.files_changed, ["shared.txt"]);
        assert_eq!(task.conflict_reruns, u32::from(task.key == loser));
    }
    assert!(engine.snapshot().await.unwrap().conflicts.is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_session_settles_the_conflict_and_the_merge_is_concluded() {
    let (repo, _dir, engine, store, plan) = race("resolver").await;
    let mut events = engine.subscribe();
    engine.submit_plan(plan).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    let (loser, files, policy) = conflict(&seen);
    assert_eq!(
        (files, policy),
        (vec!["shared.txt".to_string()], ConflictPolicy::Resolver)
    );
    let mut merged = merged_keys(&seen);
    merged.sort();
    assert_eq!(merged, ["one", "two"]);

    // One resolver session ran, in the integration worktree, and completed.
    let sessions = store.read(query::sessions).await.unwrap();
    let resolvers: Vec<_> = sessions
        .iter()
        .filter(|s| s.kind == SessionKind::Resolve)
        .collect();
    assert_eq!(resolvers.len(), 1);
    assert_eq!(resolvers[0].status, SessionStatus::Completed);
    assert!(resolvers[0].title.contains(&format!("/{loser} resolve #1")));
    let code_runs = sessions
        .iter()
        .filter(|s| s.kind == SessionKind::Code)
        .count();
    assert_eq!(code_runs, 2, "nobody ran again");
    // The resolver is a child of the session whose work it settled.
    let parent = resolvers[0]
        .parent
        .expect("a resolver has a parent session");
    let parent = sessions.iter().find(|s| s.id == parent).unwrap();
    assert_eq!(
        (parent.kind, parent.task),
        (SessionKind::Code, resolvers[0].task)
    );

    // The merge was concluded: a merge commit with both tasks' branches, no markers left.
    let branch = integration_branch(&seen);
    let content = repo.git(&["show", &format!("{branch}:shared.txt")]);
    assert_eq!(
        content,
        format!("{loser}\n"),
        "the simulated resolver kept its task's side"
    );
    let parents = repo.git(&["log", "-1", "--format=%P", &branch]);
    assert_eq!(parents.split_whitespace().count(), 2, "a merge commit");
    let subject = repo.git(&["log", "-1", "--format=%s", &branch]);
    assert!(
        subject.contains(&format!("Merge task {loser}")),
        "{subject}"
    );
    assert!(engine.snapshot().await.unwrap().conflicts.is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_conflict_parks_the_task_naming_the_files_until_the_operator_retries() {
    let (repo, _dir, engine, store, plan) = race("manual").await;
    let mut events = engine.subscribe();
    let plan_id = engine.submit_plan(plan).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                done: 1,
                failed: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let (loser, files, policy) = conflict(&seen);
    assert_eq!(
        (files, policy),
        (vec!["shared.txt".to_string()], ConflictPolicy::Manual)
    );
    let cause = cause_of(&seen, &loser, TaskStatus::Failed).expect("the task ended failed");
    assert!(cause.contains("merge conflict in shared.txt"), "{cause}");
    let conflicts = engine.snapshot().await.unwrap().conflicts;
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].key, loser);
    assert_eq!(conflicts[0].files, ["shared.txt"]);
    assert_eq!(conflicts[0].state, ConflictState::Parked);

    // The integration branch has the winner's work only, and no merge in progress.
    let branch = integration_branch(&seen);
    only_the_winner_merged(&repo, &seen, &loser);
    assert!(
        integration_is_clean(&seen),
        "the aborted merge left nothing behind"
    );

    // The operator retries: the task runs again on top of the winner's work and merges.
    let task = task_id(&store, plan_id, &loser).await;
    engine.retry(task).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    assert_eq!(merged_keys(&seen), std::slice::from_ref(&loser));
    let content = repo.git(&["show", &format!("{branch}:shared.txt")]);
    assert_eq!(content, format!("{loser}\n"));
    assert!(engine.snapshot().await.unwrap().conflicts.is_empty());
    engine.shutdown().await.unwrap();
}

/// `edit` starts at once and touches src/x.rs at its start (with `write`: a SIM- directive);
/// `warm` ends after `warm_ms`, which makes `declares` (declaring `src/`) ready while `edit`
/// still runs (it takes `edit_ms`). `declares` must wait for `edit`'s merge.
async fn a_declared_file_is_held(write: &str, edit_ms: i64, warm_ms: i64) {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![
        support::sim_agent("slow", 1, &["slow"], edit_ms, 0.0),
        support::sim_agent("fast", 2, &[], warm_ms, 0.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let body = format!(
        "[[tasks]]\nid = \"edit\"\ncapabilities = [\"slow\"]\nprompt = '{write} src/x.rs fn x() {{}}\\n'\n"
    ) + r#"
[[tasks]]
id = "warm"
prompt = "warm up"
[[tasks]]
id = "declares"
needs = ["warm"]
files = ["src/"]
prompt = 'SIM-WRITE src/y.rs fn y() {}\n'
"#;
    engine
        .submit_plan(plan(dir.path(), &repo, "held", &body))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 3,
                ..
            }
        ),
        "{finished:?}"
    );
    let edit_session = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::Dispatched { key, session, .. } if key == "edit" => Some(*session),
            _ => None,
        })
        .unwrap();
    let position =
        |wanted: &dyn Fn(&EngineEvent) -> bool| seen.iter().position(wanted).expect("event seen");
    let held: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::TaskHeld {
                key, session, file, ..
            } => Some((key.clone(), *session, file.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        held,
        [("declares".to_string(), edit_session, "src/x.rs".to_string())],
        "held once, naming the session and the file"
    );
    let edit_merged = position(&|e| matches!(e, EngineEvent::Merged { key, .. } if key == "edit"));
    let declares_started =
        position(&|e| matches!(e, EngineEvent::Dispatched { key, .. } if key == "declares"));
    let declares_held =
        position(&|e| matches!(e, EngineEvent::TaskHeld { key, .. } if key == "declares"));
    assert!(declares_held < edit_merged && edit_merged < declares_started);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_declaring_a_file_a_running_session_touches_waits_for_its_merge() {
    a_declared_file_is_held("SIM-WRITE", 4000, 1000).await;
}

/// The same when the running session changed the file with a shell command, which no event
/// names: the scan of its worktree finds it, although it is the only session running (the
/// task declaring the file is still to come, waiting for `gate`, whose agent joins at 4 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_by_a_shell_command_holds_a_task_that_declares_it() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![support::sim_agent("slow", 1, &["slow"], 8000, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let body = r#"
[[tasks]]
id = "edit"
capabilities = ["slow"]
prompt = 'SIM-SHELL-WRITE src/x.rs fn x() {}\n'
[[tasks]]
id = "gate"
capabilities = ["late"]
prompt = "open the gate"
[[tasks]]
id = "declares"
needs = ["gate"]
files = ["src/x.rs"]
prompt = 'SIM-WRITE src/y.rs fn y() {}\n'
"#;
    // The plan names a capability no agent has yet: check it against the late agent too.
    engine
        .add_agent(support::sim_agent("late", 1, &["late"], 300, 0.0))
        .await
        .unwrap();
    engine.drain("late", true).await.unwrap();
    engine
        .submit_plan(plan(dir.path(), &repo, "shell-held", body))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    engine.drain("late", false).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 3,
                ..
            }
        ),
        "{finished:?}"
    );
    let held: Vec<(String, String)> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::TaskHeld { key, file, .. } => Some((key.clone(), file.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(held, [("declares".to_string(), "src/x.rs".to_string())]);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_reaches_the_dependent_and_a_restart_mid_plan_keeps_the_worktrees() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
[[tasks]]
id = "a"
prompt = '''
Write the API.
SIM-WRITE src/a.txt alpha\n
SIM-PUBLISH port=8080
'''
[[tasks]]
id = "b"
needs = ["a"]
capabilities = ["b"]
prompt = "Use {{tasks.a.summary}}\nSIM-WRITE src/b.txt beta\\n"
"#;
    let plan = plan(dir.path(), &repo, "ctx", body);
    let (plan_id, branch, first_b_session) = {
        let store = open(dir.path());
        // `b` runs for a minute on the first engine: it is stopped mid-run.
        let agents = vec![
            support::sim_agent("sim", 2, &[], 100, 0.0),
            support::sim_agent("long", 1, &["b"], 60_000, 0.0),
        ];
        let engine = EngineHandle::start(store.clone(), agents, options())
            .await
            .unwrap();
        let mut events = engine.subscribe();
        let plan_id = engine.submit_plan(plan).await.unwrap();
        let (mut branch, mut b) = (None, None);
        let session = loop {
            let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
                .await
                .unwrap()
                .unwrap();
            match event {
                EngineEvent::IntegrationReady { branch: b, .. } => branch = Some(b),
                EngineEvent::Dispatched { key, session, .. } if key == "b" => b = Some(session),
                // Its first activity: its worktree is made and the run under way.
                EngineEvent::Activity { session, .. } if Some(session) == b => break session,
                _ => {}
            }
        };
        let context = engine.context(plan_id).await.unwrap();
        assert_eq!(context.len(), 1);
        assert_eq!(
            context[0].values,
            [("port".to_string(), "8080".to_string())]
        );
        assert_eq!(context[0].files_changed, ["src/a.txt"]);
        assert!(matches!(context[0].merge, MergeState::Merged { .. }));
        engine.shutdown().await.unwrap();
        store.close().await;
        (plan_id, branch.unwrap(), session)
    };
    let worktrees = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(worktrees.contains("/integration\n"), "{worktrees}");
    assert!(
        worktrees.contains("/b/1\n"),
        "b's first worktree: {worktrees}"
    );

    let store = open(dir.path());
    let agents = vec![
        support::sim_agent("sim", 2, &[], 100, 0.0),
        support::sim_agent("long", 1, &["b"], 100, 0.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    // What `a` left survived the restart.
    let context = engine.context(plan_id).await.unwrap();
    assert_eq!(
        context[0].values,
        [("port".to_string(), "8080".to_string())]
    );
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    assert_eq!(merged_keys(&seen), ["b"]);
    let tree = repo.git(&["ls-tree", "-r", "--name-only", &branch]);
    assert_eq!(tree, "README.md\nsrc/a.txt\nsrc/b.txt\n");

    let sessions = store.read(query::sessions).await.unwrap();
    let first = sessions.iter().find(|s| s.id == first_b_session).unwrap();
    assert_eq!(first.status, SessionStatus::Lost, "{first:?}");
    let second = sessions
        .iter()
        .find(|s| s.title.ends_with("/b #2"))
        .unwrap()
        .id;
    let checkpoints = store
        .read(move |txn| query::checkpoints(txn, second))
        .await
        .unwrap();
    let prompt = checkpoints[0].data["prompt"].as_str().unwrap().to_string();
    for wanted in [
        "Use simulated result of a",
        "## Context from upstream tasks",
        "### Task `a`",
        "- port = 8080",
        "Files changed (1): src/a.txt",
    ] {
        assert!(prompt.contains(wanted), "{wanted:?} missing in:\n{prompt}");
    }
    assert!(
        !prompt.contains("OCIO-PUBLISH name=value"),
        "b has no dependents: no publishing paragraph"
    );
    let a_session = sessions
        .iter()
        .find(|s| s.title.ends_with("/a #1"))
        .unwrap()
        .id;
    let a_prompt = store
        .read(move |txn| query::checkpoints(txn, a_session))
        .await
        .unwrap()[0]
        .data["prompt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(a_prompt.contains("OCIO-PUBLISH name=value"), "{a_prompt}");
    let _: PlanId = plan_id;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_base_is_refused_at_submit_and_plans_outside_git_run_in_place() {
    let (repo, dir, engine, store) = setup(2, 10).await;
    let err = engine
        .submit_plan(plan(
            dir.path(),
            &repo,
            "bad",
            "base = \"nope\"\n[[tasks]]\nid = \"t\"\nprompt = \"p\"\n",
        ))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("base \"nope\" is not a branch"),
        "{err}"
    );
    assert!(
        store.read(query::plans).await.unwrap().is_empty(),
        "nothing queued"
    );

    // A directory outside git: the session writes where the plan says.
    let plain = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"plain\"\nrepo = {:?}\n[[tasks]]\nid = \"t\"\nprompt = 'SIM-WRITE out.txt x'\n",
            plain.path()
        ),
    )
    .unwrap();
    let mut events = engine.subscribe();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished { ok: true, .. }
    ));
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, EngineEvent::IntegrationReady { .. }))
    );
    assert_eq!(
        std::fs::read_to_string(plain.path().join("out.txt")).unwrap(),
        "x"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_worktrees_sessions_take_turns_in_the_checkout_and_their_files_are_recorded() {
    let (repo, dir, engine, _store) = setup(2, 300).await;
    let mut events = engine.subscribe();
    let body = r#"
worktrees = false
[[tasks]]
id = "a"
prompt = 'SIM-WRITE a.txt a'
[[tasks]]
id = "b"
prompt = 'SIM-WRITE b.txt b'
"#;
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "shared", body))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished {
            ok: true,
            done: 2,
            ..
        }
    ));
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, EngineEvent::IntegrationReady { .. }))
    );
    // Under the repo lock: the second started only after the first ended.
    let order: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Dispatched { key, .. } => Some(format!("start {key}")),
            EngineEvent::Transition(e) => match &e.transition {
                Transition::Task {
                    key,
                    to: TaskStatus::Done,
                    ..
                } => Some(format!("done {key}")),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(
        order == ["start a", "done a", "start b", "done b"]
            || order == ["start b", "done b", "start a", "done a"],
        "{order:?}"
    );
    assert_eq!(repo.read("a.txt").as_deref(), Some("a"));
    let context = engine.context(plan_id).await.unwrap();
    // Nothing is committed in a shared checkout: the later session's files include what the
    // earlier one left there.
    let first = if order[0] == "start a" { "a" } else { "b" };
    for task in &context {
        let own = format!("{}.txt", task.key);
        assert!(task.files_changed.contains(&own), "{task:?}");
        if task.key == first {
            assert_eq!(task.files_changed, [own]);
        } else {
            assert_eq!(task.files_changed, ["a.txt", "b.txt"]);
        }
    }
    assert!(context.iter().all(|c| c.merge == MergeState::None));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_diff_shows_its_work_while_it_runs_and_after_it_merged() {
    let (repo, dir, engine, _store) = setup(1, 1500).await;
    let mut events = engine.subscribe();
    let body = "[[tasks]]\nid = \"write\"\nprompt = 'SIM-WRITE notes/hello.txt ahoy\\n'\n";
    engine
        .submit_plan(plan(dir.path(), &repo, "diffs", body))
        .await
        .unwrap();
    // While it runs: once its file is written, the worktree diff shows it as a new file.
    let session = loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("no activity")
            .unwrap()
        {
            EngineEvent::Activity { session, entry }
                if entry.activity.summary().contains("hello.txt") =>
            {
                break session;
            }
            _ => {}
        }
    };
    let live = engine.diff(session).await.unwrap();
    assert!(
        live.contains("notes/hello.txt") && live.contains("+ahoy"),
        "{live}"
    );
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    // After: the commit its task left on its branch.
    let merged = engine.diff(session).await.unwrap();
    assert!(merged.starts_with("commit "), "{merged}");
    assert!(
        merged.contains("notes/hello.txt") && merged.contains("+ahoy"),
        "{merged}"
    );
    engine.shutdown().await.unwrap();
}

/// The worktrees git lists whose path has `/<component>/` in it.
fn worktrees_of(repo: &TestRepo, component: &str) -> Vec<String> {
    let needle = format!("/{component}/");
    repo.git(&["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|line| line.strip_prefix("worktree "))
        .filter(|path| path.contains(&needle))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_name_used_again_gets_branches_of_its_own_and_each_plan_cleans_up_as_it_says() {
    let (repo, dir, engine, _store) = setup(2, 100).await;
    let mut events = engine.subscribe();
    let run = |cleanup: &str, content: &str| {
        format!(
            "cleanup = \"{cleanup}\"\n[[tasks]]\nid = \"a\"\nprompt = 'SIM-WRITE a.txt {content}'\n"
        )
    };

    engine
        .submit_plan(plan(dir.path(), &repo, "rerun", &run("keep", "first")))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished { ok: true, .. }
    ));
    assert_eq!(integration_branch(&seen), "ocio/rerun/integration");

    // The same plan file again: its branches must not mix with the first run's.
    engine
        .submit_plan(plan(
            dir.path(),
            &repo,
            "rerun",
            &run("remove-all", "second"),
        ))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished { ok: true, .. }
    ));
    assert_eq!(integration_branch(&seen), "ocio/rerun-2/integration");
    assert_eq!(repo.git(&["show", "ocio/rerun/integration:a.txt"]), "first");
    assert_eq!(
        repo.git(&["show", "ocio/rerun-2/integration:a.txt"]),
        "second"
    );

    // `remove-all` removes every worktree of the second run once it has finished (the cleanup
    // runs after the plan's end is announced); `keep` left the first run's alone.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !worktrees_of(&repo, "rerun-2").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            worktrees_of(&repo, "rerun-2")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept = worktrees_of(&repo, "rerun");
    assert_eq!(kept.len(), 2, "integration and a/1: {kept:?}");
    assert!(kept.iter().any(|path| path.ends_with("/rerun/integration")));
    assert!(kept.iter().any(|path| path.ends_with("/rerun/a/1")));
    let branches = repo.git(&["branch", "--list", "ocio/*", "--format=%(refname:short)"]);
    assert_eq!(
        branches.lines().collect::<Vec<_>>(),
        [
            "ocio/rerun-2/integration",
            "ocio/rerun/a",
            "ocio/rerun/integration"
        ],
        "the second run's merged task branch went; both results stay"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_task_while_its_resolver_runs_ends_it_cancelled_and_abandons_the_merge() {
    let (repo, _dir, engine, store, plan) = race("resolver").await;
    let mut events = engine.subscribe();
    let plan_id = engine.submit_plan(plan).await.unwrap();
    // Wait for the resolver session to start (the loser's dispatch after its conflict).
    let mut seen = Vec::new();
    let loser = loop {
        let event = next_event(&mut events).await;
        seen.push(event.clone());
        if let EngineEvent::Dispatched { key, .. } = &event
            && seen
                .iter()
                .any(|e| matches!(e, EngineEvent::MergeConflict { key: k, .. } if k == key))
        {
            break key.clone();
        }
    };
    let task = task_id(&store, plan_id, &loser).await;
    engine.cancel(task).await.unwrap();
    let (rest, finished) = support::until_finished(&mut events, PATIENCE).await;
    seen.extend(rest);
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                done: 1,
                failed: 0,
                cancelled: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let cause = cause_of(&seen, &loser, TaskStatus::Cancelled).expect("the task ended cancelled");
    assert!(cause.starts_with("cancelled by the operator"), "{cause}");
    let sessions = store.read(query::sessions).await.unwrap();
    let resolver = sessions
        .iter()
        .find(|s| s.kind == SessionKind::Resolve)
        .unwrap();
    assert_eq!(resolver.status, SessionStatus::Cancelled);

    // The merge was abandoned: the winner's work only, nothing in progress, and a cancelled
    // task is not in the conflicts queue (nobody has to settle it).
    only_the_winner_merged(&repo, &seen, &loser);
    assert!(integration_is_clean(&seen), "no merge left in progress");
    assert!(engine.snapshot().await.unwrap().conflicts.is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_no_event_names_are_found_in_the_worktrees_and_reported_as_overlaps() {
    // Long enough runs that a scan (every 3 s) sees both at work.
    let (repo, dir, engine, _store) = setup(2, 7000).await;
    let mut events = engine.subscribe();
    let body = r#"
conflicts = "manual"
[[tasks]]
id = "gen-a"
prompt = 'SIM-SHELL-WRITE generated.rs a'
[[tasks]]
id = "gen-b"
prompt = 'SIM-SHELL-WRITE generated.rs b'
"#;
    engine
        .submit_plan(plan(dir.path(), &repo, "shell", body))
        .await
        .unwrap();
    let (seen, _) = support::until_finished(&mut events, PATIENCE).await;
    let overlaps: Vec<(&str, usize)> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Overlap { path, with, .. } => Some((path.as_str(), with.len())),
            _ => None,
        })
        .collect();
    assert_eq!(overlaps, [("generated.rs", 1)], "told once, while both ran");
    // It came before either session ended.
    let overlap_at = seen
        .iter()
        .position(|e| matches!(e, EngineEvent::Overlap { .. }))
        .unwrap();
    let first_end = seen
        .iter()
        .position(|e| {
            matches!(
                e,
                EngineEvent::MergeConflict { .. } | EngineEvent::Merged { .. }
            )
        })
        .unwrap();
    assert!(overlap_at < first_end);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_task_whose_conflict_waits_for_a_resolver_abandons_the_merge() {
    let (repo, _dir, engine, store, plan) = race("resolver").await;
    let mut events = engine.subscribe();
    let plan_id = engine.submit_plan(plan).await.unwrap();
    // Both run; drained meanwhile, the agent takes no resolver session afterwards.
    let mut seen = Vec::new();
    let mut dispatched = 0;
    while dispatched < 2 {
        let event = next_event(&mut events).await;
        dispatched += usize::from(matches!(event, EngineEvent::Dispatched { .. }));
        seen.push(event);
    }
    engine.drain("sim", true).await.unwrap();
    let loser = loop {
        let event = next_event(&mut events).await;
        seen.push(event.clone());
        if let EngineEvent::MergeConflict { key, .. } = event {
            break key;
        }
    };
    let task = task_id(&store, plan_id, &loser).await;
    engine.cancel(task).await.unwrap();
    let (rest, finished) = support::until_finished(&mut events, PATIENCE).await;
    seen.extend(rest);
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                done: 1,
                cancelled: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let cause = cause_of(&seen, &loser, TaskStatus::Cancelled).expect("the task ended cancelled");
    assert!(
        cause.starts_with("cancelled by the operator before a resolver session took it"),
        "{cause}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    assert!(
        sessions.iter().all(|s| s.kind != SessionKind::Resolve),
        "no resolver ran"
    );
    only_the_winner_merged(&repo, &seen, &loser);
    assert!(integration_is_clean(&seen), "the merge was aborted");
    engine.shutdown().await.unwrap();
}

/// `remove-all` on a plan that ended with a failed task: nothing of it is left, a restart does
/// not bring its integration worktree back, and a retry still runs and merges (the merge
/// makes the integration worktree again from its branch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_remove_all_a_restart_leaves_the_plan_alone_and_a_retry_still_merges() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let failing = vec![support::sim_agent("sim", 1, &[], 50, 1.0)];
    let engine = EngineHandle::start(store.clone(), failing, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let body = "cleanup = \"remove-all\"\n[[tasks]]\nid = \"a\"\nretries = 0\nprompt = 'SIM-WRITE a.txt done'\n";
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "gone", body))
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
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !worktrees_of(&repo, "gone").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            worktrees_of(&repo, "gone")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown().await.unwrap();

    // A new engine, with an agent that succeeds.
    let working = vec![support::sim_agent("sim", 1, &[], 50, 0.0)];
    let engine = EngineHandle::start(store.clone(), working, options())
        .await
        .unwrap();
    assert_eq!(
        worktrees_of(&repo, "gone"),
        Vec::<String>::new(),
        "left alone"
    );
    let mut events = engine.subscribe();
    engine
        .retry(task_id(&store, plan_id, "a").await)
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    assert_eq!(merged_keys(&seen), ["a"]);
    assert_eq!(repo.git(&["show", "ocio/gone/integration:a.txt"]), "done");
    engine.shutdown().await.unwrap();
}

/// A task whose session completed while another task's merge holds the plan's merge lock
/// waits in the merge queue; cancelled there, it leaves the queue without merging, and its
/// files are no longer held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_task_waiting_to_merge_takes_it_out_of_the_queue() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents = vec![
        support::sim_agent("sim", 2, &["race"], 500, 0.0),
        support::sim_agent("slow", 1, &["slow"], 2500, 0.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let body = r#"
conflicts = "resolver"
[[tasks]]
id = "one"
capabilities = ["race"]
prompt = 'SIM-WRITE shared.txt one\n'
[[tasks]]
id = "two"
capabilities = ["race"]
prompt = 'SIM-WRITE shared.txt two\n'
[[tasks]]
id = "three"
capabilities = ["slow"]
files = ["three.txt"]
prompt = 'SIM-WRITE three.txt three\n'
"#;
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "queue", body))
        .await
        .unwrap();
    // All three run; drained, neither agent takes the resolver the race's loser will need,
    // so the loser's merge holds the merge lock and `three` (slower) queues behind it.
    let mut seen = Vec::new();
    let mut sessions = std::collections::HashMap::new();
    while sessions.len() < 3 {
        let event = next_event(&mut events).await;
        if let EngineEvent::Dispatched { key, session, .. } = &event {
            sessions.insert(*session, key.clone());
        }
        seen.push(event);
    }
    engine.drain("sim", true).await.unwrap();
    engine.drain("slow", true).await.unwrap();
    let (mut conflicted, mut three_done) = (None, false);
    while conflicted.is_none() || !three_done {
        let event = next_event(&mut events).await;
        match &event {
            EngineEvent::MergeConflict { key, .. } => conflicted = Some(key.clone()),
            EngineEvent::Transition(e) => {
                if let Transition::Session { id, to, .. } = &e.transition
                    && *to == SessionStatus::Completed
                    && sessions.get(id).map(String::as_str) == Some("three")
                {
                    three_done = true;
                }
            }
            _ => {}
        }
        seen.push(event);
    }
    let loser = conflicted.unwrap();
    let three = task_id(&store, plan_id, "three").await;
    engine.cancel(three).await.unwrap();
    engine
        .cancel(task_id(&store, plan_id, &loser).await)
        .await
        .unwrap();
    let (rest, finished) = support::until_finished(&mut events, PATIENCE).await;
    seen.extend(rest);
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                done: 1,
                cancelled: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    assert_eq!(
        cause_of(&seen, "three", TaskStatus::Cancelled).as_deref(),
        Some("cancelled by the operator")
    );
    assert_eq!(merged_keys(&seen).len(), 1, "only the race's winner merged");
    let branch = integration_branch(&seen);
    let files = repo.git(&["ls-tree", "--name-only", &branch]);
    assert!(!files.lines().any(|f| f == "three.txt"), "{files}");
    assert!(integration_is_clean(&seen));

    // Its files were let go with it: run again, it is not held off its own file by its old
    // session, and merges.
    engine.drain("slow", false).await.unwrap();
    engine.retry(three).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { done: 2, .. }),
        "{finished:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, EngineEvent::TaskHeld { .. })),
        "{seen:?}"
    );
    assert_eq!(merged_keys(&seen), ["three"]);
    engine.shutdown().await.unwrap();
}

/// Issue "Trust in daily use", item 8: each attempt shows its own work. Attempt 1 is stopped
/// before it finishes (it wrote a file but committed nothing); the operator's retry runs
/// attempt 2, which completes with a commit. Attempt 1's diff is not attempt 2's commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempts_diff_is_its_own_not_the_next_attempts() {
    let (repo, dir, engine, store) = setup(1, 1500).await;
    let mut events = engine.subscribe();
    let body = "[[tasks]]\nid = \"write\"\nprompt = 'SIM-WRITE notes/hello.txt ahoy\\n'\n";
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "attempts", body))
        .await
        .unwrap();
    let first = loop {
        match next_event(&mut events).await {
            EngineEvent::Activity { session, entry }
                if entry.activity.summary().contains("hello.txt") =>
            {
                break session;
            }
            _ => {}
        }
    };
    let task = task_id(&store, plan_id, "write").await;
    engine.cancel(task).await.unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: false, .. }),
        "{finished:?}"
    );
    engine.retry(task).await.unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    let second = sessions
        .iter()
        .find(|s| s.task == Some(task) && s.attempt == 2)
        .expect("a second attempt");
    assert_eq!(second.status, SessionStatus::Completed);
    let own = engine.diff(second.id).await.unwrap();
    assert!(own.starts_with("commit "), "{own}");
    let earlier = engine.diff(first).await.unwrap();
    assert!(
        !earlier.contains("commit ") && !earlier.contains("+ahoy"),
        "attempt 1 shows attempt 2's work: {earlier}"
    );
    engine.shutdown().await.unwrap();
}

/// Issue "Land the work": a task whose session changed nothing is reported as such, not as
/// merged: no `Merged` event, its transition says it changed nothing, and its context says
/// `unchanged`; a task beside it that wrote a file merges as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_changed_nothing_is_said_to_have_changed_nothing_not_merged() {
    let (repo, dir, engine, _store) = setup(2, 100).await;
    let mut events = engine.subscribe();
    let body = "[[tasks]]\nid = \"idle\"\nprompt = \"look, do not touch\"\n[[tasks]]\nid = \"write\"\nprompt = 'SIM-WRITE notes.txt hi\\n'\n";
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "quiet", body))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    assert_eq!(
        merged_keys(&seen),
        ["write"],
        "only the task with work merged"
    );
    let idle = cause_of(&seen, "idle", TaskStatus::Done).unwrap();
    assert_eq!(idle, "changed nothing: no work to merge");
    let write = cause_of(&seen, "write", TaskStatus::Done).unwrap();
    assert_eq!(write, "merged into the integration branch");
    let context = engine.context(plan_id).await.unwrap();
    let of = |key: &str| context.iter().find(|c| c.key == key).unwrap().merge.clone();
    assert_eq!(of("idle"), MergeState::Unchanged);
    assert!(matches!(of("write"), MergeState::Merged { .. }));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_plans_review_has_each_tasks_files_and_answer_and_marks_survive_a_restart() {
    use ocio::domain::review::Reviewed;
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let body = "[[tasks]]\nid = \"api\"\nprompt = 'SIM-WRITE src/api.txt alpha\\n'\n[[tasks]]\nid = \"docs\"\nprompt = 'SIM-WRITE docs.txt beta\\n'\n[[tasks]]\nid = \"idle\"\nprompt = \"look only\"\n";
    let plan_file = plan(dir.path(), &repo, "rev", body);
    let plan_id = {
        let store = open(dir.path());
        let agents = vec![support::sim_agent("sim", 2, &[], 50, 0.0)];
        let engine = EngineHandle::start(store.clone(), agents, options())
            .await
            .unwrap();
        let mut events = engine.subscribe();
        let plan_id = engine.submit_plan(plan_file).await.unwrap();
        support::until_finished(&mut events, PATIENCE).await;
        let review = engine.review(plan_id).await.unwrap();
        let branch = review
            .branch
            .as_ref()
            .expect("a worktree plan has a branch");
        assert_eq!(branch.integration, "ocio/rev/integration");
        assert_eq!(branch.base, "main", "where `ocio land` delivers");
        assert_eq!(branch.ahead, 4, "a commit and its merge per task with work");
        assert_eq!(branch.behind, 0);
        let files: Vec<(&str, char, Vec<String>, Option<u64>)> = branch
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.status, f.tasks.clone(), f.added))
            .collect();
        assert_eq!(
            files,
            [
                ("docs.txt", 'A', vec!["docs".to_string()], Some(1)),
                ("src/api.txt", 'A', vec!["api".to_string()], Some(1)),
            ]
        );
        assert!(branch.diff.contains("+alpha") && branch.diff.contains("+beta"));
        let task = |key: &str| review.tasks.iter().find(|t| t.key == key).unwrap();
        assert_eq!(task("idle").merge, MergeState::Unchanged);
        assert!(matches!(task("api").merge, MergeState::Merged { .. }));
        let answer = task("api").answer.clone().unwrap();
        assert!(answer.contains("simulated result of api"), "{answer}");
        assert_eq!(task("api").sessions, 1);
        assert_eq!(task("api").usage.input_tokens, 1000);
        assert_eq!(
            review.usage.input_tokens, 3000,
            "summed over the plan's sessions"
        );
        engine
            .mark_reviewed(plan_id, "docs.txt", true)
            .await
            .unwrap();
        let error = engine
            .mark_reviewed(plan_id, "nope.txt", true)
            .await
            .unwrap_err();
        assert_eq!(error.kind, ocio::engine::ErrorKind::Invalid);
        assert!(error.message.contains("rev") && error.message.contains("nope.txt"));
        engine.shutdown().await.unwrap();
        store.close().await;
        plan_id
    };
    // A new engine on the same file: the mark is kept.
    let store = open(dir.path());
    let agents = vec![support::sim_agent("sim", 2, &[], 50, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options())
        .await
        .unwrap();
    let reviewed = |review: &ocio::domain::review::PlanReview, path: &str| {
        let branch = review.branch.as_ref().unwrap();
        branch
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .reviewed
    };
    let review = engine.review(plan_id).await.unwrap();
    assert_eq!(reviewed(&review, "docs.txt"), Reviewed::Yes);
    assert_eq!(reviewed(&review, "src/api.txt"), Reviewed::No);
    // The file changes on the branch after it was marked: not reviewed any more.
    let worktrees = repo.git(&["worktree", "list", "--porcelain"]);
    let integration = worktrees
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .find(|p| p.ends_with("/integration"))
        .unwrap()
        .to_string();
    std::fs::write(Path::new(&integration).join("docs.txt"), "beta, edited\n").unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(&integration)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["commit", "-qam", "edit docs"]);
    let review = engine.review(plan_id).await.unwrap();
    assert_eq!(reviewed(&review, "docs.txt"), Reviewed::Changed);
    engine
        .mark_reviewed(plan_id, "docs.txt", false)
        .await
        .unwrap();
    let review = engine.review(plan_id).await.unwrap();
    assert_eq!(reviewed(&review, "docs.txt"), Reviewed::No);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_without_worktrees_is_reviewed_without_branch_data_saying_why() {
    let (repo, dir, engine, _store) = setup(1, 50).await;
    let mut events = engine.subscribe();
    let body = "worktrees = false\n[[tasks]]\nid = \"w\"\nprompt = 'SIM-WRITE notes.txt hi\\n'\n";
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "flat", body))
        .await
        .unwrap();
    support::until_finished(&mut events, PATIENCE).await;
    let review = engine.review(plan_id).await.unwrap();
    assert!(review.branch.is_none());
    let why = review.no_branch.unwrap();
    assert!(
        why.contains("flat") && why.contains("shared checkout"),
        "{why}"
    );
    assert_eq!(review.tasks.len(), 1);
    let error = engine
        .mark_reviewed(plan_id, "notes.txt", true)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ocio::engine::ErrorKind::NotNow);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_tasks_review_counts_the_tokens_its_session_used_so_far() {
    let (repo, dir, engine, _store) = setup(1, 6_000).await;
    let mut events = engine.subscribe();
    let body = "[[tasks]]\nid = \"slow\"\nprompt = 'SIM-WRITE slow.txt later\\n'\n";
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "live", body))
        .await
        .unwrap();
    loop {
        if let EngineEvent::Activity { entry, .. } = next_event(&mut events).await
            && matches!(entry.activity, ocio::engine::Activity::Step { .. })
        {
            break;
        }
    }
    let review = engine.review(plan_id).await.unwrap();
    let task = &review.tasks[0];
    assert_eq!(task.status, TaskStatus::Running);
    assert_eq!(
        task.usage.input_tokens, 500,
        "half its run's usage, reported so far"
    );
    assert_eq!(review.usage.input_tokens, 500);
    assert!(
        review.branch.unwrap().files.is_empty(),
        "nothing merged yet"
    );
    engine.shutdown().await.unwrap();
}
