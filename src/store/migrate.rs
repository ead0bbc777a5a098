//! Schema creation and migrations. `create_current` lays out a fresh file; `upgrade` brings an
//! older one forward one version at a time, inside the caller's transaction.

use redb::{ReadableTable, WriteTransaction};

use super::tables::{
    AGENTS, BUDGET_LEDGER, CHECKPOINTS, EVENTS, LEASES, META, PLAN_CONFLICTS, PLAN_LANDING,
    PLAN_OPEN_TASKS, PLAN_REVIEWED, PLAN_WORK, PLANS, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
    SEARCH_WORDS, SESSION_STATUS, SESSIONS, TASK_CONTEXT, TASKS, TRANSCRIPT_PARTS,
    TRANSCRIPT_SIZES, TRANSCRIPTS,
};
use super::{StoreError, decode_status};
use crate::domain::MergeState;
use crate::domain::{PlanId, TaskStatus};

/// Creates every table of the current schema and records its version.
pub(super) fn create_current(txn: &WriteTransaction) -> Result<(), StoreError> {
    create_v1(txn)?;
    txn.open_table(SESSION_STATUS)
        .map_err(StoreError::storage)?;
    txn.open_table(PLAN_WORK).map_err(StoreError::storage)?;
    txn.open_table(TASK_CONTEXT).map_err(StoreError::storage)?;
    txn.open_table(PLAN_LANDING).map_err(StoreError::storage)?;
    txn.open_table(PLAN_REVIEWED).map_err(StoreError::storage)?;
    txn.open_table(BUDGET_LEDGER).map_err(StoreError::storage)?;
    txn.open_table(TRANSCRIPTS).map_err(StoreError::storage)?;
    txn.open_table(TRANSCRIPT_PARTS)
        .map_err(StoreError::storage)?;
    txn.open_table(TRANSCRIPT_SIZES)
        .map_err(StoreError::storage)?;
    txn.open_table(PLAN_OPEN_TASKS)
        .map_err(StoreError::storage)?;
    txn.open_table(PLAN_CONFLICTS)
        .map_err(StoreError::storage)?;
    txn.open_table(SEARCH_WORDS).map_err(StoreError::storage)?;
    set_version(txn, SCHEMA_VERSION)
}

/// The version 1 layout: entity tables and the control log.
pub(super) fn create_v1(txn: &WriteTransaction) -> Result<(), StoreError> {
    let e = StoreError::storage;
    txn.open_table(META).map_err(e)?;
    txn.open_table(SESSIONS).map_err(e)?;
    txn.open_table(TASKS).map_err(e)?;
    txn.open_table(PLANS).map_err(e)?;
    txn.open_table(AGENTS).map_err(e)?;
    txn.open_table(CHECKPOINTS).map_err(e)?;
    txn.open_table(LEASES).map_err(e)?;
    txn.open_table(EVENTS).map_err(e)?;
    set_version(txn, 1)
}

/// Migrates from `found` to [`SCHEMA_VERSION`], step by step.
pub(super) fn upgrade(txn: &WriteTransaction, found: u64) -> Result<(), StoreError> {
    let mut version = found;
    while version < SCHEMA_VERSION {
        match version {
            1 => v1_to_v2(txn)?,
            2 => v2_to_v3(txn)?,
            other => {
                return Err(StoreError::Storage(format!(
                    "no migration from schema {other}"
                )));
            }
        }
        version += 1;
        set_version(txn, version)?;
    }
    Ok(())
}

/// Version 2 indexes sessions by status: build the index from every stored session.
fn v1_to_v2(txn: &WriteTransaction) -> Result<(), StoreError> {
    let sessions = txn.open_table(SESSIONS).map_err(StoreError::storage)?;
    let mut index = txn
        .open_table(SESSION_STATUS)
        .map_err(StoreError::storage)?;
    for entry in sessions.iter().map_err(StoreError::storage)? {
        let (id, json) = entry.map_err(StoreError::storage)?;
        let status = decode_status(json.value())?;
        index
            .insert((status, id.value()), ())
            .map_err(StoreError::storage)?;
    }
    Ok(())
}

/// Version 3 indexes the tasks with work to come by plan, and merge conflicts: build the
/// indexes from every stored task and context (once, at the first open by a build that keeps
/// them).
fn v2_to_v3(txn: &WriteTransaction) -> Result<(), StoreError> {
    index_open_tasks(txn)?;
    index_conflicts(txn)
}

fn index_conflicts(txn: &WriteTransaction) -> Result<(), StoreError> {
    #[derive(serde::Deserialize)]
    struct PlanAndMerge {
        plan: PlanId,
        #[serde(default)]
        merge: MergeState,
    }
    let contexts = txn.open_table(TASK_CONTEXT).map_err(StoreError::storage)?;
    let mut index = txn
        .open_table(PLAN_CONFLICTS)
        .map_err(StoreError::storage)?;
    for entry in contexts.iter().map_err(StoreError::storage)? {
        let (id, json) = entry.map_err(StoreError::storage)?;
        let context: PlanAndMerge =
            serde_json::from_slice(json.value()).map_err(|e| StoreError::Decode {
                what: "task context",
                detail: e.to_string(),
            })?;
        if matches!(context.merge, MergeState::Conflict { .. }) {
            index
                .insert((context.plan.as_u128(), id.value()), ())
                .map_err(StoreError::storage)?;
        }
    }
    Ok(())
}

fn index_open_tasks(txn: &WriteTransaction) -> Result<(), StoreError> {
    #[derive(serde::Deserialize)]
    struct PlanAndStatus {
        plan: PlanId,
        status: TaskStatus,
    }
    let tasks = txn.open_table(TASKS).map_err(StoreError::storage)?;
    let mut index = txn
        .open_table(PLAN_OPEN_TASKS)
        .map_err(StoreError::storage)?;
    for entry in tasks.iter().map_err(StoreError::storage)? {
        let (id, json) = entry.map_err(StoreError::storage)?;
        let task: PlanAndStatus =
            serde_json::from_slice(json.value()).map_err(|e| StoreError::Decode {
                what: "task",
                detail: e.to_string(),
            })?;
        if task.status.has_work_to_come() {
            index
                .insert((task.plan.as_u128(), id.value()), ())
                .map_err(StoreError::storage)?;
        }
    }
    Ok(())
}

fn set_version(txn: &WriteTransaction, version: u64) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(StoreError::storage)?;
    meta.insert(SCHEMA_VERSION_KEY, version)
        .map_err(StoreError::storage)?;
    Ok(())
}
