//! The front door: parses the command line, finds paths and config, starts logging, and runs
//! the command. Maps every failure to a clear message on stderr and a meaningful exit code.

mod check;
mod demo;
mod room;
mod run;
mod status;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{self, ConfigError, LoadedConfig};
use crate::logging::{self, LogGuard, LoggingError};
use crate::paths::{Paths, PathsError};
use crate::store::StoreError;

/// Exit codes, shared by every command.
pub mod exit {
    /// Everything asked for succeeded.
    pub const OK: u8 = 0;
    /// The work ran and something failed.
    pub const FAILED: u8 = 1;
    /// Usage, config, plan or database file problem: nothing was done; fix the input.
    pub const USAGE: u8 = 2;
    /// Interrupted by SIGINT/SIGTERM.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "ocio",
    version,
    about = "OpenCode Industrial Orchestrator: a terminal control room for many parallel OpenCode sessions",
    after_help = "Config: $XDG_CONFIG_HOME/ocio/config.toml  Database: $XDG_DATA_HOME/ocio/ocio.redb  Logs: $XDG_STATE_HOME/ocio/ (level from OCIO_LOG)"
)]
pub struct Cli {
    /// Config file [default: $XDG_CONFIG_HOME/ocio/config.toml]
    #[arg(long, global = true, env = "OCIO_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Database file [default: $XDG_DATA_HOME/ocio/ocio.redb]
    #[arg(long, global = true, env = "OCIO_DB", value_name = "PATH")]
    db: Option<PathBuf>,

    /// Run the engine without a terminal UI (JSON Lines on stdout)
    #[arg(long, global = true)]
    headless: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what the database holds: sessions, tasks and agents by state
    Status {
        /// One JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Check that every configured agent's OpenCode server can be reached (starts and stops
    /// managed ones); exit 1 if one cannot
    Check {
        /// Only these agents
        #[arg(value_name = "AGENT")]
        agents: Vec<String>,
        /// JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Run a plan file to the end with the configured agents: JSON Lines of engine events on
    /// stdout; exit 0 if every task succeeded, 1 if not, 2 for a bad plan or config
    Run {
        /// The plan file (TOML; see README)
        plan: PathBuf,
    },
    /// The control room on simulated agents running a demo plan, in a scratch repository and
    /// database (your own state is not touched)
    Demo,
    /// Print a shell completion script to stdout
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn usage(message: impl ToString) -> Self {
        Self {
            code: exit::USAGE,
            message: message.to_string(),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::usage(e)
    }
}

impl From<PathsError> for Failure {
    fn from(e: PathsError) -> Self {
        Failure::usage(e)
    }
}

impl From<LoggingError> for Failure {
    fn from(e: LoggingError) -> Self {
        Failure::usage(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::Locked { .. }
            | StoreError::Unusable { .. }
            | StoreError::TooNew { .. }
            | StoreError::NeedsMigration { .. }
            | StoreError::Io { .. } => exit::USAGE,
            StoreError::Storage(_) | StoreError::Decode { .. } | StoreError::Closed => exit::FAILED,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// What every command that touches state needs: where things are, the config, the log.
pub struct Context {
    pub paths: Paths,
    pub config: LoadedConfig,
    _log: LogGuard,
}

impl Context {
    fn load(cli: &Cli) -> Result<Self, Failure> {
        let paths = Paths::resolve(cli.config.clone(), cli.db.clone())?;
        let config = config::load(&paths.config_file, paths.config_explicit, std::env::vars())?;
        let directive =
            std::env::var("OCIO_LOG").unwrap_or_else(|_| config.config.log.level.clone());
        let log = logging::init(&paths.log_dir, &directive)?;
        tracing::info!(version = env!("CARGO_PKG_VERSION"), db = %paths.db_file.display(), "ocio starting");
        Ok(Self {
            paths,
            config,
            _log: log,
        })
    }
}

/// The async runtime for commands that talk to servers or host the engine.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: exit::FAILED,
            message: format!("cannot start the async runtime: {e}"),
        })
}

/// Runs ocio with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            // Not eprintln!: it panics when stderr is gone (the terminal closed under the
            // control room), and the exit code still says what happened.
            let _ = writeln!(std::io::stderr(), "ocio: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Some(Command::Completions { shell }) = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command(), "ocio", &mut std::io::stdout());
        return Ok(());
    }
    let context = Context::load(&cli)?;
    match cli.command {
        Some(Command::Status { json }) => status::run(&context, json),
        Some(Command::Check { agents, json }) => check::run(&context, &agents, json),
        Some(Command::Run { plan }) => run::run(&context, &plan),
        Some(Command::Demo) => demo::run(&context),
        Some(Command::Completions { .. }) => Ok(()),
        None if cli.headless => Err(Failure::usage(
            "--headless runs the engine, which is not part of this build yet; `ocio status` reads the database",
        )),
        None => room::run(&context),
    }
}
