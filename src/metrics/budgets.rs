//! The budget families of a metrics page, read from the snapshot at scrape time: spend and
//! limits (tokens and US dollars) of the engine's and each agent's UTC day and of each plan the
//! engine shows, and how many plans are paused over budget.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::domain::{Budget, Usage};
use crate::engine::view::BudgetsView;

type Labels = Vec<(&'static str, String)>;
type Dollars = Gauge<f64, AtomicU64>;

/// One budget's series: its scope (`daily`, `agent`, `plan`), its name, spend and limit.
struct Row<'a> {
    scope: &'static str,
    name: &'a str,
    spent: Usage,
    budget: Option<Budget>,
}

pub(super) fn register(r: &mut Registry, budgets: &BudgetsView) {
    let mut rows = vec![Row {
        scope: "daily",
        name: "engine",
        spent: budgets.daily_spent,
        budget: budgets.daily,
    }];
    rows.extend(budgets.agents.iter().map(|a| Row {
        scope: "agent",
        name: &a.name,
        spent: a.spent,
        budget: a.budget,
    }));
    rows.extend(budgets.plans.iter().map(|p| Row {
        scope: "plan",
        name: &p.name,
        spent: p.spent,
        budget: p.budget,
    }));
    let labels =
        |row: &Row| -> Labels { vec![("scope", row.scope.into()), ("name", row.name.into())] };
    let spent_tokens = Family::<Labels, Gauge>::default();
    let spent_dollars = Family::<Labels, Dollars>::default();
    let limit_tokens = Family::<Labels, Gauge>::default();
    let limit_dollars = Family::<Labels, Dollars>::default();
    for row in &rows {
        let at = labels(row);
        let tokens = i64::try_from(row.spent.total_tokens()).unwrap_or(i64::MAX);
        spent_tokens.get_or_create(&at).set(tokens);
        spent_dollars.get_or_create(&at).set(row.spent.cost);
        if let Some(limit) = row.budget.and_then(|b| b.tokens) {
            limit_tokens
                .get_or_create(&at)
                .set(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(limit) = row.budget.and_then(|b| b.cost) {
            limit_dollars.get_or_create(&at).set(limit);
        }
    }
    r.register(
        "ocio_budget_spent_tokens",
        "Tokens counted against a budget (daily: this UTC day), by scope and name",
        spent_tokens,
    );
    r.register(
        "ocio_budget_spent_dollars",
        "US dollars counted against a budget (daily: this UTC day), by scope and name",
        spent_dollars,
    );
    r.register(
        "ocio_budget_limit_tokens",
        "A budget's limit in tokens, by scope and name",
        limit_tokens,
    );
    r.register(
        "ocio_budget_limit_dollars",
        "A budget's limit in US dollars, by scope and name",
        limit_dollars,
    );
    let held = Gauge::<i64>::default();
    held.set(i64::try_from(budgets.held().count()).unwrap_or(i64::MAX));
    r.register(
        "ocio_plans_over_budget",
        "Plans paused over budget, waiting for the operator",
        held,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::PlanId;
    use crate::engine::view::PlanSpendView;

    #[test]
    fn spend_and_limits_show_by_scope_and_name() {
        let spent = Usage {
            input_tokens: 1200,
            cost: 0.5,
            ..Usage::default()
        };
        let budgets = BudgetsView {
            day: "2026-12-04".into(),
            daily: Budget::new(None, Some(5.0)).ok(),
            daily_spent: spent,
            agents: Vec::new(),
            plans: vec![PlanSpendView {
                plan: PlanId::generate(),
                name: "p".into(),
                budget: Budget::new(Some(1000), None).ok(),
                spent,
                over_budget: Some("over budget: plan budget 1200/1000 tokens".into()),
                stopped: vec!["a".into()],
            }],
        };
        let mut registry = Registry::default();
        register(&mut registry, &budgets);
        let mut page = String::new();
        prometheus_client::encoding::text::encode(&mut page, &registry).unwrap();
        for line in [
            "ocio_budget_spent_tokens{scope=\"plan\",name=\"p\"} 1200",
            "ocio_budget_limit_tokens{scope=\"plan\",name=\"p\"} 1000",
            "ocio_budget_spent_dollars{scope=\"daily\",name=\"engine\"} 0.5",
            "ocio_budget_limit_dollars{scope=\"daily\",name=\"engine\"} 5.0",
            "ocio_plans_over_budget 1",
        ] {
            assert!(page.contains(line), "no {line:?} in\n{page}");
        }
    }
}
