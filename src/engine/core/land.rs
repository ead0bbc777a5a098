//! Delivering a finished plan's work (`ocio land`): the loop checks that the plan has nothing
//! under way and decides base branch and messages; the git work (bringing the base in, the
//! result commit, moving the base branch, the cleanup after, or a push and a pull request) runs
//! on a blocking thread through `crate::workspace`; its result comes back to the loop, which
//! records the landing in the store before it tells anyone (`PlanLanded`) and answers.

use std::collections::HashMap;

use super::merge::GitDone;
use super::{Core, Step, Typed};
use crate::domain::task::ConflictPolicy;
use crate::domain::{LandMode, MergeState, PlanId, PlanLanding, TaskStatus, Usage};
use crate::engine::api::{Landing, Push};
use crate::engine::{EngineError, EngineEvent};
use crate::store::query;
use crate::workspace::{BaseIn, Combine, OnConflict, Workspace, WorkspaceError};

/// What the git job needs.
struct Job {
    /// The plan's workspace; `None` when the engine has not opened it (a finished plan after
    /// a restart needs no git until now): opened by the job.
    workspace: Option<Workspace>,
    workspaces: super::Workspaces,
    repo: std::path::PathBuf,
    key: String,
    base: String,
    mode: LandMode,
    combine: Combine,
    push: Option<Push>,
    title: String,
    body: String,
    policy: crate::workspace::CleanupPolicy,
    tool_path: Option<std::ffi::OsString>,
    /// The plan's check, run again when the base is brought in.
    check: Option<String>,
    /// What a moved base that conflicts gets: left for a resolver session (plan `conflicts =
    /// "resolver"`), or aborted and refused.
    on_conflict: OnConflict,
}

/// A landing's git work done, back to the loop to be recorded and answered.
pub(super) struct LandDone {
    pub(super) plan: PlanId,
    pub(super) result: Result<LandEnd, EngineError>,
    pub(super) answer: Typed<Landing>,
}

/// Where a landing's git work stopped.
pub(super) enum LandEnd {
    /// Landed (or pushed): to be recorded.
    Landed(Box<Landing>),
    /// The moved base conflicts, its merge left for a resolver session.
    Conflicted(Box<BaseConflict>),
}

/// A landing stopped on a moved base that conflicts, its merge of the base left in progress in
/// the integration worktree: what [`complete`] needs to go on once a resolver settled it.
pub(super) struct BaseConflict {
    job: Job,
    pub(super) workspace: Workspace,
    /// The conflicted files, repo-relative.
    pub(super) files: Vec<String>,
    /// The integration branch's commit before the merge: what a failure goes back to.
    pub(super) before: String,
    landing: Landing,
}

impl BaseConflict {
    pub(super) fn base(&self) -> &str {
        &self.job.base
    }

    pub(super) fn plan_key(&self) -> &str {
        &self.job.key
    }

    /// The resolver's work concluded and the landing goes on: the check with the base in,
    /// the landing commit, the cleanup (blocking).
    pub(super) fn complete(self) -> Result<Landing, EngineError> {
        let BaseConflict {
            job,
            workspace,
            files,
            before,
            mut landing,
        } = self;
        if let Err(e) = workspace.conclude_base_merge(&job.key) {
            let why = format!("the resolver session left it unresolved: {e}");
            return Err(undo_base_merge(
                &workspace, &job.key, &job.base, &before, &why,
            ));
        }
        landing.base_merged = true;
        landing.base_resolved = files;
        complete(&workspace, &job, &before, &mut landing)?;
        Ok(landing)
    }
}

impl std::fmt::Debug for LandDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LandDone")
            .field("plan", &self.plan)
            .finish()
    }
}

impl Core {
    /// [`crate::engine::Request::Land`]: refused at once when the plan cannot land now;
    /// otherwise its git work runs off the loop and [`Self::on_landed`] answers.
    pub(super) async fn land(
        &mut self,
        plan: PlanId,
        mode: LandMode,
        push: Option<Push>,
        answer: Typed<Landing>,
    ) {
        if let Err(e) = self.load_for_landing(plan).await {
            answer.send(Err(e));
            return;
        }
        let earlier = self.store.read(move |txn| query::landing(txn, plan)).await;
        let name = self
            .plans
            .get(&plan)
            .map(|s| s.plan.name.clone())
            .unwrap_or_default();
        match earlier {
            Err(e) => return answer.send(Err(e.into())),
            Ok(Some(record)) if record.mode.is_some() => {
                // Landed before: said so, nothing done (landing twice is not an error).
                return answer.send(Ok(Landing {
                    record,
                    name,
                    already: true,
                    ..empty_landing()
                }));
            }
            Ok(_) => {}
        }
        if self.landing.contains(&plan) {
            let why = format!("plan {name} is being landed now: wait for that to finish");
            return answer.send(Err(EngineError::NotLandable(why)));
        }
        let job = match self.landing_job(plan, mode, push) {
            Ok(job) => job,
            Err(e) => return answer.send(Err(e)),
        };
        self.landing.insert(plan);
        let left_out = self.left_out(plan);
        let usage = match job.push {
            Some(_) => self.plan_usage(plan).await,
            None => String::new(),
        };
        let done = self.git_tx.clone();
        self.tasks.spawn(async move {
            let mut job = job;
            job.body.push_str(&usage);
            let result = tokio::task::spawn_blocking(move || run(job))
                .await
                .unwrap_or_else(|e| {
                    Err(EngineError::LandFailed(format!(
                        "its git work did not finish: {e}"
                    )))
                })
                .map(|end| match end {
                    LandEnd::Landed(mut landing) => {
                        landing.left_out = left_out;
                        landing.name = name;
                        LandEnd::Landed(landing)
                    }
                    LandEnd::Conflicted(mut conflict) => {
                        conflict.landing.left_out = left_out;
                        conflict.landing.name = name;
                        LandEnd::Conflicted(conflict)
                    }
                });
            let done_msg = LandDone {
                plan,
                result,
                answer,
            };
            let _ = done.send(GitDone::Landed(Box::new(done_msg))).await;
        });
    }

    /// The landing's git work ended: recorded (durable first), then told and answered.
    pub(super) async fn on_landed(&mut self, done: LandDone) -> Result<(), EngineError> {
        let LandDone {
            plan,
            result,
            answer,
        } = done;
        let mut landing = match result {
            Ok(LandEnd::Landed(landing)) => *landing,
            // Still being landed: a resolver session settles the base's conflicts first.
            Ok(LandEnd::Conflicted(conflict)) => {
                return self.base_conflicted(plan, *conflict, answer).await;
            }
            Err(e) => {
                self.landing.remove(&plan);
                answer.send(Err(e));
                return Ok(());
            }
        };
        self.landing.remove(&plan);
        landing.record.plan = plan;
        landing.record.at = self.now();
        if let Some(state) = self.plans.get(&plan) {
            landing.name = state.plan.name.clone();
        }
        let mut step = Step::default();
        step.batch.put_landing(&landing.record);
        step.events.push(EngineEvent::PlanLanded {
            plan,
            name: landing.name.clone(),
            landing: landing.record.clone(),
        });
        let committed = self.commit(step).await;
        if let (Ok(()), Some(state)) = (&committed, self.plans.get_mut(&plan)) {
            state.work.landing = Some(landing.record.clone());
        }
        match committed {
            Ok(()) => {
                answer.send(Ok(landing));
                Ok(())
            }
            Err(e) => {
                answer.send(Err(EngineError::Halted(e.to_string())));
                Err(e)
            }
        }
    }

    /// Refused while `plan` is being landed (`what`: what would start): work that ran now
    /// would merge after the landing, onto a plan already landed.
    pub(super) fn not_while_landing(&self, plan: PlanId, what: &str) -> Result<(), EngineError> {
        if !self.landing.contains(&plan) {
            return Ok(());
        }
        let name = self
            .plans
            .get(&plan)
            .map_or_else(|| plan.short(), |s| s.plan.name.clone());
        Err(EngineError::NotLandable(format!(
            "plan {name} is being landed now, so {what} would come after its landing\nhint: wait for `ocio land` to finish, then try again"
        )))
    }

    /// The plan in memory, read back from the store when it ended long ago.
    async fn load_for_landing(&mut self, plan: PlanId) -> Result<(), EngineError> {
        if self.plans.contains_key(&plan) {
            return Ok(());
        }
        let record = self
            .store
            .read(move |txn| query::plan_record(txn, plan))
            .await?
            .ok_or(EngineError::UnknownPlan(plan))?;
        self.load(record, self.now()).await
    }

    /// What the git job needs, or why the plan cannot land now.
    fn landing_job(
        &self,
        plan: PlanId,
        mode: LandMode,
        push: Option<Push>,
    ) -> Result<Job, EngineError> {
        let state = self
            .plans
            .get(&plan)
            .ok_or(EngineError::UnknownPlan(plan))?;
        let name = &state.plan.name;
        let refuse = |why: String| EngineError::NotLandable(format!("plan {name}: {why}"));
        if !state.work.worktrees() {
            return Err(refuse("its tasks did not work in worktrees: their changes are in the repository's checkout already, nothing to land".into()));
        }
        let workspace = state.work.workspace.clone();
        self.nothing_under_way(plan)?;
        let work = &state.work.work;
        let base = match (&work.settings.base, &work.base_branch) {
            (Some(base), _) => base.clone(),
            (None, Some(branch)) => branch.clone(),
            (None, None) => return Err(refuse("it did not record a base branch (HEAD was detached when it was submitted, or it is older than `ocio land`)\nhint: merge its integration branch yourself: remove its integration worktree (`git worktree remove`) and `git merge`".into())),
        };
        let merged = self.merged_tasks(plan);
        if merged.is_empty() && push.is_none() {
            return Err(refuse("no task's work was merged: nothing to land".into()));
        }
        let combine = combine(name, mode, &merged);
        let body = match &push {
            Some(_) => self.pr_body(plan),
            None => String::new(),
        };
        Ok(Job {
            workspace,
            workspaces: self.workspaces.clone(),
            repo: state.plan.repo.clone(),
            key: work.key.clone(),
            base,
            mode,
            combine,
            push,
            title: format!("Plan {name}"),
            body,
            policy: state.work.cleanup(self.options.cleanup),
            tool_path: self.options.tool_path.clone(),
            check: work.settings.check.clone(),
            on_conflict: match work.settings.conflicts {
                ConflictPolicy::Resolver => OnConflict::Leave,
                ConflictPolicy::Retry | ConflictPolicy::Manual => OnConflict::Abort,
            },
        })
    }

    /// The plan's tasks whose work was merged, in order: key, title and answer.
    fn merged_tasks(&self, plan: PlanId) -> Vec<(String, String, Option<String>)> {
        let Some(state) = self.plans.get(&plan) else {
            return Vec::new();
        };
        state
            .graph
            .topological_order()
            .into_iter()
            .filter_map(|t| {
                let context = self.contexts.get(&t.id)?;
                matches!(context.merge, MergeState::Merged { .. })
                    .then(|| (t.key.clone(), t.title.clone(), context.summary.clone()))
            })
            .collect()
    }

    /// Refused while tasks of the plan are pending, running, waiting for their merge or
    /// their merge conflict: the tasks are named.
    fn nothing_under_way(&self, plan: PlanId) -> Result<(), EngineError> {
        let Some(state) = self.plans.get(&plan) else {
            return Err(EngineError::UnknownPlan(plan));
        };
        let mut busy: Vec<String> = Vec::new();
        for task in state.graph.topological_order() {
            let merge = self.contexts.get(&task.id).map(|c| &c.merge);
            let why = match (task.status, merge) {
                (status, _) if status.has_work_to_come() => Some(status.to_string()),
                (_, Some(MergeState::Pending)) => Some("waiting to be merged".into()),
                (_, Some(MergeState::Resolving { .. })) => {
                    Some("its merge conflict is being resolved".into())
                }
                (TaskStatus::Failed, Some(MergeState::Conflict { .. })) => {
                    Some("its merge conflict waits for you (`ocio retry`)".into())
                }
                _ => None,
            };
            if let Some(why) = why {
                busy.push(format!("{} ({why})", task.key));
            }
        }
        if busy.is_empty() && state.work.unmerged() == 0 {
            return Ok(());
        }
        Err(EngineError::NotLandable(format!(
            "plan {} still has work under way: {}\nhint: wait for it to finish (`ocio tasks`), or cancel what should not land, then land again",
            state.plan.name,
            if busy.is_empty() {
                "merges queued".to_string()
            } else {
                busy.join(", ")
            }
        )))
    }

    /// The plan's tasks whose work is not in what lands, as `key: why`.
    fn left_out(&self, plan: PlanId) -> Vec<String> {
        let Some(state) = self.plans.get(&plan) else {
            return Vec::new();
        };
        state
            .graph
            .topological_order()
            .into_iter()
            .filter_map(|t| match self.contexts.get(&t.id).map(|c| &c.merge) {
                Some(MergeState::Merged { .. }) => None,
                Some(MergeState::Unchanged) => Some(format!("{}: changed nothing", t.key)),
                _ => Some(format!("{}: {}", t.key, t.status)),
            })
            .collect()
    }

    /// A pull request's body: each task's key, title, merge state and answer.
    fn pr_body(&self, plan: PlanId) -> String {
        let Some(state) = self.plans.get(&plan) else {
            return String::new();
        };
        let mut body = format!("Work of ocio plan **{}**.\n\n", state.plan.name);
        for task in state.graph.topological_order() {
            let context = self.contexts.get(&task.id);
            let merge = context.map_or_else(|| task.status.to_string(), |c| c.merge.to_string());
            body.push_str(&format!("### {}: {}\n\n{merge}\n\n", task.key, task.title));
            if let Some(summary) = context.and_then(|c| c.summary.as_deref()) {
                body.push_str(&format!("{}\n\n", crate::text::clip(summary.trim(), 2000)));
            }
        }
        match &state.work.work.settings.check {
            Some(check) => body.push_str(&format!(
                "Checks: `{check}` passed on the integration branch after every merge (a task's own check where it has one)\n"
            )),
            None => body.push_str("Checks: none (the plan has no `check`)\n"),
        }
        body
    }

    /// Tokens and cost per task and in total, from the plan's stored sessions (empty when
    /// they cannot be read).
    async fn plan_usage(&self, plan: PlanId) -> String {
        let sessions = match self.store.read(query::sessions).await {
            Ok(sessions) => sessions,
            Err(_) => return String::new(),
        };
        let keys: HashMap<_, _> = self
            .plans
            .get(&plan)
            .map(|s| s.graph.tasks().map(|t| (t.id, t.key.clone())).collect())
            .unwrap_or_default();
        let mut by_task: Vec<(String, Usage)> = Vec::new();
        let mut total = Usage::default();
        for session in sessions.iter().filter(|s| s.plan == Some(plan)) {
            let Some(key) = session.task.and_then(|t| keys.get(&t)) else {
                continue;
            };
            total += session.usage;
            match by_task.iter_mut().find(|(k, _)| k == key) {
                Some((_, usage)) => *usage += session.usage,
                None => by_task.push((key.clone(), session.usage)),
            }
        }
        let mut text = String::from("\nUsage:\n");
        for (key, usage) in &by_task {
            text.push_str(&format!(
                "- {key}: {} tokens, ${:.2}\n",
                usage.total_tokens(),
                usage.cost
            ));
        }
        text.push_str(&format!(
            "- total: {} tokens, ${:.2}\n",
            total.total_tokens(),
            total.cost
        ));
        text
    }
}

/// How the commit that lands is made, with its message: the title and the merged tasks
/// (key and title; for a squash, each answer too).
fn combine(name: &str, mode: LandMode, merged: &[(String, String, Option<String>)]) -> Combine {
    let mut listing = String::new();
    for (key, title, summary) in merged {
        listing.push_str(&format!("- {key}: {title}\n"));
        if let (LandMode::Squash, Some(summary)) = (mode, summary) {
            let summary = crate::text::clip(summary.trim(), 600);
            listing.push_str(&format!("  {}\n", summary.replace('\n', "\n  ")));
        }
    }
    let tasks = merged.len();
    match mode {
        LandMode::Merge => Combine::Merge {
            message: format!(
                "Merge plan {name} ({})\n\n{listing}",
                crate::text::count(tasks, "task")
            ),
        },
        LandMode::Squash => Combine::Squash {
            message: format!(
                "Plan {name} ({})\n\n{listing}",
                crate::text::count(tasks, "task")
            ),
        },
        LandMode::Rebase => Combine::Rebase,
    }
}

fn empty_landing() -> Landing {
    Landing {
        record: PlanLanding {
            plan: PlanId::generate(),
            mode: None,
            base: String::new(),
            commit: String::new(),
            files: Vec::new(),
            at: jiff::Timestamp::UNIX_EPOCH,
            pushed_to: None,
            pr_url: None,
        },
        name: String::new(),
        already: false,
        recovered: false,
        base_merged: false,
        base_resolved: Vec::new(),
        left_out: Vec::new(),
        removed: Vec::new(),
        branches_deleted: Vec::new(),
    }
}

/// The integration branch back to `before`, undoing a merge of `base` that a resolver did not
/// settle (`why`): the landing's refusal, saying what was undone and how to settle it by hand
/// (blocking).
pub(super) fn undo_base_merge(
    ws: &Workspace,
    key: &str,
    base: &str,
    before: &str,
    why: &str,
) -> EngineError {
    let undone = match ws.reset_integration(key, before) {
        Ok(()) => format!("the merge of {base} was undone"),
        Err(e) => format!("the merge of {base} could not be undone ({e})"),
    };
    EngineError::NotLandable(format!(
        "{why}\nso nothing was landed and {undone}\nhint: merge {base} into the plan's integration worktree yourself (`git -C {} merge {base}`), resolve, commit, and land again",
        ws.integration_path(key).display()
    ))
}

/// The git work of a landing (blocking).
fn run(job: Job) -> Result<LandEnd, EngineError> {
    let workspace = match job.workspace.clone() {
        Some(workspace) => workspace,
        None => job.workspaces.open(&job.repo)?.ok_or_else(|| {
            EngineError::NotLandable(format!(
                "{} is no longer a git repository: nothing to land there",
                job.repo.display()
            ))
        })?,
    };
    let (ws, key, base) = (&workspace, job.key.as_str(), job.base.as_str());
    if !ws.is_branch(base).map_err(refusal)? {
        return Err(EngineError::NotLandable(format!(
            "base {base:?} is not a branch of {} (a tag, a commit or a detached HEAD)\nhint: land needs a branch to move; merge the integration branch `{}` yourself",
            ws.repo().display(),
            crate::workspace::names::integration_branch(key)
        )));
    }
    let mut landing = empty_landing();
    landing.record.base = base.to_string();
    if let Some(push) = &job.push {
        push_plan(ws, &job, push, &mut landing)?;
        return Ok(LandEnd::Landed(Box::new(landing)));
    }
    landing.record.mode = Some(job.mode);
    if let Some(commit) = ws.landed_in(key, base).map_err(refusal)? {
        // A landing that stopped before it was recorded, or a squash's tree: recorded only.
        landing.record.commit = commit;
        landing.recovered = true;
        clean_up(ws, &job, &mut landing);
        return Ok(LandEnd::Landed(Box::new(landing)));
    }
    let before = ws
        .head(&ws.integration_path(key))
        .map_err(EngineError::Workspace)?;
    match ws
        .bring_base_in(key, base, job.on_conflict)
        .map_err(refusal)?
    {
        BaseIn::Held => {}
        BaseIn::Merged => landing.base_merged = true,
        BaseIn::Conflicted { files } => {
            return Ok(LandEnd::Conflicted(Box::new(BaseConflict {
                job,
                workspace,
                files,
                before,
                landing,
            })));
        }
    }
    complete(ws, &job, &before, &mut landing)?;
    Ok(LandEnd::Landed(Box::new(landing)))
}

/// The integration branch pushed (and a pull request opened), into `landing`.
fn push_plan(
    ws: &Workspace,
    job: &Job,
    push: &Push,
    landing: &mut Landing,
) -> Result<(), EngineError> {
    let remote = ws
        .push(&job.key, &job.base, push.remote.as_deref())
        .map_err(refusal)?;
    let branch = crate::workspace::names::integration_branch(&job.key);
    landing.record.commit = ws.branch_tip(&branch).map_err(refusal)?;
    landing.record.pushed_to = Some(format!("{remote} {branch}"));
    if push.pr {
        let url = super::pull::open(
            ws.repo(),
            job.tool_path.as_deref(),
            &job.base,
            &branch,
            &job.title,
            &job.body,
        )
        .map_err(EngineError::NotLandable)?;
        landing.record.pr_url = Some(url);
    }
    Ok(())
}

/// The landing with the base in the integration branch (`landing.base_merged`: just merged,
/// the branch was at `before` ahead of it): the check, the landing commit, then the cleanup.
fn complete(
    ws: &Workspace,
    job: &Job,
    before: &str,
    landing: &mut Landing,
) -> Result<(), EngineError> {
    let (key, base) = (job.key.as_str(), job.base.as_str());
    if let (true, Some(check)) = (landing.base_merged, job.check.as_deref()) {
        check_with_base(ws, key, base, check, before)?;
    }
    let held = match landing.base_merged {
        // The base held every change already (a squash landed, then the base moved on):
        // nothing new to commit.
        true => ws.landed_in(key, base).map_err(refusal)?,
        false => None,
    };
    match held {
        Some(commit) => {
            landing.record.commit = commit;
            landing.recovered = true;
        }
        None => {
            let landed = ws.land(key, base, &job.combine).map_err(refusal)?;
            landing.record.commit = landed.commit;
            landing.record.files = landed.files;
        }
    }
    clean_up(ws, job, landing);
    Ok(())
}

/// The plan's worktrees and branches after it landed, by its cleanup policy.
fn clean_up(ws: &Workspace, job: &Job, landing: &mut Landing) {
    match ws.after_landing(&job.key, job.policy) {
        Ok(report) => {
            landing.removed = report.removed;
            landing.branches_deleted = report.branches_deleted;
        }
        // The landing stands; what is left is cleaned up by hand or by the next cleanup.
        Err(e) => tracing::warn!(plan = %job.key, error = %e, "cannot clean up after landing"),
    }
}

/// The plan's check on the integration branch with the moved base brought in, before anything
/// moves the base branch: a failure undoes the base's merge (the branch goes back to `before`)
/// and refuses the landing with the check's output.
fn check_with_base(
    ws: &Workspace,
    key: &str,
    base: &str,
    check: &str,
    before: &str,
) -> Result<(), EngineError> {
    let dir = ws.integration_path(key);
    let env = [
        ("OCIO_PLAN", key.to_string()),
        ("OCIO_REPO", ws.repo().display().to_string()),
        ("OCIO_WORKTREE", dir.display().to_string()),
    ];
    // A blocking thread of the engine's runtime: the check is awaited here.
    let run = tokio::runtime::Handle::current().block_on(crate::engine::shell::run(
        check,
        &dir,
        &env,
        std::time::Duration::from_secs(60 * 60),
        None,
    ));
    let tidied = ws.tidy_integration(key);
    if run.passed() {
        return tidied.map_err(EngineError::Workspace);
    }
    let undone = match ws.reset_integration(key, before) {
        Ok(()) => format!("the merge of {base} was undone"),
        Err(e) => format!("the merge of {base} could not be undone ({e})"),
    };
    Err(EngineError::NotLandable(format!(
        "the plan's check fails with {base} brought in, so nothing was landed and {undone}: {}\nhint: fix it on {base} (or merge {base} into the plan's integration branch and fix it there), then land again",
        run.report(check)
    )))
}

/// A workspace error as the landing's: what the user must change is a refusal, the rest a
/// failure.
fn refusal(e: WorkspaceError) -> EngineError {
    match e {
        WorkspaceError::BaseConflict { .. }
        | WorkspaceError::RebaseConflict { .. }
        | WorkspaceError::CheckoutTouches { .. }
        | WorkspaceError::BaseMoved { .. }
        | WorkspaceError::UnknownBase { .. }
        | WorkspaceError::IntegrationDirty { .. }
        | WorkspaceError::MergeInProgress { .. } => EngineError::NotLandable(e.to_string()),
        other => EngineError::Workspace(other),
    }
}
