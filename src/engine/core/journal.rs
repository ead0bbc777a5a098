//! Transcript entries on their way to the store. Activity is not a state change, so it is not
//! committed one entry at a time: entries wait here, a later entry of the same part replacing
//! the waiting one (a streamed text keeps only its newest state), and go to the store as one
//! write of many records: with the engine's next commit, at a tick at least [`FLUSH_EVERY`]
//! after the last write, or when [`JOURNAL_BATCH`] entries wait, whichever comes first (a
//! commit is durable, so each costs a sync of the disk: with 200 busy sessions a write per
//! 200 ms tick was about a quarter of ocio's CPU). At a tick, a text written less than
//! [`TEXT_EVERY`] ago waits for the next (a text that streams is rewritten whole each time).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::domain::SessionId;
use crate::engine::view::{Activity, Entry};
use crate::store::Batch;

/// Most entries that wait before they are written.
pub(super) const JOURNAL_BATCH: usize = 1024;

/// How often, at most, ticks write what waits.
pub(super) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How often, at most, a tick writes the text of one part as it streams.
pub(super) const TEXT_EVERY: Duration = Duration::from_secs(1);

/// Which waiting entries a write takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Drain {
    /// Every one.
    All,
    /// All but texts written less than [`TEXT_EVERY`] before this moment.
    Due(Instant),
}

/// What the journal has done, for the write amplification it causes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct JournalStats {
    /// Entries recorded.
    pub(super) recorded: u64,
    /// Entries written (a part's entries that replaced each other while waiting count once).
    pub(super) written: u64,
    /// Writes of waiting entries.
    pub(super) flushes: u64,
}

#[derive(Debug, Default)]
pub(super) struct Journal {
    waiting: Vec<(SessionId, Entry)>,
    /// Where each waiting part is in `waiting`.
    parts: HashMap<(SessionId, String), usize>,
    /// When each text part was last written (forgotten [`TEXT_EVERY`] later).
    texts: HashMap<(SessionId, String), Instant>,
    /// When waiting entries were last written.
    flushed: Option<Instant>,
    stats: JournalStats,
}

impl Journal {
    /// One entry of `session`'s transcript, to be written.
    pub(super) fn record(&mut self, session: SessionId, entry: Entry) {
        self.stats.recorded += 1;
        let Some(part) = entry.part.clone() else {
            self.waiting.push((session, entry));
            return;
        };
        match self.parts.get(&(session, part.clone())) {
            Some(&at) => self.waiting[at].1 = entry,
            None => {
                self.parts.insert((session, part), self.waiting.len());
                self.waiting.push((session, entry));
            }
        }
    }

    pub(super) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.waiting.len() >= JOURNAL_BATCH
    }

    /// Moves the waiting entries `drain` takes into `batch`, each transcript capped at `cap`
    /// bytes; how many.
    pub(super) fn drain_into(&mut self, batch: &mut Batch, cap: u64, drain: Drain) -> usize {
        let now = match drain {
            Drain::All => Instant::now(),
            Drain::Due(now) => now,
        };
        let recent = |at: Instant| now.saturating_duration_since(at) < FLUSH_EVERY;
        if matches!(drain, Drain::Due(_)) && self.flushed.is_some_and(recent) {
            return 0;
        }
        self.texts
            .retain(|_, at| now.saturating_duration_since(*at) < TEXT_EVERY);
        let mut moved = 0;
        self.parts.clear();
        for (session, entry) in std::mem::take(&mut self.waiting) {
            let text = matches!(entry.activity, Activity::Text { .. });
            let key = entry.part.clone().map(|part| (session, part));
            let held = matches!(drain, Drain::Due(_))
                && text
                && key.as_ref().is_some_and(|k| self.texts.contains_key(k));
            if held {
                if let Some(key) = key {
                    self.parts.insert(key, self.waiting.len());
                }
                self.waiting.push((session, entry));
                continue;
            }
            batch.put_transcript(session, entry.part.as_deref(), &entry, cap);
            moved += 1;
            if let Some(key) = key.filter(|_| text) {
                self.texts.insert(key, now);
            }
        }
        if moved > 0 {
            self.flushed = Some(now);
            self.stats.flushes += 1;
            self.stats.written += moved as u64;
        }
        moved
    }

    /// Sessions with entries waiting.
    pub(super) fn sessions(&self) -> usize {
        let mut sessions: Vec<SessionId> = self.waiting.iter().map(|(s, _)| *s).collect();
        sessions.sort_unstable();
        sessions.dedup();
        sessions.len()
    }

    #[cfg(test)]
    pub(super) fn stats(&self) -> JournalStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::view::Activity;

    fn text(part: &str, text: &str) -> Entry {
        Entry {
            at: jiff::Timestamp::now(),
            part: Some(part.into()),
            activity: Activity::Text { text: text.into() },
        }
    }

    #[test]
    fn a_parts_entries_replace_each_other_while_they_wait() {
        let mut journal = Journal::default();
        let (a, b) = (SessionId::generate(), SessionId::generate());
        journal.record(a, text("prt_1", "He"));
        journal.record(b, text("prt_1", "other session"));
        journal.record(a, text("prt_1", "Hello"));
        journal.record(
            a,
            Entry {
                at: jiff::Timestamp::now(),
                part: None,
                activity: Activity::Note {
                    text: "a note".into(),
                },
            },
        );
        assert_eq!(journal.sessions(), 2);
        let mut batch = Batch::new();
        journal.drain_into(&mut batch, u64::MAX, Drain::All);
        assert_eq!(batch.len(), 3, "the first text was replaced by the second");
        assert!(!journal.is_waiting());
        // After a write, the part is a new waiting entry again.
        journal.record(a, text("prt_1", "Hello world"));
        let mut batch = Batch::new();
        journal.drain_into(&mut batch, u64::MAX, Drain::All);
        assert_eq!(batch.len(), 1);
        let stats = journal.stats();
        assert_eq!((stats.recorded, stats.written, stats.flushes), (5, 4, 2));
    }

    /// Write amplification of a streamed answer: 1000 deltas of 7 bytes, 50 a second, each
    /// an entry (the transcriber sends fewer: one per part every 200 ms), a tick every 200 ms:
    /// the text is written once a second (20 writes of the text so far), not per delta or
    /// per tick, and a tool call that finishes meanwhile goes at the next tick.
    #[test]
    fn a_streamed_text_is_written_once_a_second_not_once_per_delta() {
        let mut journal = Journal::default();
        let session = SessionId::generate();
        let start = Instant::now();
        let mut so_far = String::new();
        let (mut writes, mut written_bytes) = (0, 0);
        for delta in 0..1000u64 {
            so_far.push_str("token. ");
            journal.record(session, text("prt_1", &so_far));
            if delta % 10 == 9 {
                let tick = start + Duration::from_millis(20 * (delta + 1));
                let mut batch = Batch::new();
                if journal.drain_into(&mut batch, u64::MAX, Drain::Due(tick)) > 0 {
                    writes += 1;
                    written_bytes += so_far.len();
                }
            }
        }
        // The last state goes with the next write of everything (a commit, a read, the end).
        let mut batch = Batch::new();
        journal.drain_into(&mut batch, u64::MAX, Drain::All);
        assert_eq!(batch.len(), 1, "the final text is written");
        writes += 1;
        written_bytes += so_far.len();
        assert!(
            (20..=22).contains(&writes),
            "writes per 1000 deltas: {writes}"
        );
        let ratio = written_bytes as f64 / so_far.len() as f64;
        assert!(
            (10.0..12.0).contains(&ratio),
            "bytes written / final text: {ratio}"
        );

        // Anything else waiting is not held back by a text.
        let tick = start + Duration::from_secs(30);
        journal.record(session, text("prt_2", "a new part"));
        let mut batch = Batch::new();
        assert_eq!(
            journal.drain_into(&mut batch, u64::MAX, Drain::Due(tick)),
            1
        );
        journal.record(session, text("prt_2", "a new part, grown"));
        let tool = Entry {
            at: jiff::Timestamp::now(),
            part: Some("prt_3".into()),
            activity: Activity::Tool {
                tool: "bash".into(),
                status: "completed".into(),
                title: "ls".into(),
            },
        };
        journal.record(session, tool);
        let soon = tick + Duration::from_millis(200);
        let mut batch = Batch::new();
        assert_eq!(
            journal.drain_into(&mut batch, u64::MAX, Drain::Due(soon)),
            0,
            "a tick writes at most once a second"
        );
        let later = tick + FLUSH_EVERY;
        assert_eq!(
            journal.drain_into(&mut batch, u64::MAX, Drain::Due(later)),
            2,
            "the tool call, and the text after its second"
        );
        assert!(!journal.is_waiting());
    }
}
