//! Tests of the wire shapes: REST replies recorded from a real 1.18.33 server, request bodies as
//! the spec wants them, and tolerance.

use serde::de::DeserializeOwned;
use serde_json::json;

use super::*;

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = format!(
        "{}/tests/fixtures/opencode/rest/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn transcript() {
    let messages: Vec<MessageWithParts> = fixture("session-messages.json");
    assert_eq!(messages.len(), 6);
    let MessageInfo::User(user) = &messages[0].info else {
        panic!("first is the prompt")
    };
    assert_eq!(user.model.as_ref().unwrap().model_id, "fake-coder");
    assert!(matches!(&messages[0].parts[0], Part::Text(t) if t.text == "WRITE it"));
    let MessageInfo::Assistant(reply) = &messages[1].info else {
        panic!("second is the reply")
    };
    assert_eq!(reply.parent_id, user.id);
    assert_eq!(reply.finish.as_deref(), Some("tool-calls"));
    assert_eq!(reply.tokens.input, 5);
    assert!(reply.time.completed.is_some());
    let kinds: Vec<&str> = messages[1]
        .parts
        .iter()
        .map(|p| match p {
            Part::StepStart(_) => "step-start",
            Part::Tool(t) => {
                assert!(matches!(&t.state, ToolState::Completed { input, .. }
                    if input["filePath"] == "hello.txt"));
                "tool"
            }
            Part::StepFinish(_) => "step-finish",
            Part::Patch(p) => {
                assert!(p.files[0].ends_with("hello.txt"));
                "patch"
            }
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["step-start", "tool", "step-finish", "patch"]);
    for m in &messages {
        for p in &m.parts {
            assert_eq!(Some(p.message_id()), m.info.id());
            assert_eq!(Some(p.session_id()), m.info.session_id());
        }
    }
}

#[test]
fn structured_output_replies() {
    let ok: MessageWithParts = fixture("prompt-structured.json");
    let MessageInfo::Assistant(m) = ok.info else {
        panic!()
    };
    assert_eq!(m.structured, Some(json!({"tasks": ["a", "b"]})));
    assert_eq!(m.error, None);
    let failed: MessageWithParts = fixture("prompt-structured-error.json");
    let MessageInfo::Assistant(m) = failed.info else {
        panic!()
    };
    assert_eq!(m.structured, None);
    let error = m.error.unwrap();
    assert_eq!(error.name, "StructuredOutputError");
    assert_eq!(
        error.message.as_deref(),
        Some("Model did not produce structured output")
    );
}

#[test]
fn other_rest_replies() {
    let agents: Vec<AgentInfo> = fixture("agents.json");
    let build = agents.iter().find(|a| a.name == "build").unwrap();
    assert_eq!(build.mode.as_deref(), Some("primary"));
    assert!(build.native);
    assert!(
        build
            .permission
            .iter()
            .any(|r| r.permission == "question" && r.action == PermissionAction::Deny)
    );
    assert!(agents.iter().any(|a| a.mode.as_deref() == Some("subagent")));

    let permissions: Vec<PermissionRequest> = fixture("permissions.json");
    assert_eq!(permissions[0].permission, "external_directory");
    assert_eq!(permissions[0].tool.as_ref().unwrap().call_id, "call_o");

    let child: SessionInfo = fixture("session-child.json");
    assert!(child.parent_id.is_some());
    assert_eq!(child.agent.as_deref(), Some("plan"));
    assert_eq!(child.permission.unwrap()[0].action, PermissionAction::Deny);

    let statuses: SessionStatusMap = fixture("session-status.json");
    assert_eq!(statuses.len(), 2);
    assert!(
        statuses
            .values()
            .any(|s| matches!(s, SessionStatus::Retry { attempt: 2, .. }))
    );

    let diff: VcsDiff = fixture("vcs-diff.json");
    assert!(diff[0].patch.as_deref().unwrap().contains("+hello"));

    let error: MessageError = fixture("error-bad-request.json");
    assert_eq!(error.name, "BadRequest");
    assert!(error.message.unwrap().contains("OutputFormatJsonSchema"));
    let tagged: MessageError = serde_json::from_value(json!({"_tag": "PermissionNotFoundError",
        "requestID": "per_1", "message": "not found"}))
    .unwrap();
    assert_eq!(
        (tagged.name.as_str(), tagged.message.as_deref()),
        ("PermissionNotFoundError", Some("not found"))
    );

    let health: Health = serde_json::from_str(r#"{"healthy":true,"version":"1.18.33"}"#).unwrap();
    assert_eq!(
        health,
        Health {
            healthy: true,
            version: "1.18.33".into()
        }
    );
}

#[test]
fn request_bodies_match_the_spec() {
    let create = CreateSession {
        title: Some("t".into()),
        parent_id: Some("ses_0".into()),
        permission: Some(vec![PermissionRule {
            permission: "bash".into(),
            pattern: "*".into(),
            action: PermissionAction::Deny,
        }]),
        ..CreateSession::default()
    };
    assert_eq!(
        serde_json::to_value(&create).unwrap(),
        json!({"title": "t", "parentID": "ses_0",
            "permission": [{"permission": "bash", "pattern": "*", "action": "deny"}]})
    );
    assert_eq!(
        serde_json::to_value(CreateSession::default()).unwrap(),
        json!({})
    );

    let prompt = PromptRequest {
        model: Some(ModelSelector {
            provider_id: "scripted".into(),
            model_id: "scripted-coder".into(),
        }),
        agent: Some("build".into()),
        format: Some(OutputFormat::JsonSchema {
            schema: json!({"type": "object"}),
            retry_count: Some(1),
        }),
        parts: vec![PromptPart::Text { text: "go".into() }],
        ..PromptRequest::default()
    };
    assert_eq!(
        serde_json::to_value(&prompt).unwrap(),
        json!({"model": {"providerID": "scripted", "modelID": "scripted-coder"}, "agent": "build",
            "format": {"type": "json_schema", "schema": {"type": "object"}, "retryCount": 1},
            "parts": [{"type": "text", "text": "go"}]})
    );
    assert_eq!(
        serde_json::to_value(OutputFormat::Text).unwrap(),
        json!({"type": "text"})
    );

    let reply = PermissionReplyBody {
        reply: PermissionReply::Always,
        message: None,
    };
    assert_eq!(
        serde_json::to_value(&reply).unwrap(),
        json!({"reply": "always"})
    );
    let reject = PermissionReplyBody {
        reply: PermissionReply::Reject,
        message: Some("no".into()),
    };
    assert_eq!(
        serde_json::to_value(&reject).unwrap(),
        json!({"reply": "reject", "message": "no"})
    );
    // An unknown reply read from the server must never be sent back.
    assert!(serde_json::to_value(PermissionReply::Unknown).is_err());
    assert!(serde_json::to_value(PermissionAction::Unknown).is_err());

    assert_eq!(VcsDiffMode::Branch.as_str(), "branch");
    assert_eq!(
        serde_json::to_value(VcsDiffMode::Git).unwrap(),
        json!("git")
    );
}

#[test]
fn lenient_numbers() {
    let tokens: Tokens =
        serde_json::from_value(json!({"input": 1.0, "output": 2.6, "reasoning": -3,
        "cache": {"read": null}}))
        .unwrap();
    assert_eq!(
        (
            tokens.input,
            tokens.output,
            tokens.reasoning,
            tokens.cache.read
        ),
        (1, 3, 0, 0)
    );
    let time: MessageTime =
        serde_json::from_value(json!({"created": 1.5e12, "completed": null})).unwrap();
    assert_eq!((time.created, time.completed), (1_500_000_000_000, None));
    let session: SessionInfo = serde_json::from_value(json!({"id": "ses_1", "cost": 1})).unwrap();
    assert_eq!(session.cost, 1.0);
    assert!(serde_json::from_value::<Tokens>(json!({"input": "many"})).is_err());
}

#[test]
fn unknown_tags_and_missing_fields() {
    let status: SessionStatus = serde_json::from_value(json!({})).unwrap();
    assert_eq!(status, SessionStatus::Unknown);
    let retry: SessionStatus = serde_json::from_value(json!({"type": "retry"})).unwrap();
    assert_eq!(
        retry,
        SessionStatus::Retry {
            attempt: 0,
            message: String::new(),
            next: 0
        }
    );
    let message: MessageInfo =
        serde_json::from_value(json!({"id": "msg_1", "sessionID": "ses_1"})).unwrap();
    assert_eq!(message, MessageInfo::Unknown);
    assert!(serde_json::from_value::<MessageInfo>(json!({"role": "user", "id": "msg_1"})).is_err());
    let diff: FileDiff = serde_json::from_value(json!({})).unwrap();
    assert_eq!(diff, FileDiff::default());
    let rule: PermissionRule =
        serde_json::from_value(json!({"permission": "x", "pattern": "*", "action": "maybe"}))
            .unwrap();
    assert_eq!(rule.action, PermissionAction::Unknown);
    let part: Part = serde_json::from_value(json!({"id": "p", "sessionID": "s", "messageID": "m",
        "type": "tool"}))
    .unwrap();
    assert!(matches!(part, Part::Tool(t) if t.state == ToolState::Unknown && t.tool.is_empty()));
}
