//! Cancelling a task asks first (y / n), as quitting does, from the panes and from a session's
//! detail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Effect, Mode, Pane, Request};
use super::tests::{app, draw, key, sid, tid};

#[test]
fn c_asks_before_cancelling_and_only_y_cancels() {
    let mut app = app();
    app.focus = Pane::Sessions;
    // The second row: api, running.
    key(&mut app, KeyCode::Char('j'));
    assert!(
        key(&mut app, KeyCode::Char('c')).is_empty(),
        "c cancelled without asking"
    );
    assert!(
        matches!(app.mode, Mode::ConfirmCancel { .. }),
        "{:?}",
        app.mode
    );
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("Cancel api?"), "{screen}");
    assert!(screen.contains("y / n"), "{screen}");
    // n (or any other key) keeps the task.
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(
        app.toast
            .as_ref()
            .unwrap()
            .text
            .contains("api not cancelled")
    );
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Request(Request::Cancel(tid(1), "api".into()))]
    );
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn c_in_a_sessions_detail_asks_and_returns_to_the_detail() {
    let mut app = app();
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(4)));
    assert!(key(&mut app, KeyCode::Char('c')).is_empty());
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("Cancel storage?"), "{screen}");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Cancel(tid(2), "storage".into()))]
    );
    assert_eq!(app.mode, Mode::Detail(sid(4)));
}

#[test]
fn c_on_a_task_that_cannot_be_cancelled_says_so_without_asking() {
    let mut app = app();
    app.focus = Pane::Tasks;
    draw(&mut app, 120, 36);
    // The tree's first task: design, done.
    key(&mut app, KeyCode::Char('j'));
    assert!(key(&mut app, KeyCode::Char('c')).is_empty());
    assert_eq!(app.mode, Mode::Normal, "no question for a finished task");
    let toast = &app.toast.as_ref().unwrap().text;
    assert!(
        toast.contains("design is done: nothing to cancel"),
        "{toast}"
    );
}
