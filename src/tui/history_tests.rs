//! A room that starts shows what happened before it: the control log's recent past in the
//! events pane (as live events read) and the agents' load sparklines rebuilt from it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::app::{App, Effect, Msg, Pane, Request};
use super::keymap::Keymap;
use super::tests::{at, draw, sid, snapshot, tid};
use super::theme::{ColorDepth, Theme};
use crate::domain::{AgentName, DomainEvent, SessionId, SessionStatus, TaskStatus, Transition};
use crate::engine::{EngineEvent, Logged};

/// A room that has its first snapshot and nothing else (no live event, no load sample yet).
fn started() -> App {
    let theme = Theme::load("industrial", None, ColorDepth::None).unwrap();
    let mut app = App::new(theme, Keymap::default());
    app.zone = jiff::tz::TimeZone::UTC;
    app.now = at(205);
    let effects = app.update(Msg::Snapshot(Box::new(snapshot())));
    assert_eq!(
        effects,
        vec![Effect::Request(Request::History(super::view::HISTORY))],
        "the first snapshot asks for the history"
    );
    app
}

fn task(n: u128, key: &str, from: TaskStatus, to: TaskStatus, secs: i64) -> DomainEvent {
    let transition = Transition::Task {
        id: tid(n),
        key: key.into(),
        from,
        to,
    };
    DomainEvent::new(transition, "as logged", at(secs))
}

fn session(id: SessionId, from: SessionStatus, to: SessionStatus, secs: i64) -> DomainEvent {
    let transition = Transition::Session { id, from, to };
    DomainEvent::new(transition, "dispatched", at(secs))
}

/// The client task ran on coder-1 from 100 s until it failed at 195 s; the api task started
/// there at 180 s and still runs.
fn past() -> Vec<DomainEvent> {
    use SessionStatus::*;
    vec![
        task(3, "client", TaskStatus::Ready, TaskStatus::Running, 100),
        session(sid(2), Pending, Queued, 100),
        session(sid(2), Queued, Starting, 100),
        session(sid(2), Starting, Running, 100),
        task(1, "api", TaskStatus::Ready, TaskStatus::Running, 180),
        session(sid(3), Pending, Queued, 180),
        session(sid(3), Queued, Starting, 180),
        session(sid(3), Starting, Running, 180),
        session(sid(2), Running, Failed, 195),
        task(3, "client", TaskStatus::Running, TaskStatus::Failed, 195),
    ]
}

fn logged(events: Vec<DomainEvent>) -> Vec<Logged> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Logged {
            seq: i as u64 + 1,
            event,
        })
        .collect()
}

#[test]
fn a_room_fed_the_history_shows_its_events_and_its_load_sparklines() {
    let mut app = started();
    app.update(Msg::History(logged(past()), Vec::new()));
    let texts: Vec<&str> = app.view.log.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "client running: as logged",
            "api running: as logged",
            "client failed: as logged"
        ]
    );
    app.focus = Pane::Events;
    let screen = draw(&mut app, 160, 48);
    assert!(
        screen.contains("03:15 client failed: as logged"),
        "{screen}"
    );

    // A minute of samples, one a second to 205 s: coder-1 held two sessions from 180 s to
    // 195 s, one after; coder-2's session (running all along, by the snapshot) one; the
    // planner none.
    let load = |name: &str| -> Vec<u64> {
        app.view.load[&AgentName::new(name).unwrap()]
            .iter()
            .copied()
            .collect()
    };
    let coder_1 = load("coder-1");
    assert_eq!(coder_1.len(), super::view::LOAD_SAMPLES);
    assert_eq!(coder_1[60 - 26..60 - 11], [100; 15]);
    assert_eq!(coder_1[60 - 11..], [50; 11]);
    assert_eq!(coder_1[0], 50, "the client session alone at 146 s");
    assert_eq!(load("coder-2"), [50; 60]);
    assert_eq!(load("planner"), [0; 60]);
    app.focus = Pane::Agents;
    let screen = draw(&mut app, 160, 48);
    let row = screen.lines().find(|l| l.contains("coder-1")).unwrap();
    assert!(row.contains("██████▄▄▄▄▄▄▄▄▄▄▄"), "{row}");
}

#[test]
fn what_the_room_showed_live_before_the_history_came_is_shown_once() {
    let mut app = started();
    let past = past();
    // The last two were committed after this room subscribed, and before the log was read.
    for event in &past[past.len() - 2..] {
        app.update(Msg::Engine(crate::tui::tests::told(
            EngineEvent::Transition(event.clone()),
        )));
    }
    let live = task(5, "e2e", TaskStatus::Pending, TaskStatus::Blocked, 196);
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Transition(live),
    )));
    app.update(Msg::History(logged(past), Vec::new()));
    let texts: Vec<&str> = app.view.log.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "client running: as logged",
            "api running: as logged",
            "client failed: as logged",
            "e2e blocked: as logged"
        ]
    );
    // Live from now on: nothing more is held back for a history.
    assert!(app.view.history);
}

/// The notes of what was told besides transitions (a plan taken in, a merge) are shown with the
/// control log's lines, in time order; one this room showed live already is not repeated.
#[test]
fn notes_of_the_past_are_shown_in_time_order_and_once() {
    use crate::domain::PlanId;
    use crate::engine::Noted;
    let mut app = started();
    let plan = PlanId::from_parts(1, 1);
    let note = |at: jiff::Timestamp, event: EngineEvent| Noted { at, event };
    let submitted = EngineEvent::PlanSubmitted {
        plan,
        name: "webapp".into(),
        tasks: 3,
        key: "webapp".into(),
        branch: None,
    };
    let merged = |commit: &str| EngineEvent::Merged {
        plan,
        task: crate::domain::TaskId::from_parts(1, 2),
        key: "api".into(),
        commit: commit.into(),
    };
    // Shown live already: told again by the notes, it is not repeated.
    app.update(Msg::Engine(crate::tui::tests::told(merged("cafe1234"))));
    let live_at = app.view.log.back().unwrap().at;
    let notes = vec![
        note(at(90), submitted),
        note(at(190), merged("beef5678")),
        note(live_at, merged("cafe1234")),
    ];
    app.update(Msg::History(logged(past()), notes));
    let texts: Vec<&str> = app.view.log.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts.len(), 6, "{texts:#?}");
    assert!(texts[0].contains("webapp"), "{texts:#?}");
    assert!(
        texts[3].contains("beef5678"),
        "between the logged lines by time: {texts:#?}"
    );
    assert_eq!(
        texts.iter().filter(|t| t.contains("cafe1234")).count(),
        1,
        "{texts:#?}"
    );
}
