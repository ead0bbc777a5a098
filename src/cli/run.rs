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
        let mark = RunMark::of(&context.paths.db_file, plan_path);
        let result = follow(&mut host, &output, signals, Some((plan, mark))).await;
        let left = host.shutdown().await;
        super::with_left(result, &left)
    })
}

/// The plan `ocio run` of one plan file submitted, noted beside the database (`runs/`) until the
/// run has seen it end: the next `ocio run` of the file after an interrupt (a signal, a `kill
/// -9`) follows that plan, even one that ended meanwhile (a restart's recovery may end it),
/// instead of submitting it a second time.
struct RunMark {
    path: std::path::PathBuf,
}

impl RunMark {
    fn of(db: &Path, plan_file: &Path) -> Self {
        let file = std::fs::canonicalize(plan_file).unwrap_or_else(|_| plan_file.to_path_buf());
        let hash = xxhash_rust::xxh3::xxh3_64(file.as_os_str().as_encoded_bytes());
        let name = db.file_name().unwrap_or(db.as_os_str());
        let dir = db
            .parent()
            .unwrap_or(Path::new("."))
            .join("runs")
            .join(name);
        Self {
            path: dir.join(format!("{hash:016x}")),
        }
    }

    /// The plan an interrupted run of the file submitted, if one did.
    fn plan(&self) -> Option<PlanId> {
        std::fs::read_to_string(&self.path)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn note(&self, plan: PlanId) {
        let written = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&self.path, format!("{plan}\n")));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot note the plan this run follows");
        }
    }

    fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
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
    plan: Option<(PlanFile, RunMark)>,
) -> Result<(), Failure> {
    let engine = host.engine();
    let mut events = host.events();
    let (plan_id, mark) = match plan {
        Some((plan, mark)) => {
            let id = match resumed(&engine, &plan, &mark).await {
                Some(Resumed { id, at_rest }) => {
                    output.note(json!({ "type": "run.resumed", "at": Timestamp::now(), "plan": id, "name": plan.name }));
                    eprintln!(
                        "ocio run: following plan {} ({}), which an interrupted run of this file submitted; the file as it is now runs once that has ended",
                        plan.name,
                        id.short()
                    );
                    if let Some(totals) = at_rest {
                        mark.clear();
                        output.note(totals.finished(Some(id), false));
                        return totals.outcome();
                    }
                    id
                }
                None => {
                    let id = engine.submit_plan(plan).await.map_err(engine_failure)?;
                    mark.note(id);
                    id
                }
            };
            (Some(id), Some(mark))
        }
        None => (None, None),
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
                        if let Some(mark) = &mark {
                            mark.clear();
                        }
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

/// The plan an earlier `ocio run` of the file left to follow: the one its mark names, if the
/// engine lists it (with its totals when it is at rest already); else one of the file's name
/// and repository with work to come (tasks pending, ready or running), as a run before the
/// marks left it. Submitting it again ran every task twice, side by side (hand trial).
async fn resumed(
    engine: &crate::engine::EngineHandle,
    plan: &PlanFile,
    mark: &RunMark,
) -> Option<Resumed> {
    use crate::domain::TaskStatus;
    let snapshot = engine.snapshot().await.ok()?;
    let to_come = |p: &crate::engine::view::PlanView| {
        p.tasks.iter().any(|t| {
            matches!(
                t.status,
                TaskStatus::Pending | TaskStatus::Ready | TaskStatus::Running
            )
        })
    };
    if let Some(marked) = mark.plan()
        && let Some(found) = snapshot.plans.iter().find(|p| p.id == marked)
    {
        let at_rest = (!to_come(found)).then(|| Totals::of(&snapshot, Some(marked)));
        return Some(Resumed {
            id: marked,
            at_rest,
        });
    }
    let same_dir = |a: &Path, b: &Path| {
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        real(a) == real(b)
    };
    let repo = plan.repo_path();
    let found = snapshot
        .plans
        .iter()
        .rev()
        .find(|p| p.name == plan.name && same_dir(&p.repo, &repo) && to_come(p))?;
    Some(Resumed {
        id: found.id,
        at_rest: None,
    })
}

/// The plan a run follows instead of submitting one, and its totals when it has ended already.
struct Resumed {
    id: PlanId,
    at_rest: Option<Totals>,
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
