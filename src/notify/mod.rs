//! Telling the operator: which engine events are worth a notice (something starts waiting for
//! them, a plan ends, an agent goes offline), gathered so that a burst is one notice, and sent
//! to the `[notify]` command and webhook from wherever the engine runs. The control room rings
//! and titles its terminal from the same alerts (`crate::tui::alert`); nothing here knows there
//! is a screen.

mod burst;
mod deliver;
mod notifier;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::task::ConflictPolicy;
use crate::domain::{AgentStatus, Transition};
use crate::engine::EngineEvent;
use crate::narration::Narration;

pub use burst::Burst;
pub use notifier::Notifier;

/// Alerts listed one by one in a notice's JSON at most; the rest are counted.
const LISTED: usize = 20;
/// Lines of a notice's message at most (one per alert), and characters of each.
const MESSAGE_LINES: usize = 10;
const LINE_CHARS: usize = 160;
/// The most bytes a notice's JSON takes: ntfy refuses a JSON body over 4 KiB (8 KiB in newer
/// servers), so alerts past this are counted instead of listed.
const BODY_LIMIT: usize = 4000;

/// What an alert is about; `[notify] events` picks which kinds are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Something waits for the operator: a permission request, a question, a conflict parked
    /// for them.
    Waiting,
    /// A plan ended (every task done, or nothing more can run).
    PlanFinished,
    /// An agent went offline (its server cannot be reached).
    AgentOffline,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Waiting, Kind::PlanFinished, Kind::AgentOffline];

    /// The name in the config and in notices' JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Waiting => "waiting",
            Kind::PlanFinished => "plan_finished",
            Kind::AgentOffline => "agent_offline",
        }
    }
}

/// One engine event worth telling the operator about.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub kind: Kind,
    /// What the events pane says about it.
    pub text: String,
    pub at: Timestamp,
    /// The engine event itself (its ids), for a receiver that acts on it.
    pub event: EngineEvent,
}

impl Alert {
    /// The alert `event` is worth, if any. This is where an event is said to make something
    /// wait for the operator (a new kind of waiting is one more arm here, and one more term in
    /// the control room's count, `View::waiting`).
    pub fn of(event: &EngineEvent) -> Option<Alert> {
        let kind = match event {
            EngineEvent::ApprovalRequested { .. } | EngineEvent::QuestionAsked { .. } => {
                Kind::Waiting
            }
            EngineEvent::MergeConflict {
                policy: ConflictPolicy::Manual,
                ..
            } => Kind::Waiting,
            EngineEvent::OverBudget { .. } => Kind::Waiting,
            EngineEvent::PlanFinished { .. } => Kind::PlanFinished,
            EngineEvent::Transition(e) => match &e.transition {
                Transition::Agent { from, to, .. }
                    if *to == AgentStatus::Offline && *from != AgentStatus::Offline =>
                {
                    Kind::AgentOffline
                }
                _ => return None,
            },
            _ => return None,
        };
        let text = Narration::of(event).map_or_else(|| kind.name().to_string(), |n| n.text);
        let at = match event {
            EngineEvent::Transition(e) => e.at,
            _ => Timestamp::now(),
        };
        Some(Alert {
            kind,
            text,
            at,
            event: event.clone(),
        })
    }
}

/// What one burst of alerts tells, as one notice.
#[derive(Debug, Clone)]
pub struct Notice {
    pub alerts: Vec<Alert>,
}

impl Notice {
    pub fn new(alerts: Vec<Alert>) -> Self {
        Self { alerts }
    }

    /// How many alerts of `kind` it holds.
    pub fn count(&self, kind: Kind) -> usize {
        self.alerts.iter().filter(|a| a.kind == kind).count()
    }

    /// One line for the whole burst: `3 waiting for you; plan p succeeded; agent a offline`.
    /// `waiting` is the number said to wait (the control room says how many wait in all, a
    /// notifier how many started waiting); the part is left out when it is 0.
    pub fn headline(&self, waiting: usize) -> String {
        let mut parts = Vec::new();
        if self.count(Kind::Waiting) > 0 && waiting > 0 {
            parts.push(format!("{waiting} waiting for you"));
        }
        let plans: Vec<String> = self
            .alerts
            .iter()
            .filter_map(|a| match &a.event {
                EngineEvent::PlanFinished { name, key, ok, .. } => Some(format!(
                    "plan {} {}",
                    crate::narration::called(name, key),
                    if *ok { "succeeded" } else { "did not succeed" }
                )),
                _ => None,
            })
            .collect();
        match plans.len() {
            0 => {}
            1 => parts.extend(plans),
            n => parts.push(format!("{n} plans finished")),
        }
        let offline: Vec<String> = self
            .alerts
            .iter()
            .filter_map(|a| match &a.event {
                EngineEvent::Transition(e) => match &e.transition {
                    Transition::Agent { name, .. } if a.kind == Kind::AgentOffline => {
                        Some(format!("agent {name} offline"))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        match offline.len() {
            0 => {}
            1 => parts.extend(offline),
            n => parts.push(format!("{n} agents offline")),
        }
        parts.join("; ")
    }

    /// The lines of the alerts, the first [`MESSAGE_LINES`] of them (each clipped to
    /// [`LINE_CHARS`]), then how many more there are.
    pub fn message(&self) -> String {
        let mut lines: Vec<String> = self
            .alerts
            .iter()
            .take(MESSAGE_LINES)
            .map(|a| match a.text.char_indices().nth(LINE_CHARS) {
                Some((at, _)) => format!("{}...", &a.text[..at]),
                None => a.text.clone(),
            })
            .collect();
        if self.alerts.len() > MESSAGE_LINES {
            lines.push(format!(
                "... and {} more",
                self.alerts.len() - MESSAGE_LINES
            ));
        }
        lines.join("\n")
    }

    /// The notice as the command reads it on stdin and the webhook receives it. Its `title`,
    /// `message`, `tags`, `priority` (and `topic`, when given) are the fields of ntfy's JSON
    /// publishing; the rest is for receivers that act on it. `events` lists the first alerts,
    /// as many as keep it within [`BODY_LIMIT`] (at most [`LISTED`]), and `more` counts the rest.
    pub fn to_json(&self, topic: Option<&str>) -> Value {
        let mut listed = self.alerts.len().min(LISTED);
        loop {
            let body = self.body(topic, listed);
            if listed == 0 || body.to_string().len() <= BODY_LIMIT {
                return body;
            }
            listed -= 1;
        }
    }

    /// The JSON with the first `listed` alerts listed.
    fn body(&self, topic: Option<&str>, listed: usize) -> Value {
        let counts: BTreeMap<&str, usize> = Kind::ALL
            .iter()
            .map(|k| (k.name(), self.count(*k)))
            .collect();
        let tags: Vec<&str> = Kind::ALL
            .iter()
            .filter(|k| self.count(**k) > 0)
            .map(|k| k.name())
            .collect();
        let priority = if self.count(Kind::Waiting) > 0 { 4 } else { 3 };
        let mut body = json!({
            "source": "ocio",
            "at": Timestamp::now(),
            "title": format!("ocio: {}", self.headline(self.count(Kind::Waiting))),
            "message": self.message(),
            "tags": tags,
            "priority": priority,
            "counts": counts,
            "events": self.alerts.iter().take(listed).collect::<Vec<_>>(),
            "more": self.alerts.len() - listed,
        });
        if let (Some(topic), Some(map)) = (topic, body.as_object_mut()) {
            map.insert("topic".into(), Value::String(topic.to_string()));
        }
        body
    }
}
