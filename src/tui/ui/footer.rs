//! The footer: the keys that work here (what gives way first where it is short), the
//! status line (a toast, wrapped to the rows it needs) and the command line as typed.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::bar::{self, Part};
use super::{fit, wrap};
use crate::tui::app::{App, Mode, Pane};
use crate::tui::view::InboxRow;

pub(super) fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.theme;
    let line = match &app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("/", theme.accent),
            Span::raw(app.panes.filter.clone()),
            Span::styled("▏ enter keep · esc clear", theme.muted),
        ]),
        Mode::Palette(editor, _) => {
            palette_line(app, editor, usize::from(area.width), palette_hint(app))
        }
        Mode::NewTask(_) => editor_line(app, " new task: "),
        Mode::Say(..) => editor_line(app, " message: "),
        Mode::Answer(_) => editor_line(app, " answer: "),
        Mode::ConfirmLand { .. } => question_line(app, " land: ", "lands"),
        Mode::ConfirmCancel { .. } => question_line(app, " cancel: ", "cancels it"),
        Mode::ConfirmBudgetCancel { .. } => question_line(app, " cancel: ", "cancels the plan"),
        Mode::ConfirmQuit { .. } => question_line(app, " quit: ", "quits"),
        _ => hints(app, area.width),
    };
    frame.render_widget(Paragraph::new(line).style(theme.base), area);
}

/// A question's footer: what it asks, and the keys that answer it (`y` or enter goes ahead,
/// any other key does not; the pane's keys under it do nothing while it is open).
fn question_line(app: &App, what: &'static str, yes: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(what, app.theme.accent),
        Span::styled(
            format!("y/enter {yes} · any other key does not"),
            app.theme.muted,
        ),
    ])
}

/// An editor's footer: what it is for, then what the room says now (why Enter did not take an
/// answer: the status line is not shown under an editor, and a wrong answer went unexplained,
/// hand trial), else its keys.
fn editor_line(app: &App, what: &'static str) -> Line<'static> {
    let theme = &app.theme;
    let said = match &app.toast {
        Some(toast) => Span::styled(
            toast.text.replace('\n', " "),
            if toast.error {
                theme.status("failed")
            } else {
                theme.info
            },
        ),
        None => Span::styled(crate::tui::editor::MULTI_LINE_HINT, theme.muted),
    };
    Line::from(vec![Span::styled(what, theme.accent), said])
}

/// At most this many rows of the screen's height hold the status line (and never more
/// than a quarter of it).
const STATUS_ROWS: u16 = 4;

/// The status line (a toast) where the footer shows it: its whole text, wrapped to as many
/// rows as it takes, so none of what it says is lost at the edge. Only a message longer
/// than [`STATUS_ROWS`] rows is cut, and its last row then ends with `…`.
/// On the command line, a message too long to follow its text takes the rows above it.
pub(super) fn status_rows(app: &App, width: u16, height: u16) -> Option<Vec<Line<'static>>> {
    let toast = app.toast.as_ref()?;
    if let Mode::Palette(editor, _) = &app.mode {
        let whole = usize::from(width);
        if palette_line(app, editor, whole, palette_hint(app)).width() <= whole {
            return None;
        }
        let mut rows = toast_rows(app, toast, width, height.saturating_sub(1));
        rows.push(palette_line(app, editor, whole, Span::raw("")));
        return Some(rows);
    }
    // An editor says it in its own line; a question shows the keys that answer it (a toast
    // from before it, `... not landed`, hid them).
    if matches!(
        app.mode,
        Mode::Filter
            | Mode::NewTask(_)
            | Mode::Say(..)
            | Mode::Answer(_)
            | Mode::ConfirmQuit { .. }
            | Mode::ConfirmCancel { .. }
            | Mode::ConfirmLand { .. }
            | Mode::ConfirmBudgetCancel { .. }
    ) {
        return None;
    }
    Some(toast_rows(app, toast, width, height))
}

/// A toast wrapped to `width`, on at most [`STATUS_ROWS`] rows (and a quarter of `height`).
fn toast_rows(
    app: &App,
    toast: &crate::tui::app::Toast,
    width: u16,
    height: u16,
) -> Vec<Line<'static>> {
    let style = if toast.error {
        app.theme.status("failed")
    } else {
        app.theme.info
    };
    let line = Line::styled(format!(" {}", toast.text), style);
    let mut rows = wrap::wrap(line, usize::from(width), 1);
    let most = usize::from(STATUS_ROWS.min(height / 4).max(1));
    if rows.len() > most {
        rows.truncate(most);
        if let Some(last) = rows.last_mut() {
            let text: String = last.spans.iter().map(|s| s.content.as_ref()).collect();
            *last = Line::styled(
                fit(&format!("{}…", text.trim_end()), usize::from(width)),
                style,
            );
        }
    }
    rows
}

/// The command line: `:`, its text around the cursor, what it says after. A line wider
/// than the footer shows the part at the cursor, and keeps room for the hint or toast (a
/// paste of thousands of characters would otherwise push both out of sight).
fn palette_line(
    app: &App,
    editor: &crate::tui::editor::Editor,
    width: usize,
    hint: Span<'static>,
) -> Line<'static> {
    let (_, col) = editor.cursor();
    let chars: Vec<char> = editor.text().chars().collect();
    let room = width.saturating_sub(2 + hint.content.chars().count().min(width / 2));
    let start = col.saturating_sub(room);
    let end = chars.len().min((start + room).max(col));
    Line::from(vec![
        Span::styled(":", app.theme.accent),
        Span::raw(chars[start..col].iter().collect::<String>()),
        Span::styled("▏", app.theme.muted),
        Span::raw(chars[col..end].iter().collect::<String>()),
        hint,
    ])
}

/// What the command line says after its text: a toast if there is one (a paste that was cut
/// must be told where the operator is looking), else its keys.
fn palette_hint(app: &App) -> Span<'static> {
    let theme = &app.theme;
    match &app.toast {
        Some(toast) => Span::styled(
            format!(" {}", toast.text),
            if toast.error {
                theme.status("failed")
            } else {
                theme.info
            },
        ),
        None if app.palette_list => {
            Span::styled(" enter run · tab completes · esc close", theme.muted)
        }
        None => Span::styled(
            " enter run · tab completes · ? lists commands · esc close",
            theme.muted,
        ),
    }
}

fn hints(app: &App, width: u16) -> Line<'static> {
    use crate::tui::keymap::Action::*;
    let ended = |id: &crate::domain::SessionId| {
        app.view
            .sessions
            .iter()
            .any(|s| s.session.id == *id && !s.session.is_active())
    };
    let pane_hints: &[(crate::tui::keymap::Action, &str)] = match (&app.mode, app.focus) {
        // An ended session takes no word and has nothing to interrupt or cancel.
        (Mode::Detail(id), _) if ended(id) => &[
            (Back, "back"),
            (Diff, "diff"),
            (TakeOver, "opencode"),
            (Retry, "retry"),
        ],
        (Mode::Detail(_), _) => &[
            (Back, "back"),
            (Say, "say"),
            (Interrupt, "interrupt"),
            (Diff, "diff"),
            (TakeOver, "opencode"),
            (Cancel, "cancel"),
            (Retry, "retry"),
        ],
        (Mode::Agent(_), _) => &[(Back, "back")],
        (Mode::PlanReview(_), _) if app.plan_review.diff => &[
            (Back, "files"),
            (Down, "down"),
            (Up, "up"),
            (PageDown, "page"),
        ],
        (Mode::Timeline, _) => &[(Back, "back"), (Expand, "later"), (Collapse, "earlier")],
        (Mode::PlanReview(_), _) => &[
            (Back, "back"),
            (Open, "diff"),
            (Down, "next"),
            (Up, "prev"),
            (PageDown, "tasks"),
        ],
        (_, Pane::Sessions) => &[
            (Open, "detail"),
            (Filter, "filter"),
            (Sort, "sort"),
            (Cancel, "cancel"),
            (Retry, "retry"),
        ],
        (_, Pane::Agents) => &[(Open, "info"), (Drain, "drain")],
        (_, Pane::Tasks) if app.panes.graph => &[
            (Graph, "tree"),
            (Collapse, "layer"),
            (Expand, "layer"),
            (Open, "detail"),
            (Cancel, "cancel"),
            (Retry, "retry"),
        ],
        (_, Pane::Tasks) => &[
            (Graph, "graph"),
            (Open, "detail"),
            (Cancel, "cancel"),
            (Retry, "retry"),
        ],
        (_, Pane::Approvals) => match app.view.inbox().nth(app.panes.approvals.selected) {
            Some(InboxRow::Conflict(_)) => &[(Retry, "retry"), (Cancel, "cancel"), (Open, "how")],
            Some(InboxRow::Held(_)) => &[(Open, "open plan")],
            Some(InboxRow::Message(_)) => &[(Open, "open it, then i: a message")],
            // A question is answered (its editor) or rejected, never approved.
            Some(InboxRow::Request(a)) if a.ask.is_question() => {
                &[(ApproveOnce, "answer"), (Reject, "reject"), (Open, "open")]
            }
            _ => &[
                (ApproveOnce, "approve"),
                (ApproveAlways, "always"),
                (Reject, "reject"),
            ],
        },
        (_, Pane::Events) => &[],
    };
    // A full-screen view has keys of its own to show; the panes' keys do nothing there.
    // The command line opens over a plan's view (`:budget` raises what it is paused on).
    let general: &[(crate::tui::keymap::Action, &str)] = match &app.mode {
        Mode::PlanReview(_) => &[(Palette, "command"), (Quit, "quit")],
        Mode::Detail(_) | Mode::Agent(_) | Mode::Timeline => &[(Quit, "quit")],
        _ => &[
            (NextPane, "pane"),
            (Palette, "command"),
            (NewTask, "new"),
            (Pause, "pause"),
            (Help, "help"),
            (Quit, "quit"),
        ],
    };
    hint_line(app, pane_hints, general, width)
}

/// The keys to show, by what gives way first where the footer is short.
fn hint_line(
    app: &App,
    pane_hints: &[(crate::tui::keymap::Action, &str)],
    general: &[(crate::tui::keymap::Action, &str)],
    width: u16,
) -> Line<'static> {
    use crate::tui::keymap::Action::{Help, Quit};
    let keys = &app.keymap;
    // Narrow, the pane's keys give way before help and quit (which lead to all the others),
    // and the general keys before the pane's.
    let hint = |rank, key: String, label: &str| {
        Part::new(
            rank,
            Span::raw(""),
            vec![
                Span::styled(key, app.theme.accent),
                Span::styled(format!(" {label}  "), app.theme.muted),
            ],
        )
    };
    let mut parts = vec![Part::new(0, Span::raw(" "), Vec::new())];
    if matches!(app.mode, Mode::Timeline) {
        for (key, label) in [
            ("+ -", "zoom"),
            ("0", "fit"),
            ("b", "lanes"),
            ("e", "every plan"),
        ] {
            parts.push(hint(1, key.to_string(), label));
        }
    }
    if let Mode::PlanReview(plan) = app.mode {
        // What a plan paused over budget waits for: kept where the footer is short.
        let held = app
            .view
            .budgets
            .plan(plan)
            .and_then(|p| p.over_budget.as_ref());
        if held.is_some() {
            parts.push(hint(0, "C".to_string(), "continue"));
            parts.push(hint(0, "X".to_string(), "cancel"));
        }
        if !app.plan_review.diff {
            parts.push(hint(1, "space".to_string(), "reviewed"));
        }
    }
    for (action, label) in pane_hints {
        parts.push(hint(1, keys.keys(*action), label));
    }
    for (action, label) in general {
        let rank = if matches!(action, Help | Quit) { 0 } else { 2 };
        parts.push(hint(rank, keys.keys(*action), label));
    }
    bar::line(parts, width)
}
