//! Build boxes: an OpenCode server that does not see ocio's disk (its own mount namespace, with
//! ocio's data and the repositories hidden under empty tmpfs) runs tasks whose trees ocio
//! carries there and whose work it brings back. One far server serves every check here.
//! Skipped, saying why, where mount namespaces cannot be made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocio::engine::EngineApi;
use ocio::opencode::boxes::{BoxWorkspace, Returned};
use ocio::scripted::{self, Rule, Script, Turn};
use support::home::{Engine, Home, stderr, stdout};
use support::{TestRepo, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_see_ocios_disk_runs_tasks_whose_work_lands_exactly() {
    let script = Script::new()
        // First: a resolver's prompt quotes its task's (this one's plan only, slow enough
        // for ocio to be killed while it works).
        .rule(
            Rule::when("conflict in plan `latefar`")
                .turn(Turn::write("late.txt", "both\n"))
                .turn(Turn::text("Kept both.").delay_ms(4000)),
        )
        .rule(Rule::when("far late one").turn(Turn::write("late.txt", "one\n")).turn(Turn::text("one")))
        .rule(Rule::when("far late two").turn(Turn::write("late.txt", "two\n")).turn(Turn::text("two")))
        .rule(
            Rule::when("You are resolving a git merge conflict")
                .turn(Turn::write("clash.txt", "both\n"))
                .turn(Turn::text("Kept both.")),
        )
        .rule(Rule::when("far clash one").turn(Turn::write("clash.txt", "one\n")).turn(Turn::text("one")))
        .rule(Rule::when("far clash two").turn(Turn::write("clash.txt", "two\n")).turn(Turn::text("two")))
        .rule(
            Rule::when("far window")
                .turn(Turn::write("window.txt", "window\n").delay_ms(200))
                .turn(Turn::text("window done")),
        )
        .rule(
            Rule::when("far setup use")
                .turn(Turn::bash("cat deps/ready.txt > seen.txt"))
                .turn(Turn::text("used what setup made")),
        )
        .rule(
            Rule::when("far first")
                .turn(Turn::write("hello.txt", "hello from the box\n"))
                .turn(Turn::bash(
                    "printf '#!/bin/sh\\necho hi\\n' > tool.sh && chmod +x tool.sh && ln -s hello.txt link && printf '\\000\\001\\377' > blob.bin && rm README.md",
                ))
                .turn(Turn::text("first done")),
        )
        .rule(
            Rule::when("far slow")
                .turn(Turn::write("slow.txt", "slow\n").delay_ms(4000))
                .turn(Turn::text("slow done")),
        )
        .rule(
            Rule::when("far restart")
                .turn(Turn::write("partial.txt", "before the restart\n"))
                .turn(Turn::text("restart done").delay_ms(5000)),
        )
        .rule(
            Rule::when("far down")
                .turn(Turn::write("down.txt", "written before the box went down\n"))
                .turn(Turn::text("down done").delay_ms(8000)),
        )
        .rule(
            Rule::when("far overlap")
                .turn(Turn::bash("echo same > shared.txt"))
                .turn(Turn::text("overlap done").delay_ms(9000)),
        )
        .rule(
            Rule::when("far submodule")
                .turn(Turn::write("lib/one/agent.txt", "agent\n"))
                .turn(Turn::text("submodule done")),
        )
        .rule(
            Rule::when("far second")
                .turn(Turn::write("bye.txt", "bye\n"))
                .turn(Turn::text("second done")),
        );
    let home = Home::new();
    let repo = TestRepo::new();
    let near = tempfile::tempdir().unwrap();
    let repo_path = repo.path();
    let hidden = [home.dir.path(), repo_path.as_path(), near.path()];
    let Some(mut server) = TestServer::start_far(script, &hidden).await else {
        return;
    };
    // How long each phase took, shown when the test fails or with --nocapture.
    let mut phase = std::time::Instant::now();
    let mut took = |name: &str| {
        eprintln!(
            "far_box: {name} took {:.1} s",
            phase.elapsed().as_secs_f64()
        );
        phase = std::time::Instant::now();
    };
    check_tells_remote(&server, &home);
    took("check_tells_remote");
    tasks_land_from_the_box(&server, &home, &repo);
    took("tasks_land_from_the_box");
    box_sessions_that_touch_one_file_overlap_and_show_their_diff(&home, &repo).await;
    took("box_sessions_that_touch_one_file_overlap_and_show_their_diff");
    a_conflict_is_resolved_on_the_box(&server, &home, &repo);
    took("a_conflict_is_resolved_on_the_box");
    the_plans_setup_runs_on_the_box(&server, &home, &repo, near.path());
    took("the_plans_setup_runs_on_the_box");
    a_kill_mid_task_reattaches_and_the_work_comes_back_once(&server, &home, &repo);
    took("a_kill_mid_task_reattaches_and_the_work_comes_back_once");
    a_kill_while_a_box_resolver_works_brings_its_resolution_back(&server, &home, &repo);
    took("a_kill_while_a_box_resolver_works_brings_its_resolution_back");
    a_kill_between_creating_and_prompting_a_box_session_runs_it_once(&server, &home, &repo).await;
    took("a_kill_between_creating_and_prompting_a_box_session_runs_it_once");
    the_box_restarting_mid_task_loses_no_work(&mut server, &home, &repo).await;
    took("the_box_restarting_mid_task_loses_no_work");
    a_cancel_while_the_box_is_down_is_settled_at_once(&mut server, &home, &repo).await;
    took("a_cancel_while_the_box_is_down_is_settled_at_once");
    fidelity_of_random_trees_there_and_back(&server, near.path()).await;
    took("fidelity_of_random_trees_there_and_back");
    submodules_and_lfs_files_there_and_back(&server, &home, near.path()).await;
    took("submodules_and_lfs_files_there_and_back");
    server.stop().await;
}

/// `ocio check --db PATH` probes where the engine will put task worktrees (beside the database),
/// not in ocio's data directory: a server that sees the data directory but not the database's
/// directory does not see ocio's files, and an agent set to shared fails the check there. The
/// probe leaves nothing behind and makes no database, with `--db` or without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_beside_the_database_where_worktrees_go() {
    let home = Home::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let Some(server) = TestServer::start_far(Script::new(), &[elsewhere.path()]).await else {
        return;
    };
    home.write_config(&format!("{}workspace = \"shared\"\n", config(&server)));
    let db = elsewhere.path().join("state/ocio.redb");
    let out = home.ocio(&["--db", db.to_str().unwrap(), "check"]);
    let text = format!("{}{}", support::home::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    let worktrees = elsewhere.path().join("state/worktrees");
    assert!(
        text.contains("does not see ocio's files")
            && text.contains(&worktrees.display().to_string()),
        "{text}"
    );
    let left: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(left.is_empty(), "the probe left {left:?}");
    // Without --db the worktrees go under the data directory, which the server sees.
    let report = home.json(&["check", "--json"]);
    assert_eq!(report[0]["workspace"], "shared", "{report}");
    assert_eq!(report[0]["sees_ocio_files"], true, "{report}");
    // Configured remote, it is remote (trees are carried), and the check says it need not be
    // (it said `workspace shared`, against the config).
    home.write_config(&format!("{}workspace = \"remote\"\n", config(&server)));
    let out = home.ocio(&["check"]);
    let text = support::home::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("workspace remote (it also sees ocio's files"),
        "{text}"
    );
    assert!(!home.path("data/ocio/worktrees").exists());
    assert!(!home.db().exists(), "check made a database");
    server.stop().await;
}

/// An agent set to `workspace = "shared"` whose server is on 127.0.0.1 but does not see ocio's
/// disk (as a server in another mount namespace or behind a `kubectl port-forward`): its task
/// fails on the server's HTTP 500 with the diagnosis that the server does not see ocio's files
/// and what to set, not that the server "has the directory" (it is on ocio's disk, not there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_agent_on_loopback_that_does_not_see_ocios_disk_is_told_so() {
    let home = Home::new();
    let repo = TestRepo::new();
    let repo_path = repo.path();
    let hidden = [home.dir.path(), repo_path.as_path()];
    let Some(server) = TestServer::start_far(Script::new(), &hidden).await else {
        return;
    };
    home.write_config(&format!("{}workspace = \"shared\"\n", config(&server)));
    let plan = home.write_plan(
        "shared.toml",
        &format!(
            "name = \"shared\"\nrepo = {:?}\n[[tasks]]\nid = \"a\"\nprompt = \"far shared\"\nretries = 0\n",
            repo.dir_str()
        ),
    );
    let out = home.ocio(&["run", plan.to_str().unwrap(), "--headless"]);
    let text = support::home::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("does not see ocio's files") && text.contains("workspace = \\\"remote\\\""),
        "{text}"
    );
    assert!(!text.contains("has the directory"), "{text}");
    server.stop().await;
}

/// The session's diff as the control socket gives it, asked every 100 ms (at most `tries`
/// times) until `ready` says it is; the last one asked.
async fn diff_when(
    control: &ocio::control::ControlClient,
    session: ocio::domain::SessionId,
    tries: u32,
    ready: impl Fn(&str) -> bool,
) -> String {
    let mut diff = String::new();
    for _ in 0..tries {
        diff = control.diff(session).await.unwrap();
        if ready(&diff) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    diff
}

fn config(server: &TestServer) -> String {
    format!(
        "[[agents]]\nname = \"far\"\nurl = {:?}\nmodel = \"{}/{}\"\n",
        server.url(),
        scripted::PROVIDER_ID,
        scripted::MODEL_ID
    )
}

/// `ocio check` finds out the server does not see ocio's files and says to use a remote
/// workspace; an agent configured as shared is refused there, before any task runs.
fn check_tells_remote(server: &TestServer, home: &Home) {
    home.write_config(&config(server));
    let report = home.json(&["check", "--json"]);
    assert_eq!(report[0]["workspace"], "remote", "{report}");
    assert_eq!(report[0]["ok"], true, "{report}");
    home.write_config(&format!("{}workspace = \"shared\"\n", config(server)));
    let out = home.ocio(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = format!("{}{}", support::home::stdout(&out), stderr(&out));
    assert!(
        text.contains("does not see ocio's files") && text.contains("workspace = \"remote\""),
        "{text}"
    );
    // The workspace shown is the configured one (it showed `remote`, what was found).
    assert!(
        text.contains("workspace shared (it does not see ocio's files)"),
        "{text}"
    );
    assert!(text.contains("1 of 1 failed: far (see above)"), "{text}");
}

/// A plan of two tasks (the second on top of the first) runs on the far server: the work of
/// each comes back and is merged on the integration branch, new files, an executable bit, a
/// symlink, binary bytes and a deletion included; the box keeps no task worktree after.
fn tasks_land_from_the_box(server: &TestServer, home: &Home, repo: &TestRepo) {
    home.write_config(&config(server));
    let plan = home.write_plan(
        "far.toml",
        &format!(
            "name = \"far\"\nrepo = {:?}\n[[tasks]]\nid = \"first\"\nprompt = \"far first\"\n[[tasks]]\nid = \"second\"\nneeds = [\"first\"]\nprompt = \"far second\"\n",
            repo.dir_str()
        ),
    );
    let run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    let (code, out, err) = run.wait();
    assert_eq!(code, Some(0), "{out:?}\n{err}");
    let branch = "ocio/far/integration";
    assert_eq!(
        repo.git(&["show", &format!("{branch}:hello.txt")]),
        "hello from the box\n"
    );
    assert_eq!(repo.git(&["show", &format!("{branch}:bye.txt")]), "bye\n");
    let tree = repo.git(&["ls-tree", "-r", branch]);
    let mode = |name: &str| {
        tree.lines()
            .find(|line| line.ends_with(&format!("\t{name}")))
            .map(|line| line[..6].to_string())
    };
    assert_eq!(mode("tool.sh").as_deref(), Some("100755"), "{tree}");
    assert_eq!(mode("link").as_deref(), Some("120000"), "{tree}");
    assert_eq!(mode("README.md"), None, "deleted on the box: {tree}");
    let blob = Command::new("git")
        .current_dir(repo.path())
        .args(["show", &format!("{branch}:blob.bin")])
        .output()
        .unwrap();
    assert_eq!(blob.stdout, [0u8, 1, 255]);
    let work = server.own_dir().join(".ocio-work/work");
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "the box keeps task worktrees: {left:?}");
    assert!(server.own_dir().join(".ocio-work/mirror/.git").is_dir());
    let returned = repo.git(&["for-each-ref", "refs/ocio/returned"]);
    assert!(
        returned.is_empty(),
        "merged work's returned refs stay: {returned}"
    );
}

/// Two sessions on the box change one file with a shell command (no edit event tells ocio): the
/// overlap is seen from the box's own diff of each session while they run, and a running
/// session's diff is the box's.
async fn box_sessions_that_touch_one_file_overlap_and_show_their_diff(
    home: &Home,
    repo: &TestRepo,
) {
    let plan = home.write_plan(
        "overlap.toml",
        &format!(
            "name = \"overlap\"\nrepo = {:?}\n[[tasks]]\nid = \"one\"\nprompt = \"far overlap one\"\n[[tasks]]\nid = \"two\"\nprompt = \"far overlap two\"\n",
            repo.dir_str()
        ),
    );
    let mut run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    let mut seen = Vec::new();
    let overlap = loop {
        match run.next() {
            Some(line) if line["type"] == "overlap" => break line,
            Some(line) => seen.push(line),
            None => panic!("the plan ended with no overlap seen: {seen:#?}"),
        }
    };
    assert_eq!(overlap["path"], "shared.txt", "{overlap}");
    let session: ocio::domain::SessionId =
        serde_json::from_value(overlap["session"].clone()).unwrap();
    let control = ocio::control::ControlClient::connect(&home.socket())
        .await
        .unwrap();
    // The server has the session's diff a few hundred ms after the step that made it.
    let diff = diff_when(&control, session, 40, |diff| !diff.is_empty()).await;
    assert!(
        diff.contains("shared.txt") && diff.contains("+same"),
        "a running box session's diff: {diff:?}"
    );
    let (code, lines, err) = tokio::task::spawn_blocking(move || run.wait())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    assert_eq!(
        repo.git(&["show", "ocio/overlap/integration:shared.txt"]),
        "same\n"
    );
}

/// Two tasks on the box write one file differently: the second merge conflicts, and the
/// resolver session works on the box too (the integration worktree's merge in progress carried
/// there, markers and all); its resolution comes back and the merge is concluded.
fn a_conflict_is_resolved_on_the_box(server: &TestServer, home: &Home, repo: &TestRepo) {
    let plan = home.write_plan(
        "clash.toml",
        &format!(
            "name = \"clash\"\nrepo = {:?}\nconflicts = \"resolver\"\n[[tasks]]\nid = \"one\"\nprompt = \"far clash one\"\n[[tasks]]\nid = \"two\"\nprompt = \"far clash two\"\n",
            repo.dir_str()
        ),
    );
    let run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    let (code, lines, err) = run.wait();
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    let branch = "ocio/clash/integration";
    assert_eq!(
        repo.git(&["show", &format!("{branch}:clash.txt")]),
        "both\n"
    );
    let parents = repo.git(&["rev-list", "--parents", "-1", branch]);
    assert_eq!(
        parents.split(' ').count(),
        3,
        "the merge concluded: {parents}"
    );
    let work = server.own_dir().join(".ocio-work/work");
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "the box keeps worktrees: {left:?}");
    let refs = repo.git(&["for-each-ref", "refs/ocio/handed"]);
    assert!(refs.is_empty(), "handed states stay: {refs}");
}

/// The plan's `setup` runs on the box too, in the box's worktree with its own `OCIO_WORKTREE`
/// (what it makes is git-ignored, so it is never carried): the session there finds it. A setup
/// that fails only on the box fails the task with its output, and the box keeps no worktree.
fn the_plans_setup_runs_on_the_box(server: &TestServer, home: &Home, repo: &TestRepo, near: &Path) {
    std::fs::write(repo.path().join(".gitignore"), "deps/\n.env\n").unwrap();
    repo.git(&["add", ".gitignore"]);
    repo.git(&["commit", "-qm", "ignore deps"]);
    // Git-ignored, in the checkout only: the plan's `copy` brings it, to the box too, before
    // setup runs there.
    std::fs::write(repo.path().join(".env"), "SECRET=from-the-checkout\n").unwrap();
    let setup = r#"mkdir -p deps && echo "$OCIO_TASK at $OCIO_WORKTREE on $(uname -s)" > deps/ready.txt && cat .env >> deps/ready.txt"#;
    let plan = home.write_plan(
        "setup.toml",
        &format!(
            "name = \"setup\"\nrepo = {:?}\ncopy = [\".env\"]\nsetup = [{setup:?}]\n[[tasks]]\nid = \"use\"\nprompt = \"far setup use\"\n",
            repo.dir_str()
        ),
    );
    let (code, lines, err) =
        Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"])).wait();
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    let seen = repo.git(&["show", "ocio/setup/integration:seen.txt"]);
    let box_dir = server.own_dir().join(".ocio-work/work");
    assert!(
        seen.starts_with(&format!("use at {}", box_dir.display()))
            && seen.contains(" on Linux")
            && seen.ends_with("SECRET=from-the-checkout\n"),
        "what setup made on the box: {seen:?}"
    );
    // Present here, not on the box.
    let here_only = near.join("present.txt");
    std::fs::write(&here_only, "here\n").unwrap();
    let plan = home.write_plan(
        "setup-fails.toml",
        &format!(
            "name = \"setupfails\"\nrepo = {:?}\nsetup = [\"cat {}\"]\n[[tasks]]\nid = \"use\"\nretries = 0\nprompt = \"far setup use\"\n",
            repo.dir_str(),
            here_only.display()
        ),
    );
    let (code, lines, err) =
        Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"])).wait();
    assert_ne!(code, Some(0), "{lines:?}\n{err}");
    let said = format!("{lines:?}");
    assert!(
        said.contains("setup on the build box: `cat ") && said.contains("No such file"),
        "{said}"
    );
    let left: Vec<_> = std::fs::read_dir(&box_dir).unwrap().collect();
    assert!(left.is_empty(), "the box keeps worktrees: {left:?}");
}

/// ocio is killed (`kill -9`) while a task runs on the box; the session finishes there
/// meanwhile. The next start re-attaches it and brings its work back: merged once, prompted
/// once.
fn a_kill_mid_task_reattaches_and_the_work_comes_back_once(
    server: &TestServer,
    home: &Home,
    repo: &TestRepo,
) {
    let plan = one_task_plan(home, &repo.dir_str(), "slow", "slow", "far slow");
    let asked = server.model.requests().len();
    let mut run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    run.until("the prompt is sent", |l| {
        l["type"] == "activity" && l["entry"]["activity"]["text"] == "far slow"
    });
    let (code, _, _) = run.stop("KILL");
    assert_eq!(code, None, "killed");
    // The session finishes on the box while no ocio follows it.
    let work = server.own_dir().join(".ocio-work/work");
    until_asked(server, asked + 2, "never finished on the box");
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        1,
        "its worktree waits on the box"
    );
    let mut engine = home.engine(&[]);
    let finished = engine.until("the plan finishes", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true, "{finished}");
    assert_eq!(engine.stop("TERM").0, Some(130));
    assert_eq!(
        repo.git(&["show", "ocio/slow/integration:slow.txt"]),
        "slow\n"
    );
    assert_eq!(server.model.requests().len(), asked + 2, "prompted once");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "tidied after");
}

/// ocio is killed (`kill -9`) while a conflict's resolver works on the box; it finishes there
/// meanwhile. The next start re-attaches the resolver and brings its resolution back into the
/// integration worktree, where the merge is concluded.
fn a_kill_while_a_box_resolver_works_brings_its_resolution_back(
    server: &TestServer,
    home: &Home,
    repo: &TestRepo,
) {
    let plan = home.write_plan(
        "late.toml",
        &format!(
            "name = \"latefar\"\nrepo = {:?}\nconflicts = \"resolver\"\n[[tasks]]\nid = \"one\"\nprompt = \"far late one\"\n[[tasks]]\nid = \"two\"\nprompt = \"far late two\"\n",
            repo.dir_str()
        ),
    );
    let asked = server.model.requests().len();
    let mut run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    run.until("the resolver is prompted", |l| {
        l["type"] == "activity"
            && l["entry"]["activity"]["text"].as_str().is_some_and(|t| {
                t.starts_with("You are resolving a git merge conflict in plan `latefar`")
            })
    });
    let (code, _, _) = run.stop("KILL");
    assert_eq!(code, None, "killed");
    // Both tasks' two calls and the resolver's two: it finishes on the box meanwhile.
    until_asked(server, asked + 6, "the resolver never finished on the box");
    let mut engine = home.engine(&[]);
    let finished = engine.until("the plan finishes", |l| {
        l["type"] == "plan_finished" && l["name"] == "latefar"
    });
    assert_eq!(finished["ok"], true, "{finished}");
    assert_eq!(engine.stop("TERM").0, Some(130));
    let branch = "ocio/latefar/integration";
    assert_eq!(repo.git(&["show", &format!("{branch}:late.txt")]), "both\n");
    let parents = repo.git(&["rev-list", "--parents", "-1", branch]);
    assert_eq!(
        parents.split(' ').count(),
        3,
        "the merge concluded: {parents}"
    );
    assert_eq!(
        server.model.requests().len(),
        asked + 6,
        "the resolver ran once"
    );
}

/// ocio is killed (`kill -9`) between making a task's session on the box and prompting it, at
/// several moments: the next start takes up that session (or makes it) and prompts it once, and
/// the work lands from one attempt.
async fn a_kill_between_creating_and_prompting_a_box_session_runs_it_once(
    server: &TestServer,
    home: &Home,
    repo: &TestRepo,
) {
    let client = server.client();
    let work = server.own_dir().join(".ocio-work/work");
    for (round, delay) in [0u64, 10, 40].into_iter().enumerate() {
        let name = format!("window{round}");
        let prompt = format!("far window {round}");
        let plan = home.write_plan(
            &format!("{name}.toml"),
            &format!(
                "name = {name:?}\nrepo = {:?}\n[[tasks]]\nid = \"w\"\nprompt = {prompt:?}\n",
                repo.dir_str()
            ),
        );
        let run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        'made: loop {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no session on the box"
            );
            for entry in std::fs::read_dir(&work).unwrap() {
                let dir = entry.unwrap().path();
                let dir = dir.to_string_lossy();
                if client.sessions(&dir).await.is_ok_and(|s| !s.is_empty()) {
                    break 'made;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        let (_, before, _) = run.stop("KILL");
        let prompted = before.iter().any(|l| {
            l["type"] == "activity"
                && l["entry"]["activity"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&prompt))
        });
        eprintln!("kill {delay} ms after the box session was made: prompt seen before: {prompted}");
        let mut engine = home.engine(&[]);
        let finished = engine.until("the plan finishes", |l| l["type"] == "plan_finished");
        assert_eq!(
            finished["ok"], true,
            "round {round} (kill {delay} ms): {finished}"
        );
        let (_, after, _) = engine.stop("TERM");
        let attempts: Vec<_> = before
            .iter()
            .chain(&after)
            .filter(|l| l["type"] == "dispatched" && l["key"] == "w")
            .map(|l| l["attempt"].clone())
            .collect();
        assert!(
            attempts.iter().all(|a| a == 1),
            "round {round} (kill {delay} ms): one attempt: {attempts:?}"
        );
        let asked: Vec<_> = server
            .model
            .requests()
            .into_iter()
            .filter(|r| {
                r.side_job.is_none()
                    && r.turn == 0
                    && r.last_user_text
                        .as_deref()
                        .is_some_and(|t| t.contains(&prompt))
            })
            .collect();
        assert_eq!(
            asked.len(),
            1,
            "round {round} (kill {delay} ms): prompted once: {asked:?}"
        );
        assert_eq!(
            repo.git(&["show", &format!("ocio/{name}/integration:window.txt")]),
            "window\n"
        );
        let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
        assert!(
            left.is_empty(),
            "round {round}: the box keeps worktrees: {left:?}"
        );
    }
}

/// The box's server is killed while its session waits for the model and comes back: the
/// session stopped without an answer, so its attempt is lost (what it wrote comes back to
/// ocio's worktree of that attempt, as a local session's would stay) and the task runs again
/// on the box, and lands. No task worktree is left on the box.
async fn the_box_restarting_mid_task_loses_no_work(
    server: &mut TestServer,
    home: &Home,
    repo: &TestRepo,
) {
    let plan = one_task_plan(home, &repo.dir_str(), "restart", "restart", "far restart");
    let asked = server.model.requests().len();
    let run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    until_asked(server, asked + 2, "the second turn never asked");
    server.kill().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    server.restart().await;
    let (code, lines, err) = tokio::task::spawn_blocking(move || run.wait())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    assert_eq!(
        repo.git(&["show", "ocio/restart/integration:partial.txt"]),
        "before the restart\n"
    );
    let lost_session = lines.iter().find(|l| {
        l["type"] == "transition"
            && l["transition"]["entity"] == "session"
            && l["transition"]["to"] == "lost"
    });
    let lost = lost_session.is_some();
    assert!(lost, "the server's restart lost the attempt: {lines:?}");
    // Where what the lost attempt did went is said in its transcript (it was kept, and
    // nothing pointed to it: hand trial).
    if let Some(line) = lost_session {
        let id = line["transition"]["id"].as_str().unwrap();
        let logs = stdout(&home.ocio(&["logs", id]));
        assert!(
            logs.contains("what it did on its build box came back")
                && logs.contains("refs/ocio/returned/"),
            "{logs}"
        );
    }
    let work = server.own_dir().join(".ocio-work/work");
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(
        left.is_empty(),
        "the box keeps task worktrees: {left:?} (lost seen: {lost})"
    );
}

/// The box's server dies while its session works, and the operator cancels the task: the
/// cancel is settled while the box is still down (it waited ~75 s for the box to come back,
/// to bring the unfinished work back first), and the work is not lost: it stays in the task's
/// worktree on the box (which ocio's sweep keeps in the box's mirror once the task's local
/// worktree is gone).
async fn a_cancel_while_the_box_is_down_is_settled_at_once(
    server: &mut TestServer,
    home: &Home,
    repo: &TestRepo,
) {
    let plan = one_task_plan(home, &repo.dir_str(), "down", "down", "far down");
    let asked = server.model.requests().len();
    let mut run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    until_asked(server, asked + 2, "the second turn never asked");
    let session: ocio::domain::SessionId = serde_json::from_value(
        run.until("the task is dispatched", |l| l["type"] == "dispatched")["session"].clone(),
    )
    .unwrap();
    // The server has the session's diff a moment after the step that made it.
    let control = ocio::control::ControlClient::connect(&home.socket())
        .await
        .unwrap();
    let diff = diff_when(&control, session, 100, |diff| diff.contains("down.txt")).await;
    assert!(
        diff.contains("down.txt"),
        "the running session's diff: {diff:?}"
    );
    drop(control);
    server.kill().await;
    let cancelled_at = std::time::Instant::now();
    let answer = home.json(&["cancel", "down/down", "--json"]);
    assert_eq!(answer["source"], "engine", "{answer}");
    let (run, ended) = tokio::task::spawn_blocking(move || {
        let mut run = run;
        let ended = run.until("the task is cancelled", |l| {
            l["type"] == "transition"
                && l["transition"]["entity"] == "task"
                && l["transition"]["key"] == "down"
                && l["transition"]["from"] == "running"
        });
        (run, ended)
    })
    .await
    .unwrap();
    let took = cancelled_at.elapsed();
    assert_eq!(ended["transition"]["to"], "cancelled", "{ended}");
    // Not a speed target: the old code waited for the box (5 + 10 + 15 + 20 + 25 s) first.
    assert!(
        took < std::time::Duration::from_secs(40),
        "the cancel waited {took:?} for a box that is down"
    );
    let (_, lines, err) = tokio::task::spawn_blocking(move || run.wait())
        .await
        .unwrap();
    let finished = lines.iter().find(|l| l["type"] == "plan_finished");
    assert_eq!(
        finished.map(|l| l["ok"].clone()),
        Some(serde_json::json!(false)),
        "{lines:?}\n{err}"
    );
    server.restart().await;
    let work = server.own_dir().join(".ocio-work/work");
    let kept: Vec<PathBuf> = std::fs::read_dir(&work)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("down.txt"))
        .filter(|file| file.exists())
        .collect();
    assert_eq!(kept.len(), 1, "the work waits on the box: {kept:?}");
    assert_eq!(
        std::fs::read_to_string(&kept[0]).unwrap(),
        "written before the box went down\n"
    );
    // Its diff (the room's D) is what the box says it changed, saying that it stayed there,
    // not "no work recorded".
    let engine = home.engine(&[]);
    let control = ocio::control::ControlClient::connect(&home.socket())
        .await
        .unwrap();
    let diff = control.diff(session).await.unwrap();
    assert!(
        diff.contains("left no work on the task's branch; from its build box")
            && diff.contains("down.txt")
            && diff.contains("+written before the box went down"),
        "{diff:?}"
    );
    // The task's transcript says where its work is and why it did not come back.
    let notes: Vec<String> = control
        .transcript(session)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|entry| match entry.activity {
            ocio::engine::view::Activity::Note { text } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        notes
            .iter()
            .any(|note| note.contains("did not come back from its build box")
                && note.contains("refs/ocio/abandoned/")),
        "{notes:#?}"
    );
    drop(control);
    assert_eq!(engine.stop("TERM").0, Some(130));
}

/// A property over random trees: a tree carried to the box arrives as the same commit, and any
/// work done there (files added, changed, deleted, renamed, made executable, symlinks, binary
/// and large files) comes back byte for byte. Seeded, the seed printed on failure.
async fn fidelity_of_random_trees_there_and_back(server: &TestServer, near: &Path) {
    let seed = std::env::var("OCIO_FIDELITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    // Small parts, so large files travel cut in several both ways.
    let boxes = BoxWorkspace::new(server.client(), None, None).with_part_bytes(256 * 1024);
    for case in 0..8 {
        let local = near.join(format!("repos/case{case}/plan/task/1"));
        std::fs::create_dir_all(&local).unwrap();
        git(&local, &["init", "-q", "-b", "main"]);
        random_tree(&mut rng, &local, 12);
        git(&local, &["add", "-A"]);
        git(&local, &["commit", "-q", "-m", "base"]);
        let base = git(&local, &["rev-parse", "HEAD"]);
        let dir = boxes.prepare(&local).await.unwrap();
        let there = PathBuf::from(&dir);
        assert_eq!(
            git(&there, &["rev-parse", "HEAD"]),
            base,
            "seed {seed} case {case}"
        );
        assert_eq!(
            files_of(&there),
            files_of(&local),
            "seed {seed} case {case}: there"
        );
        change_randomly(&mut rng, &there);
        let expected = files_of(&there);
        let returned = boxes.bring_back(&local, &dir, true).await.unwrap();
        assert!(matches!(returned, Returned::Work { .. }), "seed {seed}");
        assert_eq!(files_of(&local), expected, "seed {seed} case {case}: back");
        assert!(!there.exists(), "the finished worktree goes from the box");
    }
    // A session that changed nothing brings nothing back (and no error).
    let local = near.join("repos/untouched/plan/task/1");
    std::fs::create_dir_all(&local).unwrap();
    git(&local, &["init", "-q", "-b", "main"]);
    random_tree(&mut rng, &local, 3);
    git(&local, &["add", "-A"]);
    git(&local, &["commit", "-q", "-m", "base"]);
    let dir = boxes.prepare(&local).await.unwrap();
    let returned = boxes.bring_back(&local, &dir, true).await.unwrap();
    assert_eq!(returned, Returned::Nothing);
    assert!(git(&local, &["status", "--porcelain"]).is_empty());
    // Brought back again (a restart after the box's worktree went): still nothing, no error.
    let again = boxes.bring_back(&local, &dir, true).await.unwrap();
    assert_eq!(again, Returned::Nothing);
    a_box_worktree_follows_its_start(&boxes, &local, &mut rng).await;
    a_worktree_left_on_the_box_goes_once_its_task_is_over(&boxes, near).await;
}

/// A repository with submodules: one initialized in ocio's repository is checked out on the
/// box at its recorded commit and the work done in it comes back (into its git directory here,
/// recorded as the task's gitlink); one not initialized is an empty directory there as here,
/// and files written into it are named, not lost. Git LFS files whose contents ocio's worktree
/// holds are refused the box; their pointers travel as they are.
async fn submodules_and_lfs_files_there_and_back(server: &TestServer, home: &Home, near: &Path) {
    let boxes = BoxWorkspace::new(server.client(), None, None);
    let repos = near.join("repos/subm");
    let files = [
        ("three", "three.txt"),
        ("one", "one.txt"),
        ("two", "two.txt"),
        ("main", "top.txt"),
    ];
    for (name, file) in files {
        let dir = repos.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        std::fs::write(dir.join(file), file).unwrap();
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", file]);
    }
    // `one` has a submodule of its own.
    let one = repos.join("one");
    let allowed = ["-c", "protocol.file.allow=always"];
    git(
        &one,
        &[
            &allowed[..],
            &["submodule", "add", "-q", "../three", "deep"],
        ]
        .concat(),
    );
    git(&one, &["commit", "-q", "-m", "deep"]);
    let main = repos.join("main");
    for module in ["one", "two"] {
        let url = format!("../{module}");
        let path = format!("lib/{module}");
        git(
            &main,
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "-q",
                &url,
                &path,
            ],
        );
    }
    git(
        &main,
        &[
            &allowed[..],
            &["submodule", "update", "-q", "--init", "--recursive"],
        ]
        .concat(),
    );
    git(&main, &["commit", "-q", "-m", "modules"]);
    git(&main, &["submodule", "deinit", "-q", "-f", "lib/two"]);
    std::fs::remove_dir_all(main.join(".git/modules/lib/two")).unwrap();
    a_task_on_the_box_commits_in_a_submodule(server, home, &main);
    let worktree = |task: &str| {
        let at = repos.join(format!("plan/{task}/1"));
        git(
            &main,
            &["worktree", "add", "-q", "--detach", at.to_str().unwrap()],
        );
        at
    };
    let local = worktree("edit");
    let dir = boxes.prepare(&local).await.unwrap();
    let there = PathBuf::from(&dir);
    assert_eq!(
        std::fs::read_to_string(there.join("lib/one/one.txt")).unwrap(),
        "one.txt",
        "the submodule is checked out on the box"
    );
    assert_eq!(
        std::fs::read_to_string(there.join("lib/one/deep/three.txt")).unwrap(),
        "three.txt",
        "and the submodule within it"
    );
    assert_eq!(std::fs::read_dir(there.join("lib/two")).unwrap().count(), 0);
    assert!(git(&there, &["status", "--porcelain"]).is_empty());
    assert!(git(&there.join("lib/one"), &["status", "--porcelain"]).is_empty());
    // Prepared again (a restart): kept as it is.
    assert_eq!(boxes.prepare(&local).await.unwrap(), dir);
    std::fs::write(there.join("lib/one/new.txt"), "new\n").unwrap();
    std::fs::write(there.join("lib/one/deep/inner.txt"), "inner\n").unwrap();
    std::fs::write(there.join("top.txt"), "changed\n").unwrap();
    let returned = boxes.bring_back(&local, &dir, true).await.unwrap();
    assert!(matches!(returned, Returned::Work { .. }), "{returned:?}");
    git(&local, &["add", "-A"]);
    let link = git(&local, &["ls-files", "-s", "lib/one"]);
    let commit = link.split(' ').nth(1).unwrap().to_string();
    let gitdir = main.join(".git/modules/lib/one");
    assert_eq!(git(&gitdir, &["show", &format!("{commit}:new.txt")]), "new");
    // The submodule's commit records the work in the one within it, which is here too.
    let deep = git(&gitdir, &["rev-parse", &format!("{commit}:deep")]);
    let deep_gitdir = gitdir.join("modules/deep");
    assert_eq!(
        git(&deep_gitdir, &["show", &format!("{deep}:inner.txt")]),
        "inner"
    );
    assert_eq!(
        std::fs::read_to_string(local.join("top.txt")).unwrap(),
        "changed\n"
    );
    assert!(!there.exists(), "the finished worktree goes from the box");
    // Files written into the submodule that was not checked out: named, and kept on the box.
    let local = worktree("stray");
    let dir = boxes.prepare(&local).await.unwrap();
    std::fs::write(PathBuf::from(&dir).join("lib/two/stray.txt"), "x\n").unwrap();
    let refused = boxes.bring_back(&local, &dir, true).await.unwrap_err();
    let said = refused.to_string();
    assert!(
        said.contains("`lib/two`") && said.contains("git submodule update --init"),
        "{said}"
    );
    assert!(PathBuf::from(&dir).join("lib/two/stray.txt").exists());
    boxes.discard(&local, &dir).await;
    // A plan with `worktrees = false` works in the checkout, whose submodule is checked out
    // here: it moves on to the work that came back, so `git add -A` records that.
    let dir = boxes.prepare(&main).await.unwrap();
    std::fs::write(PathBuf::from(&dir).join("lib/one/checkout.txt"), "c\n").unwrap();
    std::fs::write(PathBuf::from(&dir).join("lib/one/deep/checkout.txt"), "d\n").unwrap();
    boxes.bring_back(&main, &dir, true).await.unwrap();
    assert!(
        git(&main.join("lib/one"), &["status", "--porcelain"]).is_empty(),
        "the submodule within moved on with it"
    );
    assert_eq!(
        git(&main.join("lib/one/deep"), &["show", "HEAD:checkout.txt"]),
        "d"
    );
    git(&main, &["add", "-A"]);
    let link = git(&main, &["ls-files", "-s", "lib/one"]);
    let commit = link.split(' ').nth(1).unwrap().to_string();
    assert_eq!(git(&main.join("lib/one"), &["rev-parse", "HEAD"]), commit);
    assert_eq!(
        git(&main.join("lib/one"), &["show", "HEAD:checkout.txt"]),
        "c"
    );
    // Git LFS: contents here are refused the box; pointers travel as they are. The real
    // git-lfs where it is installed (CI installs it), else an imitation of it.
    let local = near.join("repos/lfs/plan/task/1");
    std::fs::create_dir_all(&local).unwrap();
    git(&local, &["init", "-q", "-b", "main"]);
    let pointer = match git_lfs_installed() {
        true => with_real_lfs(&local),
        false => {
            eprintln!("far_box: git-lfs is not installed: an imitation of it is used");
            with_imitated_lfs(&local)
        }
    };
    assert_eq!(
        std::fs::read_to_string(local.join("big.bin")).unwrap(),
        "hello"
    );
    let said = boxes.prepare(&local).await.unwrap_err().to_string();
    assert!(
        said.contains("big.bin") && said.contains("filter=lfs"),
        "{said}"
    );
    // No git-lfs here: the worktree holds the pointer, as the box will.
    git(&local, &["config", "--remove-section", "filter.lfs"]);
    std::fs::remove_file(local.join("big.bin")).unwrap();
    git(&local, &["checkout", "--", "big.bin"]);
    let dir = boxes.prepare(&local).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(PathBuf::from(&dir).join("big.bin")).unwrap(),
        pointer
    );
    assert_eq!(
        boxes.bring_back(&local, &dir, true).await.unwrap(),
        Returned::Nothing
    );
}

fn git_lfs_installed() -> bool {
    Command::new("git")
        .args(["lfs", "version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// `big.bin` committed through the real git-lfs (set up for this repository only): the
/// commit holds its pointer, returned, and the worktree its content.
fn with_real_lfs(local: &Path) -> String {
    git(local, &["lfs", "install", "--local"]);
    git(local, &["lfs", "track", "*.bin"]);
    std::fs::write(local.join("big.bin"), "hello").unwrap();
    git(local, &["add", "-A"]);
    git(local, &["commit", "-q", "-m", "lfs"]);
    format!("{}\n", git(local, &["cat-file", "blob", "HEAD:big.bin"]))
}

/// The same with an imitation of git-lfs for one object, as `git lfs install` sets it up:
/// checked out, the file holds its content; added, its pointer.
fn with_imitated_lfs(local: &Path) -> String {
    std::fs::write(local.join(".gitattributes"), "*.bin filter=lfs -text\n").unwrap();
    let pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 5\n";
    std::fs::write(local.join("big.bin"), pointer).unwrap();
    git(local, &["add", "-A"]);
    git(local, &["commit", "-q", "-m", "lfs"]);
    std::fs::write(local.join(".git/pointer"), pointer).unwrap();
    let clean = format!(
        "cat >/dev/null; cat {}",
        local.join(".git/pointer").display()
    );
    git(local, &["config", "filter.lfs.clean", &clean]);
    git(
        local,
        &[
            "config",
            "filter.lfs.smudge",
            "cat >/dev/null; printf hello",
        ],
    );
    std::fs::remove_file(local.join("big.bin")).unwrap();
    git(local, &["checkout", "--", "big.bin"]);
    pointer.to_string()
}

/// A plan's task on the box writes a file in a submodule: the plan's integration branch
/// records the submodule's new commit, which ocio's repository has in the submodule's git
/// directory, as after a local session's commit there.
fn a_task_on_the_box_commits_in_a_submodule(server: &TestServer, home: &Home, main: &Path) {
    home.write_config(&config(server));
    let plan = one_task_plan(
        home,
        main.to_str().unwrap(),
        "farsub",
        "sub",
        "far submodule",
    );
    let run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    let (code, out, err) = run.wait();
    assert_eq!(code, Some(0), "{out:?}\n{err}");
    let link = git(main, &["ls-tree", "ocio/farsub/integration", "lib/one"]);
    let commit = link.split_whitespace().nth(2).unwrap().to_string();
    assert_ne!(
        link,
        git(main, &["ls-tree", "HEAD", "lib/one"]),
        "the gitlink moved"
    );
    let gitdir = main.join(".git/modules/lib/one");
    assert_eq!(
        git(&gitdir, &["show", &format!("{commit}:agent.txt")]),
        "agent"
    );
}

/// A box worktree whose task ended while it could not be removed (its box unreachable at the
/// end) stays behind until ocio prepares the next task on that box: then it goes, since ocio's
/// own worktree of it is gone; one whose local worktree is still there stays.
async fn a_worktree_left_on_the_box_goes_once_its_task_is_over(boxes: &BoxWorkspace, near: &Path) {
    let mut made = Vec::new();
    for task in ["left", "kept", "next"] {
        let local = near.join(format!("repos/sweep/plan/{task}/1"));
        std::fs::create_dir_all(&local).unwrap();
        git(&local, &["init", "-q", "-b", "main"]);
        std::fs::write(local.join("f.txt"), task).unwrap();
        git(&local, &["add", "-A"]);
        git(&local, &["commit", "-q", "-m", "base"]);
        made.push(local);
    }
    let left = PathBuf::from(boxes.prepare(&made[0]).await.unwrap());
    let kept = PathBuf::from(boxes.prepare(&made[1]).await.unwrap());
    // The task is over and ocio removed its worktree, but the box's was never removed.
    std::fs::remove_dir_all(&made[0]).unwrap();
    assert!(left.exists());
    let next = boxes.prepare(&made[2]).await.unwrap();
    assert!(!left.exists(), "the worktree left behind went");
    assert!(
        kept.exists(),
        "a worktree whose task may still need it stays"
    );
    boxes
        .bring_back(&made[1], &kept.to_string_lossy(), true)
        .await
        .unwrap();
    boxes.bring_back(&made[2], &next, true).await.unwrap();
}

/// A commit the mirror has only as an ancestor of another is not sent again (no empty bundle);
/// a box worktree left from an earlier start is made again from the new one.
async fn a_box_worktree_follows_its_start(
    boxes: &BoxWorkspace,
    local: &Path,
    rng: &mut fastrand::Rng,
) {
    // Never sent alone: the mirror gets it only as the newer one's parent.
    random_tree(rng, local, 2);
    git(local, &["add", "-A"]);
    git(local, &["commit", "-q", "-m", "older"]);
    let older = git(local, &["rev-parse", "HEAD"]);
    random_tree(rng, local, 2);
    git(local, &["add", "-A"]);
    git(local, &["commit", "-q", "-m", "newer"]);
    let newer = git(local, &["rev-parse", "HEAD"]);
    let dir = boxes.prepare(local).await.unwrap();
    boxes.bring_back(local, &dir, true).await.unwrap();
    // An attempt from the older commit, after the mirror got the newer one.
    let from_older = local.parent().unwrap().join("2");
    git(
        local,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            from_older.to_str().unwrap(),
            &older,
        ],
    );
    let dir = boxes.prepare(&from_older).await.unwrap();
    assert_eq!(git(Path::new(&dir), &["rev-parse", "HEAD"]), older);
    // Its start moves on (an attempt made again) while the box still has its worktree.
    git(&from_older, &["checkout", "-q", "--detach", &newer]);
    let again = boxes.prepare(&from_older).await.unwrap();
    assert_eq!(again, dir);
    assert_eq!(git(Path::new(&dir), &["rev-parse", "HEAD"]), newer);
    boxes.bring_back(&from_older, &dir, true).await.unwrap();
}

/// A plan file named `name` with one task `id` asking `prompt`, on the repository at `repo`.
fn one_task_plan(home: &Home, repo: &str, name: &str, id: &str, prompt: &str) -> PathBuf {
    home.write_plan(
        &format!("{name}.toml"),
        &format!("name = {name:?}\nrepo = {repo:?}\n[[tasks]]\nid = {id:?}\nprompt = {prompt:?}\n"),
    )
}

/// Waits (up to a minute) until the far server's model has been asked `calls` times in all.
fn until_asked(server: &TestServer, calls: usize, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.model.requests().len() < calls {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every file under `dir` but `.git`: its bytes (a symlink's target) and whether it is
/// executable or a link.
fn files_of(dir: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, (String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == ".git" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            files.insert(
                rel,
                (
                    "link".into(),
                    target.to_string_lossy().into_owned().into_bytes(),
                ),
            );
        } else if meta.is_dir() {
            walk(root, &path, files);
        } else {
            let kind = if meta.permissions().mode() & 0o111 != 0 {
                "exec"
            } else {
                "file"
            };
            files.insert(rel, (kind.into(), std::fs::read(&path).unwrap()));
        }
    }
}

fn random_name(rng: &mut fastrand::Rng) -> String {
    let dirs = ["", "src/", "src/deep/", "docs/", "a b/"];
    let names = ["x", "y.txt", "data.bin", "run.sh", "ünï.md", "z"];
    format!(
        "{}{}{}",
        dirs[rng.usize(..dirs.len())],
        names[rng.usize(..names.len())],
        rng.u16(..1000)
    )
}

fn random_bytes(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(..10) {
        0 => Vec::new(),
        // A large binary file now and then.
        1 => (0..rng.usize(1_000_000..3_000_000))
            .map(|_| rng.u8(..))
            .collect(),
        2..=4 => (0..rng.usize(1..5000)).map(|_| rng.u8(..)).collect(),
        // Text, sometimes not UTF-8, sometimes without a final newline.
        _ => {
            let mut text: Vec<u8> = (0..rng.usize(1..400))
                .map(|_| b"abc \n\t\xe9"[rng.usize(..7)])
                .collect();
            if rng.bool() {
                text.push(b'\n');
            }
            text
        }
    }
}

fn write_random(rng: &mut fastrand::Rng, dir: &Path, rel: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    if rng.u8(..8) == 0 {
        std::os::unix::fs::symlink(format!("target-{}", rng.u16(..100)), &path).unwrap();
        return;
    }
    std::fs::write(&path, random_bytes(rng)).unwrap();
    if rng.u8(..4) == 0 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn random_tree(rng: &mut fastrand::Rng, dir: &Path, files: usize) {
    for _ in 0..files {
        let rel = random_name(rng);
        write_random(rng, dir, &rel);
    }
}

/// What a session might do: change, delete, rename, chmod, add.
fn change_randomly(rng: &mut fastrand::Rng, dir: &Path) {
    let existing: Vec<String> = files_of(dir).into_keys().collect();
    for rel in existing {
        let path = dir.join(&rel);
        match rng.u8(..6) {
            0 => write_random(rng, dir, &rel),
            1 => std::fs::remove_file(&path).unwrap(),
            2 => {
                let to = dir.join(random_name(rng));
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                if !to.exists() {
                    std::fs::rename(&path, &to).unwrap();
                }
            }
            3 if !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink() =>
            {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() ^ 0o111;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            _ => {}
        }
    }
    for _ in 0..rng.usize(1..4) {
        let rel = random_name(rng);
        write_random(rng, dir, &rel);
    }
}
