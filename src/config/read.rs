//! Reading config text with every problem found at once: the values that do not fit the types
//! (each one is set aside and the rest read again, so one bad value hides nothing else), then
//! the rules of `validate`, each problem placed at its line, column and key path.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

use super::locate;
use super::validate::{Problem, validate};
use super::{Config, ConfigProblem};
use crate::text::shown_message;

/// More values than a config file has: the bound on reading it again.
const MAX_ROUNDS: usize = 1_000;

/// The config in `text` and every problem with it; `None` when the types leave nothing to
/// check the rules on (a TOML syntax error, or a value that cannot be set aside).
pub(super) fn read(text: &str) -> (Option<Config>, Vec<ConfigProblem>) {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(err) => return (None, vec![from_toml(text, &err)]),
    };
    let span = root.span();
    let mut table = root.into_inner();
    let mut problems = Vec::new();
    // The tables whose values were set aside: the rules are not checked in them, where a
    // missing value would only be reported again as some other problem.
    let mut unchecked: Vec<String> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let value = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        let err = match Config::deserialize(ValueDeserializer::from(value)) {
            Ok(config) => {
                problems.extend(
                    validate(&config)
                        .into_iter()
                        .filter(|problem| {
                            let key = locate::key_path(&problem.path);
                            !unchecked.iter().any(|table| within(&key, table))
                        })
                        .map(|problem| placed(text, problem)),
                );
                return (Some(config), problems);
            }
            Err(err) => err,
        };
        let problem = from_toml(text, &err);
        // About a table something was set aside from (`missing field`): that, not this.
        if !unchecked
            .iter()
            .any(|table| problem.key.as_deref() == Some(table))
        {
            problems.push(problem);
        }
        let removed = err
            .span()
            .and_then(|span| remove_at(&mut table, span.start, ""));
        match removed {
            Some(path) => unchecked.push(parent(&path).to_string()),
            None => break,
        }
    }
    (None, problems)
}

/// A rule's problem, placed in the text.
pub(super) fn placed(text: &str, problem: Problem) -> ConfigProblem {
    ConfigProblem {
        at: locate::locate(text, &problem.path),
        key: Some(locate::key_path(&problem.path)),
        message: problem.message,
        hint: problem.hint,
    }
}

/// A TOML syntax or type error, placed where it points.
fn from_toml(text: &str, err: &toml::de::Error) -> ConfigProblem {
    let offset = err.span().map(|span| span.start);
    ConfigProblem {
        at: offset.map(|offset| locate::line_column(text, offset)),
        key: offset.and_then(|offset| locate::key_path_at(text, offset)),
        message: shown_message(err.message().trim_end()),
        hint: misspelt(err.message()),
    }
}

/// For serde's ``unknown field `modle`, expected one of `name`, `model`, ...``: `did you mean
/// "model"?` when one of the keys is close.
fn misspelt(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    let keys = expected.split('`').skip(1).step_by(2);
    crate::text::closest(word, keys).map(|key| format!("did you mean \"{key}\"?"))
}

/// Whether key path `key` is `table` or inside it (`""`: the top, whose own keys only).
fn within(key: &str, table: &str) -> bool {
    if table.is_empty() {
        return false;
    }
    key.strip_prefix(table)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// `agents[1]` for `agents[1].url`, `agents` for `agents[1]`, `` for `engine`.
fn parent(path: &str) -> &str {
    path.rfind(['.', '[']).map_or("", |at| &path[..at])
}

/// Sets aside the deepest key (or array entry) that holds byte `offset`; its key path. Looks
/// inside every value first: the span of a table made of `[[...]]` headers need not cover
/// its keys.
fn remove_at(table: &mut DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    let keys: Vec<(String, bool)> = table
        .iter()
        .map(|(key, value)| {
            let here = key.span().contains(&offset) || value.span().contains(&offset);
            (key.get_ref().to_string(), here)
        })
        .collect();
    for (key, here) in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let deeper = match table.get_mut(key.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(inner)) => remove_at(inner, offset, &path),
            Some(DeValue::Array(items)) => remove_in_array(items, offset, &path),
            _ => None,
        };
        if deeper.is_some() {
            return deeper;
        }
        if here {
            table.remove(key.as_str());
            return Some(path);
        }
    }
    None
}

/// In an array: the key inside a table entry that holds `offset`, or the entry itself.
fn remove_in_array(items: &mut DeArray<'_>, offset: usize, prefix: &str) -> Option<String> {
    for index in 0..items.len() {
        let path = format!("{prefix}[{index}]");
        if let Some(DeValue::Table(inner)) = items.get_mut(index).map(Spanned::get_mut)
            && let Some(found) = remove_at(inner, offset, &path)
        {
            return Some(found);
        }
    }
    let index = items
        .iter()
        .position(|item| item.span().contains(&offset))?;
    let kept: DeArray<'_> = std::mem::replace(items, DeArray::new())
        .into_iter()
        .enumerate()
        .filter(|(at, _)| *at != index)
        .map(|(_, item)| item)
        .collect();
    *items = kept;
    Some(format!("{prefix}[{index}]"))
}
