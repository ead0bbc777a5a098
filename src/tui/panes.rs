//! Where the operator is in each pane: cursors, the sessions' sort and filter (with the ordering
//! cached until the view changes), the task tree's state, and where panes were drawn.

use std::cmp::Reverse;

use ratatui::layout::{Position, Rect};

use super::app::Pane;
use super::keymap::Action;
use super::task_tree::TaskTree;
use super::view::{InboxKey, View};
use crate::domain::{Agent, Lifecycle, SessionStatus, TaskId};
use crate::engine::view::SessionView;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) selected: usize,
    /// First row drawn.
    pub(crate) offset: usize,
}

impl Cursor {
    fn step(&mut self, action: Action, len: usize, page: usize) {
        let last = len.saturating_sub(1);
        self.selected = match action {
            Action::Up => self.selected.saturating_sub(1),
            Action::Down => (self.selected + 1).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            Action::PageUp => self.selected.saturating_sub(page.max(1)),
            Action::PageDown => (self.selected + page.max(1)).min(last),
            _ => self.selected,
        };
    }

    /// Keep the selection inside `len` rows and visible in a window of `height` rows.
    pub(crate) fn fit(&mut self, len: usize, height: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if height > 0 && self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height.max(1)));
    }
}

/// The sessions table's order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sort {
    /// Running first, newest first (the engine's order).
    #[default]
    Newest,
    State,
    Task,
    Agent,
    Tokens,
}

impl Sort {
    pub(crate) fn next(self) -> Self {
        match self {
            Sort::Newest => Sort::State,
            Sort::State => Sort::Task,
            Sort::Task => Sort::Agent,
            Sort::Agent => Sort::Tokens,
            Sort::Tokens => Sort::Newest,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::State => "state",
            Sort::Task => "task",
            Sort::Agent => "agent",
            Sort::Tokens => "tokens",
        }
    }
}

/// What the sessions table measured of every session: the widest state, task, plan, agent
/// and age, and whether the sessions are of more than one plan (their rows then read apart
/// only by the plan's column).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionsMeasure {
    pub(crate) widest: [usize; 5],
    pub(crate) several_plans: bool,
}

#[derive(Default)]
pub struct Panes {
    pub(crate) sessions: Cursor,
    pub(crate) agents: Cursor,
    pub(crate) approvals: Cursor,
    /// What the approvals cursor is on (see [`Panes::follow_inbox`]).
    pub(crate) approvals_on: Option<InboxKey>,
    /// Lines up from the newest event (0: follow the newest); at most the events beyond one
    /// pane's height, so the pane is always full.
    pub(crate) events_scroll: usize,
    /// Rows the events pane showed last time.
    pub(crate) events_page: usize,
    pub(crate) detail_scroll: usize,
    /// A line the detail view scrolls to once its transcript shows it (a search's match).
    pub(crate) detail_find: Option<String>,
    /// The detail view shows the session's diff instead of its transcript.
    pub(crate) detail_diff: bool,
    /// First line of the help shown (when it is taller than the screen).
    pub(crate) help_scroll: usize,
    pub(crate) sort: Sort,
    pub(crate) filter: String,
    /// The task tree: its layout, selection, opened items and scrolling (identifiers are plan
    /// and task ids).
    pub(crate) task_tree: TaskTree,
    /// Dependency graph instead of the tree.
    pub graph: bool,
    /// Where each pane was last drawn.
    pub(crate) areas: Vec<(Pane, Rect)>,
    /// Rows the sessions table showed last time.
    pub(crate) page: usize,
    /// The sessions table's measures, and the `sessions_generation` they were taken at
    /// (measuring every session is not done on every frame).
    pub(crate) widest: Option<(u64, SessionsMeasure)>,
    /// The header's sessions by state, and the `sessions_generation` they were counted at.
    counts: Option<(u64, Vec<(SessionStatus, usize)>)>,
    order: Vec<usize>,
    order_built: Option<(u64, Sort, String)>,
}

impl Panes {
    /// The sessions table's rows (indices into `view.sessions`), filtered and sorted; cached
    /// until the view, sort or filter changes.
    pub(crate) fn order(&mut self, view: &View) -> &[usize] {
        let key = (view.generation, self.sort, self.filter.clone());
        if self.order_built.as_ref() != Some(&key) {
            let needle = self.filter.to_lowercase();
            let mut order: Vec<usize> = view
                .sessions
                .iter()
                .enumerate()
                .filter(|(_, s)| needle.is_empty() || matches(s, &needle))
                .map(|(i, _)| i)
                .collect();
            let s = &view.sessions;
            match self.sort {
                Sort::Newest => {}
                Sort::State => order.sort_by_key(|i| {
                    (
                        s[*i].session.status.is_terminal(),
                        s[*i].session.status.name(),
                    )
                }),
                Sort::Task => order.sort_by(|a, b| s[*a].session.title.cmp(&s[*b].session.title)),
                Sort::Agent => order.sort_by(|a, b| s[*a].session.agent.cmp(&s[*b].session.agent)),
                Sort::Tokens => order.sort_by_key(|i| Reverse(s[*i].session.usage.total_tokens())),
            }
            self.order = order;
            self.order_built = Some(key);
        }
        &self.order
    }

    /// The sessions by state, for the header ([`View::counts`]): counted again only when a
    /// session's state may have changed, not on every frame.
    pub(crate) fn counts(&mut self, view: &View) -> &[(SessionStatus, usize)] {
        let generation = view.sessions_generation;
        if self.counts.as_ref().map(|(g, _)| *g) != Some(generation) {
            self.counts = Some((generation, view.counts()));
        }
        self.counts.as_ref().map_or(&[], |(_, counts)| counts)
    }

    pub(crate) fn selected_session<'v>(&mut self, view: &'v View) -> Option<&'v SessionView> {
        let selected = self.sessions.selected;
        let index = *self.order(view).get(selected)?;
        view.sessions.get(index)
    }

    pub(crate) fn selected_agent<'v>(&self, view: &'v View) -> Option<&'v Agent> {
        view.agents.get(self.agents.selected)
    }

    /// Keep the approvals cursor on what it was on as rows come and go: the same request,
    /// conflict or plan; when that is gone, a request that was answered gives way to the
    /// nearest request left (the answer keys go on with the next), anything else to the row now
    /// in its place.
    pub(crate) fn follow_inbox(&mut self, view: &View) {
        let cursor = &mut self.approvals;
        let found = self
            .approvals_on
            .as_ref()
            .and_then(|on| view.inbox().position(|r| r.key() == *on));
        match (found, &self.approvals_on) {
            (Some(at), _) => cursor.selected = at,
            (None, Some(InboxKey::Request(_))) if !view.approvals.is_empty() => {
                cursor.selected = cursor.selected.min(view.approvals.len() - 1);
            }
            _ => {}
        }
        cursor.selected = cursor.selected.min(view.inbox_len().saturating_sub(1));
        self.approvals_on = view.inbox().nth(cursor.selected).map(|r| r.key());
    }

    /// The task selected in the tree (or graph): its id and `plan/task` name.
    pub(crate) fn selected_task(&self, view: &View) -> Option<(TaskId, String)> {
        let ident = self.task_tree.selected().last()?;
        view.task_named(|t| t.id.as_u128() == *ident)
    }

    pub fn move_cursor(&mut self, pane: Pane, action: Action, view: &View) {
        let page = self.page.max(1);
        match pane {
            Pane::Sessions => {
                let len = self.order(view).len();
                self.sessions.step(action, len, page);
            }
            Pane::Agents => self.agents.step(action, view.agents.len(), page),
            Pane::Approvals => {
                self.follow_inbox(view);
                self.approvals.step(action, view.inbox_len(), page);
                self.approvals_on = view.inbox().nth(self.approvals.selected).map(|r| r.key());
            }
            Pane::Events => {
                // The oldest event at the top of a full pane is as far back as it goes.
                let page = self.events_page.max(1);
                let most = view.log.len().saturating_sub(page);
                let scroll = self.events_scroll.min(most);
                self.events_scroll = match action {
                    Action::Up => (scroll + 1).min(most),
                    Action::Down => scroll.saturating_sub(1),
                    Action::PageUp => (scroll + page).min(most),
                    Action::PageDown => scroll.saturating_sub(page),
                    Action::Top => most,
                    _ => 0,
                };
            }
            Pane::Tasks if self.graph => self.graph_step(action, view),
            Pane::Tasks => {
                match action {
                    Action::Up => self.task_tree.key_up(),
                    Action::Down => self.task_tree.key_down(),
                    Action::Top => self.task_tree.select_first(),
                    Action::Bottom => self.task_tree.select_last(),
                    Action::PageUp => self
                        .task_tree
                        .select_relative(|c| c.map_or(0, |c| c.saturating_sub(page))),
                    Action::PageDown => self
                        .task_tree
                        .select_relative(|c| c.map_or(0, |c| c.saturating_add(page))),
                    _ => false,
                };
            }
        }
    }

    /// In the graph, the cursor walks the selected plan's tasks in topological order.
    fn graph_step(&mut self, action: Action, view: &View) {
        let Some(plan) = self.selected_plan(view) else {
            return;
        };
        let selected = self.task_tree.selected().last().copied();
        let at = plan
            .tasks
            .iter()
            .position(|t| Some(t.id.as_u128()) == selected);
        let last = plan.tasks.len().saturating_sub(1);
        let page = self.page.max(1);
        let next = match (action, at) {
            (_, None) => 0,
            (Action::Up, Some(i)) => i.saturating_sub(1),
            (Action::Down, Some(i)) => (i + 1).min(last),
            (Action::Top, _) => 0,
            (Action::Bottom, _) => last,
            (Action::PageUp, Some(i)) => i.saturating_sub(page),
            (Action::PageDown, Some(i)) => (i + page).min(last),
            (_, Some(i)) => i,
        };
        if let Some(path) = plan
            .tasks
            .get(next)
            .and_then(|t| self.task_tree.path(t.id.as_u128()))
        {
            self.task_tree.select(path);
        }
    }

    /// In the graph, left and right go to the layer before or after the selection's (the
    /// task at the same row, or the last of a shorter layer): how layers off screen are seen.
    fn graph_layer(&mut self, action: Action, view: &View) {
        let Some(plan) = self.selected_plan(view) else {
            return;
        };
        let depth = crate::tui::task_tree::depths(plan);
        let selected = self.task_tree.selected().last().copied();
        let at = plan
            .tasks
            .iter()
            .position(|t| Some(t.id.as_u128()) == selected);
        let depth = &depth;
        let layer = |d: usize| (0..plan.tasks.len()).filter(move |i| depth[*i] == d);
        let target = match at {
            None => Some(0),
            Some(i) => {
                let row = layer(depth[i]).position(|t| t == i).unwrap_or(0);
                let to = match action {
                    Action::Collapse => depth[i].checked_sub(1),
                    _ => Some(depth[i] + 1),
                };
                to.and_then(|d| layer(d).take(row + 1).last())
            }
        };
        if let Some(path) = target
            .and_then(|t| plan.tasks.get(t))
            .and_then(|t| self.task_tree.path(t.id.as_u128()))
        {
            self.task_tree.select(path);
        }
    }

    /// The plan of the tree's selection, else the newest plan.
    pub(crate) fn selected_plan<'v>(
        &self,
        view: &'v View,
    ) -> Option<&'v crate::engine::view::PlanView> {
        let root = self.task_tree.selected().first();
        root.and_then(|id| view.plans.iter().find(|p| p.id.as_u128() == *id))
            .or_else(|| view.plans.last())
    }

    pub(crate) fn tree_key(&mut self, action: Action, view: &View) {
        if self.graph {
            return self.graph_layer(action, view);
        }
        match action {
            Action::Collapse => self.task_tree.key_left(),
            _ => self.task_tree.key_right(),
        };
    }

    pub(crate) fn click(&mut self, pane: Pane, area: Rect, at: Position, view: &View) {
        // Tables: a border, then a header row.
        let row = usize::from(at.y.saturating_sub(area.y + 2));
        match pane {
            Pane::Sessions => {
                self.sessions.selected = self.sessions.offset + row;
                let len = self.order(view).len();
                self.sessions.fit(len, self.page);
            }
            Pane::Agents => {
                self.agents.selected =
                    (self.agents.offset + row).min(view.agents.len().saturating_sub(1));
            }
            Pane::Approvals => {
                self.approvals.selected =
                    (self.approvals.offset + row).min(view.inbox_len().saturating_sub(1));
                self.approvals_on = view.inbox().nth(self.approvals.selected).map(|r| r.key());
            }
            Pane::Tasks => {
                self.task_tree.click_at(at);
            }
            Pane::Events => {}
        }
    }
}

fn matches(s: &SessionView, needle: &str) -> bool {
    let session = &s.session;
    session.title.to_lowercase().contains(needle)
        || session.status.name().contains(needle)
        || session
            .agent
            .as_ref()
            .is_some_and(|a| a.as_str().to_lowercase().contains(needle))
        || s.last
            .as_ref()
            .is_some_and(|e| e.activity.summary().to_lowercase().contains(needle))
}
