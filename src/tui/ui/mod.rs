//! Drawing: the layout, header, overlays (help, quit, inputs), and the panes and footer in
//! the files beside this one. Reads the app's view and never waits on anything.

mod agent_detail;
mod agents;
mod bar;
mod detail;
mod events;
mod footer;
mod help;
mod plan;
mod prompt;
mod search;
mod sessions;
mod tasks;
mod timeline;
mod widths;
mod wrap;

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Mode, Pane};
use crate::domain::{AgentStatus, Backend, Lifecycle, SessionStatus};
use bar::{Part, Rank};
use widths::Want;

/// Below this the panes do not fit; the screen says so instead.
const MIN_WIDTH: u16 = 40;
const MIN_HEIGHT: u16 = 10;

pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    frame.render_widget(Block::new().style(app.theme.base), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "ocio: {}x{} is too small; make the window at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .style(app.theme.accent),
            area,
        );
        app.set_areas(Vec::new());
        return;
    }
    let status = footer::status_rows(app, area.width, area.height);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(status.as_ref().map_or(1, |rows| rows.len() as u16)),
    ])
    .areas(area);
    let counts = app.panes.counts(&app.view).to_vec();
    draw_header(frame, app, &counts, header);
    // Under a question, what it was asked from.
    let under = match &app.mode {
        Mode::ConfirmCancel { back, .. }
        | Mode::ConfirmLand { back, .. }
        | Mode::ConfirmBudgetCancel { back, .. } => back.as_ref(),
        Mode::Palette(_, back) => back.as_ref(),
        Mode::Answer(answering) => &answering.back,
        Mode::Say(id, _) => &Mode::Detail(*id),
        mode => mode,
    };
    if let Mode::Detail(id) = *under {
        detail::draw(frame, app, id, body);
        app.set_areas(Vec::new());
    } else if let Mode::PlanReview(_) = under {
        plan::draw(frame, app, body);
        app.set_areas(Vec::new());
    } else if let Mode::Timeline = under {
        timeline::draw(frame, app, body);
        app.set_areas(Vec::new());
    } else if let Mode::Agent(name) = under {
        let name = name.clone();
        agent_detail::draw(frame, app, &name, body);
        app.set_areas(Vec::new());
    } else {
        let measured = Measured::of(app);
        let areas = layout(body, app, &measured);
        let at = |pane| area_of(&areas, pane);
        sessions::draw(frame, app, &measured.sessions, at(Pane::Sessions));
        agents::draw_agents(frame, app, &measured.agents, at(Pane::Agents));
        tasks::draw(frame, app, at(Pane::Tasks));
        agents::draw_approvals(frame, app, &measured.approvals, at(Pane::Approvals));
        events::draw(frame, app, at(Pane::Events));
        app.set_areas(areas);
    }
    keep_selection_legible(frame, &app.theme);
    match status {
        Some(rows) => frame.render_widget(Paragraph::new(rows).style(app.theme.base), footer),
        None => footer::draw_footer(frame, app, footer),
    }
    match &app.mode {
        Mode::Help => help::draw(frame, app, body),
        Mode::ConfirmQuit { rooms } => draw_confirm(frame, app, *rooms, body),
        Mode::ConfirmCancel { name, .. } => draw_confirm_cancel(frame, app, name, body),
        Mode::ConfirmLand { plan, name, .. } => draw_confirm_land(frame, app, *plan, name, body),
        Mode::ConfirmBudgetCancel { name, .. } => {
            draw_confirm_budget_cancel(frame, app, name, body)
        }
        Mode::Review(proposal) => draw_review(frame, app, proposal, body),
        Mode::NewTask(editor) => prompt::draw(frame, app, editor, body),
        Mode::Answer(answering) => prompt::draw_answer(frame, app, answering, body),
        Mode::Say(id, editor) => prompt::draw_say(frame, app, *id, editor, body),
        Mode::Filter => {
            if let Some(found) = app.search.shown(&app.panes.filter) {
                search::draw(frame, app, found, body);
            }
        }
        Mode::Palette(editor, _) if app.palette_list => {
            help::draw_commands(frame, app, &editor.text(), body);
        }
        _ => {}
    }
}

/// On a selected row a cell keeps its own colour (a state, a gauge) where it reads on the
/// selection, and takes the selection's text colour where it does not. Done on the drawn
/// frame, so every pane and widget (the task tree styles its items ahead) is covered.
fn keep_selection_legible(frame: &mut Frame, theme: &super::theme::Theme) {
    let Some(bg) = theme.selected.bg else {
        return;
    };
    for cell in frame.buffer_mut().content.iter_mut() {
        if cell.bg == bg {
            cell.fg = theme.on_selection(cell.fg);
        }
    }
}

/// What the panes hold, measured once a frame for the layout and the tables.
struct Measured {
    sessions: [widths::Column; 7],
    agents: [widths::Column; 5],
    approvals: [widths::Column; 4],
}

impl Measured {
    fn of(app: &mut App) -> Self {
        Self {
            sessions: sessions::columns(app),
            agents: agents::agent_columns(app),
            approvals: agents::approval_columns(app),
        }
    }
}

/// The task tree: its plan lines and a few levels of tasks.
const TASKS: Want = Want { min: 32, want: 44 };
/// How much more of the sessions' last activity shows most of them whole.
const LAST_MORE: u16 = 16;
/// Borders, the time of day and sixty characters.
const EVENTS_IN_COLUMN: u16 = 2 + 9 + 60;

/// Two columns where both show what they hold whole (sessions and tasks on the left; agents,
/// approvals and events on the right), the spare split between them; else the sessions on
/// top, full width, and two rows of two panes that share their width by what they hold.
/// The panes come in the order they are read in (down the left column then the right one;
/// row by row, left to right), which is Tab's.
fn layout(body: Rect, app: &App, measured: &Measured) -> Vec<(Pane, Rect)> {
    let sessions = sessions::want(app, &measured.sessions);
    let agents = Want::table(&measured.agents);
    let approvals = agents::approvals_want(app, &measured.approvals);
    let events = events::want(app, usize::from(body.height));
    let left = Want {
        min: sessions.min.max(TASKS.min),
        want: sessions.want.max(TASKS.want),
    };
    // In a column, the events ask room for lines of sixty characters: a longer one is no
    // reason to stack every pane.
    let right = Want {
        min: agents.min.max(approvals.min).max(events.min),
        want: agents
            .want
            .max(approvals.want)
            .max(events.want.min(EVENTS_IN_COLUMN)),
    };
    if u32::from(left.want) + u32::from(right.want) <= u32::from(body.width) {
        // Spare width to what is still cut: the sessions' last activity (asked room for only
        // in part) and event lines longer than the column.
        let spare = body.width - left.want - right.want;
        let cut = [LAST_MORE, events.want.saturating_sub(right.want)];
        let left = left.want + widths::spare_to_first(spare, cut);
        let [left, right] =
            Layout::horizontal([Constraint::Length(left), Constraint::Min(0)]).areas(body);
        let [sessions, tasks] =
            Layout::vertical([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(left);
        let [agents, approvals, events] = Layout::vertical([
            Constraint::Percentage(32),
            Constraint::Percentage(20),
            Constraint::Percentage(48),
        ])
        .areas(right);
        return vec![
            (Pane::Sessions, sessions),
            (Pane::Tasks, tasks),
            (Pane::Agents, agents),
            (Pane::Approvals, approvals),
            (Pane::Events, events),
        ];
    }
    let [sessions, middle, bottom] = Layout::vertical([
        Constraint::Percentage(40),
        Constraint::Percentage(30),
        Constraint::Percentage(30),
    ])
    .areas(body);
    let [agents_area, tasks] = side_by_side(middle, agents, TASKS);
    // The events keep their lines whole before the approvals show all of what each is for;
    // what the events leave beyond that goes to the approvals.
    let approvals = if approvals.want.saturating_add(events.want) > bottom.width {
        let glance = agents::approvals_glance(app, &measured.approvals);
        let left = bottom.width.saturating_sub(events.want);
        Want {
            want: glance.want.max(left.min(approvals.want)),
            ..glance
        }
    } else {
        approvals
    };
    let [approvals_area, events_area] = side_by_side(bottom, approvals, events);
    vec![
        (Pane::Sessions, sessions),
        (Pane::Tasks, tasks),
        (Pane::Agents, agents_area),
        (Pane::Events, events_area),
        (Pane::Approvals, approvals_area),
    ]
}

/// `area` split in two side by side ([`widths::split`]), the first pane on the right.
fn side_by_side(area: Rect, first: Want, second: Want) -> [Rect; 2] {
    let width = widths::split(area.width, first, second);
    let [left, right] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(area);
    [right, left]
}

fn area_of(areas: &[(Pane, Rect)], pane: Pane) -> Rect {
    areas
        .iter()
        .find(|(p, _)| *p == pane)
        .map(|(_, r)| *r)
        .unwrap_or_default()
}

/// A pane's frame: accent border when focused.
pub(super) fn block<'a>(app: &App, pane: Pane, title: String) -> Block<'a> {
    let focused = app.focus == pane;
    let (border, marker) = if focused {
        (app.theme.border_focus, "▶ ")
    } else {
        (app.theme.border, "")
    };
    Block::new()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(Span::styled(
            format!(" {marker}{title} "),
            if focused {
                app.theme.accent
            } else {
                app.theme.title
            },
        ))
}

/// Header parts by how much the operator needs them: what waits for them (and a paused
/// engine, a plan over budget) first, then the spend, then the rest; narrow, the rest gives
/// way whole. The sessions running (their count, where the counts of every state do not
/// fit) go before the agents online.
const NEEDS_YOU: Rank = 0;
const SPEND: Rank = 1;
const NAME: Rank = 2;
const STATE: Rank = 3;
const AGENTS: Rank = 4;
const ASIDE: Rank = 5;

fn draw_header(frame: &mut Frame, app: &App, counts: &[(SessionStatus, usize)], area: Rect) {
    let line = bar::line(header_parts(app, counts), area.width);
    frame.render_widget(Paragraph::new(line).style(app.theme.header), area);
}

/// A header section after a `│`, in a long form and a short one.
fn section<'a>(app: &App, rank: Rank, style: Style, long: String, short: String) -> Part<'a> {
    Part::new(
        rank,
        Span::styled(" │ ", app.theme.base),
        vec![Span::styled(long, style)],
    )
    .or(vec![Span::styled(short, style)])
}

fn header_parts<'a>(app: &'a App, counts: &[(SessionStatus, usize)]) -> Vec<Part<'a>> {
    let theme = &app.theme;
    let view = &app.view;
    let word = |rank, text: &'static str, style| {
        Part::new(rank, Span::raw(" "), vec![Span::styled(text, style)])
    };
    let ocio = || Span::styled(" OCIO ", theme.selected);
    // A fleet's members are real servers, joined or not.
    let simulated = !view.agents.is_empty()
        && view.fleets.is_empty()
        && view.agents.iter().all(|a| a.backend == Backend::Simulated);
    // Nothing real runs: said with the name, so it never gives way (a demo at 80x24), in full
    // where there is room.
    let name = match simulated {
        true => Part::new(
            NAME,
            Span::raw(""),
            vec![ocio(), Span::styled(" [SIMULATED]", theme.accent)],
        )
        .or(vec![ocio(), Span::styled(" SIM", theme.accent)]),
        false => Part::new(NAME, Span::raw(""), vec![ocio()]),
    };
    let mut parts = vec![name];
    parts.push(match (&app.attached, view.paused) {
        (_, true) => word(NEEDS_YOU, "PAUSED", theme.status("paused")),
        (Some(_), false) => word(STATE, "attached", theme.status("running")),
        (None, false) => word(STATE, "running", theme.status("running")),
    });
    let held: Vec<&str> = view
        .budgets
        .held()
        .map(|p| view.plan_called(p.plan, &p.name))
        .collect();
    if !held.is_empty() {
        let long = format!("over budget: {}", held.join(" "));
        let short = format!("{} over budget", held.len());
        parts.push(section(app, NEEDS_YOU, theme.status("paused"), long, short));
    }
    let online = view
        .agents
        .iter()
        .filter(|a| a.status == AgentStatus::Online)
        .count();
    let agents = format!("agents {online}/{}", view.agents.len());
    let long = format!("{agents} online");
    parts.push(section(app, AGENTS, theme.base, long, agents));
    // No section at all without sessions (it was an empty `│ │`).
    if !counts.is_empty() {
        parts.push(counts_part(app, counts));
    }
    let usage = &view.usage;
    let (tokens, cost) = (si(usage.total_tokens()), usage.cost);
    let long = format!("{tokens} tokens ${cost:.2}");
    parts.push(section(
        app,
        SPEND,
        theme.base,
        long,
        format!("{tokens} tok ${cost:.2}"),
    ));
    if let Some(daily) = view.budgets.daily {
        let spent = &view.budgets.daily_spent;
        let over = daily.reached(spent).is_some();
        let (rank, style) = if over {
            (NEEDS_YOU, theme.status("failed"))
        } else {
            (SPEND, theme.base)
        };
        let today = format!("today {}", budget_words(&daily, spent));
        parts.push(section(app, rank, style, today.clone(), today));
    }
    let waiting = view.waiting();
    if waiting > 0 {
        let long = format!("{waiting} waiting for you");
        let short = format!("{waiting} waiting");
        parts.push(section(
            app,
            NEEDS_YOU,
            theme.status("waiting-approval"),
            long,
            short,
        ));
    }
    if let Some(socket) = &app.attached {
        parts.push(section(
            app,
            ASIDE + 1,
            theme.muted,
            socket.clone(),
            socket.clone(),
        ));
    }
    parts
}

/// The sessions by state, each in its state's colour; short, the running ones' count alone
/// (where all of them did not fit, the running ones were left out with them: hand trial).
fn counts_part<'a>(app: &App, counts: &[(SessionStatus, usize)]) -> Part<'a> {
    let spans = counts
        .iter()
        .enumerate()
        .map(|(i, (status, n))| {
            let gap = if i == 0 { "" } else { " " };
            let text = format!("{gap}{n} {}", status.name());
            Span::styled(text, app.theme.status(status.name()))
        })
        .collect();
    let running = SessionStatus::Running;
    let n = counts
        .iter()
        .find(|(status, _)| *status == running)
        .map_or(0, |(_, n)| *n);
    let short = format!("{n} {}", running.name());
    Part::new(STATE, Span::styled(" │ ", app.theme.base), spans)
        .or(vec![Span::styled(short, app.theme.status(running.name()))])
}

fn draw_confirm(frame: &mut Frame, app: &App, rooms: usize, area: Rect) {
    let mut lines = quit_sessions(app);
    if rooms > 0 {
        let (rooms, are) = match rooms {
            1 => ("Another control room is".to_string(), "it loses"),
            n => (format!("{n} other control rooms are"), "they lose"),
        };
        lines.push(Line::styled(
            format!("{rooms} attached: {are} the engine;"),
            app.theme.accent,
        ));
        lines.push(Line::raw("`ocio` there starts it again."));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("quit now? y / n", app.theme.accent));
    let height = lines.len() as u16 + 2;
    draw_question(frame, app, "quit", lines, centered(area, 60, height));
}

/// What quitting does to the sessions not ended: nothing when none is.
fn quit_sessions(app: &App) -> Vec<Line<'static>> {
    // Every session not ended: running, starting, retrying, but also waiting for approval,
    // an agent or its task's dependencies, or paused.
    let running = app.view.running();
    if running == 0 {
        return Vec::new();
    }
    let verb = if running == 1 { "is" } else { "are" };
    let stopping = app.view.stopping_with_ocio();
    let mut lines = vec![Line::raw(format!(
        "{} {verb} running or waiting.",
        crate::text::count(running, "session")
    ))];
    if stopping < running {
        lines.push(Line::raw(
            "Sessions on OpenCode servers keep running and are",
        ));
        lines.push(Line::raw("re-attached next start."));
    }
    let (managed, lingers) = app.view.on_managed_servers();
    if managed > 0 {
        let those = match (managed == running, managed) {
            (true, _) => "They are".to_string(),
            (false, 1) => "1 of them is".to_string(),
            (false, n) => format!("{n} of them are"),
        };
        lines.push(Line::raw(format!(
            "{those} on a server ocio started (managed):"
        )));
        let time = |secs: u64| crate::text::duration(std::time::Duration::from_secs(secs));
        let (least, most) = (lingers.iter().min(), lingers.iter().max());
        let linger = match (least, most) {
            (Some(least), Some(most)) if least != most => {
                format!("{} to {}", time(*least), time(*most))
            }
            (_, Some(most)) => time(*most),
            _ => String::new(),
        };
        lines.push(Line::raw(format!(
            "it runs on for up to {linger} (its `linger`)."
        )));
    }
    if stopping > 0 {
        let those = match (stopping == running, stopping) {
            (true, _) => "They stop".to_string(),
            (false, 1) => "1 of them stops".to_string(),
            (false, n) => format!("{n} of them stop"),
        };
        lines.push(Line::styled(
            format!("{those} with ocio (simulated, or no linger)"),
            app.theme.accent,
        ));
        lines.push(Line::styled(
            "and will run again from the start.",
            app.theme.accent,
        ));
    }
    lines
}

fn draw_confirm_cancel(frame: &mut Frame, app: &App, name: &str, area: Rect) {
    let lines = vec![
        Line::raw(format!("Cancel {name}?")),
        Line::raw("Its running session is stopped; retry runs it again."),
        Line::raw(""),
        Line::styled("cancel it? y / n", app.theme.accent),
    ];
    draw_question(frame, app, "cancel", lines, centered(area, 58, 6));
}

fn draw_confirm_land(
    frame: &mut Frame,
    app: &App,
    plan: crate::domain::PlanId,
    name: &str,
    area: Rect,
) {
    let mut lines = vec![
        Line::raw(format!("Land plan {name} on its base branch?")),
        Line::raw("A merge commit; your checkout is only fast-forwarded,"),
        Line::raw("and never where you have changes to the same files."),
    ];
    if let Some((left, all)) = not_reviewed(app, plan).filter(|(left, _)| *left > 0) {
        lines.push(Line::styled(
            format!(
                "{} not reviewed, of {all} changed.",
                crate::text::count(left, "file")
            ),
            app.theme.status("failed"),
        ));
    }
    lines.push(Line::styled("land it? y / n", app.theme.accent));
    let height = lines.len() as u16 + 2;
    draw_question(frame, app, "land", lines, centered(area, 58, height));
}

/// How many of the files `plan`'s branch changed are not reviewed (a file changed since it
/// was marked is not), and how many it changed: from the plan's view, which the land
/// question is asked from; `None` when it holds no review of that plan.
fn not_reviewed(app: &App, plan: crate::domain::PlanId) -> Option<(usize, usize)> {
    let Some(Ok(review)) = &app.plan_review.review else {
        return None;
    };
    let (done, all) = review.reviewed_count();
    (review.plan == plan).then_some((all - done, all))
}

fn draw_confirm_budget_cancel(frame: &mut Frame, app: &App, name: &str, area: Rect) {
    let lines = vec![
        Line::raw(format!("Cancel plan {name}, paused over budget?")),
        Line::raw("Its stopped tasks and those not started are cancelled;"),
        Line::raw("their work so far stays on their branches."),
        Line::styled("cancel it? y / n", app.theme.accent),
    ];
    draw_question(frame, app, "over budget", lines, centered(area, 60, 6));
}

/// A yes/no question in a popup at `popup`, over what is drawn below it.
fn draw_question(frame: &mut Frame, app: &App, title: &str, lines: Vec<Line>, popup: Rect) {
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(app, title))
            .style(app.theme.base),
        popup,
    );
}

/// A planner's plan, for the operator to approve (y) or discard (n).
fn draw_review(frame: &mut Frame, app: &App, proposal: &crate::engine::Proposal, area: Rect) {
    let lines: Vec<Line> = proposal
        .toml
        .lines()
        .map(|l| Line::styled(l.to_string(), app.theme.base))
        .collect();
    let popup = centered(
        area,
        area.width.saturating_sub(4).max(20),
        area.height.saturating_sub(2),
    );
    let height = usize::from(popup.height.saturating_sub(2));
    let scroll = app
        .panes
        .help_scroll
        .min(lines.len().saturating_sub(height));
    let title = format!(
        "plan {} by {}: {} · y submit · n discard · j/k scroll",
        proposal.name,
        proposal.agent,
        crate::text::count(proposal.tasks, "task")
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll as u16, 0))
            .block(popup_block(app, &title))
            .style(app.theme.base),
        popup,
    );
}

pub(super) fn popup_block<'a>(app: &App, title: &str) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(app.theme.border_focus)
        .title(Span::styled(format!(" {title} "), app.theme.accent))
}

/// A box of at most `width` x `height` in the middle of `area`.
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// 1234 -> 1.2k, 5_600_000 -> 5.6M.
/// Spend against a budget in few characters: `1.2k/2M tok $0.50/$5.00`.
pub(super) fn budget_words(budget: &crate::domain::Budget, spent: &crate::domain::Usage) -> String {
    let mut parts = Vec::new();
    if let Some(limit) = budget.tokens {
        parts.push(format!("{}/{} tok", si(spent.total_tokens()), si(limit)));
    }
    if let Some(limit) = budget.cost {
        parts.push(format!("${:.2}/${limit:.2}", spent.cost));
    }
    parts.join(" ")
}

pub(super) fn si(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// How long ago, in one unit: 42s, 5m, 3h, 2d.
pub(super) fn age(since: Timestamp, now: Timestamp) -> String {
    let (n, unit) = age_in_units(since, now);
    format!("{n}{unit}")
}

/// How wide [`age`] is (without writing it).
pub(super) fn age_width(since: Timestamp, now: Timestamp) -> usize {
    let (n, _) = age_in_units(since, now);
    n.checked_ilog10().map_or(1, |d| d as usize + 1) + 1
}

fn age_in_units(since: Timestamp, now: Timestamp) -> (i64, char) {
    let secs = (now.as_second() - since.as_second()).max(0);
    match secs {
        0..60 => (secs, 's'),
        60..3600 => (secs / 60, 'm'),
        3600..86400 => (secs / 3600, 'h'),
        _ => (secs / 86400, 'd'),
    }
}

/// Wall-clock time of day in `zone`.
pub(super) fn clock(at: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    let time = zone.to_datetime(at).time();
    format!(
        "{:02}:{:02}:{:02}",
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// Cut to `width` columns with an ellipsis.
pub(super) fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

pub(super) fn status_style(app: &App, name: &str) -> Style {
    app.theme.status(name)
}
