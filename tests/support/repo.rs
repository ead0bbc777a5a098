//! A real, throwaway git repository for a test, with one commit so worktrees and diffs work.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestRepo {
    dir: tempfile::TempDir,
}

impl TestRepo {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ocio-repo-")
            .tempdir()
            .unwrap();
        let repo = Self { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "test@ocio.invalid"]);
        repo.git(&["config", "user.name", "ocio test"]);
        std::fs::write(repo.path().join("README.md"), "# test repo\n").unwrap();
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    /// The canonical path (the server reports directories canonicalized).
    pub fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    pub fn dir_str(&self) -> String {
        self.path().to_string_lossy().into_owned()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `git args` succeeds (a question to git, such as `merge-base --is-ancestor`).
    pub fn git_ok(&self, args: &[&str]) -> bool {
        Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .status()
            .unwrap()
            .success()
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(self.path().join(rel)).ok()
    }
}
