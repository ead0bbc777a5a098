//! The writer thread: the one owner of the open `Database`. It runs reads between commits and
//! commits writes in groups: every write queued while a commit is running goes into the next
//! transaction, and each is acknowledged only after that transaction's durable commit returns.

use std::path::PathBuf;

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table, WriteTransaction,
};
use tokio::sync::{mpsc, oneshot};

use super::search::{self, Place, WordTable};
use super::tables::{
    AGENTS, BUDGET_LEDGER, CHECKPOINTS, EVENTS, LEASES, META, NOTES, PLAN_CONFLICTS, PLAN_LANDING,
    PLAN_OPEN_TASKS, PLAN_REVIEWED, PLAN_WORK, PLANS, SEARCH_WORDS, SESSION_STATUS, SESSIONS,
    TASK_CONTEXT, TASKS,
};
use super::transcript::TranscriptTables;
use super::{Batch, Op, Receipt, StoreError, seal};

pub(super) type ReadJob = Box<dyn FnOnce(Result<ReadTransaction, StoreError>) + Send>;

pub(super) enum Request {
    Write(Batch, oneshot::Sender<Result<Receipt, StoreError>>),
    Read(ReadJob),
    /// Remove the transcripts of sessions that ended before this time.
    PruneTranscripts(
        jiff::Timestamp,
        oneshot::Sender<Result<super::Pruned, StoreError>>,
    ),
    /// Index every stored record for search again.
    Reindex(oneshot::Sender<Result<super::Reindexed, StoreError>>),
    Close(oneshot::Sender<()>),
}

pub(super) struct Writer {
    pub(crate) db: Database,
    pub(crate) path: PathBuf,
    pub(crate) next_seq: u64,
    pub(crate) max_batch: usize,
    /// A commit failed since the file was opened: it is not sealed at close.
    pub(crate) failed: bool,
    /// Durable commits since the file was opened (read by [`super::StoreHandle::commits`]).
    pub(crate) commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Writer {
    pub(crate) fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut held: Option<Request> = None;
        loop {
            let Some(request) = held.take().or_else(|| requests.blocking_recv()) else {
                self.close(); // every handle is gone
                return;
            };
            match request {
                Request::Read(job) => job(self.db.begin_read().map_err(StoreError::storage)),
                Request::PruneTranscripts(before, reply) => {
                    let _ = reply.send(self.prune_transcripts(before));
                }
                Request::Reindex(reply) => {
                    let _ = reply.send(self.reindex());
                }
                Request::Close(done) => {
                    self.close();
                    let _ = done.send(());
                    return;
                }
                Request::Write(batch, reply) => {
                    let mut group = vec![(batch, reply)];
                    while group.len() < self.max_batch {
                        match requests.try_recv() {
                            Ok(Request::Write(batch, reply)) => group.push((batch, reply)),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_group(group);
                }
            }
        }
    }

    fn prune_transcripts(&mut self, before: jiff::Timestamp) -> Result<super::Pruned, StoreError> {
        let mut txn = self.db.begin_write().map_err(StoreError::storage)?;
        txn.set_durability(Durability::Immediate)
            .map_err(StoreError::storage)?;
        let pruned = super::transcript::prune(&txn, before)?;
        txn.commit().map_err(StoreError::storage)?;
        self.committed();
        Ok(pruned)
    }

    fn reindex(&mut self) -> Result<super::Reindexed, StoreError> {
        let mut txn = self.db.begin_write().map_err(StoreError::storage)?;
        txn.set_durability(Durability::Immediate)
            .map_err(StoreError::storage)?;
        let done = search::reindex(&txn)?;
        txn.commit().map_err(StoreError::storage)?;
        self.committed();
        Ok(done)
    }

    /// Closes the file and, when every commit since it was opened succeeded, seals it so the
    /// next open need not walk it (see [`super::seal`]).
    fn close(self) {
        let Self {
            db, path, failed, ..
        } = self;
        drop(db);
        if !failed {
            seal::write(&path);
        }
    }

    fn commit_group(&mut self, group: Vec<(Batch, oneshot::Sender<Result<Receipt, StoreError>>)>) {
        let first_seq = self.next_seq;
        let result = self.write_group(group.iter().map(|(batch, _)| batch));
        match result {
            Ok(receipts) => {
                for ((_, reply), receipt) in group.into_iter().zip(receipts) {
                    let _ = reply.send(Ok(receipt));
                }
            }
            Err(error) => {
                tracing::error!(%error, writes = group.len(), "store commit failed");
                self.failed = true;
                self.next_seq = first_seq;
                for (_, reply) in group {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    fn write_group<'a>(
        &mut self,
        batches: impl Iterator<Item = &'a Batch>,
    ) -> Result<Vec<Receipt>, StoreError> {
        let mut txn = self.db.begin_write().map_err(StoreError::storage)?;
        txn.set_durability(Durability::Immediate)
            .map_err(StoreError::storage)?;
        let mut receipts = Vec::new();
        {
            let mut tables = WriteTables::open(&txn)?;
            for batch in batches {
                receipts.push(tables.apply(batch, &mut self.next_seq)?);
            }
        }
        txn.commit().map_err(StoreError::storage)?;
        self.committed();
        Ok(receipts)
    }

    fn committed(&self) {
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The tables a write transaction touches, opened once per transaction.
pub(super) struct WriteTables<'txn> {
    sessions: Table<'txn, u128, &'static [u8]>,
    session_status: Table<'txn, (&'static str, u128), ()>,
    tasks: Table<'txn, u128, &'static [u8]>,
    open_tasks: Table<'txn, (u128, u128), ()>,
    conflicts: Table<'txn, (u128, u128), ()>,
    plans: Table<'txn, u128, &'static [u8]>,
    agents: Table<'txn, &'static str, &'static [u8]>,
    checkpoints: Table<'txn, (u128, u64), &'static [u8]>,
    leases: Table<'txn, &'static str, &'static [u8]>,
    events: Table<'txn, u64, &'static [u8]>,
    meta: Table<'txn, &'static str, u64>,
    plan_work: Table<'txn, u128, &'static [u8]>,
    context: Table<'txn, u128, &'static [u8]>,
    landing: Table<'txn, u128, &'static [u8]>,
    reviewed: Table<'txn, (u128, &'static str), &'static str>,
    ledger: Table<'txn, &'static str, &'static [u8]>,
    words: WordTable<'txn>,
    /// Opened by the first transcript write of the transaction (most have none).
    transcripts: Option<TranscriptTables<'txn>>,
    /// Opened by the first note of the transaction (most have none).
    notes: Option<Table<'txn, u64, &'static [u8]>>,
    txn: &'txn WriteTransaction,
}

impl<'txn> WriteTables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        let open_error = StoreError::storage;
        Ok(Self {
            sessions: txn.open_table(SESSIONS).map_err(open_error)?,
            session_status: txn.open_table(SESSION_STATUS).map_err(open_error)?,
            tasks: txn.open_table(TASKS).map_err(open_error)?,
            open_tasks: txn.open_table(PLAN_OPEN_TASKS).map_err(open_error)?,
            conflicts: txn.open_table(PLAN_CONFLICTS).map_err(open_error)?,
            plans: txn.open_table(PLANS).map_err(open_error)?,
            agents: txn.open_table(AGENTS).map_err(open_error)?,
            checkpoints: txn.open_table(CHECKPOINTS).map_err(open_error)?,
            leases: txn.open_table(LEASES).map_err(open_error)?,
            events: txn.open_table(EVENTS).map_err(open_error)?,
            meta: txn.open_table(META).map_err(open_error)?,
            // Additive tables: opening them here also creates them in an older file.
            plan_work: txn.open_table(PLAN_WORK).map_err(open_error)?,
            context: txn.open_table(TASK_CONTEXT).map_err(open_error)?,
            landing: txn.open_table(PLAN_LANDING).map_err(open_error)?,
            reviewed: txn.open_table(PLAN_REVIEWED).map_err(open_error)?,
            ledger: txn.open_table(BUDGET_LEDGER).map_err(open_error)?,
            words: txn.open_table(SEARCH_WORDS).map_err(open_error)?,
            transcripts: None,
            notes: None,
            txn,
        })
    }

    fn apply(&mut self, batch: &Batch, next_seq: &mut u64) -> Result<Receipt, StoreError> {
        let mut receipt = Receipt::default();
        for op in &batch.ops {
            match op {
                Op::PutSession {
                    id,
                    status,
                    json,
                    words,
                } => self.put_session(*id, status, json, words)?,
                Op::PutTask {
                    id,
                    plan,
                    open,
                    json,
                } => {
                    self.tasks
                        .insert(*id, json.as_slice())
                        .map_err(StoreError::storage)?;
                    if *open {
                        self.open_tasks.insert((*plan, *id), ())
                    } else {
                        self.open_tasks.remove((*plan, *id)).map(|_| None)
                    }
                    .map_err(StoreError::storage)?;
                }
                Op::PutPlan { id, json } => {
                    self.plans
                        .insert(*id, json.as_slice())
                        .map_err(StoreError::storage)?;
                }
                Op::PutAgent { name, json } => {
                    self.agents
                        .insert(name.as_str(), json.as_slice())
                        .map_err(StoreError::storage)?;
                }
                Op::RemoveAgent { name } => {
                    self.agents
                        .remove(name.as_str())
                        .map_err(StoreError::storage)?;
                }
                Op::PutCheckpoint { session, seq, json } => {
                    self.checkpoints
                        .insert((*session, *seq), json.as_slice())
                        .map_err(StoreError::storage)?;
                }
                Op::PutLease { resource, json } => {
                    self.leases
                        .insert(resource.as_str(), json.as_slice())
                        .map_err(StoreError::storage)?;
                }
                Op::RemoveLease { resource } => {
                    self.leases
                        .remove(resource.as_str())
                        .map_err(StoreError::storage)?;
                }
                Op::AppendEvent {
                    json,
                    subject,
                    words,
                } => {
                    let seq = *next_seq;
                    self.events
                        .insert(seq, json.as_slice())
                        .map_err(StoreError::storage)?;
                    if let Some(subject) = subject {
                        search::index(&mut self.words, *subject, Place::Event(seq), words)?;
                    }
                    *next_seq += 1;
                    receipt.event_seqs.push(seq);
                }
                Op::PutMeta { key, value } => {
                    self.meta
                        .insert(*key, *value)
                        .map_err(StoreError::storage)?;
                }
                Op::PutPlanWork { id, json } => {
                    self.plan_work
                        .insert(*id, json.as_slice())
                        .map_err(StoreError::storage)?;
                }
                Op::AppendNote { json } => self.append_note(json)?,
                Op::PutLedger { key, json } => {
                    match json {
                        Some(json) => self
                            .ledger
                            .insert(key.as_str(), json.as_slice())
                            .map(|_| ()),
                        None => self.ledger.remove(key.as_str()).map(|_| ()),
                    }
                    .map_err(StoreError::storage)?;
                }
                Op::PutLanding { id, json } => {
                    self.landing
                        .insert(*id, json.as_slice())
                        .map_err(StoreError::storage)?;
                }
                Op::PutReviewed { plan, path, blob } => {
                    match blob {
                        Some(blob) => self
                            .reviewed
                            .insert((*plan, path.as_str()), blob.as_str())
                            .map(|_| ()),
                        None => self.reviewed.remove((*plan, path.as_str())).map(|_| ()),
                    }
                    .map_err(StoreError::storage)?;
                }
                Op::PutTranscript {
                    session,
                    part,
                    json,
                    cap,
                    words,
                } => {
                    let tables = match &mut self.transcripts {
                        Some(tables) => tables,
                        None => self.transcripts.insert(TranscriptTables::open(self.txn)?),
                    };
                    let (seq, replaced) = tables.put(*session, part.as_deref(), json, *cap)?;
                    // A part rewritten (a text as it streams, whole each time) has most of its
                    // words indexed already: only those it did not have are written.
                    let words = search::not_in(words, replaced.as_deref());
                    search::index(&mut self.words, *session, Place::Transcript(seq), &words)?;
                }
                Op::PutContext {
                    id,
                    plan,
                    conflict,
                    json,
                } => {
                    self.context
                        .insert(*id, json.as_slice())
                        .map_err(StoreError::storage)?;
                    if *conflict {
                        self.conflicts
                            .insert((*plan, *id), ())
                            .map_err(StoreError::storage)?;
                    } else {
                        self.conflicts
                            .remove((*plan, *id))
                            .map_err(StoreError::storage)?;
                    }
                }
            }
        }
        Ok(receipt)
    }

    /// Stores a session, moves it in the status index, and indexes its title when it is new
    /// or changed (most writes of a session only change its status).
    /// A note after the last one (the table is made by the first).
    fn append_note(&mut self, json: &[u8]) -> Result<(), StoreError> {
        let notes = match &mut self.notes {
            Some(notes) => notes,
            None => self
                .notes
                .insert(self.txn.open_table(NOTES).map_err(StoreError::storage)?),
        };
        let next = notes
            .last()
            .map_err(StoreError::storage)?
            .map_or(1, |(key, _)| key.value() + 1);
        notes.insert(next, json).map_err(StoreError::storage)?;
        Ok(())
    }

    fn put_session(
        &mut self,
        id: u128,
        status: &'static str,
        json: &[u8],
        words: &[String],
    ) -> Result<(), StoreError> {
        let old = self
            .sessions
            .insert(id, json)
            .map_err(StoreError::storage)?
            .map(|old| old.value().to_vec());
        if let Some(old) = &old {
            let old_status = super::decode_status(old)?;
            self.session_status
                .remove((old_status, id))
                .map_err(StoreError::storage)?;
        }
        self.session_status
            .insert((status, id), ())
            .map_err(StoreError::storage)?;
        let retitled = match &old {
            Some(old) => search::title_of(old) != search::title_of(json),
            None => true,
        };
        if retitled {
            search::index(&mut self.words, id, Place::Title, words)?;
        }
        Ok(())
    }
}
