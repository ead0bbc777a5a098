//! The lock manager: exclusive leases on named resources (a path, a repository, a repository's
//! merge step), with fencing and expiry. Pure: time comes in as arguments.
//!
//! **Names and conflicts.** A resource is named `<namespace>:<name>`: `path:/r/src/api/`,
//! `repo:/r`, `merge:/r` (see [`path`]). Two names conflict when they are equal, or when both
//! are in the `path:` namespace and one is a prefix of the other at a `/` boundary:
//! `path:/r/src/api/` and `path:/r/src/api` both conflict with `path:/r/src/api/users.rs`,
//! neither with `path:/r/src/apiary`. Other namespaces only conflict by equality, and
//! namespaces never conflict with each other (`repo:/r` does not cover `path:/r/...`; lock
//! `path:/r/` for the whole tree). Names are compared as given.
//!
//! **Grants.** Locks are exclusive and nothing waits here: [`LockManager::acquire`] grants a
//! resource when no conflicting lease is held and refuses it ([`LockError::Taken`]) otherwise,
//! so a caller can take a set of resources all or nothing (the engine's task locks do, and keep
//! their own turn for tasks that could not). A holder may hold many resources, but asking for
//! one that overlaps what it already holds is an error ([`LockError::AlreadyHeld`],
//! [`LockError::OverlapsOwn`]).
//!
//! **Leases.** A grant lasts `lease_for`; the holder renews it before `expires_at`, keeping its
//! fence. A lease past its expiry can no longer be renewed, but it is not taken back: it blocks
//! others until its holder lets go. Every grant takes the next fence, increasing across all
//! resources; a manager [restored](LockManager::restore) from stored leases goes on above the
//! highest stored fence.
//!
//! **Cost.** Leases are indexed by name in an ordered map, so finding what conflicts with a
//! name costs O(depth · log n + k): its `/`-ancestors by lookup, its descendants by one range
//! scan, k the conflicts found; never a scan of every lock.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use jiff::{SignedDuration, Timestamp};

use super::lease::Lease;

const PATH: &str = "path:";

/// The name of a path (a directory ends in `/`) inside a repository: `path:<repo>/<rel>`.
pub(crate) fn path(repo: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches("./").trim_start_matches('/');
    format!("{PATH}{}/{rel}", repo.trim_end_matches('/'))
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LockError {
    #[error("{holder} already holds {resource}")]
    AlreadyHeld { holder: String, resource: String },
    #[error("{holder} asked for {resource}, which overlaps {own} that it already holds")]
    OverlapsOwn {
        holder: String,
        resource: String,
        own: String,
    },
    #[error("{holder} asked for {resource}, which overlaps {other} held by {other_holder}")]
    Taken {
        holder: String,
        resource: String,
        other: String,
        other_holder: String,
    },
    #[error("{holder} does not hold {resource}")]
    NotHeld { holder: String, resource: String },
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

/// Who holds which resource. See the module docs for the rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct LockManager {
    lease_for: SignedDuration,
    last_fence: u64,
    /// Resource -> its lease (no two held names conflict).
    held: BTreeMap<String, Lease>,
    /// Holder -> the resources it holds.
    held_by: BTreeMap<String, BTreeSet<String>>,
}

impl LockManager {
    pub(crate) fn new(lease_for: SignedDuration) -> Self {
        Self {
            lease_for,
            ..Self::default()
        }
    }

    /// The manager after a restart: the stored leases held again, as they were; new fences
    /// start above every stored fence.
    pub(crate) fn restore(
        leases: Vec<Lease>,
        lease_for: SignedDuration,
    ) -> Result<Self, LockError> {
        let mut manager = Self::new(lease_for);
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

    /// Grants `resource` to `holder` if no conflicting lease is held.
    pub(crate) fn acquire(
        &mut self,
        holder: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Lease, LockError> {
        self.check_own(holder, resource)?;
        if let Some((other, lease)) = conflicting(&self.held, resource).next() {
            return Err(LockError::Taken {
                holder: holder.into(),
                resource: resource.into(),
                other: other.into(),
                other_holder: lease.holder.clone(),
            });
        }
        self.last_fence = self.last_fence.saturating_add(1);
        let lease = Lease {
            resource: resource.into(),
            holder: holder.into(),
            fence: self.last_fence,
            granted_at: now,
            expires_at: self.expiry(now),
        };
        self.insert_lease(lease.clone());
        Ok(lease)
    }

    /// Lets every lease of `holder` go (it is done); the leases it held, by resource name.
    pub(crate) fn release_all(&mut self, holder: &str) -> Vec<Lease> {
        let resources = self.held_by.remove(holder).unwrap_or_default();
        resources
            .iter()
            .filter_map(|resource| self.held.remove(resource))
            .collect()
    }

    /// Extends `holder`'s lease on `resource` to `now + lease_for`, keeping its fence. Refused
    /// once the lease has expired.
    pub(crate) fn renew(
        &mut self,
        holder: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Lease, LockError> {
        let expiry = self.expiry(now);
        let Some(lease) = self.held.get_mut(resource).filter(|l| l.holder == holder) else {
            return Err(LockError::NotHeld {
                holder: holder.into(),
                resource: resource.into(),
            });
        };
        if lease.is_expired(now) {
            return Err(LockError::Expired {
                holder: holder.into(),
                resource: resource.into(),
                expires_at: lease.expires_at,
            });
        }
        lease.expires_at = expiry;
        Ok(lease.clone())
    }

    /// The held leases, by resource name.
    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.held.values().cloned().collect()
    }

    fn check_own(&self, holder: &str, resource: &str) -> Result<(), LockError> {
        let (h, r) = (holder.to_string(), resource.to_string());
        if self.held.get(resource).is_some_and(|l| l.holder == holder) {
            return Err(LockError::AlreadyHeld {
                holder: h,
                resource: r,
            });
        }
        // Through the holder's own (few) leases, not every lease.
        let own = self.held_by.get(holder).into_iter().flatten();
        match own.into_iter().find(|own| conflicts(own, resource)) {
            Some(own) => Err(LockError::OverlapsOwn {
                holder: h,
                resource: r,
                own: own.clone(),
            }),
            None => Ok(()),
        }
    }

    fn expiry(&self, now: Timestamp) -> Timestamp {
        now.checked_add(self.lease_for).unwrap_or(Timestamp::MAX)
    }

    fn insert_lease(&mut self, lease: Lease) {
        self.held_by
            .entry(lease.holder.clone())
            .or_default()
            .insert(lease.resource.clone());
        self.held.insert(lease.resource.clone(), lease);
    }
}

#[cfg(test)]
#[path = "locks_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "locks_props.rs"]
mod props;
