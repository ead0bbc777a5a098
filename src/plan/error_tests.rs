//! Tests of plan file errors: each kind at its exact line and column, with task, key and hint;
//! all problems reported at once; did-you-mean; how errors read.

use std::path::Path;

use super::error::{closest, edit_distance};
use super::*;

fn errors(text: &str) -> Vec<PlanError> {
    match PlanFile::parse(text, Path::new("add.toml")) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(errors) => errors.into_vec(),
    }
}

/// The one error in `text`.
fn only(text: &str) -> PlanError {
    let mut found = errors(text);
    assert_eq!(found.len(), 1, "expected one error, got:\n{found:#?}");
    found.remove(0)
}

/// (line, column, task, field) of an error.
fn place(error: &PlanError) -> (usize, usize, Option<&str>, Option<&str>) {
    (
        error.line,
        error.column,
        error.task.as_deref(),
        error.field.as_deref(),
    )
}

#[test]
fn errors_read_file_line_column_task_message_then_hint() {
    let error = only(
        r#"name = "p"
repo = "."
[[tasks]]
id = "design"
prompt = "d"
[[tasks]]
id = "impl"
needs = ["desgin"]
prompt = "i"
"#,
    );
    assert_eq!(place(&error), (8, 10, Some("impl"), Some("needs")));
    assert_eq!(
        error.to_string(),
        "add.toml:8:10: task \"impl\": needs unknown task \"desgin\"\n  hint: did you mean \"design\"?"
    );
}

#[test]
fn toml_syntax_error_points_at_the_bad_text() {
    let error = only("name = \"p\"\nrepo = .\n");
    assert_eq!(place(&error), (2, 8, None, None));
    assert!(error.message.starts_with("TOML syntax: "), "{error}");
    let error = only("name = \"p\"\nname = \"q\"\n");
    assert_eq!(
        (error.line, error.message.as_str()),
        (2, "TOML syntax: duplicate key")
    );
}

#[test]
fn unknown_keys_name_their_path_and_suggest_the_known_key() {
    let found = errors(
        r#"name = "p"
repo = "."
worktree = true
[[tasks]]
id = "a"
prompt = "p"
neds = ["b"]
conflicts = "manual"
"#,
    );
    let summary: Vec<_> = found
        .iter()
        .map(|e| (place(e), e.message.as_str(), e.hint.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                (3, 1, None, Some("worktree")),
                "unknown key `worktree`",
                Some("did you mean \"worktrees\"?")
            ),
            (
                (7, 1, Some("a"), Some("neds")),
                "unknown key `tasks[0].neds`",
                Some("did you mean \"needs\"?")
            ),
            (
                (8, 1, Some("a"), Some("conflicts")),
                "unknown key `tasks[0].conflicts`",
                Some("`conflicts` is a plan key: move it above the first [[tasks]]")
            ),
        ]
    );
}

#[test]
fn a_value_of_the_wrong_type_is_reported_at_the_value() {
    let error =
        only("name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\nneeds = \"b\"\n");
    assert_eq!(place(&error), (6, 9, Some("a"), Some("needs")));
    assert!(
        error.message.starts_with("`needs`: invalid type"),
        "{error}"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("write a list of task ids: needs = [\"design\"]")
    );
}

#[test]
fn duplicate_task_id_is_reported_at_the_second() {
    let error = only(
        r#"name = "p"
repo = "."
[[tasks]]
id = "impl"
prompt = "one"
[[tasks]]
id = "impl"
prompt = "two"
"#,
    );
    assert_eq!(place(&error), (7, 6, Some("impl"), Some("id")));
    assert_eq!(error.message, "duplicate task id \"impl\"");
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("line 3")));
}

#[test]
fn a_cycle_lists_its_members_in_order_at_the_first_member() {
    let error = only(
        r#"name = "p"
repo = "."
[[tasks]]
id = "start"
prompt = "s"
[[tasks]]
id = "c"
needs = ["a", "start"]
prompt = "c"
[[tasks]]
id = "a"
needs = ["b"]
prompt = "a"
[[tasks]]
id = "b"
needs = ["c"]
prompt = "b"
"#,
    );
    assert_eq!(place(&error), (8, 10, Some("c"), Some("needs")));
    assert_eq!(error.message, "dependency cycle: c -> a -> b -> c");
}

#[test]
fn each_separate_cycle_is_reported_once() {
    let found = errors(
        r#"name = "p"
repo = "."
tasks = [
  { id = "a", needs = ["b"], prompt = "x" },
  { id = "b", needs = ["a", "c"], prompt = "x" },
  { id = "c", needs = ["a"], prompt = "x" },
  { id = "d", needs = ["e"], prompt = "x" },
  { id = "e", needs = ["d"], prompt = "x" },
]
"#,
    );
    let messages: Vec<_> = found.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(
        messages,
        [
            (4, "dependency cycle: a -> b -> a"),
            (7, "dependency cycle: d -> e -> d"),
        ]
    );
}

#[test]
fn a_task_that_needs_itself_is_reported_at_the_entry() {
    let error = only(
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nneeds = [\"a\"]\nprompt = \"p\"\n",
    );
    assert_eq!(place(&error), (5, 10, Some("a"), Some("needs")));
    assert_eq!(error.message, "needs itself");
}

#[test]
fn missing_and_empty_prompts() {
    let found = errors(
        r#"name = "p"
repo = "."
[[tasks]]
id = "a"
[[tasks]]
id = "b"
prompt = """
   
"""
"#,
    );
    let summary: Vec<_> = found
        .iter()
        .map(|e| (place(e), e.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ((3, 1, Some("a"), Some("prompt")), "has no `prompt`"),
            ((7, 10, Some("b"), Some("prompt")), "`prompt` is empty"),
        ]
    );
}

#[test]
fn bad_timeouts_are_reported_at_the_value() {
    let found = errors(
        r#"name = "p"
repo = "."
[[tasks]]
id = "a"
prompt = "p"
timeout = "20 minutes please"
[[tasks]]
id = "b"
prompt = "p"
timeout = "0s"
[[tasks]]
id = "c"
prompt = "p"
timeout = 20
"#,
    );
    let summary: Vec<_> = found
        .iter()
        .map(|e| (place(e), e.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                (6, 11, Some("a"), Some("timeout")),
                "timeout \"20 minutes please\" is not a duration"
            ),
            (
                (10, 11, Some("b"), Some("timeout")),
                "timeout \"0s\" must be longer than zero"
            ),
            (
                (14, 11, Some("c"), Some("timeout")),
                "`timeout`: invalid type: integer `20`, expected a string"
            ),
        ]
    );
}

#[test]
fn zero_tasks_and_missing_header_keys() {
    let found = errors("# nothing yet\n");
    let summary: Vec<_> = found
        .iter()
        .map(|e| (place(e), e.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ((1, 1, None, Some("name")), "missing `name`"),
            ((1, 1, None, Some("repo")), "missing `repo`"),
            ((1, 1, None, Some("tasks")), "the plan has no tasks"),
        ]
    );
    let error = only("name = \"p\"\nrepo = \".\"\ntasks = []\n");
    assert_eq!(place(&error), (3, 9, None, Some("tasks")));
    let error = only("name = \"p\"\nrepo = \".\"\n[tasks]\nid = \"a\"\n");
    assert_eq!(error.message, "`tasks` must be a list of tables");
}

#[test]
fn bad_conflict_policy_suggests_the_closest() {
    let error = only(
        "name = \"p\"\nrepo = \".\"\nconflicts = \"resolve\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n",
    );
    assert_eq!(place(&error), (3, 13, None, Some("conflicts")));
    assert_eq!(
        error.message,
        "conflicts = \"resolve\" is not a conflict policy"
    );
    assert_eq!(error.hint.as_deref(), Some("did you mean \"resolver\"?"));
    let error = only(
        "name = \"p\"\nrepo = \".\"\nconflicts = \"yolo\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n",
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("use \"retry\", \"resolver\" or \"manual\"")
    );
}

#[test]
fn bad_cleanup_policy_suggests_the_closest_or_lists_them() {
    let error = only(
        "name = \"p\"\nrepo = \".\"\ncleanup = \"remove_merged\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n",
    );
    assert_eq!(place(&error), (3, 11, None, Some("cleanup")));
    assert_eq!(
        error.message,
        "cleanup = \"remove_merged\" is not a cleanup policy"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("did you mean \"remove-merged\"?")
    );
    let error = only(
        "name = \"p\"\nrepo = \".\"\ncleanup = \"never\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n",
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("use \"keep\", \"remove-merged\" or \"remove-all\"")
    );
}

#[test]
fn cleanup_without_worktrees_is_refused() {
    let error = only(
        "name = \"p\"\nrepo = \".\"\nworktrees = false\ncleanup = \"keep\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n",
    );
    assert_eq!(place(&error), (4, 11, None, Some("cleanup")));
    assert!(
        error.message.contains("worktrees = false"),
        "{}",
        error.message
    );
}

#[test]
fn prompt_references_must_name_an_upstream_task() {
    let found = errors(
        r#"name = "p"
repo = "."
[[tasks]]
id = "design"
prompt = "d"
[[tasks]]
id = "side"
prompt = "s"
[[tasks]]
id = "impl"
needs = ["design"]
prompt = """
Use {{tasks.design.summary}} and {{ tasks.side.summary }},
then {{tasks.desing.summary}}, {{tasks.impl.summary}}, {{tasks.design.diff}}.
Leave {{ user.name }} alone.
"""
"#,
    );
    let summary: Vec<_> = found
        .iter()
        .map(|e| (e.line, e.column, e.message.as_str(), e.hint.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                13,
                34,
                "{{ tasks.side.summary }} uses task \"side\", which this task does not depend on",
                Some("add \"side\" to `needs` so that it runs first")
            ),
            (
                14,
                6,
                "{{tasks.desing.summary}} refers to unknown task \"desing\"",
                Some("did you mean \"design\"?")
            ),
            (
                14,
                32,
                "{{tasks.impl.summary}} refers to the task's own summary",
                Some("a task can only use upstream results")
            ),
            (
                14,
                56,
                "{{tasks.design.diff}} names no result of a task",
                Some("write {{tasks.design.summary}}")
            ),
        ]
    );
    assert!(found.iter().all(|e| e.task.as_deref() == Some("impl")));
}

#[test]
fn ids_must_be_plain_words() {
    let found = errors(
        r#"name = "p"
repo = "."
[[tasks]]
id = ""
prompt = "p"
[[tasks]]
id = "api design"
prompt = "p"
[[tasks]]
prompt = "p"
"#,
    );
    let summary: Vec<_> = found
        .iter()
        .map(|e| (place(e), e.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ((4, 6, None, Some("id")), "tasks[0] has an empty `id`"),
            (
                (7, 6, Some("api design"), Some("id")),
                "id \"api design\" has characters other than A-Z a-z 0-9 . _ -"
            ),
            ((9, 1, None, Some("id")), "tasks[2] has no `id`"),
        ]
    );
}

#[test]
fn locks_files_agent_base_and_capabilities_are_checked() {
    let found = errors(
        r#"name = "p"
repo = "."
base = "main branch"
[[tasks]]
id = "a"
prompt = "p"
capabilities = ["rust", ""]
locks = [""]
files = ["src/ok.rs", "/etc/passwd", "../outside.rs"]
agent = "-box"
"#,
    );
    let fields: Vec<_> = found
        .iter()
        .map(|e| (e.line, e.column, e.field.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        fields,
        [
            (3, 8, "base"),
            (7, 25, "capabilities"),
            (8, 10, "locks"),
            (9, 23, "files"),
            (9, 38, "files"),
            (10, 9, "agent"),
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let found = errors(
        r#"name = ""
repo = "."
conflicts = "rebase"
[[tasks]]
id = "design"
prompt = ""
timeout = "soon"
[[tasks]]
id = "impl"
needs = ["desgin", "impl"]
prompt = "{{tasks.nobody.summary}}"
retries = -1
[[tasks]]
id = "impl"
prompt = "again"
colour = "red"
"#,
    );
    let lines: Vec<_> = found.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        lines,
        [
            (1, 8),
            (3, 13),
            (6, 10),
            (7, 11),
            (10, 10),
            (10, 20),
            (11, 11),
            (12, 11),
            (14, 6),
            (16, 1),
        ],
        "{found:#?}"
    );
    let text = PlanErrors::from_vec(found).unwrap().to_string();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("add.toml:")).count(),
        10
    );
}

#[test]
fn unknown_capabilities_and_agents_are_reported_against_the_config() {
    let plan = PlanFile::parse(
        r#"name = "p"
repo = "."
[[tasks]]
id = "a"
prompt = "p"
capabilities = ["rust", "rsut", "gpu"]
agent = "fast-bx"
"#,
        Path::new("add.toml"),
    )
    .unwrap();
    let offered = ["rust".to_string(), "code".to_string()].into();
    let agents = ["fast-box".to_string()].into();
    let found = plan
        .validate_against(&offered, &agents)
        .unwrap_err()
        .into_vec();
    let summary: Vec<_> = found
        .iter()
        .map(|e| (place(e), e.message.as_str(), e.hint.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                (6, 25, Some("a"), Some("capabilities")),
                "needs capability \"rsut\", which no agent offers",
                Some("did you mean \"rust\"?")
            ),
            (
                (6, 33, Some("a"), Some("capabilities")),
                "needs capability \"gpu\", which no agent offers",
                Some("capabilities offered: code, rust")
            ),
            (
                (7, 9, Some("a"), Some("agent")),
                "is pinned to unknown agent \"fast-bx\"",
                Some("did you mean \"fast-box\"?")
            ),
        ]
    );
}

#[test]
fn an_unreadable_file_is_one_error_without_a_line() {
    let path = Path::new("/nonexistent/ocio/plan.toml");
    let error = PlanFile::load(path).unwrap_err().into_vec().remove(0);
    assert_eq!((error.line, error.column), (0, 0));
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/ocio/plan.toml: cannot read the plan file: "),
        "{error}"
    );
}

#[test]
fn did_you_mean_picks_the_closest_likely_typo() {
    assert_eq!(edit_distance("desgin", "design"), 1, "a swap is one edit");
    assert_eq!(edit_distance("rsut", "rust"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    let ids = ["design", "impl", "docs"];
    assert_eq!(closest("desgin", ids), Some("design"));
    assert_eq!(closest("imp", ids), Some("impl"));
    assert_eq!(closest("review", ids), None);
    assert_eq!(closest("design", ids), None, "an exact match is no typo");
}

#[test]
fn setup_copy_and_check_are_checked_where_they_are_written() {
    let head = "name = \"p\"\nrepo = \".\"\n";
    let task = "[[tasks]]\nid = \"a\"\nprompt = \"p\"\n";
    let error = only(&format!(
        "{head}worktrees = false\nsetup = [\"npm ci\"]\n{task}"
    ));
    assert_eq!(place(&error), (4, 10, None, Some("setup")));
    assert!(error.message.contains("`worktrees = false`"), "{error}");
    let error = only(&format!("{head}copy = [\".env\", \"../secrets\"]\n{task}"));
    assert_eq!(place(&error), (3, 17, None, Some("copy")));
    assert!(
        error
            .message
            .contains("\"../secrets\" is not a path inside"),
        "{error}"
    );
    let error = only(&format!("{head}setup = [\" \"]\n{task}"));
    assert_eq!(place(&error), (3, 10, None, Some("setup")));
    let error = only(&format!("{head}on_check_failure = \"fixx\"\n{task}"));
    assert_eq!(place(&error), (3, 20, None, Some("on_check_failure")));
    assert_eq!(error.hint.as_deref(), Some("did you mean \"fix\"?"));
    let error = only(&format!(
        "{head}worktrees = false\ncheck = \"make test\"\n{task}"
    ));
    assert_eq!(place(&error), (4, 9, None, Some("check")));
    let error = only(&format!(
        "{head}worktrees = false\n{task}check = \"make\"\n"
    ));
    assert_eq!(place(&error), (7, 9, Some("a"), Some("check")));
    assert!(error.message.contains("`worktrees = false`"), "{error}");
    let error = only(&format!("{head}{task}check = \"\"\n"));
    assert_eq!(place(&error), (6, 9, Some("a"), Some("check")));
    let file = PlanFile::parse(
        &format!("{head}setup = [\"npm ci\"]\ncopy = [\".env\"]\ncheck = \"npm test\"\non_check_failure = \"fix\"\n{task}check = \"npm run lint\"\n"),
        Path::new("add.toml"),
    )
    .unwrap();
    assert_eq!(file.settings.setup, ["npm ci"]);
    assert_eq!(file.settings.copy, [".env"]);
    assert_eq!(file.settings.check.as_deref(), Some("npm test"));
    assert_eq!(
        file.settings.on_check_failure,
        crate::domain::task::CheckFailurePolicy::Fix
    );
    assert_eq!(file.tasks[0].check.as_deref(), Some("npm run lint"));
}

#[test]
fn budgets_are_read_on_the_plan_and_its_tasks() {
    let file = PlanFile::parse(
        "name = \"p\"\nrepo = \".\"\nbudget = { tokens = 2_000_000, cost = 5.0 }\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\nbudget = { tokens = 500 }\n",
        Path::new("add.toml"),
    )
    .unwrap();
    let plan = file.settings.budget.unwrap();
    assert_eq!((plan.tokens, plan.cost), (Some(2_000_000), Some(5.0)));
    assert_eq!(file.tasks[0].budget.unwrap().tokens, Some(500));
}

#[test]
fn a_bad_budget_names_its_line_task_and_field() {
    let error = only(
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\nbudget = { tokens = 0 }\n",
    );
    assert_eq!(place(&error).0, 6, "{error}");
    assert_eq!(place(&error).2, Some("a"), "{error}");
    assert_eq!(place(&error).3, Some("budget"), "{error}");
    assert!(error.message.contains("at least 1"), "{error}");
    assert!(
        error.to_string().contains("hint: write budget = {"),
        "{error}"
    );
    let error = only(
        "name = \"p\"\nbudget = { cost = \"five\" }\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n",
    );
    assert_eq!(
        (place(&error).0, place(&error).3),
        (2, Some("budget")),
        "{error}"
    );
    let error =
        only("name = \"p\"\nrepo = \".\"\nbudget = {}\n[[tasks]]\nid = \"a\"\nprompt = \"a\"\n");
    assert!(error.message.contains("needs `tokens`, `cost`"), "{error}");
}
