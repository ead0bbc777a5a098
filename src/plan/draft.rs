//! Plans that ocio writes rather than a person (built-in templates, the planner's answer): a
//! draft is written out as plan-file TOML and read back through [`PlanFile::parse`], so it is
//! checked by exactly the rules a hand-written plan is (ids, unknown and self dependencies,
//! cycles, prompt references), and the text can be shown, saved and edited like any plan file.

use std::path::Path;

use serde::Serialize;

use super::{PlanError, PlanErrors, PlanFile};

/// A plan before it is checked: the keys of a plan file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PlanDraft {
    pub(crate) name: String,
    /// As a plan file writes it: absolute, or relative to where the plan is read from.
    pub(crate) repo: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conflicts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worktrees: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) base: Option<String>,
    pub(crate) tasks: Vec<TaskDraft>,
}

/// One task of a draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct TaskDraft {
    pub(crate) id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    pub(crate) prompt: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) needs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) capabilities: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) files: Vec<String>,
}

impl PlanDraft {
    /// The draft as plan-file text.
    pub(crate) fn to_toml(&self, origin: &Path) -> Result<String, PlanErrors> {
        toml::to_string_pretty(self).map_err(|err| {
            PlanErrors::one(PlanError::new(
                origin,
                (0, 0),
                format!("cannot write the plan as TOML: {err}"),
            ))
        })
    }

    /// The checked plan and its text. `origin` names the plan in errors (e.g. `template
    /// "feature"`); a relative `repo` is taken from the working directory unless `origin` has a
    /// directory part.
    pub(crate) fn to_plan_file(&self, origin: &Path) -> Result<(PlanFile, String), PlanErrors> {
        let text = self.to_toml(origin)?;
        let plan = PlanFile::parse(&text, origin)?;
        Ok((plan, text))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn draft() -> PlanDraft {
        PlanDraft {
            name: "demo".into(),
            repo: "/src/demo".into(),
            conflicts: Some("resolver".into()),
            tasks: vec![
                TaskDraft {
                    id: "design".into(),
                    prompt: "Say \"why\"\nin two lines; {{not a reference}}".into(),
                    capabilities: vec!["plan".into()],
                    ..TaskDraft::default()
                },
                TaskDraft {
                    id: "build".into(),
                    title: Some("Build it".into()),
                    prompt: "Do: {{tasks.design.summary}}".into(),
                    needs: vec!["design".into()],
                    files: vec!["src/lib.rs".into()],
                    ..TaskDraft::default()
                },
            ],
            ..PlanDraft::default()
        }
    }

    #[test]
    fn a_draft_round_trips_through_plan_file_text() {
        let (plan, text) = draft().to_plan_file(Path::new("draft")).unwrap();
        assert!(text.contains("[[tasks]]"), "{text}");
        assert_eq!(plan.name, "demo");
        assert_eq!(plan.repo_path(), PathBuf::from("/src/demo"));
        assert_eq!(
            plan.tasks[0].prompt,
            draft().tasks[0].prompt,
            "quotes and newlines survive"
        );
        assert_eq!(plan.tasks[1].title, "Build it");
        assert_eq!(plan.tasks[1].needs, ["design"]);
        assert_eq!(plan.tasks[1].files, ["src/lib.rs".to_string()].into());
        let again = PlanFile::parse(&text, Path::new("draft")).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn a_bad_draft_is_reported_like_a_bad_plan_file() {
        let mut bad = draft();
        bad.tasks[0].needs = vec!["build".into()];
        bad.tasks[1].needs.push("nowhere".into());
        let errors = bad.to_plan_file(Path::new("draft")).unwrap_err();
        let text = errors.to_string();
        assert!(
            text.contains("dependency cycle: design -> build -> design"),
            "{text}"
        );
        assert!(
            text.contains("task \"build\": needs unknown task \"nowhere\""),
            "{text}"
        );
        assert!(text.starts_with("draft:"), "{text}");
    }
}
