//! The events pane: the live control log, newest at the bottom, coloured by what it is about.
//! Focused, it folds long lines so each can be read whole; otherwise a line is cut at the edge.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::widths::Want;
use super::{block, clock};

/// The time of day before each line, and the space after it.
const CLOCK: usize = 9;

/// The pane shows its longest line whole (up to a hundred characters), and keeps room for a
/// few words after the time. Only the newest `rows` lines count, those that can be on
/// screen: a long line scrolled away long ago held width the approvals beside needed.
pub(crate) fn want(app: &App, rows: usize) -> Want {
    let log = &app.view.log;
    let widest = log
        .iter()
        .skip(log.len().saturating_sub(rows))
        .map(|l| l.text.chars().count())
        .max()
        .unwrap_or(0);
    Want::text(CLOCK + widest.min(100), (CLOCK + 24 + 2) as u16)
}
use crate::tui::app::{App, Pane};

pub(crate) fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    // Scrolled back at most until the oldest event is at the top of a full pane (the window
    // may have grown since the last key).
    let height = usize::from(area.height.saturating_sub(2));
    app.panes.events_page = height;
    let most = app.view.log.len().saturating_sub(height);
    app.panes.events_scroll = app.panes.events_scroll.min(most);
    let log = &app.view.log;
    let scroll = app.panes.events_scroll;
    let mut title = format!("events {}", log.len());
    if scroll > 0 {
        title.push_str(&format!(" · {scroll} back"));
    }
    let block = block(app, Pane::Events, title);
    let end = log.len().saturating_sub(scroll);
    let styled = |line: &crate::tui::view::LogLine| {
        let tone = match line.tone.as_str() {
            "plan" | "engine" => app.theme.info,
            other => app.theme.status(other),
        };
        Line::from(vec![
            Span::styled(format!("{} ", clock(line.at, &app.zone)), app.theme.muted),
            Span::styled(line.text.clone(), tone),
        ])
    };
    if app.focus != Pane::Events {
        let start = end.saturating_sub(height);
        let lines: Vec<Line> = log.range(start..end).map(styled).collect();
        frame.render_widget(Paragraph::new(lines).block(block), area);
        return;
    }
    // Folded under the clock, newest last: lines from the end until the pane is full.
    let width = usize::from(area.width.saturating_sub(2));
    let mut rows: Vec<Line> = Vec::new();
    for line in log.range(..end).rev() {
        if rows.len() >= height {
            break;
        }
        let mut folded = super::wrap::wrap(styled(line), width, CLOCK);
        folded.append(&mut rows);
        rows = folded;
    }
    // The oldest line's first rows give way when it does not fit whole.
    let hidden = rows.len().saturating_sub(height);
    let rows = rows.split_off(hidden);
    frame.render_widget(Paragraph::new(rows).block(block), area);
}
