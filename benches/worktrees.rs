//! Plans in a real git repository with simulated agents that really write files: how many
//! tasks per second a worktree plan gets through when git is the cost (each attempt makes a
//! worktree, commits what it left, and merges it into the plan's integration branch, one
//! merge at a time per plan; merged worktrees are removed at the end). Runs take 0 ms, so what
//! is measured is ocio's git work and its durable bookkeeping.
//!
//! Two shapes, each from submit to `PlanFinished`:
//! - `spread`: 200 independent tasks, each writing a file of its own, over 8 agents of 4 slots;
//! - `same-file`: 20 tasks appending to one file one after another (a chain), so each merge
//!   lands on top of the last.
//!
//! Each figure is the median of several runs (`OCIO_BENCH_RUNS`, default 3), each in a fresh
//! repository and database. `cargo bench --bench worktrees`. No target is set by an issue; the
//! figure is here to see what a change does to it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use ocio::config::SimulationConfig;
use ocio::domain::{Agent, AgentName, Backend};
use ocio::engine::{AgentSpec, EngineEvent, EngineHandle, EngineOptions, Simulated};
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreOptions};
use tokio::sync::broadcast::error::RecvError;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

fn agents(count: usize, slots: u32) -> Vec<AgentSpec> {
    (0..count)
        .map(|i| {
            let config = SimulationConfig {
                duration: SignedDuration::ZERO,
                failure_rate: 0.0,
                seed: 1,
                ask_rate: 0.0,
            };
            AgentSpec {
                agent: Agent::new(
                    AgentName::new(format!("sim{i}")).unwrap(),
                    Backend::Simulated,
                    slots,
                ),
                runner: std::sync::Arc::new(Simulated { config }),
            }
        })
        .collect()
}

/// One run of `tasks` (the `[[tasks]]` part of a plan file): tasks per second.
fn run(name: &str, tasks: &str, count: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "bench\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let plan_path = dir.path().join("plan.toml");
    let text = format!(
        "name = \"{name}\"\nrepo = {:?}\n{tasks}",
        repo.display().to_string()
    );
    std::fs::write(&plan_path, text).unwrap();
    let plan = PlanFile::load(&plan_path).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
        let options = EngineOptions {
            max_parallel: 32,
            tick: Duration::from_millis(50),
            ..EngineOptions::default()
        };
        let engine = EngineHandle::start(store.clone(), agents(8, 4), options)
            .await
            .unwrap();
        let mut events = engine.subscribe();
        let started = Instant::now();
        engine.submit_plan(plan).await.unwrap();
        loop {
            match events.recv().await {
                Ok(EngineEvent::PlanFinished { ok, done, .. }) => {
                    assert!(ok && done == count, "{done} of {count} done");
                    break;
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => panic!("the engine stopped"),
            }
        }
        let elapsed = started.elapsed();
        engine.shutdown().await.unwrap();
        store.close().await;
        count as f64 / elapsed.as_secs_f64()
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("OCIO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    let spread: String = (0..200)
        .map(|i| format!("[[tasks]]\nid = \"t{i}\"\nprompt = 'SIM-WRITE src/f{i}.txt {i}'\n"))
        .collect();
    let figures: Vec<f64> = (0..runs).map(|_| run("spread", &spread, 200)).collect();
    println!(
        "worktrees/spread: 200 independent tasks, 8x4 slots: median {:.1} tasks/s (runs: {:?})",
        median(figures.clone()),
        figures
            .iter()
            .map(|f| format!("{f:.1}"))
            .collect::<Vec<_>>()
    );

    let chain: String = (0..20)
        .map(|i| {
            let needs = if i == 0 {
                String::new()
            } else {
                format!("needs = [\"t{}\"]\n", i - 1)
            };
            let lines: String = (0..=i).map(|n| format!("line {n}\\n")).collect();
            format!("[[tasks]]\nid = \"t{i}\"\n{needs}prompt = 'SIM-WRITE log.txt {lines}'\n")
        })
        .collect();
    let figures: Vec<f64> = (0..runs).map(|_| run("same-file", &chain, 20)).collect();
    println!(
        "worktrees/same-file: a chain of 20 tasks growing one file: median {:.1} tasks/s (runs: {:?})",
        median(figures.clone()),
        figures
            .iter()
            .map(|f| format!("{f:.1}"))
            .collect::<Vec<_>>()
    );
}
