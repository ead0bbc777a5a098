//! What front ends see: the snapshot, running sessions' activity and transcripts, the newest
//! ended sessions, and pausing. Activity goes to the store through the journal (coalesced,
//! see `journal.rs`), and transcripts are read from there; everything else here is derived
//! from durable state. Edits in a session's activity feed its plan's overlap map, and an
//! overlap is told the moment it happens.

use std::collections::VecDeque;

use super::{Core, Running, Step};
use crate::domain::{PlanId, Session, SessionId, TaskId};
use crate::engine::view::{
    Activity, ApprovalView, Entry, Footprint, PlanView, SessionView, Snapshot, TaskView,
};
use crate::engine::{EngineError, EngineEvent};
use crate::workspace::overlap::repo_relative;

/// Plans that ended, newest first, that the snapshot lists.
pub(super) const RECENT_PLANS: usize = 50;
/// Ended sessions kept for front ends.
const RECENT: usize = crate::engine::view::RECENT_SESSIONS;
/// Ended sessions whose last words are still taken into their transcripts.
const RECENT_TRANSCRIPTS: usize = 64;
/// Tools whose activity title is the file they change (OpenCode's and the simulator's).
const EDIT_TOOLS: &[&str] = &["edit", "write", "patch", "multiedit", "apply_patch"];
/// The meta record that keeps the paused flag across restarts.
pub(super) const PAUSED_KEY: &str = "engine_paused";

/// What the engine remembers for front ends beyond its durable state.
#[derive(Default)]
pub(super) struct Observed {
    /// Newest first.
    recent: VecDeque<SessionView>,
    /// Usage of ended sessions.
    usage: crate::domain::Usage,
    /// Each task's newest session.
    pub(super) latest: std::collections::HashMap<TaskId, SessionId>,
}

impl Observed {
    /// Sessions a previous engine ran, newest first, for the sessions table after a restart.
    pub(super) fn with_history(
        history: Vec<Session>,
        lasts: &std::collections::HashMap<SessionId, Entry>,
        task_key: impl Fn(&Session) -> String,
    ) -> Self {
        let mut observed = Self::default();
        for session in history.into_iter().filter(|s| !s.is_active()).take(RECENT) {
            observed.usage += session.usage;
            if let Some(task) = session.task {
                observed.latest.entry(task).or_insert(session.id);
            }
            observed.recent.push_back(SessionView {
                task: task_key(&session),
                last: lasts.get(&session.id).cloned(),
                session,
            });
        }
        observed
    }

    /// A run has ended: keep it among the recent.
    pub(super) fn ended(&mut self, run: &Running) {
        self.keep(SessionView {
            session: run.session.clone(),
            task: run.key.clone(),
            last: run.last.clone(),
        });
    }

    /// A session a previous engine left running was ended at start (its run did not survive):
    /// the newest of its task's, among the recent with what it spent and what it did last.
    pub(super) fn settled(&mut self, session: &Session, task: String, last: Option<Entry>) {
        if let Some(id) = session.task {
            self.latest.insert(id, session.id);
        }
        self.keep(SessionView {
            session: session.clone(),
            task,
            last,
        });
    }

    /// An ended session, newest among the recent, its spend counted.
    fn keep(&mut self, view: SessionView) {
        self.usage += view.session.usage;
        self.recent.push_front(view);
        self.recent.truncate(RECENT);
    }
}

impl Core {
    /// Running `session` changed `path` (repo-relative): into its plan's overlap map, and an
    /// overlap with another session is told at once.
    pub(super) fn touch(&mut self, plan: PlanId, session: SessionId, path: String) {
        let Some(state) = self.plans.get_mut(&plan) else {
            return;
        };
        if let Some(overlap) = state.work.overlap.touch(session, &path) {
            tracing::warn!(path = %overlap.path, %session, "sessions overlap on a file");
            self.events.tell(EngineEvent::Overlap {
                plan,
                path: overlap.path,
                session,
                with: overlap.with,
            });
        }
    }

    /// A running (or just ended) session did something: into its transcript (through the
    /// journal) and announced. A running session's step (its usage so far) comes back as a
    /// checkpoint to record.
    pub(super) fn on_activity(
        &mut self,
        session: SessionId,
        entry: Entry,
    ) -> Option<crate::domain::Checkpoint> {
        let mut step = None;
        if let Some(run) = self.running.get_mut(&session) {
            if let Activity::Step { usage } = &entry.activity {
                run.live = *usage;
                let data = serde_json::json!({ "usage": usage });
                step = Some(run.session.checkpoint(
                    crate::domain::CheckpointKind::Step,
                    data,
                    entry.at,
                ));
            }
            run.last = Some(entry.clone());
            let edited = match &entry.activity {
                Activity::Tool { tool, title, .. } if EDIT_TOOLS.contains(&tool.as_str()) => {
                    Some(title)
                }
                Activity::Edited { file } => Some(file),
                _ => None,
            };
            let edited = edited.and_then(|file| repo_relative(run.files_dir()?, file));
            let plan = run.plan;
            self.scanner.mark(session, &entry.activity);
            if let Some(path) = edited {
                self.touch(plan, session, path);
            }
        } else if let Some(ended) = self
            .observed
            .recent
            .iter_mut()
            .take(RECENT_TRANSCRIPTS)
            .find(|v| v.session.id == session)
        {
            // Its last words can arrive just after its outcome.
            ended.last = Some(entry.clone());
        } else {
            return None;
        }
        self.journal.record(session, entry.clone());
        self.events.tell(EngineEvent::Activity { session, entry });
        step
    }

    /// What a re-attached session did while nobody followed it: into its transcript (a part
    /// stored before is replaced, not repeated), written at once. Its steps were checkpointed
    /// when they were seen (or are in its answer's usage), so none is recorded here.
    pub(super) async fn on_backfill(
        &mut self,
        session: SessionId,
        entries: Vec<Entry>,
    ) -> Result<(), EngineError> {
        let Some(run) = self.running.get_mut(&session) else {
            return Ok(());
        };
        let last_step = entries
            .iter()
            .rev()
            .find(|e| matches!(e.activity, Activity::Step { .. }))
            .cloned();
        if let Some(Entry {
            activity: Activity::Step { usage },
            ..
        }) = &last_step
        {
            run.live = *usage;
        }
        run.last = entries.last().cloned().or(run.last.take());
        // Front ends learn what it spent so far and what it did last, as from a live step
        // (their snapshot was taken before the session was re-attached).
        let last = entries
            .last()
            .filter(|e| Some(*e) != last_step.as_ref())
            .cloned();
        let told: Vec<Entry> = last_step.into_iter().chain(last).collect();
        tracing::info!(%session, entries = entries.len(), "transcript backfilled from the session's server");
        for entry in entries {
            self.journal.record(session, entry);
        }
        for entry in told {
            self.events.tell(EngineEvent::Activity { session, entry });
        }
        self.flush_transcripts().await
    }

    /// Removes the transcripts of sessions that ended before `ended_before`, off the loop.
    pub(super) fn prune_transcripts(
        &self,
        ended_before: jiff::Timestamp,
        reply: super::Typed<crate::store::Pruned>,
    ) {
        let store = self.store.clone();
        self.tasks.spawn(async move {
            let pruned = store.prune_transcripts(ended_before).await;
            reply.send(pruned.map_err(EngineError::from));
        });
    }

    /// At start-up: the transcripts of sessions that ended longer ago than the retention
    /// (`[engine] transcript_retention`) are removed.
    pub(super) async fn apply_retention(
        &mut self,
        now: jiff::Timestamp,
    ) -> Result<(), EngineError> {
        let Some(before) = self
            .options
            .transcript_retention
            .and_then(|retention| now.checked_sub(retention).ok())
        else {
            return Ok(());
        };
        let pruned = self.store.prune_transcripts(before).await?;
        if pruned.sessions > 0 {
            tracing::info!(
                sessions = pruned.sessions,
                entries = pruned.entries,
                bytes = pruned.bytes,
                "removed transcripts older than the retention"
            );
        }
        Ok(())
    }

    /// The steps running sessions reported since the last time, in one commit (a step a
    /// session reports is a completed model call: its spend counts, and a budget it reached
    /// stops the work counted against it). Taken at each tick, before a run's end, and when
    /// the engine stops: one durable commit for many steps (one each, with 200 busy sessions,
    /// was most of the store's work).
    pub(super) async fn record_steps(&mut self) -> Result<(), EngineError> {
        if self.steps_waiting.is_empty() {
            return Ok(());
        }
        let mut step = Step::default();
        let mut sessions = Vec::new();
        for checkpoint in std::mem::take(&mut self.steps_waiting) {
            let Some(run) = self.running.get(&checkpoint.session) else {
                continue;
            };
            step.batch
                .put_checkpoint(&checkpoint)
                .put_session(&run.session);
            if !sessions.contains(&checkpoint.session) {
                sessions.push(checkpoint.session);
            }
        }
        for session in sessions {
            self.count_live(session, &mut step);
        }
        let stops = self.enforce_budgets(&mut step);
        self.commit(step).await?;
        self.stop_over_budget(stops);
        Ok(())
    }

    pub(super) fn footprint(&self) -> Footprint {
        Footprint {
            plans: self.plans.len(),
            tasks: self.plans.task_count(),
            contexts: self.contexts.len(),
            latest_sessions: self.observed.latest.len(),
            recent_sessions: self.observed.recent.len(),
            transcripts: self.journal.sessions(),
            retries: self.retry_at.len(),
            running: self.running.len(),
        }
    }

    /// Writes the transcript entries waiting in the journal, durably.
    pub(super) async fn flush_transcripts(&mut self) -> Result<(), EngineError> {
        self.flush_journal(super::journal::Drain::All).await
    }

    /// Writes the waiting transcript entries `drain` takes, durably.
    pub(super) async fn flush_journal(
        &mut self,
        drain: super::journal::Drain,
    ) -> Result<(), EngineError> {
        if !self.journal.is_waiting() {
            return Ok(());
        }
        let mut batch = crate::store::Batch::new();
        let cap = self.options.transcript_cap;
        if self.journal.drain_into(&mut batch, cap, drain) > 0 {
            self.store.commit(batch).await?;
        }
        Ok(())
    }

    /// `session`'s stored transcript, with what waited in the journal (written first).
    pub(super) async fn transcript(
        &mut self,
        session: SessionId,
        reply: super::Typed<Vec<Entry>>,
    ) -> Result<(), EngineError> {
        self.flush_transcripts().await?;
        let store = self.store.clone();
        self.tasks.spawn(async move {
            let read = store
                .read(move |txn| crate::engine::view::read_transcript(txn, session))
                .await;
            reply.send(read.map_err(EngineError::from));
        });
        Ok(())
    }

    /// Pause or resume dispatching, durably.
    pub(super) async fn pause(&mut self, paused: bool) -> Result<(), EngineError> {
        if self.paused == paused {
            return Ok(());
        }
        let mut step = Step::default();
        step.batch.put_meta(PAUSED_KEY, u64::from(paused));
        step.events.push(EngineEvent::Paused { paused });
        self.commit(step).await?;
        self.paused = paused;
        tracing::info!(
            paused,
            "dispatching {}",
            if paused { "paused" } else { "resumed" }
        );
        Ok(())
    }

    /// The loaded plans whose work is over, oldest first (ids are time-ordered).
    pub(super) fn finished_plans(&self) -> Vec<PlanId> {
        self.plans
            .values()
            .filter(|s| s.finished)
            .map(|s| s.plan.id)
            .collect()
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        // Every plan with work to come, and the newest that ended (ids are time-ordered): a
        // front end redraws from this every second, so old history stays in the database.
        let finished = self.finished_plans();
        let oldest_shown = finished
            .len()
            .checked_sub(RECENT_PLANS)
            .map(|skip| finished[skip]);
        let agents = self.fleet.live_agents();
        let waits = |s: &super::plans::PlanState, t: &crate::domain::Task| {
            let needs = crate::engine::routing::Needs {
                ocios_disk: s.work.in_plain_directory(),
            };
            (t.status == crate::domain::TaskStatus::Ready)
                .then(|| {
                    crate::engine::routing::why_waiting(t, needs, &agents, &self.options.fleets)
                })
                .flatten()
                .map(|w| w.to_string())
        };
        let plans: Vec<PlanView> = self
            .plans
            .values()
            .filter(|s| !s.finished || oldest_shown.is_none_or(|oldest| s.plan.id >= oldest))
            .map(|s| PlanView {
                id: s.plan.id,
                name: s.plan.name.clone(),
                key: s.work.work.key.clone(),
                repo: s.plan.repo.clone(),
                landing: s.work.landing.clone(),
                tasks: s
                    .graph
                    .topological_order()
                    .into_iter()
                    .map(|t| TaskView {
                        id: t.id,
                        key: t.key.clone(),
                        status: t.status,
                        attempts: t.attempts,
                        needs: t.needs.clone(),
                        capabilities: t.capabilities.iter().cloned().collect(),
                        session: self.observed.latest.get(&t.id).copied(),
                        check: self.checking.get(&t.id).cloned(),
                        waits: waits(s, t),
                    })
                    .collect(),
            })
            .collect();
        let shown: Vec<PlanId> = plans.iter().map(|p| p.id).collect();
        let mut running: Vec<&Running> = self.running.values().collect();
        running.sort_by_key(|r| std::cmp::Reverse(r.session.id));
        let mut usage = self.observed.usage;
        let mut sessions = Vec::with_capacity(running.len() + self.observed.recent.len());
        for run in running {
            let mut session = run.session.clone();
            session.usage += run.live;
            usage += run.live;
            sessions.push(SessionView {
                session,
                task: run.key.clone(),
                last: run.last.clone(),
            });
        }
        sessions.extend(self.observed.recent.iter().cloned());
        Snapshot {
            seq: self.events.last(),
            paused: self.paused,
            plans,
            sessions,
            running: self.running.len(),
            agents,
            fleets: self.options.fleets.clone(),
            approvals: self
                .pending_approvals()
                .into_iter()
                .map(|(session, ask)| ApprovalView {
                    task: self
                        .running
                        .get(&session)
                        .map(|r| r.key.clone())
                        .unwrap_or_default(),
                    session,
                    ask,
                })
                .collect(),
            usage,
            conflicts: self.conflicts(),
            budgets: self.budgets_view(&shown),
        }
    }
}
