//! The `:` command line: the one table of its commands, parsing and completing a line (a
//! command's name, and the names its first argument takes). The app turns task names into ids.

use std::path::PathBuf;

use super::app::Request;
use crate::engine::approval::{Approver, Decision};

/// A command of the palette: its name, its short forms, what it takes and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) aliases: &'static [&'static str],
    pub(crate) args: &'static str,
    pub(crate) what: &'static str,
}

impl Spec {
    /// `name ARGS`, as the help and the list show it.
    pub(crate) fn usage(&self) -> String {
        if self.args.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.args)
        }
    }
}

const fn spec(
    name: &'static str,
    aliases: &'static [&'static str],
    args: &'static str,
    what: &'static str,
) -> Spec {
    Spec {
        name,
        aliases,
        args,
        what,
    }
}

/// Every command the palette accepts: `parse` finds a verb here before it reads the rest, so
/// the help, the `?` list, the error that lists them and completion cannot leave one out.
pub(crate) const COMMANDS: &[Spec] = &[
    spec("submit", &["s"], "PLAN.toml", "run a plan file"),
    spec(
        "prompt",
        &["p"],
        "[TEXT]",
        "a one-task plan here (alone: many lines)",
    ),
    spec(
        "plan",
        &[],
        "GOAL",
        "the planner's plan, shown for approval",
    ),
    spec("cancel", &[], "[PLAN/]TASK", "cancel a task"),
    spec(
        "retry",
        &[],
        "[PLAN/]TASK",
        "retry a failed or cancelled task",
    ),
    spec("pause", &[], "", "stop dispatching new sessions"),
    spec("resume", &[], "", "start dispatching again"),
    spec("drain", &[], "AGENT", "stop giving an agent work"),
    spec("undrain", &[], "AGENT", "give a drained agent work again"),
    spec(
        "approve",
        &[],
        "REQUEST [once|always|reject]",
        "answer a permission request",
    ),
    spec(
        "budget",
        &[],
        "PLAN[/TASK] [TOKENS] [$COST] [cancel|hold]",
        "raise a budget, continue the plan paused over it",
    ),
    spec("quit", &["q"], "", "leave the control room"),
];

/// The command a verb names (its name or a short form).
pub(crate) fn find(verb: &str) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|c| c.name == verb || c.aliases.contains(&verb))
}

/// What Tab does to a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Completion {
    /// One command starts so: the line becomes `name ` (with what was typed after the verb).
    Line(String),
    /// Several do (the line grown to what they share): show them.
    Many(String, Vec<&'static Spec>),
    /// None does, or the verb is already complete and followed by more.
    Nothing,
}

/// The commands a line may be: those whose name starts with its first word, or once a word
/// follows, the one that word names.
pub(crate) fn matching(line: &str) -> Vec<&'static Spec> {
    let line = line.trim_start().trim_start_matches(':');
    match line.split_once(char::is_whitespace) {
        Some((verb, _)) => find(verb).into_iter().collect(),
        None => COMMANDS
            .iter()
            .filter(|c| c.name.starts_with(line))
            .collect(),
    }
}

/// Complete the command name at the start of `line`.
pub(crate) fn complete(line: &str) -> Completion {
    if line.trim_start().contains(char::is_whitespace) {
        return Completion::Nothing;
    }
    let found = matching(line);
    match found.as_slice() {
        [] => Completion::Nothing,
        [one] => Completion::Line(format!("{} ", one.name)),
        many => {
            let shared = shared_start(many.iter().map(|c| c.name));
            Completion::Many(shared, many.to_vec())
        }
    }
}

/// What all of `names` start with.
fn shared_start<'a>(mut names: impl Iterator<Item = &'a str>) -> String {
    let Some(first) = names.next() else {
        return String::new();
    };
    names
        .fold(first, |common, name| {
            let end = common
                .char_indices()
                .zip(name.chars())
                .take_while(|((_, a), b)| a == b)
                .last()
                .map_or(0, |((i, a), _)| i + a.len_utf8());
            &common[..end]
        })
        .to_string()
}

/// What a command's first argument names, for Tab to complete it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// `plan/task` (and a task's key alone).
    Tasks,
    /// A plan, or `plan/task`.
    PlansAndTasks,
    Agents,
    /// A waiting request's short id.
    Requests,
}

/// What the first argument of the command `line` starts with names, and that argument as
/// typed so far (empty after `verb `); `None` when Tab has no names for it.
pub(crate) fn argument(line: &str) -> Option<(Names, &str)> {
    let line = line.trim_start().trim_start_matches(':');
    let (verb, rest) = line.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    if rest.contains(char::is_whitespace) {
        return None;
    }
    let names = match find(verb)?.name {
        "cancel" | "retry" => Names::Tasks,
        "budget" => Names::PlansAndTasks,
        "drain" | "undrain" => Names::Agents,
        "approve" => Names::Requests,
        _ => return None,
    };
    Some((names, rest))
}

/// What Tab does to a command's first argument, typed as `word` after `line`'s verb: the one
/// of `names` it starts (then a space), else what those it starts share (and the line they
/// are listed under).
pub(crate) fn complete_argument(line: &str, word: &str, names: &[String]) -> Option<ArgCompletion> {
    let found: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with(word))
        .collect();
    let trimmed = line.trim_start();
    let verb_end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
    let head = &line[..line.len() - trimmed.len() + verb_end];
    match found.as_slice() {
        [] => None,
        [one] => Some(ArgCompletion::Line(format!("{head} {one} "))),
        many => Some(ArgCompletion::Many(
            format!("{head} {}", shared_start(many.iter().copied())),
            many.iter().map(|n| n.to_string()).collect(),
        )),
    }
}

/// What Tab does to an argument: the line it becomes, and when several names start so, them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArgCompletion {
    Line(String),
    Many(String, Vec<String>),
}

/// The names of the commands, for an error that lists them.
pub(crate) fn names() -> String {
    COMMANDS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A request whose task is still a name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Named {
    Ready(Request),
    Cancel(String),
    Retry(String),
    /// A plan (or `plan/task`) by name, the limits to raise its budget to, what then.
    Budget(
        String,
        Option<crate::domain::Budget>,
        crate::engine::BudgetThen,
    ),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    Request(Named),
    Quit,
}

pub(crate) fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim().trim_start_matches(':');
    let (verb, rest) = line
        .split_once(char::is_whitespace)
        .map(|(v, r)| (v, r.trim()))
        .unwrap_or((line, ""));
    let Some(command) = find(verb) else {
        return Err(format!("no command {verb:?}; try {}", names()));
    };
    let need = |what: &str| {
        if rest.is_empty() {
            Err(format!("{verb} needs {what}"))
        } else {
            Ok(rest.to_string())
        }
    };
    let word = |what: &str| one_word(command, rest, what);
    let arg = |what: &str| one_argument(command, rest, what);
    let ready = |r: Request| Ok(Command::Request(Named::Ready(r)));
    match command.name {
        "submit" => ready(Request::Submit(PathBuf::from(arg("a plan file")?))),
        "prompt" => ready(Request::Prompt(need("a prompt")?)),
        "plan" => ready(Request::Plan(need("a goal")?)),
        "cancel" => Ok(Command::Request(Named::Cancel(arg("a task")?))),
        "retry" => Ok(Command::Request(Named::Retry(arg("a task")?))),
        "pause" => nothing_after(command, rest).and(ready(Request::Pause(true))),
        "resume" => nothing_after(command, rest).and(ready(Request::Pause(false))),
        "drain" => ready(Request::Drain(word("an agent")?, true)),
        "undrain" => ready(Request::Drain(word("an agent")?, false)),
        "approve" => approve(command, rest),
        "budget" => budget(rest),
        "quit" => nothing_after(command, rest).map(|()| Command::Quit),
        other => Err(format!("{other} is listed but not understood (a bug)")),
    }
}

/// A command that takes no argument refuses any: a paste after `:` (`q y c long task...`)
/// must not quit or pause.
fn nothing_after(command: &Spec, rest: &str) -> Result<(), String> {
    if rest.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} takes no arguments, not {}; nothing done",
        command.name,
        quoted_start(rest)
    ))
}

/// The one word a command takes (a task, an agent): names have no spaces, so more words
/// are a mistake (or a paste), refused.
fn one_word(command: &Spec, rest: &str, what: &str) -> Result<String, String> {
    match rest.split_whitespace().count() {
        0 => Err(format!("{} needs {what}", command.name)),
        1 => Ok(rest.to_string()),
        words => Err(format!(
            "{} takes one {}, not {words} words ({}); nothing done",
            command.name,
            command.args,
            quoted_start(rest)
        )),
    }
}

/// The one argument of `submit` (a plan file) or `cancel`/`retry` (a task, `plan/task`): one
/// word, or one with spaces in quotes (a path, a plan named with spaces).
fn one_argument(command: &Spec, rest: &str, what: &str) -> Result<String, String> {
    let quoted = ['"', '\'']
        .iter()
        .find_map(|q| rest.strip_prefix(*q)?.strip_suffix(*q))
        .filter(|inner| !inner.is_empty());
    match quoted {
        Some(inner) => Ok(inner.to_string()),
        None => one_word(command, rest, what).map_err(|e| match rest.is_empty() {
            true => e,
            false => format!("{e} (quote one with spaces)"),
        }),
    }
}

/// `approve REQUEST [once|always|reject]`.
fn approve(command: &Spec, rest: &str) -> Result<Command, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (id, decision) = match words.as_slice() {
        [] => return Err("approve needs a request id".to_string()),
        [id] => (id, None),
        [id, decision] => (id, Some(*decision)),
        _ => {
            return Err(format!(
                "approve takes {}, not {} words ({}); nothing done",
                command.args,
                words.len(),
                quoted_start(rest)
            ));
        }
    };
    let decision = match decision {
        None | Some("once") => Decision::Once,
        Some("always") => Decision::Always,
        Some("reject") => Decision::Reject,
        Some(other) => {
            return Err(format!("approve: {other:?} is not once, always or reject"));
        }
    };
    Ok(Command::Request(Named::Ready(Request::Approve(
        id.to_string(),
        decision,
        Approver::Palette,
    ))))
}

/// The start of what was typed, quoted, for an error (a paste may be pages long).
fn quoted_start(text: &str) -> String {
    const SHOWN: usize = 24;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}", format!("{}…", &text[..end])),
        None => format!("{text:?}"),
    }
}

/// `budget PLAN[/TASK] [TOKENS] [$COST] [cancel|hold]`: `500_000`, `$2.5`; each at most once.
fn budget(rest: &str) -> Result<Command, String> {
    use crate::engine::BudgetThen;
    let mut words = rest.split_whitespace();
    let target = words.next().ok_or("budget needs a plan (or plan/task)")?;
    let (mut tokens, mut cost, mut then) = (None, None, None);
    for word in words {
        match word {
            "cancel" => given_once(&mut then, BudgetThen::Cancel, word, "cancel or hold")?,
            "hold" => given_once(&mut then, BudgetThen::Hold, word, "cancel or hold")?,
            dollars if dollars.starts_with('$') => {
                let read = dollars[1..].parse::<f64>();
                let read =
                    read.map_err(|_| format!("budget: {dollars:?} is not a cost like $2.5"))?;
                given_once(&mut cost, read, word, "a $cost")?;
            }
            count => {
                let read = count.replace('_', "").parse::<u64>().map_err(|_| {
                    format!("budget: {count:?} is not a number of tokens, a $cost, cancel or hold")
                })?;
                given_once(&mut tokens, read, word, "a number of tokens")?;
            }
        }
    }
    let raise = match (tokens, cost) {
        (None, None) => None,
        (tokens, cost) => Some(crate::domain::Budget::new(tokens, cost)?),
    };
    Ok(Command::Request(Named::Budget(
        target.to_string(),
        raise,
        then.unwrap_or(BudgetThen::Continue),
    )))
}

/// Sets `slot` to `value`, refusing a second one (`budget P 100 200`: which?).
fn given_once<T>(slot: &mut Option<T>, value: T, word: &str, what: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!(
            "budget takes {what} once; {word:?} is another \
             (budget PLAN[/TASK] [TOKENS] [$COST] [cancel|hold])"
        ));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commands_parse_and_mistakes_say_what_is_missing() {
        assert_eq!(
            parse("submit plans/a.toml").unwrap(),
            Command::Request(Named::Ready(Request::Submit("plans/a.toml".into())))
        );
        assert_eq!(
            parse(":prompt fix the   tests").unwrap(),
            Command::Request(Named::Ready(Request::Prompt("fix the   tests".into())))
        );
        assert_eq!(
            parse("cancel demo/build").unwrap(),
            Command::Request(Named::Cancel("demo/build".into()))
        );
        assert_eq!(
            parse("resume").unwrap(),
            Command::Request(Named::Ready(Request::Pause(false)))
        );
        assert_eq!(
            parse("approve per_1 always").unwrap(),
            Command::Request(Named::Ready(Request::Approve(
                "per_1".into(),
                Decision::Always,
                Approver::Palette
            )))
        );
        assert_eq!(parse("q").unwrap(), Command::Quit);
        assert_eq!(parse("submit").unwrap_err(), "submit needs a plan file");
        assert!(
            parse("approve per_1 maybe")
                .unwrap_err()
                .contains("not once, always or reject")
        );
        assert!(
            parse("fly")
                .unwrap_err()
                .contains("no command \"fly\"; try submit, prompt")
        );
    }

    /// Commands check their words: none after `pause`, `resume` and `quit`; one task, agent or
    /// plan file; a request and a decision; each budget limit once. A quoted path may hold
    /// spaces.
    #[test]
    fn extra_words_are_refused_naming_the_command_and_what_it_takes() {
        for (line, said) in [
            (
                "q y c long task",
                "quit takes no arguments, not \"y c long task\"; nothing done",
            ),
            ("pause foo", "pause takes no arguments, not \"foo\""),
            ("retry a b", "retry takes one [PLAN/]TASK, not 2 words"),
            ("undrain x y", "undrain takes one AGENT, not 2 words"),
            (
                "s my plan.toml",
                "submit takes one PLAN.toml, not 2 words (\"my plan.toml\"); nothing done (quote one with spaces)",
            ),
            (
                "approve a once b",
                "approve takes REQUEST [once|always|reject], not 3 words",
            ),
            (
                "budget demo 100 200",
                "budget takes a number of tokens once; \"200\" is another",
            ),
            (
                "budget demo $1 $2",
                "budget takes a $cost once; \"$2\" is another",
            ),
            (
                "budget demo cancel hold",
                "budget takes cancel or hold once; \"hold\" is another",
            ),
        ] {
            let error = parse(line).unwrap_err();
            assert!(error.contains(said), "{line}: {error}");
        }
        let long = parse(&format!("q {}", "paste ".repeat(100))).unwrap_err();
        assert!(long.contains("\"paste paste paste paste …\""), "{long}");
        assert_eq!(
            parse("submit \"my plans/a.toml\"").unwrap(),
            Command::Request(Named::Ready(Request::Submit("my plans/a.toml".into())))
        );
        assert_eq!(parse(" :quit ").unwrap(), Command::Quit);
        // A plan named with spaces (one without worktrees may be): its task in quotes.
        assert_eq!(
            parse("cancel 'My Plan/build'").unwrap(),
            Command::Request(Named::Cancel("My Plan/build".into()))
        );
    }

    /// Every command the palette takes is in the one table (and so in the help, the `?` list,
    /// the error and completion): each name and short form parses, and the error names all.
    #[test]
    fn every_command_is_in_the_table_and_the_error_lists_each() {
        for command in COMMANDS {
            for verb in std::iter::once(&command.name).chain(command.aliases) {
                match parse(&format!("{verb} x")) {
                    Ok(_) => {}
                    Err(e) => assert!(!e.contains("no command") && !e.contains("bug"), "{e}"),
                }
            }
        }
        let error = parse("fly").unwrap_err();
        for name in ["plan", "resume", "undrain", "pause", "drain", "approve"] {
            assert!(error.contains(name), "{name} missing from: {error}");
        }
        assert_eq!(find("p").map(|c| c.name), Some("prompt"));
        assert_eq!(find("plan").map(|c| c.name), Some("plan"));
    }

    #[test]
    fn tab_completes_a_unique_prefix_and_lists_an_ambiguous_one() {
        assert_eq!(complete("su"), Completion::Line("submit ".into()));
        assert_eq!(complete("und"), Completion::Line("undrain ".into()));
        match complete("p") {
            Completion::Many(shared, found) => {
                assert_eq!(shared, "p");
                let names: Vec<&str> = found.iter().map(|c| c.name).collect();
                assert_eq!(names, ["prompt", "plan", "pause"]);
            }
            other => panic!("{other:?}"),
        }
        match complete("re") {
            Completion::Many(shared, found) => {
                assert_eq!(shared, "re");
                assert_eq!(found.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        match complete("pr") {
            Completion::Line(line) => assert_eq!(line, "prompt "),
            other => panic!("{other:?}"),
        }
        assert_eq!(complete("zz"), Completion::Nothing);
        assert_eq!(complete("submit plan.toml"), Completion::Nothing);
        assert!(
            matches!(complete(""), Completion::Many(s, all) if s.is_empty() && all.len() == COMMANDS.len())
        );
    }
}
