//! Tests of shared context: publishing lines, the section's layout, fair budgeting, said
//! truncation, and properties over random tasks and budgets (multi-byte text included).

use proptest::prelude::*;

use super::*;

fn task(id: &str, summary: &str) -> UpstreamContext {
    UpstreamContext {
        task: id.into(),
        summary: summary.into(),
        ..UpstreamContext::default()
    }
}

fn pairs(values: &[(&str, &str)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn published_values_are_read_from_their_own_lines() {
    let answer = "Done. I chose the path.\n\
                  OCIO-PUBLISH api_path=/v2/users\n\
                  \x20 `OCIO-PUBLISH page.size = 50 `\n\
                  OCIO-PUBLISH empty=\n\
                  OCIO-PUBLISH bad name=x\n\
                  OCIO-PUBLISHED x=y\n\
                  OCIO-PUBLISH no-equals\n\
                  see OCIO-PUBLISH inline=no\n\
                  OCIO-PUBLISH api_path=/v3/users\n\
                  OCIO-PUBLISH url=http://x/?a=b\n";
    assert_eq!(
        parse_published(answer),
        pairs(&[
            ("page.size", "50"),
            ("empty", ""),
            ("api_path", "/v3/users"),
            ("url", "http://x/?a=b"),
        ])
    );
    assert_eq!(parse_published(""), []);
    assert!(PUBLISH_INSTRUCTIONS.contains("OCIO-PUBLISH name=value"));
}

#[test]
fn the_section_shows_values_files_and_the_answer_of_each_task() {
    let design = UpstreamContext {
        task: "design".into(),
        summary: "Use a cursor.\nOCIO-PUBLISH api_path=/v2/users\n".into(),
        files_changed: vec!["docs/api.md".into(), "src/api.rs".into()],
        values: pairs(&[("api_path", "/v2/users")]),
    };
    let section = context_section(&[design, task("schema", "  ")], 10_000);
    assert_eq!(
        section,
        "## Context from upstream tasks\n\
         \n### Task `design`\n\
         Published values:\n- api_path = /v2/users\n\
         Files changed (2): docs/api.md, src/api.rs\n\
         Result:\nUse a cursor.\n\
         \n### Task `schema`\n\
         Result: (no final answer)\n"
    );
    assert_eq!(context_section(&[], 10), "");
}

#[test]
fn long_file_lists_are_counted() {
    let mut upstream = task("t", "ok");
    upstream.files_changed = (0..40).map(|i| format!("f{i}")).collect();
    let section = context_section(&[upstream], 10_000);
    assert!(section.contains("Files changed (40): f0, f1,"));
    assert!(section.contains(", f29, ... and 10 more\n"), "{section}");
}

#[test]
fn a_short_answer_keeps_its_place_beside_a_long_one() {
    let short = task("short", "Short and complete.");
    let long = task("long", &"x".repeat(50_000));
    let section = context_section(&[long, short], 2_000);
    assert!(section.len() <= 2_000, "{}", section.len());
    assert!(section.contains("Short and complete.\n"));
    assert!(section.contains("bytes cut to fit the context budget]"));
    let cut_line = section.lines().find(|l| l.contains("bytes cut")).unwrap();
    assert!(cut_line.contains("of 50009 bytes"), "{cut_line}");
}

#[test]
fn equal_answers_get_equal_shares() {
    let upstream = [task("a", &"a".repeat(5_000)), task("b", &"b".repeat(5_000))];
    let section = context_section(&upstream, 3_000);
    let a = section.matches('a').count();
    let b = section.matches('b').count();
    assert!(a.abs_diff(b) <= 8, "{a} vs {b}");
    assert!(a > 1_000, "most of the budget goes to the answers: {a}");
}

#[test]
fn tasks_that_do_not_fit_at_all_are_said_to_be_left_out() {
    let upstream: Vec<UpstreamContext> = (0..50)
        .map(|i| task(&format!("task-{i}"), "some answer"))
        .collect();
    let section = context_section(&upstream, 1_000);
    assert!(section.len() <= 1_000);
    assert!(section.contains("### Task `task-0`"));
    let notice = section.lines().last().unwrap();
    assert!(
        notice.starts_with("[... ") && notice.contains("more upstream tasks left out"),
        "{notice}"
    );
    let tiny = context_section(&upstream, 10);
    assert!(
        tiny.contains("[... 50 more upstream tasks left out"),
        "{tiny}"
    );
}

#[test]
fn cuts_fall_on_character_boundaries() {
    let section = context_section(&[task("ü", &"é€😀".repeat(1_000))], 300);
    assert!(section.len() <= 300);
    assert!(section.contains("bytes cut"));
}

/// Never longer than this, whatever the budget.
fn floor(upstream: &[UpstreamContext]) -> usize {
    let full: usize = context_section(upstream, usize::MAX).len();
    HEADING.len() + left_out_notice(upstream.len(), full).len()
}

fn upstream_task() -> impl Strategy<Value = UpstreamContext> {
    (
        "[a-z][a-z0-9-]{0,10}",
        "\\PC{0,400}",
        prop::collection::vec("[a-z/]{1,20}", 0..5),
        prop::collection::vec(("[a-z]{1,8}", "\\PC{0,20}"), 0..3),
    )
        .prop_map(|(task, summary, files_changed, values)| UpstreamContext {
            task,
            summary,
            files_changed,
            values,
        })
}

proptest! {
    #[test]
    fn the_section_keeps_to_its_budget_and_says_what_it_cut(
        upstream in prop::collection::vec(upstream_task(), 0..6),
        budget in 0usize..3_000,
    ) {
        let full = context_section(&upstream, usize::MAX);
        let section = context_section(&upstream, budget);
        if upstream.is_empty() {
            prop_assert_eq!(section, "");
            return Ok(());
        }
        prop_assert!(section.len() <= budget.max(floor(&upstream)), "{} > {budget}", section.len());
        if full.len() <= budget {
            prop_assert_eq!(&section, &full);
        } else {
            prop_assert!(
                section.contains("bytes cut to fit the context budget]")
                    || section.contains("left out"),
                "cut without a notice:\n{section}"
            );
        }
    }

    #[test]
    fn shares_never_exceed_the_room_or_what_is_wanted(
        wanted in prop::collection::vec(0usize..5_000, 1..8),
        room in 0usize..20_000,
    ) {
        let shares = fair_shares(&wanted, room);
        prop_assert!(shares.iter().sum::<usize>() <= room);
        for (share, want) in shares.iter().zip(&wanted) {
            prop_assert!(share <= want);
        }
        // Whoever is short of what it wants got at least as much as anyone else.
        let cut_min = shares.iter().zip(&wanted).filter(|(s, w)| s < w).map(|(s, _)| *s).min();
        if let Some(cut_min) = cut_min {
            prop_assert!(shares.iter().all(|s| *s <= cut_min + 1), "{shares:?}");
        }
    }
}
