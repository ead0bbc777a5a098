//! The configured agents as the engine runs them: each `[[agents]]` entry with its runner, the
//! simulator for `kind = "simulated"`, an OpenCode server (a URL, or a managed local server
//! started here) for the rest.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::config::{AgentConfig, Config};
use crate::domain::AgentName;
use crate::engine::{AgentSpec, Runner, Simulated};
use crate::opencode::client::{Client, ClientOptions};
use crate::opencode::endpoint::{Endpoint, EndpointError};
use crate::opencode::managed::{LeftRunning, Leftover};
use crate::opencode::runner::OpencodeRunner;

/// An agent's managed server that ocio left running for its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftServer {
    pub agent: AgentName,
    pub server: LeftRunning,
}

impl LeftServer {
    /// What a person reads about the servers left running when ocio stopped, if any were.
    pub fn say(left: &[Self]) -> Option<String> {
        let servers: Vec<String> = left
            .iter()
            .map(|l| {
                format!(
                    "{} (pid {}, up to {})",
                    l.agent,
                    l.server.pid,
                    crate::text::duration(l.server.linger)
                )
            })
            .collect();
        let (whose, runs, it) = match servers.len() {
            0 => return None,
            1 => ("the managed server of", "runs on for its sessions", "it"),
            _ => (
                "the managed servers of",
                "run on for their sessions",
                "them",
            ),
        };
        Some(format!(
            "{whose} {} {runs}; the next start adopts {it}",
            servers.join(", ")
        ))
    }
}

/// What the running agents hold on to: managed servers live as long as this does.
#[derive(Debug, Default)]
pub(crate) struct Servers(Vec<(AgentName, Endpoint)>);

impl Servers {
    /// Keep another agent's server (one added while the engine runs).
    pub(crate) fn push(&mut self, name: AgentName, endpoint: Endpoint) {
        self.0.push((name, endpoint));
    }

    /// Each OpenCode agent's client (for its circuit breaker's state, e.g. in metrics).
    pub(crate) fn clients(&self) -> Vec<(AgentName, Client)> {
        self.0
            .iter()
            .map(|(name, endpoint)| (name.clone(), endpoint.client.clone()))
            .collect()
    }

    /// Stop managed servers, but for those of the agents `working` (whose sessions run on):
    /// those are left running for the next ocio to adopt. Which were.
    pub(crate) async fn close(self, working: &BTreeSet<AgentName>) -> Vec<LeftServer> {
        let mut left = Vec::new();
        for (agent, endpoint) in self.0 {
            if !working.contains(&agent) {
                endpoint.shutdown().await;
            } else if let Some(server) = endpoint.leave().await {
                left.push(LeftServer { agent, server });
            }
        }
        left
    }
}

/// How long a server an earlier ocio left, of an agent no longer managed, gets to stop.
const LEFT_GRACE: Duration = Duration::from_secs(3);

/// Build every configured agent. Managed servers are started (in parallel) and must come up;
/// those an earlier ocio left running, recorded in `records`, are adopted (and stopped when
/// their agent is no longer managed). When one cannot be had, the error comes with the servers
/// that were, for the caller to close (leaving those whose sessions work).
pub(crate) async fn from_config(
    config: &Config,
    records: &Path,
) -> Result<(Vec<AgentSpec>, Servers), (EndpointError, Servers)> {
    let managed: Vec<&str> = config
        .agents
        .iter()
        .filter(|a| a.managed == Some(true))
        .map(|a| a.name.as_str())
        .collect();
    Leftover::sweep(records, &managed, LEFT_GRACE).await;
    let withheld = config.secret_vars();
    let withheld = &withheld;
    let connects = config
        .agents
        .iter()
        .filter(|a| a.simulation().is_none())
        .map(|a| async move {
            Endpoint::connect(
                a,
                ClientOptions::default(),
                Duration::from_secs(60),
                withheld,
                Some(records),
            )
            .await
            .map(|e| (a.name.clone(), e))
        });
    let mut endpoints = Vec::new();
    let mut failure = None;
    for result in futures_util::future::join_all(connects).await {
        match result {
            Ok(endpoint) => endpoints.push(endpoint),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        return Err((e, Servers(endpoints)));
    }
    let mut specs = Vec::with_capacity(config.agents.len());
    for entry in &config.agents {
        let agent = entry.to_agent();
        let runner: std::sync::Arc<dyn Runner> = match entry.simulation() {
            Some(config) => std::sync::Arc::new(Simulated { config }),
            None => {
                let Some((_, endpoint)) = endpoints.iter().find(|(name, _)| *name == entry.name)
                else {
                    continue;
                };
                OpencodeRunner::placed(
                    endpoint.client.clone(),
                    entry.opencode_agent.clone(),
                    entry.model.clone(),
                    entry.workspace_mode(),
                    entry.remote_dir.clone(),
                )
            }
        };
        specs.push(AgentSpec { agent, runner });
    }
    Ok((specs, Servers(endpoints)))
}

/// One `[[agents]]` entry, built while the engine runs: its spec, and its server (started now
/// when managed, without the `withheld` variables, or adopted from `records`: none for a
/// fleet's members, never managed) for the caller to keep.
pub(crate) async fn from_entry(
    entry: &AgentConfig,
    withheld: &[String],
    records: Option<&Path>,
) -> Result<(AgentSpec, Option<Endpoint>), EndpointError> {
    let agent = entry.to_agent();
    if let Some(config) = entry.simulation() {
        let runner = std::sync::Arc::new(Simulated { config });
        return Ok((AgentSpec { agent, runner }, None));
    }
    let endpoint = Endpoint::connect(
        entry,
        ClientOptions::default(),
        Duration::from_secs(60),
        withheld,
        records,
    )
    .await?;
    let runner = OpencodeRunner::placed(
        endpoint.client.clone(),
        entry.opencode_agent.clone(),
        entry.model.clone(),
        entry.workspace_mode(),
        entry.remote_dir.clone(),
    );
    Ok((AgentSpec { agent, runner }, Some(endpoint)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(agent: &str, pid: u32, secs: u64) -> LeftServer {
        LeftServer {
            agent: AgentName::new(agent).unwrap(),
            server: LeftRunning {
                pid,
                linger: Duration::from_secs(secs),
            },
        }
    }

    /// Nothing is said when nothing was left; otherwise each server, its pid and its linger.
    #[test]
    fn what_was_left_running_is_said_by_name() {
        assert_eq!(LeftServer::say(&[]), None);
        assert_eq!(
            LeftServer::say(&[left("local", 41, 3600)]).unwrap(),
            "the managed server of local (pid 41, up to 1h) runs on for its sessions; the next start adopts it"
        );
        assert_eq!(
            LeftServer::say(&[left("a", 1, 120), left("b", 2, 60)]).unwrap(),
            "the managed servers of a (pid 1, up to 2m), b (pid 2, up to 1m) run on for their sessions; the next start adopts them"
        );
    }
}
