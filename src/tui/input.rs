//! The control room's text inputs: the sessions filter, the `:` command line, the new-task
//! prompt and the answer to a session's question. Keys edit the open input; a paste is text
//! for the open input and nothing else (with none open it is dropped), so pasted letters never
//! act as keys.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{Answering, App, Effect, Mode, Request, closes, typed};
use super::editor::{Editor, LINE_LIMIT, Outcome};
use super::palette::{self, Command, Completion};
use super::panes::Cursor;
use crate::engine::approval::{Approver, Decision};
use crate::engine::question::Answer;

impl App {
    /// Pasted text (bracketed paste): into the open input, line breaks kept only in a prompt.
    /// A one-line input takes what fits in `LINE_LIMIT`, and the footer says what was cut.
    pub(super) fn paste(&mut self, text: &str) -> Vec<Effect> {
        let cut = match &mut self.mode {
            Mode::NewTask(editor) => editor.paste(text),
            Mode::Answer(answering) => answering.editor.paste(text),
            Mode::Say(_, editor) => editor.paste(text),
            // `:prompt ` and a paste of many lines, or too long for the command line: a
            // prompt, so on in the prompt's editor (which takes it whole).
            Mode::Palette(editor, _) if text.contains(['\n', '\r']) || text.len() > LINE_LIMIT => {
                match prompt_rest(&editor.text()) {
                    Some(rest) => {
                        let mut prompt = Editor::multi_line_with(rest);
                        prompt.paste(text);
                        self.mode = Mode::NewTask(prompt);
                        0
                    }
                    None => editor.paste(text),
                }
            }
            Mode::Palette(editor, _) => editor.paste(text),
            Mode::Filter => {
                let mut line = Editor::single_line_with(&self.panes.filter);
                let cut = line.paste(text);
                self.panes.filter = line.text();
                self.filter_changed();
                cut
            }
            // No input open: a paste is never keys.
            _ => 0,
        };
        if cut > 0 {
            let note = format!("paste cut to {LINE_LIMIT} characters, {cut} left out");
            self.toast(note, true);
        }
        Vec::new()
    }

    /// A key while the sessions filter is typed.
    pub(super) fn filter_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(effects) = self.search_key(&key) {
            return effects;
        }
        match key.code {
            KeyCode::Enter => self.mode = Mode::Normal,
            _ if closes(&key) => {
                self.panes.filter.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Backspace => {
                self.panes.filter.pop();
            }
            _ => self.panes.filter.extend(typed(&key)),
        }
        self.filter_changed();
        Vec::new()
    }

    fn filter_changed(&mut self) {
        self.panes.sessions = Cursor::default();
        self.view.generation += 1;
    }

    /// A key in the command line or the prompt. The command line, closed or run, goes back
    /// to what it was opened over (a command may go on from there: a question asked).
    pub(super) fn edit(&mut self, key: KeyEvent) -> Vec<Effect> {
        let (mut editor, back) = match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Palette(editor, back) => (editor, Some(back)),
            Mode::NewTask(editor) => (editor, None),
            other => {
                self.mode = other;
                return Vec::new();
            }
        };
        if let Some(back) = back {
            return self.palette_edit(&key, editor, back);
        }
        match editor.key(&key) {
            Outcome::Cancel => Vec::new(),
            Outcome::Edited => {
                self.mode = Mode::NewTask(editor);
                Vec::new()
            }
            Outcome::Submit => {
                let text = editor.text().trim().to_string();
                if text.is_empty() {
                    return Vec::new();
                }
                vec![Effect::Request(Request::Prompt(text))]
            }
        }
    }

    /// A key in the command line, opened over `back`.
    fn palette_edit(&mut self, key: &KeyEvent, mut editor: Editor, back: Box<Mode>) -> Vec<Effect> {
        if self.palette_key(key, &mut editor) {
            self.mode = Mode::Palette(editor, back);
            return Vec::new();
        }
        match editor.key(key) {
            Outcome::Edited => {
                self.mode = Mode::Palette(editor, back);
                Vec::new()
            }
            Outcome::Cancel => {
                self.mode = *back;
                Vec::new()
            }
            Outcome::Submit => {
                self.mode = *back;
                self.run_command(editor.text().trim())
            }
        }
    }

    /// The keys the command line takes before its editor: `?` on an empty line lists the
    /// commands, Tab completes a command's name (or lists those it may be), then its first
    /// argument. Whether it took it.
    fn palette_key(&mut self, key: &KeyEvent, editor: &mut Editor) -> bool {
        let text = editor.text();
        match key.code {
            KeyCode::Char('?') if typed(key).is_some() && text.trim().is_empty() => {
                self.palette_list = true;
            }
            KeyCode::Tab => match palette::complete(&text) {
                Completion::Line(line) => *editor = Editor::single_line_with(&line),
                Completion::Many(shared, _) => {
                    *editor = Editor::single_line_with(&shared);
                    self.palette_list = true;
                }
                Completion::Nothing => self.complete_argument(editor, &text),
            },
            _ => return false,
        }
        true
    }

    /// Tab after a command's verb: its first argument completed from the names the room
    /// shows (tasks as `plan/task`, plans, agents, waiting requests); several that start so
    /// are listed where the command line shows what it says.
    fn complete_argument(&mut self, editor: &mut Editor, text: &str) {
        let Some((names, word)) = palette::argument(text) else {
            return;
        };
        let view = &self.view;
        let tasks = || {
            view.plans.iter().flat_map(|p| {
                p.tasks
                    .iter()
                    .map(move |t| format!("{}/{}", p.name, t.key))
                    .chain(p.tasks.iter().map(|t| t.key.clone()))
            })
        };
        let mut known: Vec<String> = match names {
            palette::Names::Tasks => tasks().collect(),
            palette::Names::PlansAndTasks => view
                .plans
                .iter()
                .map(|p| p.name.clone())
                .chain(tasks())
                .collect(),
            palette::Names::Agents => view.agents.iter().map(|a| a.name.to_string()).collect(),
            palette::Names::Requests => view
                .approvals
                .iter()
                .map(|a| a.ask.short().to_string())
                .collect(),
        };
        known.sort();
        known.dedup();
        match palette::complete_argument(text, word, &known) {
            Some(palette::ArgCompletion::Line(line)) => *editor = Editor::single_line_with(&line),
            Some(palette::ArgCompletion::Many(line, many)) => {
                *editor = Editor::single_line_with(&line);
                self.toast(many.join(" · "), false);
            }
            None => self.toast(format!("nothing here starts with {word:?}"), false),
        }
    }

    fn run_command(&mut self, line: &str) -> Vec<Effect> {
        if line.is_empty() {
            return Vec::new();
        }
        if prompt_rest(line).is_some() && self.no_agents() {
            return Vec::new();
        }
        // `:prompt` alone opens the prompt's editor, for a prompt of many lines.
        if prompt_rest(line).is_some_and(str::is_empty) {
            self.mode = Mode::NewTask(Editor::multi_line());
            return Vec::new();
        }
        match palette::parse(line) {
            Ok(Command::Quit) => self.ask_quit(),
            Ok(Command::Request(request)) => self.resolve(request).into_iter().collect(),
            Err(e) => {
                self.toast(e, true);
                Vec::new()
            }
        }
    }
}

/// What follows `prompt` (or `p`) in a command line, if it is the prompt command.
fn prompt_rest(line: &str) -> Option<&str> {
    let line = line.trim_start().trim_start_matches(':');
    let (verb, rest) = line
        .split_once(char::is_whitespace)
        .unwrap_or((line.trim_end(), ""));
    matches!(verb, "prompt" | "p").then(|| rest.trim_start())
}

impl App {
    /// The operator acts on the question at `index` of the inbox: the answer key opens its
    /// editor, reject rejects it; "always" means nothing to a question.
    pub(super) fn on_question(&mut self, index: usize, decision: Decision) -> Vec<Effect> {
        match decision {
            Decision::Once => {
                let waiting = &self.view.approvals[index];
                let back = std::mem::replace(&mut self.mode, Mode::Normal);
                self.mode = Mode::Answer(Box::new(Answering {
                    request: waiting.ask.id.clone(),
                    task: waiting.task.clone(),
                    questions: waiting.ask.questions.clone(),
                    editor: super::editor::Editor::multi_line(),
                    back,
                }));
                Vec::new()
            }
            Decision::Always => {
                let keys = format!(
                    "{} answers it, {} rejects it",
                    self.keymap.keys(super::keymap::Action::ApproveOnce),
                    self.keymap.keys(super::keymap::Action::Reject)
                );
                self.toast(
                    format!("a question, not a permission request: {keys}"),
                    false,
                );
                Vec::new()
            }
            Decision::Reject => {
                let id = self.view.approvals[index].ask.id.clone();
                self.view.answered(&id, true);
                vec![Effect::Request(Request::Approve(
                    id,
                    Decision::Reject,
                    Approver::Key,
                ))]
            }
        }
    }

    /// A key while an answer is typed: enter sends it (it leaves the inbox at once), esc
    /// drops it.
    pub(super) fn answer_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::Answer(mut answering) = std::mem::replace(&mut self.mode, Mode::Normal) else {
            return Vec::new();
        };
        match answering.editor.key(&key) {
            Outcome::Edited => {
                self.mode = Mode::Answer(answering);
                Vec::new()
            }
            Outcome::Cancel => {
                self.mode = answering.back;
                Vec::new()
            }
            Outcome::Submit => {
                let answers = answers_of(&answering.editor.text(), answering.questions.len());
                if answers.is_empty() {
                    self.mode = Mode::Answer(answering);
                    return Vec::new();
                }
                // Checked here, where the questions are at hand: a wrong one keeps its text.
                if let Err(e) = crate::engine::question::resolve(&answering.questions, &answers) {
                    self.toast(e.0, true);
                    self.mode = Mode::Answer(answering);
                    return Vec::new();
                }
                self.mode = answering.back;
                self.view.answered(&answering.request, false);
                vec![Effect::Request(Request::Answer(answering.request, answers))]
            }
        }
    }
}

impl App {
    /// `i` or `x` in a session's detail: open the message's editor, or interrupt it, when it
    /// runs.
    pub(super) fn steer(&mut self, action: super::keymap::Action) -> Vec<Effect> {
        let Mode::Detail(id) = self.mode else {
            return Vec::new();
        };
        let running = self
            .view
            .sessions
            .iter()
            .find(|s| s.session.id == id)
            .is_some_and(|s| s.session.is_active());
        if !running {
            self.toast(
                "this session has ended: only a running session takes messages (R runs its task again)"
                    .into(),
                false,
            );
            return Vec::new();
        }
        // The engine takes no message and no interrupt while the session's request waits:
        // said now, not after a message was typed for nothing.
        if let Some(waiting) = self.view.approvals.iter().find(|a| a.session == id) {
            use super::keymap::Action::{ApproveAlways, ApproveOnce, Reject};
            let keys = &self.keymap;
            let answers = if waiting.ask.is_question() {
                format!("{} answer", keys.keys(ApproveOnce))
            } else {
                format!(
                    "{} once · {} always",
                    keys.keys(ApproveOnce),
                    keys.keys(ApproveAlways)
                )
            };
            let text = format!(
                "this session waits for an answer to its request {}: answer that first ({answers} · {} reject), then it takes messages",
                waiting.ask.short(),
                keys.keys(Reject),
            );
            self.toast(text, false);
            return Vec::new();
        }
        match action {
            super::keymap::Action::Interrupt => vec![Effect::Request(Request::Interrupt(id))],
            _ => {
                self.mode = Mode::Say(id, super::editor::Editor::multi_line());
                Vec::new()
            }
        }
    }

    /// A key while a message to a session is typed: enter sends it, esc drops it.
    pub(super) fn say_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Mode::Say(id, mut editor) = std::mem::replace(&mut self.mode, Mode::Normal) else {
            return Vec::new();
        };
        match editor.key(&key) {
            Outcome::Edited => {
                self.mode = Mode::Say(id, editor);
                Vec::new()
            }
            Outcome::Cancel => {
                self.mode = Mode::Detail(id);
                Vec::new()
            }
            Outcome::Submit => {
                let text = editor.text().trim().to_string();
                if text.is_empty() {
                    self.mode = Mode::Say(id, editor);
                    return Vec::new();
                }
                self.mode = Mode::Detail(id);
                vec![Effect::Request(Request::Say(id, text))]
            }
        }
    }
}

/// What was typed as the answers to `questions` questions: for one question the whole text
/// (option numbers, `2` or `1,3`, or else a text of any number of lines); for several, one
/// answer per non-empty line.
pub(crate) fn answers_of(text: &str, questions: usize) -> Vec<Answer> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    if questions <= 1 {
        return vec![answer_of(text)];
    }
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(answer_of)
        .collect()
}

fn answer_of(text: &str) -> Answer {
    let picks: Option<Vec<usize>> = text
        .split(',')
        .map(|n| n.trim().parse::<usize>().ok())
        .collect();
    match picks {
        Some(picks) => Answer::Pick(picks),
        None => Answer::Text(text.to_string()),
    }
}
