//! Issue "Trust in daily use": what the control room shows of a session in provider retry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Mode, Msg};
use super::tests::{app, at, draw, key, sid};
use crate::engine::EngineEvent;
use crate::engine::view::Entry;
use crate::opencode::event::decode;
use crate::opencode::transcript::Transcriber;

fn status(json: &str) -> crate::opencode::event::ServerEvent {
    decode(&format!(
        r#"{{"type":"session.status","properties":{{"sessionID":"ses_1","status":{json}}}}}"#
    ))
    .unwrap()
    .unwrap()
}

pub(super) fn row<'a>(screen: &'a str, task: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(task))
        .unwrap_or_else(|| panic!("no row for {task}:\n{screen}"))
}

/// Item 11: a session whose server retries the provider shows as retrying, with the attempt,
/// the provider's message and when the next try is, until the server is busy with it again.
#[test]
fn a_session_in_provider_retry_shows_as_retrying() {
    let mut app = app();
    let mut transcriber = Transcriber::default();
    // The next try 12 s after the app's clock.
    let next = (app.now + jiff::SignedDuration::from_secs(12)).as_millisecond();
    let retry = status(&format!(
        r#"{{"type":"retry","attempt":2,"message":"fake failure 500","next":{next}}}"#
    ));
    for event in [status(r#"{"type":"busy"}"#), retry] {
        if let Some((activity, part)) = transcriber.activity(&event) {
            let entry = Entry {
                at: at(290),
                part,
                activity,
            };
            app.update(Msg::Engine(crate::tui::tests::told(
                EngineEvent::Activity {
                    session: sid(3),
                    entry,
                },
            )));
        }
    }
    let screen = draw(&mut app, 160, 48);
    let api = row(&screen, "api #1");
    assert!(
        api.contains("retrying") && api.contains("retry 2 in 12s"),
        "{api}"
    );
    let header = screen.lines().next().unwrap();
    assert!(
        header.contains(" 1 retrying ") && !header.contains(" 1 running "),
        "{header}"
    );
    insta::assert_snapshot!("retrying_160x48", screen);
    // The detail says it in full.
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Detail(sid(3)));
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("retrying (attempt 2: fake failure 500, next in 12s)"),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);

    let (busy, part) = transcriber
        .activity(&status(r#"{"type":"busy"}"#))
        .expect("busy again is shown");
    app.update(Msg::Engine(crate::tui::tests::told(
        EngineEvent::Activity {
            session: sid(3),
            entry: Entry {
                at: at(295),
                part,
                activity: busy,
            },
        },
    )));
    let screen = draw(&mut app, 160, 48);
    let api = row(&screen, "api #1");
    assert!(
        api.contains("running") && !api.contains("retrying ("),
        "{api}"
    );
    // The header's counts (kept between frames) follow.
    let header = screen.lines().next().unwrap();
    assert!(!header.contains("retrying"), "{header}");
}
