//! `[notify]`: where the engine's notices go (a command, a webhook) and which kinds of event are
//! sent; and its rules, each broken one reported with its key path.

use serde::{Deserialize, Serialize};

use super::locate::PathPart;
use super::validate::{Problem, problem};
use crate::notify::Kind;
use crate::text::shown;

/// `[notify]`: notices of what waits for the operator, plans that ended and agents that went
/// offline, sent from wherever the engine runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// A program and its arguments, run with each notice as one JSON object on stdin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<Vec<String>>,
    /// An http(s) URL each notice is POSTed to as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) webhook: Option<String>,
    /// Added to the JSON as `topic`: with the root URL of an ntfy server as `webhook`, the
    /// topic its notices go to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) topic: Option<String>,
    /// The kinds of event sent; all by default.
    pub(crate) events: Vec<Kind>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            command: None,
            webhook: None,
            topic: None,
            events: Kind::ALL.to_vec(),
        }
    }
}

impl NotifyConfig {
    /// `waiting, plan_finished`: the kinds sent, for the log.
    pub(crate) fn events_text(&self) -> String {
        let names: Vec<&str> = self.events.iter().map(|k| k.name()).collect();
        names.join(", ")
    }
}

/// The rules of `[notify]`: a command names a program, the webhook is an http(s) URL, a topic
/// goes with a webhook, and there is something to send and somewhere to send it.
pub(super) fn validate(notify: &NotifyConfig) -> Vec<Problem> {
    let at = |key: &'static str| vec![PathPart::Key("notify"), PathPart::Key(key)];
    let mut problems = Vec::new();
    if let Some(command) = &notify.command
        && command
            .first()
            .is_none_or(|program| program.trim().is_empty())
    {
        problems.push(problem(
            at("command"),
            "command must name a program and its arguments, e.g. [\"notify-send\", \"ocio\"]",
        ));
    }
    if let Some(url) = &notify.webhook
        && let Some(why) = not_a_webhook(url)
    {
        problems.push(problem(
            at("webhook"),
            format!(
                "webhook `{}` {why}; give an http:// or https:// URL (e.g. \"https://ntfy.sh/\")",
                shown(url)
            ),
        ));
    }
    match &notify.topic {
        Some(_) if notify.webhook.is_none() => problems.push(problem(
            at("topic"),
            "topic only applies with a webhook; add `webhook = \"https://ntfy.sh/\"` or remove it",
        )),
        Some(topic) if topic.is_empty() || topic.contains(['/', ' ']) => {
            problems.push(problem(
                at("topic"),
                format!(
                    "topic `{}` must be a non-empty name without spaces or slashes",
                    shown(topic)
                ),
            ));
        }
        _ => {}
    }
    if notify.events.is_empty() {
        problems.push(problem(
            at("events"),
            "events is empty, so nothing would be sent; list kinds (waiting, plan_finished, agent_offline) or leave it out for all",
        ));
    }
    let configured = *notify != NotifyConfig::default();
    if configured && notify.command.is_none() && notify.webhook.is_none() {
        problems.push(
            problem(
                vec![PathPart::Key("notify")],
                "[notify] sends nowhere: give `command` or `webhook` (or both)",
            )
            .with_hint(
                "e.g. command = [\"notify-send\", \"ocio\"] or webhook = \"https://ntfy.sh/\"",
            ),
        );
    }
    problems
}

/// Why `url` cannot be a webhook, or `None` when it can.
fn not_a_webhook(url: &str) -> Option<&'static str> {
    match reqwest::Url::parse(url) {
        Err(_) => Some("is not a URL"),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
            Some("is not an http:// or https:// URL")
        }
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => Some("names no host"),
        Ok(_) => None,
    }
}
