//! `[[fleets]]` against a real `opencode serve` driven by the scripted model, one server for
//! it all: `ocio check` resolves a fleet's `command` source and checks its member; `ocio run`
//! has it as an agent from the start; a running engine takes the server in when it is listed, runs a task on it, and once it is taken out
//! of the list drains it and removes it only after its session has ended.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ocio::scripted::{self, Rule, Script, Turn};
use serde_json::Value;
use support::home::{Home, stderr, stdout};
use support::{TestRepo, TestServer};

fn is_agent(line: &Value, name: &str, to: &str) -> bool {
    line["type"] == "transition"
        && line["transition"]["entity"] == "agent"
        && line["transition"]["name"] == name
        && line["transition"]["to"] == to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joins_when_listed_runs_a_task_and_leaves_after_its_session() {
    let script = Script::new()
        .rule(
            Rule::when("write hello")
                .turn(Turn::write("hello.txt", "hello\n").usage(100, 10))
                .turn(Turn::text("hello done").usage(200, 20)),
        )
        .rule(
            Rule::when("slow work")
                .turn(
                    Turn::write("slow.txt", "slow\n")
                        .delay_ms(3000)
                        .usage(300, 30),
                )
                .turn(Turn::text("slow done").usage(400, 40)),
        );
    let server = TestServer::start(script).await;
    let home = Home::new();
    let members = home.path("members.txt");
    std::fs::write(&members, "").unwrap();
    let command = format!("cat {}", members.display());
    home.write_config(&format!(
        "[[fleets]]\nname = \"box\"\ncommand = {command:?}\nrefresh = \"1s\"\nmodel = \"{}/{}\"\n",
        scripted::PROVIDER_ID,
        scripted::MODEL_ID
    ));
    let port = server
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/');
    let name = format!("box-127.0.0.1-{port}");

    let empty = home.ocio(&["check"]);
    assert_eq!(empty.status.code(), Some(1), "{}", stdout(&empty));
    assert!(
        stdout(&empty).contains("its source lists no server"),
        "{}",
        stdout(&empty)
    );
    std::fs::write(&members, format!("{}\n", server.url())).unwrap();
    let checked = home.json(&["check", "box", "--json"]);
    assert_eq!(checked[0]["name"], name.as_str(), "{checked}");
    assert_eq!(checked[0]["fleet"], "box", "{checked}");
    assert_eq!(checked[0]["ok"], true, "{checked}");

    // Listed when the engine starts: an agent from the first plan on.
    let repo = TestRepo::new();
    let hello = home.write_plan(
        "hello.toml",
        &format!(
            "name = \"hello\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"greet\"\nprompt = \"write hello\"\n",
            repo.dir_str()
        ),
    );
    let run = home.ocio(&["run", hello.to_str().unwrap(), "--headless"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(repo.read("hello.txt").as_deref(), Some("hello\n"));

    std::fs::write(&members, "").unwrap();
    let mut engine = home.engine(&[]);
    std::fs::write(&members, format!("{}\n", server.url())).unwrap();
    let added = engine.until("the member joins", |l| l["type"] == "agent_added");
    assert_eq!(added["agent"]["name"], name.as_str(), "{added}");
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["config"]["fleets"], 1, "{status}");
    assert_eq!(
        status["agents"]["total"], 1,
        "the member is an agent: {status}"
    );

    let plan = home.write_plan(
        "slow.toml",
        &format!(
            "name = \"slow\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"slow\"\nprompt = \"slow work\"\n",
            repo.dir_str()
        ),
    );
    let submitted = home.ocio(&["submit", plan.to_str().unwrap()]);
    assert_eq!(submitted.status.code(), Some(0), "{}", stderr(&submitted));
    let dispatched = engine.until("the task runs", |l| l["type"] == "dispatched");
    assert_eq!(dispatched["agent"], name.as_str(), "{dispatched}");

    // Out of the list while its session runs: drained at once, removed once it has ended.
    std::fs::write(&members, "").unwrap();
    let done = std::cell::Cell::new(false);
    let is_done = |l: &Value| {
        l["type"] == "transition"
            && l["transition"]["key"] == "slow"
            && l["transition"]["to"] == "done"
    };
    engine.until("the member is drained", |l| {
        done.set(done.get() || is_done(l));
        is_agent(l, &name, "draining")
    });
    assert!(!done.get(), "drained while its session still ran");
    let removed = engine.until("the member leaves", |l| {
        done.set(done.get() || is_done(l));
        l["type"] == "agent_removed"
    });
    assert_eq!(removed["agent"], name.as_str(), "{removed}");
    assert_eq!(repo.read("slow.txt").as_deref(), Some("slow\n"));
    let (code, rest, err) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
    assert!(
        done.get(),
        "the task ended before its agent was removed; after: {rest:?}"
    );
    server.stop().await;
}
