//! `/` searches beyond the visible columns: the filter's text is searched once it rests for a
//! tick (one search at a time), the results draw over the panes, Down picks one and Enter
//! opens its session; Enter with none picked keeps the plain filter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Effect, Mode, Msg, Request};
use super::tests::{app, at, draw, key, plan_id, sid, tid, typed};
use crate::store::Found;
use crate::store::search::Place;

fn found() -> Vec<Found> {
    vec![
        Found {
            session: Some(sid(2)),
            task: Some(tid(1)),
            title: "client #1".into(),
            plan: Some(plan_id()),
            agent: Some("coder-1".into()),
            at: at(200),
            place: Place::Transcript(7),
            line: "the okapi test failed: expected 3, got 4".into(),
        },
        Found {
            session: None,
            task: Some(tid(3)),
            title: "e2e".into(),
            plan: Some(plan_id()),
            agent: None,
            at: at(100),
            place: Place::Event(12),
            line: "blocked by okapi".into(),
        },
    ]
}

fn searched(text: &str) -> super::app::App {
    let mut app = app();
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, text);
    let effects = app.update(Msg::Tick);
    assert_eq!(effects, [Effect::Request(Request::Search(text.into()))]);
    // One search at a time, and none again for the same text.
    assert!(app.update(Msg::Tick).is_empty());
    app.update(Msg::Found(text.into(), Ok(found())));
    assert!(app.update(Msg::Tick).is_empty());
    app
}

#[test]
fn the_results_draw_over_the_panes_at_120x30() {
    let mut app = searched("okapi");
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!("search_results_120x30", draw(&mut app, 120, 30));
}

#[test]
fn enter_on_a_picked_result_opens_its_session() {
    let mut app = searched("okapi");
    key(&mut app, KeyCode::Down);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(2)));
    assert!(effects.contains(&Effect::Request(Request::Transcript(sid(2)))));
    assert!(
        app.panes.filter.is_empty(),
        "the filter is cleared to show it"
    );
}

#[test]
fn enter_with_nothing_picked_keeps_the_plain_filter() {
    let mut app = searched("okapi");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.panes.filter, "okapi");
}

#[test]
fn results_for_an_older_text_are_not_shown() {
    let mut app = searched("okapi");
    typed(&mut app, "x");
    assert!(app.search.shown(&app.panes.filter).is_none());
    // Late results for a text no longer asked are dropped.
    app.update(Msg::Found("other".into(), Ok(Vec::new())));
    let effects = app.update(Msg::Tick);
    assert_eq!(effects, [Effect::Request(Request::Search("okapix".into()))]);
}

#[test]
fn the_detail_opens_scrolled_to_the_matching_transcript_line() {
    use crate::engine::{Activity, Entry};
    let mut app = searched("okapi");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let mut entries: Vec<Entry> = (0..60)
        .map(|i| Entry {
            at: at(i),
            part: None,
            activity: Activity::Text {
                text: format!("line {i}"),
            },
        })
        .collect();
    entries[5].activity = Activity::Text {
        text: "the okapi test failed: expected 3, got 4".into(),
    };
    app.update(Msg::Transcript(sid(2), entries));
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("the okapi test failed"), "{screen}");
    assert!(screen.contains("lines back"), "{screen}");
    assert!(app.panes.detail_find.is_none(), "scrolled once, then free");
}
