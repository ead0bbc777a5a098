//! The two things fleet members join: the agents gathered before the engine starts (so the
//! first members are there for recovery and the first plan), and the running engine.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use super::AgentAdder;
use super::agents::from_entry;
use super::fleets::{Crew, Removal};
use crate::config::AgentConfig;
use crate::domain::{AgentName, AgentStatus};
use crate::engine::{AgentSpec, EngineError, EngineEvent, EngineHandle};
use crate::opencode::client::ClientOptions;
use crate::opencode::endpoint::Endpoint;

/// Why a member taken in again at the start is draining.
const LEFT: &str = "no longer listed by its fleet: finishes the sessions it runs, then leaves";

/// How long a new member's health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /global/health` at `member`'s URL, through the client its runner would use.
pub(crate) async fn check_health(member: &AgentConfig, withheld: &[String]) -> Result<(), String> {
    let options = ClientOptions {
        retries: 0,
        call_timeout: HEALTH_TIMEOUT,
        ..ClientOptions::default()
    };
    let endpoint = Endpoint::connect(member, options, HEALTH_TIMEOUT, withheld, None)
        .await
        .map_err(|e| e.to_string())?;
    let health = endpoint.client.health().await.map_err(|e| e.to_string());
    endpoint.shutdown().await;
    match health? {
        health if health.healthy => Ok(()),
        _ => Err("the server reports itself unhealthy".into()),
    }
}

/// Agents gathered before the engine starts: members join by becoming specs, and one drained
/// (a member the source no longer lists, taken in again for the sessions the last engine left
/// on it) starts draining. Nothing has joined the engine yet, so nothing leaves.
pub(crate) struct Gathering {
    pub(crate) specs: Mutex<Vec<AgentSpec>>,
    /// What the fleets told (members that could not join, sources that could not be read),
    /// told to the engine once it runs.
    pub(crate) told: Mutex<Vec<EngineEvent>>,
    /// Agent names taken already (the `[[agents]]` entries).
    taken: BTreeSet<AgentName>,
    withheld: Vec<String>,
}

impl Gathering {
    pub(crate) fn new(taken: BTreeSet<AgentName>, withheld: Vec<String>) -> Self {
        Self {
            specs: Mutex::default(),
            told: Mutex::default(),
            taken,
            withheld,
        }
    }

    /// Whether an agent called `name` is there already.
    fn has(&self, name: &AgentName) -> bool {
        let specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        self.taken.contains(name) || specs.iter().any(|s| &s.agent.name == name)
    }

    /// The agents gathered, and what the fleets told.
    pub(crate) fn into_parts(self) -> (Vec<AgentSpec>, Vec<EngineEvent>) {
        let specs = self.specs.into_inner().unwrap_or_else(|e| e.into_inner());
        let told = self.told.into_inner().unwrap_or_else(|e| e.into_inner());
        (specs, told)
    }
}

impl Crew for Gathering {
    async fn healthy(&self, member: &AgentConfig) -> Result<(), String> {
        check_health(member, &self.withheld).await
    }

    async fn join(&self, member: &AgentConfig) -> Result<(), String> {
        if self.has(&member.name) {
            return Err(EngineError::DuplicateAgent(member.name.to_string()).to_string());
        }
        let (spec, _) = from_entry(member, &self.withheld, None)
            .await
            .map_err(|e| e.to_string())?;
        self.specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(spec);
        // Joined after all (taken in again for its sessions): it waits no more.
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        told.retain(|event| {
            !matches!(event, EngineEvent::FleetMemberWaiting { url, .. } if Some(url) == member.url.as_ref())
        });
        Ok(())
    }

    async fn drain(&self, name: &AgentName, drain: bool) -> Result<(), String> {
        let mut specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(spec) = specs.iter_mut().find(|s| &s.agent.name == name) else {
            return Err(EngineError::UnknownAgent(name.to_string()).to_string());
        };
        let agent = &mut spec.agent;
        (agent.status, agent.reason) = match drain {
            true => (AgentStatus::Draining, Some(LEFT.to_string())),
            false => (AgentStatus::Online, None),
        };
        agent.since = Some(jiff::Timestamp::now());
        Ok(())
    }

    /// Nothing leaves before the engine starts: a member taken in again for the sessions the
    /// last engine left on it is there to re-attach them (leaving once they have ended).
    async fn remove(&self, _: &AgentName) -> Result<Removal, String> {
        Ok(Removal::Busy(0))
    }

    async fn tell(&self, event: EngineEvent) {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        told.push(event);
    }
}

/// The running engine.
pub(crate) struct Engine {
    pub(crate) engine: EngineHandle,
    pub(crate) adder: AgentAdder,
}

impl Crew for Engine {
    async fn healthy(&self, member: &AgentConfig) -> Result<(), String> {
        check_health(member, &self.adder.withheld).await
    }

    async fn join(&self, member: &AgentConfig) -> Result<(), String> {
        self.adder.add(member).await.map_err(|e| e.to_string())
    }

    async fn drain(&self, name: &AgentName, drain: bool) -> Result<(), String> {
        let cause = match drain {
            true => LEFT,
            false => "listed by its fleet again",
        };
        // Listed again, it lifts only its own drain: the operator's stands.
        self.engine
            .drain_because(name.as_str(), drain, cause, Some(LEFT))
            .await
            .map_err(|e| e.to_string())
    }

    /// The engine refuses to remove an agent that runs sessions: that is
    /// [`Removal::Busy`], and the member is asked again at the next round.
    async fn remove(&self, name: &AgentName) -> Result<Removal, String> {
        let cause = "removed: no longer listed by its fleet and its sessions have ended";
        match self.engine.remove_agent_because(name.as_str(), cause).await {
            Ok(()) | Err(EngineError::UnknownAgent(_)) => Ok(Removal::Gone),
            Err(EngineError::AgentBusy { running, .. }) => Ok(Removal::Busy(running)),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn tell(&self, event: EngineEvent) {
        self.engine.tell(event).await;
    }
}
