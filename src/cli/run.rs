//! `ocio run PLAN`: submit a plan file to an engine hosted by this process and run it to the
//! end. stdout gets one JSON object per engine event (JSON Lines), ending with
//! `{"type":"run.finished","ok":...}`; a short human account goes to stderr when it is a
//! terminal. Exit 0 when every task is done, 1 when one failed or was cancelled, 2 for a bad
//! plan or config, 130 when interrupted (state is saved; the next start resumes it).

use std::io::{IsTerminal, Write};
use std::path::Path;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::{Context, Failure, exit};
use crate::domain::Transition;
use crate::engine::approval::ApprovalPolicy;
use crate::engine::{EngineError, EngineEvent, EngineHandle, EngineOptions, agents};
use crate::plan::PlanFile;
use crate::store::{Store, StoreOptions};

pub fn run(context: &Context, plan_path: &Path) -> Result<(), Failure> {
    let plan = PlanFile::load(plan_path).map_err(Failure::usage)?;
    if context.config.config.agents.is_empty() {
        return Err(Failure::usage(format!(
            "no agents are configured ({})\nhint: add an [[agents]] entry to the config, e.g. a simulated one:\n  [[agents]]\n  name = \"sim\"\n  kind = \"simulated\"\n  duration = \"2s\"",
            context.config.source
        )));
    }
    let runtime = super::runtime()?;
    runtime.block_on(drive(context, plan))
}

async fn drive(context: &Context, plan: PlanFile) -> Result<(), Failure> {
    let store = Store::open(&context.paths.db_file, StoreOptions::default())?;
    let (specs, servers) = agents::from_config(&context.config.config)
        .await
        .map_err(|e| Failure {
            code: exit::FAILED,
            message: e.to_string(),
        })?;
    let engine_config = &context.config.config.engine;
    let options = EngineOptions {
        max_parallel: engine_config.max_parallel,
        approvals: ApprovalPolicy::from_config(engine_config),
        ..EngineOptions::default()
    };
    let result = async {
        let engine = EngineHandle::start(store.clone(), specs, options).await.map_err(engine_failure)?;
        let mut events = engine.subscribe();
        let plan_id = engine.submit(plan).await.map_err(engine_failure)?;
        let human = std::io::stderr().is_terminal();
        let outcome = loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => {
                        emit(&event);
                        if human {
                            narrate(&event);
                        }
                        if let EngineEvent::PlanFinished { plan, ok, done, failed, blocked, cancelled, .. } = event
                            && plan == plan_id
                        {
                            line(json!({ "type": "run.finished", "at": Timestamp::now(), "plan": plan, "ok": ok, "done": done, "failed": failed, "blocked": blocked, "cancelled": cancelled }));
                            break if ok { Ok(()) } else { Err(Failure { code: exit::FAILED, message: format!("plan finished with {failed} failed, {blocked} blocked and {cancelled} cancelled tasks") }) };
                        }
                    }
                    Err(RecvError::Lagged(missed)) => line(json!({ "type": "events.lagged", "at": Timestamp::now(), "missed": missed })),
                    Err(RecvError::Closed) => break Err(Failure { code: exit::FAILED, message: "the engine stopped unexpectedly; see the log".into() }),
                },
                _ = tokio::signal::ctrl_c() => {
                    line(json!({ "type": "run.finished", "at": Timestamp::now(), "plan": plan_id, "ok": false, "interrupted": true }));
                    break Err(Failure { code: exit::INTERRUPTED, message: "interrupted; the plan's state is saved and the next start resumes it".into() });
                }
            }
        };
        let _ = engine.shutdown().await;
        outcome
    }
    .await;
    servers.shutdown().await;
    store.close().await;
    result
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

/// One JSON Lines record: the event, with `at` for those that carry no time of their own.
fn emit(event: &EngineEvent) {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.entry("at").or_insert_with(|| json!(Timestamp::now()));
    }
    line(value);
}

fn line(value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, &value);
    let _ = writeln!(out);
    let _ = out.flush();
}

fn narrate(event: &EngineEvent) {
    let text = match event {
        EngineEvent::PlanSubmitted { name, tasks, .. } => format!("plan {name}: {tasks} tasks"),
        EngineEvent::Dispatched {
            key,
            agent,
            attempt,
            ..
        } => format!("  {key} started on {agent} (attempt {attempt})"),
        EngineEvent::Transition(e) => match &e.transition {
            Transition::Task { key, to, .. } => format!(
                "  {key} {to}{}",
                if e.cause.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.cause)
                }
            ),
            _ => return,
        },
        EngineEvent::PlanFinished {
            name,
            ok,
            done,
            failed,
            blocked,
            cancelled,
            ..
        } => {
            format!(
                "plan {name} {}: {done} done, {failed} failed, {blocked} blocked, {cancelled} cancelled",
                if *ok { "succeeded" } else { "did not succeed" }
            )
        }
        EngineEvent::ApprovalRequested {
            task,
            request,
            permission,
            patterns,
            ..
        } => {
            format!(
                "  {task} asks {permission} ({}); answer request {request}",
                patterns.join(", ")
            )
        }
        EngineEvent::Recovered {
            sessions,
            tasks,
            resumed,
        } => format!(
            "recovered: {resumed} sessions re-attached, {sessions} lost runs settled, {tasks} tasks to run again"
        ),
        EngineEvent::Paused { paused: true } => "dispatching paused".into(),
        EngineEvent::Paused { paused: false } => "dispatching resumed".into(),
        EngineEvent::Activity { .. } => return,
        EngineEvent::IntegrationReady { branch, .. } => format!("integration branch {branch}"),
        EngineEvent::TaskHeld { key, file, .. } => {
            format!("  {key} held: a running session touches {file}")
        }
        EngineEvent::Overlap { path, with, .. } => {
            format!("  overlap: {} sessions edit {path}", with.len() + 1)
        }
        EngineEvent::Merged { key, commit, .. } => {
            format!("  {key} merged ({})", commit.get(..8).unwrap_or(commit))
        }
        EngineEvent::MergeConflict {
            key, files, policy, ..
        } => format!(
            "  {key}: merge conflict in {} ({})",
            files.join(", "),
            policy.text()
        ),
    };
    eprintln!("{text}");
}
