//! `ocio land PLAN`: asks the running engine to deliver a finished plan's work to its base
//! branch (or push it and open a pull request), and says what landed where.

use serde_json::json;

use super::database::require_engine;
use super::output::{print_json, print_text};
use super::{Context, Failure};
use crate::domain::LandMode;
use crate::engine::{EngineApi, Landing, Push};

/// Land plan `wanted` (its id, the id's last 8 characters, or its name) by `mode`, or push it.
pub(crate) fn run(
    context: &Context,
    wanted: &str,
    mode: LandMode,
    push: Option<Push>,
    json: bool,
) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        let snapshot = client.snapshot().await?;
        let plan = super::plans::resolve(context, Some(&snapshot), wanted)
            .await?
            .id;
        let landing = client.land(plan, mode, push).await?;
        if json {
            let r = &landing.record;
            print_json(&json!({
                "plan": r.plan,
                "name": landing.name,
                "mode": r.mode,
                "base": r.base,
                "commit": r.commit,
                "files": r.files,
                "pushed_to": r.pushed_to,
                "pr_url": r.pr_url,
                "already": landing.already,
                "recovered": landing.recovered,
                "base_merged": landing.base_merged,
                "base_resolved": landing.base_resolved,
                "left_out": landing.left_out,
                "removed": landing.removed,
                "branches_deleted": landing.branches_deleted,
            }))
        } else {
            print_text(&describe(&landing))
        }
    })
}

/// What landed where, as a person reads it.
fn describe(landing: &Landing) -> String {
    let r = &landing.record;
    let short = r.commit.get(..12).unwrap_or(&r.commit);
    let name = &landing.name;
    let mut out = match (&r.mode, &r.pushed_to) {
        (_, Some(to)) => format!("plan {name} pushed to {to} at {short}"),
        (Some(mode), None) if landing.already => format!(
            "plan {name} already landed on {} ({}) at {short}, {}: nothing to do",
            r.base,
            mode.name(),
            r.at.strftime("%Y-%m-%d %H:%M")
        ),
        (mode, None) => format!(
            "plan {name} landed on {} ({}) at {short}",
            r.base,
            mode.map_or("merge", LandMode::name)
        ),
    };
    if let Some(url) = &r.pr_url {
        out.push_str(&format!("\n  pull request: {url}"));
    }
    if landing.recovered {
        out.push_str(&format!(
            "\n  {} already held the plan's work (an earlier landing was not recorded): recorded, no new commit",
            r.base
        ));
    }
    if landing.base_merged {
        out.push_str(&format!(
            "\n  {} had moved since the plan started: merged into the integration branch first",
            r.base
        ));
    }
    if !landing.base_resolved.is_empty() {
        out.push_str(&format!(
            "\n  its conflicts with the plan's work were settled by a resolver session: {}",
            landing.base_resolved.join(", ")
        ));
    }
    if !r.files.is_empty() {
        out.push_str(&format!("\n  files: {}", r.files.join(", ")));
    }
    if !landing.left_out.is_empty() {
        out.push_str(&format!("\n  not landed: {}", landing.left_out.join("; ")));
    }
    for path in &landing.removed {
        out.push_str(&format!("\n  removed worktree {}", path.display()));
    }
    if !landing.branches_deleted.is_empty() {
        out.push_str(&format!(
            "\n  deleted merged branches: {}",
            landing.branches_deleted.join(", ")
        ));
    }
    out
}
