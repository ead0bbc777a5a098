//! Submodules and Git LFS files on a build box: what of a task's tree its commit alone does not
//! carry.
//!
//! Each submodule initialized in ocio's repository (its commit in `.git/modules/NAME`) goes to
//! the box's mirror as a bundle too (only what the mirror lacks, as for the task's own
//! commits) and is checked out in the box's worktree at the commit the tree records, as a
//! worktree of the mirror nested at its path (so the superproject's git there sees it as a
//! checked-out submodule). The work done in it comes back: committed there, bundled, fetched
//! into the submodule's git directory here (kept under `refs/ocio/module/NAME/N`), and the
//! task's commit records it as its gitlink, as a local session's commit in a submodule would
//! be. The submodules of a carried submodule go as it does (checked out in it on the box,
//! their work committed before its own, which records their new commits). A submodule not
//! initialized here is an empty directory on the box, as in a worktree here; files written
//! into it cannot be committed, so a session that did is refused its bring-back, naming the
//! path, rather than losing them silently.
//!
//! Git LFS files are not carried: a box checks out their pointers (its mirror's own settings
//! turn any git-lfs of the box off), which is what a worktree here holds where git-lfs does
//! not smudge them; a task whose worktree here holds their contents is refused the box.

use std::collections::BTreeMap;
use std::path::Path;

use super::{BoxError, BoxWorkspace, blocking, quoted};
use crate::workspace::carry;
use crate::workspace::carry_modules::{self, LfsFiles, Module};

/// The prefix of the bundle parts carrying the work in submodule number `n` of box worktree
/// `name` (in the outbox; `NAME.bundle*`, so the worktree's removal takes them too).
fn part_prefix(name: &str, n: usize) -> String {
    format!("{name}.bundle-m{n}.part-")
}

/// The script (in the box's root) telling which of the carried submodules' commits the
/// mirror has (`HASMOD COMMIT`), kept under their carried refs so they count as what it has.
pub(super) fn have(modules: &[Module]) -> String {
    carried(modules)
        .map(|(_, module)| {
            format!(
                "if git -C mirror cat-file -e {spec} 2>/dev/null; then echo HASMOD {commit}; \
                 git -C mirror update-ref {carried} {commit}; fi; ",
                spec = quoted(&format!("{}^{{commit}}", module.commit)),
                commit = module.commit,
                carried = carry::carried_ref(&module.commit),
            )
        })
        .collect()
}

/// A test (in the box's root) that worktree `name` has every carried submodule checked out,
/// to put after another with `&&` (empty without any).
pub(super) fn all_checked_out(name: &str, modules: &[Module]) -> String {
    carried(modules)
        .map(|(_, module)| {
            format!(
                " && [ -e {} ]",
                quoted(&format!("work/{name}/{}/.git", module.path))
            )
        })
        .collect()
}

/// The script (in the box's root) that checks out each carried submodule in the box's
/// worktree `dir`, at the commit the tree records.
pub(super) fn check_out(dir: &str, modules: &[Module]) -> String {
    carried(modules)
        .map(|(_, module)| {
            format!(
                "git -C mirror worktree add -q --detach {at} {commit}; ",
                at = quoted(&format!("{dir}/{}", module.path)),
                commit = module.commit,
            )
        })
        .collect()
}

/// The script that commits the work in each checked-out submodule of the box's worktree `dir`
/// (those within a submodule before it) and, where its HEAD moved beyond what was carried, bundles it in `outbox` (its parts
/// listed); a submodule not checked out that holds files is named (`STRAY N`). Leaves the
/// shell anywhere.
pub(super) fn commit_back(
    dir: &str,
    name: &str,
    modules: &[Module],
    outbox: &str,
    part_bytes: usize,
) -> String {
    let git = super::GIT_AS_OCIO;
    let mut script = String::new();
    // The innermost first: a submodule's commit records the new commits of those within it.
    for (n, module) in modules.iter().enumerate().rev() {
        let at = quoted(&format!("{dir}/{}", module.path));
        if module.gitdir.is_none() {
            script.push_str(&format!(
                "if [ -d {at} ] && ls -A {at} | grep -q .; then echo STRAY {n}; fi; "
            ));
            continue;
        }
        let back = carry_modules::module_ref(name, n);
        let (commit, prefix) = (&module.commit, part_prefix(name, n));
        let bundle = format!("{name}.bundle-m{n}");
        script.push_str(&format!(
            "if [ -e {at}/.git ]; then cd {at}; {git} add -A; \
             if ! git diff --no-ext-diff --cached --quiet; then {git} commit -q --no-verify -m {message}; fi; \
             if ! git rev-parse HEAD | grep -qx {commit}; then git update-ref {back} HEAD; \
             if git rev-list -n 1 {back} ^{commit} | grep -q .; then cd {outbox}; rm -f {bundle}*; \
             git -C {at} bundle create -q {outbox}/{bundle} {back} ^{commit}; \
             split -b {part_bytes} -a 4 {bundle} {prefix}; rm -f {bundle}; ls -1 {prefix}*; fi; fi; fi; ",
            message = quoted(&format!("ocio: the work of {name} in {}", module.path)),
            outbox = quoted(outbox),
        ));
    }
    script
}

/// Of a [`commit_back`] script's `output`, the parts of each submodule's bundle, by number.
fn parts_of(output: &str, name: &str, modules: &[Module]) -> BTreeMap<usize, Vec<String>> {
    let mut parts: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for n in 0..modules.len() {
        let prefix = part_prefix(name, n);
        let mine: Vec<String> = output
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        if !mine.is_empty() {
            parts.insert(n, mine);
        }
    }
    parts
}

/// Why a [`commit_back`] script's `output` cannot be brought back: files written into
/// submodules that were not checked out.
pub(super) fn strays(output: &str, modules: &[Module], dir: &str) -> Option<BoxError> {
    // In the tree's order (the script looks from the innermost out).
    let mut numbers: Vec<usize> = output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("STRAY "))
        .filter_map(|n| n.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let named: Vec<&str> = numbers
        .into_iter()
        .filter_map(|n| modules.get(n))
        .map(|module| module.path.as_str())
        .collect();
    if named.is_empty() {
        return None;
    }
    // One within a submodule is initialized from the repository's own submodule, with those
    // within it.
    let fix: Vec<String> = named
        .iter()
        .map(|path| match outermost(modules, path) {
            outer if outer == *path => format!("git submodule update --init {path}"),
            outer => format!("git submodule update --init --recursive {outer}"),
        })
        .fold(Vec::new(), |mut fix: Vec<String>, one| {
            if !fix.contains(&one) {
                fix.push(one);
            }
            fix
        });
    Some(BoxError::Refused(format!(
        "the session wrote files into submodule {paths}, which was not checked out (it is not \
         initialized in ocio's repository, so it was an empty directory, as in a worktree \
         here): git cannot commit them in the task's work, so nothing was brought back; the \
         work stays on the box in {dir} until ocio removes the task's worktree here\nhint: run \
         `{fix}` in the repository, then run the task again",
        paths = named
            .iter()
            .map(|path| format!("`{path}`"))
            .collect::<Vec<_>>()
            .join(", "),
        fix = fix.join("; "),
    )))
}

/// The submodule of the repository's own tree that `path` (a submodule's) is, or is within.
fn outermost<'a>(modules: &'a [Module], path: &'a str) -> &'a str {
    modules
        .iter()
        .map(|module| module.path.as_str())
        .find(|outer| {
            path.strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .map_or(path, |outer| outermost(modules, outer))
}

/// The submodules carried to a box, with their numbers.
fn carried(modules: &[Module]) -> impl Iterator<Item = (usize, &Module)> {
    modules
        .iter()
        .enumerate()
        .filter(|(_, module)| module.gitdir.is_some())
}

/// Says which of `modules` the box gets as empty directories (not initialized here, as in
/// ocio's own worktree, which checks out no submodule).
pub(super) fn say_empty(modules: &[Module], local: &Path) {
    let empty: Vec<&str> = modules
        .iter()
        .filter(|module| module.gitdir.is_none())
        .map(|module| module.path.as_str())
        .collect();
    if !empty.is_empty() {
        tracing::info!(worktree = %local.display(), submodules = ?empty, "submodules not initialized in ocio's repository (`git submodule update --init` there carries them) are empty directories on the build box, as in ocio's worktree");
    }
}

/// A box checks out the pointers of Git LFS files: fine where ocio's worktree holds the
/// pointers too (said in the log), refused where it holds their contents.
pub(super) fn lfs_allowed(lfs: &LfsFiles, local: &Path) -> Result<(), BoxError> {
    if lfs.tracked.is_empty() {
        return Ok(());
    }
    if lfs.smudged.is_empty() {
        tracing::info!(worktree = %local.display(), files = lfs.tracked.len(), "the task's tree has Git LFS files (filter=lfs); the build box gets their pointers, as ocio's worktree holds them");
        return Ok(());
    }
    let shown: Vec<&str> = lfs.smudged.iter().take(5).map(String::as_str).collect();
    let more = match lfs.smudged.len() - shown.len() {
        0 => String::new(),
        more => format!(" and {more} more"),
    };
    Err(BoxError::Refused(format!(
        "the task's tree has Git LFS files (filter=lfs in .gitattributes): {}{more}; ocio's \
         worktree holds their contents, but a build box would get only their pointers (ocio \
         carries git's commits, not LFS objects)\nhint: run this task on a server that sees \
         ocio's files (workspace = \"shared\"), or start ocio with GIT_LFS_SKIP_SMUDGE=1 so \
         its worktrees hold the pointers too",
        shown.join(", ")
    )))
}

impl BoxWorkspace {
    /// Sends the carried submodules' commits the mirror lacks (not in `had`) to the box's
    /// inbox; the scripts that take them into the mirror.
    pub(super) async fn send_modules(
        &self,
        root: &str,
        modules: &[Module],
        had: &[String],
        haves: &[String],
    ) -> Result<Vec<String>, BoxError> {
        let mut scripts = Vec::new();
        for (_, module) in carried(modules) {
            if had.contains(&module.commit) {
                continue;
            }
            let parcel = blocking({
                let (module, haves, part_bytes) = (module.clone(), haves.to_vec(), self.part_bytes);
                move || carry_modules::parcel_for_module(&module, &haves, part_bytes)
            })
            .await?;
            if let Some(parcel) = parcel {
                tracing::info!(server = self.client.base_url(), submodule = %module.path, commit = %module.commit, bytes = parcel.bytes, "sending a submodule's commit to a build box");
                scripts.push(self.take_in(root, &module.commit, parcel).await?);
            }
        }
        Ok(scripts)
    }

    /// The work in submodules that the box bundled (named in `output`), fetched into their git
    /// directories here (and checked out where `local` has them checked out).
    pub(super) async fn fetch_modules_back(
        &self,
        local: &Path,
        name: &str,
        root: &str,
        modules: &[Module],
        output: &str,
    ) -> Result<(), BoxError> {
        let outbox = format!("{root}/outbox");
        for (n, parts) in parts_of(output, name, modules) {
            let file = blocking({
                let local = local.to_path_buf();
                move || carry::incoming(&local)
            })
            .await?;
            for part in &parts {
                let bytes = self.client.file_bytes(&outbox, part).await?;
                let path = file.path().to_path_buf();
                blocking(move || carry::append(&path, &bytes)).await?;
            }
            let commit = blocking({
                let (module, name) = (modules[n].clone(), name.to_string());
                let local = local.to_path_buf();
                move || {
                    let commit = carry_modules::receive_module(&module, &name, n, file.path());
                    drop(file);
                    let commit = commit?;
                    carry_modules::advance_checked_out(&local, &module, &commit)?;
                    Ok(commit)
                }
            })
            .await?;
            tracing::info!(server = self.client.base_url(), submodule = %modules[n].path, %commit, "brought a submodule's work back from a build box");
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "box_modules_tests.rs"]
mod tests;
