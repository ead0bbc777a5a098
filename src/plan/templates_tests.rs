//! Tests of the built-in templates: the plans they make, that they validate and build like any
//! plan file, and the errors for unknown names and empty goals.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::*;
use crate::domain::PlanId;
use crate::plan::PlanFile;

const GOAL: &str = "Add pagination to /users";

/// The plan file template `name` makes for `goal`: its draft checked like any plan file.
fn template(name: &str, goal: &str, repo: &Path) -> Result<PlanFile, TemplateError> {
    let (_, draft) = draft(name, goal, repo)?;
    let made = draft.to_plan_file(Path::new("template"));
    Ok(made
        .unwrap_or_else(|errors| panic!("{name} made an invalid plan:\n{errors}"))
        .0)
}

fn ids(plan: &PlanFile) -> Vec<&str> {
    plan.tasks.iter().map(|task| task.id.as_str()).collect()
}

#[test]
fn feature_is_analyze_implement_test_review() {
    let plan = template("feature", GOAL, Path::new("/src/app")).unwrap();
    assert_eq!(plan.name, "feature-add-pagination-to-users");
    assert_eq!(plan.repo_path(), PathBuf::from("/src/app"));
    assert_eq!(ids(&plan), ["analyze", "implement", "test", "review"]);
    let needs: Vec<&[String]> = plan
        .tasks
        .iter()
        .map(|task| task.needs.as_slice())
        .collect();
    assert_eq!(
        needs,
        [
            &[][..],
            &["analyze".to_string()],
            &["implement".to_string()],
            &["implement".to_string(), "test".to_string()]
        ]
    );
    let capabilities: Vec<Vec<&str>> = plan
        .tasks
        .iter()
        .map(|task| task.capabilities.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(capabilities, [["plan"], ["code"], ["code"], ["review"]]);
    for task in &plan.tasks {
        assert!(task.prompt.contains(GOAL), "{}: {}", task.id, task.prompt);
    }
    assert!(plan.tasks[1].prompt.contains("{{tasks.analyze.summary}}"));
    assert!(plan.tasks[3].prompt.contains("{{tasks.test.summary}}"));
    assert_eq!(plan.tasks[0].title, "Analyze the code");
}

#[test]
fn bugfix_is_reproduce_fix_verify() {
    let plan = template(
        "bugfix",
        "Login fails for emails with a '+'",
        Path::new("."),
    )
    .unwrap();
    assert_eq!(plan.name, "bugfix-login-fails-for-emails-with-a");
    assert_eq!(ids(&plan), ["reproduce", "fix", "verify"]);
    assert_eq!(plan.tasks[2].needs, ["fix"]);
    let verify = &plan.tasks[2].prompt;
    assert!(
        verify.contains("{{tasks.reproduce.summary}}") && verify.contains("{{tasks.fix.summary}}")
    );
    assert_eq!(plan.repo_path(), PathBuf::from("."));
}

#[test]
fn every_template_builds_a_graph_and_fits_agents_with_its_capabilities() {
    for name in names() {
        let plan = template(name, GOAL, Path::new("/r")).unwrap();
        let offered: BTreeSet<String> = ["plan", "code", "review"].map(String::from).into();
        plan.validate_against(&offered, &BTreeSet::new()).unwrap();
        let only_code: BTreeSet<String> = ["code".to_string()].into();
        if name == "feature" {
            let errors = plan
                .validate_against(&only_code, &BTreeSet::new())
                .unwrap_err();
            assert!(
                errors.to_string().contains("needs capability \"review\""),
                "{errors}"
            );
        }
        let tasks = plan.tasks.len();
        let built = plan
            .into_plan(PlanId::from_parts(1, 1), Timestamp::UNIX_EPOCH)
            .unwrap();
        assert_eq!(built.graph.len(), tasks);
        assert_eq!(
            built.graph.ready_set().len(),
            1,
            "{name} starts with one task"
        );
    }
}

#[test]
fn prompts_render_with_upstream_results() {
    let plan = template("feature", GOAL, Path::new("/r")).unwrap();
    let rendered = super::super::template::render(&plan.tasks[3].prompt, |task| match task {
        "implement" => Some("added a cursor"),
        "test" => Some("12 tests pass"),
        _ => None,
    })
    .unwrap();
    assert!(rendered.contains("added a cursor") && rendered.contains("12 tests pass"));
}

#[test]
fn an_unknown_template_lists_the_known_ones() {
    let err = template("feture", GOAL, Path::new(".")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no template named \"feture\""), "{text}");
    assert!(
        text.contains("the templates are: feature, bugfix"),
        "{text}"
    );
    assert!(text.contains("hint: did you mean \"feature\"?"), "{text}");
    let err = template("deploy", GOAL, Path::new(".")).unwrap_err();
    assert!(!err.to_string().contains("hint"), "{err}");
}

#[test]
fn goals_are_checked() {
    assert!(matches!(
        template("feature", "  ", Path::new(".")),
        Err(TemplateError::EmptyGoal)
    ));
    let plan = template(
        "bugfix",
        "Crash on \"quoted\"\nmulti-line input",
        Path::new("."),
    )
    .unwrap();
    assert!(
        plan.tasks[0]
            .prompt
            .contains("Crash on \"quoted\"\nmulti-line input")
    );
    let odd = template("feature", "über ü", Path::new(".")).unwrap();
    assert_eq!(odd.name, "feature-ber");
    let unicode = template("feature", "ü", Path::new(".")).unwrap();
    assert_eq!(unicode.name, "feature", "no slug: just the template's name");
    let (_, draft) = draft("feature", "Use {{tasks.other.summary}}", Path::new(".")).unwrap();
    let errors = draft.to_plan_file(Path::new("template")).unwrap_err();
    assert!(
        errors
            .to_string()
            .contains("refers to unknown task \"other\""),
        "{errors}"
    );
}

#[test]
fn the_draft_is_plan_file_text() {
    let (_, draft) = draft("bugfix", GOAL, Path::new("/r")).unwrap();
    let text = draft.to_toml(Path::new("x")).unwrap();
    let again = PlanFile::parse(&text, Path::new("saved.toml")).unwrap();
    assert_eq!(ids(&again), ["reproduce", "fix", "verify"]);
}
