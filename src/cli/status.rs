//! `ocio status`: counts of sessions, tasks and agents by state, read from the database
//! (read-only alongside a running ocio), as text or one JSON object.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::{Context, Failure, exit};
use crate::config::ConfigSource;
use crate::domain::{AgentStatus, Lifecycle, SessionStatus, TaskStatus};
use crate::store::{Store, StoreError, StoreOptions, query};

#[derive(Debug, Serialize)]
struct Report {
    database: DatabaseReport,
    config: ConfigReport,
    sessions: Counts,
    tasks: Counts,
    agents: Counts,
    /// Entries in the control log.
    events: u64,
}

#[derive(Debug, Serialize)]
struct DatabaseReport {
    path: String,
    exists: bool,
    /// How the database was read: "read-write", "read-only" (another ocio has it open) or
    /// "none" (no database yet).
    access: &'static str,
    schema_version: Option<u64>,
    /// The previous process was killed or crashed; this open recovered the database.
    recovered: bool,
}

#[derive(Debug, Serialize)]
struct ConfigReport {
    path: String,
    /// "file" or "defaults" (no config file).
    source: &'static str,
    agents: usize,
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

pub fn run(context: &Context, json: bool) -> Result<(), Failure> {
    let db_path = &context.paths.db_file;
    let exists = db_path.exists();
    // No database yet: every count is zero, and none is created.
    let (snapshot, access, recovered) = if !exists {
        (Snapshot::default(), "none", false)
    } else {
        match Store::open(db_path, StoreOptions::default()) {
            Ok(store) => {
                let recovered = store.open_info().recovered;
                let snapshot = store.read_blocking(snapshot)?;
                store.close_blocking();
                (snapshot, "read-write", recovered)
            }
            Err(StoreError::Locked { .. }) => {
                let store = Store::open_read_only(db_path)?;
                (store.read(snapshot)?, "read-only", false)
            }
            Err(other) => return Err(other.into()),
        }
    };

    let config = &context.config;
    let report = Report {
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
        },
        sessions: Counts::of(&snapshot.sessions),
        tasks: Counts::of(&snapshot.tasks),
        agents: Counts::of(&snapshot.agents),
        events: snapshot.events,
    };
    let out = if json {
        serde_json::to_string_pretty(&report).unwrap_or_default()
    } else {
        text(&report)
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}").map_err(|e| Failure {
        code: exit::FAILED,
        message: format!("cannot write to stdout: {e}"),
    })
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
        "file" => format!(
            "{} ({} agents configured)",
            report.config.path, report.config.agents
        ),
        _ => format!(
            "{} (not found; built-in defaults, no agents configured)",
            report.config.path
        ),
    };
    format!(
        "ocio {}\ndatabase     {db_line}\nconfig       {config_line}\nsessions     {}\ntasks        {}\nagents       {}\ncontrol log  {} events",
        env!("CARGO_PKG_VERSION"),
        report.sessions.text(),
        report.tasks.text(),
        report.agents.text(),
        report.events,
    )
}
