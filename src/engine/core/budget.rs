//! Budgets that stop work. Spend is counted from the usage a running session reports after
//! each completed model call (the same steps that add up to its usage), and from its usage read
//! from the server when it ends, into a durable ledger: per task (over its attempts), per plan,
//! per agent per UTC day and for the engine per UTC day. Right after a call brings spend to a
//! budget's limit, every task session counted against it is stopped: a call under way cannot be
//! cut short, so a budget is overshot by at most that one call. A stopped session's work so
//! far is committed on its task's branch, its task fails saying which budget, and its plan
//! pauses (no new session starts in it) until the operator raises the budget and continues,
//! or cancels (`settle_budget`, in `budget_ops.rs`).

use std::collections::BTreeMap;

use jiff::civil::Date;

use super::{Core, Role, Running, Step};
use crate::domain::budget::{over_budget_cause, utc_day};
use crate::domain::{
    Budget, BudgetScope, Checkpoint, PlanId, SessionId, SessionStatus, TaskStatus, Usage,
};
use crate::engine::EngineEvent;

pub(super) use crate::engine::spend::{
    DAILY_LIMIT, Ledger, agent_key, agent_limit, day_key, plan_key, task_key,
};

/// What a running session has counted so far (removed when it ends).
fn session_key(session: SessionId) -> String {
    format!("session/{session}")
}

impl Ledger {
    pub(super) fn set_limit(&mut self, key: &str, budget: Budget, step: &mut Step) {
        self.limits.insert(key.to_string(), budget);
        step.batch.put_limit(key, &budget);
    }

    /// Count `total`, a session's usage so far, against `scopes`: only what it has not
    /// counted before. Once it has `ended`, its own record goes.
    fn count(
        &mut self,
        session: SessionId,
        scopes: &[String],
        total: Usage,
        ended: bool,
        step: &mut Step,
    ) {
        let key = session_key(session);
        let counted = self.spent(&key);
        let delta = less(total, counted);
        if delta != Usage::default() {
            for scope in scopes {
                let spent = self.spent.entry(scope.clone()).or_default();
                *spent += delta;
                step.batch.put_spent(scope, Some(spent));
            }
        }
        if ended {
            if self.spent.remove(&key).is_some() {
                step.batch.put_spent(&key, None);
            }
        } else if delta != Usage::default() {
            let mut now = counted;
            now += delta;
            self.spent.insert(key.clone(), now);
            step.batch.put_spent(&key, Some(&now));
        }
    }
}

/// What `total` has beyond `counted`, field by field (never below zero: a re-attached run
/// may report less than was counted before the restart).
fn less(total: Usage, counted: Usage) -> Usage {
    Usage {
        input_tokens: total.input_tokens.saturating_sub(counted.input_tokens),
        output_tokens: total.output_tokens.saturating_sub(counted.output_tokens),
        reasoning_tokens: total
            .reasoning_tokens
            .saturating_sub(counted.reasoning_tokens),
        cache_read_tokens: total
            .cache_read_tokens
            .saturating_sub(counted.cache_read_tokens),
        cache_write_tokens: total
            .cache_write_tokens
            .saturating_sub(counted.cache_write_tokens),
        cost: (total.cost - counted.cost).max(0.0),
    }
}

impl Core {
    /// Read the ledger from the store.
    pub(in crate::engine) async fn load_budgets(
        &mut self,
    ) -> Result<(), crate::engine::EngineError> {
        self.budgets = self.store.read(Ledger::read).await?;
        // What sessions that did not survive the last engine had counted: their usage is in
        // the budgets' spend already, and they count no more.
        let running: Vec<String> = self.running.keys().map(|id| session_key(*id)).collect();
        let stale: Vec<String> = self
            .budgets
            .spent
            .keys()
            .filter(|k| k.starts_with("session/") && !running.contains(k))
            .cloned()
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let mut step = Step::default();
        for key in stale {
            self.budgets.spent.remove(&key);
            step.batch.put_spent(&key, None);
        }
        self.commit(step).await
    }

    /// The engine's daily budget: the one set while ocio runs, else the config's.
    pub(super) fn daily_budget(&self) -> Option<Budget> {
        self.budgets.daily_budget(self.options.daily_budget)
    }

    /// Agent `index`'s daily budget: the one set while ocio runs, else the config's.
    pub(super) fn agent_budget(&self, index: usize) -> Option<Budget> {
        self.budgets.agent_budget(self.fleet.agent(index))
    }

    /// The ledger keys a run's spend counts against today.
    fn scopes(&self, run: &Running, day: Date) -> Vec<String> {
        let mut scopes = vec![plan_key(run.plan), day_key(day)];
        scopes.extend(run.session.task.map(task_key));
        if let Some(agent) = &run.session.agent {
            scopes.push(agent_key(agent, day));
        }
        scopes
    }

    /// Count running session `id`'s usage so far (its newest step) into `step`.
    pub(super) fn count_live(&mut self, id: SessionId, step: &mut Step) {
        let day = utc_day(self.now());
        let Some(run) = self.running.get(&id) else {
            return;
        };
        let scopes = self.scopes(run, day);
        let total = run.live;
        self.budgets.count(id, &scopes, total, false, step);
    }

    /// Count an ended run's usage (read from its server at its end) into `step`.
    pub(super) fn count_end(&mut self, run: &Running, step: &mut Step) {
        let day = utc_day(self.now());
        let scopes = self.scopes(run, day);
        let total = run.session.usage;
        self.budgets
            .count(run.session.id, &scopes, total, true, step);
    }

    /// The first budget `run` counts against that its spend has reached, as the cause of
    /// stopping it.
    pub(super) fn reached_by(&self, run: &Running, day: Date) -> Option<String> {
        self.budgets_of(run, day)
            .into_iter()
            .find_map(|(budget, key, scope)| {
                let standing = budget?.reached(&self.budgets.spent(&key?))?;
                Some(over_budget_cause(&scope, &standing))
            })
    }

    /// Whether the steps waiting to be recorded (`waiting`, among them running session
    /// `id`'s newest) may have brought spend to a budget `id` counts against: what every
    /// waiting session has not counted yet, added to each of its budgets' spend (more than
    /// they will count, never less). A step for which this is false can wait for the next tick.
    pub(super) fn may_reach_budget(&self, id: SessionId, waiting: &[Checkpoint]) -> bool {
        let day = utc_day(self.now());
        let Some(run) = self.running.get(&id) else {
            return false;
        };
        let budgets = self.budgets_of(run, day);
        if budgets.iter().all(|(budget, ..)| budget.is_none()) {
            return false;
        }
        let mut sessions: Vec<SessionId> = waiting.iter().map(|c| c.session).collect();
        sessions.sort_unstable();
        sessions.dedup();
        let mut uncounted = Usage::default();
        for session in sessions {
            if let Some(run) = self.running.get(&session) {
                uncounted += less(run.live, self.budgets.spent(&session_key(session)));
            }
        }
        budgets.into_iter().any(|(budget, key, _)| {
            let (Some(budget), Some(key)) = (budget, key) else {
                return false;
            };
            let mut spent = self.budgets.spent(&key);
            spent += uncounted;
            budget.reached(&spent).is_some()
        })
    }

    /// The budgets `run` counts against, each with the ledger key of its spend and its scope.
    /// None at all when its plan is gone.
    fn budgets_of(
        &self,
        run: &Running,
        day: Date,
    ) -> Vec<(Option<Budget>, Option<String>, BudgetScope)> {
        let Some(state) = self.plans.get(&run.plan) else {
            return Vec::new();
        };
        let task = state.graph.get(&run.key);
        let agent = self.fleet.agent(run.agent);
        vec![
            (
                task.and_then(|t| t.budget),
                task.map(|t| task_key(t.id)),
                BudgetScope::Task {
                    key: run.key.clone(),
                },
            ),
            (
                state.work.work.settings.budget,
                Some(plan_key(run.plan)),
                BudgetScope::Plan,
            ),
            (
                self.agent_budget(run.agent),
                Some(agent_key(&agent.name, day)),
                BudgetScope::Agent {
                    agent: agent.name.clone(),
                },
            ),
            (self.daily_budget(), Some(day_key(day)), BudgetScope::Daily),
        ]
    }

    /// Stop every running task session whose spend has reached a budget it counts against,
    /// and pause their plans and every plan whose own budget is reached, into `step`. The
    /// sessions to stop once `step` is durable ([`Core::stop_over_budget`]).
    pub(super) fn enforce_budgets(&mut self, step: &mut Step) -> Vec<(SessionId, String)> {
        let day = utc_day(self.now());
        let mut stops = Vec::new();
        let mut holds: BTreeMap<PlanId, (String, Vec<String>)> = BTreeMap::new();
        for run in self.running.values() {
            if run.role != Role::Task || run.stopping.is_some() {
                continue;
            }
            if let Some(cause) = self.reached_by(run, day) {
                let hold = holds
                    .entry(run.plan)
                    .or_insert_with(|| (cause.clone(), vec![]));
                hold.1.push(run.key.clone());
                stops.push((run.session.id, cause));
            }
        }
        for (id, state) in self.plans.iter() {
            let over = state
                .work
                .work
                .settings
                .budget
                .and_then(|budget| budget.reached(&self.budgets.spent(&plan_key(*id))));
            // Work would still start in it (a running task's session is stopped above, or
            // its work only waits for its merge, which goes on).
            let open = state
                .graph
                .tasks()
                .any(|t| matches!(t.status, TaskStatus::Pending | TaskStatus::Ready));
            if let (Some(standing), true) = (over, open) {
                holds
                    .entry(*id)
                    .or_insert_with(|| (over_budget_cause(&BudgetScope::Plan, &standing), vec![]));
            }
        }
        for (plan, (cause, tasks)) in holds {
            self.hold_plan(plan, cause, tasks, step);
        }
        stops
    }

    /// Why ready task `key` of `plan` must not start: its own budget or its plan's is spent
    /// already (an earlier attempt reached it). A session would be stopped after its first
    /// call; none is started instead, and the plan pauses.
    pub(super) fn spent_before_start(&self, plan: PlanId, key: &str) -> Option<String> {
        let state = self.plans.get(&plan)?;
        let task = state.graph.get(key)?;
        let over = |budget: Option<Budget>, ledger: String, scope: BudgetScope| {
            let standing = budget?.reached(&self.budgets.spent(&ledger))?;
            Some(over_budget_cause(&scope, &standing))
        };
        let scope = BudgetScope::Task {
            key: key.to_string(),
        };
        over(task.budget, task_key(task.id), scope).or_else(|| {
            let budget = state.work.work.settings.budget;
            over(budget, plan_key(plan), BudgetScope::Plan)
        })
    }

    /// Pause `plan` over budget (`tasks` stopped), durably in `step`, told once.
    pub(super) fn hold_plan(
        &mut self,
        plan: PlanId,
        cause: String,
        tasks: Vec<String>,
        step: &mut Step,
    ) {
        let Some(state) = self.plans.get_mut(&plan) else {
            return;
        };
        if state.work.work.over_budget.is_some() && tasks.is_empty() {
            return;
        }
        tracing::warn!(plan = %state.plan.name, %cause, "plan paused over budget");
        let cause = state.work.work.over_budget.get_or_insert(cause).clone();
        step.batch.put_plan_work(&state.work.work);
        step.events.push(EngineEvent::OverBudget {
            plan,
            name: state.plan.name.clone(),
            cause,
            tasks,
        });
    }

    /// Stop sessions over budget (their stop is durable): each keeps its work so far on its
    /// branch and ends with `cause`.
    pub(super) fn stop_over_budget(&mut self, stops: Vec<(SessionId, String)>) {
        for (id, cause) in stops {
            let Some(run) = self.running.get_mut(&id) else {
                continue;
            };
            tracing::info!(session = %id, %cause, "stopping a session over budget");
            if let Some(note) = &run.stop_note {
                let _ = note.set(cause.clone());
            }
            run.over_budget = Some(cause);
            run.ask_stop(SessionStatus::Failed);
        }
    }

    /// Whether work may not start on agent `index` now: its daily budget or the engine's is
    /// reached.
    pub(super) fn agent_over_budget(&self, index: usize) -> bool {
        let day = utc_day(self.now());
        let agent = &self.fleet.agent(index).name;
        let reached = |budget: Option<Budget>, key: String| {
            budget.is_some_and(|b| b.reached(&self.budgets.spent(&key)).is_some())
        };
        reached(self.daily_budget(), day_key(day))
            || reached(self.agent_budget(index), agent_key(agent, day))
    }
}

impl Core {
    /// Spend against every budget, for front ends: today's, and that of the plans `shown`.
    pub(super) fn budgets_view(&self, shown: &[PlanId]) -> crate::engine::view::BudgetsView {
        let plans = shown
            .iter()
            .filter_map(|id| self.plans.get(id))
            .map(|state| {
                let work = Some(&state.work.work);
                self.budgets
                    .plan_spend(&state.plan, work, state.graph.tasks())
            })
            .collect();
        let agents = self.fleet.live().map(|(_, agent)| agent);
        self.budgets.report(
            utc_day(self.now()),
            self.options.daily_budget,
            agents,
            plans,
        )
    }
}
