//! A plan's result for the operator's review, and the files they marked reviewed. Everything
//! is read from the store (what a plan's tasks left is durable before it is told) and from git
//! on a blocking thread, off the engine's loop; a mark is written through the store's writer
//! before the reply.

use std::collections::{BTreeMap, HashMap};

use super::{Core, Typed, Workspaces};
use crate::domain::review::{BranchReview, PlanReview, REVIEW_DIFF_CAP, ReviewTask, Reviewed};
use crate::domain::{MergeState, PlanId, Session, TaskContext, Usage, WorkMode};
use crate::engine::EngineError;
use crate::store::query::{self, PlanRecord};
use crate::store::{Batch, StoreError};

/// What a review is made of, read from the store in one transaction.
struct Stored {
    record: PlanRecord,
    sessions: Vec<Session>,
    marks: BTreeMap<String, String>,
}

fn read_stored(txn: &redb::ReadTransaction, plan: PlanId) -> Result<Option<Stored>, StoreError> {
    let Some(record) = query::plan_record(txn, plan)? else {
        return Ok(None);
    };
    let sessions = query::sessions(txn)?
        .into_iter()
        .filter(|s| s.plan == Some(plan))
        .collect();
    let marks = query::reviewed_of(txn, plan)?;
    Ok(Some(Stored {
        record,
        sessions,
        marks,
    }))
}

impl Core {
    pub(super) fn review(&self, plan: PlanId, reply: Typed<PlanReview>) {
        let store = self.store.clone();
        let workspaces = self.workspaces.clone();
        // Running sessions count what they have used so far, as the room shows them.
        let live: Vec<Session> = self
            .running
            .values()
            .filter(|r| r.plan == plan)
            .map(|r| {
                let mut session = r.session.clone();
                session.usage += r.live;
                session
            })
            .collect();
        self.tasks.spawn(async move {
            let stored = match store.read(move |txn| read_stored(txn, plan)).await {
                Ok(Some(mut stored)) => {
                    stored
                        .sessions
                        .retain(|s| !live.iter().any(|l| l.id == s.id));
                    stored.sessions.extend(live);
                    stored
                }
                Ok(None) => return reply.send(Err(EngineError::UnknownPlan(plan))),
                Err(e) => return reply.send(Err(e.into())),
            };
            let result = tokio::task::spawn_blocking(move || assemble(&workspaces, stored))
                .await
                .unwrap_or_else(|e| {
                    Err(EngineError::Diff(format!("the review did not finish: {e}")))
                });
            reply.send(result);
        });
    }

    pub(super) fn mark_reviewed(
        &self,
        plan: PlanId,
        file: String,
        reviewed: bool,
        reply: Typed<()>,
    ) {
        let store = self.store.clone();
        let workspaces = self.workspaces.clone();
        self.tasks.spawn(async move {
            let record = match store.read(move |txn| query::plan_record(txn, plan)).await {
                Ok(Some(record)) => record,
                Ok(None) => return reply.send(Err(EngineError::UnknownPlan(plan))),
                Err(e) => return reply.send(Err(e.into())),
            };
            let blob = if reviewed {
                let (path, ws) = (file.clone(), workspaces);
                match tokio::task::spawn_blocking(move || blob_to_mark(&ws, &record, &path)).await {
                    Ok(Ok(blob)) => Some(blob),
                    Ok(Err(e)) => return reply.send(Err(e)),
                    Err(e) => {
                        let why = format!("marking {file} did not finish: {e}");
                        return reply.send(Err(EngineError::Diff(why)));
                    }
                }
            } else {
                None
            };
            let mut batch = Batch::new();
            batch.put_reviewed(plan, &file, blob.as_deref());
            reply.send(store.commit(batch).await.map(|_| ()).map_err(Into::into));
        });
    }
}

/// The integration branch and base of a worktree plan, or why it has none.
fn branch_of(record: &PlanRecord) -> Result<(String, Option<String>), String> {
    let name = &record.plan.name;
    // Reviewed against where `ocio land` delivers: the plan's base, else the branch checked out
    // when it was submitted (it read `HEAD` when the plan named none).
    let base = |w: &crate::domain::PlanWork| w.settings.base.clone().or(w.base_branch.clone());
    match record.work.as_ref().map(|w| (&w.mode, base(w))) {
        Some((WorkMode::Worktrees { integration }, base)) => Ok((integration.clone(), base)),
        Some((WorkMode::Shared, _)) => Err(format!(
            "plan {name} works in the shared checkout (worktrees = false): its tasks changed the checkout itself, with no integration branch to review; see `git status` in {}",
            record.plan.repo.display()
        )),
        Some((WorkMode::Plain, _)) => Err(format!(
            "plan {name} works in {}, which is not a git repository: there are no branches to review",
            record.plan.repo.display()
        )),
        None => Err(format!(
            "plan {name} keeps no record of how it used its repository"
        )),
    }
}

/// The blob `path` has on the plan's integration branch now (`""`: deleted there), when the
/// plan changed it. Blocking.
fn blob_to_mark(
    workspaces: &Workspaces,
    record: &PlanRecord,
    path: &str,
) -> Result<String, EngineError> {
    let name = &record.plan.name;
    let (integration, base) = branch_of(record).map_err(EngineError::NoBranch)?;
    let workspace = workspaces.open(&record.plan.repo)?.ok_or_else(|| {
        EngineError::NoBranch(format!(
            "plan {name}: {} is no git repository now",
            record.plan.repo.display()
        ))
    })?;
    let review = workspace.review(&integration, base.as_deref(), 0)?;
    match review.files.iter().find(|f| f.path == path) {
        Some(file) => Ok(file.blob.clone().unwrap_or_default()),
        None => Err(EngineError::NotChanged(format!(
            "plan {name} did not change {path:?}\nhint: `ocio review {name}` lists the files it changed; give one of those paths"
        ))),
    }
}

/// Plan `plan`'s review with no engine running: from what the database holds (`txn`) and git
/// says, the plan's worktrees under `worktree_root`. `None` when there is no such plan.
/// Blocking. The same review a running engine gives, but for the usage of sessions still
/// running (an engine that stopped counts what they had told when it stopped).
pub(crate) fn review_at_rest(
    txn: &redb::ReadTransaction,
    plan: PlanId,
    worktree_root: &std::path::Path,
) -> Result<Option<PlanReview>, EngineError> {
    let Some(stored) = read_stored(txn, plan)? else {
        return Ok(None);
    };
    let workspaces = Workspaces::new(worktree_root.to_path_buf());
    assemble(&workspaces, stored).map(Some)
}

/// The review from what the store keeps and git says. Blocking.
fn assemble(workspaces: &Workspaces, stored: Stored) -> Result<PlanReview, EngineError> {
    let Stored {
        record,
        sessions,
        marks,
    } = stored;
    let tasks = review_tasks(&record, &sessions);
    let usage = tasks.iter().fold(Usage::default(), |mut sum, t| {
        sum += t.usage;
        sum
    });
    let (branch, no_branch) = match branch_of(&record) {
        Ok((integration, base)) => {
            let workspace = workspaces.open(&record.plan.repo)?;
            let Some(workspace) = workspace else {
                let why = format!("{} is no git repository now", record.plan.repo.display());
                return Err(EngineError::NoBranch(format!(
                    "plan {}: {why}",
                    record.plan.name
                )));
            };
            let mut branch = workspace.review(&integration, base.as_deref(), REVIEW_DIFF_CAP)?;
            attribute(&mut branch, &record.contexts, &marks);
            (Some(branch), None)
        }
        Err(why) => (None, Some(why)),
    };
    Ok(PlanReview {
        plan: record.plan.id,
        name: record.plan.name.clone(),
        branch,
        no_branch,
        tasks,
        usage,
        budget: record.work.as_ref().and_then(|w| w.settings.budget),
        over_budget: record.work.as_ref().and_then(|w| w.over_budget.clone()),
        landing: record.landing.clone(),
    })
}

/// Each task in the plan's order, with its answer and its sessions' usage summed.
fn review_tasks(record: &PlanRecord, sessions: &[Session]) -> Vec<ReviewTask> {
    let contexts: HashMap<_, _> = record.contexts.iter().map(|c| (c.task, c)).collect();
    record
        .tasks
        .iter()
        .map(|task| {
            let mut usage = Usage::default();
            let mut count = 0;
            for session in sessions.iter().filter(|s| s.task == Some(task.id)) {
                usage += session.usage;
                count += 1;
            }
            let context = contexts.get(&task.id);
            ReviewTask {
                key: task.key.clone(),
                title: task.title.clone(),
                status: task.status,
                merge: context.map(|c| c.merge.clone()).unwrap_or_default(),
                answer: context
                    .and_then(|c| c.summary.clone())
                    .or_else(|| task.result.clone()),
                usage,
                sessions: count,
            }
        })
        .collect()
}

/// Which merged tasks changed each file (by its path or, renamed, its former one), and
/// whether it is reviewed as it is now.
pub(super) fn attribute(
    branch: &mut BranchReview,
    contexts: &[TaskContext],
    marks: &BTreeMap<String, String>,
) {
    let merged: Vec<&TaskContext> = contexts
        .iter()
        .filter(|c| matches!(c.merge, MergeState::Merged { .. }))
        .collect();
    for file in &mut branch.files {
        let names = |c: &&&TaskContext| {
            c.files_changed
                .iter()
                .any(|f| *f == file.path || Some(f) == file.from.as_ref())
        };
        file.tasks = merged.iter().filter(names).map(|c| c.key.clone()).collect();
        let now = file.blob.clone().unwrap_or_default();
        file.reviewed = match marks.get(&file.path) {
            Some(blob) if *blob == now => Reviewed::Yes,
            Some(_) => Reviewed::Changed,
            None => Reviewed::No,
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::TaskId;
    use crate::domain::review::ReviewFile;

    fn context(n: u128, key: &str, files: &[&str], merge: MergeState) -> TaskContext {
        TaskContext {
            plan: PlanId::from_u128(1),
            task: TaskId::from_u128(n),
            key: key.into(),
            summary: None,
            files_changed: files.iter().map(|f| f.to_string()).collect(),
            values: Vec::new(),
            commit: None,
            merge,
            conflict_reruns: 0,
            check_reruns: 0,
        }
    }

    fn file(path: &str, from: Option<&str>, blob: Option<&str>) -> ReviewFile {
        ReviewFile {
            status: if from.is_some() { 'R' } else { 'M' },
            path: path.into(),
            from: from.map(str::to_string),
            mode: None,
            added: Some(1),
            removed: Some(0),
            blob: blob.map(str::to_string),
            tasks: Vec::new(),
            reviewed: Reviewed::No,
        }
    }

    #[test]
    fn files_are_claimed_by_merged_tasks_by_path_or_former_path_and_marks_hold_while_unchanged() {
        let merged = || MergeState::Merged { commit: "c".into() };
        let contexts = [
            context(1, "api", &["src/api.rs", "old.rs"], merged()),
            context(2, "docs", &["README.md", "src/api.rs"], merged()),
            context(
                3,
                "parked",
                &["lock.txt"],
                MergeState::Conflict {
                    files: vec!["lock.txt".into()],
                    policy: Default::default(),
                },
            ),
        ];
        let mut branch = BranchReview {
            integration: "ocio/p/integration".into(),
            base: "main".into(),
            base_commit: "b".into(),
            ahead: 1,
            behind: 0,
            files: vec![
                file("src/api.rs", None, Some("a1")),
                file("new.rs", Some("old.rs"), Some("n1")),
                file("lock.txt", None, Some("l2")),
                file("gone.txt", None, None),
            ],
            diff: String::new(),
            diff_cut: None,
        };
        let marks: BTreeMap<String, String> =
            [("src/api.rs", "a1"), ("lock.txt", "l1"), ("gone.txt", "")]
                .into_iter()
                .map(|(p, b)| (p.to_string(), b.to_string()))
                .collect();
        attribute(&mut branch, &contexts, &marks);
        let got: Vec<(&str, Vec<String>, Reviewed)> = branch
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.tasks.clone(), f.reviewed))
            .collect();
        let keys = |k: &[&str]| k.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                ("src/api.rs", keys(&["api", "docs"]), Reviewed::Yes),
                ("new.rs", keys(&["api"]), Reviewed::No),
                // Only a conflicted task wrote it: the resolver or the merge did.
                ("lock.txt", keys(&[]), Reviewed::Changed),
                ("gone.txt", keys(&[]), Reviewed::Yes),
            ]
        );
    }
}
