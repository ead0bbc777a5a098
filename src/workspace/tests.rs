//! Tests of making worktrees, their changed files and commits, against real git repositories
//! in temporary directories (merges and cleanup: `merge_tests`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A throwaway repository with one commit on `main`, and a worktree root beside it.
pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) repo: PathBuf,
    root: PathBuf,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ocio-ws-")
            .tempdir()
            .unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let fixture = Self {
            repo: repo.canonicalize().unwrap(),
            root: dir.path().join("worktrees"),
            _dir: dir,
        };
        fixture.git(&["init", "-q", "-b", "main"]);
        std::fs::write(fixture.repo.join("README.md"), "# demo\n").unwrap();
        std::fs::write(fixture.repo.join("lib.txt"), "one\ntwo\nthree\n").unwrap();
        fixture.git(&["add", "."]);
        fixture.git(&["commit", "-q", "-m", "initial"]);
        fixture
    }

    pub(super) fn workspace(&self) -> Workspace {
        Workspace::open(&self.repo, &self.root).unwrap()
    }

    pub(super) fn git(&self, args: &[&str]) -> String {
        git_in(&self.repo, args)
    }
}

pub(super) fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A detached worktree of `repo` at `commit`, made at `dir` (a build box's, in the tests that
/// carry work there and back).
pub(super) fn worktree_at(repo: &Path, dir: &Path, commit: &str) {
    git_in(
        repo,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            &dir.to_string_lossy(),
            commit,
        ],
    );
}

pub(super) fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

pub(super) fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

#[test]
fn a_task_worktree_branches_from_the_integration_branch_outside_the_checkout() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let integration = ws.ensure_integration("add-pagination", None).unwrap();
    assert_eq!(integration.branch, "ocio/add-pagination/integration");
    assert_eq!(integration.head, fx.git(&["rev-parse", "main"]));
    assert!(integration.path.starts_with(ws.root()));
    let task = ws.create_worktree("add-pagination", "impl", 1).unwrap();
    assert_eq!(task.branch, "ocio/add-pagination/impl");
    assert_eq!(task.base, integration.head);
    assert_eq!(task.attempt, 1);
    assert!(task.path.starts_with(ws.root()));
    assert!(task.path.ends_with("add-pagination/impl/1"));
    assert_eq!(read(&task.path, "README.md"), "# demo\n");
    assert_eq!(
        git_in(&task.path, &["branch", "--show-current"]),
        task.branch
    );
    assert_eq!(
        fx.git(&["branch", "--show-current"]),
        "main",
        "the checkout is untouched"
    );
    assert_eq!(fx.git(&["status", "--porcelain"]), "");
}

#[test]
fn odd_plan_and_task_names_make_valid_branches_and_paths() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("Add pagination to /users", None)
        .unwrap();
    let task = ws
        .create_worktree("Add pagination to /users", "integration", 1)
        .unwrap();
    assert!(task.branch.starts_with("ocio/Add-pagination-to-users-"));
    assert!(!task.branch.ends_with("/integration"));
    assert!(task.path.is_dir());
}

#[test]
fn the_base_can_be_named_and_a_bad_base_is_explained() {
    let fx = Fixture::new();
    fx.git(&["branch", "release"]);
    fx.git(&["commit", "-q", "--allow-empty", "-m", "later on main"]);
    let ws = fx.workspace();
    let integration = ws.ensure_integration("p", Some("release")).unwrap();
    assert_eq!(integration.head, fx.git(&["rev-parse", "release"]));
    let err = ws.ensure_integration("q", Some("nope")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("base \"nope\""), "{text}");
    assert!(text.contains(&fx.repo.display().to_string()), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[test]
fn errors_name_the_repository_the_command_and_what_to_do() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let err = ws.create_worktree("never-prepared", "a", 1).unwrap_err();
    assert!(matches!(err, WorkspaceError::NoIntegration { .. }), "{err}");
    assert!(err.to_string().contains("ensure_integration"));
    let plain = tempfile::tempdir().unwrap();
    let err = Workspace::open(plain.path(), &fx.root).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::NotARepository { .. }),
        "{err}"
    );
    let err = ws
        .git
        .run(&fx.repo, &["rev-parse", "--verify", "no-such-ref"])
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`git rev-parse --verify no-such-ref` failed"),
        "{text}"
    );
    assert!(text.contains("fatal"), "git's stderr: {text}");
    assert!(text.contains("hint:"));
}

#[test]
fn an_empty_repository_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    git_in(dir.path(), &["init", "-q", "-b", "main"]);
    let ws = Workspace::open(dir.path(), &dir.path().join("wt")).unwrap();
    let err = ws.ensure_integration("p", None).unwrap_err();
    assert!(matches!(err, WorkspaceError::NoCommits { .. }), "{err}");
}

#[test]
fn making_the_same_attempt_again_reattaches_and_a_new_attempt_starts_fresh() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let first = ws.create_worktree("p", "t", 1).unwrap();
    write(&first.path, "work.txt", "half done\n");
    // A restart: a new Workspace asks for the same attempt.
    let again = fx.workspace().create_worktree("p", "t", 1).unwrap();
    assert_eq!(again, first);
    assert_eq!(read(&again.path, "work.txt"), "half done\n", "untouched");
    let ready = ws.ensure_integration("p", None).unwrap();
    assert_eq!(
        ready.head, first.base,
        "ensure_integration is idempotent too"
    );

    // Meanwhile another task is merged: the second attempt starts from there.
    let other = ws.create_worktree("p", "other", 1).unwrap();
    write(&other.path, "other.txt", "x\n");
    ws.commit_all(&other.path, "other").unwrap();
    assert!(matches!(
        ws.merge("p", "other", OnConflict::Abort).unwrap(),
        MergeOutcome::Merged { .. }
    ));
    let second = ws.create_worktree("p", "t", 2).unwrap();
    assert_ne!(second.path, first.path);
    assert!(
        !first.path.exists(),
        "the failed attempt's worktree is gone"
    );
    assert!(second.path.join("other.txt").exists());
    assert!(!second.path.join("work.txt").exists(), "fresh");
    assert_eq!(
        ws.changed_files(&second.path).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_worktree_deleted_by_hand_is_made_again() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let task = ws.create_worktree("p", "t", 1).unwrap();
    std::fs::remove_dir_all(&task.path).unwrap();
    let again = ws.create_worktree("p", "t", 1).unwrap();
    assert!(again.path.join("README.md").exists());
    std::fs::remove_dir_all(ws.integration_path("p")).unwrap();
    let integration = ws.ensure_integration("p", None).unwrap();
    assert!(integration.path.join("README.md").exists());
}

#[test]
fn changed_files_see_committed_staged_unstaged_new_and_deleted_files() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let task = ws.create_worktree("p", "t", 1).unwrap();
    write(&task.path, "committed.txt", "c\n");
    ws.commit_all(&task.path, "first").unwrap();
    write(&task.path, "src/new file.rs", "n\n");
    write(&task.path, "lib.txt", "one\nTWO\nthree\n");
    std::fs::remove_file(task.path.join("README.md")).unwrap();
    write(&task.path, "staged.txt", "s\n");
    git_in(&task.path, &["add", "staged.txt"]);
    write(&task.path, ".gitignore", "target/\n");
    write(&task.path, "target/junk", "j\n");
    assert_eq!(
        ws.changed_files(&task.path).unwrap(),
        [
            ".gitignore",
            "README.md",
            "committed.txt",
            "lib.txt",
            "src/new file.rs",
            "staged.txt"
        ]
    );
    // Watching a running session (without taking its index lock) sees the same.
    assert_eq!(
        ws.touched_since(&task.path, &ws.worktree_base(&task.path).unwrap())
            .unwrap(),
        ws.changed_files(&task.path).unwrap()
    );
    let err = ws.changed_files(&fx.repo).unwrap_err();
    assert!(matches!(err, WorkspaceError::NotOurs { .. }), "{err}");
    let head = ws.head(&fx.repo).unwrap();
    write(&fx.repo, "shared.txt", "s\n");
    assert_eq!(ws.changed_since(&fx.repo, &head).unwrap(), ["shared.txt"]);
}

#[test]
fn commit_all_commits_as_the_repositorys_author() {
    let fx = Fixture::new();
    fx.git(&["config", "user.name", "Ada Lovelace"]);
    fx.git(&["config", "user.email", "ada@example.org"]);
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let task = ws.create_worktree("p", "t", 1).unwrap();
    assert_eq!(ws.commit_all(&task.path, "nothing").unwrap(), None);
    write(&task.path, "a.txt", "a\n");
    std::fs::remove_file(task.path.join("lib.txt")).unwrap();
    let commit = ws.commit_all(&task.path, "task t: done").unwrap().unwrap();
    let author = git_in(
        &task.path,
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", &commit],
    );
    assert_eq!(
        author,
        "Ada Lovelace <ada@example.org>|Ada Lovelace <ada@example.org>|task t: done"
    );
    assert_eq!(git_in(&task.path, &["status", "--porcelain"]), "");
    assert_eq!(ws.changed_files(&task.path).unwrap(), ["a.txt", "lib.txt"]);
}

#[test]
fn without_any_git_identity_commits_are_ocios() {
    let fx = Fixture::new();
    let nothing = [
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ];
    assert_eq!(Author::configured_with(&fx.repo, &nothing), Author::ocio());
    fx.git(&["config", "user.name", "Ada"]);
    assert_eq!(
        Author::configured_with(&fx.repo, &nothing),
        Author::ocio(),
        "a name without an email is no identity"
    );
    fx.git(&["config", "user.email", "ada@example.org"]);
    let ada = Author::configured_with(&fx.repo, &nothing);
    assert_eq!(
        (ada.name.as_str(), ada.email.as_str()),
        ("Ada", "ada@example.org")
    );
    assert!(!ada.is_ocio());
    assert_eq!(
        Author::from_ident("Bo B <bo@x.org> 1700000000 +0100"),
        Some(Author {
            name: "Bo B".into(),
            email: "bo@x.org".into()
        })
    );
    assert_eq!(Author::from_ident("<bo@x.org> 1 +0000"), None);
}

#[test]
fn copy_brings_ignored_files_and_refuses_others() {
    let fx = Fixture::new();
    std::fs::write(fx.repo.join(".gitignore"), ".env\nnode_modules/\n").unwrap();
    fx.git(&["add", ".gitignore"]);
    fx.git(&["commit", "-q", "-m", "ignore"]);
    write(&fx.repo, ".env", "SECRET=1\n");
    write(&fx.repo, "node_modules/left-pad/index.js", "pad\n");
    std::os::unix::fs::symlink("left-pad", fx.repo.join("node_modules/pad")).unwrap();
    write(&fx.repo, "notes.txt", "untracked, not ignored\n");
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let task = ws.create_worktree("p", "t", 1).unwrap();
    let paths = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    for (refused, wanted) in [
        ("notes.txt", "git does not ignore"),
        ("lib.txt", "git does not ignore"),
        ("missing.env", "not in the checkout"),
    ] {
        let err = ws
            .copy_ignored(&task.path, &paths(&[".env", refused]))
            .unwrap_err();
        assert!(err.to_string().contains(wanted), "{refused}: {err}");
        assert!(
            !task.path.join(".env").exists(),
            "nothing copied before refusing"
        );
    }
    ws.copy_ignored(&task.path, &paths(&[".env", "node_modules"]))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(task.path.join(".env")).unwrap(),
        "SECRET=1\n"
    );
    let pad = task.path.join("node_modules/pad");
    assert_eq!(std::fs::read_link(&pad).unwrap(), Path::new("left-pad"));
    assert_eq!(
        std::fs::read_to_string(pad.join("index.js")).unwrap(),
        "pad\n"
    );
    // Copied files are not the session's work.
    assert_eq!(ws.commit_all(&task.path, "none").unwrap(), None);
    assert!(ws.changed_files(&task.path).unwrap().is_empty());
}

#[test]
fn parallel_operations_on_one_workspace_wait_for_each_other() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let ws = ws.clone();
            std::thread::spawn(move || {
                let task = ws.create_worktree("p", &format!("t{i}"), 1).unwrap();
                write(&task.path, &format!("f{i}.txt"), "x\n");
                ws.commit_all(&task.path, "work").unwrap();
                ws.merge("p", &format!("t{i}"), OnConflict::Abort).unwrap()
            })
        })
        .collect();
    for handle in handles {
        assert!(matches!(
            handle.join().unwrap(),
            MergeOutcome::Merged { .. }
        ));
    }
    let integration = ws.integration_path("p");
    for i in 0..6 {
        assert!(integration.join(format!("f{i}.txt")).exists());
    }
}

#[test]
fn a_new_plan_claims_its_name_or_the_first_free_numbered_one() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let (first, integration) = ws.claim_integration("add-pagination", None).unwrap();
    assert_eq!(first, "add-pagination");
    assert_eq!(integration.branch, "ocio/add-pagination/integration");
    assert_eq!(integration.head, fx.git(&["rev-parse", "main"]));

    // The same name again (a rerun of the plan file) gets branches of its own.
    let (second, integration) = ws.claim_integration("add-pagination", None).unwrap();
    assert_eq!(second, "add-pagination-2");
    assert_eq!(integration.branch, "ocio/add-pagination-2/integration");

    // A name whose only trace is a task branch left behind (its integration branch deleted by
    // the user) is still taken: a new plan must not inherit that task's branch.
    ws.create_worktree("add-pagination", "impl", 1).unwrap();
    ws.cleanup("add-pagination", CleanupPolicy::RemoveAll)
        .unwrap();
    fx.git(&["branch", "-D", "ocio/add-pagination/integration"]);
    assert_ne!(
        fx.git(&["branch", "--list", "ocio/add-pagination/impl"]),
        ""
    );
    let (third, _) = ws.claim_integration("add-pagination", None).unwrap();
    assert_eq!(third, "add-pagination-3");

    // Even once nothing is left under a name, it stays given: a plan keeps its name (its
    // failed task may be retried after its branches were deleted).
    fx.git(&["branch", "-D", "ocio/add-pagination/impl"]);
    let (again, _) = ws.claim_integration("add-pagination", None).unwrap();
    assert_eq!(again, "add-pagination-4");
    assert_eq!(
        fx.git(&["for-each-ref", "--format=%(refname)", "refs/ocio/plans/"]),
        "refs/ocio/plans/add-pagination\nrefs/ocio/plans/add-pagination-2\nrefs/ocio/plans/add-pagination-3\nrefs/ocio/plans/add-pagination-4"
    );

    // Names git would refuse are tidied, numbered ones too.
    let (odd, integration) = ws.claim_integration("Add pagination", None).unwrap();
    assert_eq!(odd, "Add pagination");
    assert!(integration.branch.starts_with("ocio/Add-pagination-"));
    let (odd2, integration2) = ws.claim_integration("Add pagination", None).unwrap();
    assert_eq!(odd2, "Add pagination-2");
    assert_ne!(integration.branch, integration2.branch);
}

#[test]
fn a_bad_base_claims_nothing() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let err = ws.claim_integration("p", Some("nope")).unwrap_err();
    assert!(matches!(err, WorkspaceError::UnknownBase { .. }), "{err}");
    assert_eq!(fx.git(&["branch", "--list", "ocio/*"]), "");
}

#[test]
fn a_claim_whose_checkout_fails_gives_the_name_back_and_says_why() {
    let fx = Fixture::new();
    // Every checkout runs a filter that fails.
    std::fs::write(fx.repo.join(".gitattributes"), "* filter=boom\n").unwrap();
    fx.git(&["add", ".gitattributes"]);
    fx.git(&["commit", "-q", "-m", "filter"]);
    fx.git(&["config", "filter.boom.smudge", "false"]);
    fx.git(&["config", "filter.boom.required", "true"]);
    let ws = fx.workspace();
    let err = ws.claim_integration("p", None).unwrap_err();
    assert!(matches!(err, WorkspaceError::Git { .. }), "{err}");
    assert!(err.to_string().contains("worktree add"), "{err}");
    assert_eq!(
        fx.git(&["branch", "--list", "ocio/*"]),
        "",
        "no branch left behind"
    );
    assert_eq!(
        fx.git(&["for-each-ref", "refs/ocio/"]),
        "",
        "the name is given back"
    );
}

#[test]
fn a_plain_branch_named_like_the_plan_moves_the_claim_on() {
    let fx = Fixture::new();
    fx.git(&["branch", "ocio/p"]);
    let ws = fx.workspace();
    let (key, integration) = ws.claim_integration("p", None).unwrap();
    assert_eq!(key, "p-2");
    assert_eq!(integration.branch, "ocio/p-2/integration");
}

#[test]
fn a_claim_given_back_leaves_nothing_and_the_name_is_free_again() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    let (key, integration) = ws.claim_integration("p", None).unwrap();
    assert!(integration.path.exists());
    ws.release_claim(&key).unwrap();
    assert!(!integration.path.exists());
    assert_eq!(fx.git(&["branch", "--list", "ocio/*"]), "");
    assert_eq!(fx.git(&["for-each-ref", "refs/ocio/"]), "");
    assert_eq!(fx.git(&["worktree", "list"]).lines().count(), 1);
    let (again, _) = ws.claim_integration("p", None).unwrap();
    assert_eq!(again, "p");
}
