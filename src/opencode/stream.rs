//! Following a server's live events without ever missing a state change.
//!
//! `GET /global/event` carries every directory's events, but the server sends no SSE `id:`, so a
//! lost connection cannot be resumed. The follower therefore:
//! - reconnects with backoff whenever the stream ends, errors, or stays silent longer than the
//!   heartbeat watchdog allows (the server sends `server.heartbeat` about every 10 s; a stream
//!   gone stale after a suspend or a proxy hiccup goes quiet);
//! - after every (re)connect, and periodically while connected (a stream that only carries
//!   heartbeats looks alive), resyncs the watched sessions through REST: status, pending
//!   permissions, session info and recent messages. Consumers treat a resync as the truth and
//!   events as the deltas on top of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::client::{Client, ClientError};
use super::event::{self, ServerEvent};
use super::sse::SseDecoder;
use super::wire::{MessageWithParts, PermissionRequest, SessionStatus};

#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Reconnect when nothing (not even a heartbeat) arrives for this long.
    pub silence_limit: Duration,
    /// Resync through REST this often even while the stream looks healthy.
    pub resync_every: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Messages per watched session fetched by a resync.
    pub recent_messages: u32,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            silence_limit: Duration::from_secs(30),
            resync_every: Duration::from_secs(60),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            recent_messages: 10,
        }
    }
}

/// What the follower reports, in order.
// Events are the common case and move once into the channel; boxing them would add an
// allocation per event to spare the rare control items some bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// The stream is open; a `Resynced` follows.
    Connected,
    /// A live event; `directory` is the instance it came from.
    Event {
        directory: Option<String>,
        event: ServerEvent,
    },
    /// REST truth for the watched sessions, taken after the stream was (re)opened.
    Resynced(Vec<SessionSnapshot>),
    /// The stream is down; the next try follows after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
}

/// One watched session as the server sees it right now.
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    pub session_id: String,
    pub status: SessionStatus,
    pub(crate) permissions: Vec<PermissionRequest>,
    pub recent: Vec<MessageWithParts>,
}

/// The sessions a follower resyncs: session id -> directory. Shared with whoever starts them.
#[derive(Debug, Clone, Default)]
pub struct Watchlist(Arc<Mutex<BTreeMap<String, String>>>);

impl Watchlist {
    pub fn watch(&self, session_id: &str, directory: &str) {
        self.lock().insert(session_id.into(), directory.into());
    }

    pub(crate) fn unwatch(&self, session_id: &str) {
        self.lock().remove(session_id);
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running follower. Dropping it (or its receiver) stops it.
#[derive(Debug)]
pub struct EventFollower {
    pub items: mpsc::Receiver<StreamItem>,
    pub watchlist: Watchlist,
    task: tokio::task::JoinHandle<()>,
}

impl EventFollower {
    pub fn spawn(client: Client, watchlist: Watchlist, options: StreamOptions) -> Self {
        let (tx, items) = mpsc::channel(1024);
        let task = tokio::spawn(follow(client, watchlist.clone(), options, tx));
        Self {
            items,
            watchlist,
            task,
        }
    }
}

impl Drop for EventFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why one connection ended.
enum End {
    Consumer,
    Lost(String),
}

async fn follow(
    client: Client,
    watchlist: Watchlist,
    options: StreamOptions,
    tx: mpsc::Sender<StreamItem>,
) {
    let mut backoff = options.first_backoff;
    loop {
        let reason = match client.open_event_stream().await {
            Ok(response) => {
                backoff = options.first_backoff;
                if tx.send(StreamItem::Connected).await.is_err() {
                    return;
                }
                match run_connection(&client, &watchlist, &options, &tx, response).await {
                    End::Consumer => return,
                    End::Lost(reason) => reason,
                }
            }
            Err(ClientError::CircuitOpen { retry_in, .. }) => {
                backoff = backoff.max(retry_in);
                "circuit breaker open".to_string()
            }
            Err(e) => e.to_string(),
        };
        tracing::info!(server = client.base_url(), %reason, retry_in = ?backoff, "event stream down");
        let item = StreamItem::Disconnected {
            reason,
            retry_in: backoff,
        };
        if tx.send(item).await.is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

async fn run_connection(
    client: &Client,
    watchlist: &Watchlist,
    options: &StreamOptions,
    tx: &mpsc::Sender<StreamItem>,
    response: reqwest::Response,
) -> End {
    let mut body = response.bytes_stream();
    let mut decoder = SseDecoder::new();
    // Resync right after connecting: whatever happened while we were away is in it.
    let mut resync = tokio::time::interval(options.resync_every);
    loop {
        tokio::select! {
            chunk = tokio::time::timeout(options.silence_limit, body.next()) => match chunk {
                Err(_) => return End::Lost(format!("no data for {} (heartbeat watchdog)", crate::text::duration(options.silence_limit))),
                Ok(None) => return End::Lost("server closed the stream".into()),
                Ok(Some(Err(e))) => return End::Lost(format!("stream error: {e}")),
                Ok(Some(Ok(bytes))) => {
                    decoder.push(&bytes);
                    while let Some(message) = decoder.next_message() {
                        let Some((directory, event)) = decode_line(&message.data) else { continue };
                        if tx.send(StreamItem::Event { directory, event }).await.is_err() {
                            return End::Consumer;
                        }
                    }
                }
            },
            _ = resync.tick() => {
                let snapshots = resync_watched(client, watchlist, options.recent_messages).await;
                if tx.send(StreamItem::Resynced(snapshots)).await.is_err() {
                    return End::Consumer;
                }
            }
            () = tx.closed() => return End::Consumer,
        }
    }
}

/// Decode one `data:` line of `/global/event` (or a bare `/event` one); `None` for events ocio
/// does not use and, logged, for malformed ones.
pub(crate) fn decode_line(data: &str) -> Option<(Option<String>, ServerEvent)> {
    match event::decode_global(data) {
        Ok(Some(global)) => Some((global.directory, global.event)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "skipping an event the server sent that ocio cannot read");
            None
        }
    }
}

async fn resync_watched(
    client: &Client,
    watchlist: &Watchlist,
    recent: u32,
) -> Vec<SessionSnapshot> {
    let watched = watchlist.snapshot();
    let directories: BTreeSet<&String> = watched.values().collect();
    let mut per_dir = BTreeMap::new();
    for dir in directories {
        // A failed call leaves the resync partial; the next one fills it in.
        let statuses = client.session_status(dir).await.unwrap_or_default();
        let permissions = client.permissions(dir).await.unwrap_or_default();
        per_dir.insert(dir.clone(), (statuses, permissions));
    }
    let mut snapshots = Vec::with_capacity(watched.len());
    for (session_id, directory) in &watched {
        let Some((statuses, permissions)) = per_dir.get(directory) else {
            continue;
        };
        // The session's record is not kept, but a failure to read it (other than the session
        // being gone) leaves the session out of this resync: the calls above may have failed
        // too and left defaults (an idle status). The next resync fills it in.
        match client.session(directory, session_id).await {
            Ok(_) | Err(ClientError::NotFound { .. }) => {}
            Err(e) => {
                tracing::debug!(%session_id, error = %e, "resync: session info unavailable");
                continue;
            }
        }
        let recent = client
            .messages(directory, session_id, Some(recent))
            .await
            .unwrap_or_default();
        snapshots.push(SessionSnapshot {
            session_id: session_id.clone(),
            status: statuses
                .get(session_id)
                .cloned()
                .unwrap_or(SessionStatus::Idle),
            permissions: permissions
                .iter()
                .filter(|p| &p.session_id == session_id)
                .cloned()
                .collect(),
            recent,
        });
    }
    snapshots
}
