//! A lease: who holds a named resource (a path, a repository, a repository's merge step) and
//! until when. The lock manager grants and renews leases; the store keeps them across restarts.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The resource's name, e.g. `repo:/src/app` or `path:/src/app/src/api/`.
    pub(crate) resource: String,
    /// Who holds it (a session or task id, as text).
    pub(crate) holder: String,
    /// Increases with every grant of the resource, so a stale holder can be told apart.
    pub(crate) fence: u64,
    pub(crate) granted_at: Timestamp,
    pub(crate) expires_at: Timestamp,
}

impl Lease {
    pub(crate) fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}
