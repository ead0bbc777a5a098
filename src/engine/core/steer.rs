//! The operator steers a running session: a follow-up message (the task's result becomes the
//! answer to the last one), or an interrupt (the step under way stops, the session waits for
//! the operator's next message, and the task does not fail). Each is a checkpoint of the
//! session and a line of its transcript before it is passed to the run; an interrupt is a
//! transition to waiting-approval, the next message one back to running.

use super::{Core, Step};
use crate::domain::{CheckpointKind, MessageId, OperatorWord, SessionId, SessionStatus};
use crate::engine::EngineError;
use crate::engine::runner::Steer;
use crate::engine::view::{Activity, Entry};

impl Core {
    /// Send `text` to running session `session`.
    pub(super) async fn say(
        &mut self,
        session: SessionId,
        text: String,
    ) -> Result<(), EngineError> {
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(EngineError::BadAnswer(
                "an empty message: say what the session should do".into(),
            ));
        }
        let now = self.options.clock.now();
        let run = self.steerable(session)?;
        let mut step = Step::default();
        let interrupted = run.session.word == Some(OperatorWord::Interrupt);
        let (id, checkpoint) = message_to(run, "operator", &text, now);
        if interrupted {
            let cause = format!("the operator says: {}", crate::text::clip(&text, 200));
            if let Ok(event) = run.session.transition(SessionStatus::Running, cause, now) {
                step.transition(event);
            }
        }
        step.batch
            .put_session(&run.session)
            .put_checkpoint(&checkpoint);
        let task = run.session.task;
        let permit = reserve(run.steer.as_ref())?;
        // The task keeps it too, for an attempt that starts afresh.
        let located = task.and_then(|t| self.plans.locate(&t));
        let located = located.map(|(plan, key)| (plan, key.to_string()));
        if let Some((plan, key)) = located
            && let Some(state) = self.plans.get_mut(&plan)
            && let Ok(task) = state.graph.steer(&key, text.clone())
        {
            step.batch.put_task(task);
        }
        self.commit(step).await?;
        self.note(session, format!("operator: {text}"));
        permit.send(Steer::Say { text, id });
        Ok(())
    }

    /// Stop what running session `session` does now, keeping the session for the next message.
    pub(super) async fn interrupt(&mut self, session: SessionId) -> Result<(), EngineError> {
        let now = self.options.clock.now();
        let run = self.steerable(session)?;
        if run.session.word == Some(OperatorWord::Interrupt) {
            return Ok(());
        }
        run.session.word = Some(OperatorWord::Interrupt);
        let cause = "interrupted by the operator: waits for their next message".to_string();
        let mut step = Step::default();
        if let Ok(event) = run
            .session
            .transition(SessionStatus::WaitingApproval, cause, now)
        {
            step.transition(event);
        }
        let data = serde_json::json!({ "operator": "interrupt" });
        let checkpoint = run.session.checkpoint(CheckpointKind::Note, data, now);
        step.batch
            .put_session(&run.session)
            .put_checkpoint(&checkpoint);
        let permit = reserve(run.steer.as_ref())?;
        self.commit(step).await?;
        self.note(session, "operator: interrupt".into());
        permit.send(Steer::Interrupt);
        Ok(())
    }

    /// The run of `session`, if the operator can steer it now.
    fn steerable(&mut self, session: SessionId) -> Result<&mut super::Running, EngineError> {
        let not_now = |why: &str| EngineError::NotSteerable(format!("session {session} {why}"));
        let waits = self.approvals.values().any(|p| p.session == session);
        let Some(run) = self.running.get_mut(&session) else {
            return Err(not_now(
                "is not running: only a running session takes messages (retry its task to run it again)",
            ));
        };
        if run.stopping.is_some() {
            return Err(not_now("is being stopped"));
        }
        if waits {
            return Err(not_now(
                "waits for an answer to its request: answer that first (the inbox, ocio approve or ocio answer)",
            ));
        }
        if !matches!(
            run.session.status,
            SessionStatus::Running | SessionStatus::WaitingApproval | SessionStatus::Retrying
        ) {
            return Err(not_now("has not started yet: try again once it runs"));
        }
        Ok(run)
    }

    /// A line in the session's transcript from the engine.
    pub(super) fn note(&mut self, session: SessionId, text: String) {
        let entry = Entry {
            at: self.options.clock.now(),
            part: None,
            activity: Activity::Note { text },
        };
        // A note is never a step: there is no checkpoint to keep.
        let _ = self.on_activity(session, entry);
    }
}

/// Message `text` (from `who`: the operator, or the engine's policy) becomes the session's
/// word, durable with the checkpoint returned (a restart sends it again, the same message).
pub(super) fn message_to(
    run: &mut super::Running,
    who: &str,
    text: &str,
    now: jiff::Timestamp,
) -> (MessageId, crate::domain::Checkpoint) {
    let id = MessageId::generate();
    let data = serde_json::json!({ who: text, "message": id });
    let checkpoint = run.session.checkpoint(CheckpointKind::Note, data, now);
    run.session.said.push(id);
    run.session.word = Some(OperatorWord::Say {
        id,
        text: text.to_string(),
    });
    (id, checkpoint)
}

/// Room for one word to the run, taken before anything is recorded: a run that has ended (or
/// has not taken the last words yet) is refused, never told into the void.
pub(super) fn reserve(
    steer: Option<&tokio::sync::mpsc::Sender<Steer>>,
) -> Result<tokio::sync::mpsc::OwnedPermit<Steer>, EngineError> {
    use tokio::sync::mpsc::error::TrySendError;
    let steer =
        steer.ok_or_else(|| EngineError::NotSteerable("the session has not started yet".into()))?;
    steer.clone().try_reserve_owned().map_err(|e| {
        EngineError::NotSteerable(match e {
            TrySendError::Full(_) => {
                "the session has not taken your last words yet: try again in a moment".into()
            }
            TrySendError::Closed(_) => "the session's run has just ended".into(),
        })
    })
}
