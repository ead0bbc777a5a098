//! `ocio land PLAN`: asks the running engine to deliver a finished plan's work to its base
//! branch (or push it and open a pull request), and says what landed where.

use serde_json::json;

use super::database::require_engine;
use super::output::{print_json, print_text};
use super::{Context, Failure};
use crate::domain::{LandMode, PlanId};
use crate::engine::{EngineApi, Landing, Push, Snapshot};

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
        let plan = resolve_plan(&snapshot, wanted)?;
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

/// The plan `wanted` names among the engine's plans, or an id it does not list (an older
/// plan, read back from the store).
pub(super) fn resolve_plan(snapshot: &Snapshot, wanted: &str) -> Result<PlanId, Failure> {
    super::plans::pick(&super::plans::of_snapshot(snapshot), wanted)
        .or_else(|| wanted.trim().parse().ok())
        .ok_or_else(|| Failure::usage(super::plans::none_named(wanted.trim())))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::view::PlanView;

    /// Two plans of one name: each is found by what the room calls it (its branches' name).
    #[test]
    fn a_plan_is_found_by_the_name_its_branches_take() {
        let plan = |n: u128, key: &str| PlanView {
            id: PlanId::from_u128(n),
            name: "p1".into(),
            key: key.into(),
            repo: "/repo".into(),
            tasks: Vec::new(),
            landing: None,
        };
        let snapshot = Snapshot {
            plans: vec![plan(1, "p1"), plan(2, "p1-2")],
            ..Snapshot::default()
        };
        let found = |wanted| resolve_plan(&snapshot, wanted).ok();
        // As the room shows them: the older `p1`, the newer `p1-2`.
        assert_eq!(found("p1"), Some(PlanId::from_u128(1)));
        assert_eq!(found("p1-2"), Some(PlanId::from_u128(2)));
        assert_eq!(found("p1-3"), None);
    }
}
