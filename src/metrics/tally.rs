//! What the metrics count from engine events (transitions, dispatches, durations, approval
//! latency), and the page that puts them together with what a scrape reads now (the engine's
//! snapshot, session counts from the store, circuit breakers).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;

use jiff::Timestamp;
use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::{
    AgentStatus, DomainEvent, Lifecycle, SessionId, SessionStatus, TaskId, TaskStatus, Transition,
};
use crate::engine::{EngineEvent, Snapshot};
use crate::opencode::breaker::BreakerState;

/// A series' labels, in order.
type Labels = Vec<(&'static str, String)>;

/// Upper bounds for durations from a second to a few hours.
const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// Counters and timers fed by engine events, owned by the metrics task. The metric objects
/// are handles into `registry`, which renders them.
pub(crate) struct Tally {
    registry: Registry,
    transitions: Family<Labels, Counter>,
    dispatches: Family<Labels, Counter>,
    plans_finished: Family<Labels, Counter>,
    /// Worktree events by kind: merged, conflict, overlap, held.
    workspace: Family<Labels, Counter>,
    task_durations: Family<Labels, Histogram, fn() -> Histogram>,
    queue_wait: Histogram,
    approval_latency: Histogram,
    lagged: Counter,
    /// When each running task started, and when each ready task became ready.
    running_since: HashMap<TaskId, Timestamp>,
    ready_since: HashMap<TaskId, Timestamp>,
    /// Permission requests waiting for the operator, by session.
    asked_at: HashMap<SessionId, Timestamp>,
}

impl Default for Tally {
    fn default() -> Self {
        let tally = Self {
            registry: Registry::default(),
            transitions: Family::default(),
            dispatches: Family::default(),
            plans_finished: Family::default(),
            workspace: Family::default(),
            task_durations: Family::new_with_constructor(duration_histogram),
            queue_wait: duration_histogram(),
            approval_latency: duration_histogram(),
            lagged: Counter::default(),
            running_since: HashMap::new(),
            ready_since: HashMap::new(),
            asked_at: HashMap::new(),
        };
        for kind in [
            "merged",
            "conflict",
            "overlap",
            "held",
            "check_passed",
            "check_failed",
            "landed",
        ] {
            tally
                .workspace
                .get_or_create(&owned(vec![("kind", kind)]))
                .inc_by(0);
        }
        tally.registered()
    }
}

/// What a scrape reads at the time it is made.
pub(crate) struct Now {
    pub(crate) snapshot: Snapshot,
    pub(crate) sessions: BTreeMap<SessionStatus, u64>,
    pub(crate) leases: usize,
    pub(crate) breakers: Vec<(String, BreakerState)>,
    /// Durable commits of the store since it was opened.
    pub(crate) store_commits: u64,
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

impl Tally {
    /// Register the counters and histograms (counters' samples get the `_total` suffix).
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "ocio_transitions",
            "State transitions since the engine started, by entity and target state",
            self.transitions.clone(),
        );
        r.register(
            "ocio_dispatches",
            "Sessions started, by agent",
            self.dispatches.clone(),
        );
        r.register(
            "ocio_workspace_events",
            "Worktree events: branches merged, merge conflicts, live overlaps of edited files, tasks held back by declared files",
            self.workspace.clone(),
        );
        r.register(
            "ocio_plans_finished",
            "Plans whose work is over, by whether every task succeeded",
            self.plans_finished.clone(),
        );
        r.register(
            "ocio_task_duration_seconds",
            "How long a task ran, by the state it went to (done, failed, cancelled, or ready for a retry)",
            self.task_durations.clone(),
        );
        r.register(
            "ocio_task_queue_wait_seconds",
            "How long a ready task waited to start (for an agent, a free slot or its locks)",
            self.queue_wait.clone(),
        );
        r.register(
            "ocio_approval_latency_seconds",
            "From a permission request reaching the operator to its answer",
            self.approval_latency.clone(),
        );
        r.register(
            "ocio_events_lagged",
            "Engine events the metrics missed because they fell behind",
            self.lagged.clone(),
        );
        self
    }

    pub(crate) fn observe(&mut self, event: &EngineEvent) {
        let count = |family: &Family<Labels, Counter>, labels: Vec<(&'static str, &str)>| {
            family.get_or_create(&owned(labels)).inc();
        };
        match event {
            EngineEvent::Transition(DomainEvent { transition, at, .. }) => {
                let labels = vec![
                    ("entity", transition.entity()),
                    ("to", transition.to_name()),
                ];
                count(&self.transitions, labels);
                self.timers(transition, *at);
            }
            EngineEvent::Dispatched { agent, .. } => {
                count(&self.dispatches, vec![("agent", agent.as_str())]);
            }
            EngineEvent::PlanFinished { ok, .. } => {
                let ok = if *ok { "true" } else { "false" };
                count(&self.plans_finished, vec![("ok", ok)]);
            }
            EngineEvent::ApprovalRequested { session, .. }
            | EngineEvent::QuestionAsked { session, .. } => {
                self.asked_at.insert(*session, Timestamp::now());
            }
            EngineEvent::Merged { .. } => count(&self.workspace, vec![("kind", "merged")]),
            EngineEvent::MergeConflict { .. } => {
                count(&self.workspace, vec![("kind", "conflict")]);
            }
            EngineEvent::Overlap { .. } => count(&self.workspace, vec![("kind", "overlap")]),
            EngineEvent::TaskHeld { .. } => count(&self.workspace, vec![("kind", "held")]),
            EngineEvent::CheckEnded { passed, .. } => {
                let kind = if *passed {
                    "check_passed"
                } else {
                    "check_failed"
                };
                count(&self.workspace, vec![("kind", kind)]);
            }
            EngineEvent::PlanLanded { .. } => count(&self.workspace, vec![("kind", "landed")]),
            EngineEvent::PlanSubmitted { .. }
            | EngineEvent::Recovered { .. }
            | EngineEvent::Activity { .. }
            | EngineEvent::SessionUsage { .. }
            | EngineEvent::IntegrationReady { .. }
            | EngineEvent::Paused { .. }
            | EngineEvent::OverBudget { .. }
            | EngineEvent::BudgetResolved { .. }
            | EngineEvent::AgentAdded { .. }
            | EngineEvent::AgentRemoved { .. }
            | EngineEvent::FleetMemberWaiting { .. }
            | EngineEvent::FleetSourceFailed { .. }
            | EngineEvent::FleetSourceRead { .. }
            | EngineEvent::RequestWithdrawn { .. }
            | EngineEvent::CheckStarted { .. }
            | EngineEvent::CheckProgress { .. }
            | EngineEvent::EngineFailed { .. } => {}
        }
    }

    pub(crate) fn lagged(&mut self, missed: u64) {
        self.lagged.inc_by(missed);
    }

    fn timers(&mut self, transition: &Transition, at: Timestamp) {
        match transition {
            Transition::Task { id, to, .. } => {
                if let Some(started) = self.running_since.remove(id) {
                    self.task_durations
                        .get_or_create(&owned(vec![("outcome", to.name())]))
                        .observe(seconds(started, at));
                }
                match to {
                    TaskStatus::Ready => {
                        self.ready_since.insert(*id, at);
                    }
                    TaskStatus::Running => {
                        if let Some(ready) = self.ready_since.remove(id) {
                            self.queue_wait.observe(seconds(ready, at));
                        }
                        self.running_since.insert(*id, at);
                    }
                    _ => {
                        self.ready_since.remove(id);
                    }
                }
            }
            Transition::Session { id, from, .. } if *from == SessionStatus::WaitingApproval => {
                if let Some(asked) = self.asked_at.remove(id) {
                    self.approval_latency.observe(seconds(asked, at));
                }
            }
            Transition::Session { .. } | Transition::Agent { .. } => {}
        }
    }

    /// The whole metrics page (OpenMetrics text): what the events counted, then what a scrape
    /// reads now.
    pub(crate) fn render(&self, now: &Now) -> String {
        let mut page = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode_registry(&mut page, &self.registry);
        let _ = text::encode_registry(&mut page, &now_registry(now));
        let _ = text::encode_eof(&mut page);
        page
    }
}

/// The families read at scrape time: built afresh for each page, so agents and states that are
/// gone leave no series behind.
fn now_registry(now: &Now) -> Registry {
    let snapshot = &now.snapshot;
    let mut r = Registry::default();
    let version = [(vec![("version", env!("CARGO_PKG_VERSION"))], 1)];
    r.register(
        "ocio_build_info",
        "The ocio build serving these metrics",
        gauges(version),
    );
    r.register(
        "ocio_engine_paused",
        "1 while dispatching is paused",
        gauge(i64::from(snapshot.paused)),
    );
    let sessions = SessionStatus::ALL.iter().map(|state| {
        let count = now.sessions.get(state).copied().unwrap_or(0);
        (vec![("state", state.name())], int(count))
    });
    r.register(
        "ocio_sessions",
        "Sessions in the database by state",
        gauges(sessions),
    );
    r.register(
        "ocio_sessions_running",
        "Sessions this engine runs now",
        gauge(int(snapshot.running)),
    );
    let mut tasks: BTreeMap<TaskStatus, u64> = BTreeMap::new();
    for task in snapshot.plans.iter().flat_map(|p| &p.tasks) {
        *tasks.entry(task.status).or_default() += 1;
    }
    let by_state = TaskStatus::ALL.iter().map(|state| {
        let count = tasks.get(state).copied().unwrap_or(0);
        (vec![("state", state.name())], int(count))
    });
    r.register(
        "ocio_tasks",
        "Tasks of the engine's plans by state",
        gauges(by_state),
    );
    r.register(
        "ocio_queue_depth",
        "Tasks ready to run and waiting for an agent, a lock or a slot",
        gauge(int(tasks.get(&TaskStatus::Ready).copied().unwrap_or(0))),
    );
    let agents = &snapshot.agents;
    let load = agents
        .iter()
        .map(|a| (vec![("agent", a.name.as_str())], i64::from(a.load)));
    r.register(
        "ocio_agent_load",
        "Sessions an agent runs now",
        gauges(load),
    );
    let capacity = agents.iter().map(|a| {
        (
            vec![("agent", a.name.as_str())],
            i64::from(a.max_concurrent),
        )
    });
    r.register(
        "ocio_agent_capacity",
        "Sessions an agent may run at once",
        gauges(capacity),
    );
    let status = agents.iter().flat_map(|a| {
        AgentStatus::ALL.iter().map(move |&s| {
            let labels = vec![("agent", a.name.as_str()), ("status", s.name())];
            (labels, i64::from(a.status == s))
        })
    });
    r.register(
        "ocio_agent_status",
        "1 for the status each agent is in",
        gauges(status),
    );
    let breakers = now.breakers.iter().flat_map(|(agent, state)| {
        [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ]
        .into_iter()
        .map(move |each| {
            let labels = vec![("agent", agent.as_str()), ("state", each.name())];
            (labels, i64::from(*state == each))
        })
    });
    r.register(
        "ocio_breaker_state",
        "1 for the state of each OpenCode agent's circuit breaker",
        gauges(breakers),
    );
    r.register(
        "ocio_locks_held",
        "Task lock leases held now",
        gauge(int(now.leases)),
    );
    r.register(
        "ocio_approvals_pending",
        "Permission requests waiting for the operator",
        gauge(int(snapshot.approvals.len())),
    );
    let usage = &snapshot.usage;
    let tokens = [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("reasoning", usage.reasoning_tokens),
        ("cache_read", usage.cache_read_tokens),
        ("cache_write", usage.cache_write_tokens),
    ]
    .map(|(kind, tokens)| (vec![("kind", kind)], int(tokens)));
    r.register(
        "ocio_usage_tokens",
        "Tokens used by the sessions this engine has seen, by kind",
        gauges(tokens),
    );
    let cost = Gauge::<f64, AtomicU64>::default();
    cost.set(usage.cost);
    r.register(
        "ocio_usage_cost_dollars",
        "Cost in US dollars of the sessions this engine has seen",
        cost,
    );
    let commits = Counter::<u64>::default();
    commits.inc_by(now.store_commits);
    r.register(
        "ocio_store_commits",
        "Durable commits of the state database since it was opened (each a sync of the disk; one may carry many state changes)",
        commits,
    );
    super::budgets::register(&mut r, &snapshot.budgets);
    r
}

/// A gauge family, one series per label set. Label values are agent names (letters, digits,
/// `-`, `_`, `.`) and fixed words, none of which needs escaping (the encoder escapes nothing).
fn gauges<'a>(
    rows: impl IntoIterator<Item = (Vec<(&'static str, &'a str)>, i64)>,
) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in rows {
        family.get_or_create(&owned(labels)).set(value);
    }
    family
}

fn gauge(value: i64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(value);
    gauge
}

fn owned(labels: Vec<(&'static str, &str)>) -> Labels {
    labels
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
}

/// A count as a gauge's value (saturating: no count here comes near 2^63).
fn int(count: impl TryInto<i64>) -> i64 {
    count.try_into().unwrap_or(i64::MAX)
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentName, PlanId};

    fn dispatched(agent: &str) -> EngineEvent {
        EngineEvent::Dispatched {
            plan: PlanId::generate(),
            task: TaskId::generate(),
            key: "t".into(),
            session: SessionId::generate(),
            agent: AgentName::new(agent).unwrap(),
            attempt: 1,
        }
    }

    #[test]
    fn the_page_has_every_documented_series_and_counts_events() {
        let mut tally = Tally::default();
        tally.observe(&dispatched("fast"));
        tally.observe(&dispatched("fast"));
        tally.lagged(3);
        let now = Now {
            snapshot: Snapshot::default(),
            sessions: BTreeMap::from([(SessionStatus::Running, 2)]),
            leases: 1,
            breakers: vec![("fast".into(), BreakerState::Open)],
            store_commits: 7,
        };
        let page = tally.render(&now);
        for line in [
            "# HELP ocio_dispatches Sessions started, by agent.\n",
            "# TYPE ocio_dispatches counter\n",
            "ocio_dispatches_total{agent=\"fast\"} 2\n",
            "ocio_events_lagged_total 3\n",
            "ocio_workspace_events_total{kind=\"held\"} 0\n",
            "ocio_sessions{state=\"running\"} 2\n",
            "ocio_sessions{state=\"failed\"} 0\n",
            "ocio_locks_held 1\n",
            "ocio_store_commits_total 7\n",
            "ocio_breaker_state{agent=\"fast\",state=\"open\"} 1\n",
            "ocio_breaker_state{agent=\"fast\",state=\"closed\"} 0\n",
            "ocio_task_queue_wait_seconds_bucket{le=\"+Inf\"} 0\n",
            "# TYPE ocio_task_queue_wait_seconds histogram\n",
            concat!(
                "ocio_build_info{version=\"",
                env!("CARGO_PKG_VERSION"),
                "\"} 1\n"
            ),
        ] {
            assert!(page.contains(line), "no {line:?} in\n{page}");
        }
        // The series the README lists, but for families with no series yet (transitions,
        // finished plans, task durations, agents' load, capacity and status), which the
        // encoder leaves out, as Prometheus' Go client does.
        for name in [
            "ocio_sessions",
            "ocio_sessions_running",
            "ocio_tasks",
            "ocio_queue_depth",
            "ocio_dispatches",
            "ocio_task_queue_wait_seconds",
            "ocio_breaker_state",
            "ocio_locks_held",
            "ocio_approvals_pending",
            "ocio_approval_latency_seconds",
            "ocio_usage_tokens",
            "ocio_usage_cost_dollars",
            "ocio_engine_paused",
            "ocio_events_lagged",
            "ocio_build_info",
            "ocio_budget_spent_tokens",
            "ocio_budget_spent_dollars",
            "ocio_plans_over_budget",
            "ocio_store_commits",
        ] {
            assert!(
                page.contains(&format!("# HELP {name} ")),
                "no {name} in\n{page}"
            );
        }
        assert!(page.ends_with("# EOF\n"), "{page}");
    }
}
