//! The files a config names, checked when it is loaded rather than when an agent first needs
//! them: an agent's `ca_cert` must be a file ocio can read, its `opencode_path` a file it may
//! run (which is all starting a managed server asks of it).

use std::path::Path;

use super::Config;
use super::validate::{Problem, agent_key, entry_key, problem};
use crate::text::shown;

/// Every named file that is not there or cannot be read. `ca_cert` paths are already resolved
/// against the config file's directory.
pub(super) fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, agent) in config.agents.iter().enumerate() {
        if let Some(ca) = &agent.ca_cert
            && let Some(why) = not_a_file(ca, true)
        {
            problems.push(
                problem(agent_key(index, "ca_cert"), format!("ca_cert {why}")).with_hint(
                    "give the PEM file of the server's CA (a relative path is relative to the config file), or remove ca_cert",
                ),
            );
        }
        if let Some(program) = &agent.opencode_path
            && let Some(why) = not_a_file(program, false).or_else(|| not_executable(program))
        {
            problems.push(
                problem(agent_key(index, "opencode_path"), format!("opencode_path {why}"))
                    .with_hint(
                        "point opencode_path at the `opencode` executable (a relative path is relative to the config file), or remove it to use the one on PATH",
                    ),
            );
        }
    }
    for (index, fleet) in config.fleets.iter().enumerate() {
        if let Some(ca) = &fleet.ca_cert
            && let Some(why) = not_a_file(ca, true)
        {
            problems.push(
                problem(entry_key("fleets", index, "ca_cert"), format!("ca_cert {why}"))
                    .with_hint(
                        "give the PEM file of the members' CA (a relative path is relative to the config file), or remove ca_cert",
                    ),
            );
        }
    }
    problems
}

/// Why the file at `path` cannot be run, or `None` when someone may run it.
fn not_executable(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o111 == 0).then(|| {
        format!(
            "{} is not executable (chmod +x it)",
            shown(&path.display().to_string())
        )
    })
}

/// Why `path` is not a file (one ocio can open, with `read`), or `None` when it is one.
fn not_a_file(path: &Path, read: bool) -> Option<String> {
    let named = shown(&path.display().to_string());
    let meta = if read {
        std::fs::File::open(path).and_then(|file| file.metadata())
    } else {
        std::fs::metadata(path)
    };
    match meta {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{named} does not exist"))
        }
        Err(err) => Some(format!("{named} cannot be read: {err}")),
        Ok(meta) if !meta.is_file() => Some(format!("{named} is not a file")),
        Ok(_) => None,
    }
}
