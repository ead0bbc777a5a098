//! The room while no agent exists: `n` (and `:prompt`) say that nothing could run a task and
//! how to add an agent, and `m` adds a managed local one when `opencode` is on PATH, or says
//! why it cannot.

use super::app::{App, Effect};
use super::keymap::Action;

/// The first-run offer of a managed local agent (`m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalOffer {
    /// `opencode` is not on PATH, agents are configured, or this room is attached elsewhere.
    Unavailable,
    /// `m` adds one.
    Offered,
    /// `m` was pressed: the engine is adding it.
    Adding,
}

impl App {
    /// With the engine's view in and no agent in it, say so (and how to add one): a task
    /// submitted now could only be refused. (With a fleet configured it waits for a member.)
    pub(super) fn no_agents(&mut self) -> bool {
        if !self.view.loaded || !self.view.agents.is_empty() || !self.view.fleets.is_empty() {
            return false;
        }
        let text = if self.local == LocalOffer::Offered {
            format!(
                "no agents configured; press {} to add a local one, or add an [[agents]] entry",
                self.keymap.keys(Action::AddLocal)
            )
        } else {
            "no agents configured; add an [[agents]] entry (the sessions pane shows how)".into()
        };
        self.toast(text, true);
        true
    }

    /// `m`: add the offered local agent, or say why there is none to add.
    pub(super) fn add_local(&mut self) -> Vec<Effect> {
        let key = self.keymap.keys(Action::AddLocal);
        let (text, error) = match self.local {
            _ if !self.view.agents.is_empty() || !self.view.fleets.is_empty() => (
                format!(
                    "{key} adds a local agent only while none is configured; add more as [[agents]]"
                ),
                false,
            ),
            LocalOffer::Offered => {
                self.local = LocalOffer::Adding;
                self.toast("starting a managed local opencode server…".into(), false);
                return vec![Effect::AddLocalAgent];
            }
            LocalOffer::Adding => (
                "the local agent is being added; if it does not come up, see the events".into(),
                false,
            ),
            _ if self.attached.is_some() => (
                "attached to another engine: add agents to that engine's config".into(),
                true,
            ),
            _ if !self.view.loaded => ("waiting for the engine".into(), false),
            LocalOffer::Unavailable => (
                format!(
                    "no opencode on PATH: install it (`{}`), then restart ocio",
                    crate::opencode::INSTALL_OPENCODE
                ),
                true,
            ),
        };
        self.toast(text, error);
        Vec::new()
    }
}
