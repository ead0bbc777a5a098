use jiff::Timestamp;

use super::*;
use crate::domain::{AgentName, PlanId, TaskId};

pub(crate) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_780_000_000 + seconds).unwrap()
}

/// A plan's record as the engine leaves it: sessions moved through their states at the given
/// seconds, the transitions in log order.
pub(crate) struct Scenario {
    pub(crate) sessions: Vec<Session>,
    pub(crate) tasks: Vec<Task>,
    pub(crate) events: Vec<DomainEvent>,
}

impl Scenario {
    pub(crate) fn new(tasks: &[(&str, &[&str], TaskStatus)]) -> Self {
        let plan = PlanId::from_parts(7, 7);
        let tasks = tasks
            .iter()
            .map(|(key, needs, status)| {
                let mut task = Task::new(TaskId::generate(), plan, *key, "", at(0));
                task.needs = needs.iter().map(|n| n.to_string()).collect();
                task.status = *status;
                task
            })
            .collect();
        Self {
            sessions: Vec::new(),
            tasks,
            events: Vec::new(),
        }
    }

    /// Session `attempt` of `task` (kind `kind`) on `agent`: `(status, second)` in order.
    pub(crate) fn run(
        &mut self,
        task: &str,
        attempt: u32,
        kind: SessionKind,
        agent: &str,
        moves: &[(SessionStatus, i64)],
    ) {
        let id = SessionId::generate();
        let start = moves.first().map_or(0, |m| m.1);
        let mut session = Session::new(id, format!("p/{task} #{attempt}"), kind, at(start));
        let found = self.tasks.iter().find(|t| t.key == task).unwrap();
        session.plan = Some(found.plan);
        session.task = Some(found.id);
        session.agent = Some(AgentName::new(agent).unwrap());
        session.attempt = attempt;
        for (to, second) in moves {
            let event = session.transition(*to, "test", at(*second)).unwrap();
            self.events.push(event);
        }
        self.sessions.push(session);
    }

    pub(crate) fn timeline(&self, by: LaneBy, now: i64) -> Timeline {
        let mut events = self.events.clone();
        events.sort_by_key(|e| e.at);
        build(
            &Record {
                title: "feature".into(),
                sessions: &self.sessions,
                tasks: &self.tasks,
                events: &events,
                now: at(now),
            },
            by,
        )
    }
}

use SessionStatus::{Completed, Failed, Queued, Running, Starting, WaitingApproval};

/// design -> (impl, docs) -> review; impl fails once on agent a and is retried on b, where it
/// waits for a permission; impl's merge conflicted and a resolver settled it.
pub(crate) fn feature() -> Scenario {
    let mut s = Scenario::new(&[
        ("design", &[], TaskStatus::Done),
        ("impl", &["design"], TaskStatus::Done),
        ("docs", &["design"], TaskStatus::Done),
        ("review", &["impl", "docs"], TaskStatus::Done),
    ]);
    let code = SessionKind::Code;
    let (a, b) = ("alpha", "beta");
    s.run(
        "design",
        1,
        code,
        a,
        &[(Queued, 0), (Starting, 0), (Running, 1), (Completed, 10)],
    );
    s.run(
        "impl",
        1,
        code,
        a,
        &[(Queued, 10), (Starting, 10), (Running, 11), (Failed, 30)],
    );
    s.run(
        "docs",
        1,
        code,
        b,
        &[(Queued, 10), (Starting, 10), (Running, 11), (Completed, 20)],
    );
    let moves = [
        (Queued, 32),
        (Starting, 32),
        (Running, 33),
        (WaitingApproval, 40),
        (Running, 45),
        (Completed, 60),
    ];
    s.run("impl", 2, code, b, &moves);
    let resolve = SessionKind::Resolve;
    s.run(
        "impl",
        2,
        resolve,
        a,
        &[(Queued, 60), (Starting, 60), (Running, 60), (Completed, 64)],
    );
    s.run(
        "review",
        1,
        code,
        a,
        &[(Queued, 65), (Starting, 65), (Running, 66), (Completed, 80)],
    );
    s
}

#[test]
fn bars_run_from_dispatch_to_end_in_lanes_per_agent() {
    let timeline = feature().timeline(LaneBy::Agent, 500);
    assert_eq!((timeline.from, timeline.to), (at(0), at(80)));
    assert!(!timeline.live);
    let lanes: Vec<(&str, Vec<&str>)> = timeline
        .lanes
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.bars.iter().map(|b| b.label.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        lanes,
        vec![
            (
                "alpha",
                vec!["design #1", "impl #1", "impl resolve", "review #1"]
            ),
            ("beta", vec!["docs #1", "impl #2"]),
        ]
    );
    let retry = &timeline.lanes[1].bars[1];
    assert!(retry.is_retry());
    assert_eq!((retry.from, retry.to), (at(32), at(60)));
    assert_eq!(
        retry.waits,
        vec![Span {
            from: at(40),
            to: at(45)
        }]
    );
    assert_eq!(timeline.lanes[0].bars[1].outcome, Outcome::Failed);
    assert!(
        !timeline.lanes[0].bars[2].is_retry(),
        "a resolver is not a retry"
    );
}

#[test]
fn the_critical_path_is_the_chain_that_held_the_end_back() {
    let timeline = feature().timeline(LaneBy::Task, 500);
    assert_eq!(timeline.critical, vec!["design", "impl", "review"]);
    let docs = timeline.lanes.iter().find(|l| l.name == "docs").unwrap();
    assert!(docs.bars.iter().all(|b| !b.critical));
    let implementation = timeline.lanes.iter().find(|l| l.name == "impl").unwrap();
    assert_eq!(
        implementation.bars.len(),
        3,
        "both attempts and the resolver"
    );
    assert!(implementation.bars.iter().all(|b| b.critical));
}

#[test]
fn a_running_session_grows_to_now_and_a_failed_task_is_off_the_path() {
    let mut s = Scenario::new(&[
        ("a", &[], TaskStatus::Done),
        ("b", &["a"], TaskStatus::Running),
        ("c", &["a"], TaskStatus::Failed),
    ]);
    let code = SessionKind::Code;
    s.run(
        "a",
        1,
        code,
        "x",
        &[(Queued, 0), (Starting, 0), (Running, 1), (Completed, 5)],
    );
    s.run(
        "c",
        1,
        code,
        "x",
        &[(Queued, 5), (Starting, 5), (Running, 6), (Failed, 9)],
    );
    let waits = [
        (Queued, 5),
        (Starting, 5),
        (Running, 6),
        (WaitingApproval, 8),
    ];
    s.run("b", 1, code, "y", &waits);
    let timeline = s.timeline(LaneBy::Agent, 20);
    assert!(timeline.live);
    assert_eq!(timeline.to, at(20));
    let running = &timeline.lanes[1].bars[0];
    assert_eq!((running.outcome, running.to), (Outcome::Running, at(20)));
    assert_eq!(
        running.waits,
        vec![Span {
            from: at(8),
            to: at(20)
        }]
    );
    assert_eq!(timeline.critical, vec!["a"]);
}

#[test]
fn axis_steps_and_labels_read_well() {
    assert_eq!(tick_step(80.0, 10), 10);
    assert_eq!(tick_step(3.0, 10), 1);
    assert_eq!(tick_step(4000.0, 10), 600);
    assert_eq!(offset_label(0), "0s");
    assert_eq!(offset_label(90), "1m30s");
    assert_eq!(offset_label(3900), "1h05m");
    assert_eq!(duration_label(at(0), at(245)), "4m05s");
}

#[test]
fn the_svg_shows_lanes_bars_waits_retries_and_the_path() {
    let svg = svg::render(&feature().timeline(LaneBy::Agent, 500));
    insta::assert_snapshot!(svg);
}

#[test]
fn names_in_the_svg_are_escaped() {
    let mut s = Scenario::new(&[("<b>&", &[], TaskStatus::Done)]);
    let moves = [(Queued, 0), (Starting, 0), (Running, 0), (Completed, 3)];
    s.run("<b>&", 1, SessionKind::Code, "a", &moves);
    let svg = svg::render(&s.timeline(LaneBy::Task, 10));
    assert!(svg.contains("&lt;b&gt;&amp;"), "{svg}");
    assert!(!svg.contains("<b>&"));
}

#[test]
fn sessions_that_overlap_in_a_lane_take_rows_of_their_own() {
    let mut s = Scenario::new(&[("a", &[], TaskStatus::Done), ("b", &[], TaskStatus::Done)]);
    let code = SessionKind::Code;
    s.run(
        "a",
        1,
        code,
        "x",
        &[(Queued, 0), (Starting, 0), (Running, 0), (Completed, 10)],
    );
    s.run(
        "b",
        1,
        code,
        "x",
        &[(Queued, 2), (Starting, 2), (Running, 2), (Completed, 12)],
    );
    let timeline = s.timeline(LaneBy::Agent, 20);
    let lane = &timeline.lanes[0];
    assert_eq!(lane.tracks, 2);
    assert_eq!(
        lane.bars.iter().map(|b| b.track).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

/// A task run again after an attempt that was lost with a restart, cancelled (by the operator
/// or over budget) or whose merge conflicted is no retry: only an attempt after one that
/// failed or timed out is drawn as one (every later attempt was, so a restart read as the
/// task failing). Tasks of one key in two plans are told apart.
#[test]
fn a_run_after_a_lost_attempt_is_no_retry() {
    use SessionStatus::{Cancelled, Lost};
    let mut s = Scenario::new(&[("a", &[], TaskStatus::Done), ("b", &[], TaskStatus::Done)]);
    let code = SessionKind::Code;
    let ran = |from: i64, to: i64, end: SessionStatus| {
        [
            (Queued, from),
            (Starting, from),
            (Running, from + 1),
            (end, to),
        ]
    };
    s.run("a", 1, code, "x", &ran(0, 5, Lost));
    s.run("a", 2, code, "x", &ran(6, 9, Failed));
    s.run("a", 3, code, "x", &ran(10, 12, Completed));
    s.run("b", 1, code, "y", &ran(0, 3, Cancelled));
    s.run("b", 2, code, "y", &ran(4, 6, Completed));
    let timeline = s.timeline(LaneBy::Task, 20);
    let retries = |lane: &str| -> Vec<bool> {
        let lane = timeline.lanes.iter().find(|l| l.name == lane).unwrap();
        lane.bars.iter().map(Bar::is_retry).collect()
    };
    assert_eq!(retries("a"), [false, false, true], "lost, then failed");
    assert_eq!(retries("b"), [false, false], "cancelled, then run again");
    // Another plan's `a`, whose first attempt failed: its second is a retry, this one's not.
    let mut two = s;
    let mut other = Scenario::new(&[("a", &[], TaskStatus::Done)]);
    other.run("a", 1, code, "z", &ran(0, 3, Failed));
    other.run("a", 2, code, "z", &ran(4, 8, Completed));
    two.sessions.extend(other.sessions);
    two.tasks.extend(other.tasks);
    two.events.extend(other.events);
    let timeline = two.timeline(LaneBy::Agent, 20);
    let of = |agent: &str| -> Vec<bool> {
        let lane = timeline.lanes.iter().find(|l| l.name == agent).unwrap();
        lane.bars.iter().map(Bar::is_retry).collect()
    };
    assert_eq!(of("x"), [false, false, true]);
    assert_eq!(of("z"), [false, true]);
}
