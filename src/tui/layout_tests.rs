//! Issue 13 item 16: panes laid out from what they hold. A control room with agents of long
//! names, a long event and a waiting request, at 80x24, 120x40 and 200x60: snapshots, and the
//! things that were cut (events at ~35 characters, the sparkline at 2 cells, the approvals keys
//! at `a once · A`, agent names at 10) shown whole, with no table column wider than it needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::app::{App, Msg, Pane};
use super::tests::{app, at, draw, plan_id, session, sid, snapshot, tid};
use crate::domain::{AgentName, AgentStatus, SessionStatus};
use crate::engine::EngineEvent;
use crate::engine::view::{Activity, Entry};

/// Twenty characters, as agent names in a real config run.
const LONG_AGENT: &str = "backend-specialist-1";
/// Sixty characters.
const LONG_EVENT: &str = "storage waits for you: external_directory /var/cache/pg/data";
const KEYS: &str = "a once · A always · r reject";

fn room() -> App {
    assert_eq!(LONG_AGENT.chars().count(), 20);
    assert_eq!(LONG_EVENT.chars().count(), 60);
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.agents = vec![
        super::tests::agent("planner", AgentStatus::Online, 0, 2),
        super::tests::agent(LONG_AGENT, AgentStatus::Online, 2, 2),
        super::tests::agent("frontend-builder", AgentStatus::Online, 1, 3),
        super::tests::agent("integration-tester", AgentStatus::Draining, 0, 2),
    ];
    snapshot.sessions = vec![
        session(6, "e2e", "integration-tester", SessionStatus::Pending, 290),
        session(5, "tests", "frontend-builder", SessionStatus::Running, 240),
        session(
            4,
            "storage",
            LONG_AGENT,
            SessionStatus::WaitingApproval,
            200,
        ),
        session(3, "api", LONG_AGENT, SessionStatus::Running, 180),
        session(2, "client", "frontend-builder", SessionStatus::Failed, 100),
        session(1, "design", "planner", SessionStatus::Completed, 0),
    ];
    app.update(Msg::Snapshot(Box::new(snapshot)));
    for _ in 0..40 {
        app.update(Msg::Tick);
    }
    app.view.log(at(200), "waiting-approval", LONG_EVENT.into());
    app.view.log(
        at(240),
        "running",
        "tests running on frontend-builder".into(),
    );
    app.toast = None;
    app
}

/// The rows of the pane whose top border carries `title`, inside its borders (the header line,
/// which names agents too, is skipped).
pub(super) fn pane(screen: &str, title: &str) -> Vec<String> {
    let lines: Vec<Vec<char>> = screen
        .lines()
        .map(|l| l.trim_matches('"').chars().collect())
        .collect();
    for (y, line) in lines.iter().enumerate().skip(1) {
        let text: String = line.iter().collect();
        let Some(byte) = text.find(title) else {
            continue;
        };
        let x = text[..byte].chars().count();
        let left = line[..x].iter().rposition(|c| "┌┏╔".contains(*c)).unwrap();
        let right = left
            + 1
            + line[left + 1..]
                .iter()
                .position(|c| "┐┓╗".contains(*c))
                .unwrap();
        return lines[y + 1..]
            .iter()
            .take_while(|l| !"└┗╚".contains(l[left]))
            .map(|l| l[left + 1..right].iter().collect())
            .collect();
    }
    panic!("no pane {title:?} on screen:\n{screen}");
}

#[test]
fn the_main_screen_at_80x24_120x40_and_200x60() {
    for (width, height) in [(80, 24), (120, 40), (200, 60)] {
        let mut app = room();
        app.focus = Pane::Agents;
        let screen = draw(&mut app, width, height);
        insta::assert_snapshot!(format!("main_{width}x{height}"), screen);
    }
}

#[test]
fn at_120x40_a_60_character_event_and_the_approval_keys_are_whole() {
    let mut app = room();
    let screen = draw(&mut app, 120, 40);
    let events = pane(&screen, "events");
    assert!(events.iter().any(|l| l.contains(LONG_EVENT)), "{screen}");
    let approvals = screen.lines().any(|l| l.contains(KEYS));
    assert!(approvals, "the keys are cut:\n{screen}");
    // The sparkline gets most of the room it wants (half a minute), not 2 cells.
    let agents = pane(&screen, "agents");
    let planner = agents.iter().find(|l| l.starts_with("planner")).unwrap();
    assert!(planner.contains(&"▁".repeat(25)), "{planner}");
}

#[test]
fn at_200x60_agent_names_of_20_characters_are_whole() {
    let mut app = room();
    let screen = draw(&mut app, 200, 60);
    let agents = pane(&screen, "agents");
    assert!(agents.iter().any(|l| l.starts_with(LONG_AGENT)), "{screen}");
    let sessions = pane(&screen, "sessions");
    assert_eq!(
        sessions.iter().filter(|l| l.contains(LONG_AGENT)).count(),
        2,
        "{screen}"
    );
    assert!(
        pane(&screen, "events")
            .iter()
            .any(|l| l.contains(LONG_EVENT))
    );
}

/// Each column of the sessions table (but the last activity, which takes the rest) is as wide
/// as its widest value or header, and no wider.
#[test]
fn no_sessions_column_is_wider_than_what_it_holds() {
    for (width, height) in [(120, 40), (200, 60)] {
        let mut app = room();
        let screen = draw(&mut app, width, height);
        let rows: Vec<Vec<char>> = pane(&screen, "sessions")
            .iter()
            .map(|l| l.chars().collect())
            .filter(|l: &Vec<char>| l.iter().any(|c| !c.is_whitespace()))
            .collect();
        let header: String = rows[0].iter().collect();
        // Where each header word starts.
        let starts: Vec<usize> = (0..rows[0].len())
            .filter(|x| !rows[0][*x].is_whitespace() && (*x == 0 || rows[0][x - 1] == ' '))
            .collect();
        assert!(header.trim_end().ends_with("LAST"), "{header}");
        for pair in starts.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            let widest = rows
                .iter()
                .map(|r| {
                    r[from..to]
                        .iter()
                        .collect::<String>()
                        .trim_end()
                        .chars()
                        .count()
                })
                .max()
                .unwrap();
            assert_eq!(
                to - from - 1,
                widest,
                "column at {from} at {width}x{height}:\n{screen}"
            );
        }
    }
}

/// The columns are measured again when sessions come or change state (not on every frame):
/// a new session's long agent name and a provider retry's `retrying` show whole at once.
#[test]
fn the_columns_follow_sessions_that_come_and_change_state() {
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.sessions = vec![
        session(3, "api", "coder-1", SessionStatus::Running, 180),
        session(2, "client", "coder-1", SessionStatus::Running, 100),
    ];
    app.update(Msg::Snapshot(Box::new(snapshot)));
    let screen = draw(&mut app, 120, 40);
    assert!(
        pane(&screen, "sessions")[0].starts_with("STATE   TASK"),
        "{screen}"
    );

    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Dispatched {
            plan: plan_id(),
            task: tid(4),
            key: "tests".into(),
            session: sid(9),
            agent: AgentName::new(LONG_AGENT).unwrap(),
            attempt: 1,
        },
    )));
    let screen = draw(&mut app, 120, 40);
    let tests = pane(&screen, "sessions");
    let tests = tests.iter().find(|l| l.contains("tests #1")).unwrap();
    assert!(tests.contains(LONG_AGENT), "{screen}");

    let retry = Entry {
        at: at(290),
        part: None,
        activity: Activity::Retry {
            attempt: 2,
            message: "overloaded".into(),
            next: None,
        },
    };
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Activity {
            session: sid(3),
            entry: retry,
        },
    )));
    let screen = draw(&mut app, 120, 40);
    let sessions = pane(&screen, "sessions");
    let api = sessions.iter().find(|l| l.contains("api #1")).unwrap();
    assert!(api.starts_with("retrying "), "{screen}");
}

/// Found in the demo: Tab went sessions → agents → tasks → approvals → events, while tasks
/// sat left of agents and events left of approvals. Tab and shift-Tab now read the panes as
/// they are laid out at each width: across the rows of the stacked layout, down the columns
/// of the wide one.
#[test]
fn tab_follows_the_panes_in_reading_order_at_every_width() {
    use crossterm::event::KeyCode;
    for (width, height) in [(80, 24), (120, 40), (200, 60)] {
        let mut app = room();
        draw(&mut app, width, height);
        let areas = app.panes.areas.clone();
        let rect = |pane| areas.iter().find(|(p, _)| *p == pane).unwrap().1;
        app.focus = Pane::Sessions;
        let mut order = vec![app.focus];
        for _ in 0..4 {
            super::tests::key(&mut app, KeyCode::Tab);
            order.push(app.focus);
        }
        super::tests::key(&mut app, KeyCode::Tab);
        assert_eq!(app.focus, Pane::Sessions, "Tab comes back round");
        // Each next pane is right of the one before on its row, or below it in its column,
        // or on a later row or column: never left of it on the same row.
        for pair in order.windows(2) {
            let (a, b) = (rect(pair[0]), rect(pair[1]));
            let same_row = a.y == b.y;
            assert!(
                !(same_row && b.x < a.x),
                "{:?} then {:?} at {width}x{height}: right to left",
                pair[0],
                pair[1]
            );
        }
        let stacked = rect(Pane::Tasks).y == rect(Pane::Agents).y;
        let expected = if stacked {
            [
                Pane::Sessions,
                Pane::Tasks,
                Pane::Agents,
                Pane::Events,
                Pane::Approvals,
            ]
        } else {
            [
                Pane::Sessions,
                Pane::Tasks,
                Pane::Agents,
                Pane::Approvals,
                Pane::Events,
            ]
        };
        assert_eq!(order, expected, "at {width}x{height}");
        if stacked {
            assert!(rect(Pane::Tasks).x < rect(Pane::Agents).x);
            assert!(rect(Pane::Events).x < rect(Pane::Approvals).x);
        } else {
            assert_eq!(rect(Pane::Sessions).x, rect(Pane::Tasks).x);
            assert!(rect(Pane::Agents).y < rect(Pane::Approvals).y);
            assert!(rect(Pane::Approvals).y < rect(Pane::Events).y);
        }
        // Shift-Tab goes back the same way.
        let mut back = vec![app.focus];
        for _ in 0..4 {
            super::tests::key(&mut app, KeyCode::BackTab);
            back.push(app.focus);
        }
        back[1..].reverse();
        assert_eq!(back, expected, "shift-Tab at {width}x{height}");
    }
}
