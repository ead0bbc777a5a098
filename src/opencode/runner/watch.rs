//! What a run passes on while it waits: live events as transcript activity, and what the
//! session asks (permission requests, questions) handed to the engine (policy or operator)
//! with each answer sent back to the server. A request the server no longer has (answered
//! elsewhere, or gone with a restart) is withdrawn from the engine, and an answer to it is
//! never sent blindly.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hasher};

use jiff::Timestamp;

use tokio::task::JoinSet;

use super::OpencodeRunner;
use crate::engine::approval::{Ask, Decision};
use crate::engine::question::QuestionReply;
use crate::engine::runner::{Job, Reporter};
use crate::engine::view::{Activity, Entry};
use crate::opencode::client::{Client, ClientError};
use crate::opencode::event::ServerEvent;
use crate::opencode::live::Subscription;
use crate::opencode::transcript::Transcriber;
use crate::opencode::wire::{
    MessageWithParts, Part, PermissionReply, PermissionRequest, QuestionRequest,
};

/// What a run follows of its session: the live events, the transcript made of them, and the
/// requests already handed on, with their relays: those still waiting for an answer end with
/// the watch (the run is over; the engine forgets its requests).
pub(super) struct Watch {
    pub(super) live: Subscription,
    transcriber: Transcriber,
    /// Requests handed to the engine, and those of them the server no longer has.
    seen: HashSet<String>,
    gone: HashSet<String>,
    relays: JoinSet<()>,
    /// Of each part told to the engine: when it was first told, and (a hash of) what it said
    /// last. The server tells parts again (its resyncs, the answer read back at the end, a
    /// re-attached run's backfill): one unchanged is not told twice (its step would be
    /// checkpointed again), and a changed one keeps its first time (it was stamped with the
    /// time it was told again, a restart's for a whole re-attached transcript).
    parts: HashMap<String, (Timestamp, u64)>,
}

impl Watch {
    /// What the run waits for now: an operator's message is theirs, not the session's text.
    pub(super) fn heed(&mut self, awaited: &super::steer::Awaited) {
        if let super::steer::Awaited::Said { id, .. } = awaited {
            self.said(*id);
        }
    }

    /// The operator sent the session message `id`: the server's copy is theirs.
    pub(super) fn said(&mut self, id: crate::domain::MessageId) {
        self.transcriber
            .operators(super::prompt::said_message_id(id));
    }

    /// Re-attached: `entry`, the text its part had said when the last engine stopped, is
    /// what its next deltas add to. (Its part is told again as any: the backfill stamps a
    /// part it tells with its message's time, which keeps the transcript in order.)
    pub(super) fn streamed(&mut self, entry: &Entry) {
        if let (Some(part), Activity::Text { text }) = (&entry.part, &entry.activity) {
            self.transcriber.streamed(part, text);
        }
    }

    pub(super) fn new(live: Subscription) -> Self {
        Self {
            live,
            transcriber: Transcriber::default(),
            seen: HashSet::new(),
            gone: HashSet::new(),
            relays: JoinSet::new(),
            parts: HashMap::new(),
        }
    }

    /// The entry to tell of `activity` (of `part`) seen `now`: stamped with when its part was
    /// first told; `None` when its part said just this last time.
    fn entry(&mut self, part: Option<String>, activity: Activity, now: Timestamp) -> Option<Entry> {
        let Some(id) = &part else {
            return Some(Entry {
                at: now,
                part,
                activity,
            });
        };
        let said = said(&activity);
        let at = match self.parts.get_mut(id) {
            Some((_, last)) if *last == said => return None,
            Some((first, last)) => {
                *last = said;
                *first
            }
            None => {
                self.parts.insert(id.clone(), (now, said));
                now
            }
        };
        Some(Entry { at, part, activity })
    }

    /// A step's patch (in `event`) names the files the step changed, shell commands' edits
    /// included (which no `file.edited` tells): each counts as an edit, told once. A box
    /// session's own diff shows them only some hundred ms later. An edit's part
    /// (`edited:FILE`, as a `file.edited` event's) is told once, as any part is.
    fn patched(&mut self, event: &ServerEvent, now: Timestamp) -> Vec<Entry> {
        let ServerEvent::PartUpdated {
            part: Part::Patch(patch),
        } = event
        else {
            return Vec::new();
        };
        let mut entries = Vec::new();
        for file in &patch.files {
            let activity = Activity::Edited { file: file.clone() };
            entries.extend(self.entry(Some(format!("edited:{file}")), activity, now));
        }
        entries
    }

    /// What `part` said last did not reach the engine: the same again is told.
    fn unsaid(&mut self, part: &str) {
        if let Some((_, last)) = self.parts.get_mut(part) {
            *last = 0;
        }
    }
}

/// A hash of what `activity` says (its JSON, hashed as it is written: no copy of a streamed
/// text is made to tell whether it changed).
fn said(activity: &Activity) -> u64 {
    struct Hashing(DefaultHasher);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(DefaultHasher::new());
    // Writing into a hasher cannot fail; an activity that could not be written would hash as
    // what was written of it.
    let _ = serde_json::to_writer(&mut hashing, activity);
    hashing.0.finish()
}

/// A request of the session, as the server lists it.
enum Asked {
    Permission(PermissionRequest),
    Question(QuestionRequest),
}

impl Asked {
    fn id(&self) -> &str {
        match self {
            Self::Permission(p) => &p.id,
            Self::Question(q) => &q.id,
        }
    }
}

impl OpencodeRunner {
    /// Look up what the session asks (in case the stream dropped a request): hand new
    /// requests to the engine, and withdraw those the server no longer has.
    pub(super) async fn relay_pending(
        &self,
        job: &Job,
        dir: &str,
        remote: &str,
        watch: &mut Watch,
    ) {
        let Ok(listed) = pending(&self.client, dir, remote).await else {
            return;
        };
        let listed_ids: HashSet<&str> = listed.iter().map(Asked::id).collect();
        let vanished: Vec<String> = watch
            .seen
            .iter()
            .filter(|id| !listed_ids.contains(id.as_str()) && !watch.gone.contains(*id))
            .cloned()
            .collect();
        for id in vanished {
            self.withdraw(job, watch, id, "its server no longer has it")
                .await;
        }
        for asked in listed {
            self.relay(job, dir, asked, watch);
        }
    }

    /// A re-attached session's messages as its transcript, for the engine: what it did while
    /// nobody followed it (parts keep their ids, so those stored before are not repeated).
    /// Through the watch's transcriber, so its steps add up with those that follow.
    pub(super) async fn backfill(&self, job: &Job, dir: &str, remote: &str, watch: &mut Watch) {
        let messages = match self.client.messages(dir, remote, None).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(remote, error = %e, "cannot read the re-attached session's messages: its transcript misses what happened meanwhile");
                return;
            }
        };
        self.tell_messages(job, &messages, watch).await;
    }

    /// `messages`, the server's copy of the session, told to the engine where the transcript
    /// does not have them as they are (the stream was down, or dropped them): each part not
    /// told, or told otherwise, at its message's time.
    pub(super) async fn tell_messages(
        &self,
        job: &Job,
        messages: &[MessageWithParts],
        watch: &mut Watch,
    ) {
        watch.transcriber.told_again();
        let mut entries = Vec::new();
        for message in messages {
            let at = message
                .info
                .created()
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .unwrap_or_else(jiff::Timestamp::now);
            for part in &message.parts {
                let event = ServerEvent::PartUpdated { part: part.clone() };
                if let Some((activity, part)) = watch.transcriber.activity(&event) {
                    entries.extend(watch.entry(part, activity, at));
                }
                entries.extend(watch.patched(&event, at));
            }
        }
        job.reporter.backfill(job.session, entries).await;
    }

    /// One live event: transcript activity for the engine, or a request to relay or withdraw.
    pub(super) async fn on_event(
        &self,
        job: &Job,
        dir: &str,
        event: &ServerEvent,
        watch: &mut Watch,
    ) {
        match event {
            ServerEvent::PermissionAsked(request) => {
                self.relay(job, dir, Asked::Permission(request.clone()), watch);
            }
            // Relayed even when this run's session was made without the tool (the config
            // changed since): the engine's policy answers it.
            ServerEvent::QuestionAsked(request) => {
                self.relay(job, dir, Asked::Question(request.clone()), watch);
            }
            ServerEvent::PermissionReplied { request_id, .. }
            | ServerEvent::QuestionSettled { request_id, .. }
                if watch.seen.contains(request_id) =>
            {
                let id = request_id.clone();
                self.withdraw(job, watch, id, "answered on its server")
                    .await;
            }
            _ => {}
        }
        if let Some((activity, part)) = watch.transcriber.activity(event)
            && let Some(entry) = watch.entry(part, activity, Timestamp::now())
        {
            let part = entry.part.clone();
            if !job.reporter.told(job.session, entry)
                && let Some(part) = part
            {
                // Dropped (the engine is behind): told again when the server tells it again.
                watch.unsaid(&part);
            }
        }
        for entry in watch.patched(event, Timestamp::now()) {
            job.reporter.told(job.session, entry);
        }
    }

    /// Tell the engine request `id` is gone from the server (it drops it unless it answered
    /// it already), once.
    async fn withdraw(&self, job: &Job, watch: &mut Watch, id: String, why: &str) {
        if watch.gone.insert(id.clone()) {
            let why = why.to_string();
            job.reporter.withdrawn(job.session, id, why, false).await;
        }
    }

    /// Hand one request to the engine (once) and send its answer back to the server, without
    /// holding up the run.
    fn relay(&self, job: &Job, dir: &str, asked: Asked, watch: &mut Watch) {
        if !watch.seen.insert(asked.id().to_string()) {
            return;
        }
        // Finished relays are let go as new ones come.
        while watch.relays.try_join_next().is_some() {}
        let relay = Relay {
            reporter: job.reporter.clone(),
            client: self.client.clone(),
            dir: dir.to_string(),
            job: job.clone(),
        };
        watch.relays.spawn(relay.run(asked));
    }
}

/// The session's pending requests on its server: permissions and questions.
async fn pending(client: &Client, dir: &str, remote: &str) -> Result<Vec<Asked>, ClientError> {
    let mut listed: Vec<Asked> = client
        .permissions(dir)
        .await?
        .into_iter()
        .filter(|p| p.session_id == remote)
        .map(Asked::Permission)
        .collect();
    listed.extend(
        client
            .questions(dir)
            .await?
            .into_iter()
            .filter(|q| q.session_id == remote)
            .map(Asked::Question),
    );
    Ok(listed)
}

/// One request on its way to the engine and its answer on the way back.
struct Relay {
    reporter: Reporter,
    client: Client,
    dir: String,
    job: Job,
}

impl Relay {
    async fn run(self, asked: Asked) {
        let id = asked.id().to_string();
        let remote = match &asked {
            Asked::Permission(p) => p.session_id.clone(),
            Asked::Question(q) => q.session_id.clone(),
        };
        let session = self.job.session;
        let sent = match asked {
            Asked::Permission(request) => {
                let ask = Ask {
                    id: request.id.clone(),
                    permission: request.permission,
                    patterns: request.patterns,
                    questions: Vec::new(),
                };
                let Some(verdict) = self.reporter.permission(session, ask).await else {
                    return;
                };
                if !self.still_asked(&remote, &id).await {
                    return;
                }
                let reply = match verdict.decision {
                    Decision::Once => PermissionReply::Once,
                    Decision::Always => PermissionReply::Always,
                    Decision::Reject => PermissionReply::Reject,
                };
                self.client
                    .reply_permission(&self.dir, &id, reply, verdict.feedback)
                    .await
            }
            Asked::Question(request) => {
                let ask = Ask::question(request.id.clone(), request.questions);
                let Some(reply) = self.reporter.question(session, ask).await else {
                    return;
                };
                if !self.still_asked(&remote, &id).await {
                    return;
                }
                match reply {
                    QuestionReply::Answers(answers) => {
                        self.client.reply_question(&self.dir, &id, answers).await
                    }
                    QuestionReply::Reject => self.client.reject_question(&self.dir, &id).await,
                }
            }
        };
        if let Err(e) = sent {
            tracing::warn!(request = %id, error = %e, "could not send the answer to a request");
        }
    }

    /// Whether the server still has request `id` (it answers 200 to a reply for an id it does
    /// not know, so an answer is never sent blindly): when it does not, the engine is told the
    /// answer was not sent.
    async fn still_asked(&self, remote: &str, id: &str) -> bool {
        let listed = pending(&self.client, &self.dir, remote).await;
        match listed {
            Ok(listed) if !listed.iter().any(|a| a.id() == id) => {
                let why = "its server no longer has it (restarted?): the answer was not sent";
                tracing::warn!(request = %id, "{why}");
                self.reporter
                    .withdrawn(self.job.session, id.to_string(), why.into(), true)
                    .await;
                false
            }
            // Listed, or the list cannot be read now: send it (a reply the server cannot take
            // fails on its own).
            _ => true,
        }
    }
}
