//! The sessions running now, as the engine keeps them while their runs go on.

use std::path::PathBuf;

use tokio::sync::oneshot;

use crate::domain::{PlanId, Session, SessionStatus};
use crate::engine::view::Entry;

/// What a running session does for its task.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Role {
    /// An attempt at the task.
    Task,
    /// Resolves the conflicts in `files` of the task's merge, in the integration worktree.
    Resolver { files: Vec<String> },
    /// Fix session number `fix` for the check that failed after the task's merge, in the
    /// integration worktree.
    Fixer { fix: u32 },
    /// Resolves the conflicts of the plan's moved base with the task's (merged) work, in the
    /// integration worktree, while the plan is being landed.
    BaseResolver,
}

pub(super) struct Running {
    pub(super) session: Session,
    pub(super) plan: PlanId,
    pub(super) key: String,
    pub(super) agent: usize,
    pub(super) role: Role,
    /// The session's worktree, where the files it edits count for the overlap map.
    pub(super) overlap_dir: Option<PathBuf>,
    pub(super) stop: Option<oneshot::Sender<()>>,
    /// The operator's words to its run (`None` until it starts).
    pub(super) steer: Option<tokio::sync::mpsc::Sender<crate::engine::runner::Steer>>,
    /// Why the engine stopped it, once it did.
    pub(super) stopping: Option<SessionStatus>,
    /// The newest thing it did.
    pub(super) last: Option<Entry>,
    /// Usage reported while it runs (the outcome's usage replaces it).
    pub(super) live: crate::domain::Usage,
    /// Where to say why the engine stops it over budget, so its work so far is committed
    /// (a task in its own worktree).
    pub(super) stop_note: Option<super::tree::StopNote>,
    /// Why the engine stopped it over budget ("over budget: ..."), once it did.
    pub(super) over_budget: Option<String>,
}

impl Running {
    pub(super) fn new(
        session: Session,
        plan: PlanId,
        key: String,
        agent: usize,
        role: Role,
    ) -> Self {
        Self {
            session,
            plan,
            key,
            agent,
            role,
            overlap_dir: None,
            stop: None,
            steer: None,
            stopping: None,
            last: None,
            live: crate::domain::Usage::default(),
            stop_note: None,
            over_budget: None,
        }
    }

    /// The remote session of a task's attempt that works away from its worktree (on a build
    /// box), where the engine cannot look itself.
    pub(super) fn on_box(&self) -> Option<&crate::domain::RemoteSession> {
        let worktree = self.overlap_dir.as_deref()?;
        self.session
            .remote
            .as_ref()
            .filter(|remote| remote.directory != worktree)
    }

    /// Where the files of a task's attempt are, as its session names them: on its box, or
    /// in its worktree.
    pub(super) fn files_dir(&self) -> Option<&std::path::Path> {
        match self.on_box() {
            Some(remote) => Some(&remote.directory),
            None => self.overlap_dir.as_deref(),
        }
    }

    /// Ask its run to stop; it ends with `why` once the run reports back.
    pub(super) fn ask_stop(&mut self, why: SessionStatus) {
        self.stopping = Some(why);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
