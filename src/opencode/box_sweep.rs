//! Worktrees left on a build box: each task worktree ocio makes on a box is signed with who
//! made it (`owners/NAME` under the box's root: this machine and the local worktree it stands
//! for). A worktree whose task ended while its box could not be reached, or whose removal
//! failed, stays behind; the next time this machine prepares a task on that box it removes
//! those of its own whose local worktree is gone (ocio removes a local worktree only once its
//! work is merged or abandoned, so nothing on the box is needed any more). Worktrees of other
//! machines' ocio, and of this one's still present, are left alone.

use std::path::Path;
use std::sync::LazyLock;

use super::{BoxWorkspace, DONE, quoted};
use crate::workspace::carry;

/// Where the box's root keeps the signatures.
const OWNERS: &str = "owners";

/// This machine, as its signatures say: its machine id where it has one, else its host name.
static MACHINE: LazyLock<String> = LazyLock::new(|| {
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
    read("/etc/machine-id")
        .or_else(|| read("/proc/sys/kernel/hostname"))
        .unwrap_or_else(|| "unknown".into())
});

/// The script (run in the box's root) that signs worktree `name` as `local`'s, made here.
pub(super) fn sign(name: &str, local: &Path) -> String {
    let signature = format!("{} {}", *MACHINE, local.display());
    format!(
        "mkdir -p {OWNERS}; printf '%s\\n' {signature} > {OWNERS}/{name}",
        signature = quoted(&signature),
        name = quoted(name),
    )
}

/// The script (run in the box's root) that lists the signatures, one `owners/NAME:SIGNATURE`
/// line each.
pub(super) fn list() -> String {
    format!("grep -H . {OWNERS}/* 2>/dev/null || true")
}

/// Of the signatures `listed` (the output of [`list`]), the worktrees this machine made whose
/// local worktree is gone (never `keep`, the one being prepared).
pub(super) fn dead(listed: &str, keep: &str) -> Vec<String> {
    listed
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{OWNERS}/")))
        .filter_map(|line| {
            let (name, signature) = line.split_once(':')?;
            let (machine, local) = signature.split_once(' ')?;
            let gone = machine == MACHINE.as_str()
                && Path::new(local).is_absolute()
                && !Path::new(local).exists();
            (gone && name != keep).then(|| name.to_string())
        })
        .collect()
}

/// The script (run in the box's root) that removes worktree `name` at `dir`, what it sent
/// or set up, and its signature.
pub(super) fn removal(name: &str, dir: &str) -> String {
    format!(
        "git -C mirror worktree remove --force {dir} 2>/dev/null || rm -rf {dir}; \
         git -C mirror update-ref -d {back} 2>/dev/null; \
         rm -f outbox/{name}.bundle* outbox/{name}.ready outbox/{name}.setup.sh outbox/{name}.setup.log {OWNERS}/{name}",
        dir = quoted(dir),
        back = carry::returned_ref(name),
    )
}

impl BoxWorkspace {
    /// Removes the worktrees `dead` (see [`dead`]) under `root`; a failure is only logged (the
    /// next preparation tries again).
    pub(super) async fn sweep(&self, root: &str, dead: &[String]) {
        if dead.is_empty() {
            return;
        }
        match self
            .script("removing worktrees left behind", &sweeping(root, dead))
            .await
        {
            Ok(_) => {
                tracing::info!(server = self.client.base_url(), worktrees = ?dead, "removed worktrees a build box kept of tasks that ended")
            }
            Err(error) => {
                tracing::warn!(server = self.client.base_url(), %error, "cannot remove worktrees left behind on a build box")
            }
        }
    }
}

/// The script that removes the worktrees `dead` under `root`.
fn sweeping(root: &str, dead: &[String]) -> String {
    let removals: Vec<String> = dead
        .iter()
        .map(|name| removal(name, &format!("{root}/work/{name}")))
        .collect();
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

    fn sh(dir: &Path, script: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
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
    fn only_this_machines_worktrees_whose_local_worktree_is_gone_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (root, here) = (dir.path().join("box"), dir.path().join("here"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(here.join("live")).unwrap();
        sh(
            &root,
            "set -e; git init -q mirror; cd mirror; echo a > a; git add a; \
             git -c user.name=t -c user.email=t@t commit -q -m base",
        );
        let root_str = root.to_string_lossy().into_owned();
        // `live`'s local worktree is here; `ended`'s is gone; `other` is another machine's;
        // `unsigned` has no signature; `preparing` is the one being prepared now.
        let locals = [
            ("live", here.join("live")),
            ("ended", here.join("ended")),
            ("preparing", here.join("preparing")),
        ];
        for name in ["live", "ended", "other", "unsigned", "preparing"] {
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
        for (name, local) in &locals {
            sh(&root, &sign(name, local));
        }
        sh(
            &root,
            &format!(
                "echo 'another-machine {}' > owners/other",
                here.join("ended").display()
            ),
        );
        let listed = sh(&root, &list());
        assert_eq!(dead(&listed, "preparing"), ["ended"]);

        let out = sh(&root, &sweeping(&root_str, &dead(&listed, "preparing")));
        assert!(out.contains(DONE));
        for (name, kept) in [
            ("live", true),
            ("ended", false),
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
        assert!(!root.join("owners/ended").exists());
        assert!(root.join("owners/live").exists());
        // Nothing more to sweep.
        assert!(dead(&sh(&root, &list()), "preparing").is_empty());
    }
}
