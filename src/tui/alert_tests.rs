//! Telling the operator through the terminal: the escape sequences (and tmux's wrapping of
//! them), a burst ringing once with how many wait, nothing rung for what the first snapshot
//! already showed, the switches, and the room's wiring of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::alert::{Alerts, WINDOW, osc9, osc777, title, title_text, tmux_passthrough};
use super::app::Msg;
use super::tests::{app, sid, told};
use crate::engine::{EngineEvent, Told};

fn asks(n: u128) -> EngineEvent {
    EngineEvent::ApprovalRequested {
        session: sid(n),
        task: format!("task-{n}"),
        request: format!("per_{n}"),
        permission: "external_directory".into(),
        patterns: vec!["/tmp/*".into()],
    }
}

fn numbered(seq: u64, event: EngineEvent) -> Told {
    Told { seq, event }
}

const BEL: char = '\x07';

#[test]
fn the_sequences_are_osc_2_9_and_777_with_their_text_made_safe() {
    assert_eq!(title("ocio · 2 waiting"), "\x1b]2;ocio · 2 waiting\x07");
    assert_eq!(title_text(0), "ocio");
    assert_eq!(title_text(2), "ocio · 2 waiting");
    assert_eq!(osc9("ocio: 1 waiting"), "\x1b]9;ocio: 1 waiting\x07");
    assert_eq!(
        osc777("ocio", "1 waiting; plan p succeeded"),
        "\x1b]777;notify;ocio;1 waiting, plan p succeeded\x07"
    );
    // A BEL or ESC inside the text would end the sequence early, a line break split it.
    assert_eq!(osc9("a\x07b\x1bc\nd"), "\x1b]9;a b c d\x07");
}

#[test]
fn tmux_passthrough_doubles_every_esc_and_ends_with_st() {
    assert_eq!(
        tmux_passthrough("\x1b]9;hi\x07"),
        "\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\"
    );
    let two = tmux_passthrough("\x1b]777;notify;a;b\x1b\\");
    assert_eq!(two, "\x1bPtmux;\x1b\x1b]777;notify;a;b\x1b\x1b\\\x1b\\");
    assert_eq!(two.matches('\x1b').count(), 6);
}

#[test]
fn a_burst_of_twenty_requests_rings_once_saying_twenty_wait() {
    let mut alerts = Alerts::default();
    let start = Instant::now();
    alerts.loaded(10, start);
    for n in 0..20u64 {
        alerts.receive(
            &numbered(11 + n, asks(u128::from(n))),
            start + Duration::from_millis(n * 10),
        );
    }
    // Before the window closes: only the title moves.
    assert_eq!(alerts.output(20, start), title("ocio · 20 waiting"));
    assert_eq!(alerts.output(20, start), "", "the title is written once");
    let rung = alerts.output(20, start + WINDOW);
    assert_eq!(
        rung.matches(BEL).count(),
        3,
        "OSC 9, OSC 777, the bell: {rung:?}"
    );
    assert!(rung.contains(&osc9("ocio: 20 waiting for you")), "{rung:?}");
    assert!(
        rung.contains(&osc777("ocio", "20 waiting for you")),
        "{rung:?}"
    );
    assert!(rung.ends_with(BEL));
    assert!(!rung.contains("Ptmux"), "not inside tmux");
    assert_eq!(alerts.output(20, start + WINDOW * 4), "", "rung once");
    assert_eq!(alerts.output(0, start + WINDOW * 4), title("ocio"));
}

#[test]
fn what_the_first_snapshot_shows_rings_nothing_and_what_is_newer_rings() {
    let mut alerts = Alerts::default();
    let start = Instant::now();
    // Three requests told before the snapshot came, which reflects them: old news.
    for seq in 1..=3 {
        alerts.receive(&numbered(seq, asks(u128::from(seq))), start);
    }
    alerts.loaded(3, start);
    assert_eq!(alerts.due(), None);
    assert_eq!(alerts.output(3, start + WINDOW), title("ocio · 3 waiting"));
    // One it does not reflect (told before it came) is news.
    let mut alerts = Alerts::default();
    alerts.receive(&numbered(4, asks(4)), start);
    alerts.loaded(3, start);
    assert!(alerts.output(4, start + WINDOW).contains(BEL));
    // So is one after it; one it reflects, told late, is not.
    alerts.receive(&numbered(2, asks(2)), start);
    assert_eq!(alerts.due(), None);
    alerts.receive(&numbered(5, asks(5)), start);
    assert!(alerts.due().is_some());
}

#[test]
fn the_switches_turn_off_the_bell_and_the_notifications_and_tmux_wraps_only_notifications() {
    let start = Instant::now();
    let rung = |bell: bool, desktop: bool, tmux: bool| {
        let mut alerts = Alerts::default();
        (alerts.bell, alerts.desktop, alerts.tmux) = (bell, desktop, tmux);
        alerts.loaded(0, start);
        alerts.receive(&numbered(1, asks(1)), start);
        alerts.output(1, start + WINDOW)
    };
    let quiet = rung(false, false, false);
    assert_eq!(quiet, title("ocio · 1 waiting"), "only the title");
    let bell_only = rung(true, false, false);
    assert_eq!(bell_only, format!("{}{BEL}", title("ocio · 1 waiting")));
    let tmux = rung(true, true, true);
    assert!(tmux.starts_with(&title("ocio · 1 waiting")), "{tmux:?}");
    assert!(
        tmux.contains(&tmux_passthrough(&osc9("ocio: 1 waiting for you"))),
        "{tmux:?}"
    );
    assert!(
        tmux.contains(&tmux_passthrough(&osc777("ocio", "1 waiting for you"))),
        "{tmux:?}"
    );
    assert!(
        tmux.ends_with(&format!("\x1b\\{BEL}")),
        "a plain bell: {tmux:?}"
    );
}

#[test]
fn the_room_gathers_alerts_from_engine_events_after_its_first_snapshot() {
    // `app()` has taken its first snapshot (one request waiting).
    let mut app = app();
    assert_eq!(app.view.waiting(), 1);
    assert_eq!(
        app.alerts.due(),
        None,
        "what the snapshot shows rings nothing"
    );
    app.update(Msg::Engine(told(asks(9))));
    assert_eq!(app.view.waiting(), 2);
    let due = app.alerts.due().expect("a new request is gathered");
    let out = app.alerts.output(app.view.waiting(), due);
    assert!(out.contains(&osc9("ocio: 2 waiting for you")), "{out:?}");
}
