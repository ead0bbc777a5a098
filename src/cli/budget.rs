//! `ocio budget`: spend against every budget (today's, each agent's, each plan's), and
//! `ocio budget PLAN --tokens N --cost X`: raise a budget of the running engine's plan (or, with
//! `--task`, `--agent` or `--daily`, another one), then continue the plan if it is paused over
//! budget (`--cancel` cancels it instead, `--hold` leaves it paused).

use serde_json::json;

use super::database::require_engine;
use super::output::{print_json, print_text};
use super::{Context, Failure};
use crate::domain::{Budget, Usage};
use crate::engine::view::BudgetsView;
use crate::engine::{BudgetTarget, BudgetThen, EngineApi};

/// What `ocio budget` was asked.
pub(crate) struct Change {
    pub(crate) plan: Option<String>,
    pub(crate) task: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) daily: bool,
    pub(crate) tokens: Option<u64>,
    pub(crate) cost: Option<f64>,
    pub(crate) cancel: bool,
    pub(crate) hold: bool,
}

pub(crate) fn run(context: &Context, change: Change, json: bool) -> Result<(), Failure> {
    let raise = match (change.tokens, change.cost) {
        (None, None) => None,
        (tokens, cost) => Some(Budget::new(tokens, cost).map_err(Failure::usage)?),
    };
    let target = match (change.task, change.agent, change.daily) {
        (Some(key), _, _) => BudgetTarget::Task { key },
        (_, Some(agent), _) => BudgetTarget::Agent { agent },
        (_, _, true) => BudgetTarget::Daily,
        _ => BudgetTarget::Plan,
    };
    let then = match (change.cancel, change.hold) {
        (true, _) => BudgetThen::Cancel,
        (_, true) => BudgetThen::Hold,
        _ => BudgetThen::Continue,
    };
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        let snapshot = client.snapshot().await?;
        let Some(wanted) = change.plan else {
            return show(&snapshot.budgets, json);
        };
        let plan = super::land::resolve_plan(&snapshot, &wanted)?;
        client.budget(plan, target.clone(), raise, then).await?;
        let after = client.snapshot().await?;
        let spend = after.budgets.plan(plan);
        if json {
            return print_json(&json!({
                "source": "engine",
                "action": "budget",
                "plan": plan,
                "target": target,
                "raise": raise,
                "then": then,
                "budgets": after.budgets,
            }));
        }
        let mut said = match raise {
            Some(raise) => format!("budget raised to {raise}"),
            None => "budget unchanged".to_string(),
        };
        match spend {
            Some(s) if s.over_budget.is_some() => {
                said.push_str("; the plan stays paused over budget");
            }
            _ if then == BudgetThen::Cancel => said.push_str("; the plan's work was cancelled"),
            _ => said.push_str("; the plan goes on"),
        }
        if let Some(s) = spend {
            said.push_str(&format!("\n{}", plan_line(s)));
        }
        print_text(&said)
    })
}

fn show(budgets: &BudgetsView, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(&json!({ "source": "engine", "budgets": budgets }));
    }
    let mut lines = vec![format!(
        "today ({} UTC): {}",
        budgets.day,
        standing(budgets.daily, &budgets.daily_spent)
    )];
    for agent in &budgets.agents {
        lines.push(format!(
            "  agent {}: {}",
            agent.name,
            standing(agent.budget, &agent.spent)
        ));
    }
    lines.extend(budgets.plans.iter().map(plan_line));
    print_text(&lines.join("\n"))
}

fn plan_line(plan: &crate::engine::view::PlanSpendView) -> String {
    let mut line = format!("plan {}: {}", plan.name, standing(plan.budget, &plan.spent));
    if let Some(cause) = &plan.over_budget {
        line.push_str(&format!(
            "\n  paused {cause}; stopped: {}\n  hint: ocio budget {} --tokens N (or --cost X) to raise it and continue, --cancel to stop the plan",
            plan.stopped.join(", "),
            plan.plan.short()
        ));
    }
    line
}

/// Spend against a budget, or the spend alone when there is none.
pub(crate) fn standing(budget: Option<Budget>, spent: &Usage) -> String {
    match budget {
        Some(budget) => budget.progress(spent),
        None => format!(
            "{} tokens, ${:.2} (no budget)",
            spent.total_tokens(),
            spent.cost
        ),
    }
}
