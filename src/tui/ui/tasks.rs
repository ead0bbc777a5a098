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

/// A task's status glyph, with the space after it.
pub fn glyph(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "○ ",
        TaskStatus::Ready => "◌ ",
        TaskStatus::Running => "◐ ",
        TaskStatus::Done => "● ",
        TaskStatus::Failed => "✗ ",
        TaskStatus::Blocked => "⊘ ",
        TaskStatus::Cancelled => "− ",
    }
}

/// Rebuild the tree items when plans changed (not on every frame). A status change rebuilds
/// the items (the widget cannot change one in place), but a plan's shape never changes, so
/// each task's path is worked out once per plan.
fn rebuild(app: &mut App) {
    if app.panes.tree_built == Some(app.view.plans_generation) {
        return;
    }
    app.panes.tree_built = Some(app.view.plans_generation);
    let mut items = Vec::with_capacity(app.view.plans.len());
    for plan in app.view.plans.iter().rev() {
        let parent = parents(plan);
        let plan_id = plan.id.as_u128();
        if app.panes.opened.insert(plan_id) {
            // Open the plan and every task with children, once.
            app.panes.tree.open(vec![plan_id]);
            let paths = paths(plan, &parent);
            let mut has_children = vec![false; plan.tasks.len()];
            for p in parent.iter().flatten() {
                has_children[*p] = true;
            }
            for (i, task) in plan.tasks.iter().enumerate() {
                if has_children[i]
                    && let Some(path) = paths.get(&task.id.as_u128())
                {
                    app.panes.tree.open(path.clone());
                }
            }
            app.panes.task_paths.extend(paths);
        }
        items.push(plan_item(plan, &parent, &app.theme));
    }
    app.panes.tree_items = items;
    if app.panes.tree.selected().is_empty()
        && let Some(first) = app.view.plans.last()
    {
        app.panes.tree.select(vec![first.id.as_u128()]);
    }
}

/// Each task's parent in the tree: the first task it needs (tasks come in topological order,
/// so a parent is always earlier; anything else hangs under the plan).
fn parents(plan: &PlanView) -> Vec<Option<usize>> {
    let index: HashMap<&str, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    plan.tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.needs
                .first()
                .and_then(|n| index.get(n.as_str()).copied())
                .filter(|p| *p < i)
        })
        .collect()
}

/// Each task's path in the tree (the plan's id, then task ids), by task id.
fn paths(plan: &PlanView, parent: &[Option<usize>]) -> HashMap<u128, Vec<u128>> {
    let mut paths = HashMap::with_capacity(plan.tasks.len());
    let mut path_of: Vec<Vec<u128>> = Vec::with_capacity(plan.tasks.len());
    for (i, task) in plan.tasks.iter().enumerate() {
        let mut path = match parent[i] {
            Some(p) => path_of[p].clone(),
            None => vec![plan.id.as_u128()],
        };
        path.push(task.id.as_u128());
        paths.insert(task.id.as_u128(), path.clone());
        path_of.push(path);
    }
    paths
}

/// One plan's tree.
fn plan_item(plan: &PlanView, parent: &[Option<usize>], theme: &Theme) -> TreeItem<'static, u128> {
    let plan_id = plan.id.as_u128();
    // Build bottom-up: children before parents, no recursion however deep the chain.
    let mut children: Vec<Vec<TreeItem<'static, u128>>> =
        (0..plan.tasks.len()).map(|_| Vec::new()).collect();
    let mut roots = Vec::new();
    for (i, task) in plan.tasks.iter().enumerate().rev() {
        let status = theme.status(task.status.name());
        let mut spans = Vec::with_capacity(6);
        spans.push(Span::styled(glyph(task.status), status));
        spans.push(Span::styled(task.key.clone(), theme.base));
        spans.push(Span::styled(" ", status));
        spans.push(Span::styled(task.status.name(), status));
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
        let id = task.id.as_u128();
        let item = if kids.is_empty() {
            TreeItem::new_leaf(id, Line::from(spans))
        } else {
            // Fails only for duplicate ids among the children, which a plan cannot have.
            TreeItem::new(id, Line::from(spans), kids)
                .unwrap_or_else(|_| TreeItem::new_leaf(id, Line::raw(task.key.clone())))
        };
        match parent[i] {
            Some(p) => children[p].push(item),
            None => roots.push(item),
        }
    }
    roots.reverse();
    let done = plan
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Done)
        .count();
    let title = Line::from(vec![
        Span::styled(plan.name.clone(), theme.title),
        Span::styled(format!("  {done}/{} done", plan.tasks.len()), theme.muted),
    ]);
    TreeItem::new(plan_id, title.clone(), roots)
        .unwrap_or_else(|_| TreeItem::new_leaf(plan_id, title))
}

/// The selected plan in layers: one column per depth, as many columns as fit, scrolled so the
/// selected task is on screen.
fn draw_graph(frame: &mut Frame, app: &mut App, area: Rect) {
    let Some(plan) = app.panes.selected_plan(&app.view) else {
        return;
    };
    let theme = &app.theme;
    let selected = app.panes.tree.selected().last().copied();
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
