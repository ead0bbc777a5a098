//! The control room tells the operator through its terminal: a bell and a desktop notification
//! (OSC 9 and OSC 777, wrapped for tmux's passthrough inside tmux) when something starts waiting
//! for them, a plan ends or an agent goes offline, and a title that says how many things wait
//! ("ocio · 2 waiting", OSC 2). The alerts are `crate::notify`'s, gathered for [`WINDOW`] so a
//! burst rings once. Only events newer than the room's first snapshot ring: attaching to an
//! engine where requests already wait rings nothing (the title and the header say how many wait
//! from the first frame). Sequences are bytes for the loop to write between frames, through
//! the writer frames are drawn with.

use std::time::{Duration, Instant};

use crate::engine::Told;
use crate::notify::{Alert, Burst, Notice};

/// How long a burst of alerts is gathered before the room rings: short, since the operator may
/// be looking, and long enough for a plan's sessions asking in the same moment.
pub(crate) const WINDOW: Duration = Duration::from_millis(500);

/// Alerts that came before the first snapshot, kept at most (to be sorted old from new then).
const EARLY: usize = 4096;

const ESC: char = '\x1b';
const BEL: char = '\x07';

/// What the room rings and titles its terminal with.
#[derive(Debug)]
pub(crate) struct Alerts {
    burst: Burst<Alert>,
    /// The number of the last event the first snapshot reflects: events up to it are old news.
    /// `None` until that snapshot comes.
    since: Option<u64>,
    /// Alerts that came before the first snapshot, with their events' numbers.
    early: Vec<(u64, Alert)>,
    /// The count of things waiting that the title says now; `None` before the first title.
    titled: Option<usize>,
    /// `[ui] bell`.
    pub(crate) bell: bool,
    /// `[ui] desktop_notify`.
    pub(crate) desktop: bool,
    /// Inside tmux: notifications go through its passthrough.
    pub(crate) tmux: bool,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            burst: Burst::new(WINDOW),
            since: None,
            early: Vec::new(),
            titled: None,
            bell: true,
            desktop: true,
            tmux: false,
        }
    }
}

impl Alerts {
    /// An engine event, received at `now`.
    pub(crate) fn receive(&mut self, told: &Told, now: Instant) {
        let Some(alert) = Alert::of(&told.event) else {
            return;
        };
        match self.since {
            None if self.early.len() < EARLY => self.early.push((told.seq, alert)),
            None => {}
            Some(since) if told.seq > since => self.burst.push(alert, now),
            Some(_) => {}
        }
    }

    /// The first snapshot came, reflecting events up to `seq`: those that came earlier and are
    /// newer than it are news.
    pub(crate) fn loaded(&mut self, seq: u64, now: Instant) {
        if self.since.is_some() {
            return;
        }
        self.since = Some(seq);
        for (_, alert) in std::mem::take(&mut self.early)
            .into_iter()
            .filter(|(s, _)| *s > seq)
        {
            self.burst.push(alert, now);
        }
    }

    /// When the gathered alerts are to be told.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.burst.due()
    }

    /// What to write to the terminal at `now`, with `waiting` things waiting for the operator:
    /// the title when the count changed, and the notifications and the bell when a burst is due.
    /// The terminal's title may have changed under the room (another program had the
    /// terminal): set it again with the next output.
    pub(crate) fn retitle(&mut self) {
        self.titled = None;
    }

    pub(crate) fn output(&mut self, waiting: usize, now: Instant) -> String {
        let mut out = String::new();
        if self.titled != Some(waiting) {
            self.titled = Some(waiting);
            out.push_str(&title(&title_text(waiting)));
        }
        let Some(alerts) = self.burst.take(now) else {
            return out;
        };
        let headline = Notice::new(alerts).headline(waiting);
        if headline.is_empty() {
            // What waited was answered before the room could ring about it.
            return out;
        }
        if self.desktop {
            let text = format!("ocio: {headline}");
            out.push_str(&self.passed(&osc9(&text)));
            out.push_str(&self.passed(&osc777("ocio", &headline)));
        }
        if self.bell {
            out.push(BEL);
        }
        out
    }

    /// `sequence` as it reaches the terminal: through tmux's passthrough inside tmux.
    fn passed(&self, sequence: &str) -> String {
        if self.tmux {
            tmux_passthrough(sequence)
        } else {
            sequence.to_string()
        }
    }
}

/// The terminal's title: `ocio`, or `ocio · 2 waiting`.
pub(crate) fn title_text(waiting: usize) -> String {
    match waiting {
        0 => "ocio".into(),
        n => format!("ocio · {n} waiting"),
    }
}

/// OSC 2: set the window (in tmux, the pane) title. tmux takes it itself: no passthrough.
pub(crate) fn title(text: &str) -> String {
    format!("{ESC}]2;{}{BEL}", clean(text))
}

/// OSC 9: a desktop notification (iTerm2, kitty, WezTerm, Windows Terminal, ghostty, foot).
pub(crate) fn osc9(text: &str) -> String {
    format!("{ESC}]9;{}{BEL}", clean(text))
}

/// OSC 777: a desktop notification with a title (urxvt, VTE terminals, ghostty, foot). `;`
/// separates its fields, so none is left inside them.
pub(crate) fn osc777(title: &str, body: &str) -> String {
    let field = |text: &str| clean(text).replace(';', ",");
    format!("{ESC}]777;notify;{};{}{BEL}", field(title), field(body))
}

/// A sequence for the terminal tmux runs in, wrapped in tmux's passthrough: `ESC P tmux;`, the
/// sequence with every ESC doubled, then `ESC \`. tmux passes it on when its
/// `allow-passthrough` option is on.
pub(crate) fn tmux_passthrough(sequence: &str) -> String {
    let doubled = sequence.replace(ESC, &format!("{ESC}{ESC}"));
    format!("{ESC}Ptmux;{doubled}{ESC}\\")
}

/// `text` without control characters (an ESC or BEL inside would end the sequence early), on
/// one line.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
