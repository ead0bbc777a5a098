#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::kept_ref;
use crate::workspace::tests::{Fixture, git_in, read, worktree_at, write};
use crate::workspace::{MergeOutcome, OnConflict, names};

/// `fx`'s repository with submodule `lib/one` added (cloned, so initialized: its git directory
/// under `.git/modules/`) and `lib/two` recorded only (a gitlink, never cloned here).
fn with_submodules(fx: &Fixture) -> std::path::PathBuf {
    let subs = fx.repo.parent().unwrap().join("subs");
    for name in ["one", "two"] {
        let sub = subs.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        git_in(&sub, &["init", "-q", "-b", "main"]);
        write(&sub, &format!("{name}.txt"), name);
        git_in(&sub, &["add", "-A"]);
        git_in(&sub, &["commit", "-q", "-m", name]);
    }
    let one = subs.join("one");
    fx.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        &one.to_string_lossy(),
        "lib/one",
    ]);
    let two = git_in(&subs.join("two"), &["rev-parse", "HEAD"]);
    fx.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{two},lib/two"),
    ]);
    fx.git(&[
        "config",
        "-f",
        ".gitmodules",
        "submodule.two.path",
        "lib/two",
    ]);
    fx.git(&[
        "config",
        "-f",
        ".gitmodules",
        "submodule.two.url",
        &subs.join("two").to_string_lossy(),
    ]);
    fx.git(&["add", ".gitmodules"]);
    fx.git(&["commit", "-q", "-m", "submodules"]);
    // As a clone leaves a submodule it did not initialize: an empty directory.
    std::fs::create_dir_all(fx.repo.join("lib/two")).unwrap();
    fx.repo.join(".git/modules/lib/one")
}

/// `git worktree add` left every submodule of a task's worktree empty (a local session saw
/// none, where a build box's saw the initialized ones).
#[test]
fn a_task_worktree_has_the_initialized_submodules_and_their_work_is_committed() {
    let fx = Fixture::new();
    let gitdir = with_submodules(&fx);
    let user_head = git_in(&fx.repo.join("lib/one"), &["rev-parse", "HEAD"]);
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let first = ws.create_worktree("p", "t", 1).unwrap();
    assert_eq!(read(&first.path, "lib/one/one.txt"), "one");
    let two = first.path.join("lib/two");
    assert!(
        two.is_dir() && std::fs::read_dir(&two).unwrap().next().is_none(),
        "not initialized here: empty, as before"
    );
    assert!(
        ws.changed_files(&first.path).unwrap().is_empty(),
        "a fresh worktree has no changes"
    );

    // A session writes in the submodule and changes a file of the superproject.
    write(&first.path, "lib/one/agent.txt", "agent");
    write(&first.path, "README.md", "# changed\n");
    let commit = ws.commit_all(&first.path, "work").unwrap().unwrap();
    let link = git_in(&first.path, &["rev-parse", &format!("{commit}:lib/one")]);
    assert_ne!(
        link, user_head,
        "the task records the submodule's new commit"
    );
    assert_eq!(
        git_in(&gitdir, &["show", &format!("{link}:agent.txt")]),
        "agent"
    );
    assert_eq!(
        git_in(&gitdir, &["rev-parse", &kept_ref(&link)]),
        link,
        "kept once the worktree goes"
    );
    assert!(
        ws.commit_all(&first.path, "again").unwrap().is_none(),
        "nothing left to commit"
    );

    // The next attempt that continues the work finds it checked out.
    ws.remove_worktree(&first.path).unwrap();
    let listed = git_in(&gitdir, &["worktree", "list", "--porcelain"]);
    assert!(
        !listed.contains(&*first.path.to_string_lossy()),
        "the submodule forgets the removed worktree: {listed}"
    );
    let second = ws.continue_worktree("p", "t", 2).unwrap();
    assert_eq!(read(&second.path, "lib/one/agent.txt"), "agent");
    // An attempt made again at the same path (its worktree removed) checks out again.
    ws.remove_worktree(&second.path).unwrap();
    let again = ws.continue_worktree("p", "t", 2).unwrap();
    assert_eq!(read(&again.path, "lib/one/agent.txt"), "agent");

    // The user's own checkout of the submodule is as it was.
    let user = fx.repo.join("lib/one");
    assert_eq!(git_in(&user, &["rev-parse", "HEAD"]), user_head);
    assert!(!user.join("agent.txt").exists());
    let status = git_in(&fx.repo, &["status", "--porcelain"]);
    assert!(status.is_empty(), "{status}");
}

/// A worktree without submodules costs nothing more: no `.gitmodules`, no git run for them.
#[test]
fn a_tree_without_submodules_is_left_as_it_is() {
    let fx = Fixture::new();
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    assert!(!Path::new(&wt.path).join(".gitmodules").exists());
    write(&wt.path, "new.txt", "new");
    assert!(ws.commit_all(&wt.path, "work").unwrap().is_some());
}

/// Files written into a submodule not initialized here (an empty directory in the worktree)
/// were silently left out of the task's commit; now the commit fails naming it and the fix.
#[test]
fn files_written_into_a_submodule_not_initialized_here_are_refused_naming_it() {
    let fx = Fixture::new();
    with_submodules(&fx);
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    write(&wt.path, "lib/two/lost.txt", "would be lost");
    let said = ws.commit_all(&wt.path, "work").unwrap_err().to_string();
    assert!(
        said.contains("`lib/two`") && said.contains("git submodule update --init lib/two"),
        "{said}"
    );
    assert!(
        wt.path.join("lib/two/lost.txt").exists(),
        "left where it is"
    );
    // Checked out by the task itself (a plan's `setup` running `git submodule update
    // --init`): git's to record, as before.
    std::fs::remove_file(wt.path.join("lib/two/lost.txt")).unwrap();
    git_in(
        &wt.path,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "update",
            "--init",
            "-q",
            "lib/two",
        ],
    );
    write(&wt.path, "lib/two/made.txt", "by the session");
    assert!(ws.commit_all(&wt.path, "work").is_ok());
}

/// The plan's integration worktree has the submodules too, and they follow its merges, undoes
/// and tidying (a check there ran with them empty): a merged task's submodule commit is checked
/// out there, the worktree stays clean for the next merge, and undoing the merge moves it back.
#[test]
fn the_integration_worktree_has_the_submodules_and_they_follow_its_merges() {
    let fx = Fixture::new();
    with_submodules(&fx);
    let ws = fx.workspace();
    let integration = ws.ensure_integration("p", None).unwrap();
    assert_eq!(read(&integration.path, "lib/one/one.txt"), "one");
    let before = integration.head.clone();
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    write(&wt.path, "lib/one/agent.txt", "agent");
    ws.commit_all(&wt.path, "work").unwrap().unwrap();
    let merged = ws
        .merge("p", "t", crate::workspace::OnConflict::Abort)
        .unwrap();
    assert!(
        matches!(merged, crate::workspace::MergeOutcome::Merged { .. }),
        "{merged:?}"
    );
    assert_eq!(read(&integration.path, "lib/one/agent.txt"), "agent");
    let status = git_in(&integration.path, &["status", "--porcelain"]);
    assert!(status.is_empty(), "{status}");
    // What a check left in the submodule is tidied away with the rest.
    write(&integration.path, "lib/one/built.o", "build output");
    ws.tidy_integration("p").unwrap();
    assert!(!integration.path.join("lib/one/built.o").exists());
    // Undone, the submodule goes back with the branch.
    ws.undo_merge("p", "t", &before).unwrap();
    assert!(!integration.path.join("lib/one/agent.txt").exists());
    let status = git_in(&integration.path, &["status", "--porcelain"]);
    assert!(status.is_empty(), "{status}");
    let other = ws.create_worktree("p", "u", 1).unwrap();
    write(&other.path, "u.txt", "u");
    ws.commit_all(&other.path, "u").unwrap().unwrap();
    assert!(matches!(
        ws.merge("p", "u", crate::workspace::OnConflict::Abort)
            .unwrap(),
        crate::workspace::MergeOutcome::Merged { .. }
    ));
}

/// A task's worktree found again after a restart keeps what its session did in a submodule:
/// found again, the submodule was moved back to the recorded commit, and the session's commit
/// there was neither kept nor recorded.
#[test]
fn a_task_worktree_found_again_keeps_the_sessions_commit_in_a_submodule() {
    let fx = Fixture::new();
    let gitdir = with_submodules(&fx);
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    let sub = wt.path.join("lib/one");
    write(&sub, "agent.txt", "agent");
    git_in(&sub, &["add", "-A"]);
    git_in(&sub, &["commit", "-q", "-m", "the session's own commit"]);
    let made = git_in(&sub, &["rev-parse", "HEAD"]);
    let again = ws.create_worktree("p", "t", 1).unwrap();
    assert_eq!(again.path, wt.path);
    assert_eq!(git_in(&sub, &["rev-parse", "HEAD"]), made);
    let commit = ws.commit_all(&wt.path, "work").unwrap().unwrap();
    let link = git_in(&wt.path, &["rev-parse", &format!("{commit}:lib/one")]);
    assert_eq!(link, made);
    assert_eq!(git_in(&gitdir, &["rev-parse", &kept_ref(&made)]), made);
}

/// Two tasks move one submodule to different commits: concluding the merge left for a
/// resolver is refused while the submodule is in conflict (staging whatever was checked out
/// kept the integration's side and dropped the task's).
#[test]
fn a_merge_with_a_submodule_in_conflict_is_not_concluded_until_it_is_settled() {
    let fx = Fixture::new();
    with_submodules(&fx);
    let ws = fx.workspace();
    let integration = ws.ensure_integration("p", None).unwrap();
    for task in ["a", "b"] {
        let wt = ws.create_worktree("p", task, 1).unwrap();
        write(&wt.path, &format!("lib/one/{task}.txt"), task);
        ws.commit_all(&wt.path, task).unwrap().unwrap();
    }
    let first = ws.merge("p", "a", OnConflict::Abort).unwrap();
    assert!(matches!(first, MergeOutcome::Merged { .. }), "{first:?}");
    let second = ws.merge("p", "b", OnConflict::Leave).unwrap();
    let MergeOutcome::Conflict { files } = second else {
        panic!("{second:?}");
    };
    assert_eq!(files, ["lib/one"]);
    let said = ws.conclude_merge("p", "b").unwrap_err().to_string();
    assert!(
        said.contains("lib/one") && said.contains("git add"),
        "{said}"
    );
    // Settled (the submodule at b's commit, staged), it concludes with b's commit.
    let b = git_in(
        &fx.repo,
        &[
            "rev-parse",
            &format!("{}:lib/one", names::task_branch("p", "b")),
        ],
    );
    git_in(&integration.path.join("lib/one"), &["checkout", "-q", &b]);
    git_in(&integration.path, &["add", "lib/one"]);
    let merged = ws.conclude_merge("p", "b").unwrap();
    assert_eq!(
        git_in(
            &integration.path,
            &["rev-parse", &format!("{merged}:lib/one")]
        ),
        b
    );
}

/// A merged gitlink whose commit the submodule's git directory here lacks leaves the
/// integration worktree clean (it stayed at the old commit, `git status` said it changed, and
/// every later merge was refused as uncommitted changes).
#[test]
fn a_merged_submodule_commit_missing_here_leaves_the_integration_worktree_clean() {
    let fx = Fixture::new();
    with_submodules(&fx);
    let ws = fx.workspace();
    let integration = ws.ensure_integration("p", None).unwrap();
    // A commit of another repository: no git directory here has it.
    let elsewhere = fx.repo.parent().unwrap().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    git_in(&elsewhere, &["init", "-q"]);
    git_in(&elsewhere, &["commit", "-q", "--allow-empty", "-m", "x"]);
    let foreign = git_in(&elsewhere, &["rev-parse", "HEAD"]);
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    git_in(
        &wt.path,
        &[
            "update-index",
            "--cacheinfo",
            &format!("160000,{foreign},lib/one"),
        ],
    );
    git_in(
        &wt.path,
        &["commit", "-q", "-m", "a submodule commit from elsewhere"],
    );
    let merged = ws.merge("p", "t", OnConflict::Abort).unwrap();
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
    let status = git_in(&integration.path, &["status", "--porcelain"]);
    assert!(status.is_empty(), "{status}");
    let next = ws.create_worktree("p", "u", 1).unwrap();
    write(&next.path, "u.txt", "u");
    ws.commit_all(&next.path, "u").unwrap().unwrap();
    let merged = ws.merge("p", "u", OnConflict::Abort).unwrap();
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
}

/// Work from a build box that moved a submodule to another commit this machine has (no new
/// commit came back for it) is laid down in a task worktree whose submodule is checked out:
/// the checkout follows, so the task records the box's commit (`git add -A` staged the old
/// checked-out commit over it).
#[test]
fn box_work_moving_a_submodule_to_a_known_commit_is_recorded() {
    let fx = Fixture::new();
    let gitdir = with_submodules(&fx);
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    let recorded = git_in(&wt.path, &["rev-parse", "HEAD:lib/one"]);
    let known = git_in(
        &gitdir,
        &[
            "commit-tree",
            "-p",
            &recorded,
            "-m",
            "known here",
            &format!("{recorded}^{{tree}}"),
        ],
    );
    git_in(&gitdir, &["update-ref", "refs/heads/known", &known]);
    // The box's work, made where no submodule is checked out.
    let there = fx.repo.parent().unwrap().join("box");
    let head = git_in(&wt.path, &["rev-parse", "HEAD"]);
    worktree_at(&fx.repo, &there, &head);
    git_in(
        &there,
        &[
            "update-index",
            "--cacheinfo",
            &format!("160000,{known},lib/one"),
        ],
    );
    git_in(&there, &["commit", "-q", "-m", "the box's work"]);
    let work = git_in(&there, &["rev-parse", "HEAD"]);
    crate::workspace::carry::lay_down(&wt.path, &work).unwrap();
    let commit = ws.commit_all(&wt.path, "work").unwrap().unwrap();
    assert_eq!(
        git_in(&wt.path, &["rev-parse", &format!("{commit}:lib/one")]),
        known
    );
}

/// Work laid down in your checkout (a plan without worktrees, its session on a build box)
/// leaves a submodule you emptied (`git submodule deinit`) empty: only ocio's worktrees get
/// submodules checked out.
#[test]
fn work_laid_down_in_your_checkout_checks_out_no_submodule_you_emptied() {
    let fx = Fixture::new();
    with_submodules(&fx);
    fx.git(&["submodule", "deinit", "-q", "-f", "lib/one"]);
    let one = fx.repo.join("lib/one");
    assert!(std::fs::read_dir(&one).unwrap().next().is_none());
    let there = fx.repo.parent().unwrap().join("box");
    worktree_at(&fx.repo, &there, "HEAD");
    write(&there, "new.txt", "from the box\n");
    git_in(&there, &["add", "-A"]);
    git_in(&there, &["commit", "-q", "-m", "the box's work"]);
    let work = git_in(&there, &["rev-parse", "HEAD"]);
    crate::workspace::carry::lay_down(&fx.repo, &work).unwrap();
    assert_eq!(read(&fx.repo, "new.txt"), "from the box\n");
    assert!(
        std::fs::read_dir(&one).unwrap().next().is_none(),
        "left empty, as you left it"
    );
}

/// `fx`'s repository with submodule `lib/outer`, itself with submodule `deep/inner`, both
/// initialized here (`git submodule update --init --recursive`); the inner one's git directory.
fn with_nested_submodules(fx: &Fixture) -> std::path::PathBuf {
    with_nested(fx, true)
}

/// As [`with_nested_submodules`], the inner one initialized here only if `recursive`.
fn with_nested(fx: &Fixture, recursive: bool) -> std::path::PathBuf {
    let subs = fx.repo.parent().unwrap().join("nested");
    let allow = ["-c", "protocol.file.allow=always"];
    for name in ["inner", "outer"] {
        let sub = subs.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        git_in(&sub, &["init", "-q", "-b", "main"]);
        write(&sub, &format!("{name}.txt"), name);
        if name == "outer" {
            let inner = subs.join("inner").to_string_lossy().into_owned();
            git_in(
                &sub,
                &[
                    allow[0],
                    allow[1],
                    "submodule",
                    "add",
                    "-q",
                    &inner,
                    "deep/inner",
                ],
            );
        }
        git_in(&sub, &["add", "-A"]);
        git_in(&sub, &["commit", "-q", "-m", name]);
    }
    let outer = subs.join("outer").to_string_lossy().into_owned();
    fx.git(&[
        allow[0],
        allow[1],
        "submodule",
        "add",
        "-q",
        &outer,
        "lib/outer",
    ]);
    if recursive {
        fx.git(&[
            allow[0],
            allow[1],
            "submodule",
            "update",
            "-q",
            "--init",
            "--recursive",
        ]);
    }
    fx.git(&["commit", "-q", "-m", "nested submodules"]);
    let inner = fx.repo.join(".git/modules/lib/outer/modules/deep/inner");
    assert_eq!(
        inner.is_dir(),
        recursive,
        "git keeps the inner one's git directory there"
    );
    inner
}

/// Files written into a submodule of a submodule that is not initialized here are refused
/// naming it from the worktree's root, with a fix that works there.
#[test]
fn files_written_into_a_nested_submodule_not_initialized_here_are_refused_naming_it() {
    let fx = Fixture::new();
    with_nested(&fx, false);
    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    assert_eq!(read(&wt.path, "lib/outer/outer.txt"), "outer");
    write(&wt.path, "lib/outer/deep/inner/lost.txt", "would be lost");
    let said = ws.commit_all(&wt.path, "work").unwrap_err().to_string();
    assert!(
        said.contains("`lib/outer/deep/inner`")
            && said.contains("git submodule update --init --recursive lib/outer`")
            && said.contains(&*wt.path.to_string_lossy()),
        "{said}"
    );
}

/// Submodules of submodules were left empty in a task's worktree, and what a session did in
/// one was not recorded.
#[test]
fn a_submodule_of_a_submodule_is_checked_out_and_its_work_is_committed_and_merged() {
    let fx = Fixture::new();
    let inner_gitdir = with_nested_submodules(&fx);
    let ws = fx.workspace();
    let integration = ws.ensure_integration("p", None).unwrap();
    assert_eq!(
        read(&integration.path, "lib/outer/deep/inner/inner.txt"),
        "inner"
    );
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    assert_eq!(read(&wt.path, "lib/outer/outer.txt"), "outer");
    assert_eq!(read(&wt.path, "lib/outer/deep/inner/inner.txt"), "inner");
    assert!(ws.changed_files(&wt.path).unwrap().is_empty());

    write(&wt.path, "lib/outer/deep/inner/agent.txt", "agent");
    let commit = ws.commit_all(&wt.path, "work").unwrap().unwrap();
    let outer_link = git_in(&wt.path, &["rev-parse", &format!("{commit}:lib/outer")]);
    let outer_gitdir = fx.repo.join(".git/modules/lib/outer");
    let inner_link = git_in(
        &outer_gitdir,
        &["rev-parse", &format!("{outer_link}:deep/inner")],
    );
    assert_eq!(
        git_in(&inner_gitdir, &["show", &format!("{inner_link}:agent.txt")]),
        "agent"
    );
    assert_eq!(
        git_in(&inner_gitdir, &["rev-parse", &kept_ref(&inner_link)]),
        inner_link
    );
    assert!(ws.commit_all(&wt.path, "again").unwrap().is_none());

    let merged = ws.merge("p", "t", OnConflict::Abort).unwrap();
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
    assert_eq!(
        read(&integration.path, "lib/outer/deep/inner/agent.txt"),
        "agent"
    );
    write(
        &integration.path,
        "lib/outer/deep/inner/built.o",
        "build output",
    );
    ws.tidy_integration("p").unwrap();
    assert!(
        !integration
            .path
            .join("lib/outer/deep/inner/built.o")
            .exists()
    );
    let status = git_in(&integration.path, &["status", "--porcelain"]);
    assert!(status.is_empty(), "{status}");

    ws.remove_worktree(&wt.path).unwrap();
    let listed = git_in(&inner_gitdir, &["worktree", "list", "--porcelain"]);
    assert!(
        !listed.contains(&*wt.path.to_string_lossy()),
        "the inner submodule forgets the removed worktree: {listed}"
    );
    // Your own checkout of them is as it was.
    assert!(!fx.repo.join("lib/outer/deep/inner/agent.txt").exists());
    let yours = git_in(
        &fx.repo.join("lib/outer/deep/inner"),
        &["status", "--porcelain"],
    );
    assert!(yours.is_empty(), "{yours}");
}

/// A session (or a resolver) that moves a submodule with a plain `git checkout` leaves that
/// submodule's own submodules where they were: committing recorded their old commits over the
/// ones the new commit has, in a commit of the submodule nobody made (found on no remote).
#[test]
fn a_submodule_moved_by_a_session_brings_its_untouched_submodules_along() {
    let fx = Fixture::new();
    with_nested_submodules(&fx);
    // A newer commit of the outer one, moving the inner one on (made in your checkout, which is
    // then put back as it was).
    let outer = fx.repo.join("lib/outer");
    let inner = outer.join("deep/inner");
    let (outer_was, inner_was) = (
        git_in(&outer, &["rev-parse", "HEAD"]),
        git_in(&inner, &["rev-parse", "HEAD"]),
    );
    write(&inner, "inner2.txt", "inner two");
    git_in(&inner, &["add", "-A"]);
    git_in(&inner, &["commit", "-q", "-m", "inner two"]);
    let inner_two = git_in(&inner, &["rev-parse", "HEAD"]);
    git_in(&outer, &["add", "deep/inner"]);
    git_in(&outer, &["commit", "-q", "-m", "outer two"]);
    let outer_two = git_in(&outer, &["rev-parse", "HEAD"]);
    git_in(&outer, &["checkout", "-q", "--detach", &outer_was]);
    git_in(&inner, &["checkout", "-q", "--detach", &inner_was]);

    let ws = fx.workspace();
    ws.ensure_integration("p", None).unwrap();
    let wt = ws.create_worktree("p", "t", 1).unwrap();
    git_in(
        &wt.path.join("lib/outer"),
        &["checkout", "-q", "--detach", &outer_two],
    );
    let commit = ws.commit_all(&wt.path, "work").unwrap().unwrap();
    assert_eq!(
        git_in(&wt.path, &["rev-parse", &format!("{commit}:lib/outer")]),
        outer_two,
        "the commit the session moved to, as it is"
    );
    assert_eq!(
        read(&wt.path, "lib/outer/deep/inner/inner2.txt"),
        "inner two"
    );
    assert_eq!(
        git_in(
            &wt.path.join("lib/outer/deep/inner"),
            &["rev-parse", "HEAD"]
        ),
        inner_two
    );
}
