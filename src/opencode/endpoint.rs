//! From an `[[agents]]` entry to a working client: the configured URL with the password from
//! `password_env`, or a managed local server started for it. The engine and `ocio check` both
//! reach servers this way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{Client, ClientError, ClientOptions};
use super::managed::{Leftover, ManagedError, ManagedServer, ServerCommand, locate_opencode};
use super::secret::{Password, PasswordError};
use crate::config::{AgentConfig, AgentKind};

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// `who`: `agent <name>`, or `fleet <name>` (whose members all take it).
    #[error("{who}: {source}")]
    Password { who: String, source: PasswordError },
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
    #[error(
        "{who}: cannot use ca_cert {}: {reason}\nhint: point ca_cert at a PEM file holding the certificate of the CA that signed the server's (or the server's own, if self-signed)", .path.display()
    )]
    CaCert {
        /// `agent <name>`, or `fleet <name>`.
        who: String,
        path: PathBuf,
        reason: String,
    },
    #[error("agent {agent}: {source}")]
    Client { agent: String, source: ClientError },
}

impl EndpointError {
    /// A problem with the configuration or the machine's setup (no `opencode` to start, an
    /// unset password variable, a bad `ca_cert`...), found before any server was reached or
    /// any work done: the operator fixes the config or installs something, and starts again.
    pub fn is_config(&self) -> bool {
        match self {
            Self::Password { source, .. } => !matches!(source, PasswordError::Random(_)),
            Self::Managed { source, .. } => {
                matches!(source, ManagedError::NotOnPath | ManagedError::BadPath(_))
            }
            Self::Simulated { .. } | Self::NoServer { .. } | Self::CaCert { .. } => true,
            Self::NotReady { .. } | Self::Client { .. } => false,
        }
    }
}

/// A reachable server for one agent; owns the managed server, if any.
#[derive(Debug)]
pub struct Endpoint {
    pub client: Client,
    managed: Option<ManagedServer>,
}

impl Endpoint {
    /// Build the client, starting the managed server first when the agent has one, without
    /// the `withheld` variables (other servers' passwords) in its environment. With `records`
    /// (the engine's, beside its database) a managed server may outlive this ocio, recorded
    /// there, and one an earlier ocio left running is adopted instead of starting another.
    pub async fn connect(
        agent: &AgentConfig,
        options: ClientOptions,
        ready_timeout: Duration,
        withheld: &[String],
        records: Option<&Path>,
    ) -> Result<Self, EndpointError> {
        let name = agent.name.to_string();
        if agent.kind == AgentKind::Simulated {
            return Err(EndpointError::Simulated { agent: name });
        }
        if agent.managed == Some(true) {
            return Self::managed(agent, options, ready_timeout, withheld, records).await;
        }
        let Some(url) = &agent.url else {
            return Err(EndpointError::NoServer { agent: name });
        };
        let (password, roots) = credentials(
            &format!("agent {name}"),
            agent.password_env.as_deref(),
            agent.ca_cert.as_deref(),
        )?;
        let client = Client::with_roots(url, password, options, roots).map_err(|source| {
            EndpointError::Client {
                agent: name,
                source,
            }
        })?;
        Ok(Self {
            client,
            managed: None,
        })
    }

    /// Start the agent's managed server, or adopt the one an earlier ocio left in `records`.
    async fn managed(
        agent: &AgentConfig,
        options: ClientOptions,
        ready_timeout: Duration,
        withheld: &[String],
        records: Option<&Path>,
    ) -> Result<Self, EndpointError> {
        let name = agent.name.to_string();
        let managed_err = |source| EndpointError::Managed {
            agent: name.clone(),
            source,
        };
        let program = locate_opencode(agent.opencode_path.as_deref()).map_err(managed_err)?;
        let mut command = ServerCommand::new(program);
        command.withheld = withheld.iter().map(Into::into).collect();
        if let Some(records) = records {
            command = command.outliving(records.join(format!("{name}.json")), agent.linger());
        }
        let managed = match adoptable(&command, &options).await {
            Some(left) => ManagedServer::adopt(command, left)
                .await
                .map_err(managed_err)?,
            None => {
                let password = Password::generate().map_err(|source| EndpointError::Password {
                    who: format!("agent {name}"),
                    source,
                })?;
                ManagedServer::spawn(command, password)
            }
        };
        let url = managed
            .ready(ready_timeout)
            .await
            .map_err(|reason| EndpointError::NotReady {
                agent: name.clone(),
                reason,
            })?;
        let client =
            Client::new(&url, Some(managed.password().clone()), options).map_err(|source| {
                EndpointError::Client {
                    agent: name.clone(),
                    source,
                }
            })?;
        Ok(Self {
            client,
            managed: Some(managed),
        })
    }

    /// A client of the managed server the engine on these `records` runs (or left running for
    /// its sessions), and its pid: checked as it is, where starting another would check
    /// another. `None` when there is none.
    pub fn in_use(
        agent: &AgentConfig,
        options: ClientOptions,
        records: &Path,
    ) -> Option<(Self, u32)> {
        if agent.managed != Some(true) {
            return None;
        }
        let left = Leftover::peek(&records.join(format!("{}.json", agent.name)))?;
        let client = Client::new(left.url(), Some(left.password()), options).ok()?;
        let endpoint = Self {
            client,
            managed: None,
        };
        Some((endpoint, left.server_pid()))
    }

    /// Stop the managed server (if any) and wait until it is gone.
    pub(crate) async fn shutdown(self) {
        if let Some(managed) = self.managed {
            managed.shutdown().await;
        }
    }

    /// Let ocio go while the agent's sessions work: a managed server is left running for its
    /// linger time, for the next ocio to adopt (a server of the user's own runs on anyway).
    /// The managed server left running, if any.
    pub(crate) async fn leave(self) -> Option<super::managed::LeftRunning> {
        self.managed?.leave().await
    }
}

/// How long a server left by an earlier ocio may take to answer a health check, and how many it
/// gets, before it counts as wedged (a busy server may be slow to answer one).
const ADOPT_HEALTH: Duration = Duration::from_secs(10);
const ADOPT_TRIES: usize = 3;

/// The server an earlier ocio left running for this agent (see `records` in
/// [`Endpoint::connect`]), if it is there and answers; one that does not is stopped.
async fn adoptable(command: &ServerCommand, options: &ClientOptions) -> Option<Leftover> {
    let record = command.record.as_deref()?;
    let left = Leftover::find(record, &command.program, command.stop_grace).await?;
    let mut answers = false;
    if let Ok(client) = Client::new(left.url(), Some(left.password()), options.clone()) {
        for _ in 0..ADOPT_TRIES {
            let health = tokio::time::timeout(ADOPT_HEALTH, client.health()).await;
            if matches!(health, Ok(Ok(health)) if health.healthy) {
                answers = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    if answers {
        tracing::info!(
            url = left.url(),
            "adopting the managed server an earlier ocio left running"
        );
        Some(left)
    } else {
        tracing::warn!(
            url = left.url(),
            "the managed server an earlier ocio left does not answer; starting another"
        );
        left.discard(command.stop_grace).await;
        None
    }
}

/// What a client of a server at a configured URL takes besides the URL: the password in the
/// variable `password_env` names, the certificates in `ca_cert`. Read before any server is
/// asked, so an unset variable or an unreadable certificate is told at once; `who` names the
/// entry in the error (`agent <name>`, `fleet <name>`).
pub(crate) fn credentials(
    who: &str,
    password_env: Option<&str>,
    ca_cert: Option<&Path>,
) -> Result<(Option<Password>, Vec<reqwest::Certificate>), EndpointError> {
    let password = password_env
        .map(Password::from_env)
        .transpose()
        .map_err(|source| EndpointError::Password {
            who: who.to_string(),
            source,
        })?;
    let roots = match ca_cert {
        Some(path) => read_roots(who, path)?,
        None => Vec::new(),
    };
    Ok((password, roots))
}

/// The certificates in the PEM file `path`: at least one, or an error saying what is wrong.
fn read_roots(who: &str, path: &Path) -> Result<Vec<reqwest::Certificate>, EndpointError> {
    let error = |reason: String| EndpointError::CaCert {
        who: who.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| error(e.to_string()))?;
    if roots.is_empty() {
        return Err(error(
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(roots)
}
