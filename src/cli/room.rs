//! Plain `ocio`: the control room, hosting the engine in this process on a background tokio
//! runtime. The terminal is the UI thread's; the engine, servers and store stop in order after
//! the operator quits (remote sessions keep running and are re-attached next start).

use std::io::IsTerminal;
use std::path::PathBuf;

use super::{Context, Failure, exit};
use crate::config::Config;
use crate::engine::approval::ApprovalPolicy;
use crate::engine::{AgentSpec, EngineError, EngineHandle, EngineOptions, agents};
use crate::plan::PlanFile;
use crate::store::{Store, StoreHandle, StoreOptions};
use crate::tui::{self, Exit, Link, Setup, keymap::Keymap, theme};

/// Theme and keys from `[ui]`, for this terminal.
pub fn setup(context: &Context, cwd: PathBuf) -> Result<Setup, Failure> {
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
    let user_dir = context.paths.config_file.parent().map(|d| d.join("themes"));
    let theme = theme::Theme::load(&name, user_dir.as_deref(), depth).map_err(|e| {
        Failure::usage(format!("{} ({}): {e}", "[ui] theme", context.config.source))
    })?;
    let keymap = Keymap::with_overrides(&ui.keys)
        .map_err(|e| Failure::usage(format!("{} {e}", context.config.source)))?;
    Ok(Setup {
        theme,
        keymap,
        cwd,
        attached: None,
        onboarding: onboarding(context),
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
        Some(path) => lines.push(format!("opencode is installed ({}), so `managed = true` works as is.", path.display())),
        None => lines.push("opencode is not on PATH: install it with `npm i -g opencode-ai`, or give `url` of a running server.".into()),
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

pub fn run(context: &Context) -> Result<(), Failure> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "the control room needs a terminal; use `ocio --headless` to run the engine without one, or `ocio status` to read the database",
        ));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))?;
    let setup = setup(context, cwd)?;
    let runtime = super::runtime()?;
    let store = Store::open(&context.paths.db_file, StoreOptions::default())?;
    let (specs, servers) = runtime
        .block_on(agents::from_config(&context.config.config))
        .map_err(|e| Failure {
            code: exit::FAILED,
            message: e.to_string(),
        })?;
    let options = options(&context.config.config);
    host(&runtime, store, specs, options, setup, servers, None)
}

pub fn options(config: &Config) -> EngineOptions {
    EngineOptions {
        max_parallel: config.engine.max_parallel,
        approvals: ApprovalPolicy::from_config(&config.engine),
        ..EngineOptions::default()
    }
}

/// Start the engine (and submit `first_plan`), run the room on this thread, then stop
/// everything in order.
pub fn host(
    runtime: &tokio::runtime::Runtime,
    store: StoreHandle,
    specs: Vec<AgentSpec>,
    options: EngineOptions,
    setup: Setup,
    servers: agents::Servers,
    first_plan: Option<PlanFile>,
) -> Result<(), Failure> {
    let started = runtime.block_on(async {
        let engine = EngineHandle::start(store.clone(), specs, options).await?;
        if let Some(plan) = first_plan {
            engine.submit(plan).await?;
        }
        Ok::<_, EngineError>(engine)
    });
    let outcome = match started {
        Ok(engine) => {
            let result = tui::run(Link::Local(engine.clone()), setup, runtime.handle());
            let _ = runtime.block_on(engine.shutdown());
            result
        }
        Err(e) => Err(std::io::Error::other(engine_message(e))),
    };
    runtime.block_on(async {
        servers.shutdown().await;
        store.close().await;
    });
    match outcome {
        Ok(Exit::Quit) => Ok(()),
        Ok(Exit::Signal) => Err(Failure {
            code: exit::INTERRUPTED,
            message: "stopped by a signal; state is saved and the next start resumes it".into(),
        }),
        Ok(Exit::EngineGone) => Err(Failure {
            code: exit::FAILED,
            message: "the engine stopped; see the log".into(),
        }),
        Err(e) => Err(Failure {
            code: exit::FAILED,
            message: format!("the control room failed: {e}"),
        }),
    }
}

fn engine_message(e: EngineError) -> String {
    format!("the engine cannot start: {e}")
}
