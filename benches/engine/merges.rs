//! Part `merges`: a long plan in a real git repository. `OCIO_BENCH_MERGE_TASKS` independent
//! tasks in a repository of as many files, each task rewriting a file of its own (so every
//! merge is a real `--no-ff` merge, never a conflict, and the tree keeps its size), run by
//! simulated agents with 16 slots whose runs take `RUN_MS`: sessions finish faster
//! than merges, as in the issue. Reported: the merge rate in each fifth of the merges (the last
//! fifth over the first: a flat rate is near 1), and the most task worktrees on disk at once,
//! sampled every 100 ms from the repository's `.git/worktrees`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
use ocio::plan::PlanFile;
use tokio::sync::broadcast::error::RecvError;

const SLOTS: u32 = 16;
const RUN_MS: i64 = 20;
const BUCKETS: usize = 5;

fn tasks() -> usize {
    std::env::var("OCIO_BENCH_MERGE_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(status.status.success(), "git {args:?}");
}

/// A repository of `n` files in one commit, and the plan of `n` independent tasks in it.
fn repo_and_plan(dir: &Path, n: usize) -> PlanFile {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("out")).expect("repo dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "bench\n").expect("readme");
    for i in 0..n {
        std::fs::write(repo.join(format!("out/t{i}.txt")), "0\n").expect("file");
    }
    git(&repo, &["add", "."]);
    git(
        &repo,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "-m",
            "initial",
        ],
    );
    let mut text = format!("name = \"long\"\nrepo = {:?}\n", repo.to_string_lossy());
    for i in 0..n {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = 'SIM-WRITE out/t{i}.txt {i}'\n"
        ));
    }
    PlanFile::parse(&text, &dir.join("plan.toml")).expect("bench plan parses")
}

struct MergeRun {
    /// Merges per second in each fifth of the merges.
    rates: Vec<f64>,
    max_worktrees: usize,
    seconds: f64,
}

/// Task worktrees registered in the repository now (the integration worktree not counted).
fn worktrees(repo: &Path) -> usize {
    std::fs::read_dir(repo.join(".git/worktrees"))
        .map(|dir| dir.count().saturating_sub(1))
        .unwrap_or(0)
}

fn merge_run(n: usize) -> MergeRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = repo_and_plan(dir.path(), n);
    let repo = dir.path().join("repo");
    let rt = super::runtime();
    rt.block_on(async {
        let store = super::open_store(&dir.path().join("bench.redb"));
        let options = EngineOptions {
            max_parallel: SLOTS,
            worktree_root: Some(dir.path().join("worktrees")),
            ..EngineOptions::default()
        };
        let agents = super::agents(1, SLOTS, SignedDuration::from_millis(RUN_MS));
        let engine = EngineHandle::start(store.clone(), agents, options)
            .await
            .expect("engine starts");
        let mut events = engine.subscribe();
        let (stop, most) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let sampler = {
            let (stop, most, repo) = (stop.clone(), most.clone(), repo.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    most.fetch_max(worktrees(&repo), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let started = Instant::now();
        engine.submit_plan(plan).await.expect("plan submitted");
        let mut merged_at = Vec::with_capacity(n);
        loop {
            match tokio::time::timeout(Duration::from_secs(600), events.recv())
                .await
                .expect("a merge within 10 minutes")
            {
                Ok(EngineEvent::Merged { .. }) => merged_at.push(started.elapsed()),
                Ok(EngineEvent::PlanFinished { ok, .. }) => {
                    assert!(ok, "every bench task merges");
                    break;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => panic!("missed {missed} events"),
                Err(RecvError::Closed) => panic!("engine stopped before the plan finished"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        sampler.await.expect("sampler");
        engine.shutdown().await.expect("shutdown");
        store.close().await;
        assert_eq!(merged_at.len(), n, "one merge per task");
        let per = n / BUCKETS;
        let rates = (0..BUCKETS)
            .map(|b| {
                let from = if b == 0 {
                    Duration::ZERO
                } else {
                    merged_at[b * per - 1]
                };
                let to = merged_at[(b + 1) * per - 1];
                per as f64 / (to - from).as_secs_f64()
            })
            .collect();
        MergeRun {
            rates,
            max_worktrees: most.load(Ordering::Relaxed),
            seconds: started.elapsed().as_secs_f64(),
        }
    })
}

pub(super) fn merges(runs: usize) {
    let n = tasks();
    println!(
        "4. merge rate in a {n}-task plan in a real git repository (1 agent x {SLOTS} slots, {RUN_MS} ms runs, each task rewrites one of {n} files), median of {runs} runs"
    );
    let results: Vec<MergeRun> = (0..runs).map(|_| merge_run(n)).collect();
    let pick = |f: &dyn Fn(&MergeRun) -> f64| super::median(results.iter().map(f).collect());
    let rates: Vec<String> = (0..BUCKETS)
        .map(|b| format!("{:.1}", pick(&|r| r.rates[b])))
        .collect();
    println!(
        "merges/s in each fifth of the merges: {}",
        rates.join(" / ")
    );
    println!(
        "last fifth / first fifth: {:.2} (flat: near 1)",
        pick(&|r| r.rates[BUCKETS - 1] / r.rates[0])
    );
    println!(
        "most task worktrees on disk at once: {:.0}; plan took {:.1} s",
        pick(&|r| r.max_worktrees as f64),
        pick(&|r| r.seconds)
    );
    println!();
}
