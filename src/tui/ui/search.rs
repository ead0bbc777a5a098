//! The results of `/` over the panes while the filter is typed: a line per session (or task)
//! that has every word, newest first: when, whose, where the words are, and the line there.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{centered, popup_block};
use crate::store::Found;
use crate::store::search::Place;
use crate::tui::app::App;

pub(crate) fn draw(frame: &mut Frame, app: &App, found: &Result<Vec<Found>, String>, area: Rect) {
    let theme = &app.theme;
    let mut lines = Vec::new();
    let title = match found {
        Err(why) => {
            lines.push(Line::styled(format!("cannot search: {why}"), theme.muted));
            "search".to_string()
        }
        Ok(found) if found.is_empty() => {
            lines.push(Line::styled(
                "no session, event or transcript has every word",
                theme.muted,
            ));
            "search · nothing found".to_string()
        }
        Ok(found) => {
            for (i, hit) in found.iter().enumerate() {
                let picked = app.search.picked == Some(i);
                lines.extend(result(app, hit, picked));
            }
            format!("search · {} found · ↓↑ pick · enter open", found.len())
        }
    };
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = centered(area, area.width.saturating_sub(4).min(110), height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(app, &title))
            .style(theme.base),
        popup,
    );
}

/// Two lines: when, whose and where; then the line that matched.
fn result<'a>(app: &App, hit: &'a Found, picked: bool) -> [Line<'a>; 2] {
    let theme = &app.theme;
    let who = match (hit.session, hit.task) {
        (Some(session), _) => session.short(),
        (None, Some(task)) => format!("task {}", task.short()),
        (None, None) => String::new(),
    };
    let place = match hit.place {
        Place::Title => "title".to_string(),
        Place::Event(seq) => format!("event #{seq}"),
        Place::Transcript(seq) => format!("transcript #{seq}"),
    };
    let when = app.zone.to_datetime(hit.at).strftime("%m-%d %H:%M");
    let style = if picked { theme.selected } else { theme.base };
    let head = Line::from(vec![
        Span::styled(format!("{} ", if picked { '>' } else { ' ' }), theme.accent),
        Span::styled(format!("{when}  "), theme.muted),
        Span::styled(format!("{who}  "), theme.accent),
        Span::styled(hit.title.clone(), style),
        Span::styled(format!("  [{place}]"), theme.muted),
    ]);
    let line = Line::styled(format!("    {}", hit.line), theme.muted);
    [head, line]
}
