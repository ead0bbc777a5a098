//! A run's server events as transcript [`Activity`] for the engine: text as it streams, tool
//! calls as they move, steps with the session's usage so far, the files a session edits, and
//! the provider retries the server waits for.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::event::ServerEvent;
use super::wire::{Part, SessionStatus, ToolState};
use crate::domain::Usage;
use crate::engine::view::Activity;

/// Turns one run's server events into transcript activity: text grows by deltas (sent at most
/// every `every` per part, and in full on each part update), steps add up to the session's
/// usage so far.
#[derive(Debug)]
pub(crate) struct Transcriber {
    texts: HashMap<String, (String, Instant)>,
    steps: HashMap<String, Usage>,
    every: Duration,
    /// The provider retry the server waits for: its attempt and the provider's message.
    retry: Option<(u32, String)>,
    /// The operator's messages (ocio's ids): the engine wrote each in the transcript as it was
    /// said, so the server's copy is not told again.
    operators: HashSet<String>,
}

impl Transcriber {
    /// Part `part` had said `text` so far (as stored before a restart): its next deltas are
    /// added to it, and the next is told at once.
    pub(crate) fn streamed(&mut self, part: &str, text: &str) {
        let never = Instant::now() - self.every;
        self.texts
            .insert(part.to_string(), (text.to_string(), never));
    }

    /// What follows is the session told again from its start (the server's copy of it): its
    /// steps add up again from the first, so each says what it said when it was first told.
    pub(crate) fn told_again(&mut self) {
        self.steps.clear();
    }

    /// Message `id` (the server's id) is the operator's: its text is in the transcript already.
    pub(crate) fn operators(&mut self, id: String) {
        self.operators.insert(id);
    }
}

impl Default for Transcriber {
    fn default() -> Self {
        Self {
            texts: HashMap::new(),
            steps: HashMap::new(),
            every: Duration::from_millis(200),
            retry: None,
            operators: HashSet::new(),
        }
    }
}

impl Transcriber {
    /// What the event shows, with the part it belongs to (entries of one part replace each
    /// other).
    pub(crate) fn activity(&mut self, event: &ServerEvent) -> Option<(Activity, Option<String>)> {
        match event {
            ServerEvent::PartUpdated { part } => self.part(part),
            ServerEvent::PartDelta {
                part_id,
                field,
                delta,
                ..
            } if field == "text" => {
                // Looked up before it is inserted: a streamed part's id is not copied per delta.
                if !self.texts.contains_key(part_id) {
                    let never = Instant::now() - self.every;
                    self.texts.insert(part_id.clone(), (String::new(), never));
                }
                let (text, sent) = self.texts.get_mut(part_id)?;
                text.push_str(delta);
                if sent.elapsed() < self.every {
                    return None;
                }
                *sent = Instant::now();
                Some((Activity::Text { text: text.clone() }, Some(part_id.clone())))
            }
            ServerEvent::SessionStatus { status, .. } => self.status(status),
            ServerEvent::FileEdited { file } => Some((
                Activity::Edited { file: file.clone() },
                Some(format!("edited:{file}")),
            )),
            ServerEvent::SessionError {
                error: Some(error), ..
            } => {
                // An abort is what was asked (an interrupt, a cancel), not a failure.
                let text = match error.name.as_str() {
                    "MessageAbortedError" => "the step under way was stopped".to_string(),
                    name => format!(
                        "{name}: {}",
                        error.message.as_deref().unwrap_or("no details")
                    ),
                };
                Some((Activity::Note { text }, None))
            }
            _ => None,
        }
    }

    /// A provider retry shows until the server is busy with the session again (the retry line
    /// is then replaced by a note of the failed attempt); busy or idle otherwise say nothing.
    fn status(&mut self, status: &SessionStatus) -> Option<(Activity, Option<String>)> {
        match status {
            SessionStatus::Retry {
                attempt,
                message,
                next,
            } => {
                self.retry = Some((*attempt, message.clone()));
                Some((
                    Activity::Retry {
                        attempt: *attempt,
                        message: message.clone(),
                        next: jiff::Timestamp::from_millisecond(*next).ok(),
                    },
                    Some(format!("retry:{attempt}")),
                ))
            }
            SessionStatus::Busy => {
                let (attempt, message) = self.retry.take()?;
                Some((
                    Activity::Note {
                        text: format!(
                            "provider failed ({message}); trying again after attempt {attempt}"
                        ),
                    },
                    Some(format!("retry:{attempt}")),
                ))
            }
            _ => {
                self.retry = None;
                None
            }
        }
    }

    fn part(&mut self, part: &Part) -> Option<(Activity, Option<String>)> {
        let id = Some(part.id().to_string());
        match part {
            Part::Text(t)
                if !t.synthetic
                    && !t.text.is_empty()
                    && !self.operators.contains(&t.message_id) =>
            {
                self.texts
                    .insert(t.id.clone(), (t.text.clone(), Instant::now()));
                // A prompt ocio sent shows as the task's own, without what ocio appended.
                let text = crate::plan::context::own_prompt(&t.text).to_string();
                Some((Activity::Text { text }, id))
            }
            Part::Tool(tool) => {
                let (status, title) = match &tool.state {
                    ToolState::Pending { input } => ("pending", describe(input)),
                    ToolState::Running { input, title } => (
                        "running",
                        title
                            .as_deref()
                            .map_or_else(|| describe(input), |t| shown_title(t, input)),
                    ),
                    ToolState::Completed { input, title, .. } => {
                        ("completed", shown_title(title, input))
                    }
                    ToolState::Error { input, .. } => ("error", describe(input)),
                    _ => ("unknown", String::new()),
                };
                Some((
                    Activity::Tool {
                        tool: tool.tool.clone(),
                        status: status.into(),
                        title,
                    },
                    id,
                ))
            }
            Part::StepFinish(step) => {
                let tokens = &step.tokens;
                self.steps.insert(
                    step.id.clone(),
                    Usage {
                        input_tokens: tokens.input,
                        output_tokens: tokens.output,
                        reasoning_tokens: tokens.reasoning,
                        cache_read_tokens: tokens.cache.read,
                        cache_write_tokens: tokens.cache.write,
                        cost: step.cost,
                    },
                );
                let mut usage = Usage::default();
                for step in self.steps.values() {
                    usage += *step;
                }
                Some((Activity::Step { usage }, id))
            }
            _ => None,
        }
    }
}

/// OpenCode's title for a tool call (a file relative to its worktree), unless that hides where
/// the file is: outside the worktree (`../../../etc/x`) or under a worktree of `/` (`tmp/x`
/// for `/tmp/x`); then the file as the call named it.
fn shown_title(title: &str, input: &serde_json::Value) -> String {
    let file = input.get("filePath").and_then(|v| v.as_str());
    match file {
        _ if title.is_empty() => describe(input),
        Some(file)
            if file.starts_with('/')
                && (title.starts_with("../") || file.strip_prefix('/') == Some(title)) =>
        {
            crate::text::clip(file, 120)
        }
        _ => title.to_string(),
    }
}

/// A tool call's arguments in a few words: the file or command it works on.
fn describe(input: &serde_json::Value) -> String {
    ["filePath", "path", "command", "pattern", "url"]
        .iter()
        .find_map(|k| input.get(k).and_then(|v| v.as_str()))
        .map(|s| crate::text::clip(s, 120))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::opencode::event;

    /// An abort (the operator's interrupt, a cancel) reads as what it is, not as an error
    /// (`MessageAbortedError: Aborted`); another error says its name and message.
    #[test]
    fn an_abort_is_told_as_a_stop_not_an_error() {
        let error = |name: &str| ServerEvent::SessionError {
            session_id: Some("ses_1".into()),
            error: Some(crate::opencode::wire::MessageError {
                name: name.into(),
                message: Some("Aborted".into()),
                status_code: None,
                is_retryable: None,
            }),
        };
        let mut transcriber = Transcriber::default();
        let said = |t: &mut Transcriber, name| t.activity(&error(name)).map(|(a, _)| a.summary());
        assert_eq!(
            said(&mut transcriber, "MessageAbortedError").as_deref(),
            Some("the step under way was stopped")
        );
        assert_eq!(
            said(&mut transcriber, "APIError").as_deref(),
            Some("APIError: Aborted")
        );
    }

    /// A file outside the session's worktree, or under a worktree of `/`, shows as the call
    /// named it (it read `../../../../outside/perm.txt` and `tmp/try2/greeting.txt`).
    #[test]
    fn a_tool_calls_file_shows_where_it_is() {
        let input = |file: &str| serde_json::json!({ "filePath": file });
        let shown = |title: &str, file: &str| shown_title(title, &input(file));
        assert_eq!(
            shown("../../../../outside/perm.txt", "/outside/perm.txt"),
            "/outside/perm.txt"
        );
        assert_eq!(
            shown("tmp/try2/greeting.txt", "/tmp/try2/greeting.txt"),
            "/tmp/try2/greeting.txt"
        );
        assert_eq!(shown("src/lib.rs", "/repo/src/lib.rs"), "src/lib.rs");
        assert_eq!(shown("", "/repo/src/lib.rs"), "/repo/src/lib.rs");
        assert_eq!(
            shown_title("ls", &serde_json::json!({ "command": "ls" })),
            "ls"
        );
    }

    /// Re-attached while a text streamed: its next delta is added to what was stored, and
    /// told at once.
    #[test]
    fn a_text_streamed_before_a_restart_goes_on_from_what_was_stored() {
        let mut transcriber = Transcriber::default();
        transcriber.streamed("prt_1", "word0 word1 ");
        let delta = ServerEvent::PartDelta {
            session_id: "ses_1".into(),
            message_id: "msg_1".into(),
            part_id: "prt_1".into(),
            field: "text".into(),
            delta: "word2 ".into(),
        };
        let (activity, part) = transcriber.activity(&delta).unwrap();
        assert_eq!(
            activity,
            Activity::Text {
                text: "word0 word1 word2 ".into()
            }
        );
        assert_eq!(part.as_deref(), Some("prt_1"));
    }

    /// The recorded stream of a real write-tool session, through the transcriber.
    #[test]
    fn a_recorded_session_becomes_text_a_tool_call_and_steps() {
        let path = format!(
            "{}/tests/fixtures/opencode/sample-events-write-tool.sse",
            env!("CARGO_MANIFEST_DIR")
        );
        let raw = std::fs::read_to_string(path).unwrap();
        let mut transcriber = Transcriber {
            every: Duration::ZERO,
            ..Transcriber::default()
        };
        let mut seen = Vec::new();
        for data in raw.lines().filter_map(|l| l.strip_prefix("data: ")) {
            let Ok(Some(event)) = event::decode(data) else {
                continue;
            };
            if let Some((activity, _)) = transcriber.activity(&event) {
                seen.push(activity);
            }
        }
        let tools: Vec<&Activity> = seen
            .iter()
            .filter(|a| matches!(a, Activity::Tool { .. }))
            .collect();
        assert!(tools.iter().any(|a| matches!(a, Activity::Tool { tool, status, .. } if tool == "write" && status == "completed")), "{seen:#?}");
        let steps: Vec<u64> = seen
            .iter()
            .filter_map(|a| match a {
                Activity::Step { usage } => Some(usage.total_tokens()),
                _ => None,
            })
            .collect();
        assert!(
            !steps.is_empty() && steps.windows(2).all(|w| w[0] <= w[1]),
            "usage only grows: {steps:?}"
        );
    }

    fn decoded(data: &str) -> ServerEvent {
        event::decode(data).unwrap().unwrap()
    }

    fn status(json: &str) -> ServerEvent {
        decoded(&format!(
            r#"{{"type":"session.status","properties":{{"sessionID":"ses_1","status":{json}}}}}"#
        ))
    }

    /// Issue "Trust in daily use", item 11: while the server retries a failing provider the
    /// session says so (attempt, the provider's message, when the next try is), until the
    /// server is busy with it again. The status JSON is the real server's (1.18.33).
    #[test]
    fn a_provider_retry_is_shown_until_the_session_is_busy_again() {
        let mut transcriber = Transcriber::default();
        assert!(
            transcriber
                .activity(&status(r#"{"type":"busy"}"#))
                .is_none()
        );
        let retry = status(
            r#"{"type":"retry","attempt":1,"message":"fake failure 500","next":1796309247698}"#,
        );
        let (activity, part) = transcriber
            .activity(&retry)
            .expect("a retry status is shown");
        let next = jiff::Timestamp::from_millisecond(1_796_309_247_698).unwrap();
        let line = activity.line(next - jiff::SignedDuration::from_secs(12));
        assert_eq!(line, "retrying (attempt 1: fake failure 500, next in 12s)");
        assert!(activity.is_retry());
        let (busy, busy_part) = transcriber
            .activity(&status(r#"{"type":"busy"}"#))
            .expect("busy again after a retry is shown");
        assert!(!busy.is_retry(), "{busy:?}");
        assert_eq!(busy_part, part, "replaces the retry line");
        assert!(busy.summary().contains("fake failure 500"), "{busy:?}");
        // Busy when nothing was retried says nothing.
        assert!(
            transcriber
                .activity(&status(r#"{"type":"busy"}"#))
                .is_none()
        );
    }

    /// Issue "Trust in daily use", item 10: the prompt a session was sent shows as the task's
    /// own prompt, without the context and publishing instructions ocio appends to it.
    #[test]
    fn the_prompt_shows_without_what_ocio_appends() {
        use crate::plan::context::{
            PUBLISH_INSTRUCTIONS, UpstreamContext, context_section, parse_published,
        };
        let own = "Write the users API.\nUse axum.";
        let summary = "Done.\nOCIO-PUBLISH api_path=/v2/users";
        let upstream = [UpstreamContext {
            task: "design".into(),
            summary: summary.into(),
            files_changed: vec!["src/lib.rs".into()],
            values: parse_published(summary),
        }];
        let sent = format!(
            "{own}\n\n{}\n\n{PUBLISH_INSTRUCTIONS}",
            context_section(&upstream, 16 * 1024)
        );
        let part = Part::Text(crate::opencode::wire::TextPart {
            id: "prt_1".into(),
            session_id: "ses_1".into(),
            message_id: "msg_1".into(),
            text: sent,
            synthetic: false,
        });
        let mut transcriber = Transcriber::default();
        let (activity, _) = transcriber
            .activity(&ServerEvent::PartUpdated { part })
            .unwrap();
        assert_eq!(activity, Activity::Text { text: own.into() });
        assert_eq!(activity.summary(), "Use axum.");
        // Only the sent prompt alone says nothing else.
        let publish_only = format!("{own}\n\n{PUBLISH_INSTRUCTIONS}");
        assert_eq!(crate::plan::context::own_prompt(&publish_only), own);
    }
}
