//! `o` in a session's detail: the control room steps aside for `opencode attach` on that
//! session, like lazygit opening an editor. The terminal is given back (normal screen, cooked
//! mode, cursor shown), the input thread stops reading it, OpenCode's own UI runs in it with
//! the server's password in its environment, and when it exits the room takes the terminal back
//! and draws everything again at the size it has now. The engine runs on meanwhile: its events
//! wait on the room's channel and are applied on return.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::app::{App, Effect, Mode, Request};
use super::terminal::{self, Term};
use crate::domain::Backend;
use crate::host::Passwords;
use crate::opencode::attach::{self, Attach, NoAttach, PasswordSource};
use crate::opencode::secret::Password;

/// A session to take over, and where its server's password is.
#[derive(Debug, Clone, PartialEq)]
pub struct TakeOver {
    pub(crate) attach: Attach,
    pub(crate) password: PasswordSource,
}

impl App {
    /// Take the open session over in OpenCode, or say why it cannot be.
    pub(super) fn take_over(&mut self) -> Vec<Effect> {
        let Mode::Detail(id) = self.mode else {
            return Vec::new();
        };
        let Some(view) = self.view.sessions.iter().find(|s| s.session.id == id) else {
            self.toast("this session is no longer listed".into(), true);
            return Vec::new();
        };
        let session = &view.session;
        let backend = session
            .agent
            .as_ref()
            .and_then(|name| self.view.agents.iter().find(|a| &a.name == name))
            .map(|a| &a.backend);
        let simulated = backend == Some(&Backend::Simulated);
        let waited = self.take_over_waits.take() == Some(id);
        match Attach::of(session, simulated) {
            Ok(attach) => vec![Effect::TakeOver(Box::new(TakeOver {
                attach,
                password: PasswordSource::of(session.agent.as_ref(), backend),
            }))],
            // The room's copy of a session started since its last snapshot does not say
            // where it runs (events do not carry it): ask, and go on when the answer is in.
            Err(NoAttach::NotStarted { .. }) if !waited => {
                self.take_over_waits = Some(id);
                vec![Effect::Request(Request::Snapshot)]
            }
            Err(why) => {
                self.toast(why.to_string(), true);
                Vec::new()
            }
        }
    }

    /// Each second in the detail of a session that runs on a server but whose room copy does
    /// not say where yet (it started since the last snapshot): ask for a snapshot, so the
    /// detail can show it and `o` has it.
    pub(super) fn detail_tick(&mut self) -> Vec<Effect> {
        let Mode::Detail(id) = self.mode else {
            return Vec::new();
        };
        let Some(session) = self
            .view
            .sessions
            .iter()
            .find(|s| s.session.id == id)
            .map(|s| &s.session)
            .filter(|s| s.remote.is_none() && s.is_active())
        else {
            return Vec::new();
        };
        let on_server = session
            .agent
            .as_ref()
            .and_then(|name| self.view.agents.iter().find(|a| &a.name == name))
            .is_some_and(|a| a.backend != Backend::Simulated);
        match on_server {
            true => vec![Effect::Request(Request::Snapshot)],
            false => Vec::new(),
        }
    }

    /// A snapshot is in: the take-over that waited for it, if its detail is still open.
    pub(super) fn take_over_after_snapshot(&mut self) -> Vec<Effect> {
        match self.take_over_waits {
            Some(id) if self.mode == Mode::Detail(id) => self.take_over(),
            _ => {
                self.take_over_waits = None;
                Vec::new()
            }
        }
    }
}

impl TakeOver {
    /// The server's password: from the engine hosted here (it knows every server's, a managed
    /// one's too), else from the agent's `password_env` in this process's environment.
    fn password(&self, hosted: Option<&Passwords>) -> Result<Option<Password>, String> {
        let agent = self.password.agent.as_ref();
        match agent.zip(hosted).and_then(|(a, p)| p.get(a)) {
            Some(found) => Ok(Some(found)),
            None => self.password.read(),
        }
    }
}

/// Stops the input thread reading the terminal while another program has it.
#[derive(Debug, Default)]
pub(crate) struct InputGate {
    paused: AtomicBool,
    parked: AtomicBool,
}

impl InputGate {
    /// For the input thread, before each read: whether to leave the terminal alone now.
    pub(crate) fn closed(&self) -> bool {
        let paused = self.paused.load(Ordering::SeqCst);
        self.parked.store(paused, Ordering::SeqCst);
        paused
    }

    /// Stop reading, and wait (a little) until the input thread has.
    pub(crate) fn close(&self) {
        self.parked.store(false, Ordering::SeqCst);
        self.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.parked.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn open(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// Run `opencode attach` for `take` in this terminal and come back. Returns what to tell the
/// operator (an error when it could not run, or failed); an I/O error only when the terminal
/// could not be taken back.
pub(super) fn run(
    terminal: &mut Term,
    gate: &InputGate,
    take: &TakeOver,
    hosted: Option<&Passwords>,
    runtime: &tokio::runtime::Handle,
) -> std::io::Result<Result<String, String>> {
    let Some(program) = attach::find_program(std::env::var_os("PATH").as_deref()) else {
        return Ok(Err(format!(
            "opencode is not on PATH; to take over, run: {}",
            take.password.instead(&take.attach)
        )));
    };
    let password = match take.password(hosted) {
        Ok(password) => password,
        Err(why) => return Ok(Err(format!("cannot open it in OpenCode: {why}"))),
    };
    let mut command = take.attach.command(&program, password.as_ref());
    // ctrl-c or ctrl-\ typed before OpenCode has the terminal in raw mode signal the whole
    // foreground group: this process keeps handlers for them from now on (the room reads
    // those keys in raw mode anyway), so they reach OpenCode alone.
    let _guard = runtime.enter();
    use tokio::signal::unix::{SignalKind, signal};
    let _held = (signal(SignalKind::interrupt()), signal(SignalKind::quit()));
    gate.close();
    terminal::restore();
    println!(
        "ocio: session {} in OpenCode ({}); quit it to come back to the control room",
        take.attach.session,
        take.attach.shown()
    );
    let status = command.status();
    let back = terminal::resume(terminal);
    gate.open();
    back?;
    tracing::info!(session = %take.attach.session, status = ?status, "back from opencode attach");
    Ok(match status {
        Ok(s) if s.success() => Ok(format!("back from session {}", take.attach.session)),
        Ok(s) => Err(format!("{} ended: {s}", program.display())),
        Err(e) => Err(format!("could not run {}: {e}", program.display())),
    })
}
