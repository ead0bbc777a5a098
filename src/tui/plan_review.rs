//! The plan review view's state and keys: which plan, its review as the engine last gave it,
//! the file under the cursor, whether that file's diff is shown and how far it is scrolled.
//! Space marks the file reviewed (or not) and fetches the review again; events about the plan
//! fetch it again too.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Effect, Mode, Request};
use super::keymap::Action;
use crate::domain::review::{PlanReview, Reviewed};
use crate::domain::{PlanId, Transition};
use crate::engine::{EngineEvent, Told};

/// What the plan view shows.
#[derive(Debug, Default)]
pub struct PlanReviewState {
    pub(crate) plan: Option<PlanId>,
    /// The newest review of `plan` (or why there is none); `None` while it is fetched.
    pub(crate) review: Option<Result<PlanReview, String>>,
    /// The file under the cursor.
    pub(crate) cursor: usize,
    /// The cursor's file's part of the combined diff is shown instead of the lists.
    pub(crate) diff: bool,
    /// Lines scrolled: of the diff when it is shown, else of the tasks section.
    pub(crate) scroll: usize,
}

impl PlanReviewState {
    fn files(&self) -> usize {
        match &self.review {
            Some(Ok(review)) => review.branch.as_ref().map_or(0, |b| b.files.len()),
            _ => 0,
        }
    }

    /// The path under the cursor and whether it is reviewed now.
    pub(crate) fn selected(&self) -> Option<(&str, Reviewed)> {
        let Some(Ok(review)) = &self.review else {
            return None;
        };
        let file = review.branch.as_ref()?.files.get(self.cursor)?;
        Some((file.path.as_str(), file.reviewed))
    }
}

impl App {
    /// The plan the selection is in: a plan or task row of the tasks pane, the selected
    /// session's plan, else the newest plan.
    pub(crate) fn selected_plan(&mut self) -> Option<PlanId> {
        let from_tree = self.panes.task_tree.selected().first().and_then(|ident| {
            self.view
                .plans
                .iter()
                .find(|p| p.id.as_u128() == *ident)
                .map(|p| p.id)
        });
        let from_session = self
            .panes
            .selected_session(&self.view)
            .and_then(|s| s.session.plan);
        match self.focus {
            super::app::Pane::Tasks => from_tree,
            super::app::Pane::Sessions => from_session,
            // The inbox: the selected row's plan (a conflict's, one paused over budget), else
            // the first plan paused over budget.
            super::app::Pane::Approvals => {
                match self.view.inbox().nth(self.panes.approvals.selected) {
                    Some(super::view::InboxRow::Held(p)) => Some(p.plan),
                    Some(super::view::InboxRow::Conflict(c)) => Some(c.plan),
                    _ => self.view.budgets.held().next().map(|p| p.plan),
                }
            }
            _ => None,
        }
        .or_else(|| self.view.plans.last().map(|p| p.id))
    }

    /// Open the review of `plan` and fetch it.
    pub(crate) fn open_plan_review(&mut self, plan: PlanId) -> Vec<Effect> {
        self.plan_review = PlanReviewState {
            plan: Some(plan),
            ..PlanReviewState::default()
        };
        self.mode = Mode::PlanReview(plan);
        vec![Effect::Request(Request::Review(plan))]
    }

    /// A review arrived: kept when it is of the plan shown.
    pub(crate) fn on_review(&mut self, plan: PlanId, review: Result<PlanReview, String>) {
        if self.plan_review.plan != Some(plan) {
            return;
        }
        self.plan_review.review = Some(review);
        let files = self.plan_review.files();
        self.plan_review.cursor = self.plan_review.cursor.min(files.saturating_sub(1));
        self.view.generation += 1;
    }

    /// An event about the plan shown (one of its tasks moved, merged, conflicted, the plan
    /// finished or landed) fetches its review again.
    pub(crate) fn review_after(&self, told: &Told) -> Option<Effect> {
        let Mode::PlanReview(plan) = self.mode else {
            return None;
        };
        let about = match &told.event {
            EngineEvent::Merged { plan: p, .. }
            | EngineEvent::OverBudget { plan: p, .. }
            | EngineEvent::BudgetResolved { plan: p, .. }
            | EngineEvent::MergeConflict { plan: p, .. }
            | EngineEvent::PlanLanded { plan: p, .. }
            | EngineEvent::PlanFinished { plan: p, .. } => *p == plan,
            EngineEvent::Transition(e) => match &e.transition {
                Transition::Task { id, .. } => self
                    .view
                    .plans
                    .iter()
                    .any(|p| p.id == plan && p.tasks.iter().any(|t| t.id == *id)),
                _ => false,
            },
            _ => false,
        };
        about.then_some(Effect::Request(Request::Review(plan)))
    }

    /// `C` (continue) or `X` (cancel) in the view of a plan paused over budget.
    fn settle_budget_key(&mut self, plan: PlanId, go_on: bool) -> Vec<Effect> {
        let Some(held) = self
            .view
            .budgets
            .plan(plan)
            .filter(|p| p.over_budget.is_some())
        else {
            self.toast("this plan is not paused over budget".into(), true);
            return Vec::new();
        };
        let name = self.view.plan_called(plan, &held.name).to_string();
        if !go_on {
            self.ask_budget_cancel(plan, name);
            return Vec::new();
        }
        let (target, then) = (
            crate::engine::BudgetTarget::Plan,
            crate::engine::BudgetThen::Continue,
        );
        vec![Effect::Request(Request::Budget(
            plan, name, target, None, then,
        ))]
    }

    /// Why plan `plan` cannot land now, as far as the room knows: it landed already, or tasks
    /// of it are still to run (the engine would refuse after the question).
    fn not_landable_now(&self, plan: PlanId, name: &str) -> Option<String> {
        let shown = self.view.plans.iter().find(|p| p.id == plan)?;
        if let Some(landing) = &shown.landing {
            let commit: String = landing.commit.chars().take(10).collect();
            return Some(format!(
                "{name} landed already on {} (at {commit})",
                landing.base
            ));
        }
        let busy: Vec<&str> = shown
            .tasks
            .iter()
            .filter(|t| t.status.has_work_to_come())
            .map(|t| t.key.as_str())
            .collect();
        (!busy.is_empty()).then(|| {
            format!(
                "{name} cannot land yet: {} still to run; land it when they are done",
                busy.join(", ")
            )
        })
    }

    /// A key in the plan view: space (like a checkbox, not configurable) marks the file.
    pub(crate) fn plan_review_key(&mut self, plan: PlanId, key: &KeyEvent) -> Vec<Effect> {
        let action = match key.code {
            KeyCode::Char(' ' | 'L' | 'C' | 'X') => None,
            _ => self.keymap.action(key),
        };
        if let KeyCode::Char(c @ ('C' | 'X')) = key.code {
            return self.settle_budget_key(plan, c == 'C');
        }
        if key.code == KeyCode::Char('L') {
            // Landing asks first; only a plan with a branch to land.
            if let Some(Ok(review)) = &self.plan_review.review
                && review.branch.is_some()
            {
                let name = self.view.plan_called(plan, &review.name).to_string();
                match self.not_landable_now(plan, &name) {
                    Some(why) => self.toast(why, false),
                    None => self.ask_land(plan, name),
                }
            } else {
                self.toast("this plan has no integration branch to land".into(), true);
            }
            return Vec::new();
        }
        let state = &mut self.plan_review;
        let files = state.files();
        match action {
            Some(Action::Back) if state.diff => {
                state.diff = false;
                state.scroll = 0;
            }
            Some(Action::Back) => self.mode = Mode::Normal,
            Some(Action::Quit) => return self.ask_quit(),
            Some(Action::Palette) => self.open_palette(),
            Some(Action::Open) if files > 0 => {
                state.diff = !state.diff;
                state.scroll = 0;
            }
            None if key.code == KeyCode::Char(' ') => {
                let Some((path, reviewed)) = state.selected() else {
                    return Vec::new();
                };
                let mark = reviewed != Reviewed::Yes;
                let request = Request::MarkReviewed(plan, path.to_string(), mark);
                return vec![Effect::Request(request)];
            }
            Some(action) if state.diff => {
                state.scroll = scrolled(state.scroll, action, 20);
            }
            Some(Action::Up) => state.cursor = state.cursor.saturating_sub(1),
            Some(Action::Down) => state.cursor = (state.cursor + 1).min(files.saturating_sub(1)),
            Some(Action::Top) => state.cursor = 0,
            Some(Action::Bottom) => state.cursor = files.saturating_sub(1),
            Some(action @ (Action::PageUp | Action::PageDown)) => {
                state.scroll = scrolled(state.scroll, action, 5);
            }
            _ => {}
        }
        self.view.generation += 1;
        Vec::new()
    }
}

/// A scroll position moved by a line or `page` lines for `action`.
fn scrolled(scroll: usize, action: Action, page: usize) -> usize {
    match action {
        Action::Up => scroll.saturating_sub(1),
        Action::Down => scroll.saturating_add(1),
        Action::PageUp => scroll.saturating_sub(page),
        Action::PageDown => scroll.saturating_add(page),
        Action::Top => 0,
        _ => scroll,
    }
}
