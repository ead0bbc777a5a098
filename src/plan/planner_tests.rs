//! Tests of the planner's schema and prompt, and of turning structured answers (good
//! and bad) into checked plans. The planner against a real OpenCode server: `tests/intel_live.rs`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn offered() -> BTreeSet<String> {
    ["code", "plan", "review"].map(String::from).into()
}

fn request<'a>(goal: &'a str, capabilities: &'a BTreeSet<String>) -> PlannerRequest<'a> {
    PlannerRequest {
        goal,
        repo: Path::new("/src/app"),
        name: None,
        capabilities,
        model: None,
        opencode_agent: Some("plan"),
    }
}

fn good_answer() -> Value {
    json!({
        "tasks": [
            {"id": "design", "title": "Design", "prompt": "Design cursor pagination.",
             "needs": [], "capabilities": ["plan"], "files": []},
            {"id": "impl", "prompt": "Implement: {{tasks.design.summary}}",
             "needs": ["design"], "capabilities": ["code"], "files": ["src/users.rs"]},
            {"id": "review", "title": "", "prompt": "Review {{tasks.impl.summary}}",
             "needs": ["impl"], "capabilities": ["review"], "files": []}
        ]
    })
}

fn invalid(answer: Value) -> String {
    let capabilities = offered();
    match plan_from_answer(&answer, &request("Add pagination", &capabilities)) {
        Err(err @ AnswerError::Invalid { .. }) => err.to_string(),
        other => panic!("expected an invalid plan, got {other:?}"),
    }
}

#[test]
fn the_schema_asks_for_tasks_with_offered_capabilities_only() {
    let schema = schema(&offered());
    assert_eq!(schema["required"], json!(["tasks"]));
    let task = &schema["properties"]["tasks"]["items"];
    assert_eq!(
        task["required"],
        json!(["id", "prompt", "needs", "capabilities", "files"])
    );
    assert_eq!(task["additionalProperties"], json!(false));
    assert_eq!(
        task["properties"]["capabilities"]["items"]["enum"],
        json!(["code", "plan", "review"])
    );
    assert_eq!(
        task["properties"]["id"]["pattern"],
        json!("^[A-Za-z0-9._-]+$")
    );
    let none = super::schema(&BTreeSet::new());
    let capabilities = &none["properties"]["tasks"]["items"]["properties"]["capabilities"];
    assert_eq!(capabilities["maxItems"], json!(0));
}

#[test]
fn a_good_answer_becomes_a_plan() {
    let capabilities = offered();
    let (plan, toml) = plan_from_answer(
        &good_answer(),
        &request("Add pagination to /users", &capabilities),
    )
    .unwrap();
    assert_eq!(plan.name, "add-pagination-to-users");
    assert_eq!(plan.repo_path(), Path::new("/src/app"));
    let ids: Vec<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["design", "impl", "review"]);
    assert_eq!(plan.tasks[0].title, "Design");
    assert_eq!(
        plan.tasks[2].title, "review",
        "an empty title falls back to the id"
    );
    assert_eq!(plan.tasks[1].needs, ["design"]);
    assert_eq!(plan.tasks[1].files, ["src/users.rs".to_string()].into());
    assert_eq!(plan.tasks[2].capabilities, ["review".to_string()].into());
    assert_eq!(
        PlanFile::parse(&toml, Path::new("saved.toml"))
            .unwrap()
            .tasks,
        plan.tasks
    );
    let mut named = request("x", &capabilities);
    named.name = Some("my-plan");
    assert_eq!(
        plan_from_answer(&good_answer(), &named).unwrap().0.name,
        "my-plan"
    );
}

#[test]
fn a_cycle_is_reported_naming_its_tasks() {
    let mut answer = good_answer();
    answer["tasks"][0]["needs"] = json!(["review"]);
    let text = invalid(answer);
    assert!(
        text.contains("dependency cycle: design -> review -> impl -> design"),
        "{text}"
    );
    assert!(text.contains("task \"design\""), "{text}");
}

#[test]
fn unknown_dependencies_duplicate_ids_and_bad_ids_are_reported() {
    let mut answer = good_answer();
    answer["tasks"][1]["needs"] = json!(["desgin"]);
    let text = invalid(answer);
    assert!(
        text.contains("task \"impl\": needs unknown task \"desgin\""),
        "{text}"
    );
    assert!(text.contains("did you mean \"design\"?"), "{text}");

    let mut answer = good_answer();
    answer["tasks"][2]["id"] = json!("impl");
    let text = invalid(answer);
    assert!(text.contains("duplicate task id \"impl\""), "{text}");

    let mut answer = good_answer();
    answer["tasks"][0]["id"] = json!("the design");
    assert!(invalid(answer).contains("has characters other than"));
}

#[test]
fn capabilities_no_agent_offers_are_reported_naming_the_task() {
    let mut answer = good_answer();
    answer["tasks"][1]["capabilities"] = json!(["code", "gpu"]);
    let text = invalid(answer);
    assert!(
        text.contains("task \"impl\": needs capability \"gpu\", which no agent offers"),
        "{text}"
    );
    assert!(
        text.contains("capabilities offered: code, plan, review"),
        "{text}"
    );
}

#[test]
fn prompt_references_must_reach_upstream_tasks() {
    let mut answer = good_answer();
    answer["tasks"][0]["prompt"] = json!("Use {{tasks.review.summary}}");
    answer["tasks"][0]["needs"] = json!([]);
    let text = invalid(answer);
    assert!(
        text.contains("which this task does not depend on"),
        "{text}"
    );
}

#[test]
fn the_invalid_plan_text_comes_with_the_errors() {
    let mut answer = good_answer();
    answer["tasks"][1]["needs"] = json!(["nowhere"]);
    let capabilities = offered();
    let err = plan_from_answer(&answer, &request("g", &capabilities)).unwrap_err();
    let AnswerError::Invalid { errors, toml } = err else {
        panic!("{err}")
    };
    let error = (&errors)
        .into_iter()
        .find(|error| error.message.contains("nowhere"))
        .unwrap();
    assert_eq!(error.path, Path::new("planner answer"));
    let line = toml.lines().nth(error.line - 1).unwrap();
    assert!(
        line.contains("nowhere"),
        "the error's line is in the text: {line}"
    );
}

#[test]
fn answers_of_the_wrong_shape_are_refused() {
    let capabilities = offered();
    let request = request("g", &capabilities);
    for (answer, wanted) in [
        (json!({"steps": []}), "unknown field `steps`"),
        (json!({"tasks": [{"id": "a"}]}), "missing field `prompt`"),
        (json!({"tasks": "a, b"}), "invalid type"),
        (json!([1, 2]), "invalid type"),
    ] {
        let err = plan_from_answer(&answer, &request).unwrap_err();
        assert!(matches!(err, AnswerError::Shape { .. }), "{err}");
        assert!(err.to_string().contains(wanted), "{err}");
    }
    let err = plan_from_answer(&json!({"tasks": []}), &request).unwrap_err();
    assert!(err.to_string().contains("the plan has no tasks"), "{err}");
}
