//! Drawing the task tree: which rows are on screen, and those rows only, labelled from the plans
//! as they are, drawn as `tui_tree_widget`'s `Tree` drew them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Text;
use ratatui::widgets::Widget;

use super::{Shown, TaskTree};
use crate::engine::view::PlanView;
use crate::tui::theme::Theme;

impl TaskTree {
    /// Draw the rows on screen in `area`: indented two columns a level, an open, closed or
    /// no-children symbol, the label; the selected row in `highlight`.
    pub(crate) fn render(
        &mut self,
        area: Rect,
        buf: &mut Buffer,
        plans: &[PlanView],
        theme: &Theme,
        highlight: Style,
    ) {
        for row in self.window(area, plans, theme) {
            let line = Rect {
                y: row.y,
                height: 1,
                ..area
            };
            let indent = row.depth * 2;
            let (x, _) = buf.set_stringn(area.x, row.y, " ".repeat(indent), indent, Style::new());
            let symbol = match row.open {
                None => "  ",
                Some(true) => "▾ ",
                Some(false) => "▸ ",
            };
            let room = area.width.saturating_sub(x - area.x);
            let (x, _) = buf.set_stringn(x, row.y, symbol, usize::from(room), Style::new());
            let text = Rect {
                x,
                width: area.width.saturating_sub(x - area.x),
                ..line
            };
            Text::from(row.label).render(text, buf);
            if row.selected {
                buf.set_style(line, highlight);
            }
        }
    }

    /// The rows a frame draws in `area`, labelled from `plans`: from the scroll offset (kept
    /// so the last row stays visible, and moved to show the selection when it was chosen since
    /// the last draw) to the bottom of the area. Only these rows are labelled.
    pub(super) fn window(&mut self, area: Rect, plans: &[PlanView], theme: &Theme) -> Vec<Shown> {
        self.last_area = area;
        self.rendered.clear();
        if area.width < 1 || area.height < 1 {
            return Vec::new();
        }
        if self.rows_stale {
            self.rows = self.flatten();
            self.rows_stale = false;
        }
        let Some(last) = self.rows.len().checked_sub(1) else {
            return Vec::new();
        };
        let height = usize::from(area.height);
        let show = if self.show_selected {
            self.selected_row()
        } else {
            None
        };
        let mut start = self.offset.min(last);
        if let Some(show) = show {
            start = start.min(show);
        }
        let mut end = (start + height).min(self.rows.len());
        if let Some(show) = show
            && show >= end
        {
            end = show + 1;
            start = end.saturating_sub(height);
        }
        self.offset = start;
        self.show_selected = false;
        let selected = self.node_at(&self.selected);
        let mut shown = Vec::with_capacity(end - start);
        for (line, n) in self.rows[start..end].iter().enumerate() {
            let Some(node) = self.nodes.get(*n) else {
                continue;
            };
            let y = area
                .y
                .saturating_add(u16::try_from(line).unwrap_or(u16::MAX));
            // An open item's first child is the next row; a closed one's subtree is skipped.
            let open = self.rows.get(start + line + 1) == Some(&(n + 1));
            shown.push(Shown {
                y,
                depth: node.depth,
                open: (node.end > n + 1).then_some(open),
                selected: selected == Some(*n),
                label: self.label(node, plans, theme),
            });
            self.rendered.push((y, *n));
        }
        shown
    }
}
