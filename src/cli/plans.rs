//! Which plan a command line names: one rule for every command, with the engine running (its
//! snapshot's plans) or not (the database's).

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
}

/// The plan `wanted` names among `plans` (oldest first): its id or the id's last 8
/// characters, its key (`deploy-2`: one plan), else its name (the newest of that name).
pub(super) fn pick(plans: &[Named], wanted: &str) -> Option<PlanId> {
    let wanted = wanted.trim();
    let newest = |matches: &dyn Fn(&Named) -> bool| plans.iter().rev().find(|p| matches(p));
    newest(&|p| p.id.to_string() == wanted || p.id.short() == wanted)
        .or_else(|| newest(&|p| !p.key.is_empty() && p.key == wanted))
        .or_else(|| newest(&|p| p.name == wanted))
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
        })
        .collect())
}

/// What a command says when no plan matches `wanted`.
pub(super) fn none_named(wanted: &str) -> String {
    format!(
        "no plan {wanted:?}\n  hint: `ocio tasks` lists the plans; give its name (the newest of that name), the name its branches take (`<name>-2`), its id or the id's last 8 characters"
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
        }
    }

    /// Twins of one name: each by its key, the newest by the name; an id before anything.
    #[test]
    fn a_plan_is_named_by_id_key_or_name() {
        let plans = [
            named(1, "slow", "slow"),
            named(2, "slow", "slow-2"),
            named(3, "fast", "fast"),
        ];
        assert_eq!(pick(&plans, "slow-2"), Some(plans[1].id));
        assert_eq!(pick(&plans, "slow"), Some(plans[0].id), "its key first");
        assert_eq!(pick(&plans, " fast "), Some(plans[2].id));
        assert_eq!(pick(&plans, &plans[1].id.short()), Some(plans[1].id));
        assert_eq!(pick(&plans, &plans[0].id.to_string()), Some(plans[0].id));
        assert_eq!(pick(&plans, "slow-3"), None);
        // Without keys (plans not in worktrees, older files): the newest of the name.
        let plain = [named(1, "slow", ""), named(2, "slow", "")];
        assert_eq!(pick(&plain, "slow"), Some(plain[1].id));
    }
}
