//! The scheduler against a model: random plans and random sequences of what happens to them
//! (runs completing, failing, being lost; the operator cancelling, retrying, pausing; time
//! passing; the engine restarting from its store) drive a real `Core` on a real redb file, with
//! time paused and every run in the test's hands. After each step the rules that must always
//! hold are checked, in memory and in the store; at the end every run completes until the
//! plans are over, and every task must have ended.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use tokio::sync::{broadcast, oneshot};

use super::{Core, Workspaces};
use crate::domain::{Agent, AgentName, Backend, PlanId, SessionId, SessionKind, TaskStatus, Usage};
use crate::engine::runner::{Job, Outcome, RunFuture, Runner};
use crate::engine::{AgentSpec, Clock, EngineOptions, Told};
use crate::plan::PlanFile;
use crate::store::{Store, StoreHandle, StoreOptions, query};

/// A runner whose runs end when the test says, or when the engine stops them.
#[derive(Clone, Default)]
struct Puppet {
    runs: Arc<Mutex<HashMap<SessionId, oneshot::Sender<Outcome>>>>,
}

impl Runner for Puppet {
    fn run(&self, job: Job, mut stop: oneshot::Receiver<()>) -> RunFuture {
        let (end, ended) = oneshot::channel();
        self.runs.lock().unwrap().insert(job.session, end);
        Box::pin(async move {
            tokio::select! {
                outcome = ended => outcome.unwrap_or(Outcome::Stopped),
                _ = &mut stop => Outcome::Stopped,
            }
        })
    }
}

impl Puppet {
    /// End the run of `session` with `outcome` (once its task has started it); `false` when
    /// it never runs.
    async fn end(&self, session: SessionId, outcome: Outcome) -> bool {
        for _ in 0..1000 {
            if let Some(end) = self.runs.lock().unwrap().remove(&session) {
                return end.send(outcome).is_ok();
            }
            tokio::task::yield_now().await;
        }
        false
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// The `n`th running session (in id order) ends so.
    End(usize, Ending),
    /// The operator cancels the `n`th task.
    Cancel(usize),
    /// The operator retries the `n`th task.
    Retry(usize),
    Pause(bool),
    /// This many seconds pass, and the engine's tick runs.
    Wait(u16),
    /// The engine stops (as with `kill -9`: nothing but the store survives) and starts again.
    Restart,
}

#[derive(Debug, Clone, Copy)]
enum Ending {
    Complete,
    Fail,
    AgentFault,
    Lost,
}

impl Ending {
    fn outcome(self) -> Outcome {
        let usage = Usage {
            input_tokens: 10,
            ..Usage::default()
        };
        match self {
            Ending::Complete => Outcome::Completed {
                result: Some("done".into()),
                usage,
            },
            Ending::Fail | Ending::AgentFault => Outcome::Failed {
                error: "the model gave up".into(),
                agent_fault: matches!(self, Ending::AgentFault),
                usage,
            },
            Ending::Lost => Outcome::Lost {
                error: "the server lost it".into(),
                unreachable: false,
            },
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let ending = prop_oneof![
        6 => Just(Ending::Complete),
        2 => Just(Ending::Fail),
        1 => Just(Ending::AgentFault),
        1 => Just(Ending::Lost),
    ];
    prop_oneof![
        10 => (0..8usize, ending).prop_map(|(n, e)| Op::End(n, e)),
        2 => (0..12usize).prop_map(Op::Cancel),
        2 => (0..12usize).prop_map(Op::Retry),
        1 => any::<bool>().prop_map(Op::Pause),
        2 => (1..400u16).prop_map(Op::Wait),
        1 => Just(Op::Restart),
    ]
}

/// A plan of `needs.len()` tasks; task i needs the earlier tasks listed in `needs[i]` and has
/// `retries[i]` automatic retries.
fn plan_text(repo: &Path, needs: &[Vec<usize>], retries: &[u32]) -> String {
    let mut text = format!(
        "name = \"model\"\nrepo = {:?}\n",
        repo.display().to_string()
    );
    for (i, needs) in needs.iter().enumerate() {
        let needs: Vec<String> = needs.iter().map(|n| format!("\"t{n}\"")).collect();
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = \"task {i}\"\nretries = {}\nneeds = [{}]\n",
            retries[i],
            needs.join(", ")
        ));
    }
    text
}

fn graph() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<u32>)> {
    (1..10usize).prop_flat_map(|n| {
        let needs: Vec<_> = (0..n)
            .map(|i| proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(2)))
            .collect();
        (needs, proptest::collection::vec(0..3u32, n))
    })
}

const MAX_PARALLEL: u32 = 3;

struct World {
    dir: tempfile::TempDir,
    store: StoreHandle,
    puppet: Puppet,
    options: EngineOptions,
    events: broadcast::Sender<Told>,
    core: Core,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
        let options = EngineOptions {
            max_parallel: MAX_PARALLEL,
            retry_backoff: SignedDuration::from_secs(2),
            clock: Clock::following_tokio(Timestamp::from_second(1_767_225_600).unwrap()),
            ..EngineOptions::default()
        };
        let (events, _) = broadcast::channel(1 << 16);
        let puppet = Puppet::default();
        let core = Self::start(&dir, &store, &puppet, &options, &events).await;
        Self {
            dir,
            store,
            puppet,
            options,
            events,
            core,
        }
    }

    async fn start(
        dir: &tempfile::TempDir,
        store: &StoreHandle,
        puppet: &Puppet,
        options: &EngineOptions,
        events: &broadcast::Sender<Told>,
    ) -> Core {
        let agents = [("a", 2), ("b", 1)]
            .into_iter()
            .map(|(name, slots)| AgentSpec {
                agent: Agent::new(AgentName::new(name).unwrap(), Backend::Simulated, slots),
                runner: Arc::new(puppet.clone()),
            })
            .collect();
        let workspaces = Workspaces::new(dir.path().join("worktrees"));
        let events = events.clone();
        Core::recover(
            store.clone(),
            agents,
            options.clone(),
            events,
            workspaces,
            Default::default(),
        )
        .await
        .unwrap()
    }

    async fn submit(&mut self, needs: &[Vec<usize>], retries: &[u32]) -> PlanId {
        let repo = self.dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let path = self.dir.path().join("plan.toml");
        let file = PlanFile::parse(&plan_text(&repo, needs, retries), &path).unwrap();
        let prepared = self
            .core
            .workspaces
            .prepare(file, PlanId::generate())
            .unwrap();
        let id = self.core.submit(prepared).await.unwrap();
        self.core.dispatch().await.unwrap();
        id
    }

    /// Settle the run that has just ended, then dispatch.
    async fn settle_next(&mut self) {
        let (session, ended) = self.core.finished_rx.recv().await.unwrap();
        self.core.finished(session, ended).await.unwrap();
        self.core.dispatch().await.unwrap();
    }

    fn running(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self.core.running.keys().copied().collect();
        ids.sort();
        ids
    }

    fn task_ids(&self) -> Vec<crate::domain::TaskId> {
        let mut ids: Vec<_> = self.core.plans.task_ids().collect();
        ids.sort();
        ids
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::End(n, ending) => {
                let running = self.running();
                if running.is_empty() {
                    return;
                }
                let session = running[n % running.len()];
                assert!(
                    self.puppet.end(session, ending.outcome()).await,
                    "{session} runs"
                );
                self.settle_next().await;
            }
            Op::Cancel(n) => {
                let tasks = self.task_ids();
                let task = tasks[n % tasks.len()];
                let stops = self
                    .core
                    .running
                    .values()
                    .any(|r| r.session.task == Some(task));
                if self.core.cancel(task).await.is_ok() && stops {
                    self.settle_next().await;
                } else {
                    self.core.dispatch().await.unwrap();
                }
            }
            Op::Retry(n) => {
                let tasks = self.task_ids();
                let _ = self.core.retry(tasks[n % tasks.len()]).await;
                self.core.dispatch().await.unwrap();
            }
            Op::Pause(paused) => {
                self.core.pause(*paused).await.unwrap();
                self.core.dispatch().await.unwrap();
            }
            Op::Wait(secs) => {
                tokio::time::advance(std::time::Duration::from_secs(u64::from(*secs))).await;
                self.core.on_tick().await.unwrap();
                self.core.dispatch().await.unwrap();
            }
            Op::Restart => {
                self.puppet.runs.lock().unwrap().clear();
                let core = Self::start(
                    &self.dir,
                    &self.store,
                    &self.puppet,
                    &self.options,
                    &self.events,
                )
                .await;
                self.core = core;
                self.core.dispatch().await.unwrap();
            }
        }
    }
}

/// What the engine has told, as the model sees it.
#[derive(Default)]
struct Model {
    /// Sessions dispatched per task.
    dispatched: BTreeMap<String, u32>,
    /// Tasks seen done: done stays done.
    done: BTreeSet<String>,
    /// Tasks the operator cancelled.
    cancelled: BTreeSet<String>,
    /// Tasks a run of which failed.
    failed: BTreeSet<String>,
    /// Runs of each task lost (to a server or a restart).
    lost: BTreeMap<String, u32>,
}

impl Model {
    /// What `op` will do to which task, before it is applied.
    fn expect(&mut self, world: &World, op: &Op) {
        match op {
            Op::End(n, ending) => {
                let running = world.running();
                if let Some(session) = running.get(n % running.len().max(1)) {
                    let key = world.core.running[session].key.clone();
                    match ending {
                        Ending::Complete => {}
                        Ending::Fail | Ending::AgentFault => {
                            self.failed.insert(key);
                        }
                        Ending::Lost => *self.lost.entry(key).or_default() += 1,
                    }
                }
            }
            Op::Cancel(n) => {
                let tasks = world.task_ids();
                let (_, key) = world.core.plans.locate(&tasks[n % tasks.len()]).unwrap();
                self.cancelled.insert(key.to_string());
            }
            Op::Restart => {
                for run in world.core.running.values() {
                    *self.lost.entry(run.key.clone()).or_default() += 1;
                }
            }
            Op::Retry(_) | Op::Pause(_) | Op::Wait(_) => {}
        }
    }

    /// Why a task that ended other than done may have: every end is explained.
    fn explains(&self, task: &crate::domain::Task, graph: &crate::domain::TaskGraph) -> bool {
        let lost = self.lost.get(&task.key).copied().unwrap_or(0);
        match task.status {
            TaskStatus::Done => true,
            TaskStatus::Cancelled => self.cancelled.contains(&task.key),
            TaskStatus::Blocked => task
                .needs
                .iter()
                .any(|n| graph.get(n).is_none_or(|n| n.status != TaskStatus::Done)),
            TaskStatus::Failed => {
                self.failed.contains(&task.key) || lost > crate::domain::task::MAX_LOST_ATTEMPTS
            }
            TaskStatus::Pending | TaskStatus::Ready | TaskStatus::Running => false,
        }
    }

    fn hear(&mut self, events: &mut broadcast::Receiver<Told>) {
        while let Ok(told) = events.try_recv() {
            match told.event {
                crate::engine::EngineEvent::Dispatched { key, .. } => {
                    *self.dispatched.entry(key).or_default() += 1;
                }
                crate::engine::EngineEvent::Transition(crate::domain::DomainEvent {
                    transition:
                        crate::domain::Transition::Task {
                            key,
                            to: TaskStatus::Done,
                            ..
                        },
                    ..
                }) => {
                    self.done.insert(key);
                }
                _ => {}
            }
        }
    }
}

/// The rules that hold after every step, in memory and in the store.
async fn check(world: &World, model: &Model, paused_before: bool, dispatched_before: u32) {
    let core = &world.core;
    assert!(core.running.len() <= MAX_PARALLEL as usize, "over the cap");
    let mut load: HashMap<usize, u32> = HashMap::new();
    let mut running_tasks: HashMap<String, u32> = HashMap::new();
    for run in core.running.values() {
        *load.entry(run.agent).or_default() += 1;
        *running_tasks.entry(run.key.clone()).or_default() += 1;
    }
    for (i, agent) in core.fleet.live() {
        let runs = load.get(&i).copied().unwrap_or(0);
        assert_eq!(agent.load, runs, "agent {} load", agent.name);
        assert!(
            agent.load <= agent.max_concurrent,
            "agent {} over",
            agent.name
        );
    }
    let memory: BTreeMap<String, (TaskStatus, u32)> = core
        .plans
        .values()
        .flat_map(|s| {
            s.graph
                .tasks()
                .map(|t| (t.key.clone(), (t.status, t.attempts)))
        })
        .collect();
    for state in core.plans.values() {
        for task in state.graph.tasks() {
            let runs = running_tasks.get(&task.key).copied().unwrap_or(0);
            let runs_now = task.status == TaskStatus::Running;
            assert_eq!(
                runs,
                u32::from(runs_now),
                "{} is {} with {runs} runs",
                task.key,
                task.status
            );
            if runs_now {
                for need in &task.needs {
                    let need = state.graph.get(need).unwrap();
                    assert_eq!(
                        need.status,
                        TaskStatus::Done,
                        "{} runs before {}",
                        task.key,
                        need.key
                    );
                }
            }
        }
    }
    for key in &model.done {
        assert_eq!(memory[key].0, TaskStatus::Done, "{key} was done");
    }
    let dispatched: u32 = model.dispatched.values().sum();
    if paused_before && core.paused {
        assert_eq!(
            dispatched, dispatched_before,
            "a session started while paused"
        );
    }
    // Durable before shown: the store holds what memory holds.
    let (tasks, sessions) = world
        .store
        .read(|txn| Ok((query::tasks(txn)?, query::sessions(txn)?)))
        .await
        .unwrap();
    let stored: BTreeMap<String, (TaskStatus, u32)> = tasks
        .iter()
        .map(|t| (t.key.clone(), (t.status, t.attempts)))
        .collect();
    assert_eq!(stored, memory, "the store and memory disagree");
    // Exactly once: one session per attempt, and every session told.
    for task in &tasks {
        let attempts: Vec<u32> = sessions
            .iter()
            .filter(|s| s.task == Some(task.id) && s.kind == SessionKind::Code)
            .map(|s| s.attempt)
            .collect();
        let distinct: BTreeSet<u32> = attempts.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            attempts.len(),
            "{}: an attempt ran twice: {attempts:?}",
            task.key
        );
        assert_eq!(
            attempts.len() as u32,
            task.attempts,
            "{}: sessions {attempts:?}",
            task.key
        );
        assert_eq!(
            model.dispatched.get(&task.key).copied().unwrap_or(0),
            task.attempts,
            "{}: dispatches told",
            task.key
        );
    }
}

/// Every run completes and time passes until nothing runs or is ready.
async fn finish(world: &mut World, model: &mut Model, events: &mut broadcast::Receiver<Told>) {
    world.apply(&Op::Pause(false)).await;
    for _ in 0..200 {
        if !world.running().is_empty() {
            world.apply(&Op::End(0, Ending::Complete)).await;
        } else {
            let ready = world
                .core
                .plans
                .values()
                .any(|s| s.graph.tasks().any(|t| t.status.has_work_to_come()));
            if !ready {
                break;
            }
            world.apply(&Op::Wait(300)).await;
        }
        model.hear(events);
        check(world, model, false, 0).await;
    }
    model.hear(events);
    for state in world.core.plans.values() {
        for task in state.graph.tasks() {
            assert!(
                model.explains(task, &state.graph),
                "{} ended {} unexplained",
                task.key,
                task.status
            );
        }
    }
}

fn run_case(needs: Vec<Vec<usize>>, retries: Vec<u32>, ops: Vec<Op>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut world = World::new().await;
        let mut events = world.events.subscribe();
        let mut model = Model::default();
        world.submit(&needs, &retries).await;
        model.hear(&mut events);
        check(&world, &model, false, 0).await;
        for op in &ops {
            model.expect(&world, op);
            let paused = world.core.paused;
            let before: u32 = model.dispatched.values().sum();
            world.apply(op).await;
            model.hear(&mut events);
            check(&world, &model, paused, before).await;
        }
        finish(&mut world, &mut model, &mut events).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_scheduler_keeps_its_rules_whatever_happens(
        (needs, retries) in graph(),
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        run_case(needs, retries, ops);
    }
}
