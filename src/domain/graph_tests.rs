//! Tests of the task graph: examples first, then model-based properties checked against a
//! brute-force model (an adjacency matrix and exhaustive search).

use proptest::prelude::*;

use super::*;
use crate::domain::id::{PlanId, TaskId};

fn at() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

fn task(key: &str, needs: &[&str]) -> Task {
    let mut t = Task::new(TaskId::generate(), PlanId::from_parts(1, 1), key, "", at());
    t.needs = needs.iter().map(|n| n.to_string()).collect();
    t
}

fn keys(tasks: Vec<&Task>) -> Vec<&str> {
    tasks.into_iter().map(|t| t.key.as_str()).collect()
}

/// design -> impl -> (test, docs) -> review
fn feature() -> TaskGraph {
    TaskGraph::from_tasks(vec![
        task("review", &["test", "docs"]),
        task("design", &[]),
        task("impl", &["design"]),
        task("test", &["impl"]),
        task("docs", &["impl"]),
    ])
    .unwrap()
}

fn finish(graph: &mut TaskGraph, key: &str, to: TaskStatus) {
    graph.transition(key, TaskStatus::Ready, "", at()).unwrap();
    graph
        .transition(key, TaskStatus::Running, "", at())
        .unwrap();
    graph.transition(key, to, "", at()).unwrap();
}

#[test]
fn tasks_may_be_listed_in_any_order() {
    let graph = feature();
    assert_eq!(
        keys(graph.topological_order()),
        ["design", "impl", "test", "docs", "review"]
    );
    assert_eq!(graph.dependents("impl").unwrap(), ["test", "docs"]);
}

#[test]
fn priority_orders_tasks_that_are_free_at_the_same_time() {
    let mut low = task("low", &[]);
    low.priority = -1;
    let mut high = task("high", &[]);
    high.priority = 5;
    let graph = TaskGraph::from_tasks(vec![low, task("plain", &[]), high]).unwrap();
    assert_eq!(keys(graph.topological_order()), ["high", "plain", "low"]);
    assert_eq!(keys(graph.ready_set()), ["high", "plain", "low"]);
}

#[test]
fn cycles_are_rejected_with_their_members() {
    let err = TaskGraph::from_tasks(vec![
        task("a", &["c"]),
        task("b", &["a"]),
        task("c", &["b"]),
        task("d", &[]),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        GraphError::Cycle(vec!["a".into(), "c".into(), "b".into()])
    );
    assert_eq!(err.to_string(), "dependency cycle: a -> c -> b -> a");

    let err = TaskGraph::from_tasks(vec![task("self", &["self"])]).unwrap_err();
    assert_eq!(err.to_string(), "dependency cycle: self -> self");
}

#[test]
fn duplicates_and_unknown_dependencies_are_named() {
    let err = TaskGraph::from_tasks(vec![task("a", &[]), task("a", &[])]).unwrap_err();
    assert_eq!(err.to_string(), "task `a` is defined twice");
    let err = TaskGraph::from_tasks(vec![task("a", &["ghost"])]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `a` needs `ghost`, which is not a task of this plan"
    );
}

#[test]
fn ready_set_follows_completed_dependencies() {
    let mut graph = feature();
    assert_eq!(keys(graph.ready_set()), ["design"]);
    finish(&mut graph, "design", TaskStatus::Done);
    assert_eq!(keys(graph.ready_set()), ["impl"]);
    finish(&mut graph, "impl", TaskStatus::Done);
    let events = graph.promote_ready(at());
    assert_eq!(events.len(), 2);
    assert_eq!(keys(graph.ready_set()), ["test", "docs"]);
}

/// Why a task became ready says what it waited for: none, for a task with no dependencies
/// (it said "dependencies done" of those too).
#[test]
fn a_task_without_dependencies_is_ready_for_having_none() {
    let mut graph = feature();
    let events = graph.promote_ready(at());
    let causes: Vec<&str> = events.iter().map(|e| e.cause.as_str()).collect();
    assert_eq!(causes, ["no dependencies"]);
    for to in [TaskStatus::Running, TaskStatus::Done] {
        graph.transition("design", to, "", at()).unwrap();
    }
    let events = graph.promote_ready(at());
    let causes: Vec<&str> = events.iter().map(|e| e.cause.as_str()).collect();
    assert_eq!(causes, ["dependencies done"]);
}

#[test]
fn a_task_cannot_start_before_its_dependencies_are_done() {
    let mut graph = feature();
    let err = graph
        .transition("review", TaskStatus::Ready, "", at())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `review` cannot become ready while it waits for: test, docs"
    );
}

#[test]
fn failure_blocks_every_downstream_task_and_retry_reopens_them() {
    let mut graph = feature();
    finish(&mut graph, "design", TaskStatus::Done);
    finish(&mut graph, "impl", TaskStatus::Failed);
    let events = graph.block_dependents("impl", at()).unwrap();
    assert_eq!(events.len(), 3);
    for key in ["test", "docs", "review"] {
        assert_eq!(graph.get(key).unwrap().status, TaskStatus::Blocked, "{key}");
    }
    assert!(graph.ready_set().is_empty());

    graph
        .transition("impl", TaskStatus::Ready, "operator retry", at())
        .unwrap();
    let events = graph.reopen_dependents("impl", at()).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(graph.get("review").unwrap().status, TaskStatus::Pending);
}

#[test]
fn a_task_blocked_twice_stays_blocked_until_both_are_retried() {
    let mut graph =
        TaskGraph::from_tasks(vec![task("a", &[]), task("b", &[]), task("c", &["a", "b"])])
            .unwrap();
    finish(&mut graph, "a", TaskStatus::Failed);
    finish(&mut graph, "b", TaskStatus::Failed);
    graph.block_dependents("a", at()).unwrap();
    graph.block_dependents("b", at()).unwrap();
    graph
        .transition("a", TaskStatus::Ready, "retry", at())
        .unwrap();
    assert!(graph.reopen_dependents("a", at()).unwrap().is_empty());
    assert_eq!(graph.get("c").unwrap().status, TaskStatus::Blocked);
    graph
        .transition("b", TaskStatus::Ready, "retry", at())
        .unwrap();
    assert_eq!(graph.reopen_dependents("b", at()).unwrap().len(), 1);
}

// ---- model-based properties ----

/// A random DAG on `n` nodes: an edge `i needs j` only for `j < i`.
fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
    (1usize..9).prop_flat_map(|n| {
        let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (0..i).map(move |j| (i, j))).collect();
        let count = pairs.len();
        (Just(n), proptest::sample::subsequence(pairs, 0..=count))
    })
}

fn build(n: usize, edges: &[(usize, usize)]) -> TaskGraph {
    let tasks = (0..n)
        .rev() // listed backwards, so dependencies come after their dependents
        .map(|i| {
            let needs: Vec<String> = edges
                .iter()
                .filter(|e| e.0 == i)
                .map(|e| format!("t{}", e.1))
                .collect();
            let mut t = task(&format!("t{i}"), &[]);
            t.needs = needs;
            t
        })
        .collect();
    TaskGraph::from_tasks(tasks).unwrap()
}

fn index(key: &str) -> usize {
    key[1..].parse().unwrap()
}

/// `reach[a][b]`: a (transitively) needs b.
fn closure(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<bool>> {
    let mut reach = vec![vec![false; n]; n];
    for &(a, b) in edges {
        reach[a][b] = true;
    }
    for k in 0..n {
        for a in 0..n {
            for b in 0..n {
                if reach[a][k] && reach[k][b] {
                    reach[a][b] = true;
                }
            }
        }
    }
    reach
}

proptest! {
    #[test]
    fn topological_order_respects_every_edge((n, edges) in dag()) {
        let graph = build(n, &edges);
        let order: Vec<usize> = graph.topological_order().iter().map(|t| index(&t.key)).collect();
        prop_assert_eq!(order.len(), n);
        let position = |k: usize| order.iter().position(|&x| x == k).unwrap();
        for &(a, b) in &edges {
            prop_assert!(position(b) < position(a), "t{} needs t{} but comes first", a, b);
        }
    }

    #[test]
    fn ready_and_blocked_match_the_model_through_random_runs(
        (n, edges) in dag(),
        outcomes in proptest::collection::vec(any::<bool>(), 9),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 9),
    ) {
        let mut graph = build(n, &edges);
        let reach = closure(n, &edges);
        // The model: each task's status, derived only from edges and outcomes.
        let mut done = vec![false; n];
        let mut failed = vec![false; n];
        for step in 0..n {
            let model_ready: Vec<usize> = (0..n)
                .filter(|&i| !done[i] && !failed[i] && !(0..n).any(|j| reach[i][j] && failed[j]))
                .filter(|&i| edges.iter().filter(|e| e.0 == i).all(|e| done[e.1]))
                .collect();
            let mut ready: Vec<usize> = graph.ready_set().iter().map(|t| index(&t.key)).collect();
            ready.sort();
            prop_assert_eq!(&ready, &model_ready);
            for i in 0..n {
                let blocked_in_model = !done[i] && !failed[i] && (0..n).any(|j| reach[i][j] && failed[j]);
                prop_assert_eq!(graph.get(&format!("t{i}")).unwrap().status == TaskStatus::Blocked, blocked_in_model, "t{}", i);
            }
            if model_ready.is_empty() {
                break;
            }
            let pick = model_ready[picks[step].index(model_ready.len())];
            let key = format!("t{pick}");
            if outcomes[step] {
                finish(&mut graph, &key, TaskStatus::Done);
                done[pick] = true;
            } else {
                finish(&mut graph, &key, TaskStatus::Failed);
                graph.block_dependents(&key, at()).unwrap();
                failed[pick] = true;
            }
        }
    }

    /// The engine's way through a plan: promote at submit; then each step a ready task starts
    /// and is done (promoting its dependents only), fails (blocking its dependents), or a
    /// failed task is retried (re-opening them). The ready index always lists exactly the
    /// ready tasks, and promoting only a done task's dependents leaves nothing that promoting
    /// everywhere would have found.
    #[test]
    fn the_ready_index_and_promoting_dependents_keep_up_with_random_runs(
        (n, edges) in dag(),
        moves in proptest::collection::vec((0u8..3, any::<proptest::sample::Index>()), 1..24),
    ) {
        let mut graph = build(n, &edges);
        graph.promote_ready(at());
        for (kind, pick) in moves {
            let ready: Vec<String> = graph.ready().map(|t| t.key.clone()).collect();
            let failed: Vec<String> = graph
                .tasks()
                .filter(|t| t.status == TaskStatus::Failed)
                .map(|t| t.key.clone())
                .collect();
            match kind {
                2 if !failed.is_empty() => {
                    let key = &failed[pick.index(failed.len())];
                    graph.transition(key, TaskStatus::Ready, "retry", at()).unwrap();
                    graph.reopen_dependents(key, at()).unwrap();
                }
                _ if !ready.is_empty() => {
                    let key = &ready[pick.index(ready.len())];
                    graph.transition(key, TaskStatus::Running, "", at()).unwrap();
                    if kind == 0 {
                        graph.transition(key, TaskStatus::Done, "", at()).unwrap();
                        graph.promote_dependents(key, at()).unwrap();
                    } else {
                        graph.transition(key, TaskStatus::Failed, "", at()).unwrap();
                        graph.block_dependents(key, at()).unwrap();
                    }
                }
                _ => {}
            }
            let indexed: Vec<&str> = graph.ready().map(|t| t.key.as_str()).collect();
            let scanned: Vec<&str> = graph
                .tasks()
                .filter(|t| t.status == TaskStatus::Ready)
                .map(|t| t.key.as_str())
                .collect();
            prop_assert_eq!(indexed, scanned);
            prop_assert!(graph.clone().promote_ready(at()).is_empty(), "a promotable task was missed");
        }
    }
}
