//! The rules for single values of a plan file: the header (name, repo, conflict policy, base
//! branch) and each task on its own (id, prompt, timeout, capabilities, locks, files, agent).
//! Rules that relate tasks to each other are in `links`.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use jiff::SignedDuration;
use toml::Spanned;

use super::error::{PlanError, Source, did_you_mean};
use super::raw::{RawHeader, RawTaskAt};
use super::{HeaderOrigin, TaskOrigin, TaskSpec};
use crate::domain::AgentName;
use crate::domain::task::{CheckFailurePolicy, CleanupPolicy, ConflictPolicy, PlanSettings};
use crate::text::shown;

/// The header with its rules applied: name, repo as written, settings, where they are.
pub(super) fn header(
    source: Source<'_>,
    header: RawHeader,
    errors: &mut Vec<PlanError>,
) -> (String, PathBuf, PlanSettings, HeaderOrigin) {
    let origin = HeaderOrigin {
        repo: header
            .repo
            .as_ref()
            .map_or((0, 0), |repo| source.line_column(repo.span().start)),
        base: header
            .base
            .as_ref()
            .map(|base| source.line_column(base.span().start)),
    };
    let mut settings = PlanSettings {
        budget: header.budget,
        ..PlanSettings::default()
    };
    workflow(source, &header, &mut settings, errors);
    let unreadable = &header.unreadable;
    let mut required = |value: Option<Spanned<String>>, key: &str, example: &str| match value {
        None if unreadable.contains(key) => String::new(),
        None => {
            errors.push(
                source
                    .error(0..0, format!("missing `{key}`"))
                    .at_field(key)
                    .with_hint(Some(format!(
                        "add `{key} = {example}` at the top of the file"
                    ))),
            );
            String::new()
        }
        Some(value) if value.get_ref().trim().is_empty() => {
            errors.push(
                source
                    .error(value.span(), format!("`{key}` is empty"))
                    .at_field(key)
                    .with_hint(Some(format!("write e.g. `{key} = {example}`"))),
            );
            String::new()
        }
        Some(value) => value.into_inner(),
    };
    let name = required(header.name, "name", "\"add-pagination\"");
    let repo = required(header.repo, "repo", "\".\"");
    if let Some(conflicts) = header.conflicts {
        let words = ConflictPolicy::ALL.map(ConflictPolicy::text);
        match ConflictPolicy::from_text(conflicts.get_ref()) {
            Some(policy) => settings.conflicts = policy,
            None => errors.push(not_one_of(
                source,
                &conflicts,
                "conflicts",
                "a conflict policy",
                &words,
            )),
        }
    }
    if let Some(cleanup) = header.cleanup {
        let words = CleanupPolicy::ALL.map(CleanupPolicy::text);
        if header.worktrees == Some(false) {
            errors.push(
                source
                    .error(
                        cleanup.span(),
                        "`cleanup` is about worktrees, and this plan has `worktrees = false`",
                    )
                    .at_field("cleanup")
                    .with_hint(Some("remove `cleanup`, or `worktrees = false`".into())),
            );
        }
        match CleanupPolicy::from_text(cleanup.get_ref()) {
            Some(policy) => settings.cleanup = Some(policy),
            None => errors.push(not_one_of(
                source,
                &cleanup,
                "cleanup",
                "a cleanup policy",
                &words,
            )),
        }
    }
    if let Some(worktrees) = header.worktrees {
        settings.worktrees = worktrees;
    }

    if let Some(base) = header.base {
        if is_branch_name(base.get_ref()) {
            settings.base = Some(base.into_inner());
        } else {
            errors.push(
                source
                    .error(
                        base.span(),
                        format!("base = {:?} is not a branch name", shown(base.get_ref())),
                    )
                    .at_field("base")
                    .with_hint(Some(
                        "name a branch such as \"main\", or remove `base` to start from HEAD"
                            .into(),
                    )),
            );
        }
    }
    (name, PathBuf::from(repo), settings, origin)
}

/// The keys about what is done around the sessions: `setup` and `copy` for each new task
/// worktree, `check` and `on_check_failure` after each merge.
fn workflow(
    source: Source<'_>,
    header: &RawHeader,
    settings: &mut PlanSettings,
    errors: &mut Vec<PlanError>,
) {
    let without_worktrees = header.worktrees == Some(false);
    let spans = header.setup.iter().chain(&header.copy).map(Spanned::span);
    let first = spans.clone().next();
    if let (true, Some(span)) = (without_worktrees, first) {
        errors.push(
            source
                .error(
                    span,
                    "`setup` and `copy` prepare new worktrees, and this plan has `worktrees = false`",
                )
                .at_field(if header.setup.is_empty() { "copy" } else { "setup" })
                .with_hint(Some(
                    "remove them (the sessions share the checkout as it is), or `worktrees = false`"
                        .into(),
                )),
        );
    }
    for command in header
        .setup
        .iter()
        .filter(|c| c.get_ref().trim().is_empty())
    {
        errors.push(
            source
                .error(command.span(), "a `setup` command is empty")
                .at_field("setup")
                .with_hint(Some("write a shell command, e.g. \"npm ci\"".into())),
        );
    }
    for path in header.copy.iter().filter(|p| !is_repo_path(p.get_ref())) {
        let message = format!(
            "copy {:?} is not a path inside the repository",
            shown(path.get_ref())
        );
        errors.push(
            source
                .error(path.span(), message)
                .at_field("copy")
                .with_hint(Some(
                    "write it relative to the repository root, e.g. \".env\"".into(),
                )),
        );
    }
    settings.setup = header.setup.iter().map(|c| c.get_ref().clone()).collect();
    settings.copy = header.copy.iter().map(|p| p.get_ref().clone()).collect();
    settings.check = check_command(source, header.check.as_ref(), None, errors);
    if let (true, Some(check)) = (without_worktrees, &header.check) {
        errors.push(without_integration(source, check.span(), None));
    }
    if let Some(policy) = &header.on_check_failure {
        let words = CheckFailurePolicy::ALL.map(CheckFailurePolicy::text);
        match CheckFailurePolicy::from_text(policy.get_ref()) {
            Some(policy) => settings.on_check_failure = policy,
            None => errors.push(not_one_of(
                source,
                policy,
                "on_check_failure",
                "a check failure policy",
                &words,
            )),
        }
    }
}

/// A `check` in a plan without worktrees, which has no integration branch to gate.
pub(super) fn without_integration(
    source: Source<'_>,
    span: std::ops::Range<usize>,
    task: Option<&str>,
) -> PlanError {
    source
        .error(
            span,
            "`check` gates merges into the integration branch, and this plan has `worktrees = false`",
        )
        .in_task(task)
        .at_field("check")
        .with_hint(Some(
            "remove `check` (run it yourself in the checkout), or `worktrees = false`".into(),
        ))
}

/// A `check` command (the plan's, or task `task`'s): a non-empty shell command.
fn check_command(
    source: Source<'_>,
    check: Option<&Spanned<String>>,
    task: Option<&str>,
    errors: &mut Vec<PlanError>,
) -> Option<String> {
    let check = check?;
    if check.get_ref().trim().is_empty() {
        errors.push(
            source
                .error(check.span(), "`check` is empty")
                .in_task(task)
                .at_field("check")
                .with_hint(Some(
                    "write the command that tests the merged work, e.g. \"cargo test\", or remove `check`".into(),
                )),
        );
        return None;
    }
    Some(check.get_ref().clone())
}

/// `key = "value"` where the value is none of `words`: said with the closest word or the list.
fn not_one_of(
    source: Source<'_>,
    value: &Spanned<String>,
    key: &str,
    what: &str,
    words: &[&str],
) -> PlanError {
    let hint = did_you_mean(value.get_ref(), words.iter().copied()).unwrap_or_else(|| {
        let quoted: Vec<String> = words.iter().map(|word| format!("{word:?}")).collect();
        match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("use {} or {last}", rest.join(", ")),
            _ => format!("use {}", quoted.join("")),
        }
    });
    source
        .error(
            value.span(),
            format!("{key} = {:?} is not {what}", shown(value.get_ref())),
        )
        .at_field(key)
        .with_hint(Some(hint))
}

/// A loose check of git's ref name rules: enough to catch typos and pasted commands.
fn is_branch_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.contains("..")
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
}

/// The longest task id: it names a directory and a branch component.
const TASK_ID_MAX: usize = 64;

/// What makes `id` unusable as a task id, which names the task's worktree directory and its
/// branch `ocio/<plan>/<id>`: `[A-Za-z0-9._-]`, at most [`TASK_ID_MAX`] of them, not starting
/// with `.` or `-` (a hidden file, an option), without `..`, not ending in `.` or `.lock` (git
/// refuses those in ref names).
fn task_id_problem(id: &str) -> Option<String> {
    let quoted = format!("{:?}", shown(id));
    if id.len() > TASK_ID_MAX {
        Some(format!(
            "id {quoted} is longer than {TASK_ID_MAX} characters"
        ))
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some(format!(
            "id {quoted} has characters other than A-Z a-z 0-9 . _ -"
        ))
    } else if id.starts_with(['.', '-']) {
        Some(format!("id {quoted} starts with {:?}", &id[..1]))
    } else if id.contains("..") {
        Some(format!("id {quoted} has \"..\" in it"))
    } else if id.ends_with('.') || id.ends_with(".lock") {
        Some(format!(
            "id {quoted} ends with \".\" or \".lock\", which git refuses in branch names"
        ))
    } else {
        None
    }
}

const ID_HINT: &str = "task ids name branches and directories: use letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. \"api-design\"";

/// One task with the rules for its own values applied. Broken values are reported and replaced
/// by defaults so that the links between tasks can still be checked.
pub(super) fn task(source: Source<'_>, entry: &RawTaskAt, errors: &mut Vec<PlanError>) -> TaskSpec {
    let raw = &entry.task;
    let id = raw.id.as_ref().map_or("", |id| id.get_ref().as_str());
    let label = (!id.is_empty()).then_some(id);
    let error = |span: std::ops::Range<usize>, field: &str, message: String, hint: Option<&str>| {
        source
            .error(span, message)
            .in_task(label)
            .at_field(field)
            .with_hint(hint.map(str::to_string))
    };
    let mut found = Vec::new();
    match &raw.id {
        None if raw.unreadable.contains("id") => {}
        None => found.push(error(
            entry.start..entry.start,
            "id",
            format!("tasks[{}] has no `id`", entry.index),
            Some("add e.g. `id = \"design\"`; other tasks name it in `needs`"),
        )),
        Some(id) if id.get_ref().is_empty() => found.push(error(
            id.span(),
            "id",
            format!("tasks[{}] has an empty `id`", entry.index),
            Some(ID_HINT),
        )),
        Some(id) => {
            if let Some(message) = task_id_problem(id.get_ref()) {
                found.push(error(id.span(), "id", message, Some(ID_HINT)));
            }
        }
    }
    if let Some(title) = raw.title.as_ref().filter(|t| t.get_ref().trim().is_empty()) {
        found.push(error(
            title.span(),
            "title",
            "`title` is empty".into(),
            Some("remove it to use the id as the title"),
        ));
    }
    match &raw.prompt {
        None if raw.unreadable.contains("prompt") => {}
        None => found.push(error(
            entry.start..entry.start,
            "prompt",
            "has no `prompt`".into(),
            Some("add `prompt = \"...\"`: what the session is asked to do"),
        )),
        Some(prompt) if prompt.get_ref().trim().is_empty() => found.push(error(
            prompt.span(),
            "prompt",
            "`prompt` is empty".into(),
            Some("say what the session is asked to do"),
        )),
        Some(_) => {}
    }
    let timeout = raw.timeout.as_ref().and_then(|timeout| {
        match timeout.get_ref().parse::<SignedDuration>() {
            Ok(duration) if duration.is_positive() => Some(duration),
            Ok(_) => {
                let message = format!(
                    "timeout {:?} must be longer than zero",
                    shown(timeout.get_ref())
                );
                found.push(error(
                    timeout.span(),
                    "timeout",
                    message,
                    Some("e.g. \"20m\""),
                ));
                None
            }
            Err(_) => {
                let message = format!("timeout {:?} is not a duration", shown(timeout.get_ref()));
                let hint = Some("write e.g. \"90s\", \"20m\" or \"1h 30m\"");
                found.push(error(timeout.span(), "timeout", message, hint));
                None
            }
        }
    });
    for capability in &raw.capabilities {
        let word = capability.get_ref();
        if word.is_empty() || word.chars().any(char::is_whitespace) {
            let message = format!(
                "capability {:?} must be a non-empty word without spaces",
                shown(word)
            );
            found.push(error(
                capability.span(),
                "capabilities",
                message,
                Some("e.g. \"rust\""),
            ));
        }
    }
    // A lock is held on a path in the repository (or a `repo:`/`merge:` name, which is one
    // too as far as paths go): the same rule as `files`.
    for (field, values, what) in [("locks", &raw.locks, "lock"), ("files", &raw.files, "file")] {
        for value in values.iter().filter(|value| !is_repo_path(value.get_ref())) {
            let message = format!(
                "{what} {:?} is not a path inside the repository",
                shown(value.get_ref())
            );
            let hint = Some("write it relative to the repository root, e.g. \"src/api/users.rs\"");
            found.push(error(value.span(), field, message, hint));
        }
    }
    let agent =
        raw.agent
            .as_ref()
            .and_then(|agent| match AgentName::new(agent.get_ref().as_str()) {
                Ok(name) => Some(name),
                Err(err) => {
                    found.push(error(agent.span(), "agent", err.to_string(), None));
                    None
                }
            });
    errors.extend(found);
    let check = check_command(source, raw.check.as_ref(), label, errors);
    let strings = |values: &[Spanned<String>]| -> BTreeSet<String> {
        values.iter().map(|value| value.get_ref().clone()).collect()
    };
    let at = source.line_column(entry.start);
    TaskSpec {
        id: id.to_string(),
        title: raw
            .title
            .as_ref()
            .map_or_else(|| id.to_string(), |title| title.get_ref().clone()),
        prompt: raw
            .prompt
            .as_ref()
            .map(|prompt| prompt.get_ref().clone())
            .unwrap_or_default(),
        capabilities: strings(&raw.capabilities),
        needs: raw
            .needs
            .iter()
            .map(|need| need.get_ref().clone())
            .collect(),
        timeout,
        retries: raw.retries.unwrap_or(0),
        priority: raw.priority.unwrap_or(0),
        locks: strings(&raw.locks),
        files: strings(&raw.files),
        agent,
        check,
        budget: raw.budget,
        origin: TaskOrigin {
            at,
            capabilities: raw
                .capabilities
                .iter()
                .map(|c| (c.get_ref().clone(), source.line_column(c.span().start)))
                .collect(),
            agent: raw
                .agent
                .as_ref()
                .map(|agent| source.line_column(agent.span().start)),
        },
    }
}

/// A relative path that stays inside the directory it is relative to.
fn is_repo_path(path: &str) -> bool {
    !path.trim().is_empty()
        && Path::new(path)
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
}
