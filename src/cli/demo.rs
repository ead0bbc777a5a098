//! `ocio demo`: the control room running a demo plan on simulated agents, in a scratch git
//! repository with its own scratch database, so a newcomer sees every pane move within seconds
//! without touching real state. Everything on screen is labelled simulated.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Context, Failure, exit, room};
use crate::host::HostOptions;
use crate::plan::PlanFile;

/// The demo plan: a feature fanned out over areas, a review joining them, a release last.
pub(crate) const PLAN: &str = r#"
name = "demo-feature"
repo = "."

[[tasks]]
id = "analyze"
prompt = "Read the code and plan pagination for GET /users."
capabilities = ["plan"]

[[tasks]]
id = "api"
needs = ["analyze"]
prompt = '''
Implement the API changes: {{tasks.analyze.summary}}
SIM-WRITE src/api/users.rs pub fn list(cursor: Option<Cursor>, limit: u32) -> Page<User> { todo!() }\n
'''
capabilities = ["code"]
retries = 2

[[tasks]]
id = "storage"
needs = ["analyze"]
prompt = '''
Add cursor queries to the storage layer.
SIM-WRITE src/storage/cursor.rs pub struct Cursor { pub created_at: i64, pub id: u64 }\n
'''
capabilities = ["code"]
retries = 2

[[tasks]]
id = "client"
needs = ["analyze"]
prompt = '''
Update the typed client.
SIM-WRITE client/users.ts export async function* listUsers(limit = 50) { /* follows next_cursor */ }\n
'''
capabilities = ["code"]
retries = 2

[[tasks]]
id = "docs"
needs = ["analyze"]
prompt = '''
Document pagination in the API guide.
SIM-WRITE docs/pagination.md # Pagination\n\nPass `cursor` from `next_cursor` to get the next page.\n
'''
retries = 1

[[tasks]]
id = "unit-tests"
needs = ["api", "storage"]
prompt = '''
Write unit tests for the cursor codec and queries.
SIM-WRITE tests/cursor.rs #[test] fn round_trip() {}\n
'''
capabilities = ["test"]
retries = 2

[[tasks]]
id = "e2e-tests"
needs = ["api", "client"]
prompt = "Write end-to-end tests paging through 10,000 users."
capabilities = ["test"]
retries = 2

[[tasks]]
id = "benchmark"
needs = ["storage"]
prompt = "Benchmark page queries at 1M rows."
capabilities = ["test"]
retries = 1

[[tasks]]
id = "review"
needs = ["unit-tests", "e2e-tests", "benchmark", "docs"]
prompt = "Review the whole change."
capabilities = ["plan"]
retries = 1

[[tasks]]
id = "changelog"
needs = ["review"]
prompt = "Write the changelog entry."
retries = 1
"#;

/// The demo's engine and agents: a planner, two coders, a tester. Some runs fail (and retry),
/// and some ask for a permission outside their directory, which waits for the operator.
pub(crate) const CONFIG: &str = r#"
[engine]
max_parallel = 6
approve_inside = "once"
approve_outside = "ask"

[[agents]]
name = "sim-planner"
kind = "simulated"
capabilities = ["plan"]
max_concurrent = 2
duration = "3s"
seed = 1

[[agents]]
name = "sim-coder-1"
kind = "simulated"
capabilities = ["code"]
max_concurrent = 2
duration = "5s"
failure_rate = 0.25
seed = 2

[[agents]]
name = "sim-coder-2"
kind = "simulated"
capabilities = ["code"]
max_concurrent = 2
duration = "4s"
failure_rate = 0.25
ask_rate = 0.3
seed = 3

[[agents]]
name = "sim-tester"
kind = "simulated"
capabilities = ["test"]
max_concurrent = 3
duration = "4s"
failure_rate = 0.2
ask_rate = 0.5
seed = 4
"#;

/// The plan's file in the scratch directory: it marks a directory as a demo's, so a `--db`
/// beside it is the demo's own database and not the user's.
const PLAN_FILE: &str = "demo-plan.toml";

/// Where the demo runs: its scratch repository and its database (a stopped demo's, found
/// again, holds its plan: the engine resumes it instead of a second one).
struct Scratch {
    dir: PathBuf,
    db: PathBuf,
}

/// A new scratch directory under the system's temp dir, or with `--db PATH` the directory
/// holding PATH: made when new or empty, found again when it is a demo's (so a stopped demo
/// resumes), refused otherwise (the demo never runs on the user's own state).
fn scratch(db: Option<&Path>) -> Result<Scratch, Failure> {
    let Some(db) = db else {
        let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
        let dir = std::env::temp_dir().join(format!("ocio-demo-{stamp}-{}", std::process::id()));
        scratch_repo(&dir)?;
        let db = dir.join("demo.redb");
        return Ok(Scratch { dir, db });
    };
    let dir = match db.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if dir.join(PLAN_FILE).is_file() {
        return Ok(Scratch {
            dir,
            db: db.to_path_buf(),
        });
    }
    let empty = std::fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_none());
    if db.exists() || !empty {
        return Err(Failure::usage(format!(
            "demo: {} is not a demo's database (no {PLAN_FILE} beside it), and the demo never runs on your own state\nhint: give --db a path in a new or empty directory (e.g. /tmp/my-demo/demo.redb), or leave --db out for a scratch one",
            db.display()
        )));
    }
    scratch_repo(&dir)?;
    Ok(Scratch {
        dir,
        db: db.to_path_buf(),
    })
}

/// A scratch git repository with one commit in `dir`.
fn scratch_repo(dir: &Path) -> Result<(), Failure> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Failure {
        code: exit::FAILED,
        message: format!("demo: cannot {what} in {}: {e}", dir.display()),
    };
    std::fs::create_dir_all(dir).map_err(|e| failed("create the scratch directory", &e))?;
    std::fs::write(
        dir.join("README.md"),
        "# demo\n\nA scratch repository for `ocio demo`.\n",
    )
    .map_err(|e| failed("write README.md", &e))?;
    // Git is nice to have for the demo, not required: simulated agents never touch files.
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(dir).output();
    let ok = git(&["init", "-q"]).is_ok_and(|o| o.status.success())
        && git(&["add", "."]).is_ok_and(|o| o.status.success())
        && git(&[
            "-c",
            "user.name=ocio",
            "-c",
            "user.email=ocio@localhost",
            "commit",
            "-qm",
            "demo",
        ])
        .is_ok_and(|o| o.status.success());
    if !ok {
        tracing::warn!(dir = %dir.display(), "demo: git is missing or failed; the scratch directory is not a repository");
    }
    Ok(())
}

/// What becomes of the scratch directory once the demo has stopped, as a note for the
/// operator: a demo without `--db` that was `quit` cannot be resumed (nothing names its
/// database), so its repository and database go; with `--db` they are `kept`, and after a
/// signal or a failure they stay too (the signal's message says how to resume).
fn leave(dir: &Path, db: &Path, kept: bool, quit: bool) -> String {
    if kept {
        return format!(
            "demo: the scratch repository and database are kept in {}: `ocio demo --db {}` resumes the demo",
            dir.display(),
            db.display()
        );
    }
    if !quit {
        return format!(
            "demo: the scratch repository and database are in {} (safe to delete)",
            dir.display()
        );
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => format!(
            "demo: removed its scratch repository and database ({}); `ocio demo --db PATH` keeps them",
            dir.display()
        ),
        Err(e) => format!(
            "demo: could not remove its scratch directory {}: {e} (safe to delete)",
            dir.display()
        ),
    }
}

/// The demo is the control room: without a terminal (or asked for `--headless`) it says so
/// before it makes anything, as plain `ocio` does, rather than failing on the missing tty.
fn needs_terminal(headless: bool) -> Result<(), Failure> {
    if headless {
        return Err(Failure::usage(
            "the demo is the control room and needs a terminal: --headless does not apply to it; to run a plan without one, use `ocio run PLAN` (with simulated agents in the config)",
        ));
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "the demo is the control room and needs a terminal; to run a plan without one, use `ocio run PLAN` (with simulated agents in the config)",
        ));
    }
    Ok(())
}

/// `ocio demo`; `db` is a `--db` given on the command line (never `OCIO_DB`, which names the
/// user's own database).
pub(crate) fn run(context: &Context, headless: bool, db: Option<&Path>) -> Result<(), Failure> {
    needs_terminal(headless)?;
    let kept = db.is_some();
    let Scratch { dir, db } = scratch(db)?;
    let failed = |what: String| Failure {
        code: exit::FAILED,
        message: format!("demo: {what}"),
    };
    let plan_path = dir.join(PLAN_FILE);
    std::fs::write(&plan_path, PLAN)
        .map_err(|e| failed(format!("cannot write {}: {e}", plan_path.display())))?;
    let plan = PlanFile::load(&plan_path).map_err(|e| failed(format!("the demo plan: {e}")))?;
    let config = crate::config::parse(CONFIG, &dir.join("demo-config.toml"))
        .map_err(|e| failed(format!("the demo config: {e}")))?;
    // Its own database beside the scratch repository: the user's state is never touched, and
    // another terminal can attach with `ocio attach --db <dir>/demo.redb`.
    let mut paths = context.paths.clone();
    paths.db_file = db.clone();
    tracing::info!(db = %paths.db_file.display(), "demo: a scratch database");
    let mut setup = room::setup(context, dir.clone())?;
    setup.onboarding = Vec::new();
    let options = HostOptions {
        listen: true,
        metrics: None,
    };
    // Submitted unless the database holds it already (a stopped demo's: the engine takes it
    // up where it stopped), whether or not the database existed: a demo stopped before it
    // submitted its plan left one without it.
    let result = room::host(&paths, &config, options, setup, Some(plan), |_| None);
    let note = leave(&dir, &db, kept, result.is_ok());
    // The terminal may be gone (a closed window): never panic over a note.
    let _ = writeln!(std::io::stderr(), "{note}");
    // Plain `ocio` would not resume the demo (it opens the user's database): say what does.
    result.map_err(|failure| match failure.code {
        exit::INTERRUPTED => Failure {
            code: exit::INTERRUPTED,
            message: format!(
                "stopped by a signal; state is saved: `ocio demo --db {}` resumes the demo",
                db.display()
            ),
        },
        _ => failure,
    })
}
