//! A stand-in server (a shell script) started, left, adopted and stopped; what its watchdog does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::opencode::managed::leftover::started;
use crate::opencode::managed::{Leftover, ServerCommand};
use crate::opencode::secret::Password;

/// A stand-in server: a shell script that ignores SIGTERM like opencode does, with a child
/// of its own (whose pid it writes to `pids`), saying where it listens.
fn fake_server(dir: &Path) -> (PathBuf, PathBuf) {
    stand_in(
        dir,
        "echo \"opencode server listening on http://127.0.0.1:1\"\n",
    )
}

/// The stand-in server, saying `says` (shell lines) once its child runs.
fn stand_in(dir: &Path, says: &str) -> (PathBuf, PathBuf) {
    let fake = dir.join("opencode");
    let pidfile = dir.join("pids");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ntrap '' TERM\nsleep 1000 & echo $! > {pids}\n{says}wait\n",
            pids = pidfile.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    (fake, pidfile)
}

/// A stand-in server recorded at `servers/local.json` in `dir`, lingering `linger` when left:
/// its command, its record and where it writes its child's pid.
fn recorded(dir: &Path, linger: Duration) -> (ServerCommand, PathBuf, PathBuf) {
    let (fake, pidfile) = fake_server(dir);
    let record = dir.join("servers").join("local.json");
    let mut cmd = ServerCommand::new(fake).outliving(record.clone(), linger);
    cmd.stop_grace = Duration::from_millis(200);
    (cmd, record, pidfile)
}

fn child_of(pidfile: &Path) -> String {
    std::fs::read_to_string(pidfile).unwrap().trim().to_string()
}

/// Whether `pid` is gone within `within`.
fn gone_within(pid: &str, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if !alive(pid) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The watchdog kills the whole group when the handle goes away.
#[tokio::test]
async fn dropping_the_server_kills_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, pidfile) = fake_server(dir.path());
    let mut cmd = ServerCommand::new(fake);
    cmd.stop_grace = Duration::from_millis(200);
    let server = RunningServer::start(&cmd, None).await.unwrap();
    assert_eq!(server.url(), "http://127.0.0.1:1");
    let grandchild = child_of(&pidfile);
    assert!(alive(&grandchild));
    drop(server);
    assert!(
        gone_within(&grandchild, Duration::from_secs(5)),
        "grandchild {grandchild} survived"
    );
}

/// A server that may outlive ocio writes its output to a log file beside its record (where
/// its URL is read from), and when ocio leaves it, its watchdog lets it run for the linger
/// time and then stops the whole group.
#[tokio::test]
async fn a_server_left_running_lingers_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, record, pidfile) = recorded(dir.path(), Duration::from_secs(2));
    let password = Password::new("secret");
    let server = RunningServer::start(&cmd, Some(&password)).await.unwrap();
    assert_eq!(server.url(), "http://127.0.0.1:1");
    let log = std::fs::read_to_string(record.with_extension("log")).unwrap();
    assert!(log.contains("listening on"), "{log}");
    assert!(record.is_file(), "recorded for the next ocio");
    let grandchild = child_of(&pidfile);
    assert!(
        Leftover::peek(&record).unwrap().left().is_none(),
        "not left while ocio runs it"
    );
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    assert!(server.leave().await, "recorded, so left running");
    std::thread::sleep(Duration::from_millis(700));
    assert!(alive(&grandchild), "stopped at once instead of lingering");
    // The watchdog marks when it was left: the server stops its linger after that.
    let (since, until) = Leftover::peek(&record)
        .unwrap()
        .left()
        .expect("marked as left");
    assert!(
        since >= before && since <= std::time::SystemTime::now(),
        "{since:?}"
    );
    assert_eq!(until.duration_since(since).unwrap(), Duration::from_secs(2));
    assert!(
        gone_within(&grandchild, Duration::from_secs(6)),
        "grandchild {grandchild} outlived the linger time"
    );
}

/// The next ocio finds the server an earlier one left (alive, the same program), takes over
/// its watchdog (the old one is gone, so it no longer counts down the linger time) and
/// stops it for good when asked: the whole group, and its record.
#[tokio::test]
async fn a_left_server_is_adopted_and_stopped_by_the_adopter() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, record, pidfile) = recorded(dir.path(), Duration::from_secs(1));
    let server = RunningServer::start(&cmd, Some(&Password::new("secret")))
        .await
        .unwrap();
    let pid = server.pid().unwrap();
    assert!(server.leave().await, "recorded, so left running");
    let grandchild = child_of(&pidfile);

    let other = dir.path().join("another-opencode");
    assert!(
        Leftover::find(&record, &other, cmd.stop_grace)
            .await
            .is_none(),
        "a server of another program is not adopted"
    );
    assert!(
        gone_within(&grandchild, Duration::from_secs(2)),
        "it is stopped instead"
    );
    assert!(!record.exists());

    let server = RunningServer::start(&cmd, Some(&Password::new("secret")))
        .await
        .unwrap();
    let pid_again = server.pid().unwrap();
    assert_ne!(pid, pid_again);
    assert!(server.leave().await, "recorded, so left running");
    let grandchild = child_of(&pidfile);
    let left = Leftover::find(&record, &cmd.program, cmd.stop_grace)
        .await
        .expect("the server left running is found");
    assert_eq!(left.url(), "http://127.0.0.1:1");
    assert_eq!(left.password().expose(), "secret");
    let old_watchdog = left.record().watchdog.to_string();
    // The adopter's own linger is long: what stops the server below is its stop, not that.
    let mut long = cmd.clone();
    long.linger = Duration::from_secs(60);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while left.left().is_none() {
        assert!(std::time::Instant::now() < deadline, "never marked as left");
        std::thread::sleep(Duration::from_millis(20));
    }
    let adopted = RunningServer::adopt(&long, left).await.unwrap();
    assert_eq!(adopted.pid(), Some(pid_again));
    assert!(
        Leftover::peek(&record).unwrap().left().is_none(),
        "an adopted server is no longer left"
    );
    assert!(gone_within(&old_watchdog, Duration::from_secs(2)));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        alive(&grandchild),
        "the linger of the old watchdog still ran"
    );
    adopted.stop().await;
    assert!(gone_within(&grandchild, Duration::from_secs(2)));
    assert!(!record.exists(), "a stopped server is forgotten");
}

/// At the next start, the servers left for agents no longer managed (no longer in the
/// config, or given a `url`) are stopped; those of managed agents are kept for adoption.
#[tokio::test]
async fn servers_of_agents_no_longer_managed_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("servers");
    let mut left = Vec::new();
    for agent in ["kept", "gone"] {
        let home = dir.path().join(agent);
        std::fs::create_dir_all(&home).unwrap();
        let (fake, pidfile) = fake_server(&home);
        let mut cmd = ServerCommand::new(fake).outliving(
            records.join(format!("{agent}.json")),
            Duration::from_secs(60),
        );
        cmd.stop_grace = Duration::from_millis(200);
        let server = RunningServer::start(&cmd, None).await.unwrap();
        assert!(server.leave().await, "recorded, so left running");
        left.push((child_of(&pidfile), cmd));
    }
    Leftover::sweep(&records, &["kept"], Duration::from_millis(200)).await;
    let [(kept, kept_cmd), (gone, _)] = &left[..] else {
        unreachable!()
    };
    assert!(
        gone_within(gone, Duration::from_secs(2)),
        "gone's server runs on"
    );
    assert!(!records.join("gone.json").exists());
    assert!(alive(kept), "kept's server was stopped");
    let found = Leftover::find(
        &records.join("kept.json"),
        &kept_cmd.program,
        kept_cmd.stop_grace,
    )
    .await
    .unwrap();
    found.discard(kept_cmd.stop_grace).await;
    assert!(gone_within(kept, Duration::from_secs(2)));
}

/// A server dropped before it was recorded (ocio stopped while it started) is stopped at once:
/// no next ocio could adopt it, so it must not linger. It lingered for the whole time.
#[tokio::test]
async fn a_server_dropped_while_it_starts_is_stopped_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // It never says where it listens.
    let (fake, pidfile) = stand_in(dir.path(), "");
    let record = dir.path().join("servers").join("local.json");
    let mut cmd = ServerCommand::new(fake).outliving(record.clone(), Duration::from_secs(60));
    cmd.stop_grace = Duration::from_millis(200);
    let starting = tokio::spawn(async move { RunningServer::start(&cmd, None).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() {
        assert!(std::time::Instant::now() < deadline, "the server never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let grandchild = child_of(&pidfile);
    starting.abort();
    let _ = starting.await;
    assert!(
        gone_within(&grandchild, Duration::from_secs(3)),
        "a server nobody can adopt lingers"
    );
    assert!(!record.exists());
}

/// A server that dies on its own takes what is left of its process group along (its own
/// children: language servers, MCP servers) when the supervisor starts another. They ran on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_leaves_none_of_its_children() {
    use crate::opencode::managed::{ManagedServer, ServerState};
    let dir = tempfile::tempdir().unwrap();
    let (cmd, _, pidfile) = recorded(dir.path(), Duration::from_secs(60));
    let managed = ManagedServer::spawn(cmd, Password::new("secret"));
    managed.ready(Duration::from_secs(10)).await.unwrap();
    let ServerState::Ready { pid, .. } = managed.state().borrow().clone() else {
        panic!("not ready")
    };
    let grandchild = child_of(&pidfile);
    std::fs::remove_file(&pidfile).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        gone_within(&grandchild, Duration::from_secs(5)),
        "the dead server's child {grandchild} runs on"
    );
    let mut state = managed.state();
    let again =
        state.wait_for(|s| matches!(s, ServerState::Ready { pid: again, .. } if *again != pid));
    tokio::time::timeout(Duration::from_secs(10), again)
        .await
        .unwrap()
        .unwrap();
    managed.shutdown().await;
}

/// A record whose server is gone is removed, and nothing is adopted.
#[tokio::test]
async fn a_record_of_a_server_that_is_gone_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, record, _) = recorded(dir.path(), Duration::ZERO);
    let server = RunningServer::start(&cmd, None).await.unwrap();
    let pid = server.pid().unwrap().to_string();
    assert!(server.leave().await, "recorded, so left running");
    assert!(gone_within(&pid, Duration::from_secs(5)));
    assert!(record.exists(), "left as it was");
    assert!(
        Leftover::find(&record, &cmd.program, cmd.stop_grace)
            .await
            .is_none()
    );
    assert!(!record.exists());
}

fn alive(pid: &str) -> bool {
    pid.parse().ok().and_then(started).is_some()
}

/// A server whose record could not be written is not left running when ocio goes: no next
/// ocio could adopt it, so it would linger for nothing while ocio said it ran on for its
/// sessions (it lingered, and `leave` said nothing of it).
#[tokio::test]
async fn a_server_that_could_not_be_recorded_is_stopped_when_left() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, record, pidfile) = recorded(dir.path(), Duration::from_secs(60));
    // The record is written to a staged file first: a directory there makes the write fail.
    std::fs::create_dir_all(record.with_extension("json.tmp")).unwrap();
    let server = RunningServer::start(&cmd, None).await.unwrap();
    assert!(!record.exists(), "not recorded");
    let grandchild = child_of(&pidfile);
    assert!(!server.leave().await, "not left running");
    assert!(
        gone_within(&grandchild, Duration::from_secs(3)),
        "a server nobody can adopt lingers"
    );
}

/// An adopted server whose record cannot be updated (a full disk, say) keeps the record it
/// was adopted from, which the next ocio adopts it by: left, it runs on (it was stopped, its
/// sessions with it, by the rule for a server nobody could adopt).
#[tokio::test]
async fn an_adopted_server_whose_record_cannot_be_updated_still_lingers() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, record, pidfile) = recorded(dir.path(), Duration::from_secs(60));
    let server = RunningServer::start(&cmd, None).await.unwrap();
    assert!(server.leave().await, "recorded, so left running");
    let grandchild = child_of(&pidfile);
    let left = Leftover::find(&record, &cmd.program, cmd.stop_grace)
        .await
        .expect("the server left running is found");
    std::fs::create_dir_all(record.with_extension("json.tmp")).unwrap();
    let adopted = RunningServer::adopt(&cmd, left).await.unwrap();
    assert!(adopted.leave().await, "the old record stands: left running");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        alive(&grandchild),
        "stopped though the next ocio could adopt it"
    );
    let left = Leftover::find(&record, &cmd.program, cmd.stop_grace)
        .await
        .expect("the next ocio finds it by the old record");
    std::fs::remove_dir(record.with_extension("json.tmp")).unwrap();
    RunningServer::adopt(&cmd, left).await.unwrap().stop().await;
    assert!(gone_within(&grandchild, Duration::from_secs(3)));
}
