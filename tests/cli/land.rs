//! `ocio land` through a running engine's control socket: a plan pushed with a pull request
//! opened by a stand-in `gh` found on the engine's PATH, a landing refused (exit 2) while the
//! user's checkout has uncommitted changes to a file it changes, then landed (`--json`), told
//! as a `plan_landed` event, and landing again said to be done already (exit 0).

use std::os::unix::fs::PermissionsExt;

use super::support::TestRepo;
use super::support::home::{Engine, Home, stderr, stdout};

const AGENTS: &str = "[[agents]]\nname = \"fast\"\nkind = \"simulated\"\nduration = \"10ms\"\n";

/// A stand-in `gh` in `dir` that writes its arguments to `dir/args` and prints a URL.
fn fake_gh(dir: &std::path::Path) {
    let gh = dir.join("gh");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\necho https://github.example/o/r/pull/9\n",
        dir.join("args").display()
    );
    std::fs::write(&gh, script).unwrap();
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn land_pushes_with_a_pull_request_then_lands_refusing_a_dirty_checkout_first() {
    let home = Home::new();
    home.write_config(AGENTS);
    let repo = TestRepo::new();
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().to_string_lossy().into_owned();
    repo.git(&["init", "-q", "--bare", &bare_path]);
    repo.git(&["remote", "add", "origin", &bare_path]);
    let tools = tempfile::tempdir().unwrap();
    fake_gh(tools.path());
    let text = format!(
        "name = \"ship\"\nrepo = {:?}\n[[tasks]]\nid = \"alpha\"\ntitle = \"Write a\"\nprompt = 'SIM-WRITE a.txt from alpha\\n'\n",
        repo.dir_str()
    );
    let plan = home.write_plan("ship.toml", &text);
    let mut command = home.command(&["--headless"]);
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap()
    );
    command.env("PATH", path);
    let mut engine = Engine::spawn(command);
    home.json(&["submit", plan.to_str().unwrap(), "--json"]);
    engine.until("the plan is over", |l| l["type"] == "plan_finished");

    let out = home.ocio(&["land", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no plan \"nosuch\""),
        "{}",
        stderr(&out)
    );

    let pushed = home.json(&["land", "ship", "--pr", "--json"]);
    assert_eq!(
        pushed["pr_url"], "https://github.example/o/r/pull/9",
        "{pushed}"
    );
    assert_eq!(pushed["pushed_to"], "origin ocio/ship/integration");
    assert_eq!(pushed["mode"], serde_json::Value::Null);
    let args = std::fs::read_to_string(tools.path().join("args")).unwrap();
    assert!(
        args.contains("--base\nmain\n--head\nocio/ship/integration\n"),
        "{args}"
    );
    assert!(args.contains("alpha: Write a"), "{args}");

    std::fs::write(repo.path().join("a.txt"), "my own a\n").unwrap();
    let out = home.ocio(&["land", "ship"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("a.txt"), "{}", stderr(&out));
    assert_eq!(repo.read("a.txt").as_deref(), Some("my own a\n"));
    std::fs::remove_file(repo.path().join("a.txt")).unwrap();

    let landed = home.json(&["land", "ship", "--squash", "--json"]);
    assert_eq!(landed["mode"], "squash", "{landed}");
    assert_eq!(landed["base"], "main");
    assert_eq!(landed["files"], serde_json::json!(["a.txt"]));
    let main = repo.git(&["rev-parse", "main"]);
    assert_eq!(landed["commit"], main.trim());
    assert_eq!(repo.read("a.txt").as_deref(), Some("from alpha\n"));
    engine.until("the landing is told", |l| {
        l["type"] == "plan_landed" && l["landing"]["mode"] == "squash"
    });

    let tasks = home.json(&["tasks", "--json"]);
    assert_eq!(
        tasks["plans"][0]["landing"]["commit"],
        main.trim(),
        "{tasks}"
    );
    let listed = stdout(&home.ocio(&["tasks"]));
    assert!(
        listed.contains("plan ship landed on main (squash)"),
        "{listed}"
    );

    let again = home.ocio(&["land", "ship"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already landed on main"),
        "{}",
        stdout(&again)
    );
    assert_eq!(repo.git(&["rev-parse", "main"]), main);
}
