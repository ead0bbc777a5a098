//! The events pane stays full however it is scrolled, and its oldest events can be reached.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Effect, Msg, Pane};
use super::tests::{app, at, draw, key};

fn chord(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, modifiers)))
}

/// The numbers of the `evt-NNN` lines on screen, top to bottom.
fn events_shown(screen: &str) -> Vec<usize> {
    screen
        .match_indices("evt-")
        .map(|(i, _)| screen[i + 4..i + 7].parse().unwrap())
        .collect()
}

fn with_events(n: usize) -> App {
    let mut app = app();
    app.view.log.clear();
    for i in 0..n {
        app.view
            .log(at(400 + i as i64), "engine", format!("evt-{i:03}"));
    }
    app.focus = Pane::Events;
    app
}

#[test]
fn the_events_pane_stays_full_however_it_is_scrolled_and_reaches_the_oldest() {
    let mut app = with_events(60);
    let newest = events_shown(&draw(&mut app, 80, 24));
    let height = newest.len();
    assert!(height >= 3, "{newest:?}");
    assert_eq!(newest, (60 - height..60).collect::<Vec<_>>());
    let full_from = |first: usize| (first..first + height).collect::<Vec<_>>();

    // Top: the oldest events, and the pane full.
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), full_from(0));
    // Up at the top stays there; one down moves one line at once.
    key(&mut app, KeyCode::Char('k'));
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), full_from(0));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), full_from(1));
    // A page down moves a pane's height.
    chord(&mut app, KeyCode::Char('d'), KeyModifiers::CONTROL);
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), full_from(1 + height));
    // Bottom, then a page up from there, then up to the top by pages.
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), newest);
    chord(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(
        events_shown(&draw(&mut app, 80, 24)),
        full_from(60 - 2 * height)
    );
    for _ in 0..20 {
        chord(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    }
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), full_from(0));
    // In a bigger window the same place still fills the pane.
    let tall = events_shown(&draw(&mut app, 160, 48));
    assert_eq!(tall[0], 0);
    assert!(tall.len() > height, "{tall:?}");
}

#[test]
fn fewer_events_than_rows_all_show_at_the_top_and_the_bottom() {
    let mut app = with_events(4);
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), vec![0, 1, 2, 3]);
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), vec![0, 1, 2, 3]);
    key(&mut app, KeyCode::Char('k'));
    chord(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(events_shown(&draw(&mut app, 80, 24)), vec![0, 1, 2, 3]);
}

#[test]
fn a_running_check_shows_its_newest_line_on_the_tasks_row_until_it_ends() {
    use super::tests::{plan_id, tid, told};
    use crate::engine::EngineEvent;
    let mut app = app();
    let plan = plan_id();
    let say = |app: &mut App, event: EngineEvent| {
        app.update(Msg::Engine(told(event)));
    };
    say(
        &mut app,
        EngineEvent::CheckStarted {
            plan,
            task: tid(1),
            key: "api".into(),
            command: "cargo test".into(),
        },
    );
    assert!(draw(&mut app, 160, 48).contains("api running checking: cargo test"));
    let line = "test store::tests::a_full_disk_stops_the_engine ... ok";
    say(
        &mut app,
        EngineEvent::CheckProgress {
            plan,
            key: "api".into(),
            line: line.into(),
        },
    );
    let screen = draw(&mut app, 160, 48);
    assert!(
        screen.contains("checking: test store::tests::a_full_disk"),
        "{screen}"
    );
    say(
        &mut app,
        EngineEvent::CheckEnded {
            plan,
            task: tid(1),
            key: "api".into(),
            command: "cargo test".into(),
            passed: true,
            report: "`cargo test` passed".into(),
            fix: None,
        },
    );
    let screen = draw(&mut app, 160, 48);
    assert!(!screen.contains("checking:"), "{screen}");
    assert!(
        screen.contains("api: `cargo test` passed"),
        "narrated: {screen}"
    );
}
