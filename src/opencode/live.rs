//! Live events for the runs on one OpenCode server: one follower of the server's
//! `/global/event` stream (started with the first run, stopped with the last), its events routed
//! to the run whose remote session they are about. A resync after a reconnect replays the
//! session's recent parts and pending permission requests, so nothing the stream dropped is
//! lost for good. One task owns the routes and the follower; runs reach it through a
//! [`LiveHub`] handle. What a run makes of its events: [`super::transcript`].

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::client::Client;
use super::event::ServerEvent;
use super::stream::{EventFollower, StreamItem, StreamOptions, Watchlist};

/// Events kept for a run that is slow to take them; beyond that, deltas are dropped (the next
/// full part update or resync carries the whole text again).
const BACKLOG: usize = 512;

/// The live stream of one server, shared by its runs: a cheap handle to the task that owns
/// it. The task ends when the last handle (and the last [`Subscription`]) is dropped.
#[derive(Clone)]
pub(crate) struct LiveHub {
    server: String,
    /// Unbounded so that a [`Subscription`]'s drop can always send its unsubscribe without
    /// waiting; each subscription sends two commands, a subscribe and an unsubscribe.
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("server", &self.server)
            .finish()
    }
}

/// What a run asks of the hub's owner.
enum Command {
    Subscribe { session_id: String, route: Route },
    Unsubscribe { session_id: String },
}

impl LiveHub {
    /// Starts the hub's owning task on the current Tokio runtime.
    pub(crate) fn new(client: Client) -> Self {
        let (commands, inbox) = mpsc::unbounded_channel();
        let server = client.base_url().to_string();
        let hub = Hub {
            client,
            routes: HashMap::new(),
            follower: None,
        };
        tokio::spawn(hub.run(inbox));
        Self { server, commands }
    }

    /// Events about remote session `session_id` (and files edited in `directory`) until the
    /// subscription is dropped. The hub takes the subscription before any event that follows
    /// this call, so a prompt sent after it misses none of its turn.
    pub(crate) fn subscribe(&self, session_id: &str, directory: &str) -> Subscription {
        let (tx, events) = mpsc::channel(BACKLOG);
        let route = Route {
            directory: directory.to_string(),
            tx,
        };
        let session_id = session_id.to_string();
        let _ = self.commands.send(Command::Subscribe {
            session_id: session_id.clone(),
            route,
        });
        Subscription {
            hub: self.clone(),
            session_id,
            events,
        }
    }
}

/// A run's share of the stream.
pub(crate) struct Subscription {
    hub: LiveHub,
    session_id: String,
    pub(crate) events: mpsc::Receiver<ServerEvent>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let session_id = std::mem::take(&mut self.session_id);
        let _ = self.hub.commands.send(Command::Unsubscribe { session_id });
    }
}

struct Route {
    directory: String,
    tx: mpsc::Sender<ServerEvent>,
}

/// The hub's state, owned by its task: the runs' routes, and the server's follower while any
/// run listens.
struct Hub {
    client: Client,
    routes: HashMap<String, Route>,
    follower: Option<EventFollower>,
}

impl Hub {
    /// Commands before stream items: a subscription sent before a prompt is in place before
    /// any event of that prompt is routed.
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                biased;
                command = inbox.recv() => match command {
                    Some(Command::Subscribe { session_id, route }) => {
                        self.subscribe(session_id, route);
                    }
                    Some(Command::Unsubscribe { session_id }) => self.unsubscribe(&session_id),
                    None => return,
                },
                Some(item) = next_item(&mut self.follower) => self.route(item),
            }
        }
    }

    fn subscribe(&mut self, session_id: String, route: Route) {
        let client = &self.client;
        let follower = self.follower.get_or_insert_with(|| {
            EventFollower::spawn(
                client.clone(),
                Watchlist::default(),
                StreamOptions::default(),
            )
        });
        follower.watchlist.watch(&session_id, &route.directory);
        self.routes.insert(session_id, route);
    }

    fn unsubscribe(&mut self, session_id: &str) {
        let Some(follower) = &self.follower else {
            return;
        };
        follower.watchlist.unwatch(session_id);
        self.routes.remove(session_id);
        if self.routes.is_empty() {
            self.follower = None; // dropping the follower stops it
        }
    }

    /// Hands one stream item's events to the runs they are about. A run too slow to take one
    /// has its session resynced by the follower, so what was dropped comes again.
    fn route(&self, item: StreamItem) {
        match item {
            // The common case, a session's live event, goes on as it is (not copied).
            StreamItem::Event { event, .. } if event.session_id().is_some() => {
                let route = event.session_id().and_then(|id| self.routes.get(id));
                if let Some(route) = route
                    && let Err(e) = route.tx.try_send(event)
                    && let Some(id) = e.into_inner().session_id()
                {
                    self.stale(id);
                }
            }
            item => {
                for (id, event) in self.events_of(item) {
                    if let Some(route) = self.routes.get(&id)
                        && route.tx.try_send(event).is_err()
                    {
                        self.stale(&id);
                    }
                }
            }
        }
    }

    /// The run of `session_id` was too slow to take its event: the follower resyncs it.
    fn stale(&self, session_id: &str) {
        if let Some(follower) = &self.follower {
            follower.watchlist.stale(session_id);
        }
    }

    /// The events in `item`, each with the remote session it goes to.
    fn events_of(&self, item: StreamItem) -> Vec<(String, ServerEvent)> {
        match item {
            StreamItem::Event { directory, event } => match (event.session_id(), &event) {
                (Some(id), _) => vec![(id.to_string(), event.clone())],
                // `file.edited` names no session: it goes to the run working in that directory.
                (None, ServerEvent::FileEdited { .. }) => self
                    .routes
                    .iter()
                    .filter(|(_, r)| directory.as_deref() == Some(r.directory.as_str()))
                    .map(|(id, _)| (id.clone(), event.clone()))
                    .collect(),
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
                    let questions = s.questions.into_iter().map(ServerEvent::QuestionAsked);
                    parts
                        .chain(asks)
                        .chain(questions)
                        .map(move |e| (id.clone(), e))
                        .collect::<Vec<_>>()
                })
                .collect(),
            StreamItem::Connected | StreamItem::Disconnected { .. } => Vec::new(),
        }
    }
}

/// The follower's next item; never, while there is no follower.
async fn next_item(follower: &mut Option<EventFollower>) -> Option<StreamItem> {
    match follower {
        Some(follower) => follower.items.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::opencode::client::ClientOptions;
    use crate::opencode::event;
    use crate::opencode::stream::SessionSnapshot;
    use crate::opencode::wire::PermissionRequest;

    /// A hub with a run on `ses_a` in `/a` and one on `ses_b` in `/b`, and their receivers.
    fn hub() -> (
        Hub,
        mpsc::Receiver<ServerEvent>,
        mpsc::Receiver<ServerEvent>,
    ) {
        let client = Client::new("http://127.0.0.1:9", None, ClientOptions::default()).unwrap();
        let mut hub = Hub {
            client,
            routes: HashMap::new(),
            follower: None,
        };
        let mut receivers = Vec::new();
        for (id, directory) in [("ses_a", "/a"), ("ses_b", "/b")] {
            let (tx, rx) = mpsc::channel(BACKLOG);
            let directory = directory.to_string();
            hub.routes.insert(id.into(), Route { directory, tx });
            receivers.push(rx);
        }
        let b = receivers.pop().unwrap();
        let a = receivers.pop().unwrap();
        (hub, a, b)
    }

    fn event(data: &str) -> ServerEvent {
        event::decode(data).unwrap().unwrap()
    }

    #[test]
    fn events_go_to_their_session_and_edits_to_the_run_in_that_directory() {
        let (hub, mut a, mut b) = hub();
        let busy = event(
            r#"{"type":"session.status","properties":{"sessionID":"ses_b","status":{"type":"busy"}}}"#,
        );
        hub.route(StreamItem::Event {
            directory: Some("/b".into()),
            event: busy,
        });
        assert!(matches!(
            b.try_recv(),
            Ok(ServerEvent::SessionStatus { .. })
        ));
        let edited = event(r#"{"type":"file.edited","properties":{"file":"/a/src/lib.rs"}}"#);
        hub.route(StreamItem::Event {
            directory: Some("/a".into()),
            event: edited,
        });
        assert!(
            matches!(a.try_recv(), Ok(ServerEvent::FileEdited { file }) if file == "/a/src/lib.rs")
        );
        assert!(b.try_recv().is_err(), "nothing else went to ses_b");
        let elsewhere = event(
            r#"{"type":"session.status","properties":{"sessionID":"ses_c","status":{"type":"busy"}}}"#,
        );
        hub.route(StreamItem::Event {
            directory: None,
            event: elsewhere,
        });
        assert!(a.try_recv().is_err() && b.try_recv().is_err());
    }

    #[test]
    fn a_resync_replays_a_sessions_pending_permission_requests() {
        let (hub, mut a, _b) = hub();
        let asked: PermissionRequest = serde_json::from_value(serde_json::json!({
            "id": "per_1", "sessionID": "ses_a", "permission": "bash", "patterns": ["ls"]
        }))
        .unwrap();
        hub.route(StreamItem::Resynced(vec![SessionSnapshot {
            session_id: "ses_a".into(),
            permissions: vec![asked],
            questions: Vec::new(),
            recent: Vec::new(),
        }]));
        assert!(matches!(a.try_recv(), Ok(ServerEvent::PermissionAsked(p)) if p.id == "per_1"));
    }

    #[tokio::test]
    async fn a_run_too_slow_for_its_events_has_its_session_resynced() {
        let (mut hub, _a, _b) = hub();
        hub.routes.clear();
        let (tx, _events) = mpsc::channel(1);
        let directory = "/a".to_string();
        hub.subscribe("ses_a".into(), Route { directory, tx });
        let busy = || StreamItem::Event {
            directory: Some("/a".into()),
            event: event(
                r#"{"type":"session.status","properties":{"sessionID":"ses_a","status":{"type":"busy"}}}"#,
            ),
        };
        hub.route(busy());
        let watchlist = &hub.follower.as_ref().unwrap().watchlist;
        assert!(watchlist.take_stale().is_empty(), "taken: nothing lost");
        hub.route(busy());
        assert_eq!(watchlist.take_stale(), ["ses_a".to_string()].into());
    }

    #[tokio::test]
    async fn the_follower_runs_from_the_first_subscription_to_the_last() {
        let (mut hub, _a, _b) = hub();
        hub.routes.clear();
        let (tx, _events) = mpsc::channel(BACKLOG);
        let directory = "/a".to_string();
        hub.subscribe("ses_a".into(), Route { directory, tx });
        let watched = |hub: &Hub| hub.follower.as_ref().map(|f| f.watchlist.snapshot());
        assert_eq!(watched(&hub), Some([("ses_a".into(), "/a".into())].into()));
        let (tx, _events) = mpsc::channel(BACKLOG);
        let directory = "/b".to_string();
        hub.subscribe("ses_b".into(), Route { directory, tx });
        hub.unsubscribe("ses_a");
        assert_eq!(watched(&hub), Some([("ses_b".into(), "/b".into())].into()));
        hub.unsubscribe("ses_b");
        assert!(hub.follower.is_none() && hub.routes.is_empty());
        hub.unsubscribe("ses_b");
    }
}
