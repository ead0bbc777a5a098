//! A real crash test of the store's durability promise: a child process commits transitions as
//! fast as it can from several threads and prints each one the store acknowledged; the test
//! SIGKILLs it at a random moment, reopens the database (verifying every page checksum), and
//! checks that every acknowledged write is there and the control log has no gaps. Repeated on
//! the same file, so recovery after recovery is exercised too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use jiff::Timestamp;
use ocio::domain::{Lifecycle, Session, SessionId, SessionKind, SessionStatus, Transition};
use ocio::store::{Batch, Store, StoreOptions, query};

const CHILD_DB: &str = "OCIO_CRASH_CHILD_DB";
const WRITERS: usize = 8;
const PATH: [SessionStatus; 4] = [
    SessionStatus::Queued,
    SessionStatus::Starting,
    SessionStatus::Running,
    SessionStatus::Completed,
];

/// The child's body. Does nothing unless started by `acknowledged_writes_survive_sigkill`.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = Store::open(Path::new(&path), StoreOptions::default()).unwrap();
    let _writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                loop {
                    let mut session = Session::new(
                        SessionId::generate(),
                        format!("crash writer {w}"),
                        SessionKind::Code,
                        Timestamp::now(),
                    );
                    for to in PATH {
                        let event = session
                            .transition(to, "crash test", Timestamp::now())
                            .unwrap();
                        let mut batch = Batch::new();
                        batch.put_session(&session).append_event(&event);
                        let receipt = store.commit_blocking(batch).unwrap();
                        // Acknowledged: the commit is durable. Only now is it reported.
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {} {} {}", session.id, to, receipt.event_seqs[0])
                            .unwrap();
                        out.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    // The writers never stop; the parent kills this process.
    loop {
        std::thread::park();
    }
}

struct Ack {
    session: SessionId,
    status: SessionStatus,
    seq: u64,
}

fn parse(line: &str) -> Option<Ack> {
    let mut words = line.strip_prefix("ack ")?.split(' ');
    Some(Ack {
        session: words.next()?.parse().ok()?,
        status: words.next()?.parse().ok()?,
        seq: words.next()?.parse().ok()?,
    })
}

fn position(status: SessionStatus) -> usize {
    PATH.iter().position(|&s| s == status).unwrap()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let rounds: usize = std::env::var("OCIO_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocio.redb");
    let mut acked: Vec<Ack> = Vec::new();
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DB, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(ack) = parse(&line) {
                    let _ = lines.send(ack);
                }
            }
        });
        // Kill mid-stream: after the first acknowledgement, at a random moment.
        let first = received
            .recv_timeout(Duration::from_secs(60))
            .expect("the child acknowledged nothing");
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acked.len();
        acked.push(first);
        acked.extend(received.try_iter());

        let store = Store::open(
            &path,
            StoreOptions {
                check_integrity: true,
                ..StoreOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("round {round}: the database did not reopen cleanly: {e}"));
        assert!(
            store.open_info().recovered,
            "round {round}: a killed writer must leave recovery to do"
        );
        let (sessions, events, last_seq) = store
            .read_blocking(|txn| {
                Ok((
                    query::sessions(txn)?,
                    query::events_after(txn, 0, usize::MAX)?,
                    query::last_event_seq(txn)?,
                ))
            })
            .unwrap();
        assert_eq!(
            events.len() as u64,
            last_seq,
            "round {round}: the control log has gaps"
        );
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, (seq, _))| *seq == i as u64 + 1)
        );
        let sessions: std::collections::HashMap<SessionId, Session> =
            sessions.into_iter().map(|s| (s.id, s)).collect();
        for ack in &acked {
            let stored = sessions.get(&ack.session).unwrap_or_else(|| {
                panic!("round {round}: acknowledged session {} lost", ack.session)
            });
            // Later transitions may have committed without being reported; never earlier ones.
            assert!(
                position(stored.status) >= position(ack.status),
                "round {round}: session {} went back from {} to {}",
                ack.session,
                ack.status,
                stored.status
            );
            let (_, event) = &events[(ack.seq - 1) as usize];
            let Transition::Session { id, to, .. } = event.transition else {
                panic!("not a session event")
            };
            assert_eq!(
                (id, to.name()),
                (ack.session, ack.status.name()),
                "round {round}: event {} does not match its acknowledgement",
                ack.seq
            );
        }
        store.close_blocking();
        eprintln!(
            "round {round}: {} writes acknowledged, all present after SIGKILL ({last_seq} in the log)",
            acked.len() - before
        );
    }
    assert!(acked.len() >= rounds, "every round acknowledged something");
}
