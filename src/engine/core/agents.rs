//! The agents side of the engine: health probes that set agents online, degraded or offline,
//! and the operator's drain, undrain, add and remove.

use jiff::Timestamp;

use super::{Core, Step};
use crate::domain::AgentStatus;
use crate::engine::runner::Health;
use crate::engine::{AgentSpec, EngineError};

impl Core {
    /// Every `health_every`, ask each agent's runner how its server is (one probe at a time
    /// per agent; results come back on `health_rx`).
    pub(super) fn probe_agents(&mut self) {
        let now = tokio::time::Instant::now();
        if now < self.next_probe {
            return;
        }
        self.next_probe = now + self.options.health_every;
        for (i, runner) in self.runners.iter().enumerate() {
            if self.probing[i] || self.removed[i] {
                continue;
            }
            let Some(probe) = runner.probe() else {
                continue;
            };
            self.probing[i] = true;
            let tx = self.health_tx.clone();
            self.tasks.spawn(async move {
                let _ = tx.send((i, probe.await)).await;
            });
        }
    }

    pub(super) async fn health(&mut self, index: usize, health: Health) -> Result<(), EngineError> {
        self.probing[index] = false;
        let agent = &mut self.agents[index];
        if self.removed[index]
            || agent.status == AgentStatus::Draining
            || agent.status == health.status
        {
            return Ok(());
        }
        let Ok(event) = agent.transition(health.status, health.detail, Timestamp::now()) else {
            return Ok(());
        };
        let mut step = Step::default();
        step.batch.put_agent(agent);
        step.transition(event);
        self.commit(step).await
    }

    pub(super) fn agent_index(&self, name: &str) -> Result<usize, EngineError> {
        self.agents
            .iter()
            .enumerate()
            .position(|(i, a)| !self.removed[i] && a.name.as_str() == name)
            .ok_or_else(|| EngineError::UnknownAgent(name.to_string()))
    }

    pub(super) async fn add_agent(&mut self, spec: AgentSpec) -> Result<(), EngineError> {
        let name = spec.agent.name.to_string();
        if self.agent_index(&name).is_ok() {
            return Err(EngineError::DuplicateAgent(name));
        }
        let mut step = Step::default();
        step.batch.put_agent(&spec.agent);
        step.events.push(crate::engine::EngineEvent::AgentAdded {
            agent: Box::new(spec.agent.clone()),
        });
        self.commit(step).await?;
        self.agents.push(spec.agent);
        self.runners.push(spec.runner);
        self.last_picked.push(0);
        self.probing.push(false);
        self.removed.push(false);
        self.next_probe = tokio::time::Instant::now();
        Ok(())
    }

    pub(super) async fn remove_agent(&mut self, name: &str) -> Result<(), EngineError> {
        let index = self.agent_index(name)?;
        let agent = &mut self.agents[index];
        if agent.load > 0 {
            return Err(EngineError::AgentBusy {
                name: name.to_string(),
                running: agent.load,
            });
        }
        let now = Timestamp::now();
        let mut step = Step::default();
        if let Ok(event) = agent.transition(AgentStatus::Offline, "removed by the operator", now) {
            step.transition(event);
        }
        step.batch.remove_agent(&agent.name);
        self.commit(step).await?;
        self.removed[index] = true;
        Ok(())
    }

    pub(super) async fn drain(&mut self, name: &str, drain: bool) -> Result<(), EngineError> {
        let index = self.agent_index(name)?;
        let agent = &mut self.agents[index];
        let (to, cause) = if drain {
            (AgentStatus::Draining, "drained by the operator")
        } else {
            (AgentStatus::Online, "undrained by the operator")
        };
        if agent.status == to {
            return Ok(());
        }
        let event = agent
            .transition(to, cause, Timestamp::now())
            .map_err(crate::domain::GraphError::from)?;
        let mut step = Step::default();
        step.batch.put_agent(agent);
        step.transition(event);
        self.commit(step).await?;
        if !drain {
            self.next_probe = tokio::time::Instant::now();
        }
        Ok(())
    }
}

impl Core {
    /// Ask the first agent with the `plan` capability that can plan (online ones first) for
    /// a plan; the answer goes straight to `reply` from its own task, so the loop never waits.
    pub(super) fn plan(
        &self,
        goal: String,
        repo: std::path::PathBuf,
        reply: super::Typed<crate::engine::Proposal>,
    ) {
        let capabilities: std::collections::BTreeSet<String> = self
            .agents
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.removed[*i])
            .flat_map(|(_, a)| a.capabilities.iter().cloned())
            .collect();
        let mut candidates: Vec<usize> = (0..self.agents.len())
            .filter(|i| !self.removed[*i] && self.agents[*i].capabilities.contains("plan"))
            .collect();
        candidates.sort_by_key(|i| self.agents[*i].status != crate::domain::AgentStatus::Online);
        let request = crate::engine::PlanRequest {
            goal,
            repo,
            capabilities,
        };
        let planner = candidates.into_iter().find_map(|i| {
            self.runners[i]
                .plan(request.clone())
                .map(|future| (self.agents[i].name.to_string(), future))
        });
        let Some((agent, future)) = planner else {
            reply.send(Err(EngineError::NoPlanner(
                "no agent with the `plan` capability can run a planning session\nhint: add \"plan\" to the capabilities of an OpenCode agent".into(),
            )));
            return;
        };
        tracing::info!(agent, goal = %request.goal, "planning session");
        self.tasks.spawn(async move {
            let result = future
                .await
                .map(|mut proposal| {
                    proposal.agent = agent;
                    proposal
                })
                .map_err(EngineError::Planner);
            reply.send(result);
        });
    }
}
