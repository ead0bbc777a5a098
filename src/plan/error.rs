//! What is wrong with a plan file: each problem with its file, line, column, task and key, a
//! hint on how to fix it, and the did-you-mean suggestions behind many of those hints.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub(super) use crate::text::did_you_mean;
#[cfg(test)]
pub(super) use crate::text::{closest, edit_distance};

/// One problem in a plan file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The plan file, as it was named.
    pub(crate) path: PathBuf,
    /// 1-based line; 0 when the problem is the whole file (it cannot be read).
    pub(crate) line: usize,
    /// 1-based column, in characters; 0 with `line`.
    pub(crate) column: usize,
    /// The `id` of the task the problem is in, when it is in one that has an id.
    pub(crate) task: Option<String>,
    /// The key the problem is at (`needs`, `timeout`, `conflicts`), when there is one.
    pub(crate) field: Option<String>,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl PlanError {
    /// A problem at a 1-based line and column.
    pub(crate) fn new(
        path: &Path,
        (line, column): (usize, usize),
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            column,
            task: None,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn in_task(mut self, task: Option<&str>) -> Self {
        self.task = task.map(str::to_string);
        self
    }

    pub(crate) fn at_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub(crate) fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if let Some(task) = &self.task {
            write!(f, "task {task:?}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanError {}

/// Every problem found in a plan file (never empty), in the order they appear in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(Vec<PlanError>);

impl PlanErrors {
    /// `None` when there is nothing wrong.
    pub(super) fn from_vec(mut errors: Vec<PlanError>) -> Option<Self> {
        errors.sort_by_key(|error| (error.line, error.column));
        errors.dedup();
        (!errors.is_empty()).then_some(Self(errors))
    }

    pub(super) fn one(error: PlanError) -> Self {
        Self(vec![error])
    }

    pub(crate) fn into_vec(self) -> Vec<PlanError> {
        self.0
    }
}

impl<'a> IntoIterator for &'a PlanErrors {
    type Item = &'a PlanError;
    type IntoIter = std::slice::Iter<'a, PlanError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

/// The plan text and its file name: turns byte spans into located errors.
#[derive(Clone, Copy)]
pub(super) struct Source<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
    /// Byte offset of the start of each line (see [`line_starts`]), so positions are found by
    /// binary search instead of counting lines from the top each time.
    pub(super) line_starts: &'a [usize],
}

/// Where each line of `text` starts: 0, then one past every newline.
pub(super) fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .collect()
}

impl Source<'_> {
    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> PlanError {
        PlanError::new(self.path, self.line_column(span.start), message)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(super) fn line_column(&self, offset: usize) -> (usize, usize) {
        let text = self.text;
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let line_start = self
            .line_starts
            .get(line - 1)
            .copied()
            .unwrap_or(0)
            .min(offset);
        (line, text[line_start..offset].chars().count() + 1)
    }
}
