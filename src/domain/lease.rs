//! A lease: who holds a named resource (a path, a repository, a repository's merge step) and
//! until when. The lock manager grants and renews leases; the store keeps them across restarts.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The resource's name, e.g. `repo:/src/app` or `path:/src/app/src/api/`.
    pub resource: String,
    /// Who holds it (a session or task id, as text).
    pub holder: String,
    /// Increases with every grant of the resource, so a stale holder can be told apart.
    pub fence: u64,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Lease {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}
