//! A prompted stand-in session at work: the events a real server sends for a model that calls
//! tools and writes text, one every `every`, for `work`; then the answer, with usage.
//!
//! Each model step is an assistant message: `step-start`, a text part (empty, then deltas,
//! then whole), and for a tool step a `write` call pending → running → (`file.edited`) →
//! completed and `step-finish` `tool-calls`; the last step's text ends with `step-finish`
//! `stop`. Text deltas and tool titles carry `@<µs since the epoch>` stamps of when they were
//! sent, so a bench can time their trip to the screen.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::shapes::{self, now_ms, now_us};
use super::{Message, Session, State};

/// Events a final step sends (its pauses).
const FINAL_EVENTS: u32 = 6;

/// Start prompt `body` on session `id`; the answer's receiver. The same `messageID` again is
/// the same prompt: its answer, not a second turn. `None`: no such session.
pub(crate) fn start(
    state: &Arc<State>,
    id: &str,
    body: &Value,
) -> Option<watch::Receiver<Option<Value>>> {
    let mut sessions = state.sessions();
    let session = sessions.get_mut(id)?;
    let message_id = body["messageID"]
        .as_str()
        .map_or_else(|| shapes::id("msg"), str::to_string);
    if let Some(answer) = session.answers.get(&message_id) {
        return Some(answer.clone());
    }
    let prompt: String = body["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect();
    let model = json!({"providerID": "standin", "modelID": "standin-coder"});
    let agent = body["agent"].as_str().unwrap_or("build");
    let user = shapes::user_message(&message_id, id, agent, &model);
    let mut text = shapes::text_part(&shapes::part("text", id, &message_id), &prompt, 0, None);
    text.as_object_mut().map(|o| o.remove("time"));
    session.messages.push(Message {
        info: user.clone(),
        parts: vec![text.clone()],
    });
    let (answer_tx, answer_rx) = watch::channel(None);
    session
        .answers
        .insert(message_id.clone(), answer_rx.clone());
    let (busy_tx, busy_rx) = watch::channel(true);
    session.busy = Some(busy_tx);
    let directory = session.directory.clone();
    drop(sessions);
    let dir = Some(directory.as_str());
    state.emit(
        dir,
        "message.updated",
        json!({"sessionID": id, "info": user}),
    );
    let props = json!({"sessionID": id, "part": text, "time": now_ms()});
    state.emit(dir, "message.part.updated", props);
    let turn = Turn {
        state: state.clone(),
        session: id.to_string(),
        directory,
        parent: message_id,
        stop: busy_rx,
        steps: 0,
    };
    tokio::spawn(turn.run(answer_tx));
    Some(answer_rx)
}

struct Turn {
    state: Arc<State>,
    session: String,
    directory: String,
    parent: String,
    /// Changes (or closes) when the session is aborted.
    stop: watch::Receiver<bool>,
    steps: u32,
}

impl Turn {
    async fn run(mut self, answer: watch::Sender<Option<Value>>) {
        let options = self.state.options.clone();
        // Sessions of a fleet do not all end together: each works its time ±25%.
        let ends = Instant::now() + options.work.mul_f64(0.75 + fastrand::f64() / 2.0);
        self.status("busy");
        let final_time = options.every * (FINAL_EVENTS + options.deltas);
        let mut last = None;
        let mut aborted = false;
        let more = |steps: u32| match options.tool_steps {
            Some(n) => steps < n,
            None => Instant::now() + final_time < ends,
        };
        while more(self.steps) && !aborted {
            match self.step(true).await {
                Ok(message) => last = Some(message),
                Err(message) => (last, aborted) = (Some(message), true),
            }
        }
        if !aborted {
            match self.step(false).await {
                Ok(message) => last = Some(message),
                Err(message) => (last, aborted) = (Some(message), true),
            }
        }
        if aborted {
            let error = json!({"name": "MessageAbortedError", "data": {"message": "The operation was aborted."}});
            self.emit(
                "session.error",
                json!({"sessionID": self.session, "error": error}),
            );
        }
        self.finish_session();
        self.status("idle");
        self.emit("session.idle", json!({"sessionID": self.session}));
        let _ = answer.send(last);
    }

    /// One model step (a tool call when `tool`, else the final text): its message, whole, or
    /// as far as it got when aborted (`Err`).
    async fn step(&mut self, tool: bool) -> Result<Value, Value> {
        self.steps += 1;
        let n = self.steps;
        let id = shapes::id("msg");
        let mut info = shapes::assistant_message(&id, &self.session, &self.parent, &self.directory);
        self.message(&info);
        let mut start = shapes::part("step-start", &self.session, &id);
        start["snapshot"] = json!("0000000000000000000000000000000000000000");
        self.part(&id, start);
        if let Err(()) = self.text(&id, n).await {
            return Err(self.aborted(&id, info));
        }
        if tool && self.tool(&id, n).await.is_err() {
            return Err(self.aborted(&id, info));
        }
        let (input, output) = self.state.options.step_tokens;
        let tokens = shapes::tokens(input, output);
        let reason = if tool { "tool-calls" } else { "stop" };
        let finish = shapes::step_finish(
            &shapes::part("step-finish", &self.session, &id),
            reason,
            &tokens,
        );
        self.part(&id, finish);
        if self.pace().await.is_err() {
            return Err(self.aborted(&id, info));
        }
        info["tokens"] = tokens;
        info["finish"] = json!(reason);
        info["time"]["completed"] = json!(now_ms());
        self.message(&info);
        Ok(self.whole(&id))
    }

    /// A text part: empty, `deltas` stamped deltas, then whole.
    async fn text(&mut self, message: &str, n: u32) -> Result<(), ()> {
        let base = shapes::part("text", &self.session, message);
        let started = now_ms();
        self.part(message, shapes::text_part(&base, "", started, None));
        let mut text = String::new();
        for i in 0..self.state.options.deltas {
            self.pace().await?;
            let delta = format!("step {n}.{i} @{} ", now_us());
            text.push_str(&delta);
            let props = json!({
                "sessionID": self.session, "messageID": message, "partID": base["id"],
                "field": "text", "delta": delta
            });
            self.emit("message.part.delta", props);
        }
        self.pace().await?;
        self.part(
            message,
            shapes::text_part(&base, &text, started, Some(now_ms())),
        );
        Ok(())
    }

    /// A `write` call: pending, running, the file edited, completed.
    async fn tool(&mut self, message: &str, n: u32) -> Result<(), ()> {
        let base = shapes::part("tool", &self.session, message);
        let call = format!("call_{n}");
        let file = format!("f{n}.txt");
        let pending = json!({"status": "pending", "input": {}, "raw": ""});
        self.part(message, shapes::tool_part(&base, "write", &call, pending));
        self.pace().await?;
        let input = json!({"filePath": file, "content": format!("step {n}\n")});
        let started = now_ms();
        let running = json!({
            "status": "running", "input": input, "title": format!("{file} @{}", now_us()),
            "time": {"start": started}
        });
        self.part(message, shapes::tool_part(&base, "write", &call, running));
        self.pace().await?;
        let path = format!("{}/{file}", self.directory.trim_end_matches('/'));
        self.emit("file.edited", json!({"file": path}));
        let completed = json!({
            "status": "completed", "input": input, "output": "Wrote file successfully.",
            "metadata": {"filepath": path, "exists": false, "truncated": false},
            "title": format!("{file} @{}", now_us()), "time": {"start": started, "end": now_ms()}
        });
        self.part(message, shapes::tool_part(&base, "write", &call, completed));
        self.pace().await
    }

    /// Wait `every`; `Err` when the session was aborted meanwhile.
    async fn pace(&mut self) -> Result<(), ()> {
        tokio::select! {
            () = tokio::time::sleep(self.state.options.every) => Ok(()),
            _ = self.stop.changed() => Err(()),
        }
    }

    /// Message `id` ended by an abort: its error recorded and sent; the whole message.
    fn aborted(&self, id: &str, mut info: Value) -> Value {
        info["error"] = json!({"name": "MessageAbortedError", "data": {"message": "The operation was aborted."}});
        info["time"]["completed"] = json!(now_ms());
        self.message(&info);
        self.whole(id)
    }

    /// The session's usage added up, its turn over.
    fn finish_session(&self) {
        let (input, output) = self.state.options.step_tokens;
        let steps = u64::from(self.steps);
        let info = {
            let mut sessions = self.state.sessions();
            let Some(session) = sessions.get_mut(&self.session) else {
                return;
            };
            session.busy = None;
            let tokens = &mut session.info["tokens"];
            tokens["input"] = json!(tokens["input"].as_u64().unwrap_or(0) + steps * input);
            tokens["output"] = json!(tokens["output"].as_u64().unwrap_or(0) + steps * output);
            session.info["time"]["updated"] = json!(now_ms());
            session.info.clone()
        };
        self.emit(
            "session.updated",
            json!({"sessionID": self.session, "info": info}),
        );
    }

    fn status(&self, status: &str) {
        let props = json!({"sessionID": self.session, "status": {"type": status}});
        self.emit("session.status", props);
    }

    fn emit(&self, kind: &str, properties: Value) {
        self.state.emit(Some(&self.directory), kind, properties);
    }

    /// Message `info` stored (new or updated) and sent.
    fn message(&self, info: &Value) {
        self.with_session(|session| {
            match session
                .messages
                .iter_mut()
                .find(|m| m.info["id"] == info["id"])
            {
                Some(message) => message.info = info.clone(),
                None => session.messages.push(Message {
                    info: info.clone(),
                    parts: Vec::new(),
                }),
            }
        });
        self.emit(
            "message.updated",
            json!({"sessionID": self.session, "info": info}),
        );
    }

    /// Part `part` of message `message` stored (new or updated) and sent.
    fn part(&self, message: &str, part: Value) {
        self.with_session(|session| {
            let Some(m) = session
                .messages
                .iter_mut()
                .find(|m| m.info["id"] == message)
            else {
                return;
            };
            match m.parts.iter_mut().find(|p| p["id"] == part["id"]) {
                Some(old) => *old = part.clone(),
                None => m.parts.push(part.clone()),
            }
        });
        let props = json!({"sessionID": self.session, "part": part, "time": now_ms()});
        self.emit("message.part.updated", props);
    }

    /// Message `id` with its parts, as `GET /session/{id}/message` has it.
    fn whole(&self, id: &str) -> Value {
        let mut found = Value::Null;
        self.with_session(|session| {
            if let Some(m) = session.messages.iter().find(|m| m.info["id"] == id) {
                found = m.json();
            }
        });
        found
    }

    fn with_session(&self, f: impl FnOnce(&mut Session)) {
        if let Some(session) = self.state.sessions().get_mut(&self.session) {
            f(session);
        }
    }
}
