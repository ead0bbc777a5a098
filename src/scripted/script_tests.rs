//! Tests of the script (validation, rule and turn selection) and of how a
//! request is read (turn index, side jobs), without a server.

use serde_json::json;

use super::openai::{ChatRequest, SideJob};
use super::script::{DONE_TEXT, Match, Rule, Script, ScriptError, ToolCall, Turn, Usage};
use super::{MODEL_ID, PROVIDER_ID, opencode_config};

#[test]
fn a_failure_must_be_an_http_error() {
    let odd = Script::new().rule(Rule::when("x").named("odd").turn(Turn::fail(200)));
    let err = odd.validate().unwrap_err();
    assert!(matches!(err, ScriptError::Invalid(_)));
    assert!(err.to_string().contains("odd, turn 0"), "{err}");
    assert!(
        Script::new()
            .rule(Rule::when("x").turn(Turn::fail(503)))
            .validate()
            .is_ok()
    );
}

#[test]
fn first_matching_rule_wins_and_turns_run_out_into_done() {
    let script = Script::new()
        .rule(
            Rule::when("hello")
                .and_system("coder")
                .turn(Turn::text("one")),
        )
        .rule(
            Rule::when("hello")
                .turn(Turn::text("two"))
                .turn(Turn::text("three")),
        );

    let coder = script.select("say hello", "you are a coder", 0);
    assert_eq!(
        (coder.rule, coder.turn.text.as_deref()),
        (Some(0), Some("one"))
    );

    let other = script.select("say hello", "you are a poet", 1);
    assert_eq!(
        (other.rule, other.turn.text.as_deref()),
        (Some(1), Some("three"))
    );
    assert!(!other.past_end);

    let past = script.select("say hello", "you are a poet", 2);
    assert_eq!(past.rule, Some(1));
    assert!(past.past_end);
    assert_eq!(past.turn, Turn::text(DONE_TEXT));
}

#[test]
fn unmatched_calls_use_the_fallback_or_done() {
    let bare = Script::new().rule(Rule::when("hello").turn(Turn::text("hi")));
    let none = bare.select("something else", "", 0);
    assert_eq!((none.rule, none.past_end), (None, true));
    assert_eq!(none.turn, Turn::text(DONE_TEXT));

    let with_fallback = bare.fallback([Turn::text("fallback")]);
    let fb = with_fallback.select("something else", "", 0);
    assert_eq!((fb.rule, fb.past_end), (None, false));
    assert_eq!(fb.turn.text.as_deref(), Some("fallback"));
}

#[test]
fn an_empty_match_matches_everything() {
    assert!(Match::default().matches("", ""));
    assert!(Match::default().matches("anything", "at all"));
    let m = Match {
        contains: "Hello".into(),
        system_contains: String::new(),
    };
    assert!(!m.matches("hello", ""), "matching is case-sensitive");
}

#[test]
fn tool_helpers_use_opencode_argument_names() {
    let call = |t: Turn| t.tool_calls.into_iter().next().unwrap();
    assert_eq!(
        call(Turn::bash("ls -la")),
        ToolCall {
            name: "bash".into(),
            arguments: json!({"command": "ls -la"})
        }
    );
    assert_eq!(
        call(Turn::write("a.txt", "x")).arguments,
        json!({"filePath": "a.txt", "content": "x"})
    );
    assert_eq!(
        call(Turn::edit("a.txt", "x", "y")).arguments,
        json!({"filePath": "a.txt", "oldString": "x", "newString": "y"})
    );
    assert_eq!(
        call(Turn::read("a.txt")).arguments,
        json!({"filePath": "a.txt"})
    );
    let two = Turn::read("a").and_tool("glob", json!({"pattern": "*.rs"}));
    assert_eq!(two.tool_calls.len(), 2);
    assert_eq!(
        Turn::text("t").usage(3, 4).usage,
        Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 4
        })
    );
}

fn request(body: serde_json::Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

fn tools(names: &[&str]) -> serde_json::Value {
    names
        .iter()
        .map(|n| json!({"type": "function", "function": {"name": n, "parameters": {}}}))
        .collect()
}

#[test]
fn turn_index_counts_assistant_messages_after_the_last_user_message() {
    let first = request(json!({
        "model": "scripted-coder", "stream": true, "tools": tools(&["write"]),
        "messages": [
            {"role": "system", "content": "You are opencode"},
            {"role": "user", "content": "write hello"},
        ]
    }))
    .view(MODEL_ID);
    assert_eq!(first.turn_index, 0);
    assert_eq!(first.last_user_text.as_deref(), Some("write hello"));
    assert_eq!(first.system_text, "You are opencode");
    assert_eq!(first.tools, vec!["write".to_owned()]);
    assert!(first.stream);
    assert_eq!(first.side_job(), None);

    let after_tools = request(json!({
        "tools": tools(&["write"]),
        "messages": [
            {"role": "user", "content": "old prompt"},
            {"role": "assistant", "content": "old answer"},
            {"role": "user", "content": [{"type": "text", "text": "write"}, {"type": "text", "text": "hello"}]},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
                "function": {"name": "write", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "Wrote file successfully."},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "d", "content": "ok"},
        ]
    }))
    .view(MODEL_ID);
    assert_eq!(after_tools.turn_index, 2);
    assert_eq!(after_tools.last_user_text.as_deref(), Some("write\nhello"));
    assert!(!after_tools.stream);
    assert_eq!(after_tools.model, MODEL_ID);
}

#[test]
fn calls_without_tools_are_side_jobs() {
    let title = request(json!({
        "messages": [
            {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
            {"role": "user", "content": "Generate a title for this conversation:\n"},
            {"role": "user", "content": "write hello"},
        ]
    }))
    .view(MODEL_ID);
    assert_eq!(title.side_job(), Some(SideJob::Title));

    let summary = request(json!({
        "tools": [],
        "messages": [
            {"role": "system", "content": "You are a context summarization agent."},
            {"role": "user", "content": "Here is the conversation so far"},
        ]
    }))
    .view(MODEL_ID);
    assert_eq!(summary.side_job(), Some(SideJob::Summary));

    let other = request(json!({"messages": [{"role": "user", "content": "hi"}]})).view(MODEL_ID);
    assert_eq!(other.side_job(), Some(SideJob::Other));
}

#[test]
fn opencode_config_names_the_scripted_provider() {
    let config = opencode_config("http://127.0.0.1:9/v1");
    let provider = &config["provider"][PROVIDER_ID];
    assert_eq!(provider["npm"], "@ai-sdk/openai-compatible");
    assert_eq!(provider["options"]["baseURL"], "http://127.0.0.1:9/v1");
    assert!(provider["models"][MODEL_ID].is_object());
    assert_eq!(config["model"], "scripted/scripted-coder");
}

/// The sample script of `examples/scripted_model.rs` is a script: read as the example reads it,
/// checked as the server checks it, and its rules answer as its comments say.
#[test]
fn the_examples_sample_script_is_a_valid_script() {
    let script: Script =
        toml::from_str(include_str!("../../examples/scripted-model.toml")).unwrap();
    script.validate().unwrap();
    assert_eq!(script.rules.len(), 3);
    let names: Vec<_> = script.rules.iter().map(|r| r.name.as_deref()).collect();
    assert_eq!(names, [Some("hello"), Some("slow"), Some("flaky")]);
    assert_eq!(
        script.rules[0].turns[0],
        Turn::write("hello.txt", "hello\n").usage(120, 12)
    );
    assert!(script.fallback.is_some());
}
