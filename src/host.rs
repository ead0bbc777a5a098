//! The one way a front end (the TUI, headless mode, `ocio run`) starts the engine: open the
//! store, build the configured agents, start the engine, its notifier (`[notify]`), its control
//! socket and its metrics server; and stop them again in order. Works inside any multi-threaded tokio runtime.

mod agents;
pub use agents::LeftServer;
mod crews;
pub(crate) mod fleet_source;
pub(crate) mod fleets;
#[cfg(test)]
mod fleets_tests;
mod left;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AgentConfig, Config, FleetConfig};
use crate::control::{self, ControlError, ControlServer, EngineInfo};
use crate::domain::AgentName;
use crate::engine::approval::ApprovalPolicy;
use crate::engine::{EngineError, EngineHandle, EngineOptions};
use crate::metrics::{MetricsError, MetricsServer, Sources};
use crate::notify::Notifier;
use crate::opencode::client::Client;
use crate::opencode::endpoint::EndpointError;
use crate::opencode::secret::Password;
use crate::paths::Paths;
use crate::store::{Store, StoreError, StoreHandle, StoreOptions};
use agents::Servers;

/// How many threads run the async tasks of the runtime that hosts the engine (and of every
/// command): the engine is one loop, its runs and streams wait on the network, and blocking
/// work (git) goes to tokio's blocking pool and the store has a thread of its own. One worker does not wake a
/// second for each event the servers send: measured with `benches/fleet.rs` (2026-12-06, 2
/// cores, medians) ocio took 16% less of a core than with one worker per core, with no
/// worse latency (200 busy sessions 10.6% against 12.7%, dispatch p99 15 against 31 ms;
/// following 16 at ~41 events/s per session 2.5% against 2.9%).
pub const ASYNC_WORKERS: usize = 1;

/// The multi-threaded runtime with [`ASYNC_WORKERS`] async workers, timers and I/O enabled.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ASYNC_WORKERS)
        .enable_all()
        .build()
}

/// What to start besides the engine.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Listen on the control socket (so `ocio status`, `ocio cancel`, an attached TUI... reach
    /// this engine).
    pub listen: bool,
    /// Serve Prometheus metrics here (checked for loopback by the caller, see
    /// `crate::metrics::check_addr`).
    pub metrics: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "an ocio engine already runs on database {db}\n  hint: attach to it with `ocio`, or talk to it with `ocio status`, `ocio submit`, `ocio cancel`... (socket {socket})"
    )]
    AlreadyRunning { db: PathBuf, socket: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Agents(#[from] EndpointError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// A running engine and everything started with it.
pub struct Host {
    engine: EngineHandle,
    store: StoreHandle,
    servers: Servers,
    /// Servers of agents added while running (see [`AgentAdder`]).
    added: Arc<tokio::sync::Mutex<Servers>>,
    /// Variables managed servers are started without (every agent's `password_env`).
    withheld: Arc<Vec<String>>,
    /// Where managed servers are recorded for the next ocio (see [`crate::paths::server_records`]).
    records: Arc<PathBuf>,
    control: Option<ControlServer>,
    metrics: Option<MetricsServer>,
    /// The fleets' watchers (see [`fleets`]).
    watchers: Vec<tokio::task::JoinHandle<()>>,
    /// Sends `[notify]` notices, when the config asks for them.
    notifier: Option<Notifier>,
    /// Every event since the engine started, for the first taker.
    first_events: Option<crate::engine::Subscription>,
    info: EngineInfo,
}

impl Host {
    /// Start the engine on the database in `paths` with the agents in `config`. When another
    /// engine holds the database, says so and how to attach to it.
    pub async fn start(
        paths: &Paths,
        config: &Config,
        options: HostOptions,
    ) -> Result<Host, HostError> {
        check_fleets(config)?;
        let socket = paths.socket_file();
        let store = open_store(&paths.db_file, &socket).await?;
        let records = crate::paths::server_records(&paths.db_file);
        // Should the start fail, managed servers whose sessions work are left running.
        let (mut specs, servers) = match agents::from_config(config, &records).await {
            Ok(built) => built,
            Err((e, servers)) => {
                servers.close(&agents_at_work(&store).await).await;
                store.close().await;
                return Err(e.into());
            }
        };
        let (rosters, told) = gather_fleets(config, &mut specs, &store).await;
        let stopping = left::stop_left_sessions(&store, &specs).await;
        let clients = servers.clients();
        let started =
            EngineHandle::start_subscribed(store.clone(), specs, engine_options(config)).await;
        let (engine, first_events) = match started {
            Ok(started) => started,
            Err(e) => {
                servers.close(&agents_at_work(&store).await).await;
                store.close().await;
                return Err(e.into());
            }
        };
        let mut host = Host {
            engine: engine.clone(),
            store: store.clone(),
            servers,
            added: Arc::default(),
            withheld: Arc::new(config.secret_vars()),
            records: Arc::new(records),
            watchers: stopping,
            control: None,
            metrics: None,
            notifier: Notifier::start(&config.notify, engine.subscribe()),
            first_events: Some(first_events),
            info: EngineInfo {
                protocol: control::PROTOCOL,
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                database: paths.db_file.clone(),
                started_at: jiff::Timestamp::now(),
                metrics: None,
            },
        };
        for event in told {
            engine.tell(event).await;
        }
        host.watch_fleets(rosters);
        if let Some(addr) = options.metrics {
            let sources = Sources {
                engine: engine.clone(),
                store,
                clients,
            };
            match MetricsServer::start(addr, sources).await {
                Ok(metrics) => {
                    host.info.metrics = Some(metrics.addr().to_string());
                    host.metrics = Some(metrics);
                }
                Err(e) => {
                    host.shutdown().await;
                    return Err(e.into());
                }
            }
        }
        if options.listen {
            match ControlServer::bind(&socket, engine, host.info.clone()).await {
                Ok(control) => host.control = Some(control),
                Err(e) => {
                    host.shutdown().await;
                    return Err(e.into());
                }
            }
        }
        Ok(host)
    }

    /// A watcher per fleet, from the rosters gathered before the engine started.
    fn watch_fleets(&mut self, rosters: Vec<Gathered>) {
        for Gathered { roster, pending } in rosters {
            let crew = crews::Engine {
                engine: self.engine.clone(),
                adder: self.agent_adder(),
            };
            let fleet = roster.fleet().clone();
            let every = fleet.refresh_every();
            let read = move || {
                let fleet = fleet.clone();
                async move { fleets::read(&fleet).await }
            };
            self.watchers.push(tokio::spawn(fleets::watch(
                roster, crew, pending, every, read,
            )));
        }
    }

    /// The engine, for commands and events.
    pub fn engine(&self) -> EngineHandle {
        self.engine.clone()
    }

    /// Engine events: from the engine's start on (recovery, first dispatches) for the first
    /// caller, from now on for later ones.
    pub(crate) fn events(&mut self) -> crate::engine::Subscription {
        self.first_events
            .take()
            .unwrap_or_else(|| self.engine.subscribe())
    }

    /// A way to add agents while running, whose servers this host stops at shutdown.
    pub(crate) fn agent_adder(&self) -> AgentAdder {
        AgentAdder {
            engine: self.engine.clone(),
            added: self.added.clone(),
            withheld: self.withheld.clone(),
            records: self.records.clone(),
        }
    }

    /// The servers' passwords, by agent, for `opencode attach` from this process.
    pub(crate) fn passwords(&self) -> Passwords {
        Passwords {
            clients: self.servers.clients(),
            added: self.added.clone(),
        }
    }

    /// Who this engine is, as the control socket tells clients.
    pub(crate) fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The control socket, when listening.
    pub fn socket(&self) -> Option<&Path> {
        self.control.as_ref().map(ControlServer::socket)
    }

    /// Where metrics are served, when they are.
    pub(crate) fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// Stop in order: the engine first (it takes no more work, and what it spawned stops, so
    /// no front end's request waits on a pending call such as a planner's prompt; running
    /// sessions are left for the next start to settle or re-attach), then the notifier (what
    /// it gathered is sent, within a bound), the control socket (removed, its clients' streams
    /// end), metrics, the store, and last the managed servers. The managed servers it left
    /// running for their sessions.
    pub async fn shutdown(self) -> Vec<LeftServer> {
        for watcher in &self.watchers {
            watcher.abort();
        }
        for watcher in self.watchers {
            let _ = watcher.await;
        }
        if let Err(e) = self.engine.shutdown().await {
            tracing::warn!(error = %e, "engine shutdown");
        }
        if let Some(notifier) = self.notifier {
            notifier.shutdown().await;
        }
        if let Some(control) = self.control {
            control.shutdown().await;
        }
        if let Some(metrics) = self.metrics {
            metrics.shutdown().await;
        }
        // Managed servers whose sessions work on are left running for the next ocio to adopt;
        // the rest are stopped.
        let working = agents_at_work(&self.store).await;
        // The store first: nothing writes to it now, and the next ocio may open it while the
        // managed servers take their grace to stop (seconds: OpenCode ignores SIGTERM).
        self.store.close().await;
        let mut left = self.servers.close(&working).await;
        let added = std::mem::take(&mut *self.added.lock().await);
        left.extend(added.close(&working).await);
        tracing::info!(left = left.len(), "engine host stopped");
        left
    }
}

/// Adds agents to a hosted engine at runtime, starting their managed servers; the host stops
/// those servers when it shuts down.
#[derive(Clone)]
pub(crate) struct AgentAdder {
    engine: EngineHandle,
    added: Arc<tokio::sync::Mutex<Servers>>,
    /// Variables its managed servers are started without (other servers' passwords).
    pub(crate) withheld: Arc<Vec<String>>,
    /// Where its managed servers are recorded for the next ocio.
    records: Arc<PathBuf>,
}

impl AgentAdder {
    pub(crate) async fn add(&self, entry: &AgentConfig) -> Result<(), HostError> {
        let (spec, endpoint) =
            agents::from_entry(entry, &self.withheld, Some(&self.records)).await?;
        if let Err(e) = self.engine.add_agent(spec).await {
            if let Some(endpoint) = endpoint {
                endpoint.shutdown().await;
            }
            return Err(e.into());
        }
        if let Some(endpoint) = endpoint {
            self.added.lock().await.push(entry.name.clone(), endpoint);
        }
        Ok(())
    }
}

/// The passwords of this host's OpenCode servers (managed ones are generated here, so only
/// this process knows them), for `opencode attach`.
#[derive(Clone)]
pub(crate) struct Passwords {
    clients: Vec<(AgentName, Client)>,
    added: Arc<tokio::sync::Mutex<Servers>>,
}

impl Passwords {
    /// The password of `agent`'s server, if it has one. Never waits: an agent being added
    /// right now is not found.
    pub(crate) fn get(&self, agent: &AgentName) -> Option<Password> {
        let find = |clients: &[(AgentName, Client)]| {
            clients
                .iter()
                .find(|(name, _)| name == agent)
                .and_then(|(_, client)| client.password().cloned())
        };
        find(&self.clients).or_else(|| find(&self.added.try_lock().ok()?.clients()))
    }
}

/// Each fleet's password variable and certificate, read before anything starts: its members
/// take them as they join, which without them none ever could (an unset variable does not
/// appear later in this process), and the room would wait for them in silence.
fn check_fleets(config: &Config) -> Result<(), EndpointError> {
    for fleet in &config.fleets {
        crate::opencode::endpoint::credentials(
            &format!("fleet {}", fleet.name),
            fleet.password_env.as_deref(),
            fleet.ca_cert.as_deref(),
        )?;
    }
    Ok(())
}

/// How long the start waits for the fleets' sources (a command may take 30 s): the read of
/// one slower goes on while the engine runs, and its watcher's first round takes it.
const FIRST_READ: Duration = Duration::from_secs(5);

/// A source's read under way, stopped when dropped.
type Reading = tokio_util::task::AbortOnDropHandle<Result<Vec<String>, fleets::SourceError>>;

/// A fleet's roster as the start left it.
struct Gathered {
    roster: fleets::Roster,
    /// Its source's first read, when it had not answered in [`FIRST_READ`].
    pending: Option<Reading>,
}

/// Each fleet's members read once (all fleets at once, for at most [`FIRST_READ`]) and
/// health-checked before the engine starts: those that answer join `specs` (so recovery finds
/// their sessions' agents and a first plan its agents); the rosters go on with a watcher each.
/// A member the last engine left sessions running on joins first, whatever its source or
/// health says now, so they are re-attached (drained when no longer listed; an unreachable
/// one is followed as any agent's server that went away).
async fn gather_fleets(
    config: &Config,
    specs: &mut Vec<crate::engine::AgentSpec>,
    store: &StoreHandle,
) -> (Vec<Gathered>, Vec<crate::engine::EngineEvent>) {
    let taken = specs.iter().map(|s| s.agent.name.clone()).collect();
    let gathering = crews::Gathering::new(taken, config.secret_vars());
    let left = left_running(store).await;
    let reads: Vec<Reading> = config
        .fleets
        .iter()
        .map(|fleet| {
            let fleet = fleet.clone();
            Reading::new(tokio::spawn(async move { fleets::read(&fleet).await }))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + FIRST_READ;
    let mut rosters = Vec::with_capacity(config.fleets.len());
    for (fleet, mut read) in config.fleets.iter().zip(reads) {
        let listed = match tokio::time::timeout_at(deadline, &mut read).await {
            Ok(joined) => {
                Some(joined.unwrap_or_else(|e| Err(fleets::SourceError::Stopped(e.to_string()))))
            }
            Err(_) => {
                tracing::info!(fleet = %fleet.name, "the fleet's source did not answer in {}s; its read goes on while the engine runs", FIRST_READ.as_secs());
                None
            }
        };
        let mut roster = fleets::Roster::new(fleet.clone());
        let urls = listed.as_ref().and_then(|l| l.as_ref().ok());
        recall_left(&mut roster, &left, urls, &gathering).await;
        let pending = match listed {
            Some(listed) => {
                roster.round(listed, &gathering).await;
                None
            }
            None => Some(read),
        };
        rosters.push(Gathered { roster, pending });
    }
    let (gathered, told) = gathering.into_parts();
    specs.extend(gathered);
    (rosters, told)
}

/// Take in again each of `left` (agent, server) that is `roster`'s member: under the URL the
/// source lists it by (`urls`), if it does; drained when the source no longer lists it; kept
/// as it is when the source could not be read.
async fn recall_left(
    roster: &mut fleets::Roster,
    left: &[(AgentName, String)],
    urls: Option<&Vec<String>>,
    gathering: &crews::Gathering,
) {
    let fleet = roster.fleet().clone();
    for (agent, server) in left {
        // Stored as an older ocio spelled it, maybe: in the one spelling now.
        let server = crate::config::member_url(server).unwrap_or_else(|_| server.clone());
        let listed_as = urls.map(|urls| {
            urls.iter()
                .find(|url| fleet.member_name(url) == *agent)
                .cloned()
        });
        let (url, still) = match listed_as {
            Some(Some(url)) => (url, true),
            Some(None) => (server, false),
            None => (server, true),
        };
        roster.recall(&url, agent, still, gathering).await;
    }
}

/// The engine's options from the config's `[engine]`.
fn engine_options(config: &Config) -> EngineOptions {
    EngineOptions {
        max_parallel: config.engine.max_parallel,
        approvals: ApprovalPolicy::from_config(&config.engine),
        cleanup: config.engine.worktree_cleanup,
        max_worktrees: config.engine.max_worktrees,
        questions: config.engine.question_policy(),
        daily_budget: config.engine.daily_budget,
        transcript_cap: config
            .engine
            .transcript_cap
            .unwrap_or(crate::engine::DEFAULT_TRANSCRIPT_CAP),
        transcript_retention: config.engine.transcript_retention,
        fleets: config.fleets.iter().map(FleetConfig::to_fleet).collect(),
        ..EngineOptions::default()
    }
}

/// The agents with sessions running on their server (see [`left_running`]).
async fn agents_at_work(store: &StoreHandle) -> BTreeSet<AgentName> {
    left_running(store)
        .await
        .into_iter()
        .map(|(agent, _)| agent)
        .collect()
}

/// The agent and server of each remote session the last engine left running.
async fn left_running(store: &StoreHandle) -> Vec<(AgentName, String)> {
    let read = store.read(|txn| {
        let left = crate::store::query::active_sessions(txn)?
            .into_iter()
            .filter_map(|session| Some((session.agent?, session.remote?.server)))
            .collect();
        Ok(left)
    });
    read.await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the sessions left running (fleet members come from their sources only; managed servers are stopped)");
        Vec::new()
    })
}

async fn open_store(db: &Path, socket: &Path) -> Result<StoreHandle, HostError> {
    let path = db.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || Store::open(&path, StoreOptions::default()))
        .await
        .map_err(|e| StoreError::Io {
            path: db.to_path_buf(),
            detail: format!("the open did not finish: {e}"),
        })?;
    match opened {
        Err(StoreError::Locked { .. }) if control::is_running(socket) => {
            Err(HostError::AlreadyRunning {
                db: db.to_path_buf(),
                socket: socket.to_path_buf(),
            })
        }
        other => Ok(other?),
    }
}
