//! The control room's way to the engine: the engine hosted in this process, or (attach) one in
//! another process reached through the control socket. Requests run on the tokio runtime and
//! come back to the app as messages, so the UI thread never waits on them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::app::{Msg, Request};
use crate::engine::{EngineError, EngineHandle};
use crate::plan::PlanFile;

#[derive(Clone)]
pub enum Link {
    Local(EngineHandle),
}

impl Link {
    /// Forward engine events to the app until the engine goes away.
    pub fn follow(&self, runtime: &tokio::runtime::Handle, to: Sender<Msg>) {
        match self {
            Link::Local(engine) => {
                let mut events = engine.subscribe();
                runtime.spawn(async move {
                    loop {
                        let msg = match events.recv().await {
                            Ok(event) => Msg::Engine(event),
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

    async fn run(&self, request: Request, cwd: &std::path::Path) -> Msg {
        let Link::Local(engine) = self;
        let done = |what: String, r: Result<String, EngineError>| {
            Msg::Reply(what, r.map_err(|e| e.to_string()))
        };
        match request {
            Request::Snapshot => match engine.snapshot().await {
                Ok(snapshot) => Msg::Snapshot(Box::new(snapshot)),
                Err(e) => Msg::EngineGone(e.to_string()),
            },
            Request::Transcript(id) => match engine.transcript(id).await {
                Ok(entries) => Msg::Transcript(id, entries),
                Err(e) => Msg::EngineGone(e.to_string()),
            },
            Request::Submit(path) => {
                let path = if path.is_absolute() {
                    path
                } else {
                    cwd.join(path)
                };
                let what = format!("submit {}", path.display());
                match PlanFile::load(&path) {
                    Ok(plan) => done(
                        what,
                        engine
                            .submit(plan)
                            .await
                            .map(|id| format!("plan {} queued", id.short())),
                    ),
                    Err(e) => Msg::Reply(what, Err(e.to_string())),
                }
            }
            Request::Prompt(text) => {
                let what = "new task".to_string();
                match prompt_plan(&text, cwd) {
                    Ok(plan) => done(
                        what,
                        engine
                            .submit(plan)
                            .await
                            .map(|id| format!("plan {} queued", id.short())),
                    ),
                    Err(e) => Msg::Reply(what, Err(e)),
                }
            }
            Request::Cancel(id, name) => done(
                format!("cancel {name}"),
                engine.cancel(id).await.map(|()| "stopping".into()),
            ),
            Request::Retry(id, name) => done(
                format!("retry {name}"),
                engine.retry(id).await.map(|()| "queued again".into()),
            ),
            Request::Approve(id, decision) => done(
                format!("request {id}"),
                engine
                    .approve(&id, decision)
                    .await
                    .map(|()| decision.text().into()),
            ),
            Request::Pause(paused) => done(
                if paused { "pause" } else { "resume" }.into(),
                engine.pause(paused).await.map(|()| {
                    if paused {
                        "no new sessions start"
                    } else {
                        "dispatching"
                    }
                    .into()
                }),
            ),
            Request::Drain(name, drain) => done(
                format!("{} {name}", if drain { "drain" } else { "undrain" }),
                engine.drain(&name, drain).await.map(|()| "done".into()),
            ),
        }
    }
}

/// A one-task plan for a prompt typed in the control room, working in `cwd`.
pub fn prompt_plan(prompt: &str, cwd: &std::path::Path) -> Result<PlanFile, String> {
    let name = format!("prompt-{}", jiff::Timestamp::now().strftime("%H%M%S"));
    let text = format!(
        "name = {}\nrepo = {}\n[[tasks]]\nid = \"task\"\nprompt = {}\n",
        toml_string(&name),
        toml_string(&cwd.display().to_string()),
        toml_string(prompt)
    );
    PlanFile::parse(&text, &cwd.join("(new task)")).map_err(|e| e.to_string())
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
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
