//! The agents the engine places sessions on, their runners, and what dispatch and the health
//! probes remember of each. An agent keeps its index for the engine's life (running sessions
//! name their agent by it): a removed agent keeps its slot, and only this file looks at that.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::{Agent, AgentStatus, Task};
use crate::engine::routing;
use crate::engine::runner::{ProbeFuture, Runner};
use crate::engine::{AgentSpec, EngineError};

pub(super) struct Fleet {
    /// The agents as routing reads them, index for index with `slots`.
    agents: Vec<Agent>,
    /// When each was last picked (a pick number), for routing's rotation.
    last_picked: Vec<u64>,
    slots: Vec<Slot>,
    picks: u64,
    /// When the next round of health probes is due.
    next_probe: Instant,
    probe_every: Duration,
}

struct Slot {
    runner: Arc<dyn Runner>,
    /// A probe of it is under way.
    probing: bool,
    removed: bool,
}

impl Fleet {
    /// The first probes come `first_probe` from now, the next ones every `probe_every`.
    pub(super) fn new(specs: Vec<AgentSpec>, first_probe: Duration, probe_every: Duration) -> Self {
        let mut fleet = Self {
            agents: Vec::with_capacity(specs.len()),
            last_picked: Vec::with_capacity(specs.len()),
            slots: Vec::with_capacity(specs.len()),
            picks: 0,
            next_probe: Instant::now() + first_probe,
            probe_every,
        };
        for spec in specs {
            fleet.push(spec);
        }
        fleet
    }

    fn push(&mut self, spec: AgentSpec) {
        self.agents.push(spec.agent);
        self.last_picked.push(0);
        self.slots.push(Slot {
            runner: spec.runner,
            probing: false,
            removed: false,
        });
    }

    /// The agents not removed, with their indices.
    pub(super) fn live(&self) -> impl Iterator<Item = (usize, &Agent)> {
        self.agents
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.slots[*i].removed)
    }

    /// The agents not removed, for checking what a plan needs.
    pub(super) fn live_agents(&self) -> Vec<Agent> {
        self.live().map(|(_, a)| a.clone()).collect()
    }

    /// The index of the agent called `name`.
    pub(super) fn index_of(&self, name: &str) -> Result<usize, EngineError> {
        self.live()
            .find(|(_, a)| a.name.as_str() == name)
            .map(|(i, _)| i)
            .ok_or_else(|| EngineError::UnknownAgent(name.to_string()))
    }

    /// The index of the agent a session names (removed ones too: a session may outlive it).
    pub(super) fn index_of_session_agent(
        &self,
        name: Option<&crate::domain::AgentName>,
    ) -> Option<usize> {
        self.agents.iter().position(|a| Some(&a.name) == name)
    }

    pub(super) fn agent(&self, index: usize) -> &Agent {
        &self.agents[index]
    }

    pub(super) fn agent_mut(&mut self, index: usize) -> &mut Agent {
        &mut self.agents[index]
    }

    pub(super) fn runner(&self, index: usize) -> Arc<dyn Runner> {
        self.slots[index].runner.clone()
    }

    /// Each agent's name and runner (removed ones too: a session may outlive its agent).
    pub(super) fn runners(&self) -> Vec<(crate::domain::AgentName, Arc<dyn Runner>)> {
        self.agents
            .iter()
            .zip(&self.slots)
            .map(|(agent, slot)| (agent.name.clone(), slot.runner.clone()))
            .collect()
    }

    pub(super) fn is_removed(&self, index: usize) -> bool {
        self.slots[index].removed
    }

    /// The agent routing would give `task` now, not `avoid` if another could take it.
    pub(super) fn pick(
        &self,
        task: &Task,
        needs: routing::Needs,
        avoid: Option<usize>,
    ) -> Option<usize> {
        if !needs.ocios_disk {
            return routing::pick_agent_avoiding(
                task,
                needs,
                &self.agents,
                &self.last_picked,
                avoid,
            );
        }
        // Whether an agent works away is found out as it runs (`workspace = "auto"`).
        let mut agents = self.agents.clone();
        for (agent, slot) in agents.iter_mut().zip(&self.slots) {
            agent.works_away |= slot.runner.works_away();
        }
        routing::pick_agent_avoiding(task, needs, &agents, &self.last_picked, avoid)
    }

    /// Take a session slot of agent `index` for a session just picked for it; `false` when it
    /// is full.
    pub(super) fn take(&mut self, index: usize) -> bool {
        if self.agents[index].acquire_slot().is_err() {
            return false;
        }
        self.picks += 1;
        self.last_picked[index] = self.picks;
        true
    }

    /// Take a slot of agent `index` for a session that was already running (re-attached at
    /// start): no pick, and whatever its status (a draining agent finishes what it runs);
    /// `false` when its slots are all in use.
    pub(super) fn take_resumed(&mut self, index: usize) -> bool {
        let agent = &mut self.agents[index];
        if agent.load >= agent.max_concurrent {
            return false;
        }
        agent.load += 1;
        true
    }

    pub(super) fn release(&mut self, index: usize) {
        self.agents[index].release_slot();
    }

    pub(super) fn add(&mut self, spec: AgentSpec) {
        self.push(spec);
        self.probe_soon();
    }

    /// Agent `index` takes no more sessions and is not probed again (offline for routing,
    /// whatever state it was in).
    pub(super) fn remove(&mut self, index: usize) {
        self.slots[index].removed = true;
        self.agents[index].status = AgentStatus::Offline;
    }

    /// Probe every agent at the next tick (a new or undrained agent's state is news).
    pub(super) fn probe_soon(&mut self) {
        self.next_probe = Instant::now();
    }

    /// The probes due now: every live agent not being probed already whose runner can be
    /// probed, each marked as being probed until [`Fleet::probed`].
    pub(super) fn due_probes(&mut self) -> Vec<(usize, ProbeFuture)> {
        let now = Instant::now();
        if now < self.next_probe {
            return Vec::new();
        }
        self.next_probe = now + self.probe_every;
        let mut due = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.probing || slot.removed {
                continue;
            }
            if let Some(probe) = slot.runner.probe() {
                slot.probing = true;
                due.push((i, probe));
            }
        }
        due
    }

    /// A probe of agent `index` came back: the agent, if a probe's finding may change it (not
    /// removed, not drained by the operator, not in that state already).
    pub(super) fn probed(&mut self, index: usize, found: AgentStatus) -> Option<&mut Agent> {
        let slot = &mut self.slots[index];
        slot.probing = false;
        let agent = &mut self.agents[index];
        let keeps = slot.removed || agent.status == AgentStatus::Draining || agent.status == found;
        (!keeps).then_some(agent)
    }
}
