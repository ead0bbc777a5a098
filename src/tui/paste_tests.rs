//! A paste is text, never keys: into the open input (lines kept in a prompt, made spaces in a
//! one-line input), dropped with none open; prompts are multi-line editors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Effect, Mode, Msg, Pane, Request};
use super::editor::LINE_LIMIT;
use super::tests::{app, draw, key, typed};

fn chord(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, modifiers)))
}

fn paste(app: &mut App, text: &str) -> Vec<Effect> {
    app.update(Msg::Paste(text.into()))
}

#[test]
fn a_paste_into_the_new_task_prompt_keeps_its_lines_and_fires_no_key() {
    let mut app = app();
    key(&mut app, KeyCode::Char('n'));
    // tmux and most terminals send a pasted line break as a carriage return.
    assert!(paste(&mut app, "say hello\rpd\r\nnd").is_empty());
    assert!(matches!(app.mode, Mode::NewTask(_)), "{:?}", app.mode);
    assert!(!app.view.paused);
    // The editor is on screen with every line and how to submit.
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("new task> say hello"), "{screen}");
    assert!(screen.contains("pd") && screen.contains("nd"), "{screen}");
    assert!(screen.contains("enter submit"), "{screen}");
    assert!(screen.contains("ctrl-j"), "{screen}");
    // A new line by key, typed text, then enter submits the whole prompt once.
    chord(&mut app, KeyCode::Char('j'), KeyModifiers::CONTROL);
    typed(&mut app, "end");
    chord(&mut app, KeyCode::Enter, KeyModifiers::ALT);
    typed(&mut app, "!");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Prompt(
            "say hello\npd\nnd\nend\n!".into()
        ))]
    );
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn ctrl_s_submits_and_esc_cancels_a_prompt() {
    let mut app = app();
    key(&mut app, KeyCode::Char('n'));
    paste(&mut app, "one\ntwo");
    assert_eq!(
        chord(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL),
        vec![Effect::Request(Request::Prompt("one\ntwo".into()))]
    );
    key(&mut app, KeyCode::Char('n'));
    paste(&mut app, "gone");
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn a_paste_with_no_input_open_does_nothing() {
    let mut app = app();
    for focus in [Pane::Sessions, Pane::Agents, Pane::Approvals] {
        app.focus = focus;
        assert!(paste(&mut app, "pdnqRcAa\r:quit\r").is_empty());
        assert_eq!(app.mode, Mode::Normal);
        assert!(!app.should_quit());
        assert!(!app.view.approvals.is_empty());
    }
    // Nor in the help or a session's detail.
    key(&mut app, KeyCode::Char('?'));
    assert!(paste(&mut app, "q").is_empty());
    assert_eq!(app.mode, Mode::Help);
}

#[test]
fn a_paste_into_a_single_line_input_turns_line_breaks_into_spaces() {
    let mut app = app();
    key(&mut app, KeyCode::Char('/'));
    paste(&mut app, "coder\r\n1");
    assert_eq!(app.panes.filter, "coder 1");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char(':'));
    paste(&mut app, "drain\ncoder-1\n");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Drain("coder-1".into(), true))]
    );
}

#[test]
fn prompt_in_the_palette_opens_the_multi_line_editor() {
    let mut app = app();
    // `:prompt` alone opens the editor.
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "prompt");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(app.mode, Mode::NewTask(_)), "{:?}", app.mode);
    key(&mut app, KeyCode::Esc);
    // A multi-line paste after `:prompt ` goes on in the editor, its lines kept.
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "prompt ");
    paste(&mut app, "first\nsecond");
    assert!(matches!(app.mode, Mode::NewTask(_)), "{:?}", app.mode);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Request(Request::Prompt("first\nsecond".into()))]
    );
}

/// A paste the command line cannot hold is cut to what it holds, and the footer, where the
/// operator is looking, says so while still showing the cursor. Before, the whole paste went
/// in (a character at a time, its cost growing with its square) and the line ran off screen.
#[test]
fn a_paste_too_long_for_the_command_line_is_cut_and_said_so() {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "drain ");
    paste(&mut app, &"coder-1 ".repeat(1_250));
    let Mode::Palette(editor, _) = &app.mode else {
        panic!("{:?}", app.mode);
    };
    assert_eq!(editor.text().chars().count(), LINE_LIMIT);
    assert_eq!(editor.cursor(), (0, LINE_LIMIT));
    let screen = draw(&mut app, 120, 30);
    let note = format!("co▏ paste cut to {LINE_LIMIT} characters, 5910 left out");
    assert!(screen.contains(&note), "{screen}");
    // Typing adds nothing more, and the line still runs.
    typed(&mut app, "xyz");
    let Mode::Palette(editor, _) = &app.mode else {
        panic!("{:?}", app.mode);
    };
    assert_eq!(editor.text().chars().count(), LINE_LIMIT);
}

/// After `:prompt `, a paste too long for the command line is a prompt: it goes on, whole, in
/// the prompt's editor, which has no such bound.
#[test]
fn a_long_paste_after_prompt_goes_whole_into_the_prompt_editor() {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "prompt ");
    let long = "refactor the parser ".repeat(500);
    paste(&mut app, &long);
    let Mode::NewTask(editor) = &app.mode else {
        panic!("{:?}", app.mode);
    };
    assert_eq!(editor.text(), long);
    assert!(app.toast.is_none());
}

/// A paste after `:` whose first word is a command that takes no argument is refused whole,
/// saying so on the status line: pasting `q y c long task...` quit the room, and `pause foo`
/// paused it.
#[test]
fn a_paste_after_a_command_that_takes_no_argument_is_refused_not_run() {
    let mut app = app();
    for (line, command) in [
        ("q y c long task that was meant to be a prompt", "quit"),
        ("quit now", "quit"),
        ("pause foo", "pause"),
        ("resume all", "resume"),
    ] {
        key(&mut app, KeyCode::Char(':'));
        paste(&mut app, line);
        assert!(key(&mut app, KeyCode::Enter).is_empty(), "{line}");
        assert!(!app.should_quit(), "{line}");
        assert_eq!(app.mode, Mode::Normal, "{line}");
        assert!(!app.view.paused, "{line}");
        let toast = app
            .toast
            .as_ref()
            .map(|t| t.text.clone())
            .unwrap_or_default();
        assert!(
            toast.contains(&format!("{command} takes no arguments")),
            "{line}: {toast}"
        );
        let screen = draw(&mut app, 120, 30);
        assert!(screen.contains("nothing done"), "{screen}");
    }
    // A task, an agent and a request are one word each: a paste of more is refused too.
    for (line, said) in [
        (
            "cancel api and then storage",
            "cancel takes one [PLAN/]TASK, not 4 words",
        ),
        (
            "drain coder-1 coder-2",
            "drain takes one AGENT, not 2 words",
        ),
        (
            "submit plans/a.toml now",
            "submit takes one PLAN.toml, not 2 words",
        ),
        (
            "approve 3gRjPQAb always now",
            "approve takes REQUEST [once|always|reject], not 3 words",
        ),
    ] {
        key(&mut app, KeyCode::Char(':'));
        paste(&mut app, line);
        assert!(key(&mut app, KeyCode::Enter).is_empty(), "{line}");
        let toast = app
            .toast
            .as_ref()
            .map(|t| t.text.clone())
            .unwrap_or_default();
        assert!(toast.contains(said), "{line}: {toast}");
    }
}

/// The new-task editor says where the task will run: a worktree of the repository around the
/// room's directory, or (outside git) that directory itself, edited in place (it said nothing,
/// and a task typed outside git edited the directory with no worktree).
#[test]
fn the_new_task_editor_says_where_the_task_runs() {
    let plain = tempfile::tempdir().unwrap();
    let said = super::task_home(plain.path());
    assert!(said.contains("itself: not a git repository"), "{said}");
    // The root (as the home directory) is refused at submit: said so here (it read "runs in /
    // itself" and Enter then refused: hand trial).
    let said = super::task_home(std::path::Path::new("/"));
    assert!(
        said.starts_with("cannot run here: / is the root of the file system"),
        "{said}"
    );
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    let inside = repo.path().join("src");
    std::fs::create_dir(&inside).unwrap();
    let said = super::task_home(&inside);
    assert_eq!(
        said,
        format!(
            "runs in {}: a worktree of its own on a branch of its own",
            repo.path().display()
        )
    );
    let mut app = app();
    app.task_home = Some(said.clone());
    key(&mut app, KeyCode::Char('n'));
    let screen = draw(&mut app, 160, 30);
    assert!(screen.contains("a worktree of its own"), "{screen}");
}
