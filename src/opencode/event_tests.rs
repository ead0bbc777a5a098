//! Tests of event decoding: every recorded event, each variant by hand, tolerance and errors.

use serde_json::json;

use super::*;
use crate::opencode::wire::ToolState;

fn fixture_lines(name: &str) -> Vec<String> {
    let path = format!(
        "{}/tests/fixtures/opencode/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

/// Event types in the recordings that ocio reads.
fn known(kind: &str) -> bool {
    Kind::parse(kind) != Kind::Ignored
}

fn ev(kind: &str, properties: serde_json::Value) -> String {
    json!({"id": "evt_1", "type": kind, "properties": properties}).to_string()
}

fn one(data: &str) -> ServerEvent {
    decode(data).unwrap().unwrap()
}

#[test]
fn every_recorded_event_decodes_and_unknown_types_are_skipped() {
    for name in [
        "sample-events-permission.sse",
        "sample-events-write-tool.sse",
        "live-event-1.18.33.sse",
        "live-global-event-1.18.33.sse",
    ] {
        let (mut decoded, mut skipped) = (0, 0);
        for line in fixture_lines(name) {
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            let envelope = value.get("payload").unwrap_or(&value);
            let kind = envelope["type"].as_str().unwrap();
            match decode_global(&line) {
                Ok(Some(global)) => {
                    assert!(known(kind), "{name}: {kind} should be skipped");
                    assert_eq!(global.event.kind(), kind, "{name}");
                    assert_eq!(
                        global.directory.as_deref(),
                        value.get("directory").and_then(|d| d.as_str())
                    );
                    if let Some(session) = envelope["properties"]["sessionID"].as_str() {
                        assert_eq!(global.event.session_id(), Some(session), "{line}");
                    }
                    decoded += 1;
                }
                Ok(None) => {
                    assert!(!known(kind), "{name}: {kind} was not decoded");
                    skipped += 1;
                }
                Err(e) => panic!("{name}: {e}\n{line}"),
            }
        }
        assert!(
            decoded > 10 && skipped > 10,
            "{name}: {decoded} / {skipped}"
        );
    }
}

#[test]
fn the_live_recording_holds_every_shape_ocio_relies_on() {
    let events: Vec<ServerEvent> = fixture_lines("live-event-1.18.33.sse")
        .iter()
        .filter_map(|l| decode(l).unwrap())
        .collect();
    let has = |f: &dyn Fn(&ServerEvent) -> bool| events.iter().any(f);
    assert!(has(&|e| matches!(
        e,
        ServerEvent::SessionStatus {
            status: SessionStatus::Retry { attempt: 2, .. },
            ..
        }
    )));
    assert!(has(
        &|e| matches!(e, ServerEvent::SessionError { error: Some(err), .. }
        if err.name == "APIError" && err.status_code == Some(400) && err.is_retryable == Some(false))
    ));
    assert!(has(
        &|e| matches!(e, ServerEvent::SessionError { error: Some(err), .. }
        if err.name == "MessageAbortedError" && err.message.as_deref() == Some("Aborted"))
    ));
    assert!(has(&|e| matches!(
        e,
        ServerEvent::PermissionReplied {
            reply: PermissionReply::Reject,
            ..
        }
    )));
    assert!(has(
        &|e| matches!(e, ServerEvent::PartUpdated { part: Part::Tool(t) }
        if matches!(&t.state, ToolState::Error { error, .. } if error.contains("rejected permission")))
    ));
    assert!(has(
        &|e| matches!(e, ServerEvent::MessageUpdated { info: MessageInfo::Assistant(m) }
        if m.structured == Some(json!({"tasks": ["a", "b"]})))
    ));
    assert!(has(
        &|e| matches!(e, ServerEvent::MessageUpdated { info: MessageInfo::User(m) }
        if m.summary.as_ref().is_some_and(|s| s.diffs.iter().any(|d| d.file == "hello.txt")))
    ));
    assert!(has(
        &|e| matches!(e, ServerEvent::SessionDeleted { info } if info.parent_id.is_some())
    ));
}

#[test]
fn session_events() {
    let info = json!({"id": "ses_1", "slug": "s", "projectID": "p", "directory": "/w", "title": "t",
        "version": "1.18.33", "parentID": "ses_0", "cost": 0.25,
        "tokens": {"input": 10, "output": 2.0, "reasoning": 0, "cache": {"read": 1, "write": 0}},
        "time": {"created": 1, "updated": 2}, "brandNew": {"x": 1}});
    let ServerEvent::SessionUpdated { info } = one(&ev(
        "session.updated",
        json!({"sessionID": "ses_1", "info": info}),
    )) else {
        panic!("not an update")
    };
    assert_eq!(
        (info.id.as_str(), info.parent_id.as_deref()),
        ("ses_1", Some("ses_0"))
    );
    assert_eq!(info.cost, 0.25);
    assert_eq!(info.tokens.output, 2);
    assert_eq!(info.tokens.cache.read, 1);
    assert_eq!((info.time.created, info.time.updated), (1, 2));

    let minimal = json!({"sessionID": "ses_2", "info": {"id": "ses_2"}});
    for kind in ["session.created", "session.deleted"] {
        let event = one(&ev(kind, minimal.clone()));
        assert_eq!((event.kind(), event.session_id()), (kind, Some("ses_2")));
    }
    assert!(matches!(
        decode(&ev(
            "session.created",
            json!({"sessionID": "ses_2", "info": {"title": "no id"}})
        )),
        Err(EventError::Invalid {
            kind: "session.created",
            ..
        })
    ));
}

#[test]
fn status_idle_and_diff() {
    let status = |s: serde_json::Value| match one(&ev(
        "session.status",
        json!({"sessionID": "ses_1", "status": s}),
    )) {
        ServerEvent::SessionStatus { status, .. } => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(status(json!({"type": "busy"})), SessionStatus::Busy);
    assert_eq!(status(json!({"type": "idle"})), SessionStatus::Idle);
    assert_eq!(
        status(
            json!({"type": "retry", "attempt": 3, "message": "429", "next": 99.0,
            "action": {"reason": "r"}})
        ),
        SessionStatus::Retry {
            attempt: 3,
            message: "429".into(),
            next: 99
        }
    );
    assert_eq!(status(json!({"type": "sleeping"})), SessionStatus::Unknown);
    assert_eq!(
        one(&ev("session.idle", json!({"sessionID": "ses_1"}))),
        ServerEvent::SessionIdle {
            session_id: "ses_1".into()
        }
    );
    let ServerEvent::SessionDiff { diff, .. } = one(&ev(
        "session.diff",
        json!({"sessionID": "ses_1", "diff": [{"file": "a.rs", "additions": 3, "deletions": 1,
            "status": "modified", "patch": "@@"}, {"path": "b.rs", "additions": 1.0}]}),
    )) else {
        panic!()
    };
    assert_eq!(
        (diff[0].file.as_str(), diff[0].additions, diff[0].deletions),
        ("a.rs", 3, 1)
    );
    assert_eq!(
        (
            diff[1].file.as_str(),
            diff[1].additions,
            diff[1].patch.as_deref()
        ),
        ("b.rs", 1, None)
    );
}

#[test]
fn session_error_shapes() {
    let error = |p: serde_json::Value| match one(&ev("session.error", p)) {
        ServerEvent::SessionError { session_id, error } => (session_id, error),
        other => panic!("{other:?}"),
    };
    assert_eq!(error(json!({})), (None, None));
    let (id, err) = error(
        json!({"sessionID": "ses_1", "error": {"name": "ProviderAuthError",
        "data": {"providerID": "x", "message": "bad key"}}}),
    );
    assert_eq!(id.as_deref(), Some("ses_1"));
    let err = err.unwrap();
    assert_eq!(
        (err.name.as_str(), err.message.as_deref()),
        ("ProviderAuthError", Some("bad key"))
    );
    let (_, err) = error(json!({"error": {"name": "MessageOutputLengthError", "data": {}}}));
    assert_eq!(err.unwrap().message, None);
    let (_, err) = error(json!({"error": {"name": "SomethingNew"}}));
    assert_eq!(err.unwrap().name, "SomethingNew");
    let (_, err) = error(json!({"sessionID": "ses_1", "error": null}));
    assert_eq!(err, None);
}

#[test]
fn message_events() {
    let ServerEvent::MessageUpdated {
        info: MessageInfo::Assistant(m),
    } = one(&ev(
        "message.updated",
        json!({"sessionID": "ses_1", "info": {"id": "msg_2", "sessionID": "ses_1", "role": "assistant",
            "parentID": "msg_1", "cost": 0.5, "tokens": {"total": 10, "input": 5, "output": 5,
            "reasoning": 0, "cache": {"write": 0, "read": 0}}, "time": {"created": 5, "completed": 9},
            "finish": "stop", "summary": false, "error": {"name": "StructuredOutputError",
            "data": {"message": "Model did not produce structured output", "retries": 0}}}}),
    ))
    else {
        panic!()
    };
    assert_eq!(m.parent_id, "msg_1");
    assert_eq!(m.tokens.input, 5);
    assert_eq!(m.time.completed, Some(9));
    assert_eq!(m.finish.as_deref(), Some("stop"));
    assert_eq!(m.error.unwrap().name, "StructuredOutputError");

    let user = one(&ev(
        "message.updated",
        json!({"sessionID": "ses_1", "info": {"id": "msg_1", "sessionID": "ses_1", "role": "user",
            "time": {"created": 1}, "summary": {"diffs": [{"file": "x", "additions": 1, "deletions": 0}]}}}),
    ));
    assert_eq!(user.session_id(), Some("ses_1"));
    let odd = one(&ev(
        "message.updated",
        json!({"sessionID": "ses_1", "info": {"id": "msg_3", "sessionID": "ses_1", "role": "system"}}),
    ));
    assert_eq!(
        odd,
        ServerEvent::MessageUpdated {
            info: MessageInfo::Unknown
        }
    );
    assert_eq!(
        one(&ev(
            "message.removed",
            json!({"sessionID": "ses_1", "messageID": "msg_1"})
        )),
        ServerEvent::MessageRemoved {
            session_id: "ses_1".into(),
            message_id: "msg_1".into()
        }
    );
}

fn part(p: serde_json::Value) -> Part {
    match one(&ev(
        "message.part.updated",
        json!({"sessionID": "ses_1", "part": p, "time": 1}),
    )) {
        ServerEvent::PartUpdated { part } => part,
        other => panic!("{other:?}"),
    }
}

fn tool_state(state: serde_json::Value) -> ToolState {
    match part(
        json!({"id": "prt_1", "sessionID": "ses_1", "messageID": "msg_1", "type": "tool",
        "callID": "call_1", "tool": "bash", "state": state}),
    ) {
        Part::Tool(t) => {
            assert_eq!((t.call_id.as_str(), t.tool.as_str()), ("call_1", "bash"));
            t.state
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn parts() {
    let ids = json!({"id": "prt_1", "sessionID": "ses_1", "messageID": "msg_1"});
    let with = |extra: serde_json::Value| {
        let mut p = ids.clone();
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        part(p)
    };
    let text = with(json!({"type": "text", "text": "hi", "time": {"start": 1}}));
    assert!(matches!(&text, Part::Text(t) if t.text == "hi"));
    assert_eq!(
        (text.id(), text.session_id(), text.message_id()),
        ("prt_1", "ses_1", "msg_1")
    );
    assert!(
        matches!(with(json!({"type": "step-start", "snapshot": "abc"})),
        Part::StepStart(s) if s.snapshot.as_deref() == Some("abc"))
    );
    let Part::StepFinish(f) = with(
        json!({"type": "step-finish", "reason": "tool-calls", "cost": 0,
        "tokens": {"input": 5, "output": 5, "reasoning": 0, "cache": {"read": 0, "write": 0}}}),
    ) else {
        panic!()
    };
    assert_eq!((f.reason.as_str(), f.tokens.input), ("tool-calls", 5));
    assert!(
        matches!(with(json!({"type": "patch", "hash": "h", "files": ["/a"]})),
        Part::Patch(p) if p.files == ["/a"])
    );
    for kind in [
        "reasoning",
        "file",
        "agent",
        "subtask",
        "compaction",
        "hologram",
    ] {
        assert!(
            matches!(with(json!({"type": kind, "text": "t", "mime": "x", "auto": true})),
            Part::Other { kind: k, .. } if k == kind)
        );
    }
    assert!(matches!(
        decode(&ev(
            "message.part.updated",
            json!({"sessionID": "ses_1", "part": {"type": "text"}})
        )),
        Err(EventError::Invalid {
            kind: "message.part.updated",
            ..
        })
    ));
}

#[test]
fn tool_states() {
    assert_eq!(
        tool_state(json!({"status": "pending", "input": {}, "raw": ""})),
        ToolState::Pending { input: json!({}) }
    );
    assert_eq!(
        tool_state(json!({"status": "running", "input": {"command": "ls"}, "time": {"start": 1}})),
        ToolState::Running {
            input: json!({"command": "ls"}),
            title: None
        }
    );
    assert_eq!(
        tool_state(
            json!({"status": "completed", "input": {}, "output": "ok", "title": "t",
            "metadata": {"exit": 0}, "time": {"start": 1, "end": 2}, "attachments": []})
        ),
        ToolState::Completed {
            input: json!({}),
            output: "ok".into(),
            title: "t".into()
        }
    );
    assert_eq!(
        tool_state(
            json!({"status": "error", "input": {}, "error": "boom", "time": {"start": 1, "end": 2}})
        ),
        ToolState::Error {
            input: json!({}),
            error: "boom".into()
        }
    );
    assert_eq!(tool_state(json!({"status": "paused"})), ToolState::Unknown);
    assert_eq!(tool_state(json!({})), ToolState::Unknown);
}

#[test]
fn deltas_permissions_and_files() {
    assert_eq!(
        one(&ev(
            "message.part.delta",
            json!({"sessionID": "ses_1", "messageID": "msg_1",
            "partID": "prt_1", "field": "text", "delta": "Wro"})
        )),
        ServerEvent::PartDelta {
            session_id: "ses_1".into(),
            message_id: "msg_1".into(),
            part_id: "prt_1".into(),
            field: "text".into(),
            delta: "Wro".into()
        }
    );
    let ServerEvent::PermissionAsked(request) = one(&ev(
        "permission.asked",
        json!({"id": "per_1", "sessionID": "ses_1", "permission": "bash", "patterns": ["ls *"],
            "metadata": {"command": "ls"}, "always": ["ls *"],
            "tool": {"messageID": "msg_1", "callID": "call_1"}}),
    )) else {
        panic!()
    };
    assert_eq!(
        (request.id.as_str(), request.permission.as_str()),
        ("per_1", "bash")
    );
    assert_eq!(request.tool.unwrap().call_id, "call_1");
    let bare = one(&ev(
        "permission.asked",
        json!({"id": "per_2", "sessionID": "ses_1"}),
    ));
    assert_eq!(bare.session_id(), Some("ses_1"));
    for (text, reply) in [
        ("once", PermissionReply::Once),
        ("always", PermissionReply::Always),
        ("reject", PermissionReply::Reject),
        ("later", PermissionReply::Unknown),
    ] {
        assert_eq!(
            one(&ev(
                "permission.replied",
                json!({"sessionID": "ses_1", "requestID": "per_1",
                "reply": text})
            )),
            ServerEvent::PermissionReplied {
                session_id: "ses_1".into(),
                request_id: "per_1".into(),
                reply
            }
        );
    }
    assert_eq!(
        one(&ev("file.edited", json!({"file": "/w/a.rs"}))),
        ServerEvent::FileEdited {
            file: "/w/a.rs".into()
        }
    );
}

#[test]
fn envelope_tolerance() {
    // Unknown types, whatever their properties, and unknown envelope fields.
    for data in [
        r#"{"id":"evt_1","type":"plugin.added","properties":{"id":"x"}}"#,
        r#"{"id":"evt_1","type":"brand.new","properties":[1,{"a":null}],"extra":true}"#,
        r#"{"type":"sync","syncEvent":{"type":"session.created.1"}}"#,
        r#"{"id":"evt_1","type":"session.next.text.delta"}"#,
    ] {
        assert_eq!(decode(data).unwrap(), None, "{data}");
    }
    // Properties before type, missing or extra properties for bare events.
    assert_eq!(
        one(r#"{"properties":{"sessionID":"ses_1"},"type":"session.idle","id":"evt_1"}"#),
        ServerEvent::SessionIdle {
            session_id: "ses_1".into()
        }
    );
    assert_eq!(
        one(r#"{"type":"server.heartbeat"}"#),
        ServerEvent::Heartbeat
    );
    assert_eq!(
        one(r#"{"type":"server.connected","properties":{"x":1}}"#),
        ServerEvent::Connected
    );
    // Escapes in the type are fine.
    assert_eq!(
        one(r#"{"type":"server\u002econnected","properties":{}}"#),
        ServerEvent::Connected
    );
}

#[test]
fn global_envelope() {
    let line = r#"{"directory":"/w","project":"p","payload":{"type":"session.idle","properties":{"sessionID":"ses_1"},"id":"evt_1"}}"#;
    assert_eq!(
        decode_global(line).unwrap(),
        Some(GlobalEvent {
            directory: Some("/w".into()),
            event: ServerEvent::SessionIdle {
                session_id: "ses_1".into()
            }
        })
    );
    assert_eq!(decode(line).unwrap().unwrap().kind(), "session.idle");
    let heartbeat = r#"{"payload":{"id":"evt_1","type":"server.heartbeat","properties":{}}}"#;
    assert_eq!(decode_global(heartbeat).unwrap().unwrap().directory, None);
    let sync =
        r#"{"directory":"/w","payload":{"type":"sync","syncEvent":{"type":"session.created.1"}}}"#;
    assert_eq!(decode_global(sync).unwrap(), None);
    let bare = r#"{"id":"evt_1","type":"session.idle","properties":{"sessionID":"ses_1"}}"#;
    assert_eq!(decode_global(bare).unwrap().unwrap().directory, None);
    assert!(matches!(
        decode_global(r#"{"directory":"/w","payload":{"type":"session.idle","properties":{}}}"#),
        Err(EventError::Invalid {
            kind: "session.idle",
            ..
        })
    ));
}

#[test]
fn errors() {
    for data in ["", "not json", "[DONE]", "42", r#"{"type":"session.idle""#] {
        assert!(
            matches!(decode(data), Err(EventError::Malformed(_))),
            "{data:?}"
        );
    }
    for data in [
        r#"{"type":"session.idle"}"#,
        r#"{"type":"session.idle","properties":{}}"#,
        r#"{"type":"session.status","properties":{"sessionID":"ses_1"}}"#,
        r#"{"type":"message.part.delta","properties":{"sessionID":"s","messageID":"m"}}"#,
        r#"{"type":"session.updated","properties":{"info":{"id":5}}}"#,
        r#"{"type":"permission.replied","properties":{"sessionID":"s","requestID":"r"}}"#,
    ] {
        let err = decode(data).unwrap_err();
        assert!(matches!(err, EventError::Invalid { .. }), "{data}: {err}");
        assert!(err.to_string().contains(r#"`"#), "{err}");
    }
}

#[test]
fn kinds_round_trip() {
    for (kind, name) in KINDS {
        assert_eq!(Kind::parse(name), kind);
        assert_eq!(kind.name(), name);
    }
    assert_eq!(Kind::parse("session"), Kind::Ignored);
}
