//! The measured side: ocio's engine in a process of its own, one url agent per stand-in
//! server, a plan that keeps every slot busy, and a front end that follows the engine's events
//! (as the TUI does) and times what reaches it. Prints one JSON line: the [`Figures`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocio::domain::{Agent, AgentName, Backend, ModelRef};
use ocio::engine::view::Activity;
use ocio::engine::{AgentSpec, EngineEvent, EngineHandle, EngineOptions};
use ocio::opencode::client::{Client, ClientOptions};
use ocio::opencode::runner::OpencodeRunner;
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreOptions, query};
use tokio::sync::Mutex;

use super::host::StandinStats;

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    pub sessions: usize,
    pub window_secs: f64,
    /// ocio's CPU over the window, % of one core.
    pub cpu_pct: f64,
    /// Peak resident memory (VmHWM), MiB.
    pub peak_rss_mib: f64,
    pub dispatch_ms: (f64, f64),
    pub dispatches: usize,
    /// Event to screen for tool updates (shown as they come).
    pub screen_ms: (f64, f64),
    pub screen_samples: usize,
    /// Event to screen for text deltas (a part's text is shown at most every 200 ms).
    pub text_screen_ms: (f64, f64),
    /// ocio's CPU over the window by thread name, % of one core.
    pub threads: BTreeMap<String, f64>,
    /// Durable commits of the store per second over the window (each a sync of the disk).
    pub commits_per_s: f64,
    /// Control-log events committed per second over the window (a commit carries several).
    pub log_events_per_s: f64,
    /// Events the servers sent on their streams per second.
    pub events_per_s: f64,
    /// Requests the servers got over the window, per session-minute, by kind.
    pub calls: BTreeMap<String, f64>,
}

/// Timings the front end collects.
#[derive(Default)]
struct Seen {
    /// Task key → when its dispatch reached the front end (µs since the epoch).
    dispatched: HashMap<String, i64>,
    /// Event-to-screen latencies in the window, µs: tool updates, text deltas.
    screen: Vec<i64>,
    text_screen: Vec<i64>,
    measuring: bool,
}

pub fn measure(urls: &[String], slots: u32, window: Duration, work: Duration) {
    // ocio's own runtime, unless OCIO_FLEET_WORKERS asks for another number of workers.
    let workers = std::env::var("OCIO_FLEET_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(ocio::host::ASYNC_WORKERS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let figures = runtime.block_on(run(urls, slots, window, work));
    println!("{}", serde_json::to_string(&figures).unwrap());
}

fn agents(urls: &[String], slots: u32) -> Vec<AgentSpec> {
    let model = ModelRef {
        provider: "standin".into(),
        model: "standin-coder".into(),
    };
    let options = ClientOptions {
        prompt_timeout: Duration::from_secs(3600),
        ..ClientOptions::default()
    };
    urls.iter()
        .enumerate()
        .map(|(i, url)| {
            let client = Client::new(url, None, options.clone()).unwrap();
            let backend = Backend::Opencode {
                url: Some(url.clone()),
                managed: false,
                password_env: None,
                linger: None,
            };
            let name = AgentName::new(format!("s{i:02}")).unwrap();
            AgentSpec {
                agent: Agent::new(name, backend, slots),
                runner: OpencodeRunner::new(client, None, Some(model.clone())),
            }
        })
        .collect()
}

async fn run(urls: &[String], slots: u32, window: Duration, work: Duration) -> Figures {
    let sessions = urls.len() * slots as usize;
    let state = tempfile::tempdir().unwrap();
    let repo = state.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    // A daily budget far from reached, when asked for: every step is then checked against it.
    let daily = super::setting("OCIO_FLEET_DAILY_TOKENS", 0);
    let options = EngineOptions {
        max_parallel: sessions as u32,
        daily_budget: (daily > 0).then(|| ocio::domain::Budget::new(Some(daily), None).unwrap()),
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(store.clone(), agents(urls, slots), options)
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let front = tokio::spawn(follow(engine.subscribe(), seen.clone()));
    // Enough tasks that every slot stays busy through the warm-up and the window.
    let rounds = (window + WARM_UP).as_secs_f64() / work.as_secs_f64().max(1.0);
    let tasks = sessions * (rounds.ceil() as usize + 2);
    let mut text = format!("name = \"fleet\"\nrepo = {repo:?}\nworktrees = false\n");
    for i in 0..tasks {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = \"work {i}\"\n"
        ));
    }
    let plan = state.path().join("fleet.toml");
    std::fs::write(&plan, text).unwrap();
    engine
        .submit_plan(PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(WARM_UP).await;
    let before = Sample::take(&store, urls).await;
    seen.lock().await.measuring = true;
    tokio::time::sleep(window).await;
    seen.lock().await.measuring = false;
    let after = Sample::take(&store, urls).await;
    front.abort();
    let seen = std::mem::take(&mut *seen.lock().await);
    let figures = figures(sessions, &before, &after, &seen);
    engine.shutdown().await.unwrap();
    store.close().await;
    figures
}

/// From the plan's submission to the window: every slot gets its session.
const WARM_UP: Duration = Duration::from_secs(10);

/// The front end: follows the engine's events as a screen would, timing what it gets.
async fn follow(mut events: ocio::engine::Subscription, seen: Arc<Mutex<Seen>>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let now = jiff::Timestamp::now().as_microsecond();
        match event {
            EngineEvent::Dispatched { key, .. } => {
                seen.lock().await.dispatched.insert(key, now);
            }
            EngineEvent::Activity { entry, .. } => {
                let (stamp, tool) = match &entry.activity {
                    Activity::Tool { title, .. } => (last_stamp(title), true),
                    Activity::Text { text } => (last_stamp(text), false),
                    _ => (None, false),
                };
                let mut seen = seen.lock().await;
                if let Some(stamp) = stamp
                    && seen.measuring
                {
                    match tool {
                        true => seen.screen.push(now - stamp),
                        false => seen.text_screen.push(now - stamp),
                    }
                }
            }
            _ => {}
        }
    }
}

/// The last `@<µs>` stamp the stand-in wrote into `text`.
fn last_stamp(text: &str) -> Option<i64> {
    let at = text.rfind('@')?;
    let digits: String = text[at + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What the process, the store and the servers stood at, at one moment.
struct Sample {
    at: Instant,
    cpu_ticks: u64,
    threads: BTreeMap<String, u64>,
    last_seq: u64,
    commits: u64,
    servers: Vec<StandinStats>,
}

impl Sample {
    async fn take(store: &ocio::store::StoreHandle, urls: &[String]) -> Self {
        // The servers are asked first: that traffic is not ocio's work.
        let mut servers = Vec::new();
        let http = reqwest::Client::new();
        for url in urls {
            let stats = http
                .get(format!("{url}/__standin/stats"))
                .send()
                .await
                .unwrap()
                .json::<StandinStats>()
                .await
                .unwrap();
            servers.push(stats);
        }
        Self {
            at: Instant::now(),
            cpu_ticks: cpu_ticks(),
            threads: thread_ticks(),
            last_seq: store.read(query::last_event_seq).await.unwrap(),
            commits: store.commits(),
            servers,
        }
    }
}

/// This process's CPU time (user + system), in clock ticks (1/100 s).
fn cpu_ticks() -> u64 {
    ticks_in(&std::fs::read_to_string("/proc/self/stat").unwrap())
}

/// utime + stime of a `/proc/.../stat` line.
fn ticks_in(stat: &str) -> u64 {
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// CPU ticks of this process's live threads, by thread name.
fn thread_ticks() -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        *by_name.entry(name.trim().to_string()).or_insert(0) += ticks_in(&stat);
    }
    by_name
}

/// A field of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn figures(sessions: usize, before: &Sample, after: &Sample, seen: &Seen) -> Figures {
    let window = after.at.duration_since(before.at).as_secs_f64();
    let cpu = (after.cpu_ticks - before.cpu_ticks) as f64 / 100.0;
    let session_minutes = sessions as f64 * window / 60.0;
    let mut calls = BTreeMap::new();
    for (b, a) in before.servers.iter().zip(&after.servers) {
        for (kind, n) in &a.requests {
            let was = b.requests.get(kind).copied().unwrap_or(0);
            *calls.entry(kind.clone()).or_insert(0.0) += (n - was) as f64 / session_minutes;
        }
    }
    let mut dispatch: Vec<i64> = after
        .servers
        .iter()
        .flat_map(|s| &s.created)
        .filter_map(|(title, created)| {
            let key = title.split_once('/')?.1.split(" #").next()?;
            Some(created - seen.dispatched.get(key)?)
        })
        .collect();
    let mut screen = seen.screen.clone();
    let mut text_screen = seen.text_screen.clone();
    let threads = after
        .threads
        .iter()
        .map(|(name, t)| {
            let was = before.threads.get(name).copied().unwrap_or(0);
            let used = t.saturating_sub(was) as f64 / 100.0;
            (name.clone(), 100.0 * used / window)
        })
        .collect();
    Figures {
        sessions,
        window_secs: window,
        cpu_pct: 100.0 * cpu / window,
        peak_rss_mib: status_kib("VmHWM") as f64 / 1024.0,
        dispatch_ms: percentiles(&mut dispatch),
        dispatches: dispatch.len(),
        screen_ms: percentiles(&mut screen),
        screen_samples: screen.len(),
        text_screen_ms: percentiles(&mut text_screen),
        threads,
        commits_per_s: (after.commits - before.commits) as f64 / window,
        log_events_per_s: (after.last_seq - before.last_seq) as f64 / window,
        events_per_s: after
            .servers
            .iter()
            .zip(&before.servers)
            .map(|(a, b)| (a.events - b.events) as f64)
            .sum::<f64>()
            / window,
        calls,
    }
}

/// p50 and p99 of `micros`, in ms.
fn percentiles(micros: &mut [i64]) -> (f64, f64) {
    if micros.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    micros.sort_unstable();
    let at = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    (at(0.50), at(0.99))
}
