//! What an operator reported from `ocio demo` in tmux: at 40x12, 60x20, 80x24 and 120x40 the
//! request id they type was cut (and then did not work), the header and footer lost their
//! essentials, the help cut its text at any width, and numbers and names were cut with no `…`.
//! A room like the demo's (simulated agents `sim-coder-1` and `sim-coder-2`, a request whose
//! short id is `B31WVDF3`) drawn at those sizes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{App, Msg, Pane};
use super::tests::{agent, app, draw, key, session, snapshot};
use crate::domain::{AgentStatus, SessionStatus};
use crate::engine::approval::Ask;
use crate::engine::view::ApprovalView;

const SIZES: [(u16, u16); 4] = [(40, 12), (60, 20), (80, 24), (120, 40)];
const REQUEST: &str = "per_01JEXAMPLEB31WVDF3";
const SHORT: &str = "B31WVDF3";

fn demo_room() -> App {
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.agents = vec![
        agent("sim-planner", AgentStatus::Online, 0, 2),
        agent("sim-coder-1", AgentStatus::Online, 1, 2),
        agent("sim-coder-2", AgentStatus::Online, 1, 2),
        agent("sim-tester", AgentStatus::Online, 0, 2),
    ];
    snapshot.sessions = vec![
        session(
            4,
            "storage",
            "sim-coder-2",
            SessionStatus::WaitingApproval,
            200,
        ),
        session(3, "api", "sim-coder-1", SessionStatus::Running, 180),
        session(2, "client", "sim-coder-1", SessionStatus::Completed, 100),
        session(1, "design", "sim-planner", SessionStatus::Completed, 0),
    ];
    snapshot.approvals = vec![ApprovalView {
        session: super::tests::sid(4),
        task: "storage".into(),
        ask: Ask {
            id: REQUEST.into(),
            permission: "external_directory".into(),
            patterns: vec!["/var/cache/pg/data/*".into()],
            questions: Vec::new(),
        },
    }];
    app.update(Msg::Snapshot(Box::new(snapshot)));
    app.toast = None;
    app
}

fn lines(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

/// The header as it reads when nothing has to give way.
fn whole_header(app: &mut App) -> String {
    lines(&draw(app, 400, 24))[0].clone()
}

#[test]
fn the_request_id_is_whole_at_every_size() {
    for (width, height) in SIZES {
        for pane in [Pane::Approvals, Pane::Sessions] {
            let mut app = demo_room();
            app.focus = pane;
            let screen = draw(&mut app, width, height);
            assert!(
                screen.contains(SHORT),
                "{SHORT} is not whole at {width}x{height}:\n{screen}"
            );
        }
    }
}

/// The demo's events pane had room to spare beside a request cut to `external_di…
/// /var/ca…`: a long event scrolled away long ago still held its width.
#[test]
fn at_120_columns_the_request_shows_what_it_is_for() {
    let mut app = demo_room();
    let long = format!(
        "storage waits for you: external_directory {}",
        "x".repeat(60)
    );
    app.view.log(super::tests::at(10), "waiting-approval", long);
    for n in 0..60 {
        app.view
            .log(super::tests::at(20 + n), "running", format!("api step {n}"));
    }
    app.focus = Pane::Approvals;
    let screen = draw(&mut app, 120, 40);
    let row = lines(&screen)
        .into_iter()
        .find(|l| l.contains(SHORT))
        .unwrap();
    assert!(
        row.contains("external_directory") && row.contains("/var/cache/pg/data/*"),
        "{row}\n{screen}"
    );
}

#[test]
fn the_header_keeps_its_essentials_and_cuts_no_word() {
    for (width, height) in SIZES {
        let mut app = demo_room();
        let whole = whole_header(&mut app);
        let screen = draw(&mut app, width, height);
        let header = &lines(&screen)[0];
        for essential in ["1 waiting", "tok", "$0."] {
            assert!(
                header.contains(essential),
                "{essential:?} missing at {width}x{height}: {header:?}"
            );
        }
        // Short forms of whole parts.
        let short = ["tok", "SIM"];
        for word in header.split_whitespace() {
            assert!(
                whole.split_whitespace().any(|w| w == word) || short.contains(&word),
                "{word:?} is cut at {width}x{height}: {header:?}"
            );
        }
    }
}

/// Hand trial: at 120 columns, 2 sessions running and a plan over budget, the header read
/// `OCIO running │ over budget: b1 │ agents 2/2 online │ 7.6k tokens $0.00 │ 1 waiting for
/// you`: the sessions' counts left out whole, the running ones too.
#[test]
fn the_header_keeps_the_running_count_beside_a_plan_over_budget() {
    let mut app = demo_room();
    app.view.budgets.plans = vec![crate::engine::view::PlanSpendView {
        plan: super::tests::plan_id(),
        name: "add-pagination".into(),
        budget: None,
        spent: crate::domain::Usage::default(),
        over_budget: Some("over budget: plan budget 600/500 tokens".into()),
        stopped: Vec::new(),
    }];
    for (n, key, status) in [
        (5, "tests", SessionStatus::Running),
        (6, "e2e", SessionStatus::Failed),
        (7, "review", SessionStatus::Cancelled),
    ] {
        let s = session(n, key, "sim-tester", status, 250);
        app.view.sessions.push(s);
    }
    app.view.sessions_generation += 1;
    for width in [120, 80] {
        let header = lines(&draw(&mut app, width, 24))[0].clone();
        for said in ["2 running", "over budget", "2 waiting", "tok"] {
            assert!(header.contains(said), "{said:?} at {width}: {header:?}");
        }
    }
    // Where there is room, every state's count.
    let header = lines(&draw(&mut app, 200, 24))[0].clone();
    let counts = "│ 2 running 1 waiting-approval 2 completed 1 failed 1 cancelled │";
    assert!(header.contains(counts), "{header:?}");
}

#[test]
fn a_header_with_no_sessions_has_no_empty_section() {
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.sessions.clear();
    snapshot.approvals.clear();
    app.update(Msg::Snapshot(Box::new(snapshot)));
    let header = lines(&draw(&mut app, 200, 24))[0].clone();
    assert!(!header.contains("│ │"), "{header:?}");
}

#[test]
fn the_footer_keeps_help_and_quit() {
    for (width, height) in SIZES {
        for pane in [Pane::Sessions, Pane::Approvals] {
            let mut app = demo_room();
            app.focus = pane;
            let screen = draw(&mut app, width, height);
            let footer = lines(&screen).last().unwrap().clone();
            assert!(
                footer.contains("? help") && footer.contains("q/ctrl-c quit"),
                "at {width}x{height}: {footer:?}"
            );
        }
    }
}

/// The help's text with its lines joined and spaces collapsed: a description wrapped onto
/// the next line reads on as one.
fn help_text(width: u16) -> String {
    let mut app = demo_room();
    key(&mut app, KeyCode::Char('?'));
    let screen = draw(&mut app, width, 200);
    // Inside the popup's borders, not the panes' around it.
    let inside: Vec<String> = lines(&screen)
        .iter()
        .filter_map(|l| {
            let (from, to) = (l.find('║')?, l.rfind('║')?);
            (from < to).then(|| l[from + '║'.len_utf8()..to].to_string())
        })
        .collect();
    inside
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_help_cuts_no_line_and_keeps_keys_apart_from_what_they_do() {
    let keymap = super::keymap::Keymap::default();
    for width in [40, 60, 80, 120, 200] {
        let text = help_text(width);
        for (keys, what) in keymap.help() {
            let line = format!("{keys} {what}");
            assert!(text.contains(&line), "{line:?} at {width}:\n{text}");
        }
        for command in super::palette::COMMANDS {
            let line = format!("{} {}", command.usage(), command.what);
            assert!(text.contains(&line), "{line:?} at {width}:\n{text}");
        }
    }
}

/// The words of the pane whose top border carries `title` (none where it is not shown).
fn pane_words(screen: &str, title: &str) -> Vec<String> {
    if !lines(screen).iter().skip(1).any(|l| l.contains(title)) {
        return Vec::new();
    }
    super::layout_tests::pane(screen, title)
        .iter()
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn numbers_and_names_are_whole_or_say_they_are_cut() {
    let names = ["sim-planner", "sim-coder-1", "sim-coder-2", "sim-tester"];
    let headers = ["AGENT", "STATUS", "LOAD", "RECENT"];
    for (width, height) in SIZES {
        let mut app = demo_room();
        let screen = draw(&mut app, width, height);
        for word in pane_words(&screen, "sessions") {
            if word.starts_with(|c: char| c.is_ascii_digit()) {
                let whole = word.chars().all(|c| c.is_ascii_digit())
                    || (word.ends_with(['k', 'M', 's', 'm', 'h', 'd']) && !word.ends_with('.'));
                assert!(whole, "{word:?} is cut at {width}x{height}:\n{screen}");
            }
        }
        for word in pane_words(&screen, "agents") {
            if word.starts_with("sim-") {
                assert!(
                    names.contains(&word.as_str()) || word.ends_with('…'),
                    "{word:?} at {width}x{height}:\n{screen}"
                );
            }
            if word.chars().all(|c| c.is_ascii_uppercase()) {
                assert!(
                    headers.contains(&word.as_str()),
                    "{word:?} at {width}x{height}:\n{screen}"
                );
            }
            if word.contains('/') {
                assert!(
                    word.ends_with("/2"),
                    "{word:?} at {width}x{height}:\n{screen}"
                );
            }
        }
    }
}

/// A long event line (a check's report, a merge conflict's files) was cut at the pane's edge
/// with no way to read its end. Focused, the events pane folds it under its clock, newest at
/// the bottom; unfocused it stays one row a line.
#[test]
fn the_focused_events_pane_shows_a_long_line_whole() {
    let mut app = demo_room();
    let long = "merge of api conflicts in src/server/routes.rs src/server/handlers.rs src/client/api.rs: a resolver session settles them";
    app.view
        .log(super::tests::at(30), "failed", "short one".into());
    app.view.log(super::tests::at(40), "failed", long.into());
    let row_with = |screen: &str, text: &str| lines(screen).iter().any(|l| l.contains(text));
    app.focus = Pane::Sessions;
    let screen = draw(&mut app, 80, 24);
    assert!(
        !row_with(&screen, "settles them"),
        "cut while unfocused: {screen}"
    );
    app.focus = Pane::Events;
    let screen = draw(&mut app, 80, 24);
    assert!(row_with(&screen, "settles them"), "{screen}");
    let taller = draw(&mut app, 80, 40);
    assert!(
        row_with(&taller, "short one") && row_with(&taller, "settles them"),
        "{taller}"
    );
    // The newest line's end is on the pane's last row.
    let rows = lines(&screen);
    let end = rows
        .iter()
        .position(|l| l.contains("settles them"))
        .unwrap();
    assert!(
        rows[end + 1].contains('─') || rows[end + 1].contains('━'),
        "{screen}"
    );
}

/// The keys that answer a request are never cut on the approvals pane's border: whole where
/// they fit, else short (`a/A/r`); at 60 columns they read `nce · A always · r reject`.
#[test]
fn the_answer_keys_are_whole_or_short_never_cut() {
    for (width, height) in SIZES {
        let mut app = demo_room();
        app.focus = Pane::Approvals;
        let screen = draw(&mut app, width, height);
        let whole = screen.contains("a once · A always · r reject");
        let short = screen.contains(" a/A/r ");
        assert!(
            whole || short,
            "{width}x{height}: the keys are cut or missing\n{screen}"
        );
    }
}

/// Hand trial: at 80 columns a long agent name kept its whole width and the plan column was
/// left out, so the rows of two plans read the same. With more than one plan the plan stays
/// whole and the agent's name is cut (with `…`) to make room.
#[test]
fn at_80_columns_two_plans_keep_their_plan_and_a_long_agent_name_is_cut() {
    use crate::domain::{AgentName, PlanId};
    use crate::engine::view::PlanView;
    const LONG: &str = "box-10.42.0.17-4096-coder";
    let mut app = app();
    let mut snapshot = snapshot();
    let other = PlanId::from_u128(super::tests::plan_id().as_u128() + 1);
    snapshot.plans.push(PlanView {
        key: String::new(),
        id: other,
        name: "fix-logging".into(),
        repo: "/work/repo".into(),
        tasks: Vec::new(),
        landing: None,
    });
    for (i, view) in snapshot.sessions.iter_mut().enumerate() {
        view.session.agent = Some(AgentName::new(LONG).unwrap());
        if i % 2 == 1 {
            view.session.plan = Some(other);
        }
    }
    app.update(Msg::Snapshot(Box::new(snapshot)));
    app.focus = Pane::Sessions;
    let screen = draw(&mut app, 80, 24);
    let rows = lines(&screen);
    assert!(rows[2].contains("PLAN"), "{screen}");
    let row = |task: &str| {
        rows.iter()
            .find(|l| l.contains(task))
            .unwrap_or_else(|| panic!("no {task} row:\n{screen}"))
            .clone()
    };
    assert!(row("storage #1").contains("add-pagination"), "{screen}");
    assert!(row("api #1").contains("fix-logging"), "{screen}");
    assert!(!screen.contains(LONG), "the agent's name is cut:\n{screen}");
    assert!(row("storage #1").contains("box-10.42"), "{screen}");
    assert!(row("storage #1").contains('…'), "{screen}");
}
