//! The `ocio` binary in its own XDG directories: run a command and collect its output, or
//! start a headless engine as a child process and read its JSON Lines as they come.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn db(&self) -> PathBuf {
        self.path("data/ocio/ocio.redb")
    }

    /// The socket an engine on this home's database listens on.
    pub fn socket(&self) -> PathBuf {
        let paths = ocio::paths::Paths {
            config_file: self.path("config/ocio/config.toml"),
            config_explicit: false,
            data_dir: self.path("data/ocio"),
            db_file: self.db(),
            log_dir: self.path("state/ocio"),
            runtime_dir: self.path("run/ocio"),
        };
        paths.socket_file()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.program(env!("CARGO_BIN_EXE_ocio"), args)
    }

    /// `program ARGS` in this home's environment (as [`Home::command`] runs ocio).
    pub fn program(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        for (key, _) in std::env::vars() {
            if key.starts_with("OCIO_") {
                command.env_remove(key);
            }
        }
        command
            .args(args)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("run"));
        command
    }

    pub fn ocio(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run and expect exit 0 and one JSON document on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let output = self.ocio(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "ocio {args:?}: {}",
            stderr(&output)
        );
        serde_json::from_str(&stdout(&output))
            .unwrap_or_else(|e| panic!("ocio {args:?}: not JSON ({e}): {}", stdout(&output)))
    }

    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path("config/ocio/config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A plan file in `work/` (not the home directory itself, which a plan may not work in).
    pub fn write_plan(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path("work").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `ocio [args] --headless`, once it says it has started.
    pub fn engine(&self, args: &[&str]) -> Engine {
        let mut args = args.to_vec();
        args.push("--headless");
        Engine::spawn(self.command(&args))
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

pub fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A headless ocio child process and its stdout, line by line.
pub struct Engine {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// The `engine.started` line.
    pub started: Value,
}

impl Engine {
    /// Start `command` and wait for its `engine.started` line.
    pub fn spawn(mut command: Command) -> Engine {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let Some(Ok(first)) = lines.next() else {
            let output = child.wait_with_output().unwrap();
            panic!(
                "the engine did not start ({:?}): {}",
                output.status,
                stderr(&output)
            );
        };
        let started: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(started["type"], "engine.started", "{first}");
        Engine {
            child,
            lines,
            started,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next JSON line, or `None` when stdout ends.
    pub fn next(&mut self) -> Option<Value> {
        let line = self.lines.next()?.unwrap();
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
    }

    /// Read lines until one satisfies `wanted`, and return it.
    pub fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.next() {
                Some(line) if wanted(&line) => return line,
                Some(_) => {}
                None => panic!("the engine's output ended before {what}"),
            }
        }
    }

    /// Send `signal` (e.g. "TERM") and return the exit code and the remaining lines.
    pub fn stop(self, signal: &str) -> (Option<i32>, Vec<Value>, String) {
        signal_process(self.child.id(), signal);
        self.wait()
    }

    /// Read the remaining lines until stdout ends, and return the exit code, those lines and
    /// stderr.
    pub fn wait(mut self) -> (Option<i32>, Vec<Value>, String) {
        let mut rest = Vec::new();
        while let Some(line) = self.next() {
            rest.push(line);
        }
        let mut err = String::new();
        if let Some(mut stream) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut stream, &mut err).unwrap();
        }
        let status = self.child.wait().unwrap();
        (status.code(), rest, err)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal_process(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// GET a path over plain HTTP/1.1 and return the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

pub fn is_private(path: &Path, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777 == mode
}
