//! The config rules the types cannot express (unique names, url xor managed, ranges, keys that
//! only fit one agent kind), each reported with the key path of the offending value.

use std::collections::HashMap;

use jiff::SignedDuration;

use super::locate::PathPart;
use super::{AgentConfig, AgentKind, Config};
use crate::domain::AgentName;

/// A broken rule: where, what, and how to fix it.
pub(super) struct Problem {
    pub(super) path: Vec<PathPart<'static>>,
    pub(super) message: String,
    pub(super) hint: Option<&'static str>,
}

fn problem(path: Vec<PathPart<'static>>, message: impl Into<String>) -> Problem {
    Problem {
        path,
        message: message.into(),
        hint: None,
    }
}

/// The rules the types cannot express; the first broken one.
pub(super) fn validate(config: &Config) -> Result<(), Problem> {
    use PathPart::{Index, Key};
    if config.engine.max_parallel < 1 {
        return Err(problem(
            vec![Key("engine"), Key("max_parallel")],
            "max_parallel must be at least 1",
        ));
    }
    validate_log_level(&config.log.level)
        .map_err(|message| problem(vec![Key("log"), Key("level")], message))?;
    let mut seen: HashMap<&AgentName, usize> = HashMap::new();
    for (index, agent) in config.agents.iter().enumerate() {
        let at = |key: &'static str| vec![Key("agents"), Index(index), Key(key)];
        if let Some(first) = seen.insert(&agent.name, index) {
            return Err(problem(
                at("name"),
                format!(
                    "agent name `{}` is already used by agents[{first}]; give each agent its own name",
                    agent.name
                ),
            ));
        }
        validate_agent(agent, index)?;
        if agent.max_concurrent < 1 {
            return Err(problem(
                at("max_concurrent"),
                "max_concurrent must be at least 1",
            ));
        }
        if agent.opencode_agent.as_deref().is_some_and(str::is_empty) {
            return Err(problem(
                at("opencode_agent"),
                "opencode_agent must not be empty; remove it to use the server's default agent",
            ));
        }
        for (position, capability) in agent.capabilities.iter().enumerate() {
            if capability.is_empty() || capability.chars().any(char::is_whitespace) {
                return Err(problem(
                    vec![
                        Key("agents"),
                        Index(index),
                        Key("capabilities"),
                        Index(position),
                    ],
                    format!(
                        "capability `{capability}` must be a non-empty word without spaces (e.g. \"rust\")"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn validate_log_level(level: &str) -> Result<(), String> {
    if level.trim().is_empty() {
        return Err("log level must not be empty; use e.g. \"info\" or \"ocio=debug,warn\"".into());
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(drop)
        .map_err(|err| {
            format!(
                "log level `{level}` is not a valid filter ({err}); use e.g. \"info\" or \"ocio=debug,warn\""
            )
        })
}

/// The rules that depend on the agent's kind.
fn validate_agent(agent: &AgentConfig, index: usize) -> Result<(), Problem> {
    use PathPart::{Index, Key};
    let at = |key: &'static str| vec![Key("agents"), Index(index), Key(key)];
    let wrong_kind = |key: &'static str, only: &str, other: &str| {
        problem(
            at(key),
            format!("`{key}` only applies to {only} agents; remove it or set kind = \"{other}\""),
        )
    };
    match agent.kind {
        AgentKind::Opencode => {
            let simulated_only = [
                ("duration", agent.duration.is_some()),
                ("failure_rate", agent.failure_rate.is_some()),
                ("seed", agent.seed.is_some()),
                ("ask_rate", agent.ask_rate.is_some()),
            ];
            if let Some((key, _)) = simulated_only.iter().find(|(_, given)| *given) {
                return Err(wrong_kind(key, "simulated", "simulated"));
            }
            let managed = agent.managed == Some(true);
            match (&agent.url, managed) {
                (Some(_), true) => {
                    return Err(Problem {
                        hint: Some(
                            "use `url` for a server you run, `managed = true` for one ocio starts",
                        ),
                        ..problem(
                            at("managed"),
                            "give either `url` or `managed = true`, not both",
                        )
                    });
                }
                (None, false) => {
                    return Err(Problem {
                        hint: Some(
                            "add `url = \"http://127.0.0.1:4096\"` for a running server, or `managed = true` to let ocio start one",
                        ),
                        ..problem(
                            vec![Key("agents"), Index(index)],
                            format!(
                                "opencode agent `{}` needs exactly one of `url` or `managed = true`",
                                agent.name
                            ),
                        )
                    });
                }
                (Some(url), false) if !is_http_url(url) => {
                    return Err(problem(
                        at("url"),
                        format!(
                            "url `{url}` must start with http:// or https:// (e.g. http://127.0.0.1:4096)"
                        ),
                    ));
                }
                _ => {}
            }
            if agent.ca_cert.is_some()
                && !agent
                    .url
                    .as_deref()
                    .and_then(|url| url.get(..8))
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
            {
                return Err(problem(
                    at("ca_cert"),
                    "`ca_cert` only applies to a server reached over https://; remove it or make `url` https://",
                ));
            }
            if agent.opencode_path.is_some() && !managed {
                return Err(problem(
                    at("opencode_path"),
                    "`opencode_path` only applies with `managed = true`; remove it or set managed = true",
                ));
            }
            // The value is not echoed: it may be the password itself.
            if agent
                .password_env
                .as_deref()
                .is_some_and(|name| !is_env_var_name(name))
            {
                return Err(Problem {
                    hint: Some(
                        "never put the password itself in the config; export it in a variable and name that variable here",
                    ),
                    ..problem(
                        at("password_env"),
                        "password_env is not an environment variable name; give the NAME of the variable holding the password (e.g. OPENCODE_SERVER_PASSWORD)",
                    )
                });
            }
        }
        AgentKind::Simulated => {
            let opencode_only = [
                ("url", agent.url.is_some()),
                ("managed", agent.managed.is_some()),
                ("opencode_path", agent.opencode_path.is_some()),
                ("password_env", agent.password_env.is_some()),
                ("ca_cert", agent.ca_cert.is_some()),
            ];
            if let Some((key, _)) = opencode_only.iter().find(|(_, given)| *given) {
                return Err(wrong_kind(key, "opencode", "opencode"));
            }
            for (key, rate) in [
                ("failure_rate", agent.failure_rate),
                ("ask_rate", agent.ask_rate),
            ] {
                if let Some(rate) = rate
                    && !(0.0..=1.0).contains(&rate)
                {
                    return Err(problem(
                        at(key),
                        format!("{key} {rate} is out of range; use a number from 0.0 to 1.0"),
                    ));
                }
            }
            if let Some(duration) = agent.duration
                && !duration.is_positive()
            {
                return Err(problem(
                    at("duration"),
                    format!(
                        "duration must be longer than zero, not {} (e.g. \"30s\")",
                        friendly(duration)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `30s`, `0s`, `-5s`: the way durations are written in the file.
fn friendly(duration: SignedDuration) -> String {
    if duration.is_negative() {
        format!("-{:#}", duration.abs())
    } else {
        format!("{duration:#}")
    }
}

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
