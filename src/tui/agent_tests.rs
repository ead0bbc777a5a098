//! Issue "Trust in daily use", item 14: why an agent is down, in the agents pane and its detail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Mode, Msg, Pane};
use super::tests::{app, at, draw, key};
use super::trust_tests::row;
use crate::domain::{AgentName, AgentStatus, DomainEvent, Transition};
use crate::engine::EngineEvent;

/// Item 14: the agents pane says why an agent is offline and since when; Enter on it opens a
/// detail with its status, reason, since-when, load and capabilities.
#[test]
fn a_down_agent_says_why_and_since_when() {
    let mut app = app();
    let down = DomainEvent::new(
        Transition::Agent {
            name: AgentName::new("coder-1").unwrap(),
            from: AgentStatus::Online,
            to: AgentStatus::Offline,
        },
        "cannot reach http://127.0.0.1:4096 for GET /global/health: connection refused\n\
         hint: is `opencode serve` running there?",
        at(120),
    );
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Transition(down),
    )));
    app.focus = Pane::Agents;
    let screen = draw(&mut app, 160, 48);
    let coder = row(&screen, "coder-1");
    assert!(coder.contains("connection refused"), "{coder}");
    insta::assert_snapshot!("agents_reason_160x48", screen);

    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&app.mode, Mode::Agent(name) if name.as_str() == "coder-1"),
        "Enter on an agent opens its detail"
    );
    let screen = draw(&mut app, 100, 30);
    for wanted in [
        "offline",
        "cannot reach http://127.0.0.1:4096 for GET /global/health: connection refused",
        "hint: is `opencode serve` running there?",
        "since 10:02:00 (3m ago)",
        "1/2",
        "code",
    ] {
        assert!(screen.contains(wanted), "{wanted} missing:\n{screen}");
    }
    insta::assert_snapshot!("agent_detail_100x30", screen);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
}
