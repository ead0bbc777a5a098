//! `[[fleets]]` while ocio runs: a roster per fleet, and a watcher task that reads the fleet's
//! source every `refresh`. A new member joins once its server answers healthy; a member that
//! left is drained (no new work) and removed once its sessions have ended, so no running work
//! is lost; a source that cannot be read keeps the members the fleet has.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use crate::config::{AgentConfig, FleetConfig};
use crate::domain::AgentName;
use crate::engine::EngineEvent;

pub(crate) use super::fleet_source::{SourceError, read};

/// Where a member of the roster stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// An agent of the engine, taking work.
    Joined,
    /// No longer listed: drained, removed once its sessions have ended.
    Leaving,
}

/// What removing a leaving member came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// It is no agent of the engine any more.
    Gone,
    /// It still runs this many sessions.
    Busy(u32),
}

/// The engine as a fleet sees it: the running engine, or the agents gathered before it starts.
pub(crate) trait Crew: Sync {
    /// Whether the server at `member`'s URL answers `GET /global/health` healthy.
    fn healthy(&self, member: &AgentConfig) -> impl Future<Output = Result<(), String>> + Send;
    /// Make `member` an agent.
    fn join(&self, member: &AgentConfig) -> impl Future<Output = Result<(), String>> + Send;
    /// Stop giving agent `name` new work (`true`), or give it work again.
    fn drain(
        &self,
        name: &AgentName,
        drain: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Remove agent `name` if it runs nothing.
    fn remove(&self, name: &AgentName) -> impl Future<Output = Result<Removal, String>> + Send;
    /// Tell the operator what keeps the fleet from growing (a member that cannot join, a
    /// source that cannot be read).
    fn tell(&self, event: EngineEvent) -> impl Future<Output = ()> + Send;
}

/// A fleet's members by URL.
pub(crate) struct Roster {
    fleet: FleetConfig,
    members: BTreeMap<String, Standing>,
    /// What the operator was told of listed members that could not join, by URL.
    waiting: BTreeMap<String, Told>,
    /// What the operator was told of the source failing since it was last read.
    unread: Option<Told>,
}

/// The reasons a member could not join (or a source could not be read) that were told, by
/// their shape (each run of four or more letters and digits with a digit in it counted alike:
/// a request id, a port; an exit status stays itself), and when the last few were. A reason of
/// a new shape is told at once, one of a shape told before never again; at most [`BURST`] in
/// [`TELL_GAP`], so reasons that change at every read cannot flood the events.
#[derive(Default)]
struct Told {
    shapes: Vec<String>,
    /// When the last (up to [`BURST`]) were told, oldest first.
    recent: std::collections::VecDeque<tokio::time::Instant>,
}

impl Told {
    /// Whether `why` is to be told now; if so, it counts as told.
    fn tells(&mut self, why: &str) -> bool {
        let now = tokio::time::Instant::now();
        let shape = shape(why);
        let crowded = self.recent.len() >= BURST
            && self.recent.front().is_some_and(|at| now - *at < TELL_GAP);
        if self.shapes.contains(&shape) || crowded {
            return false;
        }
        self.shapes.push(shape);
        if self.shapes.len() > REASONS {
            self.shapes.remove(0);
        }
        self.recent.push_back(now);
        if self.recent.len() > BURST {
            self.recent.pop_front();
        }
        true
    }

    /// When the last reason was told, if any was.
    fn last(&self) -> Option<tokio::time::Instant> {
        self.recent.back().copied()
    }
}

/// `why` with each run of four or more letters and digits that has a digit in it as `#`.
fn shape(why: &str) -> String {
    let mut shaped = String::with_capacity(why.len());
    let mut word = String::new();
    let flush = |word: &mut String, shaped: &mut String| {
        if word.len() >= 4 && word.chars().any(|c| c.is_ascii_digit()) {
            shaped.push('#');
        } else {
            shaped.push_str(word);
        }
        word.clear();
    };
    for c in why.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut shaped);
            shaped.push(c);
        }
    }
    flush(&mut word, &mut shaped);
    shaped
}

/// At most this many reasons are told per member (or source) in [`TELL_GAP`].
const BURST: usize = 3;
const TELL_GAP: Duration = Duration::from_secs(60);
/// The most reasons remembered per member (the oldest are forgotten).
const REASONS: usize = 8;
/// How long what was told of a member no longer listed is remembered: one that comes and goes
/// (a DNS name's addresses) is not told again each time it comes back.
const FORGET: Duration = Duration::from_secs(60 * 60);

impl Roster {
    pub(crate) fn new(fleet: FleetConfig) -> Self {
        Self {
            fleet,
            members: BTreeMap::new(),
            waiting: BTreeMap::new(),
            unread: None,
        }
    }

    pub(crate) fn fleet(&self) -> &FleetConfig {
        &self.fleet
    }

    /// Each member's URL and standing.
    #[cfg(test)]
    pub(crate) fn members(&self) -> &BTreeMap<String, Standing> {
        &self.members
    }

    /// One round: bring the members in line with `listed` (what the source says now; an error
    /// keeps them all), then remove the leaving members whose sessions have ended.
    pub(crate) async fn round(
        &mut self,
        listed: Result<Vec<String>, SourceError>,
        crew: &impl Crew,
    ) {
        match listed {
            Ok(urls) => {
                let urls: BTreeSet<String> = urls.into_iter().collect();
                let now = tokio::time::Instant::now();
                self.waiting.retain(|url, told| {
                    urls.contains(url) || told.last().is_some_and(|at| now - at < FORGET)
                });
                let unread_was_told = self.unread.take().is_some_and(|t| t.last().is_some());
                self.leave_or_return(&urls, crew).await;
                self.welcome(&urls, crew).await;
                if unread_was_told {
                    tracing::info!(fleet = %self.fleet.name, listed = urls.len(), "the fleet's members are read again");
                    crew.tell(EngineEvent::FleetSourceRead {
                        fleet: self.fleet.name.clone(),
                        listed: urls.len(),
                    })
                    .await;
                }
            }
            Err(e) => self.unreadable(e.to_string(), crew).await,
        }
        self.settle(crew).await;
    }

    /// Take in again the member at `url`, called `agent`, on which the last engine left
    /// sessions running, whatever the source lists now: their agent must be there for them to
    /// be re-attached (else they are given up and their tasks run again beside them). When
    /// the source no longer lists it (`listed` false) it is drained at once, so it only
    /// finishes those sessions, and leaves once they have ended. `false` when it is not this
    /// fleet's member or is in already.
    pub(crate) async fn recall(
        &mut self,
        url: &str,
        agent: &AgentName,
        listed: bool,
        crew: &impl Crew,
    ) -> bool {
        let known = |u: &String| self.fleet.member_name(u) == *agent;
        if self.fleet.member_name(url) != *agent || self.members.keys().any(known) {
            return false;
        }
        let member = self.fleet.member(url);
        if let Err(e) = crew.join(&member).await {
            tracing::warn!(agent = %agent, error = %e, "a fleet member with sessions left running cannot join again");
            return false;
        }
        let mut standing = Standing::Joined;
        if !listed {
            match crew.drain(agent, true).await {
                Ok(()) => standing = Standing::Leaving,
                Err(e) => tracing::warn!(agent = %agent, error = %e, "cannot drain a fleet member"),
            }
        }
        tracing::info!(fleet = %self.fleet.name, %agent, %url, ?standing, "fleet member taken in again for the sessions it runs");
        self.members.insert(url.to_string(), standing);
        self.waiting.remove(url);
        true
    }

    /// Drain the joined members no longer listed; undrain the leaving ones listed again.
    async fn leave_or_return(&mut self, listed: &BTreeSet<String>, crew: &impl Crew) {
        for (url, standing) in &mut self.members {
            let name = self.fleet.member_name(url);
            let (drain, to) = match (*standing, listed.contains(url)) {
                (Standing::Joined, false) => (true, Standing::Leaving),
                (Standing::Leaving, true) => (false, Standing::Joined),
                _ => continue,
            };
            match crew.drain(&name, drain).await {
                Ok(()) => {
                    tracing::info!(fleet = %self.fleet.name, agent = %name, %url, ?to, "fleet member");
                    *standing = to;
                }
                Err(e) => {
                    tracing::warn!(agent = %name, error = %e, "cannot drain or undrain a fleet member")
                }
            }
        }
    }

    /// Listed members not in the roster join, those whose server answers healthy (the others
    /// are asked again at the next read).
    async fn welcome(&mut self, listed: &BTreeSet<String>, crew: &impl Crew) {
        let new: Vec<(&String, AgentConfig)> = listed
            .iter()
            .filter(|url| !self.members.contains_key(*url))
            .map(|url| (url, self.fleet.member(url)))
            .collect();
        let checks = new.iter().map(|(_, member)| crew.healthy(member));
        let health = futures_util::future::join_all(checks).await;
        for ((url, member), health) in new.iter().zip(health) {
            if let Err(why) = health {
                self.wait(url, why, crew).await;
                continue;
            }
            match crew.join(member).await {
                Ok(()) => {
                    tracing::info!(fleet = %self.fleet.name, agent = %member.name, %url, "fleet member joined");
                    self.members.insert((*url).clone(), Standing::Joined);
                    self.waiting.remove(*url);
                }
                Err(why) => {
                    tracing::warn!(agent = %member.name, error = %why, "fleet member cannot join");
                    self.wait(url, why, crew).await;
                }
            }
        }
    }

    /// The member at `url` cannot join now, because of `why` (it is asked again at the next
    /// read): the operator is told each reason once, at most one every [`TELL_GAP`].
    async fn wait(&mut self, url: &str, why: String, crew: &impl Crew) {
        let told = self.waiting.entry(url.to_string()).or_default();
        if !told.tells(&why) {
            tracing::debug!(%url, error = %why, "fleet member still cannot join");
            return;
        }
        tracing::info!(%url, error = %why, "fleet member cannot join; asked again at each read");
        crew.tell(EngineEvent::FleetMemberWaiting {
            fleet: self.fleet.name.clone(),
            url: url.to_string(),
            why,
        })
        .await;
    }

    /// The source could not be read, because of `why`: the fleet keeps its members, and the
    /// operator is told as of a member that cannot join.
    async fn unreadable(&mut self, why: String, crew: &impl Crew) {
        let kept = self.members.len();
        if !self.unread.get_or_insert_default().tells(&why) {
            tracing::debug!(fleet = %self.fleet.name, error = %why, kept, "the fleet's members still cannot be read");
            return;
        }
        tracing::warn!(fleet = %self.fleet.name, error = %why, kept, "cannot read the fleet's members; keeping those it has");
        crew.tell(EngineEvent::FleetSourceFailed {
            fleet: self.fleet.name.clone(),
            why,
            kept,
        })
        .await;
    }

    /// Remove each leaving member that runs nothing now.
    async fn settle(&mut self, crew: &impl Crew) {
        let leaving: Vec<String> = self
            .members
            .iter()
            .filter(|(_, standing)| **standing == Standing::Leaving)
            .map(|(url, _)| url.clone())
            .collect();
        for url in leaving {
            let name = self.fleet.member_name(&url);
            match crew.remove(&name).await {
                Ok(Removal::Gone) => {
                    tracing::info!(fleet = %self.fleet.name, agent = %name, %url, "fleet member left");
                    self.members.remove(&url);
                }
                Ok(Removal::Busy(running)) => {
                    tracing::debug!(agent = %name, running, "leaving fleet member still runs sessions");
                }
                Err(e) => tracing::warn!(agent = %name, error = %e, "cannot remove a fleet member"),
            }
        }
    }
}

/// The watcher: a round with what `pending` (the start's read of the source, when it had not
/// answered) reads, then a round every `every` reading the source with `read`, until the task
/// is aborted.
pub(crate) async fn watch<C, F, P>(
    mut roster: Roster,
    crew: C,
    pending: Option<P>,
    every: Duration,
    mut read: impl FnMut() -> F,
) where
    C: Crew,
    F: Future<Output = Result<Vec<String>, SourceError>>,
    P: Future<Output = Result<Result<Vec<String>, SourceError>, tokio::task::JoinError>>,
{
    if let Some(pending) = pending {
        let listed = pending
            .await
            .unwrap_or_else(|e| Err(SourceError::Stopped(e.to_string())));
        roster.round(listed, &crew).await;
    }
    let start = tokio::time::Instant::now() + every;
    let mut ticks = tokio::time::interval_at(start, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let listed = read().await;
        roster.round(listed, &crew).await;
    }
}
