//! The `?` overlay: every key (from the keymap, so it cannot disagree with the keys) and every
//! `:` command. Two columns of keys where the screen is wide enough; scrolled with the movement
//! keys when it is still taller than the screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{centered, popup_block};
use crate::tui::app::App;
use crate::tui::palette::{self, COMMANDS};
use crate::tui::theme::Theme;

/// Widest keys (`ctrl-d/pgdn`) and description (`open the selected session's detail`).
const KEYS: usize = 12;
const WHAT: usize = 34;
/// Two columns of keys need this many columns on screen.
const TWO_COLUMNS: u16 = 2 * (KEYS + 2 + WHAT) as u16 + 4;

pub(crate) fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    let theme = &app.theme;
    let wide = area.width >= TWO_COLUMNS;
    let keys = app.keymap.help();
    let mut lines = vec![Line::styled("Keys", theme.title)];
    if wide {
        let half = keys.len().div_ceil(2);
        for (i, left) in keys.iter().take(half).enumerate() {
            let mut spans = key(theme, left);
            if let Some(right) = keys.get(i + half) {
                spans.push(Span::raw("  "));
                spans.extend(key(theme, right));
            }
            lines.push(Line::from(spans));
        }
    } else {
        lines.extend(keys.iter().map(|k| Line::from(key(theme, k))));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Commands (after :)", theme.title));
    for command in COMMANDS {
        let (usage, what) = (command.usage(), command.what);
        if wide {
            lines.push(Line::from(vec![
                Span::styled(format!("  {usage:<38}"), theme.accent),
                Span::raw(what),
            ]));
        } else {
            lines.push(Line::styled(format!("  {usage}"), theme.accent));
            lines.push(Line::raw(format!("      {what}")));
        }
    }

    let width = if wide { TWO_COLUMNS - 2 } else { 78 };
    let popup = centered(area, width, lines.len() as u16 + 2);
    let shown = usize::from(popup.height.saturating_sub(2));
    let most = lines.len().saturating_sub(shown);
    app.panes.help_scroll = app.panes.help_scroll.min(most);
    let title = if most > 0 {
        format!(
            "help · j/k scroll · line {}/{}",
            app.panes.help_scroll + 1,
            most + 1
        )
    } else {
        "help".to_string()
    };
    let scroll = u16::try_from(app.panes.help_scroll).unwrap_or(u16::MAX);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            // How to close it on the bottom border: a line more for the help itself.
            .block(popup_block(app, &title).title_bottom(Span::styled(
                " esc (any key but the movement keys) closes this ",
                app.theme.muted,
            )))
            .style(app.theme.base),
        popup,
    );
}

/// The commands the palette's line may become (all of them on an empty line), in a box at the
/// bottom of `area`, just above the command line.
pub(crate) fn draw_commands(frame: &mut Frame, app: &App, line: &str, area: Rect) {
    let theme = &app.theme;
    let found = palette::matching(line);
    let usage = found.iter().map(|c| c.usage().len()).max().unwrap_or(0);
    let mut lines: Vec<Line> = found
        .iter()
        .map(|c| {
            Line::from(vec![
                Span::styled(format!("{:<usage$}  ", c.usage()), theme.accent),
                Span::styled(c.what, theme.base),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            format!("no command starts with {:?}", line.trim()),
            theme.muted,
        ));
    }
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 4;
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = width.min(area.width);
    let popup = Rect {
        x: area.x,
        y: area.y + area.height - height,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(app, "commands · tab completes"))
            .style(theme.base),
        popup,
    );
}

fn key<'a>(theme: &Theme, (keys, what): &(String, &'static str)) -> Vec<Span<'a>> {
    vec![
        Span::styled(format!("{keys:>KEYS$}  "), theme.accent),
        Span::raw(format!("{what:<WHAT$}")),
    ]
}
