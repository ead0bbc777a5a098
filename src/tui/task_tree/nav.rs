//! The task tree's selection and opening: what `tui_tree_widget`'s `TreeState` did, over the
//! visible rows as last drawn.

use ratatui::layout::Position;

use super::TaskTree;

impl TaskTree {
    /// Select the item at `path` (empty: nothing), and scroll it into view on the next draw.
    pub(crate) fn select(&mut self, path: Vec<u128>) -> bool {
        self.show_selected = true;
        let changed = self.selected != path;
        self.selected = path;
        changed
    }

    fn open(&mut self, path: Vec<u128>) -> bool {
        let changed = !path.is_empty() && self.opened.insert(path);
        self.rows_stale |= changed;
        changed
    }

    fn close_selected(&mut self) -> bool {
        let changed = self.opened.remove(&self.selected);
        self.rows_stale |= changed;
        changed
    }

    /// Where the selection is among the rows as last drawn.
    pub(super) fn selected_row(&self) -> Option<usize> {
        let node = self.node_at(&self.selected)?;
        self.rows.binary_search(&node).ok()
    }

    /// Select the row `to` gives for the selection's row (`None`: nothing selected), at most
    /// the last; nothing when there is no such row.
    pub(crate) fn select_relative(&mut self, to: impl FnOnce(Option<usize>) -> usize) -> bool {
        let last = self.rows.len().saturating_sub(1);
        let row = to(self.selected_row()).min(last);
        let path = self
            .rows
            .get(row)
            .map(|n| self.path_of(*n))
            .unwrap_or_default();
        self.select(path)
    }

    pub(crate) fn key_up(&mut self) -> bool {
        self.select_relative(|at| at.map_or(usize::MAX, |at| at.saturating_sub(1)))
    }

    pub(crate) fn key_down(&mut self) -> bool {
        self.select_relative(|at| at.map_or(0, |at| at.saturating_add(1)))
    }

    pub(crate) fn select_first(&mut self) -> bool {
        let path = self.rows.first().map(|n| self.path_of(*n));
        self.select(path.unwrap_or_default())
    }

    pub(crate) fn select_last(&mut self) -> bool {
        let path = self.rows.last().map(|n| self.path_of(*n));
        self.select(path.unwrap_or_default())
    }

    /// Close the selection; if it was not open, select its parent.
    pub(crate) fn key_left(&mut self) -> bool {
        self.show_selected = true;
        self.close_selected() || self.selected.pop().is_some()
    }

    /// Open the selection.
    pub(crate) fn key_right(&mut self) -> bool {
        if self.selected.is_empty() {
            return false;
        }
        self.show_selected = true;
        self.open(self.selected.clone())
    }

    /// A click: select the row under `at`, or open or close it if it was selected.
    pub(crate) fn click_at(&mut self, at: Position) -> bool {
        let Some(path) = self.rendered_at(at) else {
            return false;
        };
        if path != self.selected {
            return self.select(path);
        }
        self.show_selected = true;
        self.close_selected() || self.open(path)
    }

    /// The path of the row drawn under `at`.
    fn rendered_at(&self, at: Position) -> Option<Vec<u128>> {
        if !self.last_area.contains(at) {
            return None;
        }
        self.rendered
            .iter()
            .rev()
            .find(|(y, _)| at.y >= *y)
            .map(|(_, n)| self.path_of(*n))
    }
}
