//! The detail view: one session full screen, its facts on top and its transcript (text, tool
//! calls with their state, steps) streaming below as it is written.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{age, clock, si, status_style};
use crate::domain::SessionId;
use crate::engine::view::Activity;
use crate::tui::app::App;

pub(crate) fn draw(frame: &mut Frame, app: &mut App, id: SessionId, area: Rect) {
    let theme = &app.theme;
    let Some(view) = app.view.sessions.iter().find(|s| s.session.id == id) else {
        let text = Paragraph::new(Line::styled(
            "this session is no longer listed; esc goes back",
            theme.muted,
        ));
        frame.render_widget(text, area);
        return;
    };
    let s = &view.session;
    let [facts, body] = Layout::vertical([Constraint::Length(7), Constraint::Min(0)]).areas(area);
    let now = app.now;
    let since = s.started_at.unwrap_or(s.created_at);
    let state = view.state();
    let live = s.is_active();
    let mut lines = vec![Line::from(vec![
        Span::styled(state, status_style(app, state)),
        Span::styled(format!("  {}", s.title), theme.title),
        Span::styled(format!("  session {}", s.id), theme.muted),
    ])];
    lines.extend(waiting_line(app, id));
    lines.extend([Line::raw(format!(
        "agent {} · attempt {} · {} · started {} · {} tokens ({} in, {} out) · ${:.4}",
        s.agent.as_ref().map(|a| a.as_str()).unwrap_or("-"),
        s.attempt,
        age(since, s.finished_at.unwrap_or(now)),
        clock(since, &app.zone),
        si(s.usage.total_tokens()),
        si(s.usage.input_tokens),
        si(s.usage.output_tokens),
        s.usage.cost,
    ))]);
    match &s.remote {
        Some(remote) => lines.push(Line::styled(
            format!(
                "on {} as {} in {}",
                remote.server,
                remote.session_id,
                remote.directory.display()
            ),
            theme.muted,
        )),
        None => lines.push(Line::styled(
            "in-process (simulated) or not started on a server yet",
            theme.muted,
        )),
    }
    if let Some(retry) = view.last.as_ref().filter(|_| state == "retrying") {
        lines.push(Line::styled(
            retry.activity.line(now),
            theme.status("retrying"),
        ));
    }
    if let Some(error) = &s.last_error {
        lines.push(Line::styled(
            format!("error: {error}"),
            theme.status("failed"),
        ));
    }
    // What the task left for its dependents (the plan's shared context), once it finished:
    // shown on the attempt that left it, never on another.
    let shared = s
        .plan
        .zip(s.task)
        .filter(|_| left_it(app, s))
        .and_then(|(plan, task)| {
            app.view
                .contexts
                .get(&plan)?
                .iter()
                .find(|c| c.task == task)
        });
    if let Some(shared) = shared {
        let mut parts = Vec::new();
        if !shared.files_changed.is_empty() {
            parts.push(format!("files {}", shared.files_changed.join(", ")));
        }
        if !shared.values.is_empty() {
            let values: Vec<String> = shared
                .values
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("published {}", values.join(", ")));
        }
        if let Some(commit) = &shared.commit {
            parts.push(format!("commit {}", commit.get(..8).unwrap_or(commit)));
        }
        if parts.is_empty() {
            parts.push("an answer, no files".into());
        }
        lines.push(Line::styled(
            format!("left for its dependents: {}", parts.join(" · ")),
            theme.info,
        ));
    }
    let facts_block = Block::new()
        .borders(Borders::ALL)
        .border_style(theme.border_focus)
        .title(Span::styled(" session ", theme.accent));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(facts_block),
        facts,
    );

    let entries = app
        .view
        .transcript
        .as_ref()
        .filter(|(t, _)| *t == id)
        .map(|(_, e)| e.as_slice())
        .unwrap_or(&[]);
    let mut text: Vec<Line> = Vec::new();
    let mut files: Vec<String> = Vec::new();
    let diff = app.panes.detail_diff.then(|| diff_lines(app, id));
    for entry in entries.iter().filter(|_| diff.is_none()) {
        let at = Span::styled(format!("{} ", clock(entry.at, &app.zone)), theme.muted);
        match &entry.activity {
            Activity::Text { text: body } => {
                for (i, line) in body.lines().enumerate() {
                    let lead = if i == 0 {
                        at.clone()
                    } else {
                        Span::raw("         ")
                    };
                    text.push(Line::from(vec![
                        lead,
                        Span::styled(line.to_string(), theme.base),
                    ]));
                }
            }
            Activity::Tool {
                tool,
                status,
                title,
            } => {
                // Only a call that went through edited anything (a rejected one did not).
                if matches!(tool.as_str(), "edit" | "write" | "patch")
                    && status == "completed"
                    && !title.is_empty()
                    && !files.contains(title)
                {
                    files.push(title.clone());
                }
                let tone = match status.as_str() {
                    "completed" => theme.status("completed"),
                    "error" => theme.status("failed"),
                    "running" => theme.status("running"),
                    _ => theme.status("pending"),
                };
                text.push(Line::from(vec![
                    at,
                    Span::styled(format!("⚙ {tool} "), theme.accent),
                    Span::styled(status.clone(), tone),
                    Span::raw(format!(" {title}")),
                ]));
            }
            Activity::Step { usage } => text.push(Line::from(vec![
                at,
                Span::styled(
                    format!("── step · {} tokens so far", si(usage.total_tokens())),
                    theme.muted,
                ),
            ])),
            Activity::Note { text: note } => {
                text.push(Line::from(vec![at, Span::styled(note.clone(), theme.info)]))
            }
            Activity::Edited { file } => text.push(Line::from(vec![
                at,
                Span::styled(format!("edited {file}"), theme.info),
            ])),
            retry @ Activity::Retry { .. } => text.push(Line::from(vec![
                at,
                Span::styled(retry.line(now), theme.status("retrying")),
            ])),
        }
    }
    if text.is_empty() {
        text.push(Line::styled(
            "nothing in this session's transcript yet",
            theme.muted,
        ));
    }
    if !files.is_empty() {
        text.push(Line::raw(""));
        text.push(Line::styled(
            format!("files edited: {}", files.join(", ")),
            theme.info,
        ));
    }
    let found = find_row(&text, app.panes.detail_find.as_deref());
    let (mut text, found) = match diff {
        Some(diff) => {
            let found = find_row(&diff, app.panes.detail_find.as_deref());
            (diff, found)
        }
        // A reader must see the whole of each transcript line: long ones wrap.
        None => fold(text, usize::from(body.width.saturating_sub(2)), found),
    };
    let height = usize::from(body.height.saturating_sub(2));
    let total = text.len();
    if let Some(row) = found {
        // A search's match: in the middle of the screen.
        app.panes.detail_scroll = total.saturating_sub(row + height.div_ceil(2));
        app.panes.detail_find = None;
    }
    app.panes.detail_scroll = app.panes.detail_scroll.min(total.saturating_sub(height));
    let end = total - app.panes.detail_scroll;
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = text.drain(start..end).collect();
    let what = if app.panes.detail_diff {
        "diff"
    } else {
        "transcript"
    };
    let title = if app.panes.detail_scroll > 0 {
        format!(
            " {what} · {} lines back · D toggles ",
            app.panes.detail_scroll
        )
    } else if app.panes.detail_diff {
        " diff · D shows the transcript ".to_string()
    } else if live {
        " transcript (live) · D shows the diff ".to_string()
    } else {
        " transcript · D shows the diff ".to_string()
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.title));
    frame.render_widget(Paragraph::new(shown).block(block), body);
}

/// How wide a transcript line's time of day is (`10:04:05 `): rows a long line wraps to
/// start under its text.
const CLOCK: usize = 9;

/// The transcript's lines wrapped to `width`, and the row the line `found` starts on.
fn fold(
    text: Vec<Line<'_>>,
    width: usize,
    found: Option<usize>,
) -> (Vec<Line<'static>>, Option<usize>) {
    let mut rows = Vec::with_capacity(text.len());
    let mut found_row = None;
    for (i, line) in text.into_iter().enumerate() {
        if found == Some(i) {
            found_row = Some(rows.len());
        }
        rows.extend(super::wrap::wrap(line, width, CLOCK));
    }
    (rows, found_row)
}

/// The last row that shows `wanted` (a search's matched line, maybe cut with `…`).
fn find_row(text: &[Line], wanted: Option<&str>) -> Option<usize> {
    let wanted: String = wanted?.trim_matches('…').trim().chars().take(40).collect();
    if wanted.is_empty() {
        return None;
    }
    text.iter().rposition(|line| {
        let shown: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        shown.contains(&wanted)
    })
}

/// The request the session waits on, and the keys that answer it here: a permission request
/// in a line, a question with its numbered options.
fn waiting_line(app: &App, id: SessionId) -> Vec<Line<'static>> {
    let Some(waiting) = app.view.approvals.iter().find(|a| a.session == id) else {
        return Vec::new();
    };
    let ask = &waiting.ask;
    if ask.is_question() {
        return question_lines(app, ask);
    }
    vec![Line::from(vec![
        Span::styled(
            format!("asks {} ({})", ask.permission, ask.patterns.join(", ")),
            app.theme.status("waiting-approval"),
        ),
        Span::styled(format!("  request {}  ", ask.short()), app.theme.title),
        Span::styled(super::agents::decision_keys(app), app.theme.muted),
    ])]
}

fn question_lines(app: &App, ask: &crate::engine::approval::Ask) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let keys = super::agents::question_keys(app);
    let mut lines = vec![Line::from(vec![
        Span::styled("asks a question", theme.status("waiting-approval")),
        Span::styled(format!("  request {}  ", ask.short()), theme.title),
        Span::styled(keys, theme.muted),
    ])];
    // The detail's paragraph trims leading spaces: options stand out by their numbers.
    for q in &ask.questions {
        lines.push(Line::from(vec![
            Span::styled(format!("{}: ", q.header), theme.title),
            Span::raw(q.question.clone()),
        ]));
        for (i, choice) in q.options.iter().enumerate() {
            lines.push(Line::from(vec![
                Span::styled(format!("[{}] ", i + 1), theme.accent),
                Span::raw(choice.label.clone()),
                Span::styled(format!("  {}", choice.description), theme.muted),
            ]));
        }
    }
    lines
}

/// Whether `s` is the attempt whose work its task's shared context holds: it completed, and no
/// later attempt of the task did.
fn left_it(app: &App, s: &crate::domain::Session) -> bool {
    s.status == crate::domain::SessionStatus::Completed
        && !app.view.sessions.iter().any(|other| {
            other.session.task == s.task
                && other.session.attempt > s.attempt
                && other.session.status == crate::domain::SessionStatus::Completed
        })
}

/// The session's diff, coloured: added lines, removed lines, file and hunk headers.
fn diff_lines(app: &App, id: SessionId) -> Vec<Line<'static>> {
    let theme = &app.theme;
    match app
        .view
        .diff
        .as_ref()
        .filter(|(d, _)| *d == id)
        .map(|(_, d)| d)
    {
        None => vec![Line::styled("reading the diff…", theme.muted)],
        Some(Err(e)) => vec![Line::styled(e.clone(), theme.status("failed"))],
        Some(Ok(text)) if text.trim().is_empty() => vec![Line::styled(
            "no work recorded for this session (it changed nothing yet, ended without committing any, or did not work in a git worktree)",
            theme.muted,
        )],
        Some(Ok(text)) => coloured_diff(theme, text),
    }
}

/// A unified diff, coloured: added lines, removed lines, file and hunk headers.
pub(super) fn coloured_diff(theme: &crate::tui::theme::Theme, text: &str) -> Vec<Line<'static>> {
    text.lines()
        .map(|line| {
            let style = if line.starts_with("+++")
                || line.starts_with("---")
                || line.starts_with("diff ")
            {
                theme.title
            } else if line.starts_with('+') {
                theme.status("completed")
            } else if line.starts_with('-') {
                theme.status("failed")
            } else if line.starts_with("@@") {
                theme.info
            } else {
                theme.base
            };
            Line::styled(line.to_string(), style)
        })
        .collect()
}
