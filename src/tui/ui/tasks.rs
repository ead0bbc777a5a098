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
use crate::domain::{Lifecycle, SessionStatus};
use crate::engine::view::PlanView;
use crate::tui::app::{App, Pane};
use crate::tui::task_tree::{depths, glyph};

pub(crate) fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    app.panes
        .task_tree
        .refresh(&app.view.plans, app.view.plans_generation);
    app.panes.task_tree.see_waiting(&app.view.sessions);
    let plans = app.view.plans.len();
    let mode = if app.panes.graph { "graph" } else { "tree" };
    let title = format!("tasks · {} · {mode}", crate::text::count(plans, "plan"));
    let block = block(app, Pane::Tasks, title);
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

/// The narrowest a graph column gets (a glyph and seven characters) before layers are left
/// off screen; the widest.
const COLUMN_MIN: usize = 8;
const COLUMN_MAX: usize = 18;

/// The graph's layers on screen: each one's width, the gap before a layer (its arrow), the
/// first shown and how many are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) widths: Vec<usize>,
    pub(crate) gap: usize,
    pub(crate) first: usize,
    pub(crate) shown: usize,
}

impl Window {
    /// Each layer as wide as its longest name (at most [`COLUMN_MAX`]) and a space, and `→ `
    /// between them; where they do not all fit, `→` alone, then the widest narrowed first (down to
    /// [`COLUMN_MIN`]); where they still do not, as many layers as fit with two characters
    /// kept for the `▶` that says so, sharing the width, scrolled to the selected one.
    pub(crate) fn of(width: usize, wanted: Vec<usize>, selected_layer: usize) -> Self {
        let layers = wanted.len().max(1);
        let mut widths: Vec<usize> = wanted
            .into_iter()
            .map(|w| w.clamp(COLUMN_MIN, COLUMN_MAX))
            .collect();
        let total = |widths: &[usize], gap: usize| {
            widths.iter().sum::<usize>() + gap * widths.len().saturating_sub(1)
        };
        let full = widths.clone();
        let spaced: Vec<usize> = widths.iter().map(|w| w + 1).collect();
        if total(&spaced, 2) <= width {
            return Self::all(spaced, 2);
        }
        while total(&widths, 1) > width {
            match widths.iter_mut().filter(|w| **w > COLUMN_MIN).max() {
                Some(widest) => *widest -= 1,
                None => break,
            }
        }
        if total(&widths, 1) <= width {
            return Self::all(widths, 1);
        }
        let shown = (width.saturating_sub(2) / (COLUMN_MIN + 1)).clamp(1, layers);
        let first = selected_layer.saturating_sub(shown - 1).min(layers - shown);
        // The layers shown share what the `▶` leaves.
        let even = (width.saturating_sub(2) / shown)
            .saturating_sub(1)
            .max(COLUMN_MIN);
        let widths = full.into_iter().map(|w| w.min(even)).collect();
        Self {
            widths,
            gap: 1,
            first,
            shown,
        }
    }

    fn all(widths: Vec<usize>, gap: usize) -> Self {
        Self {
            shown: widths.len(),
            widths,
            gap,
            first: 0,
        }
    }

    fn cut(&self) -> bool {
        self.first > 0 || self.first + self.shown < self.widths.len()
    }
}

/// The selected plan in layers: one column per depth, as many columns as fit, scrolled so the
/// selected task is on screen, with `◀` and `▶` where layers are off it.
fn draw_graph(frame: &mut Frame, app: &mut App, area: Rect) {
    let Some(plan) = app.panes.selected_plan(&app.view) else {
        return;
    };
    let selected = app.panes.task_tree.selected().last().copied();
    let depth = depths(plan);
    let layers = depth.iter().max().map_or(0, |d| d + 1);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, d) in depth.iter().enumerate() {
        columns[*d].push(i);
    }
    let sel = plan
        .tasks
        .iter()
        .position(|t| Some(t.id.as_u128()) == selected);
    let wanted = columns
        .iter()
        .map(|c| {
            c.iter()
                .map(|t| 2 + plan.tasks[*t].key.chars().count())
                .max()
        })
        .map(Option::unwrap_or_default)
        .collect();
    let window = Window::of(usize::from(area.width), wanted, sel.map_or(0, |i| depth[i]));
    let rows = usize::from(area.height.saturating_sub(1));
    let mut lines: Vec<Line> = Vec::with_capacity(rows + 1);
    for row in 0..rows {
        let mut spans = Vec::new();
        for (c, column) in columns
            .iter()
            .enumerate()
            .skip(window.first)
            .take(window.shown)
        {
            // Scroll a tall column so its selected task shows.
            let skip = match sel {
                Some(i) if depth[i] == c => column
                    .iter()
                    .position(|t| *t == i)
                    .unwrap_or(0)
                    .saturating_sub(rows.saturating_sub(1)),
                _ => 0,
            };
            spans.extend(cell(
                app,
                plan,
                sel,
                column.get(row + skip).copied(),
                if c == 0 { 0 } else { window.gap },
                window.widths[c],
            ));
        }
        lines.push(Line::from(spans));
    }
    mark_cut(app, &mut lines, &window);
    lines.push(legend(app, plan, sel, &depth, &window));
    frame.render_widget(Paragraph::new(lines), area);
}

/// One task's cell in the graph (or blank): the arrow from its needs, its glyph and key,
/// styled as selected, needed by the selection, or needing it.
fn cell(
    app: &App,
    plan: &PlanView,
    sel: Option<usize>,
    task: Option<usize>,
    gap: usize,
    width: usize,
) -> Vec<Span<'static>> {
    let theme = &app.theme;
    let Some(t) = task else {
        return vec![Span::raw(" ".repeat(gap + width))];
    };
    let task = &plan.tasks[t];
    let sel_task = sel.map(|i| &plan.tasks[i]);
    let mut style: Style = theme.status(task.status.name());
    if app.panes.task_tree.waits_for_you(task) {
        style = theme.status(SessionStatus::WaitingApproval.name());
    }
    if Some(t) == sel {
        style = theme.selected;
    } else if sel_task.is_some_and(|s| s.needs.contains(&task.key)) {
        style = style.add_modifier(Modifier::UNDERLINED | Modifier::BOLD);
    } else if sel_task.is_some_and(|s| task.needs.contains(&s.key)) {
        style = theme.info.add_modifier(Modifier::BOLD);
    }
    let text = fit(&format!("{}{}", glyph(task.status), task.key), width);
    let lead = if task.needs.is_empty() { " " } else { "→ " };
    let lead: String = lead.chars().chain([' ']).take(gap).collect();
    vec![
        Span::styled(lead, theme.muted),
        Span::styled(format!("{text:<width$}"), style),
    ]
}

/// `◀` at the first row's start when earlier layers are off screen, `▶` at its end when later
/// ones are.
fn mark_cut(app: &App, lines: &mut [Line<'static>], window: &Window) {
    let Some(first) = lines.first_mut() else {
        return;
    };
    if let Some(lead) = first.spans.first_mut().filter(|_| window.first > 0) {
        let rest: String = lead.content.chars().skip(1).collect();
        *lead = Span::styled(format!("◀{rest}"), app.theme.accent);
    }
    if window.first + window.shown < window.widths.len() {
        first.spans.push(Span::styled(" ▶", app.theme.accent));
    }
}

/// The graph's last line: which layers are on screen when not all are, then the selected
/// task's needs, dependents and layer (or the plan's name and layers).
fn legend(
    app: &App,
    plan: &PlanView,
    sel: Option<usize>,
    depth: &[usize],
    window: &Window,
) -> Line<'static> {
    let layers = window.widths.len();
    let mut spans = Vec::new();
    // The keys that reach the others are in the footer.
    if window.cut() {
        let (first, last) = (window.first + 1, window.first + window.shown);
        let shown = match first == last {
            true => format!("layer {first} of {layers} · "),
            false => format!("layers {first}–{last} of {layers} · "),
        };
        spans.push(Span::styled(shown, app.theme.accent));
    }
    let text = match sel {
        Some(i) => {
            let task = &plan.tasks[i];
            let dependents: Vec<&str> = plan
                .tasks
                .iter()
                .filter(|t| t.needs.contains(&task.key))
                .map(|t| t.key.as_str())
                .collect();
            let or_nothing = |names: String| {
                if names.is_empty() {
                    "nothing".to_string()
                } else {
                    names
                }
            };
            format!(
                "{}: needs {} · needed by {} · layer {}/{layers}",
                task.key,
                or_nothing(task.needs.join(", ")),
                or_nothing(dependents.join(", ")),
                depth[i] + 1
            )
        }
        None => format!("{}: {}", plan.name, crate::text::count(layers, "layer")),
    };
    spans.push(Span::styled(text, app.theme.muted));
    Line::from(spans)
}
