//! Finished plans live in the store. The engine keeps loaded the plans with work to come and
//! the newest [`RECENT_PLANS`] that ended (the ones the snapshot lists); the store's open tasks
//! index tells them apart without reading finished plans' tasks. An older plan is read back
//! when the operator acts on one of its tasks, and let go again once its work is over;
//! questions about one (what its tasks left, an old session's diff) are answered from the store
//! without loading it. So is the control log's recent past, for front ends that start.

use jiff::Timestamp;

use super::Core;
use super::observe::RECENT_PLANS;
use crate::domain::{MergeState, TaskContext};
use crate::domain::{PlanId, TaskGraph, TaskId, TaskStatus};
use crate::engine::{EngineError, Logged, Noted};
use crate::store::StoreError;
use crate::store::query::{self, PlanRecord};

impl Core {
    /// Keep a stored plan loaded: its graph, what its tasks left and its workspace, opened
    /// again (git runs on a blocking thread, awaited here).
    pub(super) async fn load(
        &mut self,
        record: PlanRecord,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let PlanRecord {
            plan,
            tasks,
            work,
            contexts,
            landing,
        } = record;
        let graph = TaskGraph::from_tasks(tasks)?;
        let mut work = self.reattach(&plan, &graph, work).await;
        work.landing = landing;
        self.contexts
            .extend(contexts.into_iter().map(|c| (c.task, c)));
        self.plans.insert(plan, graph, work, now);
        Ok(())
    }

    /// The plan, key and status of a task, its plan read from the store and loaded when it is
    /// not loaded (a task of an old finished plan) and the command can act on a task in its
    /// stored status (`acts_on`); otherwise the plan is not loaded, and the caller refuses.
    pub(super) async fn locate(
        &mut self,
        task: TaskId,
        acts_on: fn(TaskStatus) -> bool,
    ) -> Result<(PlanId, String, TaskStatus), EngineError> {
        if self.plans.locate(&task).is_none() {
            let found = self
                .store
                .read(move |txn| match query::task(txn, task)? {
                    Some(stored) if !acts_on(stored.status) => Ok(Some(Err(stored))),
                    Some(stored) => Ok(query::plan_record(txn, stored.plan)?.map(Ok)),
                    None => Ok(None),
                })
                .await?;
            let record = match found {
                Some(Err(stored)) => return Ok((stored.plan, stored.key, stored.status)),
                Some(Ok(record)) => Some(record),
                None => None,
            };
            let Some(record) = record.filter(|r| !self.plans.contains_key(&r.plan.id)) else {
                return Err(EngineError::UnknownTask(task));
            };
            tracing::info!(plan = %record.plan.name, "loading a finished plan from the store");
            self.load(record, self.now()).await?;
        }
        let (plan_id, key) = self
            .plans
            .locate(&task)
            .map(|(plan, key)| (plan, key.to_string()))
            .ok_or(EngineError::UnknownTask(task))?;
        let status = self
            .plans
            .get(&plan_id)
            .and_then(|state| state.graph.get(&key))
            .map(|t| t.status)
            .ok_or(EngineError::UnknownTask(task))?;
        Ok((plan_id, key, status))
    }

    /// Let go of the plans that ended, beyond the newest [`RECENT_PLANS`] (ids are
    /// time-ordered), once nothing of theirs is under way, no merge conflict of theirs waits
    /// for the operator (the snapshot lists those) and none is being landed: they stay in the
    /// store.
    pub(super) fn trim_finished(&mut self) {
        let finished = self.finished_plans();
        let Some(excess) = finished.len().checked_sub(RECENT_PLANS) else {
            return;
        };
        for id in finished.into_iter().take(excess) {
            let quiet = self.plans.get(&id).is_some_and(|s| {
                let work = &s.work;
                work.merging.is_none()
                    && work.merges.is_empty()
                    && work.resolvers.is_empty()
                    && work.awaiting.is_empty()
                    && !s.graph.tasks().any(|t| {
                        t.status == TaskStatus::Failed
                            && self
                                .contexts
                                .get(&t.id)
                                .is_some_and(|c| matches!(c.merge, MergeState::Conflict { .. }))
                    })
            }) && !self.running.values().any(|r| r.plan == id)
                // A landing (and the resolver it may wait for) needs its plan.
                && !self.landing.contains(&id);
            if !quiet {
                continue;
            }
            let Some(state) = self.plans.remove(&id) else {
                continue;
            };
            for task in state.graph.tasks() {
                self.contexts.remove(&task.id);
                self.retry_at.remove(&task.id);
                self.observed.latest.remove(&task.id);
            }
        }
    }

    /// What a plan's finished tasks left, in the plan's task order: from memory when it is
    /// loaded, otherwise read from the store off the engine's loop.
    pub(super) fn context(&self, plan: PlanId, reply: super::Typed<Vec<TaskContext>>) {
        if self.plans.contains_key(&plan) {
            reply.send(self.context_of(plan));
            return;
        }
        let store = self.store.clone();
        self.tasks.spawn(async move {
            let record = store.read(move |txn| query::plan_record(txn, plan)).await;
            reply.send(stored_context(plan, record));
        });
    }
}

impl Core {
    /// The newest `last` notes, oldest first (see [`Noted`]): those written, then those told
    /// since the last commit (a fleet member told waiting at the start, before anything was
    /// committed, is in the events pane of a room opened right after).
    pub(super) fn notes(&self, last: usize, reply: super::Typed<Vec<Noted>>) {
        let store = self.store.clone();
        let pending = self.events.pending_notes();
        self.tasks.spawn(async move {
            let read = store.read(move |txn| query::notes_newest(txn, last)).await;
            let notes = read.map(|mut notes| {
                notes.extend(pending);
                let extra = notes.len().saturating_sub(last);
                notes.drain(..extra);
                notes
            });
            reply.send(notes.map_err(EngineError::from));
        });
    }

    /// The newest `last` control log entries above `since`, read off the engine's loop.
    pub(super) fn history(&self, since: u64, last: usize, reply: super::Typed<Vec<Logged>>) {
        let store = self.store.clone();
        self.tasks.spawn(async move {
            let read = store
                .read(move |txn| query::events_newest(txn, since, last))
                .await;
            let entries = read.map(|entries| {
                entries
                    .into_iter()
                    .map(|(seq, event)| Logged { seq, event })
                    .collect()
            });
            reply.send(entries.map_err(EngineError::from));
        });
    }
}

/// [`Core::context_of`] for a plan that is not loaded.
fn stored_context(
    plan: PlanId,
    record: Result<Option<PlanRecord>, StoreError>,
) -> Result<Vec<TaskContext>, EngineError> {
    let record = record?.ok_or(EngineError::UnknownPlan(plan))?;
    let mut contexts: std::collections::HashMap<TaskId, TaskContext> =
        record.contexts.into_iter().map(|c| (c.task, c)).collect();
    let graph = TaskGraph::from_tasks(record.tasks)?;
    Ok(graph
        .topological_order()
        .into_iter()
        .filter_map(|t| contexts.remove(&t.id))
        .collect())
}
