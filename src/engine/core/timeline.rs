//! Timelines ([`crate::timeline`]) and searches ([`crate::store::search`]) for front ends:
//! read from the store off the engine's loop.
//! Every transition is durable before it is told, so the store's control log is as new as
//! what the room has seen.

use jiff::{SignedDuration, Timestamp};

use super::{Core, Typed};
use crate::domain::PlanId;
use crate::engine::EngineError;
use crate::store::{Found, SearchQuery};
use crate::timeline::{LaneBy, Timeline, read};

/// How far back the engine-wide timeline looks unless told.
const DEFAULT_WINDOW: SignedDuration = SignedDuration::from_hours(2);

impl Core {
    pub(super) fn timeline(
        &self,
        plan: Option<PlanId>,
        by: LaneBy,
        since: Option<Timestamp>,
        reply: Typed<Timeline>,
    ) {
        let store = self.store.clone();
        let now = self.now();
        let since = since.unwrap_or(now - DEFAULT_WINDOW);
        self.tasks.spawn(async move {
            let result = match plan {
                Some(plan) => store
                    .read(move |txn| read::of_plan(txn, plan, by, now))
                    .await
                    .map_err(EngineError::from)
                    .and_then(|found| found.ok_or(EngineError::UnknownPlan(plan))),
                None => store
                    .read(move |txn| read::of_engine(txn, since, by, now))
                    .await
                    .map_err(EngineError::from),
            };
            reply.send(result);
        });
    }

    /// Searches the store's index. Transcript entries are searchable once the journal wrote
    /// them (within a second).
    pub(super) fn search(&self, query: SearchQuery, reply: Typed<Vec<Found>>) {
        let store = self.store.clone();
        self.tasks.spawn(async move {
            let found = store
                .read(move |txn| crate::store::search(txn, &query))
                .await
                .map_err(EngineError::from);
            reply.send(found);
        });
    }
}
