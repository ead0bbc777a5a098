#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use super::*;

/// git here, as a user with a name and local submodule URLs allowed, and no configuration of
/// the machine's; its output, trimmed.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "protocol.file.allow=always",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn repo(dir: &Path, file: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join(file), file).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", file]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository with submodule `lib/one` initialized and `lib/two` not (its git directory
/// gone, as in a clone that never ran `git submodule update --init`), and a task worktree of
/// it; (the main checkout, the worktree, lib/one's commit).
pub(crate) fn with_modules(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let one = repo(&dir.join("one"), "one.txt");
    repo(&dir.join("two"), "two.txt");
    let main = dir.join("main");
    repo(&main, "top.txt");
    git(
        &main,
        &[
            "submodule",
            "add",
            "-q",
            "--name",
            "first",
            "../one",
            "lib/one",
        ],
    );
    git(&main, &["submodule", "add", "-q", "../two", "lib/two"]);
    git(&main, &["commit", "-q", "-m", "modules"]);
    git(&main, &["submodule", "deinit", "-q", "-f", "lib/two"]);
    std::fs::remove_dir_all(main.join(".git/modules/lib/two")).unwrap();
    let task = dir.join("task");
    git(
        &main,
        &["worktree", "add", "-q", "--detach", task.to_str().unwrap()],
    );
    (main, task, one)
}

#[test]
fn a_trees_submodules_are_found_with_the_git_directory_that_has_their_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (main, task, one) = with_modules(dir.path());
    let head = git(&task, &["rev-parse", "HEAD"]);
    let modules = modules_of(&task, &head).unwrap();
    assert_eq!(modules.len(), 2, "{modules:?}");
    assert_eq!(modules[0].path, "lib/one");
    assert_eq!(modules[0].commit, one);
    assert_eq!(
        modules[0].gitdir.as_deref(),
        Some(
            main.join(".git/modules/first")
                .canonicalize()
                .unwrap()
                .as_path()
        ),
        "found by its name in .gitmodules, from a linked worktree"
    );
    assert_eq!(modules[1].path, "lib/two");
    assert_eq!(modules[1].gitdir, None, "not initialized here");
    // A tree without submodules has none (and no .gitmodules is no error).
    let plain = dir.path().join("plain");
    let commit = repo(&plain, "a.txt");
    assert!(modules_of(&plain, &commit).unwrap().is_empty());
}

/// Whether the real git-lfs is installed here (CI installs it: see `.ci/run`).
pub(crate) fn git_lfs_installed() -> bool {
    Command::new("git")
        .args(["lfs", "version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The imitation below checked against the real git-lfs, where it is installed: `git lfs
/// track` and a commit leave the pointer in the commit and the content in the worktree, and a
/// checkout with smudging skipped (`GIT_LFS_SKIP_SMUDGE=1`) leaves the pointer.
#[test]
fn lfs_files_are_told_apart_with_the_real_git_lfs() {
    if !git_lfs_installed() {
        eprintln!("git-lfs is not installed: only its imitation is checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("r");
    repo(&work, "plain.txt");
    git(&work, &["lfs", "install", "--local"]);
    git(&work, &["lfs", "track", "*.bin"]);
    std::fs::write(work.join("big.bin"), "the real content\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "lfs"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let pointer = git(&work, &["cat-file", "blob", "HEAD:big.bin"]);
    assert!(
        pointer.starts_with("version https://git-lfs.github.com/spec/v1"),
        "{pointer}"
    );
    let found = lfs_files(&work, &head).unwrap();
    assert_eq!(found.tracked, ["big.bin"]);
    assert_eq!(found.smudged, ["big.bin"], "git-lfs left its content here");
    std::fs::remove_file(work.join("big.bin")).unwrap();
    let out = Command::new("git")
        .args(["checkout", "--", "big.bin"])
        .current_dir(&work)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(work.join("big.bin"))
            .unwrap()
            .trim(),
        pointer
    );
    let found = lfs_files(&work, &head).unwrap();
    assert!(found.smudged.is_empty(), "the pointer, as a box gets it");
}

#[test]
fn lfs_files_are_told_apart_as_pointers_or_smudged_here() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("r");
    repo(&work, "plain.txt");
    std::fs::create_dir_all(work.join("media")).unwrap();
    std::fs::write(
        work.join("media/.gitattributes"),
        "*.bin filter=lfs diff=lfs merge=lfs -text\n",
    )
    .unwrap();
    let pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 5\n";
    std::fs::write(work.join("media/a.bin"), pointer).unwrap();
    std::fs::write(work.join("media/b.bin"), pointer).unwrap();
    std::fs::write(work.join("c.bin"), "not tracked by lfs here").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "lfs"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let found = lfs_files(&work, &head).unwrap();
    assert_eq!(found.tracked, ["media/a.bin", "media/b.bin"]);
    assert!(found.smudged.is_empty(), "pointers here as there");
    // What git-lfs's smudge filter leaves in a worktree: the content, not the pointer.
    std::fs::write(work.join("media/b.bin"), "hello").unwrap();
    let found = lfs_files(&work, &head).unwrap();
    assert_eq!(found.smudged, ["media/b.bin"]);
    // No lfs in any attributes: nothing, quickly.
    let plain = dir.path().join("plain");
    let commit = repo(&plain, "a.txt");
    assert_eq!(lfs_files(&plain, &commit).unwrap(), LfsFiles::default());
}
