//! Checking a parsed plan against the configured agents: every capability a task needs is
//! offered, and every pinned agent exists (and can do the task).

use std::collections::BTreeSet;

use super::error::{PlanError, did_you_mean};
use super::{PlanErrors, PlanFile, TaskSpec};
use crate::domain::Agent;

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

    /// [`validate_against`](Self::validate_against) with the configured agents themselves, which
    /// also finds the tasks no single agent can run: a pinned agent without a needed capability,
    /// or capabilities that are offered, but never all by one agent.
    pub(crate) fn validate_against_agents(&self, agents: &[Agent]) -> Result<(), PlanErrors> {
        let offered: BTreeSet<String> = agents
            .iter()
            .flat_map(|agent| agent.capabilities.iter().cloned())
            .collect();
        let names: BTreeSet<String> = agents.iter().map(|a| a.name.to_string()).collect();
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
                Some((name, at)) => {
                    let Some(agent) = agents.iter().find(|agent| agent.name == *name) else {
                        continue; // reported as unknown
                    };
                    let missing: Vec<&str> = task
                        .capabilities
                        .difference(&agent.capabilities)
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        errors.push(
                            self.error(task, at, "agent", format!(
                                    "is pinned to agent {:?}, which does not offer {}",
                                    name.as_str(),
                                    missing.join(", ")
                                ))
                                .with_hint(Some(
                                    "pin another agent, or remove `agent` to let any capable agent run it"
                                        .into(),
                                )),
                        );
                    }
                }
                None if agents.is_empty() => {
                    errors.push(
                        self.error(task, task.origin.at, "agent", "no agent is configured to run it".into())
                            .with_hint(Some(
                                "add an [[agents]] entry to the config (`ocio check` shows what is configured), or try `ocio demo` with simulated agents".into(),
                            )),
                    );
                }
                None if !agents.iter().any(runs) => {
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

    /// For a plan in a directory that is no git repository (its tasks' trees cannot be
    /// carried to a build box): each task some agent could run must have one working on
    /// ocio's disk among them, or it would wait ready for good.
    pub(crate) fn validate_on_ocios_disk(&self, agents: &[Agent]) -> Result<(), PlanErrors> {
        let mut errors = Vec::new();
        for task in &self.tasks {
            let could: Vec<&Agent> = agents
                .iter()
                .filter(|a| task.capabilities.is_subset(&a.capabilities))
                .filter(|a| task.agent.as_ref().is_none_or(|pinned| *pinned == a.name))
                .collect();
            if could.is_empty() || could.iter().any(|a| !a.works_away) {
                continue; // none at all is reported by `validate_against_agents`
            }
            let names: Vec<&str> = could.iter().map(|a| a.name.as_str()).collect();
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
