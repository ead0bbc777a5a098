//! Drawing: the layout, header and footer, overlays (help, quit, inputs), and the panes in the
//! files beside this one. Reads the app's view and never waits on anything.

mod agent_detail;
mod agents;
mod detail;
mod events;
mod help;
mod prompt;
mod sessions;
mod tasks;

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Mode, Pane};
use crate::domain::{AgentStatus, Backend, Lifecycle};

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
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, app, header);
    // Under a question, what it was asked from.
    let under = match &app.mode {
        Mode::ConfirmCancel { back, .. } => back.as_ref(),
        mode => mode,
    };
    if let Mode::Detail(id) = *under {
        detail::draw(frame, app, id, body);
        app.set_areas(Vec::new());
    } else if let Mode::Agent(name) = under {
        let name = name.clone();
        agent_detail::draw(frame, app, &name, body);
        app.set_areas(Vec::new());
    } else {
        let areas = layout(body);
        sessions::draw(frame, app, area_of(&areas, Pane::Sessions));
        agents::draw_agents(frame, app, area_of(&areas, Pane::Agents));
        tasks::draw(frame, app, area_of(&areas, Pane::Tasks));
        agents::draw_approvals(frame, app, area_of(&areas, Pane::Approvals));
        events::draw(frame, app, area_of(&areas, Pane::Events));
        app.set_areas(areas);
    }
    keep_selection_legible(frame, &app.theme);
    draw_footer(frame, app, footer);
    match &app.mode {
        Mode::Help => help::draw(frame, app, body),
        Mode::ConfirmQuit => draw_confirm(frame, app, body),
        Mode::ConfirmCancel { name, .. } => draw_confirm_cancel(frame, app, name, body),
        Mode::Review(proposal) => draw_review(frame, app, proposal, body),
        Mode::NewTask(editor) => prompt::draw(frame, app, editor, body),
        Mode::Palette(editor) if app.palette_list => {
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

/// Wide screens get two columns; narrow ones stack.
fn layout(body: Rect) -> Vec<(Pane, Rect)> {
    if body.width >= 120 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                .areas(body);
        let [sessions, tasks] =
            Layout::vertical([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(left);
        let [agents, approvals, events] = Layout::vertical([
            Constraint::Percentage(32),
            Constraint::Percentage(20),
            Constraint::Percentage(48),
        ])
        .areas(right);
        vec![
            (Pane::Sessions, sessions),
            (Pane::Tasks, tasks),
            (Pane::Agents, agents),
            (Pane::Approvals, approvals),
            (Pane::Events, events),
        ]
    } else {
        let [sessions, middle, bottom] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Percentage(30),
            Constraint::Percentage(30),
        ])
        .areas(body);
        let [tasks, agents] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(middle);
        let [events, approvals] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(bottom);
        vec![
            (Pane::Sessions, sessions),
            (Pane::Tasks, tasks),
            (Pane::Agents, agents),
            (Pane::Events, events),
            (Pane::Approvals, approvals),
        ]
    }
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

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.theme;
    let view = &app.view;
    let mut spans = vec![Span::styled(" OCIO ", theme.selected), Span::raw(" ")];
    let engine = match (&app.attached, view.paused) {
        (_, true) => Span::styled("PAUSED", theme.status("paused")),
        (Some(_), false) => Span::styled("attached", theme.status("running")),
        (None, false) => Span::styled("running", theme.status("running")),
    };
    spans.push(engine);
    let online = view
        .agents
        .iter()
        .filter(|a| a.status == AgentStatus::Online)
        .count();
    spans.push(Span::styled(
        format!(" │ agents {online}/{} online", view.agents.len()),
        theme.base,
    ));
    if !view.agents.is_empty() && view.agents.iter().all(|a| a.backend == Backend::Simulated) {
        spans.push(Span::styled(" [SIMULATED]", theme.accent));
    }
    spans.push(Span::styled(" │", theme.base));
    for (status, n) in view.counts() {
        spans.push(Span::styled(
            format!(" {n} {}", status.name()),
            theme.status(status.name()),
        ));
    }
    let usage = &view.usage;
    spans.push(Span::styled(
        format!(" │ {} tokens ${:.2}", si(usage.total_tokens()), usage.cost),
        theme.base,
    ));
    if !view.approvals.is_empty() {
        spans.push(Span::styled(
            format!(" │ {} waiting for you", view.approvals.len()),
            theme.status("waiting-approval"),
        ));
    }
    if let Some(socket) = &app.attached {
        spans.push(Span::styled(format!(" │ {socket}"), theme.muted));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.header), area);
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.theme;
    let line = match &app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("/", theme.accent),
            Span::raw(app.panes.filter.clone()),
            Span::styled("▏ enter keep · esc clear", theme.muted),
        ]),
        Mode::Palette(editor) => {
            let (_, col) = editor.cursor();
            let text: String = editor.text();
            let at = text.char_indices().nth(col).map_or(text.len(), |(i, _)| i);
            Line::from(vec![
                Span::styled(":", theme.accent),
                Span::raw(text[..at].to_string()),
                Span::styled("▏", theme.muted),
                Span::raw(text[at..].to_string()),
                Span::styled(
                    if app.palette_list {
                        " enter run · tab completes · esc close"
                    } else {
                        " enter run · tab completes · ? lists commands · esc close"
                    },
                    theme.muted,
                ),
            ])
        }
        Mode::NewTask(_) => Line::from(vec![
            Span::styled(" new task: ", theme.accent),
            Span::styled(super::editor::MULTI_LINE_HINT, theme.muted),
        ]),
        _ => match &app.toast {
            Some(toast) => Line::styled(
                format!(" {}", toast.text),
                if toast.error {
                    theme.status("failed")
                } else {
                    theme.info
                },
            ),
            None => hints(app),
        },
    };
    frame.render_widget(Paragraph::new(line).style(theme.base), area);
}

fn hints(app: &App) -> Line<'static> {
    use super::keymap::Action::*;
    let keys = &app.keymap;
    let pane_hints: &[(super::keymap::Action, &str)] = match (&app.mode, app.focus) {
        (Mode::Detail(_), _) => &[(Back, "back"), (Cancel, "cancel"), (Retry, "retry")],
        (Mode::Agent(_), _) => &[(Back, "back")],
        (_, Pane::Sessions) => &[
            (Open, "detail"),
            (Filter, "filter"),
            (Sort, "sort"),
            (Cancel, "cancel"),
            (Retry, "retry"),
        ],
        (_, Pane::Agents) => &[(Open, "info"), (Drain, "drain")],
        (_, Pane::Tasks) => &[
            (Graph, "graph"),
            (Open, "detail"),
            (Cancel, "cancel"),
            (Retry, "retry"),
        ],
        (_, Pane::Approvals) => &[
            (ApproveOnce, "approve"),
            (ApproveAlways, "always"),
            (Reject, "reject"),
        ],
        (_, Pane::Events) => &[],
    };
    let general = [
        (NextPane, "pane"),
        (Palette, "command"),
        (NewTask, "new"),
        (Pause, "pause"),
        (Help, "help"),
        (Quit, "quit"),
    ];
    let mut spans = vec![Span::raw(" ")];
    for (action, label) in pane_hints.iter().chain(general.iter()) {
        spans.push(Span::styled(keys.keys(*action), app.theme.accent));
        spans.push(Span::styled(format!(" {label}  "), app.theme.muted));
    }
    Line::from(spans)
}

fn draw_confirm(frame: &mut Frame, app: &App, area: Rect) {
    let running = app.view.running();
    let lines = vec![
        Line::raw(format!("{running} sessions are running.")),
        Line::raw("Sessions on OpenCode servers keep running and are"),
        Line::raw("re-attached next start; simulated ones run again."),
        Line::raw(""),
        Line::styled("quit now? y / n", app.theme.accent),
    ];
    let popup = centered(area, 56, 7);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(app, "quit"))
            .style(app.theme.base),
        popup,
    );
}

fn draw_confirm_cancel(frame: &mut Frame, app: &App, name: &str, area: Rect) {
    let lines = vec![
        Line::raw(format!("Cancel {name}?")),
        Line::raw("Its running session is stopped; retry runs it again."),
        Line::raw(""),
        Line::styled("cancel it? y / n", app.theme.accent),
    ];
    let popup = centered(area, 58, 6);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(app, "cancel"))
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
        "plan {} by {}: {} tasks · y submit · n discard · j/k scroll",
        proposal.name, proposal.agent, proposal.tasks
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
pub(super) fn si(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// How long ago, in one unit: 42s, 5m, 3h, 2d.
pub(super) fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(since).as_secs().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
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
