//! What ocio's background traffic costs a server per running session: `SESSIONS` sessions on a
//! real `opencode serve`, each waiting on a slow model (busy, but with nothing to tell), while a
//! counting proxy in front of the server counts every request ocio makes for a window. The
//! figures (requests per session-minute, by kind) are printed; the test holds ocio to what the
//! event stream cannot tell it: no lookup of pending requests per session on a clock.
//!
//! `OCIO_PACE_SESSIONS` and `OCIO_PACE_WINDOW_SECS` make it a longer measurement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
use ocio::opencode::client::{Client, ClientOptions};
use ocio::plan::PlanFile;
use ocio::scripted::{Rule, Script, Turn};
use ocio::store::{Store, StoreOptions};
use support::counting_proxy::CountingProxy;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_sessions_cost_their_server_no_requests_per_session_on_a_clock() {
    let sessions = setting("OCIO_PACE_SESSIONS", 6);
    let window = Duration::from_secs(setting("OCIO_PACE_WINDOW_SECS", 20));
    // The model answers long after the window: every session stays busy and quiet.
    let hold = 2 * (window.as_millis() as u64) + 60_000;
    let script = Script::new().rule(Rule::when("hold").turn(Turn::text("held").delay_ms(hold)));
    let server = support::TestServer::start(script).await;
    let proxy = CountingProxy::start(server.url()).await;
    let client_options = ClientOptions {
        prompt_timeout: Duration::from_millis(hold * 3),
        ..support::test_options()
    };
    let client = Client::new(&proxy.url, None, client_options.clone()).unwrap();
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agent = support::scripted_agent_with(client, sessions as u32);
    let engine_options = EngineOptions {
        max_parallel: sessions as u32,
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], engine_options.clone())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let mut text = format!("name = \"pace\"\nrepo = {:?}\n", repo.dir_str());
    for i in 0..sessions {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = \"hold {i}\"\n"
        ));
    }
    let plan = state.path().join("pace.toml");
    std::fs::write(&plan, text).unwrap();
    engine
        .submit_plan(PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let mut dispatched = 0;
    while dispatched < sessions {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("dispatched")
            .unwrap();
        dispatched += u64::from(matches!(event, EngineEvent::Dispatched { .. }));
    }
    // Every session's prompt has reached the model.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (server.model.requests().len() as u64) < sessions {
        assert!(std::time::Instant::now() < deadline, "prompts never came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = counted(&proxy, window).await;
    let lookups = report("busy", &counts, sessions, window).1;
    // While the stream is up, a lookup comes only with a resync (after a reconnect, or the
    // paced sweep): not one per busy session every few seconds.
    assert!(
        lookups <= 2 * sessions,
        "{lookups} lookups of pending requests in {} s for {sessions} sessions",
        window.as_secs()
    );

    // A restarted ocio re-attaches to the same busy sessions and follows them.
    engine.shutdown().await.unwrap();
    store.close().await;
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let client = Client::new(&proxy.url, None, client_options).unwrap();
    let agent = support::scripted_agent_with(client, sessions as u32);
    let engine = EngineHandle::start(store.clone(), vec![agent], engine_options)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let counts = counted(&proxy, window).await;
    let (per_session_minute, _) = report("re-attached busy", &counts, sessions, window);
    // Checked every 15 s while busy (at once when the stream says it stopped), not every
    // second: about 2 requests a check, and a lookup of pending requests every minute.
    assert!(
        per_session_minute < 20.0,
        "{per_session_minute:.1} requests per re-attached session-minute"
    );
    engine.shutdown().await.unwrap();
    store.close().await;
    server.stop().await;
}

/// What ocio asks the server over `window`, from now.
async fn counted(proxy: &CountingProxy, window: Duration) -> BTreeMap<String, u64> {
    proxy.reset();
    tokio::time::sleep(window).await;
    proxy.counts()
}

/// Prints `counts` per session-minute; the total per session-minute and the lookups of
/// pending requests.
fn report(
    what: &str,
    counts: &BTreeMap<String, u64>,
    sessions: u64,
    window: Duration,
) -> (f64, u64) {
    let session_minutes = sessions as f64 * window.as_secs_f64() / 60.0;
    let total: u64 = counts.values().sum();
    let per_session_minute = total as f64 / session_minutes;
    eprintln!(
        "{sessions} {what} sessions for {} s: {total} requests, {per_session_minute:.2} per session-minute",
        window.as_secs(),
    );
    for (kind, n) in counts {
        eprintln!(
            "  {kind:<40} {n:>5}  {:.2}/session-min",
            *n as f64 / session_minutes
        );
    }
    let lookups = ["GET /permission", "GET /question"]
        .iter()
        .map(|k| counts.get(*k).copied().unwrap_or(0))
        .sum::<u64>();
    (per_session_minute, lookups)
}

/// CPU time (user + system) of this process's finished children (the git calls), from
/// `/proc/self/stat`, in clock ticks (1/100 s on Linux).
fn children_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the `(comm)`: state is field 3; cutime and cstime are fields 16 and 17.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[13].parse::<u64>().unwrap() + fields[14].parse::<u64>().unwrap()
}

/// A measurement, run on demand (`cargo test --test pace -- --ignored`): `OCIO_PACE_SESSIONS`
/// simulated sessions of one plan, each in its own worktree and quiet after its first write,
/// and the CPU their worktree scans cost in git children over the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints the git children's CPU"]
async fn quiet_worktrees_cost_little_git() {
    let sessions = setting("OCIO_PACE_SESSIONS", 16);
    let window = Duration::from_secs(setting("OCIO_PACE_WINDOW_SECS", 20));
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let run_ms = (window.as_millis() as i64) + 30_000;
    let agent = support::sim_agent("sim", sessions as u32, &[], run_ms, 0.0);
    let options = EngineOptions {
        max_parallel: sessions as u32,
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let mut text = format!("name = \"quiet\"\nrepo = {:?}\n", repo.dir_str());
    for i in 0..sessions {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = 'SIM-WRITE f{i}.txt x'\n"
        ));
    }
    let plan = state.path().join("quiet.toml");
    std::fs::write(&plan, text).unwrap();
    engine
        .submit_plan(PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let mut dispatched = 0;
    while dispatched < sessions {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("dispatched")
            .unwrap();
        dispatched += u64::from(matches!(event, EngineEvent::Dispatched { .. }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = children_cpu_ticks();
    tokio::time::sleep(window).await;
    let used = children_cpu_ticks() - before;
    eprintln!(
        "{sessions} quiet sessions for {} s: git children used {:.2} s of CPU, {:.1}% of a core",
        window.as_secs(),
        used as f64 / 100.0,
        used as f64 / window.as_secs_f64()
    );
    engine.shutdown().await.unwrap();
    store.close().await;
}
