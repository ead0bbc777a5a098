//! The OpenCode adapter: everything ocio knows about talking to `opencode serve`.
//!
//! `wire` holds the server's JSON shapes (tolerant: unknown fields and types are ignored), `sse`
//! cuts the `/event` byte stream into messages and `event` turns them into typed events.

pub mod breaker;
pub mod client;
pub mod endpoint;
pub mod event;
pub mod managed;
pub mod planner;
pub mod secret;
pub mod sse;
pub mod stream;
pub mod wire;
