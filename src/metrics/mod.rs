//! Prometheus metrics for a hosted engine: one task owns the counts (fed by engine events) and
//! answers each scrape with a page built from them and a fresh snapshot; an axum server serves
//! it as `GET /metrics`, on loopback unless the operator says otherwise.
//!
//! The page is written by `prometheus-client` in the OpenMetrics text format: the counts fed by
//! events live in one long-lived registry, and what a scrape reads now (the snapshot, the store)
//! goes into a registry built for that page.

mod budgets;
mod tally;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::AgentName;
use crate::engine::EngineApi;
use crate::engine::EngineHandle;
use crate::opencode::client::Client;
use crate::store::{StoreHandle, query};
use tally::{Now, Tally};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "--metrics-addr {addr} is not a loopback address: anyone who can reach it would read the metrics\n  hint: use 127.0.0.1:PORT, or add --metrics-public to serve on {addr} anyway"
    )]
    NotLoopback { addr: SocketAddr },
    #[error(
        "cannot serve metrics on {addr}: {detail}\n  hint: pick a free port with --metrics-addr"
    )]
    Bind { addr: SocketAddr, detail: String },
}

/// Refuse an address other hosts can reach unless `public` says that is meant.
pub(crate) fn check_addr(addr: SocketAddr, public: bool) -> Result<(), MetricsError> {
    if addr.ip().is_loopback() || public {
        Ok(())
    } else {
        Err(MetricsError::NotLoopback { addr })
    }
}

/// What the metrics read besides engine events.
pub(crate) struct Sources {
    pub(crate) engine: EngineHandle,
    pub(crate) store: StoreHandle,
    /// OpenCode agents' clients, for their circuit breakers.
    pub(crate) clients: Vec<(AgentName, Client)>,
}

/// The running metrics server.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: CancellationToken,
    tracker: TaskTracker,
}

type Scrape = oneshot::Sender<String>;

impl MetricsServer {
    /// Bind `addr` (port 0 picks a free one) and serve `/metrics`.
    pub(crate) async fn start(addr: SocketAddr, sources: Sources) -> Result<Self, MetricsError> {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| MetricsError::Bind {
                    addr,
                    detail: e.to_string(),
                })?;
        let bound = listener.local_addr().map_err(|e| MetricsError::Bind {
            addr,
            detail: e.to_string(),
        })?;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (scrapes, requests) = mpsc::channel::<Scrape>(16);
        tracker.spawn(collect(sources, requests, stop.clone()));
        let app = Router::new()
            .route("/metrics", get(metrics))
            .with_state(scrapes);
        let shutdown = stop.clone();
        tracker.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "metrics server stopped");
            }
        });
        tracing::info!(addr = %bound, "serving metrics");
        Ok(Self {
            addr: bound,
            stop,
            tracker,
        })
    }

    /// Where `/metrics` is served.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) async fn shutdown(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn metrics(State(scrapes): State<mpsc::Sender<Scrape>>) -> impl IntoResponse {
    let (reply, page) = oneshot::channel();
    let page = match scrapes.send(reply).await {
        Ok(()) => page.await.ok(),
        Err(_) => None,
    };
    match page {
        Some(page) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            page,
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the engine has stopped\n".to_string(),
        ),
    }
}

/// The owner of the counts: engine events in, pages out.
async fn collect(sources: Sources, mut scrapes: mpsc::Receiver<Scrape>, stop: CancellationToken) {
    let mut events = sources.engine.subscribe();
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            event = events.recv() => match event {
                Ok(event) => tally.observe(&event),
                Err(RecvError::Lagged(missed)) => tally.lagged(missed),
                Err(RecvError::Closed) => return,
            },
            Some(reply) = scrapes.recv() => match read_now(&sources).await {
                Ok(now) => {
                    let _ = reply.send(tally.render(&now));
                }
                Err(e) => tracing::warn!(error = %e, "metrics: cannot read the engine's state"),
            },
        }
    }
}

async fn read_now(sources: &Sources) -> Result<Now, String> {
    let snapshot = sources.engine.snapshot().await.map_err(|e| e.to_string())?;
    let (sessions, leases) = sources
        .store
        .read(|txn| Ok((query::session_counts(txn)?, query::leases(txn)?.len())))
        .await
        .map_err(|e| e.to_string())?;
    let breakers = sources
        .clients
        .iter()
        .map(|(name, client)| (name.to_string(), client.breaker_state()))
        .collect();
    Ok(Now {
        snapshot,
        sessions,
        leases,
        breakers,
        store_commits: sources.store.commits(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_public() {
        let local: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert!(check_addr(local, false).is_ok());
        assert!(check_addr("[::1]:9464".parse().unwrap(), false).is_ok());
        let err = check_addr(any, false).unwrap_err().to_string();
        assert!(
            err.contains("--metrics-public") && err.contains("0.0.0.0:9464"),
            "{err}"
        );
        assert!(check_addr(any, true).is_ok());
    }
}
