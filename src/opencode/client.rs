//! The REST client for one OpenCode server: typed calls, basic auth, a timeout on every call,
//! retries with backoff for idempotent calls only, and the server's circuit breaker.
//!
//! Errors say what failed and, where the operator can fix it, how (`hint:`). The password is only
//! ever handed to reqwest's basic-auth header: it is not in `Debug`, errors or logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::breaker::{Breaker, BreakerPolicy, BreakerState};
use super::secret::Password;
use super::wire::{
    AgentInfo, CreateSession, FileDiff, Health, MessageWithParts, PermissionReply,
    PermissionReplyBody, PermissionRequest, PromptRequest, SessionInfo, SessionStatusMap, VcsDiff,
    VcsDiffMode, VcsStatus, Worktree, WorktreeCreate, WorktreeRemove,
};

/// Server versions ocio was tested against (`major.minor` prefix).
pub const TESTED_VERSIONS: &[&str] = &["1.18."];

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// For ordinary calls.
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// For the blocking prompt, which returns only when the model is done.
    pub prompt_timeout: Duration,
    /// Extra tries for idempotent calls after a connection error, timeout or 5xx.
    pub retries: u32,
    pub first_backoff: Duration,
    pub breaker: BreakerPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            prompt_timeout: Duration::from_secs(30 * 60),
            retries: 2,
            first_backoff: Duration::from_millis(200),
            breaker: BreakerPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("{server} refused the credentials (401) for {what}\nhint: {}", auth_hint(*.had_password))]
    Unauthorized {
        server: String,
        what: String,
        had_password: bool,
    },
    #[error("{server} is failing; calls are paused for {retry_in:?} (circuit breaker open)")]
    CircuitOpen { server: String, retry_in: Duration },
    #[error("{what} on {server} timed out after {after:?}")]
    Timeout {
        server: String,
        what: String,
        after: Duration,
    },
    #[error("cannot reach {server} for {what}: {reason}\nhint: is `opencode serve` running there?")]
    Connect {
        server: String,
        what: String,
        reason: String,
    },
    #[error("{what} on {server}: not found (404)")]
    NotFound { server: String, what: String },
    #[error("{what} on {server} failed with HTTP {status}: {body}")]
    Status {
        server: String,
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what} on {server}: unexpected response: {reason}")]
    Decode {
        server: String,
        what: String,
        reason: String,
    },
}

fn auth_hint(had_password: bool) -> &'static str {
    if had_password {
        "the password in the agent's password_env does not match the server's OPENCODE_SERVER_PASSWORD"
    } else {
        "the server has a password: set password_env in the agent's config to a variable holding it"
    }
}

impl ClientError {
    /// Worth another try (and a mark against the server's health).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Connect { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A cheap-to-clone handle to one server.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: String,
    password: Option<Password>,
    options: ClientOptions,
    breaker: Breaker,
    version_checked: AtomicBool,
}

/// Whether a call may be repeated safely.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotent {
    Yes,
    No,
}

impl Client {
    pub fn new(base_url: &str, password: Option<Password>, options: ClientOptions) -> Self {
        // Building only fails when the TLS backend cannot start; ocio builds reqwest without TLS.
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            inner: Arc::new(Inner {
                http,
                base: base_url.trim_end_matches('/').to_string(),
                password,
                breaker: Breaker::new(options.breaker),
                options,
                version_checked: AtomicBool::new(false),
            }),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    pub fn breaker(&self) -> &Breaker {
        &self.inner.breaker
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// `GET /global/health`; warns once when the version is outside the tested range.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let health: Health = self
            .get("health check", "/global/health", None, &[])
            .await?;
        if !self.inner.version_checked.swap(true, Ordering::Relaxed)
            && !TESTED_VERSIONS
                .iter()
                .any(|v| health.version.starts_with(v))
        {
            tracing::warn!(
                server = %self.inner.base,
                version = %health.version,
                tested = ?TESTED_VERSIONS,
                "OpenCode server version outside the tested range; unknown events are ignored"
            );
        }
        Ok(health)
    }

    pub async fn create_session(
        &self,
        dir: &str,
        body: &CreateSession,
    ) -> Result<SessionInfo, ClientError> {
        self.call(
            Method::POST,
            "create session",
            "/session",
            Some(dir),
            &[],
            Some(body),
            Idempotent::No,
            None,
        )
        .await
    }

    pub async fn session(&self, dir: &str, id: &str) -> Result<SessionInfo, ClientError> {
        self.get("get session", &format!("/session/{id}"), Some(dir), &[])
            .await
    }

    pub async fn sessions(&self, dir: &str) -> Result<Vec<SessionInfo>, ClientError> {
        self.get("list sessions", "/session", Some(dir), &[]).await
    }

    pub async fn delete_session(&self, dir: &str, id: &str) -> Result<bool, ClientError> {
        let path = format!("/session/{id}");
        self.call(
            Method::DELETE,
            "delete session",
            &path,
            Some(dir),
            &[],
            None::<&()>,
            Idempotent::Yes,
            None,
        )
        .await
    }

    /// Send a prompt and return at once (204); progress arrives on the event stream.
    pub async fn prompt_async(
        &self,
        dir: &str,
        id: &str,
        body: &PromptRequest,
    ) -> Result<(), ClientError> {
        let path = format!("/session/{id}/prompt_async");
        self.call_unit(Method::POST, "send prompt", &path, Some(dir), Some(body))
            .await
    }

    /// Send a prompt and wait for the complete answer.
    pub async fn prompt(
        &self,
        dir: &str,
        id: &str,
        body: &PromptRequest,
    ) -> Result<MessageWithParts, ClientError> {
        let path = format!("/session/{id}/message");
        let timeout = Some(self.inner.options.prompt_timeout);
        self.call(
            Method::POST,
            "prompt",
            &path,
            Some(dir),
            &[],
            Some(body),
            Idempotent::No,
            timeout,
        )
        .await
    }

    /// The transcript, oldest first; `limit` keeps only the newest messages.
    pub async fn messages(
        &self,
        dir: &str,
        id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<MessageWithParts>, ClientError> {
        let limit = limit.map(|l| l.to_string());
        let query: Vec<(&str, &str)> = limit.iter().map(|l| ("limit", l.as_str())).collect();
        self.get(
            "list messages",
            &format!("/session/{id}/message"),
            Some(dir),
            &query,
        )
        .await
    }

    pub async fn abort(&self, dir: &str, id: &str) -> Result<bool, ClientError> {
        let path = format!("/session/{id}/abort");
        self.call(
            Method::POST,
            "abort session",
            &path,
            Some(dir),
            &[],
            None::<&()>,
            Idempotent::Yes,
            None,
        )
        .await
    }

    /// Busy and retrying sessions of the directory (idle ones are absent).
    pub async fn session_status(&self, dir: &str) -> Result<SessionStatusMap, ClientError> {
        self.get("session status", "/session/status", Some(dir), &[])
            .await
    }

    /// The files a session changed, from the snapshot before `since_message` (a user message:
    /// usually the session's first prompt). Without it the server answers `[]` (1.18.33).
    pub async fn session_diff(
        &self,
        dir: &str,
        id: &str,
        since_message: Option<&str>,
    ) -> Result<Vec<FileDiff>, ClientError> {
        let query: Vec<(&str, &str)> = since_message.iter().map(|m| ("messageID", *m)).collect();
        let path = format!("/session/{id}/diff");
        self.get("session diff", &path, Some(dir), &query).await
    }

    pub async fn permissions(&self, dir: &str) -> Result<Vec<PermissionRequest>, ClientError> {
        self.get("list permissions", "/permission", Some(dir), &[])
            .await
    }

    pub async fn reply_permission(
        &self,
        dir: &str,
        request_id: &str,
        reply: PermissionReply,
        message: Option<String>,
    ) -> Result<bool, ClientError> {
        let path = format!("/permission/{request_id}/reply");
        let body = PermissionReplyBody { reply, message };
        self.call(
            Method::POST,
            "reply to permission",
            &path,
            Some(dir),
            &[],
            Some(&body),
            Idempotent::No,
            None,
        )
        .await
    }

    /// The OpenCode agents the server offers (`build`, `plan`, ...).
    pub async fn agents(&self, dir: &str) -> Result<Vec<AgentInfo>, ClientError> {
        self.get("list agents", "/agent", Some(dir), &[]).await
    }

    /// `git status` of the directory.
    pub async fn vcs_status(&self, dir: &str) -> Result<VcsStatus, ClientError> {
        self.get("vcs status", "/vcs/status", Some(dir), &[]).await
    }

    /// Changed files with patches: the working tree against HEAD, or against the default branch.
    pub async fn vcs_diff(&self, dir: &str, mode: VcsDiffMode) -> Result<VcsDiff, ClientError> {
        self.get(
            "vcs diff",
            "/vcs/diff",
            Some(dir),
            &[("mode", mode.as_str())],
        )
        .await
    }

    /// Experimental: the server creates a git worktree of `dir`'s repository (under its data
    /// dir, on branch `opencode/<name>`).
    pub async fn create_worktree(
        &self,
        dir: &str,
        body: &WorktreeCreate,
    ) -> Result<Worktree, ClientError> {
        let what = "create worktree";
        self.call(
            Method::POST,
            what,
            "/experimental/worktree",
            Some(dir),
            &[],
            Some(body),
            Idempotent::No,
            None,
        )
        .await
    }

    pub async fn remove_worktree(
        &self,
        dir: &str,
        body: &WorktreeRemove,
    ) -> Result<bool, ClientError> {
        let what = "remove worktree";
        self.call(
            Method::DELETE,
            what,
            "/experimental/worktree",
            Some(dir),
            &[],
            Some(body),
            Idempotent::Yes,
            None,
        )
        .await
    }

    /// Open `GET /global/event` (every directory's events). No total timeout: the stream
    /// supervisor's heartbeat watchdog decides when it is dead.
    pub async fn open_event_stream(&self) -> Result<reqwest::Response, ClientError> {
        let what = "event stream";
        let permit = self.permit(what)?;
        let mut request = self
            .inner
            .http
            .get(format!("{}/global/event", self.inner.base));
        if let Some(p) = &self.inner.password {
            request = request.basic_auth("opencode", Some(p.expose()));
        }
        let connect = tokio::time::timeout(self.inner.options.call_timeout, request.send()).await;
        let result = match connect {
            Err(_) => Err(self.timeout(what, self.inner.options.call_timeout)),
            Ok(Err(e)) => Err(self.transport(what, &e, self.inner.options.call_timeout)),
            Ok(Ok(response)) => self.check_status(what, response).await,
        };
        settle(permit, &result);
        result
    }

    async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        dir: Option<&str>,
        query: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        self.call(
            Method::GET,
            what,
            path,
            dir,
            query,
            None::<&()>,
            Idempotent::Yes,
            None,
        )
        .await
    }

    async fn call_unit(
        &self,
        method: Method,
        what: &str,
        path: &str,
        dir: Option<&str>,
        body: Option<&impl Serialize>,
    ) -> Result<(), ClientError> {
        self.send(method, what, path, dir, &[], body, Idempotent::No, None)
            .await
            .map(drop)
    }

    #[allow(clippy::too_many_arguments)]
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        what: &str,
        path: &str,
        dir: Option<&str>,
        query: &[(&str, &str)],
        body: Option<&impl Serialize>,
        idempotent: Idempotent,
        timeout: Option<Duration>,
    ) -> Result<T, ClientError> {
        let bytes = self
            .send(method, what, path, dir, query, body, idempotent, timeout)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            server: self.inner.base.clone(),
            what: what.into(),
            reason: e.to_string(),
        })
    }

    /// One logical call: breaker, timeout, retries with backoff when idempotent.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: Method,
        what: &str,
        path: &str,
        dir: Option<&str>,
        query: &[(&str, &str)],
        body: Option<&impl Serialize>,
        idempotent: Idempotent,
        timeout: Option<Duration>,
    ) -> Result<bytes::Bytes, ClientError> {
        let timeout = timeout.unwrap_or(self.inner.options.call_timeout);
        let tries = if idempotent == Idempotent::Yes {
            self.inner.options.retries + 1
        } else {
            1
        };
        let mut backoff = self.inner.options.first_backoff;
        let mut attempt = 1;
        loop {
            let permit = self.permit(what)?;
            let mut request = self
                .inner
                .http
                .request(method.clone(), format!("{}{path}", self.inner.base));
            if let Some(dir) = dir {
                request = request.query(&[("directory", dir)]);
            }
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(p) = &self.inner.password {
                request = request.basic_auth("opencode", Some(p.expose()));
            }
            let result = tokio::time::timeout(timeout, async {
                let response = request
                    .send()
                    .await
                    .map_err(|e| self.transport(what, &e, timeout))?;
                let response = self.check_status(what, response).await?;
                response
                    .bytes()
                    .await
                    .map_err(|e| self.transport(what, &e, timeout))
            })
            .await
            .unwrap_or_else(|_| Err(self.timeout(what, timeout)));
            settle(permit, &result);
            match result {
                Err(e) if e.is_transient() && attempt < tries => {
                    tracing::debug!(server = %self.inner.base, what, attempt, error = %e, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn permit(&self, what: &str) -> Result<super::breaker::Permit<'_>, ClientError> {
        self.inner.breaker.permit(Instant::now()).map_err(|open| {
            tracing::debug!(server = %self.inner.base, what, "refused by open circuit breaker");
            ClientError::CircuitOpen {
                server: self.inner.base.clone(),
                retry_in: open.retry_in,
            }
        })
    }

    async fn check_status(
        &self,
        what: &str,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let server = self.inner.base.clone();
        let what = what.to_string();
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized {
                server,
                what,
                had_password: self.inner.password.is_some(),
            },
            StatusCode::NOT_FOUND => ClientError::NotFound { server, what },
            _ => {
                let body = response.text().await.unwrap_or_default();
                ClientError::Status {
                    server,
                    what,
                    status: status.as_u16(),
                    body: clip(&body, 500),
                }
            }
        })
    }

    fn transport(&self, what: &str, e: &reqwest::Error, after: Duration) -> ClientError {
        if e.is_timeout() {
            return self.timeout(what, after);
        }
        // reqwest's Display is terse ("error sending request"); the source chain says why.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        ClientError::Connect {
            server: self.inner.base.clone(),
            what: what.into(),
            reason,
        }
    }

    fn timeout(&self, what: &str, after: Duration) -> ClientError {
        ClientError::Timeout {
            server: self.inner.base.clone(),
            what: what.into(),
            after,
        }
    }
}

/// Only failures that say something about the server's health count against it.
fn settle<T>(permit: super::breaker::Permit<'_>, result: &Result<T, ClientError>) {
    match result {
        Err(e) if e.is_transient() => permit.failed(),
        _ => permit.succeeded(),
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
