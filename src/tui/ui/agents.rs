//! The agents pane (status, a load gauge and a sparkline of recent load per agent) and the
//! approvals pane (permission requests waiting for the operator, with the short ids
//! `:approve` takes).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::{block, fit, status_style};
use crate::domain::Lifecycle;
use crate::tui::app::{App, Pane};
use crate::tui::keymap::Action;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn draw_agents(frame: &mut Frame, app: &mut App, area: Rect) {
    let block = block(
        app,
        Pane::Agents,
        format!("agents {}", app.view.agents.len()),
    );
    let inner = block.inner(area);
    if app.view.agents.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no agents", app.theme.muted)).block(block),
            area,
        );
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    let mut cursor = app.panes.agents;
    cursor.fit(app.view.agents.len(), height);
    app.panes.agents = cursor;
    // name, status, gauge, spark share the width.
    let gauge_width = 10usize;
    let spark_width = usize::from(inner.width)
        .saturating_sub(12 + 10 + gauge_width + 6 + 4)
        .min(30);
    // Columns and the spaces between them before the last one.
    let why_width = usize::from(inner.width).saturating_sub(12 + 9 + gauge_width + 6 + 4);
    let rows = app
        .view
        .agents
        .iter()
        .enumerate()
        .skip(cursor.offset)
        .take(height)
        .map(|(i, agent)| {
            let ratio = agent.load_ratio().clamp(0.0, 1.0);
            let filled = (ratio * gauge_width as f64).round() as usize;
            let gauge = format!(
                "{}{}",
                "█".repeat(filled),
                "░".repeat(gauge_width - filled.min(gauge_width))
            );
            let spark: String = app
                .view
                .load
                .get(&agent.name)
                .map(|samples| {
                    let skip = samples.len().saturating_sub(spark_width);
                    samples
                        .iter()
                        .skip(skip)
                        .map(|p| SPARK[((*p as usize) * (SPARK.len() - 1)) / 100])
                        .collect()
                })
                .unwrap_or_default();
            // A down agent's row says why instead of its (idle) recent load.
            let recent = match short_reason(agent) {
                Some(why) => {
                    Span::styled(fit(why, why_width), status_style(app, agent.status.name()))
                }
                None => Span::styled(spark, app.theme.info),
            };
            let load_style = if ratio >= 1.0 {
                app.theme.status("waiting-approval")
            } else {
                app.theme.status("running")
            };
            let row = Row::new(vec![
                Cell::from(fit(agent.name.as_str(), 12)),
                Cell::from(Span::styled(
                    agent.status.name(),
                    status_style(app, agent.status.name()),
                )),
                Cell::from(Span::styled(gauge, load_style)),
                Cell::from(format!("{}/{}", agent.load, agent.max_concurrent)),
                Cell::from(recent),
            ]);
            if i == cursor.selected && app.focus == Pane::Agents {
                row.style(app.theme.selected)
            } else {
                row
            }
        });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(gauge_width as u16),
        Constraint::Length(6),
        Constraint::Min(0),
    ];
    let recent = if app.view.agents.iter().any(|a| short_reason(a).is_some()) {
        "RECENT / WHY"
    } else {
        "RECENT"
    };
    let header = Row::new(["AGENT", "STATUS", "LOAD", "", recent]).style(app.theme.title);
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block)
            .column_spacing(1),
        area,
    );
}

/// Why an agent that is not online is so, in a few words: the last part of the first line of
/// its reason (`cannot reach ...: connection refused` is `connection refused`).
fn short_reason(agent: &crate::domain::Agent) -> Option<&str> {
    let first = agent.reason.as_deref()?.lines().next()?;
    let short = first.rsplit(": ").next().unwrap_or(first).trim();
    (!short.is_empty()).then_some(short)
}

pub fn draw_approvals(frame: &mut Frame, app: &mut App, area: Rect) {
    let count = app.view.approvals.len();
    let conflicts = app.view.conflicts.len();
    let title = if conflicts > 0 {
        format!("approvals {count} · conflicts {conflicts}")
    } else {
        format!("approvals {count}")
    };
    let mut block = block(app, Pane::Approvals, title);
    if count + conflicts > 0 && app.focus != Pane::Approvals {
        block = block.border_style(app.theme.status("waiting-approval"));
    }
    if count == 0 {
        let mut lines = conflict_lines(app);
        if lines.is_empty() {
            lines.push(Line::styled("nothing waits for you", app.theme.muted));
        }
        frame.render_widget(Paragraph::new(lines).block(block), area);
        return;
    }
    let inner = block.inner(area);
    let height = usize::from(inner.height.saturating_sub(1));
    let mut cursor = app.panes.approvals;
    cursor.fit(count, height);
    app.panes.approvals = cursor;
    let keys = decision_keys(app);
    // Conflicts take the rows below the requests (they are settled elsewhere: retry the task).
    let shown_conflicts = conflicts.min(height.saturating_sub(count.min(height)));
    let height = height - shown_conflicts;
    let conflict_rows: Vec<Row> = app
        .view
        .conflicts
        .iter()
        .take(shown_conflicts)
        .map(|c| {
            Row::new(vec![
                Cell::from(fit(&c.key, 14)),
                Cell::from(""),
                Cell::from(Span::styled(conflict_state(c), app.theme.status("failed"))),
                Cell::from(c.files.join(", ")),
            ])
        })
        .collect();
    let rows = app
        .view
        .approvals
        .iter()
        .enumerate()
        .skip(cursor.offset)
        .take(height)
        .map(|(i, a)| {
            let row = Row::new(vec![
                Cell::from(fit(&a.task, 14)),
                // What `:approve` takes.
                Cell::from(Span::styled(a.ask.short().to_string(), app.theme.muted)),
                Cell::from(Span::styled(
                    a.ask.permission.clone(),
                    app.theme.status("waiting-approval"),
                )),
                Cell::from(a.ask.patterns.join(", ")),
            ]);
            if i == cursor.selected && app.focus == Pane::Approvals {
                row.style(app.theme.selected)
            } else {
                row
            }
        })
        .collect::<Vec<_>>()
        .into_iter()
        .chain(conflict_rows);
    let header = Row::new(vec![
        Cell::from("TASK"),
        Cell::from("ID"),
        Cell::from("ASKS"),
        Cell::from(Span::styled(keys, app.theme.muted)),
    ])
    .style(app.theme.title);
    let widths = [
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(18),
        Constraint::Min(0),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block)
            .column_spacing(1),
        area,
    );
}

/// The keys that answer a permission request (in this pane and in a session's detail).
pub(super) fn decision_keys(app: &App) -> String {
    format!(
        "{} once · {} always · {} reject",
        app.keymap.keys(Action::ApproveOnce),
        app.keymap.keys(Action::ApproveAlways),
        app.keymap.keys(Action::Reject)
    )
}

/// What a conflict waits on, in a few words.
fn conflict_state(c: &crate::engine::view::ConflictView) -> String {
    match c.state {
        crate::engine::view::ConflictState::Resolving => "conflict: resolving".into(),
        crate::engine::view::ConflictState::Parked => format!("conflict ({})", c.policy.text()),
    }
}

/// The conflicts queue as lines, for a pane with no requests.
fn conflict_lines(app: &App) -> Vec<Line<'static>> {
    app.view
        .conflicts
        .iter()
        .map(|c| {
            Line::from(vec![
                Span::styled(
                    format!("{} ", conflict_state(c)),
                    app.theme.status("failed"),
                ),
                Span::styled(c.key.clone(), app.theme.title),
                Span::styled(format!("  {}", c.files.join(", ")), app.theme.base),
            ])
        })
        .collect()
}
