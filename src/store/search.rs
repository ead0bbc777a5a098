//! The search index: an inverted index of words, one key (word, subject, place) per word of a
//! session's title, a control-log event's cause and a transcript entry's text, kept by the
//! writer in the same transaction as the record. A subject is the session (or, for a task's
//! events, the task) the record belongs to; ids are ULIDs, so subjects sort by creation time.
//! Words are tokenized once, by the sender of a batch: split on anything not alphanumeric,
//! lowercased, words of one character dropped, long words cut, each word once per record.

use std::collections::HashSet;

use redb::{ReadableTable, Table, WriteTransaction};

use super::StoreError;
use super::tables::{EVENTS, SEARCH_WORDS, SESSIONS, TRANSCRIPTS};
use crate::domain::{DomainEvent, Transition};

/// Longest word kept, in characters: a longer one is indexed (and searched) by its start.
pub const MAX_WORD: usize = 24;

/// Where in a subject a word was found.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(tag = "kind", content = "seq", rename_all = "snake_case")]
pub enum Place {
    /// The session's title.
    Title,
    /// The cause of the control-log event with this sequence number.
    Event(u64),
    /// The transcript entry with this sequence number.
    Transcript(u64),
}

impl Place {
    pub(super) fn key(self) -> (u8, u64) {
        match self {
            Self::Title => (0, 0),
            Self::Event(seq) => (1, seq),
            Self::Transcript(seq) => (2, seq),
        }
    }

    pub(super) fn of_key(kind: u8, seq: u64) -> Self {
        match kind {
            0 => Self::Title,
            1 => Self::Event(seq),
            _ => Self::Transcript(seq),
        }
    }
}

/// The words of `text`, each once, in order of first appearance.
pub fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|raw| raw.chars().nth(1).is_some())
        .map(word)
        .collect();
    // Each once: a streamed text of thousands of words is indexed again as it grows.
    let mut seen = HashSet::with_capacity(words.len());
    let first: Vec<bool> = words.iter().map(|w| seen.insert(w.as_str())).collect();
    drop(seen);
    let mut first = first.into_iter();
    words.retain(|_| first.next().unwrap_or(false));
    words
}

/// One raw word as indexed: lowercased, cut at [`MAX_WORD`] characters.
fn word(raw: &str) -> String {
    if raw.is_ascii() {
        raw[..raw.len().min(MAX_WORD)].to_ascii_lowercase()
    } else {
        raw.chars()
            .take(MAX_WORD)
            .flat_map(char::to_lowercase)
            .collect()
    }
}

/// The text an encoded transcript entry says: every string in it but its part key, its time
/// and its kind tag, one per line. The store does not know the entry's type.
pub(crate) fn entry_text(json: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return String::new();
    };
    let mut lines = Vec::new();
    strings_of(&value, &mut lines);
    lines.join("\n")
}

fn strings_of<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(text) => out.push(text),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        serde_json::Value::Object(fields) => {
            for (key, v) in fields {
                if !matches!(key.as_str(), "part" | "at" | "kind" | "next" | "status") {
                    strings_of(v, out);
                }
            }
        }
        _ => {}
    }
}

/// The subject of a control-log event: the session or the task that moved (an agent's events
/// are not indexed).
pub(crate) fn event_subject(event: &DomainEvent) -> Option<u128> {
    match &event.transition {
        Transition::Session { id, .. } => Some(id.as_u128()),
        Transition::Task { id, .. } => Some(id.as_u128()),
        Transition::Agent { .. } => None,
    }
}

/// The session's title, read without decoding the rest of it.
pub(super) fn title_of(json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TitleOnly {
        title: String,
    }
    serde_json::from_slice::<TitleOnly>(json)
        .ok()
        .map(|t| t.title)
}

pub(super) type WordTable<'txn> = Table<'txn, (&'static str, u128, u8, u64), ()>;

/// Those of `words` that the entry `replaced` (a transcript entry's JSON) did not have: what
/// a rewritten entry adds to the index. Words it no longer has stay indexed; a search checks
/// the line it shows, so they find nothing.
pub(super) fn not_in<'w>(words: &'w [String], replaced: Option<&[u8]>) -> Vec<&'w str> {
    let had: HashSet<String> = match replaced {
        Some(json) => self::words(&entry_text(json)).into_iter().collect(),
        None => Default::default(),
    };
    words
        .iter()
        .filter(|w| !had.contains(w.as_str()))
        .map(String::as_str)
        .collect()
}

/// Indexes `words` as found at `place` of `subject`.
pub(super) fn index(
    table: &mut WordTable<'_>,
    subject: u128,
    place: Place,
    words: &[impl AsRef<str>],
) -> Result<(), StoreError> {
    let (kind, seq) = place.key();
    for word in words {
        table
            .insert((word.as_ref(), subject, kind, seq), ())
            .map_err(StoreError::storage)?;
    }
    Ok(())
}

/// What a reindex wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reindexed {
    pub sessions: u64,
    pub events: u64,
    pub entries: u64,
}

/// Indexes every stored session title, event cause and transcript entry again (for a file
/// written before the index existed). Keys already there are written over.
pub(super) fn reindex(txn: &WriteTransaction) -> Result<Reindexed, StoreError> {
    let mut table = txn.open_table(SEARCH_WORDS).map_err(StoreError::storage)?;
    let mut done = Reindexed::default();
    let sessions = txn.open_table(SESSIONS).map_err(StoreError::storage)?;
    for row in sessions.iter().map_err(StoreError::storage)? {
        let (id, json) = row.map_err(StoreError::storage)?;
        let title = title_of(json.value()).unwrap_or_default();
        index(&mut table, id.value(), Place::Title, &words(&title))?;
        done.sessions += 1;
    }
    let events = txn.open_table(EVENTS).map_err(StoreError::storage)?;
    for row in events.iter().map_err(StoreError::storage)? {
        let (seq, json) = row.map_err(StoreError::storage)?;
        let Ok(event) = serde_json::from_slice::<DomainEvent>(json.value()) else {
            continue;
        };
        if let Some(subject) = event_subject(&event) {
            let place = Place::Event(seq.value());
            index(&mut table, subject, place, &words(&event.cause))?;
            done.events += 1;
        }
    }
    let entries = txn.open_table(TRANSCRIPTS).map_err(StoreError::storage)?;
    for row in entries.iter().map_err(StoreError::storage)? {
        let (key, json) = row.map_err(StoreError::storage)?;
        let (session, seq) = key.value();
        let text = entry_text(json.value());
        index(&mut table, session, Place::Transcript(seq), &words(&text))?;
        done.entries += 1;
    }
    Ok(done)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
