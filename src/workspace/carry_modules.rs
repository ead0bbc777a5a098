//! What of a task's tree git does not carry in its own commits (blocking): its submodules'
//! commits and its Git LFS files, on the way to a build box and back.
//!
//! A submodule's commit (a gitlink in the task's tree) is carried when ocio's repository has it
//! (the submodule is initialized there: its git directory under `.git/modules/`); its work on the
//! box comes back into that git directory. So are the submodules of a carried submodule, at
//! the commits it records (their git directories under its own, as `git submodule update
//! --init --recursive` makes them). Git LFS files are never carried: a box checks out
//! their pointers, which is what a worktree holds where git-lfs does not smudge them, so a
//! task whose worktree here holds their contents is refused a box ([`lfs_files`]).

use std::path::{Path, PathBuf};

use super::WorkspaceError;
use super::carry;
use super::git::Git;

type Result<T> = std::result::Result<T, WorkspaceError>;

/// A submodule of a task's starting tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Where it is in the tree.
    pub path: String,
    /// The commit the tree records for it.
    pub commit: String,
    /// Its git directory here, when that has the commit (else the box, as a worktree here,
    /// gets an empty directory).
    pub gitdir: Option<PathBuf>,
    /// Where its git directory is here, if it is initialized (whether or not it has the
    /// commit).
    pub home: PathBuf,
}

/// The submodules (gitlinks) of `commit` in the repository of `worktree`, in the tree's
/// order: the number of each in this list is its number on the box.
pub fn modules_of(worktree: &Path, commit: &str) -> Result<Vec<Module>> {
    let git = Git::reader(worktree);
    let links: Vec<(String, String)> = tree_entries(&git, worktree, commit)?
        .into_iter()
        .filter(|entry| entry.mode == "160000")
        .map(|entry| (entry.path, entry.id))
        .collect();
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let names = names_of(&git, worktree, commit)?;
    // Relative to the worktree where git says so (`--path-format` needs git 2.31).
    let common = worktree.join(git.run(worktree, &["rev-parse", "--git-common-dir"])?);
    let mut modules = Vec::new();
    for (path, id) in links {
        let name = names
            .iter()
            .find(|(_, at)| *at == path)
            .map_or(path.as_str(), |(name, _)| name.as_str());
        let gitdir = common.join("modules").join(name);
        let has = gitdir.is_dir() && matches!(git.commit_of(&gitdir, &id), Ok(Some(_)));
        modules.push(Module {
            path,
            commit: id,
            gitdir: has.then(|| gitdir.clone()),
            home: gitdir,
        });
    }
    Ok(modules)
}

/// The submodules of `commit` (as [`modules_of`]) and, within each that is carried (its git
/// directory here has its commit), its own submodules at the commit it records, recursively,
/// as `git submodule update --recursive` would check them out: paths from `worktree`'s root,
/// each after the submodule it is in. The number of each in this list is its number on the
/// box.
pub fn all_modules_of(worktree: &Path, commit: &str) -> Result<Vec<Module>> {
    let mut all = Vec::new();
    for module in modules_of(worktree, commit)? {
        let nested = match &module.gitdir {
            Some(gitdir) => all_modules_of(gitdir, &module.commit)?,
            None => Vec::new(),
        };
        let outer = module.path.clone();
        all.push(module);
        all.extend(nested.into_iter().map(|inner| Module {
            path: format!("{outer}/{}", inner.path),
            ..inner
        }));
    }
    Ok(all)
}

/// The submodules' names and paths `.gitmodules` of `commit` records (none without one).
fn names_of(git: &Git, worktree: &Path, commit: &str) -> Result<Vec<(String, String)>> {
    let blob = format!("{commit}:.gitmodules");
    if git.commit_of(worktree, commit)?.is_none()
        || !git.check(worktree, &["cat-file", "-e", &blob])?
    {
        return Ok(Vec::new());
    }
    let args = [
        "config",
        "--blob",
        &blob,
        "-z",
        "--get-regexp",
        r"^submodule\..*\.path$",
    ];
    let output = Git::output(worktree, &args)?;
    // Exit 1: no such entries.
    if !output.status.success() {
        return Ok(Vec::new());
    }
    Ok(output
        .stdout
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (key, path) = text.split_once('\n')?;
            let name = key.strip_prefix("submodule.")?.strip_suffix(".path")?;
            Some((name.to_string(), path.to_string()))
        })
        .collect())
}

/// The parcel carrying `module`'s commit (and the history a mirror holding `haves` lacks) to
/// a box; `None` when it is not carried (not initialized here) or the mirror has it.
pub fn parcel_for_module(
    module: &Module,
    haves: &[String],
    part_bytes: usize,
) -> Result<Option<carry::Parcel>> {
    match &module.gitdir {
        Some(gitdir) => carry::parcel_for(gitdir, &module.commit, haves, part_bytes),
        None => Ok(None),
    }
}

/// The ref the work in submodule number `n` of box worktree `name` comes back under: in the
/// box's mirror, and here in the submodule's git directory, where it stays (the task's commit
/// records that work, and this keeps it from git's garbage collection).
pub fn module_ref(name: &str, n: usize) -> String {
    format!("refs/ocio/module/{name}/{n}")
}

/// Takes the work that came back for submodule number `n` of box worktree `name` (bundle file
/// `bundle`) into `module`'s git directory; its commit. Idempotent.
pub fn receive_module(module: &Module, name: &str, n: usize, bundle: &Path) -> Result<String> {
    let Some(gitdir) = &module.gitdir else {
        return Err(WorkspaceError::io(Path::new(&module.path))(
            std::io::Error::other(format!(
                "work came back for submodule `{}`, which is not initialized here",
                module.path
            )),
        ));
    };
    carry::fetch_back(gitdir, bundle, &module_ref(name, n))
}

/// Where `worktree` has `module` checked out (a checkout whose submodules are populated, as a
/// plan with `worktrees = false` works in), its HEAD moves on to `commit`, the work that came
/// back (fast-forward: its branch too, as a local session's commit there would have moved
/// it), so the superproject's `git add -A` records that commit, not the old one. A submodule
/// whose HEAD moved meanwhile is an error naming it. Idempotent.
pub fn advance_checked_out(worktree: &Path, module: &Module, commit: &str) -> Result<()> {
    let at = worktree.join(&module.path);
    let git = Git::reader(&at);
    // One of ocio's own checkouts (a task's worktree) follows the gitlink the work is laid
    // down with, whatever commit it is (`carry::lay_down`).
    if !at.join(".git").exists() || super::modules::is_ocios(&git, &at)? {
        return Ok(());
    }
    git.run(&at, &["merge", "-q", "--ff-only", commit])?;
    Ok(())
}

/// Stages in `worktree`'s index the gitlinks (submodules' commits) that `to` changed from
/// `from`: a patch cannot carry them to a worktree whose submodules are not checked out.
/// Idempotent.
pub fn stage_links(worktree: &Path, from: &str, to: &str) -> Result<()> {
    let git = Git::reader(worktree);
    let raw = git.paths(
        worktree,
        &[
            "diff",
            "--raw",
            "-z",
            "--no-renames",
            "--no-abbrev",
            from,
            to,
        ],
    )?;
    // `:OLDMODE NEWMODE OLDID NEWID STATUS`, then the path.
    for pair in raw.chunks(2) {
        let [meta, path] = pair else { continue };
        let fields: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let [old_mode, new_mode, _, new_id, _] = fields[..] else {
            continue;
        };
        if new_mode == "160000" {
            let entry = format!("160000,{new_id},{path}");
            git.run(worktree, &["update-index", "--add", "--cacheinfo", &entry])?;
        } else if old_mode == "160000" && new_mode == "000000" {
            git.run(worktree, &["update-index", "--force-remove", "--", path])?;
        }
    }
    Ok(())
}

/// The files of `commit` that Git LFS tracks (`filter=lfs`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LfsFiles {
    pub tracked: Vec<String>,
    /// Those whose content in the worktree is not what the commit records (their pointer):
    /// git-lfs smudged them there. A box checks out what the commit records.
    pub smudged: Vec<String>,
}

/// The files of `commit` that Git LFS tracks, and which of them `worktree` holds smudged.
pub fn lfs_files(worktree: &Path, commit: &str) -> Result<LfsFiles> {
    let git = Git::reader(worktree);
    // Quick way out: no attributes file in the tree mentions lfs.
    let paths = git.paths(
        worktree,
        &["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit],
    )?;
    let mentioned = paths
        .iter()
        .filter(|path| path.rsplit('/').next() == Some(".gitattributes"))
        .any(|path| {
            let spec = format!("{commit}:{path}");
            git.run(worktree, &["cat-file", "blob", &spec])
                .is_ok_and(|text| text.contains("filter=lfs"))
        });
    if !mentioned {
        return Ok(LfsFiles::default());
    }
    let tracked = lfs_paths(worktree, commit)?;
    // Those present as files here, hashed as they are (a deleted one is not smudged).
    let present: Vec<&(String, String)> = tracked
        .iter()
        .filter(|(path, _)| {
            std::fs::symlink_metadata(worktree.join(path)).is_ok_and(|m| m.is_file())
        })
        .collect();
    let mut smudged = Vec::new();
    for chunk in present.chunks(200) {
        let mut args = vec!["hash-object", "--no-filters", "--"];
        args.extend(chunk.iter().map(|(path, _)| path.as_str()));
        let hashes = git.run(worktree, &args)?;
        for ((path, id), here) in chunk.iter().zip(hashes.lines()) {
            if here != id {
                smudged.push(path.clone());
            }
        }
    }
    Ok(LfsFiles {
        tracked: tracked.into_iter().map(|(path, _)| path).collect(),
        smudged,
    })
}

/// The regular files of `commit` with attribute `filter=lfs`, each with its blob. The
/// attributes are the worktree's own: those of `commit`, which is its HEAD or a commit of its
/// files (`check-attr --source` would need git 2.40).
fn lfs_paths(worktree: &Path, commit: &str) -> Result<Vec<(String, String)>> {
    let git = Git::reader(worktree);
    let blobs: Vec<(String, String)> = tree_entries(&git, worktree, commit)?
        .into_iter()
        .filter(|entry| entry.kind == "blob" && entry.mode != "120000")
        .map(|entry| (entry.path, entry.id))
        .collect();
    let mut tracked = Vec::new();
    for chunk in blobs.chunks(200) {
        let mut args = vec![
            "check-attr".to_string(),
            "-z".into(),
            "filter".into(),
            "--".into(),
        ];
        args.extend(chunk.iter().map(|(path, _)| path.clone()));
        let said = git.paths(worktree, &args)?;
        // Triples: path, attribute, value.
        for triple in said.chunks(3) {
            if let [path, _, value] = triple
                && value == "lfs"
                && let Some((_, id)) = chunk.iter().find(|(at, _)| at == path)
            {
                tracked.push((path.clone(), id.clone()));
            }
        }
    }
    Ok(tracked)
}

/// One entry of `git ls-tree -r`: `MODE KIND ID\tPATH`.
struct TreeEntry {
    mode: String,
    kind: String,
    id: String,
    path: String,
}

/// Every entry of `commit`'s tree, recursively (files, links and gitlinks).
fn tree_entries(git: &Git, worktree: &Path, commit: &str) -> Result<Vec<TreeEntry>> {
    let entries = git.paths(worktree, &["ls-tree", "-r", "-z", "--full-tree", commit])?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let (meta, path) = entry.split_once('\t')?;
            let mut fields = meta.split(' ');
            Some(TreeEntry {
                mode: fields.next()?.to_string(),
                kind: fields.next()?.to_string(),
                id: fields.next()?.to_string(),
                path: path.to_string(),
            })
        })
        .collect())
}

#[cfg(test)]
#[path = "carry_modules_tests.rs"]
pub(crate) mod tests;
