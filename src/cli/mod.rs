//! The front door: parses the command line, finds paths and config, starts logging, and runs
//! the command. Maps every failure to a clear message on stderr and a meaningful exit code.

mod budget;
mod check;
mod command;
mod database;
mod demo;
mod events;
mod failure;
mod gc;
mod inspect;
mod land;
mod open;
mod output;
mod plans;
mod remote;
mod review;
mod room;
mod run;
mod search;
mod status;
mod timeline;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::config::{self, ConfigError, LoadedConfig};
use crate::logging::{self, LogGuard};
use crate::paths::Paths;
use command::Command;
pub(crate) use failure::Failure;
use failure::with_left;

/// Exit codes, shared by every command.
pub(crate) mod exit {
    /// Everything asked for succeeded.
    pub(crate) const OK: u8 = 0;
    /// The work ran and something failed.
    pub(crate) const FAILED: u8 = 1;
    /// Usage, config, plan or database file problem: nothing was done; fix the input.
    pub(crate) const USAGE: u8 = 2;
    /// Interrupted by SIGINT/SIGTERM.
    pub(crate) const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "ocio",
    version,
    about = "OpenCode Industrial Orchestrator: a terminal control room for many parallel OpenCode sessions",
    after_help = "Config: $XDG_CONFIG_HOME/ocio/config.toml  Database: $XDG_DATA_HOME/ocio/ocio.redb  Logs: $XDG_STATE_HOME/ocio/ (level from OCIO_LOG)"
)]
pub(crate) struct Cli {
    /// Config file [default: $XDG_CONFIG_HOME/ocio/config.toml]
    #[arg(long, global = true, env = "OCIO_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Database file [default: $XDG_DATA_HOME/ocio/ocio.redb]
    #[arg(long, global = true, env = "OCIO_DB", value_name = "PATH")]
    db: Option<PathBuf>,

    /// Run the engine without a terminal UI until interrupted (JSON Lines on stdout)
    #[arg(long)]
    headless: bool,

    #[command(flatten)]
    flags: Flags,

    #[command(subcommand)]
    command: Option<Command>,

    /// `--db` was on the command line (not from `OCIO_DB`): only then does `ocio demo` run in
    /// it, as an `OCIO_DB` set for the user's own database must not send the demo there.
    #[arg(skip)]
    db_given: bool,

    /// `run --metrics-addr` was on the command line (not from `OCIO_METRICS_ADDR`, which both
    /// places read): only then does it win over one given before `run`.
    #[arg(skip)]
    run_metrics_given: bool,
}

/// Options for commands that host the engine (`--headless`, `run`): given before `run` or
/// after it. Other commands neither take nor list them.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Flags {
    /// Serve Prometheus metrics at http://ADDR/metrics (loopback only unless --metrics-public)
    // Text here, read as an address only by a command that hosts the engine: a bad
    // `OCIO_METRICS_ADDR` fails no other command.
    #[arg(long, env = "OCIO_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<String>,

    /// Allow a --metrics-addr that other hosts can reach
    #[arg(long)]
    metrics_public: bool,

    /// Leave `activity` events (what running sessions write) out of the JSON Lines
    #[arg(long)]
    no_activity: bool,

    /// The address came from `OCIO_METRICS_ADDR`, not the command line.
    #[arg(skip)]
    metrics_from_env: bool,
}

impl Flags {
    /// These, with what `after` (given after the subcommand) sets; its address wins when it
    /// was on the command line (`after_given`), not from the environment.
    fn with(&self, after: &Flags, after_given: bool) -> Flags {
        let (metrics_addr, metrics_from_env) = match (after_given, &self.metrics_addr) {
            (false, Some(addr)) => (Some(addr.clone()), self.metrics_from_env),
            _ => (after.metrics_addr.clone(), !after_given),
        };
        Flags {
            metrics_addr,
            metrics_public: self.metrics_public || after.metrics_public,
            no_activity: self.no_activity || after.no_activity,
            metrics_from_env,
        }
    }

    /// Metrics were asked for on the command line (not by `OCIO_METRICS_ADDR`).
    fn metrics_given(&self) -> bool {
        (self.metrics_addr.is_some() && !self.metrics_from_env) || self.metrics_public
    }

    /// Where to serve metrics, if anywhere: the address read, refused (naming where it came
    /// from) when it is none, or reachable from other hosts without `--metrics-public`.
    fn metrics(&self) -> Result<Option<SocketAddr>, Failure> {
        let from = match self.metrics_from_env {
            true => "OCIO_METRICS_ADDR",
            false => "--metrics-addr",
        };
        let Some(text) = &self.metrics_addr else {
            return match self.metrics_public {
                true => Err(Failure::usage(
                    "--metrics-public only applies with --metrics-addr ADDR (or OCIO_METRICS_ADDR)",
                )),
                false => Ok(None),
            };
        };
        let addr: SocketAddr = text.trim().parse().map_err(|_| {
            Failure::usage(format!(
                "{from} `{}` is not an address and port\n  hint: e.g. 127.0.0.1:9464 (IPv6: [::1]:9464)",
                crate::text::shown(text)
            ))
        })?;
        crate::metrics::check_addr(addr, self.metrics_public)
            .map_err(|e| Failure::usage(e.to_string().replace("--metrics-addr", from)))?;
        Ok(Some(addr))
    }
}

/// What to tell the operator when the engine stopped by itself: what failed, on which
/// database, and what to do.
pub(crate) fn engine_failed(error: &str, database: &Path) -> String {
    format!(
        "the engine stopped: {error}\n  database: {}\n  hint: nothing acknowledged was lost; free space on the database's file system (or fix what the error names) and start ocio again: it resumes where it stopped",
        database.display()
    )
}

/// What every command that touches state needs: where things are, the config, the log.
pub(crate) struct Context {
    pub(crate) paths: Paths,
    pub(crate) config: LoadedConfig,
    _log: LogGuard,
}

impl Context {
    fn load(cli: &Cli) -> Result<Self, Failure> {
        let paths = Paths::resolve(cli.config.clone(), cli.db.clone())?;
        let config = config::load(&paths.config_file, paths.config_explicit, std::env::vars())?;
        check_keys(&config)?;
        check_theme(&config, &paths)?;
        let directive =
            std::env::var("OCIO_LOG").unwrap_or_else(|_| config.config.log.level.clone());
        let log = logging::init(&paths.log_dir, &directive)?;
        if matches!(cli.command, Some(Command::Demo { .. })) {
            // The demo names the scratch database it makes itself.
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "ocio starting a demo");
        } else {
            tracing::info!(version = env!("CARGO_PKG_VERSION"), db = %paths.db_file.display(), "ocio starting");
        }
        Ok(Self {
            paths,
            config,
            _log: log,
        })
    }
}

/// `[ui.keys]` belongs to the control room, but a config it could not use is refused by every
/// command, as any config error is: the file, the line and the key, exit 2.
fn check_keys(loaded: &LoadedConfig) -> Result<(), ConfigError> {
    match crate::tui::keymap::Keymap::with_overrides(&loaded.config.ui.keys) {
        Ok(_) => Ok(()),
        Err(e) => Err(loaded.invalid_at(&["ui", "keys", e.config_key()], e.to_string())),
    }
}

/// `[ui] theme` belongs to the control room too, and likewise a theme it could not load (no
/// theme by that name, or a user theme file that is not one) is refused by every command with
/// the file, the line and the key, and the themes there are; the room used to be the first to
/// notice, with none of that.
fn check_theme(loaded: &LoadedConfig, paths: &Paths) -> Result<(), ConfigError> {
    let Some(name) = &loaded.config.ui.theme else {
        return Ok(());
    };
    let dir = theme_dir(paths);
    // A theme fails alike at every depth (depth only maps colours down), so any one will do.
    match crate::tui::theme::Theme::load(
        name,
        dir.as_deref(),
        crate::tui::theme::ColorDepth::TrueColor,
    ) {
        Ok(_) => Ok(()),
        Err(e) => Err(loaded.invalid_at(&["ui", "theme"], e.to_string())),
    }
}

/// Where the user's own themes are: `themes/` beside the config file.
pub(crate) fn theme_dir(paths: &Paths) -> Option<PathBuf> {
    paths.config_file.parent().map(|dir| dir.join("themes"))
}

/// The async runtime for commands that talk to servers or host the engine.
/// `work`, with `say` run once it has taken `after` (on stderr, for a person: what it waits
/// for), then awaited to its end.
async fn said_if_slow<T>(
    work: impl std::future::Future<Output = T>,
    after: std::time::Duration,
    say: impl FnOnce(),
) -> T {
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => done,
        () = tokio::time::sleep(after) => {
            say();
            work.await
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    crate::host::runtime().map_err(|e| Failure {
        code: exit::FAILED,
        message: format!("cannot start the async runtime: {e}"),
    })
}

/// Runs ocio with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.db_given = matches.value_source("db") == Some(clap::parser::ValueSource::CommandLine);
    let given = |matches: &clap::ArgMatches, id: &str| {
        matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    };
    cli.run_metrics_given = matches
        .subcommand_matches("run")
        .is_some_and(|run| given(run, "metrics_addr"));
    cli.flags.metrics_from_env = !given(&matches, "metrics_addr");
    let outcome = match misplaced_host_flag(&matches, given) {
        Some(failure) => Err(failure),
        None => run(cli),
    };
    match outcome {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            // Not eprintln!: it panics when stderr is gone (the terminal closed under the
            // control room), and the exit code still says what happened.
            if !failure.message.is_empty() {
                let _ = writeln!(std::io::stderr(), "ocio: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// A flag of the engine's host (`--headless`, `--metrics-addr`...) given before a
/// subcommand that does not host it, which would change nothing: refused, naming where it
/// goes. (After the subcommand clap refuses it itself. `demo --headless` says its own.)
fn misplaced_host_flag(
    matches: &clap::ArgMatches,
    given: impl Fn(&clap::ArgMatches, &str) -> bool,
) -> Option<Failure> {
    let command = matches.subcommand_name()?;
    let flags = [
        ("headless", "--headless"),
        ("metrics_addr", "--metrics-addr"),
        ("metrics_public", "--metrics-public"),
        ("no_activity", "--no-activity"),
    ];
    let hosts = |flag: &str| command == "run" || (command == "demo" && flag == "headless");
    let (_, flag) = flags
        .iter()
        .find(|(id, _)| given(matches, id) && !hosts(id))?;
    Some(Failure::usage(format!(
        "{flag} is for the process that hosts the engine (`ocio`, `ocio --headless`, `ocio run PLAN`); `ocio {command}` does not take it"
    )))
}

fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "ocio", &mut script);
            return output::print_bytes(&script);
        }
        Some(Command::Man) => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Failure {
                    code: exit::FAILED,
                    message: format!("cannot make the manual page: {e}"),
                })?;
            return output::print_bytes(&page);
        }
        _ => {}
    }
    let context = Context::load(&cli)?;
    let flags = &cli.flags;
    match cli.command {
        Some(Command::Status { json }) => status::run(&context, json),
        Some(Command::Check {
            database: true,
            json,
            ..
        }) => check::database(&context, json),
        Some(Command::Check { agents, json, .. }) => check::run(&context, &agents, json),
        Some(Command::Run {
            plan, flags: given, ..
        }) => run::run(&context, &flags.with(&given, cli.run_metrics_given), &plan),
        Some(Command::Submit {
            goal: Some(goal),
            yes,
            print,
            json,
            ..
        }) => remote::plan_and_submit(&context, &goal, yes, print, json),
        Some(Command::Submit {
            plan,
            prompt,
            template,
            print,
            json,
            ..
        }) => {
            let what = match (template, plan, prompt) {
                (Some(template), Some(goal), _) => remote::What::Template {
                    name: template,
                    goal: goal.to_string_lossy().into_owned(),
                },
                (None, Some(plan), _) => remote::What::Plan(plan),
                (None, None, Some(prompt)) => remote::What::Prompt(prompt),
                _ => {
                    return Err(Failure::usage(
                        "give a plan file, --prompt \"...\" or --template NAME \"goal\"",
                    ));
                }
            };
            remote::submit(&context, what, print, json)
        }
        Some(Command::Cancel { id, json }) => remote::cancel(&context, &id, json),
        Some(Command::Retry { id, json }) => remote::retry(&context, &id, json),
        Some(Command::Approve {
            id,
            always,
            reject,
            json,
        }) => remote::approve(&context, &id, always, reject, json),
        Some(Command::Answer {
            id,
            answers,
            option,
            reject,
            json,
        }) => {
            let answers = match reject {
                true => None,
                false => Some(remote::answers(&answers, option)?),
            };
            remote::answer(&context, &id, answers, json)
        }
        Some(Command::Say {
            session,
            text,
            json,
        }) => remote::steer(&context, &session, Some(text.join(" ")), json),
        Some(Command::Interrupt { session, json }) => remote::steer(&context, &session, None, json),
        Some(Command::Pause { json }) => remote::pause(&context, true, json),
        Some(Command::Resume { json }) => remote::pause(&context, false, json),
        Some(Command::Drain { agent, json }) => remote::drain(&context, &agent, true, json),
        Some(Command::Budget {
            plan,
            task,
            agent,
            daily,
            tokens,
            cost,
            cancel,
            hold,
            json,
        }) => {
            let change = budget::Change {
                plan,
                task,
                agent,
                daily,
                tokens,
                cost,
                cancel,
                hold,
            };
            budget::run(&context, change, json)
        }
        Some(Command::Undrain { agent, json }) => remote::drain(&context, &agent, false, json),
        Some(Command::Sessions { json }) => inspect::sessions(&context, json),
        Some(Command::Tasks { json }) => inspect::tasks(&context, json),
        Some(Command::Agents { json }) => inspect::agents(&context, json),
        Some(Command::Logs { session, json }) => inspect::logs(&context, &session, json),
        Some(Command::Open {
            session,
            print,
            json,
        }) => open::run(&context, &session, print, json),
        Some(Command::Context { plan, json }) => inspect::context(&context, plan.as_deref(), json),
        Some(Command::Land {
            plan,
            squash,
            rebase,
            push,
            pr,
            json,
            ..
        }) => {
            let mode = match (squash, rebase) {
                (true, _) => crate::domain::LandMode::Squash,
                (_, true) => crate::domain::LandMode::Rebase,
                _ => crate::domain::LandMode::Merge,
            };
            let push = (push.is_some() || pr).then(|| crate::engine::Push {
                remote: push.filter(|r| !r.is_empty()),
                pr,
            });
            land::run(&context, &plan, mode, push, json)
        }
        Some(Command::Review {
            plan,
            diff,
            mark,
            unmark,
            json,
        }) => review::review(
            &context,
            review::Asked {
                plan,
                json,
                diff,
                mark,
                unmark,
            },
        ),
        Some(Command::Export { json }) => inspect::export(&context, json),
        Some(Command::Gc { older_than, json }) => gc::run(&context, older_than.as_deref(), json),
        Some(Command::Timeline {
            plan,
            since,
            by,
            svg,
            json,
        }) => timeline::run(
            &context,
            timeline::Asked {
                plan,
                since,
                by: match by.as_str() {
                    "task" => crate::timeline::LaneBy::Task,
                    _ => crate::timeline::LaneBy::Agent,
                },
                svg,
                json,
            },
        ),
        Some(Command::Search {
            reindex: true,
            json,
            ..
        }) => search::reindex(&context, json),
        Some(Command::Search {
            text,
            plan,
            agent,
            since,
            limit,
            json,
            ..
        }) => search::run(
            &context,
            search::Asked {
                text: text.unwrap_or_default(),
                plan,
                agent,
                since,
                limit,
                json,
            },
        ),
        Some(Command::Completions { .. } | Command::Man) => Ok(()),
        None if cli.headless => run::headless(&context, flags),
        Some(Command::Demo { headless }) => demo::run(
            &context,
            cli.headless || headless,
            cli.db_given.then_some(context.paths.db_file.as_path()),
        ),
        Some(Command::Attach) => room::attach(&context),
        None => room::run(&context, flags),
    }
}
