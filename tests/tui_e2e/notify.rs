//! The room tells its terminal: the pane's title says how many things wait, and the bytes ocio
//! writes (captured with `pipe-pane`) hold the bell and the OSC 9 and OSC 777 notifications
//! wrapped in tmux's passthrough (ocio runs inside tmux, so `$TMUX` is set); quitting clears the
//! title.

use std::time::{Duration, Instant};

use super::{PATIENCE, Room, quote, tmux_available};

const ASKING: &str = r#"
[engine]
approve_outside = "ask"

[[agents]]
name = "asker"
kind = "simulated"
duration = "300ms"
ask_rate = 1.0
max_concurrent = 2
"#;

const ASKS: &str = "name = \"asks\"\nrepo = \".\"\n[[tasks]]\nid = \"one\"\nprompt = \"x\"\n[[tasks]]\nid = \"two\"\nprompt = \"x\"\n";

/// `sequence` as tmux's passthrough carries it: `ESC P tmux;`, every ESC doubled, `ESC \`.
fn passed(sequence: &str) -> String {
    format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b"))
}

impl Room {
    /// Poll the pane's title until it is `want`.
    fn wait_for_title(&mut self, want: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let title = self.format("#{pane_title}");
            if title == want {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("the pane's title is {title:?}, not {want:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Poll the captured bytes until they hold `want`.
fn wait_for_bytes(room: &mut Room, captured: &std::path::Path, want: &str, what: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let bytes = std::fs::read(captured).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.contains(want) {
            return text;
        }
        if Instant::now() > deadline {
            let tail: String = text
                .chars()
                .rev()
                .take(600)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            room.fail(&format!(
                "no {what} ({want:?}) in what ocio wrote; its end: {tail:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn requests_ring_notify_through_tmux_and_title_the_pane_with_the_count_waiting() {
    if !tmux_available() {
        return;
    }
    let room = Room::prepare("notify", ASKING);
    std::fs::write(room.path("repo/asks.toml"), ASKS).unwrap();
    let mut room = room.launch(120, 36);
    room.wait_for_title("ocio");
    let captured = room.path("pane-output");
    let pipe = format!("cat >> {}", quote(&captured));
    let output = room.tmux(&["pipe-pane", "-o", &pipe]);
    assert!(output.status.success(), "pipe-pane");

    room.submit("asks.toml");
    room.wait_for_title("ocio · 2 waiting");
    let osc9 = passed("\x1b]9;ocio: 2 waiting for you\x07");
    let osc777 = passed("\x1b]777;notify;ocio;2 waiting for you\x07");
    let text = wait_for_bytes(&mut room, &captured, &osc9, "OSC 9 through tmux");
    let at = text.find(&osc9).unwrap();
    let after = &text[at..];
    assert!(
        after.contains(&osc777),
        "no OSC 777 through tmux: {after:?}"
    );
    assert!(
        after.contains(&format!("{osc777}\x07")),
        "the bell follows the notifications: {after:?}"
    );
    assert_eq!(text.matches(&osc9).count(), 1, "the two requests ring once");
    // The title goes through tmux's own OSC 2 (never its passthrough).
    assert!(text.contains("\x1b]2;ocio · 2 waiting\x07"), "no OSC 2");

    // Answered, nothing waits; the plan's end rings again.
    room.keys(&["a"]);
    room.wait_for_title("ocio · 1 waiting");
    room.keys(&["a"]);
    room.wait_for_title("ocio");
    wait_for_bytes(
        &mut room,
        &captured,
        &passed("\x1b]9;ocio: plan asks succeeded\x07"),
        "the plan's end through tmux",
    );

    room.quit();
    room.expect_exit(0);
    let title = room.format("#{pane_title}");
    assert!(!title.contains("ocio"), "the title is left as {title:?}");
}
