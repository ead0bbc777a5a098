//! Durable transcripts against real redb files: parts replace each other, the cap cuts the
//! oldest entries and says so, pruning frees what ended long ago.

#![allow(clippy::unwrap_used)]

use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::{SessionKind, SessionStatus};
use crate::store::{Store, StoreHandle, StoreOptions};

/// An entry as a caller stores it: the store reads only `part`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    part: Option<String>,
    text: String,
}

fn line(part: Option<&str>, text: &str) -> Line {
    Line {
        part: part.map(str::to_string),
        text: text.into(),
    }
}

fn put(store: &StoreHandle, session: SessionId, lines: &[Line], cap: u64) {
    let mut batch = Batch::new();
    for l in lines {
        batch.put_transcript(session, l.part.as_deref(), l, cap);
    }
    store.commit_blocking(batch).unwrap();
}

fn read(store: &StoreHandle, session: SessionId) -> StoredTranscript<Line> {
    store
        .read_blocking(move |txn| transcript(txn, session))
        .unwrap()
}

fn open() -> (tempfile::TempDir, StoreHandle) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    (dir, store)
}

#[test]
fn entries_of_one_part_replace_each_other_and_storing_again_adds_nothing() {
    let (_dir, store) = open();
    let session = SessionId::generate();
    let other = SessionId::generate();
    let first = [
        line(Some("prt_1"), "Hel"),
        line(Some("tool_1"), "bash running"),
        line(None, "a note"),
        line(Some("prt_1"), "Hello"),
    ];
    put(&store, session, &first, u64::MAX);
    put(&store, other, &[line(Some("prt_1"), "other")], u64::MAX);
    // A backfill stores the same parts again, in their final state.
    let again = [
        line(Some("prt_1"), "Hello world"),
        line(Some("tool_1"), "bash completed"),
    ];
    put(&store, session, &again, u64::MAX);
    let stored = read(&store, session);
    assert_eq!(
        stored.entries,
        vec![
            line(Some("prt_1"), "Hello world"),
            line(Some("tool_1"), "bash completed"),
            line(None, "a note"),
        ]
    );
    assert_eq!(stored.size.entries, 3);
    assert_eq!(stored.size.cut_entries, 0);
    assert_eq!(
        read(&store, other).entries,
        vec![line(Some("prt_1"), "other")]
    );
}

#[test]
fn a_transcript_over_its_cap_loses_its_oldest_entries_and_records_the_cut() {
    let (_dir, store) = open();
    let session = SessionId::generate();
    let lines: Vec<Line> = (0..10)
        .map(|i| line(Some(&format!("prt_{i}")), &"x".repeat(100)))
        .collect();
    let one = serde_json::to_vec(&lines[0]).unwrap().len() as u64;
    put(&store, session, &lines, one * 4);
    let stored = read(&store, session);
    assert_eq!(
        stored.entries,
        lines[6..].to_vec(),
        "the newest four are kept"
    );
    assert_eq!(stored.size.entries, 4);
    assert_eq!(stored.size.bytes, one * 4);
    assert_eq!(
        (stored.size.cut_entries, stored.size.cut_bytes),
        (6, one * 6)
    );
    // A cut part is stored anew when it comes again (its old place is gone).
    put(&store, session, &[line(Some("prt_0"), "back")], one * 4);
    let stored = read(&store, session);
    assert_eq!(stored.entries.last(), Some(&line(Some("prt_0"), "back")));
    assert_eq!(stored.size.cut_entries, 7);
    // The newest entry stays even when it alone is over the cap.
    put(&store, session, &[line(None, &"y".repeat(1000))], one * 4);
    let stored = read(&store, session);
    assert_eq!(stored.entries.len(), 1);
    assert!(stored.size.bytes > one * 4);

    // An oldest entry that grows past the cap is kept; the ones after it are cut.
    let other = SessionId::generate();
    put(&store, other, &lines[..3], one * 4);
    put(
        &store,
        other,
        &[line(Some("prt_0"), &"z".repeat(400))],
        one * 4,
    );
    let stored = read(&store, other);
    assert_eq!(stored.entries, vec![line(Some("prt_0"), &"z".repeat(400))]);
    assert_eq!(stored.size.cut_entries, 2);
}

fn session_ended(store: &StoreHandle, finished: Option<jiff::Timestamp>) -> SessionId {
    let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let mut session = Session::new(SessionId::generate(), "p/t #1", SessionKind::Code, at);
    if let Some(end) = finished {
        for to in [
            SessionStatus::Queued,
            SessionStatus::Starting,
            SessionStatus::Running,
            SessionStatus::Completed,
        ] {
            session.transition(to, "test", end).unwrap();
        }
    }
    let mut batch = Batch::new();
    batch.put_session(&session);
    store.commit_blocking(batch).unwrap();
    session.id
}

#[test]
fn pruning_frees_the_transcripts_of_sessions_that_ended_before_the_retention() {
    let (_dir, store) = open();
    let day = jiff::SignedDuration::from_hours(24);
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let old = session_ended(&store, Some(now - day * 40));
    let recent = session_ended(&store, Some(now - day));
    let running = session_ended(&store, None);
    for id in [old, recent, running] {
        put(
            &store,
            id,
            &[line(Some("prt_1"), "hi"), line(None, "n")],
            u64::MAX,
        );
    }
    let size = read(&store, old).size;
    let pruned = store.prune_transcripts_blocking(now - day * 30).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            sessions: 1,
            entries: 2,
            bytes: size.bytes
        }
    );
    assert!(read(&store, old).entries.is_empty());
    assert_eq!(read(&store, old).size, TranscriptSize::default());
    assert_eq!(read(&store, recent).entries.len(), 2);
    assert_eq!(read(&store, running).entries.len(), 2);
    // Nothing more to free.
    let again = store.prune_transcripts_blocking(now - day * 30).unwrap();
    assert_eq!(again, Pruned::default());
    // The part index went too: the part is stored anew, once.
    put(&store, old, &[line(Some("prt_1"), "again")], u64::MAX);
    assert_eq!(
        read(&store, old).entries,
        vec![line(Some("prt_1"), "again")]
    );
}
