//! `ocio review PLAN`: a plan's result (its integration branch against its base, the files
//! changed and by which task, each task's answer, tokens and cost; the combined diff with
//! `--diff`), from the running engine or, with none, from the database and git; and `--mark`
//! / `--unmark` to say which files were reviewed (through a running engine).

use serde_json::json;

use super::database::{self, require_engine};
use super::output::{print_json, print_text};
use super::{Context, Failure};
use crate::domain::review::{BranchReview, PlanReview, ReviewFile, ReviewTask};
use crate::engine::EngineApi;

/// What `ocio review` was asked.
pub(crate) struct Asked {
    pub(crate) plan: String,
    pub(crate) json: bool,
    pub(crate) diff: bool,
    pub(crate) mark: Vec<String>,
    pub(crate) unmark: Vec<String>,
}

pub(crate) fn review(context: &Context, asked: Asked) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let marking = !asked.mark.is_empty() || !asked.unmark.is_empty();
        let engine = match marking {
            // A mark is written by the engine that owns the database.
            true => Some(require_engine(context).await?),
            false => database::engine(context).await?,
        };
        let review = match &engine {
            Some(client) => {
                let snapshot = client.snapshot().await?;
                let plan = super::plans::resolve(context, Some(&snapshot), &asked.plan)
                    .await?
                    .id;
                for (files, reviewed) in [(&asked.mark, true), (&asked.unmark, false)] {
                    for file in files {
                        client.mark_reviewed(plan, file, reviewed).await?;
                    }
                }
                client.review(plan).await?
            }
            None => at_rest(context, &asked.plan).await?,
        };
        if asked.json {
            let source = database::source_name(engine.as_ref());
            return print_json(&json!({ "source": source, "review": review }));
        }
        database::say_source(context, engine.as_ref());
        let mut out = text(&review);
        if asked.diff
            && let Some(branch) = &review.branch
        {
            out.push_str("\n\n");
            out.push_str(branch.diff.trim_end());
        }
        print_text(&out)
    })
}

/// The review of the plan `wanted` names with no engine running: from the database and git.
async fn at_rest(context: &Context, wanted: &str) -> Result<PlanReview, Failure> {
    let path = context.paths.db_file.clone();
    let root = crate::paths::worktree_root(&path);
    let name = wanted.to_string();
    // The plan named and its review in one read of the database.
    let read = move || {
        database::read(&path, move |txn| {
            let plans = super::plans::of_database(txn)?;
            Ok(match super::plans::pick(&plans, &name) {
                Some(plan) => crate::engine::review_at_rest(txn, plan, &root),
                None => Ok(None),
            })
        })
    };
    let read = tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| Failure {
            code: super::exit::FAILED,
            message: format!("reading the review did not finish: {e}"),
        })??;
    match read.map(|read| read.value) {
        Some(Ok(Some(review))) => Ok(review),
        Some(Ok(None)) | None => Err(Failure::usage(super::plans::none_named(wanted.trim()))),
        Some(Err(e)) => Err(crate::engine::ApiError::from(e).into()),
    }
}

/// The review as text: header, files, tasks.
pub(crate) fn text(review: &PlanReview) -> String {
    let mut out = format!("plan {} ({})", review.name, review.plan);
    let usage = &review.usage;
    let (done, all) = review.reviewed_count();
    if let Some(landing) = &review.landing {
        // A landing on the base leaves on the branch only what it did not take; a push
        // delivers nothing into the base.
        let rest = match landing.mode.is_some() && review.branch.is_some() {
            true => "; the branch below shows only what was not delivered",
            false => "",
        };
        out.push_str(&format!(
            "\n{} ({}, {}){rest}",
            landing.summary(),
            crate::text::count(landing.files.len(), "file"),
            landing.at.strftime("%Y-%m-%d %H:%M UTC")
        ));
    }
    match &review.branch {
        Some(branch) => out.push_str(&header(branch)),
        None => {
            let why = review
                .no_branch
                .as_deref()
                .unwrap_or("no integration branch");
            out.push_str(&format!("\nno branch to review: {why}"));
        }
    }
    out.push_str(&format!(
        "\ntokens {}  cost ${:.4}  reviewed {done}/{all} files",
        usage.total_tokens(),
        usage.cost
    ));
    if let Some(budget) = review.budget {
        out.push_str(&format!("\nbudget {}", budget.progress(usage)));
    }
    if let Some(cause) = &review.over_budget {
        out.push_str(&format!(
            "\npaused {cause}: ocio budget {} --tokens N to raise it and continue, --cancel to stop",
            review.plan.short()
        ));
    }
    if let Some(branch) = &review.branch {
        out.push_str(&format!("\n\nfiles ({})", branch.files.len()));
        for file in &branch.files {
            out.push_str(&format!("\n  {}", file_line(file)));
        }
        if let Some(whole) = branch.diff_cut {
            out.push_str(&format!(
                "\n  (the combined diff is {whole} bytes; it is cut at {} MB)",
                crate::domain::review::REVIEW_DIFF_CAP / (1024 * 1024)
            ));
        }
    }
    out.push_str(&format!("\n\ntasks ({})", review.tasks.len()));
    for task in &review.tasks {
        out.push_str(&task_lines(task));
    }
    out
}

fn header(branch: &BranchReview) -> String {
    let commit = branch.base_commit.get(..12).unwrap_or(&branch.base_commit);
    format!(
        "\nbranch {}  base {} ({commit})  ahead {}  behind {}",
        branch.integration, branch.base, branch.ahead, branch.behind
    )
}

/// `M  +3 -1  reviewed  src/a.rs  (api)`.
pub(crate) fn file_line(file: &ReviewFile) -> String {
    let counts = match (file.added, file.removed) {
        (Some(added), Some(removed)) => format!("+{added} -{removed}"),
        _ => "binary".to_string(),
    };
    let mut path = match &file.from {
        Some(from) => format!("{from} -> {}", file.path),
        None => file.path.clone(),
    };
    if let Some(mode) = &file.mode {
        path.push_str(&format!("  [{mode}]"));
    }
    let by = if file.tasks.is_empty() {
        "a resolver or the merge".to_string()
    } else {
        file.tasks.join(", ")
    };
    format!(
        "{}  {counts:<11} {:<22} {path}  ({by})",
        file.status,
        file.reviewed.text()
    )
}

fn task_lines(task: &ReviewTask) -> String {
    let mut out = format!(
        "\n  {}  {}  {}  tokens {}  cost ${:.4}  ({})",
        task.key,
        task.status,
        task.merge,
        task.usage.total_tokens(),
        task.usage.cost,
        crate::text::count(task.sessions as usize, "session")
    );
    if task.title != task.key && !task.title.is_empty() {
        out.push_str(&format!("\n    {}", task.title));
    }
    if let Some(answer) = &task.answer {
        let answer = crate::text::clip(answer.trim(), 600).replace('\n', "\n            ");
        out.push_str(&format!("\n    answer: {answer}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LandMode, PlanId, PlanLanding, Usage};

    /// After `ocio land` the review says where the work went (hand trial: it showed the branch
    /// against its base, which holds the work now: 0 files ahead, and nothing more).
    #[test]
    fn a_landed_plans_review_says_where_its_work_went() {
        let plan = PlanId::from_u128(7);
        let review = PlanReview {
            plan,
            name: "shop".into(),
            branch: None,
            no_branch: Some("none".into()),
            tasks: Vec::new(),
            usage: Usage::default(),
            budget: None,
            over_budget: None,
            landing: Some(PlanLanding {
                plan,
                mode: Some(LandMode::Squash),
                base: "main".into(),
                commit: "1a2b3c4d5e6f7a8b".into(),
                files: vec!["a.txt".into(), "b.txt".into()],
                at: "2026-12-06T07:00:00Z".parse().unwrap(),
                pushed_to: None,
                pr_url: None,
            }),
        };
        let mut review = review;
        review.branch = Some(BranchReview {
            integration: "ocio/shop/integration".into(),
            base: "main".into(),
            base_commit: "1a2b3c4d5e6f7a8b".into(),
            ahead: 0,
            behind: 0,
            files: Vec::new(),
            diff: String::new(),
            diff_cut: None,
        });
        let said = text(&review);
        assert!(
            said.contains("landed on main at 1a2b3c4d5e (2 files, 2026-12-06 07:00 UTC); the branch below shows only what was not delivered"),
            "{said}"
        );
        // A push delivers nothing into the base: the branch still shows all of the work.
        if let Some(landing) = review.landing.as_mut() {
            landing.mode = None;
            landing.pushed_to = Some("origin ocio/shop/integration".into());
        }
        let said = text(&review);
        assert!(
            said.contains("pushed to origin ocio/shop/integration at 1a2b3c4d5e (2 files")
                && !said.contains("not delivered"),
            "{said}"
        );
    }
}
