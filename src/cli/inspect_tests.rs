//! Tests of the inspecting commands' tables: columns that fit their widest value, plans
//! and tasks named as the room names them.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::SessionKind;

/// Where `word` starts on each line that has it.
fn columns(text: &str, word: &str) -> Vec<usize> {
    text.lines().filter_map(|line| line.find(word)).collect()
}

/// `ocio sessions` on a terminal this wide.
const TERMINAL: Option<usize> = Some(120);

/// Fleet members' names are longer than the columns were (found trying fleets: `ocio
/// agents` and `ocio sessions` lost their alignment): the columns grow to fit them.
#[test]
fn agents_and_sessions_keep_their_columns_with_a_fleet_members_long_name() {
    use crate::domain::{AgentName, AgentStatus, Backend};
    let short = Agent::new(AgentName::new("b1").unwrap(), Backend::Simulated, 2);
    let mut long = Agent::new(
        AgentName::new("box-10.42.0.17-4096").unwrap(),
        Backend::Simulated,
        2,
    );
    long.status = AgentStatus::Draining;
    let table = agents_table(&[short.clone(), long.clone()], true);
    let status = columns(&table, "STATUS");
    let states = [columns(&table, "online"), columns(&table, "draining")].concat();
    assert_eq!(states, [status[0], status[0]], "{table}");
    // With no engine running, as the last engine saw them, and said so (hand trial: read as
    // the agents' status now).
    let stored = agents_table(&[short.clone(), long.clone()], false);
    assert!(
        stored.starts_with(&format!("{:<19} LAST SEEN", "AGENT"))
            && stored.contains("each agent as the last engine saw it"),
        "{stored}"
    );

    let at: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
    let row = |agent: &Agent| {
        let mut session = Session::new(SessionId::generate(), "p/t #1", SessionKind::Code, at);
        session.agent = Some(agent.name.clone());
        SessionView {
            session,
            task: "t".into(),
            last: None,
        }
    };
    let table = sessions_table(&[row(&short), row(&long)], &[], &[], at, TERMINAL);
    let last = columns(&table, "LAST");
    let ends: Vec<usize> = table
        .lines()
        .skip(1)
        .map(|line| line.trim_end().len() + 1)
        .collect();
    assert!(
        ends.iter().all(|end| *end <= last[0]),
        "every agent fits its column: {table}"
    );
}

/// A session still running on an agent that is offline says so in LAST (it read `running`
/// with its last tool call, as if work went on: hand trial); an ended one does not.
#[test]
fn a_running_session_on_an_offline_agent_says_so() {
    use crate::domain::{AgentName, AgentStatus, Backend, SessionStatus};
    let at: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
    let mut far = Agent::new(AgentName::new("far").unwrap(), Backend::Simulated, 2);
    far.status = AgentStatus::Offline;
    let row = |status: SessionStatus| {
        let mut session = Session::new(SessionId::generate(), "p/t #1", SessionKind::Code, at);
        session.agent = Some(far.name.clone());
        session.status = status;
        SessionView {
            session,
            task: "t".into(),
            last: None,
        }
    };
    let rows = [row(SessionStatus::Running), row(SessionStatus::Completed)];
    let table = sessions_table(&rows, &[], std::slice::from_ref(&far), at, TERMINAL);
    let said: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("far is offline: followed again when its server answers"))
        .collect();
    assert_eq!(said.len(), 1, "{table}");
    assert!(said[0].contains("running"), "{table}");
}

/// `ocio agents` names the fleets none of whose members has joined (hand trial: an empty
/// table, nothing said of the fleet configured).
#[test]
fn agents_name_the_fleets_with_no_member_yet() {
    use crate::domain::{AgentName, Backend, Fleet};
    let fleet = |name: &str| Fleet {
        name: AgentName::new(name).unwrap(),
        capabilities: Default::default(),
        works_away: None,
        members: Vec::new(),
    };
    let member = Agent::new(
        AgentName::new("boxes-10.0.0.1-4096").unwrap(),
        Backend::Simulated,
        2,
    );
    let fleets = [fleet("boxes"), fleet("gpus"), fleet("boxes-10.0.0.1")];
    let to_come: Vec<&str> = fleets_to_come(&fleets, &[member])
        .map(AgentName::as_str)
        .collect();
    assert_eq!(
        to_come,
        ["boxes", "gpus"],
        "boxes-10.0.0.1-4096 is of boxes-10.0.0.1"
    );
}

/// A long `plan/task` keeps the columns after it in line (hand trial: the column was
/// fixed at 32 and a longer name pushed STATUS out of it).
#[test]
fn tasks_keep_their_columns_with_a_long_plan_and_task_name() {
    use crate::engine::view::{PlanView, TaskView};
    let task = |key: &str| TaskView {
        id: crate::domain::TaskId::generate(),
        key: key.into(),
        status: crate::domain::TaskStatus::Ready,
        attempts: 0,
        needs: Vec::new(),
        capabilities: Vec::new(),
        session: None,
        check: None,
        waits: None,
    };
    let plan = |n: u128, name: &str, key: &str| PlanView {
        id: crate::domain::PlanId::from_u128(n),
        name: name.into(),
        key: name.into(),
        repo: "/repo".into(),
        tasks: vec![task(key)],
        landing: None,
    };
    let plans = [
        plan(1, "p", "t"),
        plan(
            2,
            "migrate-the-billing-service-to-postgres",
            "rewrite-the-invoice-queries",
        ),
    ];
    let table = tasks_table(&plans);
    let status = columns(&table, "STATUS");
    assert_eq!(columns(&table, "ready"), [status[0], status[0]], "{table}");
    // A task no agent could run says what it waits for, on a line of its own.
    let mut waiting = plans;
    waiting[0].tasks[0].waits = Some("for a member of fleet box to join".into());
    let table = tasks_table(&waiting);
    assert!(
        table.contains("\n             waits for a member of fleet box to join"),
        "{table}"
    );
}

/// `ocio sessions` named only the task's key (`api` of which plan?): the task is
/// `<plan>/<key>`, a later plan of one name by its branches' name, a long one clipped in
/// its column.
#[test]
fn sessions_name_their_plan_and_task() {
    use crate::domain::PlanId;
    let at: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
    // As the database lists them: the room's shown names are not known.
    let plan = |id: u128, name: &str, key: &str| Named {
        id: PlanId::from_u128(id),
        name: name.into(),
        key: key.into(),
        shown: None,
    };
    let plans = [
        plan(1, "deploy", "deploy"),
        plan(2, "deploy", "deploy-2"),
        plan(3, &"x".repeat(60), "long"),
    ];
    let row = |plan: u128, task: &str| {
        let mut session = Session::new(SessionId::generate(), "t", SessionKind::Code, at);
        session.plan = Some(PlanId::from_u128(plan));
        SessionView {
            session,
            task: task.into(),
            last: None,
        }
    };
    let mut resolver = row(2, "api");
    resolver.session.kind = SessionKind::Resolve;
    let rows = [row(1, "api"), row(2, "api"), row(3, "t"), resolver];
    let table = sessions_table(&rows, &plans, &[], at, TERMINAL);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("PLAN/TASK"), "{table}");
    assert!(lines[1].contains(" deploy/api "), "{table}");
    assert!(lines[2].contains(" deploy-2/api "), "{table}");
    let agent = columns(&table, "AGENT")[0];
    assert_eq!(lines[3].chars().nth(agent), Some('-'), "{table}");
    assert!(lines[3].contains("xxx…"), "{table}");
    assert!(lines[4].contains(" deploy-2/api (resolver) "), "{table}");
}

/// Hand trial: `ocio sessions | grep ...` found nothing past the 60th character of what a
/// session did last, cut with `…` though no terminal was there to fit. Piped, nothing is cut.
#[test]
fn piped_sessions_are_not_cut() {
    use crate::domain::PlanId;
    let at: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
    let plan = Named {
        id: PlanId::from_u128(1),
        name: "migrate-the-billing-service-to-postgres".into(),
        key: "migrate".into(),
        shown: None,
    };
    let mut session = Session::new(SessionId::generate(), "t", SessionKind::Code, at);
    session.plan = Some(plan.id);
    let error = format!(
        "tests failed: {} in invoice_totals_round_half_even",
        "x".repeat(80)
    );
    session.last_error = Some(error.clone());
    let row = SessionView {
        session,
        task: "rewrite-the-invoice-queries".into(),
        last: None,
    };
    let (rows, plans) = (std::slice::from_ref(&row), std::slice::from_ref(&plan));
    let table = sessions_table(rows, plans, &[], at, None);
    assert!(!table.contains('…'), "{table}");
    assert!(table.contains(&error), "{table}");
    assert!(
        table.contains("migrate-the-billing-service-to-postgres/rewrite-the-invoice-queries"),
        "{table}"
    );
    // On a terminal, each row fits its width: what the session did last is cut to it.
    let table = sessions_table(rows, plans, &[], at, TERMINAL);
    assert!(
        table.lines().all(|line| line.chars().count() <= 120),
        "{table}"
    );
    assert!(table.contains("tests failed: xxx"), "{table}");
    assert!(table.lines().nth(1).unwrap().ends_with('…'), "{table}");
}

/// Issue "Trust in daily use", item 10: `ocio logs` shows the prompt a session was sent as
/// the task's own, without the instructions ocio appends, and names the checkpoint's kind
/// as a person reads it.
#[test]
fn a_prompt_checkpoint_shows_the_tasks_own_prompt() {
    let at: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
    let mut session = Session::new(SessionId::generate(), "p/t #1", SessionKind::Code, at);
    let prompt = format!("Say hi\n\n{}", crate::plan::context::PUBLISH_INSTRUCTIONS);
    let data = json!({ "agent": "coder-1", "prompt": prompt });
    let c = session.checkpoint(CheckpointKind::PromptSent, data, at);
    let line = checkpoint_line(&c);
    assert_eq!(
        line,
        "10:00:00  checkpoint 1 prompt sent to coder-1: Say hi"
    );
}
