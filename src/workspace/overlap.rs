//! The live overlap map: which running sessions touch which files of a repository, fed from
//! OpenCode's `file.edited` events and session diffs. Two sessions touching one file is an
//! overlap, reported the moment it happens and once; the scheduler asks [`OverlapMap::blocks`]
//! before starting a task whose declared `files` a running session already touches. Pure.
//!
//! Paths are repo-relative with `/` separators ([`repo_relative`] turns an event's absolute
//! path, in whatever worktree it happened, into one).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::domain::SessionId;

/// A file that a session touched while other running sessions had touched it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// Repo-relative.
    pub(crate) path: String,
    /// The session whose touch made the overlap.
    pub(crate) session: SessionId,
    /// The sessions that touched it before, in the order they did.
    pub(crate) with: Vec<SessionId>,
}

/// Which running sessions touch which files.
#[derive(Debug, Clone, Default)]
pub(crate) struct OverlapMap {
    /// Each touched path to its sessions, in the order they first touched it.
    by_path: BTreeMap<String, Vec<SessionId>>,
    by_session: HashMap<SessionId, BTreeSet<String>>,
}

impl OverlapMap {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records that `session` touched `path` (repo-relative). An [`Overlap`] when this is the
    /// session's first touch of a file other sessions touch; `None` for a file only it touches
    /// and for every later touch of the same file.
    pub(crate) fn touch(&mut self, session: SessionId, path: &str) -> Option<Overlap> {
        let path = normalize(path);
        if path.is_empty() {
            return None;
        }
        let touched = self.by_session.entry(session).or_default();
        if !touched.insert(path.clone()) {
            return None;
        }
        let sessions = self.by_path.entry(path.clone()).or_default();
        let with = sessions.clone();
        sessions.push(session);
        (!with.is_empty()).then_some(Overlap {
            path,
            session,
            with,
        })
    }

    /// Forgets a session that ended. The files it touched.
    pub(crate) fn release(&mut self, session: SessionId) -> BTreeSet<String> {
        let touched = self.by_session.remove(&session).unwrap_or_default();
        for path in &touched {
            if let Some(sessions) = self.by_path.get_mut(path) {
                sessions.retain(|other| *other != session);
                if sessions.is_empty() {
                    self.by_path.remove(path);
                }
            }
        }
        touched
    }

    /// A running session and a file it touches that one of `declared` covers (the first in
    /// path order), or `None` when the task may start. An entry covers itself and, as a
    /// directory (`src/api/` or `src/api`), everything below it.
    pub(crate) fn blocks(&self, declared: &[String]) -> Option<(SessionId, String)> {
        declared
            .iter()
            .filter_map(|entry| self.first_under(entry))
            .min_by(|a, b| a.1.cmp(&b.1))
    }

    fn first_under(&self, entry: &str) -> Option<(SessionId, String)> {
        let entry = normalize(entry);
        if entry.is_empty() {
            return None;
        }
        if let Some(session) = self.by_path.get(&entry).and_then(|s| s.first()) {
            return Some((*session, entry));
        }
        let prefix = format!("{entry}/");
        self.by_path
            .range(prefix.clone()..)
            .next()
            .filter(|(path, _)| path.starts_with(&prefix))
            .and_then(|(path, sessions)| sessions.first().map(|s| (*s, path.clone())))
    }

    /// Every file touched by more than one running session, with those sessions.
    #[cfg(test)]
    pub(crate) fn overlaps(&self) -> impl Iterator<Item = (&str, &[SessionId])> {
        self.by_path
            .iter()
            .filter(|(_, sessions)| sessions.len() > 1)
            .map(|(path, sessions)| (path.as_str(), sessions.as_slice()))
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.by_session.is_empty()
    }
}

/// `./src//api/x.rs/` -> `src/api/x.rs`.
fn normalize(path: &str) -> String {
    path.split(['/', '\\'])
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// `file` (absolute, as `file.edited` gives it, or relative to `directory`) relative to the
/// session's `directory` (its worktree or the shared checkout); `None` when it is outside.
pub(crate) fn repo_relative(directory: &Path, file: &str) -> Option<String> {
    let file = Path::new(file);
    let relative = if file.is_absolute() {
        file.strip_prefix(directory).ok()?
    } else {
        file
    };
    if relative
        .components()
        .any(|part| matches!(part, std::path::Component::ParentDir))
    {
        return None;
    }
    let normalized = normalize(&relative.to_string_lossy());
    (!normalized.is_empty()).then_some(normalized)
}

#[cfg(test)]
#[path = "overlap_tests.rs"]
mod tests;
