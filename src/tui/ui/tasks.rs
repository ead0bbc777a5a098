//! The task pane: each plan as a tree (laid out, scrolled and drawn by
//! [`TaskTree`](crate::tui::task_tree::TaskTree), only the rows on screen), or the selected
//! plan's dependency graph in layers (a task's column is the length of the longest chain of
//! needs before it), with the selection's needs and dependents marked.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{block, fit};
use crate::domain::Lifecycle;
use crate::tui::app::{App, Pane};
use crate::tui::task_tree::{glyph, positions};

pub(crate) fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    app.panes
        .task_tree
        .refresh(&app.view.plans, app.view.plans_generation);
    let plans = app.view.plans.len();
    let mode = if app.panes.graph { "graph" } else { "tree" };
    let block = block(app, Pane::Tasks, format!("tasks · {plans} plans · {mode}"));
    if plans == 0 {
        frame.render_widget(
            Paragraph::new(Line::styled("no plans yet", app.theme.muted)).block(block),
            area,
        );
        return;
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.panes.graph {
        draw_graph(frame, app, inner);
    } else {
        draw_tree(frame, app, inner);
    }
}

/// The tree's rows on screen (only those are labelled).
fn draw_tree(frame: &mut Frame, app: &mut App, area: Rect) {
    let highlight = if app.focus == Pane::Tasks {
        app.theme.selected
    } else {
        app.theme.surface
    };
    app.panes.task_tree.render(
        area,
        frame.buffer_mut(),
        &app.view.plans,
        &app.theme,
        highlight,
    );
}

/// The selected plan in layers: one column per depth, as many columns as fit, scrolled so the
/// selected task is on screen.
fn draw_graph(frame: &mut Frame, app: &mut App, area: Rect) {
    let Some(plan) = app.panes.selected_plan(&app.view) else {
        return;
    };
    let theme = &app.theme;
    let selected = app.panes.task_tree.selected().last().copied();
    let index = positions(plan);
    let mut depth = vec![0usize; plan.tasks.len()];
    for (i, task) in plan.tasks.iter().enumerate() {
        depth[i] = task
            .needs
            .iter()
            .filter_map(|n| index.get(n.as_str()))
            .map(|p| depth[*p] + 1)
            .max()
            .unwrap_or(0);
    }
    let layers = depth.iter().max().map_or(0, |d| d + 1);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, d) in depth.iter().enumerate() {
        columns[*d].push(i);
    }
    let sel = plan
        .tasks
        .iter()
        .position(|t| Some(t.id.as_u128()) == selected);
    let sel_key = sel.map(|i| plan.tasks[i].key.as_str());
    let needs: Vec<&str> = sel
        .map(|i| plan.tasks[i].needs.iter().map(String::as_str).collect())
        .unwrap_or_default();
    // Narrow the columns (down to 10) before leaving layers off screen.
    let col_width: usize = (usize::from(area.width) / layers.max(1))
        .saturating_sub(2)
        .clamp(10, 18);
    let fit_cols = (usize::from(area.width) / (col_width + 2)).max(1);
    let sel_layer = sel.map_or(0, |i| depth[i]);
    let first_col = sel_layer.saturating_sub(fit_cols.saturating_sub(1));
    let rows = usize::from(area.height.saturating_sub(1));
    let mut lines: Vec<Line> = Vec::with_capacity(rows + 1);
    for row in 0..rows {
        let mut spans = Vec::new();
        for (c, column) in columns.iter().enumerate().skip(first_col).take(fit_cols) {
            // Scroll a tall column so its selected task shows.
            let skip = match sel {
                Some(i) if depth[i] == c => column
                    .iter()
                    .position(|t| *t == i)
                    .unwrap_or(0)
                    .saturating_sub(rows.saturating_sub(1)),
                _ => 0,
            };
            let arrow = if c > first_col { "→ " } else { "" };
            let cell = match column.get(row + skip) {
                Some(t) => {
                    let task = &plan.tasks[*t];
                    let mut style: Style = theme.status(task.status.name());
                    if Some(*t) == sel {
                        style = theme.selected;
                    } else if needs.contains(&task.key.as_str()) {
                        style = style.add_modifier(Modifier::UNDERLINED | Modifier::BOLD);
                    } else if sel_key.is_some_and(|k| task.needs.iter().any(|n| n == k)) {
                        style = theme.info.add_modifier(Modifier::BOLD);
                    }
                    let text = fit(&format!("{}{}", glyph(task.status), task.key), col_width);
                    vec![
                        Span::styled(
                            if task.needs.is_empty() {
                                "  ".to_string()
                            } else {
                                arrow.to_string()
                            },
                            theme.muted,
                        ),
                        Span::styled(format!("{text:<col_width$}"), style),
                    ]
                }
                None => vec![Span::raw(" ".repeat(col_width + 2))],
            };
            spans.extend(cell);
        }
        lines.push(Line::from(spans));
    }
    let legend = match sel {
        Some(i) => {
            let task = &plan.tasks[i];
            let dependents: Vec<&str> = plan
                .tasks
                .iter()
                .filter(|t| t.needs.contains(&task.key))
                .map(|t| t.key.as_str())
                .collect();
            format!(
                "{}: needs {} · needed by {} · layer {}/{layers}",
                task.key,
                if task.needs.is_empty() {
                    "nothing".to_string()
                } else {
                    task.needs.join(", ")
                },
                if dependents.is_empty() {
                    "nothing".to_string()
                } else {
                    dependents.join(", ")
                },
                depth[i] + 1
            )
        }
        None => format!("{}: {layers} layers", plan.name),
    };
    lines.push(Line::styled(legend, theme.muted));
    frame.render_widget(Paragraph::new(lines), area);
}
