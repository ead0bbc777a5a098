//! The domain: pure types and rules for sessions, tasks, plans, agents and leases, the records
//! of a plan's work (its repository use, what each finished task left), and the events their
//! transitions yield. No I/O, no clock, no async: time comes in as arguments.

pub mod agent;
pub mod event;
pub mod graph;
pub mod id;
pub mod lease;
pub mod lifecycle;
pub mod locks;
pub mod session;
#[cfg(test)]
mod session_props;
pub mod task;
pub mod work;

pub use agent::{Agent, AgentStatus, Backend, ModelRef};
pub use event::{DomainEvent, Transition, TransitionError};
pub use graph::{CriticalPath, GraphError, TaskGraph};
pub use id::{AgentName, PlanId, SessionId, TaskId};
pub use lease::Lease;
pub use lifecycle::Lifecycle;
pub use locks::{DenyReason, LockError, LockEvent, LockManager};
pub use session::{
    Checkpoint, CheckpointKind, RemoteSession, Session, SessionKind, SessionStatus, Usage,
};
pub use task::{Plan, Task, TaskStatus};
pub use work::{MergeState, PlanWork, TaskContext, WorkMode};
