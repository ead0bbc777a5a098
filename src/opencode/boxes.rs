//! Workspaces on a build box: an OpenCode server whose machine does not see ocio's disk.
//!
//! Nothing but the server's own API is used, no extra daemon or ssh: git commands run on the
//! box through `POST /session/{id}/shell` (in a short-lived session of ocio's own, never the
//! task's, so no model reads them), bundles go in through `POST /vcs/apply` (a binary patch
//! creating the file) and come back through `GET /file/content` (base64), both ways cut in
//! parts of at most [`PART_BYTES`]. On the box, under
//! its root (`remote_dir`, else `.ocio-work` in the server's own directory):
//!
//! - `mirror/`: a git repository holding ocio's commits under their own ids, so what it has
//!   is never sent again (the first task on a box moves the whole history, later ones only
//!   what is new);
//! - `work/NAME/`: one worktree of the mirror per task attempt, where its session works;
//! - `inbox/`, `outbox/`: where bundles land on their way in and out.
//!
//! The local side (bundles, fetching, laying the work down) is `crate::workspace::carry`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, PoisonError, Weak};

use tokio::sync::{Mutex, OnceCell};

use super::client::{Client, ClientError};
use super::wire::CreateSession;
use crate::workspace::WorkspaceError;
use crate::workspace::{carry, carry_modules};

/// What marks a box script that ran to its end.
const DONE: &str = "OCIO-BOX-DONE";

/// git on the box committing as ocio, with no hook of the box's run and nothing signed: for
/// the commits that carry a session's work (and what a sweep keeps) back.
const GIT_AS_OCIO: &str = "git -c core.hooksPath=/dev/null -c commit.gpgSign=false -c user.name=ocio -c user.email=ocio@localhost";

/// How many of the mirror's newest commits are offered as what it has.
const HAVES: usize = 64;

/// The most of a bundle one request carries either way: each part is held in memory several
/// times over on both sides while it travels (a patch string and its JSON body going in,
/// base64 and its decoding coming back, and the server's own copies), so a repository of any
/// size travels in bounded memory.
const PART_BYTES: usize = 8 << 20;

/// A build box's workspaces, reached through its server.
#[derive(Debug)]
pub struct BoxWorkspace {
    client: Client,
    /// The OpenCode agent whose shell runs ocio's git commands.
    shell_agent: String,
    configured_root: Option<String>,
    /// The server's own directory (where ocio's shell sessions are made) and the root.
    places: OnceCell<(String, String)>,
    /// One parcel on its way in at a time (two tasks from one base send it once).
    sending: Mutex<()>,
    /// The most of a bundle one request carries.
    part_bytes: usize,
}

/// Why a tree could not be carried.
#[derive(Debug, thiserror::Error)]
pub enum BoxError {
    #[error(transparent)]
    Server(#[from] ClientError),
    #[error("on ocio's side: {0}")]
    Local(#[from] WorkspaceError),
    #[error("on the server's machine, {step} failed: {output}")]
    Script { step: &'static str, output: String },
    #[error(
        "the box's worktree {dir} is gone and its work never came back\nhint: the task runs again"
    )]
    Gone { dir: String },
    /// The plan's `setup` failed on the box (the task's failure, as it is in ocio's worktree).
    #[error("setup on the build box: {0}")]
    Setup(String),
    /// What the task's tree holds cannot travel exactly (Git LFS contents, files written into
    /// a submodule that was not checked out): the task's failure, saying what to do.
    #[error("{0}")]
    Refused(String),
}

impl BoxError {
    /// The server could not be reached (the run is lost with it, not failed).
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            Self::Server(
                ClientError::Connect { .. }
                    | ClientError::Timeout { .. }
                    | ClientError::CircuitOpen { .. }
            )
        )
    }
}

/// Where a task's work went on the box, and whether it came back changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// The session changed nothing.
    Nothing,
    /// Laid down in the local worktree as this commit's tree.
    Work { commit: String },
}

/// The build-box workspaces of this process, one per server and root: agents on one server
/// (two models on one box, or a `[[agents]]` entry and a fleet member) share its mirror and its
/// one parcel at a time, so a base goes to the box once and two `git init`s never race.
type Shared = HashMap<(String, Option<String>), Weak<BoxWorkspace>>;
static SHARED: LazyLock<std::sync::Mutex<Shared>> = LazyLock::new(Default::default);

impl BoxWorkspace {
    /// The workspace of the server `client` reaches, under `root`: the one another agent on
    /// that server holds, else a new one (its `shell_agent`'s shell runs ocio's git there).
    pub fn shared(client: Client, shell_agent: Option<String>, root: Option<String>) -> Arc<Self> {
        let key = (client.base_url().to_string(), root.clone());
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        shared.retain(|_, held| held.strong_count() > 0);
        if let Some(held) = shared.get(&key).and_then(Weak::upgrade) {
            return held;
        }
        let made = Arc::new(Self::new(client, shell_agent, root));
        shared.insert(key, Arc::downgrade(&made));
        made
    }

    pub fn new(client: Client, shell_agent: Option<String>, root: Option<String>) -> Self {
        Self {
            client,
            shell_agent: shell_agent.unwrap_or_else(|| "build".into()),
            configured_root: root,
            places: OnceCell::new(),
            sending: Mutex::new(()),
            part_bytes: PART_BYTES,
        }
    }

    /// Bundles travel in parts of at most `bytes` (tests cut small ones in several).
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(1);
        self
    }

    /// The name on the box of the task worktree at `local` (see [`carry::box_name`]).
    pub fn name_of(local: &Path) -> String {
        carry::box_name(local)
    }

    /// The root of ocio's workspaces on the box.
    pub async fn root(&self) -> Result<String, BoxError> {
        Ok(self.places().await?.1.clone())
    }

    /// Where the task worktree at `local` is on the box.
    pub async fn dir_of(&self, local: &Path) -> Result<String, BoxError> {
        Ok(format!(
            "{}/work/{}",
            self.root().await?,
            Self::name_of(local)
        ))
    }

    async fn places(&self) -> Result<&(String, String), BoxError> {
        self.places
            .get_or_try_init(|| async {
                let paths = self.client.paths().await?;
                let root = match &self.configured_root {
                    Some(root) => root.clone(),
                    None => format!("{}/.ocio-work", paths.directory.trim_end_matches('/')),
                };
                Ok::<_, BoxError>((paths.directory, root))
            })
            .await
    }

    /// Makes the worktree at `local` on the box, with the same files (its commit, or what
    /// [`carry::hand_over`] makes of files not committed: an integration worktree's merge in
    /// progress); its directory there. Idempotent: a worktree made before (by an engine that stopped since) is kept as it is.
    pub async fn prepare(&self, local: &Path) -> Result<String, BoxError> {
        let name = Self::name_of(local);
        let root = self.root().await?;
        let dir = format!("{root}/work/{name}");
        let (base, lfs, modules) = blocking({
            let local = local.to_path_buf();
            move || {
                let base = carry::hand_over(&local)?;
                let lfs = carry_modules::lfs_files(&local, &base)?;
                let modules = carry_modules::all_modules_of(&local, &base)?;
                Ok((base, lfs, modules))
            }
        })
        .await?;
        submodules::lfs_allowed(&lfs, local)?;
        submodules::say_empty(&modules, local);
        let _one = self.sending.lock().await;
        let found = self.look(&root, &name, &base, &modules).await?;
        self.sweep(&root, sweep::signed_here(&found.owners, &name))
            .await;
        if found.worktree {
            return Ok(dir);
        }
        // What the mirror lacks goes in first, taken in by the same script that makes the
        // worktree (one round trip fewer).
        let mut take_in = match found.has_base {
            true => Vec::new(),
            false => Vec::from_iter(self.send(local, &root, &base, &found.haves).await?),
        };
        take_in.extend(
            self.send_modules(&root, &modules, &found.has_modules, &found.haves)
                .await?,
        );
        // A take-in and a checkout in one script get twice a transfer's time.
        let (step, timeout) = match take_in.is_empty() {
            false => (
                "taking the tree into the box's mirror and making the task's worktree",
                Some(std::time::Duration::from_secs(1200)),
            ),
            true => ("making the task's worktree", None),
        };
        let script = format!(
            "set -e; {take_in}cd {root}; git -C mirror worktree prune; git -C mirror worktree add -q --detach {dir} {base}; {modules}{sign}; echo {DONE}",
            take_in = take_in
                .iter()
                .map(|script| format!("{script}; "))
                .collect::<String>(),
            root = quoted(&root),
            modules = submodules::check_out(&dir, &modules),
            dir = quoted(&dir),
            sign = sweep::sign(&name, local),
        );
        self.script_within(step, &script, timeout).await?;
        Ok(dir)
    }

    /// The mirror (made when missing), the commits it has, whether it has `base` (and which of
    /// `modules`' commits), whether worktree `name` exists started from `base` with its
    /// submodules checked out (one that does not is removed: a half-made one, or one of an
    /// earlier start).
    async fn look(
        &self,
        root: &str,
        name: &str,
        base: &str,
        modules: &[carry_modules::Module],
    ) -> Result<Found, BoxError> {
        let script = format!(
            "set -e; mkdir -p {root}/outbox {root}/work; cd {root}; \
             [ -d mirror/.git ] || git init -q mirror; [ -d inbox/.git ] || git init -q inbox; \
             {settled}; \
             if git -C mirror cat-file -e '{base}^{{commit}}' 2>/dev/null; then echo HAS; \
             git -C mirror update-ref {carried} {base}; fi; {have}\
             if [ -e work/{name} ]; then \
             if [ -e work/{name}/.git ] && git -C work/{name} merge-base --is-ancestor {base} HEAD 2>/dev/null{checked_out}; \
             then echo WORKTREE; \
             else git -C mirror worktree remove --force ../work/{name} 2>/dev/null || rm -rf work/{name}; \
             git -C mirror worktree prune; fi; fi; \
             git -C mirror for-each-ref --sort=-committerdate --count={HAVES} --format='HAVE %(objectname)' refs/ocio/box; \
             {owners}; echo {DONE}",
            root = quoted(root),
            settled = settled("mirror"),
            carried = carry::carried_ref(base),
            have = submodules::have(modules),
            checked_out = submodules::all_checked_out(name, modules),
            owners = sweep::list(),
        );
        let output = self.script("looking at the box's mirror", &script).await?;
        Ok(Found {
            worktree: output.lines().any(|line| line == "WORKTREE"),
            has_base: output.lines().any(|line| line == "HAS"),
            has_modules: output
                .lines()
                .filter_map(|line| line.strip_prefix("HASMOD "))
                .map(str::to_string)
                .collect(),
            haves: output
                .lines()
                .filter_map(|line| line.strip_prefix("HAVE "))
                .map(str::to_string)
                .collect(),
            owners: output,
        })
    }

    /// Sends `base` (and the history the mirror lacks) to the box's inbox; the script that
    /// takes it into the mirror (`None`: the mirror has all of it).
    async fn send(
        &self,
        local: &Path,
        root: &str,
        base: &str,
        haves: &[String],
    ) -> Result<Option<String>, BoxError> {
        let part_bytes = self.part_bytes;
        let parcel = blocking({
            let (local, base, haves) = (local.to_path_buf(), base.to_string(), haves.to_vec());
            move || carry::parcel_for(&local, &base, &haves, part_bytes)
        })
        .await?;
        let Some(parcel) = parcel else {
            return Ok(None);
        };
        tracing::info!(server = self.client.base_url(), commit = %base, bytes = parcel.bytes, parts = parcel.parts(), "sending a tree to a build box");
        self.take_in(root, base, parcel).await.map(Some)
    }

    /// Places `parcel` (carrying `commit`) in the box's inbox; the script that takes it into
    /// the mirror under `commit`'s carried ref.
    async fn take_in(
        &self,
        root: &str,
        commit: &str,
        parcel: carry::Parcel,
    ) -> Result<String, BoxError> {
        let inbox = format!("{root}/inbox");
        let parcel = self.deliver(&inbox, parcel).await?;
        let carried = carry::carried_ref(commit);
        Ok(format!(
            "{joined}; cd ../mirror; git fetch -q ../inbox/{file} +{sent}:{carried}; rm -f ../inbox/{file}",
            joined = joined(&inbox, &parcel),
            file = quoted(&parcel.name),
            sent = parcel.carries,
        ))
    }

    /// Places `parcel`'s parts in the box's `inbox`, one request each.
    pub(super) async fn deliver(
        &self,
        inbox: &str,
        parcel: carry::Parcel,
    ) -> Result<Arc<carry::Parcel>, BoxError> {
        let parcel = Arc::new(parcel);
        for n in 0..parcel.parts() {
            let patch = blocking({
                let parcel = parcel.clone();
                move || parcel.patch(n)
            })
            .await?;
            if !self.client.vcs_apply(inbox, &patch).await? {
                return Err(BoxError::Script {
                    step: "placing a parcel in the box's inbox",
                    output: "the server did not apply the patch".into(),
                });
            }
        }
        Ok(parcel)
    }

    /// Brings the work in the box's worktree `dir` back into the task worktree at `local`, as
    /// uncommitted changes there. `done`: the session has ended for good, so the box's
    /// worktree goes (else it is kept: a session left running is followed again after a
    /// restart, and its work brought back again then). Idempotent.
    pub async fn bring_back(
        &self,
        local: &Path,
        dir: &str,
        done: bool,
    ) -> Result<Returned, BoxError> {
        let name = Self::name_of(local);
        let root = self.root().await?;
        let (base, modules) = blocking({
            let local = local.to_path_buf();
            move || {
                let base = carry::start_of(&local)?;
                Ok((base.clone(), carry_modules::all_modules_of(&local, &base)?))
            }
        })
        .await?;
        let back = carry::returned_ref(&name);
        let outbox = format!("{root}/outbox");
        // No `$(...)` in box scripts: OpenCode 1.18.33 expands a substitution itself before the
        // script runs, in the session's directory (`cd D; echo $(pwd)` prints the old one).
        let git = GIT_AS_OCIO;
        let script = format!(
            "set -e; if [ ! -d {dir} ]; then echo GONE; echo {DONE}; exit 0; fi; {modules}cd {dir}; {git} add -A; \
             if ! git diff --no-ext-diff --cached --quiet; then {git} commit -q --no-verify -m 'ocio: the work of {name}'; fi; \
             if git diff --no-ext-diff --quiet {base} HEAD --; then echo NOTHING; \
             else git update-ref {back} HEAD; cd {outbox}; rm -f {name}.bundle {name}.bundle.part-*; \
             git -C {dir} bundle create -q {outbox}/{name}.bundle {back} ^{base}; \
             split -b {part_bytes} -a 4 {name}.bundle {name}.bundle.part-; rm -f {name}.bundle; \
             ls -1 {name}.bundle.part-*; echo SENT; fi; \
             echo {DONE}",
            part_bytes = self.part_bytes,
            modules = submodules::commit_back(dir, &name, &modules, &outbox, self.part_bytes),
            dir = quoted(dir),
            outbox = quoted(&outbox),
        );
        let output = self
            .script("committing the session's work", &script)
            .await?;
        if let Some(refused) = submodules::strays(&output, &modules, dir) {
            return Err(refused);
        }
        self.fetch_modules_back(local, &name, &root, &modules, &output)
            .await?;
        let returned = if output.lines().any(|line| line == "GONE") {
            self.received(local, &name, dir).await?
        } else if output.lines().any(|line| line == "NOTHING") {
            blocking({
                let (local, name, base) = (local.to_path_buf(), name.clone(), base.clone());
                move || carry::returned_nothing(&local, &name, &base)
            })
            .await?;
            Returned::Nothing
        } else {
            let parts = output
                .lines()
                .map(str::trim)
                .filter(|line| line.starts_with(&format!("{name}.bundle.part-")));
            let commit = self.fetch_back(local, &name, &root, parts).await?;
            Returned::Work { commit }
        };
        if let Returned::Work { commit } = &returned {
            blocking({
                let (local, commit) = (local.to_path_buf(), commit.clone());
                move || carry::lay_down(&local, &commit)
            })
            .await?;
        }
        if done {
            self.tidy(&root, &name, dir).await;
        }
        Ok(returned)
    }

    /// The bundle the box cut in `parts` (in its outbox), read part by part into a local file
    /// and fetched from there; the work's commit.
    async fn fetch_back(
        &self,
        local: &Path,
        name: &str,
        root: &str,
        parts: impl Iterator<Item = &str>,
    ) -> Result<String, BoxError> {
        let outbox = format!("{root}/outbox");
        let file = blocking({
            let local = local.to_path_buf();
            move || carry::incoming(&local)
        })
        .await?;
        for part in parts {
            let bytes = self.client.file_bytes(&outbox, part).await?;
            let path = file.path().to_path_buf();
            blocking(move || carry::append(&path, &bytes)).await?;
        }
        blocking({
            let (local, name) = (local.to_path_buf(), name.to_string());
            move || {
                let commit = carry::receive(&local, &name, file.path());
                drop(file);
                commit
            }
        })
        .await
    }

    /// The work that came back before the box's worktree went.
    async fn received(&self, local: &Path, name: &str, dir: &str) -> Result<Returned, BoxError> {
        let found = blocking({
            let (local, name) = (local.to_path_buf(), name.to_string());
            move || carry::received(&local, &name)
        })
        .await?;
        let start = blocking({
            let local = local.to_path_buf();
            move || carry::start_of(&local)
        })
        .await?;
        match found {
            Some(commit) if commit == start => Ok(Returned::Nothing),
            Some(commit) => Ok(Returned::Work { commit }),
            None => Err(BoxError::Gone { dir: dir.into() }),
        }
    }

    /// The box's worktree of `local` goes (its session never started: its setup failed).
    pub async fn discard(&self, local: &Path, dir: &str) {
        match self.root().await {
            Ok(root) => self.tidy(&root, &Self::name_of(local), dir).await,
            Err(error) => tracing::warn!(%dir, %error, "cannot remove a box's worktree"),
        }
    }

    /// The box's worktree of a finished session goes, with its bundle, ref and setup's files.
    pub(super) async fn tidy(&self, root: &str, name: &str, dir: &str) {
        // Only ever what ocio made under the root (a session's recorded directory is not
        // taken at its word for a removal).
        if dir != format!("{root}/work/{name}") {
            tracing::warn!(server = self.client.base_url(), %dir, %root, "a box worktree outside the box's root (made under an earlier root?) is left as it is");
            return;
        }
        let script = format!(
            "cd {root} || exit 1; {removal}; echo {DONE}",
            root = quoted(root),
            removal = sweep::removal(name, false),
        );
        if let Err(error) = self.script("removing the task's worktree", &script).await {
            tracing::warn!(server = self.client.base_url(), %dir, %error, "cannot remove a finished task's worktree on its box");
        }
    }

    /// Runs `script` on the box (in a session of ocio's own, deleted after); its output, which
    /// must end with the [`DONE`] marker.
    async fn script(&self, step: &'static str, script: &str) -> Result<String, BoxError> {
        self.script_within(step, script, None).await
    }

    /// [`Self::script`], given `timeout` (at least the transfers' own) to end.
    async fn script_within(
        &self,
        step: &'static str,
        script: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<String, BoxError> {
        let (home, _) = self.places().await?;
        let create = CreateSession {
            title: Some(format!("ocio: {step}")),
            ..CreateSession::default()
        };
        let session = self.client.create_session(home, &create).await?.id;
        let ran = self
            .client
            .shell(home, &session, &self.shell_agent, script, timeout)
            .await;
        if let Err(e) = self.client.delete_session(home, &session).await {
            tracing::debug!(error = %e, "cannot delete ocio's shell session on a box");
        }
        let output = ran?;
        if output.lines().any(|line| line.trim_end() == DONE) {
            Ok(output)
        } else {
            Err(BoxError::Script {
                step,
                output: crate::text::clip(output.trim(), 2000),
            })
        }
    }
}

/// What the box's mirror holds.
struct Found {
    worktree: bool,
    has_base: bool,
    /// The submodules' commits it has.
    has_modules: Vec<String>,
    haves: Vec<String>,
    /// The script's output, with the worktrees' signatures (see [`sweep::list`]).
    owners: String,
}

/// The script that joins `parcel`'s parts in `inbox` into its file, leaving the shell there.
fn joined(inbox: &str, parcel: &carry::Parcel) -> String {
    format!(
        "cd {inbox}; cat {file}.part-* > {file}; rm -f {file}.part-*",
        inbox = quoted(inbox),
        file = quoted(&parcel.name),
    )
}

/// The box's own git configuration (its user's, its system's) kept from deciding what is
/// checked out or recorded in `mirror` and its worktrees, where ocio's and the sessions' git
/// both read the mirror's own settings first: no line endings converted, symlinks trusted,
/// nothing ignored beyond the repository's own `.gitignore`, no attributes, filters (git-lfs),
/// hooks or signing of the box's (and `--no-ext-diff` wherever ocio asks git whether anything changed). What ocio carries comes and goes exactly, whatever the box's
/// user set up. Written once per mirror (the settings' version is recorded with them).
fn settled(mirror: &str) -> String {
    const SETTINGS: &[(&str, &str)] = &[
        ("core.autocrlf", "false"),
        ("core.eol", "lf"),
        ("core.safecrlf", "false"),
        ("core.hooksPath", "/dev/null"),
        ("core.excludesFile", "/dev/null"),
        ("core.attributesFile", "/dev/null"),
        ("commit.gpgSign", "false"),
        ("tag.gpgSign", "false"),
        // Git LFS files check out and are recorded as the pointers the commits hold, whatever
        // git-lfs the box has (its objects never travel: see `box_modules.rs`).
        ("filter.lfs.process", ""),
        ("filter.lfs.smudge", ""),
        ("filter.lfs.clean", ""),
        ("filter.lfs.required", "false"),
        (SETTLED_KEY, SETTLED_VERSION),
    ];
    let set: Vec<String> = SETTINGS
        .iter()
        .map(|(key, value)| format!("git -C {mirror} config {key} {}", quoted(value)))
        .collect();
    // What `git init` found of the box's filesystem (`core.fileMode`, `core.ignoreCase`, and
    // `core.symlinks` where it has none) stays; symlinks are trusted where it said nothing.
    format!(
        "git -C {mirror} config --get {SETTLED_KEY} | grep -qx {SETTLED_VERSION} || {{ \
         git -C {mirror} config --local --get core.symlinks >/dev/null || git -C {mirror} config core.symlinks true; {}; }}",
        set.join("; ")
    )
}

/// Where a mirror records which of ocio's settings it has ([`settled`]).
const SETTLED_KEY: &str = "ocio.settled";
const SETTLED_VERSION: &str = "2";

/// `text` quoted for a POSIX shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Result<T, BoxError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(BoxError::Script {
            step: "a git job on ocio's side",
            output: e.to_string(),
        }),
    }
}

#[path = "box_setup.rs"]
mod setup;
#[path = "box_modules.rs"]
mod submodules;
#[path = "box_sweep.rs"]
mod sweep;
pub use setup::SetupFor;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client(url: &str) -> Client {
        Client::new(url, None, Default::default()).unwrap()
    }

    #[test]
    fn agents_on_one_server_share_its_workspace_and_other_roots_or_servers_do_not() {
        let a = BoxWorkspace::shared(client("http://10.9.8.7:4096"), None, None);
        let b = BoxWorkspace::shared(client("http://10.9.8.7:4096"), Some("plan".into()), None);
        assert!(Arc::ptr_eq(&a, &b), "one server, one root: one workspace");
        let other_root = BoxWorkspace::shared(
            client("http://10.9.8.7:4096"),
            None,
            Some("/srv/ocio".into()),
        );
        assert!(!Arc::ptr_eq(&a, &other_root));
        let other_server = BoxWorkspace::shared(client("http://10.9.8.6:4096"), None, None);
        assert!(!Arc::ptr_eq(&a, &other_server));
        let held = Arc::downgrade(&a);
        drop((a, b));
        assert!(held.upgrade().is_none(), "the registry holds none alive");
        let again = BoxWorkspace::shared(client("http://10.9.8.7:4096"), None, None);
        assert_eq!(
            again.shell_agent, "build",
            "made anew once the last was gone"
        );
    }

    /// Runs `script` with `sh` in `dir`, the box's own git configuration being `config`.
    pub(super) fn on_box(dir: &Path, config: &Path, script: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", config)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn a_settled_mirror_checks_out_and_records_exactly_whatever_the_boxs_own_git_config() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (box_dir, config) = (dir.path(), dir.path().join("gitconfig"));
        let hooks = box_dir.join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        std::fs::write(hooks.join("post-checkout"), "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(
            hooks.join("post-checkout"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(box_dir.join("excludes"), "*.bin\n").unwrap();
        std::fs::write(
            &config,
            format!(
                "[core]\n\tautocrlf = true\n\teol = crlf\n\tsymlinks = false\n\thooksPath = {}\n\texcludesFile = {}\n[user]\n\tname = box\n\temail = box@box\n",
                hooks.display(),
                box_dir.join("excludes").display()
            ),
        )
        .unwrap();
        // The mirror holds a commit with a text file, a symlink and a binary file.
        on_box(
            box_dir,
            &config,
            &format!(
                "set -e; git init -q mirror; {settled}; cd mirror; printf 'a\\nb\\n' > text.txt; \
                 ln -s text.txt link; printf '\\000x' > blob.bin; \
                 git add -A; git add -f blob.bin; git commit -q --no-verify -m base",
                settled = settled("mirror")
            ),
        );
        on_box(
            box_dir,
            &config,
            "set -e; cd mirror; git worktree add -q --detach ../work HEAD",
        );
        let work = box_dir.join("work");
        assert_eq!(std::fs::read(work.join("text.txt")).unwrap(), b"a\nb\n");
        assert!(
            std::fs::symlink_metadata(work.join("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // What a session adds there is all recorded, the box's excludes notwithstanding.
        std::fs::write(work.join("new.bin"), b"\x00\x01").unwrap();
        let added = on_box(
            &work,
            &config,
            "set -e; git add -A; git diff --cached --name-only",
        );
        assert_eq!(added.trim(), "new.bin");
        // Settled once: a setting changed since is left as it is.
        on_box(box_dir, &config, "git -C mirror config core.eol crlf");
        on_box(box_dir, &config, &settled("mirror"));
        let eol = on_box(box_dir, &config, "git -C mirror config core.eol");
        assert_eq!(eol.trim(), "crlf");
    }
}
