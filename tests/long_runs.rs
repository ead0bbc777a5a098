//! The engine over plans in real git repositories, on what keeps a long plan from piling up
//! worktrees: a merged task's worktree and branch go as soon as it is merged (by the cleanup
//! policy), and the task worktrees holding unmerged work stay within `max_worktrees`, tasks
//! waiting for merges rather than making more. Simulated agents really write files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreHandle, StoreOptions};
use support::TestRepo;

/// How long a test waits for the engine's next event.
const PATIENCE: Duration = Duration::from_secs(60);

fn plan(dir: &Path, repo: &TestRepo, name: &str, body: &str) -> PlanFile {
    let path = dir.join(format!("{name}.toml"));
    let text = format!("name = \"{name}\"\nrepo = {:?}\n{body}", repo.dir_str());
    std::fs::write(&path, text).unwrap();
    PlanFile::load(&path).unwrap()
}

/// `count` independent tasks `t0`, `t1`, ..., each writing a file of its own.
fn tasks(count: usize) -> String {
    (0..count)
        .map(|i| format!("[[tasks]]\nid = \"t{i}\"\nprompt = 'SIM-WRITE t{i}.txt {i}'\n"))
        .collect()
}

async fn start(
    dir: &Path,
    options: EngineOptions,
    slots: u32,
    millis: i64,
) -> (EngineHandle, StoreHandle) {
    let store = Store::open(&dir.join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![support::sim_agent("sim", slots, &[], millis, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options)
        .await
        .unwrap();
    (engine, store)
}

/// The task worktrees of plan `plan` git lists now (paths).
fn task_worktrees(repo: &TestRepo, plan: &str) -> Vec<String> {
    let needle = format!("/{plan}/");
    repo.git(&["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|line| line.strip_prefix("worktree "))
        .filter(|path| path.contains(&needle) && !path.ends_with("/integration"))
        .map(str::to_string)
        .collect()
}

fn branch_exists(repo: &TestRepo, branch: &str) -> bool {
    !repo.git(&["branch", "--list", branch]).trim().is_empty()
}

async fn next(events: &mut ocio::engine::Subscription) -> EngineEvent {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("the engine went quiet")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_tasks_worktree_and_branch_go_at_its_merge_unless_the_plan_keeps_them() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let (engine, store) = start(dir.path(), options, 1, 200).await;
    let mut events = engine.subscribe();
    for (name, cleanup, gone) in [("tidy", "remove-merged", true), ("kept", "keep", false)] {
        let body = format!("cleanup = \"{cleanup}\"\n{}", tasks(3));
        engine
            .submit_plan(plan(dir.path(), &repo, name, &body))
            .await
            .unwrap();
        let mut merged = 0;
        loop {
            match next(&mut events).await {
                // Checked while the plan still runs, not by its cleanup at the end.
                EngineEvent::Merged { key, .. } => {
                    merged += 1;
                    let own = format!("/{name}/{key}/");
                    let left: Vec<String> = task_worktrees(&repo, name)
                        .into_iter()
                        .filter(|path| path.contains(&own))
                        .collect();
                    assert_eq!(left.is_empty(), gone, "{cleanup}, {key} merged: {left:?}");
                    let branch = format!("ocio/{name}/{key}");
                    assert_eq!(branch_exists(&repo, &branch), !gone, "{cleanup}: {branch}");
                }
                EngineEvent::PlanFinished { ok, .. } => {
                    assert!(ok);
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(merged, 3);
        let integration = format!("ocio/{name}/integration");
        for i in 0..3 {
            let file = repo.git(&["show", &format!("{integration}:t{i}.txt")]);
            assert_eq!(file.trim(), i.to_string(), "the work was merged first");
        }
    }
    engine.shutdown().await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_worktree_bound_a_task_waits_for_a_merge_rather_than_making_another() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    // Four slots, but at most two task worktrees holding unmerged work.
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        max_parallel: 4,
        max_worktrees: Some(2),
        ..EngineOptions::default()
    };
    let (engine, store) = start(dir.path(), options, 4, 300).await;
    let mut events = engine.subscribe();
    engine
        .submit_plan(plan(dir.path(), &repo, "bound", &tasks(6)))
        .await
        .unwrap();
    let (mut unmerged, mut most, mut most_on_disk) = (0usize, 0, 0);
    loop {
        match next(&mut events).await {
            EngineEvent::Dispatched { .. } => unmerged += 1,
            EngineEvent::Merged { .. } => unmerged -= 1,
            EngineEvent::PlanFinished { ok, done, .. } => {
                assert!(ok && done == 6);
                break;
            }
            _ => continue,
        }
        most = most.max(unmerged);
        most_on_disk = most_on_disk.max(task_worktrees(&repo, "bound").len());
    }
    assert_eq!(most, 2, "dispatched but not merged, at most");
    assert!(most_on_disk <= 2, "task worktrees on disk: {most_on_disk}");
    engine.shutdown().await.unwrap();
    store.close().await;
}
