//! A managed server (`managed = true`: ocio starts `opencode serve` itself) outlives ocio while
//! its sessions work, and the next ocio adopts it: a quit or a `kill -9` in the middle of a task
//! costs nothing, the prompt is never sent twice. With nothing running, a quit stops it.

use std::time::{Duration, Instant};

use ocio::scripted::{self, Rule, Script, ScriptedModel, Turn};
use serde_json::Value;

use super::is_task;
use crate::support::home::{Engine, Home, is_private, signal_process, stderr, stdout};
use crate::support::{TestRepo, opencode_bin};

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn a_managed_servers_sessions_outlive_ocio_and_the_next_one_adopts_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let script = Script::new()
        .rule(
            Rule::when("first work")
                .turn(Turn::write("first.txt", "first\n").delay_ms(3000))
                .turn(Turn::text("first done")),
        )
        .rule(
            Rule::when("second work")
                .turn(Turn::write("second.txt", "second\n").delay_ms(3000))
                .turn(Turn::text("second done")),
        );
    let model = runtime.block_on(ScriptedModel::start(script)).unwrap();
    let home = Home::new();
    let repo = TestRepo::new();
    home.write_config(&format!(
        "[[agents]]\nname = \"local\"\nmanaged = true\nlinger = \"2m\"\nopencode_path = {:?}\nmodel = \"{}/{}\"\n",
        opencode_bin(),
        scripted::PROVIDER_ID,
        scripted::MODEL_ID
    ));
    let config = scripted::opencode_config(&model.base_url()).to_string();
    let ocio = |args: &[&str]| {
        let mut command = home.command(args);
        command.env("OPENCODE_CONFIG_CONTENT", &config);
        command
    };
    let plan = |task: &str| {
        let path = home.write_plan(
            &format!("{task}.toml"),
            &format!(
                "name = \"{task}\"\nrepo = {:?}\n[[tasks]]\nid = \"{task}\"\nprompt = \"{task} work\"\n",
                repo.dir_str()
            ),
        );
        path.to_str().unwrap().to_string()
    };
    let record = home.path("data/ocio/servers/ocio.redb/local.json");
    let server_pid = || -> u32 {
        let text = std::fs::read_to_string(&record)
            .unwrap_or_else(|e| panic!("no record of the managed server ({e})"));
        let record: Value = serde_json::from_str(&text).unwrap();
        record["pid"].as_u64().unwrap() as u32
    };

    // A quit (SIGTERM) while the session works leaves its server running.
    let first = plan("first");
    let engine = Engine::spawn(ocio(&["run", &first, "--headless"]));
    prompted(&model, "first work");
    let (_, _, err) = engine.stop("TERM");
    assert!(is_private(&record, 0o600), "the record holds a password");
    let pid = server_pid();
    assert!(alive(pid), "the managed server stopped with ocio: {err}");
    // ocio says what it left running as it exits.
    assert!(
        err.contains(&format!(
            "the managed server of local (pid {pid}, up to 2m) runs on for its sessions"
        )),
        "{err}"
    );
    // With no engine running, `ocio status` says the server runs on, where, and until when.
    let status = home.json(&["status", "--json"]);
    let server = &status["servers"][0];
    assert_eq!(server["agent"], "local", "{status}");
    assert_eq!(server["pid"], pid, "{status}");
    let time = |field: &str| -> jiff::Timestamp {
        server[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field}: {status}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        time("stops_at").as_second() - time("left_at").as_second(),
        120,
        "{status}"
    );
    let out = home.ocio(&["status"]);
    assert!(
        stdout(&out).contains(" ago: the next start adopts it, else it stops in 2m)")
            || stdout(&out).contains(" ago: the next start adopts it, else it stops in 1m"),
        "{}",
        stdout(&out)
    );

    // The next ocio adopts it: the session is re-attached and its work lands, prompted once.
    let mut engine = Engine::spawn(ocio(&["--headless"]));
    engine.until("first is done", |l| is_task(l, "first", "done"));
    assert_eq!(server_pid(), pid, "another server was started");
    assert_eq!(
        calls(&model, "first work"),
        2,
        "the prompt and the tool result, once"
    );

    // `ocio check` checks the server the engine runs, not one of its own.
    let out = ocio(&["check", "local", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["running"], pid, "{report}");
    assert_eq!(report[0]["ok"], true, "{report}");

    // `kill -9` of ocio while a session works: the same.
    let second = plan("second");
    let out = ocio(&["submit", &second]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    prompted(&model, "second work");
    signal_process(engine.pid(), "KILL");
    drop(engine.wait());
    assert!(alive(pid), "the managed server died with ocio");
    let mut engine = Engine::spawn(ocio(&["--headless"]));
    engine.until("second is done", |l| is_task(l, "second", "done"));
    assert_eq!(server_pid(), pid, "another server was started");
    assert_eq!(
        calls(&model, "second work"),
        2,
        "the prompt and the tool result, once"
    );

    // A quit with nothing running stops the server and forgets it.
    let (code, _, err) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
    assert!(!err.contains("runs on"), "nothing was left running: {err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "an idle managed server outlived ocio");
    assert!(!record.exists(), "a stopped server is forgotten");
    runtime.block_on(model.shutdown());
}

/// Wait until the model has been asked for `prompt`.
fn prompted(model: &ScriptedModel, prompt: &str) {
    let deadline = Instant::now() + WAIT;
    while calls(model, prompt) == 0 {
        assert!(Instant::now() < deadline, "never prompted with {prompt}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The model's calls in a conversation whose last user message is `prompt` (OpenCode's own
/// side jobs, such as titles, left out).
fn calls(model: &ScriptedModel, prompt: &str) -> usize {
    model
        .requests()
        .iter()
        .filter(|r| r.side_job.is_none() && r.last_user_text.as_deref() == Some(prompt))
        .count()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}
