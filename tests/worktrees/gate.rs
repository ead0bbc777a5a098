//! The plan's check after each merge, against real git and simulated sessions that follow
//! what the check printed (its output reaches the rerun's or the fix session's prompt, and a
//! `SIM-WRITE` line there is a directive to the simulator): each `on_check_failure` policy's
//! end state on the integration branch, and a task that changed nothing not checked.

use super::*;

/// Fails while `value.txt` says "broken", printing how to fix it.
const CHECK: &str = "echo checking value; if grep -q broken value.txt; then printf '%s\\n' 'SIM-WRITE value.txt fixed'; exit 1; fi";

fn body(policy: &str, check: &str) -> String {
    format!(
        "check = {check:?}\non_check_failure = {policy:?}\n[[tasks]]\nid = \"t\"\nprompt = 'SIM-WRITE value.txt broken'\n"
    )
}

/// The checks that ended: (passed, fix).
fn checks(seen: &[EngineEvent]) -> Vec<(bool, Option<u32>)> {
    seen.iter()
        .filter_map(|e| match e {
            EngineEvent::CheckEnded { passed, fix, .. } => Some((*passed, *fix)),
            _ => None,
        })
        .collect()
}

async fn run_plan(
    policy: &str,
    check: &str,
) -> (
    TestRepo,
    EngineHandle,
    PlanId,
    Vec<EngineEvent>,
    EngineEvent,
) {
    let (repo, dir, engine, _store) = setup(2, 50).await;
    let mut events = engine.subscribe();
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "gated", &body(policy, check)))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    std::mem::forget(dir); // the engine's store lives there until the test ends
    (repo, engine, plan_id, seen, finished)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_undoes_the_merge_and_the_task_runs_again_told_the_output() {
    let (repo, engine, plan_id, seen, finished) = run_plan("revert", CHECK).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?} after {seen:#?}"
    );
    assert_eq!(checks(&seen), [(false, None), (true, None)]);
    assert!(
        seen.iter().any(
            |e| matches!(e, EngineEvent::CheckProgress { line, .. } if line == "checking value")
        ),
        "the check's output is passed on as it runs"
    );
    let rerun_cause = seen
        .iter()
        .rev()
        .find_map(|e| match e {
            EngineEvent::Transition(e) => match &e.transition {
                Transition::Task { key, to, .. } if key == "t" && *to == TaskStatus::Ready => {
                    Some(e.cause.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default();
    assert!(
        rerun_cause.contains(
            "failed after its merge, which was undone: runs again, told the output (rerun 1 of 3)"
        ),
        "{rerun_cause}"
    );
    let done = cause_of(&seen, "t", TaskStatus::Done).unwrap();
    assert!(done.ends_with("passed"), "{done}");
    let branch = integration_branch(&seen);
    assert_eq!(repo.git(&["show", &format!("{branch}:value.txt")]), "fixed");
    let history = repo.git(&["log", "-p", &branch, "--", "value.txt"]);
    assert!(
        !history.contains("+broken"),
        "the failed merge left no trace on the branch:\n{history}"
    );
    let context = engine.context(plan_id).await.unwrap();
    assert_eq!(context[0].check_reruns, 1);
    assert!(matches!(context[0].merge, MergeState::Merged { .. }));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_undoes_the_merge_and_the_task_waits_with_its_work_on_its_branch() {
    let (repo, engine, plan_id, seen, finished) = run_plan("manual", CHECK).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: false, .. }),
        "{finished:?}"
    );
    assert_eq!(checks(&seen), [(false, None)]);
    let failed = cause_of(&seen, "t", TaskStatus::Failed).unwrap();
    assert!(
        failed.contains("failed after its merge, which was undone")
            && failed.contains("on_check_failure = \"manual\""),
        "{failed}"
    );
    let branch = integration_branch(&seen);
    let files = repo.git(&["ls-tree", "--name-only", &branch]);
    assert!(!files.contains("value.txt"), "{files}");
    let task_branch = branch.replace("/integration", "/t");
    assert_eq!(
        repo.git(&["show", &format!("{task_branch}:value.txt")]),
        "broken"
    );
    assert!(integration_is_clean(&seen));
    let context = engine.context(plan_id).await.unwrap();
    assert!(
        matches!(&context[0].merge, MergeState::CheckFailed { output, .. } if output.contains("SIM-WRITE value.txt fixed")),
        "{context:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_runs_a_session_on_top_of_the_merge_and_checks_again() {
    let (repo, engine, _plan, seen, finished) = run_plan("fix", CHECK).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?} after {seen:#?}"
    );
    assert_eq!(checks(&seen), [(false, None), (true, Some(1))]);
    let done = cause_of(&seen, "t", TaskStatus::Done).unwrap();
    assert!(done.ends_with("passed after fix session 1"), "{done}");
    let branch = integration_branch(&seen);
    assert_eq!(repo.git(&["show", &format!("{branch}:value.txt")]), "fixed");
    let subjects = repo.git(&["log", "--format=%s", &branch]);
    assert!(
        subjects
            .lines()
            .next()
            .unwrap()
            .starts_with("Fix `echo checking value"),
        "the fix is its own commit on top of the merge:\n{subjects}"
    );
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, EngineEvent::Dispatched { .. }))
            .count(),
        2,
        "the task's session and one fix session"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixes_that_do_not_help_are_undone_with_the_merge() {
    let (repo, engine, _plan, seen, finished) = run_plan("fix", "echo nope; exit 1").await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: false, .. }),
        "{finished:?}"
    );
    assert_eq!(
        checks(&seen),
        [(false, None), (false, Some(1)), (false, Some(2))]
    );
    let failed = cause_of(&seen, "t", TaskStatus::Failed).unwrap();
    assert!(
        failed.contains("still failed after 2 fix sessions"),
        "{failed}"
    );
    let branch = integration_branch(&seen);
    let files = repo.git(&["ls-tree", "--name-only", &branch]);
    assert!(
        !files.contains("value.txt"),
        "merge and fixes undone: {files}"
    );
    assert!(integration_is_clean(&seen));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_changed_nothing_is_not_checked() {
    let (repo, dir, engine, _store) = setup(2, 50).await;
    let mut events = engine.subscribe();
    let body = "check = \"exit 1\"\n[[tasks]]\nid = \"idle\"\nprompt = \"look only\"\n";
    engine
        .submit_plan(plan(dir.path(), &repo, "idle", body))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(matches!(
        finished,
        EngineEvent::PlanFinished { ok: true, .. }
    ));
    assert!(checks(&seen).is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_under_way_at_a_stop_runs_again_after_the_restart() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("check-runs");
    // The first run of the check hangs; the second passes.
    let check = format!(
        "echo run >> {runs}; if [ $(wc -l < {runs}) -lt 2 ]; then sleep 600; fi",
        runs = runs.display()
    );
    let body =
        format!("check = {check:?}\n[[tasks]]\nid = \"t\"\nprompt = 'SIM-WRITE value.txt v'\n");
    let plan = plan(dir.path(), &repo, "stopped", &body);
    let agents = || vec![support::sim_agent("sim", 2, &[], 50, 0.0)];
    {
        let store = open(dir.path());
        let engine = EngineHandle::start(store.clone(), agents(), options())
            .await
            .unwrap();
        let mut events = engine.subscribe();
        engine.submit_plan(plan).await.unwrap();
        loop {
            if let EngineEvent::CheckStarted { .. } = next_event(&mut events).await {
                break;
            }
        }
        // Stopped while the check runs (it has written its line and sleeps).
        while !runs.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        engine.shutdown().await.unwrap();
        store.close().await;
    }
    let store = open(dir.path());
    let engine = EngineHandle::start(store.clone(), agents(), options())
        .await
        .unwrap();
    // Recovery merges it again before a subscription could see it: the store says.
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        let tasks = store.read(query::tasks).await.unwrap();
        let status = tasks.iter().find(|t| t.key == "t").unwrap().status;
        let ended = matches!(status, TaskStatus::Done | TaskStatus::Failed);
        if ended || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, TaskStatus::Done);
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(
        ran.lines().count(),
        2,
        "checked once before the stop, once after"
    );
    assert_eq!(
        std::fs::read_dir(repo.path()).unwrap().count(),
        2,
        "the checkout is untouched (README.md, .git and nothing else)"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_a_resolver_concluded_is_checked_too() {
    let (repo, dir, engine, _store) = setup(2, 50).await;
    let mut events = engine.subscribe();
    let runs = dir.path().join("runs");
    let body = format!(
        "conflicts = \"resolver\"\ncheck = 'echo checked >> {}'\n{RACE}",
        runs.display()
    );
    engine
        .submit_plan(plan(dir.path(), &repo, "resolved", &body))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?} after {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, EngineEvent::MergeConflict { .. })),
        "the second merge conflicted"
    );
    assert_eq!(
        checks(&seen),
        [(true, None), (true, None)],
        "both merges checked"
    );
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(ran.lines().count(), 2);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_task_while_its_check_runs_stops_the_check_and_undoes_the_merge() {
    let (repo, dir, engine, store) = setup(2, 50).await;
    let mut events = engine.subscribe();
    let started = dir.path().join("started");
    let body = format!(
        "check = 'touch {}; sleep 600'\n[[tasks]]\nid = \"t\"\nprompt = 'SIM-WRITE value.txt v'\n",
        started.display()
    );
    let plan_id = engine
        .submit_plan(plan(dir.path(), &repo, "cancelled", &body))
        .await
        .unwrap();
    while !started.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let task = task_id(&store, plan_id, "t").await;
    let asked = std::time::Instant::now();
    engine.cancel(task).await.unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                cancelled: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let cause = cause_of(&seen, "t", TaskStatus::Cancelled).unwrap();
    assert!(
        cause.contains("cancelled by the operator while its check ran; the merge was undone"),
        "{cause}"
    );
    let branch = integration_branch(&seen);
    let files = repo.git(&["ls-tree", "--name-only", &branch]);
    assert!(!files.contains("value.txt"), "{files}");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_fails_without_the_tasks_work_too_is_not_the_tasks_failure() {
    let (repo, engine, _plan, seen, finished) =
        run_plan("revert", "echo 'needs ready.flag'; test -f ready.flag").await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: false, .. }),
        "{finished:?}"
    );
    let dispatched = seen
        .iter()
        .filter(|e| matches!(e, EngineEvent::Dispatched { .. }))
        .count();
    assert_eq!(
        dispatched, 1,
        "no rerun: running the task again cannot help"
    );
    let failed = cause_of(&seen, "t", TaskStatus::Failed).unwrap();
    assert!(
        failed.contains("fails on the integration branch without the task's work too"),
        "{failed}"
    );
    let branch = integration_branch(&seen);
    let files = repo.git(&["ls-tree", "--name-only", &branch]);
    assert!(
        !files.contains("value.txt"),
        "the merge was undone: {files}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_own_check_may_fail_without_its_work_and_the_task_runs_again() {
    let (repo, dir, engine, _store) = setup(2, 50).await;
    let mut events = engine.subscribe();
    // Fails without the task's work (no value.txt) as well as with the wrong value.
    let body = r#"[[tasks]]
id = "t"
prompt = 'SIM-WRITE value.txt broken'
check = "test \"$(cat value.txt)\" = fixed || { printf '%s\n' 'SIM-WRITE value.txt fixed'; exit 1; }"
"#;
    engine
        .submit_plan(plan(dir.path(), &repo, "own", body))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?} after {seen:#?}"
    );
    assert_eq!(
        checks(&seen),
        [(false, None), (true, None)],
        "rerun, then passed"
    );
    let branch = integration_branch(&seen);
    assert_eq!(repo.git(&["show", &format!("{branch}:value.txt")]), "fixed");
    engine.shutdown().await.unwrap();
}
