//! Plan files, the product's task-graph format: a TOML file naming a repository and the tasks to
//! run in it. Parsing reports every problem at once with file, line and column; a parsed file is
//! checked against the configured agents and turned into a domain `Plan` and its `TaskGraph`.
//! Pure apart from reading the file in [`PlanFile::load`]; nothing here queues work.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::domain::task::PlanSettings;
use crate::domain::{AgentName, GraphError, Plan, PlanId, Task, TaskGraph, TaskId};

mod check;
pub(crate) mod context;
pub(crate) mod draft;
mod error;
mod links;
pub mod planner;
pub(crate) mod prompt;
mod raw;
pub(crate) mod repo;
pub(crate) mod template;
pub(crate) mod templates;
mod validate;

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod safety_tests;
#[cfg(test)]
mod tests;

pub use error::{PlanError, PlanErrors};

/// A parsed plan file that breaks none of the rules that need no outside knowledge.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFile {
    /// Where the plan was read from; names the file in errors and anchors `repo`.
    pub(crate) path: PathBuf,
    pub name: String,
    /// As written: relative to the plan file's directory unless absolute.
    pub(crate) repo: PathBuf,
    pub(crate) settings: PlanSettings,
    /// In the order they are written.
    pub tasks: Vec<TaskSpec>,
    /// Where the header's checked-later values are written.
    origin: HeaderOrigin,
}

/// Lines and columns of the header values checked after parsing (on the file system, or by
/// git when the plan is submitted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct HeaderOrigin {
    repo: (usize, usize),
    base: Option<(usize, usize)>,
}

/// One `[[tasks]]` entry of a plan file.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    pub id: String,
    /// The id when the file gives none.
    pub(crate) title: String,
    /// May refer to upstream results: `{{tasks.<id>.summary}}` (see [`template`]).
    pub(crate) prompt: String,
    pub(crate) capabilities: BTreeSet<String>,
    /// Ids of the tasks this one depends on, as written.
    pub needs: Vec<String>,
    pub(crate) timeout: Option<SignedDuration>,
    pub(crate) retries: u32,
    pub(crate) priority: i32,
    pub(crate) locks: BTreeSet<String>,
    pub(crate) files: BTreeSet<String>,
    pub(crate) agent: Option<AgentName>,
    /// Run after this task's merge instead of the plan's `check`.
    pub(crate) check: Option<String>,
    /// The most its attempts may spend together.
    pub(crate) budget: Option<crate::domain::Budget>,
    /// Where the entry and its checked-later values are written.
    origin: TaskOrigin,
}

/// Lines and columns of what [`PlanFile::validate_against`] may report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct TaskOrigin {
    at: (usize, usize),
    capabilities: Vec<(String, (usize, usize))>,
    agent: Option<(usize, usize)>,
}

/// What a plan file becomes when it is submitted.
#[derive(Debug, Clone)]
pub(crate) struct BuiltPlan {
    pub(crate) plan: Plan,
    /// Every task pending, with a fresh id.
    pub(crate) graph: TaskGraph,
}

impl PlanFile {
    /// Reads and parses the plan file at `path`, and checks its `repo` on the file system
    /// (`check_repo`), every problem reported at once.
    pub fn load(path: &Path) -> Result<Self, PlanErrors> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            PlanErrors::one(
                PlanError::new(path, (0, 0), format!("cannot read the plan file: {err}"))
                    .with_hint(Some(
                        "check the path and that the file is readable text".into(),
                    )),
            )
        })?;
        Self::parse_with(&text, path, true)
    }

    /// Parses plan text: TOML syntax, keys and types, then every rule that needs no outside
    /// knowledge. `path` names the file in errors and anchors the relative `repo`, which is
    /// not looked at here (see [`load`](Self::load) and `check_repo`).
    pub fn parse(text: &str, path: &Path) -> Result<Self, PlanErrors> {
        Self::parse_with(text, path, false)
    }

    /// [`parse`](Self::parse), and with `on_disk` the `repo` check too.
    fn parse_with(text: &str, path: &Path, on_disk: bool) -> Result<Self, PlanErrors> {
        let line_starts = error::line_starts(text);
        let source = error::Source {
            text,
            path,
            line_starts: &line_starts,
        };
        let raw = raw::read(source)?;
        let mut errors = raw.errors;
        let (name, repo, settings, origin) = check::header(source, raw.header, &mut errors);
        if on_disk && !repo.as_os_str().is_empty() {
            errors.extend(repo::check(path, origin.repo, &resolve_repo(path, &repo)));
        }
        if raw.tasks.is_empty() && !raw.tasks_unreadable {
            let span = raw.tasks_span.unwrap_or(0..0);
            errors.push(
                source
                    .error(span, "the plan has no tasks")
                    .at_field("tasks")
                    .with_hint(Some(
                        "add one: [[tasks]] with `id = \"...\"` and `prompt = \"...\"`".into(),
                    )),
            );
        }
        let tasks = raw
            .tasks
            .iter()
            .map(|entry| check::task(source, entry, &mut errors))
            .collect();
        if !settings.worktrees {
            for entry in &raw.tasks {
                if let Some(check) = &entry.task.check {
                    let id = entry.task.id.as_ref().map(|id| id.get_ref().as_str());
                    errors.push(check::without_integration(source, check.span(), id));
                }
            }
        }
        links::check(source, &raw.tasks, &mut errors);
        match PlanErrors::from_vec(errors) {
            Some(errors) => Err(errors),
            None => Ok(Self {
                path: path.to_path_buf(),
                name,
                repo,
                settings,
                tasks,
                origin,
            }),
        }
    }

    /// Checks that `repo` is a directory that is there, can be read and is a project (not the
    /// file system's root or a home directory): on load, and again before the plan is queued,
    /// since the directory may have gone in between.
    pub(crate) fn check_repo(&self) -> Result<(), PlanErrors> {
        repo::check(&self.path, self.origin.repo, &self.repo_path())
            .map_or(Ok(()), |error| Err(PlanErrors::one(error)))
    }

    /// A `base` the repository at `repo` turned out not to have, as a plan error at `base`.
    pub(crate) fn unknown_base(&self, repo: &Path) -> PlanErrors {
        let base = self.settings.base.as_deref().unwrap_or("");
        let message = format!(
            "base {:?} is not a branch, tag or commit in repository {}",
            crate::text::shown(base),
            repo.display()
        );
        PlanErrors::one(
            PlanError::new(&self.path, self.origin.base.unwrap_or((0, 0)), message)
                .at_field("base")
                .with_hint(Some(
                    "set `base` to an existing branch (see `git branch`), or remove it to start from HEAD".into(),
                )),
        )
    }

    /// The repository, resolved against the plan file's directory and tidied (`.` and `..`
    /// removed where that can be done without the file system).
    pub fn repo_path(&self) -> PathBuf {
        resolve_repo(&self.path, &self.repo)
    }

    /// Turns the plan into a domain plan and its task graph: every task pending with a fresh
    /// id, created `now`. Fails only if the fields were edited into an inconsistent graph
    /// after parsing.
    pub(crate) fn into_plan(
        self,
        plan_id: PlanId,
        now: Timestamp,
    ) -> Result<BuiltPlan, GraphError> {
        let repo = self.repo_path();
        let tasks: Vec<Task> = self
            .tasks
            .into_iter()
            .map(|spec| {
                let mut task = Task::new(TaskId::generate(), plan_id, spec.id, spec.prompt, now);
                task.title = spec.title;
                task.capabilities = spec.capabilities;
                task.needs = spec.needs;
                task.timeout = spec.timeout;
                task.retries = spec.retries;
                task.priority = spec.priority;
                task.locks = spec.locks;
                task.files = spec.files;
                task.agent = spec.agent;
                task.check = spec.check;
                task.budget = spec.budget;
                task
            })
            .collect();
        let plan = Plan {
            id: plan_id,
            name: self.name,
            repo,
            tasks: tasks.iter().map(|task| task.id).collect(),
            created_at: now,
        };
        let graph = TaskGraph::from_tasks(tasks)?;
        Ok(BuiltPlan { plan, graph })
    }
}

/// `repo` as written, resolved against the directory of the plan file at `plan`, tidied.
fn resolve_repo(plan: &Path, repo: &Path) -> PathBuf {
    let directory = plan.parent().unwrap_or(Path::new(""));
    tidy(&directory.join(repo))
}

/// `a/./b/../c` -> `a/c`; `..` that would climb out of a relative path is kept.
fn tidy(path: &Path) -> PathBuf {
    let mut tidy = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                let last = tidy.components().next_back();
                if matches!(last, Some(Component::Normal(_))) {
                    tidy.pop();
                } else if !matches!(last, Some(Component::RootDir | Component::Prefix(_))) {
                    tidy.push("..");
                }
            }
            other => tidy.push(other),
        }
    }
    if tidy.as_os_str().is_empty() {
        tidy.push(".");
    }
    tidy
}
