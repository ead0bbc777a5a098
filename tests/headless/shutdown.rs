//! Shutdown is bounded: SIGTERM while a front end waits on a long call the engine made (a
//! planner's prompt, which may take 30 minutes) ends `ocio` within seconds, as cleanly as ever.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::support::TestRepo;
use super::support::home::{Home, signal_process, stderr};

/// An OpenCode server that creates sessions and then never answers: a prompt stays pending
/// (so do health probes). Says on `prompted` when a prompt has arrived.
fn mute_opencode(prompted: mpsc::Sender<()>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
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
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            if head.starts_with("POST /session?") || head.starts_with("POST /session ") {
                let json = r#"{"id":"ses_planner","title":"plan","directory":"."}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                    json.len()
                );
                continue;
            }
            if head.starts_with("POST /session/ses_planner/message") {
                let _ = prompted.send(());
            }
            held.push(stream);
        }
    });
    port
}

#[test]
fn sigterm_while_a_planner_prompt_is_pending_exits_within_seconds() {
    let (prompted_tx, prompted) = mpsc::channel();
    let port = mute_opencode(prompted_tx);
    let home = Home::new();
    home.write_config(&format!(
        "[[agents]]\nname = \"planner\"\nurl = \"http://127.0.0.1:{port}\"\ncapabilities = [\"plan\", \"code\"]\n"
    ));
    let repo = TestRepo::new();
    let engine = home.engine(&[]);
    let mut submit = home
        .command(&["submit", "--goal", "Add pagination", "--print"])
        .current_dir(repo.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    prompted
        .recv_timeout(Duration::from_secs(60))
        .expect("the planner's prompt reached the server");

    let pid = engine.pid();
    let (done_tx, done) = mpsc::channel();
    let sent = Instant::now();
    std::thread::spawn(move || {
        let _ = done_tx.send(engine.stop("TERM"));
    });
    let Ok((code, lines, err)) = done.recv_timeout(Duration::from_secs(20)) else {
        signal_process(pid, "KILL");
        let _ = submit.kill();
        panic!("ocio still runs 20 s after SIGTERM, held by the pending prompt");
    };
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    assert_eq!(code, Some(130), "{err}");
    let finished = lines.iter().find(|l| l["type"] == "run.finished");
    assert!(finished.is_some(), "the usual last line: {lines:?}");
    assert!(!home.socket().exists(), "the socket is removed");

    // The front end that asked is told the engine stopped, rather than waiting on.
    let asked = submit.wait_with_output().unwrap();
    assert!(!asked.status.success(), "{}", stderr(&asked));
}
