//! The plan's `setup` on a build box: the commands that made ocio's worktree of the attempt
//! ready (installing dependencies, say) run again in the box's worktree, where the session
//! works, with the environment they get in ocio's (`OCIO_WORKTREE` the box's directory).
//!
//! A command travels base64-encoded and runs from a file with `sh`: OpenCode expands a `$(...)`
//! in a shell command itself before running it (in the wrong directory), and the command is the
//! user's, so it is never part of the script's own text.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;

use super::{BoxError, BoxWorkspace, DONE, quoted};
use crate::engine::runner::Setup;
use crate::workspace::carry;

/// How long one `setup` command may run (as in ocio's worktree).
const SETUP_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The most of a failed command's output quoted.
const OUTPUT_TAIL: usize = 4000;

/// Who the commands are for (their environment).
pub struct SetupFor<'a> {
    pub plan: &'a str,
    pub task: &'a str,
    pub attempt: u32,
}

impl BoxWorkspace {
    /// Runs `commands` in order in the box's worktree `dir` of `local`, once: a worktree set up
    /// before a restart is not set up again. A command that fails, or that changes tracked
    /// files (they would come back as the task's work), fails the attempt.
    pub(crate) async fn set_up(
        &self,
        local: &Path,
        dir: &str,
        setup: &Setup,
        who: &SetupFor<'_>,
    ) -> Result<(), BoxError> {
        let commands = &setup.commands;
        if commands.is_empty() && setup.copy.is_empty() {
            return Ok(());
        }
        let root = self.root().await?;
        let name = Self::name_of(local);
        let outbox = format!("{root}/outbox");
        let ready = quoted(&format!("{outbox}/{name}.ready"));
        let done = self
            .script(
                "looking at the box's setup",
                &format!("if [ -e {ready} ]; then echo READY; fi; echo {DONE}"),
            )
            .await?;
        if done.lines().any(|line| line.trim() == "READY") {
            return Ok(());
        }
        self.copy_ignored(local, dir, &setup.copy).await?;
        for (index, command) in commands.iter().enumerate() {
            let script = command_script(&outbox, &name, dir, (index, command), who);
            let output = self
                .script_within("running the plan's setup", &script, Some(SETUP_LIMIT))
                .await?;
            if let Some(failed) = failure(&output) {
                return Err(BoxError::Setup(format!("`{command}` {failed}")));
            }
        }
        self.script(
            "noting the box's setup",
            &format!("touch {ready}; echo {DONE}"),
        )
        .await?;
        Ok(())
    }

    /// The git-ignored `paths` the plan's `copy` brought into ocio's worktree `local`, into
    /// the box's worktree `dir` (a tar, in parts through the inbox).
    async fn copy_ignored(
        &self,
        local: &Path,
        dir: &str,
        paths: &[String],
    ) -> Result<(), BoxError> {
        let part_bytes = self.part_bytes;
        let parcel = super::blocking({
            let (local, paths) = (local.to_path_buf(), paths.to_vec());
            move || carry::parcel_of_ignored(&local, &paths, part_bytes)
        })
        .await?;
        let Some(parcel) = parcel else {
            return Ok(());
        };
        tracing::info!(
            server = self.client.base_url(),
            bytes = parcel.bytes,
            parts = parcel.parts(),
            "sending the plan's copy to a build box"
        );
        let inbox = format!("{}/inbox", self.root().await?);
        let parcel = self.deliver(&inbox, parcel).await?;
        let script = format!(
            "set -e; {joined}; tar -xf {file} -C {dir}; rm -f {file}; echo {DONE}",
            joined = super::joined(&inbox, &parcel),
            file = quoted(&parcel.name),
            dir = quoted(dir),
        );
        self.script("unpacking the plan's copy in the box's worktree", &script)
            .await?;
        Ok(())
    }
}

/// The script that runs the setup's `index`-th `command` in `dir` and says how it went. One
/// run of the worktree's setup at a time: a run the last ocio left going (killed mid-setup,
/// its script goes on on the box) is waited for, and a command it finished is not run again
/// (hand trial: after a `kill -9` the setup ran twice at once in one worktree).
///
/// OpenCode runs a shell command as `eval "<the command>"`: the outer shell expands every `$`
/// in it first. So what uses shell variables (the lock's wait) travels base64-encoded and runs
/// from a file with `sh`, as the user's command does; the command itself is never part of any
/// script's text.
fn command_script(
    outbox: &str,
    name: &str,
    dir: &str,
    (index, command): (usize, &str),
    who: &SetupFor<'_>,
) -> String {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let file = quoted(&format!("{outbox}/{name}.setup.sh"));
    let log = quoted(&format!("{outbox}/{name}.setup.log"));
    let lock = quoted(&format!("{outbox}/{name}.setup.lock"));
    let ok = quoted(&format!("{outbox}/{name}.setup.{index}.ok"));
    let runner = quoted(&format!("{outbox}/{name}.setup-run.sh"));
    let run = format!(
        "cd {dir} || exit 1
export OCIO_PLAN={plan} OCIO_TASK={task} OCIO_ATTEMPT={attempt} OCIO_WORKTREE={dir}
waited=
while ! mkdir {lock} 2>/dev/null; do
  holder=
  read holder < {lock}/pid 2>/dev/null
  if [ -n \"$holder\" ] && kill -0 \"$holder\" 2>/dev/null; then sleep 1
  elif [ -z \"$holder\" ] && [ ${{#waited}} -lt 5 ]; then waited=\"$waited.\"; sleep 1
  else rm -rf {lock}; fi
done
echo $$ > {lock}/pid
if [ -e {ok} ]; then echo SETUP-OK
else
  printf %s '{encoded}' | base64 -d > {file}
  if sh {file} > {log} 2>&1; then
    if git diff --no-ext-diff --quiet; then : > {ok}; echo SETUP-OK
    else echo SETUP-CHANGED; git diff --no-ext-diff --name-only; fi
  else echo SETUP-FAILED; tail -c {OUTPUT_TAIL} {log}; fi
fi
rm -rf {lock}
",
        dir = quoted(dir),
        plan = quoted(who.plan),
        task = quoted(who.task),
        attempt = who.attempt,
        encoded = b64(command),
    );
    format!(
        "printf %s '{run}' | base64 -d > {runner}; sh {runner}; echo {DONE}",
        run = b64(&run)
    )
}

/// Why a command's run failed, from its script's output; `None` when it passed.
fn failure(output: &str) -> Option<String> {
    let mut lines = output.lines();
    for line in lines.by_ref() {
        match line.trim() {
            "SETUP-OK" => return None,
            "SETUP-FAILED" => {
                let said = rest(lines);
                return Some(format!("failed:\n{said}"));
            }
            "SETUP-CHANGED" => {
                let files = rest(lines).lines().collect::<Vec<_>>().join(", ");
                return Some(format!(
                    "changed tracked files, which would come back as the task's work: {files}\nhint: make setup leave them as they are (e.g. `npm ci` rather than `npm install`)"
                ));
            }
            _ => {}
        }
    }
    Some("never said how it went".into())
}

/// What follows, up to the end marker.
fn rest<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    lines
        .take_while(|line| line.trim() != DONE)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commands_outcome_is_read_from_its_scripts_output() {
        assert_eq!(failure("SETUP-OK\nOCIO-BOX-DONE"), None);
        assert_eq!(
            failure("SETUP-FAILED\nnpm ERR! missing\nOCIO-BOX-DONE").as_deref(),
            Some("failed:\nnpm ERR! missing")
        );
        let changed = failure("SETUP-CHANGED\npackage-lock.json\nsrc/a.rs\nOCIO-BOX-DONE");
        assert!(
            changed
                .as_deref()
                .is_some_and(|c| c.contains("package-lock.json, src/a.rs")),
            "{changed:?}"
        );
        assert!(failure("OCIO-BOX-DONE").is_some(), "no word is a failure");
    }

    #[test]
    fn the_users_command_never_appears_in_the_script_itself() {
        let who = SetupFor {
            plan: "p",
            task: "t",
            attempt: 2,
        };
        let command = "echo $(pwd) > 'x'";
        let script = command_script("/r/outbox", "n", "/r/work/n", (0, command), &who);
        // OpenCode's shell expands every `$` of what it runs before running it.
        assert!(!script.contains('$'), "{script}");
        let run = script
            .split('\'')
            .nth(1)
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .map(|run| String::from_utf8(run).unwrap())
            .unwrap();
        assert!(run.contains("OCIO_ATTEMPT=2"), "{run}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(command);
        assert!(run.contains(&encoded) && !run.contains(command), "{run}");
    }

    /// A setup run the last ocio left going on the box (killed mid-setup) is waited for, and
    /// a command it finished is not run again: two runs of one worktree's setup at once run the
    /// command once (hand trial: it ran twice at once after a `kill -9`). The script as the box
    /// runs it, with `sh` here.
    #[test]
    fn two_runs_of_one_worktrees_setup_run_each_command_once() {
        let root = tempfile::tempdir().unwrap();
        let (outbox, dir) = (root.path().join("outbox"), root.path().join("work"));
        std::fs::create_dir_all(&outbox).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(git.success());
        let log = root.path().join("ran.log");
        let command = format!(
            "echo start >> '{0}'; sleep 1; echo end >> '{0}'",
            log.display()
        );
        let who = SetupFor {
            plan: "p",
            task: "t",
            attempt: 1,
        };
        let script = command_script(
            outbox.to_str().unwrap(),
            "n",
            dir.to_str().unwrap(),
            (0, &command),
            &who,
        );
        // As OpenCode runs a shell command: `eval` of it in double quotes (`$` expanded first).
        let as_opencode = format!("eval {}", serde_json::to_string(&script).unwrap());
        let run = || {
            std::process::Command::new("bash")
                .args(["-c", &as_opencode])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let first = run();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let second = run();
        for child in [first, second] {
            let out = child.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(failure(&said), None, "{said}");
        }
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "start\nend\n");
        let again = run().wait_with_output().unwrap();
        assert_eq!(failure(&String::from_utf8_lossy(&again.stdout)), None);
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "start\nend\n",
            "done before: not run again"
        );
        // A lock whose holder is gone (the box restarted) is taken over, not waited on for good.
        let lock = outbox.join("n.setup.lock");
        std::fs::create_dir(&lock).unwrap();
        std::fs::write(lock.join("pid"), "999999999\n").unwrap();
        let mut stale = run();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stale.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > until {
                let _ = stale.kill();
                panic!("waited on a lock whose holder is gone");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!lock.exists());
    }
}
