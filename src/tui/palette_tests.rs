//! The command line's own keys: `?` on an empty line lists the commands instead of typing, Tab
//! completes a command's name, and the help and the list name every command it takes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{App, Effect, Mode, Request};
use super::link::submitted;
use super::palette::COMMANDS;
use super::tests::{app, draw, key, typed};
use crate::engine::{ApiError, EngineError};

fn line(app: &App) -> String {
    match &app.mode {
        Mode::Palette(editor, _) => editor.text(),
        other => panic!("the command line is closed: {other:?}"),
    }
}

#[test]
fn question_mark_on_an_empty_command_line_lists_every_command() {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    key(&mut app, KeyCode::Char('?'));
    assert_eq!(line(&app), "", "`?` was typed into the command line");
    let screen = draw(&mut app, 80, 24);
    for command in COMMANDS {
        assert!(
            screen.contains(&command.usage()),
            "{} missing from the list:\n{screen}",
            command.name
        );
    }
    // Typing narrows the list to the commands the line may still be.
    typed(&mut app, "un");
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("undrain AGENT"), "{screen}");
    assert!(!screen.contains("submit PLAN"), "{screen}");
    // Inside a command, `?` is text.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "prompt why?");
    assert_eq!(line(&app), "prompt why?");
}

#[test]
fn tab_completes_a_command_and_lists_the_candidates_of_an_ambiguous_one() {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "und");
    key(&mut app, KeyCode::Tab);
    assert_eq!(line(&app), "undrain ");
    typed(&mut app, "coder-1");
    assert_eq!(line(&app), "undrain coder-1");

    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "p");
    key(&mut app, KeyCode::Tab);
    assert_eq!(line(&app), "p");
    let screen = draw(&mut app, 80, 24);
    for shown in ["prompt [TEXT]", "plan GOAL", "pause"] {
        assert!(screen.contains(shown), "{shown} not listed:\n{screen}");
    }
    assert!(!screen.contains("retry [PLAN/]TASK"), "{screen}");
    typed(&mut app, "l");
    key(&mut app, KeyCode::Tab);
    assert_eq!(line(&app), "plan ");
}

#[test]
fn the_help_lists_every_command_the_palette_takes() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    let screen = draw(&mut app, 160, 60);
    for command in COMMANDS {
        assert!(
            screen.contains(&command.usage()),
            "{} missing from the help:\n{screen}",
            command.name
        );
    }
}

/// Found in the demo: Tab completed only command names; `:drain sim-p<tab>` and `:cancel
/// demo-feature/ch<tab>` did nothing. It completes what a command's first argument names:
/// agents, `plan/task` (or a plan), waiting requests.
#[test]
fn tab_completes_agents_tasks_plans_and_requests_after_the_command() {
    let complete = |app: &mut App, text: &str| {
        key(app, KeyCode::Esc);
        key(app, KeyCode::Char(':'));
        typed(app, text);
        key(app, KeyCode::Tab);
        line(app)
    };
    let mut app = app();
    assert_eq!(complete(&mut app, "drain pl"), "drain planner ");
    assert_eq!(complete(&mut app, "undrain tes"), "undrain tester ");
    assert_eq!(
        complete(&mut app, "cancel add-pagination/cl"),
        "cancel add-pagination/client "
    );
    assert_eq!(complete(&mut app, "retry e2"), "retry e2e ");
    assert_eq!(
        complete(&mut app, "budget add-pag"),
        "budget add-pagination"
    );
    assert_eq!(complete(&mut app, "approve per"), "approve per_7f3a ");
    // Several that start so: the line grows to what they share, and they are listed.
    assert_eq!(complete(&mut app, "drain cod"), "drain coder-");
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("coder-1 · coder-2"), "{screen}");
    // Many: all of them readable, on rows above the command line.
    assert_eq!(
        complete(&mut app, "cancel add-pagination/"),
        "cancel add-pagination/"
    );
    let screen = draw(&mut app, 80, 24);
    for task in [
        "design", "api", "storage", "client", "tests", "e2e", "review",
    ] {
        let path = format!("add-pagination/{task}");
        assert!(screen.contains(&path), "{path} not listed:\n{screen}");
    }
    let last = screen.lines().last().unwrap();
    assert!(last.contains(":cancel add-pagination/"), "{screen}");
    // None does: the line stays, and it says so.
    assert_eq!(complete(&mut app, "drain zz"), "drain zz");
    assert!(
        app.toast
            .as_ref()
            .unwrap()
            .text
            .contains("nothing here starts with \"zz\"")
    );
}

/// `:submit` of a plan with several problems shows them on the status line counted and apart,
/// each at its `file:line:col`: before, the five ran together with no separator.
#[test]
fn a_plans_problems_on_the_status_line_are_counted_and_kept_apart() {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "submit bad/plan.toml");
    let asked = key(&mut app, KeyCode::Enter);
    let path = std::path::Path::new("bad/plan.toml");
    assert_eq!(
        asked,
        vec![Effect::Request(Request::Submit(path.to_path_buf()))]
    );
    let text = "name = \"\"\nrepo = \".\"\nconflicts = \"rebase\"\n[[tasks]]\nid = \"design\"\n\
                prompt = \"\"\ntimeout = \"soon\"\n[[tasks]]\nid = \"impl\"\nretries = -1\n\
                prompt = \"x\"\n";
    let errors = crate::plan::PlanFile::parse(text, path).unwrap_err();
    // Each at its line and column; the file is named once, before them.
    let places: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let first = e.to_string().lines().next().unwrap().to_string();
            first.strip_prefix("bad/plan.toml:").unwrap().to_string()
        })
        .collect();
    assert_eq!(places.len(), 5, "{places:#?}");
    let refused = ApiError::from(EngineError::Plan(errors));
    app.update(submitted("submit bad/plan.toml".into(), path, Err(refused)));
    let toast = app.toast.as_ref().unwrap();
    assert!(toast.error);
    assert_eq!(
        toast.text,
        format!("submit bad/plan.toml: 5 problems: {}", places.join("; "))
    );
    let screen: String = draw(&mut app, 200, 40).split_whitespace().collect();
    for place in ["problems:1:8:", ";10:11:"] {
        assert!(screen.contains(place), "{place} missing:\n{screen}");
    }
    // A lone problem keeps its hint, after it on the same line.
    let one = crate::plan::PlanFile::parse("name = \"p\"\nrepo = \".\"\n", path).unwrap_err();
    let hint = one.to_string();
    assert!(hint.contains("\n  hint: "), "{hint}");
    let refused = ApiError::from(EngineError::Plan(one));
    app.update(submitted("submit bad/plan.toml".into(), path, Err(refused)));
    let toast = &app.toast.as_ref().unwrap().text;
    assert_eq!(
        *toast,
        format!(
            "submit bad/plan.toml: {}",
            hint.strip_prefix("bad/plan.toml:")
                .unwrap()
                .replace("\n  hint: ", " (hint: ")
                + ")"
        )
    );
}

/// `:submit` of a file that is not there names it once: the toast said
/// `submit /p/x.toml: /p/x.toml: cannot read the plan file: …` (hand trial).
#[test]
fn a_plan_file_that_cannot_be_read_is_named_once() {
    let mut app = app();
    let path = std::path::Path::new("/nonexistent/ocio/plan.toml");
    let errors = crate::plan::PlanFile::load(path).unwrap_err();
    let refused = ApiError::from(EngineError::Plan(errors));
    app.update(submitted(
        "submit /nonexistent/ocio/plan.toml".into(),
        path,
        Err(refused),
    ));
    let toast = &app.toast.as_ref().unwrap().text;
    assert!(
        toast.starts_with("submit /nonexistent/ocio/plan.toml: cannot read the plan file: "),
        "{toast}"
    );
    assert_eq!(
        toast.matches("/nonexistent/ocio/plan.toml").count(),
        1,
        "{toast}"
    );
}
