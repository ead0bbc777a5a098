//! Keeps the stand-in OpenCode server (`support/standin.rs`) honest: one task run through ocio's
//! engine and OpenCode runner against a real `opencode serve` (scripted model: a `write` tool
//! call, then text) and against the stand-in (one tool step, then text), and what ocio saw of
//! each compared: how the plan ended, the transcript's entry kinds in order, the usage, the
//! result; that a prompt sent twice with one `messageID` runs once; the kinds of request ocio
//! made of each (a counting proxy in front of the real one);
//! and that the stand-in had a route for every request ocio made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/standin.rs"]
mod standin;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ocio::engine::view::Activity;
use ocio::engine::{EngineEvent, EngineHandle, EngineOptions};
use ocio::scripted::{Rule, Script, Turn};
use ocio::store::{Store, StoreOptions, query};
use standin::{Standin, StandinOptions};
use support::counting_proxy::CountingProxy;

/// What ocio saw of one run.
#[derive(Debug, PartialEq)]
struct Seen {
    /// How the plan finished: ok, done, failed.
    finished: (bool, usize, usize),
    /// The transcript's entry kinds in order, a kind repeated in a row told once.
    kinds: Vec<String>,
    /// Tokens in and out were counted.
    usage_counted: bool,
    /// The session's result was stored.
    has_result: bool,
}

async fn run_on(url: &str) -> Seen {
    let client = ocio::opencode::client::Client::new(url, None, support::test_options()).unwrap();
    let agent = support::scripted_agent_with(client, 1);
    let repo = support::TestRepo::new();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("ocio.redb"), StoreOptions::default()).unwrap();
    let engine = EngineHandle::start(store.clone(), vec![agent], EngineOptions::default())
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let plan = state.path().join("honest.toml");
    let text = format!(
        "name = \"honest\"\nrepo = {:?}\nworktrees = false\n[[tasks]]\nid = \"note\"\nprompt = \"Write the note\"\n",
        repo.dir_str()
    );
    std::fs::write(&plan, text).unwrap();
    engine
        .submit_plan(ocio::plan::PlanFile::load(&plan).unwrap())
        .await
        .unwrap();
    let mut kinds: Vec<String> = Vec::new();
    let finished = loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("the plan never finished")
            .unwrap();
        match event {
            EngineEvent::PlanFinished {
                ok, done, failed, ..
            } => break (ok, done, failed),
            EngineEvent::Activity { entry, .. } => {
                let kind = kind_of(&entry.activity);
                if kinds.last() != Some(&kind) {
                    kinds.push(kind);
                }
            }
            _ => {}
        }
    };
    let sessions = store.read(query::sessions).await.unwrap();
    let session = sessions.first().expect("one session");
    let tasks = store.read(query::tasks).await.unwrap();
    eprintln!("{url}: {:?} usage {:?}", session.status, session.usage);
    let seen = Seen {
        finished,
        kinds,
        usage_counted: session.usage.input_tokens > 0 && session.usage.output_tokens > 0,
        has_result: tasks
            .iter()
            .all(|t| t.result.as_deref().is_some_and(|r| !r.is_empty())),
    };
    engine.shutdown().await.unwrap();
    store.close().await;
    seen
}

fn kind_of(activity: &Activity) -> String {
    match activity {
        Activity::Text { .. } => "text".into(),
        Activity::Tool { tool, status, .. } => format!("tool {tool} {status}"),
        Activity::Step { .. } => "step".into(),
        Activity::Note { text } => format!("note {text}"),
        Activity::Edited { .. } => "edited".into(),
        Activity::Retry { .. } => "retry".into(),
    }
}

/// A prompt sent twice with the same `messageID` (`prompt_async`): the roles of the messages
/// the session then has. Run once, it is one user message and one answer.
async fn prompted_twice(url: &str) -> Vec<&'static str> {
    use ocio::opencode::wire::{MessageInfo, ModelSelector, PromptPart, PromptRequest};
    let client = ocio::opencode::client::Client::new(url, None, support::test_options()).unwrap();
    let repo = support::TestRepo::new();
    let dir = repo.dir_str();
    let session = client
        .create_session(&dir, &Default::default())
        .await
        .unwrap();
    let prompt = PromptRequest {
        message_id: Some("msg_0123456789abTwiceSentIdXy".into()),
        model: Some(ModelSelector {
            provider_id: ocio::scripted::PROVIDER_ID.into(),
            model_id: ocio::scripted::MODEL_ID.into(),
        }),
        parts: vec![PromptPart::Text {
            text: "Say hi".into(),
        }],
        ..PromptRequest::default()
    };
    for _ in 0..2 {
        client
            .prompt_async(&dir, &session.id, &prompt)
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = client.session_status(&dir).await.unwrap();
        let messages = client.messages(&dir, &session.id, None).await.unwrap();
        let answered = messages
            .iter()
            .any(|m| matches!(&m.info, MessageInfo::Assistant(_)));
        if answered && !busy.contains_key(&session.id) {
            return messages
                .iter()
                .map(|m| match m.info {
                    MessageInfo::User(_) => "user",
                    MessageInfo::Assistant(_) => "assistant",
                    MessageInfo::Unknown => "unknown",
                })
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url}: never answered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_looks_to_ocio_as_a_real_server_does() {
    let script = Script::new()
        .rule(
            Rule::when("Write the note")
                .turn(Turn::write("note.txt", "a note\n").usage(300, 10))
                .turn(Turn::text("wrote note.txt").usage(400, 5)),
        )
        .rule(Rule::when("Say hi").turn(Turn::text("hi").usage(50, 2)));
    let real = support::TestServer::start(script).await;
    let proxy = CountingProxy::start(real.url()).await;
    let standin = Standin::start(StandinOptions {
        every: Duration::from_millis(20),
        deltas: 2,
        tool_steps: Some(1),
        ..StandinOptions::default()
    })
    .await;
    let from_real = run_on(&proxy.url).await;
    let twice_real = prompted_twice(real.url()).await;
    let real_kinds: BTreeSet<String> = proxy.counts().into_keys().collect();
    let from_standin = run_on(standin.url()).await;
    real.stop().await;
    let stats = standin.stats();
    // The scripted "Say hi" is one text step: so is the stand-in's here.
    let texter = Standin::start(StandinOptions {
        every: Duration::from_millis(20),
        tool_steps: Some(0),
        ..StandinOptions::default()
    })
    .await;
    let twice_standin = prompted_twice(texter.url()).await;
    assert!(
        texter.stats().unrouted.is_empty(),
        "{:?}",
        texter.stats().unrouted
    );
    eprintln!(
        "real:     {from_real:?}\nstand-in: {from_standin:?}\nrequests: {:?}",
        stats.requests
    );
    assert!(
        stats.unrouted.is_empty(),
        "requests the stand-in has no route for: {:?}",
        stats.unrouted
    );
    assert_eq!(from_standin, from_real);
    // A prompt sent again with its id runs once on both.
    assert_eq!(twice_real, ["user", "assistant"]);
    assert_eq!(twice_standin, twice_real);
    // ocio asked both the same kinds of request (how many of each depends on timing, and
    // whether the agent's health probe came round during the run too).
    let probe = |kinds: BTreeSet<String>| -> BTreeSet<String> {
        kinds
            .into_iter()
            .filter(|k| k != "GET /global/health")
            .collect()
    };
    assert_eq!(
        probe(stats.requests.into_keys().collect()),
        probe(real_kinds)
    );
}
