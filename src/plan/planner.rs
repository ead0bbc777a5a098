//! The planner's questions and answers: what a planning session is asked (a goal, as
//! instructions and a JSON schema of tasks with ids, prompts, dependencies, capabilities and
//! the files they expect to touch) and how its structured answer becomes a plan: a
//! `PlanDraft` checked like any plan file (duplicate ids, unknown dependencies, cycles,
//! prompt references) and against the capabilities the agents offer, before anything runs.
//! Asking an OpenCode server: `crate::opencode::planner`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::draft::{PlanDraft, TaskDraft};
use super::{PlanErrors, PlanFile};
use crate::domain::ModelRef;

/// What the planner is asked to plan.
#[derive(Debug, Clone)]
pub struct PlannerRequest<'a> {
    /// What the plan must achieve.
    pub goal: &'a str,
    /// The repository, absolute: the planning session runs there (so it can read the code) and
    /// it becomes the plan's `repo`.
    pub repo: &'a Path,
    /// The plan's name; a slug of the goal when `None`.
    pub name: Option<&'a str>,
    /// The capabilities the configured agents offer: the only ones a task may need.
    pub capabilities: &'a BTreeSet<String>,
    /// The model for the planning session; the server's default when `None`.
    pub model: Option<&'a ModelRef>,
    /// The OpenCode agent (`plan`, `build`, ...); the server's default when `None`.
    pub opencode_agent: Option<&'a str>,
}

/// Why the planner's answer is not a plan.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnswerError {
    #[error(
        "the planner's answer is not a plan: {reason}\nhint: this is the model's mistake; plan again, or write the plan file by hand"
    )]
    Shape { reason: String },
    #[error(
        "the planner's plan is invalid:\n{errors}\nhint: plan again, or write the plan file by hand"
    )]
    Invalid {
        errors: PlanErrors,
        /// The plan as it was answered, written as a plan file (the errors' lines refer to it).
        toml: String,
    },
}

/// The planner's answer, as the schema describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlannerAnswer {
    pub(crate) tasks: Vec<PlannedTask>,
}

/// One task of the planner's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlannedTask {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) title: Option<String>,
    pub(crate) prompt: String,
    #[serde(default)]
    pub(crate) needs: Vec<String>,
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
    #[serde(default)]
    pub(crate) files: Vec<String>,
}

/// The JSON schema of the answer. Capabilities are limited to those offered.
pub(crate) fn schema(capabilities: &BTreeSet<String>) -> Value {
    let mut capabilities_list = json!({
        "type": "array",
        "items": { "type": "string", "enum": capabilities },
        "description": "What the agent running the task must offer."
    });
    if capabilities.is_empty() {
        capabilities_list =
            json!({ "type": "array", "items": { "type": "string" }, "maxItems": 0 });
    }
    let strings = |description: &str| json!({ "type": "array", "items": { "type": "string" }, "description": description });
    json!({
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "minItems": 1,
                "description": "The tasks of the plan. Tasks run in parallel unless one needs another.",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9._-]+$",
                            "description": "Unique short id, e.g. \"api-design\"."
                        },
                        "title": { "type": "string", "description": "A short label." },
                        "prompt": {
                            "type": "string",
                            "description": "Everything the coding session must know to do the task on its own."
                        },
                        "needs": strings("Ids of the tasks that must finish first."),
                        "capabilities": capabilities_list,
                        "files": strings("Repository-relative paths the task is expected to change.")
                    },
                    "required": ["id", "prompt", "needs", "capabilities", "files"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["tasks"],
        "additionalProperties": false
    })
}

/// The planner's instructions for `goal`.
pub(crate) fn planner_prompt(goal: &str, capabilities: &BTreeSet<String>) -> String {
    let offered = if capabilities.is_empty() {
        "none: leave every task's capabilities empty".to_string()
    } else {
        capabilities
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "You are the planner of ocio, an orchestrator that runs many coding sessions in \
         parallel, each in its own git worktree of this repository.\n\n\
         Goal: {goal}\n\n\
         Study the repository as much as you need, then answer with a plan: the tasks that \
         together achieve the goal. Rules:\n\
         - Each task is done by a separate coding session that sees only its own prompt, so a \
         prompt must say everything needed: what to change, where, and how to check it.\n\
         - Tasks run in parallel unless one `needs` another; use `needs` only for real \
         dependencies, and never make a cycle.\n\
         - A prompt may include an upstream task's final answer by writing \
         `{{{{tasks.<id>.summary}}}}`, only for a task it needs (directly or not).\n\
         - Prefer tasks that change different files; list the files each task is expected to \
         change in `files` (repository-relative), so that tasks touching the same files are \
         not run at once.\n\
         - Capabilities a task may need: {offered}. Give each task the ones it needs.\n\
         - Ids are short words of letters, digits, '.', '_' and '-', unique in the plan.\n\
         - Between 1 and 12 tasks; fewer is better when the work is small."
    )
}

/// The plan in the planner's structured `answer`, checked like a plan file and against the
/// capabilities offered.
pub(crate) fn plan_from_answer(
    answer: &Value,
    request: &PlannerRequest<'_>,
) -> Result<(PlanFile, String), AnswerError> {
    let answer = PlannerAnswer::deserialize(answer).map_err(|err| AnswerError::Shape {
        reason: err.to_string(),
    })?;
    let draft = draft(answer, request);
    let origin = Path::new("planner answer");
    let invalid = |errors: PlanErrors| AnswerError::Invalid {
        toml: draft.to_toml(origin).unwrap_or_default(),
        errors,
    };
    let (plan, toml) = draft.to_plan_file(origin).map_err(invalid)?;
    plan.validate_against(request.capabilities, &BTreeSet::new())
        .map_err(invalid)?;
    Ok((plan, toml))
}

fn draft(answer: PlannerAnswer, request: &PlannerRequest<'_>) -> PlanDraft {
    let name = match request.name {
        Some(name) => name.to_string(),
        None => match super::templates::slug(request.goal) {
            slug if slug.is_empty() => "planned".to_string(),
            slug => slug,
        },
    };
    PlanDraft {
        name,
        repo: request.repo.to_string_lossy().into_owned(),
        tasks: answer
            .tasks
            .into_iter()
            .map(|task| TaskDraft {
                id: task.id,
                title: task.title.filter(|title| !title.trim().is_empty()),
                prompt: task.prompt,
                needs: task.needs,
                capabilities: task.capabilities,
                files: task.files,
            })
            .collect(),
        ..PlanDraft::default()
    }
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
