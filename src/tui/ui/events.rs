//! The events pane: the live control log, newest at the bottom, coloured by what it is about.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{block, clock};
use crate::tui::app::{App, Pane};

pub fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    let log = &app.view.log;
    let scroll = app.panes.events_scroll;
    let mut title = format!("events {}", log.len());
    if scroll > 0 {
        title.push_str(&format!(" · {scroll} back"));
    }
    let block = block(app, Pane::Events, title);
    let height = usize::from(block.inner(area).height);
    let end = log.len().saturating_sub(scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = log
        .range(start..end)
        .map(|line| {
            let tone = match line.tone.as_str() {
                "plan" | "engine" => app.theme.info,
                other => app.theme.status(other),
            };
            Line::from(vec![
                Span::styled(format!("{} ", clock(line.at, &app.zone)), app.theme.muted),
                Span::styled(line.text.clone(), tone),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
