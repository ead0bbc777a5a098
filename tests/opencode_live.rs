//! The OpenCode adapter against a real `opencode serve` (installed from npm by the harness),
//! driven by the project's scripted model, in real temporary git repositories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ocio::engine::EngineApi;
use std::time::Duration;

use ocio::opencode::breaker::BreakerState;
use ocio::opencode::client::{Client, ClientError};
use ocio::opencode::event::ServerEvent;
use ocio::opencode::secret::Password;
use ocio::opencode::stream::{EventFollower, StreamItem, StreamOptions, Watchlist};
use ocio::opencode::wire::{
    CreateSession, MessageInfo, ModelSelector, Part, PermissionReply, PromptPart, PromptRequest,
    SessionStatus, ToolState, VcsDiffMode,
};
use ocio::scripted::{self, Rule, Script, Turn};
use support::{TestRepo, TestServer};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);

fn prompt(text: &str) -> PromptRequest {
    PromptRequest {
        model: Some(ModelSelector {
            provider_id: scripted::PROVIDER_ID.into(),
            model_id: scripted::MODEL_ID.into(),
        }),
        parts: vec![PromptPart::Text { text: text.into() }],
        ..PromptRequest::default()
    }
}

fn titled(title: &str) -> CreateSession {
    CreateSession {
        title: Some(title.into()),
        ..CreateSession::default()
    }
}

fn follow(client: &Client) -> EventFollower {
    let options = StreamOptions {
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        ..StreamOptions::default()
    };
    EventFollower::spawn(client.clone(), Watchlist::default(), options)
}

/// Take items until `stop` says so; everything seen is returned. Panics after `WAIT`.
async fn until(
    items: &mut mpsc::Receiver<StreamItem>,
    mut stop: impl FnMut(&StreamItem) -> bool,
) -> Vec<StreamItem> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let item = tokio::time::timeout_at(deadline, items.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out; saw {} items: {:#?}", seen.len(), tail(&seen)))
            .expect("follower ended");
        let done = stop(&item);
        seen.push(item);
        if done {
            return seen;
        }
    }
}

fn tail(items: &[StreamItem]) -> &[StreamItem] {
    &items[items.len().saturating_sub(15)..]
}

fn events_of<'a>(
    items: &'a [StreamItem],
    session: &'a str,
) -> impl Iterator<Item = &'a ServerEvent> + 'a {
    items.iter().filter_map(move |item| match item {
        StreamItem::Event { event, .. } if event.session_id() == Some(session) => Some(event),
        _ => None,
    })
}

fn is_idle(item: &StreamItem, session: &str) -> bool {
    matches!(item, StreamItem::Event { event: ServerEvent::SessionIdle { session_id }, .. } if session_id == session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_writes_a_file_and_the_events_tell_the_story() {
    let repo = TestRepo::new();
    let dir = repo.dir_str();
    let script = Script::new().rule(
        Rule::when("write hello")
            .turn(Turn::write("hello.txt", "hello from ocio\n").usage(1200, 80))
            .turn(Turn::text("I wrote hello.txt").usage(1400, 20)),
    );
    let server = TestServer::start(script).await;
    let client = server.client();
    let health = client.health().await.unwrap();
    assert!(health.healthy);
    assert_eq!(health.version, support::OPENCODE_VERSION);

    let mut follower = follow(&client);
    until(&mut follower.items, |i| matches!(i, StreamItem::Connected)).await;
    let session = client
        .create_session(&dir, &titled("plan/write #1"))
        .await
        .unwrap();
    assert!(session.id.starts_with("ses_"));
    assert_eq!(session.title, "plan/write #1");
    client
        .prompt_async(&dir, &session.id, &prompt("please write hello"))
        .await
        .unwrap();

    let items = until(&mut follower.items, |i| is_idle(i, &session.id)).await;
    let events: Vec<&ServerEvent> = events_of(&items, &session.id).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            ServerEvent::SessionStatus {
                status: SessionStatus::Busy,
                ..
            }
        )),
        "no busy status in {events:#?}"
    );
    let wrote = events.iter().any(|e| match e {
        ServerEvent::PartUpdated {
            part: Part::Tool(tool),
        } => tool.tool == "write" && matches!(tool.state, ToolState::Completed { .. }),
        _ => false,
    });
    assert!(wrote, "no completed write tool part in {events:#?}");
    assert!(events.iter().any(|e| matches!(
        e,
        ServerEvent::PartUpdated {
            part: Part::StepFinish(_)
        }
    )));
    let directories: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Event {
                directory: Some(d),
                event,
            } if event.session_id() == Some(session.id.as_str()) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert!(
        directories.iter().all(|d| *d == dir),
        "events tagged with {directories:?}"
    );

    assert_eq!(repo.read("hello.txt").as_deref(), Some("hello from ocio\n"));
    let info = client.session(&dir, &session.id).await.unwrap();
    assert!(
        info.tokens.input >= 2600 && info.tokens.output >= 100,
        "tokens: {:?}",
        info.tokens
    );
    let messages = client.messages(&dir, &session.id, None).await.unwrap();
    let first_prompt = messages.iter().find_map(|m| match &m.info {
        MessageInfo::User(u) => Some(u.id.clone()),
        _ => None,
    });
    // The server computes the per-prompt diff after the session goes idle: give it a moment.
    let mut diff = Vec::new();
    for _ in 0..50 {
        diff = client
            .session_diff(&dir, &session.id, first_prompt.as_deref())
            .await
            .unwrap();
        if !diff.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        diff.iter().any(|d| d.file.ends_with("hello.txt")),
        "session diff: {diff:?}"
    );
    let vcs = client.vcs_diff(&dir, VcsDiffMode::Git).await.unwrap();
    assert!(
        vcs.iter().any(|d| d.file.ends_with("hello.txt")),
        "vcs diff: {vcs:?}"
    );
    let answer = messages.iter().rev().find_map(|m| match &m.info {
        MessageInfo::Assistant(a) => Some(a),
        _ => None,
    });
    assert!(answer.unwrap().error.is_none());
    let texts: Vec<&str> = messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    assert!(texts.contains(&"I wrote hello.txt"), "texts: {texts:?}");
    assert!(
        client
            .sessions(&dir)
            .await
            .unwrap()
            .iter()
            .any(|s| s.id == session.id)
    );
    assert!(client.delete_session(&dir, &session.id).await.unwrap());
    assert!(matches!(
        client.session(&dir, &session.id).await,
        Err(ClientError::NotFound { .. })
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bash_call_outside_the_directory_asks_and_the_replies_work() {
    let repo = TestRepo::new();
    let dir = repo.dir_str();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().canonicalize().unwrap().join("touched");
    let script = Script::new()
        .rule(
            Rule::when("allow it")
                .turn(Turn::bash(format!("touch {}", target.display())))
                .turn(Turn::text("did it")),
        )
        .rule(
            Rule::when("deny it")
                .turn(Turn::bash(format!("touch {}.denied", target.display())))
                .turn(Turn::text("ok")),
        );
    let server = TestServer::start(script).await;
    let client = server.client();
    let mut follower = follow(&client);
    until(&mut follower.items, |i| matches!(i, StreamItem::Connected)).await;

    for (text, reply) in [
        ("allow it", PermissionReply::Once),
        ("deny it", PermissionReply::Reject),
    ] {
        let session = client.create_session(&dir, &titled(text)).await.unwrap();
        client
            .prompt_async(&dir, &session.id, &prompt(text))
            .await
            .unwrap();
        let items = until(&mut follower.items, |i| {
            matches!(i, StreamItem::Event { event: ServerEvent::PermissionAsked(p), .. } if p.session_id == session.id)
        })
        .await;
        let Some(StreamItem::Event {
            event: ServerEvent::PermissionAsked(asked),
            ..
        }) = items.last()
        else {
            unreachable!()
        };
        let pending = client.permissions(&dir).await.unwrap();
        assert!(
            pending.iter().any(|p| p.id == asked.id),
            "pending: {pending:?}"
        );
        assert!(
            client
                .reply_permission(&dir, &asked.id, reply, None)
                .await
                .unwrap()
        );
        let items = until(&mut follower.items, |i| is_idle(i, &session.id)).await;
        assert!(
            events_of(&items, &session.id).any(
                |e| matches!(e, ServerEvent::PermissionReplied { reply: r, .. } if *r == reply)
            ),
            "no permission.replied"
        );
        let tool_end = events_of(&items, &session.id).filter_map(|e| match e {
            ServerEvent::PartUpdated {
                part: Part::Tool(t),
            } if t.tool == "bash" => Some(&t.state),
            _ => None,
        });
        match reply {
            PermissionReply::Once => {
                assert!(
                    tool_end
                        .last()
                        .is_some_and(|s| matches!(s, ToolState::Completed { .. }))
                );
                assert!(target.exists(), "the allowed command did not run");
            }
            _ => {
                assert!(
                    tool_end
                        .last()
                        .is_some_and(|s| matches!(s, ToolState::Error { .. }))
                );
                assert!(!target.with_extension("denied").exists());
            }
        }
        assert!(client.permissions(&dir).await.unwrap().is_empty());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_a_hung_session_and_a_model_error_is_a_session_error() {
    let repo = TestRepo::new();
    let dir = repo.dir_str();
    let script = Script::new()
        .rule(Rule::when("think forever").turn(Turn::hang()))
        .rule(Rule::when("break please").turn(Turn::fail(400).fail_message("scripted failure")));
    let server = TestServer::start(script).await;
    let client = server.client();
    let mut follower = follow(&client);
    until(&mut follower.items, |i| matches!(i, StreamItem::Connected)).await;

    let long = client.create_session(&dir, &titled("long")).await.unwrap();
    client
        .prompt_async(&dir, &long.id, &prompt("think forever"))
        .await
        .unwrap();
    until(&mut follower.items, |i| {
        matches!(i, StreamItem::Event { event: ServerEvent::SessionStatus { session_id, status: SessionStatus::Busy }, .. } if *session_id == long.id)
    })
    .await;
    assert!(
        client
            .session_status(&dir)
            .await
            .unwrap()
            .contains_key(&long.id)
    );
    assert!(client.abort(&dir, &long.id).await.unwrap());
    until(&mut follower.items, |i| is_idle(i, &long.id)).await;
    assert!(
        !client
            .session_status(&dir)
            .await
            .unwrap()
            .contains_key(&long.id)
    );
    let messages = client.messages(&dir, &long.id, Some(5)).await.unwrap();
    let aborted = messages.iter().any(|m| match &m.info {
        MessageInfo::Assistant(a) => a
            .error
            .as_ref()
            .is_some_and(|e| e.name == "MessageAbortedError"),
        _ => false,
    });
    assert!(aborted, "no aborted message in {messages:#?}");

    let failing = client
        .create_session(&dir, &titled("failing"))
        .await
        .unwrap();
    client
        .prompt_async(&dir, &failing.id, &prompt("break please"))
        .await
        .unwrap();
    let items = until(&mut follower.items, |i| is_idle(i, &failing.id)).await;
    let error = events_of(&items, &failing.id).find_map(|e| match e {
        ServerEvent::SessionError { error, .. } => error.clone(),
        _ => None,
    });
    let error = error.expect("no session.error event");
    assert_eq!(error.name, "APIError");
    assert!(
        error
            .message
            .as_deref()
            .unwrap_or("")
            .contains("scripted failure"),
        "{error:?}"
    );
    server.stop().await;
}

/// While the stream is up, a watched session is resynced after the connect and then only by
/// the paced sweep, once nothing was heard about it for `resync_quiet`: not on every tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_session_is_resynced_after_its_quiet_time_not_on_every_tick() {
    let repo = TestRepo::new();
    let dir = repo.dir_str();
    let script = Script::new().rule(Rule::when("hold").turn(Turn::text("held").delay_ms(60_000)));
    let server = TestServer::start(script).await;
    let client = server.client();
    let session = client.create_session(&dir, &titled("quiet")).await.unwrap();
    let quiet = Duration::from_secs(5);
    let options = StreamOptions {
        resync_every: Duration::from_millis(500),
        resync_batch: 4,
        resync_quiet: quiet,
        ..StreamOptions::default()
    };
    let watchlist = Watchlist::default();
    watchlist.watch(&session.id, &dir);
    let mut follower = EventFollower::spawn(client.clone(), watchlist, options);
    until(&mut follower.items, |i| matches!(i, StreamItem::Connected)).await;
    client
        .prompt_async(&dir, &session.id, &prompt("hold"))
        .await
        .unwrap();
    // The resync after the connect, then the sweep's: it comes only once the session has been
    // quiet (no event about it) for `quiet`, not on the next 500 ms tick.
    let mut last = None;
    let mut resyncs = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while resyncs.len() < 2 {
        let item = tokio::time::timeout_at(deadline, follower.items.recv())
            .await
            .expect("no sweep")
            .unwrap();
        let now = tokio::time::Instant::now();
        match item {
            StreamItem::Event { event, .. } if event.session_id() == Some(&session.id) => {
                last = Some(now);
            }
            StreamItem::Resynced(snapshots)
                if snapshots.iter().any(|s| s.session_id == session.id) =>
            {
                resyncs.push(now);
            }
            _ => {}
        }
    }
    let since = resyncs[0].max(last.unwrap_or(resyncs[0]));
    let gap = resyncs[1].duration_since(since);
    // Slack for the item's way from the follower to this test under load.
    assert!(
        gap >= quiet - Duration::from_secs(1),
        "swept {gap:?} after the session was last heard from or synced"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_opens_the_breaker_and_the_stream_catches_up_after_restart() {
    let repo = TestRepo::new();
    let dir = repo.dir_str();
    let script = Script::new()
        .rule(Rule::when("first").turn(Turn::text("first answer")))
        .rule(
            Rule::when("while you were away")
                .turn(Turn::write(
                    "missed.txt",
                    "written while the stream was down\n",
                ))
                .turn(Turn::text("caught up")),
        );
    let mut server = TestServer::start(script).await;
    let client = server.client();
    let options = StreamOptions {
        first_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        // Swept every 2 s, each session every time: the test waits for a resync.
        resync_every: Duration::from_secs(2),
        resync_batch: 8,
        resync_quiet: Duration::ZERO,
        ..StreamOptions::default()
    };
    let mut follower = EventFollower::spawn(client.clone(), Watchlist::default(), options);
    until(&mut follower.items, |i| matches!(i, StreamItem::Connected)).await;
    let session = client
        .create_session(&dir, &titled("survivor"))
        .await
        .unwrap();
    follower.watchlist.watch(&session.id, &dir);
    client
        .prompt_async(&dir, &session.id, &prompt("first"))
        .await
        .unwrap();
    until(&mut follower.items, |i| is_idle(i, &session.id)).await;

    let mut breaker = client.breaker().subscribe();
    server.kill().await;
    until(&mut follower.items, |i| {
        matches!(i, StreamItem::Disconnected { .. })
    })
    .await;
    tokio::time::timeout(WAIT, breaker.wait_for(|s| *s == BreakerState::Open))
        .await
        .unwrap()
        .unwrap();
    assert!(client.health().await.is_err());

    // Back up; another client drives the session, possibly before the follower is back, and a
    // resync must report it whether or not the follower saw it live.
    server.restart().await;
    let other = server.client();
    let reply = other
        .prompt(&dir, &session.id, &prompt("while you were away"))
        .await
        .unwrap();
    assert!(matches!(reply.info, MessageInfo::Assistant(_)));
    assert!(repo.read("missed.txt").is_some());

    let caught_up = |item: &StreamItem| match item {
        StreamItem::Resynced(snapshots) => snapshots.iter().any(|s| {
            s.session_id == session.id
                && s.recent
                    .iter()
                    .flat_map(|m| &m.parts)
                    .any(|p| matches!(p, Part::Text(t) if t.text == "caught up"))
        }),
        _ => false,
    };
    let items = until(&mut follower.items, caught_up).await;
    assert!(
        items.iter().any(|i| matches!(i, StreamItem::Connected)),
        "no reconnect before the resync"
    );
    tokio::time::timeout(WAIT, breaker.wait_for(|s| *s == BreakerState::Closed))
        .await
        .unwrap()
        .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_a_missing_or_wrong_password_is_a_clear_error() {
    let repo = TestRepo::new();
    let dir = repo.dir_str();
    let password = Password::generate().unwrap();
    let server = TestServer::start_with(Script::new(), Some(password.clone())).await;

    let err = server.client_with(None).health().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Unauthorized {
                had_password: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("password_env"), "{err}");
    let wrong = server
        .client_with(Some(Password::new("not-it")))
        .sessions(&dir)
        .await
        .unwrap_err();
    assert!(matches!(
        wrong,
        ClientError::Unauthorized {
            had_password: true,
            ..
        }
    ));
    for text in [err.to_string(), format!("{wrong:?}"), wrong.to_string()] {
        assert!(
            !text.contains(password.expose()) && !text.contains("not-it"),
            "secret leaked: {text}"
        );
    }

    let client = server.client();
    assert!(client.health().await.unwrap().healthy);
    let session = client
        .create_session(&dir, &titled("authed"))
        .await
        .unwrap();
    let answer = client
        .prompt(&dir, &session.id, &prompt("anything"))
        .await
        .unwrap();
    assert!(
        answer
            .parts
            .iter()
            .any(|p| matches!(p, Part::Text(t) if t.text == scripted::DONE_TEXT))
    );
    let agents = client.agents(&dir).await.unwrap();
    assert!(
        agents.iter().any(|a| a.name == "build"),
        "agents: {agents:?}"
    );
    let mut follower = follow(&client);
    until(&mut follower.items, |i| matches!(i, StreamItem::Connected)).await;
    // The event stream (on a connection ocio opens itself) is refused as clearly.
    let mut refused = follow(&server.client_with(Some(Password::new("not-it"))));
    let down = until(&mut refused.items, |i| {
        matches!(i, StreamItem::Disconnected { .. } | StreamItem::Connected)
    })
    .await;
    let Some(StreamItem::Disconnected { reason, .. }) = down.last() else {
        panic!("a wrong password opened the event stream");
    };
    assert!(reason.contains("refused the credentials (401)"), "{reason}");
    assert!(!reason.contains("not-it"), "secret leaked: {reason}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_server_is_restarted_on_the_same_port_and_stopped_for_good() {
    use ocio::opencode::managed::{ManagedServer, ServerCommand, ServerState};
    let home = tempfile::tempdir().unwrap();
    let mut command = ServerCommand::new(support::opencode_bin());
    command.cwd = Some(home.path().to_path_buf());
    command.stop_grace = Duration::from_millis(300);
    command.env = [
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_STATE_HOME",
    ]
    .iter()
    .map(|k| (k.into(), home.path().join(k).into()))
    .collect();
    let managed = ManagedServer::spawn(command, Password::generate().unwrap());
    let url = managed.ready(WAIT).await.unwrap();
    let client = Client::new(
        &url,
        Some(managed.password().clone()),
        support::test_options(),
    )
    .unwrap();
    assert!(client.health().await.unwrap().healthy);
    let ServerState::Ready { pid, .. } = managed.state().borrow().clone() else {
        panic!("not ready")
    };

    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let mut state = managed.state();
    tokio::time::timeout(
        WAIT,
        state.wait_for(|s| matches!(s, ServerState::Restarting { .. })),
    )
    .await
    .unwrap()
    .unwrap();
    let restarted = tokio::time::timeout(
        WAIT,
        state.wait_for(|s| matches!(s, ServerState::Ready { .. })),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    let ServerState::Ready {
        url: again,
        pid: new_pid,
    } = restarted
    else {
        unreachable!()
    };
    assert_eq!(again, url, "restarted on another port");
    assert_ne!(new_pid, pid);
    // The client keeps working (its breaker may need a moment to close again).
    let mut healthy = false;
    for _ in 0..50 {
        if client.health().await.is_ok() {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "client never recovered after the restart");

    managed.shutdown().await;
    assert!(!std::path::Path::new(&format!("/proc/{new_pid}")).exists() || is_zombie(new_pid));
    assert!(client.health().await.is_err());
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// Child half of the orphan test: start a server, write its pid to the file the parent named,
/// wait to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_child() {
    let Some(pid_file) = std::env::var_os("OCIO_ORPHAN_CHILD") else {
        return; // only meaningful when the test below runs it
    };
    let server = TestServer::start(Script::new()).await;
    assert!(server.client().health().await.unwrap().healthy);
    let staged = std::path::PathBuf::from(&pid_file).with_extension("tmp");
    std::fs::write(&staged, server.pid().unwrap().to_string()).unwrap();
    std::fs::rename(staged, pid_file).unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[test]
fn killing_ocio_with_sigkill_leaves_no_server_behind() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("server.pid");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["orphan_child", "--exact", "--test-threads=1"])
        .env("OCIO_ORPHAN_CHILD", &pid_file)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let pid: u32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            break text.trim().parse().unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited ({status}) before starting its server");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "child never started its server"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup code runs in the child
    child.wait().unwrap();
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
    });
    assert!(
        gone,
        "opencode serve {pid} outlived the process that started it"
    );
}

/// An engine on a fresh database with the scripted server as its one agent, after running
/// one plan (`body`: the plan file's keys after `name` and `repo`) in `repo` to its end.
struct PlanRun {
    _state: tempfile::TempDir,
    store: ocio::store::StoreHandle,
    engine: ocio::engine::EngineHandle,
    finished: ocio::engine::EngineEvent,
    /// Transcript activity as it came, by session.
    activity: Vec<(ocio::domain::SessionId, ocio::engine::Activity)>,
}

async fn run_plan(server: &TestServer, repo: &TestRepo, name: &str, body: &str) -> PlanRun {
    let agent = support::scripted_agent(server.client());
    run_plan_on(agent, Default::default(), repo, name, body).await
}

/// The same with `agent` as the engine's one agent, and `options`.
async fn run_plan_on(
    agent: ocio::engine::AgentSpec,
    options: ocio::engine::EngineOptions,
    repo: &TestRepo,
    name: &str,
    body: &str,
) -> PlanRun {
    use ocio::engine::{EngineEvent, EngineHandle};
    use ocio::store::{Store, StoreOptions};

    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan_path = state.path().join(format!("{name}.toml"));
    let text = format!("name = \"{name}\"\nrepo = {:?}\n{body}", repo.dir_str());
    std::fs::write(&plan_path, text).unwrap();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&plan_path).unwrap())
        .await
        .unwrap();
    let mut activity = Vec::new();
    let finished = loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("plan never finished")
            .unwrap();
        match event {
            EngineEvent::PlanFinished { .. } => break event,
            EngineEvent::Activity { session, entry } => activity.push((session, entry.activity)),
            _ => {}
        }
    };
    PlanRun {
        _state: state,
        store,
        engine,
        finished,
        activity,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_a_plan_on_a_real_server() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::EngineEvent;
    use ocio::store::query;

    let repo = TestRepo::new();
    let script = Script::new()
        .rule(
            Rule::when("Design the greeting").turn(Turn::text("use the word ahoy").usage(500, 10)),
        )
        .rule(
            Rule::when("Implement: use the word ahoy")
                .turn(Turn::write("greeting.txt", "ahoy\n").usage(700, 20))
                .turn(Turn::text("wrote greeting.txt").usage(800, 5)),
        );
    let server = TestServer::start(script).await;
    let body = "worktrees = false\n[[tasks]]\nid = \"design\"\nprompt = \"Design the greeting\"\n[[tasks]]\nid = \"impl\"\nneeds = [\"design\"]\nprompt = \"Implement: {{tasks.design.summary}}\"\n";
    let PlanRun {
        store,
        engine,
        finished,
        activity,
        ..
    } = run_plan(&server, &repo, "greet", body).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    // The server's live stream reached the engine as transcript activity: the write tool call
    // with its file, the answer's text, and steps carrying the scripted usage.
    use ocio::engine::Activity;
    assert!(
        activity.iter().any(|(_, a)| matches!(a, Activity::Tool { tool, status, title } if tool == "write" && status == "completed" && title.contains("greeting.txt"))),
        "{activity:#?}"
    );
    assert!(
        activity
            .iter()
            .any(|(_, a)| matches!(a, Activity::Text { text } if text == "wrote greeting.txt")),
        "{activity:#?}"
    );
    assert!(
        activity
            .iter()
            .any(|(_, a)| matches!(a, Activity::Step { usage } if usage.input_tokens >= 700)),
        "{activity:#?}"
    );
    let (impl_session, _) = activity
        .iter()
        .find(|(_, a)| matches!(a, Activity::Tool { .. }))
        .unwrap();
    let transcript = engine.transcript(*impl_session).await.unwrap();
    assert!(transcript.len() >= 2, "{transcript:#?}");
    assert_eq!(
        repo.read("greeting.txt").as_deref(),
        Some("ahoy\n"),
        "the upstream result reached the prompt"
    );

    let sessions = store.read(query::sessions).await.unwrap();
    assert!(
        sessions.iter().all(|s| s.status == Status::Completed),
        "{sessions:#?}"
    );
    let design = sessions
        .iter()
        .find(|s| s.title == "greet/design #1")
        .unwrap();
    assert_eq!(design.usage.input_tokens, 500);
    // Two model calls: the session's usage is both of them, not the last one's.
    let implement = sessions
        .iter()
        .find(|s| s.title == "greet/impl #1")
        .unwrap();
    assert_eq!(
        (implement.usage.input_tokens, implement.usage.output_tokens),
        (1500, 25),
        "{:?}",
        implement.usage
    );
    let tasks = store.read(query::tasks).await.unwrap();
    let design_task = tasks.iter().find(|t| t.key == "design").unwrap();
    assert_eq!(design_task.result.as_deref(), Some("use the word ahoy"));
    let remote: Vec<String> = server
        .client()
        .sessions(&repo.dir_str())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.title)
        .collect();
    assert!(
        remote.contains(&"greet/impl #1".to_string()),
        "remote titles: {remote:?}"
    );
    engine.shutdown().await.unwrap();
    server.stop().await;
}

/// Issue "Trust in daily use", items 11 and 10 on a real server: a provider failure that the
/// server retries reaches the engine as a retry (attempt and the provider's message) and the
/// session goes on once the retry succeeds; the prompt of a task with dependents shows as the
/// task's own, without the publishing instructions ocio appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_retry_reaches_the_engine_and_prompts_show_as_the_tasks_own() {
    use ocio::engine::{Activity, EngineEvent};

    let repo = TestRepo::new();
    let hiccup = Turn {
        fail_status: Some(500),
        ..Turn::text("hello after a hiccup")
            .fail_times(1)
            .fail_message("fake failure 500")
            .retry_after_ms(1500)
    };
    let script = Script::new()
        .rule(Rule::when("Say bye").turn(Turn::text("bye")))
        .rule(Rule::when("Say hello after a hiccup").turn(hiccup));
    let server = TestServer::start(script).await;
    let body = "worktrees = false\n[[tasks]]\nid = \"hello\"\nprompt = \"Say hello after a hiccup\"\n[[tasks]]\nid = \"bye\"\nneeds = [\"hello\"]\nprompt = \"Say bye\"\n";
    let run = run_plan(&server, &repo, "hiccup", body).await;
    assert!(
        matches!(run.finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{:?}",
        run.finished
    );
    let activity = &run.activity;
    assert!(
        activity.iter().any(|(_, a)| matches!(a, Activity::Retry { attempt: 1, message, next: Some(_) } if message.contains("fake failure 500"))),
        "{activity:#?}"
    );
    assert!(
        activity.iter().any(
            |(_, a)| matches!(a, Activity::Text { text } if text == "Say hello after a hiccup")
        ),
        "{activity:#?}"
    );
    assert!(
        !activity
            .iter()
            .any(|(_, a)| a.summary().contains("OCIO-PUBLISH name=value")),
        "{activity:#?}"
    );
    run.engine.shutdown().await.unwrap();
    server.stop().await;
}

/// Child half of the kill -9 test: host an engine on the given database against the given
/// server, submit the plan, and wait to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_child() {
    let Some(db) = std::env::var_os("OCIO_ENGINE_CHILD_DB") else {
        return; // only meaningful when the test below runs it
    };
    let url = std::env::var("OCIO_ENGINE_CHILD_URL").unwrap();
    let plan = std::env::var_os("OCIO_ENGINE_CHILD_PLAN").unwrap();
    let store = ocio::store::Store::open(std::path::Path::new(&db), Default::default()).unwrap();
    let client = Client::new(&url, None, support::test_options()).unwrap();
    let engine = ocio::engine::EngineHandle::start(
        store,
        vec![support::scripted_agent(client)],
        Default::default(),
    )
    .await
    .unwrap();
    engine
        .submit_plan(ocio::plan::PlanFile::load(std::path::Path::new(&plan)).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_engine_host_mid_plan_loses_nothing_and_repeats_nothing() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::{EngineEvent, EngineHandle};
    use ocio::store::{Store, StoreOptions, query};

    let repo = TestRepo::new();
    let script = Script::new()
        .rule(
            Rule::when("step one")
                .turn(Turn::write("one.txt", "1\n"))
                .turn(Turn::text("one done")),
        )
        .rule(
            Rule::when("step two")
                .turn(Turn::write("two.txt", "2\n").delay_ms(2000))
                .turn(Turn::text("two done")),
        )
        .rule(Rule::when("step three").turn(Turn::text("three done")));
    let server = TestServer::start(script).await;
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("ocio.redb");
    let plan = state.path().join("chain.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"chain\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"one\"\nprompt = \"step one\"\n[[tasks]]\nid = \"two\"\nneeds = [\"one\"]\nprompt = \"step two\"\n[[tasks]]\nid = \"three\"\nneeds = [\"two\"]\nprompt = \"step three\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["engine_child", "--exact", "--test-threads=1"])
        .env("OCIO_ENGINE_CHILD_DB", &db)
        .env("OCIO_ENGINE_CHILD_URL", server.url())
        .env("OCIO_ENGINE_CHILD_PLAN", &plan)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while task two's prompt is with the model.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !server.model.requests().iter().any(|r| {
        r.last_user_text
            .as_deref()
            .is_some_and(|t| t.starts_with("step two"))
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "task two never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the engine host exited early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open(&db, StoreOptions::default()).unwrap();
    assert!(
        store.open_info().recovered,
        "the database was left by a killed process"
    );
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        Default::default(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let finished = loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("plan never finished")
            .unwrap();
        if let EngineEvent::PlanFinished { .. } = event {
            break event;
        }
    };
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 3,
                ..
            }
        ),
        "{finished:?}"
    );

    let sessions = store.read(query::sessions).await.unwrap();
    let titles: Vec<(&str, Status)> = sessions
        .iter()
        .map(|s| (s.title.as_str(), s.status))
        .collect();
    assert_eq!(
        sessions.len(),
        3,
        "one session per task, none repeated: {titles:?}"
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.status == Status::Completed && s.attempt == 1),
        "{titles:?}"
    );
    let prompts_for = |text: &str| {
        server
            .model
            .requests()
            .iter()
            // Prompts carry the upstream context and publishing note after the task's own.
            .filter(|r| {
                r.last_user_text
                    .as_deref()
                    .is_some_and(|t| t.starts_with(text))
                    && r.turn == 0
            })
            .count()
    };
    assert_eq!(prompts_for("step one"), 1);
    assert_eq!(
        prompts_for("step two"),
        1,
        "task two was re-attached, not prompted again"
    );
    assert_eq!(prompts_for("step three"), 1);
    let remote = server.client().sessions(&repo.dir_str()).await.unwrap();
    assert_eq!(
        remote.len(),
        3,
        "no second remote session: {:?}",
        remote.iter().map(|s| &s.title).collect::<Vec<_>>()
    );
    assert_eq!(repo.read("two.txt").as_deref(), Some("2\n"));
    engine.shutdown().await.unwrap();
    server.stop().await;
}

/// Stopping ocio cleanly (the engine shut down, its runs' stop senders dropped) is not a
/// cancel: the remote session goes on, and the next start re-attaches it and takes its answer,
/// once, with all of its usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_the_remote_session_running_and_the_next_start_finishes_it() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::{EngineEvent, EngineHandle};
    use ocio::store::{Store, StoreOptions, query};

    let repo = TestRepo::new();
    let script = Script::new().rule(
        Rule::when("slow work")
            .turn(
                Turn::write("slow.txt", "slow\n")
                    .delay_ms(3000)
                    .usage(300, 30),
            )
            .turn(Turn::text("slow done").usage(400, 40)),
    );
    let server = TestServer::start(script).await;
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("ocio.redb");
    let plan = state.path().join("slow.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"slow\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"slow\"\nprompt = \"slow work\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        Default::default(),
    )
    .await
    .unwrap();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.model.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never prompted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.shutdown().await.unwrap();
    store.close().await;
    // Time for a wrongly sent abort to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = server.client();
    let remote = client.sessions(&repo.dir_str()).await.unwrap();
    assert_eq!(remote.len(), 1);
    let status = client.session_status(&repo.dir_str()).await.unwrap();
    assert!(
        status.contains_key(&remote[0].id),
        "the remote session still runs after ocio stopped: {status:?}"
    );

    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        Default::default(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let (_, finished) = support::until_finished(&mut events, WAIT).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert_eq!(sessions[0].status, Status::Completed, "{sessions:#?}");
    assert_eq!(
        (
            sessions[0].usage.input_tokens,
            sessions[0].usage.output_tokens
        ),
        (700, 70),
        "both model calls counted once: {:?}",
        sessions[0].usage
    );
    let first_turns = server
        .model
        .requests()
        .iter()
        .filter(|r| r.turn == 0)
        .count();
    assert_eq!(first_turns, 1, "prompted once");
    assert_eq!(repo.read("slow.txt").as_deref(), Some("slow\n"));
    assert_eq!(client.sessions(&repo.dir_str()).await.unwrap().len(), 1);
    engine.shutdown().await.unwrap();
    server.stop().await;
}

/// The same through the binary: `ocio run --headless` stopped by SIGTERM while its session
/// runs leaves that session running; `ocio --headless` then re-attaches it and the plan
/// finishes with one prompt and one remote session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_a_headless_run_leaves_the_remote_session_running() {
    use support::home::{Engine, Home};

    let repo = TestRepo::new();
    let script = Script::new().rule(
        Rule::when("slow work")
            .turn(Turn::write("slow.txt", "slow\n").delay_ms(3000))
            .turn(Turn::text("slow done")),
    );
    let server = TestServer::start(script).await;
    let home = Home::new();
    home.write_config(&format!(
        "[[agents]]\nname = \"box\"\nurl = {:?}\nmodel = \"{}/{}\"\n",
        server.url(),
        scripted::PROVIDER_ID,
        scripted::MODEL_ID
    ));
    let plan = home.write_plan(
        "slow.toml",
        &format!(
            "name = \"slow\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"slow\"\nprompt = \"slow work\"\n",
            repo.dir_str()
        ),
    );
    let mut run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    run.until("the task is dispatched", |l| l["type"] == "dispatched");
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.model.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never prompted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, _, err) = run.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = server.client();
    let remote = client.sessions(&repo.dir_str()).await.unwrap();
    assert_eq!(remote.len(), 1);
    let status = client.session_status(&repo.dir_str()).await.unwrap();
    assert!(
        status.contains_key(&remote[0].id),
        "the remote session still runs after SIGTERM: {status:?}"
    );

    let mut engine = home.engine(&[]);
    let finished = engine.until("the plan finishes", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true, "{finished}");
    assert_eq!(engine.stop("TERM").0, Some(130));
    let first_turns = server
        .model
        .requests()
        .iter()
        .filter(|r| r.turn == 0)
        .count();
    assert_eq!(first_turns, 1, "prompted once");
    assert_eq!(client.sessions(&repo.dir_str()).await.unwrap().len(), 1);
    assert_eq!(repo.read("slow.txt").as_deref(), Some("slow\n"));
    server.stop().await;
}

/// `kill -9` of the engine at moments spread over the window from making a remote session to
/// its prompt running (before the session is recorded, between recording and prompting, while
/// the prompt is on its way, while it runs), one round each on one server: after a restart
/// every task is done by one attempt, with one remote session, prompted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_create_and_prompt_window_runs_every_task_exactly_once() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::{EngineEvent, EngineHandle};
    use ocio::store::{Store, StoreOptions, query};

    let script = Script::new().rule(
        Rule::when("crash work")
            .turn(Turn::write("crash.txt", "x\n").delay_ms(300))
            .turn(Turn::text("crash done")),
    );
    let server = TestServer::start(script).await;
    let client = server.client();
    let delays_ms = [0u64, 2, 8, 20, 50, 120, 300, 700];
    let mut report = Vec::new();
    for (round, delay) in delays_ms.iter().enumerate() {
        let repo = TestRepo::new();
        let dir = repo.dir_str();
        let state = tempfile::tempdir().unwrap();
        let db = state.path().join("ocio.redb");
        let plan = state.path().join("crash.toml");
        std::fs::write(
            &plan,
            format!(
                "name = \"crash{round}\"\nrepo = {dir:?}\nworktrees = false\n[[tasks]]\nid = \"a\"\nprompt = \"crash work a\"\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"crash work b\"\n"
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["engine_child", "--exact", "--test-threads=1"])
            .env("OCIO_ENGINE_CHILD_DB", &db)
            .env("OCIO_ENGINE_CHILD_URL", server.url())
            .env("OCIO_ENGINE_CHILD_PLAN", &plan)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while client.sessions(&dir).await.unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no session"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the engine host exited early"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        child.kill().unwrap();
        child.wait().unwrap();

        let store = Store::open(&db, StoreOptions::default()).unwrap();
        let engine = EngineHandle::start(
            store.clone(),
            vec![support::scripted_agent(server.client())],
            Default::default(),
        )
        .await
        .unwrap();
        let mut events = engine.subscribe();
        let (_, finished) = support::until_finished(&mut events, WAIT).await;
        assert!(
            matches!(
                finished,
                EngineEvent::PlanFinished {
                    ok: true,
                    done: 2,
                    ..
                }
            ),
            "round {round} (kill {delay} ms after the session was made): {finished:?}"
        );
        let sessions = store.read(query::sessions).await.unwrap();
        let summary: Vec<(String, Status, u32)> = sessions
            .iter()
            .map(|s| (s.title.clone(), s.status, s.attempt))
            .collect();
        assert!(
            sessions.len() == 2
                && sessions
                    .iter()
                    .all(|s| s.status == Status::Completed && s.attempt == 1),
            "round {round} (kill {delay} ms): one attempt per task: {summary:?}"
        );
        let remote = client.sessions(&dir).await.unwrap();
        let titles: Vec<&str> = remote.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            remote.len(),
            2,
            "round {round} (kill {delay} ms): one remote session per attempt: {titles:?}"
        );
        for session in &remote {
            let messages = client.messages(&dir, &session.id, None).await.unwrap();
            let users = messages
                .iter()
                .filter(|m| matches!(m.info, MessageInfo::User(_)))
                .count();
            assert_eq!(
                users, 1,
                "round {round} (kill {delay} ms): {} prompted once",
                session.title
            );
            let first_calls = server
                .model
                .requests()
                .iter()
                .filter(|r| {
                    r.session_id.as_deref() == Some(session.id.as_str())
                        && r.turn == 0
                        && r.side_job.is_none()
                })
                .count();
            assert_eq!(
                first_calls, 1,
                "round {round} (kill {delay} ms): {} ran once",
                session.title
            );
        }
        report.push(format!("{delay} ms: ok"));
        engine.shutdown().await.unwrap();
        store.close().await;
    }
    eprintln!("kill -9 rounds: {report:?}");
    server.stop().await;
}

/// A server killed while its session runs and started again a moment later: the run follows
/// the session through the outage instead of failing, finds it lost with the server's
/// restart, and runs the task again without spending a retry (`retries = 0`), so the plan
/// still finishes (before: the task failed at once and the plan with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_costs_the_task_no_retry() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
    use ocio::store::{Store, StoreOptions, query};

    let repo = TestRepo::new();
    let script = Script::new().rule(
        Rule::when("away work")
            .turn(Turn::write("away.txt", "back\n").delay_ms(2500))
            .turn(Turn::text("away done")),
    );
    let mut server = TestServer::start(script).await;
    let state = tempfile::tempdir().unwrap();
    let plan = state.path().join("away.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"away\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"a\"\nprompt = \"away work\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        health_every: Duration::from_millis(500),
        retry_backoff: jiff::SignedDuration::from_millis(100),
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        options,
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.model.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never prompted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.restart().await;
    let (_, finished) = support::until_finished(&mut events, WAIT).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    let summary: Vec<(String, Status, Option<String>)> = sessions
        .iter()
        .map(|s| (s.title.clone(), s.status, s.last_error.clone()))
        .collect();
    assert!(
        sessions
            .iter()
            .any(|s| s.status == Status::Completed && s.attempt == 2),
        "{summary:#?}"
    );
    assert!(
        sessions
            .iter()
            .any(|s| s.status == Status::Lost && s.last_error.is_some()),
        "{summary:#?}"
    );
    assert_eq!(repo.read("away.txt").as_deref(), Some("back\n"));
    engine.shutdown().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_requests_are_decided_by_policy_or_by_the_operator() {
    use ocio::domain::Transition;
    use ocio::engine::EngineEvent;
    use ocio::engine::approval::{ApprovalPolicy, Approver, Decision};
    use ocio::store::query;

    let repo = TestRepo::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().canonicalize().unwrap();
    let script = Script::new()
        .rule(
            Rule::when("policy run")
                .turn(Turn::bash(format!("touch {}/by-policy", target.display())))
                .turn(Turn::text("policy run over")),
        )
        .rule(
            Rule::when("operator run")
                .turn(Turn::bash(format!(
                    "touch {}/by-operator",
                    target.display()
                )))
                .turn(Turn::text("operator run over")),
        );
    let server = TestServer::start(script).await;
    let state = tempfile::tempdir().unwrap();

    for (name, policy) in [
        ("policy", ApprovalPolicy::default()),
        (
            "operator",
            ApprovalPolicy {
                inside: Some(Decision::Once),
                outside: None,
            },
        ),
    ] {
        let plan = format!(
            "name = \"{name}\"\nrepo = {:?}\n[[tasks]]\nid = \"t\"\nprompt = \"{name} run\"\n",
            repo.dir_str()
        );
        let (engine, store, mut events) =
            deciding_engine(&server, state.path(), name, policy, &plan).await;
        let finished = loop {
            let event = tokio::time::timeout(WAIT, events.recv())
                .await
                .expect("plan never finished")
                .unwrap();
            match event {
                EngineEvent::ApprovalRequested {
                    request,
                    permission,
                    ..
                } => {
                    assert_eq!(name, "operator", "the default policy decides alone");
                    assert_eq!(permission, "external_directory");
                    assert_eq!(engine.snapshot().await.unwrap().approvals.len(), 1);
                    engine
                        .approve(&request, Decision::Once, Approver::Cli)
                        .await
                        .unwrap();
                    assert!(
                        engine
                            .approve(&request, Decision::Once, Approver::Cli)
                            .await
                            .is_err(),
                        "answered once only"
                    );
                }
                EngineEvent::PlanFinished { .. } => break event,
                _ => {}
            }
        };
        assert!(
            matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
            "{finished:?}"
        );
        let log = store
            .read(|txn| query::events_after(txn, 0, 1000))
            .await
            .unwrap();
        let causes: Vec<String> = log
            .iter()
            .filter_map(|(_, e)| match &e.transition {
                Transition::Session {
                    to: ocio::domain::SessionStatus::Running,
                    ..
                } if e.cause.contains("permission") => Some(e.cause.clone()),
                _ => None,
            })
            .collect();
        match name {
            "policy" => {
                assert!(
                    causes
                        .iter()
                        .any(|c| c.contains("rejected by policy (outside")),
                    "audit: {causes:?}"
                );
                assert!(
                    !target.join("by-policy").exists(),
                    "the rejected command did not run"
                );
                // Told why, the agent went on and answered (a bare rejection ends its turn
                // there, and the task was done with no answer).
                let tasks = store.read(query::tasks).await.unwrap();
                assert_eq!(tasks[0].result.as_deref(), Some("policy run over"));
            }
            _ => {
                assert!(
                    causes
                        .iter()
                        .any(|c| c.contains("approved once by the operator")),
                    "audit: {causes:?}"
                );
                assert!(
                    target.join("by-operator").exists(),
                    "the approved command ran"
                );
            }
        }
        engine.shutdown().await.unwrap();
        store.close().await;
    }
    server.stop().await;
}

/// An engine on a fresh database (`name.redb` in `state`) with the scripted server as its agent
/// and `policy` deciding permissions, running the plan `plan` (its text): its store and events.
async fn deciding_engine(
    server: &TestServer,
    state: &std::path::Path,
    name: &str,
    policy: ocio::engine::approval::ApprovalPolicy,
    plan: &str,
) -> (
    ocio::engine::EngineHandle,
    ocio::store::StoreHandle,
    ocio::engine::Subscription,
) {
    use ocio::store::{Store, StoreOptions};
    let store = Store::open(&state.join(format!("{name}.redb")), StoreOptions::default()).unwrap();
    let options = ocio::engine::EngineOptions {
        approvals: policy,
        ..ocio::engine::EngineOptions::default()
    };
    let engine = ocio::engine::EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        options,
    )
    .await
    .unwrap();
    let events = engine.subscribe();
    let path = state.join(format!("{name}.toml"));
    std::fs::write(&path, plan).unwrap();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    (engine, store, events)
}

/// Rejected by the operator, a request ends the OpenCode session's turn (its loop stops at the
/// tool call): the task is not done then (it was, with nothing, and its dependents ran). The
/// session waits for the operator's next message, as after an interrupt, and its answer to that
/// is the task's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_stops_the_session_and_it_waits_for_the_operators_word() {
    use ocio::domain::{SessionStatus, Transition};
    use ocio::engine::EngineEvent;
    use ocio::engine::approval::{ApprovalPolicy, Approver, Decision};
    use ocio::store::query;

    let repo = TestRepo::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().canonicalize().unwrap();
    let script = Script::new()
        .rule(
            Rule::when("reject run")
                .turn(Turn::bash(format!("touch {}/rejected", target.display())))
                .turn(Turn::text("reject run over")),
        )
        .rule(Rule::when("do it without that").turn(Turn::text("done without it")))
        .rule(Rule::when("after run").turn(Turn::text("after run over")));
    let server = TestServer::start(script).await;
    let state = tempfile::tempdir().unwrap();
    let plan = format!(
        "name = \"p\"\nrepo = {:?}\n[[tasks]]\nid = \"t\"\nprompt = \"reject run\"\n[[tasks]]\nid = \"after\"\nneeds = [\"t\"]\nprompt = \"after run\"\n",
        repo.dir_str()
    );
    let operator_decides = ApprovalPolicy {
        inside: Some(Decision::Once),
        outside: None,
    };
    let (engine, store, mut events) =
        deciding_engine(&server, state.path(), "p", operator_decides, &plan).await;
    let mut said = false;
    let finished = loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("plan never finished")
            .unwrap();
        match event {
            EngineEvent::ApprovalRequested { request, .. } => {
                assert!(!said, "asked again");
                engine
                    .approve(&request, Decision::Reject, Approver::Cli)
                    .await
                    .unwrap();
            }
            EngineEvent::Transition(t) if t.cause.starts_with("it stopped there") => {
                let Transition::Session { id, to, .. } = t.transition else {
                    panic!("{t:?}")
                };
                assert_eq!(to, SessionStatus::WaitingApproval);
                // It stays so: its task is not done, its dependent does not start.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let snapshot = engine.snapshot().await.unwrap();
                let tasks = &snapshot.plans[0].tasks;
                let status = |key: &str| tasks.iter().find(|t| t.key == key).unwrap().status;
                assert_eq!(status("t"), ocio::domain::TaskStatus::Running);
                assert_eq!(status("after"), ocio::domain::TaskStatus::Pending);
                engine.say(id, "do it without that").await.unwrap();
                said = true;
            }
            EngineEvent::PlanFinished { .. } => break event,
            _ => {}
        }
    };
    assert!(said, "the session never waited for the operator's word");
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let tasks = store.read(query::tasks).await.unwrap();
    let first = tasks.iter().find(|t| t.key == "t").unwrap();
    assert_eq!(first.result.as_deref(), Some("done without it"));
    assert!(
        !target.join("rejected").exists(),
        "the rejected command ran"
    );
    engine.shutdown().await.unwrap();
    store.close().await;
    server.stop().await;
}

/// OpenCode offers its models a `question` tool that waits for a person to pick an answer.
/// With `[engine] questions = "deny"` (nobody will answer), sessions are created with that tool
/// denied: the model is told no and goes on, rather than the session waiting until its time
/// limit (without the rule this plan fails: its task times out). Relayed questions are tested
/// in `questions.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_asks_a_question_is_told_to_go_on_not_left_waiting() {
    use ocio::engine::{Activity, EngineEvent};
    use ocio::store::query;

    let repo = TestRepo::new();
    let question = serde_json::json!({
        "questions": [{
            "question": "Which colour should the button be?",
            "header": "Colour",
            "options": [
                {"label": "red", "description": "warm"},
                {"label": "blue", "description": "cool"}
            ]
        }]
    });
    let script = Script::new().rule(
        Rule::when("Pick a colour")
            .turn(Turn::tool("question", question))
            .turn(Turn::text("nobody answered; went with blue")),
    );
    let server = TestServer::start(script).await;
    let body = "worktrees = false\n[[tasks]]\nid = \"pick\"\nprompt = \"Pick a colour\"\ntimeout = \"90s\"\n";
    let options = ocio::engine::EngineOptions {
        questions: ocio::engine::question::QuestionPolicy {
            mode: ocio::engine::question::QuestionMode::Deny,
            ..Default::default()
        },
        ..Default::default()
    };
    let agent = support::scripted_agent(server.client());
    let PlanRun {
        store,
        engine,
        finished,
        activity,
        ..
    } = run_plan_on(agent, options, &repo, "ask", body).await;
    let tools: Vec<(String, String)> = activity
        .into_iter()
        .filter_map(|(_, activity)| match activity {
            Activity::Tool { tool, status, .. } => Some((tool, status)),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    // Denied, the tool is not offered at all: OpenCode 1.18 turns the call into its `invalid`
    // tool, which tells the model so. The question never waited for an answer.
    assert!(
        !tools
            .iter()
            .any(|(tool, status)| tool == "question" && status == "running"),
        "the question never ran: {tools:?}"
    );
    let tasks = store.read(query::tasks).await.unwrap();
    assert_eq!(
        tasks[0].result.as_deref(),
        Some("nobody answered; went with blue")
    );
    engine.shutdown().await.unwrap();
    server.stop().await;
}

/// Issue "Trust in daily use", item 4: a server's 500 is diagnosed before it reaches the
/// operator. The plan's directory is removed after the plan is submitted (dispatching paused):
/// the server creates the task's session and then fails its prompt with a bare "Unexpected
/// server error"; the session's error names the directory, the server and what went wrong, and
/// keeps the server's `ref`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_for_a_missing_directory_names_the_directory() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::{EngineHandle, EngineOptions};
    use ocio::store::{Store, StoreOptions, query};

    let server = TestServer::start(Script::new()).await;
    let state = tempfile::tempdir().unwrap();
    let gone = state.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let plan = state.path().join("gone.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"gone\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"a\"\nprompt = \"work\"\n",
            gone.to_string_lossy()
        ),
    )
    .unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        EngineOptions::default(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    engine.pause(true).await.unwrap();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    std::fs::remove_dir(&gone).unwrap();
    engine.pause(false).await.unwrap();
    let _ = support::until_finished(&mut events, WAIT).await;
    let sessions = store.read(query::sessions).await.unwrap();
    let session = sessions
        .iter()
        .find(|s| s.title == "gone/a #1")
        .expect("the task ran");
    assert_eq!(session.status, Status::Failed, "{:?}", session.last_error);
    let error = session.last_error.clone().unwrap_or_default();
    let dir = gone.to_string_lossy();
    assert!(error.contains(dir.as_ref()), "{error}");
    assert!(error.contains("does not exist"), "{error}");
    assert!(error.contains(server.url()), "{error}");
    assert!(error.contains("err_"), "the server's ref stays: {error}");
    assert!(!error.contains("Unexpected server error"), "{error}");
    engine.shutdown().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_servers_slow_create_is_waited_for_and_taken_up_not_repeated() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
    use ocio::store::{Store, StoreOptions, query};

    let repo = TestRepo::new();
    let script = Script::new().rule(
        Rule::when("busy work")
            .turn(Turn::write("busy.txt", "made\n"))
            .turn(Turn::text("busy done")),
    );
    let server = TestServer::start(script).await;
    // Every create is held 4 s; ocio gives a call 1 s. The session is made all the same,
    // after ocio's create has timed out, as on a server saturated by its running sessions.
    let proxy = support::slow_proxy::SlowProxy::start(server.url(), Duration::from_secs(4)).await;
    let options = ocio::opencode::client::ClientOptions {
        call_timeout: Duration::from_secs(1),
        ..support::test_options()
    };
    let client = Client::new(&proxy.url, server.password.clone(), options).unwrap();
    let state = tempfile::tempdir().unwrap();
    let plan = state.path().join("busy.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"busy\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"a\"\nprompt = \"busy work\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        health_every: Duration::from_millis(500),
        retry_backoff: jiff::SignedDuration::from_millis(100),
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(client)],
        options,
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, WAIT).await;
    let sessions = store.read(query::sessions).await.unwrap();
    let summary: Vec<(String, Status, Option<String>)> = sessions
        .iter()
        .map(|s| (s.title.clone(), s.status, s.last_error.clone()))
        .collect();
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 1,
                ..
            }
        ),
        "{finished:?}\n{summary:#?}"
    );
    assert_eq!(
        summary.len(),
        1,
        "one attempt, taken up after the slow create: {summary:#?}"
    );
    let remote = server.client().sessions(&repo.dir_str()).await.unwrap();
    assert_eq!(remote.len(), 1, "one remote session: {remote:#?}");
    let first_turns = server
        .model
        .requests()
        .iter()
        .filter(|r| r.turn == 0)
        .count();
    assert_eq!(first_turns, 1, "prompted once");
    assert_eq!(repo.read("busy.txt").as_deref(), Some("made\n"));
    engine.shutdown().await.unwrap();
    drop(proxy);
    server.stop().await;
}

/// Issue "Exactly once", item 6, as it was seen: sixteen sessions at once on one real server
/// (its default timeouts, one slot per session), each doing real tool work (write, read,
/// bash, edit, bash) in a worktree of its own. Every task is done by one attempt, with one
/// remote session prompted once. Prints the wall time and how long the server took to make
/// each session.
///
/// Ignored: it takes 47-50 s on a quiet 2-core machine and 100-140 s with two other builds
/// running (creates then took up to 22 s, some past the client's 15 s and taken up after).
/// Run it with `cargo test --test opencode_live sixteen_sessions -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: 47-140 s; run with --ignored"]
async fn sixteen_sessions_at_once_on_one_server_each_run_exactly_once() {
    use ocio::domain::SessionStatus as Status;
    use ocio::engine::{EngineEvent, EngineOptions};
    use ocio::store::query;

    const TASKS: u32 = 16;
    let began = std::time::Instant::now();
    let repo = TestRepo::new();
    let notes: String = (1..=400).map(|i| format!("line {i}\n")).collect();
    let script = Script::new().rule(
        Rule::when("busy work")
            .turn(Turn::write("notes.txt", notes))
            .turn(Turn::read("notes.txt"))
            .turn(Turn::bash(
                "for i in 1 2 3 4 5; do sha256sum notes.txt; done; ls -la; git status --short",
            ))
            .turn(Turn::edit("notes.txt", "line 1\n", "line one\n"))
            .turn(Turn::bash("grep -c line notes.txt; wc -l notes.txt"))
            .turn(Turn::text("busy done")),
    );
    let server = TestServer::start(script).await;
    // A proxy that holds nothing, to time the creates.
    let proxy = support::slow_proxy::SlowProxy::start(server.url(), Duration::ZERO).await;
    let options = ocio::opencode::client::ClientOptions::default();
    let call_timeout = options.call_timeout;
    let client = Client::new(&proxy.url, server.password.clone(), options).unwrap();
    let agent = support::scripted_agent_with(client, TASKS);
    let options = EngineOptions {
        max_parallel: TASKS,
        ..EngineOptions::default()
    };
    let tasks: String = (0..TASKS)
        .map(|i| format!("[[tasks]]\nid = \"t{i}\"\nprompt = \"busy work {i}\"\n"))
        .collect();
    let run = run_plan_on(agent, options, &repo, "busy", &tasks).await;
    let wall = began.elapsed();

    let sessions = run.store.read(query::sessions).await.unwrap();
    let summary: Vec<(String, Status, Option<String>)> = sessions
        .iter()
        .map(|s| (s.title.clone(), s.status, s.last_error.clone()))
        .collect();
    let client = server.client();
    let mut dirs: Vec<String> = sessions
        .iter()
        .filter_map(|s| s.remote.as_ref())
        .map(|r| r.directory.to_string_lossy().into_owned())
        .collect();
    dirs.push(repo.dir_str());
    dirs.sort();
    dirs.dedup();
    let mut remote = std::collections::BTreeMap::new();
    for dir in &dirs {
        for session in client.sessions(dir).await.unwrap() {
            if session.title.starts_with("busy/") {
                remote.insert(session.id.clone(), (session.title, dir.clone()));
            }
        }
    }
    let mut prompted = Vec::new();
    for (id, (title, dir)) in &remote {
        let messages = client.messages(dir, id, None).await.unwrap();
        let users = messages
            .iter()
            .filter(|m| matches!(m.info, MessageInfo::User(_)))
            .count();
        let first_calls = server
            .model
            .requests()
            .iter()
            .filter(|r| {
                r.session_id.as_deref() == Some(id.as_str()) && r.turn == 0 && r.side_job.is_none()
            })
            .count();
        prompted.push((title.clone(), users, first_calls));
    }
    let mut creates = proxy.creates();
    creates.sort();
    eprintln!(
        "{TASKS} sessions at once: {:.1} s wall; {} attempts, {} done, {} failed; {} remote sessions; creates took {:?} (min), {:?} (median), {:?} (max) over {}, {} past the client's {:?}",
        wall.as_secs_f64(),
        sessions.len(),
        sessions
            .iter()
            .filter(|s| s.status == Status::Completed)
            .count(),
        sessions
            .iter()
            .filter(|s| s.status != Status::Completed)
            .count(),
        remote.len(),
        creates.first().copied().unwrap_or_default(),
        creates.get(creates.len() / 2).copied().unwrap_or_default(),
        creates.last().copied().unwrap_or_default(),
        creates.len(),
        creates.iter().filter(|c| **c > call_timeout).count(),
        call_timeout,
    );

    assert!(
        matches!(
            run.finished,
            EngineEvent::PlanFinished { ok: true, done, .. } if done == TASKS as usize
        ),
        "{:?}\n{summary:#?}",
        run.finished
    );
    assert!(
        sessions.len() == TASKS as usize
            && sessions
                .iter()
                .all(|s| s.status == Status::Completed && s.attempt == 1),
        "one attempt per task: {summary:#?}"
    );
    let titles: Vec<&String> = remote.values().map(|(t, _)| t).collect();
    assert_eq!(
        remote.len(),
        TASKS as usize,
        "one remote session per attempt: {titles:?}"
    );
    assert!(
        prompted
            .iter()
            .all(|(_, users, calls)| *users == 1 && *calls == 1),
        "each remote session prompted once and run once: {prompted:?}"
    );
    run.engine.shutdown().await.unwrap();
    drop(proxy);
    server.stop().await;
}
