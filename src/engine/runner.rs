//! The port between the engine and whatever runs a session: a [`Runner`] takes a [`Job`] and
//! reports how it ended. Two implementations: the in-process simulator here, and OpenCode
//! servers (`crate::opencode::runner`, which depends on this module, never the other way).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use jiff::SignedDuration;
use tokio::sync::{mpsc, oneshot};

use super::approval::{Ask, Decision};
use super::view::{Activity, Entry};
use crate::config::SimulationConfig;
use crate::domain::{AgentStatus, RemoteSession, SessionId, Usage};

/// Tells the engine where a run lives on a server. The engine records it durably (and a
/// checkpoint) before `remote` returns, so a restarted engine finds the run again instead of
/// starting a second one for the same attempt.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    pub(super) tx: mpsc::Sender<RemoteReport>,
}

/// What a run tells the engine while it goes on.
#[derive(Debug)]
pub(super) enum RemoteReport {
    /// Where the run lives; `durable` fires once that is recorded.
    Remote {
        session: SessionId,
        remote: RemoteSession,
        durable: oneshot::Sender<()>,
    },
    /// The session asks for a permission; `decision` carries the answer.
    Permission {
        session: SessionId,
        ask: Ask,
        decision: oneshot::Sender<Decision>,
    },
    /// The session did something (for the transcript and live usage).
    Activity { session: SessionId, entry: Entry },
}

impl Reporter {
    /// `false` when the engine could not record it (it is stopping): do not go on.
    pub(crate) async fn remote(&self, session: SessionId, remote: RemoteSession) -> bool {
        let (durable, done) = oneshot::channel();
        if self
            .tx
            .send(RemoteReport::Remote {
                session,
                remote,
                durable,
            })
            .await
            .is_err()
        {
            return false;
        }
        done.await.is_ok()
    }

    /// Tell the engine what the session is doing. Never waits: when the engine is behind,
    /// the entry is dropped (the transcript stays on the server; the outcome still counts).
    pub(crate) fn activity(&self, session: SessionId, activity: Activity, part: Option<String>) {
        let entry = Entry {
            at: jiff::Timestamp::now(),
            part,
            activity,
        };
        let _ = self.tx.try_send(RemoteReport::Activity { session, entry });
    }

    /// Ask the engine (its policy or the operator) about a permission request. `None` when
    /// the engine is gone or the run is being stopped.
    pub(crate) async fn permission(&self, session: SessionId, ask: Ask) -> Option<Decision> {
        let (decision, answer) = oneshot::channel();
        self.tx
            .send(RemoteReport::Permission {
                session,
                ask,
                decision,
            })
            .await
            .ok()?;
        answer.await.ok()
    }
}

/// One attempt at one task, as the runner needs it.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) reporter: Reporter,
    pub(crate) session: SessionId,
    /// `plan/task #attempt`, findable in OpenCode's own UI.
    pub(crate) title: String,
    pub(crate) prompt: String,
    pub(crate) task_key: String,
    pub(crate) attempt: u32,
    pub(crate) directory: PathBuf,
    /// The attempt was started before a restart that came before its remote session was
    /// recorded: the runner looks for that session (by its title) and takes it up rather than
    /// making a second one.
    pub(crate) adopt: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed {
        result: Option<String>,
        usage: Usage,
    },
    /// `agent_fault`: the agent (not the task) is to blame, so a retry goes elsewhere.
    Failed {
        error: String,
        agent_fault: bool,
        usage: Usage,
    },
    /// Stopped on request (cancel or time limit); the engine knows which.
    Stopped,
    /// Not the task's failure: the run was lost with its server (unreachable for too long, or
    /// it lost the session). The task runs again (another agent first) without spending a
    /// retry; `unreachable` marks the agent offline at once.
    Lost { error: String, unreachable: bool },
}

pub(crate) type RunFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
pub(crate) type ProbeFuture = Pin<Box<dyn Future<Output = Health> + Send>>;

/// What a health probe found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Online, degraded or offline.
    pub(crate) status: AgentStatus,
    pub(crate) detail: String,
}

/// Runs sessions for one agent. `stop` fires when the engine wants the run ended early; the
/// runner must then stop the remote work and return `Outcome::Stopped`.
pub trait Runner: Send + Sync {
    fn run(&self, job: Job, stop: oneshot::Receiver<()>) -> RunFuture;

    /// Follow a run a previous engine started at `remote` to its end, without starting it
    /// again. `None`: this runner cannot (its runs die with the engine).
    fn resume(
        &self,
        job: Job,
        remote: RemoteSession,
        stop: oneshot::Receiver<()>,
    ) -> Option<RunFuture> {
        let _ = (job, remote, stop);
        None
    }

    /// Stop, as well as can be, the remote session of a run that the engine will not follow
    /// again (it cannot re-attach it after a restart): so it never works beside the task's
    /// next attempt. `None`: nothing to stop.
    fn abandon(&self, remote: RemoteSession) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let _ = remote;
        None
    }

    /// Whether a run started by an engine that stopped before recording its remote session
    /// can be run again as the same attempt, taking up that session if it exists (`run` with
    /// `job.adopt`). `false`: such a run is lost with the engine.
    fn adopts(&self) -> bool {
        false
    }

    /// Check whatever runs the sessions. `None`: nothing to check (always online).
    fn probe(&self) -> Option<ProbeFuture> {
        None
    }

    /// Ask this agent for a plan towards a goal (a planning session answering with structured
    /// output). `None`: this runner cannot plan.
    fn plan(&self, request: PlanRequest) -> Option<PlanFuture> {
        let _ = request;
        None
    }
}

/// What a planner is asked: a goal, the repository it is for, and the capabilities the agents
/// offer (the only ones its tasks may need).
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub(crate) goal: String,
    pub(crate) repo: std::path::PathBuf,
    pub(crate) capabilities: std::collections::BTreeSet<String>,
}

/// A planner's answer, checked like a plan file: its text, or why there is none.
pub(crate) type PlanFuture = Pin<Box<dyn Future<Output = Result<Proposal, String>> + Send>>;

/// A plan a planner proposes, for the operator to approve before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Proposal {
    pub(crate) name: String,
    /// The plan as plan-file text: what is shown, and what is submitted once approved.
    pub(crate) toml: String,
    pub(crate) tasks: usize,
    /// The agent that planned it, and its planning session (empty for simulated agents).
    pub(crate) agent: String,
    pub(crate) session: String,
}

/// The in-process simulator: a run takes `duration` and fails for a deterministic share of
/// attempts (by seed, task and attempt), for dry runs, demos and scale tests. A share of runs
/// (`ask_rate`) asks once for a permission outside its directory, as a real session might.
///
/// The prompt may direct a run, one directive per line (leading spaces allowed), so tests and
/// demos get real edits from simulated sessions:
/// - `SIM-WRITE <path> <content>`: at the start of the run, write `content` (`\n` for a line
///   break) to `path` relative to the job's directory (creating directories), reported as a
///   `write` tool call titled `path`. Absolute paths and `..` are refused (the run fails).
/// - `SIM-SHELL-WRITE <path> <content>`: the same write, reported as a `bash` call, as a shell
///   command's edit would be: no event names the file (only a look at the worktree finds it).
/// - `SIM-PUBLISH name=value`: the answer ends with the line `OCIO-PUBLISH name=value`.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub config: SimulationConfig,
}

impl Simulated {
    /// Whether this attempt fails: a stable hash of (seed, task, attempt) against the rate.
    pub(crate) fn fails(&self, task_key: &str, attempt: u32) -> bool {
        self.config.failure_rate > 0.0 && self.roll(0, task_key, attempt) < self.config.failure_rate
    }

    /// Whether this attempt asks for a permission outside its directory once.
    pub(crate) fn asks(&self, task_key: &str, attempt: u32) -> bool {
        self.config.ask_rate > 0.0 && self.roll(1, task_key, attempt) < self.config.ask_rate
    }

    /// A stable fraction in [0, 1) for (seed, salt, task, attempt).
    fn roll(&self, salt: u8, task_key: &str, attempt: u32) -> f64 {
        // FNV-1a: stable across runs and platforms, unlike std's RandomState.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let seed = self.config.seed.to_le_bytes();
        let attempt = attempt.to_le_bytes();
        let salt = [salt];
        let salted: &[u8] = if salt[0] == 0 { &[] } else { &salt };
        for byte in seed
            .iter()
            .chain(salted)
            .chain(task_key.as_bytes())
            .chain(attempt.iter())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // Top 53 bits as a fraction in [0, 1).
        (hash >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Runner for Simulated {
    fn plan(&self, request: PlanRequest) -> Option<PlanFuture> {
        Some(Box::pin(async move { simulated_plan(&request) }))
    }

    fn run(&self, job: Job, mut stop: oneshot::Receiver<()>) -> RunFuture {
        let fails = self.fails(&job.task_key, job.attempt);
        let asks = self.asks(&job.task_key, job.attempt);
        let duration = self.config.duration;
        let directives = Directives::read(&job.prompt);
        Box::pin(async move {
            let usage = Usage {
                input_tokens: 1000,
                output_tokens: 200,
                ..Usage::default()
            };
            // A run in three beats, each told as activity, so every pane has something to show.
            let beat = to_std(duration) / 3;
            let report = |activity: Activity, part: &str| {
                job.reporter
                    .activity(job.session, activity, Some(part.to_string()));
            };
            let file = format!("src/{}.rs", job.task_key.replace(['/', ' '], "_"));
            report(
                Activity::Text {
                    text: format!("Looking at what {} needs (simulated).", job.task_key),
                },
                "text-1",
            );
            for (n, write) in directives.writes.iter().enumerate() {
                if let Err(error) = write_in(&job.directory, &write.path, &write.content) {
                    return Outcome::Failed {
                        error,
                        agent_fault: false,
                        usage: Usage::default(),
                    };
                }
                let (tool, title) = if write.shell {
                    ("bash", format!("sh -c 'cat > {}'", write.path))
                } else {
                    ("write", write.path.clone())
                };
                report(
                    Activity::Tool {
                        tool: tool.into(),
                        status: "completed".into(),
                        title,
                    },
                    &format!("write-{n}"),
                );
            }
            if asks {
                tokio::select! {
                    () = tokio::time::sleep(beat / 2) => {}
                    _ = &mut stop => return Outcome::Stopped,
                }
                let ask = Ask {
                    id: format!("sim-{}", job.session),
                    permission: "external_directory".into(),
                    patterns: vec!["/var/cache/ocio-sim/*".into()],
                };
                let answer = tokio::select! {
                    answer = job.reporter.permission(job.session, ask) => answer,
                    _ = &mut stop => return Outcome::Stopped,
                };
                let status = match answer {
                    None => return Outcome::Stopped,
                    Some(Decision::Reject) => "error",
                    Some(_) => "completed",
                };
                report(
                    Activity::Tool {
                        tool: "bash".into(),
                        status: status.into(),
                        title: "ls /var/cache/ocio-sim".into(),
                    },
                    "tool-0",
                );
            }
            for (n, status) in ["running", "completed"].into_iter().enumerate() {
                tokio::select! {
                    () = tokio::time::sleep(beat) => {}
                    _ = &mut stop => return Outcome::Stopped,
                }
                // A run told what to write did that; only the others pretend to edit a file
                // (which they do not write, so it must not stand for a real one).
                if directives.writes.is_empty() {
                    report(
                        Activity::Tool {
                            tool: "edit".into(),
                            status: status.into(),
                            title: file.clone(),
                        },
                        "tool-1",
                    );
                }
                if n == 1 {
                    let half = Usage {
                        input_tokens: usage.input_tokens / 2,
                        output_tokens: usage.output_tokens / 2,
                        ..Usage::default()
                    };
                    report(Activity::Step { usage: half }, "step-1");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(beat) => {}
                _ = &mut stop => return Outcome::Stopped,
            }
            if fails {
                Outcome::Failed {
                    error: format!(
                        "simulated failure of {} (attempt {})",
                        job.task_key, job.attempt
                    ),
                    agent_fault: false,
                    usage,
                }
            } else {
                let mut result = format!("simulated result of {}", job.task_key);
                for line in &directives.publish {
                    result.push_str("\nOCIO-PUBLISH ");
                    result.push_str(line);
                }
                report(
                    Activity::Text {
                        text: result.clone(),
                    },
                    "text-2",
                );
                Outcome::Completed {
                    result: Some(result),
                    usage,
                }
            }
        })
    }
}

/// What a prompt tells a simulated run to do (see [`Simulated`]).
#[derive(Debug, Default, PartialEq)]
struct Directives {
    writes: Vec<SimWrite>,
    /// `name=value`
    publish: Vec<String>,
}

/// A file a simulated run writes.
#[derive(Debug, PartialEq)]
struct SimWrite {
    /// Relative to the job's directory.
    path: String,
    content: String,
    /// Reported as a shell command rather than a `write` call.
    shell: bool,
}

impl Directives {
    fn read(prompt: &str) -> Self {
        let mut directives = Self::default();
        for line in prompt.lines().map(str::trim_start) {
            let write = match line.strip_prefix("SIM-WRITE ") {
                Some(rest) => Some((rest, false)),
                None => line
                    .strip_prefix("SIM-SHELL-WRITE ")
                    .map(|rest| (rest, true)),
            };
            if let Some((rest, shell)) = write {
                let (path, content) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
                directives.writes.push(SimWrite {
                    path: path.to_string(),
                    content: content.replace("\\n", "\n"),
                    shell,
                });
            } else if let Some(rest) = line.strip_prefix("SIM-PUBLISH ") {
                directives.publish.push(rest.trim().to_string());
            }
        }
        directives
    }
}

/// Writes `content` to `path` under `directory`; an error text when it cannot.
fn write_in(directory: &std::path::Path, path: &str, content: &str) -> Result<(), String> {
    let relative = std::path::Path::new(path);
    let inside = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside || path.is_empty() {
        return Err(format!(
            "simulated write to \"{path}\" refused: give a path inside the job's directory"
        ));
    }
    let target = directory.join(relative);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("simulated write: cannot make {}: {e}", parent.display()))?;
    }
    std::fs::write(&target, content)
        .map_err(|e| format!("simulated write: cannot write {}: {e}", target.display()))
}

/// The simulator's planner: analyze, implement, test, review, each needing a capability the
/// agents offer when one fits (`plan`, `code`, `test`, `review`), checked like any planner's
/// answer. Deterministic, for demos and tests.
pub(crate) fn simulated_plan(request: &PlanRequest) -> Result<Proposal, String> {
    let offered = |cap: &str| {
        if request.capabilities.contains(cap) {
            vec![cap.to_string()]
        } else {
            Vec::new()
        }
    };
    let answer = serde_json::json!({ "tasks": [
        { "id": "analyze", "prompt": format!("Study the code for: {}. Answer with the plan of change.", request.goal), "capabilities": offered("plan") },
        { "id": "implement", "prompt": "Make the change: {{tasks.analyze.summary}}", "needs": ["analyze"], "capabilities": offered("code") },
        { "id": "test", "prompt": "Test the change: {{tasks.implement.summary}}", "needs": ["implement"], "capabilities": offered("test") },
        { "id": "review", "prompt": "Review the change and its tests.", "needs": ["test"], "capabilities": offered("review") },
    ]});
    let planner = crate::plan::planner::PlannerRequest {
        goal: &request.goal,
        repo: &request.repo,
        name: None,
        capabilities: &request.capabilities,
        model: None,
        opencode_agent: None,
    };
    let (plan, toml) =
        crate::plan::planner::plan_from_answer(&answer, &planner).map_err(|e| e.to_string())?;
    Ok(Proposal {
        name: plan.name.clone(),
        tasks: plan.tasks.len(),
        toml,
        agent: String::new(),
        session: String::new(),
    })
}

pub(crate) fn to_std(d: SignedDuration) -> std::time::Duration {
    std::time::Duration::try_from(d).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(rate: f64, seed: u64) -> Simulated {
        Simulated {
            config: SimulationConfig {
                duration: SignedDuration::ZERO,
                failure_rate: rate,
                seed,
                ask_rate: 0.0,
            },
        }
    }

    #[test]
    fn failures_are_deterministic_and_near_the_rate() {
        let s = sim(0.25, 7);
        let failed = (0..4000).filter(|i| s.fails(&format!("t{i}"), 1)).count();
        assert!((800..1200).contains(&failed), "{failed} of 4000 at 25%");
        assert_eq!(s.fails("t1", 1), sim(0.25, 7).fails("t1", 1));
        assert!(!sim(0.0, 7).fails("t1", 1));
        assert!(sim(1.0, 7).fails("t1", 1));
    }

    #[test]
    fn prompts_direct_writes_and_publications() {
        let d = Directives::read(
            "Do it.\n  SIM-WRITE src/a.txt one\\ntwo\nSIM-PUBLISH port=8080\nSIM-WRITE empty.txt\nSIM-SHELL-WRITE gen.rs x",
        );
        let write = |path: &str, content: &str, shell: bool| SimWrite {
            path: path.into(),
            content: content.into(),
            shell,
        };
        assert_eq!(
            d.writes,
            [
                write("src/a.txt", "one\ntwo", false),
                write("empty.txt", "", false),
                write("gen.rs", "x", true),
            ]
        );
        assert_eq!(d.publish, ["port=8080"]);
        let dir = tempfile::tempdir().unwrap();
        write_in(dir.path(), "src/a.txt", "x").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("src/a.txt")).unwrap(),
            "x"
        );
        assert!(write_in(dir.path(), "../x", "x").is_err());
        assert!(write_in(dir.path(), "/etc/x", "x").is_err());
    }

    #[tokio::test]
    async fn a_stopped_run_says_so() {
        let s = Simulated {
            config: SimulationConfig {
                duration: SignedDuration::from_secs(60),
                failure_rate: 0.0,
                seed: 0,
                ask_rate: 0.0,
            },
        };
        let (tx, rx) = oneshot::channel();
        let (reports, _unused) = mpsc::channel(1);
        let job = Job {
            reporter: Reporter { tx: reports },
            session: SessionId::generate(),
            title: "t".into(),
            prompt: "p".into(),
            task_key: "t".into(),
            attempt: 1,
            directory: ".".into(),
            adopt: false,
        };
        let run = tokio::spawn(s.run(job, rx));
        tx.send(()).unwrap();
        assert_eq!(run.await.unwrap(), Outcome::Stopped);
    }
}
