//! The timeline view: `T` asks for the selected plan's timeline, the view draws at 100x20 and
//! 60x14 (lanes, axis, bars, retry and wait glyphs, legend), zoom and scroll move it, `b` and
//! `e` fetch it again by task or for every plan, and a live timeline is fetched again each
//! tick, one fetch at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Effect, Mode, Msg, Pane, Request};
use super::tests::{app, draw, key, plan_id};
use crate::timeline::LaneBy;
use crate::timeline::tests::feature;

fn opened(live: bool) -> super::app::App {
    let mut app = app();
    app.focus = Pane::Tasks;
    let effects = key(&mut app, KeyCode::Char('T'));
    let plan = Some(plan_id());
    assert_eq!(
        effects,
        [Effect::Request(Request::Timeline(plan, LaneBy::Agent))]
    );
    assert_eq!(app.mode, Mode::Timeline);
    let mut timeline = feature().timeline(LaneBy::Agent, 500);
    timeline.live = live;
    app.update(Msg::Timeline(plan, Ok(Box::new(timeline))));
    app
}

#[test]
fn the_timeline_at_100x20_and_60x14() {
    let mut app = opened(false);
    insta::assert_snapshot!("timeline_100x20", draw(&mut app, 100, 20));
    insta::assert_snapshot!("timeline_60x14", draw(&mut app, 60, 14));
}

#[test]
fn zoom_and_scroll_move_the_axis_and_fit_puts_it_back() {
    let mut app = opened(false);
    let fitted = draw(&mut app, 100, 20);
    assert!(
        fitted.contains("design #1") && fitted.contains("review #1"),
        "{fitted}"
    );
    for _ in 0..3 {
        key(&mut app, KeyCode::Char('+'));
    }
    let zoomed = draw(&mut app, 100, 20);
    assert!(zoomed.contains("design #1"), "{zoomed}");
    assert!(
        !zoomed.contains("review #1"),
        "zoomed in, the end is off screen: {zoomed}"
    );
    for _ in 0..8 {
        key(&mut app, KeyCode::Char('l'));
    }
    let later = draw(&mut app, 100, 20);
    assert!(!later.contains("design #1"), "scrolled on: {later}");
    key(&mut app, KeyCode::Char('0'));
    assert_eq!(draw(&mut app, 100, 20), fitted);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn lanes_by_task_and_every_plan_fetch_it_again() {
    let mut app = opened(false);
    let effects = key(&mut app, KeyCode::Char('b'));
    let plan = Some(plan_id());
    assert_eq!(
        effects,
        [Effect::Request(Request::Timeline(plan, LaneBy::Task))]
    );
    // A late answer for what is no longer shown is dropped.
    app.update(Msg::Timeline(None, Err("old".into())));
    assert!(matches!(app.timeline.data, Some(Ok(_))));
    let effects = key(&mut app, KeyCode::Char('e'));
    assert_eq!(
        effects,
        [Effect::Request(Request::Timeline(None, LaneBy::Task))]
    );
    let effects = key(&mut app, KeyCode::Char('e'));
    assert_eq!(
        effects,
        [Effect::Request(Request::Timeline(plan, LaneBy::Task))]
    );
}

#[test]
fn a_live_timeline_is_fetched_again_each_tick_one_fetch_at_a_time() {
    let mut app = opened(true);
    let again = Effect::Request(Request::Timeline(Some(plan_id()), LaneBy::Agent));
    assert_eq!(app.update(Msg::Tick), [again]);
    assert!(app.update(Msg::Tick).is_empty(), "one fetch at a time");
    let mut timeline = feature().timeline(LaneBy::Agent, 500);
    timeline.live = false;
    app.update(Msg::Timeline(Some(plan_id()), Ok(Box::new(timeline))));
    assert!(
        app.update(Msg::Tick).is_empty(),
        "nothing runs, nothing moved"
    );
}

/// Under `NO_COLOR` (the test theme has no colour) a bar's outcome shows by its glyph, in the
/// bars and the legend: a failed bar must not look like a completed one.
#[test]
fn without_colour_outcomes_differ_by_glyph() {
    use crate::timeline::Outcome;
    let mut app = opened(false);
    // A bar of every outcome, so the legend names each.
    let mut timeline = feature().timeline(LaneBy::Agent, 500);
    let bars = &mut timeline.lanes[0].bars;
    bars[2].outcome = Outcome::TimedOut;
    bars[3].outcome = Outcome::Cancelled;
    timeline.lanes[1].bars[0].outcome = Outcome::Running;
    app.update(Msg::Timeline(Some(plan_id()), Ok(Box::new(timeline))));
    let screen = draw(&mut app, 140, 20);
    let legend = screen
        .lines()
        .find(|l| l.contains(" retry "))
        .unwrap_or_else(|| panic!("no legend: {screen}"));
    let glyph_before = |name: &str| {
        let at = legend.find(&format!(" {name} ")).unwrap();
        legend[..at].chars().last().unwrap()
    };
    let glyphs: Vec<char> = ["completed", "failed", "timed out", "cancelled", "running"]
        .iter()
        .map(|name| glyph_before(name))
        .collect();
    let mut distinct = glyphs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), glyphs.len(), "same glyphs: {legend}");
    // impl #1 failed: after its label, its bar is drawn in the failed glyph.
    let alpha = screen.lines().find(|l| l.contains("alpha")).unwrap();
    let after = &alpha[alpha.find("impl #1").unwrap() + "impl #1".len()..];
    assert!(after.starts_with(glyphs[1]), "{alpha}");
}

/// The legend names only what the timeline shows, and fits: at 120 columns it was cut in
/// the middle of a word (`un`), naming every outcome though none but two had a bar.
#[test]
fn the_legend_names_what_is_drawn_and_is_never_cut_in_a_word() {
    let mut app = opened(false);
    for width in [120, 100, 60, 40] {
        let screen = draw(&mut app, width, 20);
        let legend = screen
            .lines()
            .find(|l| l.contains("█ completed"))
            .unwrap_or_else(|| panic!("no legend at {width}: {screen}"));
        assert!(!legend.contains("timed out"), "no bar timed out: {legend}");
        assert!(!legend.contains("lost"), "no bar was lost: {legend}");
        let inside = legend.trim_matches(['"', '│']).trim_end();
        assert!(
            inside.ends_with("critical path")
                || inside.ends_with("waiting for you")
                || inside.ends_with('…'),
            "cut at {width}: {legend}"
        );
    }
    let screen = draw(&mut app, 120, 20);
    assert!(
        screen.contains(
            "█ completed  ╳ failed  ▒ retry  ░ waiting for you  underlined: critical path"
        ),
        "{screen}"
    );
}
