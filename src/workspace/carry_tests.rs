//! The local side of carrying trees: a parcel applied elsewhere (as a server's `/vcs/apply`
//! would) gives the same commit, and work fetched back lays down exactly.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::workspace::tests::git_in;

fn repo(dir: &Path) {
    git_in(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    std::fs::write(dir.join("bin"), [0u8, 159, 146, 150, 255]).unwrap();
    git_in(dir, &["add", "-A"]);
    git_in(dir, &["commit", "-q", "-m", "base"]);
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
    let parcel = parcel_for(here.path(), &base, &[]).unwrap().unwrap();
    apply(there.path(), &parcel.patch);
    let carried = carried_ref(&base);
    let spec = format!("+{}:{carried}", parcel.carries);
    git_in(there.path(), &["fetch", "-q", &parcel.name, &spec]);
    assert_eq!(git_in(there.path(), &["rev-parse", &carried]).trim(), base);
    // The mirror has it: nothing to send.
    assert!(
        parcel_for(here.path(), &base, std::slice::from_ref(&base))
            .unwrap()
            .is_none()
    );
    // A later commit travels alone (its parent is not in the bundle).
    std::fs::write(here.path().join("a.txt"), "two\n").unwrap();
    git_in(here.path(), &["commit", "-qam", "next"]);
    let next = start_of(here.path()).unwrap();
    let small = parcel_for(here.path(), &next, std::slice::from_ref(&base))
        .unwrap()
        .unwrap();
    assert!(
        small.bytes < parcel.bytes + 200,
        "{} vs {}",
        small.bytes,
        parcel.bytes
    );
    apply(there.path(), &small.patch);
    let carried = carried_ref(&next);
    let spec = format!("+{}:{carried}", small.carries);
    git_in(there.path(), &["fetch", "-q", &small.name, &spec]);
    assert_eq!(git_in(there.path(), &["rev-parse", &carried]).trim(), next);
    // The sending ref is gone from ocio's repository.
    assert!(git_in(here.path(), &["for-each-ref", "refs/ocio/sending"]).is_empty());
    // Unknown haves (another repository's) are skipped, not an error.
    assert!(
        parcel_for(here.path(), &next, &["f".repeat(40)])
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
    let bytes = std::fs::read(&bundle).unwrap();
    assert_eq!(received(here.path(), "t").unwrap(), None);
    let commit = receive(here.path(), "t", &bytes).unwrap();
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
    // Uncommitted: HEAD is still the base, the index holds the work's tree.
    assert_eq!(start_of(here.path()).unwrap(), base);
    let staged = git_in(here.path(), &["write-tree"]);
    assert_eq!(staged.trim(), tree_of(here.path(), &commit).unwrap());
    let local = here.path().join("a/b/c/d");
    let name = box_name(&local);
    assert_eq!(name, "a--b--c--d");
    git_in(here.path(), &["update-ref", &returned_ref(&name), &commit]);
    forget(here.path(), &local).unwrap();
    assert_eq!(received(here.path(), &name).unwrap(), None);
    // Forgetting what never came back is no error.
    forget(here.path(), &local).unwrap();
}
