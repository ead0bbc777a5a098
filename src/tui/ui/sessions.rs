//! The sessions table: state, task, agent, age, tokens, last activity. Only the rows on screen
//! are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::{age, block, fit, si, status_style};
use crate::tui::app::{App, Mode, Pane};

pub fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
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
    if !app.view.loaded || (total == 0 && app.view.agents.is_empty()) {
        let lines: Vec<Line> = if !app.view.loaded {
            vec![Line::styled("waiting for the engine…", app.theme.muted)]
        } else {
            app.onboarding
                .iter()
                .map(|l| Line::styled(l.clone(), app.theme.base))
                .collect()
        };
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            area,
        );
        return;
    }
    if total == 0 {
        let hint = format!(
            "no sessions yet · {} submits a plan, {} a prompt",
            app.keymap.keys(crate::tui::keymap::Action::Palette),
            app.keymap.keys(crate::tui::keymap::Action::NewTask)
        );
        frame.render_widget(
            Paragraph::new(Line::styled(hint, app.theme.muted)).block(block),
            area,
        );
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    app.panes.page = height;
    let mut cursor = app.panes.sessions;
    cursor.fit(shown, height);
    app.panes.sessions = cursor;
    let now = app.now;
    // STATE, AGENT, AGE and TOKENS are fixed; TASK and LAST share the rest.
    let state_width: usize = if inner.width >= 90 { 16 } else { 12 };
    let plan_width: usize = if inner.width >= 96 { 16 } else { 0 };
    let fixed = state_width + 10 + 5 + 7 + 5 + plan_width + usize::from(plan_width > 0);
    let flexible = usize::from(inner.width).saturating_sub(fixed);
    let task_width = (flexible / 2).clamp(12, 32);
    let last_width = flexible.saturating_sub(task_width + 1);
    let order: Vec<usize> =
        app.panes.order(&app.view)[cursor.offset..(cursor.offset + height).min(shown)].to_vec();
    let rows = order.iter().enumerate().map(|(i, index)| {
        let view = &app.view.sessions[*index];
        let s = &view.session;
        let since = s.started_at.unwrap_or(s.created_at);
        let until = s.finished_at.unwrap_or(now);
        let last = view
            .last
            .as_ref()
            .map(|e| e.activity.brief(now))
            .or_else(|| s.last_error.clone())
            .unwrap_or_default();
        let row = Row::new(vec![
            Cell::from(Span::styled(
                fit(view.state(), state_width),
                status_style(app, view.state()),
            )),
            Cell::from(fit(&format!("{} #{}", view.task, s.attempt), task_width)),
            Cell::from(Span::styled(
                fit(&plan_name(&app.view, s), plan_width),
                app.theme.muted,
            )),
            Cell::from(fit(s.agent.as_ref().map(|a| a.as_str()).unwrap_or("-"), 10)),
            Cell::from(age(since, until)),
            Cell::from(si(s.usage.total_tokens())),
            Cell::from(Span::styled(fit(&last, last_width), app.theme.muted)),
        ]);
        if cursor.offset + i == cursor.selected && app.focus == Pane::Sessions {
            row.style(app.theme.selected)
        } else if cursor.offset + i == cursor.selected {
            row.style(app.theme.surface)
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(state_width as u16),
        Constraint::Length(task_width as u16),
        Constraint::Length(plan_width as u16),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Min(0),
    ];
    let plan_header = if plan_width > 0 { "PLAN" } else { "" };
    let header = Row::new([
        "STATE",
        "TASK",
        plan_header,
        "AGENT",
        "AGE",
        "TOKENS",
        "LAST",
    ])
    .style(app.theme.title);
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block)
            .column_spacing(1),
        area,
    );
}

/// The session's plan by name: from the plans this engine knows, else from the title.
fn plan_name(view: &crate::tui::view::View, s: &crate::domain::Session) -> String {
    s.plan
        .and_then(|id| view.plans.iter().find(|p| p.id == id))
        .map(|p| p.name.clone())
        .or_else(|| s.title.split_once('/').map(|(plan, _)| plan.to_string()))
        .unwrap_or_default()
}
