//! Durable transitions per second through the store, with 1, 8 and 64 concurrent writers, group
//! commit on (up to 1024 writes per transaction) against one commit per write. Each transition
//! is what the engine writes for a state change: the session record and its control log entry,
//! acknowledged only after a `Durability::Immediate` commit. Reports medians of several runs
//! and the ratio; the target is at least 10x at 64 writers.
//!
//! `cargo bench --bench store` (set OCIO_BENCH_RUNS to change the number of runs, default 5).

#![allow(clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::time::Instant;

use jiff::Timestamp;
use ocio::domain::{Session, SessionId, SessionKind, SessionStatus};
use ocio::store::{Batch, Store, StoreOptions};

/// Transitions per second for one run.
fn run(writers: usize, max_batch: usize, total: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(
        &dir.path().join("bench.redb"),
        StoreOptions {
            max_batch,
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    let per_writer = total.div_ceil(writers);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            let store = store.clone();
            scope.spawn(move || {
                for _ in 0..per_writer {
                    let mut session = Session::new(
                        SessionId::generate(),
                        format!("bench {w}"),
                        SessionKind::Code,
                        Timestamp::now(),
                    );
                    let event = session
                        .transition(SessionStatus::Queued, "bench", Timestamp::now())
                        .expect("legal");
                    let mut batch = Batch::new();
                    batch.put_session(&session).append_event(&event);
                    store.commit_blocking(batch).expect("commit");
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    store.close_blocking();
    (per_writer * writers) as f64 / elapsed
}

/// Transcript entries per second stored `per_commit` at a time (the engine's journal writes
/// what waited since its last write in one commit; 1 is a commit per entry), one writer: 100
/// sessions' tool calls of about 200 bytes, each entry a new part.
fn transcript_run(per_commit: usize, total: usize) -> f64 {
    use serde_json::json;
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Store::open(&dir.path().join("bench.redb"), StoreOptions::default()).expect("open store");
    let sessions: Vec<SessionId> = (0..100).map(|_| SessionId::generate()).collect();
    let started = Instant::now();
    let mut batch = Batch::new();
    for n in 0..total {
        let part = format!("prt_{n:08}");
        let entry = json!({
            "at": "2026-01-01T00:00:00Z",
            "part": part,
            "activity": {"kind": "tool", "tool": "bash", "status": "completed",
                         "title": "cargo test --test store -- --nocapture a_long_enough_name"},
        });
        batch.put_transcript(sessions[n % sessions.len()], Some(&part), &entry, 2 << 20);
        if batch.len() >= per_commit {
            store
                .commit_blocking(std::mem::take(&mut batch))
                .expect("commit");
        }
    }
    if !batch.is_empty() {
        store.commit_blocking(batch).expect("commit");
    }
    let elapsed = started.elapsed().as_secs_f64();
    store.close_blocking();
    total as f64 / elapsed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("OCIO_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1);
    println!(
        "durable transitions/s, median of {runs} runs (session record + control log entry per transition)"
    );
    println!(
        "{:>8} {:>16} {:>18} {:>8}",
        "writers", "group commit", "commit per write", "ratio"
    );
    let mut ratio_at_64 = 0.0;
    for writers in [1, 8, 64] {
        // Size runs so each takes a fraction of a second either way.
        let group = median(
            (0..runs)
                .map(|_| run(writers, 1024, 400 * writers.min(16)))
                .collect(),
        );
        let single = median((0..runs).map(|_| run(writers, 1, 400)).collect());
        let ratio = group / single;
        println!("{writers:>8} {group:>16.0} {single:>18.0} {ratio:>7.1}x");
        if writers == 64 {
            ratio_at_64 = ratio;
        }
    }
    let verdict = if ratio_at_64 >= 10.0 { "met" } else { "MISSED" };
    println!(
        "target: group commit at 64 writers >= 10x one commit per write: {ratio_at_64:.1}x ({verdict})"
    );
    println!("transcript entries/s, median of {runs} runs (one writer)");
    for per_commit in [1, 16, 256] {
        let total = if per_commit == 1 { 400 } else { 8000 };
        let rate = median(
            (0..runs)
                .map(|_| transcript_run(per_commit, total))
                .collect(),
        );
        println!("{per_commit:>8} per commit {rate:>12.0}");
    }
}
