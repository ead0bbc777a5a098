//! The control room driven through its message channel and drawn on a test backend: snapshots
//! of every pane at 80x24 and 160x48 (a frozen clock and fixed ids keep them stable), and the
//! behaviour behind the keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::{SignedDuration, Timestamp};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{App, Effect, Mode, Msg, Pane, Request};
use super::keymap::Keymap;
use super::theme::{ColorDepth, Theme};
use crate::domain::{
    Agent, AgentName, AgentStatus, Backend, DomainEvent, PlanId, Session, SessionId, SessionKind,
    SessionStatus, TaskId, TaskStatus, Transition, Usage,
};
use crate::engine::EngineEvent;
use crate::engine::approval::{Approver, Ask, Decision};
use crate::engine::view::{
    Activity, ApprovalView, Entry, PlanView, SessionView, Snapshot, TaskView,
};

pub(super) fn t0() -> Timestamp {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

pub(super) fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

pub(super) fn sid(n: u128) -> SessionId {
    SessionId::from_u128(0x0190_0000_0000_0000_0000_0000_0000_0000 + n)
}

pub(super) fn tid(n: u128) -> TaskId {
    TaskId::from_u128(0x0190_0000_0000_0000_0000_0000_0001_0000 + n)
}

pub(super) fn plan_id() -> PlanId {
    PlanId::from_u128(0x0190_0000_0000_0000_0000_0000_0002_0000)
}

const TASKS: &[(&str, &[&str], TaskStatus)] = &[
    ("design", &[], TaskStatus::Done),
    ("api", &["design"], TaskStatus::Running),
    ("storage", &["design"], TaskStatus::Running),
    ("client", &["design"], TaskStatus::Failed),
    ("tests", &["api", "storage"], TaskStatus::Pending),
    ("e2e", &["client", "api"], TaskStatus::Blocked),
    ("review", &["tests", "e2e"], TaskStatus::Pending),
];

pub(super) fn session(
    n: u128,
    key: &str,
    agent: &str,
    status: SessionStatus,
    started: i64,
) -> SessionView {
    let mut s = Session::new(
        sid(n),
        format!("add-pagination/{key} #1"),
        SessionKind::Code,
        at(started),
    );
    s.status = status;
    s.plan = Some(plan_id());
    s.task = TASKS
        .iter()
        .position(|(k, ..)| *k == key)
        .map(|i| tid(i as u128));
    s.agent = Some(AgentName::new(agent).unwrap());
    s.attempt = 1;
    s.started_at = Some(at(started));
    s.usage = Usage {
        input_tokens: 1000 * n as u64,
        output_tokens: 150 * n as u64,
        cost: 0.01 * n as f64,
        ..Usage::default()
    };
    if crate::domain::Lifecycle::is_terminal(status) {
        s.finished_at = Some(at(started + 95));
    }
    if status == SessionStatus::Failed {
        s.last_error = Some("tests failed: 3 of 41".into());
    }
    SessionView {
        session: s,
        task: key.into(),
        last: Some(Entry {
            at: at(started + 30),
            part: Some("p1".into()),
            activity: Activity::Tool {
                tool: "edit".into(),
                status: "completed".into(),
                title: format!("src/{key}.rs"),
            },
        }),
    }
}

pub(super) fn agent(name: &str, status: AgentStatus, load: u32, max: u32) -> Agent {
    let mut a = Agent::new(AgentName::new(name).unwrap(), Backend::Simulated, max);
    a.status = status;
    a.load = load;
    a.capabilities = ["code".to_string()].into();
    a
}

/// `task` moving from `from` to `to`, as the engine tells it.
fn task_moved(
    task: &crate::engine::view::TaskView,
    from: TaskStatus,
    to: TaskStatus,
) -> EngineEvent {
    EngineEvent::Transition(crate::domain::DomainEvent::new(
        crate::domain::Transition::Task {
            id: task.id,
            key: task.key.clone(),
            from,
            to,
        },
        "test",
        jiff::Timestamp::now(),
    ))
}

pub(super) fn snapshot() -> Snapshot {
    let tasks = TASKS
        .iter()
        .enumerate()
        .map(|(i, (key, needs, status))| TaskView {
            check: None,
            waits: None,
            id: tid(i as u128),
            key: key.to_string(),
            status: *status,
            attempts: u32::from(*status != TaskStatus::Pending && *status != TaskStatus::Blocked),
            needs: needs.iter().map(|n| n.to_string()).collect(),
            capabilities: vec!["code".into()],
            // The sessions below, by their tasks.
            session: ["design", "client", "api", "storage"]
                .iter()
                .position(|k| k == key)
                .map(|n| sid(n as u128 + 1)),
        })
        .collect();
    Snapshot {
        seq: 0,
        paused: false,
        plans: vec![PlanView {
            key: String::new(),
            id: plan_id(),
            name: "add-pagination".into(),
            repo: "/work/repo".into(),
            tasks,
            landing: None,
        }],
        sessions: vec![
            session(4, "storage", "coder-2", SessionStatus::WaitingApproval, 200),
            session(3, "api", "coder-1", SessionStatus::Running, 180),
            session(2, "client", "coder-1", SessionStatus::Failed, 100),
            session(1, "design", "planner", SessionStatus::Completed, 0),
        ],
        running: 2,
        fleets: Vec::new(),
        agents: vec![
            agent("planner", AgentStatus::Online, 0, 2),
            agent("coder-1", AgentStatus::Online, 1, 2),
            agent("coder-2", AgentStatus::Degraded, 1, 2),
            agent("tester", AgentStatus::Draining, 0, 3),
        ],
        approvals: vec![ApprovalView {
            session: sid(4),
            task: "storage".into(),
            ask: Ask {
                id: "per_7f3a".into(),
                permission: "external_directory".into(),
                patterns: vec!["/var/cache/pg/*".into()],
                questions: Vec::new(),
            },
        }],
        usage: Usage {
            input_tokens: 10_000,
            output_tokens: 1_500,
            cost: 0.1,
            ..Usage::default()
        },
        conflicts: Vec::new(),
        budgets: Default::default(),
    }
}

pub(super) fn app() -> App {
    let theme = Theme::load("industrial", None, ColorDepth::None).unwrap();
    let mut app = App::new(theme, Keymap::default());
    app.now = at(300);
    app.zone = jiff::tz::TimeZone::UTC;
    app.update(Msg::Snapshot(Box::new(snapshot())));
    for (secs, key, to) in [
        (0, "design", TaskStatus::Done),
        (100, "client", TaskStatus::Failed),
        (120, "e2e", TaskStatus::Blocked),
    ] {
        let event = DomainEvent::new(
            Transition::Task {
                id: tid(TASKS.iter().position(|(k, ..)| *k == key).unwrap() as u128),
                key: key.into(),
                from: TaskStatus::Running,
                to,
            },
            "as scripted",
            at(secs),
        );
        app.update(Msg::Engine(crate::tui::tests::told(
            EngineEvent::Transition(event),
        )));
    }
    for _ in 0..20 {
        app.update(Msg::Tick);
    }
    app.toast = None;
    app
}

pub(super) fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub(super) fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

pub(super) fn draw(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| super::ui::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

#[test]
fn every_pane_at_80x24_and_160x48() {
    for (width, height) in [(80, 24), (160, 48)] {
        for pane in [
            Pane::Sessions,
            Pane::Agents,
            Pane::Tasks,
            Pane::Approvals,
            Pane::Events,
        ] {
            let mut app = app();
            app.focus = pane;
            let name = format!("{pane:?}_{width}x{height}").to_lowercase();
            insta::assert_snapshot!(name, draw(&mut app, width, height));
        }
    }
}

#[test]
fn overlays_detail_graph_and_inputs() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help_80x24", draw(&mut app, 80, 24));
    key(&mut app, KeyCode::Esc);

    // Detail of the selected (newest) session: its transcript; the shared context only on the
    // attempt that left it (this one is still waiting for approval).
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![
            Effect::Request(Request::Transcript(sid(4))),
            Effect::Request(Request::Snapshot),
            Effect::Request(Request::Context(plan_id()))
        ]
    );
    app.update(Msg::Context(
        plan_id(),
        vec![crate::domain::TaskContext {
            plan: plan_id(),
            task: tid(2),
            key: "storage".into(),
            summary: Some("cursor queries added".into()),
            files_changed: vec!["src/storage.rs".into()],
            values: vec![("index".into(), "users_created_at_id".into())],
            commit: Some("4e1f0c2a9b".into()),
            merge: crate::domain::MergeState::None,
            conflict_reruns: 0,
            check_reruns: 0,
        }],
    ));
    let entries = vec![
        Entry {
            at: at(201),
            part: Some("t1".into()),
            activity: Activity::Text {
                text: "I will add cursor queries.\nFirst the index.".into(),
            },
        },
        Entry {
            at: at(230),
            part: Some("p1".into()),
            activity: Activity::Tool {
                tool: "edit".into(),
                status: "completed".into(),
                title: "src/storage.rs".into(),
            },
        },
        Entry {
            at: at(240),
            part: None,
            activity: Activity::Step {
                usage: Usage {
                    input_tokens: 4000,
                    output_tokens: 600,
                    ..Usage::default()
                },
            },
        },
    ];
    app.update(Msg::Transcript(sid(4), entries));
    // A live update to the running tool call replaces its line rather than adding one.
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Activity {
            session: sid(4),
            entry: Entry {
                at: at(250),
                part: Some("p2".into()),
                activity: Activity::Tool {
                    tool: "bash".into(),
                    status: "running".into(),
                    title: "cargo test".into(),
                },
            },
        },
    )));
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Activity {
            session: sid(4),
            entry: Entry {
                at: at(260),
                part: Some("p2".into()),
                activity: Activity::Tool {
                    tool: "bash".into(),
                    status: "completed".into(),
                    title: "cargo test".into(),
                },
            },
        },
    )));
    insta::assert_snapshot!("detail_100x30", draw(&mut app, 100, 30));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);

    // The dependency graph, with `client` selected (its need and dependent are marked).
    app.focus = Pane::Tasks;
    key(&mut app, KeyCode::Char('v'));
    draw(&mut app, 120, 36);
    for _ in 0..4 {
        key(&mut app, KeyCode::Char('j'));
    }
    insta::assert_snapshot!("graph_120x36", draw(&mut app, 120, 36));

    // Filter, palette and the new-task dialog show in the footer.
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "coder-1");
    let screen = draw(&mut app, 120, 36);
    insta::assert_snapshot!("filter_120x36", screen);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "submit plan.toml");
    insta::assert_snapshot!("palette_80x24", draw(&mut app, 80, 24));
}

#[test]
fn tiny_windows_say_so_and_never_panic() {
    let mut app = app();
    insta::assert_snapshot!("too_small_30x8", draw(&mut app, 30, 8));
    for (w, h) in [
        (1, 1),
        (0, 0),
        (40, 10),
        (41, 11),
        (79, 23),
        (2, 50),
        (300, 3),
    ] {
        for mode_key in [KeyCode::Enter, KeyCode::Char('?'), KeyCode::Char('v')] {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            terminal.draw(|f| super::ui::draw(f, &mut app)).unwrap();
            key(&mut app, mode_key);
            terminal.draw(|f| super::ui::draw(f, &mut app)).unwrap();
            key(&mut app, KeyCode::Esc);
        }
    }
}

#[test]
fn keys_turn_into_engine_requests() {
    let mut app = app();
    // Approvals: the selected request, once / always / reject; it leaves the pane at once.
    app.focus = Pane::Approvals;
    assert_eq!(
        key(&mut app, KeyCode::Char('A')),
        vec![Effect::Request(Request::Approve(
            "per_7f3a".into(),
            Decision::Always,
            Approver::Key
        ))]
    );
    assert!(app.view.approvals.is_empty());
    // Cancel and retry act on the selected session's task.
    app.focus = Pane::Sessions;
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        vec![Effect::Request(Request::Retry(tid(3), "client".into()))]
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('p')),
        vec![Effect::Request(Request::Pause(true))]
    );
    // Drain the selected agent; a draining one is undrained.
    app.focus = Pane::Agents;
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(
        key(&mut app, KeyCode::Char('d')),
        vec![Effect::Request(Request::Drain("tester".into(), false))]
    );
    // The palette finds tasks by name.
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "cancel add-pagination/api");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Cancel(
            tid(1),
            "add-pagination/api".into()
        ))]
    );
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "cancel nope");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(
        app.toast
            .as_ref()
            .unwrap()
            .text
            .contains("no task \"nope\"")
    );
    // New task.
    key(&mut app, KeyCode::Char('n'));
    typed(&mut app, "fix the flaky test");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Prompt(
            "fix the flaky test".into()
        ))]
    );
    // Quitting while sessions run asks first; n stays, y leaves.
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert_eq!(app.mode, Mode::ConfirmQuit { rooms: 0 });
    key(&mut app, KeyCode::Char('n'));
    assert!(!app.should_quit());
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(key(&mut app, KeyCode::Char('y')), vec![Effect::Quit]);
    assert!(app.should_quit());
}

#[test]
fn engine_events_update_the_view_without_a_snapshot() {
    let mut app = app();
    let before = app.view.sessions.len();
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Dispatched {
            plan: plan_id(),
            task: tid(4),
            key: "tests".into(),
            session: sid(9),
            agent: AgentName::new("planner").unwrap(),
            attempt: 1,
        },
    )));
    assert_eq!(app.view.sessions.len(), before + 1);
    assert_eq!(app.view.sessions[0].session.status, SessionStatus::Running);
    assert_eq!(app.view.agents[0].load, 1);
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Transition(DomainEvent::new(
            Transition::Session {
                id: sid(9),
                from: SessionStatus::Running,
                to: SessionStatus::Completed,
            },
            "finished",
            at(320),
        )),
    )));
    assert_eq!(
        app.view.sessions[0].session.status,
        SessionStatus::Completed
    );
    assert_eq!(app.view.agents[0].load, 0);
    // A new plan needs a snapshot for its tasks.
    let effects = app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::PlanSubmitted {
            plan: PlanId::generate(),
            name: "next".into(),
            tasks: 3,
            key: "next".into(),
            branch: None,
        },
    )));
    assert_eq!(effects, vec![Effect::Request(Request::Snapshot)]);
    // Missed events: catch up from a snapshot, and say so.
    assert_eq!(
        app.update(Msg::Lagged(12)),
        vec![Effect::Request(Request::Snapshot)]
    );
    assert!(
        app.view
            .log
            .back()
            .unwrap()
            .text
            .contains("12 events missed")
    );
}

#[test]
fn a_planned_plan_is_shown_for_approval_and_submitted_only_on_yes() {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "plan Add pagination");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Plan("Add pagination".into()))]
    );
    let proposal = crate::engine::Proposal {
        name: "add-pagination".into(),
        toml: "name = \"add-pagination\"\nrepo = \"/r\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n"
            .into(),
        tasks: 1,
        agent: "planner".into(),
        session: "ses_1".into(),
    };
    app.update(Msg::Proposal(Box::new(proposal.clone())));
    insta::assert_snapshot!("review_80x24", draw(&mut app, 80, 24));
    // Discarded: nothing is submitted.
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    app.update(Msg::Proposal(Box::new(proposal.clone())));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Request(Request::SubmitText(
            "(plan by planner)".into(),
            proposal.toml
        ))]
    );
}

#[test]
fn the_detail_view_shows_the_sessions_diff_on_d() {
    let mut app = app();
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        key(&mut app, KeyCode::Char('D')),
        vec![Effect::Request(Request::Diff(sid(4)))]
    );
    let diff = "diff --git a/src/storage.rs b/src/storage.rs\n--- a/src/storage.rs\n+++ b/src/storage.rs\n@@ -1,2 +1,2 @@\n fn page() {\n-    todo!()\n+    cursor()\n";
    app.update(Msg::Diff(sid(4), Ok(diff.into())));
    insta::assert_snapshot!("detail_diff_100x20", draw(&mut app, 100, 20));
    // D again: back to the transcript, without asking the engine.
    assert!(key(&mut app, KeyCode::Char('D')).is_empty());
}

/// `event` numbered after every event this test numbered so far (a snapshot of these tests
/// says 0).
pub(super) fn told(event: crate::engine::EngineEvent) -> crate::engine::Told {
    // Per test thread: each test's room sees 1, 2, 3... with no gaps.
    thread_local!(static SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    let seq = SEQ.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    crate::engine::Told { seq, event }
}

/// A snapshot that reflects fewer events than the room has seen (it was asked for before
/// them) is not the truth by itself: the newer events are replayed onto it, and events it
/// reflects already are not applied twice.
#[test]
fn a_late_snapshot_gets_the_newer_events_replayed_and_old_ones_are_not_applied_twice() {
    use crate::domain::TaskStatus;
    let mut view = crate::tui::view::View::default();
    let base = snapshot();
    let task = base.plans[0]
        .tasks
        .iter()
        .find(|t| t.status == TaskStatus::Pending)
        .expect("a pending task")
        .clone();
    view.apply_snapshot(base.clone());
    let moved = |from, to| task_moved(&task, from, to);
    let running = crate::engine::Told {
        seq: 1,
        event: moved(TaskStatus::Pending, TaskStatus::Running),
    };
    let done = crate::engine::Told {
        seq: 2,
        event: moved(TaskStatus::Running, TaskStatus::Done),
    };
    view.receive(running.clone());
    view.receive(done);
    // Taken after the first event, arriving after the second.
    let mut late = base;
    let t = late.plans[0]
        .tasks
        .iter_mut()
        .find(|t| t.id == task.id)
        .unwrap();
    t.status = TaskStatus::Running;
    t.attempts += 1;
    late.seq = 1;
    view.apply_snapshot(late);
    let shown = |view: &crate::tui::view::View| {
        let t = view.plans[0]
            .tasks
            .iter()
            .find(|t| t.id == task.id)
            .unwrap();
        (t.status, t.attempts)
    };
    assert_eq!(
        shown(&view).0,
        TaskStatus::Done,
        "the newer event is replayed"
    );
    assert_eq!(shown(&view).1, task.attempts + 1, "counted once");
    assert_eq!(view.seq, 2);
    view.receive(running);
    assert_eq!(
        shown(&view).0,
        TaskStatus::Done,
        "an old event changes nothing"
    );
    assert!(!view.wants_snapshot);
}

/// Found in review: an event numbered past a gap (events the room never got) asks for a
/// snapshot, and an event a snapshot overtook still has its line in the events pane.
#[test]
fn a_gap_in_the_numbers_asks_for_a_snapshot_and_overtaken_events_still_show() {
    use crate::domain::TaskStatus;
    let mut view = crate::tui::view::View::default();
    let mut base = snapshot();
    base.seq = 5;
    let task = base.plans[0].tasks[0].clone();
    view.apply_snapshot(base);
    let moved = |seq, to| crate::engine::Told {
        seq,
        event: task_moved(&task, task.status, to),
    };
    let lines = view.log.len();
    view.receive(moved(4, TaskStatus::Running));
    assert_eq!(view.log.len(), lines + 1, "told once, so shown");
    assert!(!view.wants_snapshot, "reflected by the snapshot already");
    view.receive(moved(8, TaskStatus::Running));
    assert!(view.wants_snapshot, "6 and 7 never came");
}

#[test]
fn an_ended_sessions_stored_transcript_is_not_called_live() {
    use crate::domain::Lifecycle;
    let mut app = app();
    let ended = app
        .view
        .sessions
        .iter()
        .find(|s| s.session.status.is_terminal())
        .map(|s| s.session.id)
        .unwrap();
    app.mode = super::app::Mode::Detail(ended);
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains(" transcript · D shows the diff "),
        "{screen}"
    );
    assert!(!screen.contains("(live)"), "{screen}");
    // Nothing to say to it, interrupt or cancel: its footer offers none of that (it did).
    assert!(!screen.contains("interrupt"), "{screen}");
    assert!(!screen.contains("say"), "{screen}");
    let running = app
        .view
        .sessions
        .iter()
        .find(|s| s.session.status == SessionStatus::Running)
        .map(|s| s.session.id)
        .unwrap();
    app.mode = super::app::Mode::Detail(running);
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("interrupt"), "{screen}");
}

/// Quitting the room that hosts the engine while another room is attached asks first, and
/// says the other room loses its engine (it quit at once when no session ran, and the
/// question, when sessions ran, did not mention the other room).
#[test]
fn quitting_the_hosting_room_asks_while_another_room_is_attached() {
    use crate::engine::{Follower, Rooms};
    let mut app = app();
    app.view.sessions.retain(|s| !s.session.is_active());
    app.view.generation += 1;
    assert_eq!(app.view.running(), 0);
    let rooms = Rooms::default();
    let _this = rooms.attend(Follower::Room);
    app.rooms = Some(rooms.clone());
    // Alone (a stream such as `ocio events` is no room): q quits at once.
    let stream = rooms.attend(Follower::Stream);
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Effect::Quit]);
    drop(stream);
    let mut app = self::app();
    app.view.sessions.retain(|s| !s.session.is_active());
    app.view.generation += 1;
    app.rooms = Some(rooms.clone());
    let other = rooms.attend(Follower::Room);
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert_eq!(app.mode, Mode::ConfirmQuit { rooms: 1 });
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("Another control room is attached: it loses the engine;"),
        "{screen}"
    );
    assert!(!screen.contains("running or waiting"), "{screen}");
    key(&mut app, KeyCode::Char('n'));
    assert!(!app.should_quit());
    drop(other);
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Effect::Quit]);
}

/// The quit question counts every session not ended, one waiting for approval too, and says
/// so; one is one session. It said `1 sessions are running.` of a session waiting for approval.
#[test]
fn the_quit_question_counts_one_waiting_session_in_true_words() {
    let mut app = app();
    app.view
        .sessions
        .retain(|s| !s.session.is_active() || s.session.status == SessionStatus::WaitingApproval);
    app.view.generation += 1;
    assert_eq!(app.view.running(), 1);
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(app.mode, Mode::ConfirmQuit { rooms: 0 });
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("1 session is running or waiting."),
        "{screen}"
    );
}

/// The quit question tells apart the sessions that stop with ocio (simulated ones, which run
/// again from the start next time) and those on a server ocio started itself (`managed`),
/// which runs on for its linger time only.
#[test]
fn the_quit_question_says_which_sessions_stop_with_ocio() {
    use crate::domain::Backend;
    let server = |managed: bool, linger: Option<u64>| Backend::Opencode {
        url: (!managed).then(|| "http://box:4096".to_string()),
        managed,
        password_env: None,
        linger,
    };
    // The quit question with agent `only` (every agent when `None`) on `backend`.
    let asked = |app: &mut App, only: Option<&str>, backend: Backend| {
        for agent in &mut app.view.agents {
            if only.is_none_or(|name| agent.name.as_str() == name) {
                agent.backend = backend.clone();
            }
        }
        app.view.generation += 1;
        key(app, KeyCode::Char('q'));
        let screen = draw(app, 100, 30);
        key(app, KeyCode::Char('n'));
        screen
    };
    let mut app = app();
    let screen = asked(&mut app, None, server(false, None));
    assert!(screen.contains("keep running and are"), "{screen}");
    assert!(!screen.contains("(managed)"), "{screen}");
    // coder-2 (one of the two running sessions) is a managed server.
    let screen = asked(&mut app, Some("coder-2"), server(true, None));
    assert!(screen.contains("keep running and are"), "{screen}");
    assert!(
        screen.contains("1 of them is on a server ocio started (managed)")
            && screen.contains("it runs on for up to 1h (its `linger`)"),
        "{screen}"
    );
    assert!(!screen.contains("run again from the start"), "{screen}");
    // coder-2 is simulated.
    let screen = asked(&mut app, Some("coder-2"), Backend::Simulated);
    assert!(!screen.contains("(managed)"), "{screen}");
    assert!(
        screen.contains("1 of them stops with ocio (simulated, or no linger)")
            && screen.contains("run again from the start"),
        "{screen}"
    );
    // Managed with `linger = "0s"`: it stops with ocio, and with a linger the time is told.
    let screen = asked(&mut app, Some("coder-2"), server(true, Some(0)));
    assert!(!screen.contains("(managed)"), "{screen}");
    assert!(screen.contains("1 of them stops with ocio"), "{screen}");
    let screen = asked(&mut app, Some("coder-2"), server(true, Some(600)));
    assert!(screen.contains("it runs on for up to 10m"), "{screen}");
}

/// A session lost while the room watches says why in its LAST column, as it does after a
/// restart (from the store); it was empty until then (found trying the product by hand).
#[test]
fn a_session_lost_while_watched_says_why() {
    use crate::domain::{DomainEvent, Transition};
    use crate::engine::EngineEvent;
    let mut app = app();
    let running = app
        .view
        .sessions
        .iter()
        .find(|s| s.session.status == SessionStatus::Running)
        .map(|s| s.session.id)
        .expect("a running session in the fixture");
    let lost = Transition::Session {
        id: running,
        from: SessionStatus::Running,
        to: SessionStatus::Lost,
    };
    let cause = "its server stopped working on it (restarted?) without an answer";
    app.update(Msg::Engine(told(EngineEvent::Transition(
        DomainEvent::new(lost, cause, at(300)),
    ))));
    let screen = draw(&mut app, 200, 40);
    let row = screen
        .lines()
        .find(|l| l.contains("│lost ") || l.contains("┃lost "))
        .unwrap_or_else(|| panic!("no lost row: {screen}"));
    assert!(row.contains("its server stopped working"), "{row}");
}

/// What a ready task waits for (from the snapshot) goes when it leaves ready, and the room
/// asks again when the agents change or a task no agent offers all of becomes ready: the room
/// follows events, not a snapshot a second.
#[test]
fn what_a_ready_task_waits_for_follows_the_events() {
    use crate::domain::TaskStatus;
    let mut view = crate::tui::view::View::default();
    let mut base = snapshot();
    base.seq = 1;
    base.plans[0].tasks[0].status = TaskStatus::Ready;
    base.plans[0].tasks[0].capabilities = vec!["gpu".into()];
    base.plans[0].tasks[0].waits = Some("for an agent offering gpu: none does".into());
    let task = base.plans[0].tasks[0].clone();
    view.apply_snapshot(base);
    let moved = |seq, from, to| crate::engine::Told {
        seq,
        event: task_moved(&task, from, to),
    };
    view.receive(moved(2, TaskStatus::Ready, TaskStatus::Running));
    assert_eq!(
        view.plans[0].tasks[0].waits, None,
        "running: it waits no more"
    );
    assert!(!view.wants_snapshot);
    view.receive(moved(3, TaskStatus::Running, TaskStatus::Ready));
    assert!(view.wants_snapshot, "ready again, and no agent offers gpu");
}

/// Enter on a task with no session says whole what it waits for (the tree clips it at 60
/// characters; Enter did nothing: hand trial).
#[test]
fn enter_on_a_task_with_no_session_says_what_it_waits_for_whole() {
    use crate::domain::TaskStatus;
    let mut app = app();
    let mut snapshot = snapshot();
    let waits = format!(
        "for box-{}-4096, a member of fleet box, to join",
        "9".repeat(60)
    );
    snapshot.plans[0].tasks[4].status = TaskStatus::Ready;
    snapshot.plans[0].tasks[4].waits = Some(waits.clone());
    let ids: Vec<_> = snapshot.plans[0].tasks.iter().map(|t| t.id).collect();
    app.update(Msg::Snapshot(Box::new(snapshot)));
    app.focus = Pane::Tasks;
    let mut opened = |id| {
        draw(&mut app, 120, 30);
        for _ in 0..20 {
            if app.panes.selected_task(&app.view).map(|(t, _)| t) == Some(id) {
                break;
            }
            key(&mut app, KeyCode::Char('j'));
        }
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.mode, Mode::Normal);
        app.toast.take().map(|t| t.text).unwrap_or_default()
    };
    assert_eq!(opened(ids[4]), format!("tests ready: waits {waits}"));
    assert_eq!(
        opened(ids[6]),
        "review pending: waits for tests, e2e to be done"
    );
}

/// A running session whose agent is offline says so where its last activity would be (it
/// read `running` with its last tool call, as if work went on: hand trial).
#[test]
fn a_running_session_on_an_offline_agent_says_so_in_the_room() {
    let mut app = app();
    let mut snapshot = snapshot();
    for agent in &mut snapshot.agents {
        if agent.name.as_str() == "coder-1" {
            agent.status = AgentStatus::Offline;
        }
    }
    app.update(Msg::Snapshot(Box::new(snapshot)));
    let screen = draw(&mut app, 200, 40);
    let row = screen
        .lines()
        .find(|l| l.contains("coder-1 is offline"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(row.contains("running"), "{row}");
}

/// A session that waits for the operator's message (interrupted, or its request rejected) is
/// counted as waiting for them, in the header and the approvals pane, whose row says how to
/// send one, and opens the session (it was counted nowhere: hand trial).
/// A request answered here leaves the inbox at once, and its session with it: it read as
/// waiting for a message (counted, with its row) until the engine's word that it runs again.
/// A rejection ends its turn: that one does wait for a message.
#[test]
fn a_session_whose_request_is_answered_here_does_not_wait_for_a_message_meanwhile() {
    let mut approving = app();
    approving.focus = Pane::Approvals;
    assert_eq!(approving.view.waiting(), 1, "the request");
    assert!(matches!(
        key(&mut approving, KeyCode::Char('a')).as_slice(),
        [Effect::Request(Request::Approve(_, Decision::Once, _))]
    ));
    assert_eq!(approving.view.waiting(), 0, "nothing waits for you");
    let screen = draw(&mut approving, 160, 48);
    assert!(!screen.contains("waits for your message"), "{screen}");

    let mut rejecting = app();
    rejecting.focus = Pane::Approvals;
    key(&mut rejecting, KeyCode::Char('r'));
    assert_eq!(
        rejecting.view.waiting(),
        1,
        "rejected, it waits for a message"
    );
}

#[test]
fn a_session_waiting_for_a_message_waits_for_you() {
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.approvals.clear();
    app.update(Msg::Snapshot(Box::new(snapshot)));
    assert_eq!(app.view.waiting(), 1, "storage waits with no request");
    let screen = draw(&mut app, 160, 48);
    assert!(screen.contains("1 waiting for you"), "{screen}");
    assert!(screen.contains("waits for your message"), "{screen}");
    assert!(screen.contains("approvals 0 · messages 1"), "{screen}");
    app.focus = Pane::Approvals;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(4)));
}
