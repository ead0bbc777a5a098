//! Following a server's live events without ever missing a state change.
//!
//! `GET /global/event` carries every directory's events, but the server sends no SSE `id:`, so a
//! lost connection cannot be resumed. The follower therefore:
//! - reconnects with backoff whenever the stream ends, errors, or stays silent longer than the
//!   heartbeat watchdog allows (the server sends `server.heartbeat` about every 10 s; a stream
//!   gone stale after a suspend or a proxy hiccup goes quiet);
//! - after every (re)connect resyncs all the watched sessions through REST (pending permission
//!   requests and questions, recent messages); while the stream is down it looks up their
//!   pending requests at each retry, so what is asked meanwhile is still seen;
//! - while connected, resyncs only what the stream may have missed, at a pace that does not grow
//!   with the number of sessions (see [`super::pace`]): a session whose event ocio dropped, and
//!   a slow rolling sweep of those it has not heard from for a while;
//! - reads a busy stream in rounds (up to [`StreamOptions::gather`] apart, the busier the
//!   longer), handing on what arrived together with each part's text deltas joined
//!   ([`super::round`]): a server streaming hundreds of events a second costs ten reads a
//!   second, not hundreds, while a quiet one's events are handed on as they come.
//!
//! Consumers treat a resync as the truth and events as the deltas on top of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::client::{Client, ClientError};
use super::event::{self, ServerEvent};
use super::event_body::EventBody;
use super::pace::{Pace, Pacer};
use super::round::{Round, Rounds};
use super::sse::SseDecoder;
use super::wire::{MessageWithParts, PermissionRequest, QuestionRequest};

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;

#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Reconnect when nothing (not even a heartbeat) arrives for this long.
    pub silence_limit: Duration,
    /// How often the rolling sweep resyncs its next sessions while the stream looks healthy.
    pub resync_every: Duration,
    /// Most sessions one sweep resyncs: the server's budget is this many per `resync_every`.
    pub resync_batch: usize,
    /// A session resynced, or heard from on the stream, within this long is not swept.
    pub resync_quiet: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Messages per watched session fetched by a resync.
    pub recent_messages: u32,
    /// A busy stream is read in rounds up to this far apart (the busier, the longer; see
    /// [`super::round::Rounds`]): what arrives meanwhile is read, decoded and handed on
    /// together (a part's text deltas joined), at a cost that grows less than the event rate.
    /// A quiet stream's events are handed on as they come.
    pub gather: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            silence_limit: Duration::from_secs(30),
            // Six sessions a minute per server at most, each at most every five minutes.
            resync_every: Duration::from_secs(10),
            resync_batch: 1,
            resync_quiet: Duration::from_secs(300),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            recent_messages: 10,
            // Ten rounds a second at the most: even on the busiest stream an event shows within
            // a tenth of a second, and 16 sessions streaming text cost ocio 2% of a core.
            gather: Duration::from_millis(100),
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

/// One watched session as the server sees it right now: what it asks, and (unless only its
/// requests were looked up) its last messages.
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    pub session_id: String,
    pub(crate) permissions: Vec<PermissionRequest>,
    pub(crate) questions: Vec<QuestionRequest>,
    pub recent: Vec<MessageWithParts>,
}

/// The sessions a follower resyncs (session id -> directory), and those of them whose events
/// ocio dropped. Shared with whoever starts them.
#[derive(Debug, Clone, Default)]
pub struct Watchlist(Arc<Mutex<Watched>>);

#[derive(Debug, Default)]
struct Watched {
    sessions: BTreeMap<String, String>,
    stale: BTreeSet<String>,
}

impl Watchlist {
    pub fn watch(&self, session_id: &str, directory: &str) {
        let mut watched = self.lock();
        watched.sessions.insert(session_id.into(), directory.into());
    }

    pub(crate) fn unwatch(&self, session_id: &str) {
        let mut watched = self.lock();
        watched.sessions.remove(session_id);
        watched.stale.remove(session_id);
    }

    /// An event about `session_id` was dropped: the follower resyncs it at its next sweep.
    pub(crate) fn stale(&self, session_id: &str) {
        self.lock().stale.insert(session_id.into());
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, String> {
        self.lock().sessions.clone()
    }

    pub(crate) fn take_stale(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.lock().stale)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
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

impl End {
    /// The stream ended, or failed with `error`.
    fn of_stream(error: Option<String>) -> Self {
        match error {
            None => Self::Lost("server closed the stream".into()),
            Some(e) => Self::Lost(format!("stream error: {e}")),
        }
    }
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
        // Nothing is heard while the stream is down: what the sessions ask is looked up.
        let asked = resync(&client, &watchlist.snapshot(), None).await;
        if !asked.is_empty() && tx.send(StreamItem::Resynced(asked)).await.is_err() {
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
    mut body: EventBody,
) -> End {
    let mut decoder = SseDecoder::new();
    let mut pacer = Pacer::default();
    let pace = Pace {
        batch: options.resync_batch,
        quiet: options.resync_quiet,
    };
    // The first tick is at once: whatever happened while we were away is in it.
    let mut sweep = tokio::time::interval(options.resync_every);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut first = true;
    let mut round = Round::default();
    let mut rounds = Rounds::new(options.gather, Instant::now());
    let mut next_round = Instant::now();
    // When the watchdog gives up: counted from the last data, not from the last pass of this
    // loop (a sweep's tick ends a pass, and every 10 s it would start the wait over).
    let mut silent_at = Instant::now() + options.silence_limit;
    loop {
        tokio::select! {
            chunk = next_chunk(&mut body, next_round, silent_at) => match chunk {
                Err(_) => return End::Lost(format!("no data for {} (heartbeat watchdog)", crate::text::duration(options.silence_limit))),
                Ok(None) => return End::of_stream(None),
                Ok(Some(Err(e))) => return End::of_stream(Some(e)),
                Ok(Some(Ok(bytes))) => {
                    let now = Instant::now();
                    silent_at = now + options.silence_limit;
                    decoder.push(&bytes);
                    match hand_on_buffered(&mut body, &mut decoder, &mut round, &mut pacer, tx).await {
                        Ok(read) => next_round = rounds.next(read, now),
                        Err(end) => return end,
                    }
                }
            },
            _ = sweep.tick() => {
                // After a (re)connect all of them (a `Resynced` always follows `Connected`),
                // then what the sweep picks.
                let reconnected = std::mem::take(&mut first);
                let due = if reconnected {
                    watchlist.snapshot()
                } else {
                    swept(watchlist, &mut pacer, pace)
                };
                if due.is_empty() && !reconnected {
                    continue;
                }
                // What came before the resync goes before it (a round may be waiting its turn).
                if let Err(end) = hand_on_buffered(&mut body, &mut decoder, &mut round, &mut pacer, tx).await {
                    return end;
                }
                let snapshots = resync(client, &due, Some(options.recent_messages)).await;
                pacer.synced(snapshots.iter().map(|s| &s.session_id), Instant::now());
                if tx.send(StreamItem::Resynced(snapshots)).await.is_err() {
                    return End::Consumer;
                }
            }
            () = tx.closed() => return End::Consumer,
        }
    }
}

/// The stream's next chunk, not before `round` (a round read sooner waits until then, its
/// connection at rest); an error if none has come by `silent_at`.
async fn next_chunk(
    body: &mut EventBody,
    round: Instant,
    silent_at: Instant,
) -> Result<Option<Result<bytes::Bytes, String>>, tokio::time::error::Elapsed> {
    if Instant::now() < round {
        body.rest();
        tokio::time::sleep_until(round.min(silent_at)).await;
    }
    body.wake();
    tokio::time::timeout_at(silent_at, body.next()).await
}

/// Whatever the connection holds (and `decoder` has) handed on as one round: how many events
/// were read, or how the connection ended (after what came before the end is handed on).
async fn hand_on_buffered(
    body: &mut EventBody,
    decoder: &mut SseDecoder,
    round: &mut Round,
    pacer: &mut Pacer,
    tx: &mpsc::Sender<StreamItem>,
) -> Result<usize, End> {
    // A sweep's resync may come while the connection rests.
    body.wake();
    let ended = read_buffered(body, decoder).await;
    let mut read = 0;
    while let Some(message) = decoder.next_message() {
        read += 1;
        if let Some((directory, event)) = decode_line(&message.data) {
            round.push(directory, event);
        }
    }
    let now = Instant::now();
    for (directory, event) in round.take() {
        if let Some(session) = event.session_id() {
            pacer.heard(session, now);
        }
        if tx
            .send(StreamItem::Event { directory, event })
            .await
            .is_err()
        {
            return Err(End::Consumer);
        }
    }
    ended.map_or(Ok(read), Err)
}

/// Most chunks one round takes beyond its first: a flood is read in bounded rounds.
const ROUND_CHUNKS: usize = 1024;

/// Whatever the connection already holds, into `decoder`, without waiting for more: each yield
/// lets the connection's task hand over its next chunk. How the stream ended, if it did.
async fn read_buffered(body: &mut EventBody, decoder: &mut SseDecoder) -> Option<End> {
    for _ in 0..ROUND_CHUNKS {
        tokio::task::yield_now().await;
        match body.next().now_or_never() {
            Some(Some(Ok(bytes))) => decoder.push(&bytes),
            Some(Some(Err(e))) => return Some(End::of_stream(Some(e))),
            Some(None) => return Some(End::of_stream(None)),
            None => return None,
        }
    }
    None
}

/// The sessions (id -> directory) the sweep resyncs now: the stale ones first.
fn swept(watchlist: &Watchlist, pacer: &mut Pacer, pace: Pace) -> BTreeMap<String, String> {
    let mut watched = watchlist.snapshot();
    for session in watchlist.take_stale() {
        pacer.stale(&session);
    }
    let due: BTreeSet<String> = pacer
        .due(&watched, pace, Instant::now())
        .into_iter()
        .collect();
    watched.retain(|session, _| due.contains(session));
    watched
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

/// REST truth for `sessions` (id -> directory): what each asks (one look-up per directory for
/// permissions and one for questions, however many sessions share it) and, with `recent`, its
/// last messages. A session something cannot be read for is left out (a failed call must not
/// look like nothing pending): the next resync fills it in.
async fn resync(
    client: &Client,
    sessions: &BTreeMap<String, String>,
    recent: Option<u32>,
) -> Vec<SessionSnapshot> {
    let directories: BTreeSet<&String> = sessions.values().collect();
    let mut per_dir = BTreeMap::new();
    for dir in directories {
        match asked_in(client, dir).await {
            Ok(asked) => {
                per_dir.insert(dir, asked);
            }
            Err(e) => tracing::debug!(%dir, error = %e, "resync: pending requests unavailable"),
        }
    }
    let mut snapshots = Vec::with_capacity(sessions.len());
    for (session_id, directory) in sessions {
        let Some((permissions, questions)) = per_dir.get(directory) else {
            continue;
        };
        let recent = match recent {
            None => Vec::new(),
            Some(limit) => match client.messages(directory, session_id, Some(limit)).await {
                Ok(recent) => recent,
                // Gone: nothing to replay.
                Err(ClientError::NotFound { .. }) => Vec::new(),
                Err(e) => {
                    tracing::debug!(%session_id, error = %e, "resync: messages unavailable");
                    continue;
                }
            },
        };
        snapshots.push(SessionSnapshot {
            session_id: session_id.clone(),
            permissions: permissions
                .iter()
                .filter(|p| &p.session_id == session_id)
                .cloned()
                .collect(),
            questions: questions
                .iter()
                .filter(|q| &q.session_id == session_id)
                .cloned()
                .collect(),
            recent,
        });
    }
    snapshots
}

/// The pending permission requests and questions of directory `dir`.
async fn asked_in(
    client: &Client,
    dir: &str,
) -> Result<(Vec<PermissionRequest>, Vec<QuestionRequest>), ClientError> {
    Ok((client.permissions(dir).await?, client.questions(dir).await?))
}
