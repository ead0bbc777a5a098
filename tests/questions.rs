//! Questions sessions ask the operator, through the engine with simulated sessions (`SIM-ASK`):
//! answered by option or text, checked against what the question offers, rejected, timed out
//! by the policy (counting only while no control room follows, in `auto`), or never asked
//! (`deny`). Each answer is a transition in the control log naming what and who. The same
//! against a real OpenCode server is in `opencode_live.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use ocio::domain::{SessionStatus, TaskStatus, Transition};
use ocio::engine::approval::{Approver, Decision, short_id};
use ocio::engine::question::{Answer, QuestionMode, QuestionPolicy};
use ocio::engine::{
    Engine, EngineApi, EngineEvent, EngineHandle, EngineOptions, ErrorKind, Follower, Subscription,
};
use ocio::plan::PlanFile;
use ocio::store::{Store, StoreHandle, StoreOptions, query};

const PATIENCE: Duration = Duration::from_secs(30);

const ASKING: &str = "SIM-ASK Colour: Which colour should the button be? | red | blue";

struct Run {
    engine: EngineHandle,
    events: Subscription,
    store: StoreHandle,
    _dir: tempfile::TempDir,
}

async fn start(mode: QuestionMode, timeout: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        tick: Duration::from_millis(20),
        questions: QuestionPolicy { mode, timeout },
        ..EngineOptions::default()
    };
    let agent = support::sim_agent("asker", 2, &[], 30, 0.0);
    let engine = EngineHandle::start(store.clone(), vec![agent], options)
        .await
        .unwrap();
    let events = engine.subscribe();
    Run {
        engine,
        events,
        store,
        _dir: dir,
    }
}

impl Run {
    async fn submit(&self, dir: &Path) {
        let path = dir.join("plan.toml");
        let plan = format!(
            "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"pick\"\nprompt = \"{ASKING}\"\n"
        );
        std::fs::write(&path, plan).unwrap();
        self.engine
            .submit_plan(PlanFile::load(&path).unwrap())
            .await
            .unwrap();
    }

    async fn asked(&mut self) -> String {
        let event = next(&mut self.events, |e| {
            matches!(e, EngineEvent::QuestionAsked { .. })
        })
        .await;
        let EngineEvent::QuestionAsked {
            request, questions, ..
        } = event
        else {
            unreachable!()
        };
        assert_eq!(questions.len(), 1);
        assert_eq!(questions[0].header, "Colour");
        assert_eq!(questions[0].options.len(), 2);
        request
    }

    /// The task's result and the control log's causes once the plan is over.
    async fn finished(&mut self) -> (String, Vec<String>) {
        next(&mut self.events, |e| {
            matches!(e, EngineEvent::PlanFinished { .. })
        })
        .await;
        let tasks = self.store.read(query::tasks).await.unwrap();
        let log = self
            .store
            .read(|txn| query::events_after(txn, 0, usize::MAX))
            .await
            .unwrap();
        let causes = log.into_iter().map(|(_, e)| e.cause).collect();
        (tasks[0].result.clone().unwrap_or_default(), causes)
    }
}

async fn next(events: &mut Subscription, wanted: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = events.recv().await.unwrap();
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the event came in time")
}

#[tokio::test]
async fn a_question_is_answered_by_its_short_id_and_the_session_gets_the_label() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(QuestionMode::Ask, Duration::from_secs(60)).await;
    run.submit(dir.path()).await;
    let request = run.asked().await;
    let snapshot = run.engine.snapshot().await.unwrap();
    assert_eq!(snapshot.approvals.len(), 1, "in the inbox");
    assert!(snapshot.approvals[0].ask.is_question());
    assert_eq!(snapshot.approvals[0].ask.permission, "question");

    // Answers that do not fit are refused, saying what would, and change nothing. The
    // request is named by the short form the room shows, or 4 characters and more from its
    // start (`ocio answer 3gRj` found nothing before) or from the id's end.
    let short = short_id(&request).to_ascii_lowercase();
    let wrong = run
        .engine
        .answer(&short[..4], vec![Answer::Pick(vec![3])], Approver::Cli)
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ErrorKind::Invalid);
    assert!(
        wrong.message.contains("no option 3") && wrong.message.contains("1 red, 2 blue"),
        "{}",
        wrong.message
    );
    let approve = run
        .engine
        .approve(&request[request.len() - 5..], Decision::Once, Approver::Cli)
        .await
        .unwrap_err();
    assert!(
        approve.message.contains("is a question"),
        "{}",
        approve.message
    );
    assert_eq!(run.engine.snapshot().await.unwrap().approvals.len(), 1);

    run.engine
        .answer(&short, vec![Answer::Pick(vec![2])], Approver::Cli)
        .await
        .unwrap();
    let again = run
        .engine
        .answer(&short, vec![Answer::Pick(vec![2])], Approver::Cli)
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::NotFound, "answered once only");
    assert!(
        again
            .message
            .contains("by its whole id, or by 4 or more characters"),
        "says what names a request: {}",
        again.message
    );
    let (result, causes) = run.finished().await;
    assert!(result.contains("answered Colour: blue"), "{result}");
    assert!(
        causes.iter().any(|c| c.starts_with(
            "answered \"blue\" by the operator (ocio answer): question \"Which colour should the button be?\""
        ) && c.ends_with(&format!("[{request}]"))),
        "the control log names the answer and who gave it: {causes:#?}"
    );
    // The exchange is in the session's transcript: asked, then answered, once each.
    let session = run.store.read(query::sessions).await.unwrap()[0].id;
    let notes: Vec<String> = run
        .engine
        .transcript(session)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.part.as_deref().is_some_and(|p| p.ends_with(&request)))
        .map(|e| e.activity.summary())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes[0].starts_with("asks question \"Which colour"),
        "{notes:#?}"
    );
    assert!(notes[1].starts_with("answered \"blue\""), "{notes:#?}");
    run.engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_typed_answer_and_a_rejection_reach_the_session() {
    let dir = tempfile::tempdir().unwrap();
    for (answer, expected, cause) in [
        (
            Some(Answer::Text("green, please".into())),
            "answered Colour: green, please",
            "answered \"green, please\" by a control client (socket)",
        ),
        (None, "Colour: rejected", "rejected by the operator (key)"),
    ] {
        let mut run = start(QuestionMode::Ask, Duration::from_secs(60)).await;
        run.submit(dir.path()).await;
        let request = run.asked().await;
        let answer_is_rejection = answer.is_none();
        match answer {
            Some(answer) => run
                .engine
                .answer(&request, vec![answer], Approver::Client)
                .await
                .unwrap(),
            None => run
                .engine
                .approve(&request, Decision::Reject, Approver::Key)
                .await
                .unwrap(),
        }
        if answer_is_rejection {
            // Rejected, the session stops there (as OpenCode's does) and waits for the
            // operator's word: the task is not done, nothing runs on from it.
            let cause = "it stopped there and waits for your next message";
            let waits = next(
                &mut run.events,
                |e| matches!(e, EngineEvent::Transition(t) if t.cause.starts_with(cause)),
            )
            .await;
            let EngineEvent::Transition(waits) = waits else {
                unreachable!()
            };
            let session = match waits.transition {
                Transition::Session { id, to, .. } => {
                    assert_eq!(to, SessionStatus::WaitingApproval);
                    id
                }
                other => panic!("{other:?}"),
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            let snapshot = run.engine.snapshot().await.unwrap();
            assert_eq!(snapshot.plans[0].tasks[0].status, TaskStatus::Running);
            run.engine
                .say(session, "pick green yourself")
                .await
                .unwrap();
        }
        let (result, causes) = run.finished().await;
        assert!(result.contains(expected), "{result}");
        assert!(causes.iter().any(|c| c.starts_with(cause)), "{causes:#?}");
        if answer_is_rejection {
            assert!(result.contains("steered: pick green yourself"), "{result}");
        }
        run.engine.shutdown().await.unwrap();
    }
}

#[tokio::test]
/// Nobody answered: the agent is told so and to decide itself (a typed answer), and goes on
/// (a rejection would end its turn there, and its task was done with nothing).
async fn an_unanswered_question_is_answered_after_the_timeout_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(QuestionMode::Ask, Duration::from_millis(300)).await;
    run.submit(dir.path()).await;
    run.asked().await;
    let (result, causes) = run.finished().await;
    assert!(
        result.contains(
            "Colour: Your question was not answered (no answer within 300ms ([engine] question_timeout)). Decide yourself"
        ),
        "{result}"
    );
    assert!(
        causes.iter().any(|c| c.starts_with(
            "answered by policy (no answer within 300ms ([engine] question_timeout): decide yourself)"
        )),
        "{causes:#?}"
    );
    run.engine.shutdown().await.unwrap();
}

/// `auto`: a question waits as long as a control room follows the engine, and its timeout
/// counts from when the last one leaves.
#[tokio::test]
async fn in_auto_a_question_waits_while_a_room_follows_and_times_out_once_none_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(QuestionMode::Auto, Duration::from_secs(1)).await;
    let room = run.engine.feed(Follower::Room).await.unwrap();
    let stream = run.engine.feed(Follower::Stream).await.unwrap();
    run.submit(dir.path()).await;
    run.asked().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        run.engine.snapshot().await.unwrap().approvals.len(),
        1,
        "a room follows: the question waits past its timeout"
    );
    drop(room);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        run.engine.snapshot().await.unwrap().approvals.len(),
        1,
        "the timeout counts from when the room left, not from when it was asked"
    );
    let (result, causes) = run.finished().await;
    assert!(
        result.contains("Colour: Your question was not answered ("),
        "{result}"
    );
    assert!(
        causes.iter().any(|c| c
            .starts_with("answered by policy (no control room attached and no answer within 1s")),
        "{causes:#?}"
    );
    drop(stream);
    run.engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_questions_denied_the_session_is_not_offered_to_ask() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(QuestionMode::Deny, Duration::from_secs(60)).await;
    run.submit(dir.path()).await;
    let (result, _) = run.finished().await;
    assert!(
        result.contains("Colour: not asked (questions are denied); decided alone"),
        "{result}"
    );
    run.engine.shutdown().await.unwrap();
}

/// Against a real OpenCode server with the scripted model calling OpenCode's `question` tool,
/// three tasks one after another: the first question is answered in the engine (option 2) and
/// the model's next call gets that answer; the second is answered on the server itself (as
/// `opencode attach` would), so it leaves the inbox unanswered by ocio; the third is pending
/// when ocio stops, is read back from the server by the next start, and answered then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_on_a_real_server_are_relayed_answered_withdrawn_and_survive_a_restart() {
    use ocio::scripted::{Rule, Script, Turn};
    use std::time::Instant;

    let question = |q: &str, header: &str| {
        serde_json::json!({ "questions": [{
            "question": q, "header": header,
            "options": [
                {"label": "small", "description": "fits"},
                {"label": "blue", "description": "cool"}
            ]
        }]})
    };
    let mut script = Script::new();
    for (key, header) in [("first", "One"), ("second", "Two"), ("third", "Three")] {
        script = script.rule(
            Rule::when(format!("ask {key}"))
                .turn(Turn::tool(
                    "question",
                    question(&format!("Which {key}?"), header),
                ))
                .turn(Turn::text(format!("{key} done"))),
        );
    }
    let server = support::TestServer::start(script).await;
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("ocio.redb");
    let plan = state.path().join("q.toml");
    let mut text = format!(
        "name = \"q\"\nrepo = {:?}\nworktrees = false\n",
        repo.dir_str()
    );
    for (key, needs) in [("first", ""), ("second", "first"), ("third", "second")] {
        let needs = if needs.is_empty() {
            String::new()
        } else {
            format!("needs = [\"{needs}\"]\n")
        };
        text.push_str(&format!(
            "[[tasks]]\nid = \"{key}\"\nprompt = \"ask {key}\"\n{needs}"
        ));
    }
    std::fs::write(&plan, text).unwrap();
    let options = || EngineOptions {
        questions: QuestionPolicy {
            mode: QuestionMode::Ask,
            timeout: Duration::from_secs(300),
        },
        ..EngineOptions::default()
    };
    let agent = || support::scripted_agent(server.client());
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store.clone(), vec![agent()], options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    engine
        .submit_plan(PlanFile::load(&plan).unwrap())
        .await
        .unwrap();

    // 1. Answered in the engine; the model's next call has the answer.
    let request = next_question(&mut events).await;
    let seen = Instant::now();
    let asked_at = server
        .model
        .requests()
        .iter()
        .find(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("ask first"))
                && r.turn == 0
        })
        .and_then(|r| r.at)
        .unwrap();
    eprintln!(
        "question latency: {} ms from the model's tool call to the engine's inbox",
        seen.duration_since(asked_at).as_millis()
    );
    engine
        .answer(&request, vec![Answer::Pick(vec![2])], Approver::Cli)
        .await
        .unwrap();
    let answered = wait_for(|| {
        server.model.requests().into_iter().find(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("ask first"))
                && r.turn == 1
        })
    })
    .await;
    assert!(
        answered.tool_results.iter().any(|t| t.contains("blue")),
        "the model got the answer: {:?}",
        answered.tool_results
    );

    // 2. Answered on the server itself: it leaves the inbox, and nothing is sent for it.
    let request = next_question(&mut events).await;
    let client = server.client();
    client
        .reply_question(&repo.dir_str(), &request, vec![vec!["small".into()]])
        .await
        .unwrap();
    let withdrawn = next(
        &mut events,
        |e| matches!(e, EngineEvent::RequestWithdrawn { request: r, .. } if *r == request),
    )
    .await;
    let EngineEvent::RequestWithdrawn { why, .. } = withdrawn else {
        unreachable!()
    };
    assert!(why.contains("answered on its server"), "{why}");
    assert!(engine.snapshot().await.unwrap().approvals.is_empty());
    let err = engine
        .answer(&request, vec![Answer::Pick(vec![1])], Approver::Cli)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);

    // 3. Pending when ocio stops: the next start reads it back from the server.
    let request = next_question(&mut events).await;
    engine.shutdown().await.unwrap();
    store.close().await;
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store.clone(), vec![agent()], options())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let back = wait_for_async(|| async {
        let snapshot = engine.snapshot().await.unwrap();
        snapshot.approvals.into_iter().find(|a| a.ask.id == request)
    })
    .await;
    assert_eq!(back.task, "third");
    assert!(back.ask.is_question());
    engine
        .answer(&request, vec![Answer::Text("round".into())], Approver::Cli)
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE * 4).await;
    assert!(
        matches!(
            finished,
            EngineEvent::PlanFinished {
                ok: true,
                done: 3,
                ..
            }
        ),
        "{finished:?}"
    );
    let tasks = store.read(query::tasks).await.unwrap();
    let third = tasks.iter().find(|t| t.key == "third").unwrap();
    assert_eq!(third.result.as_deref(), Some("third done"));
    let third_calls: Vec<_> = server
        .model
        .requests()
        .into_iter()
        .filter(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("ask third"))
        })
        .collect();
    assert!(
        third_calls
            .iter()
            .any(|r| r.tool_results.iter().any(|t| t.contains("round"))),
        "{third_calls:#?}"
    );
    assert_eq!(
        third_calls.iter().filter(|r| r.turn == 0).count(),
        1,
        "the third task was prompted once, across the restart"
    );
    engine.shutdown().await.unwrap();
    server.stop().await;
}

async fn next_question(events: &mut Subscription) -> String {
    tokio::time::timeout(PATIENCE * 4, async {
        loop {
            if let EngineEvent::QuestionAsked { request, .. } = events.recv().await.unwrap() {
                return request;
            }
        }
    })
    .await
    .expect("a question came")
}

async fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + PATIENCE * 4;
    loop {
        if let Some(found) = found() {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_async<T, F: std::future::Future<Output = Option<T>>>(
    mut found: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + PATIENCE * 4;
    loop {
        if let Some(found) = found().await {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// OpenCode restarted while a question waits: the server no longer knows it, so it leaves the
/// inbox as withdrawn (stale), an answer to it is refused (never sent blindly), and the task
/// runs again (the run was lost with the server), asking again; that question is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_the_restarted_server_no_longer_knows_is_dropped_not_answered() {
    use ocio::scripted::{Rule, Script, Turn};

    let question = serde_json::json!({ "questions": [{
        "question": "Which way?", "header": "Way",
        "options": [{"label": "left", "description": ""}, {"label": "right", "description": ""}]
    }]});
    let script = Script::new().rule(
        Rule::when("ask the way")
            .turn(Turn::tool("question", question))
            .turn(Turn::text("went the way")),
    );
    let mut server = support::TestServer::start(script).await;
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let options = EngineOptions {
        questions: QuestionPolicy {
            mode: QuestionMode::Ask,
            timeout: Duration::from_secs(300),
        },
        ..EngineOptions::default()
    };
    let engine = EngineHandle::start(
        store.clone(),
        vec![support::scripted_agent(server.client())],
        options,
    )
    .await
    .unwrap();
    let mut events = engine.subscribe();
    let plan = state.path().join("way.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"way\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"way\"\nprompt = \"ask the way\"\n",
            repo.dir_str()
        ),
    )
    .unwrap();
    engine
        .submit_plan(PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let first = next_question(&mut events).await;
    server.kill().await;
    server.restart().await;
    let withdrawn = next(
        &mut events,
        |e| matches!(e, EngineEvent::RequestWithdrawn { request, .. } if *request == first),
    )
    .await;
    let EngineEvent::RequestWithdrawn { why, .. } = withdrawn else {
        unreachable!()
    };
    assert!(why.contains("no longer has it"), "{why}");
    let refused = engine
        .answer(&first, vec![Answer::Pick(vec![1])], Approver::Cli)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotFound, "never sent blindly");

    // The run was lost with the server; the task runs again and asks again.
    let second = next_question(&mut events).await;
    assert_ne!(second, first);
    engine
        .answer(&second, vec![Answer::Pick(vec![2])], Approver::Cli)
        .await
        .unwrap();
    let (_, finished) = support::until_finished(&mut events, PATIENCE * 4).await;
    assert!(
        matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
        "{finished:?}"
    );
    let tasks = store.read(query::tasks).await.unwrap();
    assert_eq!(tasks[0].result.as_deref(), Some("went the way"));
    let answered: Vec<Vec<String>> = server
        .model
        .requests()
        .into_iter()
        .filter(|r| r.turn == 1)
        .map(|r| r.tool_results)
        .collect();
    assert!(
        answered
            .iter()
            .all(|results| !results.iter().any(|t| t.contains("left"))),
        "the stale question's answer never reached a model: {answered:?}"
    );
    engine.shutdown().await.unwrap();
    server.stop().await;
}

/// Against a real OpenCode server, a question the operator rejects and one nobody answers:
/// rejected, OpenCode ends the session's turn there; the session waits for the operator's
/// word, and the answer to that is the task's result (not the idle session's last message).
/// Unanswered, the policy answers it, telling the agent to decide itself, and the session goes
/// on. Both were covered by simulated sessions only. (OpenCode 1.18.33's `question` tool takes
/// no `custom` from the model: its questions always take a typed answer, so the policy's
/// reject-and-tell path for closed questions cannot be reached from a model here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_questions_on_a_real_server_leave_the_session_waiting_or_deciding() {
    use ocio::scripted::{Rule, Script, Turn};

    let question = serde_json::json!({ "questions": [{
        "question": "Which size?", "header": "Size",
        "options": [
            {"label": "small", "description": "fits"},
            {"label": "large", "description": "roomy"}
        ]
    }]});
    let script = Script::new()
        .rule(
            Rule::when("ask and be rejected")
                .turn(Turn::tool("question", question.clone()))
                .turn(Turn::text("answered the rejection itself")),
        )
        .rule(Rule::when("use large then").turn(Turn::text("went with large")))
        .rule(
            Rule::when("ask nobody")
                .turn(Turn::tool("question", question))
                .turn(Turn::text("decided: small")),
        );
    let server = support::TestServer::start(script).await;
    let repo = support::TestRepo::new();
    for (key, prompt, timeout) in [
        ("rejected", "ask and be rejected", Duration::from_secs(300)),
        ("unanswered", "ask nobody", Duration::from_secs(1)),
    ] {
        let state = tempfile::tempdir().unwrap();
        let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
        let options = EngineOptions {
            questions: QuestionPolicy {
                mode: QuestionMode::Ask,
                timeout,
            },
            ..EngineOptions::default()
        };
        let agent = support::scripted_agent(server.client());
        let engine = EngineHandle::start(store.clone(), vec![agent], options)
            .await
            .unwrap();
        let mut events = engine.subscribe();
        let plan = state.path().join("q.toml");
        std::fs::write(
            &plan,
            format!(
                "name = \"{key}\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"{key}\"\nprompt = \"{prompt}\"\n",
                repo.dir_str()
            ),
        )
        .unwrap();
        engine
            .submit_plan(PlanFile::load(&plan).unwrap())
            .await
            .unwrap();
        let request = next_question(&mut events).await;
        let expected = if key == "rejected" {
            engine
                .approve(&request, Decision::Reject, Approver::Key)
                .await
                .unwrap();
            let cause = "it stopped there and waits for your next message";
            let waits = next(
                &mut events,
                |e| matches!(e, EngineEvent::Transition(t) if t.cause.starts_with(cause)),
            )
            .await;
            let EngineEvent::Transition(waits) = waits else {
                unreachable!()
            };
            let Transition::Session { id: session, .. } = waits.transition else {
                panic!("{waits:?}")
            };
            // The server ended the turn at the rejection: still the task is not done.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let snapshot = engine.snapshot().await.unwrap();
            assert_eq!(snapshot.plans[0].tasks[0].status, TaskStatus::Running);
            engine.say(session, "use large then").await.unwrap();
            "went with large"
        } else {
            "decided: small"
        };
        let (_, finished) = support::until_finished(&mut events, PATIENCE * 4).await;
        assert!(
            matches!(finished, EngineEvent::PlanFinished { ok: true, .. }),
            "{key}: {finished:?}"
        );
        let tasks = store.read(query::tasks).await.unwrap();
        assert_eq!(tasks[0].result.as_deref(), Some(expected), "{key}");
        if key == "unanswered" {
            let told = server.model.requests().into_iter().any(|r| {
                r.tool_results.iter().any(|t| {
                    t.contains("Your question was not answered") && t.contains("Decide yourself")
                })
            });
            assert!(told, "the model was told to decide itself");
        }
        engine.shutdown().await.unwrap();
    }
    server.stop().await;
}
