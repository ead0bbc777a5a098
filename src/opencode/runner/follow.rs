//! Re-attaching a run to its remote session after a restart (or a lost answer): how far the
//! session got, and finishing from there.

use std::time::Duration;

use tokio::sync::oneshot;

use super::prompt::{outcome_of, usage_of};
use super::steer::Awaited;
use super::watch::Watch;
use super::{Interrupt, OpencodeRunner, lost};
use crate::domain::{RemoteSession, Usage};
use crate::engine::runner::{Job, Outcome, Steer};
use crate::opencode::client::ClientError;
use crate::opencode::event::ServerEvent;
use crate::opencode::wire::{MessageInfo, MessageWithParts};

/// How often a re-attached run checks on its remote session.
const RESUME_POLL: Duration = Duration::from_secs(1);

/// How long a re-attached run waits between checks while its session is busy: the stream
/// tells when it stops being busy (which ends the wait at once), so this only bounds how late
/// a lost event is noticed.
const BUSY_POLL: Duration = Duration::from_secs(15);

/// Busy checks between lookups of what the session asks (the stream brings each request at
/// once, and the server's resyncs bring them again when the stream may have dropped one).
const PENDING_EVERY: u32 = 4;

/// Checks a re-attached run waits for its prompt to show up before sending it again: the last
/// engine may have stopped while the prompt was on its way (the server stores it a moment
/// after it answers; the first prompt in a directory takes over a second). Sent again, it is
/// the same message (same id), so a late first copy never runs it twice.
const PROMPT_GRACE: u32 = 5;

/// Checks in a row (about five minutes) a followed session's server may be unreachable before
/// the run is given up as lost and its task goes to another agent.
const UNREACHABLE_LIMIT: u32 = 300;

/// Checks in a row a re-attached run must find its session neither busy nor answered before
/// it counts the session as dead: a session is not busy for a moment after its prompt is
/// stored, and a server under load is slower still.
const STALL_LIMIT: u32 = 10;

/// Checks in a row a re-attached run must find its session's answer begun but neither going
/// on nor finished before it counts the session as dead. A live session is busy from its
/// prompt to its answer's end (between steps too), and a stopped one has its answer marked
/// aborted; an answer left half-written while the session is not busy is one its server lost
/// (it restarted). The second check covers an answer that ends between the two reads of a
/// check (its messages, then its status).
const ABANDONED_LIMIT: u32 = 3;

impl OpencodeRunner {
    /// Re-attached after a restart (or a lost answer, or steered): find out how far the remote
    /// session got and finish from there. The prompt is sent only when it has not shown up for
    /// a few checks, and then with the same message id (never a second run); a session is
    /// counted dead only when it has been neither busy nor answered for several checks in a
    /// row.
    ///
    /// It waits for `awaited`: the answer to the last prompt, to the
    /// operator's message, or (interrupted) for the operator's next word; the operator may
    /// steer it meanwhile. `watch`: what the run followed so far (the requests it relayed
    /// stay relayed), if it did.
    pub(super) async fn follow_awaiting(
        self,
        job: Job,
        remote: RemoteSession,
        mut stop: oneshot::Receiver<()>,
        mut awaited: Awaited,
        watch: Option<Watch>,
    ) -> Outcome {
        let dir = remote.directory.to_string_lossy().into_owned();
        let id = remote.session_id.as_str();
        let mut watch = watch.unwrap_or_else(|| Watch::new(self.live.subscribe(id, &dir)));
        watch.heed(&awaited);
        let (mut unasked, mut stalled, mut away, mut busy) = (0, 0, 0, 0);
        loop {
            let progress = match &awaited {
                // Interrupted: nothing ends the run but the operator's word, a stop, or the
                // session gone (checked, so a dead server does not hold the run forever).
                Awaited::Word => self.progress(&dir, id, None).await.map(|_| Progress::Busy),
                awaited => self.progress(&dir, id, awaited.message().as_deref()).await,
            };
            away = if progress.is_err() { away + 1 } else { 0 };
            let was_busy = busy;
            busy = if matches!(progress, Ok(Progress::Busy)) {
                busy + 1
            } else {
                0
            };
            match progress {
                Ok(Progress::Unasked) if unasked >= PROMPT_GRACE => match &awaited {
                    Awaited::Said { id: said, text } => {
                        self.send_said(&dir, id, *said, text).await;
                        unasked = 0;
                    }
                    _ => return self.prompt(&job, &dir, id, stop).await,
                },
                Ok(Progress::Unasked) => (unasked, stalled) = (unasked + 1, 0),
                Ok(Progress::Answered(..)) if let Some(word) = job.steering.try_next() => {
                    // The operator said more just as it answered: that is followed now.
                    awaited = self.steer(&dir, id, word).await;
                    watch.heed(&awaited);
                    (unasked, stalled) = (0, 0);
                    continue;
                }
                Ok(Progress::Answered(answer, messages)) => {
                    // The whole session, not only its answer: what the stream did not tell
                    // (it was down while the session went on) is in it.
                    self.tell_messages(&job, &messages, &mut watch).await;
                    return outcome_of(&answer, usage_of(&messages));
                }
                Ok(Progress::Stalled { begun }) if stalled + 1 >= stall_limit(begun) => {
                    return Outcome::Lost {
                        error: format!(
                            "its server stopped working on it (restarted?) without an answer; remote session {id}"
                        ),
                        unreachable: false,
                    };
                }
                Ok(Progress::Stalled { .. }) => {
                    stalled += 1;
                    // A server that restarted no longer has what the session asked: withdrawn.
                    self.relay_pending(&job, &dir, id, &mut watch).await;
                }
                Ok(Progress::Busy) => {
                    stalled = 0;
                    if was_busy % PENDING_EVERY == 0 {
                        self.relay_pending(&job, &dir, id, &mut watch).await;
                    }
                }
                Err(e) => {
                    // Stalled checks count in a row: one that could not look breaks the row.
                    stalled = 0;
                    if let Some(end) = unreadable(e, away, &remote) {
                        return end;
                    }
                }
            }
            let wait = if busy > 0 { BUSY_POLL } else { RESUME_POLL };
            match self.pause(&mut stop, &job, &dir, &mut watch, wait).await {
                Paused::Waited => {}
                Paused::Stop(why) => return self.stop(&dir, id, why).await,
                Paused::Steered(word) => {
                    awaited = self.steer(&dir, id, word).await;
                    watch.heed(&awaited);
                    (unasked, stalled) = (0, 0);
                }
            }
        }
    }

    /// How far a remote session got with its prompt (its last user message: ocio's, or one
    /// an operator added), or with user message `awaited`.
    async fn progress(
        &self,
        dir: &str,
        id: &str,
        awaited: Option<&str>,
    ) -> Result<Progress, ClientError> {
        let messages = self.client.messages(dir, id, None).await?;
        let asked = messages.iter().rposition(|m| match &m.info {
            MessageInfo::User(user) => awaited.is_none_or(|wanted| user.id == wanted),
            _ => false,
        });
        let Some(asked) = asked else {
            return Ok(Progress::Unasked);
        };
        let answer = messages[asked..].iter().rev().find(|m| {
            matches!(&m.info, MessageInfo::Assistant(a)
                if a.error.is_some() || (a.time.completed.is_some() && a.finish.as_deref() != Some("tool-calls")))
        });
        // Whether the model began to answer: a reply after the prompt that is not finished.
        let begun = messages[asked..]
            .iter()
            .any(|m| matches!(&m.info, MessageInfo::Assistant(a) if a.time.completed.is_none()));
        // A failed status call is a failed check (counted towards the server being away),
        // never taken as the session having ended.
        let busy = self.client.session_status(dir).await?.contains_key(id);
        Ok(match answer {
            _ if busy => Progress::Busy,
            Some(answer) => Progress::Answered(Box::new(answer.clone()), messages),
            None => Progress::Stalled { begun },
        })
    }

    /// Wait up to `wait`, passing on live events meanwhile, and less when the session's
    /// status changes; why the run must end, or what the operator said, if anything.
    async fn pause(
        &self,
        stop: &mut oneshot::Receiver<()>,
        job: &Job,
        dir: &str,
        watch: &mut Watch,
        wait: Duration,
    ) -> Paused {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Paused::Waited,
                asked = &mut *stop => return Paused::Stop(Interrupt::of(asked)),
                word = job.steering.next() => return Paused::Steered(word),
                Some(event) = watch.live.events.recv() => {
                    self.on_event(job, dir, &event, watch).await;
                    if changes_status(&event) {
                        return Paused::Waited;
                    }
                }
            }
        }
    }
}

/// Whether `event` (about the followed session) says its status changed: worth a check now.
fn changes_status(event: &ServerEvent) -> bool {
    matches!(
        event,
        ServerEvent::SessionStatus { .. }
            | ServerEvent::SessionIdle { .. }
            | ServerEvent::SessionError { .. }
    )
}

/// How a pause between checks ended.
enum Paused {
    Waited,
    Stop(Interrupt),
    Steered(Steer),
}

/// A check that could not read the session: how the run ends when the session is gone, or its
/// server has been away too long (lost with its server when it cannot be reached, failed when
/// it answers what ocio cannot use); `None` to check again.
fn unreadable(e: ClientError, away: u32, remote: &RemoteSession) -> Option<Outcome> {
    let id = remote.session_id.as_str();
    match e {
        ClientError::NotFound { .. } => Some(Outcome::Lost {
            error: format!("remote session {id} no longer exists on {}", remote.server),
            unreachable: false,
        }),
        e if away >= UNREACHABLE_LIMIT => Some(match e {
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::CircuitOpen { .. } => lost(&e),
            e => Outcome::Failed {
                error: e.to_string(),
                agent_fault: true,
                usage: Usage::default(),
            },
        }),
        e => {
            tracing::debug!(remote = id, error = %e, "re-attach: the session cannot be read; trying again");
            None
        }
    }
}

/// What a re-attached run finds at its remote session.
enum Progress {
    /// Its prompt has not arrived (yet).
    Unasked,
    /// Working on it (or the server could not say).
    Busy,
    /// Finished: the answer, and the whole session (the server's copy of its messages).
    Answered(Box<MessageWithParts>, Vec<MessageWithParts>),
    /// Asked, but neither busy nor answered; `begun`: with an answer left half-written.
    Stalled { begun: bool },
}

/// Stalled checks in a row after which a session is counted dead: fewer when its answer was
/// begun (see [`ABANDONED_LIMIT`]).
fn stall_limit(begun: bool) -> u32 {
    if begun { ABANDONED_LIMIT } else { STALL_LIMIT }
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
