//! A session on a real `opencode serve` asks the operator a question (the scripted model calls
//! OpenCode's `question` tool) and the operator answers it from the room with keys only: the
//! approvals pane lists it, the session's detail shows it with its numbered options, `a`, `2`,
//! enter; the model's next call gets the option picked and the task finishes. Also prints how
//! long the question took from the model's call to the screen.

use std::time::{Duration, Instant};

use super::{PATIENCE, Room, support, tmux_available};

const PLAN: &str = "name = \"colours\"\nrepo = \".\"\nworktrees = false\n[[tasks]]\nid = \"button\"\nprompt = \"pick a colour\"\n";

/// Whether the approvals pane lists the button task's question: a row naming the task, the
/// `question` it asks and its header.
fn listed(screen: &str) -> bool {
    screen
        .lines()
        .any(|l| l.contains("button") && l.contains("question") && l.contains("Colour"))
}

/// `questions` is left as it comes (`auto`), with a timeout short enough that a question not
/// held by the attached room would be rejected while the operator reads it: it waits because
/// the room hosting the engine counts as attached.
#[test]
fn a_question_from_a_real_server_is_answered_from_the_room_with_keys() {
    use ocio::scripted::{Rule, Script, Turn};
    if !tmux_available() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let question = serde_json::json!({ "questions": [{
        "question": "Which colour should the button be?",
        "header": "Colour",
        "options": [
            {"label": "red", "description": "warm"},
            {"label": "blue", "description": "cool"}
        ]
    }]});
    let script = Script::new().rule(
        Rule::when("pick a colour")
            .turn(Turn::tool("question", question))
            .turn(Turn::text("the button is done")),
    );
    let server = runtime.block_on(support::TestServer::start(script));
    let config = format!(
        "[engine]\nquestion_timeout = \"1s\"\n\n[[agents]]\nname = \"box\"\nurl = {:?}\nmodel = \"{}/{}\"\n",
        server.url(),
        ocio::scripted::PROVIDER_ID,
        ocio::scripted::MODEL_ID
    );
    let room = Room::prepare("question", &config);
    std::fs::write(room.path("repo/colours.toml"), PLAN).unwrap();
    // Wide enough for the approvals pane's ASKS column whole (at 120 it shows `questio`).
    let mut room = room.launch(160, 40);
    room.submit("colours.toml");

    // As tight as capture-pane allows: the moment the pane first lists the question.
    let deadline = Instant::now() + PATIENCE;
    let seen = loop {
        let screen = room.screen();
        if listed(&screen) {
            break Instant::now();
        }
        if Instant::now() > deadline {
            room.fail("the approvals pane never listed the question");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let asked = server
        .model
        .requests()
        .into_iter()
        .find(|r| {
            r.turn == 0
                && r.last_user_text
                    .as_deref()
                    .is_some_and(|t| t.contains("pick a colour"))
        })
        .and_then(|r| r.at)
        .expect("the model was asked");
    eprintln!(
        "question on screen: {} ms",
        seen.saturating_duration_since(asked).as_millis()
    );
    if !room.screen().contains("ASKS") {
        room.fail("the approvals pane has no ASKS column");
    }

    // Twice the timeout later, it still waits: the room hosting the engine holds it.
    std::thread::sleep(Duration::from_millis(2500));
    if !listed(&room.screen()) {
        room.fail("the question left the inbox unanswered while the room was attached");
    }

    // The session's detail shows the question and its numbered options.
    room.keys(&["Enter"]);
    let screen = room.wait_for("the question in the session's detail", |s| {
        s.contains("asks a question") && s.contains("Colour: Which colour should the button be?")
    });
    for option in ["[1] red", "[2] blue"] {
        if !screen.contains(option) {
            room.fail(&format!("the detail does not number the option {option:?}"));
        }
    }
    room.keys(&["a"]);
    room.wait_for("the answer's editor", |s| {
        s.contains("answer button") && s.contains("an option's number, or a text")
    });
    room.type_text("2");
    room.keys(&["Enter"]);

    let deadline = Instant::now() + PATIENCE;
    let answered = loop {
        let next = server.model.requests().into_iter().find(|r| {
            r.turn == 1
                && r.last_user_text
                    .as_deref()
                    .is_some_and(|t| t.contains("pick a colour"))
        });
        if let Some(next) = next {
            break next;
        }
        if Instant::now() > deadline {
            room.fail("the model was never called with the answer");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        answered.tool_results.iter().any(|t| t.contains("\"blue\""))
            && !answered.tool_results.iter().any(|t| t.contains("\"red\"")),
        "the model got option 2, blue: {:?}",
        answered.tool_results
    );

    room.keys(&["Escape"]);
    let screen = room.wait_for("the plan to succeed", |s| {
        s.contains("plan colours succeeded") && s.contains("1/1 done")
    });
    if listed(&screen) {
        room.fail("the answered question is still in the approvals pane");
    }
    room.quit();
    room.expect_exit(0);
    runtime.block_on(server.stop());
}
