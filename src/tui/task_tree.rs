//! The task tree: every plan's tasks as a tree (a task hangs under the first task it needs, so
//! every task appears once), with its own selection, opened items and scrolling.
//!
//! The tree's shape is laid out once for each shape of the plans (which plans, which tasks, what
//! each needs), in tree order. Which rows are visible (under open items only) is worked out again
//! only when the shape or the opened items change, by skipping closed subtrees, never hashing
//! paths; a frame labels and draws only the rows on screen, from the plans as they are, so a busy
//! plan's events cost a frame nothing but the rows shown.
//!
//! Selection, opening and scrolling behave as `tui_tree_widget`'s `TreeState` did with its
//! `Tree`, which drew every task: identifiers are paths (plan id, then task ids), and keys move
//! through the rows as they were last drawn.

mod draw;
mod nav;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::domain::{Lifecycle, SessionId, SessionStatus, TaskStatus};
use crate::engine::view::{PlanView, SessionView, TaskView};
use crate::tui::theme::Theme;

#[derive(Default)]
pub(crate) struct TaskTree {
    /// Every plan's row and its tasks' rows in tree order: plans newest first, each item before
    /// its children, children in their tasks' order.
    nodes: Vec<Node>,
    /// Where each plan's and task's node is, by identifier.
    index: HashMap<u128, usize>,
    /// The plans as the nodes lay them out (in the view's order, oldest first), to tell a new
    /// shape; their statuses are not kept up to date (rows are labelled from the view's plans).
    shown: Vec<PlanView>,
    /// The plans generation the nodes are current with.
    seen: Option<u64>,
    /// Plans whose tree has been opened once.
    opened_once: HashSet<u128>,
    /// Opened items, by path.
    opened: HashSet<Vec<u128>>,
    /// The selected item's path (empty: nothing selected).
    selected: Vec<u128>,
    /// The first visible row drawn.
    offset: usize,
    /// Scroll the selection into view on the next draw.
    show_selected: bool,
    /// The visible rows (nodes under open items only) as last drawn.
    rows: Vec<usize>,
    /// The opened items changed since `rows` were worked out.
    rows_stale: bool,
    /// Where the rows were last drawn, and which node was drawn at which line.
    last_area: Rect,
    rendered: Vec<(u16, usize)>,
    /// Sessions that wait for the operator (a permission or a question): their tasks say so.
    waiting: HashSet<SessionId>,
}

/// A plan's or a task's place in the tree.
#[derive(Debug, Clone, Copy)]
struct Node {
    id: u128,
    /// Its plan, an index into `shown` (and into the plans drawn, which have its shape).
    plan: usize,
    /// Its task, an index into the plan's tasks; `None` for the plan's own row.
    task: Option<usize>,
    /// The node it hangs under.
    parent: Option<usize>,
    /// 0 for a plan, 1 for the tasks right under it.
    depth: usize,
    /// One past the last node of its subtree (`index + 1` when it has no children).
    end: usize,
}

/// A row on screen, to draw.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    /// The line it is drawn on.
    y: u16,
    /// Levels of indentation.
    depth: usize,
    /// `None` without children, else whether it is open.
    open: Option<bool>,
    selected: bool,
    label: Line<'static>,
}

impl TaskTree {
    /// The selected item's path (plan id, then task ids); empty when nothing is.
    pub(crate) fn selected(&self) -> &[u128] {
        &self.selected
    }

    /// The opened items' paths.
    #[cfg(test)]
    pub(crate) fn opened(&self) -> &HashSet<Vec<u128>> {
        &self.opened
    }

    /// A task's path in the tree (plan id, then task ids).
    pub(crate) fn path(&self, task: u128) -> Option<Vec<u128>> {
        self.index.get(&task).map(|n| self.path_of(*n))
    }

    /// Note which sessions wait for the operator now, for the rows of their tasks.
    pub(crate) fn see_waiting(&mut self, sessions: &[SessionView]) {
        self.waiting.clear();
        self.waiting.extend(
            sessions
                .iter()
                .filter(|s| s.session.status == SessionStatus::WaitingApproval)
                .map(|s| s.session.id),
        );
    }

    /// Whether `task` runs a session that waits for the operator.
    pub(crate) fn waits_for_you(&self, task: &TaskView) -> bool {
        task.status == TaskStatus::Running
            && task.session.is_some_and(|s| self.waiting.contains(&s))
    }

    /// Bring the layout up to date with `plans` (a no-op while `generation` is unchanged, and
    /// while only tasks' statuses, attempts or sessions changed: rows are labelled as drawn). A
    /// plan seen for the first time is opened, with every task that has children; with nothing
    /// selected, the newest plan is.
    pub(crate) fn refresh(&mut self, plans: &[PlanView], generation: u64) {
        if self.seen == Some(generation) {
            return;
        }
        self.seen = Some(generation);
        let same = plans.len() == self.shown.len()
            && plans.iter().zip(&self.shown).all(|(a, b)| same_shape(a, b));
        if !same {
            self.build(plans);
        }
        if self.selected.is_empty()
            && let Some(newest) = plans.last()
        {
            self.select(vec![newest.id.as_u128()]);
        }
    }

    fn build(&mut self, plans: &[PlanView]) {
        self.nodes.clear();
        for (p, plan) in plans.iter().enumerate().rev() {
            let first = self.nodes.len();
            lay_out(plan, p, &mut self.nodes);
            if self.opened_once.insert(plan.id.as_u128()) {
                for n in first..self.nodes.len() {
                    if self.nodes[n].end > n + 1 || n == first {
                        self.opened.insert(self.path_of(n));
                    }
                }
            }
        }
        self.index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(n, node)| (node.id, n))
            .collect();
        self.shown = plans.to_vec();
        // The rows as drawn name nodes: they must name these.
        self.rows = self.flatten();
        self.rows_stale = false;
        self.rendered.clear();
    }

    /// The node's path: its plan's id, then its tasks' ids down to its own.
    fn path_of(&self, node: usize) -> Vec<u128> {
        let mut path = Vec::with_capacity(self.nodes.get(node).map_or(0, |n| n.depth + 1));
        let mut at = Some(node);
        while let Some(n) = at.and_then(|n| self.nodes.get(n)) {
            path.push(n.id);
            at = n.parent;
        }
        path.reverse();
        path
    }

    /// The node whose path `path` is, if any.
    fn node_at(&self, path: &[u128]) -> Option<usize> {
        let node = *self.index.get(path.last()?)?;
        let mut at = Some(node);
        for id in path.iter().rev() {
            let n = self.nodes.get(at?)?;
            if n.id != *id {
                return None;
            }
            at = n.parent;
        }
        at.is_none().then_some(node)
    }

    /// The visible rows: every node under open items only, in tree order.
    fn flatten(&self) -> Vec<usize> {
        let mut open = vec![false; self.nodes.len()];
        for path in &self.opened {
            if let Some(n) = self.node_at(path) {
                open[n] = true;
            }
        }
        let mut rows = Vec::new();
        let mut n = 0;
        while let Some(node) = self.nodes.get(n) {
            rows.push(n);
            n = if open[n] { n + 1 } else { node.end };
        }
        rows
    }

    /// A node's row text, from the plans as they are now.
    fn label(&self, node: &Node, plans: &[PlanView], theme: &Theme) -> Line<'static> {
        let Some(plan) = plans.get(node.plan) else {
            return Line::default();
        };
        match node.task.and_then(|t| plan.tasks.get(t)) {
            Some(task) => task_line(task, self.waits_for_you(task), theme),
            None => plan_title(plan, plans, theme),
        }
    }
}

/// Whether two copies of a plan draw the same tree but for tasks' statuses and attempts.
fn same_shape(a: &PlanView, b: &PlanView) -> bool {
    a.id == b.id
        && a.name == b.name
        && a.tasks.len() == b.tasks.len()
        && a.tasks
            .iter()
            .zip(&b.tasks)
            .all(|(a, b)| a.id == b.id && a.key == b.key && a.needs == b.needs)
}

/// Append plan `plan` (at `p` in the plans) to `nodes`: its own node, then its tasks in tree
/// order. Iterative, however deep a chain of needs goes.
fn lay_out(plan: &PlanView, p: usize, nodes: &mut Vec<Node>) {
    let parent = parents(plan);
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); plan.tasks.len()];
    let mut roots = Vec::new();
    for (t, up) in parent.iter().enumerate() {
        match up {
            Some(up) => children[*up].push(t),
            None => roots.push(t),
        }
    }
    // Subtree sizes: a parent is always earlier than its children.
    let mut size = vec![1usize; plan.tasks.len()];
    for t in (0..plan.tasks.len()).rev() {
        if let Some(up) = parent[t] {
            size[up] += size[t];
        }
    }
    let first = nodes.len();
    nodes.push(Node {
        id: plan.id.as_u128(),
        plan: p,
        task: None,
        parent: None,
        depth: 0,
        end: first + 1 + plan.tasks.len(),
    });
    let mut node_of = vec![first; plan.tasks.len()];
    let mut stack: Vec<usize> = roots.into_iter().rev().collect();
    while let Some(t) = stack.pop() {
        let up = parent[t].map_or(first, |up| node_of[up]);
        let n = nodes.len();
        node_of[t] = n;
        nodes.push(Node {
            id: plan.tasks[t].id.as_u128(),
            plan: p,
            task: Some(t),
            parent: Some(up),
            depth: nodes[up].depth + 1,
            end: n + size[t],
        });
        stack.extend(children[t].iter().rev());
    }
}

/// A task's status glyph, with the space after it.
pub(crate) fn glyph(status: TaskStatus) -> &'static str {
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

/// Where each task of `plan` is in its task list, by key.
pub(crate) fn positions(plan: &PlanView) -> HashMap<&str, usize> {
    plan.tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect()
}

/// Each task's layer in the dependency graph: the length of the longest chain of needs
/// before it (tasks come in topological order, so a need's layer is known first).
pub(crate) fn depths(plan: &PlanView) -> Vec<usize> {
    let index = positions(plan);
    let mut depth = vec![0usize; plan.tasks.len()];
    for (i, task) in plan.tasks.iter().enumerate() {
        depth[i] = task
            .needs
            .iter()
            .filter_map(|n| index.get(n.as_str()))
            .filter(|p| **p < i)
            .map(|p| depth[*p] + 1)
            .max()
            .unwrap_or(0);
    }
    depth
}

/// Each task's parent in the tree: the first task it needs (tasks come in topological order,
/// so a parent is always earlier; anything else hangs under the plan).
fn parents(plan: &PlanView) -> Vec<Option<usize>> {
    let index = positions(plan);
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

/// One task's row.
fn task_line(task: &TaskView, waits_for_you: bool, theme: &Theme) -> Line<'static> {
    let status = theme.status(task.status.name());
    let mut spans = Vec::with_capacity(7);
    spans.push(Span::styled(glyph(task.status), status));
    spans.push(Span::styled(task.key.clone(), theme.base));
    spans.push(Span::styled(" ", status));
    spans.push(Span::styled(task.status.name(), status));
    if waits_for_you {
        let waiting = theme.status(SessionStatus::WaitingApproval.name());
        spans.push(Span::styled(" · waiting for you", waiting));
    }
    if task.attempts > 1 {
        spans.push(Span::styled(format!(" #{}", task.attempts), theme.muted));
    }
    if task.needs.len() > 1 {
        spans.push(Span::styled(
            format!(" +needs {}", task.needs[1..].join(", ")),
            theme.muted,
        ));
    }
    if let Some(check) = &task.check {
        let line = crate::text::clip(check, 60);
        spans.push(Span::styled(format!(" checking: {line}"), theme.muted));
    }
    if let Some(waits) = &task.waits {
        spans.push(Span::styled(
            format!(" · waits {}", crate::text::clip(waits, 60)),
            theme.status("blocked"),
        ));
    }
    Line::from(spans)
}

/// A plan's row: its name and how many of its tasks are done.
fn plan_title(plan: &PlanView, plans: &[PlanView], theme: &Theme) -> Line<'static> {
    let done = plan
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Done)
        .count();
    Line::from(vec![
        Span::styled(plan.shown_name(plans).to_string(), theme.title),
        Span::styled(format!("  {done}/{} done", plan.tasks.len()), theme.muted),
    ])
}
