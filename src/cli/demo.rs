//! `ocio demo`: the control room running a demo plan on simulated agents, in a scratch git
//! repository with its own scratch database, so a newcomer sees every pane move within seconds
//! without touching real state. Everything on screen is labelled simulated.

use std::io::Write;
use std::path::PathBuf;
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

/// A scratch git repository with one commit, under the system's temp dir.
fn scratch_repo() -> Result<PathBuf, Failure> {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
    let dir = std::env::temp_dir().join(format!("ocio-demo-{stamp}-{}", std::process::id()));
    let failed = |what: &str, e: &dyn std::fmt::Display| Failure {
        code: exit::FAILED,
        message: format!("demo: cannot {what} in {}: {e}", dir.display()),
    };
    std::fs::create_dir_all(&dir).map_err(|e| failed("create the scratch directory", &e))?;
    std::fs::write(
        dir.join("README.md"),
        "# demo\n\nA scratch repository for `ocio demo`.\n",
    )
    .map_err(|e| failed("write README.md", &e))?;
    // Git is nice to have for the demo, not required: simulated agents never touch files.
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(&dir).output();
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
    Ok(dir)
}

pub(crate) fn run(context: &Context) -> Result<(), Failure> {
    let dir = scratch_repo()?;
    let failed = |what: String| Failure {
        code: exit::FAILED,
        message: format!("demo: {what}"),
    };
    let plan_path = dir.join("demo-plan.toml");
    std::fs::write(&plan_path, PLAN)
        .map_err(|e| failed(format!("cannot write {}: {e}", plan_path.display())))?;
    let plan = PlanFile::load(&plan_path).map_err(|e| failed(format!("the demo plan: {e}")))?;
    let config = crate::config::parse(CONFIG, &dir.join("demo-config.toml"))
        .map_err(|e| failed(format!("the demo config: {e}")))?;
    // Its own database beside the scratch repository: the user's state is never touched, and
    // another terminal can attach with `ocio attach --db <dir>/demo.redb`.
    let mut paths = context.paths.clone();
    paths.db_file = dir.join("demo.redb");
    tracing::info!(db = %paths.db_file.display(), "demo: a scratch database");
    let mut setup = room::setup(context, dir.clone())?;
    setup.onboarding = Vec::new();
    let options = HostOptions {
        listen: true,
        metrics: None,
    };
    let result = room::host(&paths, &config, options, setup, Some(plan), |_| None);
    // The terminal may be gone (a closed window): never panic over a note.
    let _ = writeln!(
        std::io::stderr(),
        "demo: the scratch repository and database are in {} (safe to delete)",
        dir.display()
    );
    result
}
