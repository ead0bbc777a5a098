//! Part `soak`: resident memory over a long run. `OCIO_BENCH_SOAK_TASKS` tasks (default
//! 12,000) in plans of [`PLAN_TASKS`] independent tasks, each submitted when the one before
//! has finished, over 8 simulated agents x 4 slots (0 ms runs), in a fresh child process per
//! run. VmRSS is sampled after each plan; reported: RSS at 10%, 50% and 100% of the tasks and
//! the growth per finished task over the second half (least squares). Target: a plateau,
//! under [`SLOPE_TARGET`] bytes per task over the second half.

use std::process::Command;
use std::time::Duration;

use jiff::SignedDuration;
use ocio::engine::{EngineEvent, EngineHandle};
use ocio::plan::PlanFile;
use tokio::sync::broadcast::error::RecvError;

/// Set in a soak child process: the tasks to run.
const SOAK_ENV: &str = "OCIO_BENCH_SOAK_CHILD";
const PLAN_TASKS: usize = 100;
const SLOPE_TARGET: f64 = 512.0;

fn tasks() -> usize {
    std::env::var("OCIO_BENCH_SOAK_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12_000)
}

/// Plan `n` of the soak: prompts of about 600 bytes, like a short real one.
fn plan(n: usize) -> PlanFile {
    let filler = "Keep the change small and explain it in the summary. ".repeat(10);
    let mut text = format!("name = \"soak-{n}\"\nrepo = \".\"\n");
    for i in 0..PLAN_TASKS {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = \"Task {i} of plan {n}. {filler}\"\n"
        ));
    }
    std::fs::create_dir_all(super::BENCH_REPO).expect("bench repo directory");
    let path = std::path::Path::new(super::BENCH_REPO).join("soak.toml");
    PlanFile::parse(&text, &path).expect("soak plan parses")
}

/// If this process is a soak child: runs the soak, printing `tasks rss_kib` after each plan.
pub(super) fn child() -> bool {
    let Ok(total) = std::env::var(SOAK_ENV) else {
        return false;
    };
    let total: usize = total.parse().expect("soak tasks");
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = super::runtime();
    rt.block_on(async {
        let store = super::open_store(&dir.path().join("soak.redb"));
        let agents = super::agents(8, 4, SignedDuration::ZERO);
        let engine = EngineHandle::start(store.clone(), agents, super::options(32))
            .await
            .expect("engine starts");
        let mut events = engine.subscribe();
        for n in 0..total.div_ceil(PLAN_TASKS) {
            engine.submit_plan(plan(n)).await.expect("plan submitted");
            loop {
                match tokio::time::timeout(Duration::from_secs(120), events.recv())
                    .await
                    .expect("a plan finishes within 2 minutes")
                {
                    Ok(EngineEvent::PlanFinished { ok, .. }) => {
                        assert!(ok, "every soak task succeeds");
                        break;
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => panic!("engine stopped"),
                }
            }
            println!("{} {}", (n + 1) * PLAN_TASKS, super::vm_rss_kib());
        }
        engine.shutdown().await.expect("shutdown");
        store.close().await;
    });
    true
}

struct SoakRun {
    /// (tasks finished, VmRSS KiB) after each plan.
    samples: Vec<(f64, f64)>,
}

impl SoakRun {
    /// RSS (MiB) once `share` of the tasks had finished.
    fn rss_at(&self, share: f64) -> f64 {
        let at = ((self.samples.len() as f64 * share).ceil() as usize).clamp(1, self.samples.len());
        self.samples[at - 1].1 / 1024.0
    }

    /// Bytes per finished task over the second half, by least squares.
    fn slope(&self) -> f64 {
        let half = &self.samples[self.samples.len() / 2..];
        let n = half.len() as f64;
        let (mx, my) = (
            half.iter().map(|s| s.0).sum::<f64>() / n,
            half.iter().map(|s| s.1).sum::<f64>() / n,
        );
        let cov: f64 = half.iter().map(|s| (s.0 - mx) * (s.1 - my)).sum();
        let var: f64 = half.iter().map(|s| (s.0 - mx).powi(2)).sum();
        cov / var * 1024.0
    }
}

fn soak_run(total: usize) -> SoakRun {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(SOAK_ENV, total.to_string())
        .output()
        .expect("run the soak child");
    assert!(
        output.status.success(),
        "soak child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let mut numbers = line.split_whitespace().map(|n| n.parse().expect("numbers"));
            (numbers.next().expect("tasks"), numbers.next().expect("rss"))
        })
        .collect();
    SoakRun { samples }
}

pub(super) fn soak(runs: usize) {
    let total = tasks();
    println!(
        "5. soak: {total} tasks in plans of {PLAN_TASKS}, one after another, 8 agents x 4 slots, 0 ms runs (fresh process per run), median of {runs} runs"
    );
    let results: Vec<SoakRun> = (0..runs).map(|_| soak_run(total)).collect();
    let pick = |f: &dyn Fn(&SoakRun) -> f64| super::median(results.iter().map(f).collect());
    let slope = pick(&|r| r.slope());
    println!(
        "VmRSS at 10% / 50% / 100% of the tasks: {:.1} / {:.1} / {:.1} MiB",
        pick(&|r| r.rss_at(0.1)),
        pick(&|r| r.rss_at(0.5)),
        pick(&|r| r.rss_at(1.0)),
    );
    println!(
        "growth over the second half: {slope:.0} bytes per task ({:.2} MiB per 1,000); target < {SLOPE_TARGET:.0} bytes per task ({})",
        slope * 1000.0 / (1024.0 * 1024.0),
        super::verdict(slope < SLOPE_TARGET)
    );
    println!();
}
