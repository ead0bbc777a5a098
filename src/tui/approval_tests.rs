//! Acting on permission requests: the approvals pane shows the id `:approve` takes, a waiting
//! session's detail shows its request and answers it with the pane's keys, and every answer is
//! a line in the events pane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Effect, Mode, Msg, Pane, Request};
use super::tests::{app, at, draw, key, sid};
use crate::domain::{DomainEvent, SessionStatus, Transition};
use crate::engine::EngineEvent;
use crate::engine::approval::{Approver, Decision};

const LONG_ID: &str = "per_01JDEADBEEF0000abcXYZ789";

#[test]
fn the_approvals_pane_shows_the_short_id_approve_takes() {
    let mut app = app();
    app.view.approvals[0].ask.id = LONG_ID.into();
    app.focus = Pane::Approvals;
    let screen = draw(&mut app, 160, 48);
    assert!(screen.contains("ID"), "{screen}");
    assert!(screen.contains("bcXYZ789"), "{screen}");
    // What the pane shows is what `:approve` sends and the engine takes.
    assert!(crate::engine::approval::names(LONG_ID, "bcxyz789"));
}

#[test]
fn a_waiting_sessions_detail_shows_its_request_and_its_keys_answer_it() {
    let mut app = app();
    app.focus = Pane::Sessions;
    // The first row is the storage session, waiting on per_7f3a.
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(4)));
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("asks external_directory (/var/cache/pg/*)"),
        "{screen}"
    );
    assert!(screen.contains("request per_7f3a"), "{screen}");
    assert!(screen.contains("a once · A always · r reject"), "{screen}");
    assert_eq!(
        key(&mut app, KeyCode::Char('r')),
        vec![Effect::Request(Request::Approve(
            "per_7f3a".into(),
            Decision::Reject,
            Approver::Key
        ))]
    );
    assert!(
        app.view.approvals.is_empty(),
        "answered: it leaves the pane"
    );
    assert_eq!(app.mode, Mode::Detail(sid(4)), "the detail stays open");
    // A session that waits on nothing: the keys answer nothing there.
    app.mode = Mode::Detail(sid(3));
    assert!(key(&mut app, KeyCode::Char('a')).is_empty());
    assert!(!draw(&mut app, 100, 30).contains("request per_"));
}

#[test]
fn every_answer_is_a_line_in_the_events_pane() {
    let mut app = app();
    app.focus = Pane::Events;
    let answered = DomainEvent::new(
        Transition::Session {
            id: sid(4),
            from: SessionStatus::WaitingApproval,
            to: SessionStatus::Running,
        },
        "approved once by the operator (ocio approve): permission external_directory (/var/cache/pg/*) [per_7f3a]",
        at(290),
    );
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Transition(answered),
    )));
    let screen = draw(&mut app, 160, 48);
    let line = format!("session {} approved once by the operator", sid(4).short());
    assert!(screen.contains(&line), "{screen}");
    let logged = &app.view.log.back().unwrap().text;
    assert!(
        logged.ends_with("by the operator (ocio approve): permission external_directory (/var/cache/pg/*) [per_7f3a]"),
        "{logged}"
    );
    assert!(app.view.approvals.is_empty(), "the request is answered");
}
