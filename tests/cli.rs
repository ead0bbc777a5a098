//! The `ocio` binary end to end: each test runs it in its own XDG directories and checks exit
//! codes, stdout, stderr and what it left on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/database_file.rs"]
mod database_file;
#[path = "cli/demo.rs"]
mod demo;
#[path = "cli/land.rs"]
mod land;
#[path = "cli/open.rs"]
mod open;
#[path = "cli/review.rs"]
mod review;
#[path = "cli/search.rs"]
mod search;
#[path = "cli/timeline.rs"]
mod timeline;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use jiff::Timestamp;
use ocio::domain::{Session, SessionId, SessionKind, SessionStatus};
use ocio::store::{Batch, Store, StoreOptions};

use support::home::{Home, json_lines, stderr, stdout};

fn status_json(home: &Home, extra: &[&str]) -> serde_json::Value {
    let mut args = extra.to_vec();
    args.extend(["status", "--json"]);
    let output = home.ocio(&args);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", stdout(&output)))
}

fn seed(db: &Path, statuses: &[SessionStatus]) {
    let store = Store::open(db, StoreOptions::default()).unwrap();
    for &target in statuses {
        let mut session = Session::new(
            SessionId::generate(),
            "seeded",
            SessionKind::Code,
            Timestamp::now(),
        );
        let mut batch = Batch::new();
        for to in [
            SessionStatus::Queued,
            SessionStatus::Starting,
            SessionStatus::Running,
            SessionStatus::Completed,
        ] {
            let event = session.transition(to, "seed", Timestamp::now()).unwrap();
            batch.append_event(&event);
            if to == target {
                break;
            }
        }
        batch.put_session(&session);
        store.commit_blocking(batch).unwrap();
    }
    store.close_blocking();
}

#[test]
fn version_and_help() {
    let home = Home::new();
    let output = home.ocio(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output).trim(),
        format!("ocio {}", env!("CARGO_PKG_VERSION"))
    );
    let help = stdout(&home.ocio(&["--help"]));
    for word in [
        "status",
        "completions",
        "--config",
        "--db",
        "--headless",
        "submit",
        "--metrics-addr",
    ] {
        assert!(help.contains(word), "help lacks {word}: {help}");
    }
    // A command that does not host the engine neither lists nor takes the host's flags.
    let sessions = stdout(&home.ocio(&["sessions", "--help"]));
    assert!(sessions.contains("--db"), "{sessions}");
    for flag in ["--headless", "--metrics-addr", "--no-activity"] {
        assert!(
            !sessions.contains(flag),
            "sessions --help lists {flag}: {sessions}"
        );
    }
    let refused = home.ocio(&["status", "--metrics-addr", "127.0.0.1:0"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let run = stdout(&home.ocio(&["run", "--help"]));
    assert!(
        run.contains("--metrics-addr") && run.contains("--no-activity"),
        "{run}"
    );
}

#[test]
fn status_on_a_fresh_machine_reports_zeros_and_creates_no_database() {
    let home = Home::new();
    let report = status_json(&home, &[]);
    assert_eq!(report["database"]["access"], "none");
    assert_eq!(report["database"]["exists"], false);
    assert_eq!(report["config"]["source"], "defaults");
    assert_eq!(report["sessions"]["total"], 0);
    assert_eq!(
        report["sessions"]["by_state"].as_object().unwrap().len(),
        12,
        "every session state is listed"
    );
    assert_eq!(report["sessions"]["by_state"]["waiting-approval"], 0);
    assert_eq!(report["sessions"]["by_state"]["lost"], 0);
    assert_eq!(report["tasks"]["by_state"]["blocked"], 0);
    assert_eq!(report["agents"]["by_state"]["draining"], 0);
    assert!(!home.db().exists(), "status must not create a database");
    let text = stdout(&home.ocio(&["status"]));
    assert!(text.contains("none yet"), "{text}");
}

#[test]
fn status_counts_what_the_database_holds() {
    let home = Home::new();
    seed(
        &home.db(),
        &[
            SessionStatus::Running,
            SessionStatus::Completed,
            SessionStatus::Completed,
        ],
    );
    let report = status_json(&home, &[]);
    assert_eq!(report["database"]["access"], "read-only");
    assert_eq!(report["database"]["schema_version"], 3);
    assert_eq!(report["sessions"]["total"], 3);
    assert_eq!(report["sessions"]["by_state"]["completed"], 2);
    assert_eq!(report["sessions"]["by_state"]["running"], 1);
    assert_eq!(report["events"], 3 + 4 + 4);
    let text = stdout(&home.ocio(&["status"]));
    assert!(
        text.contains("sessions     3 (completed 2, running 1)"),
        "{text}"
    );
}

#[test]
fn status_reads_alongside_a_running_ocio() {
    let home = Home::new();
    seed(&home.db(), &[SessionStatus::Queued]);
    let holder = Store::open(&home.db(), StoreOptions::default()).unwrap();
    let report = status_json(&home, &[]);
    assert_eq!(report["database"]["access"], "read-only");
    assert_eq!(report["sessions"]["by_state"]["queued"], 1);
    holder.close_blocking();
}

#[test]
fn db_and_config_paths_can_be_overridden() {
    let home = Home::new();
    let db = home.path("elsewhere/my.redb");
    seed(&db, &[SessionStatus::Queued]);
    let config = home.path("my-config.toml");
    std::fs::write(
        &config,
        "[[agents]]\nname = \"sim\"\nkind = \"simulated\"\n",
    )
    .unwrap();
    let report = status_json(
        &home,
        &[
            "--db",
            db.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(report["database"]["path"], db.to_str().unwrap());
    assert_eq!(report["sessions"]["total"], 1);
    assert_eq!(report["config"]["agents"], 1);
}

#[test]
fn a_bad_config_names_file_line_and_key_and_exits_2() {
    let home = Home::new();
    let path = home.write_config("[engine]\nmax_parallel = 4\n\n[[agents]]\nname = \"a\"\nkind = \"simulated\"\nmodle = \"x/y\"\n");
    let output = home.ocio(&["status"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 7"), "{err}");
    assert!(err.contains("modle"), "{err}");
    assert!(stdout(&output).is_empty(), "nothing on stdout on failure");
}

/// `[ui.keys] quit = []` would leave no way to quit by key: refused by every command (the
/// control room and `ocio check` alike) with the file, line and key, exit 2.
#[test]
fn a_config_that_leaves_quit_without_a_key_is_refused() {
    let home = Home::new();
    for (text, line, key) in [
        ("[ui.keys]\nquit = []\n", "line 2", "ui.keys.quit"),
        (
            "[ui]\n\n[ui.keys]\nup = [\"k\"]\nhelp = [\"q\", \"ctrl-c\"]\n",
            "line 5",
            "ui.keys.help",
        ),
    ] {
        let path = home.write_config(text);
        for command in [&["check"][..], &["status"][..]] {
            let output = home.ocio(command);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{command:?}: {err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains(line) && err.contains(key), "{err}");
            assert!(err.contains("quit"), "{err}");
        }
    }
}

/// Every scalar `[engine]` key can be set from the environment (the README says so); these
/// three were refused, and every command with them.
#[test]
fn env_overrides_of_every_scalar_engine_key_are_taken() {
    let home = Home::new();
    for (var, value) in [
        ("OCIO_ENGINE__QUESTION_TIMEOUT", "5m"),
        ("OCIO_ENGINE__MAX_WORKTREES", "3"),
        ("OCIO_ENGINE__TRANSCRIPT_CAP", "1MiB"),
    ] {
        let output = home.command(&["status"]).env(var, value).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{var}: {}", stderr(&output));
    }
    let output = home
        .command(&["status"])
        .env("OCIO_ENGINE__MAX_WORKTREES", "-1")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("OCIO_ENGINE__MAX_WORKTREES"), "{err}");
}

/// A theme that does not exist is a config error for every command, as the control room would
/// refuse it: the file, the line, the key and the themes there are, exit 2.
#[test]
fn an_unknown_theme_is_refused_with_its_line_and_the_known_themes() {
    let home = Home::new();
    let path = home.write_config("[engine]\nmax_parallel = 2\n\n[ui]\ntheme = \"nope\"\n");
    for command in [&["check"][..], &["status"][..]] {
        let output = home.ocio(command);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("line 5") && err.contains("ui.theme"), "{err}");
        assert!(
            err.contains("industrial") && err.contains("daylight"),
            "{err}"
        );
    }
    // A theme of the user's own, beside the config, is known.
    let themes = path.parent().unwrap().join("themes");
    std::fs::create_dir_all(&themes).unwrap();
    let industrial = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("themes/industrial.toml"),
    )
    .unwrap();
    std::fs::write(themes.join("nope.toml"), industrial).unwrap();
    let output = home.ocio(&["check"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// `ocio check` with no agent says where the config file is (or would be) and gives an entry
/// to start from; it said only "see README.md".
#[test]
fn check_without_agents_names_the_config_file_and_an_entry() {
    let home = Home::new();
    let output = home.ocio(&["check"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let file = home.path("config/ocio/config.toml");
    assert!(
        text.contains(&format!("no config file at {}", file.display()))
            && text.contains("[[agents]]\nname = \"local\"\nurl = \"http://127.0.0.1:4096\""),
        "{text}"
    );
    home.write_config("[engine]\nmax_parallel = 2\n");
    let text = stdout(&home.ocio(&["check"]));
    assert!(
        text.contains(&format!("No agents configured in {}", file.display())),
        "{text}"
    );
}

#[test]
fn an_explicit_config_that_does_not_exist_is_an_error() {
    let home = Home::new();
    let output = home.ocio(&["--config", "/nonexistent/ocio.toml", "status"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("/nonexistent/ocio.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let home = Home::new();
    let db = home.db();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let text = "important notes, not a database\n".repeat(100);
    std::fs::write(&db, &text).unwrap();
    let output = home.ocio(&["status"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains(&db.display().to_string()) && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&db).unwrap(), text);
}

#[test]
fn completions_are_generated() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish"] {
        let output = home.ocio(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0));
        assert!(stdout(&output).contains("ocio"), "{shell}");
    }
    assert_eq!(home.ocio(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn logs_go_to_the_log_file_only() {
    let home = Home::new();
    let output = home.ocio(&["status"]);
    assert!(stderr(&output).is_empty(), "stderr: {}", stderr(&output));
    let logs: Vec<_> = std::fs::read_dir(home.path("state/ocio"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        std::fs::read_to_string(&logs[0])
            .unwrap()
            .contains("ocio starting")
    );
}

/// `ocio demo` without a terminal says so and exits 2, as plain `ocio` does, before it makes a
/// scratch repository or touches any database; `--headless` is refused the same clear way.
#[test]
fn the_demo_without_a_terminal_says_so_and_touches_nothing() {
    let home = Home::new();
    let scratch = home.path("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    for args in [&["demo"][..], &["demo", "--headless"]] {
        let output = home
            .command(args)
            .env("TMPDIR", &scratch)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains("needs a terminal"), "{args:?}: {said}");
        assert!(!said.contains("os error"), "{args:?}: {said}");
        if args.contains(&"--headless") {
            assert!(said.contains("--headless"), "{args:?}: {said}");
        }
    }
    let made: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(made.is_empty(), "a scratch directory was made: {made:?}");
    let log: String = std::fs::read_dir(home.path("state/ocio"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let default = home.db().display().to_string();
    assert!(!log.contains(&default), "the log names {default}: {log}");
}

#[test]
fn the_example_config_loads() {
    let home = Home::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/config.example.toml");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let body: String = std::fs::read_to_string(example)
        .unwrap()
        .lines()
        .skip_while(|l| l.starts_with('#') || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        readme.contains(&body),
        "README's config example and assets/config.example.toml differ"
    );
    let report = status_json(&home, &["--config", example]);
    assert_eq!(report["config"]["source"], "file");
    assert_eq!(report["config"]["agents"], 2);
}

#[test]
fn check_starts_a_managed_server_and_reports_its_version() {
    let home = Home::new();
    home.write_config(&format!(
        "[[agents]]\nname = \"local\"\nmanaged = true\nopencode_path = {:?}\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\n",
        support::opencode_bin()
    ));
    let out = home.ocio(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let reports: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let local = &reports[0];
    assert_eq!(local["name"], "local");
    assert_eq!(local["kind"], "managed");
    assert_eq!(local["ok"], true);
    assert_eq!(local["version"], support::OPENCODE_VERSION);
    assert_eq!(local["version_tested"], true);
    assert!(
        local["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let agents: Vec<&str> = local["opencode_agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(agents.contains(&"build"), "{agents:?}");
    assert_eq!(reports[1]["kind"], "simulated");
}

/// `ocio check` says which fleet's source it is still reading (a command may take 30 s, and it
/// printed nothing meanwhile: hand trial).
#[test]
fn check_says_which_fleet_it_is_still_reading() {
    let home = Home::new();
    home.write_config(
        "[[fleets]]\nname = \"slow\"\ncommand = \"sleep 2; echo http://127.0.0.1:9\"\n\n[[fleets]]\nname = \"slower\"\ncommand = \"sleep 2; echo http://127.0.0.1:9/b\"\n",
    );
    let out = home.ocio(&["check"]);
    assert_eq!(out.status.code(), Some(1), "nothing answers at port 9");
    let said = stderr(&out);
    assert!(
        said.contains("reading the members of fleet slow ...")
            && said.contains("reading the members of fleet slower ..."),
        "{said}"
    );
}

#[test]
fn check_says_what_is_wrong_with_each_unreachable_agent() {
    let home = Home::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    home.write_config(&format!(
        "[[agents]]\nname = \"gone\"\nurl = \"http://127.0.0.1:{port}\"\n\n[[agents]]\nname = \"locked\"\nurl = \"http://127.0.0.1:{port}\"\npassword_env = \"OCIO_TEST_NO_SUCH_PASSWORD\"\n"
    ));
    let out = home.ocio(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL gone") && text.contains("cannot reach"),
        "{text}"
    );
    assert!(
        text.contains("FAIL locked") && text.contains("OCIO_TEST_NO_SUCH_PASSWORD"),
        "{text}"
    );
    // A missing opencode_path is a config error now (tests/cli/bad_input.rs).
    assert!(
        stderr(&out).contains("2 of 2 failed: gone, locked (see above)"),
        "{}",
        stderr(&out)
    );

    let out = home.ocio(&["check", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no agent or fleet named \"nosuch\""));
}

const SIM_AGENT: &str = "[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"20ms\"\ncapabilities = [\"code\"]\n\n[[agents]]\nname = \"flaky\"\nkind = \"simulated\"\nduration = \"20ms\"\nfailure_rate = 1.0\ncapabilities = [\"flaky\"]\n";

fn write_plan(home: &Home, text: &str) -> PathBuf {
    home.write_plan("plan.toml", text)
}

/// The host's flags go before `run` or after it; one given on the command line wins over
/// `OCIO_METRICS_ADDR` wherever it stands (review: the variable, read after `run` too, beat a
/// `--metrics-addr` given before it); before a command that hosts no engine it is refused.
#[test]
fn host_flags_on_the_command_line_win_over_the_environment_and_go_only_where_they_apply() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let plan = write_plan(
        &home,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n",
    );
    let plan = plan.to_str().unwrap();
    // Not loopback: refused unless --metrics-public, so the address used shows in the exit.
    let public = [("OCIO_METRICS_ADDR", "0.0.0.0:0")];
    for args in [
        &["--metrics-addr", "127.0.0.1:0", "run", plan][..],
        &["run", plan, "--metrics-addr", "127.0.0.1:0"],
    ] {
        let out = home.command(args).envs(public).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let out = home.command(&["run", plan]).envs(public).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "the variable alone is used");
    for args in [
        &["--metrics-addr", "127.0.0.1:0", "status"][..],
        &["--headless", "sessions"],
        &["--no-activity", "attach"],
    ] {
        let out = home.ocio(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("does not take it"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let status = home.command(&["status"]).envs(public).output().unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "the variable is no flag given"
    );
    // The address is read only where an engine is hosted, and its errors name where it came
    // from (hand trial: a bad OCIO_METRICS_ADDR failed `ocio status`, and named the flag).
    let nonsense = [("OCIO_METRICS_ADDR", "nonsense")];
    let status = home.command(&["status"]).envs(nonsense).output().unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    for (args, named) in [
        (
            &["run", plan][..],
            "OCIO_METRICS_ADDR `nonsense` is not an address",
        ),
        (
            &["run", plan, "--metrics-addr", "x:y"],
            "--metrics-addr `x:y` is not an address",
        ),
        (
            &["--metrics-addr", "x:y", "run", plan],
            "--metrics-addr `x:y` is not an address",
        ),
    ] {
        let out = home.command(args).envs(nonsense).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(named), "{args:?}: {}", stderr(&out));
    }
    let out = home.command(&["run", plan]).envs(public).output().unwrap();
    assert!(
        stderr(&out).contains("OCIO_METRICS_ADDR 0.0.0.0:0 is not a loopback address"),
        "{}",
        stderr(&out)
    );
    // --metrics-public alone asks for nothing: said (it was silently ignored).
    let out = home.ocio(&["run", plan, "--metrics-public"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("only applies with --metrics-addr"),
        "{}",
        stderr(&out)
    );
    // Attaching to a running engine serves no metrics: said, not silently ignored.
    let engine = home.engine(&[]);
    let out = home.ocio(&["--metrics-addr", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already runs on this database"),
        "{}",
        stderr(&out)
    );
    let (code, _, err) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
}

#[test]
fn run_executes_a_plan_and_reports_json_lines() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let plan = write_plan(
        &home,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"y\"\ncapabilities = [\"code\"]\n",
    );
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let lines = json_lines(&out);
    assert!(
        lines
            .iter()
            .all(|l| l["type"].is_string() && l["at"].is_string()),
        "every line has type and at"
    );
    assert_eq!(lines[0]["type"], "engine.started");
    assert_eq!(lines[1]["type"], "plan_submitted");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "run.finished");
    assert_eq!(last["ok"], true);
    assert_eq!(last["done"], 2);
    let dispatched = lines.iter().filter(|l| l["type"] == "dispatched").count();
    assert_eq!(dispatched, 2);
    let status = status_json(&home, &[]);
    assert_eq!(status["tasks"]["by_state"]["done"], 2);
    assert_eq!(status["sessions"]["by_state"]["completed"], 2);
    assert_eq!(status["agents"]["total"], 2, "the agents are recorded");
}

/// `ocio logs` takes what `cancel` and `retry` take: a task's key or `plan/key` names the
/// task's newest session.
#[test]
fn logs_take_a_task_as_cancel_does() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let plan = write_plan(
        &home,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"y\"\ncapabilities = [\"code\"]\n",
    );
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    for (target, title) in [("b", "p/b #1"), ("p/a", "p/a #1")] {
        let logs = home.json(&["logs", target, "--json"]);
        assert_eq!(logs["session"]["title"], title, "{target}: {logs}");
        assert_eq!(logs["checkpoints"][0]["kind"], "prompt-sent", "{logs}");
    }
    let out = home.ocio(&["logs", "p/nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no session or task matches `p/nope`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_exits_1_when_a_task_fails_and_2_for_a_bad_plan() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let failing = write_plan(
        &home,
        "name = \"f\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"flaky\"]\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"y\"\n",
    );
    let out = home.ocio(&["run", failing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let last = json_lines(&out).pop().unwrap();
    assert_eq!(
        (
            last["ok"].as_bool(),
            last["failed"].as_u64(),
            last["blocked"].as_u64()
        ),
        (Some(false), Some(1), Some(1))
    );

    let bad = write_plan(
        &home,
        "name = \"b\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\nneeds = [\"nope\"]\n",
    );
    let out = home.ocio(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("plan.toml:6:") && stderr(&out).contains("nope"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "nothing ran");

    let nobody = Home::new();
    let out = nobody.ocio(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// Top-level keys each JSON Lines type carries besides `type` and `at` (README, "JSON Lines").
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "engine.started",
        &["pid", "version", "database", "socket", "metrics"],
    ),
    (
        "plan_submitted",
        &["plan", "name", "tasks", "key", "branch"],
    ),
    (
        "dispatched",
        &["plan", "task", "key", "session", "agent", "attempt"],
    ),
    ("transition", &["transition", "cause"]),
    ("activity", &["session", "entry"]),
    (
        "approval_requested",
        &["session", "task", "request", "permission", "patterns"],
    ),
    (
        "question_asked",
        &["session", "task", "request", "questions"],
    ),
    ("request_withdrawn", &["session", "request", "why"]),
    (
        "plan_finished",
        &[
            "plan",
            "name",
            "ok",
            "done",
            "failed",
            "blocked",
            "cancelled",
        ],
    ),
    ("plan_landed", &["plan", "name", "landing"]),
    ("recovered", &["sessions", "tasks", "resumed"]),
    ("paused", &["paused"]),
    ("session_usage", &["session", "usage"]),
    ("over_budget", &["plan", "name", "cause", "tasks"]),
    ("budget_resolved", &["plan", "name", "continued"]),
    ("agent_added", &["agent"]),
    ("agent_removed", &["agent"]),
    ("fleet_member_waiting", &["fleet", "url", "why"]),
    ("fleet_source_failed", &["fleet", "why", "kept"]),
    ("fleet_source_read", &["fleet", "listed"]),
    ("integration_ready", &["plan", "branch", "path"]),
    ("task_held", &["plan", "task", "key", "session", "file"]),
    ("overlap", &["plan", "path", "session", "with"]),
    ("merged", &["plan", "task", "key", "commit"]),
    (
        "merge_conflict",
        &["plan", "task", "key", "files", "policy"],
    ),
    ("check_started", &["plan", "task", "key", "command"]),
    ("check_progress", &["plan", "key", "line"]),
    (
        "check_ended",
        &["plan", "task", "key", "command", "passed", "report", "fix"],
    ),
    ("events.lagged", &["missed"]),
    ("engine.failed", &["error", "database"]),
    ("run.resumed", &["plan", "name"]),
    (
        "run.finished",
        &[
            "plan",
            "ok",
            "interrupted",
            "done",
            "failed",
            "blocked",
            "cancelled",
            "unfinished",
        ],
    ),
];

#[test]
fn json_lines_follow_the_documented_schema() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme.split("<!-- jsonl-schema").nth(1).unwrap();
    for (kind, keys) in SCHEMA {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{kind}` |")))
            .unwrap_or_else(|| panic!("README documents no `{kind}` line"));
        for key in *keys {
            assert!(
                row.contains(&format!("`{key}`")),
                "README's {kind} row lacks {key}"
            );
        }
    }

    let home = Home::new();
    home.write_config(SIM_AGENT);
    let plan = write_plan(
        &home,
        "name = \"s\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b\"\nprompt = \"y\"\ncapabilities = [\"flaky\"]\n",
    );
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let lines = json_lines(&out);
    let seen = documented(&lines);
    for kind in [
        "engine.started",
        "plan_submitted",
        "dispatched",
        "transition",
        "activity",
        "session_usage",
        "plan_finished",
        "run.finished",
    ] {
        assert!(seen.contains(kind), "a run prints {kind}: {seen:?}");
    }
    assert_eq!(lines.first().unwrap()["type"], "engine.started");
    assert_eq!(lines.last().unwrap()["type"], "run.finished");

    let quiet = home.ocio(&["run", plan.to_str().unwrap(), "--no-activity"]);
    assert!(json_lines(&quiet).iter().all(|l| l["type"] != "activity"));
}

/// The types of `lines`, each checked to be in [`SCHEMA`] with the keys it lists and an `at`.
fn documented(lines: &[serde_json::Value]) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    for line in lines {
        let kind = line["type"].as_str().unwrap();
        assert!(
            jiff::Timestamp::from_str(line["at"].as_str().unwrap()).is_ok(),
            "{line}"
        );
        let (_, keys) = SCHEMA
            .iter()
            .find(|(k, _)| *k == kind)
            .unwrap_or_else(|| panic!("undocumented line type {kind}: {line}"));
        for key in *keys {
            assert!(line.get(key).is_some(), "{kind} lacks {key}: {line}");
        }
        seen.insert(kind.to_string());
    }
    seen
}

/// Every `EngineEvent` a headless run can print is in [`SCHEMA`] (so in the README's table):
/// its variants, as serde names them, read from the enum's source.
#[test]
fn every_engine_event_is_documented() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/mod.rs")).unwrap();
    let body = source
        .split("pub enum EngineEvent {")
        .nth(1)
        .unwrap()
        .split("\n}\n")
        .next()
        .unwrap();
    let variants: Vec<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| {
            let name: String = l.chars().take_while(char::is_ascii_alphanumeric).collect();
            let mut snake = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            snake
        })
        .collect();
    assert!(variants.len() > 20, "{variants:?}");
    for variant in variants {
        // The engine's failure is printed by the front end, as `engine.failed`.
        let kind = match variant.as_str() {
            "engine_failed" => "engine.failed",
            other => other,
        };
        assert!(
            SCHEMA.iter().any(|(k, _)| *k == kind),
            "EngineEvent::{variant} is printed as `{kind}` but not documented"
        );
    }
}

/// A plan run a second time in a repository gets branches of its own (`ocio/<name>-2/...`):
/// its `plan_submitted` line names that key and its integration branch, so a script finds the
/// branch; every line of such a run (its integration, merges and checks) is documented.
#[test]
fn plan_submitted_names_the_branch_of_a_plan_run_again() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let repo = support::TestRepo::new();
    let plan = write_plan(
        &home,
        &format!(
            "name = \"again\"\nrepo = {:?}\ncheck = \"true\"\n[[tasks]]\nid = \"a\"\nprompt = 'SIM-WRITE a.txt from a\\n'\ncapabilities = [\"code\"]\n",
            repo.dir_str()
        ),
    );
    for key in ["again", "again-2"] {
        let out = home.ocio(&["run", plan.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
        let lines = json_lines(&out);
        let seen = documented(&lines);
        for kind in [
            "integration_ready",
            "merged",
            "check_started",
            "check_ended",
        ] {
            assert!(seen.contains(kind), "a run prints {kind}: {seen:?}");
        }
        let submitted = lines
            .iter()
            .find(|l| l["type"] == "plan_submitted")
            .unwrap();
        let branch = format!("ocio/{key}/integration");
        assert_eq!(submitted["name"], "again", "{submitted}");
        assert_eq!(submitted["key"], key, "{submitted}");
        assert_eq!(submitted["branch"], branch.as_str(), "{submitted}");
        assert!(repo.git_ok(&["rev-parse", "--verify", "-q", &branch]));
    }
}

#[test]
fn man_page_lists_the_commands() {
    let home = Home::new();
    let out = home.ocio(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ocio"),
        "{page}"
    );
    for word in [
        "submit",
        "sessions",
        "approve",
        "export",
        "open",
        "metrics\\-addr",
    ] {
        assert!(page.contains(word), "man page lacks {word}");
    }
}

/// A managed server is started without the variables that hold other servers' passwords (any
/// agent's `password_env`), so its shell tool cannot read them; the watchdog gets nothing but
/// PATH.
#[test]
fn a_managed_server_never_sees_another_servers_password() {
    let home = Home::new();
    let fake = home.path("fake-opencode");
    let dump = home.path("server-env");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nenv > {}\necho \"opencode server listening on http://127.0.0.1:1\"\nsleep 30\n",
            dump.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    home.write_config(&format!(
        "[[agents]]\nname = \"local\"\nmanaged = true\nopencode_path = {:?}\n\n[[agents]]\nname = \"far\"\nurl = \"http://127.0.0.1:1\"\npassword_env = \"FAR_PASSWORD\"\n",
        fake.display()
    ));
    let output = home
        .command(&["check", "local"])
        .env("FAR_PASSWORD", "hunter2-far")
        .env("UNRELATED_SETTING", "kept")
        .output()
        .unwrap();
    let seen = std::fs::read_to_string(&dump)
        .unwrap_or_else(|e| panic!("the fake server did not run ({e}): {}", stderr(&output)));
    assert!(
        !seen.contains("hunter2-far") && !seen.contains("FAR_PASSWORD"),
        "the managed server saw another server's password:\n{seen}"
    );
    assert!(seen.contains("UNRELATED_SETTING=kept"), "{seen}");
    assert!(
        seen.contains("OPENCODE_SERVER_PASSWORD="),
        "its own password it gets"
    );
}

#[test]
fn bad_budgets_exit_2_naming_file_line_and_field() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let bad = write_plan(
        &home,
        "name = \"b\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\nbudget = { tokens = 0 }\n",
    );
    let out = home.ocio(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(
        said.contains("plan.toml:6:") && said.contains("`budget`") && said.contains("at least 1"),
        "{said}"
    );
    assert!(stdout(&out).is_empty(), "nothing ran");

    let config = Home::new();
    config.write_config("[engine]\ndaily_budget = { cost = -5 }\n");
    let out = config.ocio(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(
        said.contains("line 2")
            && said.contains("engine.daily_budget")
            && said.contains("positive"),
        "{said}"
    );
    let out = config.ocio(&["budget", "--tokens", "5"]);
    assert_eq!(out.status.code(), Some(2), "a raise needs a plan");
}

/// A managed agent with no `opencode` to start is a configuration problem found before anything
/// ran: exit 2 naming the agent and what to do (install the pinned OpenCode or set its path).
/// `ocio --headless`, `ocio run` and the control room start their engine alike (`Host::start`,
/// its error mapped by `From<HostError>`).
#[test]
fn a_managed_agent_without_opencode_exits_2_naming_it_and_the_fix() {
    let home = Home::new();
    home.write_config("[[agents]]\nname = \"local\"\nmanaged = true\n");
    let plan = write_plan(
        &home,
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n",
    );
    let no_opencode = home.path("no-opencode-here");
    std::fs::create_dir_all(&no_opencode).unwrap();
    for args in [vec!["--headless"], vec!["run", plan.to_str().unwrap()]] {
        let out = home
            .command(&args)
            .env("PATH", &no_opencode)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "ocio {args:?}: {err}");
        assert!(
            err.contains("agent local: `opencode` was not found on PATH")
                && err.contains(ocio::opencode::INSTALL_OPENCODE)
                && err.contains("opencode_path"),
            "ocio {args:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "nothing ran: {}", stdout(&out));
        assert!(!home.socket().exists(), "no engine listens");
    }
}

/// A managed agent's `opencode_path` is the config file's neighbour when relative (as
/// `ca_cert` is), must be executable, and one that will not start says why at once: it was
/// looked up from wherever ocio ran, a file nobody may run passed, and `ocio check` waited a
/// minute to say "not ready after 1m: restarting (attempt 7)" (found trying the product by
/// hand).
#[test]
fn a_managed_agents_opencode_path_is_found_beside_the_config_and_fails_at_once() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let config = home
        .write_config("[[agents]]\nname = \"local\"\nmanaged = true\nopencode_path = \"quits\"\n");
    let program = config.parent().unwrap().join("quits");
    std::fs::write(&program, "#!/bin/sh\necho 'no such model' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o644)).unwrap();
    let elsewhere = home.path("work");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = home
        .command(&["check", "local"])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("opencode_path") && err.contains("is not executable"),
        "{err}"
    );
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = home
        .command(&["check", "local"])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("exited before it was ready") && said.contains("no such model"),
        "the first failed start, with the server's own words: {said}"
    );
    assert!(!said.contains("not ready after"), "{said}");
}

/// `ocio budget` gives the same report with an engine running and, once it has stopped, read
/// from the database: today's spend against the daily budget, each agent's, each plan's (one
/// that finished, one paused over its budget).
#[test]
fn budget_reports_the_same_with_and_without_an_engine() {
    let home = Home::new();
    home.write_config(
        "[engine]\ndaily_budget = { tokens = 1_000_000 }\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\nbudget = { cost = 50.0 }\n",
    );
    let done = home.write_plan(
        "done.toml",
        "name = \"done\"\nrepo = \".\"\nbudget = { tokens = 100_000 }\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n",
    );
    let held = home.write_plan(
        "held.toml",
        "name = \"held\"\nrepo = \".\"\nbudget = { tokens = 100 }\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"y\"\n",
    );
    let mut engine = home.engine(&[]);
    let out = home.ocio(&["submit", done.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    engine.until("done finishes", |l| l["type"] == "plan_finished");
    let out = home.ocio(&["submit", held.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    engine.until("held pauses over budget", |l| l["type"] == "over_budget");
    let live = home.json(&["budget", "--json"]);
    let live_text = home.ocio(&["budget"]);
    assert_eq!(live["source"], "engine");
    engine.stop("TERM");

    let stored = home.json(&["budget", "--json"]);
    assert_eq!(stored["source"], "database", "{stored}");
    assert_eq!(stored["budgets"], live["budgets"]);
    let out = home.ocio(&["budget"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no engine running"),
        "{}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert_eq!(text, stdout(&live_text));
    assert!(
        text.contains("/1000000 tokens")
            && text.contains("agent sim: ")
            && text.contains("plan done: ")
            && text.contains("plan held: ")
            && text.contains("paused over budget: plan budget"),
        "{text}"
    );
}
