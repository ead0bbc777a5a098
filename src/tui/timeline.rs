//! The timeline view's state and keys: whose timeline (a plan's, or every plan's of the last
//! hours), lanes by agent or task, the zoom (seconds per column; fitted to the screen until
//! the operator zooms) and how far it is scrolled in time and in lanes. It is fetched again
//! while it is live (something runs) and after transitions, at most once a tick.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Effect, Mode, Request};
use super::keymap::Action;
use crate::domain::PlanId;
use crate::engine::{EngineEvent, Told};
use crate::timeline::{LaneBy, Timeline};

/// What the timeline view shows.
#[derive(Debug, Default)]
pub struct TimelineState {
    /// The plan; `None`: every plan.
    pub(crate) plan: Option<PlanId>,
    pub(crate) by: LaneBy,
    /// The newest timeline (or why there is none); `None` while it is fetched.
    pub(crate) data: Option<Result<Timeline, String>>,
    /// Seconds per column; `None`: the whole timeline fits the width.
    pub(crate) zoom: Option<f64>,
    /// Seconds from the timeline's start at the left edge, when zoomed.
    pub(crate) offset: f64,
    /// The first lane row shown.
    pub(crate) scroll: usize,
    /// Columns of bars at the last draw (what zoom and scroll steps are measured in).
    pub(crate) columns: u16,
    /// Transitions came since it was fetched.
    stale: bool,
    /// A fetch is under way.
    fetching: bool,
    /// The plan `e` goes back to from every plan's timeline.
    back_to: Option<PlanId>,
}

impl TimelineState {
    /// Seconds per column for `columns` columns of bars.
    pub(crate) fn seconds_per_column(&self, columns: u16) -> f64 {
        let fit = match &self.data {
            Some(Ok(t)) => {
                t.to.duration_since(t.from).as_secs_f64().max(1.0) / f64::from(columns.max(1))
            }
            _ => 1.0,
        };
        self.zoom.unwrap_or(fit).clamp(0.05, fit.max(0.05))
    }

    fn request(&mut self) -> Effect {
        self.fetching = true;
        self.stale = false;
        Effect::Request(Request::Timeline(self.plan, self.by))
    }

    fn lanes(&self) -> usize {
        match &self.data {
            Some(Ok(t)) => t.lanes.iter().map(|l| l.tracks).sum(),
            _ => 0,
        }
    }
}

impl App {
    /// Open the timeline of `plan` (`None`: every plan) and fetch it.
    pub(crate) fn open_timeline(&mut self, plan: Option<PlanId>) -> Vec<Effect> {
        self.timeline = TimelineState {
            plan,
            by: self.timeline.by,
            ..TimelineState::default()
        };
        self.mode = Mode::Timeline;
        vec![self.timeline.request()]
    }

    /// A timeline arrived: kept when it is of what is shown.
    pub(crate) fn on_timeline(&mut self, plan: Option<PlanId>, timeline: Result<Timeline, String>) {
        let state = &mut self.timeline;
        state.fetching = false;
        if state.plan != plan || !matches!(self.mode, Mode::Timeline) {
            return;
        }
        state.data = Some(timeline);
        state.scroll = state.scroll.min(state.lanes().saturating_sub(1));
        self.view.generation += 1;
    }

    /// A transition while the timeline shows: fetched again at the next tick.
    pub(crate) fn timeline_after(&mut self, told: &Told) {
        if matches!(self.mode, Mode::Timeline) && matches!(told.event, EngineEvent::Transition(_)) {
            self.timeline.stale = true;
        }
    }

    /// About once a second: a live or stale timeline is fetched again (one fetch at a time).
    pub(crate) fn timeline_tick(&mut self) -> Option<Effect> {
        let state = &mut self.timeline;
        let live = matches!(&state.data, Some(Ok(t)) if t.live);
        let due = matches!(self.mode, Mode::Timeline) && (state.stale || live);
        (due && !state.fetching).then(|| state.request())
    }

    /// A key in the timeline view: `+`/`-` zoom, `0` fits, `b` switches lanes between agents
    /// and tasks, `e` between the plan and every plan (not configurable, like the review's
    /// space); the rest by the keymap.
    pub(crate) fn timeline_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        let state = &mut self.timeline;
        let per_column = state.seconds_per_column(state.columns);
        let page = per_column * f64::from(state.columns.max(4)) / 4.0;
        match key.code {
            KeyCode::Char('+' | '=') => state.zoom = Some(per_column / 2.0),
            KeyCode::Char('-') => state.zoom = Some(per_column * 2.0),
            KeyCode::Char('0') => {
                state.zoom = None;
                state.offset = 0.0;
            }
            KeyCode::Char('b') => {
                state.by = state.by.other();
                state.scroll = 0;
                return vec![state.request()];
            }
            KeyCode::Char('e') => {
                // Every plan's timeline, or back to the plan's.
                (state.plan, state.back_to) = match state.plan {
                    Some(plan) => (None, Some(plan)),
                    None => (state.back_to, None),
                };
                state.data = None;
                (state.zoom, state.offset, state.scroll) = (None, 0.0, 0);
                return vec![state.request()];
            }
            _ => match self.keymap.action(key) {
                Some(Action::Back) => self.mode = Mode::Normal,
                Some(Action::Quit) => return self.ask_quit(),
                Some(Action::Collapse) => state.offset = (state.offset - page).max(0.0),
                Some(Action::Expand) => state.offset += page,
                Some(Action::Up) => state.scroll = state.scroll.saturating_sub(1),
                Some(Action::Down) => {
                    state.scroll = (state.scroll + 1).min(state.lanes().saturating_sub(1));
                }
                Some(Action::Top) => state.offset = 0.0,
                _ => {}
            },
        }
        if state.zoom.is_none() {
            state.offset = 0.0;
        }
        self.view.generation += 1;
        Vec::new()
    }
}
