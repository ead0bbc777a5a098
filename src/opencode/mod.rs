//! The OpenCode adapter: everything ocio knows about talking to `opencode serve`.
//!
//! `wire` holds the server's JSON shapes (tolerant: unknown fields and types are ignored), `sse`
//! cuts the `/event` byte stream into messages and `event` turns them into typed events.
//! `runner` runs the engine's sessions on a server (the engine's `Runner` for OpenCode), with
//! `live` routing the server's event stream to them and `transcript` turning their events into
//! activity; `planner` asks a server for a plan.

/// The OpenCode version ocio speaks and is tested against (npm `opencode-ai`).
macro_rules! opencode_version {
    () => {
        "1.18.33"
    };
}

/// The OpenCode version ocio speaks and is tested against.
pub const OPENCODE_VERSION: &str = opencode_version!();

/// How to install that OpenCode: every hint that says so (`ocio check`, a managed agent that
/// cannot start, the first-run screen, `m`, `ocio open`) shows this command.
pub const INSTALL_OPENCODE: &str = concat!("npm install -g opencode-ai@", opencode_version!());

pub mod attach;
pub mod boxes;
pub mod breaker;
pub mod client;
mod diagnose;
pub mod endpoint;
pub mod event;
mod event_body;
pub(crate) mod live;
pub mod managed;
pub(crate) mod pace;
pub mod planner;
mod resting;
mod round;
pub mod runner;
pub mod secret;
pub mod sse;
pub mod stream;
pub(crate) mod transcript;
pub mod wire;

#[cfg(test)]
mod install_hint_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::INSTALL_OPENCODE;
    use super::managed::ManagedError;

    /// Every hint that says how to install OpenCode names the pinned version, through
    /// [`INSTALL_OPENCODE`]: no source file but this one (and tests of what the hints say)
    /// spells the package out.
    #[test]
    fn every_install_hint_is_the_pinned_one() {
        assert_eq!(INSTALL_OPENCODE, "npm install -g opencode-ai@1.18.33");
        assert!(
            ManagedError::NotOnPath
                .to_string()
                .contains(INSTALL_OPENCODE)
        );
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut spelled = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && path != src.join("opencode/mod.rs")
                    && !path.to_string_lossy().ends_with("_tests.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        if line.contains("opencode-ai") {
                            spelled.push(format!("{}:{}: {line}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
        assert!(
            spelled.is_empty(),
            "install hints not taken from INSTALL_OPENCODE:\n{}",
            spelled.join("\n")
        );
    }
}
