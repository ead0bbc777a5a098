//! Sessions the last engine left on OpenCode servers that this one will not follow, stopped
//! at their servers as the host starts, before recovery runs their tasks again:
//! - sessions still running on a server that is no agent any more (its `[[agents]]` entry or
//!   fleet taken out of the config across a restart): they went on working unseen beside their
//!   tasks' next attempts (hand trial);
//! - sessions the engine stopped (a cancel, a time limit) within the last hour while their
//!   server did not answer: the runner tries their abort again for an hour, which a restart cut
//!   short. Those still not taken are tried again in the background for the rest of the hour.
//!
//! A server is reached as the last engine stored its agent: its URL, and the password from the
//! variable it named, if set now. An abort is harmless on a session already idle.

use std::time::Duration;

use crate::domain::{Agent, Backend, RemoteSession, Session, SessionStatus};
use crate::engine::AgentSpec;
use crate::opencode::client::{Client, ClientOptions};
use crate::opencode::runner::{ABORT_PATIENCE, abort_when_answered};
use crate::opencode::secret::Password;
use crate::store::StoreHandle;

/// How long the start spends on the first try of each.
const FIRST_TRY: Duration = Duration::from_secs(10);
/// The most stopped sessions of each kind looked at (the newest).
const NEWEST: usize = 200;

/// One session to stop, and the server it is on.
struct Left {
    agent: String,
    remote: RemoteSession,
    password_env: Option<String>,
    /// Until when its abort is tried again in the background, when the first try fails
    /// because the server does not answer (`None`: tried once).
    patience: Option<tokio::time::Instant>,
}

/// Stops what the last engine left (see the module's doc); the background retries, for the
/// host to hold (and stop at its shutdown).
pub(super) async fn stop_left_sessions(
    store: &StoreHandle,
    specs: &[AgentSpec],
) -> Vec<tokio::task::JoinHandle<()>> {
    let read = store.read(|txn| {
        let agents = crate::store::query::agents(txn)?;
        let running = crate::store::query::active_sessions(txn)?;
        let mut stopped = crate::store::query::newest_in(txn, SessionStatus::Cancelled, NEWEST)?;
        stopped.extend(crate::store::query::newest_in(
            txn,
            SessionStatus::TimedOut,
            NEWEST,
        )?);
        Ok((agents, running, stopped))
    });
    let Ok((agents, running, stopped)) = read.await else {
        return Vec::new();
    };
    let ours = |session: &Session| {
        specs
            .iter()
            .any(|s| Some(&s.agent.name) == session.agent.as_ref())
    };
    let orphans = running
        .into_iter()
        .filter(|s| !ours(s))
        .filter_map(|s| left(&agents, s, None));
    let stopped = stopped.into_iter().filter_map(|s| {
        let ago = jiff::Timestamp::now().duration_since(s.finished_at?);
        let left_of_the_hour = ABORT_PATIENCE.checked_sub(Duration::try_from(ago).ok()?)?;
        left(
            &agents,
            s,
            Some(tokio::time::Instant::now() + left_of_the_hour),
        )
    });
    let tries = orphans.chain(stopped).map(first_try);
    let tried = match tokio::time::timeout(FIRST_TRY, futures_util::future::join_all(tries)).await {
        Ok(tried) => tried,
        Err(_) => {
            tracing::warn!(
                "stopping the sessions left on servers took too long; the rest are left running"
            );
            return Vec::new();
        }
    };
    tried
        .into_iter()
        .flatten()
        .map(|(client, left, deadline)| {
            let dir = left.remote.directory.to_string_lossy().into_owned();
            tokio::spawn(abort_when_answered(
                client,
                dir,
                left.remote.session_id,
                deadline,
            ))
        })
        .collect()
}

/// `session` as one to stop, if it ran on an OpenCode server.
fn left(
    agents: &[Agent],
    session: Session,
    patience: Option<tokio::time::Instant>,
) -> Option<Left> {
    let remote = session.remote?;
    let agent = session.agent?;
    let password_env = match agents.iter().find(|a| a.name == agent).map(|a| &a.backend) {
        Some(Backend::Opencode { password_env, .. }) => password_env.clone(),
        _ => None,
    };
    Some(Left {
        agent: agent.to_string(),
        remote,
        password_env,
        patience,
    })
}

/// The first try at stopping `left`; when its server does not answer and it is to be tried
/// again, the client to try with and until when.
async fn first_try(left: Left) -> Option<(Client, Left, tokio::time::Instant)> {
    let password = left
        .password_env
        .as_deref()
        .and_then(|var| Password::from_env(var).ok());
    let options = ClientOptions {
        call_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(3),
        retries: 1,
        ..Default::default()
    };
    let (agent, server, remote) = (&left.agent, &left.remote.server, &left.remote.session_id);
    let client = match Client::new(server, password, options) {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(%agent, %server, %remote, error = %e, "cannot stop a session left on its server; abort it there");
            return None;
        }
    };
    let dir = left.remote.directory.to_string_lossy().into_owned();
    match client.abort(&dir, remote).await {
        Ok(_) => {
            tracing::info!(%agent, %server, %remote, "stopped a session left on its server");
            None
        }
        Err(e) if e.is_the_servers() && left.patience.is_some() => {
            tracing::info!(%agent, %server, %remote, error = %e, "a stopped session's server does not answer yet; its abort is tried again");
            let deadline = left.patience?;
            Some((client, left, deadline))
        }
        Err(e) => {
            tracing::warn!(%agent, %server, %remote, error = %e, "cannot stop a session left on its server; abort it there");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::Path;

    use super::stop_left_sessions;
    use crate::domain::{AgentName, RemoteSession, Session, SessionId, SessionKind, SessionStatus};
    use crate::store::{Batch, Store, StoreOptions};

    /// A session cancelled while its server did not answer is aborted once the server answers,
    /// though ocio stopped in between (its hour of tries was cut short: review); one stopped
    /// over an hour ago is left as it is.
    #[tokio::test]
    async fn a_session_stopped_while_its_server_was_down_is_aborted_after_a_restart() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
        let now = jiff::Timestamp::now();
        let cancelled = |remote: &str, ago_secs: i64| {
            let mut session = Session::new(SessionId::generate(), "p/t #1", SessionKind::Code, now);
            session.agent = Some(AgentName::new("far").unwrap());
            session.remote = Some(RemoteSession {
                server: format!("http://{addr}"),
                session_id: remote.into(),
                directory: "/work".into(),
            });
            session.status = SessionStatus::Cancelled;
            session.finished_at = Some(now - jiff::SignedDuration::from_secs(ago_secs));
            session
        };
        let mut batch = Batch::new();
        batch
            .put_session(&cancelled("ses_recent", 60))
            .put_session(&cancelled("ses_old", 2 * 60 * 60));
        store.commit(batch).await.unwrap();

        let retries = stop_left_sessions(&store, &[]).await;
        assert_eq!(retries.len(), 1, "the recent one is tried again");

        let aborted = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = aborted.clone();
        let app = Router::new().route(
            "/session/{id}/abort",
            axum::routing::post(move |Path(id): Path<String>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(id);
                    ([("content-type", "application/json")], "true")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while aborted.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < until, "never aborted");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for retry in retries {
            retry.await.unwrap();
        }
        assert_eq!(*aborted.lock().unwrap(), ["ses_recent"]);
    }
}
