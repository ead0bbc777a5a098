//! `o` in a session's detail: a session on an OpenCode server is handed to `opencode attach`
//! (with where its password is, never the password); one without a remote session says why; the
//! input thread stops reading the terminal while OpenCode has it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::KeyCode;

use super::app::{Effect, Mode};
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
