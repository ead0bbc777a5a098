//! The JSON the stand-in sends, in OpenCode 1.18.33's shapes (taken from a real server's
//! responses and events; field order is the real server's where it was seen).

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

pub const VERSION: &str = "1.18.33";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Microseconds since the Unix epoch: the stamp a bench reads back to time an event's trip.
pub fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// An id in OpenCode's shape: `prefix_`, 12 hex digits of time, 14 more characters; ids made
/// later sort after.
pub fn id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let time = (now_ms() as u64).wrapping_mul(0x1000) & 0xffff_ffff_ffff;
    format!("{prefix}_{time:012x}{n:014}")
}

pub fn tokens(input: u64, output: u64) -> Value {
    json!({
        "total": input + output, "input": input, "output": output, "reasoning": 0,
        "cache": {"write": 0, "read": 0}
    })
}

/// A `Session`.
pub fn session(id: &str, directory: &str, title: &str, created: i64) -> Value {
    json!({
        "id": id,
        "slug": "standin-session",
        "version": VERSION,
        "projectID": project_id(directory),
        "directory": directory,
        "path": "",
        "title": title,
        "cost": 0,
        "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}},
        "time": {"created": created, "updated": created}
    })
}

/// The project id of a directory (the real server's is a git root commit hash).
pub fn project_id(directory: &str) -> String {
    format!("{:040x}", xxhash_rust::xxh3::xxh3_128(directory.as_bytes()))
}

pub fn user_message(id: &str, session: &str, agent: &str, model: &Value) -> Value {
    json!({
        "id": id, "sessionID": session, "role": "user", "time": {"created": now_ms()},
        "agent": agent, "model": model
    })
}

pub fn assistant_message(id: &str, session: &str, parent: &str, directory: &str) -> Value {
    json!({
        "id": id, "parentID": parent, "role": "assistant", "mode": "build", "agent": "build",
        "path": {"cwd": directory, "root": directory}, "cost": 0,
        "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}},
        "modelID": "standin-coder", "providerID": "standin",
        "time": {"created": now_ms()}, "sessionID": session
    })
}

/// The common fields of a part.
pub fn part(kind: &str, session: &str, message: &str) -> Value {
    json!({"id": id("prt"), "messageID": message, "sessionID": session, "type": kind})
}

pub fn text_part(base: &Value, text: &str, start: i64, end: Option<i64>) -> Value {
    let mut part = base.clone();
    part["text"] = json!(text);
    part["time"] = match end {
        Some(end) => json!({"start": start, "end": end}),
        None => json!({"start": start}),
    };
    part
}

pub fn tool_part(base: &Value, tool: &str, call: &str, state: Value) -> Value {
    let mut part = base.clone();
    part["tool"] = json!(tool);
    part["callID"] = json!(call);
    part["state"] = state;
    part
}

pub fn step_finish(base: &Value, reason: &str, tokens: &Value) -> Value {
    let mut part = base.clone();
    part["reason"] = json!(reason);
    part["snapshot"] = json!("0000000000000000000000000000000000000000");
    part["tokens"] = tokens.clone();
    part["cost"] = json!(0);
    part
}

/// One event of `GET /global/event`: the event in its directory's envelope.
pub fn global(directory: Option<&str>, kind: &str, properties: Value) -> String {
    let payload = json!({"id": id("evt"), "type": kind, "properties": properties});
    let envelope = match directory {
        Some(dir) => json!({"directory": dir, "project": project_id(dir), "payload": payload}),
        None => json!({"payload": payload}),
    };
    envelope.to_string()
}

pub fn agent() -> Value {
    json!({
        "name": "build", "description": "The default agent.", "mode": "primary",
        "native": true, "hidden": false, "permission": [], "options": {}
    })
}
