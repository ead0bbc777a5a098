//! The REST client for one OpenCode server: typed calls, basic auth, a timeout on every call,
//! retries with backoff for idempotent calls only, and the server's circuit breaker.
//!
//! Errors say what failed and, where the operator can fix it, how (`hint:`). The password is only
//! ever handed to reqwest's basic-auth header: it is not in `Debug`, errors or logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::Retryable;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::breaker::{Breaker, BreakerPolicy, BreakerState};
use super::event_body::{Answer, EventBody, Plain};
use super::secret::Password;
use super::wire::{
    AgentInfo, CreateSession, FileDiff, Health, MessageWithParts, Part, PermissionReply,
    PermissionReplyBody, PermissionRequest, PromptRequest, QuestionReplyBody, QuestionRequest,
    SessionInfo, SessionStatusMap, ToolState, VcsDiff, VcsDiffMode,
};

/// Server versions ocio was tested against (`major.minor` prefix).
pub(crate) const TESTED_VERSIONS: &[&str] = &["1.18."];

/// How long a call that carries a tree (a patch in, a file out, a git command on the server's
/// machine) may take: far longer than an ordinary call.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a server runs (`GET /path`).
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct ServerPaths {
    /// The server's own working directory.
    pub(crate) directory: String,
}

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
    #[error("{server} refused the credentials (401) for {what}\nhint: {}", auth_hint(*.had_password, .password_env.as_deref()))]
    Unauthorized {
        server: String,
        what: String,
        had_password: bool,
        /// The variable the refused password was read from (the agent's `password_env`).
        password_env: Option<String>,
    },
    /// Said with no countdown: the words stay as an agent's reason while it is offline, and a
    /// "paused for 3s" read minutes later misled (hand trial).
    #[error(
        "{server} is failing; calls to it are paused while it recovers (circuit breaker open after repeated failures)"
    )]
    CircuitOpen { server: String, retry_in: Duration },
    #[error("{what} on {server} timed out after {}", crate::text::duration(*.after))]
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
    #[error(
        "the TLS connection to {server} failed for {what}: {reason}\nhint: if the server's certificate is self-signed or from a private CA, set `ca_cert` in its [[agents]] or [[fleets]] entry to the PEM file of that CA"
    )]
    Tls {
        server: String,
        what: String,
        reason: String,
    },
    #[error(
        "cannot set up an HTTP client for {server}: {reason}\nhint: install the system's CA certificates (e.g. the ca-certificates package), or set `ca_cert` in its [[agents]] or [[fleets]] entry to the PEM file of the CA that signed the server's certificate"
    )]
    Setup { server: String, reason: String },
    #[error("{what} on {server}: not found (404)")]
    NotFound { server: String, what: String },
    #[error("{what} on {server} failed with HTTP {status}: {body}")]
    Status {
        server: String,
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: cannot encode the request: {reason}")]
    Encode { what: String, reason: String },
    #[error(
        "{what} on {server}: the answer is a web page, not OpenCode's API\nhint: OpenCode answers its API at the server's root (http://host:port); drop the path from the URL, unless a proxy serves OpenCode under it"
    )]
    WebPage { server: String, what: String },
    #[error("{what} on {server}: unexpected response: {reason}")]
    Decode {
        server: String,
        what: String,
        reason: String,
    },
}

fn auth_hint(had_password: bool, password_env: Option<&str>) -> String {
    match (had_password, password_env) {
        (true, Some(var)) => format!(
            "the password in {var} (its password_env) does not match the server's OPENCODE_SERVER_PASSWORD"
        ),
        (true, None) => "the password ocio sent does not match the server's OPENCODE_SERVER_PASSWORD".into(),
        (false, _) => "the server has a password: set password_env in its [[agents]] or [[fleets]] entry to a variable holding it".into(),
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

    /// The server (or how ocio reaches it) is at fault, not the request: a task that met it
    /// may do better on another agent.
    pub(crate) fn is_the_servers(&self) -> bool {
        self.is_transient()
            || matches!(
                self,
                Self::Tls { .. }
                    | Self::Setup { .. }
                    | Self::Unauthorized { .. }
                    | Self::CircuitOpen { .. }
                    | Self::WebPage { .. }
            )
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

impl Client {
    /// A client for the server at `base_url` (`http://` or `https://`; https certificates
    /// are checked against the system's roots).
    pub fn new(
        base_url: &str,
        password: Option<Password>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        Self::with_roots(base_url, password, options, Vec::new())
    }

    /// Like [`Client::new`], also trusting the certificates in `roots` (a private CA, or a
    /// server's self-signed certificate).
    pub(crate) fn with_roots(
        base_url: &str,
        password: Option<Password>,
        options: ClientOptions,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        let builder = || {
            http_builder()
                .connect_timeout(options.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(30))
        };
        let https = base
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        let built = if !https {
            // No certificate is ever checked: the system's store (which a slim container may
            // not have) is not even loaded.
            builder().tls_certs_only(Vec::new()).build()
        } else {
            match builder().tls_certs_merge(roots.clone()).build() {
                // No system roots could be loaded; the agent's ca_cert can do without them.
                Err(_) if !roots.is_empty() => builder().tls_certs_only(roots).build(),
                built => built,
            }
        };
        let http = built.map_err(|e| ClientError::Setup {
            server: base.clone(),
            reason: error_chain(&e),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                password,
                breaker: Breaker::new(options.breaker),
                options,
                version_checked: AtomicBool::new(false),
            }),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The server's password, for `opencode attach`'s environment (see [`super::attach`]).
    pub(crate) fn password(&self) -> Option<&Password> {
        self.inner.password.as_ref()
    }

    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    pub fn breaker(&self) -> &Breaker {
        &self.inner.breaker
    }

    /// `GET /global/health`; warns once when the version is outside the tested range.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let health: Health = self
            .fetch(Call::get("health check", "/global/health"))
            .await?;
        let tested = TESTED_VERSIONS
            .iter()
            .any(|v| health.version.starts_with(v));
        if !tested && !self.inner.version_checked.swap(true, Ordering::Relaxed) {
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
        self.fetch(
            Call::post("create session", "/session".into())
                .dir(dir)
                .body(body),
        )
        .await
    }

    pub async fn session(&self, dir: &str, id: &str) -> Result<SessionInfo, ClientError> {
        self.fetch(Call::get("get session", format!("/session/{id}")).dir(dir))
            .await
    }

    pub async fn sessions(&self, dir: &str) -> Result<Vec<SessionInfo>, ClientError> {
        self.fetch(Call::get("list sessions", "/session").dir(dir))
            .await
    }

    pub async fn delete_session(&self, dir: &str, id: &str) -> Result<bool, ClientError> {
        self.fetch(Call::delete("delete session", format!("/session/{id}")).dir(dir))
            .await
    }

    /// Send a prompt and return at once (204); progress arrives on the event stream.
    pub async fn prompt_async(
        &self,
        dir: &str,
        id: &str,
        body: &PromptRequest,
    ) -> Result<(), ClientError> {
        let call = Call::post("send prompt", format!("/session/{id}/prompt_async"));
        self.send(call.dir(dir).body(body)).await.map(drop)
    }

    /// Send a prompt and wait for the complete answer.
    pub async fn prompt(
        &self,
        dir: &str,
        id: &str,
        body: &PromptRequest,
    ) -> Result<MessageWithParts, ClientError> {
        let call = Call::post("prompt", format!("/session/{id}/message"))
            .dir(dir)
            .body(body);
        self.fetch(call.timeout(self.inner.options.prompt_timeout))
            .await
    }

    /// The transcript, oldest first; `limit` keeps only the newest messages.
    pub async fn messages(
        &self,
        dir: &str,
        id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<MessageWithParts>, ClientError> {
        let mut call = Call::get("list messages", format!("/session/{id}/message")).dir(dir);
        if let Some(limit) = limit {
            call = call.query("limit", limit.to_string());
        }
        self.fetch(call).await
    }

    /// Stop a running session. Safe to repeat.
    pub async fn abort(&self, dir: &str, id: &str) -> Result<bool, ClientError> {
        self.fetch(
            Call::post("abort session", format!("/session/{id}/abort"))
                .dir(dir)
                .idempotent(),
        )
        .await
    }

    /// Busy and retrying sessions of the directory (idle ones are absent).
    pub async fn session_status(&self, dir: &str) -> Result<SessionStatusMap, ClientError> {
        self.fetch(Call::get("session status", "/session/status").dir(dir))
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
        let mut call = Call::get("session diff", format!("/session/{id}/diff")).dir(dir);
        if let Some(message) = since_message {
            call = call.query("messageID", message.to_string());
        }
        self.fetch(call).await
    }

    pub async fn permissions(&self, dir: &str) -> Result<Vec<PermissionRequest>, ClientError> {
        self.fetch(Call::get("list permissions", "/permission").dir(dir))
            .await
    }

    pub async fn reply_permission(
        &self,
        dir: &str,
        request_id: &str,
        reply: PermissionReply,
        message: Option<String>,
    ) -> Result<bool, ClientError> {
        let body = PermissionReplyBody { reply, message };
        let call = Call::post(
            "reply to permission",
            format!("/permission/{request_id}/reply"),
        );
        // Safe to send again: the server answers a reply to an id it no longer has with 200.
        self.fetch(call.dir(dir).body(&body).idempotent()).await
    }

    /// Questions waiting for an answer in the directory.
    pub async fn questions(&self, dir: &str) -> Result<Vec<QuestionRequest>, ClientError> {
        self.fetch(Call::get("list questions", "/question").dir(dir))
            .await
    }

    /// Answer question `request_id`: per question it asked, the labels picked (or a text).
    pub async fn reply_question(
        &self,
        dir: &str,
        request_id: &str,
        answers: Vec<Vec<String>>,
    ) -> Result<bool, ClientError> {
        let body = QuestionReplyBody { answers };
        let call = Call::post("answer question", format!("/question/{request_id}/reply"));
        self.fetch(call.dir(dir).body(&body).idempotent()).await
    }

    pub async fn reject_question(&self, dir: &str, request_id: &str) -> Result<bool, ClientError> {
        let call = Call::post("reject question", format!("/question/{request_id}/reject"));
        self.fetch(call.dir(dir).idempotent()).await
    }

    /// The OpenCode agents the server offers (`build`, `plan`, ...).
    pub async fn agents(&self, dir: &str) -> Result<Vec<AgentInfo>, ClientError> {
        self.fetch(Call::get("list agents", "/agent").dir(dir))
            .await
    }

    /// Whether the server has `dir` as a directory it can list (`GET /file?path=.`), asked
    /// once: OpenCode answers 500 for a directory it does not have (missing, or a file). Its
    /// 500 says nothing more (the same "Unexpected server error" for every cause), so it is
    /// taken as that answer only when the server lists its own directory; a server that fails
    /// that too is failing, and its 500 is the transient error it is.
    pub(crate) async fn has_directory(&self, dir: &str) -> Result<bool, ClientError> {
        match self.list_directory(dir).await {
            Ok(()) => Ok(true),
            // A gateway's 502, 503 or 504 (a proxy, a restart) says nothing about the
            // directory: it is the transient failure it is, and the question is asked again.
            Err(lacks @ ClientError::Status { status: 500, .. }) => {
                let own = self.paths().await?.directory;
                match self.list_directory(&own).await {
                    Ok(()) => Ok(false),
                    Err(_) => Err(lacks),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn list_directory(&self, dir: &str) -> Result<(), ClientError> {
        let call = Call::get("list directory", "/file")
            .dir(dir)
            .query("path", ".".into())
            .once();
        self.send(call).await.map(drop)
    }

    /// Changed files with patches: the working tree against HEAD, or against the default branch.
    pub async fn vcs_diff(&self, dir: &str, mode: VcsDiffMode) -> Result<VcsDiff, ClientError> {
        self.fetch(
            Call::get("vcs diff", "/vcs/diff")
                .dir(dir)
                .query("mode", mode.as_str().into()),
        )
        .await
    }

    /// Run `command` in the shell of session `id` on the server's machine (`POST
    /// /session/{id}/shell`: no model call); what it printed. The command's own failure is
    /// not an error here: callers print a marker they check.
    pub(crate) async fn shell(
        &self,
        dir: &str,
        id: &str,
        agent: &str,
        command: &str,
        timeout: Option<Duration>,
    ) -> Result<String, ClientError> {
        let body = serde_json::json!({ "agent": agent, "command": command });
        let call = Call::post("run a shell command", format!("/session/{id}/shell"))
            .dir(dir)
            .body(&body)
            .timeout(timeout.unwrap_or(TRANSFER_TIMEOUT).max(TRANSFER_TIMEOUT));
        let answer: MessageWithParts = self.fetch(call).await?;
        Ok(answer
            .parts
            .iter()
            .filter_map(|part| match part {
                Part::Tool(tool) => match &tool.state {
                    ToolState::Completed { output, .. } => Some(output.as_str()),
                    ToolState::Error { error, .. } => Some(error.as_str()),
                    _ => None,
                },
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(""))
    }

    /// Apply a raw patch (git's, binary ones too) to the working tree of `dir` (`POST
    /// /vcs/apply`).
    pub(crate) async fn vcs_apply(&self, dir: &str, patch: &str) -> Result<bool, ClientError> {
        #[derive(serde::Deserialize)]
        struct Applied {
            applied: bool,
        }
        let body = serde_json::json!({ "patch": patch });
        let call = Call::post("apply a patch", "/vcs/apply".into())
            .dir(dir)
            .body(&body)
            .timeout(TRANSFER_TIMEOUT);
        let answer: Applied = self.fetch(call).await?;
        Ok(answer.applied)
    }

    /// The bytes of file `path` in `dir` (`GET /file/content`: binary files come base64).
    pub(crate) async fn file_bytes(&self, dir: &str, path: &str) -> Result<Vec<u8>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Content {
            content: String,
            encoding: Option<String>,
        }
        let call = Call::get("read a file", "/file/content")
            .dir(dir)
            .query("path", path.into())
            .timeout(TRANSFER_TIMEOUT);
        let answer: Content = self.fetch(call).await?;
        match answer.encoding.as_deref() {
            Some("base64") => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(answer.content.as_bytes())
                    .map_err(|e| ClientError::Decode {
                        server: self.inner.base.clone(),
                        what: "read a file".into(),
                        reason: e.to_string(),
                    })
            }
            _ => Ok(answer.content.into_bytes()),
        }
    }

    /// The server's own directory and home (`GET /path`).
    pub(crate) async fn paths(&self) -> Result<ServerPaths, ClientError> {
        self.fetch(Call::get("server paths", "/path")).await
    }

    /// Open `GET /global/event` (every directory's events). No total timeout: the stream
    /// supervisor's heartbeat watchdog decides when it is dead.
    pub(crate) async fn open_event_stream(&self) -> Result<EventBody, ClientError> {
        let what = "event stream";
        let permit = self.permit(what)?;
        let limit = self.inner.options.call_timeout;
        let result = match tokio::time::timeout(limit, self.event_stream(what)).await {
            Err(_) => Err(self.timeout(what, limit)),
            Ok(result) => result,
        };
        settle(permit, &result);
        result
    }

    /// The stream on a connection ocio opens itself where it can (one that rests between the
    /// rounds it is read in), else through reqwest.
    async fn event_stream(&self, what: &str) -> Result<EventBody, ClientError> {
        let url = format!("{}/global/event", self.inner.base);
        if let Some(plain) = Plain::of(&url) {
            let authorization = self.inner.password.as_ref().map(|p| {
                use base64::Engine as _;
                let pair = format!("opencode:{}", p.expose());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            });
            match plain
                .get(self.inner.options.connect_timeout, authorization)
                .await
            {
                Ok(Answer::Stream(body)) => return Ok(body),
                // Sent elsewhere: reqwest follows redirects.
                Ok(Answer::Refused { status, .. }) if status.is_redirection() => {}
                Ok(Answer::Refused { status, body }) => {
                    return Err(self.status_error(what, status, &body));
                }
                Err(reason) => {
                    return Err(ClientError::Connect {
                        server: self.inner.base.clone(),
                        what: what.into(),
                        reason,
                    });
                }
            }
        }
        let mut request = self.inner.http.get(url);
        if let Some(p) = &self.inner.password {
            request = request.basic_auth("opencode", Some(p.expose()));
        }
        match request.send().await {
            Err(e) => Err(self.transport(what, &e, self.inner.options.call_timeout)),
            Ok(response) => Ok(EventBody::pooled(self.check_status(what, response).await?)),
        }
    }

    /// One call whose answer is JSON.
    async fn fetch<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        let what = call.what;
        let bytes = self.send(call).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            let server = self.inner.base.clone();
            // A real `opencode serve` answers a path it does not know with its web app (an
            // HTML page, 200): what a URL with a wrong path meets.
            match bytes.trim_ascii_start().first() {
                Some(b'<') => ClientError::WebPage {
                    server,
                    what: what.into(),
                },
                _ => ClientError::Decode {
                    server,
                    what: what.into(),
                    reason: e.to_string(),
                },
            }
        })
    }

    /// One logical call: breaker, timeout, and when idempotent, retries of transient failures
    /// with exponential backoff and jitter (so the sessions on a struggling server do not all
    /// come back at the same moment). `backon` does the backoff.
    async fn send(&self, mut call: Call) -> Result<bytes::Bytes, ClientError> {
        let body = call
            .body
            .take()
            .transpose()
            .map_err(|reason| ClientError::Encode {
                what: call.what.into(),
                reason,
            })?;
        let once = || self.send_once(&call, body.as_ref());
        if !call.idempotent {
            return once().await;
        }
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.inner.options.first_backoff)
            .with_max_times(self.inner.options.retries as usize)
            .with_jitter();
        once.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(ClientError::is_transient)
            .notify(|error, after| {
                tracing::debug!(server = %self.inner.base, what = call.what, ?after, %error, "retrying");
            })
            .await
    }

    /// One try of `call`.
    async fn send_once(
        &self,
        call: &Call,
        body: Option<&Vec<u8>>,
    ) -> Result<bytes::Bytes, ClientError> {
        let what = call.what;
        let timeout = call.timeout.unwrap_or(self.inner.options.call_timeout);
        let permit = self.permit(what)?;
        let url = format!("{}{}", self.inner.base, call.path);
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .query(&call.query);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
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
        result
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
        let body = response.text().await.unwrap_or_default();
        Err(self.status_error(what, status, &body))
    }

    /// What a call answered with `status` (not a success) and `body` failed with.
    fn status_error(&self, what: &str, status: StatusCode, body: &str) -> ClientError {
        let server = self.inner.base.clone();
        let what = what.to_string();
        match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized {
                server,
                what,
                had_password: self.inner.password.is_some(),
                password_env: self
                    .inner
                    .password
                    .as_ref()
                    .and_then(|p| p.variable().map(str::to_string)),
            },
            StatusCode::NOT_FOUND => ClientError::NotFound { server, what },
            _ => ClientError::Status {
                server,
                what,
                status: status.as_u16(),
                body: crate::text::clip(body, 500),
            },
        }
    }

    fn transport(&self, what: &str, e: &reqwest::Error, after: Duration) -> ClientError {
        if e.is_timeout() {
            return self.timeout(what, after);
        }
        let reason = error_chain(e);
        let server = self.inner.base.clone();
        let what = what.into();
        if is_tls_failure(e) {
            // Not transient: a certificate does not become trusted by trying again.
            return ClientError::Tls {
                server,
                what,
                reason,
            };
        }
        ClientError::Connect {
            server,
            what,
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

/// reqwest's Display is terse ("error sending request"); the source chain says why.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    reason
}

/// Whether the request failed in the TLS handshake (a certificate not trusted, a name that
/// does not match, a server that does not speak TLS).
fn is_tls_failure(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // An io::Error's `source` skips the error it wraps (and io errors nest): unwrap them.
        let mut node: &(dyn std::error::Error + 'static) = s;
        while let Some(inner) = node
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            node = inner;
        }
        if node.is::<rustls::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A reqwest client builder that can be built: every reqwest client in ocio starts here.
/// rustls takes its cryptography from a process-wide provider, which reqwest (built without its
/// own, to avoid aws-lc's build needs) requires before any client is built, or it panics.
pub(crate) fn http_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Makes ring the process's rustls provider, once.
fn install_crypto_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // An error means another part of the process installed one first: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Only failures that say something about the server's health count against it.
fn settle<T>(permit: super::breaker::Permit<'_>, result: &Result<T, ClientError>) {
    match result {
        Err(e) if e.is_transient() => permit.failed(),
        _ => permit.succeeded(),
    }
}

/// One REST call, described before it is sent. GETs are idempotent (retried on transient
/// failures); anything else only when marked so.
struct Call {
    method: Method,
    what: &'static str,
    path: String,
    query: Vec<(&'static str, String)>,
    /// Serialized up front; an error is reported when the call is sent.
    body: Option<Result<Vec<u8>, String>>,
    idempotent: bool,
    timeout: Option<Duration>,
}

impl Call {
    fn new(method: Method, what: &'static str, path: String) -> Self {
        let idempotent = method == Method::GET || method == Method::DELETE;
        Self {
            method,
            what,
            path,
            query: Vec::new(),
            body: None,
            idempotent,
            timeout: None,
        }
    }

    fn get(what: &'static str, path: impl Into<String>) -> Self {
        Self::new(Method::GET, what, path.into())
    }

    fn post(what: &'static str, path: String) -> Self {
        Self::new(Method::POST, what, path)
    }

    fn delete(what: &'static str, path: String) -> Self {
        Self::new(Method::DELETE, what, path)
    }

    /// Sent once, even if idempotent.
    fn once(mut self) -> Self {
        self.idempotent = false;
        self
    }

    fn dir(self, dir: &str) -> Self {
        self.query("directory", dir.to_string())
    }

    fn query(mut self, key: &'static str, value: String) -> Self {
        self.query.push((key, value));
        self
    }

    fn body(mut self, body: &impl Serialize) -> Self {
        self.body = Some(serde_json::to_vec(body).map_err(|e| e.to_string()));
        self
    }

    fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
