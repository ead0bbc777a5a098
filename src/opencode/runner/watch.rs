//! What a run passes on while it waits: live events as transcript activity, and permission
//! requests handed to the engine (policy or operator) with each answer sent back to the server.

use std::collections::HashSet;

use tokio::task::JoinSet;

use super::OpencodeRunner;
use crate::engine::approval::{Ask, Decision};
use crate::engine::runner::Job;
use crate::opencode::event::ServerEvent;
use crate::opencode::live::Subscription;
use crate::opencode::transcript::Transcriber;
use crate::opencode::wire::{PermissionReply, PermissionRequest};

/// What a run follows of its session: the live events, the transcript made of them, and the
/// permission requests already handed on, with their relays: those still waiting for an
/// answer end with the watch (the run is over; the engine forgets its requests).
pub(super) struct Watch {
    pub(super) live: Subscription,
    transcriber: Transcriber,
    seen: HashSet<String>,
    relays: JoinSet<()>,
}

impl Watch {
    pub(super) fn new(live: Subscription) -> Self {
        Self {
            live,
            transcriber: Transcriber::default(),
            seen: HashSet::new(),
            relays: JoinSet::new(),
        }
    }
}

impl OpencodeRunner {
    /// Hand the session's new permission requests to the engine (policy or operator) and send
    /// each answer back to the server, without holding up the run.
    pub(super) async fn relay_permissions(
        &self,
        job: &Job,
        dir: &str,
        remote: &str,
        watch: &mut Watch,
    ) {
        let Ok(pending) = self.client.permissions(dir).await else {
            return;
        };
        for request in pending.into_iter().filter(|p| p.session_id == remote) {
            self.relay(job, dir, request, watch);
        }
    }

    /// One live event: transcript activity for the engine, or a permission request to relay.
    pub(super) fn on_event(&self, job: &Job, dir: &str, event: &ServerEvent, watch: &mut Watch) {
        if let ServerEvent::PermissionAsked(request) = event {
            self.relay(job, dir, request.clone(), watch);
            return;
        }
        if let Some((activity, part)) = watch.transcriber.activity(event) {
            job.reporter.activity(job.session, activity, part);
        }
    }

    /// Hand one permission request to the engine (once) and send its answer back to the
    /// server, without holding up the run.
    fn relay(&self, job: &Job, dir: &str, request: PermissionRequest, watch: &mut Watch) {
        if !watch.seen.insert(request.id.clone()) {
            return;
        }
        // Finished relays are let go as new ones come.
        while watch.relays.try_join_next().is_some() {}
        let (reporter, client, dir, session) = (
            job.reporter.clone(),
            self.client.clone(),
            dir.to_string(),
            job.session,
        );
        watch.relays.spawn(async move {
            let ask = Ask {
                id: request.id.clone(),
                permission: request.permission,
                patterns: request.patterns,
            };
            let Some(decision) = reporter.permission(session, ask).await else {
                return;
            };
            let reply = match decision {
                Decision::Once => PermissionReply::Once,
                Decision::Always => PermissionReply::Always,
                Decision::Reject => PermissionReply::Reject,
            };
            if let Err(e) = client
                .reply_permission(&dir, &request.id, reply, None)
                .await
            {
                tracing::warn!(request = %request.id, error = %e, "could not answer a permission request");
            }
        });
    }
}
