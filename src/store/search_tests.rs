//! The search index against real redb files: words of titles, event causes and transcript
//! entries are found, all words must match, the last may be a prefix, filters hold.

#![allow(clippy::unwrap_used)]

use jiff::Timestamp;

use super::*;
use crate::domain::{PlanId, Session, SessionId, SessionKind, SessionStatus};
use crate::store::search_query::matching_line;
use crate::store::{Batch, Found, SearchQuery, Store, StoreHandle, StoreOptions, search};

fn open() -> (tempfile::TempDir, StoreHandle) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    (dir, store)
}

fn find(store: &StoreHandle, text: &str) -> Vec<Found> {
    find_with(
        store,
        SearchQuery {
            text: text.into(),
            ..SearchQuery::default()
        },
    )
}

fn find_with(store: &StoreHandle, mut query: SearchQuery) -> Vec<Found> {
    query.limit = 50;
    store.read_blocking(move |txn| search(txn, &query)).unwrap()
}

#[derive(serde::Serialize)]
struct Entry {
    part: Option<String>,
    kind: &'static str,
    text: String,
}

fn session(title: &str, plan: Option<PlanId>) -> Session {
    let mut session = Session::new(
        SessionId::generate(),
        title,
        SessionKind::Code,
        Timestamp::now(),
    );
    session.plan = plan;
    session
}

#[test]
fn words_are_lowercased_split_on_punctuation_deduplicated_and_cut() {
    assert_eq!(
        words("Fix the PARSER: parser.rs, a b x2 the"),
        vec!["fix", "the", "parser", "rs", "x2"]
    );
    let long = "a".repeat(40);
    assert_eq!(words(&long), vec!["a".repeat(MAX_WORD)]);
    assert!(words("- a / b").is_empty());
    assert_eq!(words("Ünïcode ÉTÉ"), vec!["ünïcode", "été"]);
}

#[test]
fn entry_text_leaves_out_part_time_and_kind() {
    let json = br#"{"at":"2026-01-01T00:00:00Z","part":"prt_1","activity":{"kind":"tool","tool":"bash","status":"completed","title":"cargo test"}}"#;
    // Fields in key order: serde_json keeps objects sorted.
    assert_eq!(entry_text(json), "cargo test\nbash");
}

#[test]
fn a_word_is_found_in_a_title_an_event_cause_and_a_transcript_entry() {
    let (_dir, store) = open();
    let titled = session("Refactor the zebra module", None);
    let mut failed = session("plain", None);
    let other = session("other", None);
    let mut batch = Batch::new();
    batch.put_session(&titled).put_session(&other);
    let event = failed
        .transition(SessionStatus::Queued, "queued by giraffe", Timestamp::now())
        .unwrap();
    batch.put_session(&failed).append_event(&event);
    let entry = Entry {
        part: Some("prt_1".into()),
        kind: "text",
        text: "first line\nthe okapi answered".into(),
    };
    batch.put_transcript(other.id, entry.part.as_deref(), &entry, u64::MAX);
    store.commit_blocking(batch).unwrap();

    let zebra = find(&store, "ZEBRA");
    assert_eq!(zebra.len(), 1);
    assert_eq!(zebra[0].session, Some(titled.id));
    assert_eq!(zebra[0].place, Place::Title);
    let giraffe = find(&store, "giraffe");
    assert_eq!(giraffe[0].session, Some(failed.id));
    assert!(matches!(giraffe[0].place, Place::Event(_)));
    assert_eq!(giraffe[0].line, "queued by giraffe");
    let okapi = find(&store, "okapi");
    assert_eq!(okapi[0].session, Some(other.id));
    assert_eq!(okapi[0].place, Place::Transcript(1));
    assert_eq!(okapi[0].line, "the okapi answered");
    assert!(find(&store, "elephant").is_empty());
}

#[test]
fn every_word_must_match_the_last_may_be_a_prefix_and_newest_comes_first() {
    let (_dir, store) = open();
    let older = session("parser fix in lexer", None);
    let newer = session("parser rewrite", None);
    let mut batch = Batch::new();
    batch.put_session(&older).put_session(&newer);
    store.commit_blocking(batch).unwrap();

    let both: Vec<_> = find(&store, "parser").iter().map(|f| f.session).collect();
    assert_eq!(both, vec![Some(newer.id), Some(older.id)]);
    let fix: Vec<_> = find(&store, "parser lex")
        .iter()
        .map(|f| f.session)
        .collect();
    assert_eq!(fix, vec![Some(older.id)]);
    assert!(
        find(&store, "lex parser").is_empty(),
        "only the last word is a prefix"
    );
    assert!(find(&store, "").is_empty());
}

#[test]
fn the_plan_and_agent_filters_keep_only_their_sessions() {
    let (_dir, store) = open();
    let plan = PlanId::generate();
    let in_plan = session("shared word", Some(plan));
    let mut by_agent = session("shared word", None);
    by_agent.agent = Some(crate::domain::AgentName::new("builder").unwrap());
    let mut batch = Batch::new();
    batch.put_session(&in_plan).put_session(&by_agent);
    store.commit_blocking(batch).unwrap();

    let of_plan = find_with(
        &store,
        SearchQuery {
            text: "shared".into(),
            plan: Some(plan),
            ..SearchQuery::default()
        },
    );
    assert_eq!(of_plan.len(), 1);
    assert_eq!(of_plan[0].session, Some(in_plan.id));
    let of_agent = find_with(
        &store,
        SearchQuery {
            text: "word".into(),
            agent: Some("builder".into()),
            ..SearchQuery::default()
        },
    );
    assert_eq!(of_agent.len(), 1);
    assert_eq!(of_agent[0].session, Some(by_agent.id));
    let later = find_with(
        &store,
        SearchQuery {
            text: "word".into(),
            since: Some(Timestamp::now() + jiff::SignedDuration::from_hours(1)),
            ..SearchQuery::default()
        },
    );
    assert!(later.is_empty());
}

#[test]
fn a_status_change_does_not_index_the_title_again_and_a_new_title_is_indexed() {
    let (_dir, store) = open();
    let mut s = session("alpha", None);
    store
        .commit_blocking(Batch::new().put_session(&s).clone())
        .unwrap();
    s.title = "beta".into();
    store
        .commit_blocking(Batch::new().put_session(&s).clone())
        .unwrap();
    assert_eq!(find(&store, "beta").len(), 1);
    // The old title's words stay in the index but no longer match the record: not shown.
    assert!(find(&store, "alpha").is_empty());
}

#[test]
fn reindex_indexes_what_was_stored_before_the_index() {
    let (_dir, store) = open();
    let s = session("wombat burrow", None);
    store
        .commit_blocking(Batch::new().put_session(&s).clone())
        .unwrap();
    let done = store.reindex_blocking().unwrap();
    assert_eq!(done.sessions, 1);
    assert_eq!(find(&store, "wombat").len(), 1);
}

#[test]
fn the_matching_line_is_the_first_with_a_word_and_long_lines_are_cut() {
    let terms = vec!["needle".to_string()];
    assert_eq!(
        matching_line("hay\n  a needle here \nneedle again", &terms).as_deref(),
        Some("a needle here")
    );
    let long = format!("needle {}", "x".repeat(300));
    let line = matching_line(&long, &terms).unwrap();
    assert_eq!(line.chars().count(), 161);
    assert_eq!(matching_line("nothing", &terms), None);
}

#[test]
fn a_long_line_is_cut_around_its_first_matching_word() {
    let terms = vec!["needle".to_string()];
    let long = format!("{} needle {}", "hay ".repeat(100), "straw ".repeat(100));
    let line = matching_line(&long, &terms).unwrap();
    assert!(line.contains("needle"), "{line}");
    assert!(line.starts_with('…') && line.ends_with('…'), "{line}");
    assert!(line.chars().count() <= 162, "{line}");
}

/// A text part is rewritten whole as it streams: each version's new words are found, in the
/// same batch or a later one, and a word the text no longer has finds nothing.
#[test]
fn a_rewritten_entry_is_found_by_its_new_words_and_not_by_words_it_lost() {
    let (_dir, store) = open();
    let streamed = session("streaming", None);
    let text = |text: &str| Entry {
        part: Some("prt_1".into()),
        kind: "text",
        text: text.into(),
    };
    let mut batch = Batch::new();
    batch.put_session(&streamed);
    batch.put_transcript(streamed.id, Some("prt_1"), &text("the quokka"), u64::MAX);
    batch.put_transcript(
        streamed.id,
        Some("prt_1"),
        &text("the quokka hops"),
        u64::MAX,
    );
    store.commit_blocking(batch).unwrap();
    let mut batch = Batch::new();
    let whole = text("the quokka hops past a wombat");
    batch.put_transcript(streamed.id, Some("prt_1"), &whole, u64::MAX);
    store.commit_blocking(batch).unwrap();
    for word in ["quokka", "hops", "wombat"] {
        let found = find(&store, word);
        assert_eq!(found.len(), 1, "{word}");
        assert_eq!(found[0].place, Place::Transcript(1), "{word}");
        assert_eq!(found[0].line, "the quokka hops past a wombat");
    }
    let mut batch = Batch::new();
    batch.put_transcript(streamed.id, Some("prt_1"), &text("a wombat only"), u64::MAX);
    store.commit_blocking(batch).unwrap();
    assert!(
        find(&store, "quokka").is_empty(),
        "a word the entry lost finds nothing"
    );
    assert_eq!(find(&store, "wombat")[0].line, "a wombat only");
}
