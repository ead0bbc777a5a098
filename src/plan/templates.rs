//! Built-in plan templates: a goal in a sentence becomes a plan of several tasks, e.g.
//! `ocio submit --template feature "Add pagination to /users"`. A template is a
//! [`PlanDraft`](super::draft::PlanDraft), checked like any plan file; its prompts carry the goal
//! and the upstream tasks' results (`{{tasks.X.summary}}`).
//!
//! | template | tasks | capabilities |
//! | --- | --- | --- |
//! | `feature` | analyze -> implement -> test -> review | `plan`, `code`, `code`, `review` |
//! | `bugfix` | reproduce -> fix -> verify | `code` |

use std::path::Path;

use super::draft::{PlanDraft, TaskDraft};
use super::error::did_you_mean;

/// One built-in template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Template {
    pub(crate) name: &'static str,
    /// The tasks for a goal.
    tasks: fn(&str) -> Vec<TaskDraft>,
}

/// Every built-in template.
pub(crate) const TEMPLATES: &[Template] = &[
    Template {
        name: "feature",
        tasks: feature,
    },
    Template {
        name: "bugfix",
        tasks: bugfix,
    },
];

/// The names of the built-in templates.
pub(crate) fn names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|template| template.name).collect()
}

/// Why a template could not be made into a plan.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("no template named {name:?}; the templates are: {}{}", .known.join(", "), hint_text(.hint))]
    Unknown {
        name: String,
        known: Vec<&'static str>,
        hint: Option<String>,
    },
    #[error("the goal is empty\nhint: say what to do, e.g. \"Add pagination to /users\"")]
    EmptyGoal,
}

fn hint_text(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|hint| format!("\nhint: {hint}"))
        .unwrap_or_default()
}

/// The plan draft template `name` makes for `goal` in repository `repo` (absolute, or relative
/// to the working directory), to show or save as a plan file. Its name is the template's name
/// and a slug of the goal.
pub(crate) fn draft(
    name: &str,
    goal: &str,
    repo: &Path,
) -> Result<(Template, PlanDraft), TemplateError> {
    let template = TEMPLATES
        .iter()
        .find(|template| template.name == name)
        .copied()
        .ok_or_else(|| TemplateError::Unknown {
            name: name.to_string(),
            known: names(),
            hint: did_you_mean(name, names()),
        })?;
    let goal = goal.trim();
    if goal.is_empty() {
        return Err(TemplateError::EmptyGoal);
    }
    let tasks = (template.tasks)(goal);
    let slug = slug(goal);
    let draft = PlanDraft {
        name: if slug.is_empty() {
            template.name.to_string()
        } else {
            format!("{}-{slug}", template.name)
        },
        repo: repo.to_string_lossy().into_owned(),
        tasks,
        ..PlanDraft::default()
    };
    Ok((template, draft))
}

fn step(id: &str, title: &str, capability: &str, needs: &[&str], prompt: String) -> TaskDraft {
    TaskDraft {
        id: id.into(),
        title: Some(title.into()),
        prompt,
        needs: needs.iter().map(|need| need.to_string()).collect(),
        capabilities: vec![capability.into()],
        files: Vec::new(),
    }
}

fn feature(goal: &str) -> Vec<TaskDraft> {
    vec![
        step(
            "analyze",
            "Analyze the code",
            "plan",
            &[],
            format!(
                "Goal: {goal}\n\nStudy the repository to prepare this change; do not change any \
                 files. Answer with: the files and modules involved, the approach you recommend \
                 and why, the risks, and how the change should be tested."
            ),
        ),
        step(
            "implement",
            "Implement",
            "code",
            &["analyze"],
            format!(
                "Goal: {goal}\n\nImplement it. The analysis of the code base:\n\n\
                 {{{{tasks.analyze.summary}}}}\n\nKeep the change focused on the goal and make \
                 sure the project still builds. Answer with what you changed, where and why."
            ),
        ),
        step(
            "test",
            "Write tests",
            "code",
            &["implement"],
            format!(
                "Goal: {goal}\n\nWrite or extend automated tests for this change. What was \
                 implemented:\n\n{{{{tasks.implement.summary}}}}\n\nCover the normal case, the \
                 edge cases and the errors. Run the test suite and fix what your tests reveal. \
                 Answer with the tests you added and the results of the run."
            ),
        ),
        step(
            "review",
            "Review",
            "review",
            &["implement", "test"],
            format!(
                "Goal: {goal}\n\nReview the change as a careful senior engineer. The \
                 implementation:\n\n{{{{tasks.implement.summary}}}}\n\nThe tests:\n\n\
                 {{{{tasks.test.summary}}}}\n\nCheck correctness, edge cases, error handling, \
                 naming and test coverage against the goal. Fix small problems yourself; answer \
                 with what you found, what you fixed and what is left for a human to decide."
            ),
        ),
    ]
}

fn bugfix(goal: &str) -> Vec<TaskDraft> {
    vec![
        step(
            "reproduce",
            "Reproduce the bug",
            "code",
            &[],
            format!(
                "Bug: {goal}\n\nReproduce it: find the smallest way to make it happen, as a \
                 failing automated test in the project's test suite where possible. Do not fix \
                 it yet. Answer with how to reproduce it, the name of the failing test, and \
                 where you think the cause is."
            ),
        ),
        step(
            "fix",
            "Fix the cause",
            "code",
            &["reproduce"],
            format!(
                "Bug: {goal}\n\nFix it. How it was reproduced:\n\n\
                 {{{{tasks.reproduce.summary}}}}\n\nFix the cause, not the symptom, and keep \
                 the reproducing test. Answer with the cause and the fix."
            ),
        ),
        step(
            "verify",
            "Verify the fix",
            "code",
            &["fix"],
            format!(
                "Bug: {goal}\n\nVerify the fix. The reproduction:\n\n\
                 {{{{tasks.reproduce.summary}}}}\n\nThe fix:\n\n{{{{tasks.fix.summary}}}}\n\n\
                 Run the reproduction and the whole test suite; look for other places with the \
                 same mistake and for regressions. Answer with what you ran, the results, and \
                 anything still wrong."
            ),
        ),
    ]
}

/// `Add pagination to /users` -> `add-pagination-to-users`: lowercase ASCII words joined by
/// `-`, at most 40 bytes, cut between words.
pub(super) fn slug(goal: &str) -> String {
    let mut slug = String::new();
    for word in goal
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        let extra = word.len() + usize::from(!slug.is_empty());
        if slug.len() + extra > 40 {
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&word.to_ascii_lowercase());
    }
    slug
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
