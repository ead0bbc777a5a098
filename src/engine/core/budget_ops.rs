//! What the operator does about budgets: raise one (a plan's, a task's, an agent's or the
//! engine's daily one), and settle a plan paused over budget: continue (its stopped tasks run
//! again, each from the work it committed on its branch) or cancel. One durable step each.

use super::budget::{DAILY_LIMIT, agent_limit, day_key, plan_key, task_key};
use super::{Core, Step, persist_changed_tasks};
use crate::domain::budget::{over_budget_cause, utc_day};
use crate::domain::{Budget, BudgetScope, PlanId, SessionStatus, TaskStatus};
use crate::engine::api::{BudgetTarget, BudgetThen};
use crate::engine::{EngineError, EngineEvent};
use crate::store::query;

/// A budget as it was before a raise, put back when what the raise was for is refused.
enum Before {
    Plan(Option<Budget>),
    Task(String, Option<Budget>),
    /// A ledger limit (an agent's daily budget, or the engine's) by its key.
    Limit(String, Option<Budget>),
}

impl Core {
    /// Raise `target`'s budget to `raise`'s limits (or lower it: below what is spent, it
    /// stops the work it counts at once), then settle `plan` if it is paused over budget, as
    /// `then` says.
    pub(super) async fn settle_budget(
        &mut self,
        plan: PlanId,
        target: BudgetTarget,
        raise: Option<Budget>,
        then: BudgetThen,
    ) -> Result<(), EngineError> {
        self.load_plan(plan).await?;
        let mut step = Step::default();
        let before = match raise {
            Some(raise) => Some(self.raise(plan, &target, raise, &mut step)?),
            None => None,
        };
        let held = self
            .plans
            .get(&plan)
            .and_then(|s| s.work.work.over_budget.clone());
        let settled = match (held, then) {
            (None, _) | (_, BudgetThen::Hold) => Ok(()),
            (Some(_), BudgetThen::Continue) => self.continue_held(plan, &mut step),
            (Some(_), BudgetThen::Cancel) => self.cancel_plan(plan, &mut step),
        };
        if let Err(refused) = settled {
            // Refused: nothing changes (the step that stored the raise is dropped).
            if let Some(before) = before {
                self.put_back(plan, before);
            }
            return Err(refused);
        }
        // A budget set below what is spent already applies now, not at the next step: the
        // work counted against it is stopped and its plan paused.
        let stops = match then {
            BudgetThen::Cancel => Vec::new(),
            _ => self.enforce_budgets(&mut step),
        };
        self.commit(step).await?;
        self.stop_over_budget(stops);
        self.check_finished(plan).await
    }

    /// Continue `plan`, paused over budget, unless it lands or a budget is still reached.
    fn continue_held(&mut self, plan: PlanId, step: &mut Step) -> Result<(), EngineError> {
        self.not_while_landing(plan, "its stopped tasks' work")?;
        // How to raise it is each front end's to say (a shell command, a `:budget`).
        if let Some((scope, cause)) = self.still_over(plan) {
            return Err(EngineError::OverBudget { plan, scope, cause });
        }
        self.continue_plan(plan, step)
    }

    /// Keep `plan` loaded (one paused long ago may have been let go).
    async fn load_plan(&mut self, plan: PlanId) -> Result<(), EngineError> {
        if self.plans.contains_key(&plan) {
            return Ok(());
        }
        let record = self
            .store
            .read(move |txn| query::plan_record(txn, plan))
            .await?
            .ok_or(EngineError::UnknownPlan(plan))?;
        self.load(record, self.now()).await
    }

    /// `target`'s budget with `raise`'s limits, into `step`; what it was before.
    fn raise(
        &mut self,
        plan: PlanId,
        target: &BudgetTarget,
        raise: Budget,
        step: &mut Step,
    ) -> Result<Before, EngineError> {
        let state = self
            .plans
            .get_mut(&plan)
            .ok_or(EngineError::UnknownPlan(plan))?;
        let before = match target {
            BudgetTarget::Plan => {
                let settings = &mut state.work.work.settings;
                let before = settings.budget;
                settings.budget = Some(before.unwrap_or_default().with(raise));
                step.batch.put_plan_work(&state.work.work);
                Before::Plan(before)
            }
            BudgetTarget::Task { key } => {
                let task = state.graph.get(key).ok_or_else(|| {
                    EngineError::BadAnswer(format!("plan {} has no task `{key}`", plan.short()))
                })?;
                let before = task.budget;
                let budget = before.unwrap_or_default().with(raise);
                let over = task.over_budget.clone();
                let task = state.graph.set_budget(key, over, Some(budget))?;
                step.batch.put_task(task);
                Before::Task(key.clone(), before)
            }
            BudgetTarget::Agent { agent } => {
                let index = self.fleet.index_of(agent)?;
                let key = agent_limit(agent);
                let before = self.budgets.limit(&key);
                let budget = self.agent_budget(index).unwrap_or_default().with(raise);
                self.budgets.set_limit(&key, budget, step);
                Before::Limit(key, before)
            }
            BudgetTarget::Daily => {
                let before = self.budgets.limit(DAILY_LIMIT);
                let budget = self.daily_budget().unwrap_or_default().with(raise);
                self.budgets.set_limit(DAILY_LIMIT, budget, step);
                Before::Limit(DAILY_LIMIT.to_string(), before)
            }
        };
        Ok(before)
    }

    /// A raise of `plan`'s undone in memory (its step was not stored).
    fn put_back(&mut self, plan: PlanId, before: Before) {
        match before {
            Before::Plan(budget) => {
                if let Some(state) = self.plans.get_mut(&plan) {
                    state.work.work.settings.budget = budget;
                }
            }
            Before::Task(key, budget) => {
                if let Some(state) = self.plans.get_mut(&plan) {
                    state.graph.put_budget(&key, budget);
                }
            }
            Before::Limit(key, budget) => self.budgets.put_back_limit(&key, budget),
        }
    }

    /// A budget the plan's stopped work still counts against that is reached (today, for
    /// the daily ones): which, and what the operator is told of it.
    fn still_over(&self, plan: PlanId) -> Option<(BudgetScope, String)> {
        let state = self.plans.get(&plan)?;
        let spent = |key: &str| self.budgets.spent(key);
        let over = |budget: Option<Budget>, key: &str, scope: BudgetScope| {
            let standing = budget?.reached(&spent(key))?;
            let cause = over_budget_cause(&scope, &standing);
            Some((scope, cause))
        };
        // Those it stopped, and those that would be stopped before they start.
        let stopped = state.graph.tasks().filter(|t| {
            t.over_budget.is_some() || matches!(t.status, TaskStatus::Ready | TaskStatus::Pending)
        });
        for task in stopped {
            let scope = BudgetScope::Task {
                key: task.key.clone(),
            };
            if let Some(over) = over(task.budget, &task_key(task.id), scope) {
                return Some(over);
            }
        }
        let budget = state.work.work.settings.budget;
        over(budget, &plan_key(plan), BudgetScope::Plan).or_else(|| {
            let today = day_key(utc_day(self.now()));
            over(self.daily_budget(), &today, BudgetScope::Daily)
        })
    }

    /// Lift `plan`'s pause: its tasks stopped over budget ready again (each continues from
    /// its branch), their dependents re-opened.
    fn continue_plan(&mut self, plan: PlanId, step: &mut Step) -> Result<(), EngineError> {
        let now = self.now();
        let Some(state) = self.plans.get_mut(&plan) else {
            return Ok(());
        };
        state.work.work.over_budget = None;
        step.batch.put_plan_work(&state.work.work);
        let mark = step.events.len();
        let stopped: Vec<String> = state
            .graph
            .tasks()
            .filter(|t| t.over_budget.is_some() && t.status == TaskStatus::Failed)
            .map(|t| t.key.clone())
            .collect();
        for key in stopped {
            let cause = "continues within its raised budget, from the work on its branch";
            step.transition(
                state
                    .graph
                    .transition(&key, TaskStatus::Ready, cause, now)?,
            );
            for event in state.graph.reopen_dependents(&key, now)? {
                step.transition(event);
            }
            state.ready_since.insert(key, now);
        }
        state.finished = false;
        persist_changed_tasks(step, &state.graph, mark);
        step.events.push(EngineEvent::BudgetResolved {
            plan,
            name: state.plan.name.clone(),
            continued: true,
        });
        Ok(())
    }

    /// Lift `plan`'s pause by cancelling it: every task of it that has not ended (the ones
    /// stopped over budget among them) cancelled, running ones stopped.
    fn cancel_plan(&mut self, plan: PlanId, step: &mut Step) -> Result<(), EngineError> {
        let now = self.now();
        for run in self.running.values_mut().filter(|r| r.plan == plan) {
            run.ask_stop(SessionStatus::Cancelled);
        }
        let Some(state) = self.plans.get_mut(&plan) else {
            return Ok(());
        };
        state.work.work.over_budget = None;
        step.batch.put_plan_work(&state.work.work);
        let mark = step.events.len();
        let ending: Vec<String> = state
            .graph
            .tasks()
            .filter(|t| {
                matches!(t.status, TaskStatus::Pending | TaskStatus::Ready)
                    || (t.over_budget.is_some() && t.status == TaskStatus::Failed)
            })
            .map(|t| t.key.clone())
            .collect();
        for key in ending {
            let cause = "cancelled over budget by the operator";
            step.transition(
                state
                    .graph
                    .transition(&key, TaskStatus::Cancelled, cause, now)?,
            );
            state.ready_since.remove(&key);
        }
        persist_changed_tasks(step, &state.graph, mark);
        step.events.push(EngineEvent::BudgetResolved {
            plan,
            name: state.plan.name.clone(),
            continued: false,
        });
        Ok(())
    }
}
