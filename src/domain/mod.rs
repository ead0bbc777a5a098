//! The domain: pure types and rules for sessions, tasks, plans, agents and leases, the records
//! of a plan's work (its repository use, what each finished task left), and the events their
//! transitions yield. No I/O, no clock, no async: time comes in as arguments.

pub(crate) mod agent;
pub mod budget;
pub(crate) mod event;
pub(crate) mod graph;
pub(crate) mod id;
pub(crate) mod lease;
pub(crate) mod lifecycle;
pub(crate) mod locks;
pub mod review;
pub(crate) mod session;
#[cfg(test)]
mod session_props;
pub mod task;
pub(crate) mod work;

pub(crate) use agent::fleet_of;
pub use agent::{Agent, AgentStatus, Backend, Fleet, ModelRef};
pub use budget::{Budget, BudgetScope};
pub use event::{DomainEvent, Transition, TransitionError};
pub use graph::GraphError;
pub(crate) use graph::TaskGraph;
pub use id::{AgentName, MessageId, PlanId, SessionId, TaskId};
pub use lease::Lease;
pub use lifecycle::Lifecycle;
pub(crate) use session::OperatorWord;
pub use session::{
    Checkpoint, CheckpointKind, RemoteSession, Session, SessionKind, SessionStatus, Usage,
};
pub use task::{Plan, Task, TaskStatus};
pub use work::{LandMode, MergeState, PlanLanding, TaskContext};
pub(crate) use work::{PlanWork, WorkMode};
