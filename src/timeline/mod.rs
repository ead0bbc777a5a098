//! A plan's (or the whole engine's) sessions on a time axis: one lane per agent or per task,
//! a bar per session from its dispatch to its end coloured by how it ended, its waits for the
//! operator inside it, retries marked, and the plan's critical path (the chain of tasks that
//! held its end back). Built from the control log (every session transition with its time)
//! and the session and task records, so a finished plan is replayed exactly as it ran; pure
//! here, read from the store by [`read`], drawn by the control room and as SVG by [`svg`].

pub mod read;
pub mod svg;

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{DomainEvent, Session, SessionId, SessionKind, SessionStatus, Task, TaskId};
use crate::domain::{Lifecycle, TaskStatus, Transition};

/// What the lanes are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneBy {
    /// One lane per agent: who did what when, and how busy each was.
    #[default]
    Agent,
    /// One lane per task: its attempts, resolvers and fixes in a row.
    Task,
}

impl LaneBy {
    pub fn other(self) -> Self {
        match self {
            Self::Agent => Self::Task,
            Self::Task => Self::Agent,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Task => "task",
        }
    }
}

/// Sessions on a time axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The plan's name, or what the engine-wide view covers.
    pub title: String,
    /// The axis: from the first dispatch to the last end (or now, while something runs).
    pub from: Timestamp,
    pub to: Timestamp,
    /// Something still runs: the timeline grows.
    pub live: bool,
    pub by: LaneBy,
    pub lanes: Vec<Lane>,
    /// The task keys on the critical path, first to last (empty for the engine-wide view).
    pub critical: Vec<String>,
}

/// One agent's (or task's) sessions, in time order, on as many tracks (rows) as ran at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    pub name: String,
    pub bars: Vec<Bar>,
    /// Rows the lane needs: the most of its sessions that overlapped.
    pub tracks: usize,
}

/// One session, from its dispatch to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub session: SessionId,
    /// `task #2`, `task resolve`, `task fix`: what it was, short.
    pub label: String,
    pub task: Option<String>,
    pub agent: Option<String>,
    pub kind: SessionKind,
    pub attempt: u32,
    pub from: Timestamp,
    /// Its end, or now while it runs.
    pub to: Timestamp,
    pub outcome: Outcome,
    /// While it waited for the operator (a permission or a question).
    pub waits: Vec<Span>,
    /// Its task is on the plan's critical path.
    pub critical: bool,
    /// The row of its lane it is drawn on (sessions that overlap take different rows).
    pub track: usize,
    /// A later attempt after one that failed or timed out (not a run again after a lost
    /// attempt, a merge conflict or a cancellation, by the operator or over budget, which are
    /// no failure of the task's).
    #[serde(default)]
    pub retry: bool,
}

impl Bar {
    /// A later attempt at its task after one that did not succeed: a retry.
    pub fn is_retry(&self) -> bool {
        self.retry
    }
}

/// Marks the retries among `bars`: a task's later attempt whose attempt before failed or
/// timed out; one whose attempt before is not in the record counts as a retry. Tasks are told
/// apart by id (the engine-wide timeline has plans whose tasks share keys), through `tasks`:
/// each bar's session's task.
fn mark_retries(bars: &mut [Bar], tasks: &HashMap<SessionId, TaskId>) {
    let mut ends: HashMap<(TaskId, u32), Outcome> = HashMap::new();
    for bar in bars.iter().filter(|b| b.kind == SessionKind::Code) {
        if let Some(task) = tasks.get(&bar.session) {
            ends.insert((*task, bar.attempt), bar.outcome);
        }
    }
    let retries: Vec<bool> = bars
        .iter()
        .map(|bar| {
            let before = tasks
                .get(&bar.session)
                .and_then(|task| ends.get(&(*task, bar.attempt.saturating_sub(1))));
            bar.kind == SessionKind::Code
                && bar.attempt > 1
                && before
                    .is_none_or(|outcome| matches!(outcome, Outcome::Failed | Outcome::TimedOut))
        })
        .collect();
    for (bar, retry) in bars.iter_mut().zip(retries) {
        bar.retry = retry;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// How a session ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
    /// Its run did not survive (see [`SessionStatus::Lost`]).
    Lost,
}

impl Outcome {
    fn of(status: SessionStatus) -> Self {
        match status {
            SessionStatus::Completed => Self::Completed,
            SessionStatus::Failed => Self::Failed,
            SessionStatus::Cancelled => Self::Cancelled,
            SessionStatus::TimedOut => Self::TimedOut,
            SessionStatus::Lost => Self::Lost,
            _ => Self::Running,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed-out",
            Self::Lost => "lost",
        }
    }
}

/// Steps for the time axis, in seconds.
const STEPS: [i64; 18] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];

/// The axis step (seconds) for `span` seconds with at most `ticks` ticks.
pub fn tick_step(span: f64, ticks: usize) -> i64 {
    let ticks = ticks.max(1) as f64;
    STEPS
        .iter()
        .copied()
        .find(|step| span / *step as f64 <= ticks)
        .unwrap_or(86_400)
}

/// An offset from the axis' start as a person reads it: `0s`, `45s`, `2m`, `1m30s`, `1h05m`.
pub fn offset_label(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// A duration as a person reads it: `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn duration_label(from: Timestamp, to: Timestamp) -> String {
    let ms = to.duration_since(from).as_millis().max(0);
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms => offset_label((ms / 1000) as i64),
    }
}

/// What a timeline is built from: sessions and tasks as stored, and the control log's
/// transitions of those sessions, in log order.
pub struct Record<'a> {
    pub title: String,
    pub sessions: &'a [Session],
    pub tasks: &'a [Task],
    pub events: &'a [DomainEvent],
    pub now: Timestamp,
}

/// The timeline of `record`, lanes `by` agent or task.
pub fn build(record: &Record<'_>, by: LaneBy) -> Timeline {
    let keys: HashMap<_, _> = record
        .tasks
        .iter()
        .map(|t| (t.id, t.key.as_str()))
        .collect();
    let mut traces = trace(record.events);
    let mut bars: Vec<Bar> = record
        .sessions
        .iter()
        .map(|s| {
            let task = s.task.and_then(|t| keys.get(&t)).map(|k| k.to_string());
            bar(s, task, traces.remove(&s.id), record.now)
        })
        .collect();
    bars.sort_by_key(|b| (b.from, b.session));
    let tasks: HashMap<SessionId, TaskId> = record
        .sessions
        .iter()
        .filter_map(|s| Some((s.id, s.task?)))
        .collect();
    mark_retries(&mut bars, &tasks);
    let critical = critical_path(record.tasks, &bars);
    let on_path: HashSet<&str> = critical.iter().map(String::as_str).collect();
    for bar in &mut bars {
        bar.critical = bar.task.as_deref().is_some_and(|t| on_path.contains(t));
    }
    let live = bars.iter().any(|b| b.outcome == Outcome::Running);
    let from = bars.iter().map(|b| b.from).min().unwrap_or(record.now);
    let to = match live {
        true => record.now,
        false => bars.iter().map(|b| b.to).max().unwrap_or(record.now),
    };
    Timeline {
        title: record.title.clone(),
        from,
        to: to.max(from),
        live,
        by,
        lanes: lanes(bars, by),
        critical,
    }
}

/// What the control log says of one session: when it was dispatched, when it ended and how,
/// and its waits for the operator.
#[derive(Default)]
struct Trace {
    dispatched: Option<Timestamp>,
    ended: Option<(Timestamp, SessionStatus)>,
    waits: Vec<Span>,
    waiting_since: Option<Timestamp>,
}

fn trace(events: &[DomainEvent]) -> HashMap<SessionId, Trace> {
    let mut traces: HashMap<SessionId, Trace> = HashMap::new();
    for event in events {
        let Transition::Session { id, to, .. } = &event.transition else {
            continue;
        };
        let trace = traces.entry(*id).or_default();
        let at = event.at;
        if trace.dispatched.is_none() && !matches!(to, SessionStatus::Pending) {
            trace.dispatched = Some(at);
        }
        match (to, trace.waiting_since) {
            (SessionStatus::WaitingApproval, None) => trace.waiting_since = Some(at),
            (SessionStatus::WaitingApproval, Some(_)) => {}
            (_, Some(since)) => {
                trace.waits.push(Span {
                    from: since,
                    to: at,
                });
                trace.waiting_since = None;
            }
            (_, None) => {}
        }
        if to.is_terminal() {
            trace.ended = Some((at, *to));
        }
    }
    traces
}

/// A session's bar: its trace where the log has one, else what its record says.
fn bar(session: &Session, task: Option<String>, trace: Option<Trace>, now: Timestamp) -> Bar {
    let trace = trace.unwrap_or_default();
    let from = trace
        .dispatched
        .or(session.started_at)
        .unwrap_or(session.created_at);
    let (to, outcome) = match trace.ended {
        Some((at, status)) => (at, Outcome::of(status)),
        None if session.status.is_terminal() => (
            session.finished_at.unwrap_or(from),
            Outcome::of(session.status),
        ),
        None => (now, Outcome::Running),
    };
    let mut waits = trace.waits;
    if let Some(since) = trace.waiting_since {
        waits.push(Span { from: since, to });
    }
    let label = match (&task, session.kind) {
        (Some(key), SessionKind::Resolve) => format!("{key} resolve"),
        (Some(key), SessionKind::Fix) => format!("{key} fix"),
        (Some(key), _) => format!("{key} #{}", session.attempt),
        (None, _) => session.title.clone(),
    };
    Bar {
        session: session.id,
        label,
        task,
        agent: session.agent.as_ref().map(|a| a.as_str().to_string()),
        kind: session.kind,
        attempt: session.attempt,
        from,
        to: to.max(from),
        outcome,
        waits,
        critical: false,
        track: 0,
        retry: false,
    }
}

/// The chain of tasks that held the plan's end back: from the task that finished last, back
/// through the dependency of each that finished last, first to last. Tasks that did not end
/// done are not on it.
fn critical_path(tasks: &[Task], bars: &[Bar]) -> Vec<String> {
    let mut ends: HashMap<&str, Timestamp> = HashMap::new();
    for bar in bars {
        if let Some(key) = bar.task.as_deref() {
            let end = ends.entry(key).or_insert(bar.to);
            *end = (*end).max(bar.to);
        }
    }
    let done: HashMap<&str, &Task> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Done && ends.contains_key(t.key.as_str()))
        .map(|t| (t.key.as_str(), t))
        .collect();
    let last_of = |keys: &mut dyn Iterator<Item = &str>| {
        keys.filter(|k| done.contains_key(k))
            .max_by_key(|k| (ends.get(k).copied(), std::cmp::Reverse(k.to_string())))
            .map(str::to_string)
    };
    let mut path = Vec::new();
    let mut next = last_of(&mut done.keys().copied());
    while let Some(key) = next {
        if path.contains(&key) {
            break;
        }
        next = done
            .get(key.as_str())
            .and_then(|t| last_of(&mut t.needs.iter().map(String::as_str)));
        path.push(key);
    }
    path.reverse();
    path
}

/// Bars into lanes, each lane in time order, lanes by their first bar.
fn lanes(bars: Vec<Bar>, by: LaneBy) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    for bar in bars {
        let name = match by {
            LaneBy::Agent => bar.agent.clone().unwrap_or_else(|| "(no agent)".into()),
            LaneBy::Task => bar.task.clone().unwrap_or_else(|| bar.label.clone()),
        };
        match lanes.iter_mut().find(|l| l.name == name) {
            Some(lane) => lane.bars.push(bar),
            None => lanes.push(Lane {
                name,
                bars: vec![bar],
                tracks: 1,
            }),
        }
    }
    for lane in &mut lanes {
        lane.tracks = assign_tracks(&mut lane.bars);
    }
    lanes
}

/// Each bar (in time order) on the first row free by its start; how many rows that took.
fn assign_tracks(bars: &mut [Bar]) -> usize {
    let mut ends: Vec<Timestamp> = Vec::new();
    for bar in bars.iter_mut() {
        let free = ends.iter().position(|end| *end <= bar.from);
        bar.track = free.unwrap_or(ends.len());
        match free {
            Some(track) => ends[track] = bar.to,
            None => ends.push(bar.to),
        }
    }
    ends.len().max(1)
}

#[cfg(test)]
pub(crate) mod tests;
