#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::opencode::client::ClientOptions;

/// A server whose `/global/event` sends `burst` at once (all of it in one write: what a busy
/// server's many small writes become when ocio reads them some time later), then stays open.
async fn serve(burst: Vec<serde_json::Value>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/global/event",
        axum::routing::get(move || {
            let all: String = burst
                .iter()
                .map(|event| format!("data: {event}\n\n"))
                .collect();
            let chunk: Result<Bytes, Infallible> = Ok(Bytes::from(all));
            let stream = futures_util::stream::once(async move { chunk })
                .chain(futures_util::stream::pending());
            async move {
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from_stream(stream))
                    .unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn global(kind: &str, properties: serde_json::Value) -> serde_json::Value {
    json!({"directory": "/w", "payload": {"type": kind, "properties": properties}})
}

fn delta(part: &str, text: &str) -> serde_json::Value {
    global(
        "message.part.delta",
        json!({"sessionID": "ses_a", "messageID": "msg_1", "partID": part, "field": "text", "delta": text}),
    )
}

/// The events the follower hands on until the session's idle.
async fn until_idle(follower: &mut EventFollower) -> Vec<ServerEvent> {
    let mut events = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), follower.items.recv())
            .await
            .expect("the session's idle never came")
            .expect("the follower ended");
        if let StreamItem::Event { event, .. } = item {
            let idle = matches!(event, ServerEvent::SessionIdle { .. });
            events.push(event);
            if idle {
                return events;
            }
        }
    }
}

/// A model streaming text sends a delta per chunk; what arrives together is handed on as one
/// delta per part, the same text, with every other event in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_deltas_is_handed_on_joined_and_in_order() {
    let words: Vec<String> = (0..300).map(|i| format!("w{i} ")).collect();
    let mut burst: Vec<_> = words[..200].iter().map(|w| delta("prt_1", w)).collect();
    burst.push(global("file.edited", json!({"file": "/w/a.txt"})));
    burst.push(global(
        "session.status",
        json!({"sessionID": "ses_a", "status": {"type": "busy"}}),
    ));
    burst.extend(words[200..].iter().map(|w| delta("prt_1", w)));
    burst.push(global("session.idle", json!({"sessionID": "ses_a"})));
    let url = serve(burst).await;
    let client = Client::new(&url, None, ClientOptions::default()).unwrap();
    let mut follower = EventFollower::spawn(client, Watchlist::default(), StreamOptions::default());
    let events = until_idle(&mut follower).await;

    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::PartDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas.concat(), words.concat());
    // Each run of deltas in a round or a few (as the connection hands the bytes over): not 300.
    assert!(deltas.len() <= 20, "{} deltas handed on", deltas.len());
    let status_at = events
        .iter()
        .position(|e| matches!(e, ServerEvent::SessionStatus { .. }))
        .unwrap();
    let before: String = events[..status_at]
        .iter()
        .filter_map(|e| match e {
            ServerEvent::PartDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        before,
        words[..200].concat(),
        "the status stays after the first 200"
    );
    assert!(
        events[..status_at]
            .iter()
            .any(|e| matches!(e, ServerEvent::FileEdited { .. }))
    );
}

/// A stream that goes silent (a connection half-open after a suspend, a proxy that hangs on to
/// it) is given up after `silence_limit` and opened again. The watchdog's wait started over at
/// every sweep tick (every 10 s by default, within its 30 s), so it never fired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_given_up_though_the_sweep_ticks_meanwhile() {
    let url = serve(vec![global("server.connected", json!({}))]).await;
    let client = Client::new(&url, None, ClientOptions::default()).unwrap();
    let options = StreamOptions {
        silence_limit: Duration::from_millis(800),
        resync_every: Duration::from_millis(200),
        ..StreamOptions::default()
    };
    let mut follower = EventFollower::spawn(client, Watchlist::default(), options);
    let reason = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match follower.items.recv().await.expect("the follower ended") {
                StreamItem::Disconnected { reason, .. } => return reason,
                _ => continue,
            }
        }
    })
    .await
    .expect("a stream silent for 10 s was never given up");
    assert!(reason.contains("heartbeat watchdog"), "{reason}");
}
