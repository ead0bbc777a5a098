//! Reading plan text into spanned raw values: TOML syntax, unknown keys and value types. Each key
//! is read on its own, so a value of the wrong type hides nothing else; rules about the values
//! come later, in `check` and `links`.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::error::{PlanError, PlanErrors, Source, did_you_mean};
use crate::domain::Budget;
use crate::text::{shown, shown_message};

/// The keys of the plan header.
pub(super) const PLAN_KEYS: &[&str] = &[
    "name",
    "repo",
    "conflicts",
    "worktrees",
    "base",
    "cleanup",
    "setup",
    "copy",
    "check",
    "on_check_failure",
    "budget",
    "tasks",
];
/// The keys of a `[[tasks]]` entry.
pub(super) const TASK_KEYS: &[&str] = &[
    "id",
    "title",
    "prompt",
    "capabilities",
    "needs",
    "timeout",
    "retries",
    "priority",
    "locks",
    "files",
    "agent",
    "check",
    "budget",
];

/// The plan header as written. Everything is optional here so that a missing key is reported
/// alongside every other problem.
#[derive(Debug, Default)]
pub(super) struct RawHeader {
    pub(super) name: Option<Spanned<String>>,
    pub(super) repo: Option<Spanned<String>>,
    pub(super) conflicts: Option<Spanned<String>>,
    pub(super) worktrees: Option<bool>,
    pub(super) base: Option<Spanned<String>>,
    pub(super) cleanup: Option<Spanned<String>>,
    pub(super) setup: Vec<Spanned<String>>,
    pub(super) copy: Vec<Spanned<String>>,
    pub(super) check: Option<Spanned<String>>,
    pub(super) on_check_failure: Option<Spanned<String>>,
    pub(super) budget: Option<Budget>,
    /// Keys that are there but could not be read (already reported).
    pub(super) unreadable: BTreeSet<&'static str>,
}

/// One `[[tasks]]` entry as written.
#[derive(Debug, Default)]
pub(super) struct RawTask {
    pub(super) id: Option<Spanned<String>>,
    pub(super) title: Option<Spanned<String>>,
    pub(super) prompt: Option<Spanned<String>>,
    pub(super) capabilities: Vec<Spanned<String>>,
    pub(super) needs: Vec<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) retries: Option<u32>,
    pub(super) priority: Option<i32>,
    pub(super) locks: Vec<Spanned<String>>,
    pub(super) files: Vec<Spanned<String>>,
    pub(super) agent: Option<Spanned<String>>,
    pub(super) check: Option<Spanned<String>>,
    pub(super) budget: Option<Budget>,
    /// Keys that are there but could not be read (already reported).
    pub(super) unreadable: BTreeSet<&'static str>,
}

/// A task entry, with where it starts.
pub(super) struct RawTaskAt {
    /// Position in `tasks` (0-based), for errors about a task with no id.
    pub(super) index: usize,
    /// Where the entry starts: its `[[tasks]]` header, or its inline table.
    pub(super) start: usize,
    pub(super) task: RawTask,
}

/// Everything that could be read, and what could not.
pub(super) struct RawPlan {
    pub(super) header: RawHeader,
    pub(super) tasks: Vec<RawTaskAt>,
    /// Whether `tasks` is there but is not a list of tables (already reported).
    pub(super) tasks_unreadable: bool,
    /// Where the `tasks` value is, when there is one.
    pub(super) tasks_span: Option<Range<usize>>,
    pub(super) errors: Vec<PlanError>,
}

/// Reads the text. `Err` only for a TOML syntax error, which leaves nothing to check.
pub(super) fn read(source: Source<'_>) -> Result<RawPlan, PlanErrors> {
    let root = DeTable::parse(source.text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        let message = format!("TOML syntax: {}", err.message().trim_end());
        PlanErrors::one(source.error(span, message))
    })?;
    let mut errors = Vec::new();
    let mut root = Keys {
        source,
        table: root.into_inner(),
        task: None,
        errors: &mut errors,
        unreadable: BTreeSet::new(),
    };
    let tasks = root.table.remove("tasks");
    root.drop_unknown();
    let mut header = RawHeader {
        name: root.take("name"),
        repo: root.take("repo"),
        conflicts: root.take("conflicts"),
        worktrees: root.take("worktrees"),
        base: root.take("base"),
        cleanup: root.take("cleanup"),
        setup: root.take("setup").unwrap_or_default(),
        copy: root.take("copy").unwrap_or_default(),
        check: root.take("check"),
        on_check_failure: root.take("on_check_failure"),
        budget: root.take("budget"),
        unreadable: BTreeSet::new(),
    };
    header.unreadable = root.unreadable;
    let mut plan = RawPlan {
        header,
        tasks: Vec::new(),
        tasks_unreadable: false,
        tasks_span: tasks.as_ref().map(Spanned::span),
        errors,
    };
    let Some(tasks) = tasks else {
        return Ok(plan);
    };
    let span = tasks.span();
    match tasks.into_inner() {
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                read_task(source, index, item.clone(), &mut plan);
            }
        }
        _ => {
            plan.tasks_unreadable = true;
            plan.errors.push(
                source
                    .error(span, "`tasks` must be a list of tables")
                    .at_field("tasks")
                    .with_hint(Some("start each task with [[tasks]] (two brackets)".into())),
            );
        }
    }
    Ok(plan)
}

fn read_task(source: Source<'_>, index: usize, item: Spanned<DeValue<'_>>, plan: &mut RawPlan) {
    let span = item.span();
    let DeValue::Table(table) = item.into_inner() else {
        let message = format!("tasks[{index}] is not a table");
        plan.errors.push(
            source
                .error(span, message)
                .at_field("tasks")
                .with_hint(Some("start each task with [[tasks]]".into())),
        );
        return;
    };
    let id = table
        .get("id")
        .and_then(|id| id.get_ref().as_str())
        .map(str::to_string);
    let mut keys = Keys {
        source,
        table,
        task: Some((index, id.as_deref())),
        errors: &mut plan.errors,
        unreadable: BTreeSet::new(),
    };
    keys.drop_unknown();
    let mut task = RawTask {
        id: keys.take("id"),
        title: keys.take("title"),
        prompt: keys.take("prompt"),
        capabilities: keys.take("capabilities").unwrap_or_default(),
        needs: keys.take("needs").unwrap_or_default(),
        timeout: keys.take("timeout"),
        retries: keys.take("retries"),
        priority: keys.take("priority"),
        locks: keys.take("locks").unwrap_or_default(),
        files: keys.take("files").unwrap_or_default(),
        agent: keys.take("agent"),
        check: keys.take("check"),
        budget: keys.take("budget"),
        unreadable: BTreeSet::new(),
    };
    task.unreadable = keys.unreadable;
    plan.tasks.push(RawTaskAt {
        index,
        start: span.start,
        task,
    });
}

/// A table being read key by key; problems go to `errors`.
struct Keys<'t, 'e> {
    source: Source<'t>,
    table: DeTable<'t>,
    /// The index and id of the task entry; `None` for the header.
    task: Option<(usize, Option<&'e str>)>,
    errors: &'e mut Vec<PlanError>,
    unreadable: BTreeSet<&'static str>,
}

impl Keys<'_, '_> {
    /// The value of `key` as a `T`; `None` when it is missing or of the wrong type (reported).
    fn take<T: DeserializeOwned>(&mut self, key: &'static str) -> Option<T> {
        let value = self.table.remove(key)?;
        let span = value.span();
        T::deserialize(ValueDeserializer::from(value))
            .map_err(|err| {
                self.unreadable.insert(key);
                let span = err.span().unwrap_or(span);
                let error = self
                    .source
                    .error(
                        span,
                        format!("`{key}`: {}", shown_message(err.message().trim_end())),
                    )
                    .in_task(self.task.and_then(|(_, id)| id))
                    .at_field(key)
                    .with_hint(type_hint(key).map(str::to_string));
                self.errors.push(error);
            })
            .ok()
    }

    /// Reports and removes every key the format does not know.
    fn drop_unknown(&mut self) {
        let (known, other, other_place) = match self.task {
            Some(_) => (
                TASK_KEYS,
                PLAN_KEYS,
                "a plan key: move it above the first [[tasks]]",
            ),
            None => (
                PLAN_KEYS,
                TASK_KEYS,
                "a task key: put it under a [[tasks]] header",
            ),
        };
        let unknown: Vec<_> = self
            .table
            .keys()
            .filter(|key| !known.contains(&key.get_ref().as_ref()))
            .cloned()
            .collect();
        for key in unknown {
            let name: &str = key.get_ref();
            let path = match self.task {
                Some((index, _)) => format!("tasks[{index}].{name}"),
                None => name.to_string(),
            };
            let hint = if other.contains(&name) && name != "tasks" {
                Some(format!("`{name}` is {other_place}"))
            } else {
                did_you_mean(name, known.iter().copied())
                    .or_else(|| Some(format!("known keys: {}", known.join(", "))))
            };
            let error = self
                .source
                .error(key.span(), format!("unknown key `{}`", shown(&path)))
                .in_task(self.task.and_then(|(_, id)| id))
                .at_field(name)
                .with_hint(hint);
            self.errors.push(error);
            self.table.remove(name);
        }
    }
}

/// How to write a key's value, for a value of the wrong type.
fn type_hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "capabilities" => "write a list of words: capabilities = [\"code\", \"rust\"]",
        "needs" => "write a list of task ids: needs = [\"design\"]",
        "locks" => "write a list of names: locks = [\"src/api/\"]",
        "files" => "write a list of paths: files = [\"src/api/users.rs\"]",
        "timeout" => "write a duration in quotes: timeout = \"20m\"",
        "retries" => "write a whole number, 0 or more: retries = 1",
        "priority" => "write a whole number; higher runs first: priority = 5",
        "worktrees" => "write true or false",
        "budget" => {
            "write budget = { tokens = 2_000_000, cost = 5.0 } (either or both; cost in US dollars)"
        }
        _ => return None,
    })
}
