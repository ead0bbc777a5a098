//! Transcript entries on their way to the store. Activity is not a state change, so it is not
//! committed one entry at a time: entries wait here, a later entry of the same part replacing
//! the waiting one (a streamed text keeps only its newest state), and go to the store as one
//! write of many records: with the engine's next commit, at its next tick, or when
//! [`JOURNAL_BATCH`] entries wait, whichever comes first.

use std::collections::HashMap;

use crate::domain::SessionId;
use crate::engine::view::Entry;
use crate::store::Batch;

/// Most entries that wait before they are written.
pub(super) const JOURNAL_BATCH: usize = 256;

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

    /// Moves every waiting entry into `batch`, each transcript capped at `cap` bytes.
    pub(super) fn drain_into(&mut self, batch: &mut Batch, cap: u64) {
        if self.waiting.is_empty() {
            return;
        }
        self.stats.flushes += 1;
        self.stats.written += self.waiting.len() as u64;
        self.parts.clear();
        for (session, entry) in self.waiting.drain(..) {
            batch.put_transcript(session, entry.part.as_deref(), &entry, cap);
        }
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
        journal.drain_into(&mut batch, u64::MAX);
        assert_eq!(batch.len(), 3, "the first text was replaced by the second");
        assert!(!journal.is_waiting());
        // After a write, the part is a new waiting entry again.
        journal.record(a, text("prt_1", "Hello world"));
        let mut batch = Batch::new();
        journal.drain_into(&mut batch, u64::MAX);
        assert_eq!(batch.len(), 1);
        let stats = journal.stats();
        assert_eq!((stats.recorded, stats.written, stats.flushes), (5, 4, 2));
    }

    /// Write amplification of a streamed answer: 1000 deltas of 8 bytes each, every delta
    /// an entry (the transcriber sends fewer: one per part every 200 ms), written every 10
    /// (a 200 ms tick at 50 deltas a second): 100 writes, each of the text so far.
    #[test]
    fn a_streamed_text_is_written_once_per_flush_not_once_per_delta() {
        let mut journal = Journal::default();
        let session = SessionId::generate();
        let mut so_far = String::new();
        let mut written_bytes = 0;
        for delta in 0..1000 {
            so_far.push_str("token. ");
            journal.record(session, text("prt_1", &so_far));
            if delta % 10 == 9 {
                let mut batch = Batch::new();
                journal.drain_into(&mut batch, u64::MAX);
                assert_eq!(batch.len(), 1);
                written_bytes += so_far.len();
            }
        }
        let stats = journal.stats();
        assert_eq!(stats.flushes, 100, "writes per 1000 deltas");
        assert_eq!(stats.written, 100);
        // The text is written whole each time: bytes written / final text is about half the
        // number of writes.
        let ratio = written_bytes as f64 / so_far.len() as f64;
        assert!((50.0..51.0).contains(&ratio), "{ratio}");
    }
}
