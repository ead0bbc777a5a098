//! Which front ends follow the engine: a control room (a person who can answer) or a stream
//! (headless output, `ocio events`). The engine asks how many rooms are attached to decide
//! whether a question can wait for an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Who follows the engine's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Follower {
    /// A control room: someone who sees the inbox and can answer.
    Room,
    /// Anything else reading events (headless output, `ocio events`, scripts).
    #[default]
    Stream,
}

/// The count of control rooms attached, shared by the engine and its handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rooms(Arc<AtomicUsize>);

impl Rooms {
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Count `follower` while the returned guard lives.
    pub(crate) fn attend(&self, follower: Follower) -> Attendance {
        if follower == Follower::Room {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Attendance {
            rooms: (follower == Follower::Room).then(|| self.clone()),
        }
    }
}

/// A follower counted while it lives.
pub(crate) struct Attendance {
    rooms: Option<Rooms>,
}

impl Drop for Attendance {
    fn drop(&mut self) {
        if let Some(rooms) = &self.rooms {
            rooms.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_counted_while_they_attend_and_streams_never() {
        let rooms = Rooms::default();
        let a = rooms.attend(Follower::Room);
        let b = rooms.attend(Follower::Room);
        let s = rooms.attend(Follower::Stream);
        assert_eq!(rooms.count(), 2);
        drop(a);
        drop(s);
        assert_eq!(rooms.count(), 1);
        drop(b);
        assert_eq!(rooms.count(), 0);
    }
}
