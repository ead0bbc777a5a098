//! A planning session on an OpenCode server: a session titled `plan: <goal>` in the repository,
//! asked once through OpenCode's structured output (`format: json_schema`, answered by the
//! model with a `StructuredOutput` tool call); the answer is made a plan by
//! [`crate::plan::planner`].

use super::client::{Client, ClientError};
use super::wire::{
    CreateSession, MessageInfo, ModelSelector, OutputFormat, PermissionRule, PromptPart,
    PromptRequest,
};
use crate::plan::PlanFile;
use crate::plan::planner::{AnswerError, PlannerRequest, plan_from_answer, planner_prompt, schema};

/// How often OpenCode asks the model again when its structured answer does not fit the schema.
const RETRIES: u32 = 2;

/// A plan the planner made.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: PlanFile,
    /// The plan as plan-file text, to show or save.
    pub toml: String,
    /// The planning session on the server.
    pub session: String,
}

/// Why no plan came out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlannerError {
    #[error("the goal is empty\nhint: say what the plan must achieve")]
    EmptyGoal,
    #[error("could not start the planning session: {0}")]
    Session(#[source] ClientError),
    #[error("the planning session {session} failed: {source}")]
    Prompt {
        session: String,
        #[source]
        source: ClientError,
    },
    #[error(
        "the planner's model failed in session {session}: {name}: {message}\nhint: the planner's model must support tool calls (structured output is a tool call)"
    )]
    Model {
        session: String,
        name: String,
        message: String,
    },
    #[error(
        "the planner answered without a structured plan (session {session})\nhint: the planner's model must support tool calls (structured output is a tool call)"
    )]
    NoAnswer { session: String },
    /// The answer is not a valid plan.
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// The prompt request of the planning session.
pub(crate) fn prompt_request(request: &PlannerRequest<'_>) -> PromptRequest {
    PromptRequest {
        model: request.model.map(|model| ModelSelector {
            provider_id: model.provider.clone(),
            model_id: model.model.clone(),
        }),
        agent: request.opencode_agent.map(str::to_string),
        format: Some(OutputFormat::JsonSchema {
            schema: schema(request.capabilities),
            retry_count: Some(RETRIES),
        }),
        parts: vec![PromptPart::Text {
            text: planner_prompt(request.goal, request.capabilities),
        }],
        ..PromptRequest::default()
    }
}

/// Runs a planning session on `client`'s server: a session titled `plan: <goal>` in the
/// repository, one prompt with the schema, and the answer checked into a plan. Blocks until the
/// model has answered (the client's prompt timeout applies).
pub async fn plan_with(
    client: &Client,
    request: &PlannerRequest<'_>,
) -> Result<Planned, PlannerError> {
    let goal = request.goal.trim();
    if goal.is_empty() {
        return Err(PlannerError::EmptyGoal);
    }
    let directory = request.repo.to_string_lossy();
    let title = format!("plan: {}", crate::text::clip(goal, 80));
    let session = client
        .create_session(
            &directory,
            &CreateSession {
                title: Some(title),
                permission: Some(PermissionRule::unattended()),
                ..CreateSession::default()
            },
        )
        .await
        .map_err(PlannerError::Session)?;
    tracing::info!(session = %session.id, server = client.base_url(), "planning session created");
    let reply = client
        .prompt(&directory, &session.id, &prompt_request(request))
        .await
        .map_err(|source| PlannerError::Prompt {
            session: session.id.clone(),
            source,
        })?;
    let MessageInfo::Assistant(answer) = reply.info else {
        return Err(PlannerError::NoAnswer {
            session: session.id,
        });
    };
    if let Some(error) = answer.error {
        return Err(PlannerError::Model {
            session: session.id,
            name: error.name,
            message: error.message.unwrap_or_else(|| "no details".into()),
        });
    }
    let Some(structured) = answer.structured else {
        return Err(PlannerError::NoAnswer {
            session: session.id,
        });
    };
    let (plan, toml) = plan_from_answer(&structured, request)?;
    Ok(Planned {
        plan,
        toml,
        session: session.id,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::domain::ModelRef;

    #[test]
    fn the_request_carries_the_goal_the_schema_and_the_agent() {
        let capabilities: BTreeSet<String> = ["code", "plan", "review"].map(String::from).into();
        let model = ModelRef {
            provider: "scripted".into(),
            model: "scripted-coder".into(),
        };
        let request = PlannerRequest {
            goal: "Add pagination to /users",
            repo: Path::new("/src/app"),
            name: None,
            capabilities: &capabilities,
            model: Some(&model),
            opencode_agent: Some("plan"),
        };
        let prompt = prompt_request(&request);
        assert_eq!(prompt.agent.as_deref(), Some("plan"));
        assert_eq!(
            prompt.model.as_ref().map(|m| m.model_id.as_str()),
            Some("scripted-coder")
        );
        let Some(OutputFormat::JsonSchema {
            schema,
            retry_count,
        }) = &prompt.format
        else {
            panic!("{:?}", prompt.format)
        };
        assert_eq!(*schema, crate::plan::planner::schema(&capabilities));
        assert_eq!(*retry_count, Some(RETRIES));
        let [PromptPart::Text { text }] = prompt.parts.as_slice() else {
            panic!("{:?}", prompt.parts)
        };
        assert!(text.contains("Goal: Add pagination to /users"));
        assert!(text.contains("`code`, `plan`, `review`"));
        assert!(text.contains("{{tasks.<id>.summary}}"));
        let body = serde_json::to_value(&prompt).unwrap();
        assert_eq!(body["format"]["type"], json!("json_schema"));
    }
}
