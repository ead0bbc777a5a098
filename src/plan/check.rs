//! The rules for single values of a plan file: the header (name, repo, conflict policy, base
//! branch) and each task on its own (id, prompt, timeout, capabilities, locks, files, agent).
//! Rules that relate tasks to each other are in `links`.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use jiff::SignedDuration;
use toml::Spanned;

use super::error::{PlanError, Source, did_you_mean};
use super::raw::{RawHeader, RawTaskAt};
use super::{TaskOrigin, TaskSpec};
use crate::domain::AgentName;
use crate::domain::task::{CleanupPolicy, ConflictPolicy, PlanSettings};

/// The header with its rules applied: name, repo as written, settings.
pub(super) fn header(
    source: Source<'_>,
    header: RawHeader,
    errors: &mut Vec<PlanError>,
) -> (String, PathBuf, PlanSettings) {
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
    let mut settings = PlanSettings::default();
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
                        format!("base = {:?} is not a branch name", base.get_ref()),
                    )
                    .at_field("base")
                    .with_hint(Some(
                        "name a branch such as \"main\", or remove `base` to start from HEAD"
                            .into(),
                    )),
            );
        }
    }
    (name, PathBuf::from(repo), settings)
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
            format!("{key} = {:?} is not {what}", value.get_ref()),
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

/// Whether a task id is usable: `[A-Za-z0-9._-]+`.
fn is_task_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

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
        Some(id) if !is_task_id(id.get_ref()) => found.push(error(
            id.span(),
            "id",
            if id.get_ref().is_empty() {
                format!("tasks[{}] has an empty `id`", entry.index)
            } else {
                format!(
                    "id {:?} has characters other than A-Z a-z 0-9 . _ -",
                    id.get_ref()
                )
            },
            Some("use letters, digits, '.', '_' and '-', e.g. \"api-design\""),
        )),
        Some(_) => {}
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
                let message = format!("timeout {:?} must be longer than zero", timeout.get_ref());
                found.push(error(
                    timeout.span(),
                    "timeout",
                    message,
                    Some("e.g. \"20m\""),
                ));
                None
            }
            Err(_) => {
                let message = format!("timeout {:?} is not a duration", timeout.get_ref());
                let hint = Some("write e.g. \"90s\", \"20m\" or \"1h 30m\"");
                found.push(error(timeout.span(), "timeout", message, hint));
                None
            }
        }
    });
    for capability in &raw.capabilities {
        let word = capability.get_ref();
        if word.is_empty() || word.chars().any(char::is_whitespace) {
            let message = format!("capability {word:?} must be a non-empty word without spaces");
            found.push(error(
                capability.span(),
                "capabilities",
                message,
                Some("e.g. \"rust\""),
            ));
        }
    }
    for lock in raw
        .locks
        .iter()
        .filter(|lock| lock.get_ref().trim().is_empty())
    {
        let hint = Some("name the resource, e.g. \"src/api/\" or \"database\"");
        found.push(error(
            lock.span(),
            "locks",
            "a lock name is empty".into(),
            hint,
        ));
    }
    for file in raw
        .files
        .iter()
        .filter(|file| !is_repo_path(file.get_ref()))
    {
        let message = format!(
            "file {:?} is not a path inside the repository",
            file.get_ref()
        );
        let hint = Some("write it relative to the repository root, e.g. \"src/api/users.rs\"");
        found.push(error(file.span(), "files", message, hint));
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
