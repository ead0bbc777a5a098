//! The rules that relate tasks to each other: unique ids, `needs` that name real tasks and form
//! no cycle, and prompt references (`{{tasks.X.summary}}`) that only reach upstream tasks.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use super::error::{PlanError, Source, did_you_mean};
use super::raw::RawTaskAt;
use super::template::{self, SUMMARY};

/// The tasks by id, and the `needs` edges between them.
struct Links<'r> {
    tasks: &'r [RawTaskAt],
    /// Each id to the first task that has it.
    index: HashMap<&'r str, usize>,
    /// `needs[i]`: the tasks task `i` needs, each with the span of the `needs` entry.
    needs: Vec<Vec<(usize, Range<usize>)>>,
}

fn id(task: &RawTaskAt) -> Option<&str> {
    task.task
        .id
        .as_ref()
        .map(|id| id.get_ref().as_str())
        .filter(|id| !id.is_empty())
}

/// Every problem in how the tasks refer to each other.
pub(super) fn check(source: Source<'_>, tasks: &[RawTaskAt], errors: &mut Vec<PlanError>) {
    let links = Links::build(source, tasks, errors);
    links.report_cycles(source, errors);
    links.check_references(source, errors);
}

impl<'r> Links<'r> {
    /// Indexes the ids (reporting duplicates) and resolves `needs` (reporting unknown tasks and
    /// tasks that need themselves).
    fn build(source: Source<'_>, tasks: &'r [RawTaskAt], errors: &mut Vec<PlanError>) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, task) in tasks.iter().enumerate() {
            let (Some(key), Some(spanned)) = (id(task), task.task.id.as_ref()) else {
                continue;
            };
            if let Some(&first) = index.get(key) {
                let (line, _) = source.line_column(tasks[first].start);
                errors.push(
                    source
                        .error(spanned.span(), format!("duplicate task id {key:?}"))
                        .in_task(Some(key))
                        .at_field("id")
                        .with_hint(Some(format!(
                            "the task at line {line} already has this id; task ids must be unique"
                        ))),
                );
            } else {
                index.insert(key, i);
            }
        }
        let mut needs = vec![Vec::new(); tasks.len()];
        for (i, task) in tasks.iter().enumerate() {
            let own = id(task);
            for need in &task.task.needs {
                let name = need.get_ref().as_str();
                let error = |message: String, hint: Option<String>| {
                    source
                        .error(need.span(), message)
                        .in_task(own)
                        .at_field("needs")
                        .with_hint(hint)
                };
                if Some(name) == own {
                    let hint = Some(format!("remove {name:?} from its `needs`"));
                    errors.push(error("needs itself".into(), hint));
                } else if let Some(&j) = index.get(name) {
                    needs[i].push((j, need.span()));
                } else {
                    let hint = unknown_task_hint(name, &index);
                    let message = format!("needs unknown task {:?}", crate::text::shown(name));
                    errors.push(error(message, hint));
                }
            }
        }
        Self {
            tasks,
            index,
            needs,
        }
    }

    /// One error per tangle of tasks that need each other: its shortest cycle through the
    /// member listed first, at that member's `needs` entry.
    fn report_cycles(&self, source: Source<'_>, errors: &mut Vec<PlanError>) {
        let component = self.components();
        let mut reported = vec![false; component.len()];
        for start in 0..self.tasks.len() {
            let group = component[start];
            if reported[group] {
                continue;
            }
            reported[group] = true;
            let Some(cycle) = self.shortest_cycle(start, |node| component[node] == group) else {
                continue;
            };
            let members: Vec<&str> = cycle
                .iter()
                .chain(cycle.first())
                .map(|&(node, _)| id(&self.tasks[node]).unwrap_or("?"))
                .collect();
            let span = cycle[0].1.clone();
            errors.push(
                source
                    .error(span, format!("dependency cycle: {}", members.join(" -> ")))
                    .in_task(id(&self.tasks[start]))
                    .at_field("needs")
                    .with_hint(Some(
                        "remove one of these `needs` entries so that the work has an order".into(),
                    )),
            );
        }
    }

    /// The shortest path `start -> ... -> start` through nodes `inside` accepts, as each node
    /// with the span of its `needs` entry that leads to the next.
    fn shortest_cycle(
        &self,
        start: usize,
        inside: impl Fn(usize) -> bool,
    ) -> Option<Vec<(usize, Range<usize>)>> {
        let mut came_from: Vec<Option<(usize, Range<usize>)>> = vec![None; self.tasks.len()];
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for (next, span) in &self.needs[node] {
                if *next == start {
                    let mut cycle = vec![(node, span.clone())];
                    let mut at = node;
                    while let Some((previous, span)) = came_from[at].clone() {
                        cycle.push((previous, span));
                        at = previous;
                    }
                    cycle.reverse();
                    return Some(cycle);
                }
                if inside(*next) && came_from[*next].is_none() {
                    came_from[*next] = Some((node, span.clone()));
                    queue.push_back(*next);
                }
            }
        }
        None
    }

    /// The strongly connected component of each task (Kosaraju): tasks in the same one need
    /// each other, directly or not.
    fn components(&self) -> Vec<usize> {
        let count = self.tasks.len();
        let mut seen = vec![false; count];
        let mut finished = Vec::with_capacity(count);
        for root in 0..count {
            if std::mem::replace(&mut seen[root], true) {
                continue;
            }
            let mut stack = vec![(root, 0)];
            while let Some((node, edge)) = stack.last_mut() {
                let node = *node;
                if let Some((next, _)) = self.needs[node].get(*edge) {
                    *edge += 1;
                    if !std::mem::replace(&mut seen[*next], true) {
                        stack.push((*next, 0));
                    }
                } else {
                    finished.push(node);
                    stack.pop();
                }
            }
        }
        let mut needed_by = vec![Vec::new(); count];
        for (node, needs) in self.needs.iter().enumerate() {
            for (next, _) in needs {
                needed_by[*next].push(node);
            }
        }
        let mut component = vec![usize::MAX; count];
        for (group, &root) in finished.iter().rev().enumerate() {
            if component[root] != usize::MAX {
                continue;
            }
            component[root] = group;
            let mut stack = vec![root];
            while let Some(node) = stack.pop() {
                for &other in &needed_by[node] {
                    if component[other] == usize::MAX {
                        component[other] = group;
                        stack.push(other);
                    }
                }
            }
        }
        component
    }

    /// Every task `node` needs, directly or not.
    fn upstream(&self, node: usize) -> Vec<bool> {
        let mut upstream = vec![false; self.tasks.len()];
        let mut stack: Vec<usize> = self.needs[node].iter().map(|(next, _)| *next).collect();
        while let Some(next) = stack.pop() {
            if !std::mem::replace(&mut upstream[next], true) {
                stack.extend(self.needs[next].iter().map(|(after, _)| *after));
            }
        }
        upstream
    }

    /// Prompt references name a field that exists of a task upstream of the prompt's task.
    fn check_references(&self, source: Source<'_>, errors: &mut Vec<PlanError>) {
        for (node, task) in self.tasks.iter().enumerate() {
            let Some(prompt) = &task.task.prompt else {
                continue;
            };
            let references = template::references(prompt.get_ref());
            if references.is_empty() {
                continue;
            }
            let own = id(task);
            let upstream = self.upstream(node);
            let raw = source.text.get(prompt.span()).unwrap_or("");
            let mut cursor = 0;
            for reference in references {
                // Where the reference is written: searched for in the raw string, which holds it
                // verbatim unless it was written with escapes.
                let offset = match raw[cursor..].find(reference.text) {
                    Some(at) => {
                        cursor += at + reference.text.len();
                        prompt.span().start + cursor - reference.text.len()
                    }
                    None => prompt.span().start,
                };
                let error = |message: String, hint: Option<String>| {
                    source
                        .error(offset..offset, message)
                        .in_task(own)
                        .at_field("prompt")
                        .with_hint(hint)
                };
                let name = reference.task;
                let wanted = format!("{{{{tasks.{name}.{SUMMARY}}}}}");
                if reference.field != SUMMARY {
                    let message = format!("{} names no result of a task", reference.text);
                    errors.push(error(message, Some(format!("write {wanted}"))));
                } else if Some(name) == own {
                    let message = format!("{} refers to the task's own summary", reference.text);
                    errors.push(error(
                        message,
                        Some("a task can only use upstream results".into()),
                    ));
                } else if let Some(&other) = self.index.get(name) {
                    // With unreadable `needs` (reported) nothing is known to be upstream.
                    if !upstream[other] && !task.task.unreadable.contains("needs") {
                        let message = format!(
                            "{} uses task {name:?}, which this task does not depend on",
                            reference.text
                        );
                        let hint = format!("add {name:?} to `needs` so that it runs first");
                        errors.push(error(message, Some(hint)));
                    }
                } else {
                    let message = format!("{} refers to unknown task {name:?}", reference.text);
                    errors.push(error(message, unknown_task_hint(name, &self.index)));
                }
            }
        }
    }
}

/// `did you mean "design"?`, or the ids there are when none is close.
fn unknown_task_hint(name: &str, index: &HashMap<&str, usize>) -> Option<String> {
    const SHOWN: usize = 12;
    did_you_mean(name, index.keys().copied()).or_else(|| {
        let mut ids: Vec<(&str, usize)> = index.iter().map(|(id, at)| (*id, *at)).collect();
        ids.sort_by_key(|(_, at)| *at);
        let more = if ids.len() > SHOWN { ", ..." } else { "" };
        let shown: Vec<String> = ids
            .iter()
            .take(SHOWN)
            .map(|(id, _)| format!("{id:?}"))
            .collect();
        (!shown.is_empty()).then(|| format!("tasks in this plan: {}{more}", shown.join(", ")))
    })
}
