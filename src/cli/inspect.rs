//! Commands that show state: `ocio sessions`, `tasks`, `agents`, `logs`, `export`. Each asks
//! the running engine when one answers and reads the database otherwise, and says which.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::database::{self, say_source, source_name};
use super::output::{print_json, print_text};
use super::plans::Named;
use super::{Context, Failure};
use crate::control::ControlClient;
use crate::domain::{
    Agent, Checkpoint, CheckpointKind, Lease, Lifecycle, Plan, Session, SessionId, Task,
};
use crate::engine::EngineApi;
use crate::engine::view::read_transcript;
use crate::engine::{Entry, Logged, PlanView, SessionView, Snapshot, TaskView};
use crate::store::{StoreError, query};

/// Ended sessions read from the database for `ocio sessions` (the engine keeps as many).
const RECENT: usize = 500;

/// The engine's snapshot, or `None` (and no client) when no engine runs.
pub(super) async fn from_engine(
    context: &Context,
) -> Result<Option<(ControlClient, Snapshot)>, Failure> {
    match database::engine(context).await? {
        Some(client) => {
            let snapshot = client.snapshot().await?;
            Ok(Some((client, snapshot)))
        }
        None => Ok(None),
    }
}

/// Run `read` on the database (on a blocking thread), or return `T::default()` when there is
/// none yet.
pub(super) async fn from_database<T: Default + Send + 'static>(
    context: &Context,
    read: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Failure> {
    let path = context.paths.db_file.clone();
    let read = tokio::task::spawn_blocking(move || database::read(&path, read))
        .await
        .map_err(|e| Failure {
            code: super::exit::FAILED,
            message: format!("reading the database did not finish: {e}"),
        })??;
    Ok(read.map_or_else(T::default, |r| r.value))
}

/// [`from_database`] beside a running engine, which lists only its recent plans: a read that
/// fails (the file changing under it) finds nothing, said in the log, instead of failing the
/// command; what the engine lists is what there is then.
pub(super) async fn beside_engine<T: Default + Send + 'static>(
    context: &Context,
    what: &str,
    read: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError> + Send + 'static,
) -> T {
    from_database(context, read).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e.message, "cannot read the {what} beside the running engine");
        T::default()
    })
}

/// Show `rows` as JSON (`{"source": ..., key: rows}`) or text, saying where they came from.
fn show<T: Serialize>(
    context: &Context,
    engine: Option<&ControlClient>,
    json: bool,
    key: &str,
    rows: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), Failure> {
    if json {
        print_json(&json!({ "source": source_name(engine), key: rows }))
    } else {
        say_source(context, engine);
        print_text(&text(rows))
    }
}

pub(crate) fn sessions(context: &Context, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let (client, sessions, plans, agents) = match from_engine(context).await? {
            Some((client, snapshot)) => {
                let plans = super::plans::of_snapshot(&snapshot);
                (Some(client), snapshot.sessions, plans, snapshot.agents)
            }
            None => {
                // The plans' names only for the text (plan/task), in the same read.
                let read = move |txn: &redb::ReadTransaction| {
                    let plans = match json {
                        true => Vec::new(),
                        false => super::plans::of_database(txn)?,
                    };
                    Ok((stored_sessions(txn)?, plans))
                };
                let (sessions, plans) = from_database(context, read).await?;
                // No engine: no agent is known offline now.
                (None, sessions, plans, Vec::new())
            }
        };
        show(
            context,
            client.as_ref(),
            json,
            "sessions",
            &sessions,
            |rows| {
                let now = jiff::Timestamp::now();
                sessions_table(rows, &plans, &agents, now, terminal_width())
            },
        )
    })
}

/// The least of what a session did last that a terminal's row shows (narrower, the row
/// wraps rather than cut it to nothing).
const LAST_LEAST: usize = 20;

/// The columns of the terminal stdout is, or `None` when it is none (piped to a script or
/// `grep`, which need whole text) or its size cannot be read.
fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(columns, _)| usize::from(columns))
}

/// `ocio sessions` as text: the task as `<plan>/<key>` (the plan by the name the room shows
/// it by, `<name>-2` for a later plan of one name), the task and agent columns as wide as
/// their widest entry. On a terminal `width` columns wide, the task is cut to 40 characters
/// and what the session did last to what the row leaves; with no terminal (`None`) nothing
/// is cut.
fn sessions_table(
    rows: &[SessionView],
    plans: &[Named],
    agents: &[Agent],
    now: jiff::Timestamp,
    width: Option<usize>,
) -> String {
    let agent_of = |view: &SessionView| {
        let agent = view.session.agent.as_ref();
        agent.map_or("-", |a| a.as_str()).to_string()
    };
    let task_of = |view: &SessionView| {
        let plan = view.session.plan;
        let plan = plans.iter().find(|p| Some(p.id) == plan);
        let task = match plan {
            Some(plan) if !view.task.is_empty() => {
                format!("{}/{}", plan.shown(plans), view.task)
            }
            Some(plan) => plan.shown(plans).to_string(),
            None if view.task.is_empty() => "-".to_string(),
            None => view.task.clone(),
        };
        // A session that is not the task's own attempt says what it is for.
        match view.session.kind.role() {
            Some(role) => format!("{task} ({role})"),
            None => task,
        }
    };
    let agents_width = rows
        .iter()
        .map(|view| agent_of(view).chars().count())
        .fold(12, usize::max);
    let tasks = rows
        .iter()
        .map(|view| task_of(view).chars().count())
        .fold(9, usize::max);
    let tasks = width.map_or(tasks, |_| tasks.min(40));
    // Session, status, task and agent, and a space after each.
    let before_last = 10 + 1 + 16 + 1 + tasks + 1 + agents_width + 1;
    let last_width = width.map(|w| w.saturating_sub(before_last).max(LAST_LEAST));
    let mut out = format!(
        "{:<10} {:<16} {:<tasks$} {:<agents_width$} LAST",
        "SESSION", "STATUS", "PLAN/TASK", "AGENT"
    );
    for view in rows {
        let s = &view.session;
        let last = view
            .cut_off(agents)
            .or_else(|| view.last.as_ref().map(|e| e.activity.line(now)))
            .or(s.last_error.clone())
            .unwrap_or_default();
        // A row is one line: a message of several shows its first.
        let last = last.lines().next().unwrap_or_default();
        out.push_str(&format!(
            "\n{:<10} {:<16} {:<tasks$} {:<agents_width$} {}",
            s.id.short(),
            view.state(),
            fit(&task_of(view), tasks),
            agent_of(view),
            last_width.map_or_else(|| last.to_string(), |w| fit(last, w))
        ));
    }
    out
}

fn stored_sessions(txn: &redb::ReadTransaction) -> Result<Vec<SessionView>, StoreError> {
    let keys: HashMap<_, _> = query::tasks(txn)?
        .into_iter()
        .map(|t| (t.id, t.key))
        .collect();
    let sessions = query::newest_sessions(txn, RECENT)?;
    Ok(sessions
        .into_iter()
        .map(|session| SessionView {
            task: session
                .task
                .and_then(|t| keys.get(&t).cloned())
                .unwrap_or_default(),
            // What it did last, as the room shows it after a restart; an entry that cannot
            // be read is left out.
            last: crate::store::last_transcript_entry(txn, session.id)
                .unwrap_or_else(|e| {
                    tracing::warn!(session = %session.id, error = %e, "cannot read what the session did last");
                    None
                }),
            session,
        })
        .collect())
}

pub(crate) fn tasks(context: &Context, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let (client, plans) = match from_engine(context).await? {
            Some((client, snapshot)) => (Some(client), snapshot.plans),
            None => (None, from_database(context, stored_plans).await?),
        };
        show(context, client.as_ref(), json, "plans", &plans, |plans| {
            tasks_table(plans)
        })
    })
}

/// `ocio tasks` as text: a row per task, named `plan/task` as the room names it, and where a
/// landed plan's work went.
fn tasks_table(plans: &[crate::engine::view::PlanView]) -> String {
    // As wide as the widest `plan/task` (a long one pushed the columns after it).
    let width = plans
        .iter()
        .flat_map(|p| {
            let shown = p.shown_name(plans).chars().count();
            p.tasks
                .iter()
                .map(move |t| shown + 1 + t.key.chars().count())
        })
        .fold(16, usize::max);
    let mut out = format!(
        "{:<10} {:<width$} {:<10} {:>8}  NEEDS",
        "TASK", "PLAN/KEY", "STATUS", "ATTEMPTS"
    );
    for plan in plans {
        // Twins of one name read apart, as in the room: `slow/t`, `slow-2/t`.
        let shown = plan.shown_name(plans);
        for task in &plan.tasks {
            let name = format!("{shown}/{}", task.key);
            out.push_str(&format!(
                "\n{:<10} {:<width$} {:<10} {:>8}  {}",
                task.id.short(),
                name,
                task.status.name(),
                task.attempts,
                task.needs.join(", ")
            ));
            if let Some(waits) = &task.waits {
                out.push_str(&format!("\n{:<10}   waits {waits}", ""));
            }
        }
        if let Some(landing) = &plan.landing {
            out.push_str(&format!("\n{:<10} {}", "", landing.told(shown)));
        }
    }
    out
}

fn stored_plans(txn: &redb::ReadTransaction) -> Result<Vec<PlanView>, StoreError> {
    let tasks: HashMap<_, Task> = query::tasks(txn)?.into_iter().map(|t| (t.id, t)).collect();
    let mut latest = HashMap::new();
    for session in query::sessions(txn)? {
        if let Some(task) = session.task {
            latest.insert(task, session.id); // oldest first: the last one wins
        }
    }
    let mut keys: HashMap<crate::domain::PlanId, String> = query::plan_work(txn)?
        .into_iter()
        .map(|work| (work.plan, work.key))
        .collect();
    let mut landings = HashMap::new();
    for plan in query::plans(txn)? {
        if let Some(landing) = query::landing(txn, plan.id)? {
            landings.insert(plan.id, landing);
        }
    }
    Ok(query::plans(txn)?
        .into_iter()
        .map(|plan: Plan| PlanView {
            landing: landings.remove(&plan.id),
            tasks: plan
                .tasks
                .iter()
                .filter_map(|id| tasks.get(id))
                .map(|t| TaskView {
                    id: t.id,
                    key: t.key.clone(),
                    status: t.status,
                    attempts: t.attempts,
                    needs: t.needs.clone(),
                    capabilities: t.capabilities.iter().cloned().collect(),
                    session: latest.get(&t.id).copied(),
                    check: None,
                    waits: None,
                })
                .collect(),
            key: keys.remove(&plan.id).unwrap_or_default(),
            id: plan.id,
            name: plan.name,
            repo: plan.repo,
        })
        .collect())
}

pub(crate) fn agents(context: &Context, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let (client, agents, fleets) = match from_engine(context).await? {
            Some((client, snapshot)) => (Some(client), snapshot.agents, snapshot.fleets),
            None => (None, from_database(context, query::agents).await?, Vec::new()),
        };
        show(
            context,
            client.as_ref(),
            json,
            "agents",
            &agents,
            |agents: &Vec<Agent>| {
                let mut table = agents_table(agents, client.is_some());
                for fleet in fleets_to_come(&fleets, agents) {
                    table.push_str(&format!(
                        "\nfleet {fleet}: no member has joined yet (the room's events say why a listed server has not)"
                    ));
                }
                table
            },
        )
    })
}

/// The fleets none of whose members is among `agents`.
fn fleets_to_come<'f>(
    fleets: &'f [crate::domain::Fleet],
    agents: &[Agent],
) -> impl Iterator<Item = &'f crate::domain::AgentName> {
    fleets
        .iter()
        .filter(|f| {
            !agents.iter().any(|a| {
                crate::domain::fleet_of(fleets, a.name.as_str()).is_some_and(|of| of.name == f.name)
            })
        })
        .map(|f| &f.name)
}

/// `ocio agents` as text: a row per agent (its why below it), the columns as wide as their
/// widest value (fleet members' names are long: `box-10.42.0.7-4096`). With no engine running
/// (`live` false) the status and load are as the last engine left them, and say so (they
/// read as the agents' now: an agent `online` whose managed server had stopped, hand trial).
fn agents_table(agents: &[Agent], live: bool) -> String {
    let width = agents
        .iter()
        .map(|a| a.name.as_str().chars().count())
        .fold(16, usize::max);
    let status = match live {
        true => "STATUS",
        false => "LAST SEEN",
    };
    let mut out = format!(
        "{:<width$} {:<10} {:>6}  CAPABILITIES",
        "AGENT", status, "LOAD"
    );
    for a in agents {
        let load = format!("{}/{}", a.load, a.max_concurrent);
        let caps: Vec<&str> = a.capabilities.iter().map(String::as_str).collect();
        out.push_str(&format!(
            "\n{:<width$} {:<10} {:>6}  {}",
            a.name.as_str(),
            a.status.name(),
            load,
            caps.join(", ")
        ));
        if let Some(why) = a.reason.as_deref().and_then(|r| r.lines().next()) {
            let since = a
                .since
                .map(|at| format!(" (since {})", at.strftime("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default();
            out.push_str(&format!("\n  why: {why}{since}"));
        }
    }
    if !live && !agents.is_empty() {
        out.push_str("\n(no engine runs: each agent as the last engine saw it; sessions on OpenCode servers may still run)");
    }
    out
}

#[derive(Serialize)]
struct Logs {
    source: &'static str,
    session: Session,
    /// What the session did, as stored (through the running engine when one runs, so what
    /// it has not written yet is included).
    entries: Vec<Entry>,
    /// The durable record: prompt sent, steps, result, recovery notes.
    checkpoints: Vec<Checkpoint>,
}

pub(crate) fn logs(context: &Context, wanted: &str, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let engine = from_engine(context).await?;
        let snapshot = engine.as_ref().map(|(_, snapshot)| snapshot);
        let (session, checkpoints) = find_session(context, snapshot, wanted).await?;
        let entries = match &engine {
            Some((client, _)) => client.transcript(session.id).await?,
            None => {
                let id = session.id;
                from_database(context, move |txn| read_transcript(txn, id)).await?
            }
        };
        let logs = Logs {
            source: source_name(engine.as_ref().map(|(c, _)| c)),
            session,
            entries,
            checkpoints,
        };
        if json {
            return print_json(&logs);
        }
        say_source(context, engine.as_ref().map(|(c, _)| c));
        let s = &logs.session;
        let mut out = format!("{} {} ({})", s.id, s.title, s.status.name());
        for entry in &logs.entries {
            out.push_str(&format!(
                "\n{}  {}",
                entry.at.strftime("%H:%M:%S"),
                entry.activity.summary()
            ));
        }
        for c in &logs.checkpoints {
            out.push_str(&format!("\n{}", checkpoint_line(c)));
        }
        print_text(&out)
    })
}

/// What the database holds, to find a session by its id or by its task.
#[derive(Default)]
struct Stored {
    sessions: Vec<Session>,
    plans: Vec<Plan>,
    tasks: Vec<Task>,
}

/// The session `wanted` names, and its checkpoints: the session's id or the id's last 8
/// characters, or a task as `ocio cancel` takes it (the task's newest session). The running
/// engine's copy of it when there is one (`snapshot`), else the database's.
pub(crate) async fn find_session(
    context: &Context,
    snapshot: Option<&Snapshot>,
    wanted: &str,
) -> Result<(Session, Vec<Checkpoint>), Failure> {
    let stored = from_database(context, |txn| {
        Ok(Stored {
            sessions: query::sessions(txn)?,
            plans: query::plans(txn)?,
            tasks: query::tasks(txn)?,
        })
    })
    .await?;
    let id = session_named(snapshot, &stored, wanted)?;
    let session = snapshot
        .and_then(|s| s.sessions.iter().find(|v| v.session.id == id))
        .map(|v| v.session.clone())
        .or_else(|| stored.sessions.iter().find(|s| s.id == id).cloned())
        .ok_or_else(|| Failure::usage(format!("no session {id}")))?;
    let checkpoints = from_database(context, move |txn| query::checkpoints(txn, id)).await?;
    Ok((session, checkpoints))
}

/// The id of the session `wanted` names (see [`find_session`]).
fn session_named(
    snapshot: Option<&Snapshot>,
    stored: &Stored,
    wanted: &str,
) -> Result<SessionId, Failure> {
    let wanted = wanted.trim();
    let lower = wanted.to_ascii_lowercase();
    let mut ids: Vec<SessionId> = snapshot
        .into_iter()
        .flat_map(|s| s.sessions.iter().map(|v| v.session.id))
        .chain(stored.sessions.iter().map(|s| s.id))
        .filter(|id| matches_session(*id, &lower))
        .collect();
    ids.sort();
    ids.dedup();
    match ids.as_slice() {
        [one] => return Ok(*one),
        [] => {}
        many => {
            return Err(Failure::usage(format!(
                "`{wanted}` matches {} sessions; give the full id",
                many.len()
            )));
        }
    }
    let task = match snapshot {
        Some(snapshot) => super::remote::find_task(super::remote::tasks_of(snapshot), wanted)?,
        None => {
            let names: HashMap<_, _> = stored
                .plans
                .iter()
                .map(|p| (p.id, p.name.as_str()))
                .collect();
            let tasks = stored.tasks.iter().filter_map(|t| {
                let plan = *names.get(&t.plan)?;
                Some(super::remote::Named {
                    plan,
                    shown: plan,
                    plan_id: t.plan,
                    id: t.id,
                    key: t.key.as_str(),
                })
            });
            super::remote::find_task(tasks, wanted)?
        }
    };
    let Some((task, name)) = task else {
        return Err(Failure::usage(format!(
            "no session or task matches `{wanted}`\n  hint: `ocio sessions` and `ocio tasks` list them; give a session id (or its last 8 characters), a task's id, its key or plan/key"
        )));
    };
    stored
        .sessions
        .iter()
        .filter(|s| s.task == Some(task))
        .map(|s| s.id)
        .max()
        .ok_or_else(|| Failure::usage(format!("task {name} has not run yet: it has no session")))
}

fn matches_session(id: SessionId, wanted: &str) -> bool {
    id.short() == wanted || id.to_string().eq_ignore_ascii_case(wanted)
}

/// One entry of a session's transcript in an export.
#[derive(Serialize)]
struct TranscriptLine {
    session: SessionId,
    #[serde(flatten)]
    entry: Entry,
}

#[derive(Default, Serialize)]
struct Export {
    plans: Vec<Plan>,
    tasks: Vec<Task>,
    sessions: Vec<Session>,
    checkpoints: Vec<Checkpoint>,
    agents: Vec<Agent>,
    leases: Vec<Lease>,
    /// The control log: every durable transition, in order.
    events: Vec<Logged>,
    /// Every stored transcript entry, session by session, oldest first.
    transcripts: Vec<TranscriptLine>,
}

pub(crate) fn export(context: &Context, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let engine = from_engine(context).await?;
        let data = from_database(context, |txn| {
            let sessions = query::sessions(txn)?;
            let mut checkpoints = Vec::new();
            let mut transcripts = Vec::new();
            for session in &sessions {
                checkpoints.extend(query::checkpoints(txn, session.id)?);
                let entries = read_transcript(txn, session.id)?;
                transcripts.extend(entries.into_iter().map(|entry| TranscriptLine {
                    session: session.id,
                    entry,
                }));
            }
            Ok(Export {
                plans: query::plans(txn)?,
                tasks: query::tasks(txn)?,
                sessions,
                checkpoints,
                agents: query::agents(txn)?,
                leases: query::leases(txn)?,
                events: query::events_after(txn, 0, usize::MAX)?
                    .into_iter()
                    .map(|(seq, event)| Logged { seq, event })
                    .collect(),
                transcripts,
            })
        })
        .await?;
        let header = json!({
            "source": source_name(engine.as_ref().map(|(c, _)| c)),
            "database": context.paths.db_file,
            "exported_at": jiff::Timestamp::now(),
            "engine": engine.as_ref().map(|(_, snapshot)| snapshot),
        });
        if json {
            let mut document = serde_json::to_value(&data).unwrap_or(Value::Null);
            if let (Value::Object(document), Value::Object(header)) = (&mut document, header) {
                document.extend(header);
            }
            return print_json(&document);
        }
        let mut out = String::new();
        let mut record = |kind: &str, data: Value| {
            out.push_str(&json!({ "record": kind, "data": data }).to_string());
            out.push('\n');
        };
        record("export", header);
        let lists = serde_json::to_value(&data).unwrap_or(Value::Null);
        for kind in [
            "plans",
            "tasks",
            "sessions",
            "checkpoints",
            "agents",
            "leases",
            "events",
            "transcripts",
        ] {
            for item in lists[kind].as_array().into_iter().flatten() {
                record(kind.trim_end_matches('s'), item.clone());
            }
        }
        print_text(out.trim_end())
    })
}

/// `text` in at most `width` characters: clipped with `…` when longer.
fn fit(text: &str, width: usize) -> String {
    match text.chars().count() > width {
        true => clip(text, width.saturating_sub(1)),
        false => text.to_string(),
    }
}

fn clip(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// `ocio context [PLAN]`: the shared context of a plan (the newest when none is named).
pub(crate) fn context(context: &Context, plan: Option<&str>, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let engine = database::engine(context).await?;
        let snapshot = match &engine {
            Some(client) => Some(client.snapshot().await?),
            None => None,
        };
        let plans = match &snapshot {
            Some(snapshot) => super::plans::of_snapshot(snapshot),
            None => from_database(context, super::plans::of_database).await?,
        };
        let (id, name) = match plan {
            None => plans
                .last()
                .map(|p| (p.id, p.name.clone()))
                .ok_or_else(|| Failure::usage("there are no plans yet"))?,
            Some(wanted) => {
                let named = super::plans::resolve(context, snapshot.as_ref(), wanted).await?;
                (named.id, named.name)
            }
        };
        let tasks = match &engine {
            Some(client) => client.context(id).await?,
            None => from_database(context, move |txn| query::contexts_of(txn, id)).await?,
        };
        if json {
            return print_json(&json!({ "source": source_name(engine.as_ref()), "plan": id, "name": name, "tasks": tasks }));
        }
        say_source(context, engine.as_ref());
        let mut out = format!(
            "plan {name} ({id}): {} left context",
            crate::text::count(tasks.len(), "task")
        );
        for task in &tasks {
            out.push_str(&format!("\n\n{}  {}", task.key, task.merge));
            if let Some(commit) = &task.commit {
                out.push_str(&format!("\n  work committed as {} on its task branch", commit.get(..12).unwrap_or(commit)));
            }
            if !task.files_changed.is_empty() {
                out.push_str(&format!("\n  files: {}", task.files_changed.join(", ")));
            }
            for (name, value) in &task.values {
                out.push_str(&format!("\n  {name} = {value}"));
            }
            if let Some(summary) = &task.summary {
                out.push_str(&format!("\n  answer: {}", crate::text::clip(summary.trim(), 400).replace('\n', "\n          ")));
            }
        }
        print_text(&out)
    })
}

/// One checkpoint for `ocio logs`.
/// A prompt shows as the task gave it (the model also got ocio's context and instructions).
fn checkpoint_line(c: &Checkpoint) -> String {
    let kind = c.kind.to_string();
    let what = match (c.kind, c.data.get("prompt").and_then(Value::as_str)) {
        (CheckpointKind::PromptSent, Some(prompt)) => {
            let own = crate::plan::context::own_prompt(prompt).trim();
            match c.data.get("agent").and_then(Value::as_str) {
                Some(agent) => format!("{kind} to {agent}: {}", clip(own, 100)),
                None => format!("{kind}: {}", clip(own, 100)),
            }
        }
        _ => format!("{kind}: {}", clip(&c.data.to_string(), 100)),
    };
    format!("{}  checkpoint {} {what}", c.at.strftime("%H:%M:%S"), c.seq)
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
