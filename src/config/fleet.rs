//! `[[fleets]]`: many OpenCode agents from one entry. A fleet names where its members' URLs
//! come from (a list, a DNS name, a command) and what every member shares; each member is an
//! [`AgentConfig`] made from that template and its URL, so it runs like any `[[agents]]` entry.

use std::path::PathBuf;
use std::time::Duration;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::locate::PathPart;
use super::validate::{Problem, entry_key, friendly, problem, validate_opencode, validate_shared};
use super::{AgentConfig, AgentKind, WorkspaceMode, default_max_concurrent};
use crate::domain::{AgentName, ModelRef};
use crate::text::shown;

/// How often a fleet's source is read again, unless `refresh` says.
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// The longest fleet name: room is left for the member's suffix within an agent name.
pub(crate) const MAX_FLEET_NAME: usize = 40;

/// One `[[fleets]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Members are called `<name>-<host>-<port>`.
    pub(crate) name: AgentName,
    /// Source: these servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) urls: Option<Vec<String>>,
    /// Source: `host:port`; each address the name resolves to is a member
    /// `http://<address>:<port>` (a Kubernetes headless Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dns: Option<String>,
    /// Source: a command run with `sh -c` that prints one URL a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<String>,
    /// How often the source is read again (default 30s).
    #[serde(
        default,
        deserialize_with = "super::deserialize_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) refresh: Option<SignedDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<ModelRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) opencode_agent: Option<String>,
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
    #[serde(default = "default_max_concurrent")]
    pub(crate) max_concurrent: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) workspace: Option<WorkspaceMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) remote_dir: Option<String>,
}

/// Where a fleet's members come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FleetSource<'a> {
    Urls(&'a [String]),
    Dns(&'a str),
    Command(&'a str),
}

impl FleetConfig {
    /// Its source; `None` unless exactly one is given (which validation makes sure of).
    pub(crate) fn source(&self) -> Option<FleetSource<'_>> {
        match (&self.urls, &self.dns, &self.command) {
            (Some(urls), None, None) => Some(FleetSource::Urls(urls)),
            (None, Some(dns), None) => Some(FleetSource::Dns(dns)),
            (None, None, Some(command)) => Some(FleetSource::Command(command)),
            _ => None,
        }
    }

    /// How often the source is read again.
    pub(crate) fn refresh_every(&self) -> Duration {
        self.refresh
            .and_then(|every| Duration::try_from(every).ok())
            .filter(|every| !every.is_zero())
            .unwrap_or(DEFAULT_REFRESH)
    }

    /// The member at `url`: an OpenCode agent with the fleet's settings.
    pub(crate) fn member(&self, url: &str) -> AgentConfig {
        AgentConfig {
            name: self.member_name(url),
            kind: AgentKind::Opencode,
            url: Some(url.to_string()),
            managed: None,
            opencode_path: None,
            linger: None,
            password_env: self.password_env.clone(),
            ca_cert: self.ca_cert.clone(),
            model: self.model.clone(),
            opencode_agent: self.opencode_agent.clone(),
            capabilities: self.capabilities.clone(),
            max_concurrent: self.max_concurrent,
            duration: None,
            failure_rate: None,
            seed: None,
            ask_rate: None,
            budget: None,
            workspace: self.workspace,
            remote_dir: self.remote_dir.clone(),
        }
    }

    /// The fleet as the engine counts on it before (and while) its members join.
    pub(crate) fn to_fleet(&self) -> crate::domain::Fleet {
        crate::domain::Fleet {
            name: self.name.clone(),
            capabilities: self.capabilities.iter().cloned().collect(),
            works_away: match self.member("https://fleet.invalid").workspace_mode() {
                WorkspaceMode::Remote => Some(true),
                WorkspaceMode::Shared => Some(false),
                WorkspaceMode::Auto => None,
            },
            members: match self.source() {
                Some(FleetSource::Urls(urls)) => urls
                    .iter()
                    .filter_map(|url| member_url(url).ok())
                    .map(|url| self.member_name(&url))
                    .collect(),
                _ => Vec::new(),
            },
        }
    }

    /// `<fleet>-<host>-<port>` for the member at `url`, and its path when it has one
    /// (`<fleet>-<host>-<port>-a` for `.../a`: servers behind one gateway are members apart;
    /// characters an agent name cannot hold become `-`): the same name for the same URL at
    /// every read, and across restarts, so its sessions find it again. A name too long for an
    /// agent name is shortened to `<fleet>-<hash of the url>`.
    pub(crate) fn member_name(&self, url: &str) -> AgentName {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        // A path of letters, digits and dots reads as itself (`/` becoming `-`); one with
        // other characters would read as another's (`/a/b`, `/a-b`, `/a_b`): the hash.
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
        if !path.chars().all(plain) {
            return AgentName::new(format!("{}-{:016x}", self.name, fnv(url)))
                .unwrap_or_else(|_| self.name.clone());
        }
        let authority = format!("{authority}/{path}");
        let authority = authority.as_str();
        let host_port: String = authority
            .trim_start_matches('[')
            .replace("]:", ":")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        AgentName::new(format!("{}-{}", self.name, host_port.trim_matches('-')))
            .or_else(|_| AgentName::new(format!("{}-{:016x}", self.name, fnv(url))))
            .unwrap_or_else(|_| self.name.clone())
    }
}

/// The one spelling of a member's URL, so each server is one member whatever way a source
/// writes it: the scheme and host in lower case, no trailing `/` (`HTTP://Box:4096/` is
/// `http://box:4096`); a port is kept as written, even the scheme's default (`:80`), so a
/// member keeps the name `<fleet>-<host>-<port>` it had. `Err` says what is wrong with it: not an
/// http(s) URL, or a password in it (it would be shown in the member's name and stored).
pub(crate) fn member_url(raw: &str) -> Result<String, String> {
    let parsed = url::Url::parse(raw.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must start with http:// or https:// (e.g. http://10.0.0.5:4096)".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "holds a user or password (`user:secret@`), which would be shown and stored with the member's name; give the password in password_env instead".into(),
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(
            "must not have a query or fragment (`?`, `#`); give the server's address".into(),
        );
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "has no host (e.g. http://10.0.0.5:4096)".to_string())?;
    let port = parsed
        .port()
        .or_else(|| written_port(raw.trim()).then(|| parsed.port_or_known_default())?)
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let path = parsed.path().trim_end_matches('/');
    Ok(format!("{}://{host}{port}{path}", parsed.scheme()))
}

/// Whether `url`'s authority names a port (`http://box:80` does, `http://[::1]` does not).
fn written_port(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
    })
}

/// `raw` as it may be shown: a password in it reads `***`.
pub(crate) fn redacted(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => raw.to_string(),
    }
}

/// FNV-1a: a hash that stays the same from one build to the next.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rules of every `[[fleets]]` entry, each broken one at its key path.
pub(super) fn validate(fleets: &[FleetConfig], agents: &[AgentConfig]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, fleet) in fleets.iter().enumerate() {
        let at = |key: &'static str| entry_key("fleets", index, key);
        let name = fleet.name.as_str();
        if name.len() > MAX_FLEET_NAME {
            problems.push(problem(
                at("name"),
                format!("fleet name `{name}` is longer than {MAX_FLEET_NAME} characters; its members' names add the server's address to it"),
            ));
        }
        if let Some(first) = fleets[..index].iter().position(|f| f.name == fleet.name) {
            problems.push(problem(
                at("name"),
                format!("fleet name `{name}` is already used by fleets[{first}]; give each fleet its own name"),
            ));
        } else if let Some(agent) = agents.iter().position(|a| a.name == fleet.name) {
            problems.push(problem(
                at("name"),
                format!("fleet name `{name}` is already used by agents[{agent}]; give the fleet another name"),
            ));
        }
        problems.extend(validate_source(fleet, index));
        if let Some(every) = fleet.refresh
            && every < SignedDuration::from_secs(1)
        {
            problems.push(problem(
                at("refresh"),
                format!(
                    "refresh must be at least 1s, not {} (e.g. \"30s\")",
                    friendly(every)
                ),
            ));
        }
        // The members' settings follow the rules of an [[agents]] entry's.
        let template = fleet.member("https://fleet.invalid");
        problems.extend(validate_opencode(&template, "fleets", index));
        problems.extend(validate_shared(&template, "fleets", index));
    }
    problems
}

/// Exactly one source, well formed; `ca_cert` only where members are reached over https.
fn validate_source(fleet: &FleetConfig, index: usize) -> Vec<Problem> {
    let at = |key: &'static str| entry_key("fleets", index, key);
    let mut problems = Vec::new();
    let given: Vec<&'static str> = [
        ("urls", fleet.urls.is_some()),
        ("dns", fleet.dns.is_some()),
        ("command", fleet.command.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, given)| given.then_some(key))
    .collect();
    match given.as_slice() {
        [] => problems.push(
            problem(
                vec![PathPart::Key("fleets"), PathPart::Index(index)],
                format!(
                    "fleet `{}` needs exactly one of `urls`, `dns` or `command`",
                    fleet.name
                ),
            )
            .with_hint(
                "add e.g. `dns = \"opencode.ocio.svc.cluster.local:4096\"` (a headless Service), `urls = [\"http://box:4096\"]` or `command = \"...\"` printing one URL a line",
            ),
        ),
        [_] => {}
        [_, second, ..] => problems.push(problem(
            at(second),
            format!("give only one of `urls`, `dns` or `command`; this fleet has {}", given.join(" and ")),
        )),
    }
    problems.extend(validate_urls(fleet, index));
    if let Some(dns) = &fleet.dns
        && !is_host_port(dns)
    {
        problems.push(problem(
            at("dns"),
            format!(
                "dns `{}` must be a name and a port, host:port (e.g. \"opencode.ocio.svc.cluster.local:4096\")",
                shown(dns)
            ),
        ));
    }
    if fleet
        .command
        .as_deref()
        .is_some_and(|c| c.trim().is_empty())
    {
        problems.push(problem(
            at("command"),
            "command must not be empty; give a shell command that prints one URL a line",
        ));
    }
    let https = match fleet.source() {
        Some(FleetSource::Urls(urls)) => urls.iter().any(|url| {
            url.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        }),
        Some(FleetSource::Dns(_)) => false,
        _ => true,
    };
    if fleet.ca_cert.is_some() && !https {
        problems.push(problem(
            at("ca_cert"),
            "`ca_cert` only applies to members reached over https:// (a dns fleet's members are http://); remove it",
        ));
    }
    problems
}

/// A `urls` list: at least one, each http(s).
fn validate_urls(fleet: &FleetConfig, index: usize) -> Vec<Problem> {
    let at = |key: &'static str| entry_key("fleets", index, key);
    let mut problems = Vec::new();
    let Some(urls) = &fleet.urls else {
        return problems;
    };
    if urls.is_empty() {
        problems.push(problem(
            at("urls"),
            "urls must list at least one server (e.g. [\"http://box:4096\"])",
        ));
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (position, url) in urls.iter().enumerate() {
        let at = vec![
            PathPart::Key("fleets"),
            PathPart::Index(index),
            PathPart::Key("urls"),
            PathPart::Index(position),
        ];
        match member_url(url) {
            Err(why) => problems.push(problem(
                at,
                format!("url `{}` {why}", shown(&redacted(url))),
            )),
            Ok(one) => match seen.iter().find(|(other, _)| *other == one) {
                Some((_, first)) => problems.push(problem(
                    at,
                    format!(
                        "url `{}` is the same server as urls[{first}] ({one}); list each server once",
                        shown(url)
                    ),
                )),
                None => seen.push((one, position)),
            },
        }
    }
    problems
}

/// `name:port`, with a port from 1 to 65535 and no scheme.
fn is_host_port(text: &str) -> bool {
    text.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains("://")
            && !host.chars().any(char::is_whitespace)
            && port.parse::<u16>().is_ok_and(|port| port > 0)
    })
}
