//! The control room: an interactive terminal UI over an engine (hosted in this process or
//! attached to through the control socket). The UI thread owns the [`App`] and draws from its
//! own view; engine events, input, ticks and replies arrive as messages on one channel, and
//! every batch of messages is followed by at most one frame.

pub(crate) mod alert;
pub mod app;
mod confirm;
pub(crate) mod editor;
mod first_run;
mod history;
mod input;
pub mod keymap;
pub(crate) mod link;
pub(crate) mod palette;
pub(crate) mod panes;
pub mod plan_review;
pub mod search;
mod takeover;
pub(crate) mod task_tree;
pub(crate) mod terminal;
pub mod theme;
pub mod timeline;
pub mod ui;
pub mod view;

#[cfg(test)]
mod agent_tests;
#[cfg(test)]
mod alert_tests;
#[cfg(test)]
mod approval_tests;
#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod confirm_tests;
#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod first_run_tests;
#[cfg(test)]
mod graph_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod long_lines_tests;
#[cfg(test)]
mod narrow_tests;
#[cfg(test)]
mod palette_tests;
#[cfg(test)]
mod paste_tests;
#[cfg(test)]
mod plan_review_tests;
#[cfg(test)]
mod search_tests;
#[cfg(test)]
mod selection_tests;
#[cfg(test)]
mod takeover_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timeline_tests;
#[cfg(test)]
mod trust_tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};

pub use app::{App, Effect, Msg};
pub use link::Link;

/// Everything the control room needs besides the engine.
pub(crate) struct Setup {
    pub(crate) theme: theme::Theme,
    pub(crate) keymap: keymap::Keymap,
    /// Where plan paths typed in the palette are relative to, and where prompts work.
    pub(crate) cwd: PathBuf,
    /// `Some(socket)` when attached to an engine in another process.
    pub(crate) attached: Option<String>,
    /// The control rooms following the engine this room hosts.
    pub(crate) rooms: Option<crate::engine::Rooms>,
    /// Shown while no agent is configured.
    pub(crate) onboarding: Vec<String>,
    /// Offered with one key while no agent exists.
    pub(crate) local_agent: Option<LocalAgent>,
    /// `[ui] bell`: ring when something starts waiting, a plan ends, an agent goes offline.
    pub(crate) bell: bool,
    /// `[ui] desktop_notify`: a desktop notification then too (OSC 9 and OSC 777).
    pub(crate) desktop_notify: bool,
    /// The servers' passwords, when the engine is hosted here (for `o`, `opencode attach`).
    pub(crate) passwords: Option<crate::host::Passwords>,
}

/// Adds a managed local agent (and says what it did).
pub(crate) type AddAgent = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

/// The first-run offer: a managed local agent on the `opencode` found on PATH.
pub(crate) struct LocalAgent {
    pub(crate) add: AddAgent,
}

/// How the control room ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The operator quit.
    Quit,
    /// SIGTERM or SIGHUP.
    Signal,
    /// The engine went away under it, and why.
    EngineGone(String),
}

/// Run the control room on this thread until the operator quits. `runtime` runs the engine
/// side (requests, event forwarding, signals).
/// Where a task typed in the room runs (the room's directory), as a person reads it.
fn task_home(cwd: &std::path::Path) -> String {
    match crate::workspace::enclosing_repository(cwd) {
        Some(repo) => format!(
            "runs in {}: a worktree of its own on a branch of its own",
            repo.display()
        ),
        // Said as the submit will refuse it (it read "runs in ~ itself", then Enter refused
        // the home directory: hand trial).
        None => match crate::plan::repo::too_wide(cwd) {
            Some(why) => format!(
                "cannot run here: {} is {why}, not a project; start ocio in the project's directory",
                cwd.display()
            ),
            None => format!(
                "runs in {} itself: not a git repository, so no worktree (the agent edits the files there)",
                cwd.display()
            ),
        },
    }
}

pub(crate) fn run(
    link: Link,
    setup: Setup,
    runtime: &tokio::runtime::Handle,
) -> std::io::Result<Exit> {
    let (tx, rx) = channel::<Msg>();
    let mut app = App::new(setup.theme, setup.keymap);
    app.alerts.bell = setup.bell;
    app.alerts.desktop = setup.desktop_notify;
    app.alerts.tmux = std::env::var_os("TMUX").is_some();
    app.attached = setup.attached;
    app.rooms = setup.rooms;
    app.onboarding = setup.onboarding;
    app.task_home = Some(task_home(&setup.cwd));
    if setup.local_agent.is_some() {
        app.local = first_run::LocalOffer::Offered;
    }
    let add_local = setup.local_agent.map(|l| l.add);
    link.follow(runtime, tx.clone());
    let requests = link.worker(runtime, tx.clone(), setup.cwd);
    requests.send(app::Request::Snapshot);
    spawn_signals(runtime, tx.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(takeover::InputGate::default());
    let input = spawn_input(tx.clone(), stop.clone(), gate.clone());
    let tx_effects = tx.clone();
    let ticker = spawn_ticker(tx, stop.clone());

    let (mut terminal, guard) = terminal::TerminalGuard::enter()?;
    let effects = Effects {
        requests,
        add_local,
        runtime: runtime.clone(),
        tx: tx_effects,
        passwords: setup.passwords,
        gate,
    };
    let result = event_loop(&mut terminal, &mut app, &rx, &effects);
    stop.store(true, Ordering::SeqCst);
    // Dropped, ratatui's Terminal shows the cursor and eprintln!s when it cannot, which panics
    // once the terminal is gone (a closed window). The guard shows the cursor itself.
    std::mem::forget(terminal);
    drop(guard);
    join_for(input, Duration::from_millis(500));
    join_for(ticker, Duration::from_millis(500));
    result
}

/// Carries out what the app asks for.
struct Effects {
    requests: link::Requests,
    add_local: Option<AddAgent>,
    runtime: tokio::runtime::Handle,
    tx: Sender<Msg>,
    passwords: Option<crate::host::Passwords>,
    gate: Arc<takeover::InputGate>,
}

impl Effects {
    fn run(&self, effect: Effect) {
        match effect {
            Effect::Request(request) => self.requests.send(request),
            Effect::AddLocalAgent => {
                let Some(add) = self.add_local.clone() else {
                    return;
                };
                let tx = self.tx.clone();
                self.runtime.spawn(async move {
                    let result = add().await;
                    let _ = tx.send(Msg::Reply("local agent".into(), result));
                });
            }
            // Needs the terminal: the loop runs it.
            Effect::TakeOver(_) | Effect::Quit => {}
        }
    }

    /// Step aside for `opencode attach`, come back, and say how it went.
    fn take_over(
        &self,
        terminal: &mut terminal::Term,
        app: &mut App,
        take: &takeover::TakeOver,
    ) -> std::io::Result<()> {
        let told = takeover::run(
            terminal,
            &self.gate,
            take,
            self.passwords.as_ref(),
            &self.runtime,
        )?;
        // OpenCode titled the terminal its own way meanwhile.
        app.alerts.retitle();
        if let Err(why) = &told {
            app.view.log(jiff::Timestamp::now(), "failed", why.clone());
        }
        for effect in app.update(Msg::Reply("opencode".into(), told)) {
            self.run(effect);
        }
        Ok(())
    }
}

fn event_loop(
    terminal: &mut terminal::Term,
    app: &mut App,
    rx: &Receiver<Msg>,
    effects: &Effects,
) -> std::io::Result<Exit> {
    app.now = jiff::Timestamp::now();
    terminal.draw(|frame| ui::draw(frame, app))?;
    tell(terminal, app)?;
    let mut exit = Exit::Quit;
    loop {
        // Woken by a message, or when gathered alerts are due.
        let wait = app.alerts.due().map_or(Duration::from_secs(1), |due| {
            due.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1))
        });
        let first = match rx.recv_timeout(wait) {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => {
                tell(terminal, app)?;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Ok(Exit::EngineGone("the engine went away".into()));
            }
        };
        // Everything that is waiting, then one frame: a burst of events costs one draw.
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(msg) => batch.push(msg),
                Err(_) => break,
            }
        }
        for msg in batch {
            match &msg {
                Msg::Signal(_) => exit = Exit::Signal,
                Msg::EngineGone(why) => exit = Exit::EngineGone(why.clone()),
                _ => {}
            }
            for effect in app.update(msg) {
                match effect {
                    Effect::TakeOver(take) => effects.take_over(terminal, app, &take)?,
                    effect => effects.run(effect),
                }
            }
        }
        if app.should_quit() {
            return Ok(exit);
        }
        app.now = jiff::Timestamp::now();
        terminal.draw(|frame| ui::draw(frame, app))?;
        tell(terminal, app)?;
    }
}

/// The title, bell and desktop notifications due now, written after a whole frame through the
/// writer frames are drawn with, so they never land inside one.
fn tell(terminal: &mut terminal::Term, app: &mut App) -> std::io::Result<()> {
    use std::io::Write;
    let out = app.alerts.output(app.view.waiting(), Instant::now());
    if out.is_empty() {
        return Ok(());
    }
    let writer = terminal.backend_mut();
    writer.write_all(out.as_bytes())?;
    writer.flush()
}

/// Keys, mouse and resizes, read on their own thread (crossterm's read blocks).
fn spawn_input(
    tx: Sender<Msg>,
    stop: Arc<AtomicBool>,
    gate: Arc<takeover::InputGate>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            if gate.closed() {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the terminal");
                    let _ = tx.send(Msg::Signal("terminal gone"));
                    break;
                }
            }
            let msg = match event::read() {
                Ok(Event::Key(key)) => Msg::Key(key),
                Ok(Event::Paste(text)) => Msg::Paste(text),
                Ok(Event::Mouse(mouse)) => Msg::Mouse(mouse),
                Ok(Event::Resize(..)) => Msg::Resize,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the terminal");
                    let _ = tx.send(Msg::Signal("terminal gone"));
                    break;
                }
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    })
}

fn spawn_ticker(tx: Sender<Msg>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut slept = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            slept += Duration::from_millis(100);
            if slept >= Duration::from_secs(1) {
                slept = Duration::ZERO;
                if tx.send(Msg::Tick).is_err() {
                    break;
                }
            }
        }
    })
}

/// SIGTERM and SIGHUP (an ssh drop) leave the control room cleanly; the terminal is restored
/// by the guard on the way out.
fn spawn_signals(runtime: &tokio::runtime::Handle, tx: Sender<Msg>) {
    use tokio::signal::unix::{SignalKind, signal};
    runtime.spawn(async move {
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot listen for SIGTERM/SIGHUP");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
        };
        let _ = tx.send(Msg::Signal(name));
    });
}

/// Wait for a thread to end, at most `limit`; after that leave it (it ends with the process).
/// crossterm's `poll` never returns once the terminal is gone (it re-reads the hung-up tty in a
/// loop, crossterm-rs/crossterm#793), so after a SIGHUP from a closed terminal the input
/// thread cannot be joined, and waiting for it would keep ocio alive forever.
fn join_for(thread: std::thread::JoinHandle<()>, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while !thread.is_finished() {
        if std::time::Instant::now() >= deadline {
            tracing::warn!("a control room thread did not stop; leaving it");
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = thread.join();
}
