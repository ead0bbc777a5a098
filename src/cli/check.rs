//! `ocio check`: can every configured agent's OpenCode server be reached? Starts managed servers
//! (and stops them again), asks each server its health, version and OpenCode agents, and says
//! what is wrong where something is.

use std::fmt::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Context, Failure, exit};
use crate::config::{AgentConfig, AgentKind, FleetConfig};
use crate::opencode::client::{ClientOptions, TESTED_VERSIONS};
use crate::opencode::endpoint::Endpoint;

#[derive(Debug, Serialize)]
struct AgentReport {
    name: String,
    /// "opencode", "managed" or "simulated".
    kind: &'static str,
    url: Option<String>,
    ok: bool,
    version: Option<String>,
    /// The version is one ocio was tested against.
    version_tested: Option<bool>,
    /// The OpenCode agents the server offers (`build`, `plan`, ...).
    opencode_agents: Vec<String>,
    /// Time to reach the server (for managed ones, including the start).
    millis: Option<u64>,
    /// Where its sessions will work: "shared" (in ocio's worktrees) or "remote" (a build box:
    /// ocio carries trees there), as configured, or as found for `workspace = "auto"`.
    workspace: Option<&'static str>,
    /// Whether the server sees ocio's files, found out with a probe file.
    #[serde(skip_serializing_if = "Option::is_none")]
    sees_ocio_files: Option<bool>,
    /// The fleet it is a member of, for a fleet's member.
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet: Option<String>,
    /// A managed agent's server that runs already (the engine's, or left running for its
    /// sessions), checked as it is instead of starting another: its pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    running: Option<u32>,
    error: Option<String>,
}

impl AgentReport {
    fn empty() -> Self {
        Self {
            name: String::new(),
            kind: "opencode",
            url: None,
            ok: false,
            version: None,
            version_tested: None,
            opencode_agents: Vec::new(),
            millis: None,
            workspace: None,
            sees_ocio_files: None,
            fleet: None,
            running: None,
            error: None,
        }
    }
}

pub(crate) fn run(context: &Context, names: &[String], json: bool) -> Result<(), Failure> {
    let config = &context.config.config;
    let agents = &config.agents;
    let known = |n: &str| {
        agents.iter().any(|a| a.name.as_str() == n)
            || config.fleets.iter().any(|f| f.name.as_str() == n)
    };
    let unknown: Vec<&String> = names.iter().filter(|n| !known(n)).collect();
    if !unknown.is_empty() {
        return Err(Failure::usage(format!(
            "no agent or fleet named {} in {}\nhint: `ocio check` without names checks every configured agent and fleet",
            unknown
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            context.config.source
        )));
    }
    let wanted = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let chosen: Vec<&AgentConfig> = agents.iter().filter(|a| wanted(a.name.as_str())).collect();
    let fleets: Vec<&FleetConfig> = config
        .fleets
        .iter()
        .filter(|f| wanted(f.name.as_str()))
        .collect();
    let runtime = super::runtime()?;
    let withheld = config.secret_vars();
    let root = crate::paths::worktree_root(&context.paths.db_file);
    let probe_dir = std::path::absolute(&root).unwrap_or(root);
    let records = crate::paths::server_records(&context.paths.db_file);
    // Made once for every check (they run at once), removed with what was made for it.
    let made = make_dirs(&probe_dir);
    let reports: Vec<AgentReport> = runtime.block_on(async {
        let (members, mut failed) = resolve(&fleets).await;
        let checks = chosen
            .iter()
            .copied()
            .chain(members.iter().map(|(_, member)| member))
            .map(|agent| check(agent, &withheld, &probe_dir, &records));
        let mut reports = futures_util::future::join_all(checks).await;
        for (report, (fleet, _)) in reports[chosen.len()..].iter_mut().zip(&members) {
            report.fleet = Some(fleet.clone());
        }
        reports.append(&mut failed);
        reports
    });
    for dir in made {
        let _ = std::fs::remove_dir(dir);
    }
    let none = (chosen.is_empty() && fleets.is_empty()).then(|| none_configured(context));
    print(&reports, json, none)?;
    if reports.iter().all(|r| r.ok) {
        Ok(())
    } else {
        let failed: Vec<&str> = reports
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.name.as_str())
            .collect();
        // What failed is said above each: unreachable, refused, or not as configured.
        Err(Failure {
            code: exit::FAILED,
            message: format!(
                "{} of {} failed: {} (see above)",
                failed.len(),
                reports.len(),
                failed.join(", ")
            ),
        })
    }
}

/// Makes `dir` with the parents it lacks; those made, innermost first, to remove once the probes
/// are done (none when it cannot be made: the probe's write then says why).
fn make_dirs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let missing: Vec<std::path::PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(std::path::Path::to_path_buf)
        .collect();
    match std::fs::create_dir_all(dir) {
        Ok(()) => missing,
        Err(_) => Vec::new(),
    }
}

/// After this long reading a fleet's source, `ocio check` says it is reading it.
const SLOW_SOURCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Each fleet's members, its source read once (with the fleet's name), and a failed report for
/// each fleet whose source cannot be read or lists no server. The sources are read at once; one
/// still reading after [`SLOW_SOURCE`] is said on stderr (a command may take 30 s, and `ocio
/// check` printed nothing meanwhile: hand trial).
async fn resolve(fleets: &[&FleetConfig]) -> (Vec<(String, AgentConfig)>, Vec<AgentReport>) {
    let reads = fleets.iter().map(|fleet| {
        super::said_if_slow(crate::host::fleets::read(fleet), SLOW_SOURCE, || {
            eprintln!(
                "ocio check: reading the members of fleet {} ...",
                fleet.name
            )
        })
    });
    let listed = futures_util::future::join_all(reads).await;
    let mut members = Vec::new();
    let mut failed = Vec::new();
    for (fleet, listed) in fleets.iter().zip(listed) {
        let error = match listed {
            Ok(urls) if urls.is_empty() => "its source lists no server".to_string(),
            Ok(urls) => {
                let name = fleet.name.to_string();
                members.extend(urls.iter().map(|url| (name.clone(), fleet.member(url))));
                continue;
            }
            Err(e) => e.to_string(),
        };
        failed.push(AgentReport {
            name: fleet.name.to_string(),
            kind: "fleet",
            error: Some(error),
            ..AgentReport::empty()
        });
    }
    (members, failed)
}

/// `ocio check --database` (`--db` names the file, for every command): reads a verified copy of the database (every page checksum) and decodes
/// every record of every table. A damaged file is refused with exit 2 and left as it was.
pub(crate) fn database(context: &Context, json: bool) -> Result<(), Failure> {
    let path = &context.paths.db_file;
    if !path.exists() {
        return Err(Failure::usage(format!(
            "no database at {}\n  hint: it is made when an engine first runs (`ocio --headless`, `ocio`, `ocio run`)",
            path.display()
        )));
    }
    let store = crate::store::Store::open_read_only(path)?;
    let counts = store.read(crate::store::query::verify_records)?;
    let out = if json {
        let tables: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(name, n)| (name.to_string(), (*n).into()))
            .collect();
        serde_json::json!({"database": path.display().to_string(), "ok": true, "records": tables})
            .to_string()
    } else {
        let mut text = format!(
            "database {}: every page and record is sound",
            path.display()
        );
        for (name, n) in &counts {
            let _ = write!(text, "\n  {name:<22} {n}");
        }
        text
    };
    super::output::print_text(&out)
}

async fn check(
    agent: &AgentConfig,
    withheld: &[String],
    probe_dir: &std::path::Path,
    records: &std::path::Path,
) -> AgentReport {
    let managed = agent.managed == Some(true);
    let mut report = AgentReport {
        name: agent.name.to_string(),
        kind: match (agent.kind, managed) {
            (AgentKind::Simulated, _) => "simulated",
            (AgentKind::Opencode, true) => "managed",
            (AgentKind::Opencode, false) => "opencode",
        },
        url: agent.url.clone(),
        ..AgentReport::empty()
    };
    if agent.kind == AgentKind::Simulated {
        report.ok = true;
        return report;
    }
    let started = Instant::now();
    let options = ClientOptions {
        retries: 0,
        call_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    let endpoint = match Endpoint::in_use(agent, options.clone(), records) {
        Some((endpoint, pid)) => {
            report.running = Some(pid);
            endpoint
        }
        None => {
            match Endpoint::connect(agent, options, Duration::from_secs(60), withheld, None).await {
                Ok(endpoint) => endpoint,
                Err(e) => {
                    report.error = Some(e.to_string());
                    return report;
                }
            }
        }
    };
    report.url = Some(endpoint.client.base_url().to_string());
    match endpoint.client.health().await {
        Ok(health) => {
            report.millis = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            report.version_tested = Some(
                TESTED_VERSIONS
                    .iter()
                    .any(|v| health.version.starts_with(v)),
            );
            report.version = Some(health.version);
            let dir = std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "/".into());
            match endpoint.client.agents(&dir).await {
                Ok(agents) => {
                    report.opencode_agents = agents.into_iter().map(|a| a.name).collect();
                    report.ok = health.healthy;
                }
                Err(e) => report.error = Some(e.to_string()),
            }
            see_workspace(agent, &endpoint.client, probe_dir, &mut report).await;
            if !health.healthy {
                report
                    .error
                    .get_or_insert_with(|| "the server reports itself unhealthy".into());
            }
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    endpoint.shutdown().await;
    report
}

/// Whether the server sees ocio's files: a probe file with a random token written where the
/// engine makes task worktrees (`probe_dir`, beside the database) and read back through the
/// server's API, then removed. An agent configured as shared whose server does not see them is
/// a failure, before any task runs.
async fn see_workspace(
    agent: &AgentConfig,
    client: &crate::opencode::client::Client,
    probe_dir: &std::path::Path,
    report: &mut AgentReport,
) {
    let token = format!(
        "ocio-probe {} {}",
        std::process::id(),
        ulid::Ulid::generate()
    );
    let name = format!(".ocio-probe-{}", ulid::Ulid::generate());
    let file = probe_dir.join(&name);
    let written = std::fs::write(&file, &token);
    if let Err(e) = written {
        report.error = Some(format!(
            "cannot write a probe file in {}: {e}",
            probe_dir.display()
        ));
        report.ok = false;
        return;
    }
    let dir = probe_dir.to_string_lossy();
    let read = client.file_bytes(&dir, &name).await;
    let _ = std::fs::remove_file(&file);
    let sees = match read {
        Ok(bytes) => bytes == token.as_bytes(),
        // The server answered that it cannot read it (OpenCode answers 500 for a directory
        // it does not have).
        Err(crate::opencode::client::ClientError::Status { status, .. })
            if status != 401 && status != 403 =>
        {
            false
        }
        // Not reached, or not let in: nothing is known about its disk.
        Err(_) => return,
    };
    report.sees_ocio_files = Some(sees);
    report.workspace = Some(match (agent.workspace_mode(), sees) {
        (crate::config::WorkspaceMode::Shared, _) => "shared",
        (crate::config::WorkspaceMode::Remote, _) => "remote",
        (crate::config::WorkspaceMode::Auto, true) => "shared",
        (crate::config::WorkspaceMode::Auto, false) => "remote",
    });
    if !sees && agent.workspace_mode() == crate::config::WorkspaceMode::Shared {
        report.ok = false;
        report.error = Some(format!(
            "the server does not see ocio's files (a probe written in {} is not there for it), so its sessions cannot work in ocio's worktrees\nhint: for a build box set workspace = \"remote\" for agent `{}` (or leave `workspace` out)",
            probe_dir.display(),
            agent.name
        ));
    }
}

/// What to do when no agent is configured: where the config file is (or would be), and an
/// entry to start from.
fn none_configured(context: &Context) -> String {
    let place = match &context.config.source {
        crate::config::ConfigSource::File(path) => format!(
            "No agents configured in {}. Add an [[agents]] or [[fleets]] entry there",
            path.display()
        ),
        crate::config::ConfigSource::Defaults => format!(
            "No agents configured: there is no config file at {}. Make one with an [[agents]] or [[fleets]] entry",
            context.paths.config_file.display()
        ),
    };
    format!(
        "{place} (README: Config), for a local OpenCode server:\n\n[[agents]]\nname = \"local\"\nurl = \"http://127.0.0.1:4096\""
    )
}

fn print(reports: &[AgentReport], json: bool, none: Option<String>) -> Result<(), Failure> {
    if json {
        return super::output::print_json(&reports);
    }
    if let Some(none) = none {
        return super::output::print_text(&none);
    }
    let mut out = String::new();
    // Fleet members are named `box-10.42.0.7-4096`: the column is as wide as the widest.
    let width = reports
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    for r in reports {
        let state = if r.ok { "ok  " } else { "FAIL" };
        let _ = write!(out, "{state} {:<width$} {:<9}", r.name, r.kind);
        if let Some(fleet) = &r.fleet {
            let _ = write!(out, " fleet {fleet}");
        }
        if let Some(url) = &r.url {
            let _ = write!(out, " {url}");
        }
        if let Some(pid) = r.running {
            let _ = write!(out, " (running, pid {pid})");
        }
        if let Some(version) = &r.version {
            let tested = if r.version_tested == Some(true) {
                ""
            } else {
                " (untested version)"
            };
            let _ = write!(out, " opencode {version}{tested}");
        }
        if let Some(ms) = r.millis {
            let _ = write!(out, " in {ms} ms");
        }
        if let Some(workspace) = r.workspace {
            let _ = write!(out, " workspace {workspace}");
            match (workspace, r.sees_ocio_files) {
                ("remote", Some(true)) => {
                    let _ = write!(
                        out,
                        " (it also sees ocio's files: \"shared\" would carry nothing)"
                    );
                }
                ("shared", Some(false)) => {
                    let _ = write!(out, " (it does not see ocio's files)");
                }
                _ => {}
            }
        }
        if !r.opencode_agents.is_empty() {
            let _ = write!(out, " agents: {}", r.opencode_agents.join(", "));
        }
        let _ = writeln!(out);
        if let Some(error) = &r.error {
            for line in error.lines() {
                let _ = writeln!(out, "     {line}");
            }
        }
    }
    super::output::print_bytes(out.as_bytes())
}
