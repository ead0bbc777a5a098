//! Task locks as the scheduler uses them: a task that declares `locks = [...]` starts only when
//! it can take all of them at once, holds them while its session runs (across the attempt's
//! whole life, renewed as it goes) and gives them back when the session ends.
//!
//! All or nothing: the scheduler tries the task's locks together and, when one is taken, gives
//! back the rest and leaves the task ready for a later round, so a task never sits on half of
//! what it needs (no lock-order deadlocks between tasks). In turn: a task that could not take
//! its locks queues, and a task behind it that wants any of the same locks waits even when
//! its own are free, so a task needing two busy locks is not starved by a stream of tasks
//! each needing one of them. The leases are persisted; holders are task ids.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

use jiff::{SignedDuration, Timestamp};

use crate::domain::Lease;
use crate::domain::locks::{self, LockManager};

/// How long a lease lasts without renewal; running holders renew at half time.
pub(crate) const LEASE_FOR: SignedDuration = SignedDuration::from_secs(60 * 60);

pub(crate) struct TaskLocks {
    manager: LockManager,
    /// Holders that could not take their locks, first come first, with the names they want.
    waiting: VecDeque<(String, Vec<String>)>,
}

impl TaskLocks {
    pub(crate) fn restore(leases: Vec<Lease>) -> Self {
        let manager = LockManager::restore(leases, LEASE_FOR).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored leases conflict; starting with none");
            LockManager::new(LEASE_FOR)
        });
        Self {
            manager,
            waiting: VecDeque::new(),
        }
    }

    /// The lock names of a task's `locks` entries: `repo:`/`merge:`/`path:` names as written,
    /// anything else a path in the plan's repository.
    pub(crate) fn names(repo: &Path, declared: &BTreeSet<String>) -> Vec<String> {
        let repo = repo.to_string_lossy();
        declared
            .iter()
            .map(|l| {
                if ["path:", "repo:", "merge:"]
                    .iter()
                    .any(|p| l.starts_with(p))
                {
                    l.clone()
                } else {
                    locks::path(&repo, l)
                }
            })
            .collect()
    }

    /// Take every name for `holder`, or none. The leases taken, for the store.
    pub(crate) fn try_acquire(
        &mut self,
        holder: &str,
        names: &[String],
        now: Timestamp,
    ) -> Option<Vec<Lease>> {
        let mut taken = Vec::new();
        for name in names {
            match self.manager.acquire(holder, name, now) {
                Ok(lease) => taken.push(lease),
                Err(_) => {
                    self.manager.release_all(holder);
                    return None;
                }
            }
        }
        Some(taken)
    }

    /// [`Self::try_acquire`] in turn: not while a holder queued before this one wants a lock
    /// that conflicts with one of `names`. A holder that does not get its locks queues (once);
    /// one that does leaves the queue.
    pub(crate) fn try_acquire_in_turn(
        &mut self,
        holder: &str,
        names: &[String],
        now: Timestamp,
    ) -> Option<Vec<Lease>> {
        let blocked = self
            .waiting
            .iter()
            .take_while(|(queued, _)| queued != holder)
            .any(|(_, wanted)| {
                wanted
                    .iter()
                    .any(|w| names.iter().any(|n| locks::conflicts(w, n)))
            });
        let taken = if blocked {
            None
        } else {
            self.try_acquire(holder, names, now)
        };
        match taken {
            Some(_) => self.waiting.retain(|(queued, _)| queued != holder),
            None if !self.waiting.iter().any(|(queued, _)| queued == holder) => {
                self.waiting.push_back((holder.to_string(), names.to_vec()));
            }
            None => {}
        }
        taken
    }

    /// `holder` cannot try for its locks now (no agent for it, held back, waiting out a
    /// retry): it leaves the queue rather than hold others back while it cannot go.
    pub(crate) fn leave(&mut self, holder: &str) {
        self.waiting.retain(|(queued, _)| queued != holder);
    }

    /// Forget queued holders that no longer wait (their task is no longer ready: cancelled,
    /// or its plan gone), so they hold nobody back.
    pub(crate) fn keep_waiting(&mut self, waits: impl Fn(&str) -> bool) {
        self.waiting.retain(|(holder, _)| waits(holder));
    }

    /// Give back everything `holder` has; the resources freed (to remove from the store).
    /// `_now` is not needed since nothing waits to be granted what is freed; the callers still
    /// pass it.
    pub(crate) fn release(&mut self, holder: &str) -> Vec<String> {
        self.manager
            .release_all(holder)
            .into_iter()
            .map(|lease| lease.resource)
            .collect()
    }

    /// Renew the leases of `holders` that are past half their time; the renewed leases.
    pub(crate) fn renew_due<'a>(
        &mut self,
        holders: impl Iterator<Item = &'a str>,
        now: Timestamp,
    ) -> Vec<Lease> {
        let holders: BTreeSet<&str> = holders.collect();
        let due: Vec<Lease> = self
            .manager
            .leases()
            .into_iter()
            .filter(|l| {
                holders.contains(l.holder.as_str())
                    && l.expires_at.duration_since(now) < LEASE_FOR / 2
            })
            .collect();
        due.iter()
            .filter_map(|l| self.manager.renew(&l.holder, &l.resource, now).ok())
            .collect()
    }

    /// Everyone holding a lease now.
    pub(crate) fn holders(&self) -> BTreeSet<String> {
        self.manager
            .leases()
            .into_iter()
            .map(|l| l.holder)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_or_nothing() {
        let now = Timestamp::UNIX_EPOCH;
        let mut locks = TaskLocks::restore(Vec::new());
        let repo = Path::new("/r");
        let api = TaskLocks::names(repo, &set(&["src/api/"]));
        let both = TaskLocks::names(repo, &set(&["docs/", "src/api/users.rs"]));
        assert_eq!(api, vec!["path:/r/src/api/".to_string()]);
        assert!(locks.try_acquire("a", &api, now).is_some());
        assert!(
            locks.try_acquire("b", &both, now).is_none(),
            "users.rs is under src/api/"
        );
        assert_eq!(
            locks.holders(),
            set(&["a"]),
            "b gave back docs/ when it could not have both"
        );
        assert_eq!(locks.release("a"), api);
        assert_eq!(locks.try_acquire("b", &both, now).map(|l| l.len()), Some(2));
    }

    /// A task needing two locks is not starved by tasks needing one of them: once it queues,
    /// those behind it wait even while their own lock is free, and it goes first when both
    /// free up. A holder that stops waiting holds nobody back.
    #[test]
    fn a_task_needing_two_busy_locks_is_served_in_turn() {
        let now = Timestamp::UNIX_EPOCH;
        let mut locks = TaskLocks::restore(Vec::new());
        let repo = Path::new("/r");
        let a = TaskLocks::names(repo, &set(&["a"]));
        let b = TaskLocks::names(repo, &set(&["b"]));
        let both = TaskLocks::names(repo, &set(&["a", "b"]));
        assert!(locks.try_acquire_in_turn("a1", &a, now).is_some());
        assert!(locks.try_acquire_in_turn("ab", &both, now).is_none());
        assert!(
            locks.try_acquire_in_turn("b1", &b, now).is_none(),
            "b is free, but ab asked for it first"
        );
        locks.release("a1");
        assert!(
            locks.try_acquire_in_turn("a2", &a, now).is_none(),
            "a freed up, and ab is first in line for it"
        );
        assert_eq!(
            locks.try_acquire_in_turn("ab", &both, now).map(|l| l.len()),
            Some(2)
        );
        locks.release("ab");
        assert!(locks.try_acquire_in_turn("b1", &b, now).is_some());
        assert!(locks.try_acquire_in_turn("a2", &a, now).is_some());

        let unrelated = TaskLocks::names(repo, &set(&["c"]));
        assert!(locks.try_acquire_in_turn("ab2", &both, now).is_none());
        assert!(
            locks.try_acquire_in_turn("c1", &unrelated, now).is_some(),
            "a queued task holds back only those wanting its locks"
        );
        locks.leave("ab2");
        locks.keep_waiting(|holder| holder != "nobody");
        locks.release("a2");
        assert!(
            locks.try_acquire_in_turn("a3", &a, now).is_some(),
            "ab2 stopped waiting"
        );
    }

    #[test]
    fn running_holders_renew_at_half_time() {
        let start = Timestamp::UNIX_EPOCH;
        let mut locks = TaskLocks::restore(Vec::new());
        let names = TaskLocks::names(Path::new("/r"), &set(&["x"]));
        locks.try_acquire("a", &names, start).unwrap();
        assert!(locks.renew_due(["a"].into_iter(), start).is_empty());
        let later = start + LEASE_FOR / 2 + SignedDuration::from_secs(1);
        let renewed = locks.renew_due(["a"].into_iter(), later);
        assert_eq!(renewed.len(), 1);
        assert_eq!(renewed[0].expires_at, later + LEASE_FOR);
    }
}
