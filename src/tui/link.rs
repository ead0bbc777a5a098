//! The control room's way to the engine: the engine hosted in this process, or (attach) one in
//! another process reached through the control socket. Requests run on the tokio runtime and
//! come back to the app as messages, so the UI thread never waits on them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::app::{Msg, Request};
use crate::domain::PlanId;
use crate::engine::{Engine, EngineApi, EngineEvent, Feed, Told};
use crate::plan::prompt::prompt_plan;

/// The engine the room speaks to: hosted in this process
/// ([`crate::engine::EngineHandle`]) or attached through its control socket
/// ([`crate::control::ControlClient`]); the room speaks the same API to both.
#[derive(Clone)]
pub struct Link(Arc<dyn Engine>);

/// An engine event as the app's message: the engine's failure ends the room.
fn message(told: Told) -> Msg {
    match told.event {
        EngineEvent::EngineFailed { error } => Msg::EngineGone(error),
        _ => Msg::Engine(told),
    }
}

impl Link {
    pub fn new(engine: impl Engine + 'static) -> Self {
        Self(Arc::new(engine))
    }

    /// Forward engine events to the app until the engine goes away. The subscription is made
    /// before this returns, so a snapshot asked for afterwards misses no event (events it
    /// reflects are numbered at or below its own number, and the room skips them).
    pub fn follow(&self, runtime: &tokio::runtime::Handle, to: Sender<Msg>) {
        let engine = self.0.clone();
        let subscribed = std::thread::scope(|scope| {
            // Blocking on the runtime from a thread of our own: callers may be on one of its
            // blocking threads.
            scope
                .spawn(|| {
                    runtime.block_on(async { engine.feed(crate::engine::Follower::Room).await })
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(crate::engine::ApiError::new(
                        crate::engine::ErrorKind::Failed,
                        "subscribing to the engine's events failed",
                    ))
                })
        });
        let mut feed = match subscribed {
            Ok(feed) => feed,
            Err(e) => {
                let _ = to.send(Msg::EngineGone(e.to_string()));
                return;
            }
        };
        runtime.spawn(async move {
            while let Some(item) = feed.recv().await {
                let msg = match item {
                    Feed::Event(told) => message(told),
                    Feed::Lagged(n) => Msg::Lagged(n),
                    Feed::Gone(why) => Msg::EngineGone(why),
                };
                let gone = matches!(msg, Msg::EngineGone(_));
                if to.send(msg).is_err() || gone {
                    return;
                }
            }
            let _ = to.send(Msg::EngineGone("the engine went away".into()));
        });
    }

    /// A worker that runs requests one at a time, in order (but landings, which may wait for a
    /// resolver session, each beside the rest); snapshot requests made while one is under way
    /// are folded into it, and so are requests for a plan's review (the view asks again on
    /// every event about its plan).
    pub fn worker(
        self,
        runtime: &tokio::runtime::Handle,
        to: Sender<Msg>,
        cwd: PathBuf,
    ) -> Requests {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let pending = Arc::new(AtomicBool::new(false));
        let review_pending: Arc<Mutex<Option<PlanId>>> = Arc::default();
        let (flag, review_flag) = (pending.clone(), review_pending.clone());
        runtime.spawn(async move {
            while let Some(request) = rx.recv().await {
                if request == Request::Snapshot {
                    flag.store(false, Ordering::SeqCst);
                }
                if let Request::Review(plan) = request {
                    let mut pending = review_flag.lock().unwrap_or_else(PoisonError::into_inner);
                    if *pending == Some(plan) {
                        *pending = None;
                    }
                }
                if let Request::Land(..) = request {
                    // A landing may wait for a resolver session for minutes: beside the rest.
                    let (engine, to, cwd) = (self.0.clone(), to.clone(), cwd.clone());
                    tokio::spawn(async move {
                        let _ = to.send(run(&*engine, request, &cwd).await);
                    });
                    continue;
                }
                let msg = run(&*self.0, request, &cwd).await;
                if to.send(msg).is_err() {
                    break;
                }
            }
        });
        Requests {
            tx,
            snapshot_pending: pending,
            review_pending,
        }
    }
}

pub(super) fn reply<E: std::fmt::Display>(what: String, result: Result<String, E>) -> Msg {
    Msg::Reply(what, result.map_err(|e| one_line(&e.to_string())))
}

/// What a submission came to: a plan's problems, when there are several, counted and each
/// kept with its place (`file:line:col`) and apart (`; `); their hints, too long for the
/// status line, are in `ocio submit FILE`'s report.
pub(super) fn submitted(
    what: String,
    origin: &Path,
    result: Result<PlanId, crate::engine::ApiError>,
) -> Msg {
    match result {
        Err(e) if e.kind == crate::engine::ErrorKind::Plan => {
            let message = without_origin(&e.message, origin);
            let problems = problems(&message);
            let text = match problems.as_slice() {
                [_, _, ..] => format!(
                    "{} problems: {}",
                    problems.len(),
                    problems
                        .iter()
                        .map(|(p, _)| *p)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                _ => one_line(&message),
            };
            Msg::Reply(what, Err(text))
        }
        result => reply(what, result.map(queued)),
    }
}

/// A plan's problems without the file they are in, which the status line names before them
/// (`plan.toml:4:1: …` is `4:1: …`, `plan.toml: …` is `…`).
fn without_origin(message: &str, origin: &Path) -> String {
    let origin = origin.display().to_string();
    message
        .lines()
        .map(|line| match line.strip_prefix(origin.as_str()) {
            Some(rest) if rest.starts_with(':') => rest.trim_start_matches(':').trim_start(),
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The problems a message of many lines tells, each with its hints (the lines indented
/// under it or starting `hint:`).
fn problems(message: &str) -> Vec<(&str, Vec<&str>)> {
    let mut problems: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in message.lines().filter(|l| !l.trim().is_empty()) {
        let hint = line.starts_with(char::is_whitespace) || line.starts_with("hint:");
        match problems.last_mut() {
            Some((_, hints)) if hint => hints.push(line.trim()),
            _ => problems.push((line.trim(), Vec::new())),
        }
    }
    problems
}

/// A message for the status line, which runs its lines together: its problems separated by
/// `; `, each hint in brackets after its problem.
pub(super) fn one_line(message: &str) -> String {
    problems(message)
        .iter()
        .map(|(problem, hints)| {
            let hints = hints.iter().map(|h| format!(" ({h})")).collect::<String>();
            format!("{problem}{hints}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What `:budget` did, in a toast, from the engine's snapshot after it: the budget set (a
/// lowering is not called a raise), what the plan has spent, and what happens next. A plan
/// budget set below its spend pauses the plan at once (its running sessions stopped, their
/// work kept on their branches); a plan with nothing left to run is not paused.
pub(super) fn budget_said(
    plan: crate::domain::PlanId,
    target: &crate::engine::BudgetTarget,
    raise: Option<crate::domain::Budget>,
    then: crate::engine::BudgetThen,
    after: Option<&crate::engine::view::Snapshot>,
) -> String {
    use crate::engine::{BudgetTarget, BudgetThen};
    if then == BudgetThen::Cancel {
        return "cancelled".to_string();
    }
    let spend = after.and_then(|s| s.budgets.plan(plan));
    let paused = spend.is_some_and(|s| s.over_budget.is_some());
    let Some(raise) = raise else {
        return if paused { "stays paused" } else { "continues" }.to_string();
    };
    let of = match target {
        BudgetTarget::Task { key } => format!("task {key}'s budget"),
        _ => "budget".to_string(),
    };
    if after.is_none() {
        return format!("{of} set to {raise}");
    }
    let spent = spend.map(|s| &s.spent);
    let below = spend
        .and_then(|s| s.budget)
        .zip(spent)
        .filter(|_| *target == BudgetTarget::Plan)
        .and_then(|(budget, spent)| budget.reached(spent));
    match (below, spent) {
        (Some(_), Some(spent)) if paused => format!(
            "{of} set to {raise}, below the {} already spent: the plan is paused (its running sessions stopped, their work kept on their branches)",
            spent_words(spent)
        ),
        (Some(_), Some(spent)) => format!(
            "{of} set to {raise}, below the {} already spent; nothing of the plan is left to run",
            spent_words(spent)
        ),
        _ if paused => format!("{of} set to {raise}; the plan stays paused"),
        _ => format!("{of} set to {raise}; the plan goes on"),
    }
}

/// Why `:budget` (or `C` on a plan paused over budget) was refused, as the room says it: a
/// budget still reached is raised with the room's own `:budget PLAN[/TASK] TOKENS` (the
/// engine names the budget, not how to raise it; the command line names its own command).
fn budget_refused(e: crate::engine::ApiError, name: &str) -> String {
    use crate::domain::BudgetScope;
    let Some(still) = &e.over_budget else {
        return e.message;
    };
    let how = match &still.scope {
        BudgetScope::Task { key } => format!("raise it first, e.g. :budget {name}/{key} TOKENS"),
        BudgetScope::Plan => format!("raise it first, e.g. :budget {name} TOKENS"),
        // The room's `:budget` raises a plan's or a task's budget only.
        BudgetScope::Agent { agent } => format!(
            "agent {agent}'s budget is raised from the shell: ocio budget {name} --agent {agent} --tokens N"
        ),
        BudgetScope::Daily => format!(
            "the daily budget is raised from the shell: ocio budget {name} --daily --tokens N"
        ),
    };
    format!("{}\nhint: {how}", e.message)
}

/// `14.4k tokens ($0.12)`.
fn spent_words(spent: &crate::domain::Usage) -> String {
    format!(
        "{} tokens (${:.2})",
        super::ui::si(spent.total_tokens()),
        spent.cost
    )
}

/// What a landing did, in a toast.
fn landed_text(landing: &crate::engine::Landing) -> String {
    let record = &landing.record;
    let commit = record.commit.get(..12).unwrap_or(&record.commit);
    match landing.already {
        true => format!("already landed on {} at {commit}", record.base),
        false => format!("landed on {} at {commit}", record.base),
    }
}

fn queued(id: PlanId) -> String {
    format!("plan {} queued", id.short())
}

async fn run(engine: &dyn Engine, request: Request, cwd: &Path) -> Msg {
    match request {
        Request::Snapshot => match engine.snapshot().await {
            Ok(snapshot) => Msg::Snapshot(Box::new(snapshot)),
            Err(e) => Msg::EngineGone(e.to_string()),
        },
        Request::Transcript(id) => match engine.transcript(id).await {
            Ok(entries) => Msg::Transcript(id, entries),
            Err(e) => Msg::EngineGone(e.to_string()),
        },
        Request::History(last) => match engine.history(0, last).await {
            // Notes are the rest of the past; an engine of an older ocio keeps none.
            Ok(entries) => Msg::History(entries, engine.notes(last).await.unwrap_or_default()),
            Err(e) => reply("history".into(), Err(e)),
        },
        Request::Submit(path) => {
            let path = absolute(path, cwd);
            let what = format!("submit {}", path.display());
            submitted(what, &path, engine.submit_file(&path).await)
        }
        Request::Prompt(text) => match prompt_plan(&text, cwd, Timestamp::now()) {
            Ok((path, toml)) => {
                submitted("new task".into(), &path, engine.submit(&path, toml).await)
            }
            Err(e) => submitted(
                "new task".into(),
                Path::new("(prompt)"),
                Err(crate::engine::EngineError::Plan(e).into()),
            ),
        },
        Request::SubmitText(path, toml) => submitted(
            format!("submit {}", path.display()),
            &path,
            engine.submit(&path, toml).await,
        ),
        Request::Diff(id) => Msg::Diff(id, engine.diff(id).await.map_err(|e| e.to_string())),
        Request::Review(plan) => review(engine, plan).await,
        Request::MarkReviewed(plan, file, reviewed) => {
            match engine.mark_reviewed(plan, &file, reviewed).await {
                Ok(()) => review(engine, plan).await,
                Err(e) => reply(format!("mark {file}"), Err(e)),
            }
        }
        Request::Land(plan, name) => {
            let landed = engine
                .land(plan, crate::domain::LandMode::Merge, None)
                .await;
            reply(format!("land {name}"), landed.map(|l| landed_text(&l)))
        }
        Request::Timeline(plan, by) => Msg::Timeline(
            plan,
            engine
                .timeline(plan, by, None)
                .await
                .map(Box::new)
                .map_err(|e| e.to_string()),
        ),
        Request::Budget(plan, name, target, raise, then) => {
            let settled = engine.budget(plan, target.clone(), raise, then).await;
            // What it is set to against what is spent, as the engine has it now.
            let after = match settled {
                Ok(()) => Ok(engine.snapshot().await.ok()),
                Err(e) => Err(budget_refused(e, &name)),
            };
            let said = after.map(|after| budget_said(plan, &target, raise, then, after.as_ref()));
            reply(format!("plan {name}"), said)
        }
        Request::Search(text) => {
            let query = crate::store::SearchQuery {
                text: text.clone(),
                limit: super::search::LIMIT,
                ..Default::default()
            };
            Msg::Found(text, engine.search(query).await.map_err(|e| e.to_string()))
        }
        Request::Context(plan) => match engine.context(plan).await {
            Ok(tasks) => Msg::Context(plan, tasks),
            Err(e) => reply("context".into(), Err(e)),
        },
        Request::Plan(goal) => match git_root(cwd) {
            Ok(repo) => match engine.plan(&goal, &repo).await {
                Ok(proposal) => Msg::Proposal(Box::new(proposal)),
                Err(e) => reply("plan".into(), Err(e)),
            },
            Err(e) => reply("plan".into(), Err(e)),
        },
        Request::Cancel(id, name) => reply(
            format!("cancel {name}"),
            engine.cancel(id).await.map(|()| "stopping".into()),
        ),
        Request::Retry(id, name) => reply(
            format!("retry {name}"),
            engine.retry(id).await.map(|()| "queued again".into()),
        ),
        Request::Approve(id, decision, by) => reply(
            format!("request {id}"),
            engine
                .approve(&id, decision, by)
                .await
                .map(|()| decision.text().into()),
        ),
        Request::Answer(id, answers) => reply(
            format!("question {}", crate::engine::approval::short_id(&id)),
            engine
                .answer(&id, answers, crate::engine::approval::Approver::Key)
                .await
                .map(|()| "answered".into()),
        ),
        Request::Say(session, text) => reply(
            format!("session {}", session.short()),
            engine
                .say(session, &text)
                .await
                .map(|()| "message sent".into()),
        ),
        Request::Interrupt(session) => reply(
            format!("session {}", session.short()),
            engine
                .interrupt(session)
                .await
                .map(|()| "interrupted: it waits for your message (i)".into()),
        ),
        Request::Pause(paused) => reply(
            pause_what(paused),
            engine.pause(paused).await.map(|()| pause_done(paused)),
        ),
        Request::Drain(name, drain) => reply(
            drain_what(&name, drain),
            engine.drain(&name, drain).await.map(|()| "done".into()),
        ),
    }
}

async fn review(engine: &dyn Engine, plan: PlanId) -> Msg {
    let review = engine.review(plan).await;
    Msg::Review(plan, review.map(Box::new).map_err(|e| e.to_string()))
}

/// The git repository around `cwd`: where a planned plan works.
fn git_root(cwd: &Path) -> Result<PathBuf, String> {
    crate::workspace::enclosing_repository(cwd).ok_or_else(|| {
        format!(
            "{} is not inside a git repository; start ocio in the repository to plan for",
            cwd.display()
        )
    })
}

fn absolute(path: PathBuf, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        cwd.join(path)
    }
}

fn pause_what(paused: bool) -> String {
    if paused { "pause" } else { "resume" }.into()
}

fn pause_done(paused: bool) -> String {
    if paused {
        "no new sessions start"
    } else {
        "dispatching"
    }
    .into()
}

fn drain_what(name: &str, drain: bool) -> String {
    format!("{} {name}", if drain { "drain" } else { "undrain" })
}

/// Where the app's requests go.
pub struct Requests {
    tx: mpsc::UnboundedSender<Request>,
    snapshot_pending: Arc<AtomicBool>,
    /// The plan whose review is queued and not started yet.
    review_pending: Arc<Mutex<Option<PlanId>>>,
}

impl Requests {
    pub fn send(&self, request: Request) {
        if request == Request::Snapshot && self.snapshot_pending.swap(true, Ordering::SeqCst) {
            return; // one is already on its way
        }
        if let Request::Review(plan) = request {
            let mut pending = self
                .review_pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *pending == Some(plan) {
                return; // it is queued already
            }
            *pending = Some(plan);
        }
        let _ = self.tx.send(request);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::engine::{ApiError, ErrorKind, Follower, Reply};

    /// An engine that only counts the reviews it is asked for, each taking a while.
    #[derive(Default)]
    struct Counting {
        reviews: Arc<Mutex<Vec<PlanId>>>,
    }

    impl Engine for Counting {
        fn call(&self, request: crate::engine::Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match request {
                    crate::engine::Request::Review { plan } => {
                        self.reviews.lock().unwrap().push(plan);
                        Err(ApiError::new(ErrorKind::NotFound, "counted"))
                    }
                    _ => Err(ApiError::new(ErrorKind::Failed, "not here")),
                }
            })
        }

        fn feed(&self, _: Follower) -> BoxFuture<'_, Result<mpsc::Receiver<Feed>, ApiError>> {
            Box::pin(async { Err(ApiError::new(ErrorKind::Failed, "no events here")) })
        }
    }

    #[test]
    fn reviews_asked_for_again_while_one_is_queued_are_folded_into_it() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let engine = Counting::default();
        let reviews = engine.reviews.clone();
        let (to, from) = std::sync::mpsc::channel();
        let requests = Link::new(engine).worker(runtime.handle(), to, PathBuf::from("/"));
        let (a, b) = (PlanId::from_u128(1), PlanId::from_u128(2));
        for _ in 0..6 {
            requests.send(Request::Review(a));
        }
        requests.send(Request::Review(b));
        let mut answered = 0;
        while answered < 2 {
            if let Ok(Msg::Review(..)) = from.recv_timeout(Duration::from_secs(10)) {
                answered += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let asked = reviews.lock().unwrap().clone();
        let of_a = asked.iter().filter(|p| **p == a).count();
        assert!(
            (1..=2).contains(&of_a),
            "six reviews of one plan: {asked:?}"
        );
        assert_eq!(asked.iter().filter(|p| **p == b).count(), 1, "{asked:?}");
    }

    /// An engine whose plan has spent 14,400 tokens (its budget, after the change, 100) and
    /// has a task running: what `:budget demo-feature 100` meets in the demo.
    struct Spent;

    impl Engine for Spent {
        fn call(&self, request: crate::engine::Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
            Box::pin(async move {
                match request {
                    crate::engine::Request::Budget { .. } => Ok(Reply::Done),
                    crate::engine::Request::Snapshot => {
                        let mut snapshot = crate::tui::tests::snapshot();
                        let plan = snapshot.plans[0].id;
                        snapshot.budgets.plans = vec![crate::engine::view::PlanSpendView {
                            plan,
                            name: "demo-feature".into(),
                            budget: Some(crate::domain::Budget::new(Some(100), None).unwrap()),
                            spent: crate::domain::Usage {
                                input_tokens: 12_000,
                                output_tokens: 2_400,
                                cost: 0.12,
                                ..Default::default()
                            },
                            // As the engine answers a budget set below the spend: paused at once
                            // (`budgets::a_budget_lowered_below_the_spend_stops_the_work_at_once`).
                            over_budget: Some("over budget: plan budget 14400/100 tokens".into()),
                            stopped: Vec::new(),
                        }];
                        Ok(Reply::Snapshot {
                            snapshot: Box::new(snapshot),
                        })
                    }
                    _ => Err(ApiError::new(ErrorKind::Failed, "not here")),
                }
            })
        }

        fn feed(&self, _: Follower) -> BoxFuture<'_, Result<mpsc::Receiver<Feed>, ApiError>> {
            Box::pin(async { Err(ApiError::new(ErrorKind::Failed, "no events here")) })
        }
    }

    /// Found in the demo: `:budget demo-feature 100` with 14,400 tokens spent said `budget
    /// raised to 100 tokens; goes on unless paused`. It is a lowering below the spend, and the
    /// engine pauses the plan at once.
    #[test]
    fn a_budget_set_below_what_is_spent_is_not_called_a_raise() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (to, from) = std::sync::mpsc::channel();
        let requests = Link::new(Spent).worker(runtime.handle(), to, PathBuf::from("/"));
        let plan = crate::tui::tests::plan_id();
        requests.send(Request::Budget(
            plan,
            "demo-feature".into(),
            crate::engine::BudgetTarget::Plan,
            Some(crate::domain::Budget::new(Some(100), None).unwrap()),
            crate::engine::BudgetThen::Continue,
        ));
        let said = loop {
            if let Ok(Msg::Reply(_, said)) = from.recv_timeout(Duration::from_secs(10)) {
                break said.unwrap();
            }
        };
        assert!(!said.contains("raised"), "{said}");
        assert!(
            said.contains("budget set to 100 tokens, below the 14.4k tokens ($0.12) already spent: the plan is paused (its running sessions stopped, their work kept on their branches)"),
            "{said}"
        );
    }

    #[test]
    fn a_budget_above_what_is_spent_goes_on_and_a_finished_plan_is_not_paused() {
        let mut snapshot = crate::tui::tests::snapshot();
        let plan = snapshot.plans[0].id;
        snapshot.budgets.plans = vec![crate::engine::view::PlanSpendView {
            plan,
            name: "demo-feature".into(),
            budget: Some(crate::domain::Budget::new(Some(50_000), None).unwrap()),
            spent: crate::domain::Usage {
                input_tokens: 14_400,
                ..Default::default()
            },
            over_budget: None,
            stopped: Vec::new(),
        }];
        let set = |tokens| Some(crate::domain::Budget::new(Some(tokens), None).unwrap());
        let (target, go) = (
            crate::engine::BudgetTarget::Plan,
            crate::engine::BudgetThen::Continue,
        );
        let said = budget_said(plan, &target, set(50_000), go, Some(&snapshot));
        assert_eq!(said, "budget set to 50000 tokens; the plan goes on");
        snapshot.budgets.plans[0].budget = set(100);
        for task in &mut snapshot.plans[0].tasks {
            task.status = crate::domain::TaskStatus::Done;
        }
        let said = budget_said(plan, &target, set(100), go, Some(&snapshot));
        assert!(
            said.ends_with("nothing of the plan is left to run"),
            "{said}"
        );
    }
}
