//! A small disk that can be filled: a tmpfs mounted in a private mount namespace
//! (`unshare -m`) kept alive by a holder process; commands run inside it through `nsenter`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A tmpfs on `dir`, seen only inside the mount namespace of `holder`.
pub struct SmallDisk {
    holder: Child,
    dir: PathBuf,
}

impl SmallDisk {
    /// `None` when this machine cannot make mount namespaces (not root, no util-linux).
    pub fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let script =
            format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && echo mounted && exec sleep 600");
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .ok()?;
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let _ = holder.wait();
            return None;
        }
        Some(SmallDisk {
            holder,
            dir: dir.to_path_buf(),
        })
    }

    /// `command`, run inside the namespace that sees the tmpfs.
    pub fn inside(&self, command: &Command) -> Command {
        let mut inner = Command::new("nsenter");
        inner
            .args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => inner.env(key, value),
                None => inner.env_remove(key),
            };
        }
        inner
    }

    pub fn shell(&self, script: &str) -> std::process::Output {
        let mut sh = Command::new("sh");
        sh.args(["-c", script]).arg(&self.dir);
        self.inside(&sh).output().unwrap()
    }

    /// Write a filler file until the tmpfs has no space left.
    pub fn fill(&self) {
        let out = self.shell("dd if=/dev/zero of=\"$0/filler\" bs=4k 2>&1; df -k \"$0\"");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("No space left on device"),
            "the filler should fill the disk: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    pub fn free(&self) {
        let out = self.shell("rm \"$0/filler\"");
        assert!(
            out.status.success(),
            "rm filler: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl SmallDisk {
    /// The holder's pid: `nsenter -t PID -m` enters the namespace that sees the tmpfs.
    pub fn holder_pid(&self) -> u32 {
        self.holder.id()
    }
}
