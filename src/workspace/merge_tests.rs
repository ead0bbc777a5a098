//! Tests of merging task branches (clean, up to date, conflicting, left for a resolver) and of
//! the cleanup policies, against real git repositories in temporary directories.

use super::tests::{Fixture, git_in, read, write};
use super::*;

#[test]
fn two_tasks_editing_the_same_file_first_merges_second_conflicts() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let a = ws.create_worktree("p", "a", 1).unwrap();
    let b = ws.create_worktree("p", "b", 1).unwrap();
    write(&a.path, "lib.txt", "one\nTWO from a\nthree\n");
    write(&b.path, "lib.txt", "one\ntwo from b\nthree\n");
    ws.commit_all(&a.path, "a").unwrap();
    ws.commit_all(&b.path, "b").unwrap();
    let merged = ws.merge("p", "a", OnConflict::Abort).unwrap();
    let MergeOutcome::Merged { commit } = merged else {
        panic!("{merged:?}")
    };
    let integration = ws.integration_path("p");
    assert_eq!(git_in(&integration, &["rev-parse", "HEAD"]), commit);
    assert_eq!(read(&integration, "lib.txt"), "one\nTWO from a\nthree\n");
    let outcome = ws.merge("p", "b", OnConflict::Abort).unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::Conflict {
            files: vec!["lib.txt".into()]
        }
    );
    assert_eq!(
        git_in(&integration, &["status", "--porcelain"]),
        "",
        "aborted cleanly"
    );
    assert_eq!(git_in(&integration, &["rev-parse", "HEAD"]), commit);
    assert_eq!(
        ws.merge("p", "a", OnConflict::Abort).unwrap(),
        MergeOutcome::UpToDate
    );
}

#[test]
fn non_overlapping_edits_both_merge() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let a = ws.create_worktree("p", "a", 1).unwrap();
    let b = ws.create_worktree("p", "b", 1).unwrap();
    write(&a.path, "a.txt", "a\n");
    write(&b.path, "lib.txt", "one\ntwo\nthree\nfour\n");
    ws.commit_all(&a.path, "a").unwrap();
    ws.commit_all(&b.path, "b").unwrap();
    assert!(matches!(
        ws.merge("p", "a", OnConflict::Leave).unwrap(),
        MergeOutcome::Merged { .. }
    ));
    assert!(matches!(
        ws.merge("p", "b", OnConflict::Leave).unwrap(),
        MergeOutcome::Merged { .. }
    ));
    let integration = ws.integration_path("p");
    assert_eq!(read(&integration, "a.txt"), "a\n");
    assert_eq!(read(&integration, "lib.txt"), "one\ntwo\nthree\nfour\n");
    let log = git_in(&integration, &["log", "--format=%s", "--first-parent"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "Merge task b of plan p",
            "Merge task a of plan p",
            "initial"
        ]
    );
    let empty = ws.create_worktree("p", "empty", 1).unwrap();
    assert_eq!(ws.commit_all(&empty.path, "none").unwrap(), None);
    assert_eq!(
        ws.merge("p", "empty", OnConflict::Abort).unwrap(),
        MergeOutcome::UpToDate
    );
}

#[test]
fn a_conflict_left_for_a_resolver_is_concluded_once_the_markers_are_gone() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let a = ws.create_worktree("p", "a", 1).unwrap();
    let b = ws.create_worktree("p", "b", 1).unwrap();
    write(&a.path, "lib.txt", "one\nA\nthree\n");
    write(&b.path, "lib.txt", "one\nB\nthree\n");
    ws.commit_all(&a.path, "a").unwrap();
    ws.commit_all(&b.path, "b").unwrap();
    ws.merge("p", "a", OnConflict::Leave).unwrap();
    let outcome = ws.merge("p", "b", OnConflict::Leave).unwrap();
    assert!(matches!(outcome, MergeOutcome::Conflict { .. }));
    let integration = ws.integration_path("p");
    let text = read(&integration, "lib.txt");
    assert!(
        text.contains("<<<<<<< HEAD") && text.contains(">>>>>>> "),
        "{text}"
    );

    let err = ws.merge("p", "a", OnConflict::Abort).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::MergeInProgress { .. }),
        "{err}"
    );
    let err = ws.conclude_merge("p", "b").unwrap_err();
    let WorkspaceError::StillConflicted { files, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(files, &["lib.txt"]);

    write(&integration, "lib.txt", "one\nA and B\nthree\n");
    let commit = ws.conclude_merge("p", "b").unwrap();
    assert_eq!(git_in(&integration, &["rev-parse", "HEAD"]), commit);
    assert_eq!(git_in(&integration, &["status", "--porcelain"]), "");
    let parents = git_in(&integration, &["log", "-1", "--format=%P"]);
    assert_eq!(parents.split(' ').count(), 2, "a merge commit");
    assert_eq!(
        ws.merge("p", "b", OnConflict::Abort).unwrap(),
        MergeOutcome::UpToDate
    );
}

#[test]
fn an_abandoned_resolution_leaves_the_integration_branch_as_it_was() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let before = ws.ensure_integration("p", None).unwrap().head;
    let a = ws.create_worktree("p", "a", 1).unwrap();
    write(&a.path, "lib.txt", "A\n");
    ws.commit_all(&a.path, "a").unwrap();
    write(
        &ws.integration_path("p"),
        "lib.txt",
        "edited on integration\n",
    );
    let err = ws.merge("p", "a", OnConflict::Leave).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::IntegrationDirty { .. }),
        "{err}"
    );
    git_in(&ws.integration_path("p"), &["checkout", "--", "lib.txt"]);
    write(&ws.integration_path("p"), "lib.txt", "integration side\n");
    git_in(&ws.integration_path("p"), &["commit", "-q", "-am", "y"]);
    assert!(matches!(
        ws.merge("p", "a", OnConflict::Leave).unwrap(),
        MergeOutcome::Conflict { .. }
    ));
    ws.abort_merge("p").unwrap();
    ws.abort_merge("p").unwrap();
    let integration = ws.integration_path("p");
    assert_eq!(git_in(&integration, &["status", "--porcelain"]), "");
    assert_ne!(git_in(&integration, &["rev-parse", "HEAD"]), before);
    let err = ws.conclude_merge("p", "a").unwrap_err();
    assert!(
        matches!(err, WorkspaceError::NoMergeInProgress { .. }),
        "{err}"
    );
}

/// Plan `p` with task `merged` (merged), `open` (committed, unmerged) and `running` (a fresh
/// attempt with nothing done yet).
fn three_tasks(ws: &Workspace) -> [TaskWorktree; 3] {
    ws.ensure_integration("p", None).unwrap();
    let merged = ws.create_worktree("p", "merged", 1).unwrap();
    let open = ws.create_worktree("p", "open", 1).unwrap();
    write(&merged.path, "m.txt", "m\n");
    write(&open.path, "o.txt", "o\n");
    ws.commit_all(&merged.path, "m").unwrap();
    ws.commit_all(&open.path, "o").unwrap();
    ws.merge("p", "merged", OnConflict::Abort).unwrap();
    let running = ws.create_worktree("p", "running", 1).unwrap();
    [merged, open, running]
}

#[test]
fn cleanup_keep_removes_nothing() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let tasks = three_tasks(&ws);
    let report = ws.cleanup("p", CleanupPolicy::Keep).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(report.kept.len(), 4);
    assert!(tasks.iter().all(|t| t.path.exists()));
}

#[test]
fn cleanup_remove_merged_spares_running_and_unmerged_work() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let [merged, open, running] = three_tasks(&ws);
    let report = ws.cleanup("p", CleanupPolicy::RemoveMerged).unwrap();
    assert_eq!(report.removed, std::slice::from_ref(&merged.path));
    assert_eq!(report.branches_deleted, ["ocio/p/merged"]);
    assert!(!merged.path.exists());
    assert!(
        !merged.path.parent().unwrap().exists(),
        "empty task directory removed"
    );
    assert!(open.path.exists() && running.path.exists());
    assert!(ws.integration_path("p").exists());
    assert_eq!(fx.git(&["branch", "--list", "ocio/p/merged"]), "");

    // Work committed after the merge makes it unmerged again.
    let again = ws.create_worktree("p", "open", 1).unwrap();
    ws.merge("p", "open", OnConflict::Abort).unwrap();
    write(&again.path, "late.txt", "late\n");
    ws.commit_all(&again.path, "late").unwrap();
    let report = ws.cleanup("p", CleanupPolicy::RemoveMerged).unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
}

#[test]
fn cleanup_remove_all_keeps_unmerged_branches_and_the_integration_branch() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let [merged, open, running] = three_tasks(&ws);
    let report = ws.cleanup("p", CleanupPolicy::RemoveAll).unwrap();
    assert_eq!(report.removed.len(), 4);
    assert_eq!(report.branches_deleted, ["ocio/p/merged"]);
    for path in [&merged.path, &open.path, &running.path] {
        assert!(!path.exists(), "{}", path.display());
    }
    assert!(!ws.integration_path("p").exists());
    let branches = fx.git(&["branch", "--list", "ocio/*", "--format=%(refname:short)"]);
    assert_eq!(
        branches.lines().collect::<Vec<_>>(),
        ["ocio/p/integration", "ocio/p/open", "ocio/p/running"]
    );
    assert!(fx.git(&["worktree", "list"]).lines().count() == 1);

    // The plan can go on (a task of the finished plan run again): its next merge makes the
    // integration worktree again from the branch, which kept the merged work.
    let rerun = ws.create_worktree("p", "open", 2).unwrap();
    write(&rerun.path, "o2.txt", "o2\n");
    ws.commit_all(&rerun.path, "o2").unwrap();
    let outcome = ws.merge("p", "open", OnConflict::Abort).unwrap();
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    let integration = ws.integration_path("p");
    assert_eq!(read(&integration, "m.txt"), "m\n");
    assert_eq!(read(&integration, "o2.txt"), "o2\n");
}

#[test]
fn remove_worktree_only_removes_ocio_worktrees() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let task = ws.create_worktree("p", "t", 1).unwrap();
    write(&task.path, "dirty.txt", "d\n");
    ws.remove_worktree(&task.path).unwrap();
    assert!(!task.path.exists());
    assert_eq!(
        fx.git(&["branch", "--list", "ocio/p/t"]),
        "ocio/p/t",
        "the branch stays"
    );
    let err = ws.remove_worktree(&fx.repo).unwrap_err();
    assert!(matches!(err, WorkspaceError::NotOurs { .. }), "{err}");
    assert!(fx.repo.join("README.md").exists());
}
