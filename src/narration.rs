//! What an engine event says to a person, in one line: the single wording that the headless
//! runner prints on stderr and the control room shows in its events pane. Front ends add only
//! how to act on it where they are (the headless runner names `ocio approve`).

use crate::domain::{Lifecycle, SessionStatus, Transition};
use crate::engine::EngineEvent;

/// One line about an engine event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narration {
    /// A status name (`running`, `done`, `failed`, ...) or a kind (`plan`, `engine`): how the
    /// line reads at a glance (the control room colours by it).
    pub(crate) tone: &'static str,
    pub text: String,
    /// About one task or session of a plan rather than a plan or the engine (the headless
    /// runner indents these under their plan's lines).
    pub(crate) nested: bool,
}

impl Narration {
    /// The line an event is worth, or `None` for those not worth one: a session's activity
    /// and its moves (its task's tell them), but for waiting on approval, the answer to it
    /// (what was decided and by whom) and timing out.
    pub fn of(event: &EngineEvent) -> Option<Self> {
        let (tone, text, nested) = match event {
            EngineEvent::Transition(e) => {
                // One line: a cause with a hint on its own line reads `...; hint: ...`.
                let cause = if e.cause.is_empty() {
                    String::new()
                } else {
                    format!(": {}", one_line(&e.cause))
                };
                match &e.transition {
                    Transition::Task { key, to, .. } => {
                        (to.name(), format!("{key} {to}{cause}"), true)
                    }
                    Transition::Session { id, to, .. }
                        if matches!(
                            to,
                            SessionStatus::WaitingApproval | SessionStatus::TimedOut
                        ) =>
                    {
                        (
                            to.name(),
                            format!("session {} {to}{cause}", id.short()),
                            true,
                        )
                    }
                    Transition::Session {
                        id,
                        from: SessionStatus::WaitingApproval,
                        to: to @ SessionStatus::Running,
                    } => (
                        to.name(),
                        format!("session {} {}", id.short(), e.cause),
                        true,
                    ),
                    Transition::Session { .. } => return None,
                    Transition::Agent { name, to, .. } => {
                        (to.name(), format!("agent {name} {to}{cause}"), false)
                    }
                }
            }
            EngineEvent::PlanSubmitted {
                name,
                key,
                tasks,
                branch,
                ..
            } => (
                "plan",
                format!(
                    "plan {} submitted: {}",
                    called(name, if branch.is_some() { key } else { "" }),
                    crate::text::count(*tasks, "task")
                ),
                false,
            ),
            EngineEvent::Dispatched {
                key,
                agent,
                attempt,
                ..
            } => (
                "running",
                format!("{key} started on {agent} (attempt {attempt})"),
                true,
            ),
            EngineEvent::PlanLanded { name, landing, .. } => ("done", landing.told(name), false),
            EngineEvent::PlanFinished {
                name,
                key,
                ok,
                done,
                failed,
                blocked,
                cancelled,
                ..
            } => (
                if *ok { "done" } else { "failed" },
                format!(
                    "plan {} {}: {done} done, {failed} failed, {blocked} blocked, {cancelled} cancelled",
                    called(name, key),
                    if *ok { "succeeded" } else { "did not succeed" }
                ),
                false,
            ),
            EngineEvent::ApprovalRequested {
                task,
                permission,
                patterns,
                ..
            } => (
                "waiting-approval",
                format!("{task} asks {permission} ({})", patterns.join(", ")),
                true,
            ),
            EngineEvent::QuestionAsked {
                task,
                request,
                questions,
                ..
            } => {
                let asked: Vec<String> = questions
                    .iter()
                    .map(|q| {
                        let options = crate::engine::question::numbered(&q.options);
                        format!("{:?} ({options})", q.question)
                    })
                    .collect();
                let short = crate::engine::approval::short_id(request);
                (
                    "waiting-approval",
                    format!("{task} asks {} [{short}]", asked.join("; ")),
                    true,
                )
            }
            EngineEvent::RequestWithdrawn { request, why, .. } => (
                "engine",
                format!("request {request} left the inbox unanswered: {why}"),
                false,
            ),
            EngineEvent::Recovered {
                sessions,
                tasks,
                resumed,
            } => (
                "engine",
                format!(
                    "recovered: {resumed} sessions re-attached, {sessions} lost runs settled, {tasks} tasks to run again"
                ),
                false,
            ),
            EngineEvent::Activity { .. } | EngineEvent::SessionUsage { .. } => return None,
            EngineEvent::AgentAdded { agent } => {
                ("engine", format!("agent {} added", agent.name), false)
            }
            EngineEvent::AgentRemoved { agent } => {
                ("engine", format!("agent {agent} removed"), false)
            }
            EngineEvent::FleetMemberWaiting { fleet, url, why } => (
                "offline",
                format!(
                    "fleet {fleet}: {url} could not join ({}); asked again at each read of the fleet",
                    one_line(why)
                ),
                false,
            ),
            EngineEvent::FleetSourceFailed { fleet, why, kept } => (
                "offline",
                format!(
                    "fleet {fleet}: its members could not be read ({}); it keeps the {kept} it has and reads them again at each refresh",
                    one_line(why)
                ),
                false,
            ),
            EngineEvent::FleetSourceRead { fleet, listed } => (
                "engine",
                format!(
                    "fleet {fleet}: its members are read again ({})",
                    crate::text::count(*listed, "server")
                ),
                false,
            ),
            EngineEvent::Paused { paused } => (
                "paused",
                if *paused {
                    "dispatching paused"
                } else {
                    "dispatching resumed"
                }
                .to_string(),
                false,
            ),
            EngineEvent::OverBudget {
                plan,
                name,
                cause,
                tasks,
            } => (
                "paused",
                format!(
                    "plan {name} paused {cause}{}; raise it and continue (ocio budget {} --tokens N --continue) or cancel",
                    match tasks.is_empty() {
                        true => String::new(),
                        false => format!(
                            "; stopped {}, work kept on their branches",
                            tasks.join(", ")
                        ),
                    },
                    plan.short()
                ),
                false,
            ),
            EngineEvent::BudgetResolved {
                name, continued, ..
            } => (
                "engine",
                match continued {
                    true => format!("plan {name} continues within its raised budget"),
                    false => format!("plan {name} cancelled over budget"),
                },
                false,
            ),
            EngineEvent::IntegrationReady { branch, .. } => (
                "engine",
                format!("integration branch {branch} ready"),
                false,
            ),
            EngineEvent::TaskHeld { key, file, .. } => (
                "paused",
                format!("{key} held: a running session touches {file}"),
                true,
            ),
            EngineEvent::Overlap { path, with, .. } => (
                "failed",
                format!("overlap: {} sessions edit {path}", with.len() + 1),
                true,
            ),
            EngineEvent::Merged { key, commit, .. } => (
                "done",
                format!("{key} merged ({})", commit.get(..8).unwrap_or(commit)),
                true,
            ),
            EngineEvent::MergeConflict {
                key, files, policy, ..
            } => (
                "failed",
                format!(
                    "{key}: merge conflict in {} ({})",
                    files.join(", "),
                    policy.text()
                ),
                true,
            ),
            EngineEvent::CheckStarted { key, command, .. } => (
                "running",
                format!("{key}: merged; checking with `{command}`"),
                true,
            ),
            EngineEvent::CheckProgress { .. } => return None,
            EngineEvent::CheckEnded {
                key,
                command,
                passed: true,
                ..
            } => ("done", format!("{key}: `{command}` passed"), true),
            EngineEvent::CheckEnded {
                key, report, fix, ..
            } => {
                let after = fix
                    .map(|n| format!(" (after fix session {n})"))
                    .unwrap_or_default();
                let last = report.lines().last().unwrap_or_default();
                let first = report.lines().next().unwrap_or_default();
                let text = match last == first {
                    true => format!("{key}: {first}{after}"),
                    false => format!("{key}: {first}{after} … {last}"),
                };
                ("failed", text, true)
            }
            EngineEvent::EngineFailed { error } => {
                ("failed", format!("the engine stopped: {error}"), false)
            }
        };
        Some(Self { tone, text, nested })
    }
}

/// `text` on one line: its lines joined with `; `.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}

/// What a plan is called in a line: its name, and the name its branches take when that
/// differs (`deploy (deploy-2)`, a later plan of the name: how the room shows it beside its
/// twin and the commands take it). The events pane, headless lines and notices all say it so.
pub(crate) fn called(name: &str, key: &str) -> String {
    match key.is_empty() || key == name {
        true => name.to_string(),
        false => format!("{name} ({key})"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::{AgentName, AgentStatus, DomainEvent, SessionId, TaskId, TaskStatus};

    fn transition(transition: Transition, cause: &str) -> EngineEvent {
        EngineEvent::Transition(DomainEvent::new(
            transition,
            cause,
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ))
    }

    fn text(event: &EngineEvent) -> Option<String> {
        Narration::of(event).map(|n| n.text)
    }

    #[test]
    fn tasks_agents_and_plans_read_as_one_line_each() {
        let failed = transition(
            Transition::Task {
                id: TaskId::from_u128(1),
                key: "api".into(),
                from: TaskStatus::Running,
                to: TaskStatus::Failed,
            },
            "session failed",
        );
        assert_eq!(
            Narration::of(&failed),
            Some(Narration {
                tone: "failed",
                text: "api failed: session failed".into(),
                nested: true,
            })
        );
        let agent = transition(
            Transition::Agent {
                name: AgentName::new("coder-1").unwrap(),
                from: AgentStatus::Online,
                to: AgentStatus::Draining,
            },
            "",
        );
        assert_eq!(text(&agent).unwrap(), "agent coder-1 draining");
        let offline = transition(
            Transition::Agent {
                name: AgentName::new("coder-1").unwrap(),
                from: AgentStatus::Online,
                to: AgentStatus::Offline,
            },
            "cannot reach it (os error 111)\nhint: is `opencode serve` running there?",
        );
        assert_eq!(
            text(&offline).unwrap(),
            "agent coder-1 offline: cannot reach it (os error 111); hint: is `opencode serve` running there?"
        );
        let waiting = EngineEvent::FleetMemberWaiting {
            fleet: AgentName::new("builders").unwrap(),
            url: "http://10.0.0.3:4096".into(),
            why: "the server has a password\nhint: set password_env".into(),
        };
        assert_eq!(
            text(&waiting).unwrap(),
            "fleet builders: http://10.0.0.3:4096 could not join (the server has a password; hint: set password_env); asked again at each read of the fleet"
        );
        let unread = EngineEvent::FleetSourceFailed {
            fleet: AgentName::new("builders").unwrap(),
            why: "command `list-boxes` did not finish within 30s".into(),
            kept: 2,
        };
        assert_eq!(
            text(&unread).unwrap(),
            "fleet builders: its members could not be read (command `list-boxes` did not finish within 30s); it keeps the 2 it has and reads them again at each refresh"
        );
        let read = EngineEvent::FleetSourceRead {
            fleet: AgentName::new("builders").unwrap(),
            listed: 1,
        };
        assert_eq!(
            text(&read).unwrap(),
            "fleet builders: its members are read again (1 server)"
        );
        let submitted = EngineEvent::PlanSubmitted {
            plan: crate::domain::PlanId::from_u128(2),
            name: "add-pagination".into(),
            tasks: 3,
            key: "add-pagination".into(),
            branch: None,
        };
        assert_eq!(
            Narration::of(&submitted),
            Some(Narration {
                tone: "plan",
                text: "plan add-pagination submitted: 3 tasks".into(),
                nested: false,
            })
        );
        // One task is one task (it said "1 tasks").
        let one = EngineEvent::PlanSubmitted {
            plan: crate::domain::PlanId::from_u128(3),
            name: "quick".into(),
            tasks: 1,
            key: "quick".into(),
            branch: None,
        };
        assert_eq!(text(&one).unwrap(), "plan quick submitted: 1 task");
        let merged = EngineEvent::Merged {
            plan: crate::domain::PlanId::from_u128(2),
            task: TaskId::from_u128(1),
            key: "api".into(),
            commit: "0123456789abcdef".into(),
        };
        assert_eq!(text(&merged).unwrap(), "api merged (01234567)");
    }

    #[test]
    fn a_sessions_moves_are_told_only_when_someone_must_act() {
        let session = |to| {
            transition(
                Transition::Session {
                    id: SessionId::from_u128(0xabcd),
                    from: SessionStatus::Running,
                    to,
                },
                "",
            )
        };
        assert_eq!(text(&session(SessionStatus::Completed)), None);
        let waiting = text(&session(SessionStatus::WaitingApproval)).unwrap();
        assert!(waiting.ends_with("waiting-approval"), "{waiting}");
        let asks = EngineEvent::ApprovalRequested {
            session: SessionId::from_u128(0xabcd),
            task: "storage".into(),
            request: "per_1".into(),
            permission: "external_directory".into(),
            patterns: vec!["/var/cache/*".into(), "/tmp/*".into()],
        };
        assert_eq!(
            text(&asks).unwrap(),
            "storage asks external_directory (/var/cache/*, /tmp/*)"
        );
    }

    #[test]
    fn the_answer_to_a_permission_request_is_told_with_who_gave_it() {
        let answered = transition(
            Transition::Session {
                id: SessionId::from_u128(0xabcd),
                from: SessionStatus::WaitingApproval,
                to: SessionStatus::Running,
            },
            "rejected by the operator (key): permission bash (rm -rf /tmp/x) [per_1]",
        );
        assert_eq!(
            text(&answered).unwrap(),
            format!(
                "session {} rejected by the operator (key): permission bash (rm -rf /tmp/x) [per_1]",
                SessionId::from_u128(0xabcd).short()
            )
        );
    }
}
