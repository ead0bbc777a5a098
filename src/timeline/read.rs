//! Timelines read from the store: a plan's from the control log since it was submitted, or the
//! whole engine's over a recent window. Only the sessions that belong are decoded (each once,
//! by key), and only their transitions are kept.

use std::collections::HashMap;

use jiff::Timestamp;
use redb::ReadTransaction;

use super::{LaneBy, Record, Timeline, build};
use crate::domain::{
    DomainEvent, Lifecycle, PlanId, Session, SessionId, SessionStatus, Transition,
};
use crate::store::{StoreError, query};

/// Plan `plan`'s timeline as the store has it at `now`; `None` when there is no such plan.
///
/// Reads the control log from the plan's submission on: what a plan's replay costs grows with
/// the activity since it started, not with the database.
pub fn of_plan(
    txn: &ReadTransaction,
    plan: PlanId,
    by: LaneBy,
    now: Timestamp,
) -> Result<Option<Timeline>, StoreError> {
    let Some(record) = query::plan_record(txn, plan)? else {
        return Ok(None);
    };
    let (sessions, events) = collect(txn, record.plan.created_at, |s| s.plan == Some(plan))?;
    let timeline = build(
        &Record {
            title: record.plan.name.clone(),
            sessions: &sessions,
            tasks: &record.tasks,
            events: &events,
            now,
        },
        by,
    );
    Ok(Some(timeline))
}

/// Every session of the engine that ran between `since` and `now`, lanes `by` agent or task;
/// bars that began before `since` are cut there.
pub fn of_engine(
    txn: &ReadTransaction,
    since: Timestamp,
    by: LaneBy,
    now: Timestamp,
) -> Result<Timeline, StoreError> {
    let (mut sessions, events) = collect(txn, since, |_| true)?;
    // Sessions that run since before the window moved in it without a transition.
    for status in SessionStatus::ALL.iter().filter(|s| !s.is_terminal()) {
        for session in query::sessions_in(txn, *status)? {
            if !sessions.iter().any(|s| s.id == session.id) {
                sessions.push(session);
            }
        }
    }
    let mut tasks = Vec::new();
    for task in sessions.iter().filter_map(|s| s.task) {
        if !tasks.iter().any(|t: &crate::domain::Task| t.id == task)
            && let Some(found) = query::task(txn, task)?
        {
            tasks.push(found);
        }
    }
    let record = Record {
        title: "all plans".into(),
        sessions: &sessions,
        tasks: &tasks,
        events: &events,
        now,
    };
    let mut timeline = build(&record, by);
    // A window of the engine's work has no critical path.
    timeline.critical.clear();
    for bar in timeline.lanes.iter_mut().flat_map(|l| l.bars.iter_mut()) {
        bar.critical = false;
        bar.from = bar.from.max(since);
        bar.to = bar.to.max(bar.from);
    }
    timeline.from = since;
    timeline.to = timeline.to.max(since);
    Ok(timeline)
}

/// The sessions `belongs` keeps among those the control log names from `since` on, and their
/// transitions in log order.
fn collect(
    txn: &ReadTransaction,
    since: Timestamp,
    belongs: impl Fn(&Session) -> bool,
) -> Result<(Vec<Session>, Vec<DomainEvent>), StoreError> {
    let mut known: HashMap<SessionId, bool> = HashMap::new();
    let mut sessions = Vec::new();
    let mut events = Vec::new();
    let mut failure = None;
    query::events_from_time(txn, since, |_, event| {
        let Transition::Session { id, .. } = &event.transition else {
            return true;
        };
        let keep = match known.get(id) {
            Some(keep) => *keep,
            None => {
                let session = match query::session(txn, *id) {
                    Ok(session) => session,
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                };
                let keep = session.as_ref().is_some_and(&belongs);
                sessions.extend(session.filter(|_| keep));
                known.insert(*id, keep);
                keep
            }
        };
        if keep {
            events.push(event);
        }
        true
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok((sessions, events)),
    }
}
