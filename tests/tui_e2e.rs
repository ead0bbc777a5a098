//! The control room in a real terminal: each test starts the `ocio` binary inside its own tmux
//! server (`tmux -L <unique>`, so tests run in parallel and never touch the user's tmux) with
//! simulated agents and temporary XDG directories, types at it with `send-keys`, reads the
//! screen with `capture-pane`, and checks that every way out gives the shell its terminal back.
//! Without tmux the tests say so on stderr and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "tui_e2e/notify.rs"]
mod notify;
#[path = "tui_e2e/plan_review.rs"]
mod plan_review;
#[path = "tui_e2e/question.rs"]
mod question;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long any one thing may take to show on screen. Generous: the suite runs in parallel on
/// two cores with a debug build; a healthy run needs a second or two.
const PATIENCE: Duration = Duration::from_secs(30);

/// Two simulated agents: a quick one for plans that should finish, a slow one for sessions
/// that should still be running when the test acts.
const CONFIG: &str = r#"
[[agents]]
name = "sim-quick"
kind = "simulated"
duration = "300ms"
capabilities = ["code"]
max_concurrent = 2

[[agents]]
name = "sim-slow"
kind = "simulated"
duration = "10m"
capabilities = ["slow"]
max_concurrent = 2
"#;

const PLAN: &str = r#"
name = "e2e"
repo = "."

[[tasks]]
id = "design"
prompt = "Design it."
capabilities = ["code"]

[[tasks]]
id = "build"
needs = ["design"]
prompt = "Build it."
capabilities = ["code"]

[[tasks]]
id = "check"
needs = ["design"]
prompt = "Check it."
capabilities = ["code"]
"#;

const SLOW_PLAN: &str = r#"
name = "long"
repo = "."

[[tasks]]
id = "forever"
prompt = "Take your time."
capabilities = ["slow"]
"#;

/// What the shell prints once ocio has exited: its exit code and whether the terminal is back
/// in cooked mode (raw mode turns `icanon` off).
const EXITED: &str = "OCIO-EXITED";

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("tmux is not installed: skipping the control room's end-to-end tests");
    }
    found
}

/// One ocio in one pane of its own tmux server, in its own home directory.
struct Room {
    socket: String,
    home: tempfile::TempDir,
    /// The last screen read, for failure messages.
    last: String,
    /// Run ocio inside the mount namespace of this process (`nsenter -t PID -m`).
    inside: Option<u32>,
    /// More variables for ocio's environment.
    env: Vec<(String, String)>,
    /// ocio's arguments (none: plain `ocio`).
    args: Vec<String>,
}

impl Room {
    /// Start ocio in a `width` x `height` window and wait until it shows its first frame.
    fn start(name: &str, width: u16, height: u16) -> Room {
        Self::start_with(name, width, height, CONFIG)
    }

    /// [`Room::start`] with the given config file.
    fn start_with(name: &str, width: u16, height: u16, config_text: &str) -> Room {
        Self::prepare(name, config_text).launch(width, height)
    }

    /// The room's home, config and plans, with nothing running yet.
    fn prepare(name: &str, config_text: &str) -> Room {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "ocio-e2e-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let home = tempfile::Builder::new()
            .prefix("ocio-tui-")
            .tempdir()
            .unwrap();
        let room = Room {
            socket,
            home,
            last: String::new(),
            inside: None,
            env: Vec::new(),
            args: Vec::new(),
        };
        let repo = room.path("repo");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("plan.toml"), PLAN).unwrap();
        std::fs::write(repo.join("slow.toml"), SLOW_PLAN).unwrap();
        let config = room.path("config/ocio/config.toml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, config_text).unwrap();
        room
    }

    /// Start ocio in a `width` x `height` window and wait until it shows its first frame.
    fn launch(mut self, width: u16, height: u16) -> Room {
        let room = &mut self;
        let repo = room.path("repo");
        // No user config; no status line, so the pane is the whole window.
        let conf = room.path("tmux.conf");
        std::fs::write(&conf, "set -g status off\n").unwrap();
        let script = room.path("run.sh");
        std::fs::write(&script, room.script()).unwrap();
        let (w, h) = (width.to_string(), height.to_string());
        let shell = format!("sh {}", quote(&script));
        let output = room.tmux_with_conf(
            &conf,
            &["new-session", "-d", "-x", &w, "-y", &h, "-c"],
            &[repo.to_str().unwrap(), &shell],
        );
        assert!(
            output.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        room.wait_for("the first frame", |s| {
            s.contains("OCIO") && s.contains("sessions")
        });
        assert_eq!(
            room.format("#{alternate_on}"),
            "1",
            "ocio is not on the alternate screen"
        );
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    /// The pane's program: ocio in the temp home, then a line saying how it ended, then a wait
    /// (ended by `kill-server` when the test is done) so the pane, and its cursor and mouse
    /// modes, stay as ocio left them.
    fn script(&self) -> String {
        let var = |k: &str, rel: &str| format!("export {k}={}\n", quote(&self.path(rel)));
        let mut text = String::from("#!/bin/sh\n");
        text += &var("HOME", "");
        text += &var("XDG_CONFIG_HOME", "config");
        text += &var("XDG_DATA_HOME", "data");
        text += &var("XDG_STATE_HOME", "state");
        text += &var("XDG_RUNTIME_DIR", "run");
        text += "export TERM=xterm-256color\n";
        for (key, value) in &self.env {
            text += &format!("export {key}={}\n", quote(Path::new(value)));
        }
        if let Some(pid) = self.inside {
            text += &format!("nsenter -t {pid} -m -- ");
        }
        text += &quote(Path::new(env!("CARGO_BIN_EXE_ocio")));
        for arg in &self.args {
            text += &format!(" {}", quote(Path::new(arg)));
        }
        text += "\n";
        text += "code=$?\n";
        text += "mode=cooked\n";
        text += "stty -a | grep -q -- '-icanon' && mode=raw\n";
        text += &format!("echo \"{EXITED} $code tty=$mode\"\n");
        text += "exec sleep 300\n";
        text
    }

    fn tmux(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn tmux_with_conf(&self, conf: &Path, args: &[&str], more: &[&str]) -> Output {
        self.command()
            .arg("-f")
            .arg(conf)
            .args(args)
            .args(more)
            .output()
            .unwrap()
    }

    /// tmux on this test's server, forcing UTF-8, outside any tmux the tests run in, with no
    /// `OCIO_*` settings leaking into the server's (and so ocio's) environment.
    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-u", "-L", &self.socket]).env_remove("TMUX");
        for (key, _) in std::env::vars() {
            if key.starts_with("OCIO_") {
                command.env_remove(key);
            }
        }
        command
    }

    /// The screen, with the normal screen's history above it.
    fn screen(&mut self) -> String {
        let output = self.tmux(&["capture-pane", "-p", "-S", "-"]);
        self.last = String::from_utf8_lossy(&output.stdout).into_owned();
        self.last.clone()
    }

    fn format(&self, format: &str) -> String {
        let output = self.tmux(&["display-message", "-p", format]);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend(keys);
        assert!(self.tmux(&args).status.success(), "send-keys {keys:?}");
    }

    /// Type text as it is (no key names).
    fn type_text(&self, text: &str) {
        assert!(self.tmux(&["send-keys", "-l", text]).status.success());
    }

    /// Paste `text` as a terminal does: tmux sends it bracketed (`-p`) when the program asked
    /// for bracketed paste, and as plain keystrokes when it did not; line breaks go as `\r`.
    fn paste(&self, text: &str) {
        let set = self.tmux(&["set-buffer", "-b", "e2e-paste", "--", text]);
        assert!(set.status.success(), "set-buffer");
        let paste = self.tmux(&["paste-buffer", "-p", "-d", "-b", "e2e-paste"]);
        assert!(paste.status.success(), "paste-buffer");
    }

    /// [`Room::paste`] of a text too big for a tmux command (about 16 KB): through a file.
    fn paste_big(&self, text: &str) {
        let file = self.path("paste.txt");
        std::fs::write(&file, text).unwrap();
        let file = file.to_string_lossy().into_owned();
        let load = self.tmux(&["load-buffer", "-b", "e2e-paste", &file]);
        assert!(load.status.success(), "load-buffer");
        let paste = self.tmux(&["paste-buffer", "-p", "-d", "-b", "e2e-paste"]);
        assert!(paste.status.success(), "paste-buffer");
    }

    /// `ocio` run in this room's home (after the room has quit): its stdout.
    fn ocio_after(&self, args: &[&str]) -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ocio"));
        for (key, _) in std::env::vars() {
            if key.starts_with("OCIO_") {
                command.env_remove(key);
            }
        }
        for (key, rel) in [
            ("HOME", ""),
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_STATE_HOME", "state"),
            ("XDG_RUNTIME_DIR", "run"),
        ] {
            command.env(key, self.path(rel));
        }
        let output = command
            .args(args)
            .current_dir(self.path("repo"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ocio {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn resize(&self, width: u16, height: u16) {
        let (w, h) = (width.to_string(), height.to_string());
        let output = self.tmux(&["resize-window", "-x", &w, "-y", &h]);
        assert!(
            output.status.success(),
            "resize-window: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Poll the screen until `done` holds; fail with the screen and the log after `PATIENCE`.
    fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                self.fail(&format!("waited {PATIENCE:?} for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let screen = self.screen();
        panic!(
            "{why}\n--- screen ({}) ---\n{screen}\n--- ocio log (last lines) ---\n{}",
            self.format("#{window_width}x#{window_height} alternate_on=#{alternate_on} pane_dead=#{pane_dead}"),
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    /// Everything ocio logged.
    fn log(&self) -> String {
        let Ok(dir) = std::fs::read_dir(self.path("state/ocio")) else {
            return String::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// Quit with `q`, answering yes if the room asks because work still runs.
    fn quit(&mut self) {
        self.keys(&["q"]);
        let screen = self.wait_for("ocio to leave or ask", |s| {
            s.contains(EXITED) || s.contains("quit now?")
        });
        if screen.contains("quit now?") {
            self.keys(&["y"]);
        }
    }

    /// Submit a plan file through the `:` command line.
    fn submit(&mut self, plan: &str) {
        self.keys(&[":"]);
        self.wait_for("the command line", |s| s.contains("enter run"));
        let path = self.path("repo").join(plan);
        self.type_text(&format!("submit {}", path.display()));
        self.keys(&["Enter"]);
    }

    /// The pid of ocio, the child of the pane's shell.
    fn ocio_pid(&self) -> u32 {
        let shell: u32 = self.format("#{pane_pid}").parse().unwrap();
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            if ppid == Some(shell) && head.ends_with("(ocio") {
                return head.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        panic!("no ocio process under the pane's shell {shell}");
    }

    /// Wait for ocio to exit and check the shell got a usable terminal back: the exit code, the
    /// tty in cooked mode, the normal screen with the cursor shown and the mouse released.
    fn expect_exit(&mut self, code: i32) -> String {
        let marker = format!("{EXITED} {code} tty=cooked");
        let screen = self.wait_for(&format!("`{marker}`"), |s| s.contains(EXITED));
        if !screen.contains(&marker) {
            self.fail(&format!("ocio ended, but not as `{marker}`"));
        }
        let state = self.format("#{alternate_on} #{cursor_flag} #{mouse_any_flag}");
        if state != "0 1 0" {
            self.fail(&format!(
                "terminal not restored: alternate_on cursor_flag mouse_any_flag = {state}, want 0 1 0"
            ));
        }
        if screen.contains("STATE") || screen.contains("agents") {
            self.fail("the control room is still on the normal screen");
        }
        // Bracketed paste is off again: a paste reaches the shell's tty as plain text (still
        // on, tmux would wrap it in ESC[200~ ... ESC[201~, which the tty echoes as ^[[200~).
        self.paste("pasted-after-exit");
        let echoed = self.wait_for("the tty to echo a paste", |s| {
            s.contains("pasted-after-exit")
        });
        if echoed.contains("[200~") {
            self.fail("bracketed paste is still on after ocio exited");
        }
        let log = self.log();
        assert!(!log.contains("panicked"), "ocio panicked:\n{log}");
        screen
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        // Takes ocio down too (SIGHUP) if a test failed while it ran.
        let _ = self.tmux(&["kill-server"]);
    }
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn a_plan_submitted_from_the_keyboard_runs_to_the_end_and_quit_restores_the_terminal() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("submit", 120, 36);
    room.wait_for("the empty sessions pane", |s| s.contains("no sessions yet"));
    room.submit("plan.toml");
    let screen = room.wait_for("the plan to succeed", |s| {
        s.contains("plan e2e succeeded") && s.contains("e2e  3/3 done")
    });
    // The sessions table names the task and attempt (the plan has its own column on wide
    // screens).
    for task in ["design #1", "build #1", "check #1"] {
        if !screen.contains(task) {
            room.fail(&format!("no session {task} in the sessions pane"));
        }
    }
    room.quit();
    room.expect_exit(0);
}

fn a_signal_restores_the_terminal(signal: &str) {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start(signal, 120, 36);
    room.submit("slow.toml");
    room.wait_for("a running session", |s| s.contains("forever running"));
    let pid = room.ocio_pid().to_string();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
    let screen = room.expect_exit(130);
    if !screen.contains("stopped by a signal") {
        room.fail("ocio did not say why it stopped");
    }
}

/// `ocio demo --db PATH` keeps its database (and its scratch repository beside it) at PATH, so
/// a demo stopped by a signal is resumed by the next `ocio demo --db PATH`, as the stop message
/// says: the same plan, no second scratch directory.
#[test]
fn a_demo_stopped_by_a_signal_resumes_from_its_db() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::prepare("demo-db", CONFIG);
    let db = room.path("my-demo/demo.redb");
    let scratch = room.path("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    room.env
        .push(("TMPDIR".into(), scratch.to_string_lossy().into_owned()));
    room.args = vec!["demo".into(), "--db".into(), db.to_string_lossy().into()];
    let mut room = room.launch(120, 36);
    room.wait_for("the demo plan", |s| s.contains("analyze"));
    let pid = room.ocio_pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let screen = room.expect_exit(130);
    if !screen.contains("resumes") || !screen.contains(&*db.to_string_lossy()) {
        room.fail("the stop message does not say how to resume the demo");
    }
    assert!(
        db.is_file(),
        "the demo did not keep its database at {}",
        db.display()
    );
    let made: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(made.is_empty(), "a scratch directory was made: {made:?}");
    room.tmux(&["kill-server"]);
    // A server of a new name: the old one may still be going away (a new session on its
    // socket then fails with "server exited unexpectedly").
    room.socket.push_str("-again");
    let mut room = room.launch(120, 36);
    room.wait_for("the resumed demo plan", |s| s.contains("analyze"));
    room.quit();
    room.expect_exit(0);
    let db_arg = db.to_string_lossy().into_owned();
    let status: serde_json::Value =
        serde_json::from_str(&room.ocio_after(&["status", "--json", "--db", &db_arg])).unwrap();
    assert_eq!(
        status["tasks"]["total"], 10,
        "one demo plan, resumed: {status}"
    );
}

#[test]
fn sigterm_restores_the_terminal() {
    a_signal_restores_the_terminal("TERM");
}

#[test]
fn sighup_restores_the_terminal() {
    a_signal_restores_the_terminal("HUP");
}

#[test]
fn help_focus_and_a_new_task_from_the_dialog() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("keys", 120, 36);
    room.keys(&["?"]);
    // All of it: the last line too.
    room.wait_for("the help", |s| {
        s.contains("this help") && s.contains("Commands (after :)") && s.contains("closes this")
    });
    room.keys(&["Escape"]);
    room.wait_for("the help to close", |s| !s.contains("this help"));

    room.wait_for("the sessions pane focused", |s| s.contains("▶ sessions"));
    // Tab goes as the panes are read: at 120 columns the tasks sit left of the agents.
    room.keys(&["Tab"]);
    room.wait_for("the tasks pane focused", |s| {
        s.contains("▶ tasks") && !s.contains("▶ sessions") && s.contains("v graph")
    });
    room.keys(&["Tab"]);
    room.wait_for("the agents pane focused", |s| {
        s.contains("▶ agents") && !s.contains("▶ tasks") && s.contains("d drain")
    });
    room.keys(&["BTab"]);
    room.keys(&["BTab"]);
    room.wait_for("the sessions pane focused again", |s| {
        s.contains("▶ sessions")
    });

    room.keys(&["n"]);
    room.wait_for("the new task dialog", |s| s.contains("new task>"));
    room.type_text("say hello from the dialog");
    room.wait_for("the typed prompt", |s| {
        s.contains("new task> say hello from the dialog")
    });
    room.keys(&["Enter"]);
    // The events pane is narrow: the plan's line is cut after its dated, tagged name.
    let screen = room.wait_for("the prompt's plan to succeed", |s| {
        s.contains("prompt done: session completed") && s.contains("1/1 done")
    });
    if !screen.contains("prompt-") || !screen.contains("sim-quick") {
        room.fail("the prompt's session is not in the sessions pane");
    }
    room.quit();
    room.expect_exit(0);
}

/// A paste is text, never keys: pasted with no input open it does nothing; pasted after `:` as
/// `q y c ...` it is refused, not a quit; pasted into the new-task prompt its three lines make
/// one prompt (the old room submitted the first line, then
/// `p` paused dispatching, `d` drained an agent and `n` opened another prompt).
#[test]
fn a_pasted_prompt_is_one_task_and_fires_no_hotkeys() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("paste", 120, 36);
    room.wait_for("the agents online", |s| {
        s.contains("sim-quick") && s.contains("sim-slow") && s.contains("online")
    });
    // Nothing open: the paste is dropped (no pause, no drain, no prompt).
    room.paste("pdn");
    std::thread::sleep(Duration::from_millis(1500));
    let screen = room.screen();
    if screen.contains("PAUSED") || screen.contains("draining") || screen.contains("new task>") {
        room.fail("a paste with no input open acted as keys");
    }
    // A paste after `:` starting with a command that takes no words is refused, not run:
    // `q y c long task...` quit the room.
    room.keys(&[":"]);
    room.paste("q y c long task");
    room.keys(&["Enter"]);
    room.wait_for("the palette to refuse the words after q", |s| {
        s.contains("quit takes no arguments")
    });

    room.keys(&["n"]);
    room.wait_for("the new task prompt", |s| s.contains("new task>"));
    room.paste("say hello\npd\nnd");
    room.wait_for("the three pasted lines in the prompt", |s| {
        // (The cursor, `▏`, follows the last line.)
        let rows: Vec<&str> = s.lines().map(|l| l.trim().trim_end_matches('▏')).collect();
        s.contains("new task> say hello") && rows.contains(&"pd") && rows.contains(&"nd")
    });
    room.keys(&["Enter"]);
    let screen = room.wait_for("the prompt's plan to succeed", |s| s.contains("1/1 done"));
    if screen.contains("PAUSED") || screen.contains("draining") || screen.contains("new task>") {
        room.fail("the paste acted as keys (paused, drained or a second prompt)");
    }
    room.quit();
    room.expect_exit(0);

    let export: serde_json::Value =
        serde_json::from_str(&room.ocio_after(&["export", "--json"])).unwrap();
    let prompts: Vec<&str> = export["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["say hello\npd\nnd"], "{export:#}");
    let statuses: Vec<&str> = export["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert!(!statuses.contains(&"draining"), "{statuses:?}");
}

/// A big paste leaves the room answering: 100 KB of long lines pasted into the prompt go in whole,
/// 100 KB into the command line is cut to what it holds and says so, and keys and quitting
/// work right after. The old room inserted a paste a character at a time, each one walking its line:
/// 100 KB froze it for minutes, keys and SIGTERM unanswered (the wait is a guard, not a target).
#[test]
fn a_big_paste_leaves_the_room_answering() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("bigpaste", 120, 36);
    room.keys(&["n"]);
    room.wait_for("the new task prompt", |s| s.contains("new task>"));
    // Four lines of 25 KB (a log line, minified JSON): each went in character by character.
    room.paste_big(&vec!["0123456789".repeat(2_500); 4].join("\n"));
    room.wait_for("the pasted lines in the prompt", |s| {
        s.contains("new task · 4 lines")
    });
    room.keys(&["Escape"]);
    room.wait_for("the prompt closed", |s| !s.contains("new task>"));

    room.keys(&[":"]);
    room.wait_for("the command line", |s| s.contains("enter run"));
    room.paste_big(&"0123456789".repeat(10_000));
    room.wait_for("the cut paste told", |s| {
        s.contains("paste cut to 4096 characters, 95904 left out")
    });
    room.keys(&["Escape"]);
    // (The toast stays a moment in the footer; the cursor before it was the command line's.)
    room.wait_for("the command line closed", |s| !s.contains("▏ paste cut"));
    room.quit();
    room.expect_exit(0);
}

#[test]
fn a_tiny_window_says_so_and_growing_it_redraws_the_panes() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("tiny", 120, 36);
    room.resize(30, 8);
    room.wait_for("the too-small notice", |s| s.contains("too small"));
    room.resize(20, 4);
    room.wait_for("the notice at 20x4", |s| s.contains("ocio: 20x4"));
    room.resize(100, 30);
    let screen = room.wait_for("the panes again (narrow layout)", |s| {
        !s.contains("too small") && s.contains("sessions") && s.contains("approvals")
    });
    if !screen.contains("events") || !screen.contains("tasks") {
        room.fail("a pane is missing after the resize");
    }
    room.resize(120, 36);
    room.wait_for("the wide layout", |s| {
        s.lines()
            .any(|l| l.contains("sessions") && l.contains("agents"))
    });
    room.quit();
    room.expect_exit(0);
}

/// A start that reads a slow fleet source says so before the room takes the terminal (the
/// terminal showed nothing for up to 5 s: hand trial); the line is left on the shell's screen.
#[test]
fn a_slow_start_says_what_it_waits_for() {
    if !tmux_available() {
        return;
    }
    let config = format!(
        "{CONFIG}\n[[fleets]]\nname = \"slow\"\ncommand = \"sleep 2; echo http://127.0.0.1:9\"\n"
    );
    let mut room = Room::start_with("slow-start", 120, 36, &config);
    room.quit();
    let screen = room.expect_exit(0);
    if !screen.contains("ocio: starting the engine: reading the members of fleet slow and") {
        room.fail("the slow start said nothing");
    }
}

/// Growing the window and then quitting leaves nothing of the room on the shell's screen (tmux
/// kept the rows drawn beyond the width the alternate screen was entered at).
#[test]
fn growing_the_window_then_quitting_leaves_no_box_drawing_behind() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("grow", 80, 24);
    room.resize(200, 60);
    room.wait_for("the wide layout", |s| {
        s.lines()
            .any(|l| l.contains("sessions") && l.contains("agents"))
    });
    room.quit();
    let screen = room.expect_exit(0);
    let boxes = |c: char| ('\u{2500}'..='\u{257f}').contains(&c);
    if let Some(line) = screen.lines().find(|l| l.chars().any(boxes)) {
        room.fail(&format!("box drawing left on the shell's screen: {line:?}"));
    }
}

/// A room attached from another terminal, when the room hosting the engine quits: it says the
/// host stopped the engine and gives the terminal back with exit 0 (it said "the engine
/// stopped: the engine went away" with a full disk's advice, exit 1). The host asks before it
/// quits, naming the other room, though no session runs (it quit at once).
#[test]
fn an_attached_room_says_when_its_host_stopped_the_engine() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("host-quits", 120, 36);
    room.wait_for("the empty sessions pane", |s| s.contains("no sessions yet"));
    room.open_window();
    room.wait_for("the attached room", |s| s.contains("attached │"));
    assert!(room.tmux(&["last-window"]).status.success());
    // No session runs, but quitting stops the other room's engine: asked first.
    room.keys(&["q"]);
    room.wait_for("the quit question naming the other room", |s| {
        s.contains("Another control room is attached") && s.contains("quit now?")
    });
    room.keys(&["y"]);
    room.expect_exit(0);
    assert!(room.tmux(&["last-window"]).status.success());
    let screen = room.expect_exit(0);
    if !screen.contains("was stopped by its host") || screen.contains("free space") {
        room.fail("the attached room did not say its host stopped the engine");
    }
}

/// An ssh drop or a closed terminal window: the terminal goes away under ocio. It must still
/// stop (crossterm's input reader spins forever on a hung-up tty; ocio must not wait for it).
#[test]
fn ocio_stops_when_its_terminal_goes_away() {
    if !tmux_available() {
        return;
    }
    let mut room = Room::start("gone", 120, 36);
    room.submit("slow.toml");
    room.wait_for("a running session", |s| s.contains("forever running"));
    let pid = room.ocio_pid();
    let _ = room.tmux(&["kill-server"]);
    let deadline = Instant::now() + PATIENCE;
    // Gone, or a zombie nobody reaps (the shell it belonged to died with the terminal).
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
    };
    while alive() {
        assert!(
            Instant::now() < deadline,
            "ocio ({pid}) still runs {PATIENCE:?} after its terminal went away\n--- ocio log ---\n{}",
            room.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = room.log();
    assert!(!log.contains("panicked"), "ocio panicked:\n{log}");
    assert!(
        log.contains("leaving the control room on a signal"),
        "{log}"
    );
    assert!(log.contains("engine stopped"), "{log}");
}

/// Quitting the control room with `q` and `y` while a session runs on a real OpenCode server
/// leaves that session running (before: the quit aborted it), and the next engine on the same
/// database re-attaches it and finishes the plan with one prompt.
#[test]
fn quitting_the_room_leaves_a_remote_session_running_for_the_next_start() {
    use ocio::scripted::{Rule, Script, Turn};
    if !tmux_available() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let script = Script::new().rule(
        Rule::when("slow work")
            .turn(Turn::write("slow.txt", "slow\n").delay_ms(4000))
            .turn(Turn::text("slow done")),
    );
    let server = runtime.block_on(support::TestServer::start(script));
    let config = format!(
        "[[agents]]\nname = \"box\"\nurl = {:?}\nmodel = \"{}/{}\"\n",
        server.url(),
        ocio::scripted::PROVIDER_ID,
        ocio::scripted::MODEL_ID
    );
    let mut room = Room::start_with("quit-live", 120, 36, &config);
    let repo = room.path("repo");
    std::fs::write(
        repo.join("live.toml"),
        "name = \"live\"\nrepo = \".\"\nworktrees = false\n[[tasks]]\nid = \"slow\"\nprompt = \"slow work\"\n",
    )
    .unwrap();
    room.submit("live.toml");
    let deadline = Instant::now() + PATIENCE;
    while server.model.requests().is_empty() {
        if Instant::now() > deadline {
            room.fail("the session was never prompted");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    room.quit();
    room.expect_exit(0);
    std::thread::sleep(Duration::from_millis(500));
    let client = server.client();
    let dir = repo.to_str().unwrap().to_string();
    let (remote, status) = runtime.block_on(async {
        let remote = client.sessions(&dir).await.unwrap();
        (remote.clone(), client.session_status(&dir).await.unwrap())
    });
    assert_eq!(remote.len(), 1);
    assert!(
        status.contains_key(&remote[0].id),
        "the remote session still runs after quitting the room: {status:?}"
    );
    // The next start (headless, on the room's database) takes the answer.
    let mut engine = Command::new(env!("CARGO_BIN_EXE_ocio"));
    for (key, rel) in [
        ("HOME", ""),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_RUNTIME_DIR", "run"),
    ] {
        engine.env(key, room.path(rel));
    }
    let mut engine = support::home::Engine::spawn({
        engine.arg("--headless").current_dir(&repo);
        engine
    });
    let finished = engine.until("the plan finishes", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true, "{finished}");
    engine.stop("TERM");
    let first_turns = server
        .model
        .requests()
        .iter()
        .filter(|r| r.turn == 0)
        .count();
    assert_eq!(first_turns, 1, "prompted once");
    assert_eq!(
        std::fs::read_to_string(repo.join("slow.txt")).unwrap(),
        "slow\n"
    );
    runtime.block_on(server.stop());
}

#[test]
fn a_full_disk_ends_the_room_with_the_reason_and_gives_the_terminal_back() {
    if !tmux_available() {
        return;
    }
    let config = "[engine]\nmax_parallel = 4\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"150ms\"\nmax_concurrent = 4\n";
    let mut room = Room::prepare("disk-full", config);
    let Some(disk) = support::disk::SmallDisk::mount(&room.path("data"), "8m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs in a private mount namespace here (needs root and util-linux unshare/nsenter)"
        );
        return;
    };
    room.inside = Some(disk.holder_pid());
    let mut plan = String::from("name = \"many\"\nrepo = \".\"\n");
    for i in 0..60 {
        plan += &format!("[[tasks]]\nid = \"t{i:02}\"\nprompt = \"task {i}\"\n");
    }
    std::fs::write(room.path("repo").join("many.toml"), plan).unwrap();
    let mut room = room.launch(120, 36);
    room.submit("many.toml");
    room.wait_for("a first task done", |s| {
        s.contains("/60 done") && !s.contains(" 0/60 done")
    });
    disk.fill();
    let screen = room.expect_exit(1);
    assert!(
        screen.contains("No space left on device"),
        "the room's last words name the cause:\n{screen}"
    );
    assert!(screen.contains("free"), "and say what to do:\n{screen}");
}

/// `PATH` without the directories that hold an `opencode`.
fn path_without_opencode() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.join("opencode").exists())
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// A stand-in `opencode` in `bin`: it writes its arguments, the password it was given and its
/// command line (what `ps` shows) to `record`, prints a line, and waits for enter.
fn stand_in_opencode(bin: &Path, record: &Path) {
    let script = format!(
        "#!/bin/sh\n{{ for a in \"$@\"; do echo \"arg=$a\"; done; echo \"pw=$OPENCODE_SERVER_PASSWORD\"; echo \"cmdline=$(tr '\\0' ' ' < /proc/$$/cmdline)\"; }} > {}\necho \"STAND-IN OPENCODE on $4; enter leaves\"\nread answer\n",
        quote(record)
    );
    let path = bin.join("opencode");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

impl Room {
    /// A second window on this tmux server running ocio in the same home: it attaches to the
    /// engine the first one hosts. Keys and screens go to it from now on.
    fn open_window(&self) {
        let script = self.path("run-attached.sh");
        std::fs::write(&script, self.script()).unwrap();
        let repo = self.path("repo");
        let shell = format!("sh {}", quote(&script));
        let output = self.tmux(&["new-window", "-c", repo.to_str().unwrap(), &shell]);
        assert!(output.status.success(), "tmux new-window");
    }

    /// Press `o` in the open detail, see the stand-in run in the terminal, leave it with enter
    /// and see the room back. Returns what the stand-in recorded.
    fn take_over_and_back(&mut self, record: &Path, resize: Option<(u16, u16)>) -> String {
        let _ = std::fs::remove_file(record);
        self.keys(&["o"]);
        self.wait_for("the stand-in opencode", |s| {
            s.contains("STAND-IN OPENCODE on ses_")
        });
        if self.format("#{alternate_on}") != "0" {
            self.fail("the room did not leave the alternate screen for opencode");
        }
        if let Some((width, height)) = resize {
            self.resize(width, height);
            std::thread::sleep(Duration::from_millis(300));
        }
        self.keys(&["Enter"]);
        // Drawn whole: the header and the detail's facts too, not only what changed.
        self.wait_for("the room back", |s| {
            s.contains("back from session") && s.contains(" as ses_") && s.contains("OCIO")
        });
        if self.format("#{alternate_on}") != "1" {
            self.fail("the room is not on the alternate screen again");
        }
        std::fs::read_to_string(record).unwrap()
    }
}

/// `o` on a session's detail suspends the room for `opencode attach` on that session (a stand-in
/// on PATH here), the password in its environment and not its command line, and comes back drawn
/// whole at the size the terminal has then, still working; without `opencode` on PATH it says
/// what to run instead. A room attached to that engine from another window does the same.
#[test]
fn o_takes_a_session_over_in_opencode_and_the_room_comes_back() {
    use ocio::scripted::{Rule, Script, Turn};
    if !tmux_available() {
        return;
    }
    const SECRET: &str = "pw-e2e-7c1f";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let script = Script::new().rule(
        Rule::when("long work")
            .turn(Turn::write("long.txt", "long\n").delay_ms(8000))
            .turn(Turn::text("long done")),
    );
    let password = ocio::opencode::secret::Password::new(SECRET);
    let server = runtime.block_on(support::TestServer::start_with(script, Some(password)));
    let config = format!(
        "[[agents]]\nname = \"box\"\nurl = {:?}\npassword_env = \"E2E_BOX_PASSWORD\"\nmodel = \"{}/{}\"\n",
        server.url(),
        ocio::scripted::PROVIDER_ID,
        ocio::scripted::MODEL_ID
    );
    let mut room = Room::prepare("open", &config);
    let bin = room.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    room.env = vec![
        ("E2E_BOX_PASSWORD".into(), SECRET.into()),
        (
            "PATH".into(),
            format!("{}:{}", bin.display(), path_without_opencode()),
        ),
    ];
    let mut room = room.launch(200, 40);
    let repo = room.path("repo");
    std::fs::write(
        repo.join("live.toml"),
        "name = \"live\"\nrepo = \".\"\nworktrees = false\n[[tasks]]\nid = \"long\"\nprompt = \"long work\"\n",
    )
    .unwrap();
    room.submit("live.toml");
    room.wait_for("the session running", |s| s.contains("long #1"));
    room.keys(&["Enter"]);
    room.wait_for("its OpenCode session in the detail", |s| {
        s.contains(" as ses_")
    });

    // No opencode on PATH: the room stays and says what to run, the password by its variable.
    room.keys(&["o"]);
    let screen = room.wait_for("what to run instead", |s| {
        s.contains("opencode is not on PATH")
    });
    let instead = format!(
        "OPENCODE_SERVER_PASSWORD=\"$E2E_BOX_PASSWORD\" opencode attach {} --session ses_",
        server.url()
    );
    if !screen.contains(&instead) || screen.contains(SECRET) {
        room.fail(&format!(
            "the message should name `{instead}...`, never the password"
        ));
    }

    let record = room.path("record");
    stand_in_opencode(&bin, &record);
    let seen = room.take_over_and_back(&record, Some((150, 36)));
    let dir = format!("arg={}", repo.display());
    for want in [
        "arg=attach",
        &format!("arg={}", server.url()),
        "arg=--session",
        "arg=ses_",
        "arg=--dir",
        &dir,
        &format!("pw={SECRET}"),
    ] {
        assert!(
            seen.contains(want),
            "{want:?} not in what opencode got:\n{seen}"
        );
    }
    let cmdline = seen.lines().find(|l| l.starts_with("cmdline=")).unwrap();
    assert!(
        !cmdline.contains(SECRET),
        "the password is on the command line: {cmdline}"
    );
    // Drawn whole at the new width, and still working: D shows the diff.
    let screen = room.wait_for("the detail at the new width", |s| {
        s.lines()
            .any(|l| l.chars().count() == 150 && l.ends_with('┐'))
    });
    assert!(screen.contains(" as ses_"), "{screen}");
    room.keys(&["D"]);
    room.wait_for("the diff", |s| s.contains("diff · D shows the transcript"));
    room.keys(&["D"]);

    // An attached room takes it over too (its password from its own environment).
    room.open_window();
    room.wait_for("the attached room", |s| s.contains("long #1"));
    room.keys(&["Enter"]);
    room.wait_for("the detail in the attached room", |s| {
        s.contains(" as ses_")
    });
    let seen = room.take_over_and_back(&record, None);
    assert!(
        seen.contains(&format!("pw={SECRET}")) && seen.contains(&dir),
        "{seen}"
    );
    runtime.block_on(server.stop());
}
