//! Plain `ocio`: the control room. When no engine runs on this database, it hosts one (with
//! the control socket, so other terminals can attach); when one already runs (`ocio
//! --headless` on a build box, or another control room), it attaches to it, and quitting
//! detaches while the work goes on. The terminal belongs to the UI thread; the engine side runs
//! on a background tokio runtime.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Context, Failure, Flags, exit};
use crate::config::Config;
use crate::control::{self, ControlClient};
use crate::engine::{EngineApi, EngineHandle};
use crate::host::{AgentAdder, Host, HostOptions};
use crate::paths::Paths;
use crate::plan::PlanFile;
use crate::tui::{self, AddAgent, Exit, Link, LocalAgent, Setup, keymap::Keymap, theme};

/// Theme and keys from `[ui]`, for this terminal.
pub(crate) fn setup(context: &Context, cwd: PathBuf) -> Result<Setup, Failure> {
    let ui = &context.config.config.ui;
    let depth = theme::ColorDepth::detect(|k| std::env::var(k).ok());
    let name = ui.theme.clone().unwrap_or_else(|| {
        if depth == theme::ColorDepth::Ansi16 {
            "ansi16"
        } else {
            theme::DEFAULT
        }
        .to_string()
    });
    let user_dir = super::theme_dir(&context.paths);
    let theme = theme::Theme::load(&name, user_dir.as_deref(), depth)
        .map_err(|e| Failure::usage(format!("[ui] theme in {}: {e}", context.config.source)))?;
    let keymap = Keymap::with_overrides(&ui.keys)
        .map_err(|e| Failure::usage(format!("{}: {e}", context.config.source)))?;
    Ok(Setup {
        theme,
        keymap,
        cwd,
        attached: None,
        rooms: None,
        onboarding: onboarding(context),
        local_agent: None,
        bell: ui.bell,
        desktop_notify: ui.desktop_notify,
        passwords: None,
    })
}

/// What the sessions pane says while no agent is configured.
fn onboarding(context: &Context) -> Vec<String> {
    let mut lines = vec![
        "No agents are configured yet, so nothing can run.".to_string(),
        String::new(),
        format!("Add one to {}:", context.paths.config_file.display()),
        "  [[agents]]".into(),
        "  name = \"local\"".into(),
        "  managed = true          # ocio starts `opencode serve` itself".into(),
        "  model = \"provider/model\"".into(),
        String::new(),
    ];
    match which("opencode") {
        Some(path) => {
            lines.push(format!(
                "opencode is installed ({}), so `managed = true` works as is.",
                path.display()
            ));
            lines.push(
                "Press m to add it now as agent `local` (a managed server; saved to the config)."
                    .into(),
            );
        }
        None => lines.push(format!(
            "opencode is not on PATH: install it with `{}`, or give `url` of a running server.",
            crate::opencode::INSTALL_OPENCODE
        )),
    }
    lines.push(String::new());
    lines.push(
        "Then start ocio again. To see every pane move first: `ocio demo` (simulated agents)."
            .into(),
    );
    lines
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

fn needs_terminal() -> Result<PathBuf, Failure> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "the control room needs a terminal; use `ocio --headless` to run the engine without one, or `ocio status` to read the database",
        ));
    }
    std::env::current_dir()
        .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))
}

/// Plain `ocio`: attach when an engine runs on this database, else host one.
pub(crate) fn run(context: &Context, flags: &Flags) -> Result<(), Failure> {
    let running = control::is_running(&context.paths.socket_file());
    if running && flags.metrics_given() {
        return Err(Failure::usage(
            "an engine already runs on this database, so `ocio` would attach to it and serve no metrics; they are served by the process that hosts the engine (give --metrics-addr when starting it)",
        ));
    }
    // A bad address is said before the terminal is taken.
    let options = match running {
        true => None,
        false => Some(super::run::host_options(flags)?),
    };
    let cwd = needs_terminal()?;
    let Some(options) = options else {
        return attach(context);
    };
    let setup = setup(context, cwd)?;
    host(
        &context.paths,
        &context.config.config,
        options,
        setup,
        None,
        |adder| local_agent(context, adder),
    )
}

/// The first-run offer: with no agents configured and `opencode` on PATH, one key adds a
/// managed local agent to the running engine and appends it to the config file.
fn local_agent(context: &Context, adder: AgentAdder) -> Option<LocalAgent> {
    let config = &context.config.config;
    if !config.agents.is_empty() || !config.fleets.is_empty() {
        return None;
    }
    which("opencode")?;
    let config_file = context.paths.config_file.clone();
    let add: AddAgent = Arc::new(move || {
        let adder = adder.clone();
        let config_file = config_file.clone();
        Box::pin(async move {
            let parsed =
                crate::config::parse(LOCAL_AGENT, &config_file).map_err(|e| e.to_string())?;
            let entry = parsed
                .agents
                .first()
                .ok_or("no agent in the local agent entry")?;
            adder.add(entry).await.map_err(|e| e.to_string())?;
            match append_agent(&config_file) {
                Ok(()) => Ok(format!(
                    "`local` added (managed opencode) and saved to {}",
                    config_file.display()
                )),
                Err(e) => Ok(format!("`local` added for this run, but not saved: {e}")),
            }
        })
    });
    Some(LocalAgent { add })
}

/// The entry `m` adds on first run.
const LOCAL_AGENT: &str = "[[agents]]\nname = \"local\"\nmanaged = true\n";

/// Append the local agent's entry to the config file (created, with its directory, if need be).
fn append_agent(config_file: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = config_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config_file)?;
    write!(file, "\n# Added by ocio's first-run offer.\n{LOCAL_AGENT}")?;
    file.sync_all()
}

/// Start the engine through [`Host`] (and submit `first_plan` unless the database holds a
/// plan of its name already: see [`submit_once`]), run the room on this thread, then stop
/// everything in order. Remote sessions keep running and are re-attached next start.
pub(crate) fn host(
    paths: &Paths,
    config: &Config,
    options: HostOptions,
    setup: Setup,
    first_plan: Option<PlanFile>,
    offer: impl FnOnce(AgentAdder) -> Option<LocalAgent>,
) -> Result<(), Failure> {
    let runtime = super::runtime()?;
    let start = super::said_if_slow(Host::start(paths, config, options), SLOW_START, || {
        say_start(config)
    });
    let host = runtime.block_on(start)?;
    let engine = host.engine();
    let mut setup = setup;
    setup.local_agent = offer(host.agent_adder());
    setup.passwords = Some(host.passwords());
    setup.rooms = Some(engine.rooms());
    if let Some(plan) = first_plan
        && let Err(message) = runtime.block_on(submit_once(&engine, plan))
    {
        runtime.block_on(host.shutdown());
        return Err(Failure {
            code: exit::USAGE,
            message,
        });
    }
    let outcome = tui::run(Link::new(engine.clone()), setup, runtime.handle());
    let left = runtime.block_on(host.shutdown());
    super::with_left(ended(outcome, false, &paths.db_file), &left)
}

/// After this long starting, before the room takes the terminal, the start says what it does.
const SLOW_START: std::time::Duration = std::time::Duration::from_secs(1);

/// What a start that has taken [`SLOW_START`] says on stderr: reading the fleets' sources and
/// asking their servers may take seconds, and the terminal showed nothing meanwhile (hand
/// trial).
fn say_start(config: &Config) {
    let fleets: Vec<&str> = config.fleets.iter().map(|f| f.name.as_str()).collect();
    match fleets.is_empty() {
        true => eprintln!("ocio: starting the engine ..."),
        false => eprintln!(
            "ocio: starting the engine: reading the members of fleet {} and asking the servers ...",
            fleets.join(", ")
        ),
    }
}

/// Submit `plan` unless the engine holds a plan of its name already, and say whether it did:
/// a demo stopped before it submitted its plan submits it when it starts again, one stopped
/// after resumes the plan it has (never a second one). The engine owns the database, so
/// nothing else submits between the look and the submission.
pub(crate) async fn submit_once(engine: &EngineHandle, plan: PlanFile) -> Result<bool, String> {
    let snapshot = engine.snapshot().await.map_err(|e| e.to_string())?;
    if snapshot.plans.iter().any(|p| p.name == plan.name) {
        tracing::info!(plan = %plan.name, "the database holds the plan already: resumed");
        return Ok(false);
    }
    engine.submit_plan(plan).await.map_err(|e| e.to_string())?;
    Ok(true)
}

/// `ocio attach` (or plain `ocio` while an engine runs): the room as a client of that engine.
pub(crate) fn attach(context: &Context) -> Result<(), Failure> {
    let cwd = needs_terminal()?;
    let socket = context.paths.socket_file();
    let runtime = super::runtime()?;
    let client = runtime.block_on(ControlClient::connect(&socket))?;
    let mut setup = setup(context, cwd)?;
    setup.onboarding = Vec::new();
    setup.attached = Some(format!(
        "attached to pid {} ({})",
        client.engine().pid,
        socket.display()
    ));
    let pid = client.engine().pid;
    let database = client.engine().database.clone();
    let outcome = tui::run(Link::new(client), setup, runtime.handle());
    if let Ok(Exit::EngineGone(why)) = &outcome {
        return host_gone(why, pid, &database);
    }
    let result = ended(outcome, true, &database);
    if result.is_ok() {
        eprintln!("ocio: detached; the engine (pid {pid}) goes on. `ocio` attaches again.");
    }
    result
}

/// The engine an attached room followed is gone: its host stopped it (a quit, a signal), which
/// is no failure of this room; it was killed; or it failed, saying why.
fn host_gone(why: &str, pid: u32, database: &std::path::Path) -> Result<(), Failure> {
    use crate::engine::api::{STOPPED, WENT_AWAY};
    match why {
        STOPPED => {
            eprintln!(
                "ocio: the engine (pid {pid}) was stopped by its host; `ocio` starts it here and resumes where it stopped"
            );
            Ok(())
        }
        WENT_AWAY => Err(Failure {
            code: exit::FAILED,
            message: format!(
                "the engine (pid {pid}) went away without stopping (killed?)\n  database: {}\n  hint: nothing acknowledged was lost; `ocio` starts it again and resumes where it stopped",
                database.display()
            ),
        }),
        failure => ended(Ok(Exit::EngineGone(failure.into())), true, database),
    }
}

fn ended(
    outcome: std::io::Result<Exit>,
    attached: bool,
    database: &std::path::Path,
) -> Result<(), Failure> {
    match outcome {
        Ok(Exit::Quit) => Ok(()),
        Ok(Exit::Signal) => Err(Failure {
            code: exit::INTERRUPTED,
            message: if attached {
                "stopped by a signal; the engine goes on".into()
            } else {
                "stopped by a signal; state is saved and the next start resumes it".into()
            },
        }),
        Ok(Exit::EngineGone(why)) => Err(Failure {
            code: exit::FAILED,
            message: super::engine_failed(&why, database),
        }),
        Err(e) => Err(Failure {
            code: exit::FAILED,
            message: format!("the control room failed: {e}"),
        }),
    }
}
