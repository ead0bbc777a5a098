//! One read round of a server's event stream: the events that arrived together, in order, with
//! each part's text deltas joined.
//!
//! A model streaming text sends a `message.part.delta` per chunk (tens a second per session);
//! handing each on alone costs a hand-over, a wake of the run and a look at its throttle, for
//! text that is shown at most every 200 ms anyway. A delta that follows one of the same part,
//! with no other event of its session between them, is appended to it instead: what a consumer
//! rebuilds from the deltas is the same text, and every other event keeps its place.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::event::ServerEvent;

/// An event as the stream carries it: the instance (directory) it came from, and the event.
pub(crate) type Arrived = (Option<String>, ServerEvent);

#[derive(Debug, Default)]
pub(crate) struct Round {
    events: Vec<Arrived>,
    /// Per session, the index in `events` of its last event.
    last: HashMap<String, usize>,
}

impl Round {
    pub(crate) fn push(&mut self, directory: Option<String>, event: ServerEvent) {
        let Some(session) = event.session_id() else {
            self.events.push((directory, event));
            return;
        };
        let at = self.events.len();
        match self.last.get_mut(session) {
            Some(last) => {
                if joined(&mut self.events[*last], &directory, &event) {
                    return;
                }
                *last = at;
            }
            None => {
                self.last.insert(session.to_string(), at);
            }
        }
        self.events.push((directory, event));
    }

    /// The round's events, in order; the round starts over empty.
    pub(crate) fn take(&mut self) -> Vec<Arrived> {
        self.last.clear();
        std::mem::take(&mut self.events)
    }
}

/// Whether `event` is a text delta of the same part as `before` (from the same instance), and
/// so was appended to it.
fn joined(before: &mut Arrived, directory: &Option<String>, event: &ServerEvent) -> bool {
    let (
        (
            before_dir,
            ServerEvent::PartDelta {
                message_id: m1,
                part_id: p1,
                field: f1,
                delta: text,
                ..
            },
        ),
        ServerEvent::PartDelta {
            message_id: m2,
            part_id: p2,
            field: f2,
            delta,
            ..
        },
    ) = (before, event)
    else {
        return false;
    };
    if before_dir != directory || m1 != m2 || p1 != p2 || f1 != f2 {
        return false;
    }
    text.push_str(delta);
    true
}

/// Events a second up to which each is handed on as it comes: reading them in rounds saves
/// little below that (measured: none at 40 a second), and each would wait.
const QUIET_RATE: f64 = 100.0;

/// Events a second from which rounds are the longest: a model streaming text token by token
/// in a few sessions sends about that many.
const FULL_RATE: f64 = 300.0;

/// When the next round is read: none waits on a stream of up to [`QUIET_RATE`] events a
/// second; above that, the busier the stream, the longer after the last round (up to `gather`
/// from [`FULL_RATE`] events a second), so a busy stream costs a bounded number of reads a
/// second.
#[derive(Debug)]
pub(crate) struct Rounds {
    gather: Duration,
    /// The events read since `since`; the rate is taken over whole seconds or more.
    since: Instant,
    counted: u32,
    rate: f64,
}

impl Rounds {
    pub(crate) fn new(gather: Duration, now: Instant) -> Self {
        Self {
            gather,
            since: now,
            counted: 0,
            rate: 0.0,
        }
    }

    /// A round of `events` was read at `now`: when the next may be.
    pub(crate) fn next(&mut self, events: usize, now: Instant) -> Instant {
        self.counted = self
            .counted
            .saturating_add(u32::try_from(events).unwrap_or(u32::MAX));
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= Duration::from_secs(1) {
            self.rate = f64::from(self.counted) / elapsed.as_secs_f64();
            (self.since, self.counted) = (now, 0);
        }
        let busy = (self.rate - QUIET_RATE) / (FULL_RATE - QUIET_RATE);
        now + self.gather.mul_f64(busy.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn delta(session: &str, part: &str, text: &str) -> ServerEvent {
        ServerEvent::PartDelta {
            session_id: session.into(),
            message_id: "msg_1".into(),
            part_id: part.into(),
            field: "text".into(),
            delta: text.into(),
        }
    }

    fn idle(session: &str) -> ServerEvent {
        ServerEvent::SessionIdle {
            session_id: session.into(),
        }
    }

    fn dir() -> Option<String> {
        Some("/w".into())
    }

    #[test]
    fn deltas_of_one_part_become_one_across_other_sessions_events() {
        let mut round = Round::default();
        round.push(dir(), delta("ses_a", "prt_1", "Hel"));
        round.push(dir(), delta("ses_b", "prt_9", "other"));
        round.push(dir(), delta("ses_a", "prt_1", "lo, "));
        round.push(
            dir(),
            ServerEvent::FileEdited {
                file: "/w/x".into(),
            },
        );
        round.push(dir(), delta("ses_a", "prt_1", "world"));
        assert_eq!(
            round.take(),
            vec![
                (dir(), delta("ses_a", "prt_1", "Hello, world")),
                (dir(), delta("ses_b", "prt_9", "other")),
                (
                    dir(),
                    ServerEvent::FileEdited {
                        file: "/w/x".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_sessions_other_event_between_two_deltas_keeps_them_apart() {
        let mut round = Round::default();
        round.push(dir(), delta("ses_a", "prt_1", "one"));
        round.push(dir(), idle("ses_a"));
        round.push(dir(), delta("ses_a", "prt_1", "two"));
        round.push(dir(), delta("ses_a", "prt_2", "three"));
        round.push(Some("/elsewhere".into()), delta("ses_a", "prt_2", "four"));
        assert_eq!(
            round.take(),
            vec![
                (dir(), delta("ses_a", "prt_1", "one")),
                (dir(), idle("ses_a")),
                (dir(), delta("ses_a", "prt_1", "two")),
                (dir(), delta("ses_a", "prt_2", "three")),
                (Some("/elsewhere".into()), delta("ses_a", "prt_2", "four")),
            ]
        );
    }

    #[test]
    fn rounds_lengthen_with_the_rate_and_shorten_when_it_falls() {
        let gather = Duration::from_millis(100);
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut rounds = Rounds::new(gather, start);
        // No rate known yet: no wait.
        assert_eq!(rounds.next(1, at(0)), at(0));
        // 40 events a second (the first second): no wait either.
        for ms in (25..975).step_by(25) {
            assert_eq!(rounds.next(1, at(ms)), at(ms));
        }
        assert_eq!(rounds.next(1, at(1000)), at(1000));
        // 200 events a second: half the longest wait.
        assert_eq!(rounds.next(200, at(2000)), at(2050));
        // 800 events a second: the longest.
        assert_eq!(rounds.next(800, at(3000)), at(3100));
        assert_eq!(rounds.next(1, at(3150)), at(3250));
        // Quiet for a while (two events in ten seconds): handed on at once again.
        assert_eq!(rounds.next(1, at(13_000)), at(13_000));
    }

    #[test]
    fn a_taken_round_starts_over() {
        let mut round = Round::default();
        round.push(dir(), delta("ses_a", "prt_1", "one"));
        assert_eq!(round.take().len(), 1);
        round.push(dir(), delta("ses_a", "prt_1", "two"));
        assert_eq!(round.take(), vec![(dir(), delta("ses_a", "prt_1", "two"))]);
    }
}
