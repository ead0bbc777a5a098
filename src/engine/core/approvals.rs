//! Permission requests from running sessions: the session waits (waiting-approval) while the
//! policy or the operator decides; each decision is a transition whose cause says what was
//! decided and by whom, then names the request, so the control log is the audit trail (and the
//! events pane's line about it leads with the decision).

use tokio::sync::oneshot;

use super::{Core, Step};
use crate::domain::{SessionId, SessionStatus};
use crate::engine::approval::{self, Approver, Ask, Decision};
use crate::engine::{EngineError, EngineEvent};

/// A request the operator has not answered yet.
pub(super) struct Pending {
    pub session: SessionId,
    pub ask: Ask,
    pub answer: oneshot::Sender<Decision>,
}

impl Core {
    pub(super) async fn on_permission(
        &mut self,
        session: SessionId,
        ask: Ask,
        answer: oneshot::Sender<Decision>,
    ) -> Result<(), EngineError> {
        let Some(run) = self.running.get_mut(&session) else {
            return Ok(()); // the run is over; dropping `answer` tells the runner
        };
        let now = self.options.clock.now();
        let what = describe(&ask);
        let mut step = Step::default();
        if let Ok(event) =
            run.session
                .transition(SessionStatus::WaitingApproval, format!("asks {what}"), now)
        {
            step.transition(event);
        }
        let directory = run
            .session
            .remote
            .as_ref()
            .map(|r| r.directory.clone())
            .unwrap_or_default();
        match self.options.approvals.decide(&ask, &directory) {
            Some((decision, why)) => {
                let cause = format!("{} by policy ({why}): {what}", decision.text());
                if let Ok(event) = run.session.transition(SessionStatus::Running, cause, now) {
                    step.transition(event);
                }
                step.batch.put_session(&run.session);
                self.commit(step).await?;
                let _ = answer.send(decision);
            }
            None => {
                step.batch.put_session(&run.session);
                step.events.push(EngineEvent::ApprovalRequested {
                    session,
                    task: run.key.clone(),
                    request: ask.id.clone(),
                    permission: ask.permission.clone(),
                    patterns: ask.patterns.clone(),
                });
                self.commit(step).await?;
                self.approvals.insert(
                    ask.id.clone(),
                    Pending {
                        session,
                        ask,
                        answer,
                    },
                );
            }
        }
        Ok(())
    }

    /// The operator's answer to request `id` (the whole id, or its short form when it names
    /// one request alone), given by `by`.
    pub(super) async fn approve(
        &mut self,
        id: &str,
        decision: Decision,
        by: Approver,
    ) -> Result<(), EngineError> {
        let unknown = || EngineError::UnknownApproval(id.to_string());
        let key = if self.approvals.contains_key(id) {
            id.to_string()
        } else {
            let named: Vec<&String> = self
                .approvals
                .keys()
                .filter(|k| approval::names(k, id))
                .collect();
            match named.as_slice() {
                [one] => (*one).clone(),
                _ => return Err(unknown()),
            }
        };
        let pending = self.approvals.remove(&key).ok_or_else(unknown)?;
        let Some(run) = self.running.get_mut(&pending.session) else {
            return Err(unknown());
        };
        let now = self.options.clock.now();
        let cause = format!(
            "{} by {}: {}",
            decision.text(),
            by.text(),
            describe(&pending.ask)
        );
        let mut step = Step::default();
        if let Ok(event) = run.session.transition(SessionStatus::Running, cause, now) {
            step.transition(event);
        }
        step.batch.put_session(&run.session);
        self.commit(step).await?;
        let _ = pending.answer.send(decision);
        Ok(())
    }

    /// Requests still waiting for the operator.
    pub(super) fn pending_approvals(&self) -> Vec<(SessionId, Ask)> {
        self.approvals
            .values()
            .map(|p| (p.session, p.ask.clone()))
            .collect()
    }
}

fn describe(ask: &Ask) -> String {
    format!(
        "permission {} ({}) [{}]",
        ask.permission,
        ask.patterns.join(", "),
        ask.id
    )
}
