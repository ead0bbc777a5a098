//! Searching the index: every word of the query must be found in the same subject (a session
//! or a task; the last word may be the start of a word), newest subject first, each with the
//! place that holds most of the words and the line there that says them.

use std::collections::HashMap;

use jiff::Timestamp;
use redb::{AccessGuard, ReadOnlyTable, ReadTransaction, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::search::{Place, entry_text, words};
use super::tables::{EVENTS, SEARCH_WORDS, SESSIONS, TASKS, TRANSCRIPTS};
use crate::domain::{DomainEvent, PlanId, Session, SessionId, Task, TaskId};

/// What to look for, and where. The default finds nothing (no text) and shows 50 results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchQuery {
    pub text: String,
    /// Only sessions and tasks of this plan.
    pub plan: Option<PlanId>,
    /// Only sessions this agent ran.
    pub agent: Option<String>,
    /// Only sessions and tasks made since.
    pub since: Option<Timestamp>,
    /// Most results.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    50
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            text: String::new(),
            plan: None,
            agent: None,
            since: None,
            limit: default_limit(),
        }
    }
}

/// One session (or task) that has every word, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub session: Option<SessionId>,
    pub task: Option<TaskId>,
    /// The session's title, or the task's key.
    pub title: String,
    pub plan: Option<PlanId>,
    pub agent: Option<String>,
    /// When the session or task was made.
    pub at: Timestamp,
    pub place: Place,
    /// The line at `place` that has a word of the query.
    pub line: String,
}

/// One key of the index: a subject and a place in it.
type Posting = (u128, u8, u64);

/// The sessions and tasks that have every word of `query.text`, newest first.
pub fn search(txn: &ReadTransaction, query: &SearchQuery) -> Result<Vec<Found>, StoreError> {
    let terms = words(&query.text);
    let Some(index) = open(txn, SEARCH_WORDS)? else {
        return Ok(Vec::new());
    };
    if terms.is_empty() || terms.len() > 64 {
        return Ok(Vec::new());
    }
    let from = query
        .since
        .map_or(0, |t| u128::from(t.as_millisecond().max(0) as u64) << 80);
    let mut lists = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        lists.push((i, postings(&index, term, i + 1 == terms.len(), from)?));
    }
    let candidates = intersect(lists);
    let mut subjects: Vec<&u128> = candidates.keys().collect();
    subjects.sort_unstable_by(|a, b| b.cmp(a));
    let records = Records::open(txn)?;
    let mut found = Vec::new();
    for subject in subjects {
        if found.len() >= query.limit {
            break;
        }
        let Some(mut hit) = records.subject(*subject, query)? else {
            continue;
        };
        for place in ranked(&candidates[subject]) {
            if let Some(line) = records.line(*subject, place, &terms)? {
                hit.place = place;
                hit.line = line;
                found.push(hit);
                break;
            }
        }
    }
    Ok(found)
}

fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>, StoreError> {
    match txn.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(error) => Err(StoreError::storage(error)),
    }
}

/// Every key of `term` (of every word starting with it when `prefix`) from subject `from` on.
fn postings(
    index: &ReadOnlyTable<(&'static str, u128, u8, u64), ()>,
    term: &str,
    prefix: bool,
    from: u128,
) -> Result<Vec<Posting>, StoreError> {
    let mut out = Vec::new();
    let rows = match prefix {
        false => index.range((term, from, 0, 0)..=(term, u128::MAX, u8::MAX, u64::MAX)),
        true => index.range((term, 0, 0, 0)..),
    }
    .map_err(StoreError::storage)?;
    for row in rows {
        let (key, _) = row.map_err(StoreError::storage)?;
        let (word, subject, kind, seq) = key.value();
        if word != term && !(prefix && word.starts_with(term)) {
            break;
        }
        if subject >= from {
            out.push((subject, kind, seq));
        }
    }
    Ok(out)
}

/// The subjects in every list, each with its places and which words each place holds (bit i
/// for word i). The shortest list is the start, so a rare word keeps the work small.
fn intersect(mut lists: Vec<(usize, Vec<Posting>)>) -> HashMap<u128, Vec<(Place, u64)>> {
    lists.sort_by_key(|(_, list)| list.len());
    let mut lists = lists.into_iter();
    let mut candidates: HashMap<u128, Vec<(Place, u64)>> = HashMap::new();
    let Some((first, list)) = lists.next() else {
        return candidates;
    };
    for (subject, kind, seq) in list {
        let entry = candidates.entry(subject).or_default();
        entry.push((Place::of_key(kind, seq), 1 << first));
    }
    for (word, list) in lists {
        let mut seen = std::collections::HashSet::new();
        for (subject, kind, seq) in list {
            if let Some(places) = candidates.get_mut(&subject) {
                places.push((Place::of_key(kind, seq), 1 << word));
                seen.insert(subject);
            }
        }
        candidates.retain(|subject, _| seen.contains(subject));
    }
    candidates
}

/// A subject's places, the one holding most words first, then the newest.
fn ranked(places: &[(Place, u64)]) -> Vec<Place> {
    let mut merged: HashMap<Place, u64> = HashMap::new();
    for (place, mask) in places {
        *merged.entry(*place).or_default() |= mask;
    }
    let mut ranked: Vec<(Place, u64)> = merged.into_iter().collect();
    ranked.sort_by_key(|(place, words)| std::cmp::Reverse((words.count_ones(), *place)));
    ranked.into_iter().map(|(place, _)| place).collect()
}

/// The tables a search reads its results from, opened once.
struct Records {
    sessions: ReadOnlyTable<u128, &'static [u8]>,
    tasks: Option<ReadOnlyTable<u128, &'static [u8]>>,
    events: ReadOnlyTable<u64, &'static [u8]>,
    entries: Option<ReadOnlyTable<(u128, u64), &'static [u8]>>,
}

impl Records {
    fn open(txn: &ReadTransaction) -> Result<Self, StoreError> {
        let sessions = txn.open_table(SESSIONS).map_err(StoreError::storage)?;
        let events = txn.open_table(EVENTS).map_err(StoreError::storage)?;
        Ok(Self {
            sessions,
            tasks: open(txn, TASKS)?,
            events,
            entries: open(txn, TRANSCRIPTS)?,
        })
    }

    /// The session or task `subject`, when it passes the query's filters (place and line
    /// still to fill).
    fn subject(&self, subject: u128, query: &SearchQuery) -> Result<Option<Found>, StoreError> {
        if let Some(session) = decoded::<Session>(self.sessions.get(subject), "session")? {
            let agent = session.agent.as_ref().map(ToString::to_string);
            let keep = query.plan.is_none_or(|p| session.plan == Some(p))
                && query
                    .agent
                    .as_ref()
                    .is_none_or(|a| agent.as_ref() == Some(a));
            return Ok(keep.then(|| Found {
                session: Some(session.id),
                task: session.task,
                title: session.title,
                plan: session.plan,
                agent,
                at: session.created_at,
                place: Place::Title,
                line: String::new(),
            }));
        }
        let Some(tasks) = &self.tasks else {
            return Ok(None);
        };
        let Some(task) = decoded::<Task>(tasks.get(subject), "task")? else {
            return Ok(None);
        };
        let keep = query.plan.is_none_or(|p| task.plan == p) && query.agent.is_none();
        let millis = (subject >> 80) as i64;
        Ok(keep.then(|| Found {
            session: None,
            task: Some(task.id),
            title: task.key,
            plan: Some(task.plan),
            agent: None,
            at: Timestamp::from_millisecond(millis).unwrap_or_default(),
            place: Place::Title,
            line: String::new(),
        }))
    }

    /// The line at `place` of `subject` that has one of `terms` (the last as a prefix), or
    /// `None` when the record is gone or no longer says any of them.
    fn line(
        &self,
        subject: u128,
        place: Place,
        terms: &[String],
    ) -> Result<Option<String>, StoreError> {
        let text = match place {
            Place::Title => match decoded::<Session>(self.sessions.get(subject), "session")? {
                Some(session) => session.title,
                None => return Ok(None),
            },
            Place::Event(seq) => match decoded::<DomainEvent>(self.events.get(seq), "event")? {
                Some(event) => event.cause,
                None => return Ok(None),
            },
            Place::Transcript(seq) => {
                let Some(entries) = &self.entries else {
                    return Ok(None);
                };
                match entries.get((subject, seq)).map_err(StoreError::storage)? {
                    Some(json) => entry_text(json.value()),
                    None => return Ok(None),
                }
            }
        };
        Ok(matching_line(&text, terms))
    }
}

fn decoded<T: DeserializeOwned>(
    json: Result<Option<AccessGuard<'_, &'static [u8]>>, redb::StorageError>,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    let Some(json) = json.map_err(StoreError::storage)? else {
        return Ok(None);
    };
    serde_json::from_slice(json.value())
        .map(Some)
        .map_err(|e| StoreError::Decode {
            what,
            detail: e.to_string(),
        })
}

/// Longest line shown, in characters.
const LINE_CHARS: usize = 160;

/// Characters shown before the first matching word of a long line.
const LEAD_CHARS: usize = 40;

/// The first line of `text` with a word of `terms` (the last may start a word), trimmed; a
/// long one cut around that word.
pub(crate) fn matching_line(text: &str, terms: &[String]) -> Option<String> {
    let last = terms.len().checked_sub(1)?;
    let matches = |raw: &str| {
        words(raw).first().is_some_and(|word| {
            terms
                .iter()
                .enumerate()
                .any(|(i, t)| word == t || (i == last && word.starts_with(t.as_str())))
        })
    };
    text.lines().find_map(|line| {
        let line = line.trim();
        let at = line
            .split(|c: char| !c.is_alphanumeric())
            .find(|raw| matches(raw))
            .map(|raw| raw.as_ptr() as usize - line.as_ptr() as usize)?;
        Some(cut_around(line, at))
    })
}

/// At most [`LINE_CHARS`] characters of `line`, starting a little before byte `at`.
fn cut_around(line: &str, at: usize) -> String {
    let before = line[..at].chars().count();
    let skip = if line.chars().count() > LINE_CHARS {
        before.saturating_sub(LEAD_CHARS)
    } else {
        0
    };
    let mut shown: String = line.chars().skip(skip).take(LINE_CHARS).collect();
    if skip > 0 {
        shown.insert(0, '…');
    }
    if line.chars().count() > skip + LINE_CHARS {
        shown.push('…');
    }
    shown
}
