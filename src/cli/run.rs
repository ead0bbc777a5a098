//! `ocio run PLAN` (also `ocio run PLAN --headless`): host the engine in this process, submit a
//! plan file and run it to the end; and `ocio --headless`: host the engine until a signal.
//! stdout gets JSON Lines (see `events.rs`), ending with `{"type":"run.finished",...}`.
//! Exit 0 when every task is done, 1 when one failed or was cancelled or the engine stopped by
//! itself (a store write failed: `{"type":"engine.failed",...}`), 2 for a bad plan or config,
//! 130 on SIGINT/SIGTERM/SIGHUP (state is saved; the next start resumes it).

use std::path::Path;

use jiff::Timestamp;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::events::{Output, Signals, Totals};
use super::{Context, Failure, Flags, exit};
use crate::domain::PlanId;
use crate::engine::EngineApi;
use crate::engine::{EngineError, EngineEvent};
use crate::host::{Host, HostOptions};
use crate::plan::PlanFile;

pub(crate) fn run(context: &Context, flags: &Flags, plan_path: &Path) -> Result<(), Failure> {
    let plan = PlanFile::load(plan_path).map_err(Failure::usage)?;
    needs_agents(context)?;
    let options = host_options(flags)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let signals = Signals::install()?;
        let mut host = Host::start(&context.paths, &context.config.config, options).await?;
        let output = Output::new(!flags.no_activity);
        output.started(&host);
        let result = follow(&mut host, &output, signals, Some(plan)).await;
        let left = host.shutdown().await;
        super::with_left(result, &left)
    })
}

/// `ocio --headless`: the engine, its socket and metrics until a signal; exit 130 then.
pub(crate) fn headless(context: &Context, flags: &Flags) -> Result<(), Failure> {
    let options = host_options(flags)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let signals = Signals::install()?;
        let mut host = Host::start(&context.paths, &context.config.config, options).await?;
        let output = Output::new(!flags.no_activity);
        output.started(&host);
        let result = follow(&mut host, &output, signals, None).await;
        let left = host.shutdown().await;
        super::with_left(result, &left)
    })
}

fn needs_agents(context: &Context) -> Result<(), Failure> {
    let config = &context.config.config;
    if config.agents.is_empty() && config.fleets.is_empty() {
        return Err(Failure::usage(format!(
            "no agents are configured ({})\nhint: add an [[agents]] (or [[fleets]]) entry to the config, e.g. a simulated one:\n  [[agents]]\n  name = \"sim\"\n  kind = \"simulated\"\n  duration = \"2s\"",
            context.config.source
        )));
    }
    Ok(())
}

pub(super) fn host_options(flags: &Flags) -> Result<HostOptions, Failure> {
    Ok(HostOptions {
        listen: true,
        metrics: flags.metrics()?,
    })
}

/// Print events until `plan` (when given) finishes, a signal arrives or the engine stops.
async fn follow(
    host: &mut Host,
    output: &Output,
    mut signals: Signals,
    plan: Option<PlanFile>,
) -> Result<(), Failure> {
    let engine = host.engine();
    let mut events = host.events();
    let plan_id: Option<PlanId> = match plan {
        Some(plan) => Some(match unfinished(&engine, &plan).await {
            Some(id) => {
                output.note(json!({ "type": "run.resumed", "at": Timestamp::now(), "plan": id, "name": plan.name }));
                id
            }
            None => engine.submit_plan(plan).await.map_err(engine_failure)?,
        }),
        None => None,
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(EngineEvent::EngineFailed { error }) => return Err(failed(host, output, &error)),
                Ok(event) => {
                    output.event(&event);
                    if let EngineEvent::PlanFinished { plan, done, failed, blocked, cancelled, .. } = event
                        && Some(plan) == plan_id
                    {
                        let totals = Totals { done, failed, blocked, cancelled, unfinished: 0 };
                        output.note(totals.finished(plan_id, false));
                        return totals.outcome();
                    }
                }
                Err(RecvError::Lagged(missed)) => output.note(json!({ "type": "events.lagged", "at": Timestamp::now(), "missed": missed })),
                Err(RecvError::Closed) => return Err(Failure { code: exit::FAILED, message: "the engine stopped unexpectedly; see the log".into() }),
            },
            error = engine.failed() => return Err(failed(host, output, &error)),
            signal = signals.recv() => {
                output.note(match engine.snapshot().await {
                    Ok(snapshot) => Totals::of(&snapshot, plan_id).finished(plan_id, true),
                    Err(e) => Totals::unknown(plan_id, &e.to_string()),
                });
                return Err(Failure {
                    code: exit::INTERRUPTED,
                    message: format!("{signal}: stopped; the state is saved and the next start resumes it (sessions on OpenCode servers keep running and are re-attached; simulated sessions run again){}", match plan_id {
                        Some(_) => "; `ocio run` of the same plan file follows it to the end",
                        None => "",
                    }),
                });
            }
        }
    }
}

/// The plan of `plan`'s name and repository that an earlier run left with work to come (tasks
/// pending, ready or running): `ocio run` of the same file after an interrupt follows it to the
/// end instead of submitting it a second time, which ran every task twice beside the first
/// (hand trial). A plan of the name at rest (done, or failed and blocked) is run anew.
async fn unfinished(engine: &crate::engine::EngineHandle, plan: &PlanFile) -> Option<PlanId> {
    use crate::domain::TaskStatus;
    let snapshot = engine.snapshot().await.ok()?;
    let same_dir = |a: &Path, b: &Path| {
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        real(a) == real(b)
    };
    let repo = plan.repo_path();
    snapshot
        .plans
        .iter()
        .rev()
        .find(|p| {
            p.name == plan.name
                && same_dir(&p.repo, &repo)
                && p.tasks.iter().any(|t| {
                    matches!(
                        t.status,
                        TaskStatus::Pending | TaskStatus::Ready | TaskStatus::Running
                    )
                })
        })
        .map(|p| p.id)
}

/// The engine stopped by itself: an `engine.failed` line, and the failure to print on stderr
/// (what failed, the database, what to do) with exit 1.
fn failed(host: &Host, output: &Output, error: &str) -> Failure {
    let database = &host.info().database;
    output.note(json!({
        "type": "engine.failed",
        "at": Timestamp::now(),
        "error": error,
        "database": database,
    }));
    Failure {
        code: exit::FAILED,
        message: super::engine_failed(error, database),
    }
}

fn engine_failure(e: EngineError) -> Failure {
    let code = match e {
        EngineError::Plan(_) | EngineError::Graph(_) => exit::USAGE,
        _ => exit::FAILED,
    };
    Failure {
        code,
        message: e.to_string(),
    }
}
