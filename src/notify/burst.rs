//! Coalescing: the first alert of a burst opens a window, and everything that arrives before
//! it closes is told together, once. A burst of the engine's own making (a plan's tasks all
//! asking at once, an agent's server going down) lands within a moment, so a short fixed window
//! gathers it while a lone alert is still told promptly.

use std::time::{Duration, Instant};

/// Items gathered for one notice.
#[derive(Debug)]
pub struct Burst<T> {
    window: Duration,
    /// When the first item of the gathering came.
    opened: Option<Instant>,
    items: Vec<T>,
}

impl<T> Burst<T> {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            opened: None,
            items: Vec::new(),
        }
    }

    /// Gather `item`; the first of a burst opens its window at `now`.
    pub fn push(&mut self, item: T, now: Instant) {
        self.opened.get_or_insert(now);
        self.items.push(item);
    }

    /// When the items gathered are to be told; `None` while nothing is gathered.
    pub fn due(&self) -> Option<Instant> {
        self.opened.map(|opened| opened + self.window)
    }

    /// The items gathered, once their window has closed at `now`; the next item opens a new
    /// window.
    pub fn take(&mut self, now: Instant) -> Option<Vec<T>> {
        if self.due().is_some_and(|due| due <= now) {
            self.flush()
        } else {
            None
        }
    }

    /// Everything gathered, window or not (when stopping).
    pub fn flush(&mut self) -> Option<Vec<T>> {
        self.opened = None;
        if self.items.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.items))
    }
}
