//! Permission requests from sessions: what the policy decides on its own, and what waits for
//! the operator. Every decision becomes a session transition (waiting-approval -> running)
//! whose cause names the request and who decided ([`Approver`], or the policy), so the control
//! log is the audit trail.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EngineError;
use super::question::QuestionItem;
use crate::config::Approval;

/// The permission of OpenCode's `question` tool: what a question's [`Ask`] asks.
pub const QUESTION: &str = "question";

/// A session asks to do something its agent's rules do not allow outright.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// The server's id of the request (`per_...`).
    pub id: String,
    /// What is asked: `bash`, `edit`, `external_directory`, ...
    pub permission: String,
    /// What it would touch (paths or command patterns); a question's headers.
    pub patterns: Vec<String>,
    /// A question's questions (its permission is `question`); empty for a permission request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<QuestionItem>,
}

impl Ask {
    /// A question from a session, as an ask in the operator's inbox.
    pub(crate) fn question(id: String, questions: Vec<QuestionItem>) -> Self {
        Self {
            id,
            permission: QUESTION.into(),
            patterns: questions.iter().map(|q| q.header.clone()).collect(),
            questions,
        }
    }

    /// Whether this is a question (answered with `ocio answer`), not a permission request.
    pub fn is_question(&self) -> bool {
        !self.questions.is_empty()
    }

    /// The request's short form, which `:approve` and `ocio approve` take as well as the whole
    /// id: its last 8 characters.
    pub(crate) fn short(&self) -> &str {
        short_id(&self.id)
    }
}

/// The last 8 characters of a request id (all of a shorter one).
pub fn short_id(id: &str) -> &str {
    let start = id
        .char_indices()
        .rev()
        .nth(crate::domain::id::SHORT_LEN - 1)
        .map_or(0, |(i, _)| i);
    &id[start..]
}

/// The fewest characters of a request id that name it (besides the whole id).
pub const LEAST_PART: usize = 4;

/// Whether `wanted` names request `id`: the whole id, or in any case at least
/// [`LEAST_PART`] characters from its end, or from the start of its short form (the last 8
/// characters the room and `ocio status` show). Never from the start of the id: OpenCode's
/// ids begin with their kind and the time (`per_211b6…`), so such a part copied for one
/// request would name the next one made about then, once the first was answered.
pub(crate) fn names(id: &str, wanted: &str) -> bool {
    if id == wanted {
        return true;
    }
    if wanted.chars().count() < LEAST_PART {
        return false;
    }
    let (id, wanted) = (id.to_lowercase(), wanted.to_lowercase());
    id.ends_with(&wanted) || short_id(&id).starts_with(&wanted)
}

/// The one of `ids` that `wanted` names (see [`names`]; the whole id wins over parts of
/// others); none or several is an error saying which forms name one, or listing them.
pub(crate) fn named<'a>(
    ids: impl IntoIterator<Item = &'a String>,
    wanted: &str,
) -> Result<&'a str, EngineError> {
    let mut found: Vec<&str> = ids
        .into_iter()
        .map(String::as_str)
        .filter(|id| names(id, wanted))
        .collect();
    found.sort_unstable();
    if let Some(whole) = found.iter().find(|id| **id == wanted) {
        return Ok(whole);
    }
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(EngineError::UnknownApproval(wanted.to_string())),
        many => Err(EngineError::AmbiguousApproval {
            wanted: wanted.to_string(),
            candidates: many.iter().map(|id| id.to_string()).collect(),
        }),
    }
}

/// Who answered a request the policy left to the operator (the policy's own answers say
/// "by policy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approver {
    /// A key in the control room: the approvals pane or the session's detail view.
    Key,
    /// `:approve` in the control room.
    Palette,
    /// `ocio approve` or `ocio answer`.
    Cli,
    /// A control-socket client that does not say who it is.
    #[default]
    Client,
}

impl Approver {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Key => "the operator (key)",
            Self::Palette => "the operator (:approve)",
            Self::Cli => "the operator (ocio approve)",
            Self::Client => "a control client (socket)",
        }
    }
}

/// The answer to an [`Ask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Allow this once.
    Once,
    /// Allow this and the same again in this session.
    Always,
    Reject,
}

/// A decision as the run passes it to the server: a rejection with `feedback` tells the agent
/// why and lets it go on (OpenCode ends the turn at a bare rejection, for the operator to say
/// what to do instead; nobody would when the policy rejects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub feedback: Option<String>,
}

impl From<Decision> for Verdict {
    fn from(decision: Decision) -> Self {
        Self {
            decision,
            feedback: None,
        }
    }
}

impl Decision {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Once => "approved once",
            Self::Always => "approved always",
            Self::Reject => "rejected",
        }
    }
}

/// What the policy does with requests inside and outside the session's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// Everything the request touches is inside the session's directory. `None`: ask.
    pub inside: Option<Decision>,
    /// It reaches outside (or asks for `external_directory`). `None`: ask.
    pub outside: Option<Decision>,
}

impl Default for ApprovalPolicy {
    /// Inside the session's own directory yes, anything outside no.
    fn default() -> Self {
        Self {
            inside: Some(Decision::Once),
            outside: Some(Decision::Reject),
        }
    }
}

impl ApprovalPolicy {
    /// The policy `[engine] approve_inside` / `approve_outside` set.
    pub(crate) fn from_config(engine: &crate::config::EngineConfig) -> Self {
        let decision = |a: Approval| match a {
            Approval::Once => Some(Decision::Once),
            Approval::Always => Some(Decision::Always),
            Approval::Reject => Some(Decision::Reject),
            Approval::Ask => None,
        };
        Self {
            inside: decision(engine.approve_inside),
            outside: decision(engine.approve_outside),
        }
    }

    /// The policy's decision for `ask` by a session working in `directory`, with the reason;
    /// `None` when the operator decides.
    pub(crate) fn decide(&self, ask: &Ask, directory: &Path) -> Option<(Decision, &'static str)> {
        if reaches_outside(ask, directory) {
            self.outside.map(|d| (d, "outside the session's directory"))
        } else {
            self.inside.map(|d| (d, "inside the session's directory"))
        }
    }
}

fn reaches_outside(ask: &Ask, directory: &Path) -> bool {
    if ask.permission == "external_directory" {
        return true;
    }
    let dir = directory.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    ask.patterns.iter().any(|p| {
        let looks_like_path = p.starts_with('/') || p.starts_with("~") || p.contains("..");
        looks_like_path && !(p == dir || p.starts_with(&format!("{dir}/")) && !p.contains(".."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(permission: &str, patterns: &[&str]) -> Ask {
        Ask {
            id: "per_1".into(),
            permission: permission.into(),
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            questions: Vec::new(),
        }
    }

    #[test]
    fn inside_yes_outside_no_by_default() {
        let policy = ApprovalPolicy::default();
        let dir = Path::new("/work/repo");
        assert_eq!(
            policy
                .decide(&ask("edit", &["/work/repo/src/a.rs"]), dir)
                .map(|d| d.0),
            Some(Decision::Once)
        );
        assert_eq!(
            policy
                .decide(&ask("bash", &["cargo test"]), dir)
                .map(|d| d.0),
            Some(Decision::Once)
        );
        assert_eq!(
            policy
                .decide(&ask("external_directory", &["/srv/*"]), dir)
                .map(|d| d.0),
            Some(Decision::Reject)
        );
        assert_eq!(
            policy
                .decide(&ask("edit", &["/work/repository/x"]), dir)
                .map(|d| d.0),
            Some(Decision::Reject)
        );
        assert_eq!(
            policy
                .decide(&ask("edit", &["/work/repo/../etc/passwd"]), dir)
                .map(|d| d.0),
            Some(Decision::Reject)
        );
    }

    #[test]
    fn a_request_is_named_by_its_id_or_its_last_8_characters() {
        let ask = Ask {
            id: "per_01ABCdef2345XYZ".into(),
            ..ask("bash", &[])
        };
        assert_eq!(ask.short(), "f2345XYZ");
        assert!(names(&ask.id, "per_01ABCdef2345XYZ"));
        assert!(names(&ask.id, "f2345xyz"));
        assert_eq!(short_id("per_1"), "per_1");
        assert!(names("per_1", "per_1"));
    }

    /// `ocio answer 3gRj` (the start of the short form shown) or `3gRjPQA` found nothing:
    /// only the whole id or its exact last 8 characters did, and the error did not say so. The
    /// start of an id names nothing: it is the kind and the time, shared by requests made
    /// about then (a part copied for an answered request named the next one).
    #[test]
    fn a_request_is_named_by_four_or_more_characters_of_its_end_or_its_short_form() {
        let ids: Vec<String> = ["que_9c1f3aA01x3gRjPQAb", "que_9c1f3aB02y3gRjZ7mm"]
            .map(String::from)
            .into();
        let one = |wanted: &str| named(&ids, wanted).map_err(|e| e.to_string());
        for wanted in ["3gRjP", "3grjpqa", "jPQAb", "que_9c1f3aA01x3gRjPQAb"] {
            assert_eq!(one(wanted), Ok("que_9c1f3aA01x3gRjPQAb"), "{wanted}");
        }
        assert_eq!(one("Z7mm"), Ok("que_9c1f3aB02y3gRjZ7mm"));
        // Fewer than 4 characters, a part from the middle or from the start names none,
        // saying what does.
        for wanted in ["3gR", "Ab", "f3aA01", "que_9c1f3aA", "que_"] {
            let error = one(wanted).unwrap_err();
            assert!(
                error.contains(&format!(
                    "no pending permission request or question {wanted}"
                )) && error.contains("whole id, or by 4 or more characters from its end"),
                "{error}"
            );
        }
        // Both short forms start so: an error listing them.
        assert_eq!(
            one("3gRj").unwrap_err(),
            "3gRj names 2 pending requests: que_9c1f3aA01x3gRjPQAb, \
             que_9c1f3aB02y3gRjZ7mm; give more of the id"
        );
    }

    #[test]
    fn undecided_sides_go_to_the_operator() {
        let policy = ApprovalPolicy {
            inside: Some(Decision::Once),
            outside: None,
        };
        assert_eq!(
            policy.decide(&ask("external_directory", &["/srv/*"]), Path::new("/r")),
            None
        );
    }
}
