//! A real full disk under a headless engine: the data directory is a small tmpfs, mounted in a
//! private mount namespace (`unshare -m`) kept alive by a holder process, and every `ocio` of
//! the test runs inside that namespace (`nsenter`). The tmpfs is filled mid-plan; the engine
//! must say so on stdout and stderr, exit non-zero, remove its socket and release the
//! database; once space is freed the next start finishes the plan, every task exactly once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::support::disk::SmallDisk;
use super::support::home::{Engine, Home, signal_process, stderr};

const TASKS: usize = 60;

const CONFIG: &str = "[engine]\nmax_parallel = 4\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"150ms\"\nmax_concurrent = 4\n";

/// Kills `pid` unless dropped within `limit`: a test that waits on a silent engine fails
/// instead of hanging.
struct Deadline(mpsc::Sender<()>);

impl Deadline {
    fn kill_after(pid: u32, limit: Duration) -> Deadline {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                eprintln!("deadline: the engine (pid {pid}) is still alive; killing it");
                signal_process(pid, "KILL");
            }
        });
        Deadline(tx)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

fn plan() -> String {
    let mut text = String::from("name = \"many\"\nrepo = \".\"\n");
    for i in 0..TASKS {
        text.push_str(&format!("[[tasks]]\nid = \"t{i:02}\"\nprompt = \"task number {i} of a plan that fills the disk\"\n"));
    }
    text
}

/// Task keys that reached `done` in `lines`, counted.
fn count_done(lines: &[Value], done: &mut BTreeMap<String, usize>) {
    for line in lines {
        if line["type"] == "transition"
            && line["transition"]["entity"] == "task"
            && line["transition"]["to"] == "done"
        {
            let key = line["transition"]["key"].as_str().unwrap().to_string();
            *done.entry(key).or_default() += 1;
        }
    }
}

#[test]
fn a_full_disk_stops_the_engine_visibly_and_the_next_start_finishes_the_plan() {
    let home = Home::new();
    home.write_config(CONFIG);
    let plan = home.write_plan("plan.toml", &plan());
    let Some(disk) = SmallDisk::mount(&home.path("data"), "8m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs in a private mount namespace here (needs root and util-linux unshare/nsenter)"
        );
        return;
    };
    let engine_command = disk.inside(&home.command(&["--headless", "--no-activity"]));
    let mut engine = Engine::spawn(engine_command);
    let socket = PathBuf::from(engine.started["socket"].as_str().unwrap());
    let database = engine.started["database"].as_str().unwrap().to_string();
    let submit = disk
        .inside(&home.command(&["submit", plan.to_str().unwrap(), "--json"]))
        .output()
        .unwrap();
    assert_eq!(submit.status.code(), Some(0), "submit: {}", stderr(&submit));

    let mut seen = Vec::new();
    loop {
        let line = engine
            .next()
            .expect("the engine's output ended before a task was done");
        let first_done = line["type"] == "transition" && line["transition"]["to"] == "done";
        seen.push(line);
        if first_done {
            break;
        }
    }
    disk.fill();

    let deadline = Deadline::kill_after(engine.pid(), Duration::from_secs(60));
    let (code, rest, err) = engine.wait();
    drop(deadline);
    seen.extend(rest);
    let failed = seen
        .iter()
        .find(|l| l["type"] == "engine.failed")
        .unwrap_or_else(|| panic!("no engine.failed line; exit {code:?}; stderr: {err}"));
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{failed}");
    assert_eq!(failed["database"], database.as_str(), "{failed}");
    assert_eq!(code, Some(1), "exit code; stderr: {err}");
    assert!(err.contains("No space left on device"), "stderr: {err}");
    assert!(err.contains(&database), "stderr names the database: {err}");
    assert!(err.contains("free"), "stderr says what to do: {err}");
    assert!(!socket.exists(), "the control socket is removed");
    assert!(
        !seen.iter().any(|l| l["type"] == "plan_finished"),
        "the disk filled before the plan finished"
    );

    // With no engine running, status reads the database and says so.
    let status = disk
        .inside(&home.command(&["status", "--json"]))
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "status: {}", stderr(&status));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["source"], "database", "{status}");
    assert!(status["engine"].is_null(), "{status}");

    disk.free();
    let mut engine = Engine::spawn(disk.inside(&home.command(&["--headless", "--no-activity"])));
    let deadline = Deadline::kill_after(engine.pid(), Duration::from_secs(120));
    loop {
        let line = engine
            .next()
            .expect("the restarted engine ended before the plan finished");
        let finished = line["type"] == "plan_finished";
        seen.push(line.clone());
        if finished {
            assert_eq!(line["ok"], true, "{line}");
            assert_eq!(line["done"], TASKS, "{line}");
            break;
        }
    }
    drop(deadline);
    let (code, _, _) = engine.stop("TERM");
    assert_eq!(code, Some(130));
    let mut done = BTreeMap::new();
    count_done(&seen, &mut done);
    assert_eq!(done.len(), TASKS, "every task done: {done:?}");
    assert!(
        done.values().all(|&n| n == 1),
        "each exactly once: {done:?}"
    );
}
