//! An agent: a place sessions run (an OpenCode server with an agent name and a model, or the
//! in-process simulator), what it can do, how much it may take on, and its health status.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::event::{DomainEvent, Transition, TransitionError};
use super::id::AgentName;
use super::lifecycle::{Lifecycle, status_enum};

status_enum! {
    /// How an agent is doing. Health checks and the circuit breaker move it between online,
    /// degraded and offline; the operator drains it.
    pub enum AgentStatus {
        Online => "online",
        /// Answering, but slowly or with errors; takes work only when no online agent can.
        Degraded => "degraded",
        Offline => "offline",
        /// Takes no new sessions; running ones finish.
        Draining => "draining",
    }
}

impl Lifecycle for AgentStatus {
    const ALL: &'static [Self] = Self::VARIANTS;

    fn next(self) -> &'static [Self] {
        use AgentStatus::*;
        match self {
            Online => &[Degraded, Offline, Draining],
            Degraded => &[Online, Offline, Draining],
            Offline => &[Online, Degraded, Draining],
            // Leaving draining is the operator's decision (undrain), or the agent going away.
            Draining => &[Online, Offline],
        }
    }

    fn name(self) -> &'static str {
        self.text()
    }
}

/// A model as OpenCode names it: `providerID/modelID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "model `{}` is not of the form provider/model (e.g. anthropic/claude-sonnet-4)",
    crate::text::shown(.0)
)]
pub struct ModelRefError(pub String);

impl FromStr for ModelRef {
    type Err = ModelRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('/') {
            Some((provider, model)) if !provider.is_empty() && !model.is_empty() => Ok(Self {
                provider: provider.to_string(),
                model: model.to_string(),
            }),
            _ => Err(ModelRefError(text.to_string())),
        }
    }
}

impl TryFrom<String> for ModelRef {
    type Error = ModelRefError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ModelRef> for String {
    fn from(model: ModelRef) -> String {
        model.to_string()
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Where an agent's sessions run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backend {
    /// An OpenCode server: one at `url`, or one ocio starts and stops itself (`managed`).
    Opencode {
        url: Option<String>,
        managed: bool,
        /// The environment variable holding the server password (never the password itself).
        password_env: Option<String>,
        /// A managed server's linger time, in seconds: how long it runs on for its sessions
        /// once ocio is gone (0: it stops with ocio).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        linger: Option<u64>,
    },
    /// The in-process simulator.
    Simulated,
}

/// The agent has no free slot, or does not take work in its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agent `{name}` cannot take a session: {reason}")]
pub(crate) struct AgentBusy {
    pub(crate) name: AgentName,
    pub(crate) reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub name: AgentName,
    pub(crate) backend: Backend,
    /// The OpenCode agent sessions use (`build`, `plan`, ...); the server default when unset.
    pub(crate) opencode_agent: Option<String>,
    pub(crate) model: Option<ModelRef>,
    pub capabilities: BTreeSet<String>,
    pub(crate) max_concurrent: u32,
    pub status: AgentStatus,
    /// Sessions running on it now.
    pub load: u32,
    /// Why it is in its status (the health probe's detail, the operator's drain), unless it
    /// is online.
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// When it entered its status, when this engine saw it happen.
    #[serde(default)]
    pub(crate) since: Option<Timestamp>,
    /// The most it may spend in one UTC day (`budget` in its `[[agents]]` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<super::Budget>,
    /// Its sessions always work on their own machine (`workspace = "remote"`, a build box):
    /// a task's tree is carried there as git commits, so a task in a directory that is no
    /// git repository cannot go to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) works_away: bool,
}

impl Agent {
    pub fn new(name: AgentName, backend: Backend, max_concurrent: u32) -> Self {
        Self {
            name,
            backend,
            opencode_agent: None,
            model: None,
            capabilities: BTreeSet::new(),
            max_concurrent,
            status: AgentStatus::Online,
            load: 0,
            reason: None,
            since: None,
            budget: None,
            works_away: false,
        }
    }

    pub(crate) fn transition(
        &mut self,
        to: AgentStatus,
        cause: impl Into<String>,
        at: Timestamp,
    ) -> Result<DomainEvent, TransitionError> {
        let from = self.status;
        if !from.can_become(to) {
            return Err(TransitionError::Agent {
                name: self.name.clone(),
                from,
                to,
            });
        }
        let cause = cause.into();
        self.status = to;
        self.note(&cause, at);
        Ok(DomainEvent::new(
            Transition::Agent {
                name: self.name.clone(),
                from,
                to,
            },
            cause,
            at,
        ))
    }

    /// Record why and since when the agent is in its status (only a reason for a status other
    /// than online).
    pub(crate) fn note(&mut self, cause: &str, at: Timestamp) {
        self.since = Some(at);
        self.reason =
            (self.status != AgentStatus::Online && !cause.is_empty()).then(|| cause.to_string());
    }

    /// Whether the agent offers every one of `required`.
    pub(crate) fn has_capabilities<'a>(
        &self,
        required: impl IntoIterator<Item = &'a String>,
    ) -> bool {
        required.into_iter().all(|c| self.capabilities.contains(c))
    }

    /// Running sessions over the maximum: 0.0 idle, 1.0 full.
    pub(crate) fn load_ratio(&self) -> f64 {
        if self.max_concurrent == 0 {
            return 1.0;
        }
        f64::from(self.load) / f64::from(self.max_concurrent)
    }

    /// Whether the agent may start another session now.
    pub(crate) fn can_accept(&self) -> bool {
        matches!(self.status, AgentStatus::Online | AgentStatus::Degraded)
            && self.load < self.max_concurrent
    }

    /// Takes one slot for a new session.
    pub(crate) fn acquire_slot(&mut self) -> Result<(), AgentBusy> {
        if self.can_accept() {
            self.load += 1;
            return Ok(());
        }
        let reason = if self.load >= self.max_concurrent {
            format!("all {} slots are in use", self.max_concurrent)
        } else {
            format!("it is {}", self.status)
        };
        Err(AgentBusy {
            name: self.name.clone(),
            reason,
        })
    }

    /// Gives back the slot of a session that ended.
    pub(crate) fn release_slot(&mut self) {
        self.load = self.load.saturating_sub(1);
    }
}

/// A `[[fleets]]` entry as the engine knows it: servers that become agents called
/// `<name>-<host>-<port>` whenever they answer, now or later. A plan may count on a fleet
/// before any member has joined (its tasks wait ready for one), and pin a member that has
/// not joined yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fleet {
    pub name: AgentName,
    /// What every member offers.
    pub capabilities: BTreeSet<String>,
    /// Its members work on their own machines (`workspace = "remote"`): `Some(true)`; on
    /// ocio's disk (`"shared"`): `Some(false)`; found out per member as it joins: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub works_away: Option<bool>,
    /// Its members' names when its source lists them once for all (`urls`); empty when they
    /// are found as it runs (`dns`, `command`): any `<name>-...`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<AgentName>,
}

/// The fleet whose member `agent` is or may be: the one listing it, else the one with the
/// longest name `agent` starts with and a dash (of fleets `box` and `box-gpu`,
/// `box-gpu-10.0.0.7-4096` is `box-gpu`'s).
pub(crate) fn fleet_of<'f>(fleets: &'f [Fleet], agent: &str) -> Option<&'f Fleet> {
    fleets.iter().filter(|f| f.may_name(agent)).max_by_key(|f| {
        (
            f.members.iter().any(|m| m.as_str() == agent),
            f.name.as_str().len(),
        )
    })
}

impl Fleet {
    /// Whether `agent` is the name of a member of this fleet, joined or not: one it lists,
    /// or, when its members are found as it runs, any name of its form.
    pub(crate) fn may_name(&self, agent: &str) -> bool {
        if !self.members.is_empty() {
            return self.members.iter().any(|m| m.as_str() == agent);
        }
        agent
            .strip_prefix(self.name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| !rest.is_empty())
    }

    /// Whether its members could ever run a task needing `capabilities`.
    pub(crate) fn offers<'a>(&self, capabilities: impl IntoIterator<Item = &'a String>) -> bool {
        capabilities
            .into_iter()
            .all(|c| self.capabilities.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(max: u32) -> Agent {
        let mut agent = Agent::new(AgentName::new("local").unwrap(), Backend::Simulated, max);
        agent.capabilities = ["code".to_string(), "rust".to_string()].into();
        agent
    }

    #[test]
    fn capabilities_must_all_be_present() {
        let a = agent(1);
        assert!(a.has_capabilities(&["code".to_string()]));
        assert!(a.has_capabilities(&Vec::<String>::new()));
        assert!(!a.has_capabilities(&["code".to_string(), "plan".to_string()]));
    }

    #[test]
    fn slots_are_bounded_and_load_is_reported() {
        let mut a = agent(2);
        a.acquire_slot().unwrap();
        assert_eq!(a.load_ratio(), 0.5);
        a.acquire_slot().unwrap();
        let err = a.acquire_slot().unwrap_err();
        assert_eq!(
            err.to_string(),
            "agent `local` cannot take a session: all 2 slots are in use"
        );
        a.release_slot();
        a.release_slot();
        a.release_slot();
        assert_eq!(a.load, 0, "release never underflows");
    }

    #[test]
    fn draining_and_offline_agents_take_no_work() {
        let mut a = agent(4);
        a.transition(AgentStatus::Draining, "operator", Timestamp::UNIX_EPOCH)
            .unwrap();
        assert!(!a.can_accept());
        assert!(
            a.acquire_slot()
                .unwrap_err()
                .to_string()
                .ends_with("it is draining")
        );
        let err = a
            .transition(AgentStatus::Degraded, "health", Timestamp::UNIX_EPOCH)
            .unwrap_err();
        assert!(err.to_string().contains("from draining to degraded"));
        a.transition(AgentStatus::Online, "undrain", Timestamp::UNIX_EPOCH)
            .unwrap();
        assert!(a.can_accept());
    }

    #[test]
    fn model_refs_parse_provider_and_model() {
        let m: ModelRef = "anthropic/claude-sonnet-4".parse().unwrap();
        assert_eq!(
            (m.provider.as_str(), m.model.as_str()),
            ("anthropic", "claude-sonnet-4")
        );
        assert_eq!(m.to_string(), "anthropic/claude-sonnet-4");
        for bad in ["claude", "/x", "x/", ""] {
            assert!(bad.parse::<ModelRef>().is_err(), "{bad:?}");
        }
    }
}
