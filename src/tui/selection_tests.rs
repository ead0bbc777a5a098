//! Selected rows stay legible: every state colour (and every other colour drawn on a selected
//! row) against the selection as it is drawn, in every built-in theme at every colour depth.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use super::app::{App, Msg, Pane};
use super::tests::{agent, app, key, session, snapshot};
use super::theme::{ColorDepth, Theme, contrast};
use crate::domain::{AgentStatus, Lifecycle, SessionStatus, TaskStatus};

/// WCAG 2 AA for normal text.
const MIN_CONTRAST: f64 = 4.5;

/// xterm's default values of the 16 ANSI colours, the yardstick for named colours.
fn named_rgb(color: Color) -> Option<(u8, u8, u8)> {
    Some(match color {
        Color::Black => (0, 0, 0),
        Color::Red => (205, 0, 0),
        Color::Green => (0, 205, 0),
        Color::Yellow => (205, 205, 0),
        Color::Blue => (0, 0, 238),
        Color::Magenta => (205, 0, 205),
        Color::Cyan => (0, 205, 205),
        Color::Gray => (229, 229, 229),
        Color::DarkGray => (127, 127, 127),
        Color::LightRed => (255, 0, 0),
        Color::LightGreen => (0, 255, 0),
        Color::LightYellow => (255, 255, 0),
        Color::LightBlue => (92, 92, 255),
        Color::LightMagenta => (255, 0, 255),
        Color::LightCyan => (0, 255, 255),
        Color::White => (255, 255, 255),
        _ => return None,
    })
}

/// A colour's RGB value; `None` for the terminal's default, whose value nobody knows.
fn rgb(color: Color) -> Option<(u8, u8, u8)> {
    match color {
        Color::Rgb(r, g, b) => Some((r, g, b)),
        Color::Indexed(i @ 0..=15) => named_rgb(ANSI_BY_INDEX[usize::from(i)]),
        Color::Indexed(i @ 16..=231) => {
            const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
            let i = usize::from(i - 16);
            Some((LEVELS[i / 36], LEVELS[(i / 6) % 6], LEVELS[i % 6]))
        }
        Color::Indexed(i) => {
            let v = 8 + 10 * (i - 232);
            Some((v, v, v))
        }
        other => named_rgb(other),
    }
}

const ANSI_BY_INDEX: [Color; 16] = [
    Color::Black,
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Gray,
    Color::DarkGray,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];

/// Named colours are whatever the terminal's palette makes them: a colour and its bright twin
/// may be the same there, so they never count as a contrast.
fn family(color: Color) -> Option<u8> {
    let index = ANSI_BY_INDEX.iter().position(|c| *c == color)?;
    Some((index % 8) as u8)
}

/// Why `fg` on `bg` cannot be read, if it cannot.
fn illegible(fg: Color, bg: Color) -> Option<String> {
    if family(fg).is_some() && family(fg) == family(bg) {
        return Some("the same ANSI colour family".into());
    }
    match (rgb(fg), rgb(bg)) {
        (Some(f), Some(b)) => {
            let ratio = contrast(f, b);
            (ratio < MIN_CONTRAST).then(|| format!("contrast {ratio:.2} < {MIN_CONTRAST}"))
        }
        _ => Some("the terminal's default colour (unknown) on a set colour".into()),
    }
}

/// Every session, task and agent state at once, and a full agent (its gauge is drawn in the
/// waiting-approval colour).
fn every_state() -> crate::engine::view::Snapshot {
    let mut snapshot = snapshot();
    snapshot.sessions = SessionStatus::ALL
        .iter()
        .enumerate()
        .map(|(i, status)| session(i as u128 + 1, "api", "coder-1", *status, 10 * i as i64))
        .collect();
    let template = snapshot.plans[0].tasks[0].clone();
    snapshot.plans[0].tasks = TaskStatus::ALL
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let mut task = template.clone();
            task.id = super::tests::tid(i as u128);
            task.key = format!("t-{}", status.name());
            task.status = *status;
            task
        })
        .collect();
    snapshot.agents = AgentStatus::ALL
        .iter()
        .enumerate()
        .map(|(i, status)| agent(&format!("agent-{i}"), *status, 1, 2))
        .chain([agent("full", AgentStatus::Online, 2, 2)])
        .collect();
    snapshot
}

fn buffer(app: &mut App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| super::ui::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

/// Illegible cells on the selection's background, as `what: fg on bg (why) in "row text"`.
fn check_selection(app: &mut App, place: &str, found: &mut Vec<String>) {
    let Some(bg) = app.theme.selected.bg else {
        return;
    };
    let screen = buffer(app, 160, 48);
    let area = screen.area;
    for y in area.top()..area.bottom() {
        let row: String = (area.left()..area.right())
            .map(|x| screen[(x, y)].symbol())
            .collect();
        for x in area.left()..area.right() {
            let cell = &screen[(x, y)];
            if cell.bg != bg || cell.symbol().trim().is_empty() {
                continue;
            }
            if let Some(why) = illegible(cell.fg, cell.bg) {
                let text = format!(
                    "{place}: {:?} on {:?} ({why}) in {:?}",
                    cell.fg,
                    cell.bg,
                    row.trim()
                );
                if !found.contains(&text) {
                    found.push(text);
                }
            }
        }
    }
}

#[test]
fn every_state_colour_is_legible_on_the_selection_in_every_built_in_theme() {
    let mut found = Vec::new();
    for name in Theme::available(None) {
        for depth in [
            ColorDepth::TrueColor,
            ColorDepth::Indexed256,
            ColorDepth::Ansi16,
        ] {
            let mut app = app();
            app.theme = Theme::load(&name, None, depth).unwrap();
            app.update(Msg::Snapshot(Box::new(every_state())));
            for pane in [Pane::Sessions, Pane::Agents, Pane::Approvals, Pane::Tasks] {
                app.focus = pane;
                key(&mut app, KeyCode::Char('g'));
                for row in 0..16 {
                    check_selection(
                        &mut app,
                        &format!("{name} {depth:?} {pane:?} row {row}"),
                        &mut found,
                    );
                    key(&mut app, KeyCode::Char('j'));
                }
            }
            // The dependency graph marks its selection too.
            key(&mut app, KeyCode::Char('v'));
            for row in 0..12 {
                check_selection(
                    &mut app,
                    &format!("{name} {depth:?} graph {row}"),
                    &mut found,
                );
                key(&mut app, KeyCode::Char('j'));
            }
        }
    }
    assert!(
        found.is_empty(),
        "illegible on the selection:\n{}",
        found.join("\n")
    );
}
