//! The lock manager: exclusive, FIFO-fair leases on named resources (a path, a repository, a
//! repository's merge step), with expiry, fencing and deadlock breaking. Pure: time comes in as
//! arguments, and every change comes back as [`LockEvent`]s the engine logs and acts on.
//!
//! **Names and conflicts.** A resource is named `<namespace>:<name>`: `path:/r/src/api/`,
//! `repo:/r`, `merge:/r` (see [`path`], [`repo`], [`merge`]). Two names conflict when they are
//! equal, or when both are in the `path:` namespace and one is a prefix of the other at a `/`
//! boundary: `path:/r/src/api/` and `path:/r/src/api` both conflict with
//! `path:/r/src/api/users.rs`, neither with `path:/r/src/apiary`. Other namespaces only conflict
//! by equality, and namespaces never conflict with each other (`repo:/r` does not cover
//! `path:/r/...`; lock `path:/r/` for the whole tree). Names are compared as given.
//!
//! **Fairness.** Locks are exclusive. A request is granted at once only when no conflicting lease
//! is held and no earlier conflicting request is waiting (no barging); otherwise it waits, and
//! waiters are granted in request order as conflicts clear. A holder may hold and wait for many
//! resources, but asking for one that overlaps what it already holds or waits for is an error
//! ([`LockError::AlreadyHeld`], [`LockError::AlreadyWaiting`], [`LockError::OverlapsOwn`]): it
//! would wait on itself forever.
//!
//! **Leases.** A grant lasts `lease_for`; the holder renews it before `expires_at`. A lease past
//! its expiry still blocks others until [`LockManager::expire`] reaps it, but can no longer be
//! renewed. Every grant takes the next fence, increasing across all resources and restarts (the
//! store persists [`LockManager::last_fence`]); a renewal keeps its fence.
//!
//! **Deadlocks.** Holder `A` waits for `B` when `B` holds a lease, or has an earlier waiting
//! request, that conflicts with one of `A`'s waiting requests. Only a new wait can close a cycle
//! (grants, releases and denials add no wait-for edge), so each request that waits is checked
//! for a cycle through its holder, and the victim is the most recent request on the cycle (in
//! practice the new one), which is denied. [`LockManager::detect_deadlocks`] is a full sweep.
//! Every waiter ends [`LockEvent::Granted`] or [`LockEvent::Denied`] with a reason.
//!
//! **Cost.** Leases and waiters are indexed by name in ordered maps, so finding what conflicts
//! with a name costs O(depth · log n + k): its `/`-ancestors by lookup, its descendants by one
//! range scan, k the conflicts found; never a scan of every lock. A release only looks at the
//! head of each conflicting line. The cycle check is skipped unless someone waits for the
//! requester, and otherwise walks only what it transitively waits for. The `Queued` event and
//! [`LockManager::waiters`] list every blocker, so they cost O(k) per waiter.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::lease::Lease;

const PATH: &str = "path:";

/// The name of a path (a directory ends in `/`) inside a repository: `path:<repo>/<rel>`.
pub(crate) fn path(repo: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches("./").trim_start_matches('/');
    format!("{PATH}{}/{rel}", repo.trim_end_matches('/'))
}

/// The name of a whole repository: `repo:<repo>`.
pub(crate) fn repo(repo: &str) -> String {
    format!("repo:{}", repo.trim_end_matches('/'))
}

/// The name of a repository's merge step: `merge:<repo>`.
pub(crate) fn merge(repo: &str) -> String {
    format!("merge:{}", repo.trim_end_matches('/'))
}

/// Whether two resource names conflict (the rule in the module docs).
pub(crate) fn conflicts(a: &str, b: &str) -> bool {
    match (a.strip_prefix(PATH), b.strip_prefix(PATH)) {
        _ if a == b => true,
        (Some(a), Some(b)) => covers(a, b) || covers(b, a),
        _ => false,
    }
}

/// `outer` is a prefix of `inner` ending at a `/` boundary.
fn covers(outer: &str, inner: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || outer.ends_with('/'))
}

/// The entries of `map` whose names conflict with `name`: the name itself, its `/`-boundary
/// ancestors (looked up one by one) and its descendants (one range scan), lazily.
fn conflicting<'m, 'n, V>(
    map: &'m BTreeMap<String, V>,
    name: &'n str,
) -> impl Iterator<Item = (&'m str, &'m V)> + use<'m, 'n, V> {
    let rest = name.strip_prefix(PATH);
    let mut ancestors = BTreeSet::new();
    for (i, _) in rest.into_iter().flat_map(|rest| rest.match_indices('/')) {
        let at = PATH.len() + i;
        ancestors.insert(&name[..at]);
        if at + 1 < name.len() {
            ancestors.insert(&name[..=at]);
        }
    }
    let stem = if name.ends_with('/') {
        name.to_string()
    } else {
        format!("{name}/")
    };
    let below = rest.map(|_| {
        map.range::<str, _>((Bound::Included(stem.as_str()), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(&stem))
            .filter(move |(k, _)| k.as_str() != name)
    });
    map.get_key_value(name)
        .into_iter()
        .chain(ancestors.into_iter().filter_map(|a| map.get_key_value(a)))
        .chain(below.into_iter().flatten())
        .map(|(k, v)| (k.as_str(), v))
}

/// Why a waiting request ended without a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DenyReason {
    /// It closed a wait-for cycle and was chosen as the victim.
    Deadlock,
    /// Its holder cancelled it.
    Cancelled,
    /// Its holder released everything (it finished, failed or was stopped).
    HolderReleasedAll,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DenyReason::Deadlock => "it would deadlock",
            DenyReason::Cancelled => "it was cancelled",
            DenyReason::HolderReleasedAll => "its holder released all its locks",
        })
    }
}

/// What happened to a lock, in the order it happened: the engine logs these and acts on grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum LockEvent {
    /// The holder now holds the resource, at once or after waiting.
    Granted { lease: Lease },
    /// The request waits. `position`: its place in line among conflicting waiters (1 = next);
    /// `blocked_by`: the holders it waits for (holding, or ahead in line).
    Queued {
        holder: String,
        resource: String,
        position: usize,
        blocked_by: Vec<String>,
    },
    /// The holder let the lease go.
    Released {
        holder: String,
        resource: String,
        fence: u64,
    },
    /// The lease ran past `expires_at` without renewal and was taken back.
    Expired { lease: Lease },
    /// A wait-for cycle: each holder waits for the next, the last for the first. The victim's
    /// request for `resource` is denied (a `Denied` event follows).
    DeadlockBroken {
        cycle: Vec<String>,
        victim: String,
        resource: String,
    },
    /// A waiting request ended without a grant.
    Denied {
        holder: String,
        resource: String,
        reason: DenyReason,
    },
}

impl LockEvent {
    /// The lease, when this is a grant.
    pub(crate) fn granted(&self) -> Option<&Lease> {
        match self {
            LockEvent::Granted { lease } => Some(lease),
            _ => None,
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Granted(Lease),
    /// Waiting; `position` as in [`LockEvent::Queued`].
    Queued {
        position: usize,
    },
    Denied(DenyReason),
}

/// A request's outcome and everything it caused, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requested {
    pub(crate) outcome: Outcome,
    pub(crate) events: Vec<LockEvent>,
}

/// A request waiting in line, as shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Waiter {
    pub(crate) holder: String,
    pub(crate) resource: String,
    pub(crate) since: Timestamp,
    pub(crate) position: usize,
    pub(crate) blocked_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LockError {
    #[error("{holder} already holds {resource}")]
    AlreadyHeld { holder: String, resource: String },
    #[error("{holder} already waits for {resource}")]
    AlreadyWaiting { holder: String, resource: String },
    #[error("{holder} asked for {resource}, which overlaps {own} that it already {}", if *.waiting { "waits for" } else { "holds" })]
    OverlapsOwn {
        holder: String,
        resource: String,
        own: String,
        waiting: bool,
    },
    #[error("{holder} does not hold {resource}")]
    NotHeld { holder: String, resource: String },
    #[error("{holder} is not waiting for {resource}")]
    NotWaiting { holder: String, resource: String },
    #[error(
        "the lease of {resource} by {holder} expired at {expires_at}; it can no longer be renewed"
    )]
    Expired {
        holder: String,
        resource: String,
        expires_at: Timestamp,
    },
    #[error(
        "stored leases conflict: {resource} (fence {fence}) overlaps {other} (fence {other_fence})"
    )]
    RestoreConflict {
        resource: String,
        fence: u64,
        other: String,
        other_fence: u64,
    },
}

fn not_held(holder: &str, resource: &str) -> LockError {
    let (holder, resource) = (holder.into(), resource.into());
    LockError::NotHeld { holder, resource }
}

#[derive(Debug, Clone)]
struct Wait {
    holder: String,
    resource: String,
    since: Timestamp,
}

/// Who holds and who waits for which resource. See the module docs for the rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct LockManager {
    lease_for: SignedDuration,
    last_fence: u64,
    last_seq: u64,
    /// Resource -> its lease (no two held names conflict).
    held: BTreeMap<String, Lease>,
    /// Holder -> the resources it holds.
    held_by: BTreeMap<String, BTreeSet<String>>,
    /// (expires_at, resource) of every lease, soonest first.
    expiries: BTreeSet<(Timestamp, String)>,
    /// Request sequence -> waiting request: the FIFO line.
    queue: BTreeMap<u64, Wait>,
    /// Resource -> sequences of the requests waiting for it.
    waiting: BTreeMap<String, BTreeSet<u64>>,
    /// Holder -> sequences of its waiting requests.
    waits_of: BTreeMap<String, BTreeSet<u64>>,
}

impl LockManager {
    pub(crate) fn new(lease_for: SignedDuration) -> Self {
        Self {
            lease_for,
            ..Self::default()
        }
    }

    /// The manager after a restart: the stored leases held again, as they were (expired ones are
    /// reaped by the next [`expire`](Self::expire)); new fences start above `fence_floor` and
    /// every stored fence. Waiters are not stored: they ask again.
    pub(crate) fn restore(
        leases: Vec<Lease>,
        lease_for: SignedDuration,
        fence_floor: u64,
    ) -> Result<Self, LockError> {
        let mut manager = Self::new(lease_for);
        manager.last_fence = fence_floor;
        for lease in leases {
            if let Some((other, held)) = conflicting(&manager.held, &lease.resource).next() {
                return Err(LockError::RestoreConflict {
                    resource: lease.resource.clone(),
                    fence: lease.fence,
                    other: other.to_string(),
                    other_fence: held.fence,
                });
            }
            manager.last_fence = manager.last_fence.max(lease.fence);
            manager.insert_lease(lease);
        }
        Ok(manager)
    }

    pub(crate) fn lease_for(&self) -> SignedDuration {
        self.lease_for
    }

    /// The highest fence granted so far (persist it and give it back to `restore`).
    pub(crate) fn last_fence(&self) -> u64 {
        self.last_fence
    }

    /// Asks for `resource` for `holder`: granted at once, queued, or (when waiting would close a
    /// wait-for cycle) denied.
    pub(crate) fn request(
        &mut self,
        holder: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Requested, LockError> {
        self.check_own(holder, resource)?;
        let blocked_by: Vec<String> = self
            .blockers(resource, u64::MAX)
            .into_iter()
            .map(String::from)
            .collect();
        if blocked_by.is_empty() {
            let lease = self.grant(holder, resource, now);
            let events = vec![LockEvent::Granted {
                lease: lease.clone(),
            }];
            return Ok(Requested {
                outcome: Outcome::Granted(lease),
                events,
            });
        }
        self.last_seq += 1;
        let seq = self.last_seq;
        let position = 1 + self.earlier_count(resource, seq);
        self.enqueue(seq, holder, resource, now);
        let mut events = vec![LockEvent::Queued {
            holder: holder.into(),
            resource: resource.into(),
            position,
            blocked_by,
        }];
        while self.is_waited_for(holder)
            && let Some(cycle) = self.find_cycle(holder)
        {
            self.break_cycle(&cycle, now, &mut events);
        }
        let outcome = match self.held.get(resource) {
            _ if self.queue.contains_key(&seq) => Outcome::Queued { position },
            Some(lease) if lease.holder == holder => Outcome::Granted(lease.clone()),
            _ => Outcome::Denied(DenyReason::Deadlock),
        };
        Ok(Requested { outcome, events })
    }

    /// Lets `holder`'s lease on `resource` go; the waiters it was blocking are granted.
    pub(crate) fn release(
        &mut self,
        holder: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Vec<LockEvent>, LockError> {
        if self.held.get(resource).is_none_or(|l| l.holder != holder) {
            return Err(not_held(holder, resource));
        }
        let mut events = Vec::new();
        self.let_go(resource, &mut events);
        self.grant_waiters(&[resource.to_string()], now, &mut events);
        Ok(events)
    }

    /// Lets every lease of `holder` go and denies its waiting requests (it is done).
    pub(crate) fn release_all(&mut self, holder: &str, now: Timestamp) -> Vec<LockEvent> {
        let mut events = Vec::new();
        let mut freed = Vec::new();
        for resource in self.held_by.get(holder).cloned().unwrap_or_default() {
            self.let_go(&resource, &mut events);
            freed.push(resource);
        }
        for seq in self.waits_of.get(holder).cloned().unwrap_or_default() {
            if let Some(wait) = self.deny(seq, DenyReason::HolderReleasedAll, &mut events) {
                freed.push(wait.resource);
            }
        }
        self.grant_waiters(&freed, now, &mut events);
        events
    }

    /// Stops `holder` waiting for `resource`; those behind it in line may be granted.
    pub(crate) fn cancel(
        &mut self,
        holder: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Vec<LockEvent>, LockError> {
        let Some(seq) = self.wait_seq(holder, resource) else {
            return Err(LockError::NotWaiting {
                holder: holder.into(),
                resource: resource.into(),
            });
        };
        let mut events = Vec::new();
        self.deny(seq, DenyReason::Cancelled, &mut events);
        self.grant_waiters(&[resource.to_string()], now, &mut events);
        Ok(events)
    }

    /// Extends `holder`'s lease on `resource` to `now + lease_for`, keeping its fence. Refused
    /// once the lease has expired, even if not yet reaped.
    pub(crate) fn renew(
        &mut self,
        holder: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Lease, LockError> {
        let Some(lease) = self.held.get(resource).filter(|l| l.holder == holder) else {
            return Err(not_held(holder, resource));
        };
        if lease.is_expired(now) {
            return Err(LockError::Expired {
                holder: holder.into(),
                resource: resource.into(),
                expires_at: lease.expires_at,
            });
        }
        let mut lease = lease.clone();
        self.remove_lease(resource);
        lease.expires_at = self.expiry(now);
        self.insert_lease(lease.clone());
        Ok(lease)
    }

    /// Takes back every lease expired at `now` and grants the waiters they were blocking.
    pub(crate) fn expire(&mut self, now: Timestamp) -> Vec<LockEvent> {
        let due: Vec<String> = self
            .expiries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, resource)| resource.clone())
            .collect();
        let mut events = Vec::new();
        for resource in &due {
            if let Some(lease) = self.remove_lease(resource) {
                events.push(LockEvent::Expired { lease });
            }
        }
        self.grant_waiters(&due, now, &mut events);
        events
    }

    /// Breaks every wait-for cycle (a full sweep; `request` already checks each new wait).
    pub(crate) fn detect_deadlocks(&mut self, now: Timestamp) -> Vec<LockEvent> {
        let mut events = Vec::new();
        let waiting: Vec<String> = self.waits_of.keys().cloned().collect();
        for holder in waiting {
            while let Some(cycle) = self.find_cycle(&holder) {
                self.break_cycle(&cycle, now, &mut events);
            }
        }
        events
    }

    /// The held leases, by resource name.
    pub(crate) fn holders(&self) -> impl Iterator<Item = &Lease> {
        self.held.values()
    }

    pub(crate) fn lease(&self, resource: &str) -> Option<&Lease> {
        self.held.get(resource)
    }

    /// The held leases, to persist.
    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.held.values().cloned().collect()
    }

    /// The waiting requests in the order they asked.
    pub(crate) fn waiters(&self) -> Vec<Waiter> {
        let view = |(&seq, wait): (&u64, &Wait)| Waiter {
            holder: wait.holder.clone(),
            resource: wait.resource.clone(),
            since: wait.since,
            position: 1 + self.earlier_count(&wait.resource, seq),
            blocked_by: self
                .blockers(&wait.resource, seq)
                .into_iter()
                .map(String::from)
                .collect(),
        };
        self.queue.iter().map(view).collect()
    }

    // ---- internals ----

    fn check_own(&self, holder: &str, resource: &str) -> Result<(), LockError> {
        let (h, r) = (holder.to_string(), resource.to_string());
        if self.held.get(resource).is_some_and(|l| l.holder == holder) {
            return Err(LockError::AlreadyHeld {
                holder: h,
                resource: r,
            });
        }
        if self.wait_seq(holder, resource).is_some() {
            return Err(LockError::AlreadyWaiting {
                holder: h,
                resource: r,
            });
        }
        // Through the holder's own (few) leases and waits, not the whole line.
        let own_leases = self
            .held_by
            .get(holder)
            .into_iter()
            .flatten()
            .map(|r| (r, false));
        let own_waits = self.waits_of.get(holder).into_iter().flatten();
        let own_waits = own_waits.filter_map(|seq| Some((&self.queue.get(seq)?.resource, true)));
        match own_leases
            .chain(own_waits)
            .find(|(own, _)| conflicts(own, resource))
        {
            Some((own, waiting)) => Err(LockError::OverlapsOwn {
                holder: h,
                resource: r,
                own: own.clone(),
                waiting,
            }),
            None => Ok(()),
        }
    }

    fn wait_seq(&self, holder: &str, resource: &str) -> Option<u64> {
        let seqs = self.waits_of.get(holder)?;
        seqs.iter()
            .copied()
            .find(|seq| self.queue.get(seq).is_some_and(|w| w.resource == resource))
    }

    /// How many waiting requests before `seq` conflict with `resource`.
    fn earlier_count(&self, resource: &str, seq: u64) -> usize {
        conflicting(&self.waiting, resource)
            .map(|(_, seqs)| seqs.range(..seq).count())
            .sum()
    }

    /// The holders a request for `resource` with sequence `seq` waits for: those of conflicting
    /// leases and of conflicting requests ahead of it.
    fn blockers<'a>(&'a self, resource: &str, seq: u64) -> BTreeSet<&'a str> {
        let holding = conflicting(&self.held, resource).map(|(_, l)| l.holder.as_str());
        let ahead = conflicting(&self.waiting, resource)
            .flat_map(|(_, seqs)| seqs.range(..seq))
            .filter_map(|s| Some(self.queue.get(s)?.holder.as_str()));
        holding.chain(ahead).collect()
    }

    fn expiry(&self, now: Timestamp) -> Timestamp {
        now.checked_add(self.lease_for).unwrap_or(Timestamp::MAX)
    }

    fn grant(&mut self, holder: &str, resource: &str, now: Timestamp) -> Lease {
        self.last_fence = self.last_fence.saturating_add(1);
        let lease = Lease {
            resource: resource.into(),
            holder: holder.into(),
            fence: self.last_fence,
            granted_at: now,
            expires_at: self.expiry(now),
        };
        self.insert_lease(lease.clone());
        lease
    }

    fn insert_lease(&mut self, lease: Lease) {
        self.held_by
            .entry(lease.holder.clone())
            .or_default()
            .insert(lease.resource.clone());
        self.expiries
            .insert((lease.expires_at, lease.resource.clone()));
        self.held.insert(lease.resource.clone(), lease);
    }

    fn remove_lease(&mut self, resource: &str) -> Option<Lease> {
        let lease = self.held.remove(resource)?;
        self.expiries
            .remove(&(lease.expires_at, lease.resource.clone()));
        if let Some(set) = self.held_by.get_mut(&lease.holder) {
            set.remove(resource);
            if set.is_empty() {
                self.held_by.remove(&lease.holder);
            }
        }
        Some(lease)
    }

    fn let_go(&mut self, resource: &str, events: &mut Vec<LockEvent>) {
        if let Some(lease) = self.remove_lease(resource) {
            let (holder, resource, fence) = (lease.holder, lease.resource, lease.fence);
            events.push(LockEvent::Released {
                holder,
                resource,
                fence,
            });
        }
    }

    fn enqueue(&mut self, seq: u64, holder: &str, resource: &str, now: Timestamp) {
        let wait = Wait {
            holder: holder.into(),
            resource: resource.into(),
            since: now,
        };
        self.waiting.entry(resource.into()).or_default().insert(seq);
        self.waits_of.entry(holder.into()).or_default().insert(seq);
        self.queue.insert(seq, wait);
    }

    fn dequeue(&mut self, seq: u64) -> Option<Wait> {
        let wait = self.queue.remove(&seq)?;
        for (index, key) in [
            (&mut self.waiting, &wait.resource),
            (&mut self.waits_of, &wait.holder),
        ] {
            if let Some(set) = index.get_mut(key) {
                set.remove(&seq);
                if set.is_empty() {
                    index.remove(key);
                }
            }
        }
        Some(wait)
    }

    fn deny(&mut self, seq: u64, reason: DenyReason, events: &mut Vec<LockEvent>) -> Option<Wait> {
        let wait = self.dequeue(seq)?;
        events.push(LockEvent::Denied {
            holder: wait.holder.clone(),
            resource: wait.resource.clone(),
            reason,
        });
        Some(wait)
    }

    /// Whether a request for `resource` with sequence `seq` must wait: a conflicting lease is
    /// held, or an earlier conflicting request waits.
    fn is_blocked(&self, resource: &str, seq: u64) -> bool {
        conflicting(&self.held, resource).next().is_some()
            || conflicting(&self.waiting, resource)
                .any(|(_, seqs)| seqs.first().is_some_and(|&s| s < seq))
    }

    /// Grants, in line order, the waiters that `freed` (released leases or removed waits) may
    /// have unblocked: only the first request for a name conflicting with a freed one can move.
    fn grant_waiters(&mut self, freed: &[String], now: Timestamp, events: &mut Vec<LockEvent>) {
        let candidates: BTreeSet<u64> = freed
            .iter()
            .flat_map(|name| conflicting(&self.waiting, name))
            .filter_map(|(_, seqs)| seqs.first().copied())
            .collect();
        for seq in candidates {
            let Some(wait) = self.queue.get(&seq) else {
                continue;
            };
            if !self.is_blocked(&wait.resource, seq)
                && let Some(wait) = self.dequeue(seq)
            {
                let lease = self.grant(&wait.holder, &wait.resource, now);
                events.push(LockEvent::Granted { lease });
            }
        }
    }

    /// The wait-for edges out of `holder`: (holder waited for, sequence of the waiting request).
    /// Reduced, with the same reachability: per conflicting name only the last request ahead
    /// (it waits for those before it), and lease holders only when no request for the very
    /// same name is ahead (that one waits for the same leases). So a long line stays linear.
    fn edges(&self, holder: &str) -> Vec<(&str, u64)> {
        let mut out = Vec::new();
        for &seq in self.waits_of.get(holder).into_iter().flatten() {
            let Some(wait) = self.queue.get(&seq) else {
                continue;
            };
            let mut same_name_ahead = false;
            for (name, seqs) in conflicting(&self.waiting, &wait.resource) {
                if let Some(ahead) = seqs
                    .range(..seq)
                    .next_back()
                    .and_then(|s| self.queue.get(s))
                {
                    same_name_ahead |= name == wait.resource;
                    out.push((ahead.holder.as_str(), seq));
                }
            }
            if !same_name_ahead {
                let holding = conflicting(&self.held, &wait.resource);
                out.extend(holding.map(|(_, lease)| (lease.holder.as_str(), seq)));
            }
        }
        out
    }

    /// Whether anyone waits for `holder` (on one of its leases, or behind one of its requests):
    /// without that no cycle can pass through it, and the search is skipped.
    fn is_waited_for(&self, holder: &str) -> bool {
        let leases = self.held_by.get(holder).into_iter().flatten();
        let on_lease = |r: &String| conflicting(&self.waiting, r).next().is_some();
        let mut waits = self.waits_of.get(holder).into_iter().flatten();
        let behind = |seq: &u64| {
            let Some(wait) = self.queue.get(seq) else {
                return false;
            };
            conflicting(&self.waiting, &wait.resource)
                .any(|(_, seqs)| seqs.last().is_some_and(|s| s > seq))
        };
        leases.into_iter().any(on_lease) || waits.any(behind)
    }

    /// A wait-for cycle through `start`, as (holder, the request by which it waits for the
    /// next) pairs starting at `start`; depth-first over what `start` transitively waits for,
    /// skipping holders that wait for nothing (no cycle passes through them).
    fn find_cycle(&self, start: &str) -> Option<Vec<(String, u64)>> {
        let mut seen = BTreeSet::from([start]);
        let mut stack = vec![(start, self.edges(start), 0usize)];
        while let Some((_, edges, next)) = stack.last_mut() {
            let Some(&(to, _)) = edges.get(*next) else {
                stack.pop();
                continue;
            };
            *next += 1;
            if to == start {
                let taken = |(h, edges, next): &(&str, Vec<(&str, u64)>, usize)| {
                    Some((h.to_string(), edges.get(next.checked_sub(1)?)?.1))
                };
                return Some(stack.iter().filter_map(taken).collect());
            }
            if self.waits_of.contains_key(to) && seen.insert(to) {
                stack.push((to, self.edges(to), 0));
            }
        }
        None
    }

    /// Denies the most recent request on `cycle` and grants whoever that unblocks.
    fn break_cycle(
        &mut self,
        cycle: &[(String, u64)],
        now: Timestamp,
        events: &mut Vec<LockEvent>,
    ) {
        let Some(at) = (0..cycle.len()).max_by_key(|&i| cycle[i].1) else {
            return;
        };
        let Some(victim) = self.queue.get(&cycle[at].1) else {
            return;
        };
        let resource = victim.resource.clone();
        let mut members: Vec<String> = cycle.iter().map(|(h, _)| h.clone()).collect();
        members.rotate_left(at);
        events.push(LockEvent::DeadlockBroken {
            cycle: members,
            victim: victim.holder.clone(),
            resource: resource.clone(),
        });
        self.deny(cycle[at].1, DenyReason::Deadlock, events);
        self.grant_waiters(&[resource], now, events);
    }
}

#[cfg(test)]
#[path = "locks_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "locks_props.rs"]
mod props;
