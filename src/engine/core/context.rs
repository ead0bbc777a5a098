//! Shared context between a plan's tasks as the engine uses it: what a finished task leaves
//! (its record in the store), the prompt a task is given (its own, rendered; after a merge
//! conflict, the retry prompt; then the context from its upstream tasks and, when tasks need
//! it, how to publish values), and the conflicts front ends are shown.

use std::collections::HashMap;

use super::Core;
use super::workspace::Work;
use crate::domain::{MergeState, TaskContext};
use crate::domain::{PlanId, Task, TaskGraph, TaskId, TaskStatus};
use crate::engine::EngineError;
use crate::engine::view::{ConflictState, ConflictView};
use crate::plan::context::{PUBLISH_INSTRUCTIONS, UpstreamContext, context_section};
use crate::plan::template;
use crate::workspace::conflict::{ConflictRetry, retry_prompt};

/// The task's own prompt with upstream answers filled in (an upstream task that finished
/// without text leaves its reference empty rather than holding this one up).
pub(super) fn render(graph: &TaskGraph, task: &Task) -> String {
    template::render(&task.prompt, |k| {
        Some(graph.get(k).and_then(|t| t.result.as_deref()).unwrap_or(""))
    })
    .unwrap_or_else(|_| task.prompt.clone())
}

/// The whole prompt of `task`'s next attempt.
pub(super) fn prompt(
    graph: &TaskGraph,
    task: &Task,
    contexts: &HashMap<TaskId, TaskContext>,
    budget: usize,
) -> String {
    let rendered = render(graph, task);
    let mut prompt = match contexts.get(&task.id).map(|c| &c.merge) {
        Some(MergeState::Conflict { files, .. }) => {
            // Done tasks whose changes touched the files that conflicted.
            let mut meanwhile: Vec<String> = graph
                .tasks()
                .filter(|t| t.status == TaskStatus::Done && t.id != task.id)
                .filter(|t| {
                    contexts.get(&t.id).is_some_and(|c| {
                        c.files_changed
                            .iter()
                            .any(|f| files.binary_search(f).is_ok())
                    })
                })
                .map(|t| t.key.clone())
                .collect();
            meanwhile.sort();
            retry_prompt(&ConflictRetry {
                prompt: &rendered,
                task: &task.key,
                files,
                merged_meanwhile: &meanwhile,
            })
        }
        Some(MergeState::CheckFailed {
            command, output, ..
        }) => format!(
            "{rendered}\n\n## Your previous attempt failed the plan's check\n\nAfter your previous attempt's work was merged, `{command}` failed, so the merge was undone and you start again from the current integration branch. Its output ended:\n\n```\n{output}\n```\n\nDo the task again so that `{command}` passes."
        ),
        _ => rendered,
    };
    if let Some(steering) = steering_section(task) {
        prompt.push_str("\n\n");
        prompt.push_str(&steering);
    }
    let upstream: Vec<UpstreamContext> = task
        .needs
        .iter()
        .filter_map(|key| graph.get(key))
        .filter_map(|t| contexts.get(&t.id))
        .map(|c| UpstreamContext {
            task: c.key.clone(),
            summary: c.summary.clone().unwrap_or_default(),
            files_changed: c.files_changed.clone(),
            values: c.values.clone(),
        })
        .collect();
    if !upstream.is_empty() {
        prompt.push_str("\n\n");
        prompt.push_str(&context_section(&upstream, budget));
    }
    if graph.dependents(&task.key).is_ok_and(|d| !d.is_empty()) {
        prompt.push_str("\n\n");
        prompt.push_str(PUBLISH_INSTRUCTIONS);
    }
    prompt
}

/// The operator's words to the task's earlier attempts, for an attempt that starts afresh:
/// the newest few, each clipped.
fn steering_section(task: &Task) -> Option<String> {
    const KEPT: usize = 10;
    const CLIP: usize = 2000;
    if task.steering.is_empty() {
        return None;
    }
    let mut section = String::from(
        "## What the operator told an earlier attempt\n\nWhile an earlier attempt at this task ran, the operator told it (oldest first):\n",
    );
    let from = task.steering.len().saturating_sub(KEPT);
    for text in &task.steering[from..] {
        section.push_str("\n- ");
        section.push_str(&crate::text::clip(text, CLIP).replace('\n', "\n  "));
    }
    section.push_str("\n\nThis attempt starts afresh: follow it as that attempt was asked to.");
    Some(section)
}

/// The record of a task whose session completed.
pub(super) fn record(
    task: &Task,
    result: Option<&str>,
    work: Work,
    merge: MergeState,
    previous: Option<&TaskContext>,
) -> TaskContext {
    TaskContext {
        plan: task.plan,
        task: task.id,
        key: task.key.clone(),
        summary: result.map(str::to_string),
        values: result
            .map(crate::plan::context::parse_published)
            .unwrap_or_default(),
        files_changed: work.files,
        commit: work.commit,
        merge,
        conflict_reruns: previous.map_or(0, |p| p.conflict_reruns),
        check_reruns: previous.map_or(0, |p| p.check_reruns),
    }
}

impl Core {
    /// What a plan's finished tasks left, in the plan's task order.
    pub(super) fn context_of(&self, plan: PlanId) -> Result<Vec<TaskContext>, EngineError> {
        let state = self
            .plans
            .get(&plan)
            .ok_or(EngineError::UnknownPlan(plan))?;
        Ok(state
            .graph
            .topological_order()
            .into_iter()
            .filter_map(|t| self.contexts.get(&t.id).cloned())
            .collect())
    }

    /// Conflicts being resolved or waiting for the operator.
    pub(super) fn conflicts(&self) -> Vec<ConflictView> {
        let mut conflicts: Vec<ConflictView> = self
            .contexts
            .values()
            .filter_map(|c| {
                let status = self.plans.get(&c.plan)?.graph.get(&c.key)?.status;
                let policy = self.plans.get(&c.plan)?.work.work.settings.conflicts;
                let (files, policy, state) = match &c.merge {
                    MergeState::Resolving { files } if status == TaskStatus::Running => {
                        (files, policy, ConflictState::Resolving)
                    }
                    MergeState::Conflict { files, policy } if status == TaskStatus::Failed => {
                        (files, *policy, ConflictState::Parked)
                    }
                    _ => return None,
                };
                Some(ConflictView {
                    plan: c.plan,
                    task: c.task,
                    key: c.key.clone(),
                    files: files.clone(),
                    policy,
                    state,
                })
            })
            .collect();
        conflicts.sort_by_key(|c| c.task);
        conflicts
    }
}
