//! Event-stream throughput on one core: recorded OpenCode streams repeated to 200k+ events, fed
//! through `SseDecoder` in 16 KiB chunks, each message through `event::decode` (or
//! `decode_global` for the `/global/event` recording). Reports the median of several runs in
//! events/s and MB/s against the target of 200,000 events/s, for
//! - the recorded `/event` mix (plugin.added and heartbeats included, big message events too),
//! - the recorded `/global/event` stream (every event wrapped, plus the server's sync copies),
//! - the busy-session mix only (session.status, message.part.updated, message.part.delta,
//!   session.updated),
//! - SSE cutting alone on the recorded mix.
//!
//! `cargo bench --bench events` (OCIO_BENCH_RUNS changes the number of runs, default 7).

#![allow(clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::hint::black_box;
use std::time::Instant;

use ocio::opencode::event;
use ocio::opencode::sse::SseDecoder;

const TARGET_EVENTS_PER_SEC: f64 = 200_000.0;
const CHUNK: usize = 16 * 1024;
const MIN_EVENTS: usize = 200_000;
const BUSY: [&str; 4] = [
    "session.status",
    "message.part.updated",
    "message.part.delta",
    "session.updated",
];

#[derive(Clone, Copy)]
enum Work {
    Decode,
    DecodeGlobal,
    SseOnly,
}

fn fixture_lines(name: &str) -> Vec<String> {
    let path = format!(
        "{}/tests/fixtures/opencode/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .expect("read fixture")
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

fn kind_of(line: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).expect("fixture json");
    let envelope = value.get("payload").unwrap_or(&value);
    envelope["type"].as_str().unwrap_or_default().to_owned()
}

/// The lines as an event stream, repeated until it holds at least `MIN_EVENTS` events.
fn stream(lines: &[String]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut events = 0;
    while events < MIN_EVENTS {
        for line in lines {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        events += lines.len();
    }
    (out, events)
}

/// Seconds for one pass over `bytes`; checks every event was seen.
fn run(bytes: &[u8], events: usize, work: Work) -> f64 {
    let started = Instant::now();
    let mut decoder = SseDecoder::new();
    let (mut seen, mut used) = (0usize, 0usize);
    for chunk in bytes.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(message) = decoder.next_message() {
            seen += 1;
            let hit = match work {
                Work::Decode => event::decode(&message.data).expect("decodes").is_some(),
                Work::DecodeGlobal => event::decode_global(&message.data)
                    .expect("decodes")
                    .is_some(),
                Work::SseOnly => !message.data.is_empty(),
            };
            used += usize::from(black_box(hit));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(seen, events);
    black_box(used);
    elapsed
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn report(label: &str, lines: &[String], work: Work, runs: usize) {
    let (bytes, events) = stream(lines);
    run(&bytes, events, work); // warm up
    let secs = median((0..runs).map(|_| run(&bytes, events, work)).collect());
    let per_sec = events as f64 / secs;
    let mb_per_sec = bytes.len() as f64 / secs / 1e6;
    println!(
        "{label:<34} {events:>8} events {:>7.1} MB   {per_sec:>11.0} events/s {mb_per_sec:>8.1} MB/s   {:>5.1}x target",
        bytes.len() as f64 / 1e6,
        per_sec / TARGET_EVENTS_PER_SEC,
    );
}

fn main() {
    let runs: usize = std::env::var("OCIO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1);
    let mut recorded = Vec::new();
    for name in [
        "sample-events-write-tool.sse",
        "sample-events-permission.sse",
        "live-event-1.18.33.sse",
    ] {
        recorded.extend(fixture_lines(name));
    }
    let global = fixture_lines("live-global-event-1.18.33.sse");
    let busy: Vec<String> = recorded
        .iter()
        .filter(|l| BUSY.contains(&kind_of(l).as_str()))
        .cloned()
        .collect();

    println!(
        "event stream decoding, one core, 16 KiB chunks, median of {runs} runs; target {TARGET_EVENTS_PER_SEC:.0} events/s"
    );
    report(
        "recorded /event mix (SSE+decode)",
        &recorded,
        Work::Decode,
        runs,
    );
    report(
        "/global/event (SSE+decode_global)",
        &global,
        Work::DecodeGlobal,
        runs,
    );
    report("busy-session mix (SSE+decode)", &busy, Work::Decode, runs);
    report(
        "recorded /event mix (SSE only)",
        &recorded,
        Work::SseOnly,
        runs,
    );
}
