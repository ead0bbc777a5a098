//! The TOML config file: its shape and defaults, loading with errors that point at the file, line
//! and key, semantic validation, and `OCIO_<SECTION>__<KEY>` environment overrides.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::task::CleanupPolicy;
use crate::domain::{Agent, AgentName, Backend, ModelRef};

mod env;
mod files;
mod fleet;
mod keys;
mod locate;
mod notify;
mod read;
mod validate;

pub use fleet::FleetConfig;
pub(crate) use fleet::{FleetSource, member_url, redacted};
pub use notify::NotifyConfig;

#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod problems_tests;
#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;

/// Default for `engine.max_parallel`.
pub(crate) const DEFAULT_MAX_PARALLEL: u32 = 8;
/// Default for `log.level`.
pub(crate) const DEFAULT_LOG_LEVEL: &str = "info";
/// Default for an agent's `max_concurrent`.
pub(crate) const DEFAULT_MAX_CONCURRENT: u32 = 4;
/// Default for a simulated agent's `duration`.
pub(crate) const DEFAULT_SIM_DURATION: SignedDuration = SignedDuration::from_secs(30);
/// Prefix of environment overrides: `OCIO_<SECTION>__<KEY>`.
pub(crate) const ENV_PREFIX: &str = "OCIO_";

/// The whole config file. Every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub(crate) engine: EngineConfig,
    pub(crate) log: LogConfig,
    pub(crate) ui: UiConfig,
    pub(crate) notify: NotifyConfig,
    pub agents: Vec<AgentConfig>,
    /// `[[fleets]]`: agents found at runtime (a URL list, a DNS name, a command).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleets: Vec<FleetConfig>,
}

/// `[ui]`: the control room's look, keys and how it tells the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct UiConfig {
    /// A theme from `themes/` or `$XDG_CONFIG_HOME/ocio/themes/<name>.toml`; by default
    /// `industrial`, or `ansi16` on a 16-colour terminal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) theme: Option<String>,
    /// Key bindings by action (`quit = ["q", "ctrl-c"]`); an action listed here loses its
    /// default keys. `?` in the control room lists the actions.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) keys: std::collections::BTreeMap<String, Vec<String>>,
    /// Ring the terminal's bell when something starts waiting for the operator, a plan ends or
    /// an agent goes offline.
    pub(crate) bell: bool,
    /// Then also a desktop notification, by escape sequence (OSC 9 and OSC 777).
    pub(crate) desktop_notify: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            theme: None,
            keys: std::collections::BTreeMap::new(),
            bell: true,
            desktop_notify: true,
        }
    }
}

/// `[engine]`: how the orchestrator schedules work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EngineConfig {
    /// Sessions running at once across all agents.
    pub(crate) max_parallel: u32,
    /// Permission requests that touch only the session's own directory.
    pub(crate) approve_inside: Approval,
    /// Permission requests that reach outside the session's directory.
    pub(crate) approve_outside: Approval,
    /// What happens to a plan's worktrees once it has finished, unless the plan says
    /// (`cleanup = ...` in the plan file): `keep`, `remove-merged` or `remove-all`.
    pub(crate) worktree_cleanup: CleanupPolicy,
    /// Most task worktrees holding work not merged yet; at the bound a task waits for a merge
    /// instead of making another. Default: twice `max_parallel`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_worktrees: Option<u32>,
    /// Questions sessions ask (OpenCode's `question` tool): `auto` (wait for an answer while a
    /// control room is attached), `ask` (wait for one) or `deny` (the model decides alone).
    pub(crate) questions: crate::engine::question::QuestionMode,
    /// How long a question waits for an answer before it is rejected (in `auto`, counted while
    /// no control room is attached). Default 10 minutes.
    #[serde(
        deserialize_with = "deserialize_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) question_timeout: Option<SignedDuration>,
    /// The most every agent together may spend in one UTC day: `{ tokens = N, cost = X }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) daily_budget: Option<crate::domain::Budget>,
    /// Most bytes of a session's stored transcript (`"2MiB"`, `"512KiB"` or a number of
    /// bytes); its oldest entries are cut beyond it, and the cut is stated. Default 2 MiB.
    #[serde(
        deserialize_with = "deserialize_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) transcript_cap: Option<u64>,
    /// Transcripts of sessions that ended longer ago than this (`"30d"`) are removed when the
    /// engine starts and by `ocio gc`. Default: kept.
    #[serde(
        deserialize_with = "deserialize_days",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) transcript_retention: Option<SignedDuration>,
}

impl EngineConfig {
    /// The question policy these keys set.
    pub(crate) fn question_policy(&self) -> crate::engine::question::QuestionPolicy {
        let mut policy = crate::engine::question::QuestionPolicy {
            mode: self.questions,
            ..Default::default()
        };
        if let Some(timeout) = self.question_timeout.and_then(|t| t.try_into().ok()) {
            policy.timeout = timeout;
        }
        policy
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_parallel: DEFAULT_MAX_PARALLEL,
            approve_inside: Approval::Once,
            approve_outside: Approval::Reject,
            worktree_cleanup: CleanupPolicy::default(),
            max_worktrees: None,
            questions: crate::engine::question::QuestionMode::Auto,
            question_timeout: None,
            daily_budget: None,
            transcript_cap: None,
            transcript_retention: None,
        }
    }
}

/// How a kind of permission request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Approval {
    /// Allow it, this once.
    Once,
    /// Allow it and the same again in that session.
    Always,
    Reject,
    /// Wait for the operator.
    Ask,
}

/// `[log]`: what goes into the log file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LogConfig {
    /// An `EnvFilter` directive (`info`, `ocio=debug,warn`); `OCIO_LOG` wins over it.
    pub(crate) level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: DEFAULT_LOG_LEVEL.to_string(),
        }
    }
}

/// What runs an agent's sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AgentKind {
    /// An OpenCode server.
    #[default]
    Opencode,
    /// The in-process simulator.
    Simulated,
}

/// One `[[agents]]` entry. Keys that only apply to one kind are `Option`s so that giving them to
/// the other kind can be reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub(crate) name: AgentName,
    #[serde(default)]
    pub(crate) kind: AgentKind,
    /// opencode: the server to talk to (exclusive with `managed = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    /// opencode: ocio starts `opencode serve` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) managed: Option<bool>,
    /// opencode, managed: the `opencode` binary (found on PATH when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) opencode_path: Option<PathBuf>,
    /// opencode, managed: how long the server keeps running once ocio is gone while its
    /// sessions work (after a quit or a crash), for the next ocio to take over (default 1h).
    #[serde(
        default,
        deserialize_with = "deserialize_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) linger: Option<SignedDuration>,
    /// opencode: the NAME of the environment variable holding the server password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password_env: Option<String>,
    /// A PEM file of the CA (or the self-signed certificate) an `https://` server's
    /// certificate is checked against, besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<ModelRef>,
    /// The OpenCode agent sessions use (`build`, `plan`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) opencode_agent: Option<String>,
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
    #[serde(default = "default_max_concurrent")]
    pub(crate) max_concurrent: u32,
    /// simulated: how long a simulated session runs.
    #[serde(
        default,
        deserialize_with = "deserialize_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) duration: Option<SignedDuration>,
    /// simulated: the share of sessions that fail, 0.0 to 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure_rate: Option<f64>,
    /// simulated: the random seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<u64>,
    /// simulated: the share of sessions that ask for a permission outside their directory
    /// once (to try approval policies and the approvals pane), 0.0 to 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ask_rate: Option<f64>,
    /// The most this agent may spend in one UTC day: `{ tokens = N, cost = X }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) budget: Option<crate::domain::Budget>,
    /// opencode: where its sessions work. `shared`: the server sees ocio's worktrees at the
    /// same paths; `remote`: a build box, where ocio carries each task's tree and brings the
    /// work back; `auto` (the default for a `url`): found out at the first task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) workspace: Option<WorkspaceMode>,
    /// opencode, remote workspace: the directory on the server's machine where ocio keeps its
    /// mirror and task worktrees (default: `.ocio-work` in the server's own directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) remote_dir: Option<String>,
}

/// Where an OpenCode agent's sessions work (`workspace = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceMode {
    /// The server sees ocio's disk at the same paths.
    Shared,
    /// A build box: trees are carried there and the work back.
    Remote,
    /// Found out at the first task: shared when the server sees the task's worktree.
    Auto,
}

/// How long a managed server waits for the next ocio while its sessions work, by default.
const DEFAULT_LINGER: std::time::Duration = std::time::Duration::from_secs(3600);

impl AgentConfig {
    /// A managed server's linger time in seconds, for the agent's [`Backend`] (none for another).
    fn managed_linger(&self) -> Option<u64> {
        (self.managed == Some(true)).then(|| self.linger().as_secs())
    }

    /// How long a managed server keeps running once ocio is gone while its sessions work.
    pub(crate) fn linger(&self) -> std::time::Duration {
        self.linger
            .map_or(DEFAULT_LINGER, |linger| linger.unsigned_abs())
    }

    /// Where its sessions work: as configured, else shared for a managed server (it runs
    /// here) and found out for one at a `url`.
    pub(crate) fn workspace_mode(&self) -> WorkspaceMode {
        match (self.workspace, self.managed) {
            (Some(mode), _) => mode,
            (None, Some(true)) => WorkspaceMode::Shared,
            (None, _) => WorkspaceMode::Auto,
        }
    }
}

fn default_max_concurrent() -> u32 {
    DEFAULT_MAX_CONCURRENT
}

fn deserialize_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SignedDuration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse::<SignedDuration>().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "duration `{text}` is not valid; write e.g. \"30s\", \"2m\", \"1h 5m\" or \"PT30S\""
        ))
    })
}

/// A duration that may count days (of 24 hours) and weeks: `"30d"`, `"2w"`, `"12h"`.
fn deserialize_days<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SignedDuration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::text::parse_days(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "duration `{text}` is not valid; write e.g. \"30d\", \"2w\" or \"12h\""
        ))
    })
}

fn deserialize_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    let text = match Size::deserialize(deserializer)? {
        Size::Bytes(n) => return Ok(Some(n)),
        Size::Text(text) => text,
    };
    crate::text::parse_bytes(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "size `{text}` is not valid; write e.g. \"2MiB\", \"512KiB\" or a number of bytes"
        ))
    })
}

/// How a simulated agent behaves, with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulationConfig {
    pub duration: SignedDuration,
    pub failure_rate: f64,
    pub seed: u64,
    pub ask_rate: f64,
}

impl AgentConfig {
    /// The domain agent this entry describes: online, with no load.
    pub(crate) fn to_agent(&self) -> Agent {
        let backend = match self.kind {
            AgentKind::Opencode => Backend::Opencode {
                url: self.url.clone(),
                managed: self.managed.unwrap_or(false),
                password_env: self.password_env.clone(),
                linger: self.managed_linger(),
            },
            AgentKind::Simulated => Backend::Simulated,
        };
        let mut agent = Agent::new(self.name.clone(), backend, self.max_concurrent);
        agent.opencode_agent = self.opencode_agent.clone();
        agent.model = self.model.clone();
        agent.capabilities = self.capabilities.iter().cloned().collect();
        agent.budget = self.budget;
        agent.works_away = self.workspace_mode() == WorkspaceMode::Remote;
        agent
    }

    /// The simulator settings of a simulated agent; `None` for an OpenCode agent.
    pub(crate) fn simulation(&self) -> Option<SimulationConfig> {
        (self.kind == AgentKind::Simulated).then(|| SimulationConfig {
            duration: self.duration.unwrap_or(DEFAULT_SIM_DURATION),
            failure_rate: self.failure_rate.unwrap_or(0.0),
            seed: self.seed.unwrap_or(0),
            ask_rate: self.ask_rate.unwrap_or(0.0),
        })
    }
}

impl Config {
    /// The names of every variable that holds a server's password (each agent's
    /// `password_env`, and OpenCode's own): a managed server is started without them.
    pub(crate) fn secret_vars(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .agents
            .iter()
            .filter_map(|a| a.password_env.clone())
            .chain(self.fleets.iter().filter_map(|f| f.password_env.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Where the loaded config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigSource {
    File(PathBuf),
    /// No config file; built-in defaults.
    Defaults,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Defaults => f.write_str("built-in defaults (no config file)"),
        }
    }
}

/// A validated config with environment overrides applied, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    pub(crate) source: ConfigSource,
}

impl LoadedConfig {
    /// A rule that a front end owns (the control room's keys) broken at the key path `key`,
    /// reported like a load error: the file, the line and column of the key, the message.
    pub(crate) fn invalid_at(&self, key: &[&str], message: String) -> ConfigError {
        let parts: Vec<locate::PathPart<'_>> =
            key.iter().map(|k| locate::PathPart::Key(k)).collect();
        let (path, at) = match &self.source {
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                (path.clone(), locate::locate(&text, &parts))
            }
            ConfigSource::Defaults => (PathBuf::from("(built-in defaults)"), None),
        };
        ConfigError::Invalid {
            path,
            problems: vec![ConfigProblem {
                at,
                key: Some(locate::key_path(&parts)),
                message,
                hint: None,
            }],
        }
    }
}

/// The config cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {} does not exist; create it or drop --config/OCIO_CONFIG",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "cannot read config file {}: {source}; check that it is a readable file, or point --config/OCIO_CONFIG elsewhere",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse, has values of the wrong type or unknown keys, breaks rules or
    /// names files that are not there: every problem, in the order of the file.
    #[error("{}", problems_text(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

/// One problem in a config file: its 1-based line and column, the key path
/// (`agents[1].model`), what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub(crate) at: Option<(usize, usize)>,
    pub(crate) key: Option<String>,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

/// `config error in FILE, line L, column C (key): message`, and the hint, for each problem.
fn problems_text(path: &Path, problems: &[ConfigProblem]) -> String {
    let mut text = String::new();
    for problem in problems {
        if !text.is_empty() {
            text.push('\n');
        }
        let _ = write!(text, "config error in {}", path.display());
        if let Some((line, column)) = problem.at {
            let _ = write!(text, ", line {line}, column {column}");
        }
        if let Some(key) = &problem.key {
            let _ = write!(text, " ({key})");
        }
        let _ = write!(text, ": {}", problem.message);
        if let Some(hint) = &problem.hint {
            let _ = write!(text, "\n  hint: {hint}");
        }
    }
    text
}

/// Reads, parses and validates the config at `path`, then applies `OCIO_<SECTION>__<KEY>`
/// overrides from `env` (pass `std::env::vars()`). A missing file means defaults unless it was
/// named explicitly.
pub fn load(
    path: &Path,
    explicit: bool,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LoadedConfig, ConfigError> {
    let (config, source) = match std::fs::read_to_string(path) {
        Ok(text) => (
            checked(&text, path, true)?,
            ConfigSource::File(path.to_path_buf()),
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if explicit {
                return Err(ConfigError::Missing {
                    path: path.to_path_buf(),
                });
            }
            (Config::default(), ConfigSource::Defaults)
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let config = env::apply_env(config, env)?;
    Ok(LoadedConfig { config, source })
}

/// Parses and validates config text; `path` names the file in errors and anchors a relative
/// `ca_cert`. The files the config names are not looked at (see [`load`]).
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    checked(text, path, false)
}

/// Every problem in config text, with `on_disk` those of the files it names too.
fn checked(text: &str, path: &Path, on_disk: bool) -> Result<Config, ConfigError> {
    let (config, mut problems) = read::read(text);
    let config = config.map(|mut config| {
        // A relative ca_cert or opencode_path is the config file's neighbour, wherever ocio
        // runs from.
        if let Some(dir) = path.parent() {
            for agent in &mut config.agents {
                if let Some(ca) = agent.ca_cert.as_mut().filter(|ca| ca.is_relative()) {
                    *ca = dir.join(&*ca);
                }
                let program = agent.opencode_path.as_mut();
                if let Some(program) = program.filter(|program| program.is_relative()) {
                    *program = dir.join(&*program);
                }
            }
            for fleet in &mut config.fleets {
                if let Some(ca) = fleet.ca_cert.as_mut().filter(|ca| ca.is_relative()) {
                    *ca = dir.join(&*ca);
                }
            }
        }
        if on_disk {
            let found = files::check(&config);
            problems.extend(found.into_iter().map(|problem| read::placed(text, problem)));
        }
        config
    });
    problems.sort_by_key(|problem| problem.at.unwrap_or((usize::MAX, 0)));
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        }),
    }
}
