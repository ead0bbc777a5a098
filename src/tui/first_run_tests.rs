//! With no agent configured, `n` and `:prompt` say so and how to add one (the engine refused
//! the task with an empty `no single agent offers all of` before), and `m` says why it cannot
//! add a local agent instead of doing nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{App, Effect, Mode, Msg};
use super::first_run::LocalOffer;
use super::tests::{app, draw, key, snapshot, typed};

/// The room of a first start: the engine answered, and it has no agents, plans or sessions.
fn empty() -> App {
    with_fleets(Vec::new())
}

/// The room of a first start with `fleets` configured and none of their members joined.
fn with_fleets(fleets: Vec<crate::domain::Fleet>) -> App {
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.agents.clear();
    snapshot.sessions.clear();
    snapshot.plans.clear();
    snapshot.approvals.clear();
    snapshot.fleets = fleets;
    app.update(Msg::Snapshot(Box::new(snapshot)));
    app
}

fn toast(app: &App) -> (String, bool) {
    let toast = app.toast.as_ref().expect("nothing was said");
    (toast.text.clone(), toast.error)
}

#[test]
fn n_with_no_agents_says_none_is_configured_and_how_to_add_one() {
    let mut app = empty();
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(
        app.mode,
        Mode::Normal,
        "the prompt opened with nothing to run it"
    );
    let (text, error) = toast(&app);
    assert!(error);
    assert!(
        text.contains("no agents configured") && text.contains("[[agents]]"),
        "{text}"
    );
    let screen = draw(&mut app, 80, 24);
    assert!(
        screen.contains("no agents configured; add an [[agents]] entry"),
        "{screen}"
    );

    // The command line's prompt too.
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "prompt say hello");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(toast(&app).0.contains("no agents configured"));

    // Where m would add one, it says so.
    app.local = LocalOffer::Offered;
    key(&mut app, KeyCode::Char('n'));
    assert!(
        toast(&app).0.contains("press m to add a local one"),
        "{:?}",
        app.toast
    );
}

#[test]
fn m_without_opencode_on_path_says_what_is_missing() {
    let mut app = empty();
    assert!(key(&mut app, KeyCode::Char('m')).is_empty());
    let (text, error) = toast(&app);
    assert!(error);
    assert!(
        text.contains("no opencode on PATH")
            && text.contains("`npm install -g opencode-ai@1.18.33`"),
        "{text}"
    );
}

#[test]
fn m_adds_the_offered_agent_once_and_says_so_when_agents_exist() {
    let mut app = empty();
    app.local = LocalOffer::Offered;
    assert_eq!(
        key(&mut app, KeyCode::Char('m')),
        vec![Effect::AddLocalAgent]
    );
    assert!(key(&mut app, KeyCode::Char('m')).is_empty());
    assert!(toast(&app).0.contains("being added"));

    let mut app = super::tests::app();
    assert!(key(&mut app, KeyCode::Char('m')).is_empty());
    assert!(
        toast(&app).0.contains("only while none is configured"),
        "{:?}",
        app.toast
    );
}

/// With a fleet configured and none of its members joined yet, the room says what it waits
/// for and takes work (it waits for a member); `n` opens the prompt. Before, the pane said no
/// agent was configured, `n` refused and `m` said opencode was missing (hand trial).
#[test]
fn a_fleet_with_no_member_yet_is_waited_for_not_called_missing() {
    let mut app = with_fleets(vec![crate::domain::Fleet {
        name: crate::domain::AgentName::new("builders").unwrap(),
        capabilities: ["rust".to_string()].into(),
        works_away: Some(true),
        members: Vec::new(),
    }]);
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("No fleet member has joined yet")
            && screen.contains("fleet builders (rust)"),
        "{screen}"
    );
    assert!(!screen.contains("No agents are configured"), "{screen}");
    key(&mut app, KeyCode::Char('n'));
    assert_ne!(app.mode, Mode::Normal, "the prompt opens");
    assert!(app.toast.is_none(), "{:?}", app.toast);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('m'));
    let (text, _) = toast(&app);
    assert!(text.contains("only while none is configured"), "{text}");
}

/// Beside agents that are joined (simulated ones here), a fleet with no member yet: the header
/// does not call the room simulated, and the empty sessions pane names the fleet it waits for
/// (it said `[SIMULATED]` and named no fleet once any agent existed: hand trial).
#[test]
fn a_memberless_fleet_beside_agents_is_named_and_the_room_is_not_simulated() {
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.sessions.clear();
    snapshot.fleets = vec![crate::domain::Fleet {
        name: crate::domain::AgentName::new("builders").unwrap(),
        capabilities: Default::default(),
        works_away: Some(true),
        members: Vec::new(),
    }];
    app.update(Msg::Snapshot(Box::new(snapshot)));
    let screen = draw(&mut app, 160, 40);
    assert!(!screen.contains("SIMULATED"), "{screen}");
    assert!(
        screen.contains("no member has joined fleet builders yet"),
        "{screen}"
    );
}
