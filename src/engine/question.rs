//! Questions from sessions: an agent that needs a decision asks (OpenCode's `question` tool),
//! the session waits, and the operator answers (an option or a typed answer) or rejects it, or
//! the policy rejects it when nobody is there to answer. Questions share the operator's inbox
//! with permission requests: a question is an [`Ask`](super::approval::Ask) whose permission
//! is `question` (OpenCode's own name for the tool's permission) and which carries its
//! [`QuestionItem`]s.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One question of a request (a request may ask several at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionItem {
    /// A very short label (OpenCode asks the model for at most 30 characters).
    pub header: String,
    /// The whole question.
    pub question: String,
    pub options: Vec<Choice>,
    /// Several options may be picked.
    #[serde(default)]
    pub multiple: bool,
    /// A typed answer is welcome besides the options (OpenCode's default).
    #[serde(default = "yes")]
    pub custom: bool,
}

fn yes() -> bool {
    true
}

/// One option a question offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub label: String,
    #[serde(default)]
    pub description: String,
}

/// The operator's answer to one question: options by number (from 1, as shown), or a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Pick(Vec<usize>),
    Text(String),
}

/// What a session is told: an answer per question (the labels picked, or the typed text), or
/// that the question was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionReply {
    Answers(Vec<Vec<String>>),
    Reject,
}

/// Why an answer does not fit its question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadAnswer(pub String);

/// The labels (or text) each answer stands for, checked against the questions: one answer per
/// question, options that exist, one pick unless several are allowed, a non-empty text.
pub(crate) fn resolve(
    questions: &[QuestionItem],
    answers: &[Answer],
) -> Result<Vec<Vec<String>>, BadAnswer> {
    if answers.len() != questions.len() {
        return Err(BadAnswer(format!(
            "the request asks {} question(s) and {} answer(s) were given: answer each, in order",
            questions.len(),
            answers.len()
        )));
    }
    questions
        .iter()
        .zip(answers)
        .enumerate()
        .map(|(i, (question, answer))| resolve_one(i + 1, question, answer))
        .collect()
}

fn resolve_one(
    number: usize,
    question: &QuestionItem,
    answer: &Answer,
) -> Result<Vec<String>, BadAnswer> {
    match answer {
        Answer::Text(text) if text.trim().is_empty() => Err(BadAnswer(format!(
            "the answer to question {number} is empty: pick an option or type an answer"
        ))),
        Answer::Text(_) if !question.custom => Err(BadAnswer(format!(
            "question {number} ({}) takes one of its options, not a text: {}",
            question.header,
            numbered(&question.options)
        ))),
        Answer::Text(text) => Ok(vec![text.trim().to_string()]),
        Answer::Pick(picks) if picks.is_empty() => {
            Err(BadAnswer(format!("no option picked for question {number}")))
        }
        Answer::Pick(picks) if picks.len() > 1 && !question.multiple => Err(BadAnswer(format!(
            "question {number} ({}) takes one option, {} were picked",
            question.header,
            picks.len()
        ))),
        Answer::Pick(picks) => picks
            .iter()
            .map(|&n| {
                n.checked_sub(1)
                    .and_then(|i| question.options.get(i))
                    .map(|choice| choice.label.clone())
                    .ok_or_else(|| {
                        BadAnswer(format!(
                            "question {number} ({}) has no option {n}: its options are {}",
                            question.header,
                            numbered(&question.options)
                        ))
                    })
            })
            .collect(),
    }
}

/// `1 red, 2 blue`.
pub(crate) fn numbered(options: &[Choice]) -> String {
    if options.is_empty() {
        return "none (type an answer)".into();
    }
    options
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} {}", i + 1, c.label))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the engine does with questions (`[engine] questions`, `question_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionPolicy {
    pub mode: QuestionMode,
    /// How long a question may wait for an answer before it is rejected (in `auto`, counted
    /// while no control room is attached).
    pub timeout: Duration,
}

impl Default for QuestionPolicy {
    fn default() -> Self {
        Self {
            mode: QuestionMode::Auto,
            timeout: Duration::from_secs(10 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionMode {
    /// Wait for the operator while a control room is attached; with none attached, reject
    /// after the timeout.
    Auto,
    /// Wait for the operator, up to the timeout.
    Ask,
    /// Sessions are not offered the question tool: the model decides by itself.
    Deny,
}

impl QuestionPolicy {
    /// Whether sessions are offered the question tool at all.
    pub(crate) fn offers_questions(&self) -> bool {
        self.mode != QuestionMode::Deny
    }

    /// Why a question that has waited `waited` (counted as the mode counts it) is rejected
    /// now; `None` to keep waiting.
    pub(crate) fn expired(&self, waited: Duration, rooms: usize) -> Option<String> {
        let counting = match self.mode {
            QuestionMode::Auto => rooms == 0,
            QuestionMode::Ask => true,
            QuestionMode::Deny => return Some("questions are denied ([engine] questions)".into()),
        };
        (counting && waited >= self.timeout).then(|| {
            let limit = jiff::SignedDuration::try_from(self.timeout)
                .map(|d| format!("{d:#}"))
                .unwrap_or_else(|_| format!("{:?}", self.timeout));
            match self.mode {
                QuestionMode::Auto => {
                    format!("no control room attached and no answer within {limit}")
                }
                _ => format!("no answer within {limit} ([engine] question_timeout)"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour() -> QuestionItem {
        QuestionItem {
            header: "Colour".into(),
            question: "Which colour?".into(),
            options: vec![
                Choice {
                    label: "red".into(),
                    description: "warm".into(),
                },
                Choice {
                    label: "blue".into(),
                    description: "cool".into(),
                },
            ],
            multiple: false,
            custom: true,
        }
    }

    #[test]
    fn answers_become_the_labels_or_text_the_session_is_told() {
        let q = [colour()];
        assert_eq!(
            resolve(&q, &[Answer::Pick(vec![2])]),
            Ok(vec![vec!["blue".to_string()]])
        );
        assert_eq!(
            resolve(&q, &[Answer::Text(" green ".into())]),
            Ok(vec![vec!["green".to_string()]])
        );
    }

    #[test]
    fn answers_that_do_not_fit_say_what_would() {
        let q = [colour()];
        let err = resolve(&q, &[Answer::Pick(vec![3])]).unwrap_err().0;
        assert!(
            err.contains("no option 3") && err.contains("1 red, 2 blue"),
            "{err}"
        );
        let err = resolve(&q, &[Answer::Pick(vec![1, 2])]).unwrap_err().0;
        assert!(err.contains("takes one option"), "{err}");
        let err = resolve(&q, &[Answer::Pick(vec![0])]).unwrap_err().0;
        assert!(err.contains("no option 0"), "{err}");
        let err = resolve(&q, &[]).unwrap_err().0;
        assert!(err.contains("1 question(s) and 0 answer(s)"), "{err}");
        let err = resolve(&q, &[Answer::Text("  ".into())]).unwrap_err().0;
        assert!(err.contains("empty"), "{err}");
        let options_only = QuestionItem {
            custom: false,
            ..colour()
        };
        let err = resolve(&[options_only], &[Answer::Text("green".into())])
            .unwrap_err()
            .0;
        assert!(
            err.contains("takes one of its options") && err.contains("1 red"),
            "{err}"
        );
        let several = QuestionItem {
            multiple: true,
            ..colour()
        };
        assert_eq!(
            resolve(&[several], &[Answer::Pick(vec![2, 1])]),
            Ok(vec![vec!["blue".to_string(), "red".to_string()]])
        );
    }

    #[test]
    fn the_timeout_counts_as_the_mode_says() {
        let minute = Duration::from_secs(60);
        let auto = QuestionPolicy {
            mode: QuestionMode::Auto,
            timeout: minute,
        };
        assert_eq!(auto.expired(minute, 1), None, "a room is attached: wait");
        assert_eq!(auto.expired(minute / 2, 0), None);
        let why = auto.expired(minute, 0).unwrap();
        assert!(
            why.contains("no control room") && why.contains("1m"),
            "{why}"
        );
        let ask = QuestionPolicy {
            mode: QuestionMode::Ask,
            ..auto
        };
        assert!(
            ask.expired(minute, 3).is_some(),
            "ask: the timeout always counts"
        );
        assert!(
            !QuestionPolicy {
                mode: QuestionMode::Deny,
                ..auto
            }
            .offers_questions()
        );
    }
}
