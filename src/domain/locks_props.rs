//! Model-based property tests of the lock manager: random interleavings of grants, releases
//! and renewals (time advancing) for a few holders and nested resources, checked after every
//! step against a naive reference model (a list scanned in full, names compared by path
//! components).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;

use super::{LockError, LockManager, conflicting, conflicts};
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

/// The reference: the held leases, every question answered by a full scan.
#[derive(Default)]
struct Model {
    fence: u64,
    leases: Vec<Lease>,
}

impl Model {
    fn acquire(&mut self, holder: &str, resource: &str, now: i64) -> Result<Lease, &'static str> {
        let own = |l: &&Lease| l.holder == holder;
        if self
            .leases
            .iter()
            .filter(own)
            .any(|l| l.resource == resource)
        {
            return Err("AlreadyHeld");
        }
        if self
            .leases
            .iter()
            .filter(own)
            .any(|l| overlap(&l.resource, resource))
        {
            return Err("OverlapsOwn");
        }
        if self.leases.iter().any(|l| overlap(&l.resource, resource)) {
            return Err("Taken");
        }
        self.fence += 1;
        let lease = Lease {
            resource: resource.into(),
            holder: holder.into(),
            fence: self.fence,
            granted_at: at(now),
            expires_at: at(now + LEASE_SECS),
        };
        self.leases.push(lease.clone());
        Ok(lease)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Acquire(usize, usize),
    ReleaseAll(usize),
    Renew(Index),
}

fn op() -> impl Strategy<Value = Op> {
    let (h, r) = (0..HOLDERS.len(), 0..RESOURCES.len());
    prop_oneof![
        6 => (h.clone(), r).prop_map(|(h, r)| Op::Acquire(h, r)),
        2 => h.prop_map(Op::ReleaseAll),
        3 => any::<Index>().prop_map(Op::Renew),
    ]
}

fn error_name(err: &LockError) -> &'static str {
    match err {
        LockError::AlreadyHeld { .. } => "AlreadyHeld",
        LockError::OverlapsOwn { .. } => "OverlapsOwn",
        LockError::Taken { .. } => "Taken",
        LockError::NotHeld { .. } => "NotHeld",
        LockError::Expired { .. } => "Expired",
        LockError::RestoreConflict { .. } => "RestoreConflict",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_interleavings_follow_the_model(steps in proptest::collection::vec((op(), 0i64..4), 1..60)) {
        let mut locks = LockManager::new(SignedDuration::from_secs(LEASE_SECS));
        let mut model = Model::default();
        let mut last_fence = 0;
        let mut now = 0;
        for (op, advance) in steps {
            now += advance;
            let time = at(now);
            match &op {
                Op::Acquire(h, r) => {
                    let (holder, resource) = (HOLDERS[*h], RESOURCES[*r]);
                    let expected = model.acquire(holder, resource, now);
                    let got = locks.acquire(holder, resource, time);
                    prop_assert_eq!(got.as_ref().map_err(error_name), expected.as_ref().map_err(|e| *e));
                    if let Ok(lease) = got {
                        prop_assert!(lease.fence > last_fence, "fences must increase: {:?}", lease);
                        last_fence = lease.fence;
                    }
                }
                Op::ReleaseAll(h) => {
                    let holder = HOLDERS[*h];
                    let mut expected: Vec<Lease> = model.leases.iter().filter(|l| l.holder == holder).cloned().collect();
                    expected.sort_by(|a, b| a.resource.cmp(&b.resource));
                    model.leases.retain(|l| l.holder != holder);
                    prop_assert_eq!(locks.release_all(holder), expected);
                }
                Op::Renew(i) => {
                    let held = locks.leases();
                    if held.is_empty() {
                        continue;
                    }
                    let lease = &held[i.index(held.len())];
                    let result = locks.renew(&lease.holder, &lease.resource, time);
                    let entry = model.leases.iter_mut().find(|l| l.resource == lease.resource).unwrap();
                    if entry.is_expired(time) {
                        prop_assert!(matches!(result, Err(LockError::Expired { .. })), "{:?}", result);
                    } else {
                        entry.expires_at = at(now + LEASE_SECS);
                        prop_assert_eq!(result.as_ref(), Ok(&*entry));
                    }
                }
            }
            let mut expected = model.leases.clone();
            expected.sort_by(|a, b| a.resource.cmp(&b.resource));
            let leases = locks.leases();
            prop_assert_eq!(&leases, &expected);
            for (i, a) in leases.iter().enumerate() {
                for b in &leases[i + 1..] {
                    prop_assert!(!overlap(&a.resource, &b.resource), "{:?} and {:?} held at once", a, b);
                }
            }
        }
        // A restart keeps the leases, and its fences go on above them.
        let leases = locks.leases();
        let mut restored = LockManager::restore(leases.clone(), SignedDuration::from_secs(LEASE_SECS)).unwrap();
        prop_assert_eq!(restored.leases(), leases.clone());
        let top = leases.iter().map(|l| l.fence).max().unwrap_or(0);
        if let Some(free) = RESOURCES.iter().find(|r| !leases.iter().any(|l| overlap(&l.resource, r))) {
            prop_assert_eq!(restored.acquire("new", free, at(now)).unwrap().fence, top + 1);
        }
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
