//! Opening a pull request for a pushed plan with the forge's own command line: `gh pr create`,
//! or `glab mr create` where only glab is installed. Runs in the plan's repository, never
//! prompts, and keeps what the tool printed on stderr for the error. Blocking.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Opens a pull request from `head` into `base`; its URL (the last line of the tool's output
/// that looks like one). `path` is where the tools are looked for and the PATH they run with
/// (`None`: this process's).
pub(super) fn open(
    repo: &Path,
    path: Option<&OsStr>,
    base: &str,
    head: &str,
    title: &str,
    body: &str,
) -> Result<String, String> {
    let path: Option<OsString> = path
        .map(OsStr::to_os_string)
        .or_else(|| std::env::var_os("PATH"));
    let (tool, args) = if let Some(gh) = find("gh", path.as_deref()) {
        let args = [
            "pr", "create", "--base", base, "--head", head, "--title", title, "--body", body,
        ];
        (gh, args.map(str::to_string).to_vec())
    } else if let Some(glab) = find("glab", path.as_deref()) {
        let args = [
            "mr",
            "create",
            "--target-branch",
            base,
            "--source-branch",
            head,
            "--title",
            title,
            "--description",
            body,
            "--yes",
        ];
        (glab, args.map(str::to_string).to_vec())
    } else {
        return Err(
            "the branch was pushed, but neither `gh` nor `glab` is on PATH to open a pull request\nhint: install GitHub's `gh` (or GitLab's `glab`) and log in, or open it in the browser; `ocio land --pr` again is safe".into(),
        );
    };
    let mut command = Command::new(&tool);
    command
        .args(&args)
        .current_dir(repo)
        .env("GH_PROMPT_DISABLED", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    if let Some(path) = &path {
        command.env("PATH", path);
    }
    let name = tool.display();
    let output = command
        .output()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{name} could not open the pull request ({}): {}\nhint: the branch was pushed; run the same in {} to see more",
            output.status,
            crate::text::clip(stderr.trim(), 2000),
            repo.display()
        ));
    }
    stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with("https://") || line.starts_with("http://"))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "{name} printed no pull request URL: {}",
                crate::text::clip(stdout.trim(), 500)
            )
        })
}

/// The executable `name` in the directories of `path`.
fn find(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|file| is_executable(file))
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
