//! The `:` command line: submit a plan or a prompt, cancel, retry, pause/resume, drain, approve,
//! quit. Parsing only; the app turns task names into ids.

use std::path::PathBuf;

use super::app::Request;
use crate::engine::approval::{Approver, Decision};

/// The commands, for the error that lists them and for the help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("submit PLAN.toml", "run a plan file"),
    (
        "prompt [TEXT]",
        "run a one-task plan here (alone: a multi-line prompt)",
    ),
    ("cancel [PLAN/]TASK", "cancel a task"),
    ("retry [PLAN/]TASK", "retry a failed or cancelled task"),
    ("pause | resume", "stop / start dispatching new sessions"),
    (
        "drain AGENT | undrain AGENT",
        "stop / resume giving an agent work",
    ),
    (
        "approve REQUEST [once|always|reject]",
        "answer a permission request",
    ),
    ("quit", "leave the control room"),
];

/// A request whose task is still a name.
#[derive(Debug, Clone, PartialEq)]
pub enum Named {
    Ready(Request),
    Cancel(String),
    Retry(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Request(Named),
    Quit,
}

pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim().trim_start_matches(':');
    let (verb, rest) = line
        .split_once(char::is_whitespace)
        .map(|(v, r)| (v, r.trim()))
        .unwrap_or((line, ""));
    let need = |what: &str| {
        if rest.is_empty() {
            Err(format!("{verb} needs {what}"))
        } else {
            Ok(rest.to_string())
        }
    };
    let ready = |r: Request| Ok(Command::Request(Named::Ready(r)));
    match verb {
        "submit" | "s" => ready(Request::Submit(PathBuf::from(need("a plan file")?))),
        "prompt" | "p" => ready(Request::Prompt(need("a prompt")?)),
        "plan" => ready(Request::Plan(need("a goal")?)),
        "cancel" => Ok(Command::Request(Named::Cancel(need("a task")?))),
        "retry" => Ok(Command::Request(Named::Retry(need("a task")?))),
        "pause" => ready(Request::Pause(true)),
        "resume" => ready(Request::Pause(false)),
        "drain" => ready(Request::Drain(need("an agent")?, true)),
        "undrain" => ready(Request::Drain(need("an agent")?, false)),
        "approve" => {
            let mut words = rest.split_whitespace();
            let id = words.next().ok_or("approve needs a request id")?;
            let decision = match words.next() {
                None | Some("once") => Decision::Once,
                Some("always") => Decision::Always,
                Some("reject") => Decision::Reject,
                Some(other) => {
                    return Err(format!("approve: {other:?} is not once, always or reject"));
                }
            };
            ready(Request::Approve(
                id.to_string(),
                decision,
                Approver::Palette,
            ))
        }
        "quit" | "q" => Ok(Command::Quit),
        other => Err(format!(
            "no command {other:?}; try {}",
            COMMANDS
                .iter()
                .map(|(c, _)| c.split_whitespace().next().unwrap_or(c))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
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
}
