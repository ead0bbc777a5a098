//! Worktrees that start ready: the plan's `copy` paths and `setup` commands before each
//! session, a failing setup failing the attempt with its output, and the task's commit made
//! as the repository's author with a message from the task and the agent's answer.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_and_copy_ready_each_worktree_and_the_commit_is_the_authors() {
    let (repo, dir, engine, _store) = setup(2, 100).await;
    std::fs::write(repo.path().join(".gitignore"), ".env\nbuild.out\n").unwrap();
    repo.git(&["add", ".gitignore"]);
    repo.git(&["commit", "-q", "-m", "ignore"]);
    std::fs::write(repo.path().join(".env"), "TOKEN=abc\n").unwrap();
    let log = dir.path().join("setup.log");
    let body = format!(
        r#"copy = [".env"]
setup = ["echo built > build.out", 'echo "$OCIO_TASK $(cat .env) $(cat build.out)" >> {}']
[[tasks]]
id = "notes"
title = "Write the notes"
prompt = 'SIM-WRITE notes.txt hi\n'
"#,
        log.display()
    );
    let mut events = engine.subscribe();
    engine
        .submit_plan(plan(dir.path(), &repo, "ready", &body))
        .await
        .unwrap();
    let (seen, finished) = support::until_finished(&mut events, PATIENCE).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?} after {seen:#?}"
    );
    // Setup ran in the worktree after the copy, with the task named.
    let ran = std::fs::read_to_string(&log).unwrap();
    assert_eq!(ran, "notes TOKEN=abc built\n");
    // The task's commit: the repository's author, the title, the answer, the trailers.
    let branch = integration_branch(&seen);
    let work = format!("{branch}^2");
    let author = repo.git(&["log", "-1", "--format=%an <%ae>|%cn", &work]);
    assert_eq!(author.trim(), "ocio test <test@ocio.invalid>|ocio test");
    let message = repo.git(&["log", "-1", "--format=%B", &work]);
    assert!(
        message.starts_with("Write the notes\n\nsimulated result of notes"),
        "{message}"
    );
    for trailer in [
        "Ocio-Task: ready/notes (attempt 1)",
        "Ocio-Agent: sim",
        "Co-authored-by: ocio <ocio@localhost>",
    ] {
        assert!(message.contains(trailer), "{trailer:?} in {message}");
    }
    let files = repo.git(&["show", "--name-only", "--format=", &work]);
    assert_eq!(
        files.trim(),
        "notes.txt",
        "nothing copied or built was committed"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_setup_fails_the_attempt_with_its_output_and_a_bad_copy_says_why() {
    let (repo, dir, engine, _store) = setup(2, 100).await;
    let mut events = engine.subscribe();
    let body = r#"setup = ["echo resolving; echo 'no such package: left-pad' >&2; exit 7"]
[[tasks]]
id = "build"
prompt = 'SIM-WRITE a.txt a\n'
"#;
    engine
        .submit_plan(plan(dir.path(), &repo, "broken", body))
        .await
        .unwrap();
    let (seen, _) = support::until_finished(&mut events, PATIENCE).await;
    let cause = cause_of(&seen, "build", TaskStatus::Failed).expect("the task failed");
    assert!(
        cause.contains("setup `echo resolving")
            && cause.contains(
                "failed (exit 7); its output ends:\nresolving\nno such package: left-pad"
            ),
        "{cause}"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, EngineEvent::Merged { .. })),
        "nothing merged"
    );
    // A `copy` of a file git does not ignore would be committed with the work: refused.
    std::fs::write(repo.path().join("local.cfg"), "x\n").unwrap();
    let body = "copy = [\"local.cfg\"]\n[[tasks]]\nid = \"t\"\nprompt = 'SIM-WRITE b.txt b\\n'\n";
    engine
        .submit_plan(plan(dir.path(), &repo, "copying", body))
        .await
        .unwrap();
    let (seen, _) = support::until_finished(&mut events, PATIENCE).await;
    let cause = cause_of(&seen, "t", TaskStatus::Failed).expect("the task failed");
    assert!(
        cause.contains("local.cfg, which git does not ignore"),
        "{cause}"
    );
    // A setup that changes tracked files would slip them into the task's commit: refused.
    let body = "setup = [\"echo more >> README.md\"]\n[[tasks]]\nid = \"u\"\nprompt = 'SIM-WRITE c.txt c\\n'\n";
    engine
        .submit_plan(plan(dir.path(), &repo, "dirtying", body))
        .await
        .unwrap();
    let (seen, _) = support::until_finished(&mut events, PATIENCE).await;
    let cause = cause_of(&seen, "u", TaskStatus::Failed).expect("the task failed");
    assert!(
        cause.contains(
            "setup changed tracked files, which would be committed with the task's work: README.md"
        ),
        "{cause}"
    );
    engine.shutdown().await.unwrap();
}
