//! Where a key sits in the config text: key paths (`agents[1].model`), byte offsets to 1-based
//! lines and columns, and the span of a key path in the parsed document.

use std::fmt::Write as _;

use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

/// `agents[1].model` for `[Key("agents"), Index(1), Key("model")]`.
pub(super) fn key_path(path: &[PathPart<'_>]) -> String {
    let mut text = String::new();
    for part in path {
        match part {
            PathPart::Key(key) if text.is_empty() => text.push_str(key),
            PathPart::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            PathPart::Index(index) => {
                let _ = write!(text, "[{index}]");
            }
        }
    }
    text
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Line and column of the value at `path`; when the path goes further than the file (a key left
/// out), of the deepest part that is there.
pub(super) fn locate(text: &str, path: &[PathPart<'_>]) -> Option<(usize, usize)> {
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut span = None;
    let mut value: Option<&DeValue<'_>> = None;
    for part in path {
        let next = match (part, value) {
            (PathPart::Key(key), None) => table.get(*key),
            (PathPart::Key(key), Some(DeValue::Table(inner))) => {
                table = inner;
                table.get(*key)
            }
            (PathPart::Index(index), Some(DeValue::Array(items))) => items.get(*index),
            _ => None,
        };
        let Some(next) = next else { break };
        span = Some(next.span());
        value = Some(next.get_ref());
    }
    span.map(|span| line_column(text, span.start))
}

/// The key path of the deepest key or value that contains byte `offset`.
pub(super) fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let (root, _) = DeTable::parse_recoverable(text);
    let mut path = Vec::new();
    find_in_table(root.get_ref(), offset, &mut path).then(|| key_path(&path))
}

fn find_in_table<'a>(table: &'a DeTable<'_>, offset: usize, path: &mut Vec<PathPart<'a>>) -> bool {
    for (key, value) in table.iter() {
        path.push(PathPart::Key(key.get_ref()));
        let here = key.span().contains(&offset) || value.span().contains(&offset);
        if find_in_value(value.get_ref(), offset, path) || here {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value<'a>(value: &'a DeValue<'_>, offset: usize, path: &mut Vec<PathPart<'a>>) -> bool {
    match value {
        DeValue::Table(table) => find_in_table(table, offset, path),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(PathPart::Index(index));
                if find_in_value(item.get_ref(), offset, path) || item.span().contains(&offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}
