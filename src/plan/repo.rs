//! Where a plan may work: its `repo` must be a directory that is there and can be read, and
//! not the whole file system or a home directory, where a session could edit everything.
//! Checked when a plan file is loaded and again just before the engine queues the plan.

use std::path::{Path, PathBuf};

use super::PlanError;
use crate::text::shown;

/// Why `dir` is too wide to work in: the file system's root or the user's home directory.
pub(crate) fn too_wide(dir: &Path) -> Option<&'static str> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|home| home.canonicalize().ok());
    if dir.parent().is_none() {
        Some("the root of the file system")
    } else if home.is_some_and(|home| home == dir) {
        Some("your home directory")
    } else {
        None
    }
}

/// What is wrong with `repo` (resolved) as the directory a plan works in, as an error at `at`
/// (the `repo` value) in the plan file `plan`.
pub(super) fn check(plan: &Path, at: (usize, usize), repo: &Path) -> Option<PlanError> {
    let named = shown(&repo.display().to_string());
    let elsewhere = "point `repo` at the project's directory (a relative `repo` is relative to the plan file's directory)";
    let (message, hint) = match std::fs::metadata(repo) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => (
            format!("repo {named} does not exist"),
            elsewhere.to_string(),
        ),
        Err(err) => (
            format!("cannot read repo {named}: {err}"),
            "check the path and its permissions".into(),
        ),
        Ok(meta) if !meta.is_dir() => (
            format!("repo {named} is not a directory"),
            elsewhere.to_string(),
        ),
        Ok(_) => match (std::fs::read_dir(repo), too_wide(repo)) {
            (Err(err), _) => (
                format!("cannot read repo {named}: {err}"),
                "check the directory's permissions".into(),
            ),
            (Ok(_), Some(why)) => (
                format!(
                    "repo {named} is not a project: it is {why}, and a session there could edit everything below it"
                ),
                elsewhere.to_string(),
            ),
            (Ok(_), None) => return None,
        },
    };
    Some(
        PlanError::new(plan, at, message)
            .at_field("repo")
            .with_hint(Some(hint)),
    )
}
