//! The local side of carrying trees: a parcel applied elsewhere (as a server's `/vcs/apply`
//! would) gives the same commit, and work fetched back lays down exactly.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::workspace::tests::{git_in, worktree_at};

fn repo(dir: &Path) {
    git_in(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    std::fs::write(dir.join("bin"), [0u8, 159, 146, 150, 255]).unwrap();
    git_in(dir, &["add", "-A"]);
    git_in(dir, &["commit", "-q", "-m", "base"]);
}

/// A parcel's parts applied in `dir` and joined, as the box does.
fn unpack(dir: &Path, parcel: &Parcel) {
    let mut whole = Vec::new();
    for n in 0..parcel.parts() {
        apply(dir, &parcel.patch(n).unwrap());
        let part = dir.join(format!("{}.part-{n:04}", parcel.name));
        whole.extend(std::fs::read(&part).unwrap());
        std::fs::remove_file(part).unwrap();
    }
    std::fs::write(dir.join(&parcel.name), whole).unwrap();
}

fn apply(dir: &Path, patch: &str) {
    let file = dir.join("in.patch");
    std::fs::write(&file, patch).unwrap();
    let out = Command::new("git")
        .current_dir(dir)
        .args(["apply", "in.patch"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(file).unwrap();
}

#[test]
fn a_parcel_carries_the_exact_commit_and_only_what_the_mirror_lacks() {
    let here = tempfile::tempdir().unwrap();
    let there = tempfile::tempdir().unwrap();
    repo(here.path());
    git_in(there.path(), &["init", "-q"]);
    let base = start_of(here.path()).unwrap();
    let parcel = parcel_for(here.path(), &base, &[], 64).unwrap().unwrap();
    assert!(parcel.parts() > 1, "cut in parts of 64 bytes");
    unpack(there.path(), &parcel);
    let carried = carried_ref(&base);
    let spec = format!("+{}:{carried}", parcel.carries);
    git_in(there.path(), &["fetch", "-q", &parcel.name, &spec]);
    assert_eq!(git_in(there.path(), &["rev-parse", &carried]).trim(), base);
    // The mirror has it: nothing to send.
    assert!(
        parcel_for(here.path(), &base, std::slice::from_ref(&base), 64)
            .unwrap()
            .is_none()
    );
    // A later commit travels alone (its parent is not in the bundle).
    std::fs::write(here.path().join("a.txt"), "two\n").unwrap();
    git_in(here.path(), &["commit", "-qam", "next"]);
    let next = start_of(here.path()).unwrap();
    let small = parcel_for(here.path(), &next, std::slice::from_ref(&base), 1 << 20)
        .unwrap()
        .unwrap();
    assert!(
        small.bytes < parcel.bytes + 200,
        "{} vs {}",
        small.bytes,
        parcel.bytes
    );
    assert_eq!(small.parts(), 1);
    unpack(there.path(), &small);
    let carried = carried_ref(&next);
    let spec = format!("+{}:{carried}", small.carries);
    git_in(there.path(), &["fetch", "-q", &small.name, &spec]);
    assert_eq!(git_in(there.path(), &["rev-parse", &carried]).trim(), next);
    // The sending ref is gone from ocio's repository.
    assert!(git_in(here.path(), &["for-each-ref", "refs/ocio/sending"]).is_empty());
    // Unknown haves (another repository's) are skipped, not an error.
    assert!(
        parcel_for(here.path(), &next, &["f".repeat(40)], 1 << 20)
            .unwrap()
            .is_some()
    );
}

#[test]
fn work_received_lays_down_as_uncommitted_changes_exactly() {
    let here = tempfile::tempdir().unwrap();
    repo(here.path());
    let base = start_of(here.path()).unwrap();
    // The box: a clone at base, where a session works.
    let there = tempfile::tempdir().unwrap();
    git_in(
        there.path(),
        &["clone", "-q", &here.path().to_string_lossy(), "."],
    );
    std::fs::write(there.path().join("a.txt"), "changed\n").unwrap();
    std::fs::remove_file(there.path().join("bin")).unwrap();
    std::os::unix::fs::symlink("a.txt", there.path().join("link")).unwrap();
    git_in(there.path(), &["add", "-A"]);
    git_in(there.path(), &["commit", "-qm", "work"]);
    let back = returned_ref("t");
    git_in(there.path(), &["update-ref", &back, "HEAD"]);
    let bundle = there.path().join("out.bundle");
    git_in(
        there.path(),
        &[
            "bundle",
            "create",
            "-q",
            &bundle.to_string_lossy(),
            &back,
            &format!("^{base}"),
        ],
    );
    assert_eq!(received(here.path(), "t").unwrap(), None);
    let commit = receive(here.path(), "t", &bundle).unwrap();
    assert_eq!(
        received(here.path(), "t").unwrap().as_deref(),
        Some(commit.as_str())
    );
    lay_down(here.path(), &commit).unwrap();
    assert_eq!(
        std::fs::read_to_string(here.path().join("a.txt")).unwrap(),
        "changed\n"
    );
    assert!(!here.path().join("bin").exists());
    assert_eq!(
        std::fs::read_link(here.path().join("link")).unwrap(),
        Path::new("a.txt")
    );
    // Uncommitted and unstaged, as a local session leaves its work: HEAD is still the base,
    // the index too (in a checkout used in place, `worktrees = false`, nothing is staged for
    // the user), and the link is a new untracked file.
    assert_eq!(start_of(here.path()).unwrap(), base);
    let staged = git_in(here.path(), &["write-tree"]);
    assert_eq!(staged.trim(), tree_of(here.path(), &base).unwrap());
    let status = git_in(here.path(), &["status", "--porcelain"]);
    // Each line `XY path`: X the index, Y the files (the output comes trimmed).
    let mut status: Vec<&str> = status.lines().map(str::trim_start).collect();
    status.sort_unstable();
    assert_eq!(status, ["?? link", "D bin", "M a.txt"]);
    let local = here.path().join("a/b/c/d");
    let name = box_name(&local);
    assert_eq!(name, "a--b--c--d");
    git_in(here.path(), &["update-ref", &returned_ref(&name), &commit]);
    forget(here.path(), &local).unwrap();
    assert_eq!(received(here.path(), &name).unwrap(), None);
    // Forgetting what never came back is no error.
    forget(here.path(), &local).unwrap();
}

#[test]
fn a_clean_worktree_is_handed_over_as_its_head_and_a_dirty_one_as_a_commit_of_its_files() {
    let here = tempfile::tempdir().unwrap();
    repo(here.path());
    let head = git_in(here.path(), &["rev-parse", "HEAD"]);
    assert_eq!(hand_over(here.path()).unwrap(), head);
    let name = box_name(here.path());
    assert!(git_in(here.path(), &["for-each-ref", &handed_ref(&name)]).is_empty());
    std::fs::write(here.path().join("a.txt"), "edited\n").unwrap();
    std::fs::write(here.path().join("new.txt"), "untracked\n").unwrap();
    std::fs::remove_file(here.path().join("bin")).unwrap();
    let status = git_in(here.path(), &["status", "--porcelain"]);
    let handed = hand_over(here.path()).unwrap();
    assert_ne!(handed, head);
    assert_eq!(
        hand_over(here.path()).unwrap(),
        handed,
        "same files, same commit"
    );
    assert_eq!(start_of(here.path()).unwrap(), handed);
    assert_eq!(
        git_in(here.path(), &["rev-parse", &format!("{handed}^")]),
        head
    );
    let files = git_in(here.path(), &["ls-tree", "-r", "--name-only", &handed]);
    assert_eq!(files, "a.txt\nnew.txt");
    assert_eq!(
        git_in(here.path(), &["show", &format!("{handed}:a.txt")]),
        "edited"
    );
    assert_eq!(
        git_in(here.path(), &["status", "--porcelain"]),
        status,
        "its index and files as they were"
    );
    // Clean again: its HEAD, and the handed state forgotten.
    git_in(here.path(), &["checkout", "-q", "--", "."]);
    std::fs::remove_file(here.path().join("new.txt")).unwrap();
    assert_eq!(hand_over(here.path()).unwrap(), head);
    assert_eq!(start_of(here.path()).unwrap(), head);
}

#[test]
fn a_merge_in_progress_handed_to_a_box_stays_one_when_the_resolution_comes_back() {
    let here = tempfile::tempdir().unwrap();
    repo(here.path());
    git_in(here.path(), &["checkout", "-q", "-b", "other"]);
    std::fs::write(here.path().join("a.txt"), "theirs\n").unwrap();
    git_in(here.path(), &["commit", "-qam", "theirs"]);
    git_in(here.path(), &["checkout", "-q", "main"]);
    std::fs::write(here.path().join("a.txt"), "ours\n").unwrap();
    git_in(here.path(), &["commit", "-qam", "ours"]);
    let merge = Command::new("git")
        .current_dir(here.path())
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "merge",
            "-q",
            "other",
        ])
        .output()
        .unwrap();
    assert!(!merge.status.success(), "a conflict");
    assert!(merging(here.path()));
    let handed = hand_over(here.path()).unwrap();
    let marked = git_in(here.path(), &["show", &format!("{handed}:a.txt")]);
    assert!(marked.contains("<<<<<<<"), "{marked}");
    // The box: a worktree at the handed state, where the resolver works and commits.
    let there = tempfile::tempdir().unwrap();
    let box_dir = there.path().join("box");
    worktree_at(here.path(), &box_dir, &handed);
    std::fs::write(box_dir.join("a.txt"), "resolved\n").unwrap();
    std::fs::write(box_dir.join("note.txt"), "why\n").unwrap();
    git_in(&box_dir, &["add", "-A"]);
    git_in(&box_dir, &["commit", "-qm", "resolved"]);
    let work = git_in(&box_dir, &["rev-parse", "HEAD"]);
    lay_down(here.path(), &work).unwrap();
    assert!(merging(here.path()), "still a merge in progress");
    assert_eq!(
        std::fs::read_to_string(here.path().join("a.txt")).unwrap(),
        "resolved\n"
    );
    assert_eq!(
        std::fs::read_to_string(here.path().join("note.txt")).unwrap(),
        "why\n"
    );
    let unmerged = git_in(here.path(), &["diff", "--name-only", "--diff-filter=U"]);
    assert_eq!(
        unmerged, "a.txt",
        "concluded by the engine, as a local resolver's"
    );
    // Laid down again after a restart: nothing changes, no error.
    lay_down(here.path(), &work).unwrap();
    assert_eq!(
        std::fs::read_to_string(here.path().join("a.txt")).unwrap(),
        "resolved\n"
    );
    git_in(here.path(), &["add", "-A"]);
    git_in(here.path(), &["commit", "-q", "--no-edit"]);
    let parents = git_in(here.path(), &["rev-list", "--parents", "-1", "HEAD"]);
    assert_eq!(parents.split(' ').count(), 3, "a merge commit: {parents}");
    forget(here.path(), here.path()).unwrap();
    assert!(git_in(here.path(), &["for-each-ref", "refs/ocio/handed"]).is_empty());
}

/// A repository whose tree records submodule `lib/sub` at a commit (the repository's first),
/// not initialized: an empty directory, as `git worktree add` leaves it. That commit.
fn with_a_submodule(here: &Path) -> String {
    repo(here);
    let recorded = git_in(here, &["rev-parse", "HEAD"]);
    let link = format!("160000,{recorded},lib/sub");
    git_in(here, &["update-index", "--add", "--cacheinfo", &link]);
    git_in(here, &["commit", "-q", "-m", "a submodule"]);
    std::fs::create_dir_all(here.join("lib/sub")).unwrap();
    recorded
}

#[test]
fn a_submodules_new_commit_from_a_box_is_laid_down_in_a_handed_over_worktree_too() {
    let here = tempfile::tempdir().unwrap();
    let recorded = with_a_submodule(here.path());
    // Handed over with a change not committed (as an integration worktree's merge is).
    std::fs::write(here.path().join("a.txt"), "mid-merge\n").unwrap();
    let handed = hand_over(here.path()).unwrap();
    // On the box: the session committed in the submodule, and its gitlink moved.
    let there = tempfile::tempdir().unwrap();
    let box_dir = there.path().join("box");
    worktree_at(here.path(), &box_dir, &handed);
    let moved = git_in(
        here.path(),
        &[
            "commit-tree",
            "-m",
            "in the submodule",
            &format!("{recorded}^{{tree}}"),
        ],
    );
    let link = format!("160000,{moved},lib/sub");
    git_in(&box_dir, &["update-index", "--cacheinfo", &link]);
    git_in(&box_dir, &["commit", "-q", "-m", "work"]);
    let work = git_in(&box_dir, &["rev-parse", "HEAD"]);
    lay_down(here.path(), &work).unwrap();
    let staged = git_in(here.path(), &["ls-files", "-s", "lib/sub"]);
    assert!(
        staged.contains(&moved),
        "the new gitlink is staged: {staged}"
    );
    assert_eq!(
        std::fs::read_to_string(here.path().join("a.txt")).unwrap(),
        "mid-merge\n"
    );
    // Laid down again after a restart: the same, no error; committed as the engine does.
    lay_down(here.path(), &work).unwrap();
    git_in(here.path(), &["add", "-A"]);
    git_in(here.path(), &["commit", "-q", "-m", "concluded"]);
    let tree = git_in(here.path(), &["ls-tree", "HEAD", "lib/sub"]);
    assert!(tree.contains(&moved), "{tree}");
}

#[test]
fn a_box_name_is_a_valid_ref_name_whatever_the_path() {
    let here = tempfile::tempdir().unwrap();
    repo(here.path());
    let head = git_in(here.path(), &["rev-parse", "HEAD"]);
    for path in [
        "/home/u/.dotfiles-1a2b/.plan/task/1",
        "/r/a..b/p/t/x.lock",
        "/r/p/t/x.",
    ] {
        let name = box_name(Path::new(path));
        git_in(here.path(), &["update-ref", &returned_ref(&name), &head]);
        let module = crate::workspace::carry_modules::module_ref(&name, 0);
        git_in(here.path(), &["update-ref", &module, &head]);
    }
    // Names git took before stay as they were (a box worktree made before is found again).
    assert_eq!(
        box_name(Path::new("/x/repo-1/plan/task/2")),
        "repo-1--plan--task--2"
    );
}

/// A task's worktree (not handed over): the work comes back unstaged but for the submodule's
/// new commit, staged as its gitlink (the submodule is an empty directory here: no file
/// carries it), so the engine's `git add -A` records it.
#[test]
fn a_submodules_new_commit_from_a_box_is_staged_in_a_task_worktree_and_nothing_else_is() {
    let here = tempfile::tempdir().unwrap();
    let recorded = with_a_submodule(here.path());
    let base = git_in(here.path(), &["rev-parse", "HEAD"]);
    let there = tempfile::tempdir().unwrap();
    let box_dir = there.path().join("box");
    worktree_at(here.path(), &box_dir, &base);
    let tree = format!("{recorded}^{{tree}}");
    let moved = git_in(
        here.path(),
        &["commit-tree", "-m", "in the submodule", &tree],
    );
    let link = format!("160000,{moved},lib/sub");
    git_in(&box_dir, &["update-index", "--cacheinfo", &link]);
    std::fs::write(box_dir.join("a.txt"), "changed\n").unwrap();
    git_in(&box_dir, &["commit", "-q", "-am", "work"]);
    let work = git_in(&box_dir, &["rev-parse", "HEAD"]);
    lay_down(here.path(), &work).unwrap();
    let staged = git_in(here.path(), &["diff", "--cached", "--name-only"]);
    assert_eq!(staged, "lib/sub", "only the gitlink is staged");
    let gitlink = git_in(here.path(), &["ls-files", "-s", "lib/sub"]);
    assert!(gitlink.contains(&moved), "{gitlink}");
    assert_eq!(
        std::fs::read_to_string(here.path().join("a.txt")).unwrap(),
        "changed\n"
    );
    git_in(here.path(), &["add", "-A"]);
    git_in(here.path(), &["commit", "-q", "-m", "the task's work"]);
    let committed = git_in(here.path(), &["ls-tree", "HEAD", "lib/sub"]);
    assert!(committed.contains(&moved), "recorded: {committed}");
}
