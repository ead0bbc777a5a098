//! Build boxes: how long a task's tree takes to reach a fresh box, a later task's to reach a
//! box that has the history, and a session's work to come back, through a real `opencode
//! serve`'s API (bundles in through `/vcs/apply`, git on the box through `/session/shell`,
//! bundles back through `/file/content`). The server runs on this machine, but every byte goes
//! through its API as it would to a box elsewhere.
//!
//! The repository: about 50 MB of working tree (2,000 source-like text files of ~20 KB and
//! 10 MB of incompressible binaries) in one commit.
//! - `first`: its commit reaches an empty box (the whole tree);
//! - `next`: a commit changing one file reaches the box that has the first;
//! - `back`: 5 MB of work (100 new files, 50 changed) comes back and is laid down.
//!
//! Each figure is the median of several runs (`OCIO_BENCH_RUNS`, default 3), each with a fresh
//! box directory. `cargo bench --bench boxes`; the `opencode` binary is the tests' (run
//! `cargo test --test far_box` once) or `OCIO_BENCH_OPENCODE`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ocio::opencode::boxes::{BoxWorkspace, Returned};
use ocio::opencode::client::{Client, ClientOptions};
use ocio::opencode::managed::{RunningServer, ServerCommand};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn opencode() -> PathBuf {
    if let Some(path) = std::env::var_os("OCIO_BENCH_OPENCODE") {
        return PathBuf::from(path);
    }
    let cached = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("opencode-ai/1.18.33/node_modules/.bin/opencode");
    if !cached.is_file() {
        eprintln!(
            "no opencode binary at {}: run `cargo test --test far_box` once (it installs it) or set OCIO_BENCH_OPENCODE",
            cached.display()
        );
        std::process::exit(2);
    }
    cached
}

/// Text that compresses as source does: words from a small vocabulary, lines of varied length.
fn source_like(rng: &mut fastrand::Rng, bytes: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "let", "fn", "match", "self", "value", "error", "return", "Some", "None", "=>", "{", "}",
        "state", "engine", "task", "42",
    ];
    let mut text = Vec::with_capacity(bytes + 64);
    while text.len() < bytes {
        for _ in 0..rng.usize(2..12) {
            text.extend_from_slice(WORDS[rng.usize(..WORDS.len())].as_bytes());
            text.push(b' ');
        }
        text.extend_from_slice(format!("// {}\n", rng.u32(..)).as_bytes());
    }
    text
}

fn make_repo(rng: &mut fastrand::Rng, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    for i in 0..2000 {
        let path = dir.join(format!("src/m{}/f{i}.rs", i % 40));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source_like(rng, 20_000)).unwrap();
    }
    for i in 0..5 {
        let blob: Vec<u8> = (0..2_000_000).map(|_| rng.u8(..)).collect();
        std::fs::write(dir.join(format!("asset{i}.bin")), blob).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "base"]);
}

struct Figures {
    first: Duration,
    next: Duration,
    back: Duration,
}

async fn one_run(client: &Client, rng: &mut fastrand::Rng, scratch: &Path) -> Figures {
    let repo = scratch.join("repo/plan/task/1");
    make_repo(rng, &repo);
    let root = scratch.join("box");
    let boxes = BoxWorkspace::new(client.clone(), None, Some(root.to_string_lossy().into()));
    let started = Instant::now();
    let dir = boxes.prepare(&repo).await.unwrap();
    let first = started.elapsed();
    boxes.bring_back(&repo, &dir, true).await.unwrap();

    // A later task: one file changed on top, from a worktree of its own.
    let later = scratch.join("repo/plan/task/2");
    git(
        &repo,
        &["worktree", "add", "-q", "--detach", later.to_str().unwrap()],
    );
    std::fs::write(later.join("src/m0/f0.rs"), source_like(rng, 20_000)).unwrap();
    git(&later, &["commit", "-qam", "next"]);
    let started = Instant::now();
    let dir = boxes.prepare(&later).await.unwrap();
    let next = started.elapsed();

    // The session's work: 100 new files of 20 KB, 50 changed; it comes back.
    let there = PathBuf::from(&dir);
    for i in 0..100 {
        std::fs::write(
            there.join(format!("src/new{i}.rs")),
            source_like(rng, 20_000),
        )
        .unwrap();
    }
    for i in 0..50 {
        let path = there.join(format!("src/m{}/f{i}.rs", i % 40));
        std::fs::write(path, source_like(rng, 20_000)).unwrap();
    }
    let started = Instant::now();
    let returned = boxes.bring_back(&later, &dir, true).await.unwrap();
    let back = started.elapsed();
    assert!(matches!(returned, Returned::Work { .. }));
    Figures { first, next, back }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("OCIO_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let home = tempfile::tempdir().unwrap();
        let mut command = ServerCommand::new(opencode());
        command.cwd = Some(home.path().to_path_buf());
        command.env = ["HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"]
            .iter()
            .map(|key| (key.into(), home.path().join(key.to_lowercase()).into()))
            .collect();
        let server = RunningServer::start(&command, None).await.unwrap();
        let options = ClientOptions {
            call_timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        let client = Client::new(server.url(), None, options).unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut all = Vec::new();
        for run in 0..runs {
            let scratch = tempfile::tempdir().unwrap();
            let figures = one_run(&client, &mut rng, scratch.path()).await;
            println!(
                "run {run}: first {:.2} s, next {:.2} s, back {:.2} s",
                figures.first.as_secs_f64(),
                figures.next.as_secs_f64(),
                figures.back.as_secs_f64()
            );
            all.push(figures);
        }
        let pick = |f: fn(&Figures) -> Duration| median(all.iter().map(f).collect());
        println!(
            "boxes (median of {runs}): a 50 MB tree to a fresh box {:.2} s; one changed file to a box that has the rest {:.2} s; 5 MB of work back {:.2} s",
            pick(|f| f.first).as_secs_f64(),
            pick(|f| f.next).as_secs_f64(),
            pick(|f| f.back).as_secs_f64()
        );
        server.stop().await;
    });
}
