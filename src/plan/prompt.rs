//! A bare prompt as a plan, whether typed in the control room or given to `ocio submit
//! --prompt`: one task, `prompt`, in the git repository around the directory it was given in
//! (or that directory itself outside any repository), named for when it was given.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::PlanErrors;
use super::draft::{PlanDraft, TaskDraft};

/// The one-task plan for `prompt` given in `dir` at `now`, as plan-file text, and the path
/// that names it in errors (`dir/(prompt)`).
pub fn prompt_plan(
    prompt: &str,
    dir: &Path,
    now: Timestamp,
) -> Result<(PathBuf, String), PlanErrors> {
    let repo = crate::workspace::enclosing_repository(dir).unwrap_or_else(|| dir.to_path_buf());
    let draft = PlanDraft {
        name: format!("prompt-{}", now.strftime("%Y%m%d-%H%M%S")),
        repo: repo.display().to_string(),
        tasks: vec![TaskDraft {
            id: "prompt".into(),
            prompt: prompt.into(),
            ..TaskDraft::default()
        }],
        ..PlanDraft::default()
    };
    let origin = dir.join("(prompt)");
    let text = draft.to_toml(&origin)?;
    Ok((origin, text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::plan::PlanFile;

    fn at() -> Timestamp {
        "2026-03-04T05:06:07Z".parse().unwrap()
    }

    #[test]
    fn a_prompt_is_one_task_in_the_repository_around_where_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let sub = repo.join("src/deep");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(&sub).unwrap();

        let (origin, text) = prompt_plan("say \"hi\"\nthen stop", &sub, at()).unwrap();
        assert_eq!(origin, sub.join("(prompt)"));
        let plan = PlanFile::parse(&text, &origin).unwrap();
        assert_eq!(plan.name, "prompt-20260304-050607");
        assert_eq!(plan.repo, repo);
        assert_eq!(plan.tasks.len(), 1);
        assert_eq!(plan.tasks[0].id, "prompt");
        assert_eq!(plan.tasks[0].prompt, "say \"hi\"\nthen stop");
    }

    #[test]
    fn outside_any_repository_it_runs_where_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let (origin, text) = prompt_plan("x", dir.path(), at()).unwrap();
        let plan = PlanFile::parse(&text, &origin).unwrap();
        assert_eq!(plan.repo, dir.path());
    }
}
