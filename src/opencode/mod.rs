//! The OpenCode adapter: everything ocio knows about talking to `opencode serve`.
//!
//! `wire` holds the server's JSON shapes (tolerant: unknown fields and types are ignored), `sse`
//! cuts the `/event` byte stream into messages and `event` turns them into typed events.
//! `runner` runs the engine's sessions on a server (the engine's `Runner` for OpenCode), with
//! `live` routing the server's event stream to them and `transcript` turning their events into
//! activity; `planner` asks a server for a plan.

pub mod attach;
pub mod boxes;
pub mod breaker;
pub mod client;
mod diagnose;
pub mod endpoint;
pub mod event;
pub(crate) mod live;
pub mod managed;
pub(crate) mod pace;
pub mod planner;
pub mod runner;
pub mod secret;
pub mod sse;
pub mod stream;
pub(crate) mod transcript;
pub mod wire;
