//! Headless ocio end to end: `ocio --headless` as a child process, every client command against
//! it through the control socket and again against the database alone, signals, exit codes and
//! the metrics it serves. Nothing here waits on a clock: tests read the engine's JSON Lines
//! until the event they need.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "headless/disk_full.rs"]
mod disk_full;
#[path = "headless/gc.rs"]
mod gc;
#[path = "headless/managed.rs"]
mod managed;
#[path = "headless/notify.rs"]
mod notify;
#[path = "headless/shutdown.rs"]
mod shutdown;

use serde_json::{Value, json};
use support::home::{Home, http_get, is_private, json_lines, stderr, stdout};

/// A slow agent (its sessions run until cancelled) and a fast one.
const AGENTS: &str = "[[agents]]\nname = \"slow\"\nkind = \"simulated\"\nduration = \"1h\"\ncapabilities = [\"slow\"]\n\n[[agents]]\nname = \"fast\"\nkind = \"simulated\"\nduration = \"10ms\"\ncapabilities = [\"fast\"]\n";

const PLAN: &str = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"long\"\nprompt = \"take your time\"\ncapabilities = [\"slow\"]\n[[tasks]]\nid = \"after\"\nneeds = [\"long\"]\nprompt = \"then this\"\ncapabilities = [\"fast\"]\n";

fn is_task(line: &Value, key: &str, to: &str) -> bool {
    line["type"] == "transition"
        && line["transition"]["entity"] == "task"
        && line["transition"]["key"] == key
        && line["transition"]["to"] == to
}

/// A git repository `repo` with one empty commit, in `work` (made).
fn repo_in(work: &std::path::Path) {
    std::fs::create_dir_all(work).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(work)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    git(&["init", "-q", "repo"]);
    git(&["-C", "repo", "commit", "-q", "--allow-empty", "-m", "start"]);
}

fn fails_with(home: &Home, args: &[&str], code: i32, text: &str) -> String {
    let out = home.ocio(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "ocio {args:?}: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(text),
        "ocio {args:?}: {}",
        stderr(&out)
    );
    stderr(&out)
}

#[test]
fn every_command_works_through_a_running_engine_and_then_from_the_database() {
    let home = Home::new();
    home.write_config(AGENTS);
    let plan = home.write_plan("plan.toml", PLAN);
    let plan = plan.to_str().unwrap();
    let mut engine = home.engine(&["--metrics-addr", "127.0.0.1:0"]);

    let socket = home.socket();
    assert_eq!(engine.started["socket"], socket.to_str().unwrap());
    assert!(is_private(&socket, 0o600), "socket mode");
    assert!(
        is_private(socket.parent().unwrap(), 0o700),
        "socket dir mode"
    );

    let submitted = home.json(&["submit", plan, "--json"]);
    assert_eq!(submitted["source"], "engine");
    assert_eq!(submitted["tasks"], 2);
    let dispatched = engine.until("long is dispatched", |l| l["type"] == "dispatched");
    let session = dispatched["session"].as_str().unwrap().to_string();
    engine.until("long's first activity", |l| {
        l["type"] == "activity" && l["session"] == session.as_str()
    });

    let status = home.json(&["status", "--json"]);
    assert_eq!(status["source"], "engine");
    assert_eq!(status["engine"]["pid"], engine.pid());
    assert_eq!(status["engine"]["running"], 1);
    let sessions = home.json(&["sessions", "--json"]);
    assert_eq!(sessions["source"], "engine");
    assert_eq!(sessions["sessions"][0]["session"]["id"], session.as_str());
    assert_eq!(sessions["sessions"][0]["task"], "long");
    let tasks = home.json(&["tasks", "--json"]);
    assert_eq!(tasks["source"], "engine");
    assert_eq!(tasks["plans"][0]["tasks"][0]["status"], "running");
    let agents = home.json(&["agents", "--json"]);
    assert_eq!(agents["source"], "engine");
    let slow = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "slow");
    assert_eq!(slow.unwrap()["load"], 1, "{agents}");
    let short = &session[session.len() - 8..].to_ascii_lowercase();
    let logs = home.json(&["logs", short, "--json"]);
    assert_eq!(logs["source"], "engine");
    assert!(!logs["entries"].as_array().unwrap().is_empty(), "{logs}");
    assert_eq!(logs["checkpoints"][0]["kind"], "prompt-sent", "{logs}");
    let text = stdout(&home.ocio(&["sessions"]));
    assert!(text.contains(short) && text.contains("running"), "{text}");
    assert!(text.contains(" p/long "), "the plan and the task: {text}");

    let cancelled = home.json(&["cancel", "p/long", "--json"]);
    assert_eq!(cancelled["source"], "engine");
    engine.until("long is cancelled", |l| is_task(l, "long", "cancelled"));
    engine.until("after is blocked", |l| is_task(l, "after", "blocked"));
    let finished = engine.until("the plan is over", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], false);
    fails_with(
        &home,
        &["cancel", "long"],
        2,
        "only a task that has not ended",
    );
    // Paused, a retried task waits ready; resumed, it runs.
    let paused = home.json(&["pause", "--json"]);
    assert_eq!(
        (&paused["source"], &paused["paused"]),
        (&json!("engine"), &json!(true))
    );
    engine.until("dispatching is paused", |l| {
        l["type"] == "paused" && l["paused"] == true
    });
    home.json(&["retry", "long", "--json"]);
    engine.until("long is ready", |l| is_task(l, "long", "ready"));
    let tasks = home.json(&["tasks", "--json"]);
    assert_eq!(tasks["plans"][0]["tasks"][0]["status"], "ready", "{tasks}");
    let text = stdout(&home.ocio(&["resume"]));
    assert!(text.contains("dispatching resumed"), "{text}");
    engine.until("long runs again", |l| is_task(l, "long", "running"));
    // A drained agent says so and takes no new session; undrained, it is online again.
    let drained = home.json(&["drain", "slow", "--json"]);
    assert_eq!(drained["agent"], "slow");
    let agents = home.json(&["agents", "--json"]);
    let slow = |agents: &Value| {
        agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "slow")
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(slow(&agents), "draining", "{agents}");
    home.json(&["undrain", "slow", "--json"]);
    assert_eq!(slow(&home.json(&["agents", "--json"])), "online");
    fails_with(&home, &["drain", "nosuch"], 2, "no agent named nosuch");
    fails_with(&home, &["retry", "nosuch"], 2, "no task matches `nosuch`");
    fails_with(
        &home,
        &["approve", "per_nope"],
        2,
        "no pending permission request or question per_nope",
    );

    let export = home.json(&["export", "--json"]);
    assert_eq!(export["source"], "engine");
    assert_eq!(export["plans"].as_array().unwrap().len(), 1);
    assert!(
        export["engine"]["plans"].is_array(),
        "the snapshot comes along"
    );
    assert!(!export["events"].as_array().unwrap().is_empty());

    // Plan errors name file, line and column, whether found here or by the engine.
    let bad = home.write_plan("bad.toml", "name = \"b\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"gpu\"]\n");
    fails_with(&home, &["submit", bad.to_str().unwrap()], 2, "bad.toml:6:");

    let metrics = engine.started["metrics"].as_str().unwrap().to_string();
    let (code, page) = http_get(&metrics, "/metrics");
    assert_eq!(code, 200);
    support::metrics::check(&page);
    assert!(
        page.contains("ocio_sessions{state=\"running\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("ocio_dispatches_total{agent=\"slow\"} 2"),
        "{page}"
    );
    assert!(page.contains("ocio_agent_load{agent=\"slow\"} 1"), "{page}");

    let (code, rest, err) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
    let last = rest.last().unwrap();
    assert_eq!(last["type"], "run.finished");
    assert_eq!(last["interrupted"], true);
    assert_eq!(last["unfinished"], 2, "{last}");
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(!socket.exists(), "the socket is removed");

    // No engine now: the same questions are answered from the database, and commands that
    // need an engine say how to start one.
    for (args, key) in [
        (["status", "--json"], "sessions"),
        (["sessions", "--json"], "sessions"),
        (["tasks", "--json"], "plans"),
        (["agents", "--json"], "agents"),
        (["export", "--json"], "plans"),
    ] {
        let report = home.json(&args);
        assert_eq!(report["source"], "database", "{args:?}");
        assert!(!report[key].is_null(), "{args:?}: {report}");
    }
    let tasks = home.json(&["tasks", "--json"]);
    assert_eq!(tasks["plans"][0]["tasks"][0]["key"], "long");
    let logs = home.json(&["logs", short, "--json"]);
    assert_eq!(logs["source"], "database");
    assert_eq!(logs["checkpoints"][0]["kind"], "prompt-sent");
    assert!(
        !logs["entries"].as_array().unwrap().is_empty(),
        "the transcript outlives the engine: {logs}"
    );
    let text = stderr(&home.ocio(&["agents"]));
    assert!(
        text.contains("no engine running; read from the database"),
        "{text}"
    );
    let text = stdout(&home.ocio(&["sessions"]));
    assert!(text.contains(" p/long "), "the plan and the task: {text}");
    // What a session did last, from its stored transcript (hand trial: LAST was empty).
    let sessions = home.json(&["sessions", "--json"]);
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| !s["last"].is_null()),
        "{sessions}"
    );
    for args in [
        vec!["submit", plan],
        vec!["cancel", "long"],
        vec!["retry", "long"],
        vec!["approve", "per_x", "--reject"],
        vec!["pause"],
        vec!["resume"],
        vec!["drain", "slow"],
        vec!["undrain", "slow"],
    ] {
        fails_with(&home, &args, 2, "no engine is running");
    }
    let lines = stdout(&home.ocio(&["export"]));
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["record"], "export");
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("{\"data\"") && l.contains("\"record\":\"task\""))
    );
    assert!(
        lines
            .lines()
            .any(|l| l.contains("\"record\":\"transcript\"")),
        "the export carries the transcripts"
    );
}

#[test]
fn submit_prompt_runs_one_task_in_the_current_repository_or_directory() {
    let home = Home::new();
    home.write_config("[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\n");
    let repo = home.path("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    let mut engine = home.engine(&[]);
    let out = home
        .command(&["submit", "--prompt", "say \"hi\"", "--json"])
        .current_dir(repo.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let finished = engine.until("the prompt's plan finishes", |l| {
        l["type"] == "plan_finished"
    });
    assert_eq!(finished["ok"], true);
    let tasks = home.json(&["tasks", "--json"]);
    assert_eq!(tasks["plans"][0]["repo"], repo.to_str().unwrap());
    assert_eq!(tasks["plans"][0]["tasks"][0]["key"], "prompt");

    // Outside any repository, the prompt runs in the directory it was given in.
    let elsewhere = home.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = home
        .command(&["submit", "--prompt", "x"])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let finished = engine.until("the second prompt's plan finishes", |l| {
        l["type"] == "plan_finished"
    });
    assert_eq!(finished["ok"], true);
    let tasks = home.json(&["tasks", "--json"]);
    let plans = tasks["plans"].as_array().unwrap();
    assert!(
        plans
            .iter()
            .any(|p| p["repo"] == elsewhere.to_str().unwrap() && p["tasks"][0]["key"] == "prompt"),
        "{tasks:#}"
    );
    let out = home.ocio(&["submit"]);
    assert_eq!(out.status.code(), Some(2), "a plan or --prompt is required");
}

#[test]
fn a_second_engine_on_the_same_database_is_told_how_to_attach() {
    let home = Home::new();
    home.write_config(AGENTS);
    let engine = home.engine(&[]);
    let err = fails_with(&home, &["--headless"], 2, "already runs on database");
    assert!(err.contains("attach to it with `ocio`"), "{err}");
    let plan = home.write_plan("plan.toml", PLAN);
    fails_with(&home, &["run", plan.to_str().unwrap()], 2, "already runs");
    // Another database is another engine, with its own socket.
    let other = home.path("other.redb");
    let second = home.engine(&["--db", other.to_str().unwrap()]);
    assert_ne!(second.started["socket"], engine.started["socket"]);
    assert_eq!(second.stop("INT").0, Some(130));
    assert_eq!(engine.stop("HUP").0, Some(130));
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let home = Home::new();
    home.write_config(AGENTS);
    let socket = home.socket();
    ocio::paths::ensure_private_dir(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists() && !ocio::control::is_running(&socket));
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["source"], "database", "a dead socket is no engine");
    let engine = home.engine(&[]);
    assert!(ocio::control::is_running(&socket));
    assert_eq!(engine.stop("TERM").0, Some(130));
}

/// Also when `ocio run` was given the plan by a relative path (as the README's `ocio run
/// assets/plans/example.toml`) and the next start runs in another directory: the plan's
/// `repo` was kept relative to where `ocio run` ran, so the resumed plan failed ("repo is not
/// in a git repository").
#[test]
fn run_stops_cleanly_on_sigterm_and_the_next_start_resumes() {
    let home = Home::new();
    home.write_config(AGENTS);
    let work = home.path("work");
    repo_in(&work);
    let plan = PLAN.replace("repo = \".\"", "repo = \"repo\"");
    std::fs::write(work.join("plan.toml"), plan).unwrap();
    let mut command = home.command(&["run", "plan.toml", "--headless", "--no-activity"]);
    command.current_dir(&work);
    let mut run = support::home::Engine::spawn(command);
    run.until("long is dispatched", |l| l["type"] == "dispatched");
    let (code, rest, _) = run.stop("TERM");
    assert_eq!(code, Some(130));
    assert!(
        rest.iter().all(|l| l["type"] != "activity"),
        "--no-activity"
    );
    let last = rest.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["interrupted"].as_bool()),
        (Some("run.finished"), Some(true))
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        status["tasks"]["by_state"]["running"], 1,
        "state was saved as it was"
    );
    let elsewhere = home.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut command = home.command(&["--headless"]);
    command.current_dir(&elsewhere);
    let mut engine = support::home::Engine::spawn(command);
    engine.until("the lost run is run again", |l| l["type"] == "dispatched");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (code, rest, _) = engine.stop("TERM");
    assert_eq!(code, Some(130));
    let failed: Vec<&Value> = rest
        .iter()
        .filter(|l| is_task(l, "long", "failed"))
        .collect();
    assert!(failed.is_empty(), "it runs in its repository: {failed:?}");
}

#[test]
fn metrics_stay_on_loopback_unless_told() {
    let home = Home::new();
    home.write_config(AGENTS);
    let err = fails_with(
        &home,
        &["--headless", "--metrics-addr", "0.0.0.0:0"],
        2,
        "not a loopback address",
    );
    assert!(err.contains("--metrics-public"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(
        &home,
        &["--headless", "--metrics-addr", &addr],
        2,
        "cannot serve metrics",
    );
    assert!(!home.socket().exists(), "a failed start leaves no socket");
    let engine = home.engine(&["--metrics-addr", "0.0.0.0:0", "--metrics-public"]);
    assert!(
        engine.started["metrics"]
            .as_str()
            .unwrap()
            .starts_with("0.0.0.0:")
    );
}

#[test]
fn a_template_becomes_a_plan_for_the_goal_in_the_repository_around_the_current_directory() {
    let home = Home::new();
    home.write_config(
        "[[agents]]\nname = \"coder\"\nkind = \"simulated\"\nduration = \"10ms\"\ncapabilities = [\"code\"]\n",
    );
    let repo = home.path("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("src/lib.rs"), "").unwrap();
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "first",
        ],
    ] {
        let git = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(git.success());
    }
    let in_repo = |args: &[&str]| {
        home.command(args)
            .current_dir(repo.join("src"))
            .output()
            .unwrap()
    };

    // --print shows the plan without an engine.
    let printed = in_repo(&[
        "submit",
        "--template",
        "bugfix",
        "Fix the crash on empty input",
        "--print",
    ]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    let text = stdout(&printed);
    assert!(
        text.contains(&format!("repo = {:?}", repo.to_str().unwrap())),
        "{text}"
    );
    for id in ["reproduce", "fix", "verify"] {
        assert!(text.contains(&format!("id = \"{id}\"")), "{text}");
    }
    assert!(text.contains("Fix the crash on empty input"), "{text}");
    // An unknown template lists the known ones.
    let unknown = in_repo(&["submit", "--template", "featur", "x", "--print"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("feature"), "{}", stderr(&unknown));

    let mut engine = home.engine(&[]);
    let submitted = in_repo(&[
        "submit",
        "--template",
        "bugfix",
        "Fix the crash on empty input",
        "--json",
    ]);
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let submitted: Value = serde_json::from_slice(&submitted.stdout).unwrap();
    assert_eq!(submitted["tasks"], 3);
    let finished = engine.until("the plan is over", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true, "{finished}");
    assert_eq!(finished["done"], 3);
    engine.stop("INT");
}

#[test]
fn a_goal_is_planned_by_the_engines_planner_shown_and_submitted_once_approved() {
    let home = Home::new();
    home.write_config(
        "[[agents]]\nname = \"planner\"\nkind = \"simulated\"\nduration = \"10ms\"\ncapabilities = [\"plan\", \"code\"]\n",
    );
    let repo = home.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("README.md"), "x\n").unwrap();
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "first",
        ],
    ] {
        assert!(
            std::process::Command::new("git")
                .args(args)
                .current_dir(&repo)
                .status()
                .unwrap()
                .success()
        );
    }
    let in_repo = |args: &[&str]| home.command(args).current_dir(&repo).output().unwrap();
    // No engine: the planner lives in the engine, and the error says how to start one.
    let none = in_repo(&["submit", "--goal", "Add pagination", "--print"]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));

    let mut engine = home.engine(&[]);
    let shown = in_repo(&["submit", "--goal", "Add pagination", "--print"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let toml = stdout(&shown);
    for id in ["analyze", "implement", "test", "review"] {
        assert!(toml.contains(&format!("id = \"{id}\"")), "{toml}");
    }
    assert!(
        stderr(&shown).contains("planned by agent planner: 4 tasks"),
        "{}",
        stderr(&shown)
    );
    // Without a terminal to ask on, only --yes submits.
    let unasked = in_repo(&["submit", "--goal", "Add pagination"]);
    assert_eq!(unasked.status.code(), Some(2));
    assert!(stderr(&unasked).contains("--yes"), "{}", stderr(&unasked));
    let submitted = in_repo(&["submit", "--goal", "Add pagination", "--yes", "--json"]);
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let submitted: Value = serde_json::from_slice(&submitted.stdout).unwrap();
    assert_eq!(submitted["proposal"]["tasks"], 4);
    assert!(submitted["submitted"].is_string(), "{submitted}");
    let finished = engine.until("the planned plan is over", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true, "{finished}");
    assert_eq!(finished["done"], 4);
    // The shared context the tasks left: from the engine, then from the database.
    let shared = home.json(&["context", "--json"]);
    assert_eq!(shared["source"], "engine");
    let tasks = shared["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "{shared}");
    assert!(
        tasks.iter().any(|t| t["key"] == "analyze"
            && t["summary"]
                .as_str()
                .unwrap_or("")
                .contains("simulated result of analyze")),
        "{shared}"
    );
    engine.stop("INT");
    let stored = home.json(&["context", shared["name"].as_str().unwrap(), "--json"]);
    assert_eq!(stored["source"], "database");
    assert_eq!(stored["tasks"], shared["tasks"]);
    let unknown = home.ocio(&["context", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
}

/// `ocio answer` against a running headless engine: a simulated session's question
/// (`SIM-ASK`) is a `question_asked` line and in `ocio status`; wrong answers exit 2 naming
/// what would do; `--option 2` answers it and the task's answer says so.
#[test]
fn a_question_is_answered_from_the_command_line() {
    let home = Home::new();
    home.write_config(
        "[engine]\nquestions = \"ask\"\nquestion_timeout = \"5m\"\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\n",
    );
    let plan = home.write_plan(
        "plan.toml",
        "name = \"q\"\nrepo = \".\"\n[[tasks]]\nid = \"pick\"\nprompt = \"SIM-ASK Colour: Which colour? | red | blue\"\n",
    );
    let mut engine = home.engine(&[]);
    home.json(&["submit", plan.to_str().unwrap(), "--json"]);
    let asked = engine.until("the question", |l| l["type"] == "question_asked");
    assert_eq!(asked["task"], "pick");
    assert_eq!(asked["questions"][0]["options"][1]["label"], "blue");
    let request = asked["request"].as_str().unwrap().to_string();
    let short = &request[request.len() - 8..];
    let status = stdout(&home.ocio(&["status"]));
    assert!(status.contains(&request), "{status}");

    fails_with(
        &home,
        &["answer", short, "--option", "3"],
        2,
        "1 red, 2 blue",
    );
    fails_with(
        &home,
        &["answer", short, "--option", "two"],
        2,
        "option numbers",
    );
    fails_with(&home, &["approve", short], 2, "is a question");
    let unknown = fails_with(
        &home,
        &["answer", "nosuchid", "x"],
        2,
        "no pending permission request or question nosuchid",
    );
    assert!(
        unknown.contains("by 4 or more characters from its end or from the start of its last 8"),
        "says which parts of an id name a request: {unknown}"
    );
    fails_with(&home, &["answer", short], 2, "");

    // The start of the short form is enough (`ocio answer 3gRj` found nothing before).
    let answered = home.json(&["answer", &short[..4], "--option", "2", "--json"]);
    assert_eq!(answered["source"], "engine");
    let logged = engine.until("the answer's transition", |l| {
        l["type"] == "transition"
            && l["cause"]
                .as_str()
                .is_some_and(|c| c.starts_with("answered"))
    });
    assert!(
        logged["cause"].as_str().unwrap().starts_with(
            "answered \"blue\" by the operator (ocio answer): question \"Which colour?\""
        ),
        "{logged}"
    );
    let finished = engine.until("the plan ends", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true);
    let context = home.json(&["context", "q", "--json"]);
    let summary = context["tasks"][0]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("answered Colour: blue"), "{context:#}");
}

/// `ocio say` and `ocio interrupt` against a running headless engine: the session named by its
/// task takes the message, is interrupted and waits, takes the next, and its task succeeds
/// with both in its answer; an ended session is refused with exit 2.
#[test]
fn a_running_session_is_steered_from_the_command_line() {
    let home = Home::new();
    home.write_config("[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"3s\"\n");
    let plan = home.write_plan(
        "plan.toml",
        "name = \"s\"\nrepo = \".\"\n[[tasks]]\nid = \"work\"\nprompt = \"work\"\n",
    );
    let mut engine = home.engine(&[]);
    home.json(&["submit", plan.to_str().unwrap(), "--json"]);
    engine.until("the session starts", |l| l["type"] == "dispatched");
    let said = home.json(&["say", "s/work", "use", "blue", "--json"]);
    assert_eq!(said["action"], "say");
    assert_eq!(said["text"], "use blue");
    home.json(&["interrupt", "work", "--json"]);
    engine.until("it waits", |l| {
        l["type"] == "transition"
            && l["transition"]["to"] == "waiting-approval"
            && l["cause"]
                .as_str()
                .is_some_and(|c| c.starts_with("interrupted by the operator"))
    });
    let out = home.ocio(&["say", "work", "now", "finish"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let finished = engine.until("the plan ends", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true);
    let context = home.json(&["context", "s", "--json"]);
    let summary = context["tasks"][0]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("steered: use blue") && summary.contains("steered: now finish"),
        "{context:#}"
    );
    fails_with(&home, &["say", "work", "too late"], 2, "is not running");
}

/// A task over its budget against a running headless engine: the plan pauses (an
/// `over_budget` line, `ocio status` and `ocio budget` say so), continuing without a raise is
/// refused saying which budget, and `ocio budget PLAN --task KEY --tokens N` continues it.
#[test]
fn a_plan_paused_over_budget_is_raised_and_continued_from_the_command_line() {
    let home = Home::new();
    home.write_config(
        "[engine]\ndaily_budget = { tokens = 1_000_000 }\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"300ms\"\n",
    );
    let plan = home.write_plan(
        "plan.toml",
        "name = \"b\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\nbudget = { tokens = 500 }\n",
    );
    let mut engine = home.engine(&[]);
    home.json(&["submit", plan.to_str().unwrap(), "--json"]);
    let over = engine.until("the pause", |l| l["type"] == "over_budget");
    assert_eq!(over["cause"], "over budget: task `a` budget 600/500 tokens");
    engine.until("the task failed", |l| is_task(l, "a", "failed"));
    let status = stdout(&home.ocio(&["status"]));
    assert!(status.contains("paused over budget: b"), "{status}");
    assert!(status.contains("600/1000000 tokens"), "{status}");
    let budgets = stdout(&home.ocio(&["budget"]));
    assert!(
        budgets.contains("plan b: 600 tokens")
            && budgets.contains("paused over budget: task `a` budget 600/500 tokens; stopped: a"),
        "{budgets}"
    );
    fails_with(
        &home,
        &["budget", "b"],
        2,
        "still over budget: task `a` budget 600/500 tokens",
    );
    let raised = home.json(&["budget", "b", "--task", "a", "--tokens", "5000", "--json"]);
    assert_eq!(raised["then"], "continue");
    let finished = engine.until("the plan ends", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true);
    let budgets = home.json(&["budget", "--json"]);
    assert_eq!(
        budgets["budgets"]["daily_spent"]["input_tokens"],
        500 + 1000
    );
}

/// One plan file submitted twice: the later plan's branches are `twin-2`, the room shows the
/// two as `twin` and `twin-2`, and every command takes those names, with the engine running
/// and from the database (`review`, `context` and `timeline` refused `twin-2`; `tasks`
/// listed both as `twin/t`; `submit` and the events said only `twin`).
#[test]
fn twin_plans_are_named_apart_by_every_command() {
    let home = Home::new();
    home.write_config("[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\n");
    let repo = support::TestRepo::new();
    let plan = home.write_plan(
        "twin.toml",
        &format!(
            "name = \"twin\"\nrepo = {:?}\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\n",
            repo.dir_str()
        ),
    );
    let plan = plan.to_str().unwrap();
    let mut engine = home.engine(&[]);
    let mut ids = Vec::new();
    for shown in ["twin", "twin-2"] {
        let out = home.ocio(&["submit", plan]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = stdout(&out);
        assert_eq!(
            said.contains("shown as twin-2"),
            shown == "twin-2",
            "{said}"
        );
        let finished = engine.until("the plan finishes", |l| l["type"] == "plan_finished");
        assert_eq!(finished["ok"], true);
        assert_eq!(finished["key"], shown, "{finished}");
        ids.push(finished["plan"].as_str().unwrap().to_string());
    }
    let tasks = stdout(&home.ocio(&["tasks"]));
    assert!(
        tasks.contains(" twin/t ") && tasks.contains(" twin-2/t "),
        "{tasks}"
    );
    let review = home.json(&["review", "twin-2", "--json"]);
    assert_eq!(review["review"]["plan"], ids[1].as_str(), "{review}");
    let review = home.json(&["review", "twin", "--json"]);
    assert_eq!(
        review["review"]["plan"],
        ids[0].as_str(),
        "as the room shows it"
    );
    let context = home.json(&["context", "twin-2", "--json"]);
    assert_eq!(context["plan"], ids[1].as_str(), "{context}");
    let (code, _, err) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
    // From the database.
    let context = home.json(&["context", "twin-2", "--json"]);
    assert_eq!(context["source"], "database");
    assert_eq!(context["plan"], ids[1].as_str(), "{context}");
    let timeline = home.ocio(&["timeline", "twin-2", "--json"]);
    assert_eq!(timeline.status.code(), Some(0), "{}", stderr(&timeline));
    let tasks = stdout(&home.ocio(&["tasks"]));
    assert!(tasks.contains(" twin-2/t "), "{tasks}");
    fails_with(&home, &["timeline", "twin-3"], 2, "no plan \"twin-3\"");
}

/// A running engine lists only its recent plans (the newest fifty that ended); `review`,
/// `context` and `retry` still find an older plan or task by its name or short id (as ocio
/// prints it, upper case, too), from the database read beside the engine (hand trials:
/// "no plan", while `timeline` found it; "no task matches").
#[test]
fn a_plan_older_than_the_engine_lists_is_found_by_name() {
    let home = Home::new();
    home.write_config("[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"1ms\"\n\n[[agents]]\nname = \"bad\"\nkind = \"simulated\"\nduration = \"1ms\"\n");
    let work = home.path("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(home.db().parent().unwrap()).unwrap();
    let old = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(fifty_one_plans(&home.db(), &work));
    let mut engine = home.engine(&[]);
    let listed = home.json(&["tasks", "--json"]);
    assert!(
        !listed.to_string().contains(&old.to_string()),
        "the engine does not list it"
    );
    let upper = old.short().to_ascii_uppercase();
    for wanted in ["old", old.short().as_str(), upper.as_str()] {
        let review = home.json(&["review", wanted, "--json"]);
        assert_eq!(review["source"], "engine", "{review}");
        assert_eq!(review["review"]["plan"], old.to_string(), "{review}");
        let context = home.json(&["context", wanted, "--json"]);
        assert_eq!(context["plan"], old.to_string(), "{context}");
        assert_eq!(context["name"], "old", "{context}");
    }
    fails_with(&home, &["review", "older"], 2, "no plan \"older\"");
    // Its failed task, by plan/key: queued again (and it runs, on `bad` that succeeds now).
    let retried = home.ocio(&["retry", "old/t"]);
    assert_eq!(retried.status.code(), Some(0), "{}", stderr(&retried));
    assert!(stdout(&retried).contains("old/t ("), "{}", stdout(&retried));
    engine.until("the old plan finishes again", |l| {
        l["type"] == "plan_finished" && l["plan"] == old.to_string().as_str() && l["ok"] == true
    });
    fails_with(&home, &["retry", "old/none"], 2, "no task matches");
    let (code, _, err) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
}

/// Plan `old`, then fifty more, run to their end in `db` on agent `sim`; `old`'s id.
async fn fifty_one_plans(db: &std::path::Path, work: &std::path::Path) -> ocio::domain::PlanId {
    use ocio::engine::EngineHandle;
    let store = ocio::store::Store::open(db, ocio::store::StoreOptions::default()).unwrap();
    let agents = vec![
        support::sim_agent("sim", 8, &[], 0, 0.0),
        support::sim_agent("bad", 8, &[], 0, 1.0),
    ];
    let engine = EngineHandle::start(store.clone(), agents, Default::default())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let mut old = None;
    for n in 0..51 {
        let name = if n == 0 {
            "old".to_string()
        } else {
            format!("p{n}")
        };
        let path = work.join(format!("{name}.toml"));
        // The old plan's task fails (on `bad`, which fails everything here).
        let agent = if n == 0 { "bad" } else { "sim" };
        let text = format!(
            "name = \"{name}\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\nagent = \"{agent}\"\n"
        );
        std::fs::write(&path, text).unwrap();
        let id = engine
            .submit_plan(ocio::plan::PlanFile::load(&path).unwrap())
            .await
            .unwrap();
        old.get_or_insert(id);
        support::until_finished(&mut events, std::time::Duration::from_secs(30)).await;
    }
    engine.shutdown().await.unwrap();
    store.close().await;
    old.unwrap()
}

/// `ocio run` of the same plan file after an interrupt follows the plan the first run left
/// with work to come (a `run.resumed` line) instead of submitting it again, which ran every
/// task a second time beside the first (hand trial); the interrupt says so.
#[test]
fn run_again_after_an_interrupt_resumes_the_plan_instead_of_submitting_it_twice() {
    let home = Home::new();
    home.write_config(&AGENTS.replace("duration = \"1h\"", "duration = \"3s\""));
    let plan = home.write_plan("plan.toml", PLAN);
    let plan = plan.to_str().unwrap();
    let mut first = support::home::Engine::spawn(home.command(&["run", plan, "--no-activity"]));
    let submitted = first.until("the plan is submitted", |l| l["type"] == "plan_submitted");
    first.until("long is dispatched", |l| l["type"] == "dispatched");
    let (code, _, err) = first.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("`ocio run` of the same plan file follows it to the end"),
        "{err}"
    );
    let again = support::home::Engine::spawn(home.command(&["run", plan, "--no-activity"]));
    let (code, lines, err) = again.wait();
    assert_eq!(code, Some(0), "{err}");
    let resumed = lines
        .iter()
        .find(|l| l["type"] == "run.resumed")
        .unwrap_or_else(|| panic!("no run.resumed line: {lines:?}"));
    assert_eq!(resumed["plan"], submitted["plan"], "{resumed}");
    assert_eq!(resumed["name"], "p");
    assert!(
        lines.iter().all(|l| l["type"] != "plan_submitted"),
        "submitted a second time: {lines:?}"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "run.finished");
    assert_eq!(
        (last["plan"].clone(), last["ok"].clone()),
        (submitted["plan"].clone(), true.into())
    );
    // At rest, the same file runs anew.
    let anew = home.ocio(&["run", plan, "--no-activity"]);
    assert_eq!(anew.status.code(), Some(0), "{}", stderr(&anew));
    assert!(
        json_lines(&anew)
            .iter()
            .any(|l| l["type"] == "plan_submitted"),
        "a plan at rest is run anew"
    );
}

/// `kill -9` while a plan's `setup` runs: the setup the killed ocio left running (its shell
/// goes on, reparented) is stopped when the task's next attempt starts its own, so the two never
/// run side by side (hand trial: a second setup ran at once beside the first). A setup left
/// running in the same attempt's worktree is waited for instead, and what it finished is not
/// run again (`engine::core::tree`).
#[test]
fn a_setup_left_running_by_a_killed_ocio_does_not_run_beside_the_next() {
    let home = Home::new();
    home.write_config(
        "[[agents]]\nname = \"fast\"\nkind = \"simulated\"\nduration = \"10ms\"\ncapabilities = [\"fast\"]\n",
    );
    repo_in(&home.path("work"));
    let log = home.path("setup.log");
    let plan = home.write_plan(
        "setup.toml",
        &format!(
            "name = \"s\"\nrepo = \"repo\"\nsetup = [\"echo start $OCIO_ATTEMPT >> '{0}'; sleep 3; echo end $OCIO_ATTEMPT >> '{0}'\"]\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"fast\"]\n",
            log.display()
        ),
    );
    let plan = plan.to_str().unwrap();
    let first = support::home::Engine::spawn(home.command(&["run", plan, "--no-activity"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("start")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the setup never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    support::home::signal_process(first.pid(), "KILL");
    let _ = first.wait();
    let again = support::home::Engine::spawn(home.command(&["run", plan, "--no-activity"]));
    let (code, lines, err) = again.wait();
    assert_eq!(code, Some(0), "{err}\n{lines:?}");
    // Time for the first setup to have ended, had it not been stopped.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "start 1\nstart 2\nend 2\n",
        "the first attempt's setup was stopped as the second began"
    );
}

/// `ocio run` of a plan file whose interrupted run's plan ended meanwhile (another engine, or
/// the restart's own recovery, finished it) reports that plan's end instead of running the
/// file a second time (review: it was at rest, so it was submitted anew and every task ran
/// again).
#[test]
fn run_again_after_the_interrupted_plan_ended_meanwhile_reports_it() {
    let home = Home::new();
    home.write_config(&AGENTS.replace("duration = \"1h\"", "duration = \"2s\""));
    let plan = home.write_plan("plan.toml", PLAN);
    let plan = plan.to_str().unwrap();
    let mut first = support::home::Engine::spawn(home.command(&["run", plan, "--no-activity"]));
    let submitted = first.until("the plan is submitted", |l| l["type"] == "plan_submitted");
    first.until("long is dispatched", |l| l["type"] == "dispatched");
    assert_eq!(first.stop("TERM").0, Some(130));
    let mut engine = home.engine(&["--no-activity"]);
    engine.until("the plan ends", |l| l["type"] == "plan_finished");
    assert_eq!(engine.stop("TERM").0, Some(130));
    let again = home.ocio(&["run", plan, "--no-activity"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let lines = json_lines(&again);
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert!(
        !kinds.contains(&"plan_submitted") && !kinds.contains(&"dispatched"),
        "{kinds:?}"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "run.finished");
    assert_eq!(last["plan"], submitted["plan"]);
    assert_eq!(last["ok"], true);
    assert!(
        stderr(&again).contains("which an interrupted run of this file submitted"),
        "{}",
        stderr(&again)
    );
}
