//! Tests of a plan's review against real git repositories: files with renames and deletions,
//! line counts and blobs, ahead and behind, a base that moved on, the diff cut.

use super::tests::{Fixture, git_in, write};
use crate::domain::review::REVIEW_DIFF_CAP;

/// A repository whose plan `p` changed lib.txt, added new.txt, renamed README.md to DOC.md and
/// deleted gone.txt, in two commits on its integration branch.
fn reviewed_plan() -> (Fixture, super::Workspace) {
    let fx = Fixture::new();
    write(&fx.repo, "gone.txt", "bye\n");
    fx.git(&["add", "."]);
    fx.git(&["commit", "-q", "-m", "more"]);
    let ws = fx.workspace();
    let integration = ws.ensure_integration("p", Some("main")).unwrap();
    let dir = &integration.path;
    write(dir, "lib.txt", "one\n2\nthree\nfour\n");
    write(dir, "new.txt", "fresh\n");
    git_in(dir, &["add", "."]);
    git_in(dir, &["commit", "-q", "-m", "task a"]);
    git_in(dir, &["mv", "README.md", "DOC.md"]);
    git_in(dir, &["rm", "-q", "gone.txt"]);
    git_in(dir, &["commit", "-q", "-m", "task b"]);
    (fx, ws)
}

#[test]
fn a_review_lists_changed_renamed_and_deleted_files_with_their_counts() {
    let (fx, ws) = reviewed_plan();
    let review = ws
        .review("ocio/p/integration", Some("main"), REVIEW_DIFF_CAP)
        .unwrap();
    assert_eq!(review.base, "main");
    assert_eq!(review.base_commit, fx.git(&["rev-parse", "main"]));
    assert_eq!((review.ahead, review.behind), (2, 0));
    type Row<'a> = (char, &'a str, Option<&'a str>, Option<u64>, Option<u64>);
    let files: Vec<Row> = review
        .files
        .iter()
        .map(|f| {
            let from = f.from.as_deref();
            (f.status, f.path.as_str(), from, f.added, f.removed)
        })
        .collect();
    assert_eq!(
        files,
        vec![
            ('R', "DOC.md", Some("README.md"), Some(0), Some(0)),
            ('D', "gone.txt", None, Some(0), Some(1)),
            ('M', "lib.txt", None, Some(2), Some(1)),
            ('A', "new.txt", None, Some(1), Some(0)),
        ]
    );
    let lib = &review.files[2];
    let blob = fx.git(&["rev-parse", "ocio/p/integration:lib.txt"]);
    assert_eq!(lib.blob.as_deref(), Some(blob.as_str()));
    assert_eq!(review.files[1].blob, None, "a deleted file has no blob");
    assert!(review.diff.contains("+four"));
    assert_eq!(review.diff_cut, None);
    let part = review.file_diff("new.txt").unwrap();
    assert!(part.starts_with("diff --git a/new.txt b/new.txt"));
    assert!(part.contains("+fresh") && !part.contains("four"));
}

#[test]
fn a_base_that_moved_on_counts_behind_and_adds_nothing_to_the_files() {
    let (fx, ws) = reviewed_plan();
    write(&fx.repo, "main-only.txt", "later\n");
    fx.git(&["add", "."]);
    fx.git(&["commit", "-q", "-m", "main moves on"]);
    let review = ws
        .review("ocio/p/integration", Some("main"), REVIEW_DIFF_CAP)
        .unwrap();
    assert_eq!((review.ahead, review.behind), (2, 1));
    assert_eq!(review.base_commit, fx.git(&["rev-parse", "main"]));
    assert!(!review.files.iter().any(|f| f.path == "main-only.txt"));
    assert_eq!(review.files.len(), 4);
}

#[test]
fn a_long_diff_is_cut_and_says_so() {
    let (_fx, ws) = reviewed_plan();
    let review = ws.review("ocio/p/integration", Some("main"), 120).unwrap();
    let whole = ws
        .review("ocio/p/integration", Some("main"), REVIEW_DIFF_CAP)
        .unwrap();
    assert_eq!(review.diff_cut, Some(whole.diff.len() as u64));
    assert!(review.diff.len() < whole.diff.len());
    assert!(review.diff.contains("diff cut here"), "{}", review.diff);
}

#[test]
fn a_branch_that_is_not_there_is_an_error_naming_it() {
    let (_fx, ws) = reviewed_plan();
    let error = ws
        .review("ocio/nope/integration", Some("main"), REVIEW_DIFF_CAP)
        .unwrap_err();
    assert!(
        matches!(error, super::WorkspaceError::NoBranchToReview { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("ocio/nope/integration"),
        "{error}"
    );
}

/// A file made executable, one no longer executable, a new symlink and a new executable are
/// said as such (their line counts cannot say it; the review used to list the first two as
/// `M +0 -0` and nothing more).
#[test]
fn a_review_says_what_became_of_a_files_mode() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let fx = Fixture::new();
    write(&fx.repo, "run.sh", "echo hi\n");
    write(&fx.repo, "tool.sh", "echo tool\n");
    let tool = fx.repo.join("tool.sh");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    fx.git(&["add", "."]);
    fx.git(&["commit", "-q", "-m", "scripts"]);
    let ws = fx.workspace();
    let integration = ws.ensure_integration("p", Some("main")).unwrap();
    let dir = &integration.path;
    let mode = |name: &str, mode: u32| {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode("run.sh", 0o755);
    mode("tool.sh", 0o644);
    symlink("run.sh", dir.join("link")).unwrap();
    write(dir, "new.sh", "echo new\n");
    mode("new.sh", 0o755);
    write(dir, "plain.txt", "x\n");
    git_in(dir, &["add", "."]);
    git_in(dir, &["commit", "-q", "-m", "modes"]);
    let review = ws
        .review("ocio/p/integration", Some("main"), REVIEW_DIFF_CAP)
        .unwrap();
    let modes: Vec<(&str, Option<&str>)> = review
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode.as_deref()))
        .collect();
    assert_eq!(
        modes,
        vec![
            ("link", Some("a symlink")),
            ("new.sh", Some("executable")),
            ("plain.txt", None),
            ("run.sh", Some("now executable")),
            ("tool.sh", Some("no longer executable")),
        ]
    );
}
