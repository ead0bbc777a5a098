//! `ocio land` against a real engine, a real redb file and real git: a finished plan's
//! integration branch delivered to its base branch by merge, squash or rebase; the user's
//! checkout kept safe (uncommitted work that the landing touches refuses it, other work is
//! kept); a base that moved, cleanly or with conflicts; pushing to a bare remote and opening a
//! pull request with a stand-in `gh`; landing twice, and after a landing that was not
//! recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use ocio::domain::{LandMode, PlanId};
use ocio::engine::{Engine, EngineApi, EngineEvent, EngineHandle, EngineOptions, ErrorKind, Push};
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreHandle, StoreOptions, query};
use support::TestRepo;

const PATIENCE: Duration = Duration::from_secs(60);

/// Two tasks writing two new files.
const TWO: &str = r#"
[[tasks]]
id = "alpha"
title = "Write a"
prompt = 'SIM-WRITE a.txt from alpha\n'
[[tasks]]
id = "beta"
title = "Write b"
prompt = 'SIM-WRITE b.txt from beta\n'
"#;

struct Finished {
    repo: TestRepo,
    _dir: tempfile::TempDir,
    engine: EngineHandle,
    store: StoreHandle,
    plan: PlanId,
    /// The integration branch and its worktree.
    branch: String,
    worktree: std::path::PathBuf,
    /// `main` when the plan started.
    start: String,
}

fn options(tool_path: Option<std::ffi::OsString>) -> EngineOptions {
    EngineOptions {
        tick: Duration::from_millis(20),
        tool_path,
        ..EngineOptions::default()
    }
}

/// The two-task plan run to its end on a fresh repository.
async fn finished(tool_path: Option<std::ffi::OsString>) -> Finished {
    finished_with(tool_path, "", TWO).await
}

/// Plan `tasks` with `settings` run to its end on a fresh repository.
async fn finished_with(
    tool_path: Option<std::ffi::OsString>,
    settings: &str,
    tasks: &str,
) -> Finished {
    finished_on(TestRepo::new(), tool_path, settings, tasks).await
}

/// The same on `repo`.
async fn finished_on(
    repo: TestRepo,
    tool_path: Option<std::ffi::OsString>,
    settings: &str,
    tasks: &str,
) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![support::sim_agent("sim", 2, &[], 50, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options(tool_path))
        .await
        .unwrap();
    let path = dir.path().join("deliver.toml");
    let text = format!(
        "name = \"deliver\"\nrepo = {:?}\n{settings}\n{tasks}",
        repo.dir_str()
    );
    std::fs::write(&path, text).unwrap();
    let start = head(&repo, "main");
    let mut events = engine.subscribe();
    let plan = engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let (seen, end) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(end, EngineEvent::PlanFinished { ok: true, .. }),
        "{end:?}"
    );
    let branch = support::integration_branch(&seen);
    let worktree = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::IntegrationReady { path, .. } => Some(path.clone()),
            _ => None,
        })
        .unwrap();
    Finished {
        repo,
        _dir: dir,
        engine,
        store,
        plan,
        branch,
        worktree,
        start,
    }
}

fn head(repo: &TestRepo, rev: &str) -> String {
    repo.git(&["rev-parse", rev]).trim().to_string()
}

fn commit_file(repo: &TestRepo, file: &str, content: &str) {
    std::fs::write(repo.path().join(file), content).unwrap();
    repo.git(&["add", file]);
    repo.git(&["commit", "-q", "-m", &format!("user edits {file}")]);
}

fn is_clean(dir: &Path) -> bool {
    let out = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(dir)
        .output()
        .unwrap();
    out.status.success() && out.stdout.is_empty() && !dir.join(".git/MERGE_HEAD").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_lands_a_merge_commit_whose_second_parent_is_the_integration_branch() {
    let f = finished(None).await;
    let integration = head(&f.repo, &f.branch);
    let landing = f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    let main = head(&f.repo, "main");
    assert_eq!(landing.record.commit, main);
    assert_eq!(head(&f.repo, "main^1"), f.start);
    assert_eq!(head(&f.repo, "main^2"), integration);
    let message = f.repo.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.starts_with("Merge plan deliver (2 tasks)"),
        "{message}"
    );
    assert!(message.contains("alpha: Write a") && message.contains("beta: Write b"));
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("from alpha\n"));
    assert_eq!(f.repo.read("b.txt").as_deref(), Some("from beta\n"));
    assert_eq!(landing.record.files, ["a.txt", "b.txt"]);
    assert!(is_clean(&f.repo.path()));
    // The integration worktree is gone: the branch can be checked out.
    assert!(!f.worktree.exists());
    f.repo.git(&["switch", "-q", &f.branch]);
    f.repo.git(&["switch", "-q", "main"]);
    // Recorded, and landing again says so without a new commit.
    let stored = f
        .store
        .read(move |t| query::landing(t, f.plan))
        .await
        .unwrap();
    assert_eq!(stored.unwrap().commit, main);
    let snapshot = f.engine.snapshot().await.unwrap();
    let shown = snapshot.plans.iter().find(|p| p.id == f.plan).unwrap();
    let shown = shown.landing.as_ref().map(|l| l.commit.as_str());
    assert_eq!(shown, Some(main.as_str()));
    let again = f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert!(again.already);
    assert_eq!(again.name, "deliver");
    assert_eq!(again.record.commit, main);
    assert_eq!(head(&f.repo, "main"), main);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squash_lands_one_commit_with_the_plans_tree() {
    let f = finished(None).await;
    let tree = head(&f.repo, &format!("{}^{{tree}}", f.branch));
    let landing = f.engine.land(f.plan, LandMode::Squash, None).await.unwrap();
    assert_eq!(head(&f.repo, "main"), landing.record.commit);
    assert_eq!(head(&f.repo, "main~1"), f.start);
    let parents = f.repo.git(&["log", "-1", "--format=%P", "main"]);
    assert_eq!(parents.split_whitespace().count(), 1);
    assert_eq!(head(&f.repo, "main^{tree}"), tree);
    let message = f.repo.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("alpha: Write a") && message.contains("simulated result of beta"),
        "{message}"
    );
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("from alpha\n"));
    // The review says where the work went (hand trial: after a landing it showed the branch
    // against its base, which holds the work now, and nothing more).
    let review = f.engine.review(f.plan).await.unwrap();
    assert_eq!(review.landing.as_ref(), Some(&landing.record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebase_lands_linear_history() {
    let f = finished(None).await;
    let landing = f.engine.land(f.plan, LandMode::Rebase, None).await.unwrap();
    assert_eq!(head(&f.repo, "main"), landing.record.commit);
    let range = format!("{}..main", f.start);
    let merges = f.repo.git(&["rev-list", "--merges", &range]);
    assert!(merges.trim().is_empty(), "merge commits: {merges}");
    let commits = f.repo.git(&["rev-list", &range]);
    assert_eq!(commits.lines().count(), 2);
    assert_eq!(f.repo.read("b.txt").as_deref(), Some("from beta\n"));
    assert!(is_clean(&f.repo.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_work_on_a_landed_file_refuses_and_other_work_is_kept() {
    let f = finished(None).await;
    std::fs::write(f.repo.path().join("a.txt"), "mine, not committed\n").unwrap();
    let e = f
        .engine
        .land(f.plan, LandMode::Merge, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(e.message.contains("a.txt"), "{}", e.message);
    assert_eq!(
        f.repo.read("a.txt").as_deref(),
        Some("mine, not committed\n")
    );
    assert_eq!(head(&f.repo, "main"), f.start);
    // Move it out of the way, edit an unrelated file: it lands and the edit stays.
    std::fs::remove_file(f.repo.path().join("a.txt")).unwrap();
    std::fs::write(f.repo.path().join("README.md"), "# edited, not committed\n").unwrap();
    f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert_ne!(head(&f.repo, "main"), f.start);
    assert_eq!(
        f.repo.read("README.md").as_deref(),
        Some("# edited, not committed\n")
    );
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("from alpha\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_that_moved_is_brought_in_first() {
    let f = finished(None).await;
    commit_file(&f.repo, "c.txt", "from the user\n");
    let moved = head(&f.repo, "main");
    let landing = f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert!(landing.base_merged);
    assert_eq!(head(&f.repo, "main^1"), moved);
    for (file, content) in [
        ("a.txt", "from alpha\n"),
        ("b.txt", "from beta\n"),
        ("c.txt", "from the user\n"),
    ] {
        assert_eq!(f.repo.read(file).as_deref(), Some(content));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_that_moved_in_conflict_refuses_and_changes_nothing() {
    let f = finished(None).await;
    commit_file(&f.repo, "a.txt", "the user's a\n");
    let moved = head(&f.repo, "main");
    let integration = head(&f.repo, &f.branch);
    let e = f
        .engine
        .land(f.plan, LandMode::Merge, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(e.message.contains("a.txt"), "{}", e.message);
    let hint = format!("git -C {} merge main", f.worktree.display());
    assert!(e.message.contains(&hint), "{}", e.message);
    assert_eq!(head(&f.repo, "main"), moved);
    assert_eq!(head(&f.repo, &f.branch), integration);
    assert!(
        is_clean(&f.worktree),
        "the integration worktree is left clean"
    );
    assert!(is_clean(&f.repo.path()));
    let stored = f
        .store
        .read(move |t| query::landing(t, f.plan))
        .await
        .unwrap();
    assert!(stored.is_none());
}

/// The plan's resolver sessions, as stored.
async fn resolvers(f: &Finished) -> Vec<ocio::domain::Session> {
    let sessions = f.store.read(query::sessions).await.unwrap();
    sessions
        .into_iter()
        .filter(|s| s.kind == ocio::domain::SessionKind::Resolve)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_that_moved_in_conflict_is_settled_by_a_resolver_session_then_landed() {
    let f = finished_with(None, "conflicts = \"resolver\"", TWO).await;
    commit_file(&f.repo, "a.txt", "the user's a\n");
    let moved = head(&f.repo, "main");
    let landing = f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert!(landing.base_merged);
    assert_eq!(landing.base_resolved, vec!["a.txt".to_string()]);
    // The base holds the user's commit and the plan's work, as the resolver settled it (the
    // simulated agent writes what task alpha wrote).
    let holds = ["merge-base", "--is-ancestor", &moved, "main"];
    assert!(f.repo.git_ok(&holds));
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("from alpha\n"));
    assert_eq!(f.repo.read("b.txt").as_deref(), Some("from beta\n"));
    assert!(is_clean(&f.repo.path()));
    // One resolver session, in the name of task alpha (whose work conflicted), completed.
    let resolvers = resolvers(&f).await;
    assert_eq!(resolvers.len(), 1, "{resolvers:?}");
    assert_eq!(resolvers[0].status, ocio::domain::SessionStatus::Completed);
    assert!(
        resolvers[0].title.ends_with("/land resolve main"),
        "{}",
        resolvers[0].title
    );
    let tasks = f.store.read(query::tasks).await.unwrap();
    let alpha = tasks.iter().find(|t| t.key == "alpha").unwrap();
    assert_eq!(resolvers[0].task, Some(alpha.id));
    assert_eq!(
        alpha.status,
        ocio::domain::TaskStatus::Done,
        "the task is not touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_behind_fifty_newer_ones_lands_through_its_resolver() {
    let f = finished_with(None, "conflicts = \"resolver\"", TWO).await;
    // Fifty plans (outside git) end after it: it is no longer kept in memory.
    let filler = f._dir.path().join("filler");
    std::fs::create_dir_all(&filler).unwrap();
    let mut events = f.engine.subscribe();
    for n in 0..50 {
        let path = filler.join("plan.toml");
        let text =
            format!("name = \"p{n}\"\nrepo = \".\"\n[[tasks]]\nid = \"t\"\nprompt = \"x\"\n");
        std::fs::write(&path, text).unwrap();
        let plan = PlanFile::load(&path).unwrap();
        f.engine.submit_plan(plan).await.unwrap();
        support::until_finished(&mut events, PATIENCE).await;
    }
    commit_file(&f.repo, "a.txt", "the user's a\n");
    // Loaded again to land, and kept while its resolver works.
    let landing = f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert_eq!(landing.base_resolved, vec!["a.txt".to_string()]);
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("from alpha\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landing_that_needs_a_resolver_while_paused_is_refused_not_left_waiting() {
    let f = finished_with(None, "conflicts = \"resolver\"", TWO).await;
    f.engine.pause(true).await.unwrap();
    commit_file(&f.repo, "a.txt", "the user's a\n");
    let integration = head(&f.repo, &f.branch);
    let landing = f.engine.land(f.plan, LandMode::Merge, None);
    let e = tokio::time::timeout(PATIENCE, landing)
        .await
        .expect("the landing answers")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(e.message.contains("dispatching is paused"), "{}", e.message);
    assert_eq!(
        head(&f.repo, &f.branch),
        integration,
        "the merge was undone"
    );
    assert!(is_clean(&f.worktree));
    f.engine.pause(false).await.unwrap();
    let landing = f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert_eq!(landing.base_resolved, vec!["a.txt".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_that_leaves_the_base_conflicted_refuses_the_landing_and_undoes_the_merge() {
    // Task alpha's work (which the resolver writes again) keeps a conflict marker line.
    let tasks = r#"
[[tasks]]
id = "alpha"
title = "Write a"
prompt = 'SIM-WRITE a.txt <<<<<<< HEAD\n'
"#;
    let f = finished_with(None, "conflicts = \"resolver\"", tasks).await;
    commit_file(&f.repo, "a.txt", "the user's a\n");
    let moved = head(&f.repo, "main");
    let integration = head(&f.repo, &f.branch);
    let e = f
        .engine
        .land(f.plan, LandMode::Merge, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    for said in [
        "the resolver session left it unresolved",
        "a.txt",
        "nothing was landed",
        "the merge of main was undone",
    ] {
        assert!(e.message.contains(said), "{said:?} in {}", e.message);
    }
    assert_eq!(head(&f.repo, "main"), moved);
    assert_eq!(head(&f.repo, &f.branch), integration);
    assert!(
        is_clean(&f.worktree),
        "the integration worktree is left clean"
    );
    assert_eq!(resolvers(&f).await.len(), 1);
    // The operator settles it by hand as told, and it lands.
    let hint = format!("git -C {} merge main", f.worktree.display());
    assert!(e.message.contains(&hint), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_merge_an_earlier_landing_left_is_aborted_and_a_hand_merge_is_kept() {
    let f = finished(None).await;
    commit_file(&f.repo, "a.txt", "the user's a\n");
    let worktree = f.worktree.to_str().unwrap().to_string();
    let merge = |message: &str| {
        let out = std::process::Command::new("git")
            .args(["-C", &worktree, "merge", "--no-ff", "-m", message, "main"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the merge conflicts");
        assert!(f.worktree.join("a.txt").exists());
    };
    // Someone merging by hand, as a conflict's hint says: kept, and the landing refused.
    merge("Merge branch 'main' by hand");
    let e = f
        .engine
        .land(f.plan, LandMode::Merge, None)
        .await
        .unwrap_err();
    assert!(e.message.contains("merge in progress"), "{}", e.message);
    assert!(
        !is_clean(&f.worktree),
        "the hand merge is still in progress"
    );
    f.repo.git(&["-C", &worktree, "merge", "--abort"]);
    // A landing's own merge of the base that its resolver never finished (the engine
    // stopped): aborted, then this landing goes on (and, by `conflicts = "retry"`, refuses
    // naming the files).
    merge("Merge main into plan deliver before landing");
    let e = f
        .engine
        .land(f.plan, LandMode::Merge, None)
        .await
        .unwrap_err();
    assert!(e.message.contains("both changed a.txt"), "{}", e.message);
    assert!(is_clean(&f.worktree), "the stale merge was aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landing_that_was_not_recorded_is_recorded_without_a_new_commit() {
    let f = finished(None).await;
    // What a landing does before a crash: the base holds the integration branch.
    f.repo.git(&["merge", "-q", "--no-edit", &f.branch]);
    let main = head(&f.repo, "main");
    let landing = f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert!(landing.recovered);
    assert_eq!(landing.record.commit, main);
    assert_eq!(head(&f.repo, "main"), main);
    let stored = f
        .store
        .read(move |t| query::landing(t, f.plan))
        .await
        .unwrap();
    assert_eq!(stored.unwrap().commit, main);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sends_the_integration_branch_to_a_bare_remote() {
    let f = finished(None).await;
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().to_string_lossy().into_owned();
    f.repo.git(&["init", "-q", "--bare", &bare_path]);
    f.repo.git(&["remote", "add", "origin", &bare_path]);
    let push = Push {
        remote: None,
        pr: false,
    };
    let landing = f
        .engine
        .land(f.plan, LandMode::Merge, Some(push))
        .await
        .unwrap();
    let integration = head(&f.repo, &f.branch);
    assert_eq!(landing.record.commit, integration);
    assert_eq!(
        landing.record.pushed_to.as_deref(),
        Some(format!("origin {}", f.branch).as_str())
    );
    let out = std::process::Command::new("git")
        .args(["--git-dir", &bare_path, "rev-parse", &f.branch])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), integration);
    // Pushed, not landed: the base is where it was.
    assert_eq!(head(&f.repo, "main"), f.start);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pr_runs_gh_with_base_head_title_and_a_body_naming_the_tasks() {
    let tools = tempfile::tempdir().unwrap();
    let args_file = tools.path().join("args");
    let gh = tools.path().join("gh");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\necho 'Creating pull request'\necho https://github.example/o/r/pull/7\n",
        args_file.display()
    );
    std::fs::write(&gh, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(tools.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let f = finished(Some(path)).await;
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().to_string_lossy().into_owned();
    f.repo.git(&["init", "-q", "--bare", &bare_path]);
    f.repo.git(&["remote", "add", "origin", &bare_path]);
    let push = Push {
        remote: None,
        pr: true,
    };
    let landing = f
        .engine
        .land(f.plan, LandMode::Merge, Some(push))
        .await
        .unwrap();
    let url = "https://github.example/o/r/pull/7";
    assert_eq!(landing.record.pr_url.as_deref(), Some(url));
    let stored = f
        .store
        .read(move |t| query::landing(t, f.plan))
        .await
        .unwrap();
    assert_eq!(stored.unwrap().pr_url.as_deref(), Some(url));
    let args = std::fs::read_to_string(&args_file).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    let after = |flag: &str| lines[lines.iter().position(|l| *l == flag).unwrap() + 1];
    assert_eq!(&lines[..2], ["pr", "create"]);
    assert_eq!(after("--base"), "main");
    assert_eq!(after("--head"), f.branch);
    assert_eq!(after("--title"), "Plan deliver");
    assert!(
        args.contains("alpha: Write a") && args.contains("beta: Write b"),
        "{args}"
    );
    assert!(
        args.contains("Checks: none (the plan has no `check`)"),
        "{args}"
    );
    assert!(
        args.contains("- total: ") && args.contains(" tokens, $"),
        "{args}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_with_work_under_way_is_refused_naming_its_tasks() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![support::sim_agent("sim", 2, &[], 5_000, 0.0)];
    let engine = EngineHandle::start(store, agents, options(None))
        .await
        .unwrap();
    let path = dir.path().join("busy.toml");
    let text = format!("name = \"busy\"\nrepo = {:?}\n{TWO}", repo.dir_str());
    std::fs::write(&path, text).unwrap();
    let plan = engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let e = engine.land(plan, LandMode::Merge, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(
        e.message.contains("alpha") && e.message.contains("beta"),
        "{}",
        e.message
    );
}

/// A plan run in `repo` with extra settings (`settings`), to its end.
async fn finished_in(repo: &TestRepo, settings: &str) -> (tempfile::TempDir, EngineHandle, PlanId) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![support::sim_agent("sim", 2, &[], 50, 0.0)];
    let engine = EngineHandle::start(store, agents, options(None))
        .await
        .unwrap();
    let path = dir.path().join("odd.toml");
    let text = format!(
        "name = \"odd\"\nrepo = {:?}\n{settings}\n{TWO}",
        repo.dir_str()
    );
    std::fs::write(&path, text).unwrap();
    let mut events = engine.subscribe();
    let plan = engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let (_, end) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(end, EngineEvent::PlanFinished { ok: true, .. }),
        "{end:?}"
    );
    (dir, engine, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_that_is_not_a_branch_is_refused() {
    let repo = TestRepo::new();
    let start = head(&repo, "main");
    let (_dir, engine, plan) = finished_in(&repo, &format!("base = \"{start}\"")).await;
    let e = engine.land(plan, LandMode::Merge, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(
        e.message.contains("(a tag, a commit or a detached HEAD)"),
        "{}",
        e.message
    );
    assert_eq!(head(&repo, "main"), start);

    // Submitted on a detached HEAD: no branch was recorded to land on.
    let repo = TestRepo::new();
    repo.git(&["switch", "-q", "--detach"]);
    let (_dir, engine, plan) = finished_in(&repo, "").await;
    let e = engine.land(plan, LandMode::Merge, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(
        e.message.contains("did not record a base branch"),
        "{}",
        e.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_base_branch_not_checked_out_is_moved_by_compare_and_swap() {
    let repo = TestRepo::new();
    repo.git(&["branch", "release"]);
    let start = head(&repo, "release");
    let (_dir, engine, plan) = finished_in(&repo, "base = \"release\"").await;
    let landing = engine.land(plan, LandMode::Merge, None).await.unwrap();
    assert_eq!(landing.record.base, "release");
    assert_eq!(head(&repo, "release"), landing.record.commit);
    assert_eq!(head(&repo, "release^1"), start);
    // The checkout (on main) was not touched.
    assert_eq!(head(&repo, "main"), start);
    assert!(repo.read("a.txt").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecorded_squash_with_the_base_moved_on_makes_no_new_commit() {
    let f = finished(None).await;
    // A squash landed (not recorded), then the user committed more on the base.
    f.repo.git(&["merge", "-q", "--squash", &f.branch]);
    f.repo.git(&["commit", "-q", "-m", "squashed by hand"]);
    commit_file(&f.repo, "c.txt", "later\n");
    let main = head(&f.repo, "main");
    let landing = f.engine.land(f.plan, LandMode::Squash, None).await.unwrap();
    assert!(landing.recovered, "{landing:?}");
    assert_eq!(landing.record.commit, main);
    assert_eq!(head(&f.repo, "main"), main);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_lands_after_the_engine_restarted() {
    let f = finished(None).await;
    f.engine.shutdown().await.unwrap();
    f.store.close().await;
    let store = Store::open(&f._dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![support::sim_agent("sim", 2, &[], 50, 0.0)];
    let engine = EngineHandle::start(store, agents, options(None))
        .await
        .unwrap();
    let landing = engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert_eq!(head(&f.repo, "main"), landing.record.commit);
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("from alpha\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landing_whose_resolver_the_engine_stopped_lands_after_a_restart() {
    let f = finished_with(None, "conflicts = \"resolver\"", TWO).await;
    f.engine.shutdown().await.unwrap();
    f.store.close().await;
    commit_file(&f.repo, "a.txt", "the user's a\n");
    let db = f._dir.path().join("ocio.redb");
    // An engine whose agent takes a minute: stopped while the landing's resolver works.
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let slow = vec![support::sim_agent("sim", 2, &[], 60_000, 0.0)];
    let engine = EngineHandle::start(store.clone(), slow, options(None))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let landing = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.land(f.plan, LandMode::Merge, None).await })
    };
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let EngineEvent::Dispatched { .. } = events.recv().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("the resolver started");
    assert!(
        f.worktree.join(".git").exists() && !is_clean(&f.worktree),
        "the base's merge waits for the resolver"
    );
    engine.shutdown().await.unwrap();
    assert!(
        landing.await.unwrap().is_err(),
        "the request ends with the engine"
    );
    store.close().await;
    // Started again: the old resolver is not followed, the merge it left is aborted, and the
    // landing runs its own resolver to the end.
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let agents = vec![support::sim_agent("sim", 2, &[], 50, 0.0)];
    let engine = EngineHandle::start(store.clone(), agents, options(None))
        .await
        .unwrap();
    let landing = engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    assert!(landing.base_merged);
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("from alpha\n"));
    let sessions = store.read(query::sessions).await.unwrap();
    let mut ends: Vec<_> = sessions
        .iter()
        .filter(|s| s.kind == ocio::domain::SessionKind::Resolve)
        .map(|s| s.status)
        .collect();
    ends.sort_by_key(|s| s.to_string());
    // The old resolver's run did not survive the stop: lost, not failed.
    use ocio::domain::SessionStatus::{Completed, Lost};
    assert_eq!(ends, vec![Completed, Lost]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_with_a_failed_task_lands_what_merged_and_names_the_rest() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![
        support::sim_agent("sim", 2, &["good"], 50, 0.0),
        support::sim_agent("bad", 1, &["bad"], 50, 1.0),
    ];
    let engine = EngineHandle::start(store, agents, options(None))
        .await
        .unwrap();
    let path = dir.path().join("partly.toml");
    let failing = "[[tasks]]\nid = \"gamma\"\nretries = 0\ncapabilities = [\"bad\"]\nprompt = 'SIM-WRITE g.txt gamma\\n'\n";
    // The good tasks only on the agent that never fails.
    let good = TWO.replace("prompt = 'SIM", "capabilities = [\"good\"]\nprompt = 'SIM");
    let text = format!(
        "name = \"partly\"\nrepo = {:?}\n{good}{failing}",
        repo.dir_str()
    );
    std::fs::write(&path, text).unwrap();
    let mut events = engine.subscribe();
    let plan = engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let (_, end) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(end, EngineEvent::PlanFinished { failed: 1, .. }),
        "{end:?}"
    );
    let landing = engine.land(plan, LandMode::Merge, None).await.unwrap();
    assert_eq!(landing.left_out, ["gamma: failed"]);
    assert_eq!(landing.record.files, ["a.txt", "b.txt"]);
    assert!(repo.read("g.txt").is_none());
}

/// A pull request with only the tools in `tools` on the engine's PATH.
async fn pr_with(
    tools: &Path,
) -> (
    Finished,
    Result<ocio::engine::Landing, ocio::engine::ApiError>,
) {
    let f = finished(Some(tools.as_os_str().to_owned())).await;
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().to_string_lossy().into_owned();
    f.repo.git(&["init", "-q", "--bare", &bare_path]);
    f.repo.git(&["remote", "add", "origin", &bare_path]);
    let push = Push {
        remote: Some("origin".into()),
        pr: true,
    };
    let result = f.engine.land(f.plan, LandMode::Merge, Some(push)).await;
    (f, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pr_falls_back_to_glab_and_says_when_neither_tool_is_there() {
    let none = tempfile::tempdir().unwrap();
    let (_f, result) = pr_with(none.path()).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(
        e.message.contains("neither `gh` nor `glab`"),
        "{}",
        e.message
    );

    let tools = tempfile::tempdir().unwrap();
    let glab = tools.path().join("glab");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\necho https://gitlab.example/o/r/-/merge_requests/3\n",
        tools.path().join("args").display()
    );
    std::fs::write(&glab, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&glab, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (f, result) = pr_with(tools.path()).await;
    let landing = result.unwrap();
    let url = "https://gitlab.example/o/r/-/merge_requests/3";
    assert_eq!(landing.record.pr_url.as_deref(), Some(url));
    let args = std::fs::read_to_string(tools.path().join("args")).unwrap();
    let expected = format!(
        "mr\ncreate\n--target-branch\nmain\n--source-branch\n{}\n",
        f.branch
    );
    assert!(args.starts_with(&expected), "{args}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_base_that_breaks_the_check_is_not_landed_and_its_merge_is_undone() {
    let repo = TestRepo::new();
    let check = "check = \"test ! -f poison.txt || { echo 'poison.txt must not exist'; exit 1; }\"";
    let (_dir, engine, plan) = finished_in(&repo, check).await;
    let branch = "ocio/odd/integration";
    let integration = head(&repo, branch);
    commit_file(&repo, "poison.txt", "bad\n");
    let moved = head(&repo, "main");
    let e = engine.land(plan, LandMode::Merge, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    for said in [
        "the plan's check fails with main brought in",
        "the merge of main was undone",
        "poison.txt must not exist",
    ] {
        assert!(e.message.contains(said), "{said:?} in {}", e.message);
    }
    assert_eq!(head(&repo, "main"), moved, "the base did not move");
    assert_eq!(
        head(&repo, branch),
        integration,
        "the base's merge was undone"
    );
    // Once the base passes the check again, the plan lands with it.
    repo.git(&["rm", "-q", "poison.txt"]);
    repo.git(&["commit", "-q", "-m", "no poison"]);
    let landing = engine.land(plan, LandMode::Merge, None).await.unwrap();
    assert!(landing.base_merged);
    assert_eq!(repo.read("a.txt").as_deref(), Some("from alpha\n"));
}

/// The next question a session asks.
async fn asked(events: &mut ocio::engine::Subscription) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let EngineEvent::QuestionAsked { request, .. } = events.recv().await.unwrap() {
                return request;
            }
        }
    })
    .await
    .expect("a question came")
}

/// A plan being landed takes no new work: a retry of its failed task while the landing's
/// resolver works (here: waits for the operator's answer) is refused, then lands nothing of
/// it behind the landing's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_while_the_plan_is_being_landed_is_refused() {
    use ocio::engine::approval::Approver;
    use ocio::engine::question::{Answer, QuestionMode, QuestionPolicy};
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let agents = vec![
        support::sim_agent("good", 2, &[], 20, 0.0),
        support::sim_agent("bad", 2, &[], 20, 1.0),
    ];
    let options = EngineOptions {
        questions: QuestionPolicy {
            mode: QuestionMode::Ask,
            timeout: Duration::from_secs(120),
        },
        ..options(None)
    };
    let engine = EngineHandle::start(store, agents, options).await.unwrap();
    let mut events = engine.subscribe();
    let _room = engine.feed(ocio::engine::Follower::Room).await.unwrap();
    let text = format!(
        "name = \"busy\"\nrepo = {:?}\nconflicts = \"resolver\"\n[[tasks]]\nid = \"alpha\"\nagent = \"good\"\nprompt = \"SIM-WRITE a.txt from alpha\\nSIM-ASK Colour: Which? | red | blue\"\n[[tasks]]\nid = \"beta\"\nagent = \"bad\"\nprompt = \"fail\"\n",
        repo.dir_str()
    );
    let path = dir.path().join("busy.toml");
    std::fs::write(&path, text).unwrap();
    let plan = engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let pick = || vec![Answer::Pick(vec![1])];
    let request = asked(&mut events).await;
    engine
        .answer(&request, pick(), Approver::Cli)
        .await
        .unwrap();
    support::until_finished(&mut events, PATIENCE).await;
    let snapshot = engine.snapshot().await.unwrap();
    let shown = snapshot.plans.iter().find(|p| p.id == plan).unwrap();
    let beta = shown.tasks.iter().find(|t| t.key == "beta").unwrap().id;
    commit_file(&repo, "a.txt", "the user's a\n");
    let landing = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.land(plan, LandMode::Merge, None).await })
    };
    let request = asked(&mut events).await;
    let e = engine.retry(beta).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotNow);
    assert!(e.message.contains("is being landed now"), "{}", e.message);
    engine
        .answer(&request, pick(), Approver::Cli)
        .await
        .unwrap();
    let landed = landing.await.unwrap().unwrap();
    assert_eq!(landed.left_out, vec!["beta: failed".to_string()]);
    assert_eq!(repo.read("a.txt").as_deref(), Some("from alpha"));
}

/// A task writes into a submodule initialized in the checkout: its worktree has the submodule
/// checked out (`git worktree add` left it an empty directory, and the write went into a plain
/// directory of the superproject), the work is committed in the submodule and recorded as the
/// task's gitlink, the plan's check (which needs the submodule) passes in the integration
/// worktree, and once landed, `git submodule update` in the checkout brings it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_works_in_a_submodule_and_its_commit_lands() {
    let repo = TestRepo::new();
    let source = tempfile::tempdir().unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(["-c", "protocol.file.allow=always"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(source.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(source.path().join("lib.txt"), "vendored\n").unwrap();
    git(source.path(), &["add", "-A"]);
    git(source.path(), &["commit", "-q", "-m", "vendored"]);
    let url = source.path().to_string_lossy().into_owned();
    git(
        &repo.path(),
        &["submodule", "add", "-q", &url, "vendor/sub"],
    );
    git(&repo.path(), &["commit", "-q", "-m", "vendor/sub"]);
    let before = head(&repo, "main:vendor/sub");
    let tasks = r#"
[[tasks]]
id = "deep"
prompt = 'SIM-WRITE vendor/sub/agent.txt from the task\n'
[[tasks]]
id = "top"
prompt = 'SIM-WRITE top.txt top\n'
"#;
    // The plan's check, in the integration worktree, needs the submodule as well.
    let check = "check = \"test -f vendor/sub/lib.txt\"";
    let f = finished_on(repo, None, check, tasks).await;
    assert_eq!(
        std::fs::read_to_string(f.worktree.join("vendor/sub/agent.txt")).unwrap(),
        "from the task\n",
        "the integration worktree follows its merges"
    );
    let link = head(&f.repo, &format!("{}:vendor/sub", f.branch));
    assert_ne!(
        link, before,
        "the integration branch records the submodule's new commit"
    );
    let gitdir = f.repo.path().join(".git/modules/vendor/sub");
    assert_eq!(
        git(&gitdir, &["show", &format!("{link}:agent.txt")]),
        "from the task"
    );
    assert_eq!(
        git(&gitdir, &["show", &format!("{link}:lib.txt")]),
        "vendored"
    );
    assert!(
        f.repo
            .git(&["ls-tree", "-r", "--name-only", &f.branch])
            .lines()
            .all(|file| !file.starts_with("vendor/sub/")),
        "nothing of the submodule is committed in the superproject"
    );
    f.engine.land(f.plan, LandMode::Merge, None).await.unwrap();
    git(&f.repo.path(), &["submodule", "update", "-q"]);
    assert_eq!(
        std::fs::read_to_string(f.repo.path().join("vendor/sub/agent.txt")).unwrap(),
        "from the task\n"
    );
}
