//! Waiting in the engine's own tests: for an event, and (in a test runner) for the operator's
//! next message.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use crate::engine::runner::{Job, Steer};
use crate::engine::{EngineEvent, Subscription};

/// The next event that is `wanted`, within 30 s.
pub(super) async fn next(
    events: &mut Subscription,
    wanted: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(event) = events.recv().await
                && wanted(&event)
            {
                return event;
            }
        }
    })
    .await
    .expect("the event came in time")
}

/// The next `PlanFinished`, within 30 s.
pub(super) async fn finished(events: &mut Subscription) -> EngineEvent {
    next(events, |e| matches!(e, EngineEvent::PlanFinished { .. })).await
}

/// What the run is told next as a message (other words passed over).
pub(super) async fn said(job: &Job) -> String {
    loop {
        if let Steer::Say { text, .. } = job.steering.next().await {
            return text;
        }
    }
}
