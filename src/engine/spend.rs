//! Spend against every budget as front ends see it ([`BudgetsView`]): the budget ledger as the
//! store keeps it (usage counted per scope, budgets set while ocio runs) beside the configured
//! budgets and the plans shown. The engine builds its snapshot's report here, and `ocio budget`
//! builds the same report from the database when no engine runs ([`read`]).

use std::collections::HashMap;

use jiff::civil::Date;

use super::view::{BudgetsView, PlanSpendView, SpendView};
use crate::domain::{Agent, AgentName, Budget, Plan, PlanId, PlanWork, Task, TaskId, Usage};
use crate::store::{StoreError, query};

/// Usage counted against each budget and the budgets set while ocio runs, as the store keeps
/// them (`BUDGET_LEDGER`). The engine counts into it (`core/budget.rs`).
#[derive(Default)]
pub(crate) struct Ledger {
    pub(super) spent: HashMap<String, Usage>,
    pub(super) limits: HashMap<String, Budget>,
}

/// The ledger's key of a task's spend.
pub(crate) fn task_key(task: TaskId) -> String {
    format!("task/{task}")
}

pub(crate) fn plan_key(plan: PlanId) -> String {
    format!("plan/{plan}")
}

pub(crate) fn day_key(day: Date) -> String {
    format!("day/{day}")
}

pub(crate) fn agent_key(agent: &AgentName, day: Date) -> String {
    format!("agent/{agent}/{day}")
}

/// The ledger's key of an agent's daily budget set while ocio runs.
pub(crate) fn agent_limit(agent: &str) -> String {
    format!("agent/{agent}")
}

pub(crate) const DAILY_LIMIT: &str = "daily";

impl Ledger {
    pub(crate) fn load(spent: Vec<(String, Usage)>, limits: Vec<(String, Budget)>) -> Self {
        Self {
            spent: spent.into_iter().collect(),
            limits: limits.into_iter().collect(),
        }
    }

    /// The ledger as the store holds it.
    pub(crate) fn read(txn: &redb::ReadTransaction) -> Result<Self, StoreError> {
        Ok(Self::load(query::spent(txn)?, query::limits(txn)?))
    }

    pub(crate) fn spent(&self, key: &str) -> Usage {
        self.spent.get(key).copied().unwrap_or_default()
    }

    pub(crate) fn limit(&self, key: &str) -> Option<Budget> {
        self.limits.get(key).copied()
    }

    /// Limit `key` set back to `before` (none: not set while ocio runs), in memory only: a
    /// change its step did not store, undone.
    pub(crate) fn put_back_limit(&mut self, key: &str, before: Option<Budget>) {
        match before {
            Some(budget) => self.limits.insert(key.to_string(), budget),
            None => self.limits.remove(key),
        };
    }

    /// The engine's daily budget: the one set while ocio runs, else the `configured` one.
    pub(crate) fn daily_budget(&self, configured: Option<Budget>) -> Option<Budget> {
        self.limit(DAILY_LIMIT).or(configured)
    }

    /// `agent`'s daily budget: the one set while ocio runs, else its configured one.
    pub(crate) fn agent_budget(&self, agent: &Agent) -> Option<Budget> {
        self.limit(&agent_limit(agent.name.as_str()))
            .or(agent.budget)
    }

    /// A plan's budget and spend, why it is paused over budget (from its `work`), and its
    /// `tasks` stopped over budget.
    pub(crate) fn plan_spend<'a>(
        &self,
        plan: &Plan,
        work: Option<&PlanWork>,
        tasks: impl Iterator<Item = &'a Task>,
    ) -> PlanSpendView {
        PlanSpendView {
            plan: plan.id,
            name: plan.name.clone(),
            budget: work.and_then(|w| w.settings.budget),
            spent: self.spent(&plan_key(plan.id)),
            over_budget: work.and_then(|w| w.over_budget.clone()),
            stopped: tasks
                .filter(|t| t.over_budget.is_some())
                .map(|t| t.key.clone())
                .collect(),
        }
    }

    /// Spend on `day` against the engine's daily budget (`daily` as configured) and each of
    /// `agents`' budgets, and the `plans`' standing.
    pub(crate) fn report<'a>(
        &self,
        day: Date,
        daily: Option<Budget>,
        agents: impl Iterator<Item = &'a Agent>,
        plans: Vec<PlanSpendView>,
    ) -> BudgetsView {
        BudgetsView {
            day: day.to_string(),
            daily: self.daily_budget(daily),
            daily_spent: self.spent(&day_key(day)),
            agents: agents
                .map(|agent| SpendView {
                    name: agent.name.to_string(),
                    budget: self.agent_budget(agent),
                    spent: self.spent(&agent_key(&agent.name, day)),
                })
                .collect(),
            plans,
        }
    }
}

/// The report an engine starting on this database would give, read from it alone: the plans
/// it would load, the agents the last engine had (in the order of the `configured` names,
/// others after), with `daily` the configured daily budget.
pub(crate) fn read(
    txn: &redb::ReadTransaction,
    day: Date,
    daily: Option<Budget>,
    configured: &[String],
) -> Result<BudgetsView, StoreError> {
    let ledger = Ledger::read(txn)?;
    let plans = super::core::loaded_plans(txn)?;
    let mut shown = Vec::with_capacity(plans.len());
    for id in plans {
        if let Some(record) = query::plan_record(txn, id)? {
            let spend = ledger.plan_spend(&record.plan, record.work.as_ref(), record.tasks.iter());
            shown.push(spend);
        }
    }
    let mut agents = query::agents(txn)?;
    agents.sort_by_key(|a| {
        configured
            .iter()
            .position(|name| *name == a.name.as_str())
            .unwrap_or(configured.len())
    });
    Ok(ledger.report(day, daily, agents.iter(), shown))
}
