//! The control room's frame time: a full frame of the real UI code (`ocio::tui::ui::draw`)
//! rendered into ratatui's `TestBackend` at 200x60, with 10,000 sessions (800 running),
//! 200 agents with a minute of load history, a 2,000-task plan (40 layers of 50, each task
//! needing two of the layer before), 2,000 event lines and 5 waiting approvals. Cases:
//!
//! - steady: nothing changed since the last frame;
//! - session event: one `EngineEvent::Activity` applied (`app.update`) before each frame, which
//!   invalidates the sessions ordering;
//! - task event: one task `Transition` applied before each frame, which also relabels that
//!   task (and its plan's done count) in the task tree (the worst event a busy plan sends);
//! - graph: the tasks pane as the dependency graph, a task in layer 20 selected;
//! - detail: one session full screen with a 2,000-entry transcript.
//!
//! Each figure is the median over `OCIO_BENCH_RUNS` runs (default 5) of each run's p50 and p90
//! over `OCIO_BENCH_FRAMES` frames (default 300); frames/s is frames over their total time.
//! `OCIO_BENCH_ONLY=steady,graph` runs only the cases named.
//! Target: p50 under 2 ms. `cargo bench --bench tui`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::time::{Duration, Instant};

use jiff::Timestamp;
use ocio::domain::{
    Agent, AgentName, AgentStatus, Backend, DomainEvent, PlanId, Session, SessionId, SessionKind,
    SessionStatus, TaskId, TaskStatus, Transition, Usage,
};
use ocio::engine::EngineEvent;
use ocio::engine::approval::Ask;
use ocio::engine::view::{
    Activity, ApprovalView, Entry, PlanView, SessionView, Snapshot, TaskView,
};
use ocio::tui::app::{Mode, Pane};
use ocio::tui::keymap::Keymap;
use ocio::tui::theme::{self, ColorDepth, Theme};
use ocio::tui::{App, Msg, ui};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const WIDTH: u16 = 200;
const HEIGHT: u16 = 60;
const SESSIONS: usize = 10_000;
const RUNNING: usize = 800;
const AGENTS: usize = 200;
const LAYERS: usize = 40;
const PER_LAYER: usize = 50;
const TARGET_MS: f64 = 2.0;

/// 2026-01-01T00:00:00Z: every time here is counted from it, so runs draw the same frames.
const EPOCH_SECS: i64 = 1_767_225_600;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(EPOCH_SECS + secs).unwrap()
}

fn key(layer: usize, i: usize) -> String {
    format!("l{layer:02}-task-{i:02}")
}

fn plan(id: PlanId) -> PlanView {
    let mut tasks = Vec::with_capacity(LAYERS * PER_LAYER);
    for layer in 0..LAYERS {
        for i in 0..PER_LAYER {
            let needs = if layer == 0 {
                Vec::new()
            } else {
                let other = (i * 7 + 3) % PER_LAYER;
                let mut needs = vec![key(layer - 1, i)];
                if other != i {
                    needs.push(key(layer - 1, other));
                }
                needs
            };
            let status = match layer {
                0..16 => TaskStatus::Done,
                16 if i % 10 == 0 => TaskStatus::Failed,
                16..20 => TaskStatus::Running,
                20 => TaskStatus::Ready,
                _ => TaskStatus::Pending,
            };
            let n = (layer * PER_LAYER + i) as u128;
            tasks.push(TaskView {
                id: TaskId::from_parts(1_000, n),
                key: key(layer, i),
                status,
                attempts: u32::from(status != TaskStatus::Pending) + u32::from(i % 13 == 0),
                needs,
                capabilities: vec!["code".into()],
                session: None,
                check: None,
                waits: None,
            });
        }
    }
    PlanView {
        key: String::new(),
        id,
        name: "bench".into(),
        repo: "/srv/repo".into(),
        tasks,
        landing: None,
    }
}

fn agents() -> Vec<Agent> {
    (0..AGENTS)
        .map(|i| {
            let mut agent = Agent::new(
                AgentName::new(format!("sim-{i:03}")).unwrap(),
                Backend::Simulated,
                4,
            );
            agent.load = (i % 5) as u32;
            if i % 37 == 0 {
                agent.status = AgentStatus::Draining;
            }
            agent
        })
        .collect()
}

fn sessions(plan: &PlanView) -> Vec<SessionView> {
    (0..SESSIONS)
        .map(|n| {
            let task = &plan.tasks[n % plan.tasks.len()];
            let id = SessionId::from_parts(2_000, n as u128);
            let mut s = Session::new(
                id,
                format!("bench/{} #1", task.key),
                SessionKind::Code,
                at(-(n as i64) * 3),
            );
            s.status = if n < RUNNING {
                SessionStatus::Running
            } else if n % 9 == 0 {
                SessionStatus::Failed
            } else {
                SessionStatus::Completed
            };
            s.plan = Some(plan.id);
            s.task = Some(task.id);
            s.agent = Some(AgentName::new(format!("sim-{:03}", n % AGENTS)).unwrap());
            s.started_at = Some(at(-(n as i64) * 3 + 1));
            if n >= RUNNING {
                s.finished_at = Some(at(-(n as i64) * 3 + 90));
            }
            s.usage = Usage {
                input_tokens: (n as u64 * 7919) % 90_000,
                output_tokens: (n as u64 * 104_729) % 20_000,
                cost: n as f64 * 0.0001,
                ..Usage::default()
            };
            SessionView {
                session: s,
                task: task.key.clone(),
                last: Some(Entry {
                    at: at(-(n as i64)),
                    part: None,
                    activity: Activity::Tool {
                        tool: "edit".into(),
                        status: "completed".into(),
                        title: format!("src/area_{}/mod.rs", n % 97),
                    },
                }),
            }
        })
        .collect()
}

fn transcript() -> Vec<Entry> {
    (0..2_000)
        .map(|n| Entry {
            at: at(n as i64),
            part: Some(format!("prt_{n}")),
            activity: match n % 3 {
                0 => Activity::Text {
                    text: format!(
                        "Step {n}: reading the module.\nIt has {} functions.",
                        n % 40
                    ),
                },
                1 => Activity::Tool {
                    tool: "edit".into(),
                    status: "completed".into(),
                    title: format!("src/area_{}/mod.rs", n % 97),
                },
                _ => Activity::Step {
                    usage: Usage {
                        input_tokens: n as u64 * 100,
                        output_tokens: n as u64 * 10,
                        ..Usage::default()
                    },
                },
            },
        })
        .collect()
}

fn app() -> App {
    let theme = Theme::load(theme::DEFAULT, None, ColorDepth::TrueColor).unwrap();
    let mut app = App::new(theme, Keymap::default());
    let plan = plan(PlanId::from_parts(500, 1));
    let sessions = sessions(&plan);
    let approvals = (0..5)
        .map(|n| ApprovalView {
            session: sessions[n].session.id,
            task: sessions[n].task.clone(),
            ask: Ask {
                id: format!("per_{n}"),
                permission: "external_directory".into(),
                patterns: vec![format!("/etc/conf.d/{n}")],
                questions: Vec::new(),
            },
        })
        .collect();
    let snapshot = Snapshot {
        seq: 0,
        paused: false,
        plans: vec![plan],
        running: RUNNING,
        sessions,
        agents: agents(),
        fleets: Vec::new(),
        approvals,
        usage: Usage {
            input_tokens: 123_456_789,
            output_tokens: 9_876_543,
            cost: 1234.5,
            ..Usage::default()
        },
        conflicts: Vec::new(),
        budgets: Default::default(),
    };
    app.update(Msg::Snapshot(Box::new(snapshot)));
    for n in 0..60 {
        for (i, agent) in app.view.agents.iter().enumerate() {
            let samples = app.view.load.entry(agent.name.clone()).or_default();
            samples.push_back(((n * 7 + i * 13) % 101) as u64);
        }
    }
    for n in 0..2_000 {
        app.view.log(
            at(n),
            "done",
            format!("l{:02}-task-{:02} done: session completed", n % 40, n % 50),
        );
    }
    app.now = at(3_600);
    app.zone = jiff::tz::TimeZone::UTC;
    app
}

fn terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap()
}

struct Figures {
    p50_ms: f64,
    p90_ms: f64,
    fps: f64,
}

/// Time `frames` frames, each after `before(app, frame)` (an event, or nothing).
fn measure(app: &mut App, frames: usize, mut before: impl FnMut(&mut App, usize)) -> Figures {
    let mut terminal = terminal();
    // Warm up: the first frame builds the caches a steady frame reuses.
    for _ in 0..3 {
        terminal.draw(|f| ui::draw(f, app)).unwrap();
    }
    let mut times = Vec::with_capacity(frames);
    let all = Instant::now();
    for frame in 0..frames {
        let started = Instant::now();
        before(app, frame);
        terminal.draw(|f| ui::draw(f, app)).unwrap();
        times.push(started.elapsed());
    }
    let total = all.elapsed();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Figures {
        p50_ms: ms(times[times.len() / 2]),
        p90_ms: ms(times[times.len() * 9 / 10]),
        fps: frames as f64 / total.as_secs_f64(),
    }
}

fn session_event(app: &mut App, frame: usize) {
    let session = app.view.sessions[frame % RUNNING].session.id;
    let event = EngineEvent::Activity {
        session,
        entry: Entry {
            at: at(frame as i64),
            part: Some("prt_live".into()),
            activity: Activity::Text {
                text: format!("Working on it, step {frame}."),
            },
        },
    };
    app.update(Msg::Engine(numbered(event)));
}

fn task_event(app: &mut App, frame: usize) {
    let task = &app.view.plans[0].tasks[18 * PER_LAYER + frame % PER_LAYER];
    let (from, to) = if task.status == TaskStatus::Running {
        (TaskStatus::Running, TaskStatus::Done)
    } else {
        (task.status, TaskStatus::Running)
    };
    let event = DomainEvent::new(
        Transition::Task {
            id: task.id,
            key: task.key.clone(),
            from,
            to,
        },
        "bench",
        at(frame as i64),
    );
    app.update(Msg::Engine(numbered(EngineEvent::Transition(event))));
}

/// `event` numbered after every event before it (the bench's snapshot says 0).
fn numbered(event: EngineEvent) -> ocio::engine::Told {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    ocio::engine::Told {
        seq: SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        event,
    }
}

type Case = (&'static str, fn(usize) -> Figures);

const CASES: &[Case] = &[
    ("steady", |frames| measure(&mut app(), frames, |_, _| {})),
    ("session event", |frames| {
        measure(&mut app(), frames, session_event)
    }),
    ("task event", |frames| {
        measure(&mut app(), frames, task_event)
    }),
    ("graph", |frames| {
        let mut app = app();
        app.focus = Pane::Tasks;
        app.panes.graph = true;
        let mut terminal = terminal();
        terminal.draw(|f| ui::draw(f, &mut app)).unwrap();
        // Down the plan's topological order to a task in layer 20.
        for _ in 0..20 * PER_LAYER + 7 {
            app.panes
                .move_cursor(Pane::Tasks, ocio::tui::keymap::Action::Down, &app.view);
        }
        measure(&mut app, frames, |_, _| {})
    }),
    ("detail", |frames| {
        let mut app = app();
        let id = app.view.sessions[3].session.id;
        app.mode = Mode::Detail(id);
        app.view.transcript = Some((id, transcript()));
        measure(&mut app, frames, |_, _| {})
    }),
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .max(1)
    };
    let runs = env("OCIO_BENCH_RUNS", 5);
    let frames = env("OCIO_BENCH_FRAMES", 300);
    println!(
        "control room frame at {WIDTH}x{HEIGHT}: {SESSIONS} sessions, {AGENTS} agents, {} tasks; median of {runs} runs of {frames} frames",
        LAYERS * PER_LAYER
    );
    println!();
    println!(
        "{:<14} {:>9} {:>9} {:>9}  target p50 < {TARGET_MS} ms",
        "case", "p50 ms", "p90 ms", "frames/s"
    );
    let only = std::env::var("OCIO_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|o| name.contains(o.trim()));
    for (name, case) in CASES.iter().filter(|(name, _)| wanted(name)) {
        let figures: Vec<Figures> = (0..runs).map(|_| case(frames)).collect();
        let p50 = median(figures.iter().map(|f| f.p50_ms).collect());
        let p90 = median(figures.iter().map(|f| f.p90_ms).collect());
        let fps = median(figures.iter().map(|f| f.fps).collect());
        let verdict = if p50 < TARGET_MS { "met" } else { "MISSED" };
        println!("{name:<14} {p50:>9.3} {p90:>9.3} {fps:>9.0}  {verdict}");
    }
}
