//! Live events for the runs on one OpenCode server: one follower of the server's
//! `/global/event` stream (started with the first run, stopped with the last), its events routed
//! to the run whose remote session they are about (what a run makes of them:
//! [`super::transcript`]). A resync after a reconnect replays the session's recent parts and
//! pending permission requests, so nothing the stream dropped is lost for good.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::client::Client;
use super::event::ServerEvent;
use super::stream::{EventFollower, StreamItem, StreamOptions, Watchlist};

/// Events kept for a run that is slow to take them; beyond that, deltas are dropped (the next
/// full part update or resync carries the whole text again).
const BACKLOG: usize = 512;

type Routes = Arc<Mutex<HashMap<String, Route>>>;

struct Route {
    directory: String,
    tx: mpsc::Sender<ServerEvent>,
}

/// The live stream of one server, shared by its runs.
#[derive(Clone)]
pub struct LiveHub {
    client: Client,
    inner: Arc<Mutex<Option<Follow>>>,
}

struct Follow {
    routes: Routes,
    watchlist: Watchlist,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("server", &self.client.base_url())
            .finish()
    }
}

impl LiveHub {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            inner: Arc::new(Mutex::new(None)),
        }
    }

    /// Events about remote session `session_id` (and files edited in `directory`) until the
    /// subscription is dropped.
    pub fn subscribe(&self, session_id: &str, directory: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(BACKLOG);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let follow = inner.get_or_insert_with(|| {
            let routes: Routes = Arc::default();
            let watchlist = Watchlist::default();
            let follower = EventFollower::spawn(
                self.client.clone(),
                watchlist.clone(),
                StreamOptions::default(),
            );
            let task = tokio::spawn(route(follower, routes.clone()));
            Follow {
                routes,
                watchlist,
                task,
            }
        });
        follow.watchlist.watch(session_id, directory);
        follow
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                session_id.to_string(),
                Route {
                    directory: directory.to_string(),
                    tx,
                },
            );
        Subscription {
            hub: self.clone(),
            session_id: session_id.to_string(),
            events: rx,
        }
    }

    fn unsubscribe(&self, session_id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(follow) = inner.as_ref() else {
            return;
        };
        follow.watchlist.unwatch(session_id);
        let empty = {
            let mut routes = follow.routes.lock().unwrap_or_else(PoisonError::into_inner);
            routes.remove(session_id);
            routes.is_empty()
        };
        if empty && let Some(follow) = inner.take() {
            follow.task.abort(); // drops the follower, which stops it
        }
    }
}

/// A run's share of the stream.
pub struct Subscription {
    hub: LiveHub,
    session_id: String,
    pub events: mpsc::Receiver<ServerEvent>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.session_id);
    }
}

async fn route(mut follower: EventFollower, routes: Routes) {
    while let Some(item) = follower.items.recv().await {
        let events: Vec<(String, ServerEvent)> = match item {
            StreamItem::Event { directory, event } => match (event.session_id(), &event) {
                (Some(id), _) => vec![(id.to_string(), event.clone())],
                // `file.edited` names no session: it goes to the run working in that directory.
                (None, ServerEvent::FileEdited { .. }) => {
                    let routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
                    routes
                        .iter()
                        .filter(|(_, r)| directory.as_deref() == Some(r.directory.as_str()))
                        .map(|(id, _)| (id.clone(), event.clone()))
                        .collect()
                }
                _ => Vec::new(),
            },
            StreamItem::Resynced(snapshots) => snapshots
                .into_iter()
                .flat_map(|s| {
                    let id = s.session_id.clone();
                    let parts = s
                        .recent
                        .into_iter()
                        .flat_map(|m| m.parts)
                        .map(|part| ServerEvent::PartUpdated { part });
                    let asks = s.permissions.into_iter().map(ServerEvent::PermissionAsked);
                    parts
                        .chain(asks)
                        .map(move |e| (id.clone(), e))
                        .collect::<Vec<_>>()
                })
                .collect(),
            StreamItem::Connected | StreamItem::Disconnected { .. } => Vec::new(),
        };
        let routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, event) in events {
            if let Some(route) = routes.get(&id) {
                let _ = route.tx.try_send(event);
            }
        }
    }
}
