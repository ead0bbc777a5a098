//! The config rules the types cannot express (unique names, url xor managed, ranges, keys that
//! only fit one agent kind, log levels), every broken one reported with the key path of the
//! offending value.

use std::collections::HashMap;

use jiff::SignedDuration;

use super::locate::PathPart;
use super::{AgentConfig, AgentKind, Config};
use crate::domain::AgentName;
use crate::text::{did_you_mean, shown, shown_message};

/// A broken rule: where, what, and how to fix it.
pub(super) struct Problem {
    pub(super) path: Vec<PathPart<'static>>,
    pub(super) message: String,
    pub(super) hint: Option<String>,
}

pub(super) fn problem(path: Vec<PathPart<'static>>, message: impl Into<String>) -> Problem {
    Problem {
        path,
        message: message.into(),
        hint: None,
    }
}

impl Problem {
    pub(super) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The log levels a `[log] level` directive may name.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The rules the types cannot express; every broken one, in the order of the file.
pub(super) fn validate(config: &Config) -> Vec<Problem> {
    use PathPart::Key;
    let mut problems = Vec::new();
    if config.engine.max_parallel < 1 {
        problems.push(problem(
            vec![Key("engine"), Key("max_parallel")],
            "max_parallel must be at least 1",
        ));
    }
    if config.engine.max_worktrees == Some(0) {
        problems.push(problem(
            vec![Key("engine"), Key("max_worktrees")],
            "max_worktrees must be at least 1 (leave it out for twice max_parallel)",
        ));
    }
    if let Some(timeout) = config.engine.question_timeout
        && !timeout.is_positive()
    {
        problems.push(problem(
            vec![Key("engine"), Key("question_timeout")],
            format!(
                "question_timeout must be longer than zero, not {} (e.g. \"10m\")",
                friendly(timeout)
            ),
        ));
    }
    if let Some(retention) = config.engine.transcript_retention
        && !retention.is_positive()
    {
        problems.push(problem(
            vec![Key("engine"), Key("transcript_retention")],
            format!(
                "transcript_retention must be longer than zero, not {} (e.g. \"30d\"; leave it out to keep transcripts)",
                friendly(retention)
            ),
        ));
    }
    if config.engine.transcript_cap.is_some_and(|cap| cap < 1024) {
        problems.push(problem(
            vec![Key("engine"), Key("transcript_cap")],
            "transcript_cap must be at least 1KiB (e.g. \"2MiB\")",
        ));
    }
    problems.extend(validate_log_level(&config.log.level));
    problems.extend(super::notify::validate(&config.notify));
    problems.extend(super::fleet::validate(&config.fleets, &config.agents));
    let mut seen: HashMap<&AgentName, usize> = HashMap::new();
    for (index, agent) in config.agents.iter().enumerate() {
        let at = |key: &'static str| agent_key(index, key);
        if let Some(first) = seen.get(&agent.name) {
            problems.push(problem(
                at("name"),
                format!(
                    "agent name `{}` is already used by agents[{first}]; give each agent its own name",
                    agent.name
                ),
            ));
        } else {
            seen.insert(&agent.name, index);
        }
        problems.extend(validate_agent(agent, index));
        problems.extend(validate_shared(agent, "agents", index));
    }
    problems
}

/// The rules every OpenCode agent's settings keep, in `[[agents]]` and in `[[fleets]]`.
pub(super) fn validate_shared(
    agent: &AgentConfig,
    section: &'static str,
    index: usize,
) -> Vec<Problem> {
    use PathPart::{Index, Key};
    let at = |key: &'static str| entry_key(section, index, key);
    let mut problems = Vec::new();
    if agent.max_concurrent < 1 {
        problems.push(problem(
            at("max_concurrent"),
            "max_concurrent must be at least 1",
        ));
    }
    if agent.opencode_agent.as_deref().is_some_and(str::is_empty) {
        problems.push(problem(
            at("opencode_agent"),
            "opencode_agent must not be empty; remove it to use the server's default agent",
        ));
    }
    for (position, capability) in agent.capabilities.iter().enumerate() {
        if capability.is_empty() || capability.chars().any(char::is_whitespace) {
            problems.push(problem(
                vec![
                    Key(section),
                    Index(index),
                    Key("capabilities"),
                    Index(position),
                ],
                format!(
                    "capability `{}` must be a non-empty word without spaces (e.g. \"rust\")",
                    shown(capability)
                ),
            ));
        }
    }
    problems
}

/// A level (`info`) or comma-separated `target=level` directives, each naming one of [`LEVELS`].
fn validate_log_level(level: &str) -> Option<Problem> {
    use PathPart::Key;
    let at = || vec![Key("log"), Key("level")];
    let example = "use e.g. \"info\" or \"ocio=debug,warn\"";
    if level.trim().is_empty() {
        return Some(problem(
            at(),
            format!("log level must not be empty; {example}"),
        ));
    }
    let levels = LEVELS.join(", ");
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let word = directive
            .rsplit_once('=')
            .map_or(directive, |(_, word)| word);
        if !LEVELS.contains(&word.to_ascii_lowercase().as_str()) {
            let hint = did_you_mean(&word.to_ascii_lowercase(), LEVELS)
                .unwrap_or_else(|| format!("write a level, or target=level: {example}"));
            return Some(
                problem(
                    at(),
                    format!(
                        "log level `{}` is not a valid filter: `{}` is not a level; the levels are {levels}",
                        shown(level),
                        shown(word)
                    ),
                )
                .with_hint(hint),
            );
        }
    }
    let parsed = tracing_subscriber::EnvFilter::builder().parse(level);
    parsed.err().map(|err| {
        problem(
            at(),
            format!(
                "log level `{}` is not a valid filter ({}); {example}",
                shown(level),
                shown_message(&err.to_string())
            ),
        )
    })
}

/// The rules that depend on the agent's kind.
fn validate_agent(agent: &AgentConfig, index: usize) -> Vec<Problem> {
    let at = |key: &'static str| agent_key(index, key);
    let wrong_kind = |key: &'static str, only: &str, other: &str| {
        problem(
            at(key),
            format!("`{key}` only applies to {only} agents; remove it or set kind = \"{other}\""),
        )
    };
    let (given, only, other) = match agent.kind {
        AgentKind::Opencode => (
            vec![
                ("duration", agent.duration.is_some()),
                ("failure_rate", agent.failure_rate.is_some()),
                ("seed", agent.seed.is_some()),
                ("ask_rate", agent.ask_rate.is_some()),
            ],
            "simulated",
            "simulated",
        ),
        AgentKind::Simulated => (
            vec![
                ("url", agent.url.is_some()),
                ("managed", agent.managed.is_some()),
                ("opencode_path", agent.opencode_path.is_some()),
                ("linger", agent.linger.is_some()),
                ("password_env", agent.password_env.is_some()),
                ("ca_cert", agent.ca_cert.is_some()),
                ("workspace", agent.workspace.is_some()),
                ("remote_dir", agent.remote_dir.is_some()),
            ],
            "opencode",
            "opencode",
        ),
    };
    let mut problems: Vec<Problem> = given
        .iter()
        .filter(|(_, given)| *given)
        .map(|(key, _)| wrong_kind(key, only, other))
        .collect();
    match agent.kind {
        AgentKind::Opencode => problems.extend(validate_opencode(agent, "agents", index)),
        AgentKind::Simulated => problems.extend(validate_simulated(agent, index)),
    }
    problems
}

/// An OpenCode agent (`section[index]`: an `[[agents]]` entry, or a fleet's template): a
/// server to reach (`url` or `managed`) and what only fits one of them.
pub(super) fn validate_opencode(
    agent: &AgentConfig,
    section: &'static str,
    index: usize,
) -> Vec<Problem> {
    let at = |key: &'static str| entry_key(section, index, key);
    let mut problems = Vec::new();
    let managed = agent.managed == Some(true);
    match (&agent.url, managed) {
        (Some(_), true) => problems.push(
            problem(
                at("managed"),
                "give either `url` or `managed = true`, not both",
            )
            .with_hint("use `url` for a server you run, `managed = true` for one ocio starts"),
        ),
        (None, false) => problems.push(
            problem(
                vec![PathPart::Key(section), PathPart::Index(index)],
                format!(
                    "opencode agent `{}` needs exactly one of `url` or `managed = true`",
                    agent.name
                ),
            )
            .with_hint(
                "add `url = \"http://127.0.0.1:4096\"` for a running server, or `managed = true` to let ocio start one",
            ),
        ),
        (Some(url), false) if !is_http_url(url) => problems.push(problem(
            at("url"),
            format!(
                "url `{}` must start with http:// or https:// (e.g. http://127.0.0.1:4096)",
                shown(url)
            ),
        )),
        _ => {}
    }
    let https = agent
        .url
        .as_deref()
        .and_then(|url| url.get(..8))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    if agent.ca_cert.is_some() && !https {
        problems.push(problem(
            at("ca_cert"),
            "`ca_cert` only applies to a server reached over https://; remove it or make `url` https://",
        ));
    }
    if agent.opencode_path.is_some() && !managed {
        problems.push(problem(
            at("opencode_path"),
            "`opencode_path` only applies with `managed = true`; remove it or set managed = true",
        ));
    }
    if agent.linger.is_some() && !managed {
        problems.push(problem(
            at("linger"),
            "`linger` only applies with `managed = true` (a server you run keeps running anyway); remove it or set managed = true",
        ));
    }
    if agent.linger.is_some_and(|linger| linger.is_negative()) {
        problems.push(problem(
            at("linger"),
            "`linger` must not be negative; write e.g. \"1h\", or \"0s\" to stop the server with ocio",
        ));
    }
    problems.extend(validate_workspace(agent, section, index, managed));
    // The value is not echoed: it may be the password itself.
    if agent
        .password_env
        .as_deref()
        .is_some_and(|name| !is_env_var_name(name))
    {
        problems.push(
            problem(
                at("password_env"),
                "password_env is not an environment variable name; give the NAME of the variable holding the password (e.g. OPENCODE_SERVER_PASSWORD)",
            )
            .with_hint(
                "never put the password itself in the config; export it in a variable and name that variable here",
            ),
        );
    }
    problems
}

/// Where an OpenCode agent's sessions work: a managed server shares ocio's disk; a remote
/// directory is an absolute path on the server's machine, and only for a remote workspace.
fn validate_workspace(
    agent: &AgentConfig,
    section: &'static str,
    index: usize,
    managed: bool,
) -> Vec<Problem> {
    use crate::config::WorkspaceMode;
    let at = |key: &'static str| entry_key(section, index, key);
    let mut problems = Vec::new();
    if managed && agent.workspace == Some(WorkspaceMode::Remote) {
        problems.push(problem(
            at("workspace"),
            "a managed server runs on this machine and sees ocio's files; remove `workspace = \"remote\"` or give the build box's `url` instead of `managed = true`",
        ));
    }
    if let Some(dir) = &agent.remote_dir {
        if agent.workspace_mode() == WorkspaceMode::Shared {
            problems.push(problem(
                at("remote_dir"),
                "`remote_dir` only applies to a remote workspace; remove it or set workspace = \"remote\"",
            ));
        } else if !dir.starts_with('/') || dir.contains('\n') {
            problems.push(problem(
                at("remote_dir"),
                format!(
                    "remote_dir `{}` must be an absolute path on the server's machine (e.g. /srv/ocio)",
                    shown(dir)
                ),
            ));
        }
    }
    problems
}

/// A simulated agent: rates between 0 and 1, a duration longer than zero.
fn validate_simulated(agent: &AgentConfig, index: usize) -> Vec<Problem> {
    let at = |key: &'static str| agent_key(index, key);
    let mut problems = Vec::new();
    for (key, rate) in [
        ("failure_rate", agent.failure_rate),
        ("ask_rate", agent.ask_rate),
    ] {
        if let Some(rate) = rate
            && !(0.0..=1.0).contains(&rate)
        {
            problems.push(problem(
                at(key),
                format!("{key} {rate} is out of range; use a number from 0.0 to 1.0"),
            ));
        }
    }
    if let Some(duration) = agent.duration
        && !duration.is_positive()
    {
        problems.push(problem(
            at("duration"),
            format!(
                "duration must be longer than zero, not {} (e.g. \"30s\")",
                friendly(duration)
            ),
        ));
    }
    problems
}

/// The path of `agents[index].key`.
pub(super) fn agent_key(index: usize, key: &'static str) -> Vec<PathPart<'static>> {
    entry_key("agents", index, key)
}

/// The path of `section[index].key`.
pub(super) fn entry_key(
    section: &'static str,
    index: usize,
    key: &'static str,
) -> Vec<PathPart<'static>> {
    vec![
        PathPart::Key(section),
        PathPart::Index(index),
        PathPart::Key(key),
    ]
}

/// `30s`, `0s`, `-5s`: the way durations are written in the file.
pub(super) fn friendly(duration: SignedDuration) -> String {
    if duration.is_negative() {
        format!("-{:#}", duration.abs())
    } else {
        format!("{duration:#}")
    }
}

pub(super) fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}

pub(super) fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
