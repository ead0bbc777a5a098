//! A circuit breaker per server: after repeated failures calls fail fast instead of piling up on
//! a dead server, then one trial call at a time probes whether it is back.
//!
//! Closed (calls pass) -> Open after `failures_to_open` consecutive failures (calls refused for a
//! cooldown) -> HalfOpen (one trial call) -> Closed on success, or Open again with the cooldown
//! doubled (up to `max_cooldown`). A trial left unanswered for `trial_patience` no longer holds
//! the others back: one more call may try, and the latest trial decides (a superseded one
//! settling late changes nothing). OpenCode 1.18.33 never answers a request that arrives just
//! as it starts listening (one sent 1.3 s after a restart hung for good while those 250 ms
//! later took 15 ms), so a trial that met that moment kept the breaker from closing for a
//! whole call timeout (15 s) after the server was back. The state is published on a `watch` channel, so the engine,
//! the UI and the metrics read it without asking the client.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    pub(crate) failures_to_open: u32,
    pub(crate) first_cooldown: Duration,
    pub(crate) max_cooldown: Duration,
    /// How long a trial call may go unanswered before another call may try too.
    pub(crate) trial_patience: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failures_to_open: 3,
            first_cooldown: Duration::from_secs(1),
            // A server that came back waits at most this long for the next trial: one
            // request per 10 s to a dead server costs nothing, and 30 s kept a box whose
            // server restarted idle for half a minute after it was back.
            max_cooldown: Duration::from_secs(10),
            trial_patience: Duration::from_secs(2),
        }
    }
}

/// The call was refused without reaching the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BreakerOpen {
    pub(crate) retry_in: Duration,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Instant,
    cooldown: Duration,
    /// The latest trial call in flight: its number and when it went out.
    trial: Option<(u64, Instant)>,
    /// Trial calls made so far (their numbers).
    trials: u64,
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    inner: Mutex<Inner>,
    published: watch::Sender<BreakerState>,
}

impl Breaker {
    pub(crate) fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: Instant::now(),
                cooldown: policy.first_cooldown,
                trial: None,
                trials: 0,
            }),
            published: watch::Sender::new(BreakerState::Closed),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        *self.published.borrow()
    }

    /// Follow state changes (the engine marks the agent degraded/offline, the UI redraws).
    pub fn subscribe(&self) -> watch::Receiver<BreakerState> {
        self.published.subscribe()
    }

    /// Ask to make a call at `now`. The permit must be settled with `succeeded` or `failed`;
    /// dropping it unsettled (the call was cancelled) just frees the half-open trial slot.
    pub(crate) fn permit(&self, now: Instant) -> Result<Permit<'_>, BreakerOpen> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => {}
            BreakerState::Open => {
                let reopen = inner.opened_at + inner.cooldown;
                if now < reopen {
                    return Err(BreakerOpen {
                        retry_in: reopen - now,
                    });
                }
                self.set(&mut inner, BreakerState::HalfOpen);
            }
            BreakerState::HalfOpen => {
                let patience = self.policy.trial_patience;
                if let Some((_, since)) = inner.trial
                    && now < since + patience
                {
                    let left = since + patience - now;
                    return Err(BreakerOpen {
                        retry_in: left.min(Duration::from_millis(100)),
                    });
                }
            }
        }
        let trial = (inner.state == BreakerState::HalfOpen).then(|| {
            inner.trials += 1;
            inner.trial = Some((inner.trials, now));
            inner.trials
        });
        Ok(Permit {
            breaker: self,
            trial,
            settled: false,
        })
    }

    fn succeeded(&self) {
        let mut inner = self.lock();
        inner.failures = 0;
        inner.trial = None;
        inner.cooldown = self.policy.first_cooldown;
        self.set(&mut inner, BreakerState::Closed);
    }

    /// A call failed; `trial`: the number of the trial it was. A trial superseded by a later
    /// one (it hung past the patience) changes nothing: the later one decides.
    fn failed(&self, now: Instant, trial: Option<u64>) {
        let mut inner = self.lock();
        if let Some(number) = trial {
            if inner.trial.map(|(current, _)| current) != Some(number) {
                return;
            }
            inner.trial = None;
        }
        match inner.state {
            BreakerState::Closed => {
                inner.failures += 1;
                if inner.failures >= self.policy.failures_to_open {
                    inner.opened_at = now;
                    self.set(&mut inner, BreakerState::Open);
                }
            }
            BreakerState::HalfOpen => {
                inner.cooldown = (inner.cooldown * 2).min(self.policy.max_cooldown);
                inner.opened_at = now;
                self.set(&mut inner, BreakerState::Open);
            }
            // A call admitted before the breaker opened failed too: nothing new to learn.
            BreakerState::Open => {}
        }
    }

    /// Trial `number` was cancelled: another call may try at once, unless a later trial is
    /// in flight.
    fn release_trial(&self, number: u64) {
        let mut inner = self.lock();
        if inner.trial.map(|(current, _)| current) == Some(number) {
            inner.trial = None;
        }
    }

    fn set(&self, inner: &mut Inner, state: BreakerState) {
        if inner.state != state {
            tracing::info!(
                from = inner.state.name(),
                to = state.name(),
                "circuit breaker"
            );
            inner.state = state;
            self.published.send_replace(state);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state is a handful of plain fields updated in one step: a panic elsewhere cannot
        // leave it half-changed, so a poisoned lock is still good.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Leave to make one call; settle it with the outcome.
#[must_use = "settle the permit with succeeded() or failed()"]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    /// The number of the trial this call is, in the half-open state.
    trial: Option<u64>,
    settled: bool,
}

impl Permit<'_> {
    pub(crate) fn succeeded(mut self) {
        self.settled = true;
        self.breaker.succeeded();
    }

    pub(crate) fn failed(mut self) {
        self.settled = true;
        self.breaker.failed(Instant::now(), self.trial);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled
            && let Some(number) = self.trial
        {
            self.breaker.release_trial(number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failures_to_open: 2,
            first_cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(3),
            trial_patience: Duration::from_secs(2),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_refuses_until_cooldown() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        b.permit(t0).unwrap().failed();
        assert_eq!(b.state(), BreakerState::Closed);
        b.permit(t0).unwrap().succeeded();
        b.permit(t0).unwrap().failed();
        b.permit(t0).unwrap().failed();
        assert_eq!(b.state(), BreakerState::Open);
        let refused = b.permit(Instant::now()).err().unwrap();
        assert!(refused.retry_in <= Duration::from_secs(1));
    }

    #[test]
    fn half_open_admits_one_trial_and_closes_on_success() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        b.permit(t0).unwrap().failed();
        b.permit(t0).unwrap().failed();
        let later = Instant::now() + Duration::from_secs(2);
        let trial = b.permit(later).unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.permit(later).is_err(), "only one trial at a time");
        trial.succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.permit(later).is_ok());
    }

    /// A trial the server never answers (OpenCode drops a request that arrives as it starts)
    /// holds the others back only so long: then another call tries, and its success closes
    /// the breaker; the first trial failing late reopens nothing.
    #[test]
    fn a_trial_left_unanswered_lets_another_call_try() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        b.permit(t0).unwrap().failed();
        b.permit(t0).unwrap().failed();
        let later = Instant::now() + Duration::from_secs(2);
        let hung = b.permit(later).unwrap();
        let soon = later + Duration::from_secs(1);
        assert!(b.permit(soon).is_err(), "a trial is still awaited");
        let patient = later + Duration::from_secs(2);
        b.permit(patient).unwrap().succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
        hung.failed();
        assert_eq!(b.state(), BreakerState::Closed);
        // Not counted either: one more failure does not open it.
        b.permit(patient).unwrap().failed();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    /// A superseded trial settling late leaves the state to the trial after it: its failure
    /// does not reopen the breaker (doubling the cooldown), nor does its cancellation let a
    /// third call through while the second is awaited.
    #[test]
    fn a_superseded_trial_leaves_the_state_to_the_next() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        b.permit(t0).unwrap().failed();
        b.permit(t0).unwrap().failed();
        let later = Instant::now() + Duration::from_secs(2);
        let first = b.permit(later).unwrap();
        let patient = later + Duration::from_secs(2);
        let second = b.permit(patient).unwrap();
        drop(first);
        assert!(b.permit(patient).is_err(), "the second trial is awaited");
        let third_try = patient + Duration::from_secs(3);
        let third = b.permit(third_try).unwrap();
        second.failed();
        assert_eq!(b.state(), BreakerState::HalfOpen, "the third decides");
        third.succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn failed_trial_reopens_with_longer_cooldown_capped() {
        let b = Breaker::new(policy());
        let mut now = Instant::now();
        b.permit(now).unwrap().failed();
        b.permit(now).unwrap().failed();
        for expected in [2, 3, 3] {
            now += Duration::from_secs(10);
            b.permit(now).unwrap().failed();
            assert_eq!(b.state(), BreakerState::Open);
            // failed() stamps the real clock; measure the cooldown from there.
            let refused = b.permit(Instant::now()).err().unwrap();
            assert!(refused.retry_in > Duration::from_secs(expected - 1));
            assert!(refused.retry_in <= Duration::from_secs(expected));
            now = Instant::now();
        }
    }

    #[test]
    fn cancelled_trial_frees_the_slot() {
        let b = Breaker::new(policy());
        let t0 = Instant::now();
        b.permit(t0).unwrap().failed();
        b.permit(t0).unwrap().failed();
        let later = Instant::now() + Duration::from_secs(2);
        drop(b.permit(later).unwrap());
        assert!(b.permit(later).is_ok());
    }

    #[test]
    fn subscribers_see_every_change() {
        let b = Breaker::new(policy());
        let mut rx = b.subscribe();
        let t0 = Instant::now();
        b.permit(t0).unwrap().failed();
        b.permit(t0).unwrap().failed();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), BreakerState::Open);
    }
}
