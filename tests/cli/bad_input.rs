//! Bad input end to end: plans, configs and closed pipes each end with a clear message (or,
//! for a reader that went away, quietly), the right exit code, and nothing run or changed.

use std::path::PathBuf;
use std::process::Output;

use super::support::TestRepo;
use super::support::home::{Home, stderr, stdout};
use super::{SIM_AGENT, write_plan};

const TASKS: &str = "[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n";

fn plan_in(home: &Home, header: &str) -> PathBuf {
    write_plan(home, &format!("name = \"p\"\n{header}\n{TASKS}"))
}

/// Exit 2, every needle on stderr, nothing on stdout.
fn refused(output: &Output, needles: &[&str]) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(output).is_empty(), "{}", stdout(output));
    err
}

#[test]
fn run_refuses_a_repo_that_does_not_exist() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let plan = plan_in(&home, "repo = \"no-such-project\"");
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    refused(
        &out,
        &["plan.toml:2:8", "no-such-project", "does not exist"],
    );
}

#[test]
fn submit_to_a_running_engine_refuses_a_repo_that_does_not_exist() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let _engine = home.engine(&[]);
    let plan = plan_in(&home, "repo = \"no-such-project\"");
    let out = home.ocio(&["submit", plan.to_str().unwrap()]);
    refused(
        &out,
        &["plan.toml:2:8", "no-such-project", "does not exist"],
    );
    let tasks = home.json(&["tasks", "--json"]);
    assert_eq!(tasks["plans"].as_array().map(Vec::len), Some(0), "{tasks}");
}

#[test]
fn plans_refuse_the_root_the_home_directory_and_a_file_as_repo() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    std::fs::write(home.path("notes.txt"), "x").unwrap();
    let home_dir = home.dir.path().to_string_lossy().into_owned();
    let notes = home.path("notes.txt").to_string_lossy().into_owned();
    for (repo, why) in [
        ("/", "not a project"),
        (home_dir.as_str(), "home directory"),
        (notes.as_str(), "not a directory"),
    ] {
        let plan = plan_in(&home, &format!("repo = {repo:?}"));
        let out = home.ocio(&["run", plan.to_str().unwrap()]);
        refused(&out, &["plan.toml:2:8", why]);
    }
}

#[test]
fn a_base_the_repository_does_not_have_exits_2_at_its_line() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let repo = TestRepo::new();
    let header = format!("repo = {:?}\nbase = \"no-such-branch\"", repo.dir_str());
    let plan = plan_in(&home, &header);
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("plan.toml:3:8"), "{err}");
    assert!(err.contains("no-such-branch"), "{err}");
}

#[test]
fn a_log_level_that_is_no_level_is_refused() {
    let home = Home::new();
    home.write_config("[log]\nlevel = \"loud\"\n");
    let out = home.ocio(&["status"]);
    refused(
        &out,
        &[
            "line 2",
            "log.level",
            "off, error, warn, info, debug, trace",
        ],
    );
}

#[test]
fn files_the_config_names_must_be_there_for_status_and_check() {
    let home = Home::new();
    home.write_config("[[agents]]\nname = \"box\"\nurl = \"https://box:4096\"\nca_cert = \"gone.pem\"\n\n[[agents]]\nname = \"nobin\"\nmanaged = true\nopencode_path = \"/nonexistent/opencode\"\n");
    let needles = [
        "line 4",
        "agents[0].ca_cert",
        "gone.pem",
        "line 9",
        "agents[1].opencode_path",
        "/nonexistent/opencode",
    ];
    for command in ["status", "check"] {
        refused(&home.ocio(&[command]), &needles);
    }
}

/// A fleet's members take its password as they join: an unset variable (which cannot appear
/// later in the process) is refused at start, naming the fleet and the variable, before the
/// database is made. It used to start, and the members never joined, with nothing said.
#[test]
fn a_fleet_whose_password_variable_is_unset_is_refused_before_anything_starts() {
    let home = Home::new();
    home.write_config(&format!(
        "{SIM_AGENT}\n[[fleets]]\nname = \"builders\"\nurls = [\"http://127.0.0.1:1\"]\npassword_env = \"OCIO_TEST_NEVER_SET_PASSWORD\"\n"
    ));
    let plan = plan_in(&home, "repo = \".\"\nworktrees = false");
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    refused(
        &out,
        &[
            "fleet builders",
            "OCIO_TEST_NEVER_SET_PASSWORD",
            "is not set",
            "hint: export",
        ],
    );
    assert!(!home.db().exists(), "a database was made");
}

#[test]
fn every_config_problem_is_reported_at_once() {
    let home = Home::new();
    home.write_config(
        "[engine]\nmax_parallel = 0\n\n[[agents]]\nname = \"a\"\nurl = \"ftp://x\"\n",
    );
    let out = home.ocio(&["status"]);
    refused(&out, &["line 2", "line 6"]);
}

#[test]
fn a_huge_agent_name_is_clipped_on_stderr() {
    let home = Home::new();
    let name = "n".repeat(1 << 20);
    home.write_config(&format!(
        "[[agents]]\nname = \"{name}!\"\nkind = \"simulated\"\n"
    ));
    let out = home.ocio(&["status"]);
    let err = refused(&out, &["line 2", "agents[0].name"]);
    assert!(err.len() < 2_000, "{} bytes on stderr", err.len());
}

#[test]
fn context_reads_as_text_not_debug_output() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    let repo = TestRepo::new();
    let plan = plan_in(&home, &format!("repo = {:?}", repo.dir_str()));
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.ocio(&["context"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(text.contains("plan p"), "{text}");
    for debug in ["{", "}", "Merged", "UpToDate", "None", "Pending", "commit:"] {
        assert!(!text.contains(debug), "{debug:?} in: {text}");
    }
}

/// `ocio args` with its stdout a pipe whose reader is gone before it writes.
fn with_closed_stdout(home: &Home, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    home.command(args).stdout(writer).output().unwrap()
}

#[test]
fn a_closed_stdout_ends_printing_commands_quietly() {
    let home = Home::new();
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["status"],
        &["status", "--json"],
        &["tasks"],
        &["export"],
    ] {
        let out = with_closed_stdout(&home, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            !err.contains("ocio:") && !err.contains("pipe"),
            "{args:?}: {err}"
        );
    }
}
