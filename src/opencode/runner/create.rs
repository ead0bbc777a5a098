//! The remote session of a run: made, or taken up when an earlier engine (or a slow create)
//! made it without recording it, so an attempt has one remote session at most.

use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{OpencodeRunner, lost};
use crate::domain::RemoteSession;
use crate::engine::runner::{Job, Outcome};
use crate::opencode::client::ClientError;
use crate::opencode::wire::{CreateSession, PermissionRule};

/// How long a create that timed out is given to show its session: a server busy with many
/// sessions may take this long to get to it, and a second create would only add to its load.
const CREATE_PATIENCE: Duration = Duration::from_secs(60);

/// How often the sessions are listed while waiting for a slow create's session.
const CREATE_LOOK_EVERY: Duration = Duration::from_secs(2);

impl OpencodeRunner {
    /// A new run: its remote session made (or taken up, see [`Self::unrecorded`]) and recorded
    /// through the engine before the prompt is sent.
    pub(super) async fn drive(self, job: Job, stop: oneshot::Receiver<()>) -> Outcome {
        let dir = job.directory.to_string_lossy().into_owned();
        let create = CreateSession {
            title: Some(job.title.clone()),
            permission: Some(match job.questions {
                true => PermissionRule::relayed(),
                false => PermissionRule::unattended(),
            }),
            ..CreateSession::default()
        };
        let adopted = match job.adopt {
            true => self.unrecorded(&job, &dir).await,
            false => None,
        };
        let session = match adopted {
            Some(id) => id,
            None => match self.client.create_session(&dir, &create).await {
                Ok(session) => session.id,
                // A slow create may well make the session yet: wait for it and take it up,
                // rather than add another create to a server that is busy already.
                Err(e @ ClientError::Timeout { .. }) => match self.made_late(&job, &dir).await {
                    Some(id) => id,
                    None => return slow(&e),
                },
                Err(e @ (ClientError::Connect { .. } | ClientError::CircuitOpen { .. })) => {
                    return lost(&e);
                }
                Err(e) => return self.failed(&dir, &e, true).await,
            },
        };
        tracing::info!(session = %job.session, remote = %session, server = self.client.base_url(), "remote session ready");
        let remote = RemoteSession {
            server: self.client.base_url().into(),
            session_id: session.clone(),
            directory: job.directory.clone(),
        };
        if !job.reporter.remote(job.session, remote).await {
            let _ = self.client.delete_session(&dir, &session).await;
            return Outcome::Stopped;
        }
        self.prompt(&job, &dir, &session, stop).await
    }

    /// After a create timed out: the session the server makes once it gets to it, looked for
    /// every [`CREATE_LOOK_EVERY`] for [`CREATE_PATIENCE`].
    async fn made_late(&self, job: &Job, dir: &str) -> Option<String> {
        let give_up = tokio::time::Instant::now() + CREATE_PATIENCE;
        loop {
            if let Some(id) = self.unrecorded(job, dir).await {
                return Some(id);
            }
            if tokio::time::Instant::now() + CREATE_LOOK_EVERY > give_up {
                tracing::warn!(session = %job.session, "no remote session appeared after a slow create");
                return None;
            }
            tokio::time::sleep(CREATE_LOOK_EVERY).await;
        }
    }

    /// The remote session an earlier engine made for this attempt and stopped before
    /// recording: titled like the attempt, in its directory, made after the attempt began
    /// (give or take the server's clock). The oldest is taken up and any others deleted, so
    /// an attempt has one remote session at most.
    async fn unrecorded(&self, job: &Job, dir: &str) -> Option<String> {
        /// How far the server's clock may be behind ours.
        const SKEW_MS: i64 = 60_000;
        let began = i64::try_from(job.session.millis()).unwrap_or(i64::MAX) - SKEW_MS;
        let ended = jiff::Timestamp::now().as_millisecond() + SKEW_MS;
        let listed = match self.client.sessions(dir).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(session = %job.session, error = %e, "cannot look for an unrecorded remote session; making a new one");
                return None;
            }
        };
        let mut found: Vec<_> = listed
            .into_iter()
            .filter(|s| {
                s.title == job.title
                    && s.parent_id.is_none()
                    && (Path::new(&s.directory) == job.directory
                        || std::fs::canonicalize(&job.directory).ok().as_deref()
                            == Some(Path::new(&s.directory)))
                    && (began..=ended).contains(&s.time.created)
            })
            .collect();
        found.sort_by_key(|s| s.time.created);
        let mut found = found.into_iter();
        let first = found.next()?;
        for extra in found {
            tracing::info!(remote = %extra.id, "deleting a second remote session of one attempt");
            if let Err(e) = self.client.delete_session(dir, &extra.id).await {
                tracing::warn!(remote = %extra.id, error = %e, "cannot delete a second remote session");
            }
        }
        tracing::info!(session = %job.session, remote = %first.id, "taking up a remote session made before the restart");
        Some(first.id)
    }
}

/// The server answered too slowly to start the run, and no session appeared in the time
/// given: lost (no retry spent), but the server is busy, not away.
fn slow(error: &ClientError) -> Outcome {
    Outcome::Lost {
        error: format!(
            "{error}; the server is busy, and no session appeared within {} after",
            crate::text::duration(CREATE_PATIENCE)
        ),
        unreachable: false,
    }
}
