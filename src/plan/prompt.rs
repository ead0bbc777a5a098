//! A bare prompt as a plan, whether typed in the control room or given to `ocio submit
//! --prompt`: one task, `prompt`, in the git repository around the directory it was given in
//! (or that directory itself outside any repository), named for when it was given and a random
//! tag (two prompts given in the same second are two plans, told apart by name).

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::draft::{PlanDraft, TaskDraft};
use super::{PlanError, PlanErrors};

/// The one-task plan for `prompt` given in `dir` at `now`, as plan-file text, and the path
/// that names it in errors (`dir/(prompt)`).
pub(crate) fn prompt_plan(
    prompt: &str,
    dir: &Path,
    now: Timestamp,
) -> Result<(PathBuf, String), PlanErrors> {
    let origin = dir.join("(prompt)");
    // Said of the prompt as a whole: it has no lines, and the message names the directory.
    let refuse = |why: String| {
        PlanErrors::one(
            PlanError::new(Path::new("(prompt)"), (0, 0), why).with_hint(Some(
                "cd into the project to work on (in a git repository each session gets a worktree of its own), or submit a plan file".into(),
            )),
        )
    };
    let repo = match crate::workspace::enclosing_repository(dir) {
        Some(repo) => repo,
        // Outside git the session edits the directory as it is: not a whole home or system.
        None => {
            if let Some(why) = super::repo::too_wide(dir) {
                return Err(refuse(format!(
                    "{} is not a project: it is {why}, and a session there could edit everything below it",
                    dir.display()
                )));
            }
            dir.to_path_buf()
        }
    };
    let Some(repo_text) = repo.to_str() else {
        return Err(refuse(format!(
            "{} is not valid UTF-8, which a plan cannot name",
            repo.display()
        )));
    };
    let draft = PlanDraft {
        name: format!("prompt-{}-{}", now.strftime("%Y%m%d-%H%M%S"), tag()),
        repo: repo_text.to_string(),
        tasks: vec![TaskDraft {
            id: "prompt".into(),
            prompt: prompt.into(),
            ..TaskDraft::default()
        }],
        ..PlanDraft::default()
    };
    let text = draft.to_toml(&origin)?;
    Ok((origin, text))
}

/// Four characters that tell apart plans named in the same second: the tail of a fresh id
/// (random across processes; ids made one after the other in a process differ there).
fn tag() -> String {
    let id = crate::domain::PlanId::generate().short();
    id.get(id.len().saturating_sub(4)..)
        .unwrap_or(&id)
        .to_string()
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
        assert!(
            plan.name.starts_with("prompt-20260304-050607-"),
            "{}",
            plan.name
        );
        assert_eq!(plan.repo, repo);
        assert_eq!(plan.tasks.len(), 1);
        assert_eq!(plan.tasks[0].id, "prompt");
        assert_eq!(plan.tasks[0].prompt, "say \"hi\"\nthen stop");
    }

    #[test]
    fn a_prompt_refused_for_where_it_was_given_names_the_directory_once_and_no_line() {
        let refused = prompt_plan("x", Path::new("/"), at())
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(
                "(prompt): / is not a project: it is the root of the file system, and a session there"
            ),
            "{refused}"
        );
        assert!(
            refused.contains("\n  hint: cd into the project"),
            "{refused}"
        );
    }

    #[test]
    fn two_prompts_given_in_the_same_second_are_told_apart_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let name = |prompt: &str| {
            let (origin, text) = prompt_plan(prompt, dir.path(), at()).unwrap();
            PlanFile::parse(&text, &origin).unwrap().name
        };
        let (first, second) = (name("x"), name("x"));
        assert_ne!(first, second);
        assert!(second.starts_with("prompt-20260304-050607"), "{second}");
    }

    #[test]
    fn outside_any_repository_it_runs_where_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let (origin, text) = prompt_plan("x", dir.path(), at()).unwrap();
        let plan = PlanFile::parse(&text, &origin).unwrap();
        assert_eq!(plan.repo, dir.path());
    }

    #[test]
    fn the_root_of_the_file_system_is_not_a_project() {
        let errors = prompt_plan("x", Path::new("/"), at()).unwrap_err();
        let error = (&errors).into_iter().next().unwrap();
        assert!(error.message.contains("not a project"), "{}", error.message);
        assert!(error.hint.as_deref().unwrap_or("").contains("cd into"));
    }
}
