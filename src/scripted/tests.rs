//! Tests of the scripted model over HTTP: a live server on 127.0.0.1 and reqwest calls shaped
//! like OpenCode's (no OpenCode needed).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::openai::SUMMARY_TEXT;
use super::script::DEFAULT_TITLE;
use super::server::Served;
use super::{
    DONE_TEXT, MODEL_ID, Rule, STRUCTURED_OUTPUT_TOOL, Script, ScriptedModel, SideJob, Turn,
};

const CODING_TOOLS: &[&str] = &["bash", "edit", "read", "write"];

/// A chat request as OpenCode sends it for a coding call.
fn coding_call(messages: Value) -> Value {
    coding_call_with(messages, CODING_TOOLS)
}

fn coding_call_with(messages: Value, tools: &[&str]) -> Value {
    let tools: Vec<Value> = tools
        .iter()
        .map(|n| json!({"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}))
        .collect();
    json!({
        "model": MODEL_ID, "max_tokens": 32000, "stream": true,
        "stream_options": {"include_usage": true}, "tool_choice": "auto",
        "tools": tools, "messages": messages,
    })
}

fn user(text: &str) -> Value {
    json!([{"role": "system", "content": "You are opencode"}, {"role": "user", "content": text}])
}

async fn post(model: &ScriptedModel, body: &Value, session: &str) -> reqwest::Response {
    crate::opencode::client::http_builder()
        .build()
        .unwrap()
        .post(format!("{}/chat/completions", model.base_url()))
        .header("x-session-id", session)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `data:` payloads of an event stream, `[DONE]` kept as a string.
fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_owned())))
        .collect()
}

/// Text, tool calls `(name, arguments)`, finish reason and usage of a complete stream.
fn read_stream(body: &str) -> (String, Vec<(String, Value)>, String, Value) {
    let events = events(body);
    assert_eq!(
        events.last(),
        Some(&json!("[DONE]")),
        "stream must end with [DONE]: {body}"
    );
    let chunks = &events[..events.len() - 1];
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let deltas = chunks.iter().map(|c| &c["choices"][0]["delta"]);
    let text: String = deltas
        .clone()
        .filter_map(|d| d["content"].as_str())
        .collect();
    let calls = deltas
        .flat_map(|d| d["tool_calls"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            let args = c["function"]["arguments"].as_str().unwrap();
            (
                c["function"]["name"].as_str().unwrap().to_owned(),
                serde_json::from_str(args).unwrap(),
            )
        })
        .collect();
    let last = chunks.last().unwrap();
    let finish = last["choices"][0]["finish_reason"]
        .as_str()
        .unwrap()
        .to_owned();
    (text, calls, finish, last["usage"].clone())
}

async fn call_text(model: &ScriptedModel, body: &Value) -> (String, Vec<(String, Value)>, String) {
    let response = post(model, body, "ses_test").await;
    assert_eq!(response.status(), 200);
    let (text, calls, finish, _) = read_stream(&response.text().await.unwrap());
    (text, calls, finish)
}

#[tokio::test]
async fn text_turn_streams_chunks_with_usage_and_done() {
    let script = Script::new().rule(Rule::when("hi").turn(Turn::text("hello there").usage(12, 3)));
    let model = ScriptedModel::start(script).await.unwrap();
    assert!(model.base_url().starts_with("http://127.0.0.1:"));
    let response = post(&model, &coding_call(user("say hi")), "ses_a").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (text, calls, finish, usage) = read_stream(&response.text().await.unwrap());
    assert_eq!(text, "hello there");
    assert!(calls.is_empty());
    assert_eq!(finish, "stop");
    assert_eq!(
        usage,
        json!({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
    );
    let log = model.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].session_id.as_deref(), Some("ses_a"));
    assert_eq!(log[0].last_user_text.as_deref(), Some("say hi"));
    assert_eq!(
        (log[0].rule, log[0].turn, log[0].served),
        (Some(0), 0, Served::Reply)
    );
    assert_eq!(log[0].tools, CODING_TOOLS);
    model.shutdown().await;
}

#[tokio::test]
async fn tool_turn_streams_tool_call_deltas() {
    let turn = Turn::write("hello.txt", "hi\n")
        .and_tool("bash", json!({"command": "ls"}))
        .with_text("writing");
    let model = ScriptedModel::start(Script::new().rule(Rule::when("write").turn(turn)))
        .await
        .unwrap();
    let body = post(&model, &coding_call(user("write hello")), "s")
        .await
        .text()
        .await
        .unwrap();
    let (text, calls, finish, usage) = read_stream(&body);
    assert_eq!(text, "writing");
    assert_eq!(finish, "tool_calls");
    assert_eq!(usage, Value::Null);
    assert_eq!(
        calls,
        vec![
            (
                "write".to_owned(),
                json!({"filePath": "hello.txt", "content": "hi\n"})
            ),
            ("bash".to_owned(), json!({"command": "ls"})),
        ]
    );
    let ids: Vec<Value> = events(&body)
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("call_0_0"), json!("call_0_1")]);
    model.shutdown().await;
}

#[tokio::test]
async fn turns_follow_the_conversation_and_restart_at_each_prompt() {
    let script = Script::new().rule(
        Rule::when("write hello")
            .named("hello")
            .turn(Turn::write("hello.txt", "hi"))
            .turn(Turn::text("wrote it")),
    );
    let model = ScriptedModel::start(script).await.unwrap();
    let tool_round = json!([
        {"role": "system", "content": "You are opencode"},
        {"role": "user", "content": "write hello"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0_0", "type": "function",
            "function": {"name": "write", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_0_0", "content": "Wrote file successfully."},
    ]);
    let (_, calls, _) = call_text(&model, &coding_call(user("write hello"))).await;
    assert_eq!(calls[0].0, "write");
    assert_eq!(
        call_text(&model, &coding_call(tool_round.clone())).await.0,
        "wrote it"
    );

    let mut past = tool_round.as_array().unwrap().clone();
    past.push(json!({"role": "assistant", "content": "wrote it"}));
    past.push(json!({"role": "user", "content": "more?"}));
    past.push(json!({"role": "assistant", "content": "x"}));
    past.push(json!({"role": "user", "content": "write hello again"}));
    past.push(json!({"role": "assistant", "content": "y"}));
    past.push(json!({"role": "assistant", "content": "z"}));
    let (text, _, finish) = call_text(&model, &coding_call(Value::Array(past.clone()))).await;
    assert_eq!((text.as_str(), finish.as_str()), (DONE_TEXT, "stop"));

    past.truncate(past.len() - 2);
    let (_, calls, _) = call_text(&model, &coding_call(Value::Array(past))).await;
    assert_eq!(calls[0].0, "write", "a new prompt starts again at turn 0");

    let log = model.requests();
    let turns: Vec<(usize, bool)> = log.iter().map(|r| (r.turn, r.past_end)).collect();
    assert_eq!(turns, vec![(0, false), (1, false), (2, true), (0, false)]);
    assert!(log.iter().all(|r| r.rule_name.as_deref() == Some("hello")));
    model.shutdown().await;
}

#[tokio::test]
async fn side_jobs_get_a_fixed_answer_and_leave_the_rules_alone() {
    let script = Script::new().rule(Rule::when("write hello").turn(Turn::write("a", "b")));
    let model = ScriptedModel::start(script).await.unwrap();
    let title = json!({
        "model": MODEL_ID, "stream": true, "messages": [
            {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
            {"role": "user", "content": "Generate a title for this conversation:\n"},
            {"role": "user", "content": "write hello"},
        ]
    });
    let (text, calls, finish) = call_text(&model, &title).await;
    assert_eq!((text.as_str(), finish.as_str()), (DEFAULT_TITLE, "stop"));
    assert!(calls.is_empty());
    let summary = json!({"stream": true, "messages": [
        {"role": "system", "content": "You are a context summarization agent."},
        {"role": "user", "content": "Here is the conversation so far: write hello"},
    ]});
    assert_eq!(call_text(&model, &summary).await.0, SUMMARY_TEXT);

    let (_, calls, _) = call_text(&model, &coding_call(user("write hello"))).await;
    assert_eq!(calls.len(), 1, "the side jobs did not use up turn 0");
    let log = model.requests();
    let jobs: Vec<_> = log.iter().map(|r| (r.side_job, r.rule)).collect();
    assert_eq!(
        jobs,
        vec![
            (Some(SideJob::Title), None),
            (Some(SideJob::Summary), None),
            (None, Some(0))
        ]
    );
    model.shutdown().await;
}

#[tokio::test]
async fn structured_turn_calls_the_structured_output_tool() {
    let answer = json!({"tasks": ["a", "b"]});
    let script = Script::new().rule(Rule::when("plan").turn(Turn::structured(answer.clone())));
    let model = ScriptedModel::start(script).await.unwrap();
    let mut offered = CODING_TOOLS.to_vec();
    offered.push(STRUCTURED_OUTPUT_TOOL);
    let (_, calls, finish) = call_text(&model, &coding_call_with(user("plan it"), &offered)).await;
    assert_eq!(finish, "tool_calls");
    assert_eq!(
        calls,
        vec![(STRUCTURED_OUTPUT_TOOL.to_owned(), answer.clone())]
    );

    let (text, calls, finish) = call_text(&model, &coding_call(user("plan it"))).await;
    assert!(calls.is_empty());
    assert_eq!(finish, "stop");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), answer);
    model.shutdown().await;
}

#[tokio::test]
async fn fail_status_answers_an_openai_error_and_fail_times_lets_retries_through() {
    let script = Script::new()
        .rule(Rule::when("down").turn(Turn::fail(500)))
        .rule(Rule::when("refused").turn(Turn::fail(400).fail_message("no such thing")))
        .rule(Rule::when("flaky").turn(Turn::fail(503).fail_times(1).with_text("recovered")));
    let model = ScriptedModel::start(script).await.unwrap();

    let down = post(&model, &coding_call(user("down")), "s1").await;
    assert_eq!(down.status(), 500);
    assert_eq!(down.headers()["retry-after-ms"], "10");
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["message"], "scripted failure (status 500)");

    let refused = post(&model, &coding_call(user("refused")), "s1").await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "no such thing");

    assert_eq!(
        post(&model, &coding_call(user("flaky")), "ses_test")
            .await
            .status(),
        503
    );
    assert_eq!(
        call_text(&model, &coding_call(user("flaky"))).await.0,
        "recovered"
    );
    assert_eq!(
        post(&model, &coding_call(user("flaky")), "s3")
            .await
            .status(),
        503,
        "each session fails on its own"
    );
    let served: Vec<Served> = model.requests().iter().map(|r| r.served).collect();
    assert_eq!(
        served,
        vec![
            Served::Failed { status: 500 },
            Served::Failed { status: 400 },
            Served::Failed { status: 503 },
            Served::Reply,
            Served::Failed { status: 503 },
        ]
    );
    model.shutdown().await;
}

#[tokio::test]
async fn broken_turn_cuts_the_stream_before_done() {
    let script = Script::new()
        .rule(Rule::when("break").turn(Turn::text("abcdefghij").broken()))
        .rule(Rule::when("glitch").turn(Turn::text("whole").broken().fail_times(1)));
    let model = ScriptedModel::start(script).await.unwrap();
    let mut response = post(&model, &coding_call(user("break")), "s").await;
    assert_eq!(response.status(), 200);
    let mut received = Vec::new();
    let error = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => received.extend_from_slice(&bytes),
            Ok(None) => panic!("the stream ended cleanly"),
            Err(error) => break error,
        }
    };
    assert!(
        error.is_body() || error.is_decode() || error.is_request(),
        "{error:?}"
    );
    let received = String::from_utf8(received).unwrap();
    assert!(received.contains("\"content\":\"abcde\""), "{received}");
    assert!(!received.contains("[DONE]"));
    assert_eq!(model.requests()[0].served, Served::Broken);

    let mut first = post(&model, &coding_call(user("glitch")), "ses_test").await;
    while let Ok(Some(_)) = first.chunk().await {}
    assert_eq!(
        call_text(&model, &coding_call(user("glitch"))).await.0,
        "whole"
    );
    model.shutdown().await;
}

#[tokio::test]
async fn hung_call_is_released_by_shutdown() {
    let model = ScriptedModel::start(Script::new().rule(Rule::when("hang").turn(Turn::hang())))
        .await
        .unwrap();
    let url = format!("{}/chat/completions", model.base_url());
    let pending = tokio::spawn(async move {
        crate::opencode::client::http_builder()
            .build()
            .unwrap()
            .post(url)
            .json(&coding_call(user("hang please")))
            .send()
            .await
            .map(|r| r.status())
    });
    let log = model.wait_for_requests(1, Duration::from_secs(5)).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].served, Served::Hung);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "a hung call gets no answer");

    let started = Instant::now();
    model.shutdown().await;
    let status = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn delay_holds_the_answer_back() {
    let script = Script::new().fallback([Turn::text("late").delay_ms(300)]);
    let model = ScriptedModel::start(script).await.unwrap();
    let started = Instant::now();
    assert_eq!(
        call_text(&model, &coding_call(user("anything"))).await.0,
        "late"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    model.shutdown().await;
}

#[tokio::test]
async fn models_non_stream_bad_requests_and_unknown_paths() {
    let model = ScriptedModel::start(Script::new().fallback([Turn::read("a.txt").usage(1, 2)]))
        .await
        .unwrap();
    let client = crate::opencode::client::http_builder().build().unwrap();
    let models: Value = client
        .get(format!("{}/models", model.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], MODEL_ID);

    let mut body = coding_call(user("read it"));
    body["stream"] = json!(false);
    let whole: Value = post(&model, &body, "s").await.json().await.unwrap();
    assert_eq!(whole["object"], "chat.completion");
    let choice = &whole["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["tool_calls"][0]["function"]["name"],
        "read"
    );
    assert_eq!(whole["usage"]["total_tokens"], 3);

    for bad in ["not json", "{\"messages\": 3}", "{}"] {
        let response = client
            .post(format!("{}/chat/completions", model.base_url()))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("bad chat")
        );
    }
    let missing = client
        .get(format!("{}/nothing", model.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(model.requests().len(), 1, "rejected calls are not logged");
    model.shutdown().await;
}

#[tokio::test]
async fn parallel_calls_are_all_answered_and_logged() {
    let script = Script::new().fallback([Turn::text("ok").delay_ms(50)]);
    let model = ScriptedModel::start(script).await.unwrap();
    let calls = (0..8).map(|i| {
        let body = coding_call(user(&format!("task {i}")));
        let model = &model;
        async move { call_text(model, &body).await.0 }
    });
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(|a| a == "ok"));
    let mut seqs: Vec<u64> = model.requests().iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
    model.shutdown().await;
}

#[tokio::test]
async fn invalid_script_is_refused_at_start_and_drop_stops_the_server() {
    let bad = Script::new().rule(Rule::when("x").turn(Turn::fail(302)));
    assert!(ScriptedModel::start(bad).await.is_err());

    let model = ScriptedModel::start(Script::new()).await.unwrap();
    let url = format!("{}/models", model.base_url());
    drop(model);
    let client = crate::opencode::client::http_builder().build().unwrap();
    let mut refused = false;
    for _ in 0..50 {
        if client.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the server still answers after drop");
}
