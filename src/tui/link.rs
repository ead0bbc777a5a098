//! The control room's way to the engine: the engine hosted in this process, or (attach) one in
//! another process reached through the control socket. Requests run on the tokio runtime and
//! come back to the app as messages, so the UI thread never waits on them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use jiff::Timestamp;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::app::{Msg, Request};
use crate::control::{ControlClient, Feed};
use crate::domain::PlanId;
use crate::engine::{EngineEvent, EngineHandle};
use crate::plan::PlanFile;
use crate::plan::prompt::prompt_plan;

#[derive(Clone)]
pub enum Link {
    /// The engine runs in this process.
    Local(EngineHandle),
    /// Attached: the engine runs in another process, reached through its control socket.
    Remote(Arc<ControlClient>),
}

/// An engine event as the app's message: the engine's failure ends the room.
fn message(event: EngineEvent) -> Msg {
    match event {
        EngineEvent::EngineFailed { error } => Msg::EngineGone(error),
        event => Msg::Engine(event),
    }
}

impl Link {
    /// Forward engine events to the app until the engine goes away.
    pub fn follow(&self, runtime: &tokio::runtime::Handle, to: Sender<Msg>) {
        match self {
            Link::Local(engine) => {
                let mut events = engine.subscribe();
                let engine = engine.clone();
                runtime.spawn(async move {
                    loop {
                        // The failure is watched as well as announced: a room that lags behind
                        // the event stream may never see the announcement.
                        let received = tokio::select! {
                            biased;
                            received = events.recv() => received,
                            why = engine.failed() => {
                                let _ = to.send(Msg::EngineGone(why));
                                break;
                            }
                        };
                        let msg = match received {
                            Ok(event) => message(event),
                            Err(RecvError::Lagged(n)) => Msg::Lagged(n),
                            Err(RecvError::Closed) => {
                                let _ =
                                    to.send(Msg::EngineGone("it closed its event stream".into()));
                                break;
                            }
                        };
                        if to.send(msg).is_err() {
                            break;
                        }
                    }
                });
            }
            Link::Remote(client) => {
                let client = client.clone();
                runtime.spawn(async move {
                    let mut feed = match client.subscribe().await {
                        Ok(feed) => feed,
                        Err(e) => {
                            let _ = to.send(Msg::EngineGone(e.to_string()));
                            return;
                        }
                    };
                    while let Some(item) = feed.recv().await {
                        let msg = match item {
                            Feed::Event(event) => message(event),
                            Feed::Lagged(n) => Msg::Lagged(n),
                        };
                        if to.send(msg).is_err() {
                            return;
                        }
                    }
                    let _ = to.send(Msg::EngineGone("the engine went away".into()));
                });
            }
        }
    }

    /// A worker that runs requests one at a time, in order; snapshot requests made while one
    /// is under way are folded into it.
    pub fn worker(
        self,
        runtime: &tokio::runtime::Handle,
        to: Sender<Msg>,
        cwd: PathBuf,
    ) -> Requests {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let pending = Arc::new(AtomicBool::new(false));
        let flag = pending.clone();
        runtime.spawn(async move {
            while let Some(request) = rx.recv().await {
                if request == Request::Snapshot {
                    flag.store(false, Ordering::SeqCst);
                }
                let msg = self.run(request, &cwd).await;
                if to.send(msg).is_err() {
                    break;
                }
            }
        });
        Requests {
            tx,
            snapshot_pending: pending,
        }
    }

    async fn run(&self, request: Request, cwd: &Path) -> Msg {
        match self {
            Link::Local(engine) => local(engine, request, cwd).await,
            Link::Remote(client) => remote(client, request, cwd).await,
        }
    }
}

fn reply<E: std::fmt::Display>(what: String, result: Result<String, E>) -> Msg {
    Msg::Reply(what, result.map_err(|e| e.to_string()))
}

fn queued(id: PlanId) -> String {
    format!("plan {} queued", id.short())
}

async fn local(engine: &EngineHandle, request: Request, cwd: &Path) -> Msg {
    match request {
        Request::Snapshot => match engine.snapshot().await {
            Ok(snapshot) => Msg::Snapshot(Box::new(snapshot)),
            Err(e) => Msg::EngineGone(e.to_string()),
        },
        Request::Transcript(id) => match engine.transcript(id).await {
            Ok(entries) => Msg::Transcript(id, entries),
            Err(e) => Msg::EngineGone(e.to_string()),
        },
        Request::History(last) => match engine.history(0, last).await {
            Ok(entries) => Msg::History(entries),
            Err(e) => reply("history".into(), Err(e)),
        },
        Request::Submit(path) => {
            let path = absolute(path, cwd);
            let what = format!("submit {}", path.display());
            match PlanFile::load(&path) {
                Ok(plan) => reply(what, engine.submit(plan).await.map(queued)),
                Err(e) => reply(what, Err(e)),
            }
        }
        Request::Prompt(text) => match prompt_plan(&text, cwd, Timestamp::now()) {
            Ok((path, toml)) => submit_local(engine, "new task".into(), &path, &toml).await,
            Err(e) => reply("new task".into(), Err(e)),
        },
        Request::SubmitText(path, toml) => {
            submit_local(engine, format!("submit {}", path.display()), &path, &toml).await
        }
        Request::Diff(id) => Msg::Diff(id, engine.diff(id).await.map_err(|e| e.to_string())),
        Request::Context(plan) => match engine.context(plan).await {
            Ok(tasks) => Msg::Context(plan, tasks),
            Err(e) => reply("context".into(), Err(e)),
        },
        Request::Plan(goal) => match git_root(cwd) {
            Ok(repo) => match engine.plan(&goal, &repo).await {
                Ok(proposal) => Msg::Proposal(Box::new(proposal)),
                Err(e) => reply("plan".into(), Err(e)),
            },
            Err(e) => reply("plan".into(), Err(e)),
        },
        Request::Cancel(id, name) => reply(
            format!("cancel {name}"),
            engine.cancel(id).await.map(|()| "stopping".into()),
        ),
        Request::Retry(id, name) => reply(
            format!("retry {name}"),
            engine.retry(id).await.map(|()| "queued again".into()),
        ),
        Request::Approve(id, decision, by) => reply(
            format!("request {id}"),
            engine
                .approve(&id, decision, by)
                .await
                .map(|()| decision.text().into()),
        ),
        Request::Pause(paused) => reply(
            pause_what(paused),
            engine.pause(paused).await.map(|()| pause_done(paused)),
        ),
        Request::Drain(name, drain) => reply(
            drain_what(&name, drain),
            engine.drain(&name, drain).await.map(|()| "done".into()),
        ),
    }
}

async fn remote(client: &ControlClient, request: Request, cwd: &Path) -> Msg {
    match request {
        Request::Snapshot => match client.snapshot().await {
            Ok(snapshot) => Msg::Snapshot(Box::new(snapshot)),
            Err(e) => Msg::EngineGone(e.to_string()),
        },
        Request::Transcript(id) => match client.transcript(id).await {
            Ok(entries) => Msg::Transcript(id, entries),
            Err(e) => Msg::EngineGone(e.to_string()),
        },
        Request::History(last) => match client.history(0, last).await {
            Ok(entries) => Msg::History(entries),
            Err(e) => reply("history".into(), Err(e)),
        },
        Request::Submit(path) => {
            let path = absolute(path, cwd);
            let what = format!("submit {}", path.display());
            match std::fs::read_to_string(&path) {
                Ok(text) => reply(what, client.submit(&path, text).await.map(queued)),
                Err(e) => reply(what, Err(format!("cannot read it: {e}"))),
            }
        }
        Request::Prompt(text) => match prompt_plan(&text, cwd, Timestamp::now()) {
            Ok((path, toml)) => reply(
                "new task".into(),
                client.submit(&path, toml).await.map(queued),
            ),
            Err(e) => reply("new task".into(), Err(e)),
        },
        Request::Diff(id) => Msg::Diff(id, client.diff(id).await.map_err(|e| e.to_string())),
        Request::Context(plan) => match client.context(plan).await {
            Ok(tasks) => Msg::Context(plan, tasks),
            Err(e) => reply("context".into(), Err(e)),
        },
        Request::SubmitText(path, toml) => reply(
            format!("submit {}", path.display()),
            client.submit(&path, toml).await.map(queued),
        ),
        Request::Plan(goal) => match git_root(cwd) {
            Ok(repo) => match client.plan(&goal, &repo).await {
                Ok(proposal) => Msg::Proposal(Box::new(proposal)),
                Err(e) => reply("plan".into(), Err(e)),
            },
            Err(e) => reply("plan".into(), Err(e)),
        },
        Request::Cancel(id, name) => reply(
            format!("cancel {name}"),
            client.cancel(id).await.map(|()| "stopping".into()),
        ),
        Request::Retry(id, name) => reply(
            format!("retry {name}"),
            client.retry(id).await.map(|()| "queued again".into()),
        ),
        Request::Approve(id, decision, by) => reply(
            format!("request {id}"),
            client
                .approve(&id, decision, by)
                .await
                .map(|()| decision.text().into()),
        ),
        Request::Pause(paused) => reply(
            pause_what(paused),
            client.pause(paused).await.map(|()| pause_done(paused)),
        ),
        Request::Drain(name, drain) => reply(
            drain_what(&name, drain),
            client.drain(&name, drain).await.map(|()| "done".into()),
        ),
    }
}

async fn submit_local(engine: &EngineHandle, what: String, path: &Path, toml: &str) -> Msg {
    match PlanFile::parse(toml, path) {
        Ok(plan) => reply(what, engine.submit(plan).await.map(queued)),
        Err(e) => reply(what, Err(e)),
    }
}

/// The git repository around `cwd`: where a planned plan works.
fn git_root(cwd: &Path) -> Result<PathBuf, String> {
    crate::workspace::enclosing_repository(cwd).ok_or_else(|| {
        format!(
            "{} is not inside a git repository; start ocio in the repository to plan for",
            cwd.display()
        )
    })
}

fn absolute(path: PathBuf, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        cwd.join(path)
    }
}

fn pause_what(paused: bool) -> String {
    if paused { "pause" } else { "resume" }.into()
}

fn pause_done(paused: bool) -> String {
    if paused {
        "no new sessions start"
    } else {
        "dispatching"
    }
    .into()
}

fn drain_what(name: &str, drain: bool) -> String {
    format!("{} {name}", if drain { "drain" } else { "undrain" })
}

/// Where the app's requests go.
pub struct Requests {
    tx: mpsc::UnboundedSender<Request>,
    snapshot_pending: Arc<AtomicBool>,
}

impl Requests {
    pub fn send(&self, request: Request) {
        if request == Request::Snapshot && self.snapshot_pending.swap(true, Ordering::SeqCst) {
            return; // one is already on its way
        }
        let _ = self.tx.send(request);
    }
}
