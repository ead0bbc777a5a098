//! Shared context between the tasks of a plan: what each finished task left for the tasks that
//! need it (its final answer, the files it changed, the values it published), and the "context
//! from upstream tasks" section a dependent task's prompt carries, within a size budget. Pure.
//!
//! # Publishing a value
//! A task publishes a named value by writing a line of its own in its final answer:
//!
//! ```text
//! OCIO-PUBLISH api_path=/v2/users
//! ```
//!
//! The name is `[A-Za-z0-9._-]+`; the value is the rest of the line, trimmed (one line, may be
//! empty). Leading spaces and backticks around the line are allowed (models like to quote
//! it). A name published twice keeps its last value. Anything else is ordinary text.
//! [`PUBLISH_INSTRUCTIONS`] tells a session how to do it.

use std::fmt::Write as _;

/// The word that starts a publishing line.
pub(crate) const PUBLISH_PREFIX: &str = "OCIO-PUBLISH";

/// A paragraph for a task's prompt that explains publishing.
pub(crate) const PUBLISH_INSTRUCTIONS: &str = "If tasks after you need a value you decided (a name, a \
path, a port, a version), put it in your final answer on a line of its own as \
`OCIO-PUBLISH name=value` (name: letters, digits, '.', '_', '-'; value: the rest of the line).";

/// A prompt as the task gave it: `text` without the upstream context section and publishing
/// instructions ocio appends (for front ends; the model gets them all).
pub(crate) fn own_prompt(text: &str) -> &str {
    let heading = format!("\n\n{HEADING}");
    let publish = format!("\n\n{PUBLISH_INSTRUCTIONS}");
    let cut = [heading.as_str(), publish.as_str()]
        .iter()
        .filter_map(|marker| text.find(marker))
        .min();
    match cut {
        Some(at) => &text[..at],
        None => text,
    }
}

/// The heading of the section.
const HEADING: &str = "## Context from upstream tasks\n";

/// Files listed per task before the rest are only counted.
const FILES_SHOWN: usize = 30;

/// What one finished upstream task leaves for the tasks that need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UpstreamContext {
    /// The task's id in the plan.
    pub(crate) task: String,
    /// Its final answer.
    pub(crate) summary: String,
    /// Repo-relative paths it changed.
    pub(crate) files_changed: Vec<String>,
    /// Values it published ([`parse_published`]), in order.
    pub(crate) values: Vec<(String, String)>,
}

/// The values published in `answer`, in the order of their last publication (see the module
/// documentation for the line format).
pub(crate) fn parse_published(answer: &str) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = Vec::new();
    for (name, value) in answer.lines().filter_map(published) {
        values.retain(|(earlier, _)| earlier != name);
        values.push((name.to_string(), value.to_string()));
    }
    values
}

/// The name and value a publishing line publishes; `None` for any other line.
fn published(line: &str) -> Option<(&str, &str)> {
    let line = line.trim().trim_matches('`').trim();
    let rest = line.strip_prefix(PUBLISH_PREFIX)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (name, value) = rest.trim_start().split_once('=')?;
    let name = name.trim();
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    is_name.then_some((name, value.trim()))
}

/// The "context from upstream tasks" section for a prompt: for each upstream task (in the order
/// given) its published values, the files it changed and its final answer.
///
/// At most `budget_bytes` long. When everything does not fit, the budget is shared fairly: a
/// task whose part is smaller than an even share keeps it whole and the rest is split evenly
/// among the others, each cut at its end with a notice saying how much was cut. When even the
/// headings do not fit, the last tasks are left out with a notice saying so. The one exception
/// to the budget: the heading and the notice that every task was left out are always there
/// (about 90 bytes). Empty for no upstream tasks.
pub(crate) fn context_section(upstream: &[UpstreamContext], budget_bytes: usize) -> String {
    if upstream.is_empty() {
        return String::new();
    }
    let blocks: Vec<(String, String)> = upstream
        .iter()
        .map(|task| (format!("\n### Task `{}`\n", task.task), body(task)))
        .collect();
    let full: usize = HEADING.len()
        + blocks
            .iter()
            .map(|(heading, body)| heading.len() + body.len())
            .sum::<usize>();
    let mut section = String::with_capacity(full.min(budget_bytes.max(HEADING.len())));
    section.push_str(HEADING);
    if full <= budget_bytes {
        for (heading, body) in &blocks {
            section.push_str(heading);
            section.push_str(body);
        }
        return section;
    }
    let longest = blocks.iter().map(|(_, body)| body.len()).max().unwrap_or(0);
    let smallest_body = cut_notice(longest, longest).len();
    let left_out_room = left_out_notice(upstream.len(), full).len();
    // How many tasks get a place: each needs its heading and room for a cut notice.
    let mut used = HEADING.len();
    let mut kept = 0;
    for (index, (heading, _)) in blocks.iter().enumerate() {
        let reserve = if index + 1 < blocks.len() {
            left_out_room
        } else {
            0
        };
        if used + heading.len() + smallest_body + reserve > budget_bytes {
            break;
        }
        used += heading.len() + smallest_body;
        kept += 1;
    }
    let left_out = &blocks[kept..];
    let left_out_bytes: usize = left_out.iter().map(|(h, b)| h.len() + b.len()).sum();
    let reserve = if left_out.is_empty() {
        0
    } else {
        left_out_room
    };
    let headings: usize = blocks[..kept]
        .iter()
        .map(|(heading, _)| heading.len())
        .sum();
    let room = budget_bytes.saturating_sub(HEADING.len() + headings + reserve);
    let wanted: Vec<usize> = blocks[..kept].iter().map(|(_, body)| body.len()).collect();
    let shares = fair_shares(&wanted, room);
    for ((heading, body), share) in blocks[..kept].iter().zip(shares) {
        section.push_str(heading);
        if body.len() <= share {
            section.push_str(body);
        } else {
            let notice = cut_notice(body.len(), body.len());
            let keep = floor_char_boundary(body, share.saturating_sub(notice.len()));
            section.push_str(&body[..keep]);
            section.push_str(&cut_notice(body.len() - keep, body.len()));
        }
    }
    if !left_out.is_empty() {
        section.push_str(&left_out_notice(left_out.len(), left_out_bytes));
    }
    section
}

/// One task's part: values, files, answer.
fn body(task: &UpstreamContext) -> String {
    let mut body = String::new();
    if !task.values.is_empty() {
        body.push_str("Published values:\n");
        for (name, value) in &task.values {
            let _ = writeln!(body, "- {name} = {value}");
        }
    }
    if !task.files_changed.is_empty() {
        let shown: Vec<&str> = task
            .files_changed
            .iter()
            .take(FILES_SHOWN)
            .map(String::as_str)
            .collect();
        let _ = write!(
            body,
            "Files changed ({}): {}",
            task.files_changed.len(),
            shown.join(", ")
        );
        if task.files_changed.len() > FILES_SHOWN {
            let _ = write!(
                body,
                ", ... and {} more",
                task.files_changed.len() - FILES_SHOWN
            );
        }
        body.push('\n');
    }
    // Published values are listed above; their lines are left out of the answer.
    let summary: Vec<&str> = task
        .summary
        .lines()
        .filter(|line| published(line).is_none())
        .collect();
    let summary = summary.join("\n");
    let summary = summary.trim();
    if summary.is_empty() {
        body.push_str("Result: (no final answer)\n");
    } else {
        body.push_str("Result:\n");
        body.push_str(summary);
        body.push('\n');
    }
    body
}

/// Splits `room` bytes among parts that want `wanted` bytes each: parts that want less than an
/// even share get what they want, and the others split what is left evenly (water-filling).
fn fair_shares(wanted: &[usize], room: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&index| wanted[index]);
    let mut shares = vec![0; wanted.len()];
    let mut left = room;
    for (done, &index) in order.iter().enumerate() {
        let share = left / (wanted.len() - done);
        shares[index] = wanted[index].min(share);
        left -= shares[index];
    }
    shares
}

fn cut_notice(cut: usize, total: usize) -> String {
    format!("\n[... {cut} of {total} bytes cut to fit the context budget]\n")
}

fn left_out_notice(tasks: usize, bytes: usize) -> String {
    let noun = if tasks == 1 { "task" } else { "tasks" };
    format!(
        "\n[... {tasks} more upstream {noun} left out ({bytes} bytes): over the context budget]\n"
    )
}

/// The largest character boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
