//! The `?` overlay: every key (from the keymap, so it cannot disagree with the keys) and every
//! `:` command. Its columns are as wide as what they hold: two columns of keys where each
//! leaves a readable width for what they do, descriptions wrapped where that is narrow, never
//! cut; scrolled with the movement keys when it is still taller than the screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{centered, popup_block};
use crate::tui::app::App;
use crate::tui::palette::{self, COMMANDS};
use crate::tui::theme::Theme;

/// Between keys and what they do, and between two columns of keys.
const GAP: usize = 2;
/// Commands are indented this much, and a description under its command this much more.
const INDENT: usize = 2;
const UNDER: usize = 4;
/// Narrower than this a description does not wrap beside its keys but under them.
const NARROWEST: usize = 12;
/// Keys go in two columns where each leaves at least this much for what they do.
const READABLE: usize = 28;

pub(crate) fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    let room = usize::from(area.width.saturating_sub(2));
    let lines = lines(&app.theme, &app.keymap.help(), room);
    // As wide as its widest line: the lines were made to fit the room.
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = u16::try_from(widest + 2).unwrap_or(u16::MAX);
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

/// The help's lines, none wider than `room`: keys in two columns where each has a readable
/// width, else one, descriptions wrapped where they are too long; then the commands.
fn lines(theme: &Theme, keys: &[(String, &'static str)], room: usize) -> Vec<Line<'static>> {
    let width = |s: &str| s.chars().count();
    let keys_width = keys.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let what_width = keys.iter().map(|(_, w)| width(w)).max().unwrap_or(0);
    let entry = keys_width + GAP + what_width;
    // Two columns wherever each keeps a readable width for what keys do (wrapped if need
    // be): the help stays one screen high on a common terminal.
    let column = (room.saturating_sub(GAP) / 2).min(entry);
    let mut lines = vec![Line::styled("Keys", theme.title)];
    if column >= keys_width + GAP + READABLE {
        let half = keys.len().div_ceil(2);
        for (i, (keys_left, what_left)) in keys.iter().take(half).enumerate() {
            let left = wrapped(theme, keys_left, what_left, keys_width, column);
            let right = keys
                .get(i + half)
                .map_or_else(Vec::new, |(k, w)| wrapped(theme, k, w, keys_width, column));
            for row in 0..left.len().max(right.len()) {
                let mut spans = left.get(row).map_or_else(Vec::new, |l| l.spans.clone());
                if let Some(line) = right.get(row) {
                    let used: usize = spans.iter().map(Span::width).sum();
                    spans.push(Span::raw(" ".repeat(column + GAP - used)));
                    spans.extend(line.spans.clone());
                }
                lines.push(Line::from(spans));
            }
        }
    } else {
        for (keys, what) in keys {
            lines.extend(wrapped(theme, keys, what, keys_width, room));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Commands (after :)", theme.title));
    lines.extend(command_lines(theme, room));
    lines
}

/// Each command and what it does: on one line where every one fits so, else what it does
/// under it, wrapped.
fn command_lines(theme: &Theme, room: usize) -> Vec<Line<'static>> {
    let usage_width = COMMANDS.iter().map(|c| c.usage().chars().count()).max();
    let what_width = COMMANDS.iter().map(|c| c.what.chars().count()).max();
    let (usage_width, what_width) = (usage_width.unwrap_or(0), what_width.unwrap_or(0));
    let one_line = INDENT + usage_width + GAP + what_width <= room;
    let mut lines = Vec::new();
    for command in COMMANDS {
        let usage = command.usage();
        if one_line {
            lines.push(Line::from(vec![
                Span::styled(format!("{:INDENT$}{usage:<usage_width$}", ""), theme.accent),
                Span::raw(format!("{:GAP$}{}", "", command.what)),
            ]));
            continue;
        }
        for part in wrap(&usage, room.saturating_sub(INDENT)) {
            lines.push(Line::styled(format!("{:INDENT$}{part}", ""), theme.accent));
        }
        let under = INDENT + UNDER;
        for part in wrap(command.what, room.saturating_sub(under)) {
            lines.push(Line::raw(format!("{:under$}{part}", "")));
        }
    }
    lines
}

/// One key's lines in one column of `room`: what it does beside the keys, wrapped; or under
/// them where the room beside is too narrow.
fn wrapped(
    theme: &Theme,
    keys: &str,
    what: &str,
    keys_width: usize,
    room: usize,
) -> Vec<Line<'static>> {
    let beside = room.saturating_sub(keys_width + GAP);
    if beside >= NARROWEST {
        return wrap(what, beside)
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let keys = if i == 0 { keys } else { "" };
                Line::from(vec![
                    Span::styled(format!("{keys:>keys_width$}{:GAP$}", ""), theme.accent),
                    Span::raw(part),
                ])
            })
            .collect();
    }
    let mut lines = vec![Line::styled(keys.to_string(), theme.accent)];
    lines.extend(
        wrap(what, room.saturating_sub(UNDER))
            .into_iter()
            .map(|part| Line::raw(format!("{:UNDER$}{part}", ""))),
    );
    lines
}

/// `text` in lines of at most `width` characters, broken between words (a word longer than a
/// line is broken where the line ends).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while !word.is_empty() {
            let used = line.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= width {
                if gap > 0 {
                    line.push(' ');
                }
                line.extend(word.drain(..));
            } else if used > 0 {
                lines.push(std::mem::take(&mut line));
            } else {
                line.extend(word.drain(..width.min(word.len())));
                lines.push(std::mem::take(&mut line));
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
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

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_breaks_between_words_and_inside_only_a_word_too_long() {
        assert_eq!(
            wrap("drain / undrain the agent", 10),
            ["drain /", "undrain", "the agent"]
        );
        assert_eq!(wrap("PLAN[/TASK]", 4), ["PLAN", "[/TA", "SK]"]);
        assert_eq!(wrap("", 4), [""]);
    }
}
