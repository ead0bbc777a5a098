//! Model-based property test of the session state machine: random sequences of requested
//! transitions, checked against a model written independently of the transition table.

use jiff::Timestamp;
use proptest::prelude::*;

use super::event::Transition;
use super::id::SessionId;
use super::lifecycle::Lifecycle;
use super::session::{Session, SessionKind, SessionStatus};

/// The model: the allowed moves, written out as pairs of names (not derived from `next`).
const ALLOWED: &[(&str, &str)] = &[
    ("pending", "queued"),
    ("pending", "cancelled"),
    ("queued", "starting"),
    ("queued", "paused"),
    ("queued", "cancelled"),
    ("starting", "running"),
    ("starting", "queued"),
    ("starting", "failed"),
    ("starting", "cancelled"),
    ("starting", "timed-out"),
    ("starting", "lost"),
    ("running", "waiting-approval"),
    ("running", "retrying"),
    ("running", "paused"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("running", "timed-out"),
    ("running", "lost"),
    ("waiting-approval", "running"),
    ("waiting-approval", "completed"),
    ("waiting-approval", "failed"),
    ("waiting-approval", "cancelled"),
    ("waiting-approval", "timed-out"),
    ("waiting-approval", "lost"),
    ("retrying", "running"),
    ("retrying", "completed"),
    ("retrying", "failed"),
    ("retrying", "cancelled"),
    ("retrying", "timed-out"),
    ("retrying", "lost"),
    ("paused", "queued"),
    ("paused", "running"),
    ("paused", "cancelled"),
    ("paused", "timed-out"),
    ("paused", "lost"),
];

const TERMINAL: &[&str] = &["completed", "failed", "cancelled", "timed-out", "lost"];

fn allowed(from: SessionStatus, to: SessionStatus) -> bool {
    ALLOWED.contains(&(from.name(), to.name()))
}

fn status() -> impl Strategy<Value = SessionStatus> {
    proptest::sample::select(SessionStatus::ALL)
}

#[test]
fn the_table_and_the_model_agree_on_terminal_states() {
    for &s in SessionStatus::ALL {
        assert_eq!(s.is_terminal(), TERMINAL.contains(&s.name()), "{s}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_requests_follow_the_model(requests in proptest::collection::vec(status(), 1..40)) {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let mut session = Session::new(SessionId::from_parts(1, 1), "t", SessionKind::Code, start);
        let mut current = SessionStatus::Pending;
        let mut ever_ran = false;
        let mut events = Vec::new();
        for (step, to) in requests.into_iter().enumerate() {
            let at = start + jiff::SignedDuration::from_secs(step as i64 + 1);
            match session.transition(to, format!("step {step}"), at) {
                Ok(event) => {
                    prop_assert!(allowed(current, to), "accepted {} -> {}", current, to);
                    prop_assert_eq!(&event.transition, &Transition::Session { id: session.id, from: current, to });
                    prop_assert_eq!(event.at, at);
                    events.push(event);
                    current = to;
                    ever_ran |= to == SessionStatus::Running;
                }
                Err(_) => prop_assert!(!allowed(current, to), "refused {} -> {}", current, to),
            }
            prop_assert_eq!(session.status, current);
            prop_assert_eq!(session.started_at.is_some(), ever_ran);
            prop_assert_eq!(session.finished_at.is_some(), TERMINAL.contains(&current.name()));
        }
        // The events chain: each starts where the previous one ended.
        for pair in events.windows(2) {
            let (Transition::Session { to, .. }, Transition::Session { from, .. }) = (&pair[0].transition, &pair[1].transition) else {
                unreachable!()
            };
            prop_assert_eq!(to, from);
        }
        // Once terminal, the finish time never moves.
        if let Some(finished) = session.finished_at {
            prop_assert!(events.iter().filter(|e| e.at > finished).count() == 0);
        }
    }
}
