//! Worktrees left on a build box: each task worktree ocio makes on a box is signed with who
//! made it (`owners/NAME` under the box's root: this machine, this user and the local worktree
//! it stands for). A worktree whose task ended while its box could not be reached, or whose
//! removal failed, stays behind; the next time this user's ocio on this machine prepares a
//! task on that box, it removes those of its own whose local worktree is gone (ocio removes a
//! local worktree once its work is merged, abandoned, or superseded by a later attempt).
//!
//! Whatever such a worktree still holds (the work of a session that never came back) is kept:
//! committed, under `refs/ocio/abandoned/NAME` in the box's mirror (what its checked-out
//! submodules held under `refs/ocio/abandoned-modules/NAME/`), before its directory goes.
//! Worktrees of other machines or users, unsigned ones, and any whose local worktree cannot be
//! looked at (only "not found" counts as gone) are left alone.

use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use super::{BoxWorkspace, DONE, quoted};
use crate::workspace::carry;

/// Where the box's root keeps the signatures.
const OWNERS: &str = "owners";

/// Who signs: this machine (its machine id and host name) and this user, or `None` where
/// either cannot be told (then nothing is signed as sweepable, and nothing is swept).
static SIGNER: LazyLock<Option<String>> = LazyLock::new(|| {
    use std::os::unix::fs::MetadataExt;
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|text| {
                text.trim()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect::<String>()
            })
            .filter(|id| !id.is_empty())
    };
    let machine = read("/etc/machine-id")?;
    let host = read("/proc/sys/kernel/hostname")?;
    let user = std::fs::metadata("/proc/self").ok()?.uid();
    Some(format!("{machine}.{host}.{user}"))
});

/// Whether `name` is one `carry::box_name` makes (what the box lists is not trusted further).
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The script (run in the box's root) that signs worktree `name` as `local`'s, made here; an
/// empty script where this process cannot sign.
pub(super) fn sign(name: &str, local: &Path) -> String {
    let Some(signer) = SIGNER.as_deref() else {
        return ":".into();
    };
    // The path goes as hex: no quoting, expansion or line break can bend it.
    let path = hex(local.as_os_str().as_encoded_bytes());
    format!(
        "mkdir -p {OWNERS}; printf '%s\\n' {signature} > {OWNERS}/{name}",
        signature = quoted(&format!("{signer} {path}")),
        name = quoted(name),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The script (run in the box's root) that lists the signatures, one `owners/NAME:SIGNATURE`
/// line each.
pub(super) fn list() -> String {
    format!("grep -H . {OWNERS}/* 2>/dev/null || true")
}

/// Of the signatures `listed` (the output of [`list`]), the worktrees this machine's user made
/// (never `keep`, the one being prepared), each with the local worktree it stands for.
pub(super) fn signed_here(listed: &str, keep: &str) -> Vec<(String, PathBuf)> {
    let Some(signer) = SIGNER.as_deref() else {
        return Vec::new();
    };
    listed
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{OWNERS}/")))
        .filter_map(|line| {
            let (name, signature) = line.split_once(':')?;
            let (by, path) = signature.split_once(' ')?;
            let local = PathBuf::from(std::ffi::OsString::from_vec(unhex(path.trim())?));
            (by == signer && plain(name) && name != keep && local.is_absolute())
                .then(|| (name.to_string(), local))
        })
        .collect()
}

/// Of `signed` (see [`signed_here`]), those whose local worktree is gone: only "not found"
/// counts (a directory this user cannot look into is not gone). Touches the disk.
pub(super) fn dead(signed: Vec<(String, PathBuf)>) -> Vec<String> {
    signed
        .into_iter()
        .filter(|(_, local)| {
            matches!(std::fs::symlink_metadata(local), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        })
        .map(|(name, _)| name)
        .collect()
}

/// The script (run in the box's root) that removes worktree `name` (under `work/`), its
/// returned ref, what was sent or set up for it, and its signature. `keep_work`: what it holds
/// that never came back is first committed and kept in the mirror under
/// `refs/ocio/abandoned/NAME` (anything beyond the commits ocio carried there).
pub(super) fn removal(name: &str, keep_work: bool) -> String {
    let git = super::GIT_AS_OCIO;
    let dir = quoted(&format!("work/{name}"));
    let keep = match keep_work {
        true => format!(
            "if [ -e {dir}/.git ]; then {modules}; {git} -C {dir} add -A 2>/dev/null; \
             {git} -C {dir} commit -q --no-verify -m {message} >/dev/null 2>&1; \
             git -C {dir} rev-list -n 1 HEAD --not --glob=refs/ocio/box 2>/dev/null | grep -q . \
             && git -C {dir} update-ref {abandoned} HEAD; fi; ",
            message = quoted(&format!("ocio: what {name} held when it was swept")),
            abandoned = quoted(&format!("refs/ocio/abandoned/{name}")),
            modules = kept_in_modules(name),
        ),
        false => String::new(),
    };
    format!(
        "{keep}git -C mirror worktree remove --force {dir} 2>/dev/null || rm -rf {dir}; \
         git -C mirror update-ref -d {back} 2>/dev/null; \
         git -C mirror for-each-ref --format='delete %(refname)' {modules} | git -C mirror update-ref --stdin; \
         rm -f {outbox}.bundle* {outbox}.ready {outbox}.setup.sh {outbox}.setup.log {outbox}.setup-run.sh {outbox}.setup.*.ok {OWNERS}/{quoted_name}; \
         rm -rf {outbox}.setup.lock",
        back = quoted(&carry::returned_ref(name)),
        modules = quoted(&format!("refs/ocio/module/{name}/")),
        outbox = quoted(&format!("outbox/{name}")),
        quoted_name = quoted(name),
    )
}

/// The script (run in the box's root) that commits what each checked-out submodule of
/// worktree `name` holds and keeps its HEAD, where beyond what ocio carried, under
/// `refs/ocio/abandoned-modules/NAME/COMMIT` (the ref named by the commit: no shell variable
/// or substitution needed).
fn kept_in_modules(name: &str) -> String {
    let git = super::GIT_AS_OCIO;
    let each = format!(
        "{git} add -A; {git} commit -q --no-verify -m {message} >/dev/null 2>&1; \
         git rev-list -n 1 HEAD --not --glob=refs/ocio/box | sed {named} | git update-ref --stdin; true",
        message = quoted(&format!(
            "ocio: what {name} held in a submodule when it was swept"
        )),
        named = quoted(&format!(
            "s,.*,update refs/ocio/abandoned-modules/{name}/& &,"
        )),
    );
    format!(
        "git -C {dir} submodule foreach --quiet --recursive {each} >/dev/null 2>&1",
        dir = quoted(&format!("work/{name}")),
        each = quoted(&each),
    )
}

impl BoxWorkspace {
    /// Removes this user's worktrees under `root` whose local worktree is gone, of those
    /// `signed` (see [`signed_here`]), keeping what they hold in the mirror; a failure is only
    /// logged (the next preparation tries again).
    pub(super) async fn sweep(&self, root: &str, signed: Vec<(String, PathBuf)>) {
        if signed.is_empty() {
            return;
        }
        let Ok(dead) = tokio::task::spawn_blocking(move || dead(signed)).await else {
            return;
        };
        if dead.is_empty() {
            return;
        }
        match self
            .script("removing worktrees left behind", &sweeping(root, &dead))
            .await
        {
            Ok(_) => {
                tracing::info!(server = self.client.base_url(), worktrees = ?dead, "removed worktrees a build box kept of tasks that ended (what they held is under refs/ocio/abandoned/ in its mirror)")
            }
            Err(error) => {
                tracing::warn!(server = self.client.base_url(), %error, "cannot remove worktrees left behind on a build box")
            }
        }
    }
}

/// The script that removes the worktrees `dead` under `root`, keeping what they hold.
fn sweeping(root: &str, dead: &[String]) -> String {
    let removals: Vec<String> = dead.iter().map(|name| removal(name, true)).collect();
    format!(
        "cd {root} || exit 1; {}; git -C mirror worktree prune; echo {DONE}",
        removals.join("; "),
        root = quoted(root),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A script on the "box" with no git configuration of its own.
    fn sh(dir: &Path, script: &str) -> String {
        super::super::tests::on_box(dir, Path::new("/dev/null"), script)
    }

    #[test]
    fn only_this_users_worktrees_whose_local_worktree_is_gone_are_swept_and_their_work_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (root, here) = (dir.path().join("box"), dir.path().join("here dir"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(here.join("live")).unwrap();
        sh(
            &root,
            "set -e; git init -q mirror; cd mirror; echo a > a; git add a; \
             git -c user.name=t -c user.email=t@t commit -q -m base; \
             git update-ref refs/ocio/box/base HEAD",
        );
        let root_str = root.to_string_lossy().into_owned();
        // `live`'s local worktree is here; `ended` and `idle` are gone (`ended` with work that
        // never came back); `other` is another signer's; `unsigned` has no signature;
        // `preparing` is the one being prepared now.
        let names = ["live", "ended", "idle", "other", "unsigned", "preparing"];
        for name in names {
            sh(
                &root,
                &format!("git -C mirror worktree add -q --detach ../work/{name} HEAD"),
            );
            sh(
                &root,
                &format!(
                    "git -C mirror update-ref {} HEAD",
                    carry::returned_ref(name)
                ),
            );
        }
        std::fs::write(root.join("work/ended/new.txt"), "never came back\n").unwrap();
        for name in ["live", "ended", "idle", "preparing"] {
            sh(&root, &sign(name, &here.join(name)));
        }
        let gone = hex(here.join("ended").as_os_str().as_encoded_bytes());
        sh(
            &root,
            &format!("echo 'another.machine.0 {gone}' > owners/other"),
        );
        // A name the box made up is never put in a script.
        sh(&root, "cp owners/ended 'owners/x;touch pwned'");
        let listed = sh(&root, &list());
        let signed = signed_here(&listed, "preparing");
        let mut names_signed: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
        names_signed.sort();
        assert_eq!(names_signed, ["ended", "idle", "live"]);
        let mut dead_ones = dead(signed);
        dead_ones.sort();
        assert_eq!(dead_ones, ["ended", "idle"]);

        let out = sh(&root, &sweeping(&root_str, &dead_ones));
        assert!(out.contains(DONE));
        for (name, kept) in [
            ("live", true),
            ("ended", false),
            ("idle", false),
            ("other", true),
            ("unsigned", true),
            ("preparing", true),
        ] {
            assert_eq!(root.join("work").join(name).exists(), kept, "{name}");
            let listed = sh(&root, "git -C mirror worktree list --porcelain");
            assert_eq!(
                listed.contains(&format!("/work/{name}\n")),
                kept,
                "{name}: {listed}"
            );
            let refs = sh(&root, "git -C mirror for-each-ref --format='%(refname)'");
            assert_eq!(
                refs.contains(&carry::returned_ref(name)),
                kept,
                "{name}: {refs}"
            );
        }
        assert!(!root.join("pwned").exists());
        // What `ended` held is in the mirror; `idle` held nothing new, so no ref for it.
        let kept = sh(
            &root,
            "git -C mirror show refs/ocio/abandoned/ended:new.txt",
        );
        assert_eq!(kept, "never came back\n");
        let refs = sh(
            &root,
            "git -C mirror for-each-ref --format='%(refname)' refs/ocio/abandoned",
        );
        assert_eq!(refs.trim(), "refs/ocio/abandoned/ended");
        assert!(!root.join("owners/ended").exists());
        assert!(root.join("owners/live").exists());
        // Nothing more to sweep.
        assert!(dead(signed_here(&sh(&root, &list()), "preparing")).is_empty());
    }

    #[test]
    fn the_work_in_a_swept_worktrees_checked_out_submodule_is_kept_too() {
        let dir = tempfile::tempdir().unwrap();
        let (root, here) = (dir.path().join("box"), dir.path().join("here"));
        std::fs::create_dir_all(&root).unwrap();
        let git = "git -c user.name=t -c user.email=t@t";
        // The mirror holds a superproject whose tree records submodule `lib/sub`, and the
        // submodule's commit, both carried.
        sh(
            &root,
            &format!(
                "set -e; git init -q sub; cd sub; echo s > s.txt; git add -A; {git} commit -q -m sub; \
                 git rev-parse HEAD > ../sub.id; cd ..; git init -q mirror; cd mirror; \
                 git fetch -q ../sub HEAD:refs/ocio/box/sub; \
                 printf '[submodule \"lib/sub\"]\\n\\tpath = lib/sub\\n\\turl = ../sub\\n' > .gitmodules; \
                 sed 's,.*,160000 commit &\tlib/sub,' ../sub.id | git update-index --index-info; \
                 git add .gitmodules; {git} commit -q -m base; git update-ref refs/ocio/box/base HEAD; \
                 git worktree add -q --detach ../work/ended HEAD; \
                 git worktree add -q --detach ../work/ended/lib/sub refs/ocio/box/sub"
            ),
        );
        std::fs::write(root.join("work/ended/lib/sub/new.txt"), "never came back\n").unwrap();
        sh(&root, &sign("ended", &here.join("ended")));
        let out = sh(&root, &sweeping(&root.to_string_lossy(), &["ended".into()]));
        assert!(out.contains(DONE));
        assert!(!root.join("work/ended").exists());
        let refs = sh(
            &root,
            "git -C mirror for-each-ref --format='%(refname)' refs/ocio/abandoned-modules/ended",
        );
        let kept = refs.trim();
        assert!(!kept.is_empty(), "the submodule's work is kept");
        let file = sh(&root, &format!("git -C mirror show {kept}:new.txt"));
        assert_eq!(file, "never came back\n");
        // And the superproject's kept commit records it as its gitlink.
        let link = sh(
            &root,
            "git -C mirror ls-tree refs/ocio/abandoned/ended lib/sub",
        );
        assert!(
            kept.ends_with(link.split_whitespace().nth(2).unwrap()),
            "{link}"
        );
    }

    #[test]
    fn a_signature_carries_any_path_exactly() {
        let path = Path::new("/tmp/a b/$(x)/'q'\n/ü");
        let signed = hex(path.as_os_str().as_encoded_bytes());
        assert!(signed.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(unhex(&signed).unwrap(), path.as_os_str().as_encoded_bytes());
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
