//! The README's screenshots: the real control room code (`App` + `ocio::tui::ui::draw`) drawn
//! into ratatui's `TestBackend` from a made-up but realistic state (a plan mid-run with running,
//! waiting-approval, completed and failed sessions, agents with load history, events, an
//! approval), written as `assets/screenshots/<name>.svg` (the cell grid as SVG text with the
//! cells' colours) and `<name>.txt`. Ids, times and the time zone are fixed, so the files only
//! change when the UI does. `cargo run --example screenshots`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // an example that cannot draw should stop loudly

use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;
use ocio::domain::{
    Agent, AgentName, AgentStatus, Backend, Lifecycle, PlanId, Session, SessionId, SessionKind,
    SessionStatus, TaskId, TaskStatus, Usage,
};
use ocio::engine::approval::Ask;
use ocio::engine::view::{
    Activity, ApprovalView, Entry, PlanView, SessionView, Snapshot, TaskView,
};
use ocio::tui::app::{Mode, Pane};
use ocio::tui::keymap::{Action, Keymap};
use ocio::tui::theme::{self, ColorDepth, Theme};
use ocio::tui::{App, Msg, ui};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// 2026-03-02T14:30:00Z: the moment every screenshot shows.
const NOW: i64 = 1_772_461_800;

fn at(ago_secs: i64) -> Timestamp {
    Timestamp::from_second(NOW - ago_secs).unwrap()
}

/// The plan: (key, needs, status, attempts).
const TASKS: &[(&str, &[&str], TaskStatus, u32)] = &[
    ("analyze", &[], TaskStatus::Done, 1),
    ("api", &["analyze"], TaskStatus::Running, 1),
    ("storage", &["analyze"], TaskStatus::Running, 2),
    ("client", &["analyze"], TaskStatus::Done, 1),
    ("docs", &["analyze"], TaskStatus::Failed, 2),
    ("unit-tests", &["api", "storage"], TaskStatus::Pending, 0),
    ("e2e-tests", &["api", "client"], TaskStatus::Pending, 0),
    ("benchmark", &["storage"], TaskStatus::Running, 1),
    (
        "review",
        &["unit-tests", "e2e-tests", "benchmark", "docs"],
        TaskStatus::Blocked,
        0,
    ),
    ("changelog", &["review"], TaskStatus::Blocked, 0),
];

fn task_id(i: usize) -> TaskId {
    TaskId::from_parts(1_772_461_000_000, i as u128 + 1)
}

fn session_id(i: u128) -> SessionId {
    SessionId::from_parts(1_772_461_200_000, 0x5eed_0000 + i)
}

fn plan_id() -> PlanId {
    PlanId::from_parts(1_772_461_000_000, 0xa11)
}

/// (session number, task, attempt, status, agent, started secs ago, ran secs, tokens, last)
type SessionRow = (
    u128,
    &'static str,
    u32,
    SessionStatus,
    &'static str,
    i64,
    i64,
    u64,
    &'static str,
);

const SESSIONS: &[SessionRow] = &[
    (
        9,
        "benchmark",
        1,
        SessionStatus::WaitingApproval,
        "sim-tester",
        41,
        0,
        8_400,
        "bash pending: cargo bench --bench users",
    ),
    (
        8,
        "storage",
        2,
        SessionStatus::Running,
        "buildbox",
        95,
        0,
        31_200,
        "edit running: src/db/users.rs",
    ),
    (
        7,
        "api",
        1,
        SessionStatus::Running,
        "sim-coder-1",
        212,
        0,
        58_900,
        "Adding the cursor to the list handler.",
    ),
    (
        6,
        "docs",
        2,
        SessionStatus::Failed,
        "sim-coder-2",
        300,
        64,
        12_100,
        "the model stopped: context length exceeded",
    ),
    (
        5,
        "storage",
        1,
        SessionStatus::Failed,
        "sim-coder-2",
        520,
        188,
        40_300,
        "cargo test: 2 failed (users::page_after_last)",
    ),
    (
        4,
        "docs",
        1,
        SessionStatus::Failed,
        "sim-planner",
        530,
        70,
        9_800,
        "rate limited by the provider",
    ),
    (
        3,
        "client",
        1,
        SessionStatus::Completed,
        "buildbox",
        540,
        231,
        36_700,
        "Typed client pages with next_cursor.",
    ),
    (
        2,
        "analyze",
        1,
        SessionStatus::Completed,
        "sim-planner",
        900,
        352,
        22_500,
        "Plan: opaque base64 cursors over (created_at, id).",
    ),
];

fn snapshot() -> Snapshot {
    let plan = PlanView {
        key: String::new(),
        id: plan_id(),
        name: "add-pagination".into(),
        repo: "/home/dev/src/users-service".into(),
        landing: None,
        tasks: TASKS
            .iter()
            .enumerate()
            .map(|(i, (key, needs, status, attempts))| TaskView {
                check: None,
                waits: None,
                id: task_id(i),
                key: key.to_string(),
                status: *status,
                attempts: *attempts,
                needs: needs.iter().map(|n| n.to_string()).collect(),
                capabilities: Vec::new(),
                session: SESSIONS
                    .iter()
                    .find(|s| s.1 == *key)
                    .map(|s| session_id(s.0)),
            })
            .collect(),
    };
    let sessions: Vec<SessionView> = SESSIONS
        .iter()
        .map(
            |&(n, task, attempt, status, agent, ago, ran, tokens, last)| {
                let index = TASKS.iter().position(|t| t.0 == task).unwrap();
                let mut s = Session::new(
                    session_id(n),
                    format!("add-pagination/{task} #{attempt}"),
                    SessionKind::Code,
                    at(ago + 2),
                );
                s.status = status;
                s.plan = Some(plan_id());
                s.task = Some(task_id(index));
                s.agent = Some(AgentName::new(agent).unwrap());
                s.attempt = attempt;
                s.started_at = Some(at(ago));
                if status.is_terminal() {
                    s.finished_at = Some(at(ago - ran));
                }
                if status == SessionStatus::Failed {
                    s.last_error = Some(last.to_string());
                }
                s.usage = Usage {
                    input_tokens: tokens * 4 / 5,
                    output_tokens: tokens / 5,
                    cost: tokens as f64 * 0.000_006,
                    ..Usage::default()
                };
                let last = (status != SessionStatus::Failed).then(|| Entry {
                    at: at(3),
                    part: None,
                    activity: Activity::Note {
                        text: last.to_string(),
                    },
                });
                SessionView {
                    session: s,
                    task: task.to_string(),
                    last,
                }
            },
        )
        .collect();
    let usage = sessions.iter().fold(Usage::default(), |mut u, s| {
        u.input_tokens += s.session.usage.input_tokens;
        u.output_tokens += s.session.usage.output_tokens;
        u.cost += s.session.usage.cost;
        u
    });
    Snapshot {
        seq: 0,
        paused: false,
        plans: vec![plan],
        running: 3,
        approvals: vec![ApprovalView {
            session: session_id(9),
            task: "benchmark".into(),
            ask: Ask {
                id: "per_7f3a".into(),
                permission: "bash".into(),
                patterns: vec!["cargo bench --bench users".into()],
                questions: Vec::new(),
            },
        }],
        agents: agents(),
        fleets: Vec::new(),
        sessions,
        usage,
        conflicts: Vec::new(),
        budgets: Default::default(),
    }
}

fn agents() -> Vec<Agent> {
    let agent = |name: &str, backend: Backend, max: u32, load: u32, status: AgentStatus| {
        let mut a = Agent::new(AgentName::new(name).unwrap(), backend, max);
        a.load = load;
        a.status = status;
        a
    };
    let remote = Backend::Opencode {
        url: Some("http://10.0.4.20:4096".into()),
        managed: false,
        password_env: Some("BUILDBOX_PASSWORD".into()),
        linger: None,
    };
    vec![
        agent("buildbox", remote, 4, 1, AgentStatus::Online),
        agent("sim-planner", Backend::Simulated, 2, 0, AgentStatus::Online),
        agent("sim-coder-1", Backend::Simulated, 2, 1, AgentStatus::Online),
        agent(
            "sim-coder-2",
            Backend::Simulated,
            2,
            0,
            AgentStatus::Draining,
        ),
        agent("sim-tester", Backend::Simulated, 3, 1, AgentStatus::Online),
    ]
}

/// Events as the events pane shows them: (seconds ago, tone, text).
const EVENTS: &[(i64, &str, &str)] = &[
    (902, "plan", "plan add-pagination submitted: 10 tasks"),
    (900, "running", "analyze started on sim-planner (attempt 1)"),
    (548, "done", "analyze done: session completed"),
    (540, "running", "client started on buildbox (attempt 1)"),
    (530, "running", "docs started on sim-planner (attempt 1)"),
    (460, "failed", "docs failed: rate limited by the provider"),
    (
        332,
        "failed",
        "storage failed: cargo test: 2 failed (users::page_after_last)",
    ),
    (309, "done", "client done: session completed"),
    (300, "running", "docs started on sim-coder-2 (attempt 2)"),
    (
        236,
        "failed",
        "docs failed: the model stopped: context length exceeded",
    ),
    (230, "blocked", "review blocked: docs failed"),
    (212, "running", "api started on sim-coder-1 (attempt 1)"),
    (120, "draining", "agent sim-coder-2 draining: operator"),
    (95, "running", "storage started on buildbox (attempt 2)"),
    (41, "running", "benchmark started on sim-tester (attempt 1)"),
    (
        12,
        "waiting-approval",
        "benchmark asks bash (cargo bench --bench users): waiting for you",
    ),
];

fn transcript() -> Vec<Entry> {
    let entry = |ago: i64, activity: Activity| Entry {
        at: at(ago),
        part: None,
        activity,
    };
    let tool = |tool: &str, status: &str, title: &str| Activity::Tool {
        tool: tool.into(),
        status: status.into(),
        title: title.into(),
    };
    let text = |t: &str| Activity::Text { text: t.into() };
    let step = |tokens: u64| Activity::Step {
        usage: Usage {
            input_tokens: tokens * 4 / 5,
            output_tokens: tokens / 5,
            ..Usage::default()
        },
    };
    vec![
        entry(
            210,
            Activity::Note {
                text: "dispatched to sim-coder-1 (attempt 1)".into(),
            },
        ),
        entry(
            205,
            text(
                "I'll start from the design in the analyze task: opaque cursors over\n(created_at, id), a `limit` capped at 200, and `next_cursor` in the response.",
            ),
        ),
        entry(198, tool("read", "completed", "src/api/users.rs")),
        entry(190, tool("read", "completed", "src/db/users.rs")),
        entry(181, step(14_200)),
        entry(
            170,
            text("The handler builds its query inline; I'll move paging into a Cursor type."),
        ),
        entry(160, tool("write", "completed", "src/api/cursor.rs")),
        entry(149, tool("edit", "completed", "src/api/users.rs")),
        entry(140, tool("bash", "completed", "cargo check")),
        entry(122, step(33_800)),
        entry(
            110,
            text(
                "cargo check passes. Now the handler: decode the cursor, fetch limit + 1\nrows, and emit next_cursor only when there is a next page.",
            ),
        ),
        entry(95, tool("edit", "completed", "src/api/users.rs")),
        entry(80, tool("bash", "error", "cargo test api::users")),
        entry(
            72,
            text("One test expected the old unpaged response; updating it."),
        ),
        entry(60, tool("edit", "completed", "tests/api_users.rs")),
        entry(44, tool("bash", "completed", "cargo test api::users")),
        entry(30, step(58_900)),
        entry(6, text("Adding the cursor to the list handler.")),
        entry(2, tool("edit", "running", "src/api/users.rs")),
    ]
}

fn app() -> App {
    let theme = Theme::load(theme::DEFAULT, None, ColorDepth::TrueColor).unwrap();
    let mut app = App::new(theme, Keymap::default());
    app.update(Msg::Snapshot(Box::new(snapshot())));
    for (ago, tone, text) in EVENTS {
        app.view.log(at(*ago), tone, text.to_string());
    }
    // A minute of load per agent, in percent of its slots.
    for n in 0..60u64 {
        for (i, agent) in app.view.agents.iter().enumerate() {
            let wave = [0, 50, 100, 50, 25, 75, 100][(n as usize / 6 + i * 2) % 7];
            let percent = if agent.status == AgentStatus::Draining && n > 40 {
                0
            } else {
                wave
            };
            let samples = app.view.load.entry(agent.name.clone()).or_default();
            samples.push_back(percent);
        }
    }
    app.now = at(0);
    app.zone = jiff::tz::TimeZone::UTC;
    app
}

fn draw(app: &mut App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let mut shots: Vec<(&str, Buffer)> = Vec::new();

    let mut overview = app();
    shots.push(("overview", draw(&mut overview, 160, 42)));

    let mut detail = app();
    detail.mode = Mode::Detail(session_id(7));
    detail.view.transcript = Some((session_id(7), transcript()));
    shots.push(("detail", draw(&mut detail, 160, 42)));

    let mut graph = app();
    graph.focus = Pane::Tasks;
    graph.panes.graph = true;
    draw(&mut graph, 160, 42); // builds the tree the graph's cursor walks
    // The cursor walks the plan in topological order: analyze, api, storage.
    for _ in 0..3 {
        graph
            .panes
            .move_cursor(Pane::Tasks, Action::Down, &graph.view);
    }
    shots.push(("graph", draw(&mut graph, 160, 42)));

    let mut help = app();
    help.mode = Mode::Help;
    shots.push(("help", draw(&mut help, 120, 36)));

    let mut small = app();
    small.focus = Pane::Approvals;
    shots.push(("small-80x24", draw(&mut small, 80, 24)));

    for (name, buffer) in &shots {
        std::fs::write(dir.join(format!("{name}.svg")), svg(buffer)).unwrap();
        std::fs::write(dir.join(format!("{name}.txt")), text(buffer)).unwrap();
        println!("assets/screenshots/{name}.svg and .txt");
    }
}

/// The buffer as text, one line per row, trailing blanks cut.
fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let row: String = (0..area.width).map(|x| buffer[(x, y)].symbol()).collect();
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

const CELL_W: f64 = 8.4;
const CELL_H: f64 = 17.0;
const FONT: f64 = 14.0;
/// What `Color::Reset` stands for: the industrial theme's own text and background.
const DEFAULT_FG: &str = "#d8dcdf";
const DEFAULT_BG: &str = "#101214";

/// The buffer as SVG: a rectangle per run of one background, a `<text>` per run of one
/// foreground and style, each run stretched to its cells so columns line up in any font.
fn svg(buffer: &Buffer) -> String {
    let area = buffer.area;
    let (w, h) = (
        f64::from(area.width) * CELL_W,
        f64::from(area.height) * CELL_H,
    );
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.1} {h:.1}\" font-family=\"'DejaVu Sans Mono', Menlo, Consolas, monospace\" font-size=\"{FONT}\">\n<rect width=\"100%\" height=\"100%\" fill=\"{DEFAULT_BG}\"/>\n"
    );
    for y in 0..area.height {
        let cells: Vec<Look> = (0..area.width).map(|x| look(buffer, x, y)).collect();
        // Backgrounds.
        let mut x = 0;
        while x < cells.len() {
            let end = run_end(&cells, x, |c| c.bg.clone());
            if cells[x].bg != DEFAULT_BG {
                let _ = writeln!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{CELL_H}\" fill=\"{}\"/>",
                    x as f64 * CELL_W,
                    f64::from(y) * CELL_H,
                    (end - x) as f64 * CELL_W,
                    cells[x].bg
                );
            }
            x = end;
        }
        // Text.
        let mut x = 0;
        while x < cells.len() {
            let end = run_end(&cells, x, |c| (c.fg.clone(), c.bold, c.underline, c.dim));
            let run: String = cells[x..end].iter().map(|c| c.symbol.as_str()).collect();
            if !run.trim().is_empty() {
                let c = &cells[x];
                let mut attrs = format!("fill=\"{}\"", c.fg);
                if c.bold {
                    attrs.push_str(" font-weight=\"bold\"");
                }
                if c.underline {
                    attrs.push_str(" text-decoration=\"underline\"");
                }
                if c.dim {
                    attrs.push_str(" opacity=\"0.6\"");
                }
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" textLength=\"{:.1}\" lengthAdjust=\"spacingAndGlyphs\" xml:space=\"preserve\" {attrs}>{}</text>",
                    x as f64 * CELL_W,
                    f64::from(y) * CELL_H + CELL_H * 0.78,
                    (end - x) as f64 * CELL_W,
                    escape(&run)
                );
            }
            x = end;
        }
    }
    out.push_str("</svg>\n");
    out
}

/// One cell as drawn: colours resolved (reverse applied) and the styles SVG can show.
#[derive(Clone)]
struct Look {
    symbol: String,
    fg: String,
    bg: String,
    bold: bool,
    underline: bool,
    dim: bool,
}

fn look(buffer: &Buffer, x: u16, y: u16) -> Look {
    let cell = &buffer[(x, y)];
    let mut fg = hex(cell.fg).unwrap_or_else(|| DEFAULT_FG.into());
    let mut bg = hex(cell.bg).unwrap_or_else(|| DEFAULT_BG.into());
    if cell.modifier.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
    }
    let symbol = match cell.symbol() {
        "" => " ".to_string(),
        s => s.to_string(),
    };
    Look {
        symbol,
        fg,
        bg,
        bold: cell.modifier.contains(Modifier::BOLD),
        underline: cell.modifier.contains(Modifier::UNDERLINED),
        dim: cell.modifier.contains(Modifier::DIM),
    }
}

fn run_end<K: PartialEq>(cells: &[Look], start: usize, key: impl Fn(&Look) -> K) -> usize {
    let first = key(&cells[start]);
    let mut end = start + 1;
    while end < cells.len() && key(&cells[end]) == first {
        end += 1;
    }
    end
}

/// `#rrggbb` for a colour; `None` for the terminal's default.
fn hex(color: Color) -> Option<String> {
    let (r, g, b) = match color {
        Color::Reset => return None,
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(i) => indexed(i),
        named => indexed(match named {
            Color::Black => 0,
            Color::Red => 1,
            Color::Green => 2,
            Color::Yellow => 3,
            Color::Blue => 4,
            Color::Magenta => 5,
            Color::Cyan => 6,
            Color::Gray => 7,
            Color::DarkGray => 8,
            Color::LightRed => 9,
            Color::LightGreen => 10,
            Color::LightYellow => 11,
            Color::LightBlue => 12,
            Color::LightMagenta => 13,
            Color::LightCyan => 14,
            _ => 15,
        }),
    };
    Some(format!("#{r:02x}{g:02x}{b:02x}"))
}

/// The xterm 256-colour palette.
fn indexed(i: u8) -> (u8, u8, u8) {
    const BASE: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    match i {
        0..16 => BASE[usize::from(i)],
        16..232 => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            let n = i - 16;
            (level(n / 36), level((n / 6) % 6), level(n % 6))
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
