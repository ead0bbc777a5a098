//! The multi-line inputs (the new-task prompt, the answer to a question): an editor docked
//! above the footer (which shows its keys), growing with its text up to half the screen, long
//! lines wrapped, the cursor always in view; what it answers, if anything, above it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::engine::approval::short_id;
use crate::tui::app::{Answering, App};
use crate::tui::editor::Editor;

const PREFIX: &str = "new task> ";
const CURSOR: char = '▏';

/// The new-task prompt.
pub(crate) fn draw(frame: &mut Frame, app: &App, editor: &Editor, area: Rect) {
    let count = editor.lines().len();
    let title = format!(
        " new task · {count} line{} ",
        if count == 1 { "" } else { "s" }
    );
    let above = app
        .task_home
        .iter()
        .map(|home| Line::styled(home.clone(), app.theme.muted))
        .collect();
    draw_input(frame, app, editor, PREFIX, &title, above, area);
}

/// A message to a running session.
pub(crate) fn draw_say(
    frame: &mut Frame,
    app: &App,
    session: crate::domain::SessionId,
    editor: &Editor,
    area: Rect,
) {
    let task = app
        .view
        .sessions
        .iter()
        .find(|s| s.session.id == session)
        .map_or(String::new(), |s| s.task.clone());
    let title = format!(" message to {task} · session {} ", session.short());
    let above = vec![Line::styled(
        "the session reads it next; its answer to it becomes the task's result",
        app.theme.muted,
    )];
    draw_input(frame, app, editor, "message> ", &title, above, area);
}

/// The answer to a question: the questions and their numbered options above the editor.
pub(crate) fn draw_answer(frame: &mut Frame, app: &App, answering: &Answering, area: Rect) {
    let theme = &app.theme;
    let several = answering.questions.len() > 1;
    let mut above = Vec::new();
    for (n, q) in answering.questions.iter().enumerate() {
        let number = if several {
            format!("{}. ", n + 1)
        } else {
            String::new()
        };
        above.push(Line::from(vec![
            Span::styled(format!("{number}{}: ", q.header), theme.title),
            Span::raw(q.question.clone()),
        ]));
        for (i, choice) in q.options.iter().enumerate() {
            above.push(Line::from(vec![
                Span::styled(format!("   {} ", i + 1), theme.accent),
                Span::raw(choice.label.clone()),
                Span::styled(format!("  {}", choice.description), theme.muted),
            ]));
        }
    }
    let how = if several {
        "a line per question: an option's number or a text"
    } else {
        "an option's number, or a text"
    };
    above.push(Line::styled(how, theme.muted));
    let title = format!(
        " answer {} · {} ",
        answering.task,
        short_id(&answering.request)
    );
    draw_input(
        frame,
        app,
        &answering.editor,
        "answer> ",
        &title,
        above,
        area,
    );
}

fn draw_input(
    frame: &mut Frame,
    app: &App,
    editor: &Editor,
    prefix: &'static str,
    title: &str,
    above: Vec<Line<'static>>,
    area: Rect,
) {
    if area.height < 3 || area.width <= prefix.len() as u16 {
        return;
    }
    let width = usize::from(area.width) - prefix.len();
    let (rows, cursor_row) = wrap(editor, width);
    let most = usize::from(area.height / 2).max(2);
    let shown = rows.len().min(most);
    let offset = (cursor_row + 1).saturating_sub(shown);
    let theme = &app.theme;
    let lines: Vec<Line> = rows
        .into_iter()
        .enumerate()
        .skip(offset)
        .take(shown)
        .map(|(i, row)| {
            let prefix = if i == 0 {
                Span::styled(prefix, theme.accent)
            } else {
                Span::raw(" ".repeat(prefix.len()))
            };
            let Some(at) = row.cursor else {
                return Line::from(vec![prefix, Span::raw(row.text)]);
            };
            let chars: Vec<char> = row.text.chars().collect();
            Line::from(vec![
                prefix,
                Span::raw(chars[..at].iter().collect::<String>()),
                Span::styled(CURSOR.to_string(), theme.accent),
                Span::raw(chars[at + 1..].iter().collect::<String>()),
            ])
        })
        .collect();
    // What it answers takes what the editor leaves of half the screen, its top lines first.
    let room = usize::from(area.height / 2).saturating_sub(shown);
    let above: Vec<Line> = above.into_iter().take(room).collect();
    let lines: Vec<Line> = above.iter().cloned().chain(lines).collect();
    let height = (above.len() + shown) as u16 + 1;
    let popup = Rect {
        x: area.x,
        y: area.bottom() - height,
        width: area.width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .border_style(theme.border_focus)
                    .title(Span::styled(title.to_string(), theme.accent)),
            )
            .style(theme.base),
        popup,
    );
}

/// One screen row of the prompt: its text and, on the cursor's row, where the cursor goes.
struct Row {
    text: String,
    cursor: Option<usize>,
}

/// The editor's lines cut into rows of `width` characters, the cursor a character of its own
/// in its line; and the row the cursor is on.
fn wrap(editor: &Editor, width: usize) -> (Vec<Row>, usize) {
    let (cursor_line, cursor_col) = editor.cursor();
    let mut rows = Vec::new();
    let mut cursor_row = 0;
    for (i, line) in editor.lines().iter().enumerate() {
        let mut chars: Vec<char> = line.chars().collect();
        let cursor = (i == cursor_line).then_some(cursor_col.min(chars.len()));
        if let Some(at) = cursor {
            chars.insert(at, CURSOR);
        }
        for start in (0..chars.len().max(1)).step_by(width) {
            let end = (start + width).min(chars.len());
            let here = cursor.filter(|at| (start..end).contains(at));
            if here.is_some() {
                cursor_row = rows.len();
            }
            rows.push(Row {
                text: chars.get(start..end).unwrap_or_default().iter().collect(),
                cursor: here.map(|at| at - start),
            });
        }
    }
    (rows, cursor_row)
}
