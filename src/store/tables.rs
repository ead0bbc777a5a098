//! Every table of the database, with the schema version that introduced it. Table names carry
//! their version, so a change of layout is a new table and an explicit migration.

use redb::TableDefinition;

/// The schema this build writes. Version 1: the entity tables and the control log.
/// Version 2: adds the session status index. Version 3: adds the index of tasks with work to
/// come ([`PLAN_OPEN_TASKS`]) and of merge conflicts ([`PLAN_CONFLICTS`]), which builds that
/// do not keep them must not write to.
///
/// Tables added later without a version bump are additive: created at open and by the first
/// write, read as empty where a file does not have them yet, and ignored by builds that do
/// not know them ([`PLAN_WORK`], [`TASK_CONTEXT`], [`PLAN_LANDING`], [`PLAN_REVIEWED`],
/// [`BUDGET_LEDGER`]).
pub(crate) const SCHEMA_VERSION: u64 = 3;

/// Key of the schema version record in [`META`].
pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Small numeric records about the database itself.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Session id -> JSON `Session`.
pub(crate) const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions-v1");

/// (status name, session id) -> (): which sessions are in which state, without decoding them.
pub(crate) const SESSION_STATUS: TableDefinition<(&str, u128), ()> =
    TableDefinition::new("session-status-v2");

/// Task id -> JSON `Task`.
pub(crate) const TASKS: TableDefinition<u128, &[u8]> = TableDefinition::new("tasks-v1");

/// (plan id, task id) -> (): the tasks with work to come (pending, ready or running), kept by
/// every task write. A plan with none here is finished, so start-up finds the plans with work
/// to come without decoding the tasks of finished ones.
pub(crate) const PLAN_OPEN_TASKS: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("plan-open-tasks-v3");

/// (plan id, task id) -> (): the tasks whose stored context says their merge conflicted (kept
/// by every context write), so start-up loads the plans whose conflicts wait for the operator
/// without decoding every context.
pub(crate) const PLAN_CONFLICTS: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("plan-conflicts-v3");

/// Plan id -> JSON `Plan`.
pub(crate) const PLANS: TableDefinition<u128, &[u8]> = TableDefinition::new("plans-v1");

/// Agent name -> JSON `Agent`.
pub(crate) const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents-v1");

/// (session id, sequence) -> JSON `Checkpoint`.
pub(crate) const CHECKPOINTS: TableDefinition<(u128, u64), &[u8]> =
    TableDefinition::new("checkpoints-v1");

/// Resource name -> JSON `Lease`.
pub(crate) const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases-v1");

/// Sequence number -> JSON `DomainEvent`: the append-only control log, every transition in
/// order. Sequence numbers start at 1 and have no gaps.
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events-v1");

/// Number -> JSON of what the engine told besides transitions (a plan submitted, a task
/// merged, a check's end...) with when, for front ends that start later to show: the events
/// pane's past. From 1, in order; written in the engine's next commit after it told it.
pub(crate) const NOTES: TableDefinition<u64, &[u8]> = TableDefinition::new("notes-v1");

/// Plan id -> JSON `PlanWork`: how the plan uses its repository (worktrees, shared checkout,
/// no git). Additive (no schema bump).
pub(crate) const PLAN_WORK: TableDefinition<u128, &[u8]> = TableDefinition::new("plan-work-v1");

/// Task id -> JSON `TaskContext`: what a finished task left for the tasks after it (answer,
/// changed files, published values) and where its merge stands. Additive (no schema bump).
pub(crate) const TASK_CONTEXT: TableDefinition<u128, &[u8]> =
    TableDefinition::new("task-context-v1");

/// Plan id -> JSON `PlanLanding`: where a plan's work was delivered (`ocio land`). Additive (no
/// schema bump).
pub(crate) const PLAN_LANDING: TableDefinition<u128, &[u8]> =
    TableDefinition::new("plan-landing-v1");
/// (plan id, repo-relative path) -> the file's blob on the plan's integration branch when the
/// operator marked it reviewed ("" for a deleted file). Additive (no schema bump).
pub(crate) const PLAN_REVIEWED: TableDefinition<(u128, &str), &str> =
    TableDefinition::new("plan-reviewed-v1");

/// Budget key -> JSON: `spent/<scope>` -> `Usage` counted against a budget (a task, a plan, an
/// agent's or the engine's UTC day, and what a running session has counted so far);
/// `limit/<scope>` -> `Budget` the operator set while ocio runs. Additive (no schema bump).
pub(crate) const BUDGET_LEDGER: TableDefinition<&str, &[u8]> =
    TableDefinition::new("budget-ledger-v1");
/// (session id, sequence) -> JSON transcript entry: what a session did, one small typed record
/// per entry (text of a part, a tool call, a step, a note), in order. Sequence 0 is never
/// written: a transcript's cut is kept in [`TRANSCRIPT_SIZES`]. Additive (no schema bump).
pub(crate) const TRANSCRIPTS: TableDefinition<(u128, u64), &[u8]> =
    TableDefinition::new("transcripts-v1");

/// (session id, the server's part id or another key of the entry) -> its sequence in
/// [`TRANSCRIPTS`]: a later entry of the same part replaces the stored one, so storing a part
/// again (a backfill after a restart) never duplicates it. Additive (no schema bump).
pub(crate) const TRANSCRIPT_PARTS: TableDefinition<(u128, &str), u64> =
    TableDefinition::new("transcript-parts-v1");

/// Session id -> (entries kept, their bytes, entries cut, their bytes): each transcript's size
/// against its cap, and what was cut from its start. Additive (no schema bump).
pub(crate) const TRANSCRIPT_SIZES: TableDefinition<u128, (u64, u64, u64, u64)> =
    TableDefinition::new("transcript-sizes-v1");

/// (word, subject, place kind, sequence) -> (): the search index. A subject is a session id
/// (its title, its events, its transcript entries) or a task id (its events); the place kind
/// is 0 for a title, 1 for a control-log event (the sequence is the event's), 2 for a
/// transcript entry (the entry's sequence). Kept by every write of those records; files
/// written before it are indexed by `ocio search --reindex`. Additive (no schema bump).
pub(crate) const SEARCH_WORDS: TableDefinition<(&str, u128, u8, u64), ()> =
    TableDefinition::new("search-words-v1");
