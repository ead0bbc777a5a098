//! Budgets: the most tokens and dollars a task, a plan, an agent's day or the engine's day may
//! spend, and the words that say how much of one is spent. Spend is usage as the model reports
//! it for each completed call; a call under way cannot be cut short, so a budget is overshot by
//! at most the one call that reached it. Days are UTC days.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::id::AgentName;
use super::session::Usage;

/// `budget = { tokens = 2_000_000, cost = 5.0 }`: either limit or both. Spend that reaches a
/// limit stops the work counted against it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BudgetKeys")]
pub struct Budget {
    /// Tokens of every kind (input, output, reasoning, cache reads and writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

/// A cost is never NaN: [`Budget::new`] (and reading one) refuses it.
impl Eq for Budget {}

/// A budget as written, before its rules.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetKeys {
    tokens: Option<u64>,
    cost: Option<f64>,
}

impl TryFrom<BudgetKeys> for Budget {
    type Error = String;

    fn try_from(keys: BudgetKeys) -> Result<Self, String> {
        Budget::new(keys.tokens, keys.cost)
    }
}

impl Budget {
    /// A budget with these limits, or why they are not one.
    pub fn new(tokens: Option<u64>, cost: Option<f64>) -> Result<Self, String> {
        if tokens.is_none() && cost.is_none() {
            return Err(
                "a budget needs `tokens`, `cost` or both, e.g. { tokens = 2_000_000, cost = 5.0 }"
                    .into(),
            );
        }
        if tokens == Some(0) {
            return Err("`tokens` must be at least 1".into());
        }
        if let Some(cost) = cost.filter(|c| !c.is_finite() || *c <= 0.0) {
            return Err(format!(
                "`cost` must be a positive number of US dollars, not {cost}"
            ));
        }
        Ok(Self { tokens, cost })
    }

    /// These limits, with those `other` sets replacing them.
    pub fn with(self, other: Budget) -> Budget {
        Budget {
            tokens: other.tokens.or(self.tokens),
            cost: other.cost.or(self.cost),
        }
    }

    /// How `spent` stands against a limit it has reached ("1200/1000 tokens"), or `None`
    /// while it is under every limit.
    pub fn reached(&self, spent: &Usage) -> Option<String> {
        if let Some(limit) = self.tokens
            && spent.total_tokens() >= limit
        {
            return Some(format!("{}/{limit} tokens", spent.total_tokens()));
        }
        if let Some(limit) = self.cost
            && spent.cost >= limit
        {
            return Some(format!("${:.4}/${limit:.2}", spent.cost));
        }
        None
    }

    /// `spent` against these limits: "1200/1000 tokens, $0.0100/$5.00".
    pub fn progress(&self, spent: &Usage) -> String {
        let mut parts = Vec::new();
        if let Some(limit) = self.tokens {
            parts.push(format!("{}/{limit} tokens", spent.total_tokens()));
        }
        if let Some(limit) = self.cost {
            parts.push(format!("${:.2}/${limit:.2}", spent.cost));
        }
        parts.join(", ")
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(tokens) = self.tokens {
            parts.push(format!("{tokens} tokens"));
        }
        if let Some(cost) = self.cost {
            parts.push(format!("${cost:.2}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// What a budget is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum BudgetScope {
    /// A task's, over all its attempts.
    Task { key: String },
    /// A plan's, over all its sessions.
    Plan,
    /// An agent's for one UTC day.
    Agent { agent: AgentName },
    /// The engine's for one UTC day, over every agent.
    Daily,
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Task { key } => write!(f, "task `{key}` budget"),
            Self::Plan => f.write_str("plan budget"),
            Self::Agent { agent } => write!(f, "agent `{agent}` daily budget (UTC)"),
            Self::Daily => f.write_str("engine daily budget (UTC)"),
        }
    }
}

/// The UTC day `at` falls on: daily budgets count from 00:00 UTC.
pub fn utc_day(at: Timestamp) -> Date {
    TimeZone::UTC.to_datetime(at).date()
}

/// Why work stopped: the budget reached and how it stands ("over budget: plan budget
/// 1200/1000 tokens").
pub fn over_budget_cause(scope: &BudgetScope, standing: &str) -> String {
    format!("over budget: {scope} {standing}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn used(tokens: u64, cost: f64) -> Usage {
        Usage {
            input_tokens: tokens,
            cost,
            ..Usage::default()
        }
    }

    #[test]
    fn a_budget_is_reached_at_its_limit_not_before() {
        let budget = Budget::new(Some(1000), Some(1.0)).unwrap();
        assert_eq!(budget.reached(&used(999, 0.5)), None);
        assert_eq!(
            budget.reached(&used(1000, 0.5)).as_deref(),
            Some("1000/1000 tokens")
        );
        assert_eq!(
            budget.reached(&used(10, 1.25)).as_deref(),
            Some("$1.2500/$1.00")
        );
        assert_eq!(
            budget.progress(&used(10, 0.25)),
            "10/1000 tokens, $0.25/$1.00"
        );
    }

    #[test]
    fn bad_budgets_say_what_is_wrong() {
        assert!(Budget::new(None, None).unwrap_err().contains("needs"));
        assert!(
            Budget::new(Some(0), None)
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            Budget::new(None, Some(-1.0))
                .unwrap_err()
                .contains("positive")
        );
        assert!(Budget::new(None, Some(f64::NAN)).is_err());
        let read: Result<Budget, _> = serde_json::from_str(r#"{"tokens": 5, "dollars": 1}"#);
        assert!(read.unwrap_err().to_string().contains("dollars"));
    }

    #[test]
    fn raising_keeps_the_limits_not_named() {
        let budget = Budget::new(Some(1000), Some(1.0)).unwrap();
        let raised = budget.with(Budget::new(Some(5000), None).unwrap());
        assert_eq!(raised, Budget::new(Some(5000), Some(1.0)).unwrap());
    }

    #[test]
    fn days_are_utc_days() {
        let late: Timestamp = "2026-12-04T23:59:59Z".parse().unwrap();
        let next: Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
        assert_ne!(utc_day(late), utc_day(next));
        assert_eq!(utc_day(next).to_string(), "2026-12-05");
    }
}
