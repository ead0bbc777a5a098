//! ocio, the OpenCode Industrial Orchestrator: a terminal control room that runs many OpenCode
//! coding sessions in parallel and lets one person see and steer them.
//!
//! `domain` holds the pure rules, `store` the durable state, `config` and `paths` where things
//! live and how they are set, `logging` the log file; `opencode` talks to OpenCode servers and
//! `scripted` is the project's own scripted OpenAI-compatible model; `host` starts the engine
//! with its control socket (`control`) and Prometheus metrics (`metrics`); `cli` is the front
//! door, `tui` the control room, and `narration` the one wording of engine events they share.
//! The engine side never imports a UI crate.

pub mod cli;
pub mod config;
pub mod control;
pub mod domain;
pub mod engine;
pub mod host;
pub(crate) mod logging;
pub(crate) mod metrics;
pub mod narration;
pub mod notify;
pub mod opencode;
pub mod paths;
pub mod plan;
pub mod scripted;
pub mod store;
mod text;
pub mod timeline;
pub mod tui;
pub mod workspace;
