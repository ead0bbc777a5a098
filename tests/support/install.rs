//! The pinned OpenCode server for tests: installed from npm into a cache under `target/` the
//! first time a test needs it, once, even when many test processes ask at the same moment.
//!
//! An exclusive file lock serializes installers; the install goes to a staging directory that is
//! renamed into place only when complete, so an interrupted install never looks finished.
//! `OCIO_TEST_OPENCODE=/path/to/opencode` skips all of this.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const OPENCODE_VERSION: &str = ocio::opencode::OPENCODE_VERSION;

/// The `opencode` executable for tests.
pub fn opencode_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("OCIO_TEST_OPENCODE") {
            return PathBuf::from(path);
        }
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("opencode-ai");
        install(&cache).unwrap_or_else(|e| panic!("installing opencode-ai@{OPENCODE_VERSION} for the tests failed: {e}\nhint: the tests need node and npm on PATH (and registry access once); or set OCIO_TEST_OPENCODE to an opencode {OPENCODE_VERSION} binary"))
    })
    .clone()
}

fn install(cache: &Path) -> Result<PathBuf, String> {
    let target = cache.join(OPENCODE_VERSION);
    let bin = target.join("node_modules/.bin/opencode");
    if bin.is_file() {
        return Ok(bin);
    }
    fs::create_dir_all(cache).map_err(|e| format!("create {}: {e}", cache.display()))?;
    let lock_path = cache.join(format!("{OPENCODE_VERSION}.lock"));
    let lock =
        File::create(&lock_path).map_err(|e| format!("create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if bin.is_file() {
        return Ok(bin); // another test process finished it while we waited
    }
    let staging = cache.join(format!("{OPENCODE_VERSION}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let _ = fs::remove_dir_all(&target);
    eprintln!(
        "installing opencode-ai@{OPENCODE_VERSION} into {} (once)",
        target.display()
    );
    let out = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&staging)
        .arg(format!("opencode-ai@{OPENCODE_VERSION}"))
        .output()
        .map_err(|e| format!("run npm: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&staging);
        return Err(format!(
            "npm install exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let version = Command::new(staging.join("node_modules/.bin/opencode"))
        .arg("--version")
        .output()
        .map_err(|e| format!("run the installed opencode: {e}"))?;
    let reported = String::from_utf8_lossy(&version.stdout);
    if reported.trim() != OPENCODE_VERSION {
        return Err(format!("installed opencode reports version {reported:?}"));
    }
    fs::rename(&staging, &target).map_err(|e| format!("move the install into place: {e}"))?;
    drop(lock);
    Ok(bin)
}
