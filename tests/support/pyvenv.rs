//! Python tools for tests: a virtual environment under `target/` with pinned PyPI packages, made
//! from the machine's `python3` the first time a test needs it, once, even when many test
//! processes ask at the same moment.
//!
//! As in `install.rs`, an exclusive file lock serializes the makers. A venv cannot be moved
//! (its scripts name its path), so instead of a staged rename it is made in place and a marker
//! naming its packages is renamed into it last: a venv without the marker (an interrupted
//! install) is thrown away and made again. `OCIO_TEST_PYTHON=/path/to/python` (a Python that
//! has the packages already) skips all of this.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `python` of the venv `name` holding `packages` (pip requirements, pinned: `pkg==1.2.3`).
/// Panics saying what to install when it cannot be made (no python3, no venv module, no PyPI).
pub fn python(name: &str, packages: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os("OCIO_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("pyvenv")
        .join(name);
    make(&dir, packages).unwrap_or_else(|e| {
        panic!(
            "making a Python venv with {packages} for the tests failed: {e}\n\
             hint: the tests need python3 with its venv module and pip (Debian: python3-venv), \
             and PyPI once; or make one yourself, `python3 -m venv DIR && DIR/bin/pip install \
             {packages}`, and set OCIO_TEST_PYTHON=DIR/bin/python",
            packages = packages.join(" ")
        )
    })
}

fn make(dir: &Path, packages: &[&str]) -> Result<PathBuf, String> {
    let python = dir.join("bin/python");
    let marker = dir.join("ocio-packages.txt");
    let wanted = packages.join("\n");
    let complete = || fs::read_to_string(&marker).is_ok_and(|have| have == wanted);
    if complete() {
        return Ok(python);
    }
    let parent = dir.parent().ok_or("the venv has no parent directory")?;
    fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    let name = dir.file_name().ok_or("the venv has no name")?;
    let lock_path = parent.join(format!("{}.lock", name.to_string_lossy()));
    let lock =
        File::create(&lock_path).map_err(|e| format!("create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if complete() {
        return Ok(python); // another test process made it while we waited
    }
    let _ = fs::remove_dir_all(dir);
    eprintln!(
        "making a Python venv with {} in {} (once)",
        packages.join(" "),
        dir.display()
    );
    run(Command::new("python3").args(["-m", "venv"]).arg(dir))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--retries=1",
            "--timeout=30",
        ])
        .args(packages))?;
    let staged = dir.join("ocio-packages.txt.partial");
    fs::write(&staged, &wanted).map_err(|e| format!("write {}: {e}", staged.display()))?;
    fs::rename(&staged, &marker).map_err(|e| format!("write {}: {e}", marker.display()))?;
    drop(lock);
    Ok(python)
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|e| format!("run {shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown} exited with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
