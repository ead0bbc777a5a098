//! Reads over one consistent snapshot: entity records, counts by status, and the control log.
//! Each takes a `ReadTransaction`, so they work the same through a `StoreHandle` or a
//! `ReadOnlyStore`.

use std::collections::BTreeMap;

use redb::{Key, ReadTransaction, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::{
    AGENTS, BUDGET_LEDGER, CHECKPOINTS, EVENTS, LEASES, META, NOTES, PLAN_CONFLICTS, PLAN_LANDING,
    PLAN_OPEN_TASKS, PLAN_REVIEWED, PLAN_WORK, PLANS, SCHEMA_VERSION_KEY, SESSION_STATUS, SESSIONS,
    TASK_CONTEXT, TASKS,
};
use crate::domain::{
    Agent, AgentStatus, Checkpoint, DomainEvent, Lease, Lifecycle, Plan, PlanId, Session,
    SessionId, SessionStatus, Task, TaskId, TaskStatus,
};
use crate::domain::{AgentName, PlanLanding, PlanWork, TaskContext};

fn decode<T: DeserializeOwned>(what: &'static str, json: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Decode {
        what,
        detail: e.to_string(),
    })
}

fn get<K: Key + 'static, T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<K, &'static [u8]>,
    what: &'static str,
    key: K::SelfType<'_>,
) -> Result<Option<T>, StoreError> {
    let table = txn.open_table(table).map_err(StoreError::storage)?;
    let found = table.get(key).map_err(StoreError::storage)?;
    found.map(|json| decode(what, json.value())).transpose()
}

fn all<K: Key + 'static, T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<K, &'static [u8]>,
    what: &'static str,
) -> Result<Vec<T>, StoreError> {
    let table = txn.open_table(table).map_err(StoreError::storage)?;
    let mut found = Vec::new();
    for entry in table.iter().map_err(StoreError::storage)? {
        let (_, json) = entry.map_err(StoreError::storage)?;
        found.push(decode(what, json.value())?);
    }
    Ok(found)
}

/// The schema version record; None when the file has none (not an ocio database).
pub(crate) fn schema_version(txn: &ReadTransaction) -> Result<Option<u64>, StoreError> {
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(StoreError::storage(e)),
    };
    Ok(meta
        .get(SCHEMA_VERSION_KEY)
        .map_err(StoreError::storage)?
        .map(|v| v.value()))
}

/// A setting kept in the meta table (see `Batch::put_meta`).
pub(crate) fn meta(txn: &ReadTransaction, key: &str) -> Result<Option<u64>, StoreError> {
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(StoreError::storage(e)),
    };
    Ok(meta
        .get(key)
        .map_err(StoreError::storage)?
        .map(|v| v.value()))
}

pub(crate) fn session(txn: &ReadTransaction, id: SessionId) -> Result<Option<Session>, StoreError> {
    get(txn, SESSIONS, "session", id.as_u128())
}

/// Every session, oldest first.
pub fn sessions(txn: &ReadTransaction) -> Result<Vec<Session>, StoreError> {
    all(txn, SESSIONS, "session")
}

/// The newest `n` sessions (any status), newest first: ids are time-ordered.
pub(crate) fn newest_sessions(txn: &ReadTransaction, n: usize) -> Result<Vec<Session>, StoreError> {
    let table = txn.open_table(SESSIONS).map_err(StoreError::storage)?;
    let mut found = Vec::new();
    for entry in table.iter().map_err(StoreError::storage)?.rev().take(n) {
        let (_, json) = entry.map_err(StoreError::storage)?;
        found.push(decode("session", json.value())?);
    }
    Ok(found)
}

/// The sessions that have not ended (every status but the terminal ones), through the status
/// index.
pub(crate) fn active_sessions(txn: &ReadTransaction) -> Result<Vec<Session>, StoreError> {
    use crate::domain::Lifecycle as _;
    let mut active = Vec::new();
    for status in SessionStatus::ALL.iter().filter(|s| !s.is_terminal()) {
        active.extend(sessions_in(txn, *status)?);
    }
    Ok(active)
}

/// The sessions in one status, oldest first, found through the status index.
pub(crate) fn sessions_in(
    txn: &ReadTransaction,
    status: SessionStatus,
) -> Result<Vec<Session>, StoreError> {
    in_status(txn, status, None)
}

/// The newest `n` sessions in one status, newest first (through the status index).
pub(crate) fn newest_in(
    txn: &ReadTransaction,
    status: SessionStatus,
    n: usize,
) -> Result<Vec<Session>, StoreError> {
    in_status(txn, status, Some(n))
}

/// The sessions in `status` through the status index: all, oldest first, or the `newest`
/// so many, newest first.
fn in_status(
    txn: &ReadTransaction,
    status: SessionStatus,
    newest: Option<usize>,
) -> Result<Vec<Session>, StoreError> {
    let index = txn
        .open_table(SESSION_STATUS)
        .map_err(StoreError::storage)?;
    let sessions = txn.open_table(SESSIONS).map_err(StoreError::storage)?;
    let name = status.name();
    let range = index
        .range((name, 0u128)..=(name, u128::MAX))
        .map_err(StoreError::storage)?;
    let entries: Box<dyn Iterator<Item = _>> = match newest {
        Some(n) => Box::new(range.rev().take(n)),
        None => Box::new(range),
    };
    let mut found = Vec::new();
    for entry in entries {
        let (key, _) = entry.map_err(StoreError::storage)?;
        let (_, id) = key.value();
        if let Some(json) = sessions.get(id).map_err(StoreError::storage)? {
            found.push(decode("session", json.value())?);
        }
    }
    Ok(found)
}

/// How many sessions are in each status (statuses with none are left out).
pub(crate) fn session_counts(
    txn: &ReadTransaction,
) -> Result<BTreeMap<SessionStatus, u64>, StoreError> {
    let index = txn
        .open_table(SESSION_STATUS)
        .map_err(StoreError::storage)?;
    let mut counts = BTreeMap::new();
    for &status in SessionStatus::ALL {
        let name = status.name();
        let count = index
            .range((name, 0u128)..=(name, u128::MAX))
            .map_err(StoreError::storage)?
            .count() as u64;
        if count > 0 {
            counts.insert(status, count);
        }
    }
    Ok(counts)
}

pub fn task(txn: &ReadTransaction, id: TaskId) -> Result<Option<Task>, StoreError> {
    get(txn, TASKS, "task", id.as_u128())
}

pub fn tasks(txn: &ReadTransaction) -> Result<Vec<Task>, StoreError> {
    all(txn, TASKS, "task")
}

pub(crate) fn task_counts(txn: &ReadTransaction) -> Result<BTreeMap<TaskStatus, u64>, StoreError> {
    #[derive(serde::Deserialize)]
    struct StatusOnly {
        status: TaskStatus,
    }
    let mut counts = BTreeMap::new();
    for task in all::<u128, StatusOnly>(txn, TASKS, "task")? {
        *counts.entry(task.status).or_insert(0) += 1;
    }
    Ok(counts)
}

pub(crate) fn plan(txn: &ReadTransaction, id: PlanId) -> Result<Option<Plan>, StoreError> {
    get(txn, PLANS, "plan", id.as_u128())
}

pub fn plans(txn: &ReadTransaction) -> Result<Vec<Plan>, StoreError> {
    all(txn, PLANS, "plan")
}

/// The plans with work to come (a task pending, ready or running), oldest first, found
/// through the open tasks index: nothing of a finished plan is read.
pub(crate) fn open_plans(txn: &ReadTransaction) -> Result<Vec<PlanId>, StoreError> {
    let index = txn
        .open_table(PLAN_OPEN_TASKS)
        .map_err(StoreError::storage)?;
    let mut found = Vec::new();
    let mut from = 0u128;
    // One look per plan: after a plan's first open task, skip to the next plan.
    while let Some(entry) = index
        .range((from, 0u128)..)
        .map_err(StoreError::storage)?
        .next()
    {
        let (plan, _) = entry.map_err(StoreError::storage)?.0.value();
        found.push(PlanId::from_u128(plan));
        match plan.checked_add(1) {
            Some(next) => from = next,
            None => break,
        }
    }
    Ok(found)
}

/// The plans with a task whose merge conflicted (parked for the operator, or about to run
/// again), oldest first, found through the conflicts index.
pub(crate) fn conflict_plans(txn: &ReadTransaction) -> Result<Vec<PlanId>, StoreError> {
    let index = txn
        .open_table(PLAN_CONFLICTS)
        .map_err(StoreError::storage)?;
    let mut found: Vec<PlanId> = Vec::new();
    for entry in index.iter().map_err(StoreError::storage)? {
        let (plan, _) = entry.map_err(StoreError::storage)?.0.value();
        let plan = PlanId::from_u128(plan);
        if found.last() != Some(&plan) {
            found.push(plan);
        }
    }
    Ok(found)
}

/// The newest `n` plans with no work to come, newest first (ids are time-ordered); their
/// records are not decoded.
pub(crate) fn newest_finished_plans(
    txn: &ReadTransaction,
    n: usize,
) -> Result<Vec<PlanId>, StoreError> {
    let plans = txn.open_table(PLANS).map_err(StoreError::storage)?;
    let index = txn
        .open_table(PLAN_OPEN_TASKS)
        .map_err(StoreError::storage)?;
    let mut found = Vec::new();
    for entry in plans.iter().map_err(StoreError::storage)?.rev() {
        if found.len() >= n {
            break;
        }
        let id = entry.map_err(StoreError::storage)?.0.value();
        let open = index
            .range((id, 0u128)..=(id, u128::MAX))
            .map_err(StoreError::storage)?
            .next()
            .is_some();
        if !open {
            found.push(PlanId::from_u128(id));
        }
    }
    Ok(found)
}

/// A plan with what is kept beside it: its tasks in the plan's order, how it uses its
/// repository and what its tasks left.
#[derive(Debug, Clone)]
pub(crate) struct PlanRecord {
    pub(crate) plan: Plan,
    pub(crate) tasks: Vec<Task>,
    pub(crate) work: Option<PlanWork>,
    pub(crate) contexts: Vec<TaskContext>,
    /// Where its work was delivered (`ocio land`), if it was.
    pub(crate) landing: Option<PlanLanding>,
}

/// One plan and what is kept beside it, read by key (no other plan's records are read).
pub(crate) fn plan_record(
    txn: &ReadTransaction,
    id: PlanId,
) -> Result<Option<PlanRecord>, StoreError> {
    let Some(plan) = plan(txn, id)? else {
        return Ok(None);
    };
    let table = txn.open_table(TASKS).map_err(StoreError::storage)?;
    let mut tasks = Vec::with_capacity(plan.tasks.len());
    for task in &plan.tasks {
        if let Some(json) = table.get(task.as_u128()).map_err(StoreError::storage)? {
            tasks.push(decode("task", json.value())?);
        }
    }
    let work = get_additive(txn, PLAN_WORK, "plan work", id.as_u128())?;
    let contexts = contexts_of_tasks(txn, &plan.tasks)?;
    let landing = landing(txn, id)?;
    Ok(Some(PlanRecord {
        plan,
        tasks,
        work,
        contexts,
        landing,
    }))
}

/// Every agent, by name.
pub fn agents(txn: &ReadTransaction) -> Result<Vec<Agent>, StoreError> {
    all(txn, AGENTS, "agent")
}

/// The names of the agents stored (by the engines that ran on this database), without
/// reading the records themselves.
pub(crate) fn agent_names(txn: &ReadTransaction) -> Result<Vec<AgentName>, StoreError> {
    let table = txn.open_table(AGENTS).map_err(StoreError::storage)?;
    let mut names = Vec::new();
    for entry in table.iter().map_err(StoreError::storage)? {
        let (name, _) = entry.map_err(StoreError::storage)?;
        names.extend(AgentName::new(name.value()).ok());
    }
    Ok(names)
}

pub(crate) fn agent_counts(
    txn: &ReadTransaction,
) -> Result<BTreeMap<AgentStatus, u64>, StoreError> {
    let mut counts = BTreeMap::new();
    for agent in agents(txn)? {
        *counts.entry(agent.status).or_insert(0) += 1;
    }
    Ok(counts)
}

/// A session's checkpoints in sequence order.
pub fn checkpoints(
    txn: &ReadTransaction,
    session: SessionId,
) -> Result<Vec<Checkpoint>, StoreError> {
    let table = txn.open_table(CHECKPOINTS).map_err(StoreError::storage)?;
    let id = session.as_u128();
    let mut found = Vec::new();
    for entry in table
        .range((id, 0u64)..=(id, u64::MAX))
        .map_err(StoreError::storage)?
    {
        let (_, json) = entry.map_err(StoreError::storage)?;
        found.push(decode("checkpoint", json.value())?);
    }
    Ok(found)
}

/// What `session` had spent at its newest step checkpoint (its usage so far), if it has one:
/// read from its newest checkpoint back, so a long session costs a few reads.
pub(crate) fn newest_step_usage(
    txn: &ReadTransaction,
    session: SessionId,
) -> Result<Option<crate::domain::Usage>, StoreError> {
    let table = txn.open_table(CHECKPOINTS).map_err(StoreError::storage)?;
    let id = session.as_u128();
    for entry in table
        .range((id, 0u64)..=(id, u64::MAX))
        .map_err(StoreError::storage)?
        .rev()
    {
        let (_, json) = entry.map_err(StoreError::storage)?;
        let checkpoint: Checkpoint = decode("checkpoint", json.value())?;
        if checkpoint.kind == crate::domain::CheckpointKind::Step {
            let usage = checkpoint.data.get("usage").cloned().unwrap_or_default();
            return Ok(serde_json::from_value(usage).ok());
        }
    }
    Ok(None)
}

/// Every additive table's records; none when the file does not have the table yet.
fn all_additive<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<u128, &'static [u8]>,
    what: &'static str,
) -> Result<Vec<T>, StoreError> {
    match txn.open_table(table) {
        Ok(_) => all(txn, table, what),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
        Err(e) => Err(StoreError::storage(e)),
    }
}

/// One record of an additive table; none when the file does not have the table yet.
fn get_additive<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<u128, &'static [u8]>,
    what: &'static str,
    key: u128,
) -> Result<Option<T>, StoreError> {
    match txn.open_table(table) {
        Ok(_) => get(txn, table, what, key),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(StoreError::storage(e)),
    }
}

/// How every plan uses its repository.
pub(crate) fn plan_work(txn: &ReadTransaction) -> Result<Vec<PlanWork>, StoreError> {
    all_additive(txn, PLAN_WORK, "plan work")
}

/// Where a plan's work was delivered (`ocio land`), if it was.
pub fn landing(txn: &ReadTransaction, plan: PlanId) -> Result<Option<PlanLanding>, StoreError> {
    get_additive(txn, PLAN_LANDING, "plan landing", plan.as_u128())
}

/// What every finished task left for the tasks after it.
pub(crate) fn contexts(txn: &ReadTransaction) -> Result<Vec<TaskContext>, StoreError> {
    all_additive(txn, TASK_CONTEXT, "task context")
}

/// What one task left for the tasks after it.
pub(crate) fn context(
    txn: &ReadTransaction,
    task: TaskId,
) -> Result<Option<TaskContext>, StoreError> {
    get_additive(txn, TASK_CONTEXT, "task context", task.as_u128())
}

/// What the tasks of one plan left, in task id order (read by key: no other plan's records
/// are read).
pub(crate) fn contexts_of(
    txn: &ReadTransaction,
    plan: PlanId,
) -> Result<Vec<TaskContext>, StoreError> {
    let Some(plan) = self::plan(txn, plan)? else {
        return Ok(Vec::new());
    };
    let mut found = contexts_of_tasks(txn, &plan.tasks)?;
    found.sort_by_key(|c| c.task);
    Ok(found)
}

/// What each of `tasks` left, in their order (tasks that left nothing are skipped).
fn contexts_of_tasks(
    txn: &ReadTransaction,
    tasks: &[TaskId],
) -> Result<Vec<TaskContext>, StoreError> {
    let table = match txn.open_table(TASK_CONTEXT) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::storage(e)),
    };
    let mut found = Vec::new();
    for task in tasks {
        if let Some(json) = table.get(task.as_u128()).map_err(StoreError::storage)? {
            found.push(decode("task context", json.value())?);
        }
    }
    Ok(found)
}

/// The files of a plan marked reviewed, each with the blob it was marked at (`""`: deleted).
pub(crate) fn reviewed_of(
    txn: &ReadTransaction,
    plan: PlanId,
) -> Result<BTreeMap<String, String>, StoreError> {
    let table = match txn.open_table(PLAN_REVIEWED) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
        Err(e) => return Err(StoreError::storage(e)),
    };
    let id = plan.as_u128();
    let mut found = BTreeMap::new();
    for entry in table.range((id, "")..).map_err(StoreError::storage)? {
        let (key, blob) = entry.map_err(StoreError::storage)?;
        let (of, path) = key.value();
        if of != id {
            break;
        }
        found.insert(path.to_string(), blob.value().to_string());
    }
    Ok(found)
}

pub fn leases(txn: &ReadTransaction) -> Result<Vec<Lease>, StoreError> {
    all(txn, LEASES, "lease")
}

/// Up to `limit` control log entries with a sequence number above `after`, in order.
pub fn events_after(
    txn: &ReadTransaction,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, DomainEvent)>, StoreError> {
    events_above(txn, after, limit, false)
}

/// The newest `limit` notes (see [`super::tables::NOTES`]), oldest first; any this ocio cannot
/// read (written by a newer one) left out.
pub(crate) fn notes_newest<T: serde::de::DeserializeOwned>(
    txn: &ReadTransaction,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let table = match txn.open_table(NOTES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::storage(e)),
    };
    let mut found = Vec::new();
    for entry in table.iter().map_err(StoreError::storage)?.rev().take(limit) {
        let (_, json) = entry.map_err(StoreError::storage)?;
        if let Ok(note) = serde_json::from_slice(json.value()) {
            found.push(note);
        }
    }
    found.reverse();
    Ok(found)
}

/// The newest `limit` control log entries with a sequence number above `after`, in order.
pub(crate) fn events_newest(
    txn: &ReadTransaction,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, DomainEvent)>, StoreError> {
    events_above(txn, after, limit, true)
}

/// Up to `limit` entries above `after`, the oldest or the `newest` of them, in order.
fn events_above(
    txn: &ReadTransaction,
    after: u64,
    limit: usize,
    newest: bool,
) -> Result<Vec<(u64, DomainEvent)>, StoreError> {
    let table = txn.open_table(EVENTS).map_err(StoreError::storage)?;
    let range = table
        .range(after.saturating_add(1)..)
        .map_err(StoreError::storage)?;
    let entries: Box<dyn Iterator<Item = _>> = if newest {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    let mut found = Vec::new();
    for entry in entries.take(limit) {
        let (seq, json) = entry.map_err(StoreError::storage)?;
        found.push((seq.value(), decode("event", json.value())?));
    }
    if newest {
        found.reverse();
    }
    Ok(found)
}

/// Every control log entry from about time `at` on, in order, given to `each` (which stops the
/// scan by returning false). The log is in time order, so its start is found by a binary
/// search over sequence numbers (a few reads), then read forward; entries up to a minute
/// before `at` are included, as steps committed together may carry times a little apart.
pub(crate) fn events_from_time(
    txn: &ReadTransaction,
    at: jiff::Timestamp,
    mut each: impl FnMut(u64, DomainEvent) -> bool,
) -> Result<(), StoreError> {
    let table = txn.open_table(EVENTS).map_err(StoreError::storage)?;
    let since = at
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap_or(at);
    let (mut low, mut high) = (1u64, last_event_seq(txn)?.saturating_add(1));
    // The first entry at or after `since`: in [low, high).
    while low < high {
        let mid = low + (high - low) / 2;
        let before = match table.get(mid).map_err(StoreError::storage)? {
            Some(json) => decode::<DomainEvent>("event", json.value())?.at < since,
            None => true,
        };
        match before {
            true => low = mid + 1,
            false => high = mid,
        }
    }
    for entry in table.range(low..).map_err(StoreError::storage)? {
        let (seq, json) = entry.map_err(StoreError::storage)?;
        if !each(seq.value(), decode("event", json.value())?) {
            break;
        }
    }
    Ok(())
}

/// The sequence number of the newest control log entry; 0 when the log is empty.
pub fn last_event_seq(txn: &ReadTransaction) -> Result<u64, StoreError> {
    let table = txn.open_table(EVENTS).map_err(StoreError::storage)?;
    Ok(table
        .last()
        .map_err(StoreError::storage)?
        .map_or(0, |(seq, _)| seq.value()))
}

/// Decodes every record of every table; returns how many each table holds. The first record
/// that does not decode is the error.
pub(crate) fn verify_records(
    txn: &ReadTransaction,
) -> Result<Vec<(&'static str, usize)>, StoreError> {
    let mut counts = vec![
        ("sessions", sessions(txn)?.len()),
        ("tasks", tasks(txn)?.len()),
        ("plans", plans(txn)?.len()),
        ("agents", agents(txn)?.len()),
        ("leases", leases(txn)?.len()),
        ("plan work", plan_work(txn)?.len()),
        ("task contexts", contexts(txn)?.len()),
        ("events", events_after(txn, 0, usize::MAX)?.len()),
    ];
    let table = txn.open_table(CHECKPOINTS).map_err(StoreError::storage)?;
    let mut checkpoints = 0;
    for entry in table.iter().map_err(StoreError::storage)? {
        let (_, json) = entry.map_err(StoreError::storage)?;
        decode::<Checkpoint>("checkpoint", json.value())?;
        checkpoints += 1;
    }
    counts.push(("checkpoints", checkpoints));
    for (name, index) in [
        ("open tasks index", PLAN_OPEN_TASKS),
        ("conflicts index", PLAN_CONFLICTS),
    ] {
        let table = txn.open_table(index).map_err(StoreError::storage)?;
        counts.push((name, count_entries(table.iter())?));
    }
    let status = txn
        .open_table(SESSION_STATUS)
        .map_err(StoreError::storage)?;
    counts.push(("session status index", count_entries(status.iter())?));
    Ok(counts)
}

/// Reads every entry of a range, failing on the first that cannot be read.
fn count_entries<T, E: std::fmt::Display>(
    range: Result<impl Iterator<Item = Result<T, E>>, E>,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for entry in range.map_err(StoreError::storage)? {
        entry.map_err(StoreError::storage)?;
        n += 1;
    }
    Ok(n)
}

/// Key prefix of usage counted against a budget in [`BUDGET_LEDGER`].
pub(crate) const SPENT: &str = "spent/";
/// Key prefix of a budget set while ocio runs in [`BUDGET_LEDGER`].
pub(crate) const LIMIT: &str = "limit/";

/// Every record of the budget ledger under `prefix` (without it), decoded.
fn ledger<T: DeserializeOwned>(
    txn: &ReadTransaction,
    prefix: &str,
) -> Result<Vec<(String, T)>, StoreError> {
    let table = match txn.open_table(BUDGET_LEDGER) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::storage(e)),
    };
    let mut found = Vec::new();
    for entry in table.range(prefix..).map_err(StoreError::storage)? {
        let (key, json) = entry.map_err(StoreError::storage)?;
        let Some(scope) = key.value().strip_prefix(prefix) else {
            break;
        };
        found.push((scope.to_string(), decode("budget ledger", json.value())?));
    }
    Ok(found)
}

/// Usage counted against each budget, by scope key.
pub(crate) fn spent(
    txn: &ReadTransaction,
) -> Result<Vec<(String, crate::domain::Usage)>, StoreError> {
    ledger(txn, SPENT)
}

/// Budgets the operator set while ocio ran, by scope key.
pub(crate) fn limits(
    txn: &ReadTransaction,
) -> Result<Vec<(String, crate::domain::Budget)>, StoreError> {
    ledger(txn, LIMIT)
}
