//! Tests of plan files that parse: the shipped examples, building the task graph, durations,
//! repository resolution, prompt templates, agent fit, and a property over random DAGs.

use std::path::Path;

use proptest::prelude::*;

use super::template::{self, MissingSummary};
use super::*;
use crate::domain::task::ConflictPolicy;
use crate::domain::{Agent, Backend, TaskStatus};

const PAGINATION: &str = r#"
name = "add-pagination"
repo = "."
conflicts = "resolver"
worktrees = true
base = "main"
cleanup = "keep"

[[tasks]]
id = "design"
title = "Design the API"
prompt = "Design cursor pagination."
capabilities = ["plan"]

[[tasks]]
id = "impl"
needs = ["design"]
prompt = "Build it: {{tasks.design.summary}}"
timeout = "20m"
retries = 1
priority = 5
locks = ["src/api/"]
files = ["src/api/users.rs"]
agent = "fast-box"

[[tasks]]
id = "docs"
needs = ["design"]
prompt = "Document it."

[[tasks]]
id = "review"
needs = ["impl", "docs"]
prompt = "Review {{tasks.impl.summary}} with {{tasks.design.summary}} in mind."
"#;

fn parse(text: &str) -> PlanFile {
    PlanFile::parse(text, Path::new("plans/add.toml")).unwrap_or_else(|errors| panic!("{errors}"))
}

fn at() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

fn keys<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Vec<&'a str> {
    tasks.into_iter().map(|t| t.key.as_str()).collect()
}

#[test]
fn a_plan_file_reads_every_key() {
    let plan = parse(PAGINATION);
    assert_eq!(plan.name, "add-pagination");
    assert_eq!(plan.repo, Path::new("."));
    assert_eq!(plan.settings.conflicts, ConflictPolicy::Resolver);
    assert!(plan.settings.worktrees);
    assert_eq!(plan.settings.base.as_deref(), Some("main"));
    let ids: Vec<_> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["design", "impl", "docs", "review"]);
    let design = &plan.tasks[0];
    assert_eq!(design.title, "Design the API");
    assert_eq!(design.capabilities, ["plan".to_string()].into());
    assert_eq!(
        (design.timeout, design.retries, design.priority),
        (None, 0, 0)
    );
    let implement = &plan.tasks[1];
    assert_eq!(implement.title, "impl", "the title defaults to the id");
    assert_eq!(implement.needs, ["design"]);
    assert_eq!(implement.timeout, Some(SignedDuration::from_mins(20)));
    assert_eq!((implement.retries, implement.priority), (1, 5));
    assert_eq!(implement.locks, ["src/api/".to_string()].into());
    assert_eq!(implement.files, ["src/api/users.rs".to_string()].into());
    assert_eq!(
        implement.agent.as_ref().map(AgentName::as_str),
        Some("fast-box")
    );
}

#[test]
fn settings_have_defaults() {
    let plan = parse("name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n");
    assert_eq!(plan.settings, PlanSettings::default());
    assert_eq!(plan.settings.conflicts, ConflictPolicy::Retry);
    assert!(plan.settings.worktrees);
    assert_eq!(plan.settings.base, None);
    assert_eq!(plan.settings.cleanup, None, "the engine's default applies");
}

#[test]
fn a_plan_becomes_a_task_graph_with_its_dependencies() {
    let plan_id = PlanId::from_parts(1, 7);
    let file = parse(PAGINATION);
    assert_eq!(file.settings.conflicts, ConflictPolicy::Resolver);
    assert_eq!(
        file.settings.cleanup,
        Some(crate::domain::task::CleanupPolicy::Keep)
    );
    let built = file.into_plan(plan_id, at()).unwrap();
    assert_eq!(built.plan.id, plan_id);
    assert_eq!(built.plan.name, "add-pagination");
    assert_eq!(built.plan.repo, Path::new("plans"));
    assert_eq!(built.plan.created_at, at());
    let graph = &built.graph;
    assert_eq!(graph.len(), 4);
    let ids: Vec<TaskId> = graph.tasks().map(|t| t.id).collect();
    assert_eq!(built.plan.tasks, ids);
    assert!(
        graph
            .tasks()
            .all(|t| t.plan == plan_id && t.status == TaskStatus::Pending)
    );
    assert_eq!(keys(graph.ready_set()), ["design"]);
    assert_eq!(graph.dependents("design").unwrap(), ["impl", "docs"]);
    assert_eq!(graph.dependents("impl").unwrap(), ["review"]);
    assert_eq!(
        keys(graph.topological_order()),
        ["design", "impl", "docs", "review"]
    );
    let implement = graph.get("impl").unwrap();
    assert_eq!(implement.title, "impl");
    assert_eq!(implement.timeout, Some(SignedDuration::from_mins(20)));
    assert_eq!(implement.locks, ["src/api/".to_string()].into());
    assert_eq!(
        implement.agent.as_ref().map(AgentName::as_str),
        Some("fast-box")
    );
}

#[test]
fn finishing_the_first_task_readies_its_dependents() {
    let mut graph = parse(PAGINATION)
        .into_plan(PlanId::generate(), at())
        .unwrap()
        .graph;
    for to in [TaskStatus::Ready, TaskStatus::Running, TaskStatus::Done] {
        graph.transition("design", to, "", at()).unwrap();
    }
    // Higher priority first.
    assert_eq!(keys(graph.ready_set()), ["impl", "docs"]);
}

#[test]
fn friendly_durations() {
    for (text, minutes) in [("20m", 20), ("1h 30m", 90), ("90s", 1), ("2h", 120)] {
        let plan = parse(&format!(
            "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\ntimeout = \"{text}\"\n"
        ));
        let timeout = plan.tasks[0].timeout.unwrap();
        assert_eq!(timeout.as_secs() / 60, minutes, "{text}");
    }
    let plan = parse(
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\ntimeout = \"90s\"\n",
    );
    assert_eq!(plan.tasks[0].timeout, Some(SignedDuration::from_secs(90)));
}

#[test]
fn repo_is_resolved_against_the_plan_files_directory() {
    let cases = [
        ("work/plans/add.toml", ".", "work/plans"),
        ("work/plans/add.toml", "..", "work"),
        ("work/plans/add.toml", "../app/./src/..", "work/app"),
        ("add.toml", ".", "."),
        ("add.toml", "../other", "../other"),
        ("/home/me/plans/add.toml", "../code", "/home/me/code"),
        ("/home/me/plans/add.toml", "/srv/repo", "/srv/repo"),
        ("/add.toml", "../..", "/"),
    ];
    for (plan_path, repo, expected) in cases {
        let text =
            format!("name = \"p\"\nrepo = \"{repo}\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n");
        let plan = PlanFile::parse(&text, Path::new(plan_path)).unwrap();
        assert_eq!(
            plan.repo_path(),
            Path::new(expected),
            "{plan_path} + {repo}"
        );
        let built = plan.into_plan(PlanId::generate(), at()).unwrap();
        assert_eq!(built.plan.repo, Path::new(expected));
    }
}

#[test]
fn references_may_reach_any_upstream_task() {
    let plan = parse(PAGINATION);
    let review = &plan.tasks[3];
    let found = template::references(&review.prompt);
    let named: Vec<_> = found.iter().map(|r| (r.task, r.field)).collect();
    assert_eq!(named, [("impl", "summary"), ("design", "summary")]);
    assert_eq!(found[0].text, "{{tasks.impl.summary}}");
    assert_eq!(&review.prompt[found[0].offset..][..2], "{{");
}

#[test]
fn templates_find_dotted_ids_and_leave_other_braces_alone() {
    let prompt = "a {{ tasks.v1.2.summary }} b {{user}} c {{tasks.x}} {{tasks.open";
    let found = template::references(prompt);
    let named: Vec<_> = found.iter().map(|r| (r.task, r.field)).collect();
    assert_eq!(named, [("v1.2", "summary"), ("x", "")]);
}

#[test]
fn rendering_fills_in_summaries() {
    let prompt = "Build {{tasks.design.summary}}; see {{ tasks.design.summary }} and {{x}}.";
    let rendered = template::render(prompt, |task| (task == "design").then_some("cursors"));
    assert_eq!(rendered.unwrap(), "Build cursors; see cursors and {{x}}.");
    let missing = template::render("{{tasks.a.summary}}", |_| None);
    assert_eq!(missing, Err(MissingSummary { task: "a".into() }));
}

fn agent(name: &str, capabilities: &[&str]) -> Agent {
    let mut agent = Agent::new(AgentName::new(name).unwrap(), Backend::Simulated, 1);
    agent.capabilities = capabilities.iter().map(|c| c.to_string()).collect();
    agent
}

#[test]
fn validation_against_agents_needs_one_agent_that_can_do_each_task() {
    let plan = parse(
        r#"name = "p"
repo = "."
[[tasks]]
id = "both"
prompt = "p"
capabilities = ["rust", "gpu"]
[[tasks]]
id = "pinned"
prompt = "p"
capabilities = ["gpu"]
agent = "coder"
"#,
    );
    let agents = [agent("coder", &["rust"]), agent("cruncher", &["gpu"])];
    let found = plan
        .validate_against_agents(&agents, &[])
        .unwrap_err()
        .into_vec();
    let summary: Vec<_> = found.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (3, "no single agent offers all of gpu, rust"),
            (11, "is pinned to agent \"coder\", which does not offer gpu"),
        ]
    );
    let able = [agent("coder", &["rust", "gpu"])];
    assert_eq!(plan.validate_against_agents(&able, &[]), Ok(()));
}

/// A plan in a directory that is no git repository cannot have its tasks carried to a build
/// box: a task only build boxes could run is refused at submit, naming them (it waited ready
/// for good, saying nothing: hand trial).
#[test]
fn a_task_outside_git_that_only_build_boxes_could_run_is_refused() {
    let plan = parse(
        r#"name = "p"
repo = "."
[[tasks]]
id = "anywhere"
prompt = "p"
[[tasks]]
id = "pinned"
prompt = "p"
agent = "far"
"#,
    );
    let mut far = agent("far", &[]);
    far.works_away = true;
    let near = agent("near", &[]);
    // Beside an agent on ocio's disk, only the task pinned to the box cannot run.
    let found = plan
        .validate_on_ocios_disk(&[far.clone(), near], &[])
        .unwrap_err()
        .into_vec();
    let tasks: Vec<_> = found.iter().map(|e| e.task.as_deref()).collect();
    assert_eq!(tasks, [Some("pinned")]);
    let found = plan
        .validate_on_ocios_disk(std::slice::from_ref(&far), &[])
        .unwrap_err()
        .into_vec();
    let summary: Vec<_> = found.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(summary.len(), 2, "{summary:?}");
    assert!(
        found[0].message.contains("is no git repository"),
        "{summary:?}"
    );
    assert!(
        found[0].message.contains("(far) work on build boxes"),
        "{summary:?}"
    );
    assert_eq!(found[1].line, 9, "the pinned task's `agent`");
}

#[test]
fn with_no_agent_configured_each_task_says_so_not_an_empty_capability_list() {
    let plan = parse("name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\n");
    let found = plan
        .validate_against_agents(&[], &[])
        .unwrap_err()
        .into_vec();
    let text: Vec<String> = found.iter().map(|e| e.to_string()).collect();
    assert_eq!(found.len(), 1, "{text:?}");
    assert_eq!(found[0].message, "no agent is configured to run it");
    assert!(text[0].contains("[[agents]]"), "{text:?}");
}

fn fleet(name: &str, capabilities: &[&str], works_away: Option<bool>) -> crate::domain::Fleet {
    crate::domain::Fleet {
        name: AgentName::new(name).unwrap(),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        works_away,
        members: Vec::new(),
    }
}

/// A configured fleet none of whose members has joined yet (its servers still booting, one
/// down a moment) is counted on: its tasks wait for a member. Before, every plan was refused
/// at submit, "no agent is configured to run it", and a pin to a member that had not joined
/// was "unknown" (hand trial).
#[test]
fn a_plan_counts_on_a_fleet_before_its_members_join() {
    let plan = parse(
        r#"name = "p"
repo = "."
[[tasks]]
id = "any"
prompt = "p"
capabilities = ["rust"]
[[tasks]]
id = "pinned"
prompt = "p"
agent = "builders-box-3-4096"
"#,
    );
    let builders = fleet("builders", &["rust"], Some(true));
    assert_eq!(
        plan.validate_against_agents(&[], std::slice::from_ref(&builders)),
        Ok(())
    );
    // What the fleet does not offer, and names that are none of its members', still fail.
    let gpu = fleet("builders", &["gpu"], None);
    let found = plan
        .validate_against_agents(&[], &[gpu])
        .unwrap_err()
        .into_vec();
    let summary: Vec<_> = found.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(
        summary,
        [(6, "needs capability \"rust\", which no agent offers")],
        "{summary:?}"
    );
    let typo = parse(
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\nagent = \"bilders-box-4096\"\n",
    );
    let found = typo
        .validate_against_agents(&[agent("near", &[])], std::slice::from_ref(&builders))
        .unwrap_err()
        .into_vec();
    let text: Vec<String> = found.iter().map(|e| e.to_string()).collect();
    assert_eq!(found.len(), 1, "{text:?}");
    assert!(
        text[0].contains("unknown agent \"bilders-box-4096\""),
        "{text:?}"
    );
    assert!(text[0].contains("builders-<host>-<port>"), "{text:?}");
    assert!(!builders.may_name("builders"), "the fleet is no member");
    // Pinned to the fleet itself: said so, and how to let its members run it (second hand
    // trial: "unknown agent" with no word of the fleet).
    let to_fleet = parse(
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\nagent = \"builders\"\n",
    );
    let found = to_fleet
        .validate_against_agents(&[], std::slice::from_ref(&builders))
        .unwrap_err()
        .into_vec();
    let text: Vec<String> = found.iter().map(|e| e.to_string()).collect();
    assert_eq!(found.len(), 1, "{text:?}");
    assert!(
        text[0].contains("is pinned to fleet \"builders\", not to one of its members")
            && text[0].contains("leave `agent` out"),
        "{text:?}"
    );
    assert!(
        !builders.may_name("builders-"),
        "nor is its name and a dash"
    );
    // Outside git, a fleet of build boxes cannot run it; one found out as members join may.
    let found = plan
        .validate_on_ocios_disk(&[], std::slice::from_ref(&builders))
        .unwrap_err()
        .into_vec();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0]
            .message
            .contains("(fleet builders) work on build boxes"),
        "{found:?}"
    );
    let auto = fleet("builders", &["rust"], None);
    assert_eq!(plan.validate_on_ocios_disk(&[], &[auto]), Ok(()));
}

/// Of fleets `box` and `box-gpu`, a pin to `box-gpu-...` is `box-gpu`'s member whichever is
/// listed first; a fleet that lists its servers (`urls`) has only their members; a pin to a
/// joined member that works away is judged by that agent, not by its fleet (review).
#[test]
fn a_pin_is_judged_by_the_fleet_it_names_a_member_of() {
    let pinned = parse(
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"p\"\ncapabilities = [\"cuda\"]\nagent = \"box-gpu-10.0.0.7-4096\"\n",
    );
    let plain = fleet("box", &[], None);
    let gpu = fleet("box-gpu", &["cuda"], None);
    for fleets in [[plain.clone(), gpu.clone()], [gpu.clone(), plain.clone()]] {
        assert_eq!(pinned.validate_against_agents(&[], &fleets), Ok(()));
    }
    let mut listed = fleet("box-gpu", &["cuda"], None);
    listed.members = vec![AgentName::new("box-gpu-10.0.0.8-4096").unwrap()];
    let found = pinned
        .validate_against_agents(&[], &[listed])
        .unwrap_err()
        .into_vec();
    assert!(
        found[0]
            .message
            .contains("unknown agent \"box-gpu-10.0.0.7-4096\"")
            && found[0].to_string().contains("box-gpu-10.0.0.8-4096"),
        "{found:?}"
    );
    let mut joined = agent("box-gpu-10.0.0.7-4096", &["cuda"]);
    joined.works_away = true;
    let found = pinned
        .validate_on_ocios_disk(std::slice::from_ref(&joined), &[gpu])
        .unwrap_err()
        .into_vec();
    assert!(
        found[0]
            .message
            .contains("(box-gpu-10.0.0.7-4096) work on build boxes"),
        "{found:?}"
    );
}

#[test]
fn the_example_plans_parse_and_build() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        seen += 1;
        let plan = PlanFile::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
        let repo = plan.repo_path();
        let tasks = plan.tasks.len();
        let built = plan.into_plan(PlanId::generate(), at()).unwrap();
        assert_eq!(built.graph.len(), tasks, "{}", path.display());
        assert!(!built.graph.ready_set().is_empty(), "{}", path.display());
        let root = dir.parent().and_then(Path::parent).unwrap();
        assert_eq!(repo, root, "{}", path.display());
    }
    assert!(
        seen >= 2,
        "expected at least two example plans in {}",
        dir.display()
    );
}

#[test]
fn the_release_example_uses_every_feature() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans/release.toml");
    let plan = PlanFile::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(plan.settings.conflicts, ConflictPolicy::Resolver);
    let release = plan.tasks.iter().find(|t| t.id == "release").unwrap();
    assert_eq!(release.timeout, Some(SignedDuration::from_mins(90)));
    assert!(release.agent.is_some());
    plan.into_plan(PlanId::generate(), at()).unwrap();
}

/// A random plan: task `i` may need any of the tasks before it, so it is always a DAG; the
/// tasks are written in a shuffled order.
fn random_plan() -> impl Strategy<Value = (String, Vec<Vec<usize>>)> {
    (1usize..14)
        .prop_flat_map(|count| {
            let needs = (0..count)
                .map(|i| proptest::collection::btree_set(0..i.max(1), 0..=i.min(4)))
                .collect::<Vec<_>>();
            (needs, Just((0..count).collect::<Vec<_>>()).prop_shuffle())
        })
        .prop_map(|(needs, order)| {
            let needs: Vec<Vec<usize>> = needs
                .into_iter()
                .enumerate()
                .map(|(i, set)| set.into_iter().filter(|&j| j < i).collect())
                .collect();
            let mut text = String::from("name = \"random\"\nrepo = \".\"\n");
            for &i in &order {
                let quoted: Vec<String> = needs[i].iter().map(|j| format!("\"t{j}\"")).collect();
                let uses = needs[i]
                    .first()
                    .map(|j| format!(" after {{{{tasks.t{j}.summary}}}}"))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "[[tasks]]\nid = \"t{i}\"\nneeds = [{}]\nprompt = \"do {i}{uses}\"\n",
                    quoted.join(", ")
                ));
            }
            (text, needs)
        })
}

proptest! {
    #[test]
    fn random_dags_parse_and_build((text, needs) in random_plan()) {
        let plan = PlanFile::parse(&text, Path::new("random.toml"))
            .map_err(|errors| TestCaseError::fail(format!("{errors}\n{text}")))?;
        let built = plan.into_plan(PlanId::generate(), at()).unwrap();
        prop_assert_eq!(built.graph.len(), needs.len());
        let order = keys(built.graph.topological_order());
        prop_assert_eq!(order.len(), needs.len());
        let position = |key: &str| order.iter().position(|k| *k == key).unwrap();
        for (i, needed) in needs.iter().enumerate() {
            for j in needed {
                let (before, after) = (format!("t{j}"), format!("t{i}"));
                prop_assert!(position(&before) < position(&after), "{} before {}", before, after);
            }
        }
        let ready: Vec<String> = keys(built.graph.ready_set()).into_iter().map(String::from).collect();
        let mut expected: Vec<String> = (0..needs.len())
            .filter(|&i| needs[i].is_empty())
            .map(|i| format!("t{i}"))
            .collect();
        let mut ready_sorted = ready.clone();
        ready_sorted.sort();
        expected.sort();
        prop_assert_eq!(ready_sorted, expected);
    }

    #[test]
    fn a_back_edge_in_a_random_dag_is_reported_as_a_cycle((text, needs) in random_plan()) {
        // Make the first task need the last task that (transitively) needs it, if any.
        let Some(last) = (1..needs.len()).rev().find(|&i| reaches(&needs, i, 0)) else {
            return Ok(());
        };
        let text = text.replacen(
            "id = \"t0\"\nneeds = []",
            &format!("id = \"t0\"\nneeds = [\"t{last}\"]"),
            1,
        );
        let errors = PlanFile::parse(&text, Path::new("random.toml")).unwrap_err().into_vec();
        prop_assert!(errors.iter().any(|e| e.message.starts_with("dependency cycle: ")), "{:?}", errors);
    }
}

/// Whether task `from` needs task `to`, directly or not.
fn reaches(needs: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut stack = vec![from];
    let mut seen = vec![false; needs.len()];
    while let Some(i) = stack.pop() {
        if i == to {
            return true;
        }
        if !std::mem::replace(&mut seen[i], true) {
            stack.extend(&needs[i]);
        }
    }
    false
}
