//! From an `[[agents]]` entry to a working client: the configured URL with the password from
//! `password_env`, or a managed local server started for it. The engine and `ocio check` both
//! reach servers this way.

use std::time::Duration;

use super::client::{Client, ClientOptions};
use super::managed::{ManagedError, ManagedServer, ServerCommand, locate_opencode};
use super::secret::{Password, PasswordError};
use crate::config::{AgentConfig, AgentKind};

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("agent {agent}: {source}")]
    Password {
        agent: String,
        source: PasswordError,
    },
    #[error("agent {agent}: {source}")]
    Managed { agent: String, source: ManagedError },
    #[error("agent {agent}: the managed opencode server did not start: {reason}")]
    NotReady { agent: String, reason: String },
    #[error("agent {agent} is simulated: it has no OpenCode server")]
    Simulated { agent: String },
    #[error(
        "agent {agent} has neither url nor managed = true\nhint: set one of them in its [[agents]] entry"
    )]
    NoServer { agent: String },
}

/// A reachable server for one agent; owns the managed server, if any.
#[derive(Debug)]
pub struct Endpoint {
    pub client: Client,
    managed: Option<ManagedServer>,
}

impl Endpoint {
    /// Build the client, starting the managed server first when the agent has one.
    pub async fn connect(
        agent: &AgentConfig,
        options: ClientOptions,
        ready_timeout: Duration,
    ) -> Result<Self, EndpointError> {
        let name = agent.name.to_string();
        if agent.kind == AgentKind::Simulated {
            return Err(EndpointError::Simulated { agent: name });
        }
        if agent.managed == Some(true) {
            let program = locate_opencode(agent.opencode_path.as_deref()).map_err(|source| {
                EndpointError::Managed {
                    agent: name.clone(),
                    source,
                }
            })?;
            let password = Password::generate().map_err(|source| EndpointError::Password {
                agent: name.clone(),
                source,
            })?;
            let managed = ManagedServer::spawn(ServerCommand::new(program), password.clone());
            let url =
                managed
                    .ready(ready_timeout)
                    .await
                    .map_err(|reason| EndpointError::NotReady {
                        agent: name,
                        reason,
                    })?;
            let client = Client::new(&url, Some(password), options);
            return Ok(Self {
                client,
                managed: Some(managed),
            });
        }
        let Some(url) = &agent.url else {
            return Err(EndpointError::NoServer { agent: name });
        };
        let password = agent
            .password_env
            .as_deref()
            .map(Password::from_env)
            .transpose()
            .map_err(|source| EndpointError::Password {
                agent: name,
                source,
            })?;
        Ok(Self {
            client: Client::new(url, password, options),
            managed: None,
        })
    }

    pub fn is_managed(&self) -> bool {
        self.managed.is_some()
    }

    /// Stop the managed server (if any) and wait until it is gone.
    pub async fn shutdown(self) {
        if let Some(managed) = self.managed {
            managed.shutdown().await;
        }
    }
}
