//! What a session is told when a task's changes no longer merge: the prompt of a retry that
//! starts again on top of the current integration branch (plan `conflicts = "retry"`), and the
//! prompt of a resolver session that removes the conflict markers a merge left in the
//! integration worktree (`conflicts = "resolver"`). With `"manual"` nobody is prompted: the
//! merge is aborted and the operator is told which files conflicted.

use std::fmt::Write as _;

/// Files listed in a prompt before the rest are only counted.
const FILES_SHOWN: usize = 50;

/// What a retry after a conflict needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConflictRetry<'a> {
    /// The task's own prompt, rendered (upstream summaries filled in).
    pub(crate) prompt: &'a str,
    pub(crate) task: &'a str,
    /// The files that conflicted, repo-relative.
    pub(crate) files: &'a [String],
    /// The tasks whose merged work it conflicted with, when known.
    pub(crate) merged_meanwhile: &'a [String],
}

/// The prompt of the retry: the task's own prompt first, then why it runs again.
pub(crate) fn retry_prompt(retry: &ConflictRetry<'_>) -> String {
    let mut text = String::with_capacity(retry.prompt.len() + 512);
    text.push_str(retry.prompt.trim_end());
    text.push_str("\n\n## This is a retry after a merge conflict\n\n");
    let _ = write!(
        text,
        "An earlier attempt at task `{}` finished, but its changes could not be merged: ",
        retry.task
    );
    if retry.merged_meanwhile.is_empty() {
        text.push_str("other tasks of the plan changed the same files in the meantime.");
    } else {
        let _ = write!(
            text,
            "{} changed the same files in the meantime.",
            quoted_list("task", retry.merged_meanwhile)
        );
    }
    text.push_str(
        " You start again from the current state of the plan's branch, which already has their \
         work. Do the task on top of it, keeping their changes: read the files below as they are \
         now before you edit them.\n\nFiles that conflicted:\n",
    );
    file_list(&mut text, retry.files);
    text
}

/// What a resolver session needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolverBrief<'a> {
    pub(crate) plan: &'a str,
    /// The task whose branch was being merged.
    pub(crate) task: &'a str,
    /// The task branch and the integration branch it was merged into.
    pub(crate) branch: &'a str,
    pub(crate) integration_branch: &'a str,
    /// The files with conflict markers, repo-relative.
    pub(crate) files: &'a [String],
    /// What the task set out to do (its prompt), so the resolution keeps its intent.
    pub(crate) task_prompt: &'a str,
    /// The task's final answer, when it gave one.
    pub(crate) task_summary: Option<&'a str>,
    /// The plan is being landed: `branch` is its base branch, which moved since the plan
    /// started and is being merged into the integration branch (the task is the one whose
    /// work the conflicts hold).
    pub(crate) landing: bool,
}

/// The prompt of a resolver session, run in the integration worktree with the merge in
/// progress.
pub(crate) fn resolver_prompt(brief: &ResolverBrief<'_>) -> String {
    let mut text = String::with_capacity(1024 + brief.task_prompt.len());
    let _ = write!(
        text,
        "You are resolving a git merge conflict in plan `{plan}`.\n\n",
        plan = brief.plan
    );
    let _ = if brief.landing {
        write!(
            text,
            "This directory is the plan's integration worktree, on branch `{integration}`: it \
             holds the work of the plan's tasks, which is being landed on branch `{base}`. \
             `{base}` moved since the plan started, so it is being merged into `{integration}` \
             first, and git stopped with conflicts. The files below contain conflict markers: \
             each conflicted region starts with a line `<<<<<<< HEAD` (the plan's version: its \
             tasks' work), then `=======`, then `{base}`'s version (what others changed \
             meanwhile), ending with a line `>>>>>>> ...`.\n\n\
             Files with conflicts:\n",
            integration = brief.integration_branch,
            base = brief.branch,
        )
    } else {
        write!(
            text,
            "This directory is the plan's integration worktree, on branch `{integration}`. \
             Branch `{branch}` (task `{task}`) is being merged into it and git stopped with \
             conflicts. The files below contain conflict markers: each conflicted region starts \
             with a line `<<<<<<< HEAD` (the integration branch's version: work of tasks already \
             merged), then `=======`, then the task's version, ending with a line \
             `>>>>>>> ...`.\n\n\
             Files with conflicts:\n",
            integration = brief.integration_branch,
            branch = brief.branch,
            task = brief.task,
        )
    };
    file_list(&mut text, brief.files);
    text.push_str(
        "\nWhat to do:\n\
         1. Edit each file so that it keeps the intent of both sides; remove every marker line \
         (`<<<<<<<`, `=======`, `>>>>>>>`).\n\
         A path listed that is a submodule (a directory with a git checkout of its own) has no \
         markers: both sides moved it to different commits (`git ls-files -u PATH` lists them: \
         stage 2 is the integration branch's, stage 3 the other's). Check out in it the commit \
         that keeps both sides' intent (one of them, or a merge of both made inside it), then \
         stage it with `git add PATH`.\n\
         2. Make sure the result still builds and its tests pass, where the project has them.\n\
         3. Do not run `git commit`, `git merge --abort`, `git reset` or `git checkout` in this \
         directory (in a submodule's checkout you may): ocio concludes the merge when you are \
         done.\n\
         4. Answer with a short account of how you resolved each file.\n",
    );
    let _ = write!(
        text,
        "\nTask `{}` was asked to do this:\n\n{}\n",
        brief.task,
        brief.task_prompt.trim_end()
    );
    if let Some(summary) = brief.task_summary.filter(|s| !s.trim().is_empty()) {
        let _ = write!(
            text,
            "\nIt reported when it finished:\n\n{}\n",
            summary.trim_end()
        );
    }
    text
}

fn file_list(text: &mut String, files: &[String]) {
    for file in files.iter().take(FILES_SHOWN) {
        let _ = writeln!(text, "- {file}");
    }
    if files.len() > FILES_SHOWN {
        let _ = writeln!(text, "- ... and {} more", files.len() - FILES_SHOWN);
    }
    if files.is_empty() {
        text.push_str("- (git named none)\n");
    }
}

/// `task "a"`, `tasks "a" and "b"`, `tasks "a", "b" and "c"`.
fn quoted_list(noun: &str, names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => format!("no {noun}"),
        [one] => format!("{noun} {one}"),
        [init @ .., last] => format!("{noun}s {} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn a_retry_keeps_the_prompt_and_says_what_conflicted_with_what() {
        let conflicted = files(&["src/lib.rs", "README.md"]);
        let merged = files(&["api", "docs"]);
        let text = retry_prompt(&ConflictRetry {
            prompt: "Add pagination.\n",
            task: "impl",
            files: &conflicted,
            merged_meanwhile: &merged,
        });
        assert!(
            text.starts_with("Add pagination.\n\n## This is a retry"),
            "{text}"
        );
        assert!(text.contains("task `impl`"));
        assert!(text.contains("tasks `api` and `docs` changed the same files"));
        assert!(text.contains("- src/lib.rs\n- README.md\n"));
        let text = retry_prompt(&ConflictRetry {
            prompt: "p",
            task: "t",
            files: &conflicted,
            merged_meanwhile: &[],
        });
        assert!(text.contains("other tasks of the plan changed the same files"));
    }

    #[test]
    fn a_resolver_is_told_the_branches_files_markers_and_the_tasks_intent() {
        let conflicted = files(&["src/lib.rs"]);
        let text = resolver_prompt(&ResolverBrief {
            plan: "add-pagination",
            task: "impl",
            branch: "ocio/add-pagination/impl",
            integration_branch: "ocio/add-pagination/integration",
            files: &conflicted,
            task_prompt: "Implement cursor pagination.",
            task_summary: Some("Added a cursor to GET /users."),
            landing: false,
        });
        for wanted in [
            "plan `add-pagination`",
            "branch `ocio/add-pagination/integration`",
            "Branch `ocio/add-pagination/impl` (task `impl`)",
            "- src/lib.rs\n",
            "<<<<<<< HEAD",
            "Do not run `git commit`",
            // A submodule in conflict has no markers: how to settle one.
            "`git ls-files -u PATH`",
            "stage it with `git add PATH`",
            "Implement cursor pagination.",
            "It reported when it finished:\n\nAdded a cursor to GET /users.",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing in:\n{text}");
        }
    }

    #[test]
    fn long_file_lists_are_counted_not_dropped() {
        let many: Vec<String> = (0..60).map(|i| format!("f{i}")).collect();
        let text = retry_prompt(&ConflictRetry {
            prompt: "p",
            task: "t",
            files: &many,
            merged_meanwhile: &files(&["a", "b", "c"]),
        });
        assert!(text.contains("- f49\n- ... and 10 more\n"));
        assert!(!text.contains("- f50\n"));
        assert!(text.contains("tasks `a`, `b` and `c`"));
    }
}
