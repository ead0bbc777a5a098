//! Tests of what is worth an alert, of coalescing a burst into one notice, and of the notice's
//! words and JSON.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::*;
use crate::domain::{AgentName, DomainEvent, PlanId, SessionId, TaskId};

fn asks(n: u128) -> EngineEvent {
    EngineEvent::ApprovalRequested {
        session: SessionId::from_u128(n),
        task: format!("task-{n}"),
        request: format!("per_{n}"),
        permission: "external_directory".into(),
        patterns: vec!["/var/cache/*".into()],
    }
}

fn finished(name: &str, ok: bool) -> EngineEvent {
    finished_as(name, "", ok)
}

/// A plan whose branches are named `key`.
fn finished_as(name: &str, key: &str, ok: bool) -> EngineEvent {
    EngineEvent::PlanFinished {
        key: key.into(),
        plan: PlanId::from_u128(1),
        name: name.into(),
        ok,
        done: 3,
        failed: 0,
        blocked: 0,
        cancelled: 0,
    }
}

fn agent(name: &str, from: AgentStatus, to: AgentStatus) -> EngineEvent {
    EngineEvent::Transition(DomainEvent::new(
        Transition::Agent {
            name: AgentName::new(name).unwrap(),
            from,
            to,
        },
        "unreachable",
        Timestamp::now(),
    ))
}

fn conflict(policy: ConflictPolicy) -> EngineEvent {
    EngineEvent::MergeConflict {
        plan: PlanId::from_u128(1),
        task: TaskId::from_u128(2),
        key: "impl".into(),
        files: vec!["src/lib.rs".into()],
        policy,
    }
}

fn kind(event: &EngineEvent) -> Option<Kind> {
    Alert::of(event).map(|a| a.kind)
}

#[test]
fn waiting_plans_ending_and_agents_going_offline_are_alerts_and_nothing_else_is() {
    assert_eq!(kind(&asks(1)), Some(Kind::Waiting));
    let question = EngineEvent::QuestionAsked {
        session: SessionId::from_u128(2),
        task: "design".into(),
        request: "que_1".into(),
        questions: vec![crate::engine::question::QuestionItem {
            header: "Storage".into(),
            question: "Which database?".into(),
            options: Vec::new(),
            multiple: false,
            custom: true,
        }],
    };
    assert_eq!(kind(&question), Some(Kind::Waiting));
    assert_eq!(kind(&conflict(ConflictPolicy::Manual)), Some(Kind::Waiting));
    assert_eq!(kind(&conflict(ConflictPolicy::Retry)), None);
    assert_eq!(kind(&conflict(ConflictPolicy::Resolver)), None);
    assert_eq!(kind(&finished("p", false)), Some(Kind::PlanFinished));
    let offline = agent("a", AgentStatus::Online, AgentStatus::Offline);
    assert_eq!(kind(&offline), Some(Kind::AgentOffline));
    assert_eq!(
        kind(&agent("a", AgentStatus::Online, AgentStatus::Draining)),
        None
    );
    assert_eq!(
        kind(&agent("a", AgentStatus::Offline, AgentStatus::Online)),
        None
    );
    assert_eq!(kind(&EngineEvent::Paused { paused: true }), None);
    let alert = Alert::of(&asks(7)).unwrap();
    assert_eq!(alert.text, "task-7 asks external_directory (/var/cache/*)");
}

#[test]
fn a_burst_within_the_window_is_taken_once_and_whole() {
    let window = Duration::from_secs(2);
    let mut burst = Burst::new(window);
    let start = Instant::now();
    assert_eq!(burst.due(), None);
    assert!(
        burst.take(start + window * 10).is_none(),
        "nothing gathered"
    );
    for n in 0..20u32 {
        burst.push(n, start + Duration::from_millis(u64::from(n) * 50));
    }
    // The window runs from the first item, not the last.
    assert_eq!(burst.due(), Some(start + window));
    assert!(
        burst
            .take(start + window - Duration::from_millis(1))
            .is_none()
    );
    let taken = burst.take(start + window).unwrap();
    assert_eq!(taken, (0..20).collect::<Vec<_>>());
    assert!(burst.take(start + window * 2).is_none(), "told once");
    assert_eq!(burst.due(), None);
    // The next item opens a window of its own.
    let later = start + window * 3;
    burst.push(99, later);
    assert_eq!(burst.due(), Some(later + window));
    assert!(burst.take(later).is_none());
    assert_eq!(
        burst.flush(),
        Some(vec![99]),
        "stopping tells what is gathered"
    );
    assert_eq!(burst.flush(), None);
}

#[test]
fn a_notice_counts_its_burst_in_one_headline() {
    let mut alerts: Vec<Alert> = (0..20).filter_map(|n| Alert::of(&asks(n))).collect();
    let notice = Notice::new(alerts.clone());
    assert_eq!(notice.headline(20), "20 waiting for you");
    // The room says how many wait in all; none left waiting, nothing to say about it.
    assert_eq!(notice.headline(0), "");
    alerts.extend(Alert::of(&finished("p", true)));
    alerts.extend(Alert::of(&agent(
        "box-1",
        AgentStatus::Online,
        AgentStatus::Offline,
    )));
    let notice = Notice::new(alerts.clone());
    assert_eq!(
        notice.headline(21),
        "21 waiting for you; plan p succeeded; agent box-1 offline"
    );
    alerts.extend(Alert::of(&finished("q", false)));
    assert_eq!(
        Notice::new(alerts).headline(0),
        "2 plans finished; agent box-1 offline"
    );
    // A later plan of one name is named as the room and the commands name it.
    let twin = Notice::new(
        Alert::of(&finished_as("p", "p-2", true))
            .into_iter()
            .collect(),
    );
    assert_eq!(twin.headline(0), "plan p (p-2) succeeded");
}

#[test]
fn a_notice_as_json_has_ntfys_fields_counts_and_the_events() {
    let mut alerts: Vec<Alert> = (0..25).filter_map(|n| Alert::of(&asks(n))).collect();
    alerts.extend(Alert::of(&finished("p", true)));
    let notice = Notice::new(alerts);
    let body = notice.to_json(None);
    assert_eq!(body["source"], "ocio");
    assert_eq!(body["title"], "ocio: 25 waiting for you; plan p succeeded");
    assert_eq!(body["counts"]["waiting"], 25);
    assert_eq!(body["counts"]["plan_finished"], 1);
    assert_eq!(body["counts"]["agent_offline"], 0);
    assert_eq!(
        body["tags"],
        serde_json::json!(["waiting", "plan_finished"])
    );
    assert_eq!(body["priority"], 4);
    // Within ntfy's limit: the first alerts listed, the rest counted.
    assert!(
        body.to_string().len() <= BODY_LIMIT,
        "{}",
        body.to_string().len()
    );
    let listed = body["events"].as_array().unwrap().len();
    assert!((1..LISTED).contains(&listed), "{listed}");
    assert_eq!(body["more"], 26 - listed);
    assert_eq!(body["events"][0]["kind"], "waiting");
    assert_eq!(body["events"][0]["event"]["type"], "approval_requested");
    assert_eq!(body["events"][0]["event"]["request"], "per_0");
    let message = body["message"].as_str().unwrap();
    assert_eq!(message.lines().count(), MESSAGE_LINES + 1);
    assert!(message.ends_with("... and 16 more"), "{message}");
    // A small burst is listed whole.
    let small = Notice::new((0..3).filter_map(|n| Alert::of(&asks(n))).collect()).to_json(None);
    assert_eq!(small["events"].as_array().unwrap().len(), 3);
    assert_eq!(small["more"], 0);
    assert!(body.get("topic").is_none());
    assert_eq!(notice.to_json(Some("ocio-builds"))["topic"], "ocio-builds");
}
