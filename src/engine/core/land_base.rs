//! A landing whose moved base conflicts with the plan's work, settled through the plan's
//! conflict strategy. With `conflicts = "resolver"` the merge of the base is left in progress in
//! the integration worktree and a resolver session works there, in the name of the merged task
//! whose work conflicts (so front ends show it under that task); when it completes the merge is
//! concluded, the plan's check runs with the base in, and the landing goes on; otherwise the
//! merge is undone and the landing refused. The `land` request is answered at the end of all
//! of it. (`retry` and `manual` refuse at once, naming the files and the command to settle
//! them by hand: a task cannot run again against a base it does not know.)
//!
//! Not durable on purpose: the request that asked for it is not either. If the engine stops
//! meanwhile, the restart abandons the session (its task is done, nothing follows it) and the
//! next `ocio land` aborts the merge it left (known by its message) and starts again. Nothing
//! reaches the base branch before the check passed.

use std::collections::HashMap;

use jiff::Timestamp;

use super::land::{BaseConflict, LandDone, LandEnd, undo_base_merge};
use super::merge::{Aside, GitDone, start_aside};
use super::workspace::Place;
use super::{Core, Role, Running, Step, Typed, context};
use crate::domain::{MergeState, PlanId, SessionKind, SessionStatus};
use crate::engine::runner::{Job, Reporter};
use crate::engine::{EngineError, Landing};
use crate::workspace::conflict::{ResolverBrief, resolver_prompt};
use crate::workspace::names;

/// Landings waiting for a resolver session to settle their base's conflicts, by plan.
#[derive(Default)]
pub(super) struct BaseResolves {
    waiting: HashMap<PlanId, Waiting>,
    /// Resolver sessions that ended, acted on once their end is durable: plan and why it did
    /// not complete.
    ended: Vec<(PlanId, Option<String>)>,
}

/// A landing waiting for its resolver.
struct Waiting {
    conflict: BaseConflict,
    answer: Typed<Landing>,
    /// The task the resolver works in the name of.
    key: String,
    /// Whether its session started.
    started: bool,
}

impl Core {
    /// The landing of `plan` stopped on conflicts with its moved base: a resolver session is
    /// queued, or, when no merged task's work can be named for it, the merge is undone and the
    /// landing refused.
    pub(super) async fn base_conflicted(
        &mut self,
        plan: PlanId,
        conflict: BaseConflict,
        answer: Typed<Landing>,
    ) -> Result<(), EngineError> {
        if self.paused {
            // No session starts while paused: the landing would wait unseen.
            let why = format!(
                "{} conflicts with the plan's work in {}, and a resolver session cannot start while dispatching is paused",
                conflict.base(),
                conflict.files.join(", ")
            );
            self.give_up(
                plan,
                conflict,
                answer,
                format!("{why}\nhint: resume (`p` in the room) and land again"),
            );
            return Ok(());
        }
        let Some(key) = self.task_behind(plan, &conflict.files) else {
            let why = format!(
                "{} cannot be brought in: both changed {}, and no merged task's work is there for a resolver session to keep",
                conflict.base(),
                conflict.files.join(", ")
            );
            self.give_up(plan, conflict, answer, why);
            return Ok(());
        };
        tracing::info!(plan = %plan, task = %key, files = ?conflict.files, "the moved base conflicts: a resolver session settles it before landing");
        self.base_resolves.waiting.insert(
            plan,
            Waiting {
                conflict,
                answer,
                key,
                started: false,
            },
        );
        Ok(())
    }

    /// The merged task of `plan` whose work the conflicted `files` hold, the last in the
    /// plan's order that changed one of them (else the last merged task).
    fn task_behind(&self, plan: PlanId, files: &[String]) -> Option<String> {
        let state = self.plans.get(&plan)?;
        let merged: Vec<_> = state
            .graph
            .topological_order()
            .into_iter()
            .filter_map(|task| {
                let context = self.contexts.get(&task.id)?;
                matches!(context.merge, MergeState::Merged { .. }).then_some((task, context))
            })
            .collect();
        let touched = merged
            .iter()
            .rev()
            .find(|(_, context)| context.files_changed.iter().any(|f| files.contains(f)));
        touched.or(merged.last()).map(|(task, _)| task.key.clone())
    }

    /// Start the resolver sessions of landings waiting for one, within the caps, into `step`.
    pub(super) fn start_base_resolvers(
        &mut self,
        step: &mut Step,
        starts: &mut Vec<(Job, Place, Running)>,
        cap: usize,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        // Landings whose plan or task is gone: refused, never left waiting.
        let mut lost = Vec::new();
        for (plan, waiting) in self.base_resolves.waiting.iter_mut() {
            if waiting.started {
                continue;
            }
            if self.running.len() + starts.len() >= cap {
                break;
            }
            let task = self.plans.get(plan).map(|s| (s, s.graph.get(&waiting.key)));
            let Some((state, Some(task))) = task else {
                lost.push(*plan);
                continue;
            };
            let Some(index) = self.fleet.pick(task, Default::default(), None) else {
                continue;
            };
            if !self.fleet.take(index) {
                continue;
            }
            waiting.started = true;
            let conflict = &waiting.conflict;
            let rendered = context::render(&state.graph, task);
            let plan_key = conflict.plan_key();
            let prompt = resolver_prompt(&ResolverBrief {
                plan: &state.plan.name,
                task: &task.key,
                branch: conflict.base(),
                integration_branch: &names::integration_branch(plan_key),
                files: &conflict.files,
                task_prompt: &rendered,
                task_summary: task.result.as_deref(),
                landing: true,
            });
            let aside = Aside {
                plan: *plan,
                task,
                kind: SessionKind::Resolve,
                title: format!("{}/land resolve {}", state.plan.name, conflict.base()),
                prompt,
                directory: conflict.workspace.integration_path(plan_key),
                role: Role::BaseResolver,
                agent: (index, self.fleet.agent(index).name.clone()),
                parent: None,
                report: Reporter {
                    tx: self.report_tx.clone(),
                },
                questions: self.options.questions.offers_questions(),
            };
            starts.push(start_aside(step, aside, now)?);
        }
        for plan in lost {
            if let Some(waiting) = self.base_resolves.waiting.remove(&plan) {
                let why = "its plan is no longer loaded for a resolver session".to_string();
                self.give_up(plan, waiting.conflict, waiting.answer, why);
            }
        }
        Ok(())
    }

    /// A landing's resolver session ended: the landing goes on or is refused once that is
    /// durable.
    pub(super) fn base_resolver_ended(&mut self, run: &Running, failure: Option<String>) {
        let failure = match failure {
            Some(_) if run.stopping == Some(SessionStatus::Cancelled) => {
                Some("the operator cancelled its resolver session".into())
            }
            failure => failure,
        };
        self.base_resolves.ended.push((run.plan, failure));
    }

    /// Go on with (or refuse) the landings whose resolver sessions ended (after their end is
    /// durable): the merge concluded, checked and landed off the loop.
    pub(super) fn finish_base_resolves(&mut self) {
        for (plan, failure) in std::mem::take(&mut self.base_resolves.ended) {
            let Some(waiting) = self.base_resolves.waiting.remove(&plan) else {
                continue;
            };
            if let Some(why) = failure {
                self.give_up(plan, waiting.conflict, waiting.answer, why);
                continue;
            }
            let done = self.git_tx.clone();
            self.tasks.spawn(async move {
                let Waiting {
                    conflict, answer, ..
                } = waiting;
                // A blocking thread of the runtime: the check is awaited there.
                let result = tokio::task::spawn_blocking(move || conflict.complete())
                    .await
                    .unwrap_or_else(|e| {
                        Err(EngineError::LandFailed(format!(
                            "its git work did not finish: {e}"
                        )))
                    })
                    .map(|landing| LandEnd::Landed(Box::new(landing)));
                let landed = LandDone {
                    plan,
                    result,
                    answer,
                };
                let _ = done.send(GitDone::Landed(Box::new(landed))).await;
            });
        }
    }

    /// The base's merge undone (off the loop) and the landing refused with `why`.
    fn give_up(
        &mut self,
        plan: PlanId,
        conflict: BaseConflict,
        answer: Typed<Landing>,
        why: String,
    ) {
        let done = self.git_tx.clone();
        self.tasks.spawn(async move {
            let refused = tokio::task::spawn_blocking(move || {
                let (ws, key) = (&conflict.workspace, conflict.plan_key());
                undo_base_merge(ws, key, conflict.base(), &conflict.before, &why)
            })
            .await
            .unwrap_or_else(|e| {
                EngineError::LandFailed(format!("its git work did not finish: {e}"))
            });
            let landed = LandDone {
                plan,
                result: Err(refused),
                answer,
            };
            let _ = done.send(GitDone::Landed(Box::new(landed))).await;
        });
    }
}
