//! `ocio search TEXT`: the sessions (and tasks) whose title, control-log events or transcript
//! have every word of TEXT, newest first, read from the database's search index whether an
//! engine runs or not; `--reindex` indexes a database written before the index existed.

use jiff::Timestamp;
use serde_json::json;

use super::output::{print_json, print_text};
use super::timeline::since;
use super::{Context, Failure, database};
use crate::store::{Found, SearchQuery, Store, StoreOptions, search};

/// Results shown when `--limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 50;

/// What was asked.
pub(crate) struct Asked {
    pub(crate) text: String,
    pub(crate) plan: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) limit: usize,
    pub(crate) json: bool,
}

pub(crate) fn run(context: &Context, asked: Asked) -> Result<(), Failure> {
    if crate::store::search::words(&asked.text).is_empty() {
        return Err(Failure::usage(format!(
            "TEXT {:?} has no word to search for\n  hint: give at least one word of two letters or more, e.g. `ocio search parser`",
            asked.text
        )));
    }
    let since = match &asked.since {
        Some(text) => Some(since(text, Timestamp::now())?),
        None => None,
    };
    let mut query = SearchQuery {
        text: asked.text.clone(),
        plan: None,
        agent: asked.agent.clone(),
        since,
        limit: asked.limit.max(1),
    };
    let wanted = asked.plan.clone();
    let read = database::read(&context.paths.db_file, move |txn| {
        if let Some(wanted) = wanted {
            match super::plans::pick(&super::plans::of_database(txn)?, &wanted) {
                Some(id) => query.plan = Some(id),
                None => return Ok(Err(wanted)),
            }
        }
        Ok(Ok(search(txn, &query)?))
    })?;
    let found = match read.map(|r| r.value) {
        Some(Ok(found)) => found,
        Some(Err(wanted)) => {
            return Err(Failure::usage(format!(
                "--plan: no plan {wanted:?} in the database {}\n  hint: `ocio tasks` lists the plans; give its name, its id or the id's last 8 characters",
                context.paths.db_file.display()
            )));
        }
        None => Vec::new(),
    };
    match asked.json {
        true => print_json(&json!({ "query": asked.text, "found": found })),
        false => print_text(&describe(&found)),
    }
}

/// Indexes every record of the database file again (no engine may hold it).
pub(crate) fn reindex(context: &Context, json: bool) -> Result<(), Failure> {
    let path = &context.paths.db_file;
    if !path.exists() {
        return Err(Failure::usage(format!(
            "no database at {}: nothing to index",
            path.display()
        )));
    }
    let store = Store::open(path, StoreOptions::default())?;
    let done = store.reindex_blocking();
    store.close_blocking();
    let done = done?;
    match json {
        true => print_json(&done),
        false => print_text(&format!(
            "indexed {} titles, {} event causes and {} transcript entries for search",
            done.sessions, done.events, done.entries
        )),
    }
}

/// One result per line: when, the session (or task), where the words are, and the line.
fn describe(found: &[Found]) -> String {
    if found.is_empty() {
        return "nothing found (entries are searchable once written, within a second; a database from before search needs `ocio search --reindex` once)".into();
    }
    let mut lines = Vec::new();
    for hit in found {
        let who = match (hit.session, hit.task) {
            (Some(session), _) => format!("session {}", session.short()),
            (None, Some(task)) => format!("task {}", task.short()),
            (None, None) => String::new(),
        };
        let place = match hit.place {
            crate::store::search::Place::Title => "title".to_string(),
            crate::store::search::Place::Event(seq) => format!("event #{seq}"),
            crate::store::search::Place::Transcript(seq) => format!("transcript #{seq}"),
        };
        lines.push(format!(
            "{}  {who}  {}  [{place}]\n    {}",
            hit.at.strftime("%Y-%m-%d %H:%M"),
            hit.title,
            hit.line
        ));
    }
    lines.join("\n")
}
