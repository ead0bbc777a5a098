//! The durable store: one redb file holding sessions, tasks, plans, agents, checkpoints, leases
//! and the control log. One writer thread owns the database; everyone else holds a cheap
//! [`StoreHandle`] and sends it batches (acknowledged only once durably committed) and reads.

mod migrate;
mod open;
pub mod query;
mod seal;
pub mod search;
mod search_query;
pub(crate) mod tables;
mod transcript;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ReadTransaction, ReadableDatabase};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::domain::{
    Agent, AgentName, Checkpoint, DomainEvent, Lease, Lifecycle, MergeState, Plan, PlanLanding,
    PlanWork, Session, SessionStatus, Task, TaskContext,
};

pub use open::OpenInfo;
pub(crate) use open::Snapshot;
pub use search::Reindexed;
pub use search_query::{Found, SearchQuery, search};
pub use transcript::{Pruned, StoredTranscript, TranscriptSize};
pub(crate) use transcript::{last_transcript_entry, transcript};
use writer::{Request, Writer};

/// How the store runs.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most writes committed in one transaction. 1 turns group commit off.
    pub max_batch: usize,
    /// Writes that may wait for the writer before senders wait too.
    pub queue_depth: usize,
    /// Verify a file this open has just created too. An existing file is always verified
    /// (every page checksum, on a private copy) before it is opened for writing.
    pub check_integrity: bool,
    /// Most bytes of the file's pages kept in memory. redb keeps every page it writes there,
    /// up to this, so without a small bound memory grows with the file over a long run.
    pub cache_bytes: usize,
}

/// Default for [`StoreOptions::cache_bytes`]: the pages every commit touches (the tables'
/// upper levels and newest entries) stay in memory; older ones are read from the file (the
/// OS's page cache) when asked for.
pub(crate) const DEFAULT_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue_depth: 4096,
            check_integrity: false,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database {path} is in use by another ocio process\n  hint: that ocio runs the engine on it: `ocio attach` (or plain `ocio`) watches and steers it, `ocio status` reads it; to run a separate engine, give this one another file with --db / OCIO_DB"
    )]
    Locked { path: PathBuf },
    #[error(
        "{path} is not a usable ocio database: it is damaged ({detail})\n  hint: the file was left untouched; restore it from a backup, or move it aside (or use --db / OCIO_DB) to start a fresh database"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "{path} is not a usable ocio database: {detail}\n  hint: the file was left untouched; move it aside (or use --db / OCIO_DB) to start a fresh database"
    )]
    Unusable { path: PathBuf, detail: String },
    #[error(
        "database {path} was written by a newer ocio (schema {found}; this build understands up to {supported})\n  hint: upgrade ocio, or use --db / OCIO_DB for a separate database"
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("cannot use database {path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("database storage error: {0}")]
    Storage(String),
    #[error("stored record is damaged ({what}): {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("the store has been closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn storage(error: impl std::fmt::Display) -> Self {
        StoreError::Storage(error.to_string())
    }
}

/// One write, already encoded by the sender so the writer thread only writes.
#[derive(Debug, Clone)]
enum Op {
    PutSession {
        id: u128,
        status: &'static str,
        json: Vec<u8>,
        /// The title's words, for the search index.
        words: Vec<String>,
    },
    PutTask {
        id: u128,
        plan: u128,
        /// It has work to come: it belongs in the open tasks index.
        open: bool,
        json: Vec<u8>,
    },
    PutPlan {
        id: u128,
        json: Vec<u8>,
    },
    PutAgent {
        name: String,
        json: Vec<u8>,
    },
    RemoveAgent {
        name: String,
    },
    PutCheckpoint {
        session: u128,
        seq: u64,
        json: Vec<u8>,
    },
    PutLease {
        resource: String,
        json: Vec<u8>,
    },
    RemoveLease {
        resource: String,
    },
    AppendEvent {
        json: Vec<u8>,
        /// The session or task it is about, and its cause's words, for the search index.
        subject: Option<u128>,
        words: Vec<String>,
    },
    /// A note (see [`tables::NOTES`]), numbered after the last.
    AppendNote {
        json: Vec<u8>,
    },
    PutMeta {
        key: &'static str,
        value: u64,
    },
    PutLanding {
        id: u128,
        json: Vec<u8>,
    },
    /// A budget ledger record, or (`None`) its removal.
    PutLedger {
        key: String,
        json: Option<Vec<u8>>,
    },
    PutPlanWork {
        id: u128,
        json: Vec<u8>,
    },
    /// Mark a plan's file reviewed at a blob, or (`None`) not reviewed.
    PutReviewed {
        plan: u128,
        path: String,
        blob: Option<String>,
    },
    PutContext {
        id: u128,
        plan: u128,
        /// Its merge conflicted (indexed in `PLAN_CONFLICTS`).
        conflict: bool,
        json: Vec<u8>,
    },
    /// A transcript entry (see [`Batch::put_transcript`]).
    PutTranscript {
        session: u128,
        part: Option<String>,
        json: Vec<u8>,
        cap: u64,
        /// The entry's words, for the search index.
        words: Vec<String>,
    },
}

/// Writes that commit together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    ops: Vec<Op>,
}

fn encode(value: &impl Serialize) -> Vec<u8> {
    // Every stored type serializes to JSON infallibly (string keys, no non-finite floats
    // reach here: serde_json writes them as null).
    serde_json::to_vec(value).unwrap_or_default()
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn put_session(&mut self, session: &Session) -> &mut Self {
        self.ops.push(Op::PutSession {
            id: session.id.as_u128(),
            status: session.status.name(),
            json: encode(session),
            words: search::words(&session.title),
        });
        self
    }

    pub fn put_task(&mut self, task: &Task) -> &mut Self {
        self.ops.push(Op::PutTask {
            id: task.id.as_u128(),
            plan: task.plan.as_u128(),
            open: task.status.has_work_to_come(),
            json: encode(task),
        });
        self
    }

    pub fn put_plan(&mut self, plan: &Plan) -> &mut Self {
        self.ops.push(Op::PutPlan {
            id: plan.id.as_u128(),
            json: encode(plan),
        });
        self
    }

    pub(crate) fn put_agent(&mut self, agent: &Agent) -> &mut Self {
        self.ops.push(Op::PutAgent {
            name: agent.name.to_string(),
            json: encode(agent),
        });
        self
    }

    pub(crate) fn remove_agent(&mut self, name: &AgentName) -> &mut Self {
        self.ops.push(Op::RemoveAgent {
            name: name.to_string(),
        });
        self
    }

    pub(crate) fn put_checkpoint(&mut self, checkpoint: &Checkpoint) -> &mut Self {
        self.ops.push(Op::PutCheckpoint {
            session: checkpoint.session.as_u128(),
            seq: checkpoint.seq,
            json: encode(checkpoint),
        });
        self
    }

    pub(crate) fn put_lease(&mut self, lease: &Lease) -> &mut Self {
        self.ops.push(Op::PutLease {
            resource: lease.resource.clone(),
            json: encode(lease),
        });
        self
    }

    pub(crate) fn remove_lease(&mut self, resource: &str) -> &mut Self {
        self.ops.push(Op::RemoveLease {
            resource: resource.to_string(),
        });
        self
    }

    /// A small engine setting kept across restarts (e.g. whether dispatching is paused).
    pub(crate) fn put_meta(&mut self, key: &'static str, value: u64) -> &mut Self {
        self.ops.push(Op::PutMeta { key, value });
        self
    }

    /// How a plan uses its repository.
    pub(crate) fn put_plan_work(&mut self, work: &PlanWork) -> &mut Self {
        self.ops.push(Op::PutPlanWork {
            id: work.plan.as_u128(),
            json: encode(work),
        });
        self
    }

    /// Usage counted against budget `scope` (a key such as `plan/<id>`), or (`None`) the
    /// record removed.
    pub(crate) fn put_spent(
        &mut self,
        scope: &str,
        spent: Option<&crate::domain::Usage>,
    ) -> &mut Self {
        self.ops.push(Op::PutLedger {
            key: format!("{}{scope}", query::SPENT),
            json: spent.map(encode),
        });
        self
    }

    /// A budget the operator set while ocio runs for `scope` (`daily`, `agent/<name>`).
    pub(crate) fn put_limit(&mut self, scope: &str, budget: &crate::domain::Budget) -> &mut Self {
        self.ops.push(Op::PutLedger {
            key: format!("{}{scope}", query::LIMIT),
            json: Some(encode(budget)),
        });
        self
    }

    /// Where a plan's work was delivered.
    pub(crate) fn put_landing(&mut self, landing: &PlanLanding) -> &mut Self {
        self.ops.push(Op::PutLanding {
            id: landing.plan.as_u128(),
            json: encode(landing),
        });
        self
    }

    /// What a task left for the tasks after it, and where its merge stands.
    pub(crate) fn put_context(&mut self, context: &TaskContext) -> &mut Self {
        self.ops.push(Op::PutContext {
            id: context.task.as_u128(),
            plan: context.plan.as_u128(),
            conflict: matches!(context.merge, MergeState::Conflict { .. }),
            json: encode(context),
        });
        self
    }

    /// Marks a plan's file reviewed as it is at `blob` (`""`: deleted), or (`None`) clears
    /// the mark.
    pub(crate) fn put_reviewed(
        &mut self,
        plan: crate::domain::PlanId,
        path: &str,
        blob: Option<&str>,
    ) -> &mut Self {
        self.ops.push(Op::PutReviewed {
            plan: plan.as_u128(),
            path: path.to_string(),
            blob: blob.map(str::to_string),
        });
        self
    }

    /// Appends a note of something the engine told (see [`tables::NOTES`]).
    pub fn append_note(&mut self, note: &impl Serialize) -> &mut Self {
        self.ops.push(Op::AppendNote { json: encode(note) });
        self
    }

    /// Appends to the control log; the receipt tells the sequence number it got.
    pub fn append_event(&mut self, event: &DomainEvent) -> &mut Self {
        self.ops.push(Op::AppendEvent {
            json: encode(event),
            subject: search::event_subject(event),
            words: search::words(&event.cause),
        });
        self
    }
}

/// What a durable commit assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Control log sequence numbers of the batch's events, in order.
    pub event_seqs: Vec<u64>,
}

/// A cheap, cloneable way to reach the store's writer thread.
#[derive(Clone)]
pub struct StoreHandle {
    requests: mpsc::Sender<Request>,
    info: Arc<OpenInfo>,
    /// Durable commits since the file was opened (each a sync of the disk).
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("path", &self.info.path)
            .finish()
    }
}

pub struct Store;

impl Store {
    /// Opens (or creates) the database at `path`, checks or migrates its schema, and starts the
    /// writer thread. A file that is not an ocio database, is damaged, is newer, or is held by
    /// another process is refused with an error that says so, and left untouched.
    pub fn open(path: &Path, options: StoreOptions) -> Result<StoreHandle, StoreError> {
        let (db, info) = open::open_writable(path, &options)?;
        let next_seq = {
            let txn = db.begin_read().map_err(StoreError::storage)?;
            query::last_event_seq(&txn)? + 1
        };
        let (requests, receiver) = mpsc::channel(options.queue_depth.max(1));
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            db,
            path: path.to_path_buf(),
            next_seq,
            max_batch: options.max_batch.max(1),
            failed: false,
            commits: commits.clone(),
        };
        std::thread::Builder::new()
            .name("ocio-store".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Io {
                path: path.to_path_buf(),
                detail: format!("cannot start the store thread: {e}"),
            })?;
        Ok(StoreHandle {
            requests,
            info: Arc::new(info),
            commits,
        })
    }

    /// Reads the database without writing it or locking it: a verified private copy of its
    /// latest commit (see [`Snapshot`]), so a running or starting engine is never in the way.
    pub(crate) fn open_read_only(path: &Path) -> Result<Snapshot, StoreError> {
        Snapshot::of(path)
    }
}

impl StoreHandle {
    pub(crate) fn path(&self) -> &Path {
        &self.info.path
    }

    /// Durable commits (write transactions, each a sync of the disk) since the file was
    /// opened: one commit may carry the writes of many callers queued meanwhile.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// What opening the database found (fresh, migrated, recovered after a crash).
    pub fn open_info(&self) -> &OpenInfo {
        &self.info
    }

    /// Commits the batch durably; returns once the commit is on disk.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<Receipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Write(batch, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// `Self::commit` for callers outside an async runtime.
    pub fn commit_blocking(&self, batch: Batch) -> Result<Receipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(Request::Write(batch, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `read` on a consistent snapshot, after every write sent before it.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Read(read_job(read, reply)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Self::read`] for callers outside an async runtime.
    pub fn read_blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(Request::Read(read_job(read, reply)))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Removes, durably, the transcripts of sessions that ended before `before`; what that
    /// freed.
    pub async fn prune_transcripts(&self, before: jiff::Timestamp) -> Result<Pruned, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::PruneTranscripts(before, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Self::prune_transcripts`] for callers outside an async runtime.
    pub fn prune_transcripts_blocking(
        &self,
        before: jiff::Timestamp,
    ) -> Result<Pruned, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(Request::PruneTranscripts(before, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Indexes, durably, every stored session title, event cause and transcript entry for
    /// search (a file written before the index existed); what it indexed.
    pub fn reindex_blocking(&self) -> Result<Reindexed, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(Request::Reindex(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Finishes the writes already sent, closes the database and releases the file. Other
    /// handles get [`StoreError::Closed`] afterwards.
    pub fn close_blocking(self) {
        let (done, closed) = oneshot::channel();
        if self.requests.blocking_send(Request::Close(done)).is_ok() {
            let _ = closed.blocking_recv();
        }
    }

    /// [`Self::close_blocking`] for async callers.
    pub async fn close(self) {
        let (done, closed) = oneshot::channel();
        if self.requests.send(Request::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

fn read_job<T: Send + 'static>(
    read: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    reply: oneshot::Sender<Result<T, StoreError>>,
) -> writer::ReadJob {
    Box::new(move |txn| {
        let _ = reply.send(txn.and_then(|txn| read(&txn)));
    })
}

/// The status of a stored session, read without decoding the rest of it.
fn decode_status(json: &[u8]) -> Result<&'static str, StoreError> {
    #[derive(serde::Deserialize)]
    struct StatusOnly {
        status: SessionStatus,
    }
    serde_json::from_slice::<StatusOnly>(json)
        .map(|s| s.status.name())
        .map_err(|e| StoreError::Decode {
            what: "session",
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests;
