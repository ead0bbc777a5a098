//! Running the `git` command line for ocio's worktree work, and what goes wrong doing it.
//!
//! Every command runs with a clean git environment (no inherited `GIT_DIR` and friends), no
//! terminal prompts, hooks off and signing off, so it works the same on every machine and never
//! waits for input. Commits are made as the repository's configured author (read once, as git
//! itself would: `GIT_AUTHOR_*`, then the repository's and the user's `user.name`/`user.email`),
//! or as `ocio <ocio@localhost>` where none is configured.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The author and committer of the commits ocio makes where the repository names none.
pub(crate) const AUTHOR_NAME: &str = "ocio";
pub(crate) const AUTHOR_EMAIL: &str = "ocio@localhost";

/// Who commits: the repository's configured author, or ocio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Author {
    pub(crate) name: String,
    pub(crate) email: String,
}

impl Author {
    pub(crate) fn ocio() -> Self {
        Self {
            name: AUTHOR_NAME.into(),
            email: AUTHOR_EMAIL.into(),
        }
    }

    /// Whether this is ocio's own identity (nobody configured one).
    pub(crate) fn is_ocio(&self) -> bool {
        *self == Self::ocio()
    }

    /// The author git would use in `repo` when told to use configured identities only
    /// (`user.useConfigOnly`: no name guessed from the login and host), else ocio.
    pub(super) fn configured(repo: &Path) -> Self {
        Self::configured_with(repo, &[])
    }

    /// [`Self::configured`] with `env` added to git's environment.
    pub(super) fn configured_with(repo: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new("git");
        command
            .current_dir(repo)
            .args(["-c", "user.useConfigOnly=true", "var", "GIT_AUTHOR_IDENT"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .envs(env.iter().copied());
        clean_environment(&mut command);
        let ident = command
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned());
        ident
            .as_deref()
            .and_then(Self::from_ident)
            .unwrap_or_else(Self::ocio)
    }

    /// `Name <email> 1700000000 +0000` (git's ident line) as an author.
    pub(super) fn from_ident(ident: &str) -> Option<Self> {
        let (name, rest) = ident.split_once('<')?;
        let (email, _) = rest.split_once('>')?;
        let (name, email) = (name.trim(), email.trim());
        (!name.is_empty() && !email.is_empty()).then(|| Self {
            name: name.into(),
            email: email.into(),
        })
    }
}

/// What went wrong in a workspace operation: each names the repository and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "cannot run git: {reason}\nhint: install git (2.31 or newer) and make sure it is on PATH"
    )]
    GitMissing { reason: String },
    #[error(
        "in repository {repo}: `git {command}` failed: {stderr}\nhint: run the same command in {dir} to see more; ocio only touches branches under ocio/ and its own worktrees"
    )]
    Git {
        repo: PathBuf,
        dir: PathBuf,
        command: String,
        stderr: String,
    },
    #[error(
        "{path} is not in a git repository ({stderr})\nhint: point the plan's `repo` at a git checkout, or run `git init` there"
    )]
    NotARepository { path: PathBuf, stderr: String },
    #[error(
        "repository {repo} has no commits yet\nhint: make a first commit; worktrees start from a commit"
    )]
    NoCommits { repo: PathBuf },
    #[error(
        "in repository {repo}: base {base:?} is not a branch, tag or commit\nhint: set the plan's `base` to an existing branch (see `git branch`), or remove it to start from HEAD"
    )]
    UnknownBase { repo: PathBuf, base: String },
    #[error(
        "in repository {repo}: plan {plan:?} has no integration branch {branch}\nhint: prepare the plan with `ensure_integration` before making task worktrees"
    )]
    NoIntegration {
        repo: PathBuf,
        plan: String,
        branch: String,
    },
    #[error(
        "in repository {repo}: plan name {name:?} and its {tried} numbered forms all have branches under ocio/\nhint: delete old plans' branches (`git branch --list 'ocio/*'`) or give the plan another name"
    )]
    NamesExhausted {
        repo: PathBuf,
        name: String,
        tried: u32,
    },
    #[error(
        "in repository {repo}: the plan's integration branch {branch} is gone, so there is nothing to review\nhint: it was deleted (by the plan's cleanup or by hand); `git branch --list 'ocio/*'` shows what is left"
    )]
    NoBranchToReview { repo: PathBuf, branch: String },
    #[error(
        "in repository {repo}: task branch {branch} does not exist\nhint: the task's worktree was never made, or its branch was deleted"
    )]
    NoTaskBranch { repo: PathBuf, branch: String },
    #[error(
        "in repository {repo}: {path} has branch {found} checked out, not {expected}\nhint: remove it (`git worktree remove {path}`) and ocio makes it again"
    )]
    ForeignWorktree {
        repo: PathBuf,
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "in repository {repo}: {path} is not a worktree ocio made\nhint: pass the path ocio returned for a task's worktree"
    )]
    NotOurs { repo: PathBuf, path: PathBuf },
    #[error("in repository {repo}: the session wrote files into submodule {}, which is not initialized in the repository (so it was an empty directory in the task's worktree): git cannot commit them in the task's work; they stay in {}\nhint: run `git submodule update --init {}` in the repository, then run the task again", .paths.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "), .worktree.display(), .within.as_ref().map_or_else(|| .paths.join(" "), |outer| format!("--recursive {outer}")))]
    ModuleNotCheckedOut {
        repo: PathBuf,
        worktree: PathBuf,
        /// From the task worktree's root.
        paths: Vec<String>,
        /// The submodule of the repository they are in, when they are submodules of it.
        within: Option<String>,
    },
    #[error("in repository {repo}: the integration worktree {path} has a merge in progress with conflicts in {}\nhint: let the resolver finish (`conclude_merge`) or give up on it (`abort_merge`)", .files.join(", "))]
    MergeInProgress {
        repo: PathBuf,
        path: PathBuf,
        files: Vec<String>,
    },
    #[error("in repository {repo}: the integration worktree {path} has changes nobody committed: {}\nhint: commit or discard them there (`git -C {path} status`)", .files.join(", "))]
    IntegrationDirty {
        repo: PathBuf,
        path: PathBuf,
        files: Vec<String>,
    },
    #[error("in repository {repo}: conflicts remain in {} ({path})\nhint: every conflict marker (<<<<<<<, =======, >>>>>>>) must be resolved before the merge can be concluded; a submodule in conflict is settled by checking out the commit to keep in it and staging it (`git add PATH`)", .files.join(", "))]
    StillConflicted {
        repo: PathBuf,
        path: PathBuf,
        files: Vec<String>,
    },
    #[error(
        "in repository {repo}: no merge is in progress in {path}\nhint: nothing to conclude; merge the task first"
    )]
    NoMergeInProgress { repo: PathBuf, path: PathBuf },
    #[error(
        "in repository {repo}: `copy` names {path}, which is not in the checkout\nhint: make it there first (e.g. `cp .env.example .env`), or remove it from the plan's `copy`"
    )]
    CopyMissing { repo: PathBuf, path: String },
    #[error(
        "in repository {repo}: `copy` names {path}, which git does not ignore, so it would be committed with the task's work\nhint: add it to .gitignore, or remove it from the plan's `copy` (tracked files are in every worktree already)"
    )]
    CopyNotIgnored { repo: PathBuf, path: String },
    #[error(
        "in repository {repo}: {branch} no longer has commit {before} in its history, so a merge that failed the check cannot be undone\nhint: look at the branch (`git log {branch}`) and settle it by hand, then retry the task"
    )]
    NotBefore {
        repo: PathBuf,
        branch: String,
        before: String,
    },
    #[error("in repository {repo}: {base} cannot be brought into {branch}: both changed {}\nhint: merge it yourself in the plan's integration worktree (`git -C {path} merge {base}`), resolve, commit, and land again; nothing was changed", .files.join(", "))]
    BaseConflict {
        repo: PathBuf,
        path: PathBuf,
        base: String,
        branch: String,
        files: Vec<String>,
    },
    #[error("in repository {repo}: the plan's commits do not replay onto {base}: conflicts in {}\nhint: land with --merge or --squash instead", .files.join(", "))]
    RebaseConflict {
        repo: PathBuf,
        base: String,
        files: Vec<String>,
    },
    #[error(
        "in repository {repo}: {base} moved while the plan was being landed\nhint: land again; nothing was changed"
    )]
    BaseMoved { repo: PathBuf, base: String },
    #[error("{path} (where {base} is checked out) has uncommitted changes to files the landing changes: {}\nhint: commit or move those changes away, then land again; nothing was changed", .files.join(", "))]
    CheckoutTouches {
        path: PathBuf,
        base: String,
        files: Vec<String>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl WorkspaceError {
    pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The `git` command line, for one repository.
#[derive(Debug, Clone)]
pub(super) struct Git {
    /// The repository's top level (named in errors).
    pub(super) repo: PathBuf,
    /// Who the commits made through [`Self::run`], [`Self::exec`] and friends are by.
    pub(super) author: Author,
}

/// Removes what a caller's git environment would redirect git to (another repository, index,
/// object store...).
fn clean_environment(command: &mut Command) {
    for inherited in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
    ] {
        command.env_remove(inherited);
    }
}

impl Git {
    /// For read-only work in `repo` (commits, if any, are ocio's).
    pub(super) fn reader(repo: &Path) -> Self {
        Self {
            repo: repo.to_path_buf(),
            author: Author::ocio(),
        }
    }

    /// For `repo`, committing as its configured author.
    pub(super) fn for_repository(repo: PathBuf) -> Self {
        let author = Author::configured(&repo);
        Self { repo, author }
    }

    /// A git command in `dir` with ocio's environment, committing as ocio.
    fn command<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Command {
        let mut command = Command::new("git");
        command
            .current_dir(dir)
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "commit.gpgSign=false",
                "-c",
                "tag.gpgSign=false",
                "-c",
                "core.quotePath=false",
                "-c",
                "advice.detachedHead=false",
                "-c",
                &format!("user.name={AUTHOR_NAME}"),
                "-c",
                &format!("user.email={AUTHOR_EMAIL}"),
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
            .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
            .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
            .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
            .env("LC_ALL", "C");
        clean_environment(&mut command);
        command
    }

    /// Runs git in `dir`, committing as this repository's author, and returns its output
    /// whatever the exit status.
    pub(super) fn exec<S: AsRef<OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
    ) -> Result<Output, WorkspaceError> {
        Self::command(dir, args)
            .env("GIT_AUTHOR_NAME", &self.author.name)
            .env("GIT_AUTHOR_EMAIL", &self.author.email)
            .env("GIT_COMMITTER_NAME", &self.author.name)
            .env("GIT_COMMITTER_EMAIL", &self.author.email)
            .output()
            .map_err(|err| WorkspaceError::GitMissing {
                reason: err.to_string(),
            })
    }

    /// Runs git in `dir` as [`Git::run`] does, with `env` set too (an index of its own,
    /// fixed commit dates).
    pub(super) fn run_with<S: AsRef<OsStr>>(
        &self,
        dir: &Path,
        env: &[(&str, &OsStr)],
        args: &[S],
    ) -> Result<String, WorkspaceError> {
        let mut command = Self::command(dir, args);
        command.envs(env.iter().copied());
        let output = command.output().map_err(|err| WorkspaceError::GitMissing {
            reason: err.to_string(),
        })?;
        self.stdout_of(dir, args, &output)
    }

    /// A finished git command's stdout (end trimmed) when it succeeded, else an error naming
    /// the repository, the command and git's stderr.
    fn stdout_of<S: AsRef<OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
        output: &Output,
    ) -> Result<String, WorkspaceError> {
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout)
                .trim_end()
                .to_string())
        } else {
            Err(self.failed(dir, args, output))
        }
    }

    /// Runs git in `dir` and returns its output whatever the exit status.
    pub(super) fn output<S: AsRef<OsStr>>(
        dir: &Path,
        args: &[S],
    ) -> Result<Output, WorkspaceError> {
        Self::command(dir, args)
            .output()
            .map_err(|err| WorkspaceError::GitMissing {
                reason: err.to_string(),
            })
    }

    /// Runs git in `dir`; its stdout (end trimmed) when it succeeds, else an error naming the
    /// repository, the command and git's stderr.
    pub(super) fn run<S: AsRef<OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
    ) -> Result<String, WorkspaceError> {
        let output = self.exec(dir, args)?;
        self.stdout_of(dir, args, &output)
    }

    /// Whether git exits 0 (`true`) or 1 (`false`); any other exit is an error.
    pub(super) fn check<S: AsRef<OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
    ) -> Result<bool, WorkspaceError> {
        let output = self.exec(dir, args)?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(self.failed(dir, args, &output)),
        }
    }

    /// NUL-separated paths (`-z` output) as strings.
    pub(super) fn paths<S: AsRef<OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
    ) -> Result<Vec<String>, WorkspaceError> {
        let output = self.exec(dir, args)?;
        if !output.status.success() {
            return Err(self.failed(dir, args, &output));
        }
        Ok(output
            .stdout
            .split(|byte| *byte == 0)
            .filter(|path| !path.is_empty())
            .map(|path| String::from_utf8_lossy(path).into_owned())
            .collect())
    }

    /// The commit `rev` names, or `None` when it names none.
    pub(super) fn commit_of(
        &self,
        dir: &Path,
        rev: &str,
    ) -> Result<Option<String>, WorkspaceError> {
        let spec = format!("{rev}^{{commit}}");
        let output = Self::output(dir, &["rev-parse", "--verify", "--quiet", &spec])?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }

    pub(super) fn failed<S: AsRef<OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
        output: &Output,
    ) -> WorkspaceError {
        let command: Vec<String> = args
            .iter()
            .map(|arg| arg.as_ref().to_string_lossy().into_owned())
            .collect();
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
        if stderr.is_empty() {
            stderr = format!("exit status {}", output.status);
        }
        WorkspaceError::Git {
            repo: self.repo.clone(),
            dir: dir.to_path_buf(),
            command: command.join(" "),
            stderr: crate::text::clip(&stderr, 2000),
        }
    }
}
