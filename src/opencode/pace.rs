//! Which of a server's watched sessions its follower resyncs through REST between reconnects
//! (after one, it resyncs them all: events may have been lost): one marked stale when an event
//! about it was dropped on ocio's side, and otherwise a slow rolling sweep with a
//! fixed budget per tick, longest-unsynced first, that skips sessions synced or heard from on
//! the stream recently (their events show the stream carries them). The cost per server stays
//! bounded however many sessions it runs. Pure bookkeeping: the caller passes the time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

/// How a follower paces its sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pace {
    /// Most sessions one sweep tick resyncs.
    pub(crate) batch: usize,
    /// A session synced, or heard from, within this long is not swept.
    pub(crate) quiet: Duration,
}

/// When each watched session was last known current, and those known not to be.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    fresh: HashMap<String, Instant>,
    stale: HashSet<String>,
}

impl Pacer {
    /// An event about `session` arrived on the stream.
    pub(crate) fn heard(&mut self, session: &str, now: Instant) {
        match self.fresh.get_mut(session) {
            Some(at) => *at = now,
            None => {
                self.fresh.insert(session.to_string(), now);
            }
        }
    }

    /// `sessions` were just resynced.
    pub(crate) fn synced<'a>(
        &mut self,
        sessions: impl IntoIterator<Item = &'a String>,
        now: Instant,
    ) {
        for session in sessions {
            self.stale.remove(session);
            self.heard(session, now);
        }
    }

    /// An event about `session` was lost: it is due at the next tick, ahead of the sweep.
    pub(crate) fn stale(&mut self, session: &str) {
        self.stale.insert(session.to_string());
    }

    /// The sessions of `watched` to resync now: at most `pace.batch`, the stale ones first,
    /// then those not known current for `pace.quiet`, the longest first. A session watched
    /// since the last call counts as current from now: the stream carries its events from
    /// its subscription on (and the resync after a reconnect covers every session).
    pub(crate) fn due(
        &mut self,
        watched: &BTreeMap<String, String>,
        pace: Pace,
        now: Instant,
    ) -> Vec<String> {
        // Sessions no longer watched are forgotten.
        self.fresh
            .retain(|session, _| watched.contains_key(session));
        self.stale.retain(|session| watched.contains_key(session));
        for session in watched.keys() {
            if !self.fresh.contains_key(session) {
                self.fresh.insert(session.clone(), now);
            }
        }
        let mut due: Vec<(bool, Instant, &String)> = self
            .fresh
            .iter()
            .map(|(session, at)| (!self.stale.contains(session), *at, session))
            .filter(|(fresh, at, _)| !fresh || now.saturating_duration_since(*at) >= pace.quiet)
            .collect();
        // `false` sorts first: stale before the oldest sync.
        due.sort();
        due.into_iter()
            .take(pace.batch)
            .map(|(_, _, session)| session.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(n: usize) -> BTreeMap<String, String> {
        (0..n)
            .map(|i| (format!("ses_{i:03}"), format!("/w/{i}")))
            .collect()
    }

    const PACE: Pace = Pace {
        batch: 2,
        quiet: Duration::from_secs(300),
    };

    #[test]
    fn a_sweep_takes_a_batch_per_tick_oldest_first_however_many_sessions_there_are() {
        let sessions = watched(200);
        let mut pacer = Pacer::default();
        let start = Instant::now();
        pacer.synced(sessions.keys(), start);
        let mut fetched = 0;
        // Ten minutes of ticks every 10 s: the budget, not the session count, bounds the work.
        for tick in 1..=60u64 {
            let now = start + Duration::from_secs(300 + tick * 10);
            let due = pacer.due(&sessions, PACE, now);
            assert!(due.len() <= PACE.batch);
            fetched += due.len();
            pacer.synced(due.iter(), now);
        }
        assert_eq!(fetched, 120, "two per tick");
        // Oldest first: the first 120 sessions in sync order, each once.
        let now = start + Duration::from_secs(1000);
        assert_eq!(pacer.due(&sessions, PACE, now), ["ses_120", "ses_121"]);
    }

    #[test]
    fn sessions_heard_from_or_synced_recently_are_skipped() {
        let sessions = watched(3);
        let mut pacer = Pacer::default();
        let start = Instant::now();
        pacer.synced(sessions.keys(), start);
        assert!(
            pacer
                .due(&sessions, PACE, start + Duration::from_secs(60))
                .is_empty()
        );
        pacer.heard("ses_000", start + Duration::from_secs(200));
        let later = start + Duration::from_secs(300);
        assert_eq!(pacer.due(&sessions, PACE, later), ["ses_001", "ses_002"]);
    }

    #[test]
    fn a_session_whose_event_was_lost_is_due_at_once() {
        let sessions = watched(3);
        let mut pacer = Pacer::default();
        let start = Instant::now();
        pacer.synced(sessions.keys(), start);
        let soon = start + Duration::from_secs(1);
        pacer.stale("ses_002");
        assert_eq!(pacer.due(&sessions, PACE, soon), ["ses_002"]);
        pacer.synced(["ses_002".to_string()].iter(), soon);
        assert!(pacer.due(&sessions, PACE, soon).is_empty());
    }

    #[test]
    fn unwatched_sessions_are_forgotten() {
        let mut pacer = Pacer::default();
        let now = Instant::now();
        pacer.heard("ses_gone", now);
        pacer.stale("ses_gone");
        pacer.due(&watched(1), PACE, now);
        assert!(!pacer.fresh.contains_key("ses_gone") && pacer.stale.is_empty());
    }

    #[test]
    fn a_session_newly_watched_takes_no_budget_until_it_has_been_quiet() {
        let mut sessions = watched(2);
        let mut pacer = Pacer::default();
        let start = Instant::now();
        pacer.synced(sessions.keys(), start);
        let later = start + Duration::from_secs(200);
        sessions.insert("ses_new".into(), "/w/new".into());
        assert!(pacer.due(&sessions, PACE, later).is_empty());
        let quiet = start + Duration::from_secs(300);
        assert_eq!(pacer.due(&sessions, PACE, quiet), ["ses_000", "ses_001"]);
        pacer.synced(["ses_000".to_string(), "ses_001".to_string()].iter(), quiet);
        assert!(pacer.due(&sessions, PACE, quiet).is_empty());
        let new_quiet = later + Duration::from_secs(300);
        assert_eq!(pacer.due(&sessions, PACE, new_quiet), ["ses_new"]);
    }
}
