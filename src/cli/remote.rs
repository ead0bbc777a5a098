//! Commands that ask a running engine to do something, through its control socket: `ocio
//! submit`, `cancel`, `retry`, `approve`. Without a running engine they do nothing and say how
//! to start one (only an engine may change what it owns).

use std::io::IsTerminal;
use std::path::PathBuf;

use serde_json::json;

use super::database::require_engine;
use super::output::{print_bytes, print_json, print_text};
use super::{Context, Failure, exit};
use crate::domain::TaskId;
use crate::engine::Snapshot;
use crate::engine::approval::{Approver, Decision};
use crate::engine::question::Answer;
use crate::engine::{Engine, EngineApi, Request};
use crate::plan::PlanFile;

/// What `ocio submit` submits.
pub(crate) enum What {
    Plan(PathBuf),
    Prompt(String),
    Template { name: String, goal: String },
}

pub(crate) fn submit(
    context: &Context,
    what: What,
    print: bool,
    json: bool,
) -> Result<(), Failure> {
    let (path, text) = match what {
        What::Plan(plan) => {
            let path = std::path::absolute(&plan).unwrap_or(plan);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Failure::usage(format!(
                    "{}: cannot read the plan file: {e}\n  hint: check the path and that the file is readable text",
                    path.display()
                ))
            })?;
            (path, text)
        }
        What::Prompt(prompt) => prompt_plan(&prompt)?,
        What::Template { name, goal } => template_plan(&name, &goal)?,
    };
    if print {
        return print_bytes(text.as_bytes());
    }
    // Report a broken plan even when no engine runs.
    let parsed = PlanFile::parse(&text, &path).map_err(Failure::usage)?;
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        let plan = client.submit(&path, text).await?;
        let shown = shown_as(&client, plan, &parsed.name).await;
        if json {
            print_json(&json!({
                "source": "engine",
                "plan": plan,
                "name": parsed.name,
                "shown_as": shown,
                "tasks": parsed.tasks.len(),
            }))
        } else {
            // `slow-2`: what the room shows and the commands take, beside the earlier `slow`.
            let called = match &shown {
                Some(shown) => format!(", shown as {shown},"),
                None => String::new(),
            };
            print_text(&format!(
                "submitted plan {}{called} as {plan} ({}) to the engine (pid {})",
                parsed.name,
                crate::text::count(parsed.tasks.len(), "task"),
                client.engine().pid
            ))
        }
    })
}

/// What a just submitted plan is shown as, when that is not its name (an earlier plan of the
/// name is listed too): how the room and the commands tell it from its twin.
async fn shown_as(
    client: &crate::control::ControlClient,
    plan: crate::domain::PlanId,
    name: &str,
) -> Option<String> {
    let snapshot = client.snapshot().await.ok()?;
    let view = snapshot.plans.iter().find(|p| p.id == plan)?;
    let shown = view.shown_name(&snapshot.plans);
    (shown != name).then(|| shown.to_string())
}

/// `ocio submit --goal`: the engine's planner proposes a plan for `goal` in the repository
/// around the current directory; it is shown, then submitted once approved (`--yes`, or `y`
/// at the prompt on a terminal). `--print` only shows it.
pub(crate) fn plan_and_submit(
    context: &Context,
    goal: &str,
    yes: bool,
    print: bool,
    json: bool,
) -> Result<(), Failure> {
    let (_, repo) = repository()?;
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        let proposal = client.plan(goal, &repo).await?;
        let origin = repo.join("(planner)");
        if !json || print {
            print_bytes(proposal.toml.as_bytes())?;
        }
        let by = if proposal.session.is_empty() {
            format!("agent {}", proposal.agent)
        } else {
            format!("agent {} (session {})", proposal.agent, proposal.session)
        };
        eprintln!(
            "planned by {by}: {}",
            crate::text::count(proposal.tasks, "task")
        );
        if print {
            return Ok(());
        }
        let approved = yes || (std::io::stdin().is_terminal() && ask("submit this plan? [y/N] "));
        if !approved {
            if json {
                print_json(
                    &json!({ "source": "engine", "proposal": proposal, "submitted": null }),
                )?;
            }
            if std::io::stdin().is_terminal() {
                eprintln!("not submitted");
                return Ok(());
            }
            return Err(Failure::usage(
                "not submitted: nothing can ask you here; pass --yes to approve the plan",
            ));
        }
        let plan = client.submit(&origin, proposal.toml.clone()).await?;
        if json {
            print_json(&json!({ "source": "engine", "proposal": proposal, "submitted": plan }))
        } else {
            print_text(&format!(
                "submitted plan {} as {plan} ({})",
                proposal.name,
                crate::text::count(proposal.tasks, "task")
            ))
        }
    })
}

/// Ask a yes/no question on the terminal.
fn ask(question: &str) -> bool {
    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// The plan a built-in template makes for `goal`, in the git repository around the current
/// directory.
fn template_plan(name: &str, goal: &str) -> Result<(PathBuf, String), Failure> {
    let (here, repo) = repository()?;
    let (template, draft) =
        crate::plan::templates::draft(name, goal, &repo).map_err(Failure::usage)?;
    let origin = here.join(format!("(template {})", template.name));
    let text = draft.to_toml(&origin).map_err(Failure::usage)?;
    Ok((origin, text))
}

fn current_dir() -> Result<PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))
}

/// The current directory and the git repository around it.
fn repository() -> Result<(PathBuf, PathBuf), Failure> {
    let here = current_dir()?;
    let repo = crate::workspace::enclosing_repository(&here).ok_or_else(|| {
            Failure::usage(format!(
                "{} is not inside a git repository, and the plan runs there\n  hint: cd into the repository to work in, or write a plan file naming it",
                here.display()
            ))
        })?;
    Ok((here, repo))
}

/// A one-task plan running `prompt` in the git repository around the current directory.
fn prompt_plan(prompt: &str) -> Result<(PathBuf, String), Failure> {
    let here = current_dir()?;
    crate::plan::prompt::prompt_plan(prompt, &here, jiff::Timestamp::now()).map_err(Failure::usage)
}

pub(crate) fn cancel(context: &Context, id: &str, json: bool) -> Result<(), Failure> {
    task_command(context, id, json, "cancel", |task| Request::Cancel { task })
}

pub(crate) fn retry(context: &Context, id: &str, json: bool) -> Result<(), Failure> {
    task_command(context, id, json, "retry", |task| Request::Retry { task })
}

fn task_command(
    context: &Context,
    id: &str,
    json: bool,
    action: &str,
    request: impl FnOnce(TaskId) -> Request,
) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        let snapshot = client.snapshot().await?;
        let (task, name) = match find_task(tasks_of(&snapshot), id)? {
            Some(found) => found,
            // A task of a plan older than the engine lists, from the database beside it.
            None => stored_task(context, id).await?,
        };
        client.call(request(task)).await?;
        if json {
            print_json(&json!({ "source": "engine", "action": action, "task": task, "key": name }))
        } else {
            // What the engine took on, not that the task is done.
            let outcome = match action {
                // What the engine took on: a running session is stopped at its server (once
                // the server answers, when it does not now), and a task with none is simply
                // cancelled (it said "its session is stopped" of both: hand trial).
                "cancel" => "is cancelled (a running session of it is being stopped at its server) and its dependents are blocked",
                "retry" => "is queued to run again (its blocked dependents are open again)",
                _ => "taken by the engine",
            };
            match name == task.to_string() {
                true => print_text(&format!("{task} {outcome}")),
                false => print_text(&format!("{name} ({task}) {outcome}")),
            }
        }
    })
}

pub(crate) fn approve(
    context: &Context,
    id: &str,
    always: bool,
    reject: bool,
    json: bool,
) -> Result<(), Failure> {
    let decision = match (always, reject) {
        (_, true) => Decision::Reject,
        (true, false) => Decision::Always,
        (false, false) => Decision::Once,
    };
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        client.approve(id, decision, Approver::Cli).await?;
        if json {
            print_json(&json!({ "source": "engine", "request": id, "decision": decision }))
        } else {
            print_text(&format!("request {id}: {}", decision.text()))
        }
    })
}

/// The answers as given on the command line: texts, or with `--option` option numbers
/// (`2`, or `1,3` for several).
pub(crate) fn answers(given: &[String], options: bool) -> Result<Vec<Answer>, Failure> {
    if !options {
        return Ok(given.iter().map(|t| Answer::Text(t.clone())).collect());
    }
    given
        .iter()
        .map(|text| {
            text.split(',')
                .map(|n| n.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map(Answer::Pick)
                .map_err(|_| {
                    Failure::usage(format!(
                        "--option takes option numbers (`2`, or `1,3` for several), not `{text}`\n  hint: leave out --option to answer with a text"
                    ))
                })
        })
        .collect()
}

/// Answer a question of the running engine (`None`: reject it).
pub(crate) fn answer(
    context: &Context,
    id: &str,
    answers: Option<Vec<Answer>>,
    json: bool,
) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        match &answers {
            Some(answers) => client.answer(id, answers.clone(), Approver::Cli).await?,
            None => {
                // `approve` rejects both kinds: make sure this one is a question.
                let snapshot = client.snapshot().await?;
                let ids = snapshot.approvals.iter().map(|a| &a.ask.id);
                let permission = crate::engine::approval::named(ids, id)
                    .ok()
                    .and_then(|key| snapshot.approvals.iter().find(|a| a.ask.id == key))
                    .filter(|a| !a.ask.is_question());
                if let Some(p) = permission {
                    return Err(Failure::usage(format!(
                        "{} is a permission request, not a question\n  hint: ocio approve {id} --reject",
                        p.ask.id
                    )));
                }
                client.approve(id, Decision::Reject, Approver::Cli).await?
            }
        }
        if json {
            print_json(&json!({ "source": "engine", "request": id, "answers": answers, "rejected": answers.is_none() }))
        } else if answers.is_some() {
            print_text(&format!("question {id}: answered"))
        } else {
            print_text(&format!("question {id}: rejected"))
        }
    })
}

/// Tell a running session more (`Some`), or interrupt it (`None`), on the running engine.
pub(crate) fn steer(
    context: &Context,
    wanted: &str,
    text: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        let snapshot = client.snapshot().await?;
        let (session, _) = super::inspect::find_session(context, Some(&snapshot), wanted).await?;
        let id = session.id;
        match &text {
            Some(text) => client.say(id, text).await?,
            None => client.interrupt(id).await?,
        }
        let action = if text.is_some() { "say" } else { "interrupt" };
        if json {
            print_json(
                &json!({ "source": "engine", "action": action, "session": id, "text": text }),
            )
        } else if text.is_some() {
            print_text(&format!("session {id}: message sent"))
        } else {
            print_text(&format!(
                "session {id}: interrupted; it waits for your next message (ocio say {} ...)",
                id.short()
            ))
        }
    })
}

/// Pause (or resume) dispatching on the running engine: running sessions go on either way.
pub(crate) fn pause(context: &Context, paused: bool, json: bool) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        client.pause(paused).await?;
        let action = if paused { "pause" } else { "resume" };
        if json {
            print_json(&json!({ "source": "engine", "action": action, "paused": paused }))
        } else if paused {
            print_text(
                "dispatching paused: running sessions go on, no new one starts until `ocio resume`",
            )
        } else {
            print_text("dispatching resumed")
        }
    })
}

/// Drain (or undrain) an agent of the running engine: a drained agent gets no new session.
pub(crate) fn drain(
    context: &Context,
    agent: &str,
    drain: bool,
    json: bool,
) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let client = require_engine(context).await?;
        client.drain(agent, drain).await?;
        let action = if drain { "drain" } else { "undrain" };
        if json {
            print_json(&json!({ "source": "engine", "action": action, "agent": agent }))
        } else if drain {
            print_text(&format!(
                "agent {agent} drained: its running sessions go on, it gets no new one until `ocio undrain {agent}`"
            ))
        } else {
            print_text(&format!("agent {agent} takes sessions again"))
        }
    })
}

/// The task `text` names among every task the database holds (read beside a running engine,
/// which lists only its recent plans); exit 2 when none does.
async fn stored_task(context: &Context, text: &str) -> Result<(TaskId, String), Failure> {
    let wanted = text.to_string();
    let read = move |txn: &redb::ReadTransaction| {
        let plans = super::plans::of_database(txn)?;
        let tasks = crate::store::query::tasks(txn)?;
        Ok((plans, tasks))
    };
    let (plans, tasks) = super::inspect::beside_engine(context, "tasks", read).await;
    let named = tasks.iter().filter_map(|task| {
        let plan = plans.iter().find(|p| p.id == task.plan)?;
        Some(Named {
            plan: plan.name.as_str(),
            shown: plan.shown(&plans),
            plan_id: plan.id,
            id: task.id,
            key: task.key.as_str(),
        })
    });
    find_task(named, &wanted)?.ok_or_else(|| no_task(&wanted))
}

/// What a command says when no task matches `text`.
fn no_task(text: &str) -> Failure {
    Failure::usage(format!(
        "no task matches `{}`\n  hint: `ocio tasks` lists them; give the id, its last 8 characters, or plan/key",
        text.trim()
    ))
}

/// A task as [`find_task`] takes it: its plan's name, what the plan is called among the
/// others (its branches' name, `<name>-2`, when another has its name), the plan's id, the
/// task's id and key.
pub(crate) struct Named<'a> {
    pub(crate) plan: &'a str,
    pub(crate) shown: &'a str,
    pub(crate) plan_id: crate::domain::PlanId,
    pub(crate) id: TaskId,
    pub(crate) key: &'a str,
}

/// Every task of the snapshot's plans, as [`find_task`] takes them.
pub(crate) fn tasks_of(snapshot: &Snapshot) -> impl Iterator<Item = Named<'_>> {
    snapshot.plans.iter().flat_map(|plan| {
        let shown = plan.shown_name(&snapshot.plans);
        plan.tasks.iter().map(move |task| Named {
            plan: plan.name.as_str(),
            shown,
            plan_id: plan.id,
            id: task.id,
            key: task.key.as_str(),
        })
    })
}

/// The task `text` names among `tasks`: its full id, the last 8 characters of it, its key,
/// or `plan/key` (the plan's name, what it is called among the others, or its id, whole or
/// its last 8 characters), as the id and `plan/key`; `None` when none matches.
pub(crate) fn find_task<'a>(
    tasks: impl IntoIterator<Item = Named<'a>>,
    text: &str,
) -> Result<Option<(TaskId, String)>, Failure> {
    let wanted = text.trim();
    let exact: Option<TaskId> = wanted.parse().ok();
    let lower = wanted.to_ascii_lowercase();
    let (plan_part, key_part) = wanted.rsplit_once('/').unwrap_or(("", wanted));
    let plan_id_is = |id: crate::domain::PlanId| {
        !plan_part.is_empty()
            && (id.to_string().eq_ignore_ascii_case(plan_part)
                || id.short().eq_ignore_ascii_case(plan_part))
    };
    // Named as shown first: `restart/x` is the plan called `restart` when its twin is
    // `restart-3`, though both have that name.
    let (shown, named): (Vec<Named>, Vec<Named>) = tasks
        .into_iter()
        .filter(|t| {
            Some(t.id) == exact
                || t.id.short() == lower
                || t.key == wanted
                || (t.key == key_part
                    && (t.plan == plan_part || t.shown == plan_part || plan_id_is(t.plan_id)))
        })
        .partition(|t| {
            t.key != key_part
                || t.shown == plan_part
                || plan_part.is_empty()
                || plan_id_is(t.plan_id)
        });
    let found: Vec<(TaskId, String)> = if shown.is_empty() { named } else { shown }
        .into_iter()
        .map(|t| (t.id, format!("{}/{}", t.shown, t.key)))
        .collect();
    match (found.as_slice(), exact) {
        ([one], _) => Ok(Some(one.clone())),
        ([], Some(id)) => Ok(Some((id, id.to_string()))),
        ([], None) => Ok(None),
        (many, _) => Err(Failure {
            code: exit::USAGE,
            message: format!(
                "`{wanted}` matches {} tasks: {}\n  hint: name one as written here (plan/key) or by its id",
                many.len(),
                many.iter()
                    .map(|(id, name)| format!("{name} ({})", id.short()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod find_tests {
    use super::*;

    /// A plan file submitted twice: `plan/key` is ambiguous by the name, and each task is named
    /// by what its plan is called among the others (its branches' name).
    #[test]
    fn tasks_of_two_plans_of_one_name_are_named_by_their_branches_name() {
        let task = |n: u128, shown| Named {
            plan: "restart",
            shown,
            plan_id: crate::domain::PlanId::from_u128(n),
            id: TaskId::from_u128(n),
            key: "slow2",
        };
        let tasks = || [task(1, "restart"), task(2, "restart-3")];
        let found = |wanted| find_task(tasks(), wanted).ok().flatten();
        assert_eq!(
            found("restart-3/slow2"),
            Some((TaskId::from_u128(2), "restart-3/slow2".into()))
        );
        assert_eq!(
            found("restart/slow2"),
            Some((TaskId::from_u128(1), "restart/slow2".into()))
        );
        assert_eq!(found("restart-4/slow2"), None);
        // Two plans called alike where they are not told apart (read from the database).
        let twins = [task(1, "restart"), task(2, "restart")];
        let ambiguous = find_task(twins, "restart/slow2").unwrap_err();
        assert!(
            ambiguous.message.contains("matches 2 tasks"),
            "{}",
            ambiguous.message
        );
        // ...which their plans' ids tell apart, whole or short, as ocio prints them or not
        // (`plan/key` took only a plan's name).
        let second = crate::domain::PlanId::from_u128(2);
        let twins_again = || [task(1, "restart"), task(2, "restart")];
        let by_id = |plan: String| {
            find_task(twins_again(), &format!("{plan}/slow2"))
                .ok()
                .flatten()
        };
        for plan in [
            second.to_string(),
            second.short(),
            second.short().to_uppercase(),
        ] {
            assert_eq!(
                by_id(plan.clone()).map(|(id, _)| id),
                Some(TaskId::from_u128(2)),
                "{plan}"
            );
        }
    }
}
