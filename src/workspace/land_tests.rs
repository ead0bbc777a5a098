//! Landing without the engine: the safety checks `Workspace::land` makes itself, against a
//! real repository (the engine's use of it: `tests/land.rs`).

use super::tests::Fixture;
use super::*;

#[test]
fn a_base_that_moved_after_it_was_brought_in_is_not_undone() {
    let fixture = Fixture::new();
    let workspace = fixture.workspace();
    let (key, integration) = workspace.claim_integration("p", None).unwrap();
    std::fs::write(integration.path.join("new.txt"), "plan\n").unwrap();
    workspace
        .commit_all(&integration.path, "plan work")
        .unwrap();
    let held = workspace.bring_base_in(&key, "main", super::OnConflict::Abort);
    assert_eq!(held.unwrap(), super::BaseIn::Held);
    // The base gains a commit between bringing it in and landing.
    std::fs::write(fixture.repo.join("lib.txt"), "changed\n").unwrap();
    fixture.git(&["commit", "-qam", "meanwhile"]);
    let before = fixture.git(&["rev-parse", "main"]);
    let message = "Merge plan p".to_string();
    let error = workspace
        .land(&key, "main", &Combine::Merge { message })
        .unwrap_err();
    assert!(matches!(error, WorkspaceError::BaseMoved { .. }), "{error}");
    assert_eq!(fixture.git(&["rev-parse", "main"]), before);
    assert_eq!(
        std::fs::read_to_string(fixture.repo.join("lib.txt")).unwrap(),
        "changed\n"
    );
}

#[test]
fn a_staged_change_to_a_landed_file_refuses_and_stays_staged() {
    let fixture = Fixture::new();
    let workspace = fixture.workspace();
    let (key, integration) = workspace.claim_integration("p", None).unwrap();
    std::fs::write(integration.path.join("lib.txt"), "plan's\n").unwrap();
    workspace
        .commit_all(&integration.path, "plan work")
        .unwrap();
    std::fs::write(fixture.repo.join("lib.txt"), "mine\n").unwrap();
    fixture.git(&["add", "lib.txt"]);
    let before = fixture.git(&["rev-parse", "main"]);
    let error = workspace.land(&key, "main", &Combine::Rebase).unwrap_err();
    match &error {
        WorkspaceError::CheckoutTouches { files, .. } => assert_eq!(files, &["lib.txt"]),
        other => panic!("{other}"),
    }
    assert_eq!(fixture.git(&["rev-parse", "main"]), before);
    assert_eq!(fixture.git(&["diff", "--cached", "--name-only"]), "lib.txt");
    assert_eq!(
        std::fs::read_to_string(fixture.repo.join("lib.txt")).unwrap(),
        "mine\n"
    );
    // The rebase's temporary worktree is gone.
    let listed = fixture.git(&["worktree", "list", "--porcelain"]);
    assert!(!listed.contains(".landing"), "{listed}");
}
