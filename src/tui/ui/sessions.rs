//! The sessions table: state, task, plan, agent, how long it ran (so far, while it runs), tokens,
//! last activity, each column as wide as what it holds and the last activity the rest. Only the
//! rows on screen are built.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::widths::{Column, Want, constraints, fit, only_shown};
use super::{age, age_width, block, fit as fit_text, si, status_style};
use crate::domain::SessionStatus;
use crate::tui::app::{App, Mode, Pane};
use crate::tui::panes::SessionsMeasure;

const HEADERS: [&str; 7] = ["STATE", "TASK", "PLAN", "AGENT", "RAN", "TOKENS", "LAST"];
/// The last activity: free text, it takes what the other columns leave.
const LAST: usize = 6;
/// Who gets room first: state, task, agent, some of the last activity, the age and tokens,
/// then the plan; where even the minimums do not fit, the last of these are left out. (With
/// sessions of several plans the plan needs its whole width, so the agent's name is cut to
/// make room for it rather than the plan left out: see [`columns`].)
const PRIORITY: [usize; 7] = [0, 1, 3, LAST, 4, 5, 2];
/// How much of the last activity the layout asks room for (a tool and a file name).
const LAST_WANT: u16 = 24;
const WAITING: &str = "waiting for the engine…";

pub(crate) fn draw(frame: &mut Frame, app: &mut App, columns: &[Column; 7], area: Rect) {
    let total = app.view.sessions.len();
    let shown = app.panes.order(&app.view).len();
    let mut title = format!("sessions {shown}");
    if shown != total {
        title.push_str(&format!(" of {total}"));
    }
    title.push_str(&format!(" · sort {}", app.panes.sort.label()));
    if !app.panes.filter.is_empty() || app.mode == Mode::Filter {
        title.push_str(&format!(" · /{}", app.panes.filter));
    }
    let block = block(app, Pane::Sessions, title);
    let inner = block.inner(area);
    if let Some(text) = placeholder(app) {
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
            area,
        );
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    app.panes.page = height;
    let mut cursor = app.panes.sessions;
    cursor.fit(shown, height);
    app.panes.sessions = cursor;
    let widths = fit(inner.width, columns, &PRIORITY, LAST);
    let now = app.now;
    let order: Vec<usize> =
        app.panes.order(&app.view)[cursor.offset..(cursor.offset + height).min(shown)].to_vec();
    let rows = order.iter().enumerate().map(|(i, index)| {
        let view = &app.view.sessions[*index];
        let s = &view.session;
        let since = s.started_at.unwrap_or(s.created_at);
        let until = s.finished_at.unwrap_or(now);
        // Why it ended, for one that failed, timed out or was lost; else what it did last.
        let error = s.last_error.clone().filter(|_| {
            matches!(
                s.status,
                SessionStatus::Failed | SessionStatus::TimedOut | SessionStatus::Lost
            )
        });
        let last = error
            .or_else(|| view.cut_off(&app.view.agents))
            .or_else(|| view.last.as_ref().map(|e| e.activity.brief(now)))
            .or_else(|| s.last_error.clone())
            .unwrap_or_default();
        let w = |i: usize| usize::from(widths[i]);
        let cells = [
            Cell::from(Span::styled(
                fit_text(view.state(), w(0)),
                status_style(app, view.state()),
            )),
            Cell::from(fit_text(&view.task_label(), w(1))),
            Cell::from(Span::styled(
                fit_text(plan_name(&app.view, s), w(2)),
                app.theme.muted,
            )),
            Cell::from(fit_text(s.agent.as_ref().map_or("-", |a| a.as_str()), w(3))),
            Cell::from(age(since, until)),
            Cell::from(si(s.usage.total_tokens())),
            Cell::from(Span::styled(fit_text(&last, w(LAST)), app.theme.muted)),
        ];
        let row = Row::new(only_shown(cells, &widths));
        if cursor.offset + i == cursor.selected && app.focus == Pane::Sessions {
            row.style(app.theme.selected)
        } else if cursor.offset + i == cursor.selected {
            row.style(app.theme.surface)
        } else {
            row
        }
    });
    let header = Row::new(only_shown(HEADERS, &widths)).style(app.theme.title);
    frame.render_widget(
        Table::new(rows, constraints(&widths))
            .header(header)
            .block(block)
            .column_spacing(1),
        area,
    );
}

/// The table's columns from every session (not only those on screen, so they keep their
/// widths while the table scrolls): each as wide as its widest value, the last activity as
/// wide as the layout asks room for ([`LAST_WANT`]); the plan only where sessions have one,
/// shown whole or not at all: where it is the same on every row, only with room to spare;
/// where sessions are of several plans, before the other columns grow past their minimums
/// (a long agent name is cut first).
pub(crate) fn columns(app: &mut App) -> [Column; 7] {
    let generation = app.view.sessions_generation;
    let measure = match app.panes.widest {
        Some((measured, measure)) if measured == generation => measure,
        _ => {
            let measure = measure(app);
            app.panes.widest = Some((generation, measure));
            measure
        }
    };
    let widest = measure.widest;
    let column = |i: usize, min, max| Column::of(HEADERS[i], std::iter::once(widest[i]), min, max);
    [
        column(0, 12, 16),
        column(1, 12, 40),
        match (widest[2], measure.several_plans) {
            (0, _) => Column { min: 0, want: 0 },
            (_, true) => column(2, 8, 24).whole(),
            (_, false) => column(2, 8, 24).optional(),
        },
        column(3, 8, 24),
        // An age is a number: whole or left out.
        column(4, 3, 5).whole(),
        // `999.9k` at most: no wider than its header.
        Column::fixed(6),
        Column {
            min: 12,
            want: LAST_WANT,
        },
    ]
}

/// The widest state, task, plan, agent and age, and whether the sessions are of more than
/// one plan, in one pass without writing them. (Ages are as of the last measure: at most a
/// second old, as the engine's view comes every second.)
fn measure(app: &App) -> SessionsMeasure {
    let view = &app.view;
    let mut widest = [0usize; 5];
    let mut first_plan = None;
    let mut several_plans = false;
    for s in &view.sessions {
        let session = &s.session;
        let since = session.started_at.unwrap_or(session.created_at);
        let plan = plan_name(view, session);
        several_plans |= *first_plan.get_or_insert(plan) != plan;
        let values = [
            s.state().len(),
            label_width(s),
            plan.chars().count(),
            session
                .agent
                .as_ref()
                .map_or(1, |a| a.as_str().chars().count()),
            age_width(since, session.finished_at.unwrap_or(app.now)),
        ];
        for (w, v) in widest.iter_mut().zip(values) {
            *w = (*w).max(v);
        }
    }
    SessionsMeasure {
        widest,
        several_plans,
    }
}

/// How wide [`SessionView::task_label`] is, without writing it.
fn label_width(view: &crate::engine::SessionView) -> usize {
    let task = view.task.chars().count();
    match view.session.kind.role() {
        None => task + 2 + digits(view.session.attempt),
        Some(role) if task == 0 => role.len(),
        Some(role) => task + 1 + role.len(),
    }
}

fn digits(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// How wide the pane would show its table (or its text) whole, and how narrow it can go.
pub(crate) fn want(app: &App, columns: &[Column; 7]) -> Want {
    match placeholder(app) {
        Some(lines) => Want::text(lines.iter().map(Line::width).max().unwrap_or(0).min(72), 24),
        None => Want::table(columns),
    }
}

/// What the pane says instead of a table: waiting for the engine, how to add a first agent, or
/// how to start a first session.
fn placeholder(app: &App) -> Option<Vec<Line<'static>>> {
    if !app.view.loaded {
        return Some(vec![Line::styled(WAITING, app.theme.muted)]);
    }
    if !app.view.sessions.is_empty() {
        return None;
    }
    if app.view.agents.is_empty() && !app.view.fleets.is_empty() {
        return Some(fleets_to_come(app));
    }
    if app.view.agents.is_empty() {
        return Some(
            app.onboarding
                .iter()
                .map(|l| Line::styled(l.clone(), app.theme.base))
                .collect(),
        );
    }
    let mut lines = vec![Line::styled(empty_hint(app), app.theme.muted)];
    let waited: Vec<&str> = app
        .view
        .fleets
        .iter()
        .filter(|fleet| {
            !app.view.agents.iter().any(|agent| {
                crate::domain::fleet_of(&app.view.fleets, agent.name.as_str())
                    .is_some_and(|of| of.name == fleet.name)
            })
        })
        .map(|fleet| fleet.name.as_str())
        .collect();
    if !waited.is_empty() {
        lines.push(Line::styled(
            format!("no member has joined fleet {} yet", waited.join(", ")),
            app.theme.muted,
        ));
    }
    Some(lines)
}

/// With fleets configured and none of their members joined yet: what the room waits for, and
/// that work may be given now.
fn fleets_to_come(app: &App) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        "No fleet member has joined yet:",
        app.theme.base,
    )];
    for fleet in &app.view.fleets {
        let offers = if fleet.capabilities.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = fleet.capabilities.iter().map(String::as_str).collect();
            format!(" ({})", names.join(", "))
        };
        lines.push(Line::styled(
            format!("  fleet {}{offers}", fleet.name),
            app.theme.base,
        ));
    }
    lines.push(Line::default());
    lines.push(Line::styled(
        "Servers join as they answer; the events say why a listed one has not.",
        app.theme.muted,
    ));
    lines.push(Line::styled(
        format!(
            "Work given now waits for a member: {} submits a plan, {} a prompt.",
            app.keymap.keys(crate::tui::keymap::Action::Palette),
            app.keymap.keys(crate::tui::keymap::Action::NewTask)
        ),
        app.theme.muted,
    ));
    lines
}

fn empty_hint(app: &App) -> String {
    format!(
        "no sessions yet · {} submits a plan, {} a prompt",
        app.keymap.keys(crate::tui::keymap::Action::Palette),
        app.keymap.keys(crate::tui::keymap::Action::NewTask)
    )
}

/// The session's plan by name: from the plans this engine knows, else from the title.
fn plan_name<'v>(view: &'v crate::tui::view::View, s: &'v crate::domain::Session) -> &'v str {
    s.plan
        .and_then(|id| view.plans.iter().find(|p| p.id == id))
        .map(|p| p.shown_name(&view.plans))
        .or_else(|| s.title.split_once('/').map(|(plan, _)| plan))
        .unwrap_or_default()
}
