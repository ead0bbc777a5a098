//! The new-task prompt: a multi-line editor docked above the footer (which shows its keys),
//! growing with its text up to half the screen, long lines wrapped, the cursor always in view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::tui::app::App;
use crate::tui::editor::Editor;

const PREFIX: &str = "new task> ";
const CURSOR: char = '▏';

pub(crate) fn draw(frame: &mut Frame, app: &App, editor: &Editor, area: Rect) {
    if area.height < 3 || area.width <= PREFIX.len() as u16 {
        return;
    }
    let width = usize::from(area.width) - PREFIX.len();
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
                Span::styled(PREFIX, theme.accent)
            } else {
                Span::raw(" ".repeat(PREFIX.len()))
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
    let height = shown as u16 + 1;
    let popup = Rect {
        x: area.x,
        y: area.bottom() - height,
        width: area.width,
        height,
    };
    let count = editor.lines().len();
    let title = format!(
        " new task · {count} line{} ",
        if count == 1 { "" } else { "s" }
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .border_style(theme.border_focus)
                    .title(Span::styled(title, theme.accent)),
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
