//! Which agent runs which ready task: pure rules, no I/O.
//!
//! - A task goes only to an agent that is online, has a free slot, offers every capability the
//!   task needs and, when the task is pinned to an agent, is that agent.
//! - Among those, the least loaded (running / max_concurrent) wins; ties go to the agent that
//!   was picked least recently, so equal agents share the work in turn.
//! - Ready tasks are offered in order of effective priority: the task's priority plus one point
//!   per `aging_step` it has waited, so a low-priority task is never starved by a stream of
//!   high-priority ones. Equal effective priority: the one that became ready first.

use std::cmp::Reverse;

use jiff::{SignedDuration, Timestamp};

use crate::domain::{Agent, PlanId, Task};

/// One ready task waiting to be placed.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    pub(crate) plan: PlanId,
    pub(crate) task: &'a Task,
    pub(crate) ready_since: Timestamp,
}

/// Effective priority at `now`.
pub(crate) fn effective_priority(
    task: &Task,
    ready_since: Timestamp,
    now: Timestamp,
    aging_step: SignedDuration,
) -> i64 {
    let waited = now.duration_since(ready_since).as_secs().max(0);
    let step = aging_step.as_secs().max(1);
    i64::from(task.priority) + waited / step
}

/// Sort candidates: highest effective priority first, then longest waiting, then plan order.
pub(crate) fn order(candidates: &mut [Candidate<'_>], now: Timestamp, aging_step: SignedDuration) {
    candidates.sort_by_key(|c| {
        (
            Reverse(effective_priority(c.task, c.ready_since, now, aging_step)),
            c.ready_since,
            c.task.id,
        )
    });
}

/// The agent to run `task` on, as an index into `agents`; `None` if no agent can take it now.
/// `last_picked[i]` is a counter of when agent `i` last got work (lower: longer ago).
pub(crate) fn pick_agent(task: &Task, agents: &[Agent], last_picked: &[u64]) -> Option<usize> {
    agents
        .iter()
        .enumerate()
        .filter(|(_, a)| a.can_accept() && a.has_capabilities(&task.capabilities))
        .filter(|(_, a)| task.agent.as_ref().is_none_or(|pinned| *pinned == a.name))
        .min_by(|(i, a), (j, b)| {
            a.load_ratio()
                .total_cmp(&b.load_ratio())
                .then(last_picked.get(*i).cmp(&last_picked.get(*j)))
        })
        .map(|(i, _)| i)
}

/// Like [`pick_agent`], but not agent `avoid` (it failed this task) while another agent could
/// ever run the task; if none could, `avoid` is as good as any.
pub(crate) fn pick_agent_avoiding(
    task: &Task,
    agents: &[Agent],
    last_picked: &[u64],
    avoid: Option<usize>,
) -> Option<usize> {
    let Some(avoid) = avoid else {
        return pick_agent(task, agents, last_picked);
    };
    let others_exist = agents.iter().enumerate().any(|(i, a)| {
        i != avoid
            && a.has_capabilities(&task.capabilities)
            && task.agent.as_ref().is_none_or(|p| *p == a.name)
    });
    if !others_exist {
        return pick_agent(task, agents, last_picked);
    }
    let mut view = agents.to_vec();
    if let Some(a) = view.get_mut(avoid) {
        a.status = crate::domain::AgentStatus::Draining;
    }
    pick_agent(task, &view, last_picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentName, AgentStatus, Backend, PlanId, TaskId};

    fn agent(name: &str, max: u32, load: u32, caps: &[&str]) -> Agent {
        let mut a = Agent::new(AgentName::new(name).unwrap(), Backend::Simulated, max);
        a.load = load;
        a.capabilities = caps.iter().map(|c| c.to_string()).collect();
        a
    }

    fn task(key: &str, priority: i32, caps: &[&str]) -> Task {
        let mut t = Task::new(
            TaskId::generate(),
            PlanId::generate(),
            key,
            "p",
            Timestamp::UNIX_EPOCH,
        );
        t.priority = priority;
        t.capabilities = caps.iter().map(|c| c.to_string()).collect();
        t
    }

    #[test]
    fn least_loaded_capable_agent_wins() {
        let agents = vec![
            agent("a", 4, 3, &["code"]),
            agent("b", 4, 1, &["code"]),
            agent("c", 4, 0, &["plan"]),
        ];
        assert_eq!(
            pick_agent(&task("t", 0, &["code"]), &agents, &[0, 0, 0]),
            Some(1)
        );
        assert_eq!(
            pick_agent(&task("t", 0, &["plan"]), &agents, &[0, 0, 0]),
            Some(2)
        );
        assert_eq!(
            pick_agent(&task("t", 0, &["gpu"]), &agents, &[0, 0, 0]),
            None
        );
    }

    #[test]
    fn full_offline_and_draining_agents_take_nothing() {
        let mut agents = vec![
            agent("a", 1, 1, &[]),
            agent("b", 2, 0, &[]),
            agent("c", 2, 0, &[]),
        ];
        agents[1].status = AgentStatus::Offline;
        agents[2].status = AgentStatus::Draining;
        assert_eq!(pick_agent(&task("t", 0, &[]), &agents, &[0, 0, 0]), None);
    }

    #[test]
    fn ties_rotate_to_the_agent_picked_longest_ago() {
        let agents = vec![agent("a", 2, 0, &[]), agent("b", 2, 0, &[])];
        assert_eq!(pick_agent(&task("t", 0, &[]), &agents, &[5, 3]), Some(1));
        assert_eq!(pick_agent(&task("t", 0, &[]), &agents, &[2, 3]), Some(0));
    }

    #[test]
    fn a_retry_avoids_the_agent_at_fault_when_another_can_run_it() {
        let agents = vec![
            agent("a", 2, 0, &["x"]),
            agent("b", 2, 1, &["x"]),
            agent("c", 2, 0, &["y"]),
        ];
        let t = task("t", 0, &["x"]);
        assert_eq!(pick_agent_avoiding(&t, &agents, &[0, 0, 0], None), Some(0));
        assert_eq!(
            pick_agent_avoiding(&t, &agents, &[0, 0, 0], Some(0)),
            Some(1)
        );
        let only_c = task("t", 0, &["y"]);
        assert_eq!(
            pick_agent_avoiding(&only_c, &agents, &[0, 0, 0], Some(2)),
            Some(2),
            "no one else can"
        );
    }

    #[test]
    fn a_pinned_task_waits_for_its_agent() {
        let agents = vec![agent("a", 2, 0, &[]), agent("b", 2, 2, &[])];
        let mut t = task("t", 0, &[]);
        t.agent = Some(AgentName::new("b").unwrap());
        assert_eq!(pick_agent(&t, &agents, &[0, 0]), None);
    }

    #[test]
    fn aging_lets_an_old_low_priority_task_overtake() {
        let now = Timestamp::from_second(10_000).unwrap();
        let low = task("low", 0, &[]);
        let high = task("high", 5, &[]);
        let step = SignedDuration::from_secs(10);
        let mut fresh = vec![
            Candidate {
                plan: low.plan,
                task: &low,
                ready_since: now,
            },
            Candidate {
                plan: high.plan,
                task: &high,
                ready_since: now,
            },
        ];
        order(&mut fresh, now, step);
        assert_eq!(fresh[0].task.key, "high");
        let mut aged = vec![
            Candidate {
                plan: high.plan,
                task: &high,
                ready_since: now,
            },
            Candidate {
                plan: low.plan,
                task: &low,
                ready_since: now - SignedDuration::from_secs(60),
            },
        ];
        order(&mut aged, now, step);
        assert_eq!(aged[0].task.key, "low", "60 s of waiting is worth 6 points");
    }
}
