//! Tests of the lock manager: one example per rule (the model-based properties are in
//! `locks_props.rs`).

use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn manager() -> LockManager {
    LockManager::new(SignedDuration::from_secs(10))
}

fn granted(requested: Requested) -> Lease {
    match requested.outcome {
        Outcome::Granted(lease) => lease,
        other => panic!("not granted: {other:?}"),
    }
}

fn grants(events: &[LockEvent]) -> Vec<(&str, &str)> {
    events
        .iter()
        .filter_map(LockEvent::granted)
        .map(|l| (l.holder.as_str(), l.resource.as_str()))
        .collect()
}

const API: &str = "path:/r/src/api/";
const USERS: &str = "path:/r/src/api/users.rs";

#[test]
fn names_conflict_when_equal_or_nested_at_a_slash() {
    assert!(conflicts(API, USERS) && conflicts(USERS, API));
    assert!(conflicts("path:/r/src/api", USERS));
    assert!(conflicts("path:/r/src/api", API));
    assert!(conflicts("repo:/r", "repo:/r"));
    assert!(!conflicts(API, "path:/r/src/apiary"));
    assert!(!conflicts("path:/r/src/api", "path:/r/src/apiary"));
    assert!(!conflicts("repo:/r", "repo:/r/sub"), "only paths nest");
    assert!(
        !conflicts("repo:/r", "path:/r/"),
        "namespaces never conflict"
    );
    assert!(!conflicts("merge:/r", "repo:/r"));
    assert_eq!(path("/r/", "./src/api/"), API);
    assert_eq!(
        (repo("/r/"), merge("/r")),
        ("repo:/r".into(), "merge:/r".into())
    );
}

#[test]
fn a_free_resource_is_granted_and_a_conflicting_one_waits() {
    let mut locks = manager();
    let lease = granted(locks.request("a", API, t(0)).unwrap());
    assert_eq!(
        (lease.fence, lease.granted_at, lease.expires_at),
        (1, t(0), t(10))
    );
    let queued = locks.request("b", USERS, t(1)).unwrap();
    assert_eq!(queued.outcome, Outcome::Queued { position: 1 });
    assert_eq!(
        queued.events,
        [LockEvent::Queued {
            holder: "b".into(),
            resource: USERS.into(),
            position: 1,
            blocked_by: vec!["a".into()],
        }]
    );
    granted(locks.request("c", "path:/r/src/apiary", t(1)).unwrap());
    let events = locks.release("a", API, t(2)).unwrap();
    assert_eq!(grants(&events), [("b", USERS)]);
    assert_eq!(locks.lease(USERS).unwrap().fence, 3);
}

#[test]
fn no_barging_past_an_earlier_conflicting_waiter() {
    let mut locks = manager();
    granted(locks.request("a", API, t(0)).unwrap());
    // b waits for the whole tree; c's file is free, but it conflicts with b's earlier request.
    locks.request("b", "path:/r/", t(1)).unwrap();
    let c = locks.request("c", "path:/r/README.md", t(2)).unwrap();
    assert_eq!(c.outcome, Outcome::Queued { position: 2 });
    let waiters = locks.waiters();
    assert_eq!(waiters[1].blocked_by, ["b"]);
    // Releasing a hands the tree to b; c still waits, now for b's lease.
    let events = locks.release("a", API, t(3)).unwrap();
    assert_eq!(grants(&events), [("b", "path:/r/")]);
    assert_eq!(locks.waiters()[0].position, 1);
    let events = locks.release("b", "path:/r/", t(4)).unwrap();
    assert_eq!(grants(&events), [("c", "path:/r/README.md")]);
}

#[test]
fn cancelling_a_wait_lets_those_behind_it_through() {
    let mut locks = manager();
    granted(locks.request("a", API, t(0)).unwrap());
    locks.request("b", "path:/r/", t(1)).unwrap();
    locks.request("c", "path:/r/docs/", t(2)).unwrap();
    let events = locks.cancel("b", "path:/r/", t(3)).unwrap();
    assert_eq!(
        events[0],
        LockEvent::Denied {
            holder: "b".into(),
            resource: "path:/r/".into(),
            reason: DenyReason::Cancelled
        }
    );
    assert_eq!(grants(&events), [("c", "path:/r/docs/")]);
    assert!(matches!(
        locks.cancel("b", "path:/r/", t(3)),
        Err(LockError::NotWaiting { .. })
    ));
}

#[test]
fn asking_for_what_you_hold_or_wait_for_is_an_error() {
    let mut locks = manager();
    granted(locks.request("a", API, t(0)).unwrap());
    granted(locks.request("b", "repo:/r", t(0)).unwrap());
    let err = locks.request("a", API, t(1)).unwrap_err();
    assert!(matches!(err, LockError::AlreadyHeld { .. }));
    let err = locks.request("a", USERS, t(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a asked for path:/r/src/api/users.rs, which overlaps path:/r/src/api/ that it already holds"
    );
    locks.request("a", "repo:/r", t(1)).unwrap();
    let err = locks.request("a", "repo:/r", t(1)).unwrap_err();
    assert!(matches!(err, LockError::AlreadyWaiting { .. }));
    // Many non-overlapping resources are fine.
    granted(locks.request("a", "merge:/r", t(1)).unwrap());
    granted(locks.request("a", "path:/r/docs/", t(1)).unwrap());
    assert_eq!(locks.holders().filter(|l| l.holder == "a").count(), 3);
}

#[test]
fn only_the_holder_may_release_or_renew() {
    let mut locks = manager();
    granted(locks.request("a", API, t(0)).unwrap());
    assert!(matches!(
        locks.release("b", API, t(1)),
        Err(LockError::NotHeld { .. })
    ));
    assert!(matches!(
        locks.renew("b", API, t(1)),
        Err(LockError::NotHeld { .. })
    ));
    assert_eq!(locks.leases().len(), 1);
}

#[test]
fn leases_expire_unless_renewed_and_keep_their_fence() {
    let mut locks = manager();
    let first = granted(locks.request("a", API, t(0)).unwrap());
    locks.request("b", API, t(1)).unwrap();
    let renewed = locks.renew("a", API, t(8)).unwrap();
    assert_eq!((renewed.fence, renewed.expires_at), (first.fence, t(18)));
    assert!(locks.expire(t(17)).is_empty());
    // Past expiry it still blocks until reaped, but can no longer be renewed.
    let err = locks.renew("a", API, t(18)).unwrap_err();
    assert!(matches!(err, LockError::Expired { expires_at, .. } if expires_at == t(18)));
    let events = locks.expire(t(18));
    assert_eq!(events[0], LockEvent::Expired { lease: renewed });
    let next = events[1].granted().unwrap();
    assert_eq!((next.holder.as_str(), next.fence), ("b", 2));
    assert!(matches!(
        locks.renew("a", API, t(18)),
        Err(LockError::NotHeld { .. })
    ));
}

#[test]
fn fences_increase_with_every_grant_across_resources() {
    let mut locks = manager();
    let mut fences = Vec::new();
    for (i, resource) in ["repo:/a", "merge:/a", API, "repo:/a", API]
        .iter()
        .enumerate()
    {
        let holder = format!("h{i}");
        if let Some(lease) = locks.lease(resource).cloned() {
            locks.release(&lease.holder, resource, t(1)).unwrap();
        }
        fences.push(granted(locks.request(&holder, resource, t(1)).unwrap()).fence);
    }
    assert_eq!(fences, [1, 2, 3, 4, 5]);
    assert_eq!(locks.last_fence(), 5);
}

#[test]
fn restore_keeps_leases_and_fences_above_the_floor() {
    let mut locks = manager();
    granted(locks.request("a", API, t(0)).unwrap());
    granted(locks.request("b", "repo:/r", t(0)).unwrap());
    locks.release("b", "repo:/r", t(1)).unwrap();
    let stored = locks.leases();
    let mut restored =
        LockManager::restore(stored.clone(), locks.lease_for(), locks.last_fence()).unwrap();
    assert_eq!(restored.leases(), stored);
    assert_eq!(
        restored.request("c", USERS, t(2)).unwrap().outcome,
        Outcome::Queued { position: 1 }
    );
    assert_eq!(
        granted(restored.request("c", "repo:/r", t(2)).unwrap()).fence,
        3
    );
    // A floor below the stored fences is raised to them.
    let restored = LockManager::restore(stored.clone(), locks.lease_for(), 0).unwrap();
    assert_eq!(restored.last_fence(), 1);
    // Stored leases that overlap are refused, naming both.
    let mut clash = stored[0].clone();
    clash.resource = USERS.into();
    clash.fence = 9;
    let err =
        LockManager::restore(vec![stored[0].clone(), clash], locks.lease_for(), 2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stored leases conflict: path:/r/src/api/users.rs (fence 9) overlaps path:/r/src/api/ (fence 1)"
    );
}

#[test]
fn a_request_that_closes_a_cycle_is_denied() {
    let mut locks = manager();
    granted(locks.request("a", "repo:/x", t(0)).unwrap());
    granted(locks.request("b", "repo:/y", t(0)).unwrap());
    locks.request("a", "repo:/y", t(1)).unwrap();
    let closing = locks.request("b", "repo:/x", t(2)).unwrap();
    assert_eq!(closing.outcome, Outcome::Denied(DenyReason::Deadlock));
    assert_eq!(
        closing.events[1..],
        [
            LockEvent::DeadlockBroken {
                cycle: vec!["b".into(), "a".into()],
                victim: "b".into(),
                resource: "repo:/x".into()
            },
            LockEvent::Denied {
                holder: "b".into(),
                resource: "repo:/x".into(),
                reason: DenyReason::Deadlock
            }
        ]
    );
    assert_eq!(locks.waiters().len(), 1);
    assert!(locks.detect_deadlocks(t(3)).is_empty());
}

#[test]
fn waiting_in_line_counts_toward_a_cycle() {
    let mut locks = manager();
    granted(locks.request("a", "path:/r/x", t(0)).unwrap());
    locks.request("b", "path:/r/", t(1)).unwrap(); // b waits for a
    granted(locks.request("c", "repo:/r", t(1)).unwrap());
    locks.request("c", "path:/r/y", t(2)).unwrap(); // free, but behind b in line: c waits for b
    let closing = locks.request("a", "repo:/r", t(3)).unwrap(); // a waits for c: a -> c -> b -> a
    assert_eq!(closing.outcome, Outcome::Denied(DenyReason::Deadlock));
    assert!(
        matches!(&closing.events[1], LockEvent::DeadlockBroken { cycle, .. } if cycle == &["a", "c", "b"])
    );
}

#[test]
fn a_cycle_through_a_sibling_lease_is_found_behind_another_waiter() {
    // b's request for the tree waits for a's lease and (in line) for d, who waits on a
    // different child; a waits for b. The search must not drop a's lease behind d's request.
    let mut locks = manager();
    granted(locks.request("a", "path:/r/a", t(0)).unwrap());
    granted(locks.request("b", "repo:/q", t(0)).unwrap());
    granted(locks.request("c", "path:/r/c", t(0)).unwrap());
    locks.request("d", "path:/r/c", t(1)).unwrap();
    locks.request("a", "repo:/q", t(1)).unwrap();
    let closing = locks.request("b", "path:/r/", t(2)).unwrap();
    assert_eq!(closing.outcome, Outcome::Denied(DenyReason::Deadlock));
    assert!(
        matches!(&closing.events[1], LockEvent::DeadlockBroken { cycle, .. } if cycle == &["b", "a"])
    );
}

#[test]
fn releasing_all_denies_the_holders_waits_and_frees_its_leases() {
    let mut locks = manager();
    granted(locks.request("a", API, t(0)).unwrap());
    granted(locks.request("b", "repo:/r", t(0)).unwrap());
    locks.request("a", "repo:/r", t(1)).unwrap();
    locks.request("c", USERS, t(1)).unwrap();
    let events = locks.release_all("a", t(2));
    assert_eq!(
        events,
        [
            LockEvent::Released {
                holder: "a".into(),
                resource: API.into(),
                fence: 1
            },
            LockEvent::Denied {
                holder: "a".into(),
                resource: "repo:/r".into(),
                reason: DenyReason::HolderReleasedAll
            },
            LockEvent::Granted {
                lease: locks.lease(USERS).unwrap().clone()
            },
        ]
    );
    assert!(locks.release_all("nobody", t(2)).is_empty());
}

#[test]
fn events_serialize_for_the_log() {
    let event = LockEvent::Denied {
        holder: "s1".into(),
        resource: "merge:/r".into(),
        reason: DenyReason::HolderReleasedAll,
    };
    let json = serde_json::to_string(&event).unwrap();
    assert_eq!(
        json,
        r#"{"event":"denied","holder":"s1","resource":"merge:/r","reason":"holder_released_all"}"#
    );
    assert_eq!(serde_json::from_str::<LockEvent>(&json).unwrap(), event);
}

#[test]
fn thousands_of_locks_stay_cheap() {
    let mut locks = manager();
    for i in 0..5000 {
        granted(
            locks
                .request(
                    &format!("s{i}"),
                    &format!("path:/r/src/m{}/f{i}.rs", i % 50),
                    t(0),
                )
                .unwrap(),
        );
    }
    for i in 0..5000 {
        locks
            .request(&format!("w{i}"), &format!("path:/r/src/m{}/", i % 50), t(1))
            .unwrap();
    }
    for i in 0..5000 {
        locks.release_all(&format!("s{i}"), t(2));
    }
    assert_eq!(locks.holders().count(), 50);
    assert_eq!(locks.waiters().len(), 4950);
    assert_eq!(
        locks.expire(t(100)).len(),
        100,
        "50 expired, 50 waiters granted"
    );
}
