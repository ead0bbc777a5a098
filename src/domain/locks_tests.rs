//! Tests of the lock manager: one example per rule (the model-based properties are in
//! `locks_props.rs`).

use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn manager() -> LockManager {
    LockManager::new(SignedDuration::from_secs(10))
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
}

#[test]
fn a_free_resource_is_granted_and_a_conflicting_one_refused() {
    let mut locks = manager();
    let lease = locks.acquire("a", API, t(0)).unwrap();
    assert_eq!(
        (lease.fence, lease.granted_at, lease.expires_at),
        (1, t(0), t(10))
    );
    let err = locks.acquire("b", USERS, t(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "b asked for path:/r/src/api/users.rs, which overlaps path:/r/src/api/ held by a"
    );
    locks.acquire("c", "path:/r/src/apiary", t(1)).unwrap();
    locks.release_all("a");
    let lease = locks.acquire("b", USERS, t(2)).unwrap();
    assert_eq!(lease.fence, 3, "a refusal takes no fence");
}

#[test]
fn asking_for_what_you_hold_is_an_error() {
    let mut locks = manager();
    locks.acquire("a", API, t(0)).unwrap();
    locks.acquire("b", "repo:/r", t(0)).unwrap();
    let err = locks.acquire("a", API, t(1)).unwrap_err();
    assert!(matches!(err, LockError::AlreadyHeld { .. }));
    let err = locks.acquire("a", USERS, t(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a asked for path:/r/src/api/users.rs, which overlaps path:/r/src/api/ that it already holds"
    );
    // Many non-overlapping resources are fine.
    locks.acquire("a", "merge:/r", t(1)).unwrap();
    locks.acquire("a", "path:/r/docs/", t(1)).unwrap();
    assert_eq!(locks.leases().iter().filter(|l| l.holder == "a").count(), 3);
}

#[test]
fn only_the_holder_may_renew() {
    let mut locks = manager();
    locks.acquire("a", API, t(0)).unwrap();
    assert!(matches!(
        locks.renew("b", API, t(1)),
        Err(LockError::NotHeld { .. })
    ));
    assert!(matches!(
        locks.renew("a", USERS, t(1)),
        Err(LockError::NotHeld { .. })
    ));
}

#[test]
fn a_renewal_keeps_the_fence_and_an_expired_lease_cannot_be_renewed() {
    let mut locks = manager();
    let first = locks.acquire("a", API, t(0)).unwrap();
    let renewed = locks.renew("a", API, t(8)).unwrap();
    assert_eq!((renewed.fence, renewed.expires_at), (first.fence, t(18)));
    assert_eq!(locks.leases(), std::slice::from_ref(&renewed));
    let err = locks.renew("a", API, t(18)).unwrap_err();
    assert!(matches!(err, LockError::Expired { expires_at, .. } if expires_at == t(18)));
    // Expired, it still blocks others until its holder lets go.
    assert!(matches!(
        locks.acquire("b", API, t(19)),
        Err(LockError::Taken { .. })
    ));
    assert_eq!(locks.release_all("a"), [renewed]);
    assert_eq!(locks.acquire("b", API, t(19)).unwrap().fence, 2);
}

#[test]
fn fences_increase_with_every_grant_across_resources() {
    let mut locks = manager();
    let mut fences = Vec::new();
    for (i, resource) in ["repo:/a", "merge:/a", API, "repo:/a", API]
        .iter()
        .enumerate()
    {
        if let Some(lease) = locks.leases().into_iter().find(|l| l.resource == *resource) {
            locks.release_all(&lease.holder);
        }
        let holder = format!("h{i}");
        fences.push(locks.acquire(&holder, resource, t(1)).unwrap().fence);
    }
    assert_eq!(fences, [1, 2, 3, 4, 5]);
}

#[test]
fn releasing_all_frees_every_lease_of_the_holder_and_no_other() {
    let mut locks = manager();
    locks.acquire("a", API, t(0)).unwrap();
    locks.acquire("a", "repo:/r", t(0)).unwrap();
    locks.acquire("b", "merge:/r", t(0)).unwrap();
    let released: Vec<String> = locks
        .release_all("a")
        .into_iter()
        .map(|l| l.resource)
        .collect();
    assert_eq!(released, [API, "repo:/r"]);
    assert_eq!(locks.leases().len(), 1);
    assert!(locks.release_all("a").is_empty());
    assert!(locks.release_all("nobody").is_empty());
    locks.acquire("c", USERS, t(1)).unwrap();
}

#[test]
fn restore_keeps_leases_and_fences_above_them() {
    let mut locks = manager();
    locks.acquire("a", API, t(0)).unwrap();
    locks.acquire("b", "repo:/r", t(0)).unwrap();
    locks.release_all("b");
    let stored = locks.leases();
    let lease_for = SignedDuration::from_secs(10);
    let mut restored = LockManager::restore(stored.clone(), lease_for).unwrap();
    assert_eq!(restored.leases(), stored);
    assert!(matches!(
        restored.acquire("c", USERS, t(2)),
        Err(LockError::Taken { .. })
    ));
    assert_eq!(
        restored.acquire("c", "repo:/r", t(2)).unwrap().fence,
        2,
        "above the highest stored fence"
    );
    // Stored leases that overlap are refused, naming both.
    let mut clash = stored[0].clone();
    clash.resource = USERS.into();
    clash.fence = 9;
    let err = LockManager::restore(vec![stored[0].clone(), clash], lease_for).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stored leases conflict: path:/r/src/api/users.rs (fence 9) overlaps path:/r/src/api/ (fence 1)"
    );
}

#[test]
fn thousands_of_locks_stay_cheap() {
    let mut locks = manager();
    for i in 0..5000 {
        locks
            .acquire(
                &format!("s{i}"),
                &format!("path:/r/src/m{}/f{i}.rs", i % 50),
                t(0),
            )
            .unwrap();
    }
    for i in 0..5000 {
        let dir = format!("path:/r/src/m{}/", i % 50);
        assert!(locks.acquire(&format!("w{i}"), &dir, t(1)).is_err());
    }
    for i in 0..5000 {
        if i % 50 != 0 {
            locks.release_all(&format!("s{i}"));
        }
    }
    assert_eq!(locks.leases().len(), 100);
    assert!(locks.acquire("w", "path:/r/src/m1/", t(2)).is_ok());
    assert!(locks.acquire("v", "path:/r/src/m0/", t(2)).is_err());
}
