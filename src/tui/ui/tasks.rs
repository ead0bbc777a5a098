//! The task pane: each plan as a tree (a task under the first task it needs, so every task
//! appears once), or the selected plan's dependency graph in layers (a task's column is the
//! length of the longest chain of needs before it), with the selection's needs and dependents
//! marked.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use tui_tree_widget::{Tree, TreeItem};

use super::{block, fit};
use crate::domain::{Lifecycle, TaskStatus};
use crate::engine::view::PlanView;
use crate::tui::app::{App, Pane};
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    rebuild(app);
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
    if app.panes.graph {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        draw_graph(frame, app, inner);
        return;
    }
    match Tree::new(&app.panes.tree_items) {
        Ok(tree) => {
            let tree = tree
                .block(block)
                .highlight_style(if app.focus == Pane::Tasks {
                    app.theme.selected
                } else {
                    app.theme.surface
                })
                .node_closed_symbol("▸ ")
                .node_open_symbol("▾ ")
                .node_no_children_symbol("  ");
            frame.render_stateful_widget(tree, area, &mut app.panes.tree);
        }
        Err(e) => {
            frame.render_widget(
                Paragraph::new(format!("cannot draw the tree: {e}")).block(block),
                area,
            );
        }
    }
}

pub fn glyph(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "○",
        TaskStatus::Ready => "◌",
        TaskStatus::Running => "◐",
        TaskStatus::Done => "●",
        TaskStatus::Failed => "✗",
        TaskStatus::Blocked => "⊘",
        TaskStatus::Cancelled => "−",
    }
}

/// Rebuild the tree items when plans changed (not on every frame).
fn rebuild(app: &mut App) {
    if app.panes.tree_built == Some(app.view.plans_generation) {
        return;
    }
    app.panes.tree_built = Some(app.view.plans_generation);
    app.panes.task_paths.clear();
    let mut items = Vec::with_capacity(app.view.plans.len());
    let mut to_open = Vec::new();
    for plan in app.view.plans.iter().rev() {
        let (item, paths) = plan_item(plan, &app.theme);
        let plan_id = plan.id.to_string();
        if app.panes.opened.insert(plan_id.clone()) {
            to_open.push(vec![plan_id]);
            // Open every task that has children, once.
            for path in paths.values() {
                to_open.push(path.clone());
            }
        }
        app.panes.task_paths.extend(paths);
        items.push(item);
    }
    app.panes.tree_items = items;
    for path in to_open {
        app.panes.tree.open(path);
    }
    if app.panes.tree.selected().is_empty()
        && let Some(first) = app.view.plans.last()
    {
        app.panes.tree.select(vec![first.id.to_string()]);
    }
}

/// One plan's tree, and each task's path in it.
fn plan_item(
    plan: &PlanView,
    theme: &Theme,
) -> (TreeItem<'static, String>, HashMap<String, Vec<String>>) {
    let plan_id = plan.id.to_string();
    let index: HashMap<&str, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    // A task hangs under the first task it needs (tasks come in topological order, so the
    // parent is always earlier).
    let parent: Vec<Option<usize>> = plan
        .tasks
        .iter()
        .map(|t| t.needs.first().and_then(|n| index.get(n.as_str()).copied()))
        .collect();
    let mut paths = HashMap::with_capacity(plan.tasks.len());
    let mut path_of: Vec<Vec<String>> = Vec::with_capacity(plan.tasks.len());
    for (i, task) in plan.tasks.iter().enumerate() {
        let mut path = match parent[i] {
            Some(p) if p < i => path_of[p].clone(),
            _ => vec![plan_id.clone()],
        };
        path.push(task.id.to_string());
        paths.insert(task.id.to_string(), path.clone());
        path_of.push(path);
    }
    // Build bottom-up: children before parents, no recursion however deep the chain.
    let mut children: Vec<Vec<TreeItem<'static, String>>> =
        (0..plan.tasks.len()).map(|_| Vec::new()).collect();
    let mut roots = Vec::new();
    for (i, task) in plan.tasks.iter().enumerate().rev() {
        let mut spans = vec![
            Span::styled(
                format!("{} ", glyph(task.status)),
                theme.status(task.status.name()),
            ),
            Span::styled(task.key.clone(), theme.base),
            Span::styled(
                format!(" {}", task.status),
                theme.status(task.status.name()),
            ),
        ];
        if task.attempts > 1 {
            spans.push(Span::styled(format!(" #{}", task.attempts), theme.muted));
        }
        if task.needs.len() > 1 {
            spans.push(Span::styled(
                format!(" +needs {}", task.needs[1..].join(", ")),
                theme.muted,
            ));
        }
        let mut kids = std::mem::take(&mut children[i]);
        kids.reverse();
        let item = if kids.is_empty() {
            TreeItem::new_leaf(task.id.to_string(), Line::from(spans))
        } else {
            match TreeItem::new(task.id.to_string(), Line::from(spans.clone()), kids) {
                Ok(item) => item,
                Err(_) => TreeItem::new_leaf(task.id.to_string(), Line::from(spans)),
            }
        };
        match parent[i] {
            Some(p) if p < i => children[p].push(item),
            _ => roots.push(item),
        }
    }
    roots.reverse();
    // Task paths of leaves are not worth opening; keep only parents for `open`.
    let parents: HashMap<String, Vec<String>> = paths
        .iter()
        .filter(|(_, p)| p.len() > 1)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let done = plan
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Done)
        .count();
    let title = Line::from(vec![
        Span::styled(plan.name.clone(), theme.title),
        Span::styled(format!("  {done}/{} done", plan.tasks.len()), theme.muted),
    ]);
    let item = TreeItem::new(plan_id.clone(), title.clone(), roots)
        .unwrap_or_else(|_| TreeItem::new_leaf(plan_id, title));
    (item, parents)
}

/// The selected plan in layers: one column per depth, as many columns as fit, scrolled so the
/// selected task is on screen.
fn draw_graph(frame: &mut Frame, app: &mut App, area: Rect) {
    let Some(plan) = app.panes.selected_plan(&app.view) else {
        return;
    };
    let theme = &app.theme;
    let selected = app
        .panes
        .tree
        .selected()
        .last()
        .cloned()
        .unwrap_or_default();
    let index: HashMap<&str, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
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
    let sel = plan.tasks.iter().position(|t| t.id.to_string() == selected);
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
                    let text = fit(&format!("{} {}", glyph(task.status), task.key), col_width);
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
