//! `/` beyond the visible columns: while the sessions filter is typed, its text is also
//! searched in the engine's index (session titles, control-log events, transcripts) once it
//! rests for a tick; the results show over the panes, Down/Up pick one and Enter opens that
//! session's detail (scrolled to the matching transcript line once the transcript shows it). Enter with none picked keeps the plain filter, as before.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Effect, Mode, Request};
use crate::store::Found;

/// Most results asked for.
pub(crate) const LIMIT: usize = 30;

/// What `/` found.
#[derive(Debug, Default)]
pub struct SearchState {
    /// The text last asked for.
    pub(crate) asked: String,
    /// The results for `asked` (or why there are none); `None` while none came.
    pub(crate) found: Option<Result<Vec<Found>, String>>,
    /// The result picked with Down/Up.
    pub(crate) picked: Option<usize>,
    /// A search is under way.
    fetching: bool,
}

impl SearchState {
    fn results(&self) -> usize {
        match &self.found {
            Some(Ok(found)) => found.len(),
            _ => 0,
        }
    }

    /// The results to show for the filter's `text`: only those of that very text.
    pub(crate) fn shown(&self, text: &str) -> Option<&Result<Vec<Found>, String>> {
        (self.asked == text.trim() && !text.trim().is_empty())
            .then_some(self.found.as_ref())
            .flatten()
    }
}

impl App {
    /// About once a second while the filter is typed: search its text when it changed (one
    /// search at a time), so typing fast asks once.
    pub(crate) fn search_tick(&mut self) -> Option<Effect> {
        let text = self.panes.filter.trim().to_string();
        let state = &mut self.search;
        let due = matches!(self.mode, Mode::Filter)
            && !state.fetching
            && text != state.asked
            && !crate::store::search::words(&text).is_empty();
        if !due {
            return None;
        }
        state.fetching = true;
        state.asked = text.clone();
        state.found = None;
        state.picked = None;
        Some(Effect::Request(Request::Search(text)))
    }

    /// Results arrived: kept when they are for the text asked last.
    pub(crate) fn on_found(&mut self, text: String, found: Result<Vec<Found>, String>) {
        self.search.fetching = false;
        if text == self.search.asked {
            self.search.found = Some(found);
            self.search.picked = None;
            self.view.generation += 1;
        }
    }

    /// A key for the results while the filter is typed: Down/Up pick, Enter on a pick opens
    /// its session. `None`: the key is the filter's.
    pub(crate) fn search_key(&mut self, key: &KeyEvent) -> Option<Vec<Effect>> {
        self.search.shown(&self.panes.filter)?;
        let results = self.search.results();
        let state = &mut self.search;
        match key.code {
            KeyCode::Down if results > 0 => {
                state.picked = Some(state.picked.map_or(0, |p| (p + 1).min(results - 1)));
            }
            KeyCode::Up => state.picked = state.picked.and_then(|p| p.checked_sub(1)),
            KeyCode::Enter => return self.jump(),
            _ => return None,
        }
        self.view.generation += 1;
        Some(Vec::new())
    }

    /// Opens the picked result's session (the filter cleared, so it shows in the list
    /// behind); a task's events have no session to open: the filter stays on its key.
    fn jump(&mut self) -> Option<Vec<Effect>> {
        let picked = self.search.picked?;
        let Some(Ok(found)) = &self.search.found else {
            return None;
        };
        let hit = found.get(picked)?.clone();
        self.search = SearchState::default();
        let Some(session) = hit.session else {
            self.panes.filter = hit.title;
            self.mode = Mode::Normal;
            return Some(Vec::new());
        };
        self.panes.filter.clear();
        self.panes.sessions = Default::default();
        let effects = self.open_session(session);
        if let crate::store::search::Place::Transcript(_) = hit.place {
            self.panes.detail_find = Some(hit.line);
        }
        Some(effects)
    }
}
