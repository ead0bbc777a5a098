//! The control log's recent past, for a room that starts (attached to an engine, or hosting one
//! on a database that has run before): its lines in the events pane, read exactly as live
//! events read, and the agents' load sparklines rebuilt from when sessions started and ended.

use std::collections::{HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};

use super::view::{LOAD_SAMPLES, LOG, LogLine, View, log_line};
use crate::domain::{DomainEvent, Lifecycle, SessionId, SessionStatus, Transition};
use crate::engine::{EngineEvent, Logged, Noted};

/// When a session took a slot of its agent and when it gave it back, where the log says.
type Span = (Option<Timestamp>, Option<Timestamp>);

impl View {
    /// Show `entries` (the control log's newest, oldest first) and `notes` (what else was told,
    /// oldest first) before what this room has shown live, in time order, leaving out what it
    /// showed live already, and rebuild each agent's load samples for the seconds before its
    /// live ones (one a second; `now` is the newest sample's time).
    pub(crate) fn apply_history(
        &mut self,
        entries: Vec<Logged>,
        notes: Vec<Noted>,
        now: Timestamp,
    ) {
        let early = std::mem::take(&mut self.early);
        let mut past: Vec<DomainEvent> = entries.into_iter().map(|l| l.event).collect();
        past.truncate(past.len() - overlap(&past, &early));
        let mut lines: Vec<LogLine> = past
            .iter()
            .filter_map(|e| log_line(&EngineEvent::Transition(e.clone())))
            .collect();
        lines.extend(notes.iter().filter_map(|note| {
            let line = log_line(&note.event).map(|line| LogLine {
                at: note.at,
                ..line
            })?;
            (!self.shows_live(&line)).then_some(line)
        }));
        lines.sort_by_key(|line| line.at);
        let mut lines: VecDeque<LogLine> = lines.into();
        lines.append(&mut self.log);
        while lines.len() > LOG {
            lines.pop_front();
        }
        self.log = lines;
        past.extend(early);
        if !past.is_empty() {
            self.rebuild_load(&past, now);
        }
        self.history = true;
        self.generation += 1;
    }

    /// Whether this room showed `line` (a note's) live already: the same words, told within a
    /// few seconds of the note (a live line is stamped when the room heard it).
    fn shows_live(&self, line: &LogLine) -> bool {
        self.log.iter().any(|live| {
            live.text == line.text && (live.at - line.at).abs() < SignedDuration::from_secs(10)
        })
    }

    fn rebuild_load(&mut self, past: &[DomainEvent], now: Timestamp) {
        let spans = session_spans(past);
        for agent in &self.agents {
            let samples = self.load.entry(agent.name.clone()).or_default();
            let live = samples.len();
            if live >= LOAD_SAMPLES {
                continue;
            }
            // Its sessions this room knows: by the log's times, or running all along.
            let held: Vec<Span> = self
                .sessions
                .iter()
                .filter(|v| v.session.agent.as_ref() == Some(&agent.name))
                .filter_map(|v| match spans.get(&v.session.id) {
                    Some(span) => Some(*span),
                    None => v.session.is_active().then_some((None, None)),
                })
                .collect();
            let mut probe = agent.clone();
            let mut rebuilt: VecDeque<u64> = (live..LOAD_SAMPLES)
                .rev()
                .map(|back| {
                    let t = now - SignedDuration::from_secs(back as i64);
                    let load = held
                        .iter()
                        .filter(|(from, to)| {
                            from.is_none_or(|f| f <= t) && to.is_none_or(|e| e > t)
                        })
                        .count();
                    probe.load = u32::try_from(load).unwrap_or(u32::MAX);
                    super::view::percent(probe.load_ratio())
                })
                .collect();
            rebuilt.append(samples);
            *samples = rebuilt;
        }
    }
}

/// How many of `past`'s last entries are `early`'s first: shown live already.
fn overlap(past: &[DomainEvent], early: &VecDeque<DomainEvent>) -> usize {
    let Some(first) = early.front() else {
        return 0;
    };
    match past.iter().rposition(|e| e == first) {
        Some(i) if past[i..].iter().zip(early).all(|(a, b)| a == b) => past.len() - i,
        _ => 0,
    }
}

/// Each session's span in `past`: dispatched (it leaves pending) to ended.
fn session_spans(past: &[DomainEvent]) -> HashMap<SessionId, Span> {
    let mut spans: HashMap<SessionId, Span> = HashMap::new();
    for e in past {
        if let Transition::Session { id, from, to } = &e.transition {
            let span = spans.entry(*id).or_default();
            if *from == SessionStatus::Pending && span.0.is_none() {
                span.0 = Some(e.at);
            }
            if to.is_terminal() {
                span.1 = Some(e.at);
            }
        }
    }
    spans
}
