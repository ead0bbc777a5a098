//! `ocio status`: counts of sessions, tasks and agents by state, read from the database
//! (read-only alongside a running ocio), and what the running engine says of itself when one
//! answers on the control socket; as text or one JSON object.

use std::collections::BTreeMap;

use serde::Serialize;

use super::database;
use super::{Context, Failure};
use crate::config::ConfigSource;
use crate::domain::{AgentStatus, Lifecycle, SessionStatus, TaskStatus};
use crate::engine::EngineApi;
use crate::store::{StoreError, query};

#[derive(Debug, Serialize)]
struct Report {
    /// "engine" when an engine answered on the control socket, else "database".
    source: &'static str,
    /// The running engine, when one answers.
    engine: Option<EngineReport>,
    database: DatabaseReport,
    config: ConfigReport,
    sessions: Counts,
    tasks: Counts,
    agents: Counts,
    /// Entries in the control log.
    events: u64,
    /// Managed servers ocio started that run now: the engine's, or (no engine running) left
    /// running for their sessions until their linger time ends or the next start adopts them.
    servers: Vec<ServerReport>,
}

#[derive(Debug, Serialize)]
struct ServerReport {
    agent: String,
    pid: u32,
    url: String,
    /// When ocio went without stopping it (null while an engine runs it).
    left_at: Option<jiff::Timestamp>,
    /// When its watchdog stops it, unless an ocio adopts it first.
    stops_at: Option<jiff::Timestamp>,
}

impl ServerReport {
    fn of(agent: String, server: &crate::opencode::managed::Leftover, engine_runs: bool) -> Self {
        // Left running only while no engine runs it.
        let left = server.left().filter(|_| !engine_runs);
        let at = |time: std::time::SystemTime| jiff::Timestamp::try_from(time).ok();
        Self {
            agent,
            pid: server.server_pid(),
            url: server.url().to_string(),
            left_at: left.and_then(|(since, _)| at(since)),
            stops_at: left.and_then(|(_, until)| at(until)),
        }
    }

    /// Whose it is, and when it stops if it was left running.
    fn whose(&self, engine_runs: bool) -> String {
        if engine_runs {
            return "the engine's".into();
        }
        let now = jiff::Timestamp::now();
        let ago = |t: jiff::Timestamp| {
            let secs = now.as_second().saturating_sub(t.as_second()).max(0);
            crate::text::duration(std::time::Duration::from_secs(secs.unsigned_abs()))
        };
        match (self.left_at, self.stops_at) {
            (Some(left), Some(stops)) => {
                let left_for = stops.as_second().saturating_sub(now.as_second()).max(0);
                format!(
                    "left running for its sessions {} ago: the next start adopts it, else it stops in {}",
                    ago(left),
                    crate::text::duration(std::time::Duration::from_secs(left_for.unsigned_abs()))
                )
            }
            _ => "left running for its sessions: the next start adopts it, else it stops when its linger ends".into(),
        }
    }
}

#[derive(Debug, Serialize)]
struct DatabaseReport {
    path: String,
    exists: bool,
    /// How the database was read: "read-only" (a verified private copy; the file is never
    /// written) or "none" (no database yet).
    access: &'static str,
    schema_version: Option<u64>,
    /// The previous process was killed or crashed; this open recovered the database.
    recovered: bool,
}

#[derive(Debug, Serialize)]
struct EngineReport {
    pid: u32,
    version: String,
    socket: String,
    started_at: jiff::Timestamp,
    metrics: Option<String>,
    paused: bool,
    /// Sessions it runs now.
    running: usize,
    /// Permission requests waiting for the operator: `ocio approve ID`.
    approvals: Vec<String>,
    /// Spend against every budget, and the plans paused over budget (`ocio budget`).
    budgets: crate::engine::view::BudgetsView,
}

#[derive(Debug, Serialize)]
struct ConfigReport {
    path: String,
    /// "file" or "defaults" (no config file).
    source: &'static str,
    agents: usize,
    /// `[[fleets]]` entries (their members are counted with the agents once an engine has
    /// taken them in).
    fleets: usize,
}

/// Every state of one kind, with zero for the empty ones, so scripts can rely on the keys.
#[derive(Debug, Default, Serialize)]
struct Counts {
    total: u64,
    by_state: BTreeMap<&'static str, u64>,
}

impl Counts {
    fn of<S: Lifecycle + Ord>(found: &BTreeMap<S, u64>) -> Self {
        let by_state: BTreeMap<&'static str, u64> = S::ALL
            .iter()
            .map(|&s| (s.name(), found.get(&s).copied().unwrap_or(0)))
            .collect();
        Counts {
            total: by_state.values().sum(),
            by_state,
        }
    }

    fn text(&self) -> String {
        let nonzero: Vec<String> = self
            .by_state
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        if nonzero.is_empty() {
            self.total.to_string()
        } else {
            format!("{} ({})", self.total, nonzero.join(", "))
        }
    }
}

#[derive(Default)]
struct Snapshot {
    sessions: BTreeMap<SessionStatus, u64>,
    tasks: BTreeMap<TaskStatus, u64>,
    agents: BTreeMap<AgentStatus, u64>,
    events: u64,
    schema_version: Option<u64>,
}

fn snapshot(txn: &redb::ReadTransaction) -> Result<Snapshot, StoreError> {
    Ok(Snapshot {
        sessions: query::session_counts(txn)?,
        tasks: query::task_counts(txn)?,
        agents: query::agent_counts(txn)?,
        events: query::last_event_seq(txn)?,
        schema_version: query::schema_version(txn)?,
    })
}

pub(crate) fn run(context: &Context, json: bool) -> Result<(), Failure> {
    let engine = super::runtime()?.block_on(async {
        let Some(client) = database::engine(context).await? else {
            return Ok::<_, Failure>(None);
        };
        let snapshot = client.snapshot().await?;
        let info = client.engine();
        // The engine's agents as they are now (the database holds what it last wrote).
        let mut agents = BTreeMap::new();
        for agent in &snapshot.agents {
            *agents.entry(agent.status).or_insert(0) += 1;
        }
        let report = EngineReport {
            pid: info.pid,
            version: info.version.clone(),
            socket: client.socket().display().to_string(),
            started_at: info.started_at,
            metrics: info.metrics.clone(),
            paused: snapshot.paused,
            running: snapshot.running,
            approvals: snapshot
                .approvals
                .iter()
                .map(|a| a.ask.id.clone())
                .collect(),
            budgets: snapshot.budgets.clone(),
        };
        Ok(Some((report, agents)))
    })?;
    let (engine, live_agents) = engine.unzip();
    let db_path = &context.paths.db_file;
    let exists = db_path.exists();
    // No database yet: every count is zero, and none is created.
    let (snapshot, access, recovered) = match database::read(db_path, snapshot)? {
        Some(read) => (read.value, read.access.name(), read.recovered),
        None => (Snapshot::default(), "none", false),
    };

    let config = &context.config;
    let engine_runs = engine.is_some();
    let report = Report {
        source: if engine.is_some() {
            "engine"
        } else {
            "database"
        },
        engine,
        database: DatabaseReport {
            path: db_path.display().to_string(),
            exists,
            access,
            schema_version: snapshot.schema_version,
            recovered,
        },
        config: ConfigReport {
            path: context.paths.config_file.display().to_string(),
            source: match config.source {
                ConfigSource::File(_) => "file",
                ConfigSource::Defaults => "defaults",
            },
            agents: config.config.agents.len(),
            fleets: config.config.fleets.len(),
        },
        sessions: Counts::of(&snapshot.sessions),
        tasks: Counts::of(&snapshot.tasks),
        agents: Counts::of(live_agents.as_ref().unwrap_or(&snapshot.agents)),
        events: snapshot.events,
        servers: crate::opencode::managed::Leftover::running_in(&crate::paths::server_records(
            db_path,
        ))
        .into_iter()
        .map(|(agent, left)| ServerReport::of(agent, &left, engine_runs))
        .collect(),
    };
    let out = if json {
        serde_json::to_string_pretty(&report).unwrap_or_default()
    } else {
        text(&report)
    };
    super::output::print_text(&out)
}

fn text(report: &Report) -> String {
    let db = &report.database;
    let db_line = match db.access {
        "none" => format!("{} (none yet; created on first use)", db.path),
        access => {
            let schema = db
                .schema_version
                .map_or_else(String::new, |v| format!(", schema {v}"));
            let recovered = if db.recovered {
                ", recovered after an unclean shutdown"
            } else {
                ""
            };
            format!("{} ({access}{schema}{recovered})", db.path)
        }
    };
    let config_line = match report.config.source {
        "file" if report.config.fleets > 0 => format!(
            "{} ({} and {} configured)",
            report.config.path,
            crate::text::count(report.config.agents, "agent"),
            crate::text::count(report.config.fleets, "fleet")
        ),
        "file" => format!(
            "{} ({} configured)",
            report.config.path,
            crate::text::count(report.config.agents, "agent")
        ),
        _ => format!(
            "{} (not found; built-in defaults, no agents configured)",
            report.config.path
        ),
    };
    let engine_line = match &report.engine {
        Some(e) => {
            format!(
                "running, pid {}, socket {}{}{}, {} running or waiting{}",
                e.pid,
                e.socket,
                e.metrics
                    .as_ref()
                    .map_or(String::new(), |m| format!(", metrics http://{m}/metrics")),
                if e.paused { ", dispatching paused" } else { "" },
                // The engine's runs include sessions waiting for approval or retrying.
                crate::text::count(e.running, "session"),
                if e.approvals.is_empty() {
                    String::new()
                } else {
                    format!(", waiting for approval: {}", e.approvals.join(" "))
                },
            ) + &budget_text(&e.budgets)
        }
        None => "not running".to_string(),
    };
    let mut text = format!(
        "ocio {}\nengine       {engine_line}\ndatabase     {db_line}\nconfig       {config_line}\nsessions     {}\ntasks        {}\nagents       {}\ncontrol log  {} events",
        env!("CARGO_PKG_VERSION"),
        report.sessions.text(),
        report.tasks.text(),
        report.agents.text(),
        report.events,
    );
    for server in &report.servers {
        text.push_str(&format!(
            "\nserver       {} pid {} {} ({})",
            server.agent,
            server.pid,
            server.url,
            server.whose(report.engine.is_some())
        ));
    }
    text
}

/// Today's spend against the daily budget, and the plans paused over budget.
fn budget_text(budgets: &crate::engine::view::BudgetsView) -> String {
    let mut text = format!(
        ", today ({} UTC) {}",
        budgets.day,
        super::budget::standing(budgets.daily, &budgets.daily_spent)
    );
    let held: Vec<String> = budgets.held().map(|p| p.name.clone()).collect();
    if !held.is_empty() {
        text.push_str(&format!(
            ", paused over budget: {} (ocio budget)",
            held.join(" ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn report(running: usize, approvals: &[&str]) -> Report {
        Report {
            source: "engine",
            engine: Some(EngineReport {
                pid: 7,
                version: "0.1.0".into(),
                socket: "/run/ocio.sock".into(),
                started_at: jiff::Timestamp::UNIX_EPOCH,
                metrics: None,
                paused: false,
                running,
                approvals: approvals.iter().map(|a| a.to_string()).collect(),
                budgets: Default::default(),
            }),
            database: DatabaseReport {
                path: "/db".into(),
                exists: false,
                access: "none",
                schema_version: None,
                recovered: false,
            },
            config: ConfigReport {
                path: "/ocio.toml".into(),
                source: "defaults",
                agents: 0,
                fleets: 0,
            },
            sessions: Counts::default(),
            tasks: Counts::default(),
            agents: Counts::default(),
            events: 0,
            servers: Vec::new(),
        }
    }

    /// One session is one session, and the engine's count takes in the sessions waiting for
    /// approval: it said `1 sessions running` of a session that waited for approval.
    #[test]
    fn the_engine_line_counts_sessions_in_words_that_are_true() {
        let one = text(&report(1, &["per_7f3a"]));
        assert!(
            one.contains(", 1 session running or waiting, waiting for approval: per_7f3a"),
            "{one}"
        );
        let two = text(&report(2, &[]));
        assert!(two.contains(", 2 sessions running or waiting"), "{two}");
    }

    /// `ocio status` said `(1 agents and 1 fleets configured)` of a config with one of each.
    #[test]
    fn the_config_line_counts_agents_and_fleets_in_words_that_are_true() {
        let mut one = report(0, &[]);
        one.config.source = "file";
        (one.config.agents, one.config.fleets) = (1, 1);
        let said = text(&one);
        assert!(said.contains("(1 agent and 1 fleet configured)"), "{said}");
        one.config.fleets = 0;
        let said = text(&one);
        assert!(said.contains("(1 agent configured)"), "{said}");
        (one.config.agents, one.config.fleets) = (2, 3);
        let said = text(&one);
        assert!(
            said.contains("(2 agents and 3 fleets configured)"),
            "{said}"
        );
    }
}
