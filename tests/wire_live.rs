//! The engine's worktree plans against a real `opencode serve` (installed from npm by the
//! harness) and the project's scripted model: two sessions write one file in worktrees of their
//! own, the second merge conflicts, a resolver session edits the conflicted file in the
//! integration worktree and the merge is concluded; the dependent task's prompt, as the model
//! received it, carries the context its upstream tasks left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ocio::engine::EngineApi;
use std::time::Duration;

use ocio::domain::MergeState;
use ocio::domain::task::ConflictPolicy;
use ocio::domain::{SessionKind, SessionStatus};
use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
use ocio::plan::PlanFile;
use ocio::scripted::{Rule, Script, Turn};
use ocio::store::{Store, StoreOptions, query};
use support::{TestRepo, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_conflict_is_resolved_by_a_resolver_session_and_context_reaches_the_dependent() {
    let repo = TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let script = Script::new()
        // The fix session's prompt quotes its task's prompt too.
        .rule(
            Rule::when("Since the merge, the plan's check")
                .turn(Turn::write("version.txt", "0.2\n"))
                .turn(Turn::text("Set the version the check wants.")),
        )
        .rule(
            Rule::when("Write VERSION")
                .turn(Turn::write("version.txt", "0.1\n"))
                .turn(Turn::text("Wrote the version.")),
        )
        // First: the resolver's prompt also quotes its task's prompt.
        .rule(
            Rule::when("You are resolving a git merge conflict")
                .turn(Turn::read("shared.txt"))
                .turn(Turn::write("shared.txt", "one\ntwo\n"))
                .turn(Turn::text("Kept both lines.")),
        )
        .rule(
            Rule::when("Write ONE")
                .turn(Turn::write("shared.txt", "one\n"))
                .turn(Turn::text("Wrote one.\nOCIO-PUBLISH who=one")),
        )
        .rule(
            Rule::when("Write TWO")
                .turn(Turn::write("shared.txt", "two\n"))
                .turn(Turn::text("Wrote two.")),
        )
        .rule(Rule::when("Summarize").turn(Turn::text("All done.")));
    let server = TestServer::start(script).await;
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        EngineOptions::default(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let path = state.path().join("plan.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "live"
repo = {:?}
conflicts = "resolver"
[[tasks]]
id = "one"
prompt = "Write ONE into shared.txt"
[[tasks]]
id = "two"
prompt = "Write TWO into shared.txt"
[[tasks]]
id = "sum"
needs = ["one", "two"]
prompt = "Summarize what was written"
"#,
            repo.dir_str()
        ),
    )
    .unwrap();
    let plan_id = engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let finished = loop {
        let event = tokio::time::timeout(Duration::from_secs(120), events.recv())
            .await
            .expect("plan never finished")
            .unwrap();
        if matches!(event, EngineEvent::PlanFinished { .. }) {
            break event;
        }
        seen.push(event);
    };
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 3,
                ..
            }
        ),
        "{finished:?}\n{seen:#?}"
    );
    let conflict = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::MergeConflict { files, policy, .. } => Some((files.clone(), *policy)),
            _ => None,
        })
        .expect("the second merge conflicted");
    assert_eq!(
        conflict,
        (vec!["shared.txt".to_string()], ConflictPolicy::Resolver)
    );
    let branch = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::IntegrationReady { branch, .. } => Some(branch.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        repo.git(&["show", &format!("{branch}:shared.txt")]),
        "one\ntwo\n",
        "the resolver's edit was concluded into the integration branch"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the checkout is untouched"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    let resolver = sessions
        .iter()
        .find(|s| s.kind == SessionKind::Resolve)
        .expect("a resolver session");
    assert_eq!(resolver.status, SessionStatus::Completed);
    assert!(
        resolver
            .remote
            .as_ref()
            .is_some_and(|r| r.directory.ends_with("integration")),
        "{resolver:?}"
    );

    // The dependent's prompt, as the model got it, has what its upstream tasks left.
    let asked = server
        .model
        .requests()
        .into_iter()
        .filter_map(|r| r.last_user_text)
        .find(|text| text.starts_with("Summarize"))
        .expect("the dependent asked the model");
    for wanted in [
        "## Context from upstream tasks",
        "### Task `one`",
        "- who = one",
        "Files changed (1): shared.txt",
        "Wrote two.",
    ] {
        assert!(asked.contains(wanted), "{wanted:?} missing in:\n{asked}");
    }
    let context = engine.context(plan_id).await.unwrap();
    assert_eq!(context.len(), 3);
    for c in &context {
        let wanted_merged = c.key != "sum";
        assert_eq!(
            matches!(c.merge, MergeState::Merged { .. }),
            wanted_merged,
            "the writers merged; the summary changed nothing: {context:#?}"
        );
    }
    let sum = context.iter().find(|c| c.key == "sum").expect("sum task");
    assert_eq!(sum.merge, MergeState::Unchanged, "{sum:?}");
    a_failing_check_is_fixed_by_a_real_fix_session(&engine, &store, &repo, state.path()).await;
    engine.shutdown().await.unwrap();
    store.close().await;
    server.stop().await;
}

/// On the same server: a task's merge fails the plan's check, a fix session (the scripted
/// model's fix) works in the integration worktree, and the check passes on its commit.
async fn a_failing_check_is_fixed_by_a_real_fix_session(
    engine: &EngineHandle,
    store: &ocio::store::StoreHandle,
    repo: &TestRepo,
    dir: &std::path::Path,
) {
    let mut events = engine.subscribe();
    let path = dir.join("gated.toml");
    let check = "grep -qx 0.2 version.txt || { echo 'version.txt must say 0.2'; exit 1; }";
    std::fs::write(
        &path,
        format!(
            "name = \"gated\"\nrepo = {:?}\ncheck = {check:?}\non_check_failure = \"fix\"\n[[tasks]]\nid = \"version\"\nprompt = \"Write VERSION into version.txt\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, Duration::from_secs(120)).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}\n{seen:#?}"
    );
    let ended: Vec<(bool, Option<u32>)> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::CheckEnded { passed, fix, .. } => Some((*passed, *fix)),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [(false, None), (true, Some(1))]);
    let branch = support::integration_branch(&seen);
    assert_eq!(
        repo.git(&["show", &format!("{branch}:version.txt")]),
        "0.2\n"
    );
    let sessions = store.read(query::sessions).await.unwrap();
    let fix = sessions
        .iter()
        .find(|s| s.kind == SessionKind::Fix)
        .expect("a fix session");
    assert_eq!(fix.status, SessionStatus::Completed);
    assert!(
        fix.remote
            .as_ref()
            .is_some_and(|r| r.directory.ends_with("integration")),
        "{fix:?}"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the checkout is untouched"
    );
}

/// Two real sessions write one file at the same time under `policy`; the events until the plan
/// ends, the repository and the engine's last snapshot.
async fn race_live(
    policy: &str,
) -> (
    Vec<EngineEvent>,
    EngineEvent,
    TestRepo,
    ocio::engine::Snapshot,
) {
    let repo = TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    // Each session writes, then takes a moment to answer: both hold the file at once.
    let script = Script::new()
        .rule(
            Rule::when("Write ONE")
                .turn(Turn::write("shared.txt", "one\n"))
                .turn(Turn::text("Wrote one.").delay_ms(1500)),
        )
        .rule(
            Rule::when("Write TWO")
                .turn(Turn::write("shared.txt", "two\n"))
                .turn(Turn::text("Wrote two.").delay_ms(1500)),
        );
    let server = TestServer::start(script).await;
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        EngineOptions::default(),
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let path = state.path().join("plan.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"race\"\nrepo = {:?}\nconflicts = \"{policy}\"\n[[tasks]]\nid = \"one\"\nprompt = \"Write ONE into shared.txt\"\n[[tasks]]\nid = \"two\"\nprompt = \"Write TWO into shared.txt\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    engine
        .submit_plan(PlanFile::load(&path).unwrap())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let finished = loop {
        let event = tokio::time::timeout(Duration::from_secs(120), events.recv())
            .await
            .expect("plan never finished")
            .unwrap();
        if matches!(event, EngineEvent::PlanFinished { .. }) {
            break event;
        }
        seen.push(event);
    };
    let snapshot = engine.snapshot().await.unwrap();
    engine.shutdown().await.unwrap();
    store.close().await;
    server.stop().await;
    (seen, finished, repo, snapshot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sessions_on_one_file_overlap_live_and_retry_and_manual_end_as_they_should() {
    // retry: the overlap is reported while both run; the loser runs again on top of the
    // winner's merge and is merged too.
    let (seen, finished, repo, _) = race_live("retry").await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, EngineEvent::Overlap { path, .. } if path == "shared.txt")),
        "no live overlap: {seen:#?}"
    );
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 2,
                ..
            }
        ),
        "{finished:?}"
    );
    let (loser, policy) = seen
        .iter()
        .find_map(|e| match e {
            EngineEvent::MergeConflict { key, policy, .. } => Some((key.clone(), *policy)),
            _ => None,
        })
        .expect("the second merge conflicted");
    assert_eq!(policy, ConflictPolicy::Retry);
    let branch = support::integration_branch(&seen);
    assert_eq!(
        repo.git(&["show", &format!("{branch}:shared.txt")]),
        format!("{loser}\n"),
        "the rerun of {loser} landed on top"
    );
    let merges = seen
        .iter()
        .filter(|e| matches!(e, EngineEvent::Merged { .. }))
        .count();
    assert_eq!(merges, 2, "{seen:#?}");

    // manual: the loser is parked with the file named; the branch keeps the winner's line.
    let (seen, finished, repo, snapshot) = race_live("manual").await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: false,
                done: 1,
                failed: 1,
                ..
            }
        ),
        "{finished:?}"
    );
    let parked = snapshot
        .conflicts
        .iter()
        .find(|c| c.files == ["shared.txt"])
        .expect("the conflicts queue lists the parked task");
    assert_eq!(parked.state, ocio::engine::ConflictState::Parked);
    let winner = if parked.key == "one" { "two" } else { "one" };
    assert_eq!(
        repo.git(&[
            "show",
            &format!("{}:shared.txt", support::integration_branch(&seen))
        ]),
        format!("{winner}\n")
    );
}
