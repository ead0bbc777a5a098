//! The control plane in process: a `Host` started the way the TUI starts it (inside an existing
//! tokio runtime), a `ControlClient` driving it, the event stream ending when the host stops,
//! and peers of another protocol version refused with an error naming both versions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ocio::control::{ControlClient, ControlError, is_running};
use ocio::domain::{TaskStatus, Transition};
use ocio::engine::EngineEvent;
use ocio::engine::approval::{Approver, Decision};
use ocio::engine::{Engine, EngineApi, ErrorKind, Feed};
use ocio::host::{Host, HostOptions};
use ocio::paths::Paths;
use ocio::tui::Link;
use ocio::tui::app::{App, Effect, Pane, Request};
use ocio::tui::keymap::Keymap;
use ocio::tui::theme::{ColorDepth, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CONFIG: &str = "[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"1h\"\ncapabilities = [\"code\"]\n";

const PLAN: &str = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n";

fn paths(dir: &Path) -> Paths {
    Paths {
        config_file: dir.join("config.toml"),
        config_explicit: true,
        data_dir: dir.to_path_buf(),
        db_file: dir.join("ocio.redb"),
        log_dir: dir.join("log"),
        runtime_dir: dir.join("run"),
    }
}

async fn host(dir: &Path) -> Host {
    host_with(dir, CONFIG).await
}

async fn host_with(dir: &Path, config: &str) -> Host {
    let paths = paths(dir);
    std::fs::write(&paths.config_file, config).unwrap();
    let config = ocio::config::load(&paths.config_file, true, Vec::new()).unwrap();
    let options = HostOptions {
        listen: true,
        metrics: None,
    };
    Host::start(&paths, &config.config, options).await.unwrap()
}

async fn next_matching(
    events: &mut tokio::sync::mpsc::Receiver<Feed>,
    wanted: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    loop {
        match events.recv().await.expect("the stream ended early") {
            Feed::Event(told) if wanted(&told.event) => return told.event,
            Feed::Gone(why) => panic!("the stream ended early: {why}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_drives_the_engine_and_its_stream_ends_when_the_host_stops() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let socket = host.socket().unwrap().to_path_buf();
    assert_eq!(socket, paths(dir.path()).socket_file());
    assert!(is_running(&socket));

    let client = ControlClient::connect(&socket).await.unwrap();
    assert_eq!(client.engine().pid, std::process::id());
    assert_eq!(client.engine().database, dir.path().join("ocio.redb"));
    let mut events = client.feed(ocio::engine::Follower::Stream).await.unwrap();

    let plan_path = dir.path().join("plan.toml");
    let plan = client.submit(&plan_path, PLAN.to_string()).await.unwrap();
    let dispatched =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Dispatched { .. })).await;
    let EngineEvent::Dispatched { session, task, .. } = dispatched else {
        unreachable!()
    };
    next_matching(&mut events, |e| matches!(e, EngineEvent::Activity { .. })).await;

    let snapshot = client.snapshot().await.unwrap();
    assert_eq!(snapshot.plans[0].id, plan);
    assert_eq!(snapshot.running, 1);
    assert!(!client.transcript(session).await.unwrap().is_empty());

    client.pause(true).await.unwrap();
    next_matching(&mut events, |e| {
        matches!(e, EngineEvent::Paused { paused: true })
    })
    .await;
    assert!(client.snapshot().await.unwrap().paused);
    client.pause(false).await.unwrap();
    client.drain("sim", true).await.unwrap();
    client.drain("sim", false).await.unwrap();
    let unknown = client.drain("nobody", true).await.unwrap_err();
    assert!(unknown.kind == ErrorKind::NotFound, "{unknown}");
    let refused = client
        .approve("per_nope", Decision::Once, Approver::Cli)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("per_nope"), "{refused}");

    client.cancel(task).await.unwrap();
    next_matching(&mut events, |e| {
        matches!(e, EngineEvent::PlanFinished { ok: false, .. })
    })
    .await;
    client.retry(task).await.unwrap();
    let again = client.retry(task).await.unwrap_err();
    assert!(again.kind == ErrorKind::NotNow, "{again}");

    // A bad plan is refused with its file, line and column.
    let bad = client
        .submit(&plan_path, PLAN.replace("\"code\"", "\"gpu\""))
        .await
        .unwrap_err();
    assert!(bad.kind == ErrorKind::Plan, "{bad}");
    assert!(bad.to_string().contains("plan.toml:6:"), "{bad}");

    host.shutdown().await;
    // The stream ends (no more events, no hang), the socket is gone, the client says so.
    while events.recv().await.is_some() {}
    assert!(!socket.exists());
    assert!(!is_running(&socket));
    let gone = client.snapshot().await.unwrap_err();
    assert!(
        gone.kind == ErrorKind::Failed && gone.message.contains("went away"),
        "{gone}"
    );
    assert!(matches!(
        ControlClient::connect(&socket).await.err().unwrap(),
        ControlError::NotRunning { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_protocol_version_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let socket = host.socket().unwrap().to_path_buf();
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let (read, mut write) = stream.into_split();
    write
        .write_all(b"{\"v\":99,\"request\":{\"type\":\"snapshot\"}}\nnot json\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(read).lines();
    let reply: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(reply["v"], 4);
    assert_eq!(reply["error"]["kind"], "version");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("protocol 4") && message.contains("99"),
        "{message}"
    );
    let reply: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(reply["error"]["kind"], "bad_request");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_of_another_protocol_version_is_refused_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("future.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        lines.next_line().await.unwrap();
        write
            .write_all(
                b"{\"v\":99,\"reply\":{\"type\":\"hello\",\"engine\":{\"version\":\"9.0.0\"}}}\n",
            )
            .await
            .unwrap();
    });
    let err = ControlClient::connect(&socket).await.err().unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, ControlError::Version { theirs: 99, .. }),
        "{text}"
    );
    assert!(
        text.contains("ocio 9.0.0") && text.contains("hint:"),
        "{text}"
    );
    server.await.unwrap();
}

/// A request line over the limit is answered with an error saying so (before: the connection
/// was dropped without a word), and the engine goes on serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let socket = host.socket().unwrap().to_path_buf();
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let (read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..20 {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(read).lines();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("no answer to an oversized line")
        .unwrap()
        .expect("the connection closed without an answer");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["error"]["kind"], "bad_request", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16 MiB"),
        "{reply}"
    );
    writer.abort();
    let mut other = tokio::net::UnixStream::connect(&socket).await.unwrap();
    other
        .write_all(b"{\"v\":4,\"request\":{\"type\":\"hello\"}}\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(other).lines();
    let hello: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(hello.get("reply").is_some(), "{hello}");
    host.shutdown().await;
}

/// Agents that finish in a moment, and a plan of two tasks, one after the other.
const QUICK: &str = "[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"20ms\"\ncapabilities = [\"code\"]\n";
const TWO: &str = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b\"\nneeds = [\"a\"]\nprompt = \"y\"\ncapabilities = [\"code\"]\n";

/// Runs `TWO` to its end on a host of `QUICK` agents.
async fn finished_plan(dir: &Path) -> Host {
    let host = host_with(dir, QUICK).await;
    let client = ControlClient::connect(host.socket().unwrap())
        .await
        .unwrap();
    let mut events = client.feed(ocio::engine::Follower::Stream).await.unwrap();
    client
        .submit(&dir.join("plan.toml"), TWO.to_string())
        .await
        .unwrap();
    let finished = next_matching(&mut events, |e| {
        matches!(e, EngineEvent::PlanFinished { .. })
    })
    .await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    host
}

/// A control room on `link`, run the way `ocio` runs it (its messages in, its requests out)
/// until `done` or 30 seconds, then drawn.
fn room(link: Link, runtime: tokio::runtime::Handle, done: fn(&App) -> bool) -> (App, String) {
    let theme = Theme::load("industrial", None, ColorDepth::None).unwrap();
    let mut app = App::new(theme, Keymap::default());
    let (tx, rx) = std::sync::mpsc::channel();
    link.follow(&runtime, tx.clone());
    let requests = link.worker(&runtime, tx, std::env::temp_dir());
    requests.send(Request::Snapshot);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done(&app) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(msg) = rx.recv_timeout(left) else {
            break;
        };
        for effect in app.update(msg) {
            if let Effect::Request(request) = effect {
                requests.send(request);
            }
        }
    }
    app.focus = Pane::Events;
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| ocio::tui::ui::draw(f, &mut app)).unwrap();
    let screen = terminal.backend().to_string();
    (app, screen)
}

fn shows_the_plan(app: &App) -> bool {
    let lines: Vec<&str> = app.view.log.iter().map(|l| l.text.as_str()).collect();
    ["a running", "a done", "b running", "b done"]
        .iter()
        .all(|want| lines.iter().any(|l| l.starts_with(want)))
}

/// A room that attaches after a plan ran, or starts in process on that database later, shows
/// the plan's events from the control log, though it saw none of them live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_starts_after_a_plan_ran_shows_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let host = finished_plan(dir.path()).await;
    let client = ControlClient::connect(host.socket().unwrap())
        .await
        .unwrap();
    let attached = Link::new(client);
    let (app, screen) = run_room(attached).await;
    assert!(shows_the_plan(&app), "attached: {:?}", app.view.log);
    assert!(screen.contains("b done"), "attached: {screen}");
    host.shutdown().await;

    let host = host_with(dir.path(), QUICK).await;
    let (app, screen) = run_room(Link::new(host.engine())).await;
    assert!(shows_the_plan(&app), "in process: {:?}", app.view.log);
    assert!(screen.contains("b done"), "in process: {screen}");
    host.shutdown().await;
}

async fn run_room(link: Link) -> (App, String) {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || room(link, runtime, shows_the_plan))
        .await
        .unwrap()
}

/// The history request: the control log's newest entries after a sequence number, oldest
/// first, the same over the socket as in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_the_control_logs_newest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let host = finished_plan(dir.path()).await;
    let client = ControlClient::connect(host.socket().unwrap())
        .await
        .unwrap();
    let all = client.history(0, 10_000).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let done: Vec<String> = all
        .iter()
        .filter_map(|l| match &l.event.transition {
            Transition::Task { key, to, .. } if *to == TaskStatus::Done => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(done, ["a", "b"]);
    let newest = client.history(0, 3).await.unwrap();
    assert_eq!(newest, all[all.len() - 3..]);
    let after = client.history(all[1].seq, 10_000).await.unwrap();
    assert_eq!(after, all[2..]);
    assert_eq!(host.engine().history(0, 10_000).await.unwrap(), all);
    host.shutdown().await;
}

/// Six tasks between a first and a last: many events while snapshots come and go.
const FAN: &str = "name = \"fan\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b1\"\nneeds = [\"a\"]\nprompt = \"y\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b2\"\nneeds = [\"a\"]\nprompt = \"y\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b3\"\nneeds = [\"a\"]\nprompt = \"y\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"b4\"\nneeds = [\"a\"]\nprompt = \"y\"\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"c\"\nneeds = [\"b1\", \"b2\", \"b3\", \"b4\"]\nprompt = \"z\"\ncapabilities = [\"code\"]\n";

/// The room keeps its copy of the engine's state from one snapshot and the numbered events
/// after it: ticks never ask for a snapshot (no polling), a snapshot that arrives after newer
/// events (asked for as after missed events, every few events) has those events replayed onto
/// it, and at the end the room shows what the engine's own snapshot says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_follows_the_engine_from_one_snapshot_and_numbered_events() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with(dir.path(), QUICK).await;
    let client = ControlClient::connect(host.socket().unwrap())
        .await
        .unwrap();
    let runtime = tokio::runtime::Handle::current();
    let link = Link::new(
        ControlClient::connect(host.socket().unwrap())
            .await
            .unwrap(),
    );
    let follow = tokio::task::spawn_blocking(move || {
        let theme = Theme::load("industrial", None, ColorDepth::None).unwrap();
        let mut app = App::new(theme, Keymap::default());
        let (tx, rx) = std::sync::mpsc::channel();
        link.follow(&runtime, tx.clone());
        let requests = link.worker(&runtime, tx, std::env::temp_dir());
        requests.send(Request::Snapshot);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (mut events, mut asked) = (0, 0);
        let finished =
            |app: &App| {
                app.view.plans.iter().any(|p| {
                    p.name == "fan" && p.tasks.iter().all(|t| t.status == TaskStatus::Done)
                }) && app.view.running() == 0
            };
        while !finished(&app) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(msg) = rx.recv_timeout(left) else {
                break;
            };
            let event = matches!(msg, ocio::tui::app::Msg::Engine(_));
            let mut effects = app.update(msg);
            if event {
                events += 1;
                let tick = app.update(ocio::tui::app::Msg::Tick);
                assert!(tick.is_empty(), "a tick asks for nothing: {tick:?}");
                if events % 4 == 0 {
                    effects.extend(app.update(ocio::tui::app::Msg::Lagged(0)));
                    asked += 1;
                }
            }
            for effect in effects {
                if let Effect::Request(request) = effect {
                    requests.send(request);
                }
            }
        }
        assert!(
            finished(&app),
            "the room saw the plan finish: {:?}",
            app.view.plans
        );
        assert!(asked > 2, "snapshots were asked for mid-run ({asked})");
        // What is told after the last task (the plan's end) and the last replies.
        while let Ok(msg) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            app.update(msg);
        }
        app
    });
    client
        .submit(&dir.path().join("fan.toml"), FAN.to_string())
        .await
        .unwrap();
    let app = follow.await.unwrap();
    let truth = client.snapshot().await.unwrap();
    let shown = |plans: &[ocio::engine::PlanView]| -> Vec<(String, TaskStatus, u32, bool)> {
        plans
            .iter()
            .flat_map(|p| &p.tasks)
            .map(|t| (t.key.clone(), t.status, t.attempts, t.session.is_some()))
            .collect()
    };
    assert_eq!(shown(&app.view.plans), shown(&truth.plans));
    let loads = |agents: &[ocio::domain::Agent]| -> Vec<(String, u32)> {
        agents
            .iter()
            .map(|a| (a.name.to_string(), a.load))
            .collect()
    };
    assert_eq!(loads(&app.view.agents), loads(&truth.agents));
    for session in &truth.sessions {
        let seen = app
            .view
            .sessions
            .iter()
            .find(|s| s.session.id == session.session.id)
            .unwrap_or_else(|| panic!("the room lists session {}", session.session.id));
        assert_eq!(seen.session.status, session.session.status);
    }
    assert_eq!(
        app.view.seq, truth.seq,
        "the room reflects every event told"
    );
    host.shutdown().await;
}

/// A landing that waits for a resolver session, which asks the operator a question: an
/// attached room's client answers it while its own `land` call is still waiting (the landing goes on
/// a connection of its own, so the answer is not queued behind it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_answers_a_question_while_its_landing_waits_for_the_resolver() {
    use ocio::engine::question::Answer;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "# r\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "initial"]);
    let config = format!("{QUICK}[engine]\nquestions = \"ask\"\n");
    let host = host_with(dir.path(), &config).await;
    let client = std::sync::Arc::new(
        ControlClient::connect(host.socket().unwrap())
            .await
            .unwrap(),
    );
    let mut events = client.feed(ocio::engine::Follower::Room).await.unwrap();
    let plan = format!(
        "name = \"ask\"\nrepo = {:?}\nconflicts = \"resolver\"\n[[tasks]]\nid = \"a\"\ncapabilities = [\"code\"]\nprompt = \"SIM-WRITE a.txt from a\\nSIM-ASK Colour: Which? | red | blue\"\n",
        repo.display().to_string()
    );
    let plan = client
        .submit(&dir.path().join("plan.toml"), plan)
        .await
        .unwrap();
    let answer = |event: EngineEvent| {
        let client = client.clone();
        async move {
            let EngineEvent::QuestionAsked { request, .. } = event else {
                unreachable!()
            };
            let pick = vec![Answer::Pick(vec![1])];
            let answered = client.answer(&request, pick, Approver::Cli);
            tokio::time::timeout(std::time::Duration::from_secs(20), answered)
                .await
                .expect("the answer is not held behind another call")
                .unwrap();
        }
    };
    let asked = |e: &EngineEvent| matches!(e, EngineEvent::QuestionAsked { .. });
    answer(next_matching(&mut events, asked).await).await;
    next_matching(&mut events, |e| {
        matches!(e, EngineEvent::PlanFinished { ok: true, .. })
    })
    .await;
    std::fs::write(repo.join("a.txt"), "the user's a\n").unwrap();
    git(&["add", "a.txt"]);
    git(&["commit", "-q", "-m", "user"]);
    let landing = {
        let client = client.clone();
        tokio::spawn(async move { client.land(plan, ocio::domain::LandMode::Merge, None).await })
    };
    // The resolver (given task a's prompt) asks again; answered while the landing waits.
    answer(next_matching(&mut events, asked).await).await;
    let landed = tokio::time::timeout(std::time::Duration::from_secs(30), landing)
        .await
        .expect("the landing ended")
        .unwrap()
        .unwrap();
    assert_eq!(landed.base_resolved, vec!["a.txt".to_string()]);
    host.shutdown().await;
}
