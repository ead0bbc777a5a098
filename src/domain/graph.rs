//! The task graph of a plan: tasks joined by `needs` edges. It rejects duplicates, unknown
//! dependencies and cycles (naming the cycle), and answers the scheduler's questions: the
//! topological order, the ready tasks, and which tasks a failure blocks.
//! Every status change goes through it, so it keeps the tasks that are ready at hand.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use jiff::Timestamp;

use super::event::{DomainEvent, TransitionError};
use super::task::{Task, TaskStatus};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("task `{0}` is defined twice")]
    Duplicate(String),
    #[error("task `{task}` needs `{needs}`, which is not a task of this plan")]
    UnknownDependency { task: String, needs: String },
    #[error("no task `{0}` in this plan")]
    UnknownTask(String),
    /// The members in dependency order: each needs the next, and the last needs the first.
    #[error("dependency cycle: {}", cycle_text(.0))]
    Cycle(Vec<String>),
    #[error("task `{task}` cannot become {to} while it waits for: {}", .waiting_on.join(", "))]
    DependenciesNotDone {
        task: String,
        to: TaskStatus,
        waiting_on: Vec<String>,
    },
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

fn cycle_text(members: &[String]) -> String {
    let mut text = members.join(" -> ");
    if let Some(first) = members.first() {
        text.push_str(" -> ");
        text.push_str(first);
    }
    text
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TaskGraph {
    tasks: Vec<Task>,
    index: HashMap<String, usize>,
    /// `needs[i]`: the tasks task `i` depends on.
    needs: Vec<Vec<usize>>,
    /// `dependents[i]`: the tasks that depend on task `i`.
    dependents: Vec<Vec<usize>>,
    /// The tasks in status ready, in the order they were added.
    ready: BTreeSet<usize>,
}

impl TaskGraph {
    /// Builds a graph from tasks listed in any order, checking the whole set: duplicates first,
    /// then unknown dependencies, then cycles.
    pub(crate) fn from_tasks(tasks: Vec<Task>) -> Result<Self, GraphError> {
        let mut graph = Self::default();
        for task in tasks {
            if graph.index.contains_key(&task.key) {
                return Err(GraphError::Duplicate(task.key));
            }
            graph.index.insert(task.key.clone(), graph.tasks.len());
            if task.status == TaskStatus::Ready {
                graph.ready.insert(graph.tasks.len());
            }
            graph.tasks.push(task);
        }
        graph.needs = vec![Vec::new(); graph.tasks.len()];
        graph.dependents = vec![Vec::new(); graph.tasks.len()];
        for (i, task) in graph.tasks.iter().enumerate() {
            for needed in &task.needs {
                let Some(&j) = graph.index.get(needed) else {
                    return Err(GraphError::UnknownDependency {
                        task: task.key.clone(),
                        needs: needed.clone(),
                    });
                };
                if !graph.needs[i].contains(&j) {
                    graph.needs[i].push(j);
                    graph.dependents[j].push(i);
                }
            }
        }
        if let Some(cycle) = graph.find_cycle() {
            return Err(GraphError::Cycle(cycle));
        }
        Ok(graph)
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Task> {
        self.index.get(key).map(|&i| &self.tasks[i])
    }

    /// Tasks in the order they were added.
    pub(crate) fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter()
    }

    /// The keys of the tasks that depend directly on `key`.
    pub(crate) fn dependents(&self, key: &str) -> Result<Vec<&str>, GraphError> {
        let i = self.position(key)?;
        Ok(self.dependents[i]
            .iter()
            .map(|&k| self.tasks[k].key.as_str())
            .collect())
    }

    /// Every task after all it needs; among tasks free to go, higher priority first, then the
    /// order they were added.
    pub(crate) fn topological_order(&self) -> Vec<&Task> {
        let mut waiting: Vec<usize> = self.needs.iter().map(Vec::len).collect();
        let mut free: BinaryHeap<(i32, Reverse<usize>)> = waiting
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| (self.tasks[i].priority, Reverse(i)))
            .collect();
        let mut order = Vec::with_capacity(self.tasks.len());
        while let Some((_, Reverse(i))) = free.pop() {
            order.push(&self.tasks[i]);
            for &d in &self.dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    free.push((self.tasks[d].priority, Reverse(d)));
                }
            }
        }
        order
    }

    /// The tasks in status ready, in the order they were added, found without looking at the
    /// others.
    pub(crate) fn ready(&self) -> impl Iterator<Item = &Task> {
        self.ready.iter().map(|&i| &self.tasks[i])
    }

    /// Tasks that could be dispatched now: ready ones, and pending ones whose dependencies are
    /// all done. Higher priority first, then the order they were added. A full scan: the tests'
    /// reference for the ready index and promotion.
    #[cfg(test)]
    pub(crate) fn ready_set(&self) -> Vec<&Task> {
        let mut ready: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| match self.tasks[i].status {
                TaskStatus::Ready => true,
                TaskStatus::Pending => self.dependencies_done(i),
                _ => false,
            })
            .collect();
        ready.sort_by_key(|&i| (Reverse(self.tasks[i].priority), i));
        ready.into_iter().map(|i| &self.tasks[i]).collect()
    }

    /// Moves one task. Ready and running need every dependency done.
    pub(crate) fn transition(
        &mut self,
        key: &str,
        to: TaskStatus,
        cause: impl Into<String>,
        at: Timestamp,
    ) -> Result<DomainEvent, GraphError> {
        let i = self.position(key)?;
        if matches!(to, TaskStatus::Ready | TaskStatus::Running) && !self.dependencies_done(i) {
            let waiting_on = self.needs[i]
                .iter()
                .filter(|&&j| self.tasks[j].status != TaskStatus::Done)
                .map(|&j| self.tasks[j].key.clone())
                .collect();
            return Err(GraphError::DependenciesNotDone {
                task: key.to_string(),
                to,
                waiting_on,
            });
        }
        Ok(self.move_task(i, to, cause, at)?)
    }

    /// Every status change: the task's own rules, then the ready index follows.
    fn move_task(
        &mut self,
        i: usize,
        to: TaskStatus,
        cause: impl Into<String>,
        at: Timestamp,
    ) -> Result<DomainEvent, TransitionError> {
        let event = self.tasks[i].transition(to, cause, at)?;
        if to == TaskStatus::Ready {
            self.ready.insert(i);
        } else {
            self.ready.remove(&i);
        }
        Ok(event)
    }

    /// Records what a task produced (its last answer), for dependents and the operator.
    pub(crate) fn set_result(
        &mut self,
        key: &str,
        result: Option<String>,
    ) -> Result<&Task, GraphError> {
        let i = self.position(key)?;
        self.tasks[i].result = result;
        Ok(&self.tasks[i])
    }

    /// Counts a task's running attempt as lost to ocio (see [`Task::lose_attempt`]); whether
    /// it may run again.
    pub(crate) fn lose_attempt(&mut self, key: &str) -> Result<bool, GraphError> {
        let i = self.position(key)?;
        Ok(self.tasks[i].lose_attempt())
    }

    /// Records why a task's attempt was stopped over budget (`None`: it continues), and
    /// (`Some`) a new budget for it.
    pub(crate) fn set_budget(
        &mut self,
        key: &str,
        over: Option<String>,
        budget: Option<super::Budget>,
    ) -> Result<&Task, GraphError> {
        let i = self.position(key)?;
        self.tasks[i].over_budget = over;
        if budget.is_some() {
            self.tasks[i].budget = budget;
        }
        Ok(&self.tasks[i])
    }

    /// Sets task `key`'s budget to exactly `budget` (none: no budget of its own).
    pub(crate) fn put_budget(&mut self, key: &str, budget: Option<super::Budget>) {
        if let Ok(i) = self.position(key) {
            self.tasks[i].budget = budget;
        }
    }

    /// Records what the operator told a task's running attempt (see [`Task::steering`]).
    pub(crate) fn steer(&mut self, key: &str, text: String) -> Result<&Task, GraphError> {
        let i = self.position(key)?;
        self.tasks[i].steering.push(text);
        Ok(&self.tasks[i])
    }

    /// Forgets a task's lost attempts (an operator's retry starts its bound afresh).
    pub(crate) fn forgive_lost(&mut self, key: &str) -> Result<(), GraphError> {
        let i = self.position(key)?;
        self.tasks[i].lost = 0;
        Ok(())
    }

    /// Moves every pending task whose dependencies are all done to ready.
    pub(crate) fn promote_ready(&mut self, at: Timestamp) -> Vec<DomainEvent> {
        let promotable: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| self.tasks[i].status == TaskStatus::Pending && self.dependencies_done(i))
            .collect();
        promotable
            .into_iter()
            .filter_map(|i| {
                // One with none has no dependencies to be done: it is just ready.
                let cause = match self.tasks[i].needs.is_empty() {
                    true => "no dependencies",
                    false => "dependencies done",
                };
                self.move_task(i, TaskStatus::Ready, cause, at).ok()
            })
            .collect()
    }

    /// After `key` is done: moves to ready its pending dependents whose dependencies are all
    /// done. What [`Self::promote_ready`] would find then, looking only where something changed.
    pub(crate) fn promote_dependents(
        &mut self,
        key: &str,
        at: Timestamp,
    ) -> Result<Vec<DomainEvent>, GraphError> {
        let i = self.position(key)?;
        let promotable: Vec<usize> = self.dependents[i]
            .iter()
            .copied()
            .filter(|&d| self.tasks[d].status == TaskStatus::Pending && self.dependencies_done(d))
            .collect();
        Ok(promotable
            .into_iter()
            .filter_map(|d| {
                self.move_task(d, TaskStatus::Ready, "dependencies done", at)
                    .ok()
            })
            .collect())
    }

    /// After `key` failed or was cancelled: every task downstream of it that has not finished
    /// becomes blocked (shown, never silently skipped).
    pub(crate) fn block_dependents(
        &mut self,
        key: &str,
        at: Timestamp,
    ) -> Result<Vec<DomainEvent>, GraphError> {
        let i = self.position(key)?;
        let cause = format!("blocked by `{key}`");
        let blockable: Vec<usize> = self
            .downstream(i)
            .into_iter()
            .filter(|&d| {
                matches!(
                    self.tasks[d].status,
                    TaskStatus::Pending | TaskStatus::Ready
                )
            })
            .collect();
        Ok(blockable
            .into_iter()
            .filter_map(|d| {
                self.move_task(d, TaskStatus::Blocked, cause.clone(), at)
                    .ok()
            })
            .collect())
    }

    /// After `key` is retried: blocked tasks downstream of it that nothing else blocks go back to
    /// pending.
    pub(crate) fn reopen_dependents(
        &mut self,
        key: &str,
        at: Timestamp,
    ) -> Result<Vec<DomainEvent>, GraphError> {
        let i = self.position(key)?;
        let cause = format!("`{key}` re-opened");
        let reopenable: Vec<usize> = self
            .downstream(i)
            .into_iter()
            .filter(|&d| self.tasks[d].status == TaskStatus::Blocked && !self.upstream_blocked(d))
            .collect();
        Ok(reopenable
            .into_iter()
            .filter_map(|d| {
                self.move_task(d, TaskStatus::Pending, cause.clone(), at)
                    .ok()
            })
            .collect())
    }

    /// Whether some task upstream of `i` failed or was cancelled.
    fn upstream_blocked(&self, i: usize) -> bool {
        let mut seen = vec![false; self.tasks.len()];
        let mut stack = self.needs[i].clone();
        while let Some(j) = stack.pop() {
            if std::mem::replace(&mut seen[j], true) {
                continue;
            }
            if self.tasks[j].status.blocks_dependents() {
                return true;
            }
            stack.extend(&self.needs[j]);
        }
        false
    }

    /// Every task that transitively depends on `i`, each once, nearest first.
    fn downstream(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.tasks.len()];
        let mut found = Vec::new();
        let mut queue = std::collections::VecDeque::from(self.dependents[i].clone());
        while let Some(d) = queue.pop_front() {
            if std::mem::replace(&mut seen[d], true) {
                continue;
            }
            found.push(d);
            queue.extend(&self.dependents[d]);
        }
        found
    }

    fn dependencies_done(&self, i: usize) -> bool {
        self.needs[i]
            .iter()
            .all(|&j| self.tasks[j].status == TaskStatus::Done)
    }

    fn position(&self, key: &str) -> Result<usize, GraphError> {
        self.index
            .get(key)
            .copied()
            .ok_or_else(|| GraphError::UnknownTask(key.to_string()))
    }

    /// One cycle along `needs` edges, members in order, if the graph has any.
    fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Finished,
        }
        let mut mark = vec![Mark::New; self.tasks.len()];
        for root in 0..self.tasks.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (node, next edge to follow).
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            mark[root] = Mark::OnPath;
            while let Some(&mut (node, ref mut edge)) = path.last_mut() {
                if let Some(&next) = self.needs[node].get(*edge) {
                    *edge += 1;
                    match mark[next] {
                        Mark::New => {
                            mark[next] = Mark::OnPath;
                            path.push((next, 0));
                        }
                        Mark::OnPath => {
                            let start = path.iter().position(|&(n, _)| n == next).unwrap_or(0);
                            return Some(
                                path[start..]
                                    .iter()
                                    .map(|&(n, _)| self.tasks[n].key.clone())
                                    .collect(),
                            );
                        }
                        Mark::Finished => {}
                    }
                } else {
                    mark[node] = Mark::Finished;
                    path.pop();
                }
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
