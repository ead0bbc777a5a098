//! `ocio budget`: spend against every budget (today's, each agent's, each plan's), from the
//! running engine or else the database; and `ocio budget PLAN --tokens N --cost X`: raise a
//! budget of the running engine's plan (or, with `--task`, `--agent` or `--daily`, another
//! one), then continue the plan if it is paused over budget (`--cancel` cancels it instead,
//! `--hold` leaves it paused).

use serde_json::json;

use super::database::{self, require_engine, say_source, source_name};
use super::output::{print_json, print_text};
use super::{Context, Failure};
use crate::control::ControlClient;
use crate::domain::budget::utc_day;
use crate::domain::{Budget, Usage};
use crate::engine::spend::{self, Ledger};
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
    let Some(wanted) = change.plan else {
        return report(context, json);
    };
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
        let plan = super::plans::resolve(context, Some(&snapshot), &wanted)
            .await?
            .id;
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
        // "Set", not "raised": it may be a lowering, even below what is spent (which pauses
        // the plan at once).
        let mut said = match raise {
            Some(raise) => format!("budget set to {raise}"),
            None => "budget unchanged".to_string(),
        };
        match spend {
            Some(s) if s.over_budget.is_some() => {
                said.push_str("; the plan is paused over budget");
            }
            _ if then == BudgetThen::Cancel => said.push_str("; the plan's work was cancelled"),
            // A plan that ended (or one older than the engine lists) has nothing to go on.
            _ if after.plans.iter().find(|p| p.id == plan).is_none_or(|p| {
                p.tasks
                    .iter()
                    .all(|t| crate::domain::Lifecycle::is_terminal(t.status))
            }) =>
            {
                said.push_str("; the plan has ended (a task run again counts against it)")
            }
            _ => said.push_str("; the plan goes on"),
        }
        if let Some(s) = spend {
            said.push_str(&format!("\n{}", plan_line(s)));
        }
        print_text(&said)
    })
}

/// Spend against every budget: the running engine's report, else the same report read from
/// the database (as an engine starting on it would give it).
fn report(context: &Context, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let engine = database::engine(context).await?;
        let budgets = match &engine {
            Some(client) => client.snapshot().await?.budgets,
            None => stored(context).await?,
        };
        show(context, engine.as_ref(), &budgets, json)
    })
}

/// The budget report from the database, through the engine's own [`spend::read`]; with no
/// database yet, the configured budgets with nothing spent.
async fn stored(context: &Context) -> Result<BudgetsView, Failure> {
    let config = &context.config.config;
    let day = utc_day(jiff::Timestamp::now());
    let daily = config.engine.daily_budget;
    let names: Vec<String> = config.agents.iter().map(|a| a.name.to_string()).collect();
    let path = context.paths.db_file.clone();
    let read = tokio::task::spawn_blocking(move || {
        database::read(&path, move |txn| spend::read(txn, day, daily, &names))
    })
    .await
    .map_err(|e| Failure {
        code: super::exit::FAILED,
        message: format!("reading the database did not finish: {e}"),
    })??;
    Ok(match read {
        Some(read) => read.value,
        None => {
            let agents: Vec<_> = config.agents.iter().map(|a| a.to_agent()).collect();
            Ledger::default().report(day, daily, agents.iter(), Vec::new())
        }
    })
}

fn show(
    context: &Context,
    engine: Option<&ControlClient>,
    budgets: &BudgetsView,
    json: bool,
) -> Result<(), Failure> {
    if json {
        let source = source_name(engine);
        return print_json(&json!({ "source": source, "budgets": budgets }));
    }
    say_source(context, engine);
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
