//! The task tree's items: built once for each shape of the plans (which plans, which tasks, what
//! each needs), then patched in place when a task's status or attempts change, so a busy plan's
//! events relabel one row instead of rebuilding thousands. A task hangs under the first task it
//! needs, so every task appears once.

use std::collections::{HashMap, HashSet};

use ratatui::text::{Line, Span, Text};
use tui_tree_widget::{TreeItem, TreeState};

use crate::domain::{Lifecycle, TaskStatus};
use crate::engine::view::{PlanView, TaskView};
use crate::tui::theme::Theme;

/// Tree identifiers are plan and task ids as integers: the tree widget clones and hashes every
/// open item's path each frame, which costs far less for them than for strings.
type Item = TreeItem<'static, u128>;

#[derive(Default)]
pub(crate) struct TaskTree {
    /// The tree widget's items: one per plan, newest first.
    items: Vec<Item>,
    /// The plans as the items show them (in the view's order, oldest first).
    shown: Vec<PlanView>,
    /// Per shown plan, where each task's item sits.
    places: Vec<Vec<Place>>,
    /// The plans generation the items are current with.
    seen: Option<u64>,
    /// Each task's path in the tree (plan id, then task ids), by task id.
    paths: HashMap<u128, Vec<u128>>,
    /// Plans whose tree has been opened once.
    opened: HashSet<u128>,
}

/// Where a task's item sits: under which task (or the plan, for `None`), and at which index
/// among that parent's children.
#[derive(Debug, Clone, Copy)]
struct Place {
    parent: Option<usize>,
    index: usize,
}

impl TaskTree {
    pub(crate) fn items(&self) -> &[Item] {
        &self.items
    }

    /// A task's path in the tree (plan id, then task ids).
    pub(crate) fn path(&self, task: u128) -> Option<&Vec<u128>> {
        self.paths.get(&task)
    }

    /// Bring the items up to date with `plans` (a no-op while `generation` is unchanged):
    /// relabel the tasks whose status or attempts changed, or build everything again when the
    /// plans' shape did. A plan seen for the first time is opened, with every task that has
    /// children; with nothing selected, the newest plan is.
    pub(crate) fn refresh(
        &mut self,
        plans: &[PlanView],
        generation: u64,
        state: &mut TreeState<u128>,
        theme: &Theme,
    ) {
        if self.seen == Some(generation) {
            return;
        }
        self.seen = Some(generation);
        if !self.patch(plans, theme) {
            self.build(plans, state, theme);
        }
        if state.selected().is_empty()
            && let Some(newest) = plans.last()
        {
            state.select(vec![newest.id.as_u128()]);
        }
    }

    /// Relabel what changed; false when the shape changed (or an item could not be patched),
    /// and the items must be built again.
    fn patch(&mut self, plans: &[PlanView], theme: &Theme) -> bool {
        if plans.len() != self.shown.len() || self.items.len() != plans.len() {
            return false;
        }
        for (p, plan) in plans.iter().enumerate() {
            // Items are newest first, plans oldest first.
            let at = plans.len() - 1 - p;
            let shown = &mut self.shown[p];
            if !same_shape(plan, shown) {
                return false;
            }
            let mut relabel_plan = false;
            for (t, task) in plan.tasks.iter().enumerate() {
                let was = &mut shown.tasks[t];
                if task.status == was.status && task.attempts == was.attempts {
                    continue;
                }
                relabel_plan |=
                    (task.status == TaskStatus::Done) != (was.status == TaskStatus::Done);
                was.status = task.status;
                was.attempts = task.attempts;
                let Some(item) = task_item(&mut self.items[at], &self.places[p], t) else {
                    return false;
                };
                if !relabel(item, task_line(task, theme)) {
                    return false;
                }
            }
            if relabel_plan && !relabel(&mut self.items[at], plan_title(plan, theme)) {
                return false;
            }
        }
        true
    }

    fn build(&mut self, plans: &[PlanView], state: &mut TreeState<u128>, theme: &Theme) {
        self.items = Vec::with_capacity(plans.len());
        self.places = Vec::with_capacity(plans.len());
        self.paths.clear();
        for plan in plans.iter().rev() {
            let parent = parents(plan);
            let plan_id = plan.id.as_u128();
            let paths = paths(plan, &parent);
            if self.opened.insert(plan_id) {
                state.open(vec![plan_id]);
                let mut has_children = vec![false; plan.tasks.len()];
                for p in parent.iter().flatten() {
                    has_children[*p] = true;
                }
                for (i, task) in plan.tasks.iter().enumerate() {
                    if has_children[i]
                        && let Some(path) = paths.get(&task.id.as_u128())
                    {
                        state.open(path.clone());
                    }
                }
            }
            self.paths.extend(paths);
            self.items.push(plan_item(plan, &parent, theme));
            self.places.push(places(&parent));
        }
        self.places.reverse();
        self.shown = plans.to_vec();
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

/// The item of task `t` inside its plan's item.
fn task_item<'i>(plan: &'i mut Item, places: &[Place], t: usize) -> Option<&'i mut Item> {
    let mut indices = Vec::new();
    let mut at = Some(t);
    while let Some(i) = at {
        let place = places.get(i)?;
        indices.push(place.index);
        at = place.parent;
    }
    let mut item = plan;
    for index in indices.into_iter().rev() {
        item = item.child_mut(index)?;
    }
    Some(item)
}

/// Give `item` new text, keeping its identifier and children. The widget has no setter for an
/// item's text, so the item is made again around its own children (moved, not copied). False
/// only if the widget refused children it had accepted before; the item has then lost them.
fn relabel(item: &mut Item, text: Line<'static>) -> bool {
    let id = *item.identifier();
    let mut children = Vec::with_capacity(item.children().len());
    for i in 0..item.children().len() {
        if let Some(child) = item.child_mut(i) {
            children.push(std::mem::replace(
                child,
                TreeItem::new_leaf(0, Text::default()),
            ));
        }
    }
    match TreeItem::new(id, text, children) {
        Ok(new) => {
            *item = new;
            true
        }
        Err(_) => false,
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

/// Where each task's item sits (children keep the tasks' order).
fn places(parent: &[Option<usize>]) -> Vec<Place> {
    let mut children = vec![0usize; parent.len()];
    let mut roots = 0;
    parent
        .iter()
        .map(|p| {
            let count = match p {
                Some(p) => &mut children[*p],
                None => &mut roots,
            };
            let index = *count;
            *count += 1;
            Place { parent: *p, index }
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

/// One task's row.
fn task_line(task: &TaskView, theme: &Theme) -> Line<'static> {
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
    Line::from(spans)
}

/// A plan's row: its name and how many of its tasks are done.
fn plan_title(plan: &PlanView, theme: &Theme) -> Line<'static> {
    let done = plan
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Done)
        .count();
    Line::from(vec![
        Span::styled(plan.name.clone(), theme.title),
        Span::styled(format!("  {done}/{} done", plan.tasks.len()), theme.muted),
    ])
}

/// One plan's tree.
fn plan_item(plan: &PlanView, parent: &[Option<usize>], theme: &Theme) -> Item {
    let plan_id = plan.id.as_u128();
    // Build bottom-up: children before parents, no recursion however deep the chain.
    let mut children: Vec<Vec<Item>> = (0..plan.tasks.len()).map(|_| Vec::new()).collect();
    let mut roots = Vec::new();
    for (i, task) in plan.tasks.iter().enumerate().rev() {
        let mut kids = std::mem::take(&mut children[i]);
        kids.reverse();
        let id = task.id.as_u128();
        let item = if kids.is_empty() {
            TreeItem::new_leaf(id, task_line(task, theme))
        } else {
            // Fails only for duplicate ids among the children, which a plan cannot have.
            TreeItem::new(id, task_line(task, theme), kids)
                .unwrap_or_else(|_| TreeItem::new_leaf(id, Line::raw(task.key.clone())))
        };
        match parent[i] {
            Some(p) => children[p].push(item),
            None => roots.push(item),
        }
    }
    roots.reverse();
    let title = plan_title(plan, theme);
    TreeItem::new(plan_id, title.clone(), roots)
        .unwrap_or_else(|_| TreeItem::new_leaf(plan_id, title))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::{PlanId, TaskId};
    use crate::tui::theme::ColorDepth;

    fn plan(n: u128, tasks: &[(&str, &[&str])]) -> PlanView {
        PlanView {
            id: PlanId::from_u128(n << 64),
            name: format!("plan-{n}"),
            repo: "/work/repo".into(),
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(i, (key, needs))| TaskView {
                    id: TaskId::from_u128((n << 64) + i as u128 + 1),
                    key: key.to_string(),
                    status: TaskStatus::Pending,
                    attempts: 0,
                    needs: needs.iter().map(|n| n.to_string()).collect(),
                    capabilities: Vec::new(),
                    session: None,
                })
                .collect(),
        }
    }

    fn plans() -> Vec<PlanView> {
        vec![
            plan(
                1,
                &[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["c", "b"])],
            ),
            plan(2, &[("x", &[]), ("y", &[]), ("z", &["y", "x"])]),
        ]
    }

    fn theme() -> Theme {
        Theme::load("industrial", None, ColorDepth::TrueColor).unwrap()
    }

    /// The items of a tree built from scratch for `plans`.
    fn fresh(plans: &[PlanView]) -> String {
        let mut tree = TaskTree::default();
        tree.refresh(plans, 0, &mut TreeState::default(), &theme());
        format!("{:?}", tree.items())
    }

    #[test]
    fn a_status_change_relabels_in_place_what_a_rebuild_would_draw() {
        let theme = theme();
        let mut state = TreeState::default();
        let mut tree = TaskTree::default();
        let mut plans = plans();
        tree.refresh(&plans, 1, &mut state, &theme);
        assert_eq!(format!("{:?}", tree.items()), fresh(&plans));

        // A task deep in the tree, a root with children (and the plan's done count), a leaf.
        plans[0].tasks[3].status = TaskStatus::Running;
        plans[0].tasks[3].attempts = 2;
        plans[0].tasks[0].status = TaskStatus::Done;
        plans[1].tasks[0].status = TaskStatus::Failed;
        plans[1].tasks[0].session = Some(crate::domain::SessionId::from_u128(7));
        assert!(tree.patch(&plans, &theme));
        assert_eq!(format!("{:?}", tree.items()), fresh(&plans));

        // What refresh does with an unchanged generation: nothing.
        plans[0].tasks[1].status = TaskStatus::Done;
        tree.refresh(&plans, 1, &mut state, &theme);
        assert_ne!(format!("{:?}", tree.items()), fresh(&plans));
        tree.refresh(&plans, 2, &mut state, &theme);
        assert_eq!(format!("{:?}", tree.items()), fresh(&plans));
    }

    #[test]
    fn no_plans_draw_no_items() {
        let theme = theme();
        let mut state = TreeState::default();
        let mut tree = TaskTree::default();
        tree.refresh(&[], 1, &mut state, &theme);
        tree.refresh(&[], 2, &mut state, &theme);
        assert!(tree.items().is_empty());
        let plans = plans();
        tree.refresh(&plans, 3, &mut state, &theme);
        assert_eq!(format!("{:?}", tree.items()), fresh(&plans));
        tree.refresh(&[], 4, &mut state, &theme);
        assert!(tree.items().is_empty());
    }

    #[test]
    fn a_new_shape_is_built_again() {
        let theme = theme();
        let mut state = TreeState::default();
        let mut tree = TaskTree::default();
        let mut plans = plans();
        tree.refresh(&plans, 1, &mut state, &theme);

        plans[1].tasks[2].needs.reverse();
        assert!(!tree.patch(&plans, &theme));
        tree.refresh(&plans, 2, &mut state, &theme);
        assert_eq!(format!("{:?}", tree.items()), fresh(&plans));

        plans.push(plan(3, &[("only", &[])]));
        tree.refresh(&plans, 3, &mut state, &theme);
        assert_eq!(format!("{:?}", tree.items()), fresh(&plans));
        // The new plan is opened, and the first selection stays on the plan chosen first.
        assert!(state.opened().contains(&vec![plans[2].id.as_u128()]));
        assert_eq!(state.selected(), [plans[1].id.as_u128()]);
        let z = plans[1].tasks[2].id.as_u128();
        assert_eq!(
            tree.path(z),
            Some(&vec![
                plans[1].id.as_u128(),
                plans[1].tasks[0].id.as_u128(),
                z
            ])
        );
    }
}
