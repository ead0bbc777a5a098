//! How client commands reach state: the running engine through its control socket when one
//! answers, else the database file itself (read-only while another ocio holds it); and how
//! they say which they used.

use std::path::Path;

use redb::ReadTransaction;
use serde::Serialize;

use super::{Context, Failure};
use crate::control::{ControlClient, ControlError};
use crate::store::{Store, StoreError};

/// The engine answering for this database, or `None` when none runs.
pub(crate) async fn engine(context: &Context) -> Result<Option<ControlClient>, Failure> {
    match ControlClient::connect(&context.paths.socket_file()).await {
        Ok(client) => Ok(Some(client)),
        Err(ControlError::NotRunning { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The running engine, or a clear refusal for commands that need one.
pub(crate) async fn require_engine(context: &Context) -> Result<ControlClient, Failure> {
    engine(context).await?.ok_or_else(|| {
        Failure::usage(format!(
            "no engine is running for database {} (no answer on {})\n  hint: start one with `ocio --headless` (or `ocio`), or run a plan in this process with `ocio run PLAN`",
            context.paths.db_file.display(),
            context.paths.socket_file().display()
        ))
    })
}

/// How the database was read: always a verified private copy of its latest commit, so a
/// reader never writes the file nor keeps an engine from opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Access {
    ReadOnly,
}

impl Access {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
        }
    }
}

/// What a read found, and how it got there.
pub(crate) struct Read<T> {
    pub(crate) value: T,
    pub(crate) access: Access,
    /// The previous process did not close the database and this read recovered it. A reader
    /// reads a private copy and never recovers the file (the next engine does), so always
    /// false; kept for the JSON report's schema.
    pub(crate) recovered: bool,
}

/// Run `read` on the database at `path`; `None` when there is no database yet (none is
/// created).
pub(crate) fn read<T: Send + 'static>(
    path: &Path,
    read: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
) -> Result<Option<Read<T>>, Failure> {
    if !path.exists() {
        return Ok(None);
    }
    let store = Store::open_read_only(path)?;
    Ok(Some(Read {
        value: store.read(read)?,
        access: Access::ReadOnly,
        recovered: false,
    }))
}

/// Say on stderr where a text report came from (JSON reports carry it as `source`).
pub(crate) fn say_source(context: &Context, engine: Option<&ControlClient>) {
    match engine {
        Some(client) => eprintln!(
            "(from the running engine, pid {}, socket {})",
            client.engine().pid,
            client.socket().display()
        ),
        None => eprintln!(
            "(no engine running; read from the database {})",
            context.paths.db_file.display()
        ),
    }
}

/// `"engine"` or `"database"`, for JSON reports.
pub(crate) fn source_name(engine: Option<&ControlClient>) -> &'static str {
    if engine.is_some() {
        "engine"
    } else {
        "database"
    }
}
