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

/// A task whose session waits for the operator (a permission or a question) says so in the
/// task tree, not only `running`; in the graph it takes the waiting colour.
#[test]
fn a_task_whose_session_waits_for_you_says_so_in_the_tree() {
    let mut app = app();
    app.focus = Pane::Tasks;
    let screen = draw(&mut app, 120, 30);
    let row = |name: &str| {
        screen
            .lines()
            .find(|l| l.contains(&format!("{name} running")))
            .unwrap_or_else(|| panic!("no {name} row: {screen}"))
            .to_string()
    };
    assert!(
        row("storage").contains("running · waiting for you"),
        "{screen}"
    );
    assert!(!row("api").contains("waiting"), "{screen}");
    // Answered: it runs again, and the row says only that.
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Transition(DomainEvent::new(
            Transition::Session {
                id: sid(4),
                from: SessionStatus::WaitingApproval,
                to: SessionStatus::Running,
            },
            "approved",
            at(301),
        )),
    )));
    let screen = draw(&mut app, 120, 30);
    assert!(!screen.contains("waiting for you"), "{screen}");
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

/// The storage session's request made a question with two options.
fn with_question(app: &mut super::app::App) {
    use crate::engine::question::{Choice, QuestionItem};
    let choice = |label: &str| Choice {
        label: label.into(),
        description: format!("the {label} one"),
    };
    let question = QuestionItem {
        header: "Colour".into(),
        question: "Which colour should the button be?".into(),
        options: vec![choice("red"), choice("blue")],
        multiple: false,
        custom: true,
    };
    app.view.approvals[0].ask = crate::engine::approval::Ask::question(
        "que_01JQUESTION0000abcd1234".into(),
        vec![question],
    );
}

#[test]
fn a_question_is_shown_with_its_options_and_answered_by_number_or_text() {
    use crate::engine::question::Answer;
    let mut app = app();
    with_question(&mut app);
    app.focus = Pane::Sessions;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(4)));
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("asks a question  request abcd1234  a answer · r reject"),
        "{screen}"
    );
    assert!(
        screen.contains("Colour: Which colour should the button be?"),
        "{screen}"
    );
    assert!(
        screen.contains("[1] red  the red one") && screen.contains("[2] blue"),
        "{screen}"
    );
    // "Always" means nothing to a question: it says what does.
    assert!(key(&mut app, KeyCode::Char('A')).is_empty());
    assert!(
        app.toast
            .as_ref()
            .unwrap()
            .text
            .contains("a answers it, r rejects it")
    );
    // The answer key opens the answer's editor, over the detail; a paste is text there.
    assert!(key(&mut app, KeyCode::Char('a')).is_empty());
    assert!(matches!(app.mode, Mode::Answer(_)), "{:?}", app.mode);
    assert!(app.update(Msg::Paste("2".into())).is_empty());
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("answer storage · abcd1234"), "{screen}");
    assert!(screen.contains("answer> 2"), "{screen}");
    assert!(screen.contains("an option's number, or a text"), "{screen}");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Answer(
            "que_01JQUESTION0000abcd1234".into(),
            vec![Answer::Pick(vec![2])]
        ))]
    );
    assert!(
        app.view.approvals.is_empty(),
        "answered: it leaves the inbox"
    );
    assert_eq!(app.mode, Mode::Detail(sid(4)), "back to the detail");

    // An option the question does not have: said at once, the editor stays with its text.
    let mut app = super::tests::app();
    with_question(&mut app);
    app.focus = Pane::Approvals;
    key(&mut app, KeyCode::Char('a'));
    super::tests::typed(&mut app, "3");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(app.mode, Mode::Answer(_)), "{:?}", app.mode);
    assert!(app.toast.as_ref().unwrap().text.contains("no option 3"));
    assert_eq!(app.view.approvals.len(), 1);
    // ...where the operator is looking: under the editor (it went unshown: hand trial).
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("answer: ") && screen.contains("no option 3"),
        "{screen}"
    );

    // From the inbox: a typed answer; esc first drops one.
    let mut app = super::tests::app();
    with_question(&mut app);
    app.focus = Pane::Approvals;
    key(&mut app, KeyCode::Char('a'));
    super::tests::typed(&mut app, "x");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.view.approvals.len(), 1, "dropped: still waiting");
    key(&mut app, KeyCode::Char('a'));
    super::tests::typed(&mut app, "green please");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Answer(
            "que_01JQUESTION0000abcd1234".into(),
            vec![Answer::Text("green please".into())]
        ))]
    );
    // And `r` rejects one.
    let mut app = super::tests::app();
    with_question(&mut app);
    app.focus = Pane::Approvals;
    assert_eq!(
        key(&mut app, KeyCode::Char('r')),
        vec![Effect::Request(Request::Approve(
            "que_01JQUESTION0000abcd1234".into(),
            Decision::Reject,
            Approver::Key
        ))]
    );
}

#[test]
fn typed_answers_are_option_numbers_or_texts_a_line_each() {
    use crate::engine::question::Answer;
    assert_eq!(
        super::input::answers_of("2\n\n 1, 3 \nblue-ish\n", 3),
        vec![
            Answer::Pick(vec![2]),
            Answer::Pick(vec![1, 3]),
            Answer::Text("blue-ish".into())
        ]
    );
    // One question: the whole text is its answer, lines and all.
    assert_eq!(
        super::input::answers_of("blue,\nbut lighter\n", 1),
        vec![Answer::Text("blue,\nbut lighter".into())]
    );
    assert_eq!(
        super::input::answers_of(" 2 ", 1),
        vec![Answer::Pick(vec![2])]
    );
    assert!(super::input::answers_of("  \n", 1).is_empty());
}

#[test]
fn in_a_running_sessions_detail_i_sends_it_a_message_and_x_interrupts_it() {
    let mut app = app();
    app.focus = Pane::Sessions;
    // The second row: api, running (the first, storage, waits for an answer).
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(3)));
    assert!(key(&mut app, KeyCode::Char('i')).is_empty());
    assert!(matches!(app.mode, Mode::Say(..)), "{:?}", app.mode);
    // Typed and pasted text is the message, never keys.
    super::tests::typed(&mut app, "use the ");
    assert!(app.update(Msg::Paste("blue one\rplease".into())).is_empty());
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("message to api"), "{screen}");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Say(
            sid(3),
            "use the blue one\nplease".into()
        ))]
    );
    assert_eq!(app.mode, Mode::Detail(sid(3)));
    assert_eq!(
        key(&mut app, KeyCode::Char('x')),
        vec![Effect::Request(Request::Interrupt(sid(3)))]
    );
    // An ended session takes no message: it says so.
    app.view
        .sessions
        .iter_mut()
        .find(|s| s.session.id == sid(3))
        .unwrap()
        .session
        .status = SessionStatus::Completed;
    assert!(key(&mut app, KeyCode::Char('i')).is_empty());
    assert_eq!(app.mode, Mode::Detail(sid(3)));
    assert!(
        app.toast
            .as_ref()
            .unwrap()
            .text
            .contains("only a running session takes messages")
    );
}

/// Found in the demo: in a waiting-approval session's detail, `i` opened the message editor,
/// and only after a message was typed and sent did it say the session waits for an answer to
/// its request. It says so at once now, for `x` too (the engine refuses both while the
/// request waits), as `c` on a finished task does.
#[test]
fn in_a_waiting_sessions_detail_i_and_x_say_at_once_that_it_waits_for_an_answer() {
    for pressed in ['i', 'x'] {
        let mut app = app();
        app.focus = Pane::Sessions;
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.mode, Mode::Detail(sid(4)), "storage, waiting-approval");
        assert!(
            key(&mut app, KeyCode::Char(pressed)).is_empty(),
            "{pressed}"
        );
        assert_eq!(app.mode, Mode::Detail(sid(4)), "no editor for {pressed}");
        let toast = &app.toast.as_ref().unwrap().text;
        assert!(
            toast.contains(
                "waits for an answer to its request per_7f3a: answer that first (a once · A always · r reject)"
            ),
            "{toast}"
        );
        let screen = draw(&mut app, 100, 30);
        assert!(screen.contains("answer that first"), "{screen}");
    }
}

/// A write the operator rejected edited nothing: the detail does not list its file as edited
/// (it did, from the call's title, while it waited and after). One that went through does.
#[test]
fn a_rejected_write_is_not_a_file_edited() {
    use crate::engine::view::{Activity, Entry};
    let mut app = app();
    app.focus = Pane::Sessions;
    key(&mut app, KeyCode::Enter);
    let write = |part: &str, status: &str, file: &str| Entry {
        at: at(230),
        part: Some(part.into()),
        activity: Activity::Tool {
            tool: "write".into(),
            status: status.into(),
            title: file.into(),
        },
    };
    app.update(Msg::Transcript(
        sid(4),
        vec![
            write("p1", "error", "/outside/perm.txt"),
            write("p2", "pending", "/outside/later.txt"),
            write("p3", "completed", "src/inside.rs"),
        ],
    ));
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("files edited: src/inside.rs"), "{screen}");
    assert!(!screen.contains("files edited: /outside"), "{screen}");
    assert!(
        !screen.contains("perm.txt,") && !screen.contains(", /outside"),
        "{screen}"
    );
}

/// A merge conflict of task `n` (`key`) in `src/api.rs`, parked for the operator.
fn parked(n: u128, key: &str) -> crate::engine::view::ConflictView {
    crate::engine::view::ConflictView {
        plan: super::tests::plan_id(),
        task: super::tests::tid(n),
        key: key.into(),
        files: vec!["src/api.rs".into()],
        policy: crate::domain::task::ConflictPolicy::Manual,
        state: crate::engine::view::ConflictState::Parked,
    }
}

/// A parked merge conflict is a row of the approvals pane the cursor reaches: enter selects
/// its task in the tree and says how to settle it, `R` retries its task and `c` asks before
/// cancelling it, and an answer key says what the row is. Enter on it did nothing: the rows
/// could not be selected, and how to settle one was only in the events pane.
#[test]
fn a_parked_conflict_in_the_approvals_pane_is_selected_and_settled_from_there() {
    use super::tests::tid;
    let mut app = app();
    app.view.conflicts.push(parked(3, "client"));
    app.view.generation += 1;
    app.focus = Pane::Approvals;
    key(&mut app, KeyCode::Down);
    let screen = draw(&mut app, 160, 48);
    let row = screen
        .lines()
        .find(|l| l.contains("conflict (manual)"))
        .unwrap_or_else(|| panic!("no conflict row: {screen}"));
    assert!(
        row.contains("client") && row.contains("src/api.rs"),
        "{row}"
    );
    assert!(
        screen.contains("R retry · c cancel · enter how"),
        "{screen}"
    );
    // An answer key on it says what it is, and answers nothing.
    assert!(key(&mut app, KeyCode::Char('a')).is_empty());
    let toast = app.toast.as_ref().map(|t| t.text.clone()).unwrap();
    assert!(toast.contains("a merge conflict, not a request"), "{toast}");
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        vec![Effect::Request(Request::Retry(
            tid(3),
            "add-pagination/client".into()
        ))]
    );
    key(&mut app, KeyCode::Char('c'));
    assert!(
        matches!(&app.mode, Mode::ConfirmCancel { task, .. } if *task == tid(3)),
        "{:?}",
        app.mode
    );
    key(&mut app, KeyCode::Char('n'));
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.focus, Pane::Tasks);
    assert_eq!(
        app.panes.selected_task(&app.view),
        Some((tid(3), "add-pagination/client".into()))
    );
    let toast = app.toast.as_ref().map(|t| t.text.clone()).unwrap();
    assert!(
        toast.contains("client conflicted in src/api.rs: settle it on the integration branch"),
        "{toast}"
    );
}

/// The approvals cursor stays on what it was on as rows come and go above it, and the answer
/// keys go on with the next request: a request asked while the cursor is on a conflict does
/// not move it to another row (R then retried another task), and answering the request the
/// cursor is on leaves it on the request left, not on a conflict (the next `a` answered
/// nothing).
#[test]
fn the_approvals_cursor_stays_on_its_row_as_requests_come_and_go() {
    use super::tests::tid;
    let mut app = app();
    app.view.conflicts = vec![parked(3, "client"), parked(5, "e2e")];
    app.view.generation += 1;
    app.focus = Pane::Approvals;
    // Rows: the request, client, e2e. On e2e:
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let mut asked = app.view.approvals[0].clone();
    asked.ask.id = "per_second".into();
    app.view.approvals.push(asked);
    app.view.generation += 1;
    draw(&mut app, 160, 48);
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        vec![Effect::Request(Request::Retry(
            tid(5),
            "add-pagination/e2e".into()
        ))],
        "still on e2e"
    );
    // A request arriving between two keys, with no frame drawn between them: the same.
    let mut third = app.view.approvals[0].clone();
    third.ask.id = "per_third".into();
    app.view.approvals.insert(0, third);
    app.view.generation += 1;
    assert!(matches!(
        &key(&mut app, KeyCode::Char('R'))[..],
        [Effect::Request(Request::Retry(task, _))] if *task == tid(5)
    ));
    // On the last request: answered, the cursor goes to the request before it.
    app.view.approvals.remove(0);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Up);
    assert_eq!(
        app.panes.approvals.selected, 1,
        "e2e, client, then per_second"
    );
    let answered = key(&mut app, KeyCode::Char('a'));
    assert!(
        matches!(&answered[..], [Effect::Request(Request::Approve(id, ..))] if id == "per_second"),
        "{answered:?}"
    );
    let answered = key(&mut app, KeyCode::Char('a'));
    assert!(
        matches!(&answered[..], [Effect::Request(Request::Approve(id, ..))] if id == "per_7f3a"),
        "the next request, not the conflict below: {answered:?}"
    );
}

/// From another pane the answer keys answer the first request, as the approvals pane's border
/// says, whatever row its cursor was left on.
#[test]
fn from_another_pane_the_answer_keys_answer_the_first_request() {
    let mut app = app();
    app.view.conflicts.push(parked(3, "client"));
    app.view.generation += 1;
    app.focus = Pane::Approvals;
    key(&mut app, KeyCode::Down);
    app.focus = Pane::Sessions;
    let answered = key(&mut app, KeyCode::Char('a'));
    assert!(
        matches!(&answered[..], [Effect::Request(Request::Approve(id, ..))] if id == "per_7f3a"),
        "{answered:?}"
    );
}

/// Hand trial: a question's row in the approvals pane showed `a once · A always` (the keys
/// of a permission request) on the pane's border and in the footer; a question is answered
/// (`a` opens its answer's editor) or rejected, and Enter opens its session.
#[test]
fn a_questions_row_shows_the_keys_that_answer_it_not_the_permission_keys() {
    let mut app = app();
    with_question(&mut app);
    for focus in [Pane::Approvals, Pane::Sessions] {
        app.focus = focus;
        let screen = draw(&mut app, 160, 48);
        assert!(!screen.contains("once"), "{focus:?}:\n{screen}");
        assert!(!screen.contains("always"), "{focus:?}:\n{screen}");
        assert!(
            screen.contains("a answer · r reject"),
            "{focus:?}:\n{screen}"
        );
    }
    app.focus = Pane::Approvals;
    let screen = draw(&mut app, 160, 48);
    let footer = screen.lines().last().unwrap();
    assert!(footer.contains("a answer"), "{footer}");
    assert!(footer.contains("r reject"), "{footer}");
    assert!(footer.contains("enter open"), "{footer}");
    // Narrow, the border's short form: the answer and reject keys.
    let screen = draw(&mut app, 40, 30);
    assert!(!screen.contains("a/A/r"), "{screen}");
    assert!(screen.contains(" a/r "), "{screen}");
}
