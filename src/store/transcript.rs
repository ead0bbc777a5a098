//! Durable transcripts: each session's entries as small records keyed (session, sequence), so
//! a reader (or a later full-text index) takes them one by one. An entry with a part key
//! replaces the stored entry of that part (a text that grew, a tool call that finished), so
//! storing a part twice never duplicates it. Each transcript is kept under a cap in bytes: its
//! oldest entries are cut, and the cut is recorded. The store does not know what an entry
//! says: it keeps JSON, and reads it back as the caller's type.

use redb::{ReadTransaction, ReadableTable, Table, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tables::{SESSIONS, TRANSCRIPT_PARTS, TRANSCRIPT_SIZES, TRANSCRIPTS};
use super::{Batch, Op, StoreError, encode};
use crate::domain::{Session, SessionId};

/// A transcript's size: what is kept and what was cut from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TranscriptSize {
    pub entries: u64,
    pub bytes: u64,
    /// Entries cut from the start to keep the transcript under its cap.
    pub cut_entries: u64,
    pub cut_bytes: u64,
}

impl TranscriptSize {
    fn of((entries, bytes, cut_entries, cut_bytes): (u64, u64, u64, u64)) -> Self {
        Self {
            entries,
            bytes,
            cut_entries,
            cut_bytes,
        }
    }

    fn record(self) -> (u64, u64, u64, u64) {
        (self.entries, self.bytes, self.cut_entries, self.cut_bytes)
    }
}

/// A stored transcript, oldest entry first.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTranscript<T> {
    pub entries: Vec<T>,
    pub size: TranscriptSize,
}

impl Batch {
    /// Stores one transcript entry of `session`: in place of the entry stored under `part`
    /// when there is one, else after the last; its words go into the search index. The transcript is then cut from its start to
    /// at most `cap` bytes (never below its newest entry).
    pub fn put_transcript(
        &mut self,
        session: SessionId,
        part: Option<&str>,
        entry: &impl Serialize,
        cap: u64,
    ) -> &mut Self {
        let json = encode(entry);
        self.ops.push(Op::PutTranscript {
            session: session.as_u128(),
            part: part.map(str::to_string),
            words: super::search::words(&super::search::entry_text(&json)),
            json,
            cap,
        });
        self
    }
}

/// The transcript tables a write transaction touches.
pub(super) struct TranscriptTables<'txn> {
    entries: Table<'txn, (u128, u64), &'static [u8]>,
    parts: Table<'txn, (u128, &'static str), u64>,
    sizes: Table<'txn, u128, (u64, u64, u64, u64)>,
}

impl<'txn> TranscriptTables<'txn> {
    /// Opens (and in an older file creates) the tables.
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            entries: txn.open_table(TRANSCRIPTS).map_err(StoreError::storage)?,
            parts: txn
                .open_table(TRANSCRIPT_PARTS)
                .map_err(StoreError::storage)?,
            sizes: txn
                .open_table(TRANSCRIPT_SIZES)
                .map_err(StoreError::storage)?,
        })
    }

    /// Stores the entry; the sequence it is stored under, and the entry it replaced there.
    pub(super) fn put(
        &mut self,
        session: u128,
        part: Option<&str>,
        json: &[u8],
        cap: u64,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        let mut size = self.size(session)?;
        let stored = match part {
            Some(part) => self
                .parts
                .get((session, part))
                .map_err(StoreError::storage)?
                .map(|s| s.value()),
            None => None,
        };
        let seq = match stored {
            Some(seq) => seq,
            None => self.last_seq(session)? + 1,
        };
        let replaced = self
            .entries
            .insert((session, seq), json)
            .map_err(StoreError::storage)?
            .map(|old| old.value().to_vec());
        match &replaced {
            Some(old) => size.bytes = size.bytes.saturating_sub(old.len() as u64),
            None => size.entries += 1,
        }
        size.bytes += json.len() as u64;
        if let (Some(part), None) = (part, stored) {
            self.parts
                .insert((session, part), seq)
                .map_err(StoreError::storage)?;
        }
        self.cut(session, seq, cap, &mut size)?;
        self.sizes
            .insert(session, size.record())
            .map_err(StoreError::storage)?;
        Ok((seq, replaced))
    }

    /// Removes the oldest entries (not `newest`) while the transcript is over `cap`.
    fn cut(
        &mut self,
        session: u128,
        newest: u64,
        cap: u64,
        size: &mut TranscriptSize,
    ) -> Result<(), StoreError> {
        while size.bytes > cap {
            let Some((seq, json)) = self.oldest_but(session, newest)? else {
                return Ok(());
            };
            self.entries
                .remove((session, seq))
                .map_err(StoreError::storage)?;
            if let Some(part) = part_of(&json) {
                let indexed = self
                    .parts
                    .get((session, part.as_str()))
                    .map_err(StoreError::storage)?;
                if indexed.map(|s| s.value()) == Some(seq) {
                    self.parts
                        .remove((session, part.as_str()))
                        .map_err(StoreError::storage)?;
                }
            }
            let bytes = json.len() as u64;
            size.entries -= 1;
            size.bytes = size.bytes.saturating_sub(bytes);
            size.cut_entries += 1;
            size.cut_bytes += bytes;
        }
        Ok(())
    }

    /// The oldest entry of `session` other than `newest`.
    fn oldest_but(&self, session: u128, newest: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let entries = self
            .entries
            .range((session, 1)..=(session, u64::MAX))
            .map_err(StoreError::storage)?;
        for entry in entries {
            let (key, json) = entry.map_err(StoreError::storage)?;
            if key.value().1 != newest {
                return Ok(Some((key.value().1, json.value().to_vec())));
            }
        }
        Ok(None)
    }

    /// Removes `session`'s whole transcript; what it held.
    pub(super) fn drop(&mut self, session: u128) -> Result<TranscriptSize, StoreError> {
        let size = self.size(session)?;
        self.entries
            .retain_in((session, 0)..=(session, u64::MAX), |_, _| false)
            .map_err(StoreError::storage)?;
        // Every part key of the session: from the empty string up to the next session's.
        let parts = match session.checked_add(1) {
            Some(next) => self
                .parts
                .retain_in((session, "")..(next, ""), |_, _| false),
            None => self.parts.retain_in((session, "").., |_, _| false),
        };
        parts.map_err(StoreError::storage)?;
        self.sizes.remove(session).map_err(StoreError::storage)?;
        Ok(size)
    }

    fn size(&self, session: u128) -> Result<TranscriptSize, StoreError> {
        Ok(self
            .sizes
            .get(session)
            .map_err(StoreError::storage)?
            .map(|s| TranscriptSize::of(s.value()))
            .unwrap_or_default())
    }

    fn last_seq(&self, session: u128) -> Result<u64, StoreError> {
        Ok(self
            .entries
            .range((session, 1)..=(session, u64::MAX))
            .map_err(StoreError::storage)?
            .next_back()
            .transpose()
            .map_err(StoreError::storage)?
            .map_or(0, |(key, _)| key.value().1))
    }
}

/// The part key of a stored entry, read without decoding the rest of it.
fn part_of(json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct PartOnly {
        #[serde(default)]
        part: Option<String>,
    }
    serde_json::from_slice::<PartOnly>(json).ok()?.part
}

/// `session`'s stored transcript, oldest entry first (empty when none is stored, or the file
/// is older than durable transcripts).
pub(crate) fn transcript<T: DeserializeOwned>(
    txn: &ReadTransaction,
    session: SessionId,
) -> Result<StoredTranscript<T>, StoreError> {
    let id = session.as_u128();
    let mut stored = StoredTranscript {
        entries: Vec::new(),
        size: TranscriptSize::default(),
    };
    let entries = match txn.open_table(TRANSCRIPTS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(stored),
        Err(error) => return Err(StoreError::storage(error)),
    };
    for entry in entries
        .range((id, 0)..=(id, u64::MAX))
        .map_err(StoreError::storage)?
    {
        let (_, json) = entry.map_err(StoreError::storage)?;
        let entry = serde_json::from_slice(json.value()).map_err(|err| StoreError::Decode {
            what: "transcript entry",
            detail: err.to_string(),
        })?;
        stored.entries.push(entry);
    }
    let sizes = txn
        .open_table(TRANSCRIPT_SIZES)
        .map_err(StoreError::storage)?;
    if let Some(size) = sizes.get(id).map_err(StoreError::storage)? {
        stored.size = TranscriptSize::of(size.value());
    }
    Ok(stored)
}

/// The newest entry of `session`'s stored transcript (`None` when none is stored), read
/// without the rest of it: what a session did last, for the sessions table after a restart.
pub(crate) fn last_transcript_entry<T: DeserializeOwned>(
    txn: &ReadTransaction,
    session: SessionId,
) -> Result<Option<T>, StoreError> {
    let id = session.as_u128();
    let entries = match txn.open_table(TRANSCRIPTS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(error) => return Err(StoreError::storage(error)),
    };
    let mut range = entries
        .range((id, 0)..=(id, u64::MAX))
        .map_err(StoreError::storage)?;
    let Some(newest) = range.next_back() else {
        return Ok(None);
    };
    let (_, json) = newest.map_err(StoreError::storage)?;
    serde_json::from_slice(json.value())
        .map(Some)
        .map_err(|err| StoreError::Decode {
            what: "transcript entry",
            detail: err.to_string(),
        })
}

/// What pruning transcripts freed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Pruned {
    /// Transcripts removed.
    pub sessions: u64,
    pub entries: u64,
    pub bytes: u64,
}

/// Removes, in one transaction, the transcripts of sessions that ended before `before`
/// (and of sessions the store no longer has).
pub(super) fn prune(txn: &WriteTransaction, before: jiff::Timestamp) -> Result<Pruned, StoreError> {
    let mut tables = TranscriptTables::open(txn)?;
    let sessions = txn.open_table(SESSIONS).map_err(StoreError::storage)?;
    let mut stale = Vec::new();
    for size in tables.sizes.iter().map_err(StoreError::storage)? {
        let (id, _) = size.map_err(StoreError::storage)?;
        let id = id.value();
        let ended = match sessions.get(id).map_err(StoreError::storage)? {
            Some(json) => serde_json::from_slice::<Session>(json.value())
                .map_err(|err| StoreError::Decode {
                    what: "session",
                    detail: err.to_string(),
                })?
                .finished_at
                .map(|at| at < before),
            None => Some(true),
        };
        if ended == Some(true) {
            stale.push(id);
        }
    }
    let mut pruned = Pruned::default();
    for id in stale {
        let size = tables.drop(id)?;
        pruned.sessions += 1;
        pruned.entries += size.entries;
        pruned.bytes += size.bytes;
    }
    Ok(pruned)
}

#[cfg(test)]
#[path = "transcript_tests.rs"]
mod tests;
