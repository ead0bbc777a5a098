//! What the room asks before it acts for good: quitting while sessions run, cancelling a task
//! (its running session is stopped), and landing a plan on its base branch. `y` or enter goes
//! ahead; any other key does not.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Effect, Mode, Request};
use crate::domain::TaskId;

impl App {
    /// Quitting the room that hosts the engine stops it: asked first while sessions run or
    /// other rooms are attached (they lose their engine).
    pub(super) fn ask_quit(&mut self) -> Vec<Effect> {
        // This room is one of those following the engine.
        let rooms = self
            .rooms
            .as_ref()
            .map_or(0, |r| r.count().saturating_sub(1));
        if (self.view.running() > 0 || rooms > 0) && self.attached.is_none() {
            self.mode = Mode::ConfirmQuit { rooms };
            Vec::new()
        } else {
            self.quit = true;
            vec![Effect::Quit]
        }
    }

    /// Ask before cancelling `task`; the answer goes back to the mode it was asked from.
    pub(super) fn ask_cancel(&mut self, task: TaskId, name: String) {
        let back = Box::new(std::mem::replace(&mut self.mode, Mode::Normal));
        self.mode = Mode::ConfirmCancel { task, name, back };
    }

    /// Ask before landing `plan` on its base branch; the answer goes back to the mode it was
    /// asked from.
    pub(super) fn ask_budget_cancel(&mut self, plan: crate::domain::PlanId, name: String) {
        let back = Box::new(std::mem::replace(&mut self.mode, Mode::Normal));
        self.mode = Mode::ConfirmBudgetCancel { plan, name, back };
    }

    pub(super) fn ask_land(&mut self, plan: crate::domain::PlanId, name: String) {
        let back = Box::new(std::mem::replace(&mut self.mode, Mode::Normal));
        self.mode = Mode::ConfirmLand { plan, name, back };
    }

    /// A key while a question is open.
    pub(super) fn confirm_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let yes = matches!(
            key.code,
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter
        );
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::ConfirmQuit { .. } if yes => {
                self.quit = true;
                vec![Effect::Quit]
            }
            Mode::ConfirmCancel { task, name, back } => {
                self.mode = *back;
                if yes {
                    vec![Effect::Request(Request::Cancel(task, name))]
                } else {
                    self.toast(format!("{name} not cancelled"), false);
                    Vec::new()
                }
            }
            Mode::ConfirmBudgetCancel { plan, name, back } => {
                self.mode = *back;
                if yes {
                    let (target, then) = (
                        crate::engine::BudgetTarget::Plan,
                        crate::engine::BudgetThen::Cancel,
                    );
                    vec![Effect::Request(Request::Budget(
                        plan, name, target, None, then,
                    ))]
                } else {
                    self.toast(format!("{name} stays paused over budget"), false);
                    Vec::new()
                }
            }
            Mode::ConfirmLand { plan, name, back } => {
                self.mode = *back;
                if yes {
                    vec![Effect::Request(Request::Land(plan, name))]
                } else {
                    self.toast(format!("{name} not landed"), false);
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }
}
