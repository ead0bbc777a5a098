//! What sessions ask the operator: permission requests and questions. The session waits
//! (waiting-approval) while the policy or the operator decides; each decision is a transition
//! whose cause says what was decided and by whom, then names the request, so the control log is
//! the audit trail (and the events pane's line about it leads with the decision). A question
//! nobody answers in time is rejected with the reason; a request its server no longer has is
//! dropped as stale, never answered.

use jiff::Timestamp;
use tokio::sync::oneshot;

use super::steer::{message_to, reserve};
use super::{Core, Step};
use crate::domain::{OperatorWord, SessionId, SessionStatus};
use crate::engine::approval::{self, Approver, Ask, Decision, Verdict};
use crate::engine::question::{self, Answer, QuestionReply};
use crate::engine::runner::Steer;
use crate::engine::view::{Activity, Entry};
use crate::engine::{EngineError, EngineEvent};

/// A request the operator has not answered yet.
pub(super) struct Pending {
    pub session: SessionId,
    pub ask: Ask,
    pub answer: Answerer,
    /// When it was asked (the inbox's order).
    pub asked: Timestamp,
    /// Since when a question's timeout counts (in `auto`, moved on while a room is attached).
    pub since: Timestamp,
}

/// Where the answer goes: the run's relay of the request.
pub(super) enum Answerer {
    Permission(oneshot::Sender<Verdict>),
    Question(oneshot::Sender<QuestionReply>),
}

/// What the operator says to a request.
enum Said {
    Decision(Decision),
    Answers(Vec<Vec<String>>),
}

impl Core {
    pub(super) async fn on_permission(
        &mut self,
        session: SessionId,
        ask: Ask,
        answer: oneshot::Sender<Verdict>,
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
        if let Some((decision, why)) = self.options.approvals.decide(&ask, &directory) {
            let cause = format!("{} by policy ({why}): {what}", decision.text());
            if let Ok(event) = run
                .session
                .transition(SessionStatus::Running, cause.clone(), now)
            {
                step.transition(event);
            }
            // Rejected with a word of why, the agent goes on without it: nobody is asked. But
            // OpenCode rejects the session's other waiting requests with it, bare, which ends
            // its turn: then the same words follow as a message.
            let feedback = (decision == Decision::Reject).then(|| {
                format!(
                    "ocio's approval policy rejects this ({why}). Do the task without it; if \
                     you cannot, say in your answer what you could not do and why."
                )
            });
            let others_wait = self.approvals.values().any(|p| p.session == session);
            let word = match (&feedback, others_wait) {
                (Some(text), true) => carry_on(run, &mut step, now, text.clone()),
                _ => None,
            };
            step.batch.put_session(&run.session);
            self.commit(step).await?;
            self.exchange(session, &ask.id, "asked", format!("asks {what}"));
            self.exchange(session, &ask.id, "settled", cause);
            let _ = answer.send(Verdict { decision, feedback });
            self.tell_run(session, word);
            return Ok(());
        }
        step.batch.put_session(&run.session);
        step.events.push(EngineEvent::ApprovalRequested {
            session,
            task: run.key.clone(),
            request: ask.id.clone(),
            permission: ask.permission.clone(),
            patterns: ask.patterns.clone(),
        });
        self.commit(step).await?;
        self.exchange(session, &ask.id, "asked", format!("asks {what}"));
        let pending = Pending {
            session,
            ask,
            answer: Answerer::Permission(answer),
            asked: now,
            since: now,
        };
        self.approvals.insert(pending.ask.id.clone(), pending);
        Ok(())
    }

    /// A session asks the operator a question: it waits for an answer in the inbox (the
    /// policy rejects it when nobody answers in time, `expire_questions`).
    pub(super) async fn on_question(
        &mut self,
        session: SessionId,
        ask: Ask,
        answer: oneshot::Sender<QuestionReply>,
    ) -> Result<(), EngineError> {
        let Some(run) = self.running.get_mut(&session) else {
            return Ok(());
        };
        if let Some(pending) = self.approvals.get_mut(&ask.id) {
            // Relayed again (by a new relay): still waiting, and its answer goes there now.
            pending.answer = Answerer::Question(answer);
            return Ok(());
        }
        let now = self.options.clock.now();
        let mut step = Step::default();
        let cause = format!("asks {}", describe(&ask));
        if let Ok(event) =
            run.session
                .transition(SessionStatus::WaitingApproval, cause.clone(), now)
        {
            step.transition(event);
        }
        step.batch.put_session(&run.session);
        step.events.push(EngineEvent::QuestionAsked {
            session,
            task: run.key.clone(),
            request: ask.id.clone(),
            questions: ask.questions.clone(),
        });
        self.commit(step).await?;
        self.exchange(session, &ask.id, "asked", cause);
        let pending = Pending {
            session,
            ask,
            answer: Answerer::Question(answer),
            asked: now,
            since: now,
        };
        let id = pending.ask.id.clone();
        self.approvals.insert(id.clone(), pending);
        if self.options.questions.mode == question::QuestionMode::Deny {
            // A session made before questions were denied may still ask.
            return self
                .reject_by_policy(&id, "questions are denied ([engine] questions)")
                .await;
        }
        Ok(())
    }

    /// The operator's answer to permission request `id` (the whole id, or its short form
    /// when it names one request alone), given by `by`. `Reject` rejects a question too.
    pub(super) async fn approve(
        &mut self,
        id: &str,
        decision: Decision,
        by: Approver,
    ) -> Result<(), EngineError> {
        let key = self.pending_key(id)?;
        if self.approvals[&key].ask.is_question() && decision != Decision::Reject {
            return Err(EngineError::BadAnswer(format!(
                "{key} is a question, not a permission request: answer it with an option or a \
                 text (ocio answer {} ...), or reject it",
                approval::short_id(&key)
            )));
        }
        self.settle_request(&key, Said::Decision(decision), by)
            .await
    }

    /// The operator's answer to question `id`: an answer per question, checked against what
    /// it offers.
    pub(super) async fn answer(
        &mut self,
        id: &str,
        answers: &[Answer],
        by: Approver,
    ) -> Result<(), EngineError> {
        let key = self.pending_key(id)?;
        let ask = &self.approvals[&key].ask;
        if !ask.is_question() {
            return Err(EngineError::BadAnswer(format!(
                "{key} is a permission request, not a question: approve or reject it \
                 (ocio approve {} --once|--always|--reject)",
                approval::short_id(&key)
            )));
        }
        let labels = question::resolve(&ask.questions, answers)
            .map_err(|e| EngineError::BadAnswer(format!("{key}: {}", e.0)))?;
        self.settle_request(&key, Said::Answers(labels), by).await
    }

    /// The pending request `id` names: the whole id, or a part of it naming one alone.
    fn pending_key(&self, id: &str) -> Result<String, EngineError> {
        approval::named(self.approvals.keys(), id).map(str::to_string)
    }

    /// Record what was said to request `key` (the session runs again), then pass it on.
    async fn settle_request(
        &mut self,
        key: &str,
        said: Said,
        by: Approver,
    ) -> Result<(), EngineError> {
        let unknown = || EngineError::UnknownApproval(key.to_string());
        let pending = self.approvals.remove(key).ok_or_else(unknown)?;
        let Some(run) = self.running.get_mut(&pending.session) else {
            return Err(unknown());
        };
        let what = describe(&pending.ask);
        let asked_how = match pending.ask.is_question() {
            true => by.text().replace("ocio approve", "ocio answer"),
            false => by.text().to_string(),
        };
        let cause = match &said {
            Said::Decision(d) => format!("{} by {asked_how}: {what}", d.text()),
            Said::Answers(labels) => format!("answered {} by {asked_how}: {what}", quoted(labels),),
        };
        let now = self.options.clock.now();
        let mut step = Step::default();
        if let Ok(event) = run
            .session
            .transition(SessionStatus::Running, cause.clone(), now)
        {
            step.transition(event);
        }
        // Rejected, the session's loop stops there (OpenCode ends its turn): it waits for the
        // operator's next message as after an interrupt, and what it wrote last is no answer.
        let halts = matches!(said, Said::Decision(Decision::Reject));
        let word = match halts {
            true => halt(run, &mut step, now),
            false => None,
        };
        self.still_asks(pending.session, &mut step, now);
        self.commit(step).await?;
        self.exchange(pending.session, key, "settled", cause);
        send(pending.answer, said);
        self.tell_run(pending.session, word);
        Ok(())
    }

    /// After one of its requests was settled: a session that still waits on another, or on the
    /// operator's word, shows so again (each decision stays its own transition in the control
    /// log).
    fn still_asks(&mut self, session: SessionId, step: &mut Step, now: Timestamp) {
        let other = self
            .approvals
            .values()
            .filter(|p| p.session == session)
            .min_by_key(|p| p.asked)
            .map(|p| describe(&p.ask));
        let Some(run) = self.running.get_mut(&session) else {
            return;
        };
        // With nothing else asked, a session whose turn a rejection ended still waits for the
        // operator's word (the run does): it is not shown running.
        let waits = match other {
            Some(other) => Some(format!("still asks {other}")),
            None if run.session.word == Some(OperatorWord::Interrupt) => Some(HALTED.to_string()),
            None => None,
        };
        if let Some(cause) = waits
            && let Ok(event) = run
                .session
                .transition(SessionStatus::WaitingApproval, cause, now)
        {
            step.transition(event);
        }
        step.batch.put_session(&run.session);
    }

    /// Reject the questions that waited longer than the policy allows, saying why.
    pub(super) async fn expire_questions(&mut self) -> Result<(), EngineError> {
        let now = self.options.clock.now();
        let rooms = self.rooms.count();
        let policy = self.options.questions;
        let mut expired = Vec::new();
        for (id, pending) in &mut self.approvals {
            if !pending.ask.is_question() {
                continue;
            }
            if rooms > 0 && policy.mode == question::QuestionMode::Auto {
                pending.since = now; // someone is there: the timeout starts when they leave
                continue;
            }
            let waited = now.duration_since(pending.since).unsigned_abs();
            if let Some(why) = policy.expired(waited, rooms) {
                expired.push((id.clone(), why));
            }
        }
        for (id, why) in expired {
            self.reject_by_policy(&id, &why).await?;
        }
        Ok(())
    }

    async fn reject_by_policy(&mut self, key: &str, why: &str) -> Result<(), EngineError> {
        let Some(pending) = self.approvals.remove(key) else {
            return Ok(());
        };
        let Some(run) = self.running.get_mut(&pending.session) else {
            return Ok(());
        };
        // Nobody will answer: the agent is told to decide itself and goes on. A question that
        // takes a typed answer gets that as its answer; one that does not is rejected, which
        // ends the session's turn, and the same words follow as a message.
        let unanswered = format!(
            "Your question was not answered ({why}). Decide yourself, and say in your answer what you chose."
        );
        let typed = pending.ask.questions.iter().all(|q| q.custom);
        let (said, cause) = match typed {
            true => (
                Said::Answers(vec![vec![unanswered.clone()]; pending.ask.questions.len()]),
                format!(
                    "answered by policy ({why}: decide yourself): {}",
                    describe(&pending.ask)
                ),
            ),
            false => (
                Said::Decision(Decision::Reject),
                format!(
                    "rejected by policy ({why}; told to decide itself): {}",
                    describe(&pending.ask)
                ),
            ),
        };
        let mut step = Step::default();
        let now = self.options.clock.now();
        if let Ok(event) = run
            .session
            .transition(SessionStatus::Running, cause.clone(), now)
        {
            step.transition(event);
        }
        let word = match typed {
            true => None,
            false => carry_on(run, &mut step, now, unanswered),
        };
        self.still_asks(pending.session, &mut step, now);
        self.commit(step).await?;
        self.exchange(pending.session, key, "settled", cause);
        send(pending.answer, said);
        self.tell_run(pending.session, word);
        Ok(())
    }

    /// The server no longer has request `id` (answered there, or gone with a restart): it
    /// leaves the inbox unanswered, and the session is shown running again. `answered`: the
    /// operator's answer was not sent, which is told.
    pub(super) async fn on_withdrawn(
        &mut self,
        session: SessionId,
        id: String,
        why: String,
        answered: bool,
    ) -> Result<(), EngineError> {
        let Some(pending) = self.approvals.remove(&id) else {
            if answered {
                let event = EngineEvent::RequestWithdrawn {
                    session,
                    request: id,
                    why,
                };
                let mut step = Step::default();
                step.events.push(event);
                self.commit(step).await?;
            }
            return Ok(());
        };
        let mut step = Step::default();
        let cause = format!("{why}; not answered: {}", describe(&pending.ask));
        self.exchange(session, &id, "settled", cause.clone());
        if let Some(run) = self.running.get_mut(&session) {
            let waits_more = self.approvals.values().any(|p| p.session == session);
            let now = self.options.clock.now();
            let halted = run.session.word == Some(OperatorWord::Interrupt);
            if !waits_more
                && !halted
                && let Ok(event) = run.session.transition(SessionStatus::Running, cause, now)
            {
                step.transition(event);
            }
            step.batch.put_session(&run.session);
        }
        step.events.push(EngineEvent::RequestWithdrawn {
            session,
            request: id,
            why,
        });
        self.commit(step).await
    }

    /// A line of the session's transcript about request `id`: how it was `asked`, then how
    /// it was `settled` (keyed by both, so the same stage told again replaces its line).
    fn exchange(&mut self, session: SessionId, id: &str, stage: &str, text: String) {
        let entry = Entry {
            at: self.options.clock.now(),
            part: Some(format!("{stage}:{id}")),
            activity: Activity::Note { text },
        };
        // A note is never a step: there is no checkpoint to keep.
        let _ = self.on_activity(session, entry);
    }

    /// Tell the run of `session` its word, now that what it follows is recorded (a message
    /// of the engine's is in the transcript as such).
    fn tell_run(&mut self, session: SessionId, word: Option<Word>) {
        let Some((permit, word)) = word else {
            return;
        };
        if let Steer::Say { text, .. } = &word {
            self.note(session, format!("ocio: {text}"));
        }
        permit.send(word);
    }

    /// Requests still waiting for the operator.
    pub(super) fn pending_approvals(&self) -> Vec<(SessionId, Ask)> {
        let mut pending: Vec<&Pending> = self.approvals.values().collect();
        pending.sort_by(|a, b| (a.asked, &a.ask.id).cmp(&(b.asked, &b.ask.id)));
        pending.iter().map(|p| (p.session, p.ask.clone())).collect()
    }
}

/// A word for a run, told once what it follows is recorded, with room for it taken before.
type Word = (tokio::sync::mpsc::OwnedPermit<Steer>, Steer);

/// What the session shows while its run waits for the operator's next message after they
/// rejected what it asked (OpenCode ends the turn there).
const HALTED: &str =
    "it stopped there and waits for your next message (say what to do instead), or cancel its task";

/// The run of a session whose request the operator rejected waits for their next message: its
/// word is an interrupt (a restart follows it so too), and it shows waiting again. `None` when
/// the run cannot be told (it is ending, or its channel is full).
fn halt(run: &mut super::Running, step: &mut Step, now: Timestamp) -> Option<Word> {
    let permit = reserve(run.steer.as_ref()).ok()?;
    run.session.word = Some(OperatorWord::Interrupt);
    if let Ok(event) =
        run.session
            .transition(SessionStatus::WaitingApproval, HALTED.to_string(), now)
    {
        step.transition(event);
    }
    Some((permit, Steer::Halted))
}

/// A message from the engine to a session whose turn a rejection ended while nobody would
/// say what to do next: `text`, as a message of the operator's would be (durable, followed
/// by the run to its answer, which is the task's result).
fn carry_on(
    run: &mut super::Running,
    step: &mut Step,
    now: Timestamp,
    text: String,
) -> Option<Word> {
    let permit = reserve(run.steer.as_ref()).ok()?;
    let (id, checkpoint) = message_to(run, "policy", &text, now);
    step.batch.put_checkpoint(&checkpoint);
    Some((permit, Steer::Say { text, id }))
}

fn send(answer: Answerer, said: Said) {
    match (answer, said) {
        (Answerer::Permission(tx), Said::Decision(d)) => {
            let _ = tx.send(d.into());
        }
        (Answerer::Question(tx), Said::Answers(labels)) => {
            let _ = tx.send(QuestionReply::Answers(labels));
        }
        (Answerer::Question(tx), Said::Decision(_)) => {
            let _ = tx.send(QuestionReply::Reject);
        }
        // Refused before anything is recorded (`answer`).
        (Answerer::Permission(_), Said::Answers(_)) => {}
    }
}

/// `"blue"`, `"red" + "blue"`, one answer per question separated by `; `.
fn quoted(labels: &[Vec<String>]) -> String {
    labels
        .iter()
        .map(|picked| {
            picked
                .iter()
                .map(|l| format!("{l:?}"))
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe(ask: &Ask) -> String {
    if ask.is_question() {
        let asked: Vec<&str> = ask.questions.iter().map(|q| q.question.as_str()).collect();
        return format!("question {:?} [{}]", asked.join(" / "), ask.id);
    }
    format!(
        "permission {} ({}) [{}]",
        ask.permission,
        ask.patterns.join(", "),
        ask.id
    )
}
