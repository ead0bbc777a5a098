//! How far a task worktree's `setup` got, noted in the worktree's own git directory
//! (`.git/worktrees/<name>`: never part of its tree, gone with it): the process group of a
//! command running now, and each command that finished. A setup a killed ocio left running
//! (its shell goes on, reparented) is waited for in its own attempt's worktree, where what it
//! finished is not run again, and stopped when its worktree is removed or a later attempt of
//! the task begins: after a `kill -9`, a second setup ran at once beside the first (hand trial).

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The marks of one worktree's setup.
pub(crate) struct SetupMarks {
    dir: PathBuf,
    /// The worktree the setup runs in (its commands' working directory).
    worktree: PathBuf,
}

impl SetupMarks {
    /// The marks of the setup of `worktree`, kept in `git_dir`, its own git directory.
    pub(crate) fn in_git_dir(git_dir: PathBuf, worktree: &Path) -> Self {
        Self {
            dir: git_dir,
            worktree: worktree
                .canonicalize()
                .unwrap_or_else(|_| worktree.to_path_buf()),
        }
    }

    /// Where the running command's shell notes its pid (its process group's).
    pub(crate) fn pid(&self) -> PathBuf {
        self.dir.join("ocio-setup.pid")
    }

    fn ok(&self, index: usize) -> PathBuf {
        self.dir.join(format!("ocio-setup-{index}.ok"))
    }

    /// Whether command `index` of the setup finished (by this ocio or one before).
    pub(crate) fn finished(&self, index: usize) -> bool {
        self.ok(index).exists()
    }

    /// The shell (and process group) of a setup command left running here, if one lives: the
    /// process the pid file names leads its own process group and works in this worktree (a
    /// pid file a killed ocio left names, after a reboot, any process at all).
    pub(crate) fn left_running(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.pid()).ok()?;
        let pid = text.trim().parse::<i32>().ok().filter(|pid| *pid > 0)?;
        kill(Pid::from_raw(pid), None).ok()?;
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        (leads_its_group(pid) && cwd == self.worktree).then_some(pid)
    }

    /// Stops a setup command left running here, its whole process group.
    pub(crate) fn stop_left(&self) {
        if let Some(pid) = self.left_running() {
            tracing::info!(pid, dir = %self.dir.display(), "stopping a setup a killed ocio left running");
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Command `index`, `command`, as run with `sh -c`: from a file (the user's text is never
    /// part of the script's own), its shell's pid noted first and its success after.
    pub(crate) fn wrapped(&self, index: usize, command: &str) -> std::io::Result<String> {
        let file = self.dir.join(format!("ocio-setup-{index}.sh"));
        std::fs::write(&file, command)?;
        Ok(format!(
            "echo $$ > {pid}; sh {file}; ran=$?; [ $ran -ne 0 ] || : > {ok}; rm -f {pid}; exit $ran",
            pid = quoted(&self.pid()),
            file = quoted(&file),
            ok = quoted(&self.ok(index)),
        ))
    }
}

/// Whether process `pid` leads its process group (its `/proc/PID/stat` says so).
fn leads_its_group(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // After the command's name, in parentheses: state, parent, process group.
    let fields = stat.rsplit_once(')').map(|(_, rest)| rest);
    fields
        .and_then(|rest| rest.split_whitespace().nth(2))
        .and_then(|group| group.parse::<i32>().ok())
        == Some(pid)
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::SetupMarks;

    /// A command run as wrapped notes its shell while it runs and its success after: a setup a
    /// killed ocio left running is seen alive, then finished (not to be run again), and one
    /// stopped is stopped with its children.
    #[test]
    fn a_wrapped_command_is_seen_running_then_finished_and_can_be_stopped() {
        use std::os::unix::process::CommandExt as _;
        let dir = tempfile::tempdir().unwrap();
        let worktree = dir.path().join("worktree");
        std::fs::create_dir(&worktree).unwrap();
        let marks = SetupMarks::in_git_dir(dir.path().to_path_buf(), &worktree);
        let run = |index: usize, command: &str| {
            std::process::Command::new("sh")
                .args(["-c", &marks.wrapped(index, command).unwrap()])
                .current_dir(&worktree)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let mut quick = run(0, "sleep 0.5");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while marks.left_running().is_none() {
            assert!(std::time::Instant::now() < until, "never seen running");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!marks.finished(0));
        quick.wait().unwrap();
        assert_eq!(marks.left_running(), None, "its shell ended");
        assert!(!marks.pid().exists(), "and took its pid file with it");
        assert!(marks.finished(0));
        // A pid file naming a live process that is no setup of this worktree (a pid used
        // again after a reboot) names nothing left running.
        std::fs::write(marks.pid(), format!("{}\n", std::process::id())).unwrap();
        assert_eq!(marks.left_running(), None);
        std::fs::remove_file(marks.pid()).unwrap();

        let out = dir.path().join("after");
        let mut slow = run(1, &format!("sleep 2; touch '{}'", out.display()));
        while marks.left_running().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        marks.stop_left();
        slow.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2500));
        assert!(!out.exists(), "its child was stopped with it");
        assert!(!marks.finished(1));
    }
}
