//! Test support: a real `opencode serve` per test, driven by the project's scripted model, in
//! its own XDG dirs on its own port, torn down when the test ends (even when it fails).

#![allow(dead_code, unused_imports)]

pub mod counting_proxy;
pub mod disk;
pub mod home;
mod install;
pub mod metrics;
pub mod pyvenv;
mod repo;
pub mod slow_proxy;

use ocio::engine::EngineApi;
use std::ffi::OsString;
use std::time::Duration;

use ocio::opencode::client::{Client, ClientOptions};
use ocio::opencode::managed::{RunningServer, ServerCommand};
use ocio::opencode::secret::Password;
use ocio::scripted::{self, Script, ScriptedModel};

pub use install::{OPENCODE_VERSION, opencode_bin};
pub use repo::TestRepo;

/// One isolated OpenCode server and the scripted model behind it.
pub struct TestServer {
    pub model: ScriptedModel,
    pub password: Option<Password>,
    server: Option<RunningServer>,
    command: ServerCommand,
    url: String,
    _home: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(script: Script) -> Self {
        Self::start_with(script, None).await
    }

    pub async fn start_with(script: Script, password: Option<Password>) -> Self {
        Self::start_program(script, password, opencode_bin(), None).await
    }

    /// A server on "another machine": in its own mount namespace, where each of `hidden`
    /// (ocio's data, the repository) is an empty tmpfs, so it cannot see ocio's files. Its own
    /// directory (a temp dir) is its disk. `None`, with the reason printed, where mount
    /// namespaces cannot be made (not root, or no `unshare`).
    pub async fn start_far(script: Script, hidden: &[&std::path::Path]) -> Option<Self> {
        let probe = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "true"])
            .output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!(
                    "SKIPPED: a server on another machine needs a mount namespace (`unshare -m`, as root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("SKIPPED: no `unshare` to give a server a filesystem of its own: {e}");
                return None;
            }
        }
        let wrapper_dir = tempfile::Builder::new()
            .prefix("ocio-far-")
            .tempdir()
            .unwrap()
            .keep();
        let quoted =
            |p: &std::path::Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
        let mounts: Vec<String> = hidden
            .iter()
            .map(|p| format!("mount -t tmpfs ocio-far {}", quoted(p)))
            .collect();
        let inner = format!(
            "{} && exec {} \"$@\"",
            mounts.join(" && "),
            quoted(&opencode_bin())
        );
        let wrapper = wrapper_dir.join("opencode-far");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec unshare -m --propagation private /bin/sh -c {} far \"$@\"\n",
                quoted(std::path::Path::new(&inner))
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let own_git = box_git_config(&wrapper_dir);
        Some(Self::start_program(script, None, wrapper, Some(own_git)).await)
    }

    async fn start_program(
        script: Script,
        password: Option<Password>,
        program: std::path::PathBuf,
        git_config: Option<String>,
    ) -> Self {
        let model = ScriptedModel::start(script).await.unwrap();
        let home = tempfile::Builder::new()
            .prefix("ocio-opencode-")
            .tempdir()
            .unwrap();
        if let Some(git_config) = git_config {
            let user = home.path().join("home");
            std::fs::create_dir_all(&user).unwrap();
            std::fs::write(user.join(".gitconfig"), git_config).unwrap();
        }
        let mut command = ServerCommand::new(program);
        command.cwd = Some(home.path().to_path_buf());
        command.stop_grace = Duration::from_millis(300);
        let config = scripted::opencode_config(&model.base_url()).to_string();
        command.env = vec![
            env("OPENCODE_CONFIG_CONTENT", config),
            env("HOME", home.path().join("home")),
            env("XDG_DATA_HOME", home.path().join("data")),
            env("XDG_CONFIG_HOME", home.path().join("config")),
            env("XDG_CACHE_HOME", home.path().join("cache")),
            env("XDG_STATE_HOME", home.path().join("state")),
        ];
        let server = RunningServer::start(&command, password.as_ref())
            .await
            .unwrap();
        let url = server.url().to_string();
        command.port = url.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            model,
            password,
            server: Some(server),
            command,
            url,
            _home: home,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(RunningServer::pid)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's own directory (its cwd): on a far server, its machine's disk.
    pub fn own_dir(&self) -> &std::path::Path {
        self._home.path()
    }

    /// A client with the server's password (if any) and short timeouts for tests.
    pub fn client(&self) -> Client {
        Client::new(&self.url, self.password.clone(), test_options()).unwrap()
    }

    pub fn client_with(&self, password: Option<Password>) -> Client {
        Client::new(&self.url, password, test_options()).unwrap()
    }

    /// SIGKILL the server now, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            let pid = server.pid().unwrap();
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            server.stop().await;
        }
    }

    /// Start it again on the same port with the same state directories.
    pub async fn restart(&mut self) {
        assert!(self.server.is_none(), "kill it first");
        let server = RunningServer::start(&self.command, self.password.as_ref())
            .await
            .unwrap();
        assert_eq!(server.url(), self.url);
        self.server = Some(server);
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.model.shutdown().await;
    }
}

fn env(key: &str, value: impl Into<OsString>) -> (OsString, OsString) {
    (key.into(), value.into())
}

pub fn test_options() -> ClientOptions {
    ClientOptions {
        call_timeout: Duration::from_secs(20),
        prompt_timeout: Duration::from_secs(120),
        ..ClientOptions::default()
    }
}

/// An engine agent ("box", 2 slots) whose sessions run on `client`'s server with the scripted
/// model.
pub fn scripted_agent(client: Client) -> ocio::engine::AgentSpec {
    scripted_agent_with(client, 2)
}

/// The same with `slots` sessions at once.
pub fn scripted_agent_with(client: Client, slots: u32) -> ocio::engine::AgentSpec {
    use ocio::domain::{Agent, AgentName, Backend, ModelRef};
    let model = ModelRef {
        provider: scripted::PROVIDER_ID.into(),
        model: scripted::MODEL_ID.into(),
    };
    let backend = Backend::Opencode {
        url: Some(client.base_url().into()),
        managed: false,
        password_env: None,
        linger: None,
    };
    let runner = ocio::opencode::runner::OpencodeRunner::new(client, None, Some(model));
    ocio::engine::AgentSpec {
        agent: Agent::new(AgentName::new("box").unwrap(), backend, slots),
        runner,
    }
}

/// A simulated engine agent: `slots` at once, `caps`, runs of `millis`, failing at
/// `failure_rate` (seed 1, never asking for permissions).
pub fn sim_agent(
    name: &str,
    slots: u32,
    caps: &[&str],
    millis: i64,
    failure_rate: f64,
) -> ocio::engine::AgentSpec {
    use ocio::domain::{Agent, AgentName, Backend};
    let mut agent = Agent::new(AgentName::new(name).unwrap(), Backend::Simulated, slots);
    agent.capabilities = caps.iter().map(|c| c.to_string()).collect();
    let config = ocio::config::SimulationConfig {
        duration: jiff::SignedDuration::from_millis(millis),
        failure_rate,
        seed: 1,
        ask_rate: 0.0,
    };
    ocio::engine::AgentSpec {
        agent,
        runner: std::sync::Arc::new(ocio::engine::Simulated { config }),
    }
}

/// The integration branch a plan got, from its events.
pub fn integration_branch(seen: &[ocio::engine::EngineEvent]) -> String {
    seen.iter()
        .find_map(|e| match e {
            ocio::engine::EngineEvent::IntegrationReady { branch, .. } => Some(branch.clone()),
            _ => None,
        })
        .expect("the plan got an integration branch")
}

/// Engine events until a plan finishes: those before, and the `PlanFinished`. Panics when no
/// event comes for `patience`.
pub async fn until_finished(
    events: &mut ocio::engine::Subscription,
    patience: Duration,
) -> (Vec<ocio::engine::EngineEvent>, ocio::engine::EngineEvent) {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(patience, events.recv())
            .await
            .expect("plan never finished")
            .unwrap();
        if matches!(event, ocio::engine::EngineEvent::PlanFinished { .. }) {
            return (seen, event);
        }
        seen.push(event);
    }
}

/// A build box's own git configuration, in `dir`, unlike ocio's in every way that changes what
/// git checks out or records: line endings converted, executable bits and symlinks not trusted,
/// hooks that fail, ignored file kinds, signed commits, untracked files hidden, and git-lfs set
/// up as `git lfs install` does (required: a pointer whose object the box lacks fails its
/// checkout where git-lfs is installed, and any checkout of one where it is not). What ocio
/// carries must come and go exactly all the same.
fn box_git_config(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let hooks = dir.join("box-hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in ["post-checkout", "pre-commit", "commit-msg", "post-commit"] {
        let path = hooks.join(hook);
        std::fs::write(
            &path,
            "#!/bin/sh\necho \"the box's own hook refuses\" >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let excludes = dir.join("box-excludes");
    std::fs::write(&excludes, "*.bin\n*.sh\n").unwrap();
    format!(
        "[core]\n\tautocrlf = true\n\teol = crlf\n\tfileMode = false\n\tsymlinks = false\n\thooksPath = {}\n\texcludesFile = {}\n[commit]\n\tgpgSign = true\n[status]\n\tshowUntrackedFiles = no\n[diff]\n\texternal = /bin/false\n[filter \"lfs\"]\n\tclean = git-lfs clean -- %f\n\tsmudge = git-lfs smudge -- %f\n\tprocess = git-lfs filter-process\n\trequired = true\n",
        hooks.display(),
        excludes.display()
    )
}
