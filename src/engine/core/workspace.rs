//! How the engine's plans use their repositories: one [`Workspace`] per repository, shared by
//! every plan in it; what each plan keeps for its runs (mode, overlap map, merge queue); and
//! the run of one session around the runner: its worktree made before, its work committed and
//! its changed files listed after, all on blocking threads so the engine's loop never waits
//! for git.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::domain::{Plan, PlanId, SessionId, Task};
use crate::domain::{PlanWork, WorkMode};
use crate::engine::EngineError;
use crate::engine::runner::{Job, Outcome, RunFuture, Runner};
use crate::plan::PlanFile;
use crate::workspace::CleanupPolicy;
use crate::workspace::overlap::OverlapMap;
use crate::workspace::{Integration, MergeOutcome, OnConflict, Workspace, WorkspaceError};

pub(super) use super::tree::TaskTree;

/// The open workspaces, one per repository, shared by the engine and its handles.
#[derive(Clone)]
pub(in crate::engine) struct Workspaces {
    root: PathBuf,
    open: Arc<Mutex<HashMap<PathBuf, Workspace>>>,
}

/// A plan checked and its repository prepared, ready to be stored.
pub(in crate::engine) struct Prepared {
    pub(super) file: PlanFile,
    pub(super) id: PlanId,
    pub(super) work: PlanWork,
    pub(super) workspace: Option<Workspace>,
    pub(super) integration: Option<Integration>,
}

impl Workspaces {
    pub(in crate::engine) fn new(root: PathBuf) -> Self {
        Self {
            root,
            open: Arc::default(),
        }
    }

    /// The workspace of the repository containing `repo`; `None` when it is not in a git
    /// repository. Blocking.
    pub(super) fn open(&self, repo: &Path) -> Result<Option<Workspace>, WorkspaceError> {
        match Workspace::open(repo, &self.root) {
            Ok(workspace) => {
                let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
                let shared = open
                    .entry(workspace.repo().to_path_buf())
                    .or_insert(workspace);
                Ok(Some(shared.clone()))
            }
            Err(WorkspaceError::NotARepository { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Decides how a new plan uses its repository and prepares it: for worktrees, its
    /// integration branch from `base` and that branch's worktree. A `repo` that is gone or
    /// unusable and a `base` the repository does not have are plan errors. Blocking.
    pub(in crate::engine) fn prepare(
        &self,
        file: PlanFile,
        id: PlanId,
    ) -> Result<Prepared, EngineError> {
        // Checked on load too, but the directory may have gone since.
        file.check_repo().map_err(EngineError::Plan)?;
        let settings = file.settings.clone();
        let workspace = self.open(&file.repo_path())?;
        let (key, mode, integration) = match &workspace {
            None => (unbranched_key(&file, id), WorkMode::Plain, None),
            Some(_) if !settings.worktrees => (unbranched_key(&file, id), WorkMode::Shared, None),
            Some(workspace) => {
                let (key, integration) = workspace
                    .claim_integration(&file.name, settings.base.as_deref())
                    .map_err(|error| match error {
                        WorkspaceError::UnknownBase { repo, .. } => {
                            EngineError::Plan(file.unknown_base(&repo))
                        }
                        other => other.into(),
                    })?;
                let mode = WorkMode::Worktrees {
                    integration: integration.branch.clone(),
                };
                (key, mode, Some(integration))
            }
        };
        // Where `ocio land` delivers the work when the plan names no base.
        let base_branch = match (&workspace, &settings.base) {
            (Some(workspace), None) => workspace.current_branch()?,
            _ => None,
        };
        let work = PlanWork {
            plan: id,
            settings,
            key,
            mode,
            base_branch,
            over_budget: None,
        };
        Ok(Prepared {
            file,
            id,
            work,
            workspace,
            integration,
        })
    }

    /// After a restart: the plan's workspace again, and for a plan with work to come
    /// (`active`), its integration worktree made again if it went missing. Blocking.
    pub(super) fn reattach(
        &self,
        plan: &Plan,
        work: &PlanWork,
        active: bool,
    ) -> Result<Option<Workspace>, WorkspaceError> {
        if work.mode == WorkMode::Plain {
            return Ok(None);
        }
        let workspace = self
            .open(&plan.repo)?
            .ok_or_else(|| WorkspaceError::NotARepository {
                path: plan.repo.clone(),
                stderr: "it was a git repository when the plan was submitted".into(),
            })?;
        if active && matches!(work.mode, WorkMode::Worktrees { .. }) {
            workspace.ensure_integration(&work.key, work.settings.base.as_deref())?;
        }
        Ok(Some(workspace))
    }
}

/// The key of a plan that makes no branches: its name and short id, unique without asking git.
fn unbranched_key(file: &PlanFile, id: PlanId) -> String {
    format!("{}-{}", file.name, id.short())
}

/// What a plan keeps for its runs besides its task graph.
pub(super) struct PlanWorkState {
    pub(super) work: PlanWork,
    pub(super) workspace: Option<Workspace>,
    /// Why the workspace could not be opened again after a restart: its runs fail saying so.
    pub(super) broken: Option<String>,
    /// Which running sessions (and sessions whose work awaits its merge) touch which files.
    pub(super) overlap: OverlapMap,
    /// Ready tasks told held (one `TaskHeld` per wait).
    pub(super) held: HashSet<String>,
    /// Tasks whose sessions completed, waiting to merge, in order.
    pub(super) merges: VecDeque<String>,
    /// The task whose merge is under way (a git job, or a resolver session).
    pub(super) merging: Option<String>,
    /// Conflicts waiting for an agent to take their resolver session: (task, files).
    pub(super) resolvers: VecDeque<(String, Vec<String>)>,
    /// Tasks whose merge failed the check, waiting for an agent to take a fix session.
    pub(super) fixes: VecDeque<String>,
    /// The task whose merge the plan's check is testing now, and how to stop that check.
    pub(super) checking: Option<(String, tokio_util::sync::CancellationToken)>,
    /// The session of each task whose work awaits its merge (its files stay in the overlap
    /// map until then).
    pub(super) awaiting: HashMap<String, SessionId>,
    /// Where its work was delivered (`ocio land`), once it was.
    pub(super) landing: Option<crate::domain::PlanLanding>,
}

impl PlanWorkState {
    pub(super) fn new(work: PlanWork, workspace: Option<Workspace>) -> Self {
        Self {
            work,
            workspace,
            broken: None,
            overlap: OverlapMap::new(),
            held: HashSet::new(),
            merges: VecDeque::new(),
            merging: None,
            resolvers: VecDeque::new(),
            fixes: VecDeque::new(),
            checking: None,
            awaiting: HashMap::new(),
            landing: None,
        }
    }

    /// A plan stored before plans recorded how they use their repository: as it always ran.
    pub(super) fn plain(plan: &Plan) -> Self {
        let work = PlanWork {
            plan: plan.id,
            settings: Default::default(),
            key: format!("{}-{}", plan.name, plan.id.short()),
            mode: WorkMode::Plain,
            base_branch: None,
            over_budget: None,
        };
        Self::new(work, None)
    }

    pub(super) fn worktrees(&self) -> bool {
        matches!(self.work.mode, WorkMode::Worktrees { .. })
    }

    /// Whether the plan works in a directory that is no git repository.
    pub(super) fn in_plain_directory(&self) -> bool {
        matches!(self.work.mode, WorkMode::Plain)
    }

    /// What happens to its worktrees: the plan's `cleanup`, else the engine's (`default`).
    pub(super) fn cleanup(&self, default: CleanupPolicy) -> CleanupPolicy {
        self.work.settings.cleanup.unwrap_or(default)
    }

    /// Tasks whose sessions completed and whose work is not merged yet: each holds its
    /// worktree until it is. (After a restart only the merge queue knows them.)
    pub(super) fn unmerged(&self) -> usize {
        let queued = self.merges.len()
            + self.resolvers.len()
            + self.fixes.len()
            + usize::from(self.merging.is_some());
        self.awaiting.len().max(queued)
    }

    /// The lock a session of this plan holds besides the task's own: the checkout, when the
    /// plan's sessions share it.
    pub(super) fn checkout_lock(&self) -> Option<String> {
        let workspace = self.workspace.as_ref()?;
        (self.work.mode == WorkMode::Shared).then(|| format!("repo:{}", workspace.repo().display()))
    }

    /// A running session touches one of the files `task` declares: that session and file, and
    /// whether this is news (the task was not held before).
    pub(super) fn hold(&mut self, task: &Task) -> Option<(SessionId, String, bool)> {
        if task.files.is_empty() || !self.worktrees() {
            return None;
        }
        let declared: Vec<String> = task.files.iter().cloned().collect();
        let (session, file) = self.overlap.blocks(&declared)?;
        let news = self.held.insert(task.key.clone());
        Some((session, file, news))
    }

    /// Where a task's attempt runs (on `agent`): its directory, where edits count for the
    /// overlap map, and what is done around the run.
    pub(super) fn place(
        &self,
        repo: &Path,
        task: &Task,
        attempt: u32,
        agent: &str,
    ) -> (PathBuf, Option<PathBuf>, Place) {
        if let Some(error) = &self.broken {
            return (repo.to_path_buf(), None, Place::Broken(error.clone()));
        }
        match (&self.work.mode, &self.workspace) {
            (WorkMode::Worktrees { .. }, Some(workspace)) => {
                let path = workspace.task_path(&self.work.key, &task.key, attempt);
                let place = Place::Worktree(Box::new(TaskTree {
                    workspace: workspace.clone(),
                    plan: self.work.key.clone(),
                    task: task.key.clone(),
                    attempt,
                    title: task.title.clone(),
                    agent: agent.to_string(),
                    setup: self.work.settings.setup.clone(),
                    copy: self.work.settings.copy.clone(),
                    continues: task.over_budget.is_some(),
                    stop_note: Default::default(),
                }));
                (path.clone(), Some(path), place)
            }
            (WorkMode::Shared, Some(workspace)) => {
                let place = Place::Shared {
                    workspace: workspace.clone(),
                    dir: repo.to_path_buf(),
                };
                (repo.to_path_buf(), None, place)
            }
            (WorkMode::Plain, _) => (repo.to_path_buf(), None, Place::AsIs),
            (_, None) => {
                let error = "the plan's repository was not opened again after a restart".into();
                (repo.to_path_buf(), None, Place::Broken(error))
            }
        }
    }
}

/// What is done around a session's run.
pub(super) enum Place {
    /// Nothing: a plan outside git, or a resolver (its merge is concluded by the engine).
    AsIs,
    /// Make the attempt's worktree first (and ready it: `copy`, `setup`); commit what the
    /// session left and list the changed files after.
    Worktree(Box<TaskTree>),
    /// Note the checkout's commit first; list the files changed since after.
    Shared { workspace: Workspace, dir: PathBuf },
    /// The plan's repository cannot be used: the run fails with this.
    Broken(String),
}

impl Place {
    /// Where the engine says why it stops the run and keeps its work (a task worktree).
    pub(super) fn stop_note(&self) -> Option<super::tree::StopNote> {
        match self {
            Place::Worktree(tree) => Some(tree.stop_note.clone()),
            _ => None,
        }
    }
}

/// How the runner is to be started.
pub(super) enum Start {
    Run(Arc<dyn Runner>, Box<Job>, oneshot::Receiver<()>),
    /// A run re-attached after a restart (its worktree exists).
    Resumed(RunFuture),
}

/// A run in its place, to its end.
pub(super) type EndFuture = Pin<Box<dyn std::future::Future<Output = Ended> + Send>>;

/// How a run ended, with what its session changed.
pub(super) struct Ended {
    pub(super) outcome: Outcome,
    pub(super) work: Work,
}

#[derive(Debug, Default)]
pub(super) struct Work {
    /// Repo-relative, sorted.
    pub(super) files: Vec<String>,
    /// The commit of the session's work on its task branch.
    pub(super) commit: Option<String>,
}

/// Runs `f` on a blocking thread; its error as text.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the git job did not finish: {e}")),
    }
}

pub(super) fn failed(error: String) -> Ended {
    Ended {
        outcome: Outcome::Failed {
            error,
            agent_fault: false,
            usage: Default::default(),
        },
        work: Work::default(),
    }
}

/// One session's run in its place.
pub(super) async fn run_in(place: Place, start: Start) -> Ended {
    match place {
        Place::Broken(error) => failed(error),
        Place::AsIs => Ended {
            outcome: started(start).await,
            work: Work::default(),
        },
        Place::Worktree(tree) => super::tree::in_worktree(*tree, start).await,
        Place::Shared { workspace, dir } => {
            let base = match &start {
                Start::Run(..) => {
                    let (workspace, dir) = (workspace.clone(), dir.clone());
                    blocking(move || workspace.head(&dir)).await.ok()
                }
                // Where a re-attached run started was not recorded.
                Start::Resumed(_) => None,
            };
            let outcome = started(start).await;
            let mut work = Work::default();
            if let (Outcome::Completed { .. }, Some(base)) = (&outcome, base) {
                match blocking(move || workspace.changed_since(&dir, &base)).await {
                    Ok(files) => work.files = files,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list the files a session changed")
                    }
                }
            }
            Ended { outcome, work }
        }
    }
}

async fn started(start: Start) -> Outcome {
    match start {
        Start::Run(runner, job, stop) => runner.run(*job, stop).await,
        Start::Resumed(future) => future.await,
    }
}

/// How a task's merge ended.
#[derive(Debug)]
pub(super) enum MergeEnd {
    /// Merged: the integration branch's commit after it.
    Merged { commit: String },
    /// The task's branch held nothing the integration branch lacks: its commit as it is.
    UpToDate { commit: String },
    /// Git stopped on conflicts in these files.
    Conflicted { files: Vec<String> },
    /// Git could not merge it (why).
    Failed { error: String },
}

/// A task's merge, on a blocking thread. A task whose work is merged lets its worktree go at
/// once, by `policy` (see [`tidy_merged`]).
pub(super) fn merge_task(
    workspace: &Workspace,
    plan: &str,
    task: &str,
    on_conflict: OnConflict,
    policy: CleanupPolicy,
    tidy: bool,
) -> Result<MergeEnd, WorkspaceError> {
    let end = match workspace.merge(plan, task, on_conflict)? {
        MergeOutcome::Merged { commit } => MergeEnd::Merged { commit },
        MergeOutcome::UpToDate => MergeEnd::UpToDate {
            commit: workspace.head(&workspace.integration_path(plan))?,
        },
        MergeOutcome::Conflict { files } => return Ok(MergeEnd::Conflicted { files }),
    };
    if tidy {
        tidy_merged(workspace, plan, task, policy);
    }
    Ok(end)
}

/// After a task's merge: its worktree and branch go by `policy` (blocking), so worktrees do
/// not pile up over a long plan. A failure is only logged: the merge stands, and the plan's
/// cleanup at its end tries again.
pub(super) fn tidy_merged(workspace: &Workspace, plan: &str, task: &str, policy: CleanupPolicy) {
    if let Err(error) = workspace.cleanup_task(plan, task, policy) {
        tracing::warn!(%task, %error, "cannot remove a merged task's worktree");
    }
}
