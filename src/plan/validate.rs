//! Checking a parsed plan against the configured agents: every capability a task needs is
//! offered, and every pinned agent exists (and can do the task).

use std::collections::BTreeSet;

use super::error::{PlanError, did_you_mean};
use super::{PlanErrors, PlanFile, TaskSpec};
use crate::domain::{Agent, Fleet, fleet_of};

impl PlanFile {
    /// Checks the plan against what the agents offer, by name and capability: a capability no
    /// agent offers, a task pinned to an agent that does not exist.
    pub(crate) fn validate_against(
        &self,
        capabilities_offered: &BTreeSet<String>,
        agent_names: &BTreeSet<String>,
    ) -> Result<(), PlanErrors> {
        let mut errors = Vec::new();
        for task in &self.tasks {
            for (capability, at) in &task.origin.capabilities {
                if capabilities_offered.contains(capability) {
                    continue;
                }
                let hint =
                    did_you_mean(capability, capabilities_offered.iter().map(String::as_str))
                        .or_else(|| {
                            Some(offered_text("capabilities offered", capabilities_offered))
                        });
                errors.push(
                    self.error(
                        task,
                        *at,
                        "capabilities",
                        format!("needs capability {capability:?}, which no agent offers"),
                    )
                    .with_hint(hint),
                );
            }
            if let (Some(agent), Some(at)) = (&task.agent, task.origin.agent)
                && !agent_names.contains(agent.as_str())
            {
                let hint = did_you_mean(agent.as_str(), agent_names.iter().map(String::as_str))
                    .or_else(|| Some(offered_text("configured agents", agent_names)));
                errors.push(
                    self.error(
                        task,
                        at,
                        "agent",
                        format!("is pinned to unknown agent {:?}", agent.as_str()),
                    )
                    .with_hint(hint),
                );
            }
        }
        PlanErrors::from_vec(errors).map_or(Ok(()), Err)
    }

    /// [`validate_against`](Self::validate_against) with the configured agents themselves and
    /// the fleets whose members may join at any time, which also finds the tasks no single
    /// agent can run: a pinned agent without a needed capability, or capabilities that are
    /// offered, but never all by one agent. A task only a fleet's members could run, or pinned
    /// to a member that has not joined, is fine: it waits for one.
    pub(crate) fn validate_against_agents(
        &self,
        agents: &[Agent],
        fleets: &[Fleet],
    ) -> Result<(), PlanErrors> {
        let offered: BTreeSet<String> = agents
            .iter()
            .flat_map(|agent| agent.capabilities.iter().cloned())
            .chain(fleets.iter().flat_map(|f| f.capabilities.iter().cloned()))
            .collect();
        let mut names: BTreeSet<String> = agents.iter().map(|a| a.name.to_string()).collect();
        // Members to come: what they are called, and each name a task pins of them.
        for fleet in fleets {
            if fleet.members.is_empty() {
                names.insert(format!("{}-<host>-<port>", fleet.name));
            } else {
                names.extend(fleet.members.iter().map(ToString::to_string));
            }
        }
        names.extend(
            self.tasks
                .iter()
                .filter_map(|task| task.agent.as_ref())
                .filter(|pinned| {
                    fleet_of(fleets, pinned.as_str()).is_some()
                        || fleets.iter().any(|f| f.name == **pinned)
                })
                .map(ToString::to_string),
        );
        let mut errors = match self.validate_against(&offered, &names) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_vec(),
        };
        for task in &self.tasks {
            if !task.capabilities.is_subset(&offered) {
                continue; // already reported capability by capability
            }
            let pinned = task.agent.as_ref().zip(task.origin.agent);
            let runs = |agent: &Agent| task.capabilities.is_subset(&agent.capabilities);
            match pinned {
                Some((name, at)) if fleets.iter().any(|f| f.name == *name) => {
                    errors.push(
                        self.error(task, at, "agent", format!("is pinned to fleet {:?}, not to one of its members", name.as_str()))
                            .with_hint(Some(format!(
                                "leave `agent` out to let any member that offers what the task needs run it, or pin one member ({}-<host>-<port>)",
                                name.as_str()
                            ))),
                    );
                }
                Some((name, at)) => {
                    errors.extend(self.pinned_lacks(task, name.as_str(), at, agents, fleets));
                }
                None if agents.is_empty() && fleets.is_empty() => {
                    errors.push(
                        self.error(task, task.origin.at, "agent", "no agent is configured to run it".into())
                            .with_hint(Some(
                                "add an [[agents]] or [[fleets]] entry to the config (`ocio check` shows what is configured), or try `ocio demo` with simulated agents".into(),
                            )),
                    );
                }
                None if !agents.iter().any(runs)
                    && !fleets.iter().any(|f| f.offers(&task.capabilities)) =>
                {
                    let needed: Vec<&str> = task.capabilities.iter().map(String::as_str).collect();
                    errors.push(
                        self.error(
                            task,
                            task.origin.at,
                            "capabilities",
                            format!("no single agent offers all of {}", needed.join(", ")),
                        )
                        .with_hint(Some(
                            "give one agent all of them in the config, or split the task".into(),
                        )),
                    );
                }
                None => {}
            }
        }
        PlanErrors::from_vec(errors).map_or(Ok(()), Err)
    }

    /// `task` is pinned (at `at`) to agent `name`, which does not offer all it needs (the
    /// agent, else the fleet it is a member of); `None` also for an unknown agent (reported
    /// as such).
    fn pinned_lacks(
        &self,
        task: &TaskSpec,
        name: &str,
        at: (usize, usize),
        agents: &[Agent],
        fleets: &[Fleet],
    ) -> Option<PlanError> {
        let offers = agents
            .iter()
            .find(|agent| agent.name.as_str() == name)
            .map(|agent| &agent.capabilities)
            .or_else(|| fleet_of(fleets, name).map(|f| &f.capabilities))?;
        let missing: Vec<&str> = task
            .capabilities
            .difference(offers)
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return None;
        }
        let error = self.error(
            task,
            at,
            "agent",
            format!(
                "is pinned to agent {name:?}, which does not offer {}",
                missing.join(", ")
            ),
        );
        Some(error.with_hint(Some(
            "pin another agent, or remove `agent` to let any capable agent run it".into(),
        )))
    }

    /// For a plan in a directory that is no git repository (its tasks' trees cannot be
    /// carried to a build box): each task some agent (or fleet) could run must have one
    /// working on ocio's disk among them, or it would wait ready for good.
    pub(crate) fn validate_on_ocios_disk(
        &self,
        agents: &[Agent],
        fleets: &[Fleet],
    ) -> Result<(), PlanErrors> {
        let mut errors = Vec::new();
        for task in &self.tasks {
            let pinned = |name: &str| task.agent.as_ref().is_none_or(|p| p.as_str() == name);
            let could: Vec<(String, bool)> = agents
                .iter()
                .filter(|a| task.capabilities.is_subset(&a.capabilities))
                .filter(|a| pinned(a.name.as_str()))
                .map(|a| (a.name.to_string(), a.works_away))
                .chain(
                    fleets
                        .iter()
                        .filter(|f| f.offers(&task.capabilities))
                        // Pinned: to the fleet it names a member of, unless that is an agent
                        // here already (whose own workspace counts).
                        .filter(|f| match task.agent.as_ref() {
                            None => true,
                            Some(p) => {
                                !agents.iter().any(|a| a.name == *p)
                                    && fleet_of(fleets, p.as_str())
                                        .is_some_and(|of| of.name == f.name)
                            }
                        })
                        // A fleet whose members say where they work as they join may
                        // work on ocio's disk.
                        .map(|f| (format!("fleet {}", f.name), f.works_away == Some(true))),
                )
                .collect();
            if could.is_empty() || could.iter().any(|(_, away)| !away) {
                continue; // none at all is reported by `validate_against_agents`
            }
            let names: Vec<&str> = could.iter().map(|(name, _)| name.as_str()).collect();
            let (field, at) = match task.origin.agent {
                Some(at) if task.agent.is_some() => ("agent", at),
                _ => ("repo", task.origin.at),
            };
            errors.push(
                self.error(
                    task,
                    at,
                    field,
                    format!(
                        "cannot run: {} is no git repository, so its tree cannot be carried to a build box, and the agents that could run it ({}) work on build boxes (workspace = \"remote\")",
                        self.repo.display(),
                        names.join(", ")
                    ),
                )
                .with_hint(Some(
                    "make the directory a git repository (`git init`, commit), or give the task to an agent that sees ocio's files".into(),
                )),
            );
        }
        PlanErrors::from_vec(errors).map_or(Ok(()), Err)
    }

    fn error(
        &self,
        task: &TaskSpec,
        at: (usize, usize),
        field: &str,
        message: String,
    ) -> PlanError {
        PlanError::new(&self.path, at, message)
            .in_task(Some(&task.id))
            .at_field(field)
    }
}

fn offered_text(what: &str, names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        format!("{what}: none")
    } else {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        format!("{what}: {}", names.join(", "))
    }
}
