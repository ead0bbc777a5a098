//! References to upstream results inside a prompt (`{{tasks.design.summary}}`): finding them, and
//! filling them in once the referenced tasks are done. Other `{{...}}` text is left alone, so a
//! prompt may talk about Handlebars or Jinja templates freely.

/// The one result field a prompt can refer to: the task's final answer.
pub(crate) const SUMMARY: &str = "summary";

/// One `{{tasks.<id>.<field>}}` in a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference<'a> {
    /// The whole reference, braces included, as written.
    pub(crate) text: &'a str,
    /// Byte offset of `text` in the prompt.
    pub(crate) offset: usize,
    /// The referenced task's id (may itself contain dots: the field is after the last one).
    pub(crate) task: &'a str,
    /// What of the task is wanted; only [`SUMMARY`] exists. Empty when no field was written.
    pub(crate) field: &'a str,
}

/// Every reference in `prompt`, in order.
pub(crate) fn references(prompt: &str) -> Vec<Reference<'_>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = prompt[from..].find("{{").map(|at| from + at) {
        let Some(close) = prompt[open..].find("}}").map(|at| open + at + 2) else {
            break;
        };
        let inner = prompt[open + 2..close - 2].trim();
        match inner.strip_prefix("tasks.") {
            Some(path) => {
                let (task, field) = path.rsplit_once('.').unwrap_or((path, ""));
                found.push(Reference {
                    text: &prompt[open..close],
                    offset: open,
                    task,
                    field,
                });
                from = close;
            }
            None => from = open + 2,
        }
    }
    found
}

/// A prompt refers to a task whose summary is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the prompt uses the summary of task {task:?}, which has none yet")]
pub(crate) struct MissingSummary {
    pub(crate) task: String,
}

/// The prompt with every reference replaced by the summary `summary_of` gives for its task.
/// Plan files are checked when loaded, so every reference names an upstream task and `summary`.
pub(crate) fn render<'s>(
    prompt: &str,
    summary_of: impl Fn(&str) -> Option<&'s str>,
) -> Result<String, MissingSummary> {
    let mut rendered = String::with_capacity(prompt.len());
    let mut from = 0;
    for reference in references(prompt) {
        let summary = summary_of(reference.task).ok_or_else(|| MissingSummary {
            task: reference.task.to_string(),
        })?;
        rendered.push_str(&prompt[from..reference.offset]);
        rendered.push_str(summary);
        from = reference.offset + reference.text.len();
    }
    rendered.push_str(&prompt[from..]);
    Ok(rendered)
}
