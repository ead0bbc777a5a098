//! The intelligence building blocks against a real `opencode serve` (installed from npm by the
//! harness) and the project's scripted model: the planner's structured answer becoming a
//! checked plan, and a coding session working in its own git worktree whose work is committed
//! and merged into the plan's integration branch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use ocio::domain::ModelRef;
use ocio::opencode::planner::{self, PlannerError};
use ocio::opencode::wire::{CreateSession, ModelSelector, PromptPart, PromptRequest};
use ocio::plan::planner::{AnswerError, PlannerRequest};
use ocio::scripted::{self, Rule, STRUCTURED_OUTPUT_TOOL, Script, Turn};
use ocio::workspace::{MergeOutcome, OnConflict, Workspace};
use serde_json::json;
use support::{TestRepo, TestServer};

fn model() -> ModelRef {
    ModelRef {
        provider: scripted::PROVIDER_ID.into(),
        model: scripted::MODEL_ID.into(),
    }
}

fn capabilities() -> BTreeSet<String> {
    ["code", "plan"].map(String::from).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_answers_through_structured_output_and_its_plan_is_checked() {
    let repo = TestRepo::new();
    let plan = json!({"tasks": [
        {"id": "design", "title": "Design the API", "prompt": "Design cursor pagination for GET /users.",
         "needs": [], "capabilities": ["plan"], "files": []},
        {"id": "impl", "prompt": "Implement this design: {{tasks.design.summary}}",
         "needs": ["design"], "capabilities": ["code"], "files": ["src/users.rs"]}
    ]});
    let cycle = json!({"tasks": [
        {"id": "a", "prompt": "A", "needs": ["b"], "capabilities": ["code"], "files": []},
        {"id": "b", "prompt": "B", "needs": ["a"], "capabilities": ["code"], "files": []}
    ]});
    let script = Script::new()
        .rule(Rule::when("Goal: Add pagination to /users").turn(Turn::structured(plan)))
        .rule(Rule::when("Goal: Make a knot").turn(Turn::structured(cycle)))
        .rule(Rule::when("Goal: Just talk").turn(Turn::text("I would rather chat.")));
    let server = TestServer::start(script).await;
    let client = server.client();
    let capabilities = capabilities();
    let model = model();
    let path = repo.path();
    let request = |goal: &'static str| PlannerRequest {
        goal,
        repo: &path,
        name: None,
        capabilities: &capabilities,
        model: Some(&model),
        opencode_agent: None,
    };

    let planned = planner::plan_with(&client, &request("Add pagination to /users"))
        .await
        .unwrap();
    assert_eq!(planned.plan.name, "add-pagination-to-users");
    assert_eq!(planned.plan.repo_path(), repo.path());
    let ids: Vec<&str> = planned.plan.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["design", "impl"]);
    assert_eq!(planned.plan.tasks[1].needs, ["design"]);
    assert!(planned.toml.contains("[[tasks]]"));
    let session = client
        .session(&repo.dir_str(), &planned.session)
        .await
        .unwrap();
    assert_eq!(session.title, "plan: Add pagination to /users");
    let asked = server
        .model
        .requests()
        .into_iter()
        .find(|r| r.session_id.as_deref() == Some(planned.session.as_str()) && r.side_job.is_none())
        .unwrap();
    assert!(
        asked
            .tools
            .iter()
            .any(|tool| tool == STRUCTURED_OUTPUT_TOOL),
        "{:?}",
        asked.tools
    );

    let err = planner::plan_with(&client, &request("Make a knot"))
        .await
        .unwrap_err();
    let PlannerError::Answer(AnswerError::Invalid { errors, .. }) = &err else {
        panic!("{err}")
    };
    assert!(
        errors.to_string().contains("dependency cycle: a -> b -> a"),
        "{errors}"
    );

    let err = planner::plan_with(&client, &request("Just talk"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PlannerError::Model { .. } | PlannerError::NoAnswer { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("tool calls"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_works_in_its_own_worktree_and_its_work_is_merged() {
    let repo = TestRepo::new();
    let roots = tempfile::tempdir().unwrap();
    let script = Script::new().rule(
        Rule::when("write the users module")
            .turn(Turn::write("src/users.rs", "pub fn users() {}\n"))
            .turn(Turn::text("Wrote src/users.rs")),
    );
    let server = TestServer::start(script).await;
    let client = server.client();
    let workspace = Workspace::open(&repo.path(), roots.path()).unwrap();
    let (task, integration) = tokio::task::spawn_blocking({
        let workspace = workspace.clone();
        move || {
            let integration = workspace.ensure_integration("demo", None).unwrap();
            (
                workspace.create_worktree("demo", "users", 1).unwrap(),
                integration,
            )
        }
    })
    .await
    .unwrap();

    let dir = task.path.to_string_lossy().into_owned();
    let session = client
        .create_session(
            &dir,
            &CreateSession {
                title: Some("demo/users #1".into()),
                ..CreateSession::default()
            },
        )
        .await
        .unwrap();
    let prompt = PromptRequest {
        model: Some(ModelSelector {
            provider_id: scripted::PROVIDER_ID.into(),
            model_id: scripted::MODEL_ID.into(),
        }),
        parts: vec![PromptPart::Text {
            text: "please write the users module".into(),
        }],
        ..PromptRequest::default()
    };
    client.prompt(&dir, &session.id, &prompt).await.unwrap();

    let merged = tokio::task::spawn_blocking(move || {
        assert_eq!(
            workspace.changed_files(&task.path).unwrap(),
            ["src/users.rs"]
        );
        workspace
            .commit_all(&task.path, "ocio: task users of plan demo")
            .unwrap()
            .unwrap();
        workspace.merge("demo", "users", OnConflict::Abort).unwrap()
    })
    .await
    .unwrap();
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
    assert_eq!(
        std::fs::read_to_string(integration.path.join("src/users.rs")).unwrap(),
        "pub fn users() {}\n"
    );
    assert_eq!(
        repo.read("src/users.rs"),
        None,
        "the user's checkout is untouched"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    server.stop().await;
}
