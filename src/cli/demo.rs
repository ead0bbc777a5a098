//! `ocio demo`: the control room running a demo plan on simulated agents, in a scratch git
//! repository with its own scratch database, so a newcomer sees every pane move within seconds
//! without touching real state. Everything on screen is labelled simulated.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use jiff::SignedDuration;

use super::{Context, Failure, exit, room};
use crate::config::SimulationConfig;
use crate::domain::{Agent, AgentName, Backend};
use crate::engine::approval::ApprovalPolicy;
use crate::engine::{AgentSpec, EngineOptions, Simulated, agents::Servers};
use crate::plan::PlanFile;
use crate::store::{Store, StoreOptions};

/// The demo plan: a feature fanned out over areas, a review joining them, a release last.
pub const PLAN: &str = r#"
name = "demo-feature"
repo = "."

[[tasks]]
id = "analyze"
prompt = "Read the code and plan pagination for GET /users."
capabilities = ["plan"]

[[tasks]]
id = "api"
needs = ["analyze"]
prompt = "Implement the API changes: {{tasks.analyze.summary}}"
capabilities = ["code"]
retries = 2

[[tasks]]
id = "storage"
needs = ["analyze"]
prompt = "Add cursor queries to the storage layer."
capabilities = ["code"]
retries = 2

[[tasks]]
id = "client"
needs = ["analyze"]
prompt = "Update the typed client."
capabilities = ["code"]
retries = 2

[[tasks]]
id = "docs"
needs = ["analyze"]
prompt = "Document pagination in the API guide."
retries = 1

[[tasks]]
id = "unit-tests"
needs = ["api", "storage"]
prompt = "Write unit tests for the cursor codec and queries."
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

fn sim(
    name: &str,
    caps: &[&str],
    max: u32,
    secs: i64,
    failure_rate: f64,
    ask_rate: f64,
    seed: u64,
) -> Result<AgentSpec, Failure> {
    let name = AgentName::new(name).map_err(Failure::usage)?;
    let mut agent = Agent::new(name, Backend::Simulated, max);
    agent.capabilities = caps.iter().map(|c| c.to_string()).collect();
    let config = SimulationConfig {
        duration: SignedDuration::from_secs(secs),
        failure_rate,
        seed,
        ask_rate,
    };
    Ok(AgentSpec {
        agent,
        runner: Arc::new(Simulated { config }),
    })
}

/// The demo's agents: a planner, two coders, a tester (which asks for permissions now and then).
pub fn agents() -> Result<Vec<AgentSpec>, Failure> {
    Ok(vec![
        sim("sim-planner", &["plan"], 2, 3, 0.0, 0.0, 1)?,
        sim("sim-coder-1", &["code"], 2, 5, 0.25, 0.0, 2)?,
        sim("sim-coder-2", &["code"], 2, 4, 0.25, 0.3, 3)?,
        sim("sim-tester", &["test"], 3, 4, 0.2, 0.5, 4)?,
    ])
}

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

pub fn run(context: &Context) -> Result<(), Failure> {
    let dir = scratch_repo()?;
    let plan_path = dir.join("demo-plan.toml");
    std::fs::write(&plan_path, PLAN).map_err(|e| Failure {
        code: exit::FAILED,
        message: format!("demo: cannot write {}: {e}", plan_path.display()),
    })?;
    let plan = PlanFile::load(&plan_path).map_err(|e| Failure {
        code: exit::FAILED,
        message: format!("demo plan: {e}"),
    })?;
    let mut setup = room::setup(context, dir.clone())?;
    setup.onboarding = Vec::new();
    let runtime = super::runtime()?;
    let store = Store::open(&dir.join("demo.redb"), StoreOptions::default())?;
    let options = EngineOptions {
        max_parallel: 6,
        approvals: ApprovalPolicy {
            inside: Some(crate::engine::approval::Decision::Once),
            outside: None,
        },
        ..EngineOptions::default()
    };
    let result = room::host(
        &runtime,
        store,
        agents()?,
        options,
        setup,
        Servers::default(),
        Some(plan),
    );
    // The terminal may be gone (a closed window): never panic over a note.
    let _ = writeln!(
        std::io::stderr(),
        "demo: the scratch repository and database are in {} (safe to delete)",
        dir.display()
    );
    result
}
