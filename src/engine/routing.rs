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

/// What a task asks of the agent that runs it, beyond the task's own fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// Its plan works in a directory that is no git repository: only an agent whose sessions
    /// can work in ocio's own directories can run it (a build box is carried git commits).
    pub(crate) ocios_disk: bool,
}

impl Needs {
    /// Whether `agent` could ever run a task with these needs (whatever its load).
    fn met_by(self, agent: &Agent) -> bool {
        !(self.ocios_disk && agent.works_away)
    }
}

/// Whether `agent` could ever run `task` (whatever its status and load).
fn could_run(task: &Task, needs: Needs, agent: &Agent) -> bool {
    agent.has_capabilities(&task.capabilities)
        && task
            .agent
            .as_ref()
            .is_none_or(|pinned| *pinned == agent.name)
        && needs.met_by(agent)
}

/// Whether `agent` takes work when it has room: online or degraded.
fn is_up(agent: &Agent) -> bool {
    matches!(
        agent.status,
        crate::domain::AgentStatus::Online | crate::domain::AgentStatus::Degraded
    )
}

/// Why a ready task cannot go to any agent there is now, whatever their load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Waits {
    /// Only these agents could, and they are offline or drained (`name (status)`).
    TakeWorkAgain(Vec<String>),
    /// Pinned to a member of a fleet that has not joined.
    MemberToJoin { member: String, fleet: String },
    /// Pinned to an agent that is not among the agents, and no fleet would name it.
    Gone(String),
    /// Any member of these fleets could, and none has joined.
    FleetToJoin(Vec<String>),
    /// Its plan's directory is no git repository, and only build boxes could.
    OcioDisk,
    /// There is no agent and no fleet at all.
    NoAgent,
    /// No agent and no fleet offers all of these capabilities.
    NoneOffers(Vec<String>),
}

impl Waits {
    /// Nothing this engine runs now could ever end the wait: only a change to the config (and a
    /// restart) could. Not said of an empty room, where the room can add a first agent.
    pub(crate) fn for_good(&self) -> bool {
        matches!(self, Self::Gone(_) | Self::OcioDisk | Self::NoneOffers(_))
    }
}

impl std::fmt::Display for Waits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TakeWorkAgain(named) => write!(f, "for {} to take work again", named.join(" or ")),
            Self::MemberToJoin { member, fleet } => {
                write!(f, "for {member}, a member of fleet {fleet}, to join")
            }
            Self::Gone(agent) => write!(f, "for agent {agent}, which is not among the agents"),
            Self::FleetToJoin(fleets) => {
                write!(f, "for a member of fleet {} to join", fleets.join(" or "))
            }
            Self::OcioDisk => f.write_str(
                "for an agent that sees ocio's files (the plan's directory is no git repository; the agents that could run it work on build boxes)",
            ),
            Self::NoAgent => f.write_str("for an agent: there is none"),
            Self::NoneOffers(caps) => {
                write!(f, "for an agent offering {}: none does", caps.join(", "))
            }
        }
    }
}

/// Why ready `task` cannot go to any agent there is now, whatever their load: `None` when one
/// could run it (it waits for a free slot, if at all). Said beside the task, so one that
/// waits for good (an agent gone, a fleet with no member) is not taken for one in a queue.
pub(crate) fn why_waiting(
    task: &Task,
    needs: Needs,
    agents: &[Agent],
    fleets: &[crate::domain::Fleet],
) -> Option<Waits> {
    let able: Vec<&Agent> = agents
        .iter()
        .filter(|a| could_run(task, needs, a))
        .collect();
    if able.iter().any(|a| is_up(a)) {
        return None;
    }
    if !able.is_empty() {
        // Those that could are offline or drained: it waits for one of them to take work.
        let named = able
            .iter()
            .map(|a| format!("{} ({})", a.name, crate::domain::Lifecycle::name(a.status)))
            .collect();
        return Some(Waits::TakeWorkAgain(named));
    }
    if let Some(pinned) = &task.agent {
        return Some(match crate::domain::fleet_of(fleets, pinned.as_str()) {
            Some(fleet) => Waits::MemberToJoin {
                member: pinned.to_string(),
                fleet: fleet.name.to_string(),
            },
            None => Waits::Gone(pinned.to_string()),
        });
    }
    let offering: Vec<String> = fleets
        .iter()
        .filter(|f| f.offers(&task.capabilities))
        .filter(|f| !needs.ocios_disk || f.works_away != Some(true))
        .map(|f| f.name.to_string())
        .collect();
    if !offering.is_empty() {
        return Some(Waits::FleetToJoin(offering));
    }
    let caps: Vec<String> = task.capabilities.iter().cloned().collect();
    // Only build boxes (joined, or a fleet's to come) could: the plan is outside git.
    let on_boxes = agents.iter().any(|a| could_run(task, Needs::default(), a))
        || fleets.iter().any(|f| f.offers(&task.capabilities));
    Some(if on_boxes {
        Waits::OcioDisk
    } else if caps.is_empty() {
        Waits::NoAgent
    } else {
        Waits::NoneOffers(caps)
    })
}

/// The agent to run `task` on, as an index into `agents`; `None` if no agent can take it now.
/// `last_picked[i]` is a counter of when agent `i` last got work (lower: longer ago).
pub(crate) fn pick_agent(
    task: &Task,
    needs: Needs,
    agents: &[Agent],
    last_picked: &[u64],
) -> Option<usize> {
    agents
        .iter()
        .enumerate()
        .filter(|(_, a)| a.can_accept() && could_run(task, needs, a))
        .min_by(|(i, a), (j, b)| {
            a.load_ratio()
                .total_cmp(&b.load_ratio())
                .then(last_picked.get(*i).cmp(&last_picked.get(*j)))
        })
        .map(|(i, _)| i)
}

/// Like [`pick_agent`], but not agent `avoid` (it failed this task) while another agent that
/// is up (online or degraded, however loaded) could run the task; if none could (the others
/// are offline, draining or removed), `avoid` is as good as any: the task never waits for an
/// agent that is not there while the one it blames sits idle.
pub(crate) fn pick_agent_avoiding(
    task: &Task,
    needs: Needs,
    agents: &[Agent],
    last_picked: &[u64],
    avoid: Option<usize>,
) -> Option<usize> {
    let Some(avoid) = avoid else {
        return pick_agent(task, needs, agents, last_picked);
    };
    let others_exist = agents
        .iter()
        .enumerate()
        .any(|(i, a)| i != avoid && is_up(a) && could_run(task, needs, a));
    if !others_exist {
        return pick_agent(task, needs, agents, last_picked);
    }
    let mut view = agents.to_vec();
    if let Some(a) = view.get_mut(avoid) {
        a.status = crate::domain::AgentStatus::Draining;
    }
    pick_agent(task, needs, &view, last_picked)
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
            pick_agent(
                &task("t", 0, &["code"]),
                Needs::default(),
                &agents,
                &[0, 0, 0]
            ),
            Some(1)
        );
        assert_eq!(
            pick_agent(
                &task("t", 0, &["plan"]),
                Needs::default(),
                &agents,
                &[0, 0, 0]
            ),
            Some(2)
        );
        assert_eq!(
            pick_agent(
                &task("t", 0, &["gpu"]),
                Needs::default(),
                &agents,
                &[0, 0, 0]
            ),
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
        assert_eq!(
            pick_agent(&task("t", 0, &[]), Needs::default(), &agents, &[0, 0, 0]),
            None
        );
    }

    #[test]
    fn ties_rotate_to_the_agent_picked_longest_ago() {
        let agents = vec![agent("a", 2, 0, &[]), agent("b", 2, 0, &[])];
        assert_eq!(
            pick_agent(&task("t", 0, &[]), Needs::default(), &agents, &[5, 3]),
            Some(1)
        );
        assert_eq!(
            pick_agent(&task("t", 0, &[]), Needs::default(), &agents, &[2, 3]),
            Some(0)
        );
    }

    #[test]
    fn a_retry_avoids_the_agent_at_fault_when_another_can_run_it() {
        let agents = vec![
            agent("a", 2, 0, &["x"]),
            agent("b", 2, 1, &["x"]),
            agent("c", 2, 0, &["y"]),
        ];
        let t = task("t", 0, &["x"]);
        assert_eq!(
            pick_agent_avoiding(&t, Needs::default(), &agents, &[0, 0, 0], None),
            Some(0)
        );
        assert_eq!(
            pick_agent_avoiding(&t, Needs::default(), &agents, &[0, 0, 0], Some(0)),
            Some(1)
        );
        let only_c = task("t", 0, &["y"]);
        assert_eq!(
            pick_agent_avoiding(&only_c, Needs::default(), &agents, &[0, 0, 0], Some(2)),
            Some(2),
            "no one else can"
        );
    }

    /// An agent that is not up (offline, draining, or a fleet member gone and kept offline)
    /// is no other agent to wait for: the task goes back to the one it blames. It stayed ready
    /// for good, the blamed agent idle, after a lost run on a build box whose fleet twin had
    /// left.
    #[test]
    fn a_retry_does_not_wait_for_an_agent_that_is_not_up() {
        for status in [AgentStatus::Offline, AgentStatus::Draining] {
            let mut gone = agent("gone", 3, 0, &["far"]);
            gone.status = status;
            let agents = vec![agent("far", 3, 0, &["far"]), gone];
            let t = task("t", 0, &["far"]);
            assert_eq!(
                pick_agent_avoiding(&t, Needs::default(), &agents, &[0, 0], Some(0)),
                Some(0),
                "{status:?}"
            );
        }
        // One that is up but full is waited for.
        let agents = vec![agent("far", 3, 0, &["far"]), agent("other", 1, 1, &["far"])];
        let t = task("t", 0, &["far"]);
        assert_eq!(
            pick_agent_avoiding(&t, Needs::default(), &agents, &[0, 0], Some(0)),
            None
        );
    }

    /// A task in a directory that is no git repository cannot be carried to a build box: it
    /// goes to an agent working on ocio's disk, however loaded, or waits for one (it went to
    /// the idle box and failed there for good).
    #[test]
    fn a_task_outside_git_goes_only_to_an_agent_on_ocios_disk() {
        let mut far = agent("box", 2, 0, &["code"]);
        far.works_away = true;
        let agents = vec![far, agent("near", 2, 1, &["code"])];
        let t = task("t", 0, &["code"]);
        let plain = Needs { ocios_disk: true };
        assert_eq!(pick_agent(&t, Needs::default(), &agents, &[0, 0]), Some(0));
        assert_eq!(pick_agent(&t, plain, &agents, &[0, 0]), Some(1));
        assert_eq!(
            pick_agent_avoiding(&t, plain, &agents, &[0, 0], Some(1)),
            Some(1),
            "the box is no other agent that could run it"
        );
        let busy = vec![agents[0].clone(), agent("near", 1, 1, &["code"])];
        assert_eq!(pick_agent(&t, plain, &busy, &[0, 0]), None, "it waits");
    }

    #[test]
    fn a_pinned_task_waits_for_its_agent() {
        let agents = vec![agent("a", 2, 0, &[]), agent("b", 2, 2, &[])];
        let mut t = task("t", 0, &[]);
        t.agent = Some(AgentName::new("b").unwrap());
        assert_eq!(pick_agent(&t, Needs::default(), &agents, &[0, 0]), None);
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

    /// A ready task no agent there is could ever run says what it waits for (hand trial:
    /// tasks pinned to a member not joined, or needing what only a fleet offers, sat ready
    /// with no word); one an agent could run (busy, offline) says nothing.
    #[test]
    fn a_task_no_agent_could_run_says_what_it_waits_for() {
        let fleet = |name: &str, caps: &[&str], away: Option<bool>| crate::domain::Fleet {
            name: AgentName::new(name).unwrap(),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            works_away: away,
            members: Vec::new(),
        };
        let fleets = [fleet("builders", &["rust"], Some(true))];
        let busy = agent("near", 1, 1, &["code"]);
        let mut down = agent("down", 1, 0, &["docs"]);
        down.status = AgentStatus::Offline;
        let agents = [busy, down];
        let why = |t: &Task, needs| why_waiting(t, needs, &agents, &fleets).map(|w| w.to_string());
        let plain = Needs { ocios_disk: true };
        assert_eq!(
            why(&task("t", 0, &["code"]), Needs::default()),
            None,
            "busy: a queue"
        );
        // Only an agent that is offline (or drained) could: said (second hand trial).
        assert_eq!(
            why(&task("t", 0, &["docs"]), Needs::default()).as_deref(),
            Some("for down (offline) to take work again")
        );
        assert_eq!(
            why(&task("t", 0, &["rust"]), Needs::default()).as_deref(),
            Some("for a member of fleet builders to join")
        );
        assert_eq!(
            why(&task("t", 0, &["gpu"]), Needs::default()).as_deref(),
            Some("for an agent offering gpu: none does")
        );
        let mut pinned = task("t", 0, &[]);
        pinned.agent = Some(AgentName::new("builders-box-4096").unwrap());
        assert_eq!(
            why(&pinned, Needs::default()).as_deref(),
            Some("for builders-box-4096, a member of fleet builders, to join")
        );
        pinned.agent = Some(AgentName::new("gone").unwrap());
        assert_eq!(
            why(&pinned, Needs::default()).as_deref(),
            Some("for agent gone, which is not among the agents")
        );
        // Outside git: a fleet of build boxes cannot take it (it offers rust, so not "none
        // does": review).
        assert!(
            why(&task("t", 0, &["rust"]), plain).is_some_and(|w| w.contains("sees ocio's files")),
        );
        let mut far = agent("far", 1, 0, &[]);
        far.works_away = true;
        let far = [far];
        assert!(
            why_waiting(&task("t", 0, &[]), plain, &far, &[])
                .is_some_and(|w| w.to_string().contains("sees ocio's files"))
        );
    }
}
