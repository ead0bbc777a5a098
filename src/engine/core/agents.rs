//! The agents side of the engine: health probes that set agents online, degraded or offline,
//! and the operator's drain, undrain, add and remove.

use super::{Core, Step};
use crate::domain::AgentStatus;
use crate::engine::runner::Health;
use crate::engine::{AgentSpec, EngineError};

impl Core {
    /// Every `health_every`, ask each agent's runner how its server is (one probe at a time
    /// per agent; results come back on `health_rx`).
    pub(super) fn probe_agents(&mut self) {
        for (i, probe) in self.fleet.due_probes() {
            let tx = self.health_tx.clone();
            self.tasks.spawn(async move {
                let _ = tx.send((i, probe.await)).await;
            });
        }
    }

    pub(super) async fn health(&mut self, index: usize, health: Health) -> Result<(), EngineError> {
        let now = self.now();
        let Some(agent) = self.fleet.probed(index, health.status) else {
            return Ok(());
        };
        let Ok(event) = agent.transition(health.status, health.detail, now) else {
            return Ok(());
        };
        let mut step = Step::default();
        step.batch.put_agent(agent);
        step.transition(event);
        self.commit(step).await
    }

    pub(super) async fn add_agent(&mut self, spec: AgentSpec) -> Result<(), EngineError> {
        let name = spec.agent.name.to_string();
        if self.fleet.index_of(&name).is_ok() {
            return Err(EngineError::DuplicateAgent(name));
        }
        let mut step = Step::default();
        step.batch.put_agent(&spec.agent);
        step.events.push(crate::engine::EngineEvent::AgentAdded {
            agent: Box::new(spec.agent.clone()),
        });
        self.commit(step).await?;
        self.fleet.add(spec);
        Ok(())
    }

    pub(super) async fn remove_agent(
        &mut self,
        name: &str,
        cause: &str,
    ) -> Result<(), EngineError> {
        let index = self.fleet.index_of(name)?;
        let now = self.now();
        let agent = self.fleet.agent_mut(index);
        if agent.load > 0 {
            return Err(EngineError::AgentBusy {
                name: name.to_string(),
                running: agent.load,
            });
        }
        let mut step = Step::default();
        if let Ok(event) = agent.transition(AgentStatus::Offline, cause, now) {
            step.transition(event);
        }
        step.batch.remove_agent(&agent.name);
        step.events.push(crate::engine::EngineEvent::AgentRemoved {
            agent: agent.name.clone(),
        });
        self.commit(step).await?;
        self.fleet.remove(index);
        Ok(())
    }

    pub(super) async fn drain(
        &mut self,
        name: &str,
        drain: bool,
        cause: &str,
        lifts: Option<&str>,
    ) -> Result<(), EngineError> {
        let index = self.fleet.index_of(name)?;
        let now = self.now();
        let agent = self.fleet.agent_mut(index);
        let to = match drain {
            true => AgentStatus::Draining,
            false => AgentStatus::Online,
        };
        if agent.status == to {
            // Drained already for another cause (its fleet no longer lists it): the operator's
            // drain is noted, so the fleet listing it again does not lift it (review).
            if drain && lifts.is_none() && agent.reason.as_deref() != Some(cause) {
                agent.reason = Some(cause.to_string());
                let mut step = Step::default();
                step.batch.put_agent(agent);
                self.commit(step).await?;
            }
            return Ok(());
        }
        let drained_for_other = agent.status == AgentStatus::Draining
            && lifts.is_some_and(|lifts| agent.reason.as_deref() != Some(lifts));
        if !drain && drained_for_other {
            return Ok(());
        }
        let event = agent
            .transition(to, cause, now)
            .map_err(crate::domain::GraphError::from)?;
        let mut step = Step::default();
        step.batch.put_agent(agent);
        step.transition(event);
        self.commit(step).await?;
        if !drain {
            self.fleet.probe_soon();
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
            .fleet
            .live()
            .flat_map(|(_, a)| a.capabilities.iter().cloned())
            .chain(
                // What members to come offer, for the proposed plan's check.
                self.options
                    .fleets
                    .iter()
                    .flat_map(|f| f.capabilities.iter().cloned()),
            )
            .collect();
        let mut candidates: Vec<usize> = self
            .fleet
            .live()
            .filter(|(_, a)| a.capabilities.contains("plan"))
            .map(|(i, _)| i)
            .collect();
        candidates.sort_by_key(|i| self.fleet.agent(*i).status != AgentStatus::Online);
        let request = crate::engine::PlanRequest {
            goal,
            repo,
            capabilities,
        };
        let planner = candidates.into_iter().find_map(|i| {
            self.fleet
                .runner(i)
                .plan(request.clone())
                .map(|future| (self.fleet.agent(i).name.to_string(), future))
        });
        let Some((agent, future)) = planner else {
            let fleet = self
                .options
                .fleets
                .iter()
                .find(|f| f.capabilities.contains("plan"));
            let why = match fleet {
                Some(fleet) => format!(
                    "fleet {} offers the `plan` capability, but none of its members has joined yet\nhint: try again once one has (`ocio agents` lists them; the room's events say why a listed server has not joined)",
                    fleet.name
                ),
                None => "no agent with the `plan` capability can run a planning session\nhint: add \"plan\" to the capabilities of an OpenCode agent".into(),
            };
            reply.send(Err(EngineError::NoPlanner(why)));
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
