//! What headless front ends print: one JSON object per engine event on stdout (JSON Lines, see
//! the README for the schema), a short human account on stderr when it is a terminal, and the
//! signals that stop them (SIGINT, SIGTERM, SIGHUP).

use std::io::IsTerminal;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{Failure, exit};
use crate::domain::TaskStatus;
use crate::engine::{EngineEvent, Snapshot};
use crate::host::Host;
use crate::narration::Narration;

/// Where events go, and which.
pub(crate) struct Output {
    /// Also narrate on stderr (it is a terminal).
    human: bool,
    /// Leave `activity` events out of stdout.
    activity: bool,
}

impl Output {
    pub(crate) fn new(activity: bool) -> Self {
        Self {
            human: std::io::stderr().is_terminal(),
            activity,
        }
    }

    /// One engine event: a JSON line, with `at` for those that carry no time of their own.
    pub(crate) fn event(&self, event: &EngineEvent) {
        if self.human {
            narrate(event);
        }
        if !self.activity && matches!(event, EngineEvent::Activity { .. }) {
            return;
        }
        let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.entry("at").or_insert_with(|| json!(Timestamp::now()));
        }
        line(value);
    }

    /// The first line: the engine is up, where it listens and serves metrics.
    pub(crate) fn started(&self, host: &Host) {
        let info = host.info();
        line(json!({
            "type": "engine.started",
            "at": Timestamp::now(),
            "pid": info.pid,
            "version": info.version,
            "database": info.database,
            "socket": host.socket(),
            "metrics": info.metrics,
        }));
        if self.human {
            let socket = host
                .socket()
                .map_or(String::new(), |s| format!(", socket {}", s.display()));
            let metrics = host
                .metrics_addr()
                .map_or(String::new(), |a| format!(", metrics http://{a}/metrics"));
            eprintln!(
                "engine started (database {}{socket}{metrics})",
                info.database.display()
            );
        }
    }

    /// A record of the headless front end itself (`events.lagged`, ...).
    pub(crate) fn note(&self, value: Value) {
        line(value);
    }
}

/// Task totals for the `run.finished` line.
pub(crate) struct Totals {
    pub(crate) done: usize,
    pub(crate) failed: usize,
    pub(crate) blocked: usize,
    pub(crate) cancelled: usize,
    /// Not finished yet (pending, ready, running).
    pub(crate) unfinished: usize,
}

impl Totals {
    /// Over one plan of the snapshot, or all when `plan` is `None`.
    pub(crate) fn of(snapshot: &Snapshot, plan: Option<crate::domain::PlanId>) -> Self {
        let mut totals = Totals {
            done: 0,
            failed: 0,
            blocked: 0,
            cancelled: 0,
            unfinished: 0,
        };
        let tasks = snapshot
            .plans
            .iter()
            .filter(|p| plan.is_none_or(|id| id == p.id))
            .flat_map(|p| &p.tasks);
        for task in tasks {
            match task.status {
                TaskStatus::Done => totals.done += 1,
                TaskStatus::Failed => totals.failed += 1,
                TaskStatus::Blocked => totals.blocked += 1,
                TaskStatus::Cancelled => totals.cancelled += 1,
                TaskStatus::Pending | TaskStatus::Ready | TaskStatus::Running => {
                    totals.unfinished += 1;
                }
            }
        }
        totals
    }

    pub(crate) fn ok(&self) -> bool {
        self.failed + self.blocked + self.cancelled + self.unfinished == 0
    }

    /// The last line of a run.
    pub(crate) fn finished(&self, plan: Option<crate::domain::PlanId>, interrupted: bool) -> Value {
        json!({
            "type": "run.finished",
            "at": Timestamp::now(),
            "plan": plan,
            "ok": self.ok() && !interrupted,
            "interrupted": interrupted,
            "done": self.done,
            "failed": self.failed,
            "blocked": self.blocked,
            "cancelled": self.cancelled,
            "unfinished": self.unfinished,
        })
    }

    /// The last line of a run whose totals cannot be had (the engine stopped): every count
    /// `null`, and why.
    pub(crate) fn unknown(plan: Option<crate::domain::PlanId>, error: &str) -> Value {
        json!({
            "type": "run.finished",
            "at": Timestamp::now(),
            "plan": plan,
            "ok": false,
            "interrupted": true,
            "done": null,
            "failed": null,
            "blocked": null,
            "cancelled": null,
            "unfinished": null,
            "error": format!("task counts unknown: {error}; `ocio status` reads them from the database"),
        })
    }

    /// Exit 0 when every task succeeded, 1 when not.
    pub(crate) fn outcome(&self) -> Result<(), Failure> {
        if self.ok() {
            return Ok(());
        }
        Err(Failure {
            code: exit::FAILED,
            message: format!(
                "{} failed, {} blocked, {} cancelled and {} unfinished tasks",
                self.failed, self.blocked, self.cancelled, self.unfinished
            ),
        })
    }
}

/// One JSON line on stdout. The run goes on when nobody reads it any more: its state is in
/// the database either way.
fn line(value: Value) {
    let _ = super::output::print_text(&value.to_string());
}

/// SIGINT, SIGTERM and SIGHUP, installed before the engine starts so none is missed.
pub(crate) struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    pub(crate) fn install() -> Result<Self, Failure> {
        let make = |kind: SignalKind| {
            signal(kind).map_err(|e| Failure {
                code: exit::FAILED,
                message: format!("cannot handle signals: {e}"),
            })
        };
        Ok(Self {
            int: make(SignalKind::interrupt())?,
            term: make(SignalKind::terminate())?,
            hup: make(SignalKind::hangup())?,
        })
    }

    /// The name of the next signal to arrive.
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// The event's line on stderr: plan and engine lines flush left, a task's indented under them.
fn narrate(event: &EngineEvent) {
    let Some(line) = Narration::of(event) else {
        return;
    };
    let indent = if line.nested { "  " } else { "" };
    let hint = match event {
        EngineEvent::ApprovalRequested { request, .. } => {
            format!("; answer with `ocio approve {request}`")
        }
        _ => String::new(),
    };
    eprintln!("{indent}{}{hint}", line.text);
}
