#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::StatefulWidget;
use tui_tree_widget::{Tree, TreeItem, TreeState};

use super::*;
use crate::domain::{PlanId, TaskId};
use crate::tui::theme::ColorDepth;

fn plan(n: u128, tasks: &[(&str, &[&str])]) -> PlanView {
    let tasks: Vec<(String, Vec<String>)> = tasks
        .iter()
        .map(|(key, needs)| {
            (
                key.to_string(),
                needs.iter().map(|n| n.to_string()).collect(),
            )
        })
        .collect();
    plan_of(n, tasks)
}

fn plan_of(n: u128, tasks: Vec<(String, Vec<String>)>) -> PlanView {
    PlanView {
        key: String::new(),
        id: PlanId::from_u128(n << 64),
        name: format!("plan-{n}"),
        repo: "/work/repo".into(),
        landing: None,
        tasks: tasks
            .into_iter()
            .enumerate()
            .map(|(i, (key, needs))| TaskView {
                check: None,
                waits: None,
                id: TaskId::from_u128((n << 64) + i as u128 + 1),
                key,
                status: TaskStatus::Pending,
                attempts: 0,
                needs,
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

/// The plans of the differential test: a wide tree with second needs, a chain deeper than the
/// area is wide, and a nearly flat plan.
fn many_plans() -> Vec<PlanView> {
    let wide = (0..40)
        .map(|i| {
            let needs = match i {
                0 | 1 => Vec::new(),
                _ if i % 3 == 0 => vec![format!("w{}", i / 2), format!("w{}", i - 1)],
                _ => vec![format!("w{}", i / 2)],
            };
            (format!("w{i}"), needs)
        })
        .collect();
    let chain = (0..16)
        .map(|i| {
            let needs = if i == 0 {
                Vec::new()
            } else {
                vec![format!("c{}", i - 1)]
            };
            (format!("c{i}"), needs)
        })
        .collect();
    let flat = (0..5)
        .map(|i| {
            let needs = if i == 4 {
                vec!["f3".to_string()]
            } else {
                Vec::new()
            };
            (format!("f{i}"), needs)
        })
        .collect();
    vec![plan_of(1, wide), plan_of(2, chain), plan_of(3, flat)]
}

/// What this module replaced: every plan's tree built eagerly as `tui_tree_widget` items, every
/// frame drawing (and flattening) all of them.
struct Eager {
    items: Vec<TreeItem<'static, u128>>,
    state: TreeState<u128>,
    seen: Option<u64>,
    opened_once: HashSet<u128>,
}

impl Eager {
    fn refresh(&mut self, plans: &[PlanView], generation: u64, theme: &Theme) {
        if self.seen == Some(generation) {
            return;
        }
        self.seen = Some(generation);
        self.items = plans
            .iter()
            .rev()
            .map(|p| plan_item(p, &parents(p), theme))
            .collect();
        for item in &self.items {
            if self.opened_once.insert(*item.identifier()) {
                open_all(item, &mut Vec::new(), &mut self.state);
            }
        }
        if self.state.selected().is_empty()
            && let Some(newest) = plans.last()
        {
            self.state.select(vec![newest.id.as_u128()]);
        }
    }

    fn render(&mut self, area: Rect, buf: &mut Buffer, highlight: Style) {
        let tree = Tree::new(&self.items)
            .unwrap()
            .highlight_style(highlight)
            .node_closed_symbol("▸ ")
            .node_open_symbol("▾ ")
            .node_no_children_symbol("  ");
        tree.render(area, buf, &mut self.state);
    }
}

/// Open `item` and every item under it that has children.
fn open_all(item: &TreeItem<'static, u128>, path: &mut Vec<u128>, state: &mut TreeState<u128>) {
    path.push(*item.identifier());
    if !item.children().is_empty() {
        state.open(path.clone());
        for child in item.children() {
            open_all(child, path, state);
        }
    }
    path.pop();
}

/// One plan's tree, built eagerly (as this module did before it laid out and labelled lazily).
fn plan_item(plan: &PlanView, parent: &[Option<usize>], theme: &Theme) -> TreeItem<'static, u128> {
    let mut children: Vec<Vec<TreeItem<'static, u128>>> =
        (0..plan.tasks.len()).map(|_| Vec::new()).collect();
    let mut roots = Vec::new();
    for (i, task) in plan.tasks.iter().enumerate().rev() {
        let mut kids = std::mem::take(&mut children[i]);
        kids.reverse();
        let id = task.id.as_u128();
        let item = if kids.is_empty() {
            TreeItem::new_leaf(id, task_line(task, false, theme))
        } else {
            TreeItem::new(id, task_line(task, false, theme), kids).unwrap()
        };
        match parent[i] {
            Some(p) => children[p].push(item),
            None => roots.push(item),
        }
    }
    roots.reverse();
    TreeItem::new(
        plan.id.as_u128(),
        plan_title(plan, std::slice::from_ref(plan), theme),
        roots,
    )
    .unwrap()
}

/// One random key, click or plan change, done to both trees alike; they must answer alike.
fn act(
    rng: &mut fastrand::Rng,
    step: usize,
    (lazy, eager): (&mut TaskTree, &mut TreeState<u128>),
    plans: &mut Vec<PlanView>,
    generation: &mut u64,
) {
    let page = rng.usize(1..8);
    match rng.u8(0..13) {
        0 => assert_eq!(lazy.key_up(), eager.key_up()),
        1 | 2 => assert_eq!(lazy.key_down(), eager.key_down()),
        3 => assert_eq!(lazy.select_first(), eager.select_first()),
        4 => assert_eq!(lazy.select_last(), eager.select_last()),
        5 => {
            let up = |c: Option<usize>| c.map_or(0, |c| c.saturating_sub(page));
            assert_eq!(lazy.select_relative(up), eager.select_relative(up));
        }
        6 => {
            let down = |c: Option<usize>| c.map_or(0, |c| c.saturating_add(page));
            assert_eq!(lazy.select_relative(down), eager.select_relative(down));
        }
        7 => assert_eq!(lazy.key_left(), eager.key_left()),
        8 => assert_eq!(lazy.key_right(), eager.key_right()),
        9 => {
            let at = Position::new(rng.u16(0..40), rng.u16(0..12));
            assert_eq!(lazy.click_at(at), eager.click_at(at));
        }
        10 => {
            // What the graph's cursor does: select a task by its path.
            let p = rng.usize(0..plans.len());
            let t = rng.usize(0..plans[p].tasks.len());
            if let Some(path) = lazy.path(plans[p].tasks[t].id.as_u128()) {
                assert_eq!(lazy.select(path.clone()), eager.select(path));
            }
        }
        11 => {
            let p = rng.usize(0..plans.len());
            let t = rng.usize(0..plans[p].tasks.len());
            let task = &mut plans[p].tasks[t];
            task.status = TaskStatus::ALL[rng.usize(0..TaskStatus::ALL.len())];
            task.attempts += 1;
            *generation += 1;
        }
        _ if step % 500 == 499 => {
            // A new shape: a plan finishes, or one is added.
            if plans.len() > 2 {
                plans.remove(rng.usize(0..plans.len()));
            } else {
                plans.push(plan(10 + step as u128, &[("n", &[]), ("m", &["n"])]));
            }
            *generation += 1;
        }
        _ => {}
    }
    assert_eq!(lazy.selected(), eager.selected(), "step {step}");
    assert_eq!(lazy.opened(), eager.opened(), "step {step}");
}

/// The lazily laid out tree and the eager one, given the same keys, clicks and plan changes,
/// draw the same cells (labels, indentation, symbols, highlight, scrolling) and keep the same
/// selection and opened items, with plans collapsed and opened, the viewport scrolled, rows
/// indented past the area's edge, and keys pressed between draws (they move through the rows
/// as last drawn).
#[test]
fn the_rows_on_screen_are_those_the_whole_tree_drew() {
    let theme = theme();
    let highlight = Style::new().bg(Color::Rgb(1, 2, 3));
    let screen = Rect::new(0, 0, 40, 12);
    let area = Rect::new(3, 2, 24, 7);
    let mut plans = many_plans();
    let mut generation = 1;
    let mut lazy = TaskTree::default();
    let mut eager = Eager {
        items: Vec::new(),
        state: TreeState::default(),
        seen: None,
        opened_once: HashSet::new(),
    };
    let mut rng = fastrand::Rng::with_seed(19);
    let (mut drawn, mut scrolled, mut collapsed) = (0, 0, 0);
    for step in 0..3_000 {
        let both = (&mut lazy, &mut eager.state);
        act(&mut rng, step, both, &mut plans, &mut generation);
        if rng.u8(0..4) == 0 {
            continue;
        }
        lazy.refresh(&plans, generation);
        eager.refresh(&plans, generation, &theme);
        let mut want = Buffer::empty(screen);
        eager.render(area, &mut want, highlight);
        let mut got = Buffer::empty(screen);
        lazy.render(area, &mut got, &plans, &theme, highlight);
        assert_eq!(got, want, "step {step}");
        assert_eq!(lazy.offset, eager.state.get_offset(), "step {step}");
        drawn += 1;
        scrolled += usize::from(lazy.offset > 0);
        collapsed += usize::from(lazy.rows.len() < lazy.nodes.len());
    }
    // The walk went where it should: drawn often, scrolled, with items closed.
    assert!(drawn > 2_000, "{drawn} draws");
    assert!(scrolled > 500, "{scrolled} draws scrolled");
    assert!(collapsed > 500, "{collapsed} draws with items closed");
}

#[test]
fn a_frame_labels_only_the_rows_on_screen_and_as_the_plans_are() {
    let theme = theme();
    let mut plans = many_plans();
    let mut tree = TaskTree::default();
    tree.refresh(&plans, 1);
    let area = Rect::new(0, 0, 30, 5);
    let rows = tree.window(area, &plans, &theme);
    assert_eq!(rows.len(), 5);
    // Plans newest first: the nearly flat plan's row, then its tasks.
    assert_eq!(rows[0].label, plan_title(&plans[2], &plans, &theme));
    assert_eq!(rows[1].label, task_line(&plans[2].tasks[0], false, &theme));

    // A status change is drawn without laying anything out again.
    plans[2].tasks[0].status = TaskStatus::Done;
    tree.refresh(&plans, 2);
    let rows = tree.window(area, &plans, &theme);
    assert_eq!(rows[0].label, plan_title(&plans[2], &plans, &theme));
    assert!(format!("{:?}", rows[0].label).contains("1/5 done"));
    assert_eq!(rows[1].label, task_line(&plans[2].tasks[0], false, &theme));
}

#[test]
fn no_plans_draw_no_rows() {
    let theme = theme();
    let mut tree = TaskTree::default();
    let area = Rect::new(0, 0, 30, 10);
    tree.refresh(&[], 1);
    tree.refresh(&[], 2);
    assert!(tree.window(area, &[], &theme).is_empty());
    let plans = plans();
    tree.refresh(&plans, 3);
    assert_eq!(tree.window(area, &plans, &theme).len(), 9);
    tree.refresh(&[], 4);
    assert!(tree.window(area, &[], &theme).is_empty());
}

#[test]
fn a_new_shape_is_laid_out_again() {
    let mut tree = TaskTree::default();
    let mut plans = plans();
    tree.refresh(&plans, 1);

    plans[1].tasks[2].needs.reverse();
    tree.refresh(&plans, 2);
    let z = plans[1].tasks[2].id.as_u128();
    let x = plans[1].tasks[0].id.as_u128();
    assert_eq!(tree.path(z), Some(vec![plans[1].id.as_u128(), x, z]));

    plans.push(plan(3, &[("only", &[])]));
    tree.refresh(&plans, 3);
    // The new plan is opened, and the first selection stays on the plan chosen first.
    assert!(tree.opened().contains(&vec![plans[2].id.as_u128()]));
    assert_eq!(tree.selected(), [plans[1].id.as_u128()]);
    let only = plans[2].tasks[0].id.as_u128();
    assert_eq!(tree.path(only), Some(vec![plans[2].id.as_u128(), only]));
}

/// Two plans submitted from one file share a name: each reads as the name its branches take
/// (`p-2`), so they read apart; a plan alone keeps its name.
#[test]
fn plans_of_one_name_read_apart_by_their_branches_name() {
    let theme = theme();
    let mut plans = plans();
    for (plan, key) in plans.iter_mut().zip(["plan", "plan-2"]) {
        plan.name = "plan".into();
        plan.key = key.into();
    }
    let mut tree = TaskTree::default();
    tree.refresh(&plans, 1);
    let titles: Vec<String> = tree
        .window(Rect::new(0, 0, 40, 20), &plans, &theme)
        .iter()
        .filter(|row| row.depth == 0)
        .map(|row| row.label.spans[0].content.to_string())
        .collect();
    assert_eq!(titles, ["plan-2", "plan"]);
    plans.pop();
    tree.refresh(&plans, 2);
    let rows = tree.window(Rect::new(0, 0, 40, 20), &plans, &theme);
    assert_eq!(rows[0].label.spans[0].content, "plan");
}
