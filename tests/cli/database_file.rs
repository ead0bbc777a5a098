//! The database file under readers, racing engines and damage: readers never write it nor make
//! an engine starting beside them fail; two engines started at once leave one running and tell
//! the other that another ocio holds the file; a damaged, empty or garbage file is refused with
//! exit 2 and no panic text, and left as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::support::TestRepo;
use super::support::home::{Home, stderr};
use super::{SIM_AGENT, write_plan};

fn hash(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut hasher);
    hasher.finish()
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.to_vec().hash(&mut hasher);
    hasher.finish()
}

/// A database the engine made: a plan run to the end on a simulated agent.
fn made_by_the_engine(home: &Home) -> PathBuf {
    home.write_config(SIM_AGENT);
    let repo = TestRepo::new();
    let plan = write_plan(
        home,
        &format!(
            "name = \"p\"\nrepo = {:?}\n[[tasks]]\nid = \"a\"\nprompt = \"write the thing\"\ncapabilities = [\"code\"]\n",
            repo.dir_str()
        ),
    );
    let out = home.ocio(&["run", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    home.db()
}

/// Runs `command` to its end, killing it after `limit` (an engine that started on a bad file
/// would otherwise run for ever).
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Exit 2 naming the file and what to do, no panic text, the file as it was.
fn refused_untouched(home: &Home, args: &[&str], before: u64, needle: &str) {
    let out = output_within(home.command(args), Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "ocio {args:?}: {err}");
    assert!(
        err.contains(&home.db().display().to_string()),
        "{args:?}: {err}"
    );
    assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    assert!(err.contains("hint:"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(hash(&home.db()), before, "ocio {args:?} changed the file");
}

#[test]
fn status_and_other_readers_leave_an_idle_database_byte_for_byte_as_it_was() {
    let home = Home::new();
    let db = made_by_the_engine(&home);
    let before = hash(&db);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["tasks"],
        &["export"],
    ] {
        let out = home.ocio(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(hash(&db), before, "ocio {args:?} wrote the database");
    }
}

#[test]
fn readers_running_while_an_engine_starts_never_make_it_exit() {
    let home = Home::new();
    made_by_the_engine(&home);
    for round in 0..8 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|i| {
                let stop = stop.clone();
                let mut c = home.command(&[if i % 2 == 0 { "status" } else { "tasks" }]);
                c.stdout(Stdio::null()).stderr(Stdio::null());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = c.status();
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        let mut engine = home.command(&["--headless"]);
        engine.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = engine.spawn().unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let first = lines.next();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        super::support::home::signal_process(child.id(), "TERM");
        let out = child.wait_with_output().unwrap();
        let started = matches!(&first, Some(Ok(l)) if l.contains("engine.started"));
        assert!(
            started,
            "round {round}: the engine did not start beside readers ({:?}): {}",
            out.status,
            stderr(&out)
        );
    }
}

#[test]
fn of_two_engines_started_at_once_the_loser_is_told_another_ocio_holds_the_file() {
    for round in 0..6 {
        let home = Home::new();
        home.write_config(SIM_AGENT);
        if round % 2 == 1 {
            made_by_the_engine(&home);
        }
        let spawn = || {
            let mut c = home.command(&["--headless"]);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        };
        let (mut a, mut b) = (spawn(), spawn());
        // Wait (patiently: test machines are loaded) for the loser to stop, then give the
        // winner a moment to show it keeps running.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while a.try_wait().unwrap().is_none()
            && b.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut exited = Vec::new();
        for mut child in [a, b] {
            match child.try_wait().unwrap() {
                Some(_) => exited.push(child.wait_with_output().unwrap()),
                None => {
                    super::support::home::signal_process(child.id(), "TERM");
                    child.wait_with_output().unwrap();
                }
            }
        }
        assert_eq!(exited.len(), 1, "round {round}: exactly one engine stops");
        let loser = &exited[0];
        let err = stderr(loser);
        assert_eq!(loser.status.code(), Some(2), "round {round}: {err}");
        assert!(
            err.contains("in use by another ocio process") || err.contains("already runs"),
            "{err}"
        );
        assert!(err.contains("attach"), "how to attach: {err}");
        assert!(!err.contains("not one ocio wrote"), "{err}");
        assert!(!err.contains("move it aside"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// XORs 16 bytes at every place `needle` is stored, so a live page is among them.
fn flip_where(db: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(db).unwrap();
    let mut flipped = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
        let start = at + i;
        let end = (start + 16).min(bytes.len());
        for b in &mut bytes[start..end] {
            *b ^= 0xA5;
        }
        flipped += 1;
        at = start + 16;
    }
    std::fs::write(db, &bytes).unwrap();
    flipped
}

#[test]
fn a_damaged_page_is_refused_by_status_the_engine_and_check() {
    let home = Home::new();
    let db = made_by_the_engine(&home);
    assert!(flip_where(&db, b"write the thing") > 0);
    let before = hash(&db);
    for args in [
        &["status"][..],
        &["tasks"],
        &["export"],
        &["--headless"],
        &["check", "--database"],
    ] {
        refused_untouched(&home, args, before, "damaged");
    }
}

#[test]
fn garbage_after_a_valid_header_is_refused_without_panic_text() {
    let home = Home::new();
    let db = made_by_the_engine(&home);
    let mut bytes = std::fs::read(&db).unwrap();
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    for args in [&["status"][..], &["--headless"], &["check", "--database"]] {
        refused_untouched(
            &home,
            args,
            hash_bytes(&bytes),
            "not a usable ocio database",
        );
    }
}

#[test]
fn an_empty_file_is_refused_not_initialised() {
    let home = Home::new();
    home.write_config(SIM_AGENT);
    std::fs::create_dir_all(home.db().parent().unwrap()).unwrap();
    std::fs::write(home.db(), b"").unwrap();
    for args in [&["status"][..], &["--headless"], &["check", "--database"]] {
        refused_untouched(&home, args, hash_bytes(b""), "empty");
    }
}
