//! The command line's commands: what each takes, as clap reads it (`ocio --help` shows these
//! doc comments). `cli::run` carries each out.

use std::path::PathBuf;

use clap::Subcommand;

use super::Flags;

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
        #[arg(long, default_value_t = super::search::DEFAULT_LIMIT)]
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
