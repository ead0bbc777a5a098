//! The dependency graph (`v` in the tasks pane) of the demo's plan, whose five layers an
//! operator could not all see at 120x40: the fifth was not drawn and nothing said so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{App, Msg, Pane};
use super::tests::{app, draw, key, plan_id, snapshot, tid};
use crate::domain::TaskStatus;
use crate::engine::view::{PlanView, TaskView};

/// `demo-feature` as `ocio demo` runs it: analyze; api, storage, client, docs; unit-tests,
/// e2e-tests, benchmark; review; changelog.
const DEMO: &[(&str, &[&str])] = &[
    ("analyze", &[]),
    ("api", &["analyze"]),
    ("storage", &["analyze"]),
    ("client", &["analyze"]),
    ("docs", &["analyze"]),
    ("unit-tests", &["api", "storage"]),
    ("e2e-tests", &["api", "client"]),
    ("benchmark", &["storage"]),
    ("review", &["unit-tests", "e2e-tests", "benchmark", "docs"]),
    ("changelog", &["review"]),
];

fn demo_graph() -> App {
    let mut app = app();
    let mut snapshot = snapshot();
    snapshot.plans = vec![PlanView {
        key: String::new(),
        id: plan_id(),
        name: "demo-feature".into(),
        repo: "/work/repo".into(),
        tasks: DEMO
            .iter()
            .enumerate()
            .map(|(i, (key, needs))| TaskView {
                check: None,
                waits: None,
                id: tid(i as u128),
                key: key.to_string(),
                status: TaskStatus::Pending,
                attempts: 0,
                needs: needs.iter().map(|n| n.to_string()).collect(),
                capabilities: vec!["code".into()],
                session: None,
            })
            .collect(),
        landing: None,
    }];
    app.update(Msg::Snapshot(Box::new(snapshot)));
    app.focus = Pane::Tasks;
    key(&mut app, KeyCode::Char('v'));
    assert!(app.panes.graph);
    app
}

#[test]
fn at_120x40_every_layer_of_the_demo_plan_is_drawn() {
    let mut app = demo_graph();
    let screen = draw(&mut app, 120, 40);
    for task in ["analyze", "review", "changelog"] {
        assert!(screen.contains(task), "{task} is not drawn:\n{screen}");
    }
}

#[test]
fn where_layers_are_off_screen_it_says_so_and_left_right_reach_them() {
    let mut app = demo_graph();
    let screen = draw(&mut app, 80, 24);
    assert!(!screen.contains("changelog"), "all fit at 80x24:\n{screen}");
    assert!(
        screen.contains('▶'),
        "no marker for the layers cut:\n{screen}"
    );
    assert!(screen.contains("layers 1–"), "{screen}");
    assert!(screen.contains("of 5"), "{screen}");
    // The footer shows the keys that reach them.
    assert!(screen.contains("l/right layer"), "{screen}");
    // The first selects (the first layer's first task), each next one a layer further.
    for _ in 0..5 {
        key(&mut app, KeyCode::Char('l'));
    }
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("changelog"), "{screen}");
    assert!(
        screen.contains('◀'),
        "no marker for the layers before:\n{screen}"
    );
    let (_, selected) = app.panes.selected_task(&app.view).unwrap();
    assert_eq!(selected, "demo-feature/changelog");
    // And back.
    for _ in 0..4 {
        key(&mut app, KeyCode::Char('h'));
    }
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("analyze"), "{screen}");
    assert!(!screen.contains('◀'), "{screen}");
}

/// Hand trial: the graph of a plan of one layer said `1 layers`; a count reads `1 layer`,
/// `2 layers`, and a window of one layer names it alone (`layer 2 of 5`, not `layers 2–2`).
#[test]
fn the_graph_counts_its_layers_in_words_that_agree() {
    let mut app = demo_graph();
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("demo-feature: 5 layers"), "{screen}");
    app.view.plans[0].tasks.truncate(5);
    for task in &mut app.view.plans[0].tasks[1..] {
        task.needs.clear();
    }
    app.view.generation += 1;
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("demo-feature: 1 layer"), "{screen}");
    assert!(!screen.contains("1 layers"), "{screen}");
    // So narrow that one layer shows at a time.
    let mut app = demo_graph();
    let screen = draw(&mut app, 40, 24);
    assert!(!screen.contains("layers 1–1"), "{screen}");
    assert!(screen.contains("layer 1 of 5"), "{screen}");
}
