//! How a command fails: its message and exit code, from each kind of error.

use std::io::Write;

use super::exit;
use crate::config::ConfigError;
use crate::control::ControlError;
use crate::host::HostError;
use crate::logging::LoggingError;
use crate::paths::PathsError;
use crate::store::StoreError;

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Stdout was closed by its reader (`ocio man | head`): stop, say nothing, exit 0.
    pub(super) fn stdout_closed() -> Self {
        Self {
            code: exit::OK,
            message: String::new(),
        }
    }

    pub(super) fn usage(message: impl ToString) -> Self {
        Self {
            code: exit::USAGE,
            message: message.to_string(),
        }
    }
}

/// How a hosting command ended, told with the managed servers it left running for their
/// sessions (on stderr: a clean end says it on a line of its own).
pub(super) fn with_left(
    ended: Result<(), Failure>,
    left: &[crate::host::LeftServer],
) -> Result<(), Failure> {
    let Some(said) = crate::host::LeftServer::say(left) else {
        return ended;
    };
    match ended {
        Ok(()) => {
            let _ = writeln!(std::io::stderr(), "ocio: {said}");
            Ok(())
        }
        Err(mut failure) => {
            failure.message = match failure.message.is_empty() {
                true => said,
                false => format!("{}\n{said}", failure.message),
            };
            Err(failure)
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::usage(e)
    }
}

impl From<PathsError> for Failure {
    fn from(e: PathsError) -> Self {
        Failure::usage(e)
    }
}

impl From<LoggingError> for Failure {
    fn from(e: LoggingError) -> Self {
        Failure::usage(e)
    }
}

impl From<HostError> for Failure {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Store(e) => e.into(),
            HostError::Control(e) => Failure::usage(e),
            HostError::AlreadyRunning { .. } | HostError::Metrics(_) => Failure::usage(e),
            // An agent that cannot start as configured (no `opencode` for a managed one, say):
            // nothing was done, the message names the agent and what to fix.
            HostError::Agents(ref agents) if agents.is_config() => Failure::usage(e),
            HostError::Agents(_) | HostError::Engine(_) => Failure {
                code: exit::FAILED,
                message: e.to_string(),
            },
        }
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        let code = match &e {
            ControlError::Engine(refusal) => return Failure::from(refusal.clone()),
            ControlError::Version { .. } | ControlError::NotRunning { .. } => exit::USAGE,
            _ => exit::FAILED,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<crate::engine::ApiError> for Failure {
    fn from(e: crate::engine::ApiError) -> Self {
        let code = if e.kind.is_input() {
            exit::USAGE
        } else {
            exit::FAILED
        };
        // A plan still over budget: how to raise it from the shell.
        let message = match &e.over_budget {
            Some(still) => format!(
                "{}\nhint: raise it first, e.g. ocio budget {} --tokens N (--task KEY, --agent NAME or --daily for another budget)",
                e.message,
                still.plan.short()
            ),
            None => e.message,
        };
        Failure { code, message }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::Locked { .. }
            | StoreError::Unusable { .. }
            | StoreError::TooNew { .. }
            | StoreError::Damaged { .. }
            | StoreError::Io { .. } => exit::USAGE,
            StoreError::Storage(_) | StoreError::Decode { .. } | StoreError::Closed => exit::FAILED,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BudgetScope, PlanId};
    use crate::engine::{ApiError, EngineError};

    /// The engine says what budget is still reached; the command line says how to raise it
    /// from the shell, in the words it always had.
    #[test]
    fn a_plan_still_over_budget_is_told_the_shell_command_that_raises_it() {
        let plan = PlanId::from_u128(7);
        let refused = EngineError::OverBudget {
            plan,
            scope: BudgetScope::Task { key: "a".into() },
            cause: "over budget: task `a` budget 600/500 tokens".into(),
        };
        let failure = Failure::from(ApiError::from(refused));
        assert_eq!(failure.code, exit::USAGE);
        assert_eq!(
            failure.message,
            format!(
                "still over budget: task `a` budget 600/500 tokens\nhint: raise it first, e.g. ocio budget {} --tokens N (--task KEY, --agent NAME or --daily for another budget)",
                plan.short()
            )
        );
    }
}
