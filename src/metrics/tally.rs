//! What the metrics count from engine events (transitions, dispatches, durations, approval
//! latency), and the page that puts them together with what a scrape reads now (the engine's
//! snapshot, session counts from the store, circuit breakers).

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;

use super::exposition::{DURATION_BUCKETS, Histogram, Page};
use crate::domain::{
    AgentStatus, DomainEvent, Lifecycle, SessionId, SessionStatus, TaskId, TaskStatus, Transition,
};
use crate::engine::{EngineEvent, Snapshot};
use crate::opencode::breaker::BreakerState;

/// Counters and timers fed by engine events, owned by the metrics task.
pub struct Tally {
    transitions: BTreeMap<(&'static str, &'static str), u64>,
    dispatches: BTreeMap<String, u64>,
    plans_finished: BTreeMap<bool, u64>,
    /// Worktree events by kind: merged, conflict, overlap, held.
    workspace: BTreeMap<&'static str, u64>,
    task_durations: BTreeMap<&'static str, Histogram>,
    queue_wait: Histogram,
    approval_latency: Histogram,
    lagged: u64,
    /// When each running task started, and when each ready task became ready.
    running_since: HashMap<TaskId, Timestamp>,
    ready_since: HashMap<TaskId, Timestamp>,
    /// Permission requests waiting for the operator, by session.
    asked_at: HashMap<SessionId, Timestamp>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            transitions: BTreeMap::new(),
            dispatches: BTreeMap::new(),
            plans_finished: BTreeMap::new(),
            workspace: BTreeMap::new(),
            task_durations: BTreeMap::new(),
            queue_wait: Histogram::new(DURATION_BUCKETS),
            approval_latency: Histogram::new(DURATION_BUCKETS),
            lagged: 0,
            running_since: HashMap::new(),
            ready_since: HashMap::new(),
            asked_at: HashMap::new(),
        }
    }
}

/// What a scrape reads at the time it is made.
pub struct Now {
    pub snapshot: Snapshot,
    pub sessions: BTreeMap<SessionStatus, u64>,
    pub leases: usize,
    pub breakers: Vec<(String, BreakerState)>,
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

impl Tally {
    pub fn observe(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::Transition(DomainEvent { transition, at, .. }) => {
                *self
                    .transitions
                    .entry((transition.entity(), transition.to_name()))
                    .or_default() += 1;
                self.timers(transition, *at);
            }
            EngineEvent::Dispatched { agent, .. } => {
                *self.dispatches.entry(agent.to_string()).or_default() += 1;
            }
            EngineEvent::PlanFinished { ok, .. } => {
                *self.plans_finished.entry(*ok).or_default() += 1;
            }
            EngineEvent::ApprovalRequested { session, .. } => {
                self.asked_at.insert(*session, Timestamp::now());
            }
            EngineEvent::Merged { .. } => *self.workspace.entry("merged").or_default() += 1,
            EngineEvent::MergeConflict { .. } => {
                *self.workspace.entry("conflict").or_default() += 1
            }
            EngineEvent::Overlap { .. } => *self.workspace.entry("overlap").or_default() += 1,
            EngineEvent::TaskHeld { .. } => *self.workspace.entry("held").or_default() += 1,
            EngineEvent::PlanSubmitted { .. }
            | EngineEvent::Recovered { .. }
            | EngineEvent::Activity { .. }
            | EngineEvent::IntegrationReady { .. }
            | EngineEvent::Paused { .. }
            | EngineEvent::EngineFailed { .. } => {}
        }
    }

    pub fn lagged(&mut self, missed: u64) {
        self.lagged += missed;
    }

    fn timers(&mut self, transition: &Transition, at: Timestamp) {
        match transition {
            Transition::Task { id, to, .. } => {
                if let Some(started) = self.running_since.remove(id) {
                    self.task_durations
                        .entry(to.name())
                        .or_insert_with(|| Histogram::new(DURATION_BUCKETS))
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

    /// The whole metrics page.
    pub fn render(&self, now: &Now) -> String {
        let mut page = Page::default();
        let snapshot = &now.snapshot;
        page.family(
            "ocio_build_info",
            "gauge",
            "The ocio build serving these metrics.",
        );
        page.sample(
            "ocio_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        page.single(
            "ocio_engine_paused",
            "gauge",
            "1 while dispatching is paused.",
            f64::from(u8::from(snapshot.paused)),
        );

        page.family(
            "ocio_sessions",
            "gauge",
            "Sessions in the database by state.",
        );
        for &state in SessionStatus::ALL {
            let count = now.sessions.get(&state).copied().unwrap_or(0);
            page.sample("ocio_sessions", &[("state", state.name())], count as f64);
        }
        page.single(
            "ocio_sessions_running",
            "gauge",
            "Sessions this engine runs now.",
            snapshot.running as f64,
        );

        let mut tasks: BTreeMap<TaskStatus, u64> = BTreeMap::new();
        for task in snapshot.plans.iter().flat_map(|p| &p.tasks) {
            *tasks.entry(task.status).or_default() += 1;
        }
        page.family(
            "ocio_tasks",
            "gauge",
            "Tasks of the engine's plans by state.",
        );
        for &state in TaskStatus::ALL {
            let count = tasks.get(&state).copied().unwrap_or(0);
            page.sample("ocio_tasks", &[("state", state.name())], count as f64);
        }
        let ready = tasks.get(&TaskStatus::Ready).copied().unwrap_or(0);
        page.single(
            "ocio_queue_depth",
            "gauge",
            "Tasks ready to run and waiting for an agent, a lock or a slot.",
            ready as f64,
        );

        page.family(
            "ocio_transitions_total",
            "counter",
            "State transitions since the engine started, by entity and target state.",
        );
        for ((entity, to), count) in &self.transitions {
            page.sample(
                "ocio_transitions_total",
                &[("entity", entity), ("to", to)],
                *count as f64,
            );
        }
        page.family(
            "ocio_dispatches_total",
            "counter",
            "Sessions started, by agent.",
        );
        for (agent, count) in &self.dispatches {
            page.sample("ocio_dispatches_total", &[("agent", agent)], *count as f64);
        }
        page.family(
            "ocio_workspace_events_total",
            "counter",
            "Worktree events: branches merged, merge conflicts, live overlaps of edited files, tasks held back by declared files.",
        );
        for kind in ["merged", "conflict", "overlap", "held"] {
            let count = self.workspace.get(kind).copied().unwrap_or(0);
            page.sample(
                "ocio_workspace_events_total",
                &[("kind", kind)],
                count as f64,
            );
        }
        page.family(
            "ocio_plans_finished_total",
            "counter",
            "Plans whose work is over, by whether every task succeeded.",
        );
        for (ok, count) in &self.plans_finished {
            page.sample(
                "ocio_plans_finished_total",
                &[("ok", if *ok { "true" } else { "false" })],
                *count as f64,
            );
        }
        page.family("ocio_task_duration_seconds", "histogram", "How long a task ran, by the state it went to (done, failed, cancelled, or ready for a retry).");
        for (outcome, histogram) in &self.task_durations {
            page.histogram(
                "ocio_task_duration_seconds",
                &[("outcome", outcome)],
                histogram,
            );
        }
        page.family(
            "ocio_task_queue_wait_seconds",
            "histogram",
            "How long a ready task waited to start (for an agent, a free slot or its locks).",
        );
        page.histogram("ocio_task_queue_wait_seconds", &[], &self.queue_wait);

        page.family("ocio_agent_load", "gauge", "Sessions an agent runs now.");
        for agent in &snapshot.agents {
            page.sample(
                "ocio_agent_load",
                &[("agent", agent.name.as_str())],
                f64::from(agent.load),
            );
        }
        page.family(
            "ocio_agent_capacity",
            "gauge",
            "Sessions an agent may run at once.",
        );
        for agent in &snapshot.agents {
            page.sample(
                "ocio_agent_capacity",
                &[("agent", agent.name.as_str())],
                f64::from(agent.max_concurrent),
            );
        }
        page.family(
            "ocio_agent_status",
            "gauge",
            "1 for the status each agent is in.",
        );
        for agent in &snapshot.agents {
            for &status in AgentStatus::ALL {
                let on = f64::from(u8::from(agent.status == status));
                page.sample(
                    "ocio_agent_status",
                    &[("agent", agent.name.as_str()), ("status", status.name())],
                    on,
                );
            }
        }
        page.family(
            "ocio_breaker_state",
            "gauge",
            "1 for the state of each OpenCode agent's circuit breaker.",
        );
        for (agent, state) in &now.breakers {
            for each in [
                BreakerState::Closed,
                BreakerState::Open,
                BreakerState::HalfOpen,
            ] {
                let on = f64::from(u8::from(*state == each));
                page.sample(
                    "ocio_breaker_state",
                    &[("agent", agent), ("state", each.name())],
                    on,
                );
            }
        }
        page.single(
            "ocio_locks_held",
            "gauge",
            "Task lock leases held now.",
            now.leases as f64,
        );
        page.single(
            "ocio_approvals_pending",
            "gauge",
            "Permission requests waiting for the operator.",
            snapshot.approvals.len() as f64,
        );
        page.family(
            "ocio_approval_latency_seconds",
            "histogram",
            "From a permission request reaching the operator to its answer.",
        );
        page.histogram("ocio_approval_latency_seconds", &[], &self.approval_latency);

        let usage = &snapshot.usage;
        page.family(
            "ocio_usage_tokens",
            "gauge",
            "Tokens used by the sessions this engine has seen, by kind.",
        );
        for (kind, tokens) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("reasoning", usage.reasoning_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ] {
            page.sample("ocio_usage_tokens", &[("kind", kind)], tokens as f64);
        }
        page.single(
            "ocio_usage_cost_dollars",
            "gauge",
            "Cost in US dollars of the sessions this engine has seen.",
            usage.cost,
        );
        page.single(
            "ocio_events_lagged_total",
            "counter",
            "Engine events the metrics missed because they fell behind.",
            self.lagged as f64,
        );
        page.finish()
    }
}
