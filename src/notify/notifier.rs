//! The notifier that runs beside the engine (in whatever process hosts it: the control room,
//! `ocio --headless`, `ocio run`): one task reads the engine's events and gathers their alerts
//! into bursts, another sends each burst's notice. Between them a bounded queue: when the
//! sending falls behind (a webhook that hangs until its time limit), notices are dropped with a
//! log line rather than held, and the engine's events are never waited on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Alert, Burst, Kind, Notice, deliver};
use crate::config::NotifyConfig;
use crate::engine::Subscription;

/// How long a burst is gathered: a constant, not a setting. Long enough for the bursts the
/// engine makes (sessions dispatched in one tick asking at once; an agent's server going down),
/// short enough that a lone alert is still news when it arrives.
pub(crate) const WINDOW: Duration = Duration::from_secs(2);

/// Notices waiting to be sent at most; more are dropped (and logged).
const QUEUE: usize = 16;

/// How long stopping waits for notices still to be sent.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Where notices go.
struct Sinks {
    command: Option<Vec<String>>,
    webhook: Option<(reqwest::Client, String)>,
    topic: Option<String>,
}

/// The running notifier.
pub struct Notifier {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Notifier {
    /// Start telling `config`'s command and webhook about the alerts in `events`; `None` when
    /// it names neither (or no kind of event).
    pub fn start(config: &NotifyConfig, events: Subscription) -> Option<Notifier> {
        let webhook = match &config.webhook {
            Some(url) => match crate::opencode::client::http_builder().build() {
                Ok(http) => Some((http, url.clone())),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot make the webhook's HTTP client; notices go to the command only");
                    None
                }
            },
            None => None,
        };
        let sinks = Sinks {
            command: config.command.clone().filter(|c| !c.is_empty()),
            webhook,
            topic: config.topic.clone(),
        };
        let kinds: BTreeSet<Kind> = config.events.iter().copied().collect();
        if (sinks.command.is_none() && sinks.webhook.is_none()) || kinds.is_empty() {
            return None;
        }
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (queue, notices) = mpsc::channel(QUEUE);
        tracker.spawn(gather(events, kinds, queue, stop.clone()));
        tracker.spawn(send(notices, Arc::new(sinks)));
        tracker.close();
        tracing::info!("notifications on: {}", config.events_text());
        Some(Notifier { stop, tracker })
    }

    /// Stop: what is gathered is sent at once, and what waits to be sent gets
    /// [`FLUSH_LIMIT`] in all.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if tokio::time::timeout(FLUSH_LIMIT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "notifications still being sent after {}s were given up",
                FLUSH_LIMIT.as_secs()
            );
        }
    }
}

/// Gather the alerts of `kinds` from `events` into bursts and queue each burst's notice when
/// its window closes; on stopping, queue what is gathered at once.
async fn gather(
    mut events: Subscription,
    kinds: BTreeSet<Kind>,
    queue: mpsc::Sender<Notice>,
    stop: CancellationToken,
) {
    let mut burst = Burst::new(WINDOW);
    loop {
        let due = burst.due().map(Instant::from_std);
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => {
                    if let Some(alert) = Alert::of(&event).filter(|a| kinds.contains(&a.kind)) {
                        burst.push(alert, Instant::now().into_std());
                    }
                }
                Err(RecvError::Lagged(missed)) => tracing::warn!(
                    missed,
                    "notifications fell behind the engine's events; some were not told"
                ),
                Err(RecvError::Closed) => break,
            },
            () = sleep_until(due) => {
                if let Some(alerts) = burst.take(Instant::now().into_std()) {
                    enqueue(&queue, Notice::new(alerts));
                }
            }
            () = stop.cancelled() => break,
        }
    }
    if let Some(alerts) = burst.flush() {
        enqueue(&queue, Notice::new(alerts));
    }
}

/// Sleep until `due`, or forever when nothing is due.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Queue a notice without waiting: when the queue is full it is dropped, and the log says so.
fn enqueue(queue: &mpsc::Sender<Notice>, notice: Notice) {
    match queue.try_send(notice) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(notice)) => tracing::warn!(
            alerts = notice.alerts.len(),
            "a notification was dropped: {QUEUE} are waiting to be sent already"
        ),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::warn!("a notification was dropped: the sender has stopped");
        }
    }
}

/// Send each queued notice to the command and the webhook (at the same time), until the queue
/// is closed and empty.
async fn send(mut notices: mpsc::Receiver<Notice>, sinks: Arc<Sinks>) {
    while let Some(notice) = notices.recv().await {
        let body = notice.to_json(sinks.topic.as_deref());
        let command = async {
            if let Some(command) = &sinks.command {
                deliver::run_command(command, &body).await;
            }
        };
        let webhook = async {
            if let Some((http, url)) = &sinks.webhook {
                deliver::post(http, url, &body).await;
            }
        };
        tokio::join!(command, webhook);
        tracing::info!(
            alerts = notice.alerts.len(),
            "notice: {}",
            notice.headline(notice.count(Kind::Waiting))
        );
    }
}
