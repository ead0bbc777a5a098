//! `o` in a session's detail: a session on an OpenCode server is handed to `opencode attach`
//! (with where its password is, never the password); one without a remote session says why; the
//! input thread stops reading the terminal while OpenCode has it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::KeyCode;

use super::app::{Effect, Mode, Msg, Request};
use super::takeover::{InputGate, TakeOver};
use super::tests::{app, draw, key, sid};
use crate::domain::{Backend, RemoteSession};
use crate::opencode::attach::{Attach, PasswordSource};

#[test]
fn o_on_a_simulated_sessions_detail_says_there_is_nothing_to_open() {
    let mut app = app();
    app.mode = Mode::Detail(sid(3));
    let screen = draw(&mut app, 120, 30);
    assert!(
        screen.contains("o opencode"),
        "the hint names the key:\n{screen}"
    );
    assert!(key(&mut app, KeyCode::Char('o')).is_empty());
    let screen = draw(&mut app, 120, 30);
    assert!(
        screen.contains("ran on the simulated agent coder-1: there is no OpenCode session"),
        "{screen}"
    );
    assert_eq!(app.mode, Mode::Detail(sid(3)));
}

#[test]
fn o_on_a_sessions_detail_takes_it_over_with_its_servers_password_variable() {
    let mut app = app();
    let remote = RemoteSession {
        server: "http://10.0.0.7:4096".into(),
        session_id: "ses_remote".into(),
        directory: "/work/wt/api".into(),
    };
    let view = app
        .view
        .sessions
        .iter_mut()
        .find(|s| s.session.id == sid(3))
        .unwrap();
    view.session.remote = Some(remote);
    let agent = app
        .view
        .agents
        .iter_mut()
        .find(|a| a.name.as_str() == "coder-1")
        .unwrap();
    agent.backend = Backend::Opencode {
        url: Some("http://10.0.0.7:4096".into()),
        managed: false,
        password_env: Some("CODER_PW".into()),
        linger: None,
    };
    // Only in the detail: in the sessions pane `o` does nothing.
    assert!(key(&mut app, KeyCode::Char('o')).is_empty());
    app.mode = Mode::Detail(sid(3));
    let effects = key(&mut app, KeyCode::Char('o'));
    let [Effect::TakeOver(take)] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let TakeOver { attach, password } = take.as_ref();
    assert_eq!(
        attach,
        &Attach {
            session: sid(3),
            url: "http://10.0.0.7:4096".into(),
            remote_session: "ses_remote".into(),
            directory: "/work/wt/api".into(),
        }
    );
    assert_eq!(password.password_env.as_deref(), Some("CODER_PW"));
    assert!(!password.managed);
    assert_eq!(
        password.instead(attach),
        "OPENCODE_SERVER_PASSWORD=\"$CODER_PW\" opencode attach http://10.0.0.7:4096 --session ses_remote --dir /work/wt/api"
    );
    let _: &PasswordSource = password;
}

#[test]
fn closing_the_gate_waits_until_the_reader_has_stopped_reading() {
    let gate = Arc::new(InputGate::default());
    let reading = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (gate, reading, stop) = (gate.clone(), reading.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if gate.closed() {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    continue;
                }
                // A read that takes a while (crossterm's poll waits up to 100 ms).
                reading.store(true, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(50));
                reading.store(false, Ordering::SeqCst);
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    gate.close();
    assert!(!reading.load(Ordering::SeqCst), "still reading after close");
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!reading.load(Ordering::SeqCst), "reads while closed");
    gate.open();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(reading.load(Ordering::SeqCst), "reading again after open");
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
}

/// A session dispatched since the room's last snapshot: the room's copy does not say where it
/// runs, so `o` asks for a snapshot and takes over once it is in (or says why not).
#[test]
fn o_waits_for_a_snapshot_to_learn_where_the_session_runs() {
    let mut app = app();
    let opencode = Backend::Opencode {
        url: None,
        managed: true,
        password_env: None,
        linger: None,
    };
    let mut snapshot = super::tests::snapshot();
    for agent in &mut snapshot.agents {
        agent.backend = opencode.clone();
    }
    app.update(Msg::Snapshot(Box::new(snapshot.clone())));
    app.mode = Mode::Detail(sid(3));
    assert_eq!(
        key(&mut app, KeyCode::Char('o')),
        vec![Effect::Request(Request::Snapshot)]
    );
    let view = snapshot
        .sessions
        .iter_mut()
        .find(|s| s.session.id == sid(3))
        .unwrap();
    view.session.remote = Some(RemoteSession {
        server: "http://127.0.0.1:4096".into(),
        session_id: "ses_later".into(),
        directory: "/work/wt/api".into(),
    });
    let effects = app.update(Msg::Snapshot(Box::new(snapshot.clone())));
    let Some(Effect::TakeOver(take)) = effects.last() else {
        panic!("{effects:?}");
    };
    assert_eq!(take.attach.remote_session, "ses_later");
    assert!(take.password.managed);
    // Still nothing after the snapshot: it says so, once.
    app.mode = Mode::Detail(sid(2));
    assert_eq!(
        key(&mut app, KeyCode::Char('o')),
        vec![Effect::Request(Request::Snapshot)]
    );
    let effects = app.update(Msg::Snapshot(Box::new(snapshot.clone())));
    assert!(!effects.iter().any(|e| matches!(e, Effect::TakeOver(_))));
    let screen = draw(&mut app, 160, 30);
    assert!(
        screen.contains("has no OpenCode session (failed)"),
        "{screen}"
    );
    assert!(app.update(Msg::Snapshot(Box::new(snapshot))).is_empty());
}

/// The detail of a running session on a server, whose copy does not say where it runs yet,
/// asks for a snapshot each second until it does; simulated sessions never ask.
#[test]
fn the_detail_asks_each_second_where_a_session_runs_until_it_knows() {
    let mut app = app();
    app.mode = Mode::Detail(sid(3));
    assert!(
        app.update(Msg::Tick).is_empty(),
        "simulated: nothing to ask"
    );
    let mut snapshot = super::tests::snapshot();
    for agent in &mut snapshot.agents {
        agent.backend = Backend::Opencode {
            url: Some("http://127.0.0.1:4096".into()),
            managed: false,
            password_env: None,
            linger: None,
        };
    }
    app.update(Msg::Snapshot(Box::new(snapshot.clone())));
    assert_eq!(
        app.update(Msg::Tick),
        vec![Effect::Request(Request::Snapshot)]
    );
    snapshot.sessions[1].session.remote = Some(RemoteSession {
        server: "http://127.0.0.1:4096".into(),
        session_id: "ses_known".into(),
        directory: "/work/wt/api".into(),
    });
    assert_eq!(snapshot.sessions[1].session.id, sid(3));
    app.update(Msg::Snapshot(Box::new(snapshot)));
    assert!(app.update(Msg::Tick).is_empty());
    assert!(draw(&mut app, 160, 30).contains("on http://127.0.0.1:4096 as ses_known"));
    // A finished session is not asked about.
    app.mode = Mode::Detail(sid(2));
    assert!(app.update(Msg::Tick).is_empty());
}
