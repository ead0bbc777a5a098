//! `ocio demo` in a pseudo-terminal made by `script` (no tmux): a demo stopped before it
//! submitted its plan submits it when it starts again, once; a demo without `--db` removes its
//! scratch directory when it is quit, one with `--db` keeps it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::home::{Home, signal_process};

fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `ocio ARGS` in a pseudo-terminal, its screen collected, the terminal's cursor query
/// answered as a terminal would.
struct Pty {
    child: Child,
    stdin: Arc<Mutex<ChildStdin>>,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn start(home: &Home, args: &[&str]) -> Pty {
        Self::start_with(home, args, &[])
    }

    /// With `env` set besides the home's.
    fn start_with(home: &Home, args: &[&str], env: &[(&str, &Path)]) -> Pty {
        let ocio = std::iter::once(env!("CARGO_BIN_EXE_ocio"))
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let line = format!("stty rows 36 cols 120; exec {ocio}");
        let mut command = home.program("script", &["-qfec", &line, "/dev/null"]);
        command.envs(env.iter().copied());
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = Arc::new(Mutex::new(child.stdin.take().unwrap()));
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let (answer, seen) = (stdin.clone(), screen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                let mut seen = seen.lock().unwrap();
                // Every query, even one split between two reads, gets its one answer.
                let from = seen.len().saturating_sub(3);
                seen.extend_from_slice(&buf[..n]);
                let asked = seen[from..].windows(4).filter(|w| w == b"\x1b[6n").count();
                for _ in 0..asked {
                    let _ = answer.lock().unwrap().write_all(b"\x1b[1;1R");
                }
            }
        });
        Pty {
            child,
            stdin,
            screen,
        }
    }

    fn keys(&self, keys: &str) {
        let _ = self.stdin.lock().unwrap().write_all(keys.as_bytes());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Quit the room (saying yes when it asks), and return its exit code.
    fn quit(self) -> (Option<i32>, String) {
        self.keys("q");
        std::thread::sleep(Duration::from_millis(500));
        self.keys("y");
        self.wait()
    }

    fn wait(mut self) -> (Option<i32>, String) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                return (status.code(), self.screen());
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("ocio did not exit: {}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ocio tasks --json` on `db` from the demo's engine, a second after it answers with a plan
/// (or after 20 s without one): a second plan would be submitted by then.
fn engine_plans(home: &Home, db: &Path) -> Value {
    let db = db.to_str().unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let read = || {
        let out = home.ocio(&["tasks", "--db", db, "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    loop {
        let json = read();
        let found = json["plans"].as_array().map_or(0, Vec::len);
        if json["source"] == "engine" && (found > 0 || Instant::now() > until) {
            std::thread::sleep(Duration::from_secs(1));
            return read();
        }
        assert!(Instant::now() < until, "the demo's engine never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What `kill -9` before the plan's submission leaves: the demo's directory (its plan file
/// beside the database) and a database with no plan.
fn stopped_before_its_plan(home: &Home) -> PathBuf {
    let dir = home.path("my-demo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("demo-plan.toml"), "name = \"demo-feature\"\n").unwrap();
    let db = dir.join("demo.redb");
    let store = ocio::store::Store::open(&db, ocio::store::StoreOptions::default()).unwrap();
    store.close_blocking();
    db
}

#[test]
fn a_demo_stopped_before_it_submitted_its_plan_submits_it_once_when_started_again() {
    if !script_available() {
        return;
    }
    let home = Home::new();
    let db = stopped_before_its_plan(&home);
    let db_arg = db.to_str().unwrap();
    let room = Pty::start(&home, &["demo", "--db", db_arg]);
    let plans = engine_plans(&home, &db);
    assert_eq!(
        plans["plans"].as_array().unwrap().len(),
        1,
        "the restarted demo submits its plan: {plans}"
    );
    let status: Value =
        serde_json::from_slice(&home.ocio(&["status", "--db", db_arg, "--json"]).stdout).unwrap();
    signal_process(status["engine"]["pid"].as_u64().unwrap() as u32, "TERM");
    let (code, screen) = room.wait();
    assert_eq!(code, Some(130), "{screen}");

    // Started again with its plan: it resumes that one, and submits no second.
    let room = Pty::start(&home, &["demo", "--db", db_arg]);
    let plans = engine_plans(&home, &db);
    assert_eq!(plans["plans"].as_array().unwrap().len(), 1, "{plans}");
    let (code, screen) = room.quit();
    assert_eq!(code, Some(0), "{screen}");
    let stored = home.json(&["tasks", "--db", db_arg, "--json"]);
    assert_eq!(stored["plans"].as_array().unwrap().len(), 1, "{stored}");
    assert_eq!(stored["plans"][0]["tasks"].as_array().unwrap().len(), 10);
}

/// The one directory the demo made under `tmp`, once its engine answers.
fn scratch_dir(home: &Home, tmp: &Path) -> PathBuf {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let made: Vec<PathBuf> = std::fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        if let [dir] = made.as_slice()
            && dir.join("demo.redb").exists()
        {
            let db = dir.join("demo.redb");
            engine_plans(home, &db);
            return dir.clone();
        }
        assert!(
            Instant::now() < until,
            "no scratch directory in {tmp:?}: {made:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_demo_without_db_removes_its_scratch_directory_when_quit_and_one_with_db_keeps_it() {
    if !script_available() {
        return;
    }
    let home = Home::new();
    let tmp = home.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let room = Pty::start_with(&home, &["demo"], &[("TMPDIR", &tmp)]);
    let dir = scratch_dir(&home, &tmp);
    let (code, screen) = room.quit();
    assert_eq!(code, Some(0), "{screen}");
    assert!(!dir.exists(), "the scratch directory {dir:?} is left");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?} in the temp dir");
    assert!(
        screen.contains("removed its scratch repository and database"),
        "the stop message does not say so: {screen}"
    );

    let db = home.path("kept/demo.redb");
    let room = Pty::start(&home, &["demo", "--db", db.to_str().unwrap()]);
    engine_plans(&home, &db);
    let (code, screen) = room.quit();
    assert_eq!(code, Some(0), "{screen}");
    assert!(db.is_file(), "the demo's database is gone");
    assert!(
        screen.contains("are kept in") && screen.contains("resumes the demo"),
        "the stop message does not say so: {screen}"
    );
}
