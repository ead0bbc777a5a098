//! The front door: parses the command line, finds paths and config, starts logging, and runs
//! the command. Maps every failure to a clear message on stderr and a meaningful exit code.

mod budget;
mod check;
mod database;
mod demo;
mod events;
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

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, ConfigError, LoadedConfig};
use crate::control::ControlError;
use crate::host::HostError;
use crate::logging::{self, LogGuard, LoggingError};
use crate::paths::{Paths, PathsError};
use crate::store::StoreError;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what the database holds (sessions, tasks and agents by state) and the running
    /// engine, if any
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
        /// Verify the database instead: every page checksum, every record decoded; exit 2
        /// when it is damaged. Never writes the file; works beside a running engine
        #[arg(long, conflicts_with = "agents")]
        database: bool,
        /// JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Run a plan file to the end with the configured agents, hosting the engine in this
    /// process: JSON Lines of engine events on stdout; exit 0 if every task succeeded, 1 if
    /// not, 2 for a bad plan or config, 130 when interrupted
    Run {
        /// The plan file (TOML; see README)
        plan: PathBuf,
        #[command(flatten)]
        flags: Flags,
        /// Accepted and changes nothing: a run is always headless
        #[arg(long, hide = true)]
        headless: bool,
    },
    /// The control room on simulated agents running a demo plan, in a scratch repository and
    /// database (your own state is not touched); with --db PATH the demo's database is kept at
    /// PATH and its repository beside it, so the same command resumes a stopped demo
    Demo {
        /// Refused: the demo is the control room, which needs a terminal
        #[arg(long, hide = true)]
        headless: bool,
    },
    /// Open the control room on the engine already running on this database (plain `ocio`
    /// does this too when one runs); quitting detaches and the work goes on
    Attach,
    /// Submit a plan file, or one prompt as a one-task plan in this directory's repository, to
    /// the running engine
    #[command(group = clap::ArgGroup::new("what").required(true))]
    Submit {
        /// The plan file (TOML; see README); with --template, the goal
        #[arg(group = "what", value_name = "PLAN|GOAL")]
        plan: Option<PathBuf>,
        /// The prompt of a one-task plan run in the current directory's git repository (or in
        /// the directory itself outside any)
        #[arg(long, group = "what")]
        prompt: Option<String>,
        /// Make the plan from a built-in template (`feature`, `bugfix`) for the GOAL given in
        /// place of the plan file, in the current directory's git repository
        #[arg(
            long,
            value_name = "NAME",
            requires = "plan",
            conflicts_with = "prompt"
        )]
        template: Option<String>,
        /// Ask the engine's planner (an agent with the `plan` capability) for a plan towards
        /// this goal in the current directory's git repository; it is shown, and submitted
        /// once you approve it
        #[arg(long, value_name = "GOAL", group = "what", conflicts_with = "template")]
        goal: Option<String>,
        /// Approve the planner's plan without asking (for scripts)
        #[arg(long, requires = "goal")]
        yes: bool,
        /// Print the plan that would be submitted (TOML) and stop
        #[arg(long)]
        print: bool,
        #[arg(long)]
        json: bool,
    },
    /// List sessions: running ones, then the most recent
    Sessions {
        #[arg(long)]
        json: bool,
    },
    /// List plans and their tasks
    Tasks {
        #[arg(long)]
        json: bool,
    },
    /// List agents with their status and load
    Agents {
        #[arg(long)]
        json: bool,
    },
    /// Cancel a task (its running session is stopped, its dependents blocked)
    Cancel {
        /// Task id: the full id, its last 8 characters, or the task's key (`plan/key` when
        /// several plans have it)
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a failed or cancelled task again (its blocked dependents are re-opened)
    Retry {
        /// Task id, as for `cancel`
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Answer a permission request a session waits on (allow once unless told otherwise)
    Approve {
        /// The request id (`per_...`) as `ocio status` and the events show it, or 4 or more
        /// characters from its end (or from the start of the last 8 the control room shows)
        id: String,
        /// Allow it and the same again in this session
        #[arg(long, conflicts_with = "reject")]
        always: bool,
        /// Refuse it
        #[arg(long)]
        reject: bool,
        #[arg(long)]
        json: bool,
    },
    /// Answer a question a session waits on: an option by number, or a typed answer (one
    /// per question when it asks several), or reject it
    #[command(group(clap::ArgGroup::new("what").required(true).args(["answers", "reject"])))]
    Answer {
        /// The question's id (`que_...`) as `ocio status` and the events show it, or 4 or
        /// more characters from its end (or from the start of the last 8 the control room
        /// shows)
        id: String,
        /// The answer: a text, or with --option the option's number (1 for the first; `2,3`
        /// for several where the question allows several). One per question, in order
        #[arg(num_args = 1.., value_name = "ANSWER")]
        answers: Vec<String>,
        /// The answers are option numbers, as the question lists its options
        #[arg(long, requires = "answers")]
        option: bool,
        /// Refuse to answer: the agent is told the question was dismissed
        #[arg(long, conflicts_with_all = ["answers", "option"])]
        reject: bool,
        #[arg(long)]
        json: bool,
    },
    /// Send a running session a follow-up message; its task's result becomes the answer to it
    Say {
        /// Session id (the full id or its last 8 characters), or a task as for `cancel` (its
        /// newest session)
        session: String,
        /// The message (several words are joined with spaces)
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop what a running session does now; it waits for your next `ocio say` (its task does
    /// not fail)
    Interrupt {
        /// Session id, or a task, as for `say`
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop starting sessions (those running go on) until `ocio resume`; durable
    Pause {
        #[arg(long)]
        json: bool,
    },
    /// Start sessions again after `ocio pause`
    Resume {
        #[arg(long)]
        json: bool,
    },
    /// Spend against budgets; with a plan, raise one of its budgets (`--tokens`, `--cost`) and
    /// continue it if it is paused over budget (its stopped tasks go on from their branches)
    #[command(group(clap::ArgGroup::new("which").args(["task", "agent", "daily"])))]
    Budget {
        /// The plan: its id, the id's last 8 characters, or its name (none: show every spend)
        plan: Option<String>,
        /// Raise this task's budget instead of the plan's
        #[arg(long, requires = "plan")]
        task: Option<String>,
        /// Raise this agent's daily budget (UTC days) instead
        #[arg(long, requires = "plan")]
        agent: Option<String>,
        /// Raise the engine's daily budget (UTC days) instead
        #[arg(long, requires = "plan")]
        daily: bool,
        /// The new limit in tokens (input, output, reasoning and cache together)
        #[arg(long, requires = "plan")]
        tokens: Option<u64>,
        /// The new limit in US dollars
        #[arg(long, requires = "plan")]
        cost: Option<f64>,
        /// Cancel the plan paused over budget instead of continuing it
        #[arg(long, requires = "plan", conflicts_with = "hold")]
        cancel: bool,
        /// Only raise: the plan stays paused
        #[arg(long, requires = "plan")]
        hold: bool,
        #[arg(long)]
        json: bool,
    },
    /// Give an agent no new sessions (those running on it go on) until `ocio undrain`
    Drain {
        /// The agent's name, as `ocio agents` lists it
        agent: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a drained agent sessions again
    Undrain {
        /// The agent's name
        agent: String,
        #[arg(long)]
        json: bool,
    },
    /// What a plan's finished tasks left for their dependents (the shared context): each
    /// task's answer, the files it changed, the values it published, its merge
    Context {
        /// The plan: its id, the id's last 8 characters, or its name (the newest plan when
        /// left out)
        plan: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deliver a finished plan's work: land its integration branch on the plan's base branch
    /// (its `base`, else the branch checked out when it was submitted) as a merge commit
    /// (default), one squashed commit or rebased commits; the base is merged into the
    /// integration branch first when it moved. The checkout the base is checked out in is only
    /// fast-forwarded, and refused (exit 2, nothing changed) when its uncommitted changes
    /// touch a file the landing changes. With --push/--pr, push the branch instead. Landing
    /// twice says it already landed (exit 0)
    #[command(group = clap::ArgGroup::new("how").args(["merge", "squash", "rebase"]))]
    Land {
        /// The plan: its name, its id or the id's last 8 characters
        plan: String,
        /// A merge commit whose second parent is the integration branch (the default)
        #[arg(long)]
        merge: bool,
        /// One commit with the plan's whole change
        #[arg(long)]
        squash: bool,
        /// The plan's commits replayed onto the base: linear history
        #[arg(long)]
        rebase: bool,
        /// Push the integration branch (as ocio/<plan>/integration) to REMOTE instead of
        /// landing here [default: the base branch's upstream remote, else origin]
        #[arg(long, value_name = "REMOTE", num_args = 0..=1, require_equals = true, default_missing_value = "", conflicts_with = "how")]
        push: Option<String>,
        /// Push, then open a pull request into the base branch with `gh pr create` (or
        /// `glab mr create`)
        #[arg(long, conflicts_with = "how")]
        pr: bool,
        #[arg(long)]
        json: bool,
    },
    /// A plan's result for review, from the running engine: its integration branch against its
    /// base (commits ahead and behind), the files changed (status, lines added and removed,
    /// reviewed or not, which task changed each), and each task's answer, tokens and cost.
    /// Exit 2 for an unknown plan or a file the plan did not change
    Review {
        /// The plan: its id, the id's last 8 characters, or its name as the control room shows
        /// it (`p` and `p-2` for two plans of one name), else the newest plan of that name
        plan: String,
        /// Also print the combined diff (`git diff base...integration`, cut at 2 MB)
        #[arg(long)]
        diff: bool,
        /// Mark these files reviewed as they are now (a file changed later is unreviewed
        /// again)
        #[arg(long, num_args = 1.., value_name = "FILE")]
        mark: Vec<String>,
        /// Mark these files not reviewed
        #[arg(long, num_args = 1.., value_name = "FILE")]
        unmark: Vec<String>,
        /// One JSON object, `{"source": "engine", "review": {...}}` (the diff included)
        #[arg(long)]
        json: bool,
    },
    /// Sessions on a time axis, from the control log (engine running or not): a plan's, one
    /// lane per agent (or task), each session from dispatch to end with how it ended, its
    /// waits for the operator, retries and the plan's critical path; without PLAN, every
    /// session of the last `--since`. As text, `--json`, or `--svg FILE` (a picture for a
    /// report). Exit 2 for an unknown plan
    Timeline {
        /// The plan: its id, the id's last 8 characters, or its name as the control room shows
        /// it (`p` and `p-2` for two plans of one name), else the newest plan of that name;
        /// every plan when left out
        plan: Option<String>,
        /// Without PLAN: how far back (`2h`, `30m`, `1d`); default 2 hours
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// One lane per agent or per task
        #[arg(long, value_parser = ["agent", "task"], default_value = "agent")]
        by: String,
        /// Write the timeline as an SVG picture to FILE
        #[arg(long, value_name = "FILE")]
        svg: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Sessions whose title, control-log events or transcript have every word of TEXT (the
    /// last word may be the start of one), newest first, with the line that matched and where
    /// (engine running or not). Exit 2 for empty TEXT, a bad `--since` or an unknown plan
    Search {
        /// The words to look for
        text: Option<String>,
        /// Only this plan's sessions: its id, the id's last 8 characters, or its name
        #[arg(long)]
        plan: Option<String>,
        /// Only sessions this agent ran
        #[arg(long)]
        agent: Option<String>,
        /// Only sessions made this far back (`2h`, `30m`, `1d`)
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Most results
        #[arg(long, default_value_t = search::DEFAULT_LIMIT)]
        limit: usize,
        /// Index everything already in the database (one written before search existed); no
        /// engine may be running
        #[arg(long, conflicts_with_all = ["text", "plan", "agent", "since"])]
        reindex: bool,
        #[arg(long)]
        json: bool,
    },
    /// What a session did: its stored transcript (text, tool calls, steps, edits, notes) and
    /// checkpoints, engine running or not
    Logs {
        /// Session id (the full id or its last 8 characters), or a task as for `cancel` (its
        /// newest session)
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Take a session over in OpenCode's own terminal UI: runs `opencode attach URL --session
    /// ID --dir DIR` in this terminal, the server's password in its environment (never its
    /// arguments); exit code: opencode's. Exit 2 for an unknown session or one with no
    /// OpenCode session (simulated, or not started yet)
    Open {
        /// Session id (the full id or its last 8 characters), or a task as for `cancel` (its
        /// newest session)
        session: String,
        /// Print the command (the password as its variable) instead of running it
        #[arg(long)]
        print: bool,
        /// Print what would run as JSON (url, remote session, directory, command) instead
        #[arg(long)]
        json: bool,
    },
    /// Remove the stored transcripts of sessions that ended longer ago than [engine]
    /// transcript_retention (or --older-than), and say what that freed; through the running
    /// engine when there is one
    Gc {
        /// e.g. `30d`, `2w`, `12h`: overrides [engine] transcript_retention
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Everything the database holds (plans, tasks, sessions, agents, control log,
    /// transcripts): JSON Lines, or one JSON document with --json
    Export {
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script to stdout
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, e.g. `ocio man | man -l -`
    Man,
}

/// What to tell the operator when the engine stopped by itself: what failed, on which
/// database, and what to do.
pub(crate) fn engine_failed(error: &str, database: &Path) -> String {
    format!(
        "the engine stopped: {error}\n  database: {}\n  hint: nothing acknowledged was lost; free space on the database's file system (or fix what the error names) and start ocio again: it resumes where it stopped",
        database.display()
    )
}

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Stdout was closed by its reader (`ocio man | head`): stop, say nothing, exit 0.
    fn stdout_closed() -> Self {
        Self {
            code: exit::OK,
            message: String::new(),
        }
    }

    fn usage(message: impl ToString) -> Self {
        Self {
            code: exit::USAGE,
            message: message.to_string(),
        }
    }
}

/// How a hosting command ended, told with the managed servers it left running for their
/// sessions (on stderr: a clean end says it on a line of its own).
fn with_left(ended: Result<(), Failure>, left: &[crate::host::LeftServer]) -> Result<(), Failure> {
    let Some(said) = crate::host::LeftServer::say(left) else {
        return ended;
    };
    match ended {
        Ok(()) => {
            let _ = writeln!(std::io::stderr(), "ocio: {said}");
            Ok(())
        }
        Err(mut failure) => {
            failure.message = match failure.message.is_empty() {
                true => said,
                false => format!("{}\n{said}", failure.message),
            };
            Err(failure)
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

impl From<HostError> for Failure {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Store(e) => e.into(),
            HostError::Control(e) => Failure::usage(e),
            HostError::AlreadyRunning { .. } | HostError::Metrics(_) => Failure::usage(e),
            // An agent that cannot start as configured (no `opencode` for a managed one, say):
            // nothing was done, the message names the agent and what to fix.
            HostError::Agents(ref agents) if agents.is_config() => Failure::usage(e),
            HostError::Agents(_) | HostError::Engine(_) => Failure {
                code: exit::FAILED,
                message: e.to_string(),
            },
        }
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        let code = match &e {
            ControlError::Engine(refusal) => return Failure::from(refusal.clone()),
            ControlError::Version { .. } | ControlError::NotRunning { .. } => exit::USAGE,
            _ => exit::FAILED,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<crate::engine::ApiError> for Failure {
    fn from(e: crate::engine::ApiError) -> Self {
        Failure {
            code: if e.kind.is_input() {
                exit::USAGE
            } else {
                exit::FAILED
            },
            message: e.message,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::Locked { .. }
            | StoreError::Unusable { .. }
            | StoreError::TooNew { .. }
            | StoreError::Damaged { .. }
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
