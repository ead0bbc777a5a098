//! Model-based property tests of the lock manager: random interleavings of requests, releases,
//! cancels, renewals and expiries (time advancing) for a few holders and nested resources,
//! checked after every step against a naive reference model (lists scanned in full, names
//! compared by path components) and against invariants read from the events alone.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;

use super::{DenyReason, LockError, LockEvent, LockManager, Outcome, conflicting, conflicts};
use crate::domain::lease::Lease;

const HOLDERS: [&str; 4] = ["h0", "h1", "h2", "h3"];
const RESOURCES: [&str; 9] = [
    "path:/r/",
    "path:/r/src/",
    "path:/r/src/api/",
    "path:/r/src/api/users.rs",
    "path:/r/src/apiary",
    "path:/r/docs",
    "path:/q/src/",
    "repo:/r",
    "merge:/r",
];
const LEASE_SECS: i64 = 10;

/// The model's conflict rule, by path components: one list is a prefix of the other (a
/// trailing `/` names the same directory). Other namespaces: equality.
fn overlap(a: &str, b: &str) -> bool {
    fn parts(name: &str) -> Option<Vec<&str>> {
        let mut parts: Vec<&str> = name.strip_prefix("path:")?.split('/').collect();
        if parts.len() > 1 && parts.last() == Some(&"") {
            parts.pop();
        }
        Some(parts)
    }
    match (parts(a), parts(b)) {
        (Some(a), Some(b)) => a.iter().zip(&b).all(|(x, y)| x == y),
        _ => a == b,
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

/// The reference: held leases and the line of waits, every question answered by a full scan.
#[derive(Default)]
struct Model {
    fence: u64,
    leases: Vec<Lease>,
    line: Vec<(String, String)>,
}

impl Model {
    fn grant(&mut self, holder: &str, resource: &str, now: i64) {
        self.fence += 1;
        self.leases.push(Lease {
            resource: resource.into(),
            holder: holder.into(),
            fence: self.fence,
            granted_at: at(now),
            expires_at: at(now + LEASE_SECS),
        });
    }

    fn blocked(&self, i: usize) -> bool {
        let resource = &self.line[i].1;
        self.leases.iter().any(|l| overlap(&l.resource, resource))
            || self.line[..i].iter().any(|(_, r)| overlap(r, resource))
    }

    /// Grants the first waiter nothing blocks, until none is left.
    fn pump(&mut self, now: i64) {
        while let Some(i) = (0..self.line.len()).find(|&i| !self.blocked(i)) {
            let (holder, resource) = self.line.remove(i);
            self.grant(&holder, &resource, now);
        }
    }

    /// Holders who wait for each holder: (waiter, blocker) pairs.
    fn wait_for(&self) -> BTreeSet<(String, String)> {
        let mut edges = BTreeSet::new();
        for (i, (holder, resource)) in self.line.iter().enumerate() {
            for lease in self
                .leases
                .iter()
                .filter(|l| overlap(&l.resource, resource))
            {
                edges.insert((holder.clone(), lease.holder.clone()));
            }
            for (ahead, _) in self.line[..i].iter().filter(|(_, r)| overlap(r, resource)) {
                edges.insert((holder.clone(), ahead.clone()));
            }
        }
        edges
    }

    fn request(
        &mut self,
        holder: &str,
        resource: &str,
        now: i64,
    ) -> Result<&'static str, &'static str> {
        if self
            .leases
            .iter()
            .any(|l| l.holder == holder && l.resource == resource)
        {
            return Err("AlreadyHeld");
        }
        if self.line.iter().any(|(h, r)| h == holder && r == resource) {
            return Err("AlreadyWaiting");
        }
        let own_leases = self
            .leases
            .iter()
            .filter(|l| l.holder == holder)
            .map(|l| &l.resource);
        let own_waits = self
            .line
            .iter()
            .filter(|(h, _)| h == holder)
            .map(|(_, r)| r);
        if own_leases.chain(own_waits).any(|r| overlap(r, resource)) {
            return Err("OverlapsOwn");
        }
        self.line.push((holder.into(), resource.into()));
        if !self.blocked(self.line.len() - 1) {
            self.line.pop();
            self.grant(holder, resource, now);
            return Ok("granted");
        }
        if has_cycle(&self.wait_for()) {
            self.line.pop();
            return Ok("denied");
        }
        Ok("queued")
    }
}

/// Whether the wait-for edges close a cycle (transitive closure over a handful of holders).
fn has_cycle(edges: &BTreeSet<(String, String)>) -> bool {
    let mut reach = edges.clone();
    loop {
        let more: Vec<(String, String)> = reach
            .iter()
            .flat_map(|(a, b)| {
                reach
                    .iter()
                    .filter(move |(c, _)| c == b)
                    .map(move |(_, d)| (a.clone(), d.clone()))
            })
            .filter(|pair| !reach.contains(pair))
            .collect();
        if more.is_empty() {
            return reach.iter().any(|(a, b)| a == b);
        }
        reach.extend(more);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Request(usize, usize),
    Release(usize, usize),
    ReleaseHeld(Index),
    ReleaseAll(usize),
    Cancel(usize, usize),
    CancelWaiting(Index),
    Renew(Index),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    let (h, r) = (0..HOLDERS.len(), 0..RESOURCES.len());
    prop_oneof![
        6 => (h.clone(), r.clone()).prop_map(|(h, r)| Op::Request(h, r)),
        1 => (h.clone(), r.clone()).prop_map(|(h, r)| Op::Release(h, r)),
        3 => any::<Index>().prop_map(Op::ReleaseHeld),
        1 => h.clone().prop_map(Op::ReleaseAll),
        1 => (h, r).prop_map(|(h, r)| Op::Cancel(h, r)),
        1 => any::<Index>().prop_map(Op::CancelWaiting),
        2 => any::<Index>().prop_map(Op::Renew),
        2 => Just(Op::Expire),
    ]
}

fn error_name(err: &LockError) -> &'static str {
    match err {
        LockError::AlreadyHeld { .. } => "AlreadyHeld",
        LockError::AlreadyWaiting { .. } => "AlreadyWaiting",
        LockError::OverlapsOwn { .. } => "OverlapsOwn",
        LockError::NotHeld { .. } => "NotHeld",
        LockError::NotWaiting { .. } => "NotWaiting",
        LockError::Expired { .. } => "Expired",
        LockError::RestoreConflict { .. } => "RestoreConflict",
    }
}

/// What the events alone say: leases by resource, open waits with their queue order.
#[derive(Default)]
struct Ledger {
    leases: BTreeMap<String, Lease>,
    waits: BTreeMap<(String, String), u64>,
    queued: u64,
    last_fence: u64,
}

impl Ledger {
    /// Applies one step's events. `may_release`: the holder allowed to release in this step;
    /// `now`: expiry is only allowed for leases due at `now`, and only when `expiring`.
    fn apply(
        &mut self,
        events: &[LockEvent],
        may_release: Option<&str>,
        expiring: bool,
        now: Timestamp,
    ) -> Result<(), TestCaseError> {
        for event in events {
            match event {
                LockEvent::Granted { lease } => {
                    prop_assert!(
                        lease.fence > self.last_fence,
                        "fences must increase: {:?}",
                        lease
                    );
                    self.last_fence = lease.fence;
                    prop_assert!(
                        !self
                            .leases
                            .values()
                            .any(|l| overlap(&l.resource, &lease.resource)),
                        "double grant: {:?}",
                        lease
                    );
                    if let Some(order) = self
                        .waits
                        .remove(&(lease.holder.clone(), lease.resource.clone()))
                    {
                        let jumped = self
                            .waits
                            .iter()
                            .find(|((_, r), o)| **o < order && overlap(r, &lease.resource));
                        prop_assert!(
                            jumped.is_none(),
                            "{:?} granted ahead of earlier {:?}",
                            lease,
                            jumped
                        );
                    }
                    self.leases.insert(lease.resource.clone(), lease.clone());
                }
                LockEvent::Queued {
                    holder, resource, ..
                } => {
                    self.queued += 1;
                    prop_assert!(
                        self.waits
                            .insert((holder.clone(), resource.clone()), self.queued)
                            .is_none()
                    );
                }
                LockEvent::Released {
                    holder,
                    resource,
                    fence,
                } => {
                    let lease = self.leases.remove(resource);
                    prop_assert!(
                        lease
                            .as_ref()
                            .is_some_and(|l| &l.holder == holder && l.fence == *fence),
                        "released {:?}",
                        lease
                    );
                    prop_assert_eq!(
                        may_release,
                        Some(holder.as_str()),
                        "only the holder releases"
                    );
                }
                LockEvent::Expired { lease } => {
                    prop_assert!(
                        expiring && lease.is_expired(now),
                        "expired early: {:?}",
                        lease
                    );
                    let removed = self.leases.remove(&lease.resource);
                    prop_assert_eq!(removed.as_ref(), Some(lease));
                }
                LockEvent::DeadlockBroken { cycle, victim, .. } => {
                    prop_assert!(
                        cycle.len() >= 2 && cycle.first() == Some(victim),
                        "{:?}",
                        cycle
                    );
                }
                LockEvent::Denied {
                    holder, resource, ..
                } => {
                    prop_assert!(
                        self.waits
                            .remove(&(holder.clone(), resource.clone()))
                            .is_some(),
                        "denied a request that was not waiting"
                    );
                }
            }
        }
        Ok(())
    }
}

/// Everything checked after each step: the manager against the model and the ledger.
fn check(locks: &LockManager, model: &Model, ledger: &Ledger) -> Result<(), TestCaseError> {
    let mut expected = model.leases.clone();
    expected.sort_by(|a, b| a.resource.cmp(&b.resource));
    prop_assert_eq!(&locks.leases(), &expected);
    prop_assert_eq!(
        locks.leases(),
        ledger.leases.values().cloned().collect::<Vec<_>>(),
        "a lease appeared or vanished without an event"
    );
    let leases = locks.leases();
    for (i, a) in leases.iter().enumerate() {
        for b in &leases[i + 1..] {
            prop_assert!(
                !overlap(&a.resource, &b.resource),
                "{:?} and {:?} held at once",
                a,
                b
            );
        }
    }
    let waiters = locks.waiters();
    let line: Vec<(String, String)> = waiters
        .iter()
        .map(|w| (w.holder.clone(), w.resource.clone()))
        .collect();
    prop_assert_eq!(&line, &model.line);
    let mut by_order: Vec<_> = ledger.waits.iter().collect();
    by_order.sort_by_key(|(_, order)| **order);
    prop_assert_eq!(
        by_order
            .into_iter()
            .map(|(w, _)| w.clone())
            .collect::<Vec<_>>(),
        line,
        "a wait ended silently"
    );
    for (i, waiter) in waiters.iter().enumerate() {
        prop_assert!(model.blocked(i), "{:?} could be granted but waits", waiter);
        let ahead = model.line[..i]
            .iter()
            .filter(|(_, r)| overlap(r, &waiter.resource));
        prop_assert_eq!(waiter.position, 1 + ahead.clone().count());
        let holding = leases
            .iter()
            .filter(|l| overlap(&l.resource, &waiter.resource))
            .map(|l| l.holder.clone());
        let blockers: BTreeSet<String> = holding.chain(ahead.map(|(h, _)| h.clone())).collect();
        prop_assert_eq!(
            &waiter.blocked_by,
            &blockers.into_iter().collect::<Vec<_>>()
        );
    }
    prop_assert!(!has_cycle(&model.wait_for()), "a deadlock survived");
    prop_assert_eq!(locks.last_fence(), model.fence);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_interleavings_follow_the_model(steps in proptest::collection::vec((op(), 0i64..4), 1..60)) {
        let mut locks = LockManager::new(SignedDuration::from_secs(LEASE_SECS));
        let mut model = Model::default();
        let mut ledger = Ledger::default();
        let mut now = 0;
        for (op, advance) in steps {
            now += advance;
            let time = at(now);
            let held = locks.leases();
            let line = model.line.clone();
            let pick_lease = |i: &Index| (!held.is_empty()).then(|| held[i.index(held.len())].clone());
            let pick_wait = |i: &Index| (!line.is_empty()).then(|| line[i.index(line.len())].clone());
            let (events, releaser, expiring) = match &op {
                Op::Request(h, r) => {
                    let (holder, resource) = (HOLDERS[*h], RESOURCES[*r]);
                    let expected = model.request(holder, resource, now);
                    match locks.request(holder, resource, time) {
                        Ok(requested) => {
                            let kind = match &requested.outcome {
                                Outcome::Granted(_) => "granted",
                                Outcome::Queued { .. } => "queued",
                                Outcome::Denied(reason) => {
                                    prop_assert_eq!(*reason, DenyReason::Deadlock);
                                    let broke = requested.events.iter().any(|e| matches!(e, LockEvent::DeadlockBroken { .. }));
                                    prop_assert!(broke, "denied without a cycle");
                                    "denied"
                                }
                            };
                            prop_assert_eq!(Ok(kind), expected, "{:?}", requested);
                            (requested.events, None, false)
                        }
                        Err(err) => {
                            prop_assert_eq!(Err(error_name(&err)), expected);
                            (Vec::new(), None, false)
                        }
                    }
                }
                Op::Release(_, _) | Op::ReleaseHeld(_) => {
                    let (holder, resource) = match &op {
                        Op::Release(h, r) => (HOLDERS[*h].to_string(), RESOURCES[*r].to_string()),
                        Op::ReleaseHeld(i) => match pick_lease(i) {
                            Some(lease) => (lease.holder, lease.resource),
                            None => continue,
                        },
                        _ => unreachable!(),
                    };
                    let position = model.leases.iter().position(|l| l.holder == holder && l.resource == resource);
                    let result = locks.release(&holder, &resource, time);
                    prop_assert_eq!(result.is_ok(), position.is_some(), "{:?}", result);
                    if let Some(i) = position {
                        model.leases.remove(i);
                        model.pump(now);
                    }
                    (result.unwrap_or_default(), Some(holder), false)
                }
                Op::ReleaseAll(h) => {
                    let holder = HOLDERS[*h];
                    model.leases.retain(|l| l.holder != holder);
                    model.line.retain(|(w, _)| w != holder);
                    model.pump(now);
                    (locks.release_all(holder, time), Some(holder.to_string()), false)
                }
                Op::Cancel(_, _) | Op::CancelWaiting(_) => {
                    let (holder, resource) = match &op {
                        Op::Cancel(h, r) => (HOLDERS[*h].to_string(), RESOURCES[*r].to_string()),
                        Op::CancelWaiting(i) => match pick_wait(i) {
                            Some(wait) => wait,
                            None => continue,
                        },
                        _ => unreachable!(),
                    };
                    let position = model.line.iter().position(|(h, r)| *h == holder && *r == resource);
                    let result = locks.cancel(&holder, &resource, time);
                    prop_assert_eq!(result.is_ok(), position.is_some(), "{:?}", result);
                    if let Some(i) = position {
                        model.line.remove(i);
                        model.pump(now);
                    }
                    (result.unwrap_or_default(), None, false)
                }
                Op::Renew(i) => {
                    let Some(lease) = pick_lease(i) else { continue };
                    let result = locks.renew(&lease.holder, &lease.resource, time);
                    let entry = model.leases.iter_mut().find(|l| l.resource == lease.resource).unwrap();
                    if entry.is_expired(time) {
                        prop_assert!(matches!(result, Err(LockError::Expired { .. })), "{:?}", result);
                    } else {
                        entry.expires_at = at(now + LEASE_SECS);
                        prop_assert_eq!(result.as_ref(), Ok(&*entry));
                        ledger.leases.insert(lease.resource.clone(), entry.clone());
                    }
                    (Vec::new(), None, false)
                }
                Op::Expire => {
                    model.leases.retain(|l| !l.is_expired(time));
                    model.pump(now);
                    (locks.expire(time), None, true)
                }
            };
            ledger.apply(&events, releaser.as_deref(), expiring, time)?;
            check(&locks, &model, &ledger)?;
            prop_assert!(locks.detect_deadlocks(time).is_empty(), "the full sweep found a cycle the request check missed");
        }
        // Liveness: once every lease is let go, every waiter has been granted.
        while let Some(lease) = locks.leases().first().cloned() {
            let events = locks.release(&lease.holder, &lease.resource, at(now)).unwrap();
            ledger.apply(&events, Some(&lease.holder), false, at(now))?;
        }
        prop_assert!(locks.waiters().is_empty() && ledger.waits.is_empty(), "waiters left: {:?}", locks.waiters());
    }

    #[test]
    fn the_index_finds_exactly_the_conflicting_names(
        names in proptest::collection::btree_set("(path:|repo:)[ab/]{0,6}", 0..40),
        probe in "(path:|repo:)[ab/]{0,6}",
    ) {
        let map: BTreeMap<String, ()> = names.iter().map(|n| (n.clone(), ())).collect();
        let mut found: Vec<&str> = conflicting(&map, &probe).map(|(k, _)| k).collect();
        found.sort();
        let expected: Vec<&str> = names.iter().map(String::as_str).filter(|n| overlap(n, &probe)).collect();
        prop_assert_eq!(found, expected);
        for name in &names {
            prop_assert_eq!(conflicts(name, &probe), overlap(name, &probe), "{} vs {}", name, probe);
        }
    }
}

#[test]
fn the_model_rule_agrees_on_the_documented_examples() {
    assert!(overlap("path:/r/src/api/", "path:/r/src/api/users.rs"));
    assert!(!overlap("path:/r/src/api/", "path:/r/src/apiary"));
    assert!(overlap("path:/r/src/api", "path:/r/src/api/"));
}
