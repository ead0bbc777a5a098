//! `ocio search` over a generated database of 100,000 sessions: a title each, three control-log
//! events with causes and three transcript entries, over 30 days, 10 plans and 5 agents. The
//! database is generated once into `target/bench-search-100k.redb` (through the store, so the
//! search index is kept as the engine keeps it; how long that took is printed) and reused.
//! Times a one-word search (a rare word and a common one), a two-word search with `--plan`
//! and `--since` filters, and a prefix search; medians of several runs. Target: under 100 ms.
//!
//! `cargo bench --bench search` (OCIO_BENCH_RUNS runs, default 7; OCIO_BENCH_SESSIONS to
//! change the size, which also changes the file name).

#![allow(clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::path::{Path, PathBuf};
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use ocio::domain::{AgentName, Plan, PlanId, Session, SessionId, SessionKind, SessionStatus};
use ocio::store::{Batch, SearchQuery, Store, StoreHandle, StoreOptions, query, search};

/// A small deterministic generator (xorshift), so every generated database is the same.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A word of the vocabulary: a few common ones often, 5,000 rarer ones evenly.
    fn word(&mut self) -> String {
        const COMMON: [&str; 12] = [
            "the", "fix", "test", "parser", "error", "build", "module", "refactor", "cargo",
            "failed", "update", "docs",
        ];
        match self.next() % 3 {
            0 => COMMON[(self.next() % COMMON.len() as u64) as usize].to_string(),
            _ => format!("w{}", self.next() % 5000),
        }
    }

    fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

#[derive(serde::Serialize)]
struct Entry {
    at: Timestamp,
    part: Option<String>,
    text: String,
}

fn generate(path: &Path, sessions: usize) {
    let started = Instant::now();
    let store = Store::open(path, StoreOptions::default()).expect("open store");
    let now = Timestamp::now();
    let plans: Vec<Plan> = (0..10)
        .map(|i| Plan {
            id: PlanId::generate(),
            name: format!("plan{i}"),
            repo: PathBuf::from("/tmp/repo"),
            tasks: Vec::new(),
            created_at: now,
        })
        .collect();
    let mut batch = Batch::new();
    plans.iter().for_each(|p| {
        batch.put_plan(p);
    });
    store.commit_blocking(batch).expect("commit");
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let span = 30 * 24 * 3600 * 1000;
    let start = now.as_millisecond() as u64 - span;
    for chunk in 0..sessions.div_ceil(1000) {
        let mut batch = Batch::new();
        for n in chunk * 1000..((chunk + 1) * 1000).min(sessions) {
            let millis = start + span * n as u64 / sessions as u64;
            let id = SessionId::from_parts(millis, u128::from(dice.next()));
            let at = Timestamp::from_millisecond(millis as i64).expect("time");
            let mut session = Session::new(id, dice.words(5), SessionKind::Code, at);
            session.plan = Some(plans[n % plans.len()].id);
            session.agent = Some(AgentName::new(format!("agent{}", n % 5)).expect("name"));
            let cause = dice.words(4);
            let queued = session
                .transition(SessionStatus::Queued, cause, at)
                .expect("legal");
            let cause = dice.words(4);
            let cancelled = session
                .transition(SessionStatus::Cancelled, cause, at)
                .expect("legal");
            batch
                .put_session(&session)
                .append_event(&queued)
                .append_event(&cancelled);
            for e in 0..3 {
                let text = format!("{}\n{}", dice.words(6), dice.words(6));
                let part = format!("prt_{e}");
                let entry = Entry {
                    at,
                    part: Some(part.clone()),
                    text,
                };
                batch.put_transcript(id, Some(&part), &entry, 1 << 20);
            }
        }
        store.commit_blocking(batch).expect("commit");
    }
    store.close_blocking();
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {sessions} sessions ({} records) in {:.1} s, file {} MB",
        sessions * 7,
        started.elapsed().as_secs_f64(),
        bytes >> 20
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Milliseconds of one search, and how many it found.
fn timed(store: &StoreHandle, query: &SearchQuery) -> (f64, usize) {
    let query = query.clone();
    let started = Instant::now();
    let found = store
        .read_blocking(move |txn| search(txn, &query))
        .expect("search");
    (started.elapsed().as_secs_f64() * 1000.0, found.len())
}

fn main() {
    let runs: usize = std::env::var("OCIO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let sessions: usize = std::env::var("OCIO_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).expect("target dir");
    let path = dir.join(format!("bench-search-{}k.redb", sessions / 1000));
    if !path.exists() {
        generate(&path, sessions);
    }
    let store = Store::open(&path, StoreOptions::default()).expect("open store");
    let plan = store
        .read_blocking(query::plans)
        .expect("plans")
        .first()
        .map(|p| p.id);
    let ask = |text: &str| SearchQuery {
        text: text.into(),
        limit: 50,
        ..SearchQuery::default()
    };
    let cases = [
        ("one rare word (w1234)", ask("w1234")),
        ("one common word (parser)", ask("parser")),
        (
            "two words, --plan, --since 7d (parser w42)",
            SearchQuery {
                plan,
                since: Some(Timestamp::now() - SignedDuration::from_hours(24 * 7)),
                ..ask("parser w42")
            },
        ),
        ("two words, prefix last (fix w99)", ask("fix w99")),
    ];
    println!("search over {sessions} sessions, median of {runs} runs (50 results at most)");
    for (name, query) in cases {
        timed(&store, &query); // warm the page cache
        let mut found = 0;
        let times = (0..runs)
            .map(|_| {
                let (ms, n) = timed(&store, &query);
                found = n;
                ms
            })
            .collect();
        println!("  {name:<45} {:>8.1} ms  ({found} found)", median(times));
    }
    store.close_blocking();
}
