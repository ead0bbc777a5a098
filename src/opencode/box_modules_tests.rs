#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::*;
use crate::workspace::carry_modules::tests::{git, with_modules};

/// A script on the "box" with no git configuration of its own.
fn sh(dir: &Path, script: &str) -> String {
    super::super::tests::on_box(dir, Path::new("/dev/null"), script)
}

/// A task worktree whose tree has submodule `lib/one` (initialized here) and `lib/two` (not),
/// and a box root whose mirror holds what ocio carried there; (the task, the box's root).
fn carried(dir: &Path) -> (PathBuf, PathBuf) {
    let (main, task, _) = with_modules(dir);
    let root = dir.join("box");
    std::fs::create_dir_all(root.join("outbox")).unwrap();
    sh(
        &root,
        &format!(
            "set -e; git init -q mirror; {settled}; \
             git -C mirror fetch -q {main} HEAD:refs/ocio/box/base; \
             git -C mirror fetch -q {one} HEAD:refs/ocio/box/one",
            settled = super::super::settled("mirror"),
            main = main.display(),
            one = main.join(".git/modules/first").display(),
        ),
    );
    (task, root)
}

/// [`carried`], with the task's head, its submodules, and where its box worktree goes
/// (`work/t` under the box's root): (the box's root, the head, the modules, the worktree).
fn on_the_box(dir: &Path) -> (PathBuf, String, Vec<Module>, PathBuf) {
    let (task, root) = carried(dir);
    let head = git(&task, &["rev-parse", "HEAD"]);
    let modules = carry_modules::modules_of(&task, &head).unwrap();
    let work = root.join("work/t");
    (root, head, modules, work)
}

#[test]
fn submodules_initialized_here_are_checked_out_on_the_box_and_their_work_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (root, head, modules, work) = on_the_box(dir.path());
    let at = work.to_string_lossy().into_owned();
    let present = format!(
        "if [ -e work/t/.git ]{}; then echo PRESENT; fi",
        all_checked_out("t", &modules)
    );
    sh(
        &root,
        &format!(
            "set -e; git -C mirror worktree add -q --detach {at} {head}; {present}; {}",
            check_out(&at, &modules)
        ),
    );
    assert_eq!(
        std::fs::read_to_string(work.join("lib/one/one.txt")).unwrap(),
        "one.txt"
    );
    assert_eq!(
        std::fs::read_dir(work.join("lib/two")).unwrap().count(),
        0,
        "not initialized here: empty, as in a worktree here"
    );
    assert_eq!(sh(&root, &present).trim(), "PRESENT");
    assert!(
        sh(&work, "git status --porcelain").is_empty(),
        "the superproject sees its submodule at the recorded commit"
    );
    // Nothing done in it: nothing bundled.
    let outbox = root.join("outbox").to_string_lossy().into_owned();
    let quiet = sh(&root, &commit_back(&at, "t", &modules, &outbox, 64));
    assert!(parts_of(&quiet, "t", &modules).is_empty(), "{quiet}");
    // The session's work in it: committed there, bundled in small parts, taken in here.
    std::fs::write(work.join("lib/one/new.txt"), "new\n").unwrap();
    let output = sh(&root, &commit_back(&at, "t", &modules, &outbox, 64));
    assert!(strays(&output, &modules, &at).is_none());
    let parts = parts_of(&output, "t", &modules);
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), [0]);
    assert!(parts[&0].len() > 1, "cut in parts: {output}");
    let bundle = dir.path().join("back.bundle");
    sh(
        &root.join("outbox"),
        &format!("cat {} > {}", parts[&0].join(" "), bundle.display()),
    );
    let commit = carry_modules::receive_module(&modules[0], "t", 0, &bundle).unwrap();
    let gitdir = modules[0].gitdir.as_ref().unwrap();
    assert_eq!(git(gitdir, &["show", &format!("{commit}:new.txt")]), "new");
    // The superproject records it as its gitlink.
    sh(&work, "git add -A");
    let link = sh(&work, "git ls-files -s lib/one");
    assert!(link.contains(&commit), "{link}");
}

#[test]
fn files_written_into_a_submodule_not_checked_out_are_named_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (root, head, modules, work) = on_the_box(dir.path());
    let at = work.to_string_lossy().into_owned();
    sh(
        &root,
        &format!(
            "set -e; git -C mirror worktree add -q --detach {at} {head}; {}",
            check_out(&at, &modules)
        ),
    );
    std::fs::write(work.join("lib/two/stray.txt"), "lost?\n").unwrap();
    let outbox = root.join("outbox").to_string_lossy().into_owned();
    let output = sh(&root, &commit_back(&at, "t", &modules, &outbox, 1 << 20));
    let refused = strays(&output, &modules, &at).expect("named");
    let said = refused.to_string();
    assert!(said.contains("`lib/two`"), "{said}");
    assert!(
        said.contains("git submodule update --init lib/two"),
        "{said}"
    );
    assert!(said.contains(&at), "says where the work stays: {said}");
    assert!(work.join("lib/two/stray.txt").exists());
}

#[test]
fn lfs_files_are_refused_a_box_only_where_ocios_worktree_holds_their_contents() {
    let local = Path::new("/w");
    let none = LfsFiles::default();
    assert!(lfs_allowed(&none, local).is_ok());
    let pointers = LfsFiles {
        tracked: vec!["a.bin".into()],
        smudged: vec![],
    };
    assert!(lfs_allowed(&pointers, local).is_ok(), "pointers as here");
    let smudged = LfsFiles {
        tracked: (0..7).map(|n| format!("m/{n}.bin")).collect(),
        smudged: (0..7).map(|n| format!("m/{n}.bin")).collect(),
    };
    let said = lfs_allowed(&smudged, local).unwrap_err().to_string();
    assert!(said.contains("filter=lfs"), "{said}");
    assert!(
        said.contains("m/0.bin") && said.contains("and 2 more"),
        "{said}"
    );
    assert!(said.contains("workspace = \"shared\""), "{said}");
}

#[test]
fn a_settled_mirror_checks_out_and_records_lfs_pointers_whatever_git_lfs_the_box_has() {
    let dir = tempfile::tempdir().unwrap();
    let (box_dir, config) = (dir.path(), dir.path().join("gitconfig"));
    // The box's git-lfs, as `git lfs install` sets it up (here a filter that fails, as
    // git-lfs does when the mirror has no LFS objects and no remote to fetch them from).
    std::fs::write(
        &config,
        "[filter \"lfs\"]\n\tprocess = false\n\tsmudge = false %f\n\tclean = false %f\n\trequired = true\n[user]\n\tname = box\n\temail = box@box\n",
    )
    .unwrap();
    let pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 5\n";
    super::super::tests::on_box(
        box_dir,
        Path::new("/dev/null"),
        &format!(
            "set -e; git init -q made; cd made; echo '*.bin filter=lfs -text' > .gitattributes; \
             printf '{pointer}' > a.bin; git add -A; \
             git -c user.name=t -c user.email=t@t commit -q -m lfs"
        ),
    );
    super::super::tests::on_box(
        box_dir,
        &config,
        &format!(
            "set -e; git init -q mirror; {settled}; git -C mirror fetch -q ../made HEAD:refs/ocio/box/x; \
             git -C mirror worktree add -q --detach ../work refs/ocio/box/x",
            settled = super::super::settled("mirror")
        ),
    );
    let work = box_dir.join("work");
    assert_eq!(
        std::fs::read_to_string(work.join("a.bin")).unwrap(),
        pointer
    );
    // What a session writes there is recorded as it is (no object kept on the box alone).
    std::fs::write(work.join("b.bin"), "content\n").unwrap();
    let recorded =
        super::super::tests::on_box(&work, &config, "set -e; git add -A; git cat-file -p :b.bin");
    assert_eq!(recorded, "content\n");
}

/// Files written into a submodule within a submodule, not initialized here: the fix named
/// initializes it from the repository's own submodule (`--init lib/one/deep` there fails: it
/// is no submodule of the repository's).
#[test]
fn files_in_a_nested_submodule_not_checked_out_name_a_fix_that_works() {
    let module = |path: &str, carried: bool| Module {
        path: path.into(),
        commit: "c".repeat(40),
        gitdir: carried.then(|| PathBuf::from("/g")),
        home: PathBuf::from("/g"),
    };
    let modules = [
        module("lib/one", true),
        module("lib/one/deep", false),
        module("lib/one/deep2", false),
        module("lib/two", false),
    ];
    // As the script tells them: from the innermost out.
    let said = strays("STRAY 3\nSTRAY 2\nSTRAY 1\n", &modules, "/box/work/t")
        .expect("named")
        .to_string();
    assert!(
        said.contains("`lib/one/deep`, `lib/one/deep2`, `lib/two`"),
        "{said}"
    );
    assert!(
        said.contains(
            "`git submodule update --init --recursive lib/one; git submodule update --init lib/two`"
        ),
        "{said}"
    );
}
