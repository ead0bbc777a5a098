//! Keys to actions: the defaults (vim keys and arrows), overrides from `[ui.keys]`, and the help
//! screen generated from the same table, so the help can never disagree with the keys.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    NextPane,
    PrevPane,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    Back,
    Filter,
    Palette,
    NewTask,
    Sort,
    Cancel,
    Retry,
    Pause,
    Drain,
    ApproveOnce,
    ApproveAlways,
    Reject,
    Graph,
    Collapse,
    Expand,
    AddLocal,
    Diff,
    TakeOver,
    Say,
    Interrupt,
    PlanReview,
    Timeline,
}

/// Each action: its config name, what it does (for `?`), and its default keys.
const TABLE: &[(Action, &str, &str, &[&str])] = &[
    (Action::Help, "help", "this help", &["?"]),
    (
        Action::Quit,
        "quit",
        "quit (asks while work runs)",
        &["q", "ctrl-c"],
    ),
    (Action::NextPane, "next-pane", "next pane", &["tab"]),
    (
        Action::PrevPane,
        "prev-pane",
        "previous pane",
        &["shift-tab"],
    ),
    (Action::Up, "up", "move up", &["k", "up"]),
    (Action::Down, "down", "move down", &["j", "down"]),
    (Action::Top, "top", "first row", &["g", "home"]),
    (Action::Bottom, "bottom", "last row", &["G", "end"]),
    (Action::PageUp, "page-up", "page up", &["ctrl-u", "pageup"]),
    (
        Action::PageDown,
        "page-down",
        "page down",
        &["ctrl-d", "pagedown"],
    ),
    (
        Action::Open,
        "open",
        "open the selected session's detail",
        &["enter"],
    ),
    (Action::Back, "back", "close, clear, go back", &["esc"]),
    (Action::Filter, "filter", "filter the sessions", &["/"]),
    (Action::Palette, "palette", "command palette", &[":"]),
    (
        Action::NewTask,
        "new-task",
        "new task from a prompt",
        &["n"],
    ),
    (
        Action::Sort,
        "sort",
        "sort sessions by the next column",
        &["s"],
    ),
    (Action::Cancel, "cancel", "cancel the selected task", &["c"]),
    (Action::Retry, "retry", "retry the selected task", &["R"]),
    (Action::Pause, "pause", "pause / resume dispatching", &["p"]),
    (
        Action::Drain,
        "drain",
        "drain / undrain the selected agent",
        &["d"],
    ),
    (
        Action::ApproveOnce,
        "approve",
        "approve the selected request once",
        &["a"],
    ),
    (
        Action::ApproveAlways,
        "approve-always",
        "approve it for the whole session",
        &["A"],
    ),
    (
        Action::Reject,
        "reject",
        "reject the selected request",
        &["r"],
    ),
    (
        Action::Graph,
        "graph",
        "task tree / dependency graph",
        &["v"],
    ),
    (
        Action::Collapse,
        "collapse",
        "collapse (tree)",
        &["h", "left"],
    ),
    (Action::Expand, "expand", "expand (tree)", &["l", "right"]),
    (
        Action::Diff,
        "diff",
        "detail: the session's diff / its transcript",
        &["D"],
    ),
    (
        Action::TakeOver,
        "take-over",
        "detail: take over the session in OpenCode (opencode attach)",
        &["o"],
    ),
    (
        Action::Say,
        "say",
        "detail: send the running session a message",
        &["i"],
    ),
    (
        Action::Interrupt,
        "interrupt",
        "detail: interrupt what the session does now (it waits for your message)",
        &["x"],
    ),
    (
        Action::PlanReview,
        "plan-review",
        "review the selected plan: files (space marks reviewed), diffs, answers",
        &["V"],
    ),
    (
        Action::Timeline,
        "timeline",
        "timeline of the selected plan: lanes (b: by agent/task), + - zoom, 0 fit, h l scroll",
        &["T"],
    ),
    (
        Action::AddLocal,
        "add-local",
        "add a managed local agent (while none exists)",
        &["m"],
    ),
];

/// A key as written in config: `q`, `G`, `ctrl-c`, `shift-tab`, `enter`, `f5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
}

impl Key {
    pub(crate) fn parse(text: &str) -> Option<Key> {
        let mut ctrl = false;
        let mut alt = false;
        let mut shift = false;
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-").filter(|r| r.len() > 1) {
                shift = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" if shift => KeyCode::BackTab,
            "tab" => KeyCode::Tab,
            "backspace" => KeyCode::Backspace,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "delete" => KeyCode::Delete,
            f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next()?),
            _ => return None,
        };
        Some(Key { code, ctrl, alt })
    }

    fn from_event(event: &KeyEvent) -> Key {
        Key {
            code: event.code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::F(n) => write!(f, "f{n}"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            _ => f.write_str("another key"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum KeymapError {
    #[error("[ui.keys] {action}: no such action\nhint: the actions are {known}")]
    UnknownAction { action: String, known: String },
    #[error(
        "[ui.keys] {action}: {key:?} is not a key\nhint: write keys like \"q\", \"G\", \"ctrl-c\", \"shift-tab\", \"enter\", \"f5\""
    )]
    BadKey { action: String, key: String },
    /// An essential action left without a key: given none, or its keys all taken by others.
    #[error(
        "[ui.keys] {action}: no key left for it{}\nhint: {action} is one of the actions that must keep a key ({}); give it one, e.g. {action} = [\"{}\"], or leave it out of [ui.keys] for its default keys",
        taken_by_text(.taken_by),
        ESSENTIAL_NAMES,
        default_key(.action)
    )]
    Unbound {
        action: &'static str,
        /// The action whose keys in `[ui.keys]` took its last key.
        taken_by: Option<String>,
    },
}

impl KeymapError {
    /// The key of `[ui.keys]` to point at: the action given there, or the one that took an
    /// essential action's keys.
    pub(crate) fn config_key(&self) -> &str {
        match self {
            Self::UnknownAction { action, .. } | Self::BadKey { action, .. } => action,
            Self::Unbound {
                taken_by: Some(by), ..
            } => by,
            Self::Unbound { action, .. } => action,
        }
    }
}

/// Without a key for these there is no way out (quit), no way to learn the keys (help), or no
/// way back from a session's detail and a filter (back).
const ESSENTIAL: &[Action] = &[Action::Quit, Action::Help, Action::Back];
const ESSENTIAL_NAMES: &str = "quit, help, back";

fn taken_by_text(taken_by: &Option<String>) -> String {
    taken_by
        .as_ref()
        .map(|by| format!(": its keys were given to {by}"))
        .unwrap_or_default()
}

fn default_key(action: &str) -> &'static str {
    TABLE
        .iter()
        .find(|(_, name, _, _)| *name == action)
        .and_then(|(_, _, _, keys)| keys.first().copied())
        .unwrap_or("q")
}

fn name_of(action: Action) -> &'static str {
    TABLE
        .iter()
        .find(|(a, ..)| *a == action)
        .map_or("?", |(_, name, ..)| *name)
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Key, Action)>,
}

impl Default for Keymap {
    fn default() -> Self {
        let bindings = TABLE
            .iter()
            .flat_map(|(action, _, _, keys)| {
                keys.iter()
                    .filter_map(move |k| Some((Key::parse(k)?, *action)))
            })
            .collect();
        Self { bindings }
    }
}

impl Keymap {
    /// The defaults with `[ui.keys]` applied: an action given there keeps only those keys.
    pub(crate) fn with_overrides(
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> Result<Self, KeymapError> {
        let mut keymap = Self::default();
        let mut taken: Vec<(Action, String)> = Vec::new();
        for (name, keys) in overrides {
            let Some((action, ..)) = TABLE.iter().find(|(_, n, _, _)| n == name) else {
                return Err(KeymapError::UnknownAction {
                    action: name.clone(),
                    known: TABLE
                        .iter()
                        .map(|(_, n, _, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            keymap.bindings.retain(|(_, a)| a != action);
            for text in keys {
                let key = Key::parse(text).ok_or_else(|| KeymapError::BadKey {
                    action: name.clone(),
                    key: text.clone(),
                })?;
                // A key taken by an override leaves its old action (a later override wins).
                for (_, lost) in keymap.bindings.iter().filter(|(k, _)| *k == key) {
                    taken.retain(|(a, _)| a != lost);
                    taken.push((*lost, name.clone()));
                }
                keymap.bindings.retain(|(k, _)| *k != key);
                keymap.bindings.push((key, *action));
            }
        }
        keymap.check_essential(&taken)
    }

    /// Refuse a keymap that leaves an essential action without a key. `taken` says which
    /// override took each action's keys (the last one that did).
    fn check_essential(self, taken: &[(Action, String)]) -> Result<Self, KeymapError> {
        for action in ESSENTIAL {
            if self.bindings.iter().any(|(_, a)| a == action) {
                continue;
            }
            let name = name_of(*action);
            return Err(KeymapError::Unbound {
                action: name,
                taken_by: taken
                    .iter()
                    .find(|(a, by)| a == action && by != name)
                    .map(|(_, by)| by.clone()),
            });
        }
        Ok(self)
    }

    pub(crate) fn action(&self, event: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(event);
        self.bindings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, a)| *a)
    }

    /// The keys of an action, as the help and hints show them (`j/down`).
    pub(crate) fn keys(&self, action: Action) -> String {
        let keys: Vec<String> = self
            .bindings
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(k, _)| k.to_string())
            .collect();
        if keys.is_empty() {
            "(unbound)".into()
        } else {
            keys.join("/")
        }
    }

    /// Every action with its keys and what it does, in the table's order.
    pub(crate) fn help(&self) -> Vec<(String, &'static str)> {
        TABLE
            .iter()
            .map(|(action, _, what, _)| (self.keys(*action), *what))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn defaults_cover_vim_keys_and_arrows_and_help_lists_every_action() {
        let keymap = Keymap::default();
        assert_eq!(
            keymap.action(&press(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            keymap.action(&press(KeyCode::Down, KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            keymap.action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap.action(&press(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            keymap.action(&press(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevPane)
        );
        assert_eq!(keymap.help().len(), TABLE.len());
        assert_eq!(keymap.keys(Action::Down), "j/down");
    }

    #[test]
    fn overrides_replace_an_actions_keys_and_free_the_key_they_take() {
        let overrides = BTreeMap::from([
            ("quit".to_string(), vec!["x".to_string()]),
            (
                "down".to_string(),
                vec!["n".to_string(), "down".to_string()],
            ),
        ]);
        let keymap = Keymap::with_overrides(&overrides).unwrap();
        assert_eq!(
            keymap.action(&press(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap.action(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
        // `n` was new-task's; now it moves down and new-task is unbound.
        assert_eq!(
            keymap.action(&press(KeyCode::Char('n'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(keymap.keys(Action::NewTask), "(unbound)");
    }

    #[test]
    fn a_keymap_that_leaves_quit_help_or_back_without_a_key_is_refused() {
        let with = |pairs: &[(&str, &[&str])]| {
            Keymap::with_overrides(
                &pairs
                    .iter()
                    .map(|(a, k)| (a.to_string(), k.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            )
        };
        for essential in ["quit", "help", "back"] {
            let err = with(&[(essential, &[])]).unwrap_err().to_string();
            assert!(
                err.contains(&format!("[ui.keys] {essential}:")) && err.contains("no key"),
                "{err}"
            );
            assert!(matches!(
                with(&[(essential, &[])]).unwrap_err(),
                KeymapError::Unbound { .. }
            ));
        }
        // Taking every key of quit for another action leaves quit with none: refused too,
        // naming the action that took them.
        let err = with(&[("down", &["q", "ctrl-c"])]).unwrap_err().to_string();
        assert!(
            err.contains("[ui.keys] quit:") && err.contains("down"),
            "{err}"
        );
        // Other keys, or other actions left unbound, are fine.
        assert!(with(&[("quit", &["x"]), ("new-task", &[])]).is_ok());
    }

    #[test]
    fn bad_overrides_say_which_action_and_key() {
        let bad = |a: &str, k: &[&str]| {
            Keymap::with_overrides(&BTreeMap::from([(
                a.to_string(),
                k.iter().map(|s| s.to_string()).collect(),
            )]))
            .unwrap_err()
            .to_string()
        };
        assert!(bad("fly", &["f"]).contains("fly: no such action"));
        assert!(bad("quit", &["ctrl-"]).contains("\"ctrl-\" is not a key"));
    }
}
