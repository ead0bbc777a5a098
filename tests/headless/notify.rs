//! `[notify]` from a headless engine: a real local webhook receiver gets one JSON POST for a
//! burst of permission requests and one when the plan ends (and one for a question), and a
//! command (a shell script) gets the same objects on its stdin; a command that cannot run and a webhook that refuses
//! are logged, and the plan runs on as if they were not there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::home::{Engine, Home};

/// Longer than the notifier's 2 s window plus a slow test machine's dispatching.
const PATIENCE: Duration = Duration::from_secs(30);

/// A plan of three tasks on an agent whose every session asks for a directory outside its own,
/// which `approve_outside = "ask"` leaves to the operator.
const PLAN: &str = "name = \"asks\"\nrepo = \".\"\n[[tasks]]\nid = \"one\"\nprompt = \"x\"\n[[tasks]]\nid = \"two\"\nprompt = \"x\"\n[[tasks]]\nid = \"three\"\nprompt = \"x\"\n";

fn config(notify: &str) -> String {
    format!(
        "[engine]\napprove_outside = \"ask\"\n\n[[agents]]\nname = \"asker\"\nkind = \"simulated\"\nduration = \"300ms\"\nask_rate = 1.0\nmax_concurrent = 3\n\n[notify]\n{notify}"
    )
}

/// One request the receiver got: its head (request line and headers) and its body.
struct Received {
    head: String,
    body: Value,
}

/// A webhook receiver on 127.0.0.1 answering every request with `status`; what it gets comes
/// out of the receiver returned with its URL.
fn webhook(status: u16) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ocio-hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Whatever\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
            );
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if tx.send(Received { head, body }).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// The script the `command` form runs: appends its stdin to the file it is given.
fn script(home: &Home) -> std::path::PathBuf {
    let path = home.path("notify.sh");
    std::fs::write(&path, "#!/bin/sh\ncat >> \"$1\"\n").unwrap();
    path
}

/// The JSON lines the command wrote, once there are `count` of them.
fn command_lines(path: &Path, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "the command wrote {} notices, not {count}: {text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Read the engine's lines until `count` permission requests wait; their ids.
fn requests(engine: &mut Engine, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let line = engine.until("a permission request", |l| {
                l["type"] == "approval_requested"
            });
            line["request"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_burst_of_requests_is_one_notice_and_the_plans_end_another_by_webhook_and_command() {
    let home = Home::new();
    let (url, posts) = webhook(200);
    let script = script(&home);
    let told = home.path("told.jsonl");
    home.write_config(&config(&format!(
        "command = [\"sh\", \"{}\", \"{}\"]\nwebhook = \"{url}\"\n",
        script.display(),
        told.display()
    )));
    let plan = home.write_plan("plan.toml", PLAN);
    let mut engine = home.engine(&["--no-activity"]);
    home.json(&["submit", plan.to_str().unwrap(), "--json"]);
    let ids = requests(&mut engine, 3);

    let first = posts
        .recv_timeout(PATIENCE)
        .expect("a POST for the requests");
    assert!(first.head.starts_with("POST /ocio-hook "), "{}", first.head);
    let head = first.head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("title: ocio: 3 waiting for you"), "{head}");
    let body = &first.body;
    assert_eq!(body["source"], "ocio", "{body}");
    assert_eq!(body["title"], "ocio: 3 waiting for you", "{body}");
    assert_eq!(
        body["counts"]["waiting"], 3,
        "one notice for the burst: {body}"
    );
    let mut asked: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["request"].as_str().unwrap())
        .collect();
    asked.sort_unstable();
    let mut waiting: Vec<&str> = ids.iter().map(String::as_str).collect();
    waiting.sort_unstable();
    assert_eq!(asked, waiting, "{body}");

    for id in &ids {
        home.json(&["approve", id, "--json"]);
    }
    engine.until("the plan ends", |l| l["type"] == "plan_finished");
    let second = posts
        .recv_timeout(PATIENCE)
        .expect("a POST for the plan's end");
    let body = &second.body;
    assert_eq!(body["counts"]["plan_finished"], 1, "{body}");
    assert_eq!(body["counts"]["waiting"], 0, "{body}");
    assert_eq!(body["title"], "ocio: plan asks succeeded", "{body}");
    assert_eq!(
        body["events"][0]["event"]["type"], "plan_finished",
        "{body}"
    );
    assert!(
        posts.recv_timeout(Duration::from_secs(3)).is_err(),
        "two notices in all"
    );

    // The command got the same two notices, one JSON object each on its stdin.
    let lines = command_lines(&told, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["counts"]["waiting"], 3, "{lines:?}");
    assert_eq!(lines[1]["counts"]["plan_finished"], 1, "{lines:?}");
    let (code, _, _) = engine.stop("TERM");
    assert_eq!(code, Some(130));
}

#[test]
fn a_command_that_cannot_run_and_a_webhook_that_refuses_are_logged_and_nothing_else() {
    let home = Home::new();
    let (url, posts) = webhook(500);
    home.write_config(&config(&format!(
        "command = [\"{}\"]\nwebhook = \"{url}\"\nevents = [\"plan_finished\"]\n",
        home.path("no-such-notifier").display()
    )));
    let plan = home.write_plan("plan.toml", PLAN);
    let mut engine = home.engine(&["--no-activity"]);
    home.json(&["submit", plan.to_str().unwrap(), "--json"]);
    for id in requests(&mut engine, 3) {
        home.json(&["approve", &id, "--json"]);
    }
    let finished = engine.until("the plan ends", |l| l["type"] == "plan_finished");
    assert_eq!(finished["ok"], true);
    // Only plan_finished is sent: the requests told nothing.
    let post = posts.recv_timeout(PATIENCE).expect("the refused POST");
    assert_eq!(post.body["counts"]["plan_finished"], 1, "{}", post.body);
    assert_eq!(post.body["counts"]["waiting"], 0, "{}", post.body);
    let log = wait_for_log(&home, "the notification webhook refused it");
    assert!(log.contains("500"), "{log}");
    assert!(log.contains("cannot run the notification command"), "{log}");
    // The engine goes on answering.
    assert_eq!(home.json(&["status", "--json"])["source"], "engine");
    let (code, _, stderr) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        !stderr.contains("notification"),
        "never on screen: {stderr}"
    );
}

#[test]
fn a_question_waiting_for_the_operator_is_a_notice_too() {
    let home = Home::new();
    let (url, posts) = webhook(200);
    home.write_config(&format!(
        "[engine]\nquestions = \"ask\"\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"300ms\"\n\n[notify]\nwebhook = \"{url}\"\nevents = [\"waiting\"]\n"
    ));
    let plan = home.write_plan(
        "plan.toml",
        "name = \"q\"\nrepo = \".\"\n[[tasks]]\nid = \"pick\"\nprompt = \"SIM-ASK Storage: Which database? | pg | sqlite\"\n",
    );
    let mut engine = home.engine(&["--no-activity"]);
    home.json(&["submit", plan.to_str().unwrap(), "--json"]);
    engine.until("the question", |l| l["type"] == "question_asked");
    let post = posts
        .recv_timeout(PATIENCE)
        .expect("a POST for the question");
    let body = &post.body;
    assert_eq!(body["counts"]["waiting"], 1, "{body}");
    assert_eq!(body["title"], "ocio: 1 waiting for you", "{body}");
    assert_eq!(
        body["events"][0]["event"]["type"], "question_asked",
        "{body}"
    );
    let (code, _, _) = engine.stop("TERM");
    assert_eq!(code, Some(130));
}

/// The log once it holds `text`.
fn wait_for_log(home: &Home, text: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let log: String = std::fs::read_dir(home.path("state/ocio"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        if log.contains(text) {
            return log;
        }
        assert!(Instant::now() < deadline, "no `{text}` in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
