//! Which plan a command line names: one rule for every command, with the engine running (its
//! snapshot's plans) or not (the database's).

use super::{Context, Failure};
use crate::domain::PlanId;
use crate::engine::Snapshot;
use crate::store::{StoreError, query};

/// A plan as a command line may name it: its id, its name, and its key (what its branches
/// are named after: its name, or `<name>-2`... for a later plan of the same name, as the
/// control room shows twins).
pub(super) struct Named {
    pub(super) id: PlanId,
    pub(super) name: String,
    pub(super) key: String,
    /// What the control room shows it as, for the plans a running engine lists.
    pub(super) shown: Option<String>,
}

impl Named {
    /// What to call it among `plans`: what the room shows it as, else (from the database) as
    /// the room would: its name, or its key when another of them has the name.
    pub(super) fn shown<'a>(&'a self, plans: &[Named]) -> &'a str {
        if let Some(shown) = &self.shown {
            return shown;
        }
        let twin = plans.iter().any(|p| p.id != self.id && p.name == self.name);
        match twin && !self.key.is_empty() {
            true => &self.key,
            false => &self.name,
        }
    }
}

/// The plan `wanted` names among `plans` (oldest first): its id or the id's last 8
/// characters; what the room shows it as (`twin` and `twin-2` while both are listed); its
/// name (the newest of that name); else the name its branches take when that is not its
/// name (`twin-2`, the newest of them: keys are unique only within a repository).
pub(super) fn pick(plans: &[Named], wanted: &str) -> Option<PlanId> {
    let wanted = wanted.trim();
    let newest = |matches: &dyn Fn(&Named) -> bool| plans.iter().rev().find(|p| matches(p));
    // Ids as ocio prints them (upper case) or as the room shortens them (lower case).
    newest(&|p| {
        p.id.to_string().eq_ignore_ascii_case(wanted) || p.id.short().eq_ignore_ascii_case(wanted)
    })
    .or_else(|| newest(&|p| p.shown.as_deref() == Some(wanted)))
    .or_else(|| newest(&|p| p.name == wanted))
    .or_else(|| newest(&|p| p.key != p.name && p.key == wanted))
    .map(|p| p.id)
}

/// The plans a running engine lists, oldest first.
pub(super) fn of_snapshot(snapshot: &Snapshot) -> Vec<Named> {
    snapshot
        .plans
        .iter()
        .map(|p| Named {
            id: p.id,
            name: p.name.clone(),
            key: p.key.clone(),
            shown: Some(p.shown_name(&snapshot.plans).to_string()),
        })
        .collect()
}

/// Every plan the database holds, oldest first.
pub(super) fn of_database(txn: &redb::ReadTransaction) -> Result<Vec<Named>, StoreError> {
    let keys: std::collections::HashMap<PlanId, String> = query::plan_work(txn)?
        .into_iter()
        .map(|w| (w.plan, w.key))
        .collect();
    let mut plans = query::plans(txn)?;
    plans.sort_by_key(|p| (p.created_at, p.id));
    Ok(plans
        .into_iter()
        .map(|p| Named {
            key: keys.get(&p.id).cloned().unwrap_or_default(),
            id: p.id,
            name: p.name,
            shown: None,
        })
        .collect())
}

/// The plan `wanted` names, by [`pick`]'s rule: among the plans a running engine lists (with
/// `snapshot`, named as the room shows them), else among every plan the database holds (an
/// engine lists only its recent plans; the database is read beside it), else a full id the
/// engine may know (called by it). Exit 2 naming what to give when none matches.
pub(super) async fn resolve(
    context: &Context,
    snapshot: Option<&Snapshot>,
    wanted: &str,
) -> Result<Named, Failure> {
    let found = |plans: Vec<Named>| {
        let id = pick(&plans, wanted)?;
        plans.into_iter().find(|p| p.id == id)
    };
    if let Some(named) = snapshot.and_then(|s| found(of_snapshot(s))) {
        return Ok(named);
    }
    // A full id the engine does not list is its to find (an older plan): the database is not
    // read for it.
    if let (Some(_), Ok(id)) = (snapshot, wanted.trim().parse::<PlanId>()) {
        return Ok(Named {
            id,
            name: wanted.trim().to_string(),
            key: String::new(),
            shown: None,
        });
    }
    let stored = match snapshot {
        Some(_) => super::inspect::beside_engine(context, "plans", of_database).await,
        None => super::inspect::from_database(context, of_database).await?,
    };
    found(stored).ok_or_else(|| Failure::usage(none_named(wanted.trim())))
}

/// What a command says when no plan matches `wanted`.
pub(super) fn none_named(wanted: &str) -> String {
    format!(
        "no plan {wanted:?}\n  hint: `ocio tasks` lists the plans; give its name (the newest of that name), the name its branches take (`<name>-2`, as the room shows a later plan of one name), its id or the id's last 8 characters"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: u64, name: &str, key: &str) -> Named {
        Named {
            id: PlanId::from_parts(n, u128::from(n)),
            name: name.into(),
            key: key.into(),
            shown: None,
        }
    }

    /// From the database: a bare name is the newest of that name (not the first plan ever
    /// given it, whose key it is), `slow-2` the plan whose branches take it, an id before
    /// anything; a plan really named `api-2` before another repository's twin key `api-2`.
    #[test]
    fn a_plan_is_named_by_id_name_or_key() {
        let plans = [
            named(1, "slow", "slow"),
            named(2, "slow", "slow-2"),
            named(3, "fast", "fast"),
            named(4, "slow", "slow-3"),
        ];
        assert_eq!(pick(&plans, "slow-2"), Some(plans[1].id));
        assert_eq!(pick(&plans, "slow"), Some(plans[3].id), "the newest");
        assert_eq!(pick(&plans, " fast "), Some(plans[2].id));
        assert_eq!(pick(&plans, &plans[1].id.short()), Some(plans[1].id));
        // As ocio prints ids, upper case (hand trial: refused).
        let upper = plans[1].id.short().to_ascii_uppercase();
        assert_eq!(pick(&plans, &upper), Some(plans[1].id));
        assert_eq!(pick(&plans, &plans[0].id.to_string()), Some(plans[0].id));
        assert_eq!(pick(&plans, "slow-4"), None);
        let repos = [named(1, "api-2", "api-2"), named(2, "api", "api-2")];
        assert_eq!(pick(&repos, "api-2"), Some(repos[0].id));
    }

    /// With the engine running, as the room shows twins: `slow` the older, `slow-2` the newer.
    #[test]
    fn listed_twins_are_named_as_the_room_shows_them() {
        let mut plans = [named(1, "slow", "slow"), named(2, "slow", "slow-2")];
        plans[0].shown = Some("slow".into());
        plans[1].shown = Some("slow-2".into());
        assert_eq!(pick(&plans, "slow"), Some(plans[0].id));
        assert_eq!(pick(&plans, "slow-2"), Some(plans[1].id));
    }
}
