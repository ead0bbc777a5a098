//! The in-process simulator, the second implementation of [`Runner`]: dry runs, demos, scale
//! tests, and sessions that ask permissions and questions without a server.

use jiff::SignedDuration;
use tokio::sync::oneshot;

use super::approval::{Ask, Decision};
use super::question::{Choice, QuestionItem, QuestionReply};
use super::runner::{Job, Outcome, PlanFuture, PlanRequest, Proposal, RunFuture, Runner, Steer};
use super::view::Activity;
use crate::config::SimulationConfig;
use crate::domain::Usage;

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
/// - `SIM-ASK <header>: <question> | <option> | <option>...`: after the writes, the run asks
///   the operator that question (when the engine offers questions) and waits for the answer;
///   the answer ends with the line `answered <header>: <labels>` (or `<header>: rejected`).
/// - `SIM-HOLD`: the first attempt, once it has reported its model step, does not finish on
///   its own: it holds until the engine stops it (over budget, cancelled), however long that
///   takes; later attempts finish as usual. A run the engine must stop then never races its
///   own end, however slow the machine.
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
            let mut told = Vec::new();
            for (n, spec) in directives.questions.iter().enumerate() {
                let asked = tokio::select! {
                    told = ask_question(&job, n, spec) => told,
                    _ = &mut stop => return Outcome::Stopped,
                };
                match asked {
                    Some(line) => told.push(line),
                    None => return Outcome::Stopped,
                }
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
                    questions: Vec::new(),
                };
                let answer = tokio::select! {
                    answer = job.reporter.permission(job.session, ask) => answer,
                    _ = &mut stop => return Outcome::Stopped,
                };
                let status = match answer.map(|verdict| verdict.decision) {
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
                if !wait(&job, beat, &mut stop, &mut told).await {
                    return Outcome::Stopped;
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
            if directives.hold && job.attempt == 1 {
                let _ = (&mut stop).await;
                return Outcome::Stopped;
            }
            if !wait(&job, beat, &mut stop, &mut told).await {
                return Outcome::Stopped;
            }
            // What the operator said just now is taken up, not dropped.
            while let Some(word) = job.steering.try_next() {
                if let Steer::Say { text, .. } = word {
                    told.push(format!("steered: {text}"));
                }
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
                for line in &told {
                    result.push('\n');
                    result.push_str(line);
                }
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
    /// `header: question | option | option`
    questions: Vec<String>,
    /// The first attempt holds after its step until it is stopped.
    hold: bool,
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
            } else if let Some(rest) = line.strip_prefix("SIM-ASK ") {
                directives.questions.push(rest.trim().to_string());
            } else if line.trim_end() == "SIM-HOLD" {
                directives.hold = true;
            }
        }
        directives
    }
}

/// Wait `beat`, taking the operator's words meanwhile: a message is told back (and its answer
/// line added to `told`), an interrupt waits for the next message. `false`: stopped.
async fn wait(
    job: &Job,
    beat: std::time::Duration,
    stop: &mut oneshot::Receiver<()>,
    told: &mut Vec<String>,
) -> bool {
    let sleep = tokio::time::sleep(beat);
    tokio::pin!(sleep);
    let mut interrupted = false;
    loop {
        tokio::select! {
            () = &mut sleep, if !interrupted => return true,
            _ = &mut *stop => return false,
            word = job.steering.next() => match word {
                Steer::Say { text, .. } => {
                    interrupted = false;
                    let line = format!("steered: {text}");
                    job.reporter.activity(
                        job.session,
                        Activity::Text { text: line.clone() },
                        Some(format!("said-{}", told.len())),
                    );
                    told.push(line);
                }
                Steer::Interrupt | Steer::Halted => interrupted = true,
            },
        }
    }
}

/// Ask the question `spec` (`header: question | option | option`) as the `n`-th of the run
/// and wait for what the operator (or the policy) says: the line the answer ends with. A run
/// not offered questions decides alone. `None`: the engine is gone.
async fn ask_question(job: &Job, n: usize, spec: &str) -> Option<String> {
    let mut parts = spec.split('|').map(str::trim);
    let asked = parts.next().unwrap_or_default();
    let (header, question) = asked.split_once(':').unwrap_or(("Question", asked));
    let header = header.trim().to_string();
    if !job.questions {
        return Some(format!(
            "{header}: not asked (questions are denied); decided alone"
        ));
    }
    let item = QuestionItem {
        header: header.clone(),
        question: question.trim().to_string(),
        options: parts
            .map(|label| Choice {
                label: label.to_string(),
                description: String::new(),
            })
            .collect(),
        multiple: false,
        custom: true,
    };
    let id = format!("que_sim{n}{}", job.session);
    let tell = |status: &str, title: String| {
        let activity = Activity::Tool {
            tool: "question".into(),
            status: status.into(),
            title,
        };
        job.reporter
            .activity(job.session, activity, Some(format!("question-{n}")));
    };
    tell("running", item.question.clone());
    let reply = job
        .reporter
        .question(job.session, Ask::question(id, vec![item]))
        .await?;
    let (status, line) = match reply {
        QuestionReply::Answers(labels) => (
            "completed",
            format!("answered {header}: {}", labels.concat().join(", ")),
        ),
        QuestionReply::Reject => ("error", format!("{header}: rejected")),
    };
    tell(status, line.clone());
    Some(line)
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
    use crate::domain::SessionId;
    use crate::engine::runner::Reporter;
    use tokio::sync::mpsc;

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
            questions: false,
            steering: crate::engine::runner::Steering::none(),
            word: None,
            said: Vec::new(),
            streamed: None,
            setup: Default::default(),
        };
        let run = tokio::spawn(s.run(job, rx));
        tx.send(()).unwrap();
        assert_eq!(run.await.unwrap(), Outcome::Stopped);
    }
}
