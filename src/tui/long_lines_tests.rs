//! What an operator found driving the demo at 120 columns: a status-line message and
//! transcript lines were cut at the terminal's edge, with no wrap and no `…`, and their ends
//! were nowhere to be read. Both now wrap: every word of them is on the screen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Mode, Msg};
use super::tests::{app, at, draw, key, sid};
use crate::engine::view::{Activity, Entry};

/// The screen's rows, without the test backend's quotes.
fn rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

/// Whether every word of `text` is on the screen, in order, across rows (and the pane's
/// borders between them).
fn reads_whole(screen: &str, text: &str) -> bool {
    let shown: Vec<String> = rows(screen)
        .iter()
        .flat_map(|r| r.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|w| w != "│")
        .collect();
    let words: Vec<&str> = text.split_whitespace().collect();
    shown.windows(words.len()).any(|w| w == words.as_slice())
}

const REFUSED: &str = "session svkastsg: session 01M92160JSB6E4Q0W7HYX8Z3AB waits for an answer to its request: answer that first (the inbox, ocio approve or ocio answer)";

#[test]
fn a_status_message_wider_than_the_screen_is_shown_whole() {
    let mut app = app();
    app.toast(REFUSED.to_string(), true);
    let screen = draw(&mut app, 120, 40);
    assert!(reads_whole(&screen, REFUSED), "{screen}");
    // In a session's detail too, where a refused message is answered.
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.mode, Mode::Detail(_)));
    app.toast(REFUSED.to_string(), true);
    let screen = draw(&mut app, 80, 24);
    assert!(reads_whole(&screen, REFUSED), "{screen}");
    // A short one keeps to the one row it had, the header and panes where they were.
    app.toast("api not cancelled".to_string(), false);
    let screen = draw(&mut app, 120, 40);
    let rows = rows(&screen);
    assert!(rows[39].contains("api not cancelled"), "{screen}");
    assert!(!rows[38].contains("api not cancelled"), "{screen}");
}

#[test]
fn a_status_message_too_long_for_its_rows_ends_with_an_ellipsis() {
    let mut app = app();
    app.toast(format!("{REFUSED} {}", "and more ".repeat(80)), true);
    let screen = draw(&mut app, 80, 24);
    let rows = rows(&screen);
    // The header and most of the screen stay; the last row says it is cut.
    assert!(rows[0].contains("OCIO"), "{screen}");
    assert!(rows[23].trim_end().ends_with('…'), "{screen}");
    assert!(
        rows[..19].iter().all(|r| !r.contains("and more")),
        "{screen}"
    );
}

const APPROVED: &str = "approved once by the operator (key): permission external_directory (/var/cache/ocio-sim/*) [sim-01M92160JSB6E4Q0W7HYX8Z3AB]";

#[test]
fn a_transcript_line_wider_than_the_screen_wraps() {
    let mut app = app();
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(4)));
    let entries = vec![
        Entry {
            at: at(201),
            part: None,
            activity: Activity::Note {
                text: APPROVED.into(),
            },
        },
        Entry {
            at: at(202),
            part: Some("t1".into()),
            activity: Activity::Text {
                text: format!("I looked at {}", "every file under src ".repeat(8)),
            },
        },
    ];
    app.update(Msg::Transcript(sid(4), entries));
    let screen = draw(&mut app, 120, 40);
    assert!(reads_whole(&screen, APPROVED), "{screen}");
    let said = format!("I looked at {}", "every file under src ".repeat(8));
    assert!(reads_whole(&screen, &said), "{screen}");
    // The rows a line wraps to start under its text, not under the time of day.
    let rows = rows(&screen);
    let first = rows
        .iter()
        .position(|r| r.contains("approved once"))
        .unwrap();
    let column = |row: &str, found: usize| row[..found].chars().count();
    let text_at = column(&rows[first], rows[first].find("approved").unwrap());
    let next = &rows[first + 1];
    let next_at = column(next, next.find(|c: char| c != ' ' && c != '│').unwrap());
    assert_eq!(next_at, text_at, "{screen}");
}
