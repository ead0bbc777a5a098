//! The plans the engine has in memory (those with work to come and the newest that ended),
//! their task graphs, ready sets and use of their repositories, with an index from every task
//! to its plan that changes only with them.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;

use super::workspace::PlanWorkState;
use crate::domain::{Plan, PlanId, Task, TaskGraph, TaskId, TaskStatus};

pub(super) struct PlanState {
    pub(super) plan: Plan,
    pub(super) graph: TaskGraph,
    /// When each ready task became ready (for aging).
    pub(super) ready_since: HashMap<String, Timestamp>,
    pub(super) finished: bool,
    /// How it uses its repository, its overlap map and its merges.
    pub(super) work: PlanWorkState,
}

#[derive(Default)]
pub(super) struct Plans {
    by_id: BTreeMap<PlanId, PlanState>,
    /// The plan and key of every task of `by_id`.
    tasks: HashMap<TaskId, (PlanId, String)>,
}

impl Plans {
    /// Take in a plan whose tasks that are ready became ready `now`.
    pub(super) fn insert(
        &mut self,
        plan: Plan,
        graph: TaskGraph,
        work: PlanWorkState,
        now: Timestamp,
    ) {
        let ready_since = graph
            .tasks()
            .filter(|t| t.status == TaskStatus::Ready)
            .map(|t| (t.key.clone(), now))
            .collect();
        for task in graph.tasks() {
            self.tasks.insert(task.id, (plan.id, task.key.clone()));
        }
        // A plan paused over budget has not ended: it waits for the operator.
        let finished =
            !graph.tasks().any(|t| t.status.has_work_to_come()) && work.work.over_budget.is_none();
        self.by_id.insert(
            plan.id,
            PlanState {
                plan,
                graph,
                ready_since,
                finished,
                work,
            },
        );
    }

    /// Let a plan go, with its tasks' index.
    pub(super) fn remove(&mut self, id: &PlanId) -> Option<PlanState> {
        let state = self.by_id.remove(id)?;
        for task in state.graph.tasks() {
            self.tasks.remove(&task.id);
        }
        Some(state)
    }

    pub(super) fn get(&self, id: &PlanId) -> Option<&PlanState> {
        self.by_id.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &PlanId) -> Option<&mut PlanState> {
        self.by_id.get_mut(id)
    }

    pub(super) fn contains_key(&self, id: &PlanId) -> bool {
        self.by_id.contains_key(id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&PlanId, &PlanState)> {
        self.by_id.iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&PlanId, &mut PlanState)> {
        self.by_id.iter_mut()
    }

    pub(super) fn values(&self) -> impl DoubleEndedIterator<Item = &PlanState> {
        self.by_id.values()
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Tasks over all plans.
    pub(super) fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// The plan and key of a task of these plans.
    pub(super) fn locate(&self, task: &TaskId) -> Option<(PlanId, &str)> {
        self.tasks
            .get(task)
            .map(|(plan, key)| (*plan, key.as_str()))
    }

    /// Every task of these plans.
    #[cfg(test)]
    pub(super) fn task_ids(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.tasks.keys().copied()
    }

    /// A task of these plans.
    pub(super) fn task(&self, task: &TaskId) -> Option<&Task> {
        let (plan, key) = self.locate(task)?;
        self.by_id.get(&plan)?.graph.get(key)
    }
}
