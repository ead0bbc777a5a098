//! A small text editor for the control room's inputs: one line (the `:` command line) or many
//! (a prompt). Keys edit it and pastes insert text as it is: nothing typed or pasted here ever
//! reaches the keymap. Lines and the cursor are kept in characters.
//!
//! Our own rather than `tui-textarea`: its newest release (0.7) is built on ratatui 0.29 and
//! crossterm 0.28, and ours are 0.30 and 0.29, so its widget and key types are not ours.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key did to the editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The text or the cursor changed (or the key was nothing to it).
    Edited,
    /// Enter or ctrl-s: the text is done.
    Submit,
    /// Esc or ctrl-c: drop it.
    Cancel,
}

/// The hint the control room shows under a multi-line editor.
pub(crate) const MULTI_LINE_HINT: &str =
    "enter submit · ctrl-j/alt-enter new line · ctrl-s submit · esc cancel";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    lines: Vec<String>,
    /// The cursor: a line, and a character in it (0 ..= its length).
    row: usize,
    col: usize,
    multi_line: bool,
    /// The most characters a line holds: `LINE_LIMIT` in a one-line editor, none in a prompt.
    limit: usize,
}

/// What a one-line input (the command line, the sessions filter) holds. Commands are short;
/// a prompt longer than this belongs in the prompt's editor, which has no such bound. A paste
/// beyond it is cut there and the caller says so.
pub(crate) const LINE_LIMIT: usize = 4096;

impl Editor {
    /// An empty one-line editor: a paste's line breaks become spaces.
    pub(crate) fn single_line() -> Self {
        Self {
            lines: vec![String::new()],
            row: 0,
            col: 0,
            multi_line: false,
            limit: LINE_LIMIT,
        }
    }

    /// An empty editor that keeps line breaks.
    pub(crate) fn multi_line() -> Self {
        Self {
            multi_line: true,
            limit: usize::MAX,
            ..Self::single_line()
        }
    }

    /// A one-line editor holding `text`, the cursor at its end.
    pub(crate) fn single_line_with(text: &str) -> Self {
        let mut editor = Self::single_line();
        editor.paste(text);
        editor
    }

    /// A multi-line editor holding `text`, the cursor at its end.
    pub(crate) fn multi_line_with(text: &str) -> Self {
        let mut editor = Self::multi_line();
        editor.insert(text);
        editor
    }

    /// The text, lines joined by `\n`.
    pub(crate) fn text(&self) -> String {
        self.lines.join("\n")
    }

    pub(crate) fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The cursor: line and character.
    pub(crate) fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    /// Insert pasted text at the cursor: line breaks (`\n`, `\r\n`, `\r`) kept in a multi-line
    /// editor and made spaces in a one-line one; tabs become spaces and other control
    /// characters are dropped. A one-line editor takes what fits in its `LINE_LIMIT`; the
    /// answer is how many characters it left out.
    pub(crate) fn paste(&mut self, text: &str) -> usize {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if self.multi_line {
            self.insert(&text);
            return 0;
        }
        let line = typable(&text.replace('\n', " "));
        let room = self.limit.saturating_sub(self.len(self.row));
        let kept: String = line.chars().take(room).collect();
        self.insert(&kept);
        line.chars().count() - kept.chars().count()
    }

    /// Apply a key; the caller acts on submit and cancel.
    pub(crate) fn key(&mut self, key: &KeyEvent) -> Outcome {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        match key.code {
            KeyCode::Esc => return Outcome::Cancel,
            KeyCode::Char('c') if ctrl => return Outcome::Cancel,
            KeyCode::Char('s') if ctrl => return Outcome::Submit,
            // ctrl-j is a line feed; alt-enter and (where the terminal tells) shift-enter too.
            KeyCode::Char('j') if ctrl => self.newline(),
            KeyCode::Enter if alt || shift => self.newline(),
            KeyCode::Enter => return Outcome::Submit,
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left => self.left(),
            KeyCode::Right => self.right(),
            KeyCode::Up if self.row > 0 => self.set(self.row - 1, self.col),
            KeyCode::Down if self.row + 1 < self.lines.len() => self.set(self.row + 1, self.col),
            KeyCode::Home => self.col = 0,
            KeyCode::Char('a') if ctrl => self.col = 0,
            KeyCode::End => self.col = self.len(self.row),
            KeyCode::Char('e') if ctrl => self.col = self.len(self.row),
            KeyCode::Char('u') if ctrl => {
                let at = self.byte(self.col);
                self.lines[self.row].drain(..at);
                self.col = 0;
            }
            KeyCode::Char('k') if ctrl => {
                let at = self.byte(self.col);
                self.lines[self.row].truncate(at);
            }
            KeyCode::Tab => self.insert_char(' '),
            KeyCode::Char(c) if !ctrl && !alt => self.insert_char(c),
            _ => {}
        }
        Outcome::Edited
    }

    fn newline(&mut self) {
        if self.multi_line {
            self.insert("\n");
        }
    }

    /// Insert `text` at the cursor. The cursor's byte is found once and the text goes in a
    /// line at a time: found again for every character (as it was), a paste cost its length
    /// squared, and a 100 KB paste froze the control room for minutes.
    fn insert(&mut self, text: &str) {
        let at = self.byte(self.col);
        let after_cursor = self.lines[self.row].split_off(at);
        let mut pieces = text.split('\n').map(typable);
        let first = pieces.next().unwrap_or_default();
        self.col += first.chars().count();
        self.lines[self.row].push_str(&first);
        let added: Vec<String> = pieces.collect();
        if let Some(last) = added.last() {
            self.col = last.chars().count();
        }
        let count = added.len();
        // One splice for all the new lines: inserting them one by one moves every line below
        // the cursor once per line pasted.
        self.lines.splice(self.row + 1..self.row + 1, added);
        self.row += count;
        self.lines[self.row].push_str(&after_cursor);
    }

    fn insert_char(&mut self, c: char) {
        if self.len(self.row) >= self.limit {
            return;
        }
        let at = self.byte(self.col);
        self.lines[self.row].insert(at, c);
        self.col += 1;
    }

    fn backspace(&mut self) {
        if self.col > 0 {
            self.col -= 1;
            let at = self.byte(self.col);
            self.lines[self.row].remove(at);
        } else if self.row > 0 {
            let line = self.lines.remove(self.row);
            self.row -= 1;
            self.col = self.len(self.row);
            self.lines[self.row].push_str(&line);
        }
    }

    fn delete(&mut self) {
        if self.col < self.len(self.row) {
            let at = self.byte(self.col);
            self.lines[self.row].remove(at);
        } else if self.row + 1 < self.lines.len() {
            let next = self.lines.remove(self.row + 1);
            self.lines[self.row].push_str(&next);
        }
    }

    fn left(&mut self) {
        if self.col > 0 {
            self.col -= 1;
        } else if self.row > 0 {
            self.row -= 1;
            self.col = self.len(self.row);
        }
    }

    fn right(&mut self) {
        if self.col < self.len(self.row) {
            self.col += 1;
        } else if self.row + 1 < self.lines.len() {
            self.row += 1;
            self.col = 0;
        }
    }

    fn set(&mut self, row: usize, col: usize) {
        self.row = row;
        self.col = col.min(self.len(row));
    }

    fn len(&self, row: usize) -> usize {
        self.lines.get(row).map_or(0, |l| l.chars().count())
    }

    /// The byte offset of character `col` in the cursor's line.
    fn byte(&self, col: usize) -> usize {
        let line = &self.lines[self.row];
        line.char_indices().nth(col).map_or(line.len(), |(i, _)| i)
    }
}

/// A line of typed or pasted text as the editor keeps it: tabs become spaces, other control
/// characters are dropped.
fn typable(piece: &str) -> String {
    piece
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(editor: &mut Editor, code: KeyCode, modifiers: KeyModifiers) -> Outcome {
        editor.key(&KeyEvent::new(code, modifiers))
    }

    fn type_text(editor: &mut Editor, text: &str) {
        for c in text.chars() {
            press(editor, KeyCode::Char(c), KeyModifiers::NONE);
        }
    }

    #[test]
    fn typing_and_new_lines_by_ctrl_j_alt_enter_and_shift_enter() {
        let mut e = Editor::multi_line();
        type_text(&mut e, "fix it");
        press(&mut e, KeyCode::Char('j'), KeyModifiers::CONTROL);
        type_text(&mut e, "then test");
        press(&mut e, KeyCode::Enter, KeyModifiers::ALT);
        type_text(&mut e, "p d n");
        press(&mut e, KeyCode::Enter, KeyModifiers::SHIFT);
        assert_eq!(e.text(), "fix it\nthen test\np d n\n");
        assert_eq!(e.cursor(), (3, 0));
        assert_eq!(
            press(&mut e, KeyCode::Enter, KeyModifiers::NONE),
            Outcome::Submit
        );
        assert_eq!(
            press(&mut e, KeyCode::Char('s'), KeyModifiers::CONTROL),
            Outcome::Submit
        );
        assert_eq!(
            press(&mut e, KeyCode::Esc, KeyModifiers::NONE),
            Outcome::Cancel
        );
        assert_eq!(
            press(&mut e, KeyCode::Char('c'), KeyModifiers::CONTROL),
            Outcome::Cancel
        );
    }

    #[test]
    fn a_paste_keeps_its_lines_in_a_multi_line_editor_and_not_in_a_single_line_one() {
        let mut e = Editor::multi_line();
        e.paste("one\r\ntwo\rthree\n\tfour\u{7}");
        assert_eq!(e.text(), "one\ntwo\nthree\n four");
        assert_eq!(e.cursor(), (3, 5));
        let mut e = Editor::single_line();
        e.paste("drain\r\ncoder-1\n");
        assert_eq!(e.text(), "drain coder-1 ");
        assert_eq!(e.lines().len(), 1);
        // A single-line editor takes no new line by key either.
        press(&mut e, KeyCode::Char('j'), KeyModifiers::CONTROL);
        assert_eq!(e.lines().len(), 1);
    }

    #[test]
    fn a_paste_goes_in_at_the_cursor() {
        let mut e = Editor::multi_line_with("ab");
        press(&mut e, KeyCode::Left, KeyModifiers::NONE);
        e.paste("1\n2");
        assert_eq!(e.text(), "a1\n2b");
        assert_eq!(e.cursor(), (1, 1));
    }

    #[test]
    fn backspace_and_delete_join_lines_and_the_cursor_moves_across_them() {
        let mut e = Editor::multi_line_with("héllo\nwörld");
        assert_eq!(e.cursor(), (1, 5));
        press(&mut e, KeyCode::Home, KeyModifiers::NONE);
        press(&mut e, KeyCode::Backspace, KeyModifiers::NONE);
        assert_eq!(e.text(), "héllowörld");
        assert_eq!(e.cursor(), (0, 5));
        press(&mut e, KeyCode::Char('j'), KeyModifiers::CONTROL);
        press(&mut e, KeyCode::Left, KeyModifiers::NONE);
        press(&mut e, KeyCode::Delete, KeyModifiers::NONE);
        assert_eq!(e.text(), "héllowörld");
        press(&mut e, KeyCode::Left, KeyModifiers::NONE);
        press(&mut e, KeyCode::Backspace, KeyModifiers::NONE);
        assert_eq!(e.text(), "hélowörld");
        // Up and down keep the column within the line.
        let mut e = Editor::multi_line_with("a long line\nab");
        press(&mut e, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(e.cursor(), (0, 2));
        press(&mut e, KeyCode::End, KeyModifiers::NONE);
        press(&mut e, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(e.cursor(), (1, 2));
        press(&mut e, KeyCode::Right, KeyModifiers::NONE);
        assert_eq!(e.cursor(), (1, 2));
    }

    /// A paste costs its length, not its length squared: 200 KB into a prompt (lines of 100)
    /// and as one line of 200 KB. Character by character, each insert walked its line from
    /// the start to find the cursor's byte: minutes for this in a debug build, milliseconds
    /// now. The timeout is a guard against a hang, not a speed target.
    #[test]
    fn a_big_paste_is_inserted_in_time_linear_in_its_size() {
        let line = format!("{}\n", "0123456789".repeat(10));
        let big = line.repeat(2_000);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut prompt = Editor::multi_line();
            prompt.paste("x");
            press(&mut prompt, KeyCode::Left, KeyModifiers::NONE);
            prompt.paste(&big);
            let mut long_line = Editor::multi_line();
            long_line.paste(&big.replace('\n', ""));
            let _ = done.send((prompt, long_line));
        });
        let (prompt, long_line) = finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a 200 KB paste took over a minute");
        assert_eq!(prompt.lines().len(), 2_001);
        assert_eq!(prompt.lines()[2_000], "x");
        assert_eq!(prompt.cursor(), (2_000, 0));
        assert_eq!(long_line.lines()[0].len(), 200_000);
        assert_eq!(long_line.cursor(), (0, 200_000));
    }

    #[test]
    fn ctrl_chords_edit_and_never_type() {
        let mut e = Editor::single_line();
        type_text(&mut e, "submit plan.toml");
        press(&mut e, KeyCode::Char('a'), KeyModifiers::CONTROL);
        press(&mut e, KeyCode::Char('k'), KeyModifiers::CONTROL);
        assert_eq!(e.text(), "");
        type_text(&mut e, "cancel api");
        press(&mut e, KeyCode::Char('u'), KeyModifiers::CONTROL);
        assert_eq!(e.text(), "");
        press(&mut e, KeyCode::Char('x'), KeyModifiers::ALT);
        press(&mut e, KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert_eq!(e.text(), "");
    }
}
