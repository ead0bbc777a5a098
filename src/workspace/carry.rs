//! Carrying a task's starting tree to a build box and its work back, as git bundles (blocking).
//!
//! The box keeps a mirror holding ocio's commits under their own ids, so what it has is never
//! sent again: the first task on a box moves the whole history, later ones only what is new.
//! The work comes back as a commit fetched from a bundle; git checks every object on the way,
//! so a tree that arrives is the tree that left, byte for byte (binary files, executable bits,
//! symlinks, deletions, renames, large files).
//!
//! Both ways a bundle travels as a file inside a patch (`git diff --binary`, applied by the
//! server's `POST /vcs/apply`) or as a file read back (`GET /file/content`); see
//! `crate::opencode::boxes` for the server's side.

use std::path::{Component, Path};

use super::WorkspaceError;
use super::git::Git;

type Result<T> = std::result::Result<T, WorkspaceError>;

/// A bundle on its way to a box, holding the commit under ref `carries`, cut in parts of a
/// bounded size (a server takes a request body of bounded size, and each part is held in
/// memory as a patch while it travels). On the box the parts are files `name.part-NNNN`,
/// joined in order into file `name`.
#[derive(Debug)]
pub struct Parcel {
    pub name: String,
    pub carries: String,
    /// The bundle's size, for the log.
    pub bytes: u64,
    parts: Vec<String>,
    scratch: tempfile::TempDir,
}

impl Parcel {
    /// How many parts it travels in.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Part `n` as a patch that creates its file (`git diff --binary`, exact for any bytes).
    pub fn patch(&self, n: usize) -> Result<String> {
        let git = Git::reader(self.scratch.path());
        file_as_patch(&git, self.scratch.path(), &self.parts[n])
    }
}

/// The ref a bundle carries `commit` under (on both sides).
pub fn carried_ref(commit: &str) -> String {
    format!("refs/ocio/box/{commit}")
}

/// The ref the work of box worktree `name` comes back under (on both sides).
pub fn returned_ref(name: &str) -> String {
    format!("refs/ocio/returned/{name}")
}

/// Whether `worktree` is in the middle of a merge (left for a resolver).
pub fn merging(worktree: &Path) -> bool {
    matches!(
        Git::reader(worktree).commit_of(worktree, "MERGE_HEAD"),
        Ok(Some(_))
    )
}

/// The name on a box of the task worktree at `local`: its last four components (repository,
/// plan, task, attempt), so names from two repositories never meet.
pub fn box_name(local: &Path) -> String {
    let parts: Vec<String> = local
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let tail = &parts[parts.len().saturating_sub(4)..];
    let name = tail
        .iter()
        .map(|part| {
            part.chars()
                .map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
                    _ => '_',
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("--");
    ref_safe(name)
}

/// `part` as git allows in one component of a ref's name (it names refs on both sides): not
/// starting or ending with `.`, no `..`, not ending with `.lock` (a repository `.dotfiles` is
/// `_dotfiles`). Only names git refused before change.
fn ref_safe(mut part: String) -> String {
    if part.starts_with('.') {
        part.replace_range(0..1, "_");
    }
    while part.contains("..") {
        part = part.replace("..", "._");
    }
    if part.ends_with('.') || part.ends_with(".lock") {
        part.push('_');
    }
    part
}

/// The ref keeping what worktree `name` held when it was handed to a box, where that was not
/// its HEAD's tree.
pub fn handed_ref(name: &str) -> String {
    format!("refs/ocio/handed/{name}")
}

/// The commit a box's copy of `worktree` starts from: what [`hand_over`] made of it, or its
/// HEAD.
pub fn start_of(worktree: &Path) -> Result<String> {
    let git = Git::reader(worktree);
    if let Some(handed) = git.commit_of(worktree, &handed_ref(&box_name(worktree)))? {
        return Ok(handed);
    }
    git.run(worktree, &["rev-parse", "--verify", "HEAD^{commit}"])
}

/// What `worktree` holds, as the commit its box copy starts from: its HEAD when its files are
/// HEAD's, else a commit of its files on top of HEAD (tracked and untracked ones git does not
/// ignore; a merge's conflicted files as they are, markers and all), kept under
/// [`handed_ref`]. The same files give the same commit (dated as HEAD). Its index and files
/// are left as they are.
pub fn hand_over(worktree: &Path) -> Result<String> {
    let git = Git::reader(worktree);
    let handed = handed_ref(&box_name(worktree));
    let head = git.run(worktree, &["rev-parse", "--verify", "HEAD^{commit}"])?;
    let scratch = scratch(worktree)?;
    let index = scratch.path().join("index");
    let date = git.run(worktree, &["log", "-1", "--format=%cI", "HEAD"])?;
    let env = [
        ("GIT_INDEX_FILE", index.as_os_str()),
        ("GIT_AUTHOR_DATE", std::ffi::OsStr::new(&date)),
        ("GIT_COMMITTER_DATE", std::ffi::OsStr::new(&date)),
    ];
    git.run_with(worktree, &env, &["read-tree", "HEAD"])?;
    git.run_with(worktree, &env, &["add", "-A"])?;
    let tree = git.run_with(worktree, &env, &["write-tree"])?;
    if tree == git.run(worktree, &["rev-parse", "HEAD^{tree}"])? {
        let _ = git.run(worktree, &["update-ref", "-d", &handed]);
        return Ok(head);
    }
    let message = "ocio: the worktree as handed to a build box";
    let commit = git.run_with(
        worktree,
        &env,
        &["commit-tree", &tree, "-p", &head, "-m", message],
    )?;
    git.run(worktree, &["update-ref", &handed, &commit])?;
    Ok(commit)
}

/// `commit` (and the history before it a mirror holding `haves` lacks) as a parcel for the
/// box; `None` when the mirror has it already. Haves this repository does not know are
/// skipped (another repository's commits in a shared mirror).
pub fn parcel_for(
    worktree: &Path,
    commit: &str,
    haves: &[String],
    part_bytes: usize,
) -> Result<Option<Parcel>> {
    if haves.iter().any(|have| have == commit) {
        return Ok(None);
    }
    let git = Git::reader(worktree);
    let known: Vec<String> = haves
        .iter()
        .filter(|have| matches!(git.commit_of(worktree, have), Ok(Some(_))))
        .map(|have| format!("^{have}"))
        .collect();
    let scratch = scratch(worktree)?;
    // Unique, so two boxes sent the same commit at once (or two agents on one box) never meet.
    let unique = ulid::Ulid::generate();
    let name = format!("{commit}-{unique}.bundle");
    let bundle = scratch.path().join(&name);
    let carried = format!("refs/ocio/sending/{unique}");
    git.run(worktree, &["update-ref", &carried, commit])?;
    // No delta search: packed history keeps the deltas it has, and searching loose files for
    // more halved no size in the boxes bench while taking half the time of a first send.
    let mut args = vec![
        "-c".to_string(),
        "pack.window=0".into(),
        "bundle".into(),
        "create".into(),
        "-q".into(),
    ];
    args.push(bundle.to_string_lossy().into_owned());
    args.push(carried.clone());
    args.extend(known);
    let made = git.run(worktree, &args);
    let _ = git.run(worktree, &["update-ref", "-d", &carried]);
    made?;
    parcel_of(scratch, name, carried, part_bytes).map(Some)
}

/// File `name` of `scratch` as a parcel carrying ref `carries` (none: empty), cut in parts.
fn parcel_of(
    scratch: tempfile::TempDir,
    name: String,
    carries: String,
    part_bytes: usize,
) -> Result<Parcel> {
    let file = scratch.path().join(&name);
    let bytes = std::fs::metadata(&file)
        .map_err(WorkspaceError::io(&file))?
        .len();
    let parts = cut(&file, &name, part_bytes)?;
    Ok(Parcel {
        name,
        carries,
        bytes,
        parts,
        scratch,
    })
}

/// The git-ignored `paths` of `worktree` (what the plan's `copy` brought there) as a tar
/// parcel for a box's worktree (symlinks as links, modes kept); `None` when there are none.
pub fn parcel_of_ignored(
    worktree: &Path,
    paths: &[String],
    part_bytes: usize,
) -> Result<Option<Parcel>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let scratch = scratch(worktree)?;
    let name = format!("copy-{}.tar", ulid::Ulid::generate());
    let archive = scratch.path().join(&name);
    let output = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(worktree)
        .arg("--")
        .args(paths)
        .output()
        .map_err(WorkspaceError::io(&archive))?;
    if !output.status.success() {
        let said = format!(
            "tar could not pack the plan's `copy` ({}) for the box: {}",
            paths.join(", "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Err(WorkspaceError::io(worktree)(std::io::Error::other(said)));
    }
    parcel_of(scratch, name, String::new(), part_bytes).map(Some)
}

/// Cuts file `whole` (named `name`) into files `name.part-NNNN` beside it of at most
/// `part_bytes` each (one, however small); their names, in order. The whole file goes.
fn cut(whole: &Path, name: &str, part_bytes: usize) -> Result<Vec<String>> {
    use std::io::Read;
    let dir = whole.parent().unwrap_or(Path::new("."));
    let mut file = std::fs::File::open(whole).map_err(WorkspaceError::io(whole))?;
    let mut buffer = vec![0u8; part_bytes.max(1)];
    let mut parts = Vec::new();
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match file.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WorkspaceError::io(whole)(e)),
            }
        }
        if filled == 0 && !parts.is_empty() {
            break;
        }
        let part = format!("{name}.part-{:04}", parts.len());
        let path = dir.join(&part);
        std::fs::write(&path, &buffer[..filled]).map_err(WorkspaceError::io(&path))?;
        parts.push(part);
        if filled < buffer.len() {
            break;
        }
    }
    std::fs::remove_file(whole).map_err(WorkspaceError::io(whole))?;
    Ok(parts)
}

/// A patch that creates file `name` of `dir` (`git diff --no-index --binary`), exact for any
/// bytes: a binary patch always (a part of a bundle without a NUL byte would pass for text).
fn file_as_patch(git: &Git, dir: &Path, name: &str) -> Result<String> {
    let attributes = dir.join(".ocio-binary");
    std::fs::write(&attributes, "* binary\n").map_err(WorkspaceError::io(&attributes))?;
    let setting = format!("core.attributesFile={}", attributes.to_string_lossy());
    let args = [
        "-c",
        &setting,
        "diff",
        "--no-index",
        "--binary",
        "/dev/null",
        name,
    ];
    let output = Git::output(dir, &args)?;
    // `--no-index` exits 1 when the two differ, which they always do here.
    match output.status.code() {
        Some(1) => String::from_utf8(output.stdout).map_err(|e| WorkspaceError::Git {
            repo: git.repo.clone(),
            dir: dir.to_path_buf(),
            command: args.join(" "),
            stderr: format!("the patch is not text: {e}"),
        }),
        _ => Err(git.failed(dir, &args, &output)),
    }
}

/// Takes the work a box sent back (bundle file `bundle`, holding [`returned_ref`] of `name`)
/// into the repository under the same ref; the commit. Idempotent.
pub fn receive(worktree: &Path, name: &str, bundle: &Path) -> Result<String> {
    fetch_back(worktree, bundle, &returned_ref(name))
}

/// Fetches ref `back` from bundle file `bundle` into the repository at `dir` (a worktree or a
/// submodule's git directory) under the same name; its commit. Idempotent.
pub(super) fn fetch_back(dir: &Path, bundle: &Path, back: &str) -> Result<String> {
    let git = Git::reader(dir);
    let refspec = format!("+{back}:{back}");
    git.run(
        dir,
        &[
            "fetch",
            "-q",
            // The work in submodules comes in bundles of its own: none is fetched from this
            // one (git's on-demand fetch in a submodule whose new commit is not there yet
            // fails, asking the bundle for it).
            "--no-recurse-submodules",
            &bundle.to_string_lossy(),
            refspec.as_str(),
        ],
    )?;
    git.run(
        dir,
        &["rev-parse", "--verify", &format!("{back}^{{commit}}")],
    )
}

/// Appends `bytes` (a part of a bundle coming back) to `file`.
pub fn append(file: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(WorkspaceError::io(file))
}

/// A scratch file for a bundle coming back in parts, gone when dropped.
pub fn incoming(worktree: &Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix("ocio-returned-")
        .suffix(".bundle")
        .tempfile()
        .map_err(WorkspaceError::io(worktree))
}

/// Notes that box worktree `name` brought nothing back (its returned ref is the start), so a
/// restart after its worktree went still knows.
pub fn returned_nothing(worktree: &Path, name: &str, start: &str) -> Result<()> {
    Git::reader(worktree).run(worktree, &["update-ref", &returned_ref(name), start])?;
    Ok(())
}

/// The work of box worktree `name`, when it came back already (before a restart).
pub fn received(worktree: &Path, name: &str) -> Result<Option<String>> {
    Git::reader(worktree).commit_of(worktree, &returned_ref(name))
}

/// Whether `dir` is in a git repository: a box can be carried its tree. Blocking.
pub fn is_repository(dir: &Path) -> bool {
    Git::reader(dir)
        .check(dir, &["rev-parse", "--git-dir"])
        .unwrap_or(false)
}

/// The tree of `commit`.
pub fn tree_of(worktree: &Path, commit: &str) -> Result<String> {
    let spec = format!("{commit}^{{tree}}");
    Git::reader(worktree).run(worktree, &["rev-parse", "--verify", &spec])
}

/// Lays `commit` (work on top of [`start_of`] the worktree) down in `worktree` as uncommitted
/// changes, for the engine to commit as it commits a local session's work. From HEAD: the
/// files (files the tree lacks are removed, untracked ones left), nothing staged but the
/// submodules' new commits. From a handed-over
/// state: the work's own changes applied to the files only, so a merge in progress stays
/// one (its conflicts are concluded as a local resolver's are), and its submodules' new
/// commits staged; done already, nothing.
pub fn lay_down(worktree: &Path, commit: &str) -> Result<()> {
    let git = Git::reader(worktree);
    let Some(handed) = git.commit_of(worktree, &handed_ref(&box_name(worktree)))? else {
        git.run(worktree, &["read-tree", "-u", "--reset", commit])?;
        // The files are the work's; the index goes back to HEAD, so nothing is staged, as a
        // local session leaves its work (in a checkout used in place, the user's index), but
        // for the submodules' new commits, which no file carries where they are not checked
        // out (a task's worktree): staged, or `git add -A` would drop them.
        git.run(worktree, &["read-tree", "HEAD"])?;
        super::carry_modules::stage_links(worktree, "HEAD", commit)?;
        // Where ocio checked the submodules out, they follow, or `git add -A` would stage
        // their old commits over the staged ones.
        return super::modules::follow_index(&git, worktree, super::modules::Follow::Checkouts);
    };
    // Gitlinks (submodules' commits) are no files to patch: staged as they are.
    super::carry_modules::stage_links(worktree, &handed, commit)?;
    super::modules::follow_index(&git, worktree, super::modules::Follow::Checkouts)?;
    let scratch = scratch(worktree)?;
    let patch = scratch.path().join("work.patch");
    let diff = Git::output(
        worktree,
        &[
            "diff",
            "--binary",
            "--no-renames",
            "--ignore-submodules=all",
            &handed,
            commit,
        ],
    )?;
    if !diff.status.success() {
        let args = ["diff", "--binary", &handed, commit];
        return Err(git.failed(worktree, &args, &diff));
    }
    if diff.stdout.is_empty() {
        return Ok(());
    }
    std::fs::write(&patch, &diff.stdout).map_err(WorkspaceError::io(&patch))?;
    let file = patch.to_string_lossy();
    let applies = git.check(worktree, &["apply", "--check", "--binary", &*file])?;
    if !applies && git.check(worktree, &["apply", "--check", "-R", "--binary", &*file])? {
        return Ok(()); // laid down already, before a restart
    }
    git.run(worktree, &["apply", "--binary", &*file])?;
    Ok(())
}

/// Forgets the returned work of the box worktree for task worktree `local` (once that is
/// removed: its work is on the task's branch). `repo`: any worktree of the repository.
pub fn forget(repo: &Path, local: &Path) -> Result<()> {
    let name = box_name(local);
    let git = Git::reader(repo);
    if git.commit_of(repo, &handed_ref(&name))?.is_some() {
        git.run(repo, &["update-ref", "-d", &handed_ref(&name)])?;
    }
    git.run(repo, &["update-ref", "-d", &returned_ref(&name)])?;
    Ok(())
}

/// A scratch directory in the system's temporary directory, gone when dropped.
fn scratch(worktree: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("ocio-carry-")
        .tempdir()
        .map_err(WorkspaceError::io(worktree))
}

#[cfg(test)]
#[path = "carry_tests.rs"]
mod tests;
