//! Where ocio keeps things: the config file, the database, the log directory and the runtime
//! directory, resolved from the platform's conventions (XDG on Linux) or explicit overrides.

use std::io;
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

/// The locations ocio reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The TOML config file (it may not exist).
    pub config_file: PathBuf,
    /// Whether the config file was named by the user (`--config` / `OCIO_CONFIG`); a missing
    /// explicit file is an error, a missing default one is not.
    pub config_explicit: bool,
    /// Where durable state lives.
    pub data_dir: PathBuf,
    /// The database file.
    pub db_file: PathBuf,
    /// Where the rotating log files go.
    pub log_dir: PathBuf,
    /// Sockets, pid files and other state that does not outlive the session.
    pub runtime_dir: PathBuf,
}

/// The locations cannot be worked out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathsError {
    #[error(
        "cannot find your home directory to place ocio's files; set HOME, or pass both --db and --config (OCIO_DB and OCIO_CONFIG)"
    )]
    NoHome,
}

/// File name of the config inside the config directory.
pub(crate) const CONFIG_FILE_NAME: &str = "config.toml";
/// File name of the database inside the data directory.
pub(crate) const DB_FILE_NAME: &str = "ocio.redb";

impl Paths {
    /// Resolves every location, taking `config` and `db` as given when set (the CLI maps
    /// `--config`/`OCIO_CONFIG` and `--db`/`OCIO_DB` into them).
    ///
    /// When both are given and the home directory is unknown, the other directories are placed
    /// next to the database.
    pub(crate) fn resolve(
        config: Option<PathBuf>,
        db: Option<PathBuf>,
    ) -> Result<Paths, PathsError> {
        // A relative database path is told (`engine.started`, `ocio status --json`) and used
        // (worktrees beside it) as the absolute path it names here.
        let db = db.map(|db| std::path::absolute(&db).unwrap_or(db));
        match ProjectDirs::from("", "", "ocio") {
            Some(dirs) => Ok(Self::from_project_dirs(&dirs, config, db)),
            None => match (config, db) {
                (Some(config), Some(db)) => Ok(Self::beside_db(config, db)),
                _ => Err(PathsError::NoHome),
            },
        }
    }

    fn from_project_dirs(dirs: &ProjectDirs, config: Option<PathBuf>, db: Option<PathBuf>) -> Self {
        let data_dir = dirs.data_dir().to_path_buf();
        let config_explicit = config.is_some();
        let config_file = config.unwrap_or_else(|| dirs.config_dir().join(CONFIG_FILE_NAME));
        let db_file = db.unwrap_or_else(|| data_dir.join(DB_FILE_NAME));
        let log_dir = match dirs.state_dir() {
            Some(state) => state.to_path_buf(),
            None => dirs.data_local_dir().join("log"),
        };
        let runtime_dir = match dirs.runtime_dir() {
            Some(run) => run.to_path_buf(),
            None => fallback_runtime_dir(&data_dir),
        };
        Self {
            config_file,
            config_explicit,
            data_dir,
            db_file,
            log_dir,
            runtime_dir,
        }
    }

    /// Every location derived from an explicit database path, for when there is no home.
    fn beside_db(config: PathBuf, db: PathBuf) -> Self {
        let data_dir = match db.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self {
            config_file: config,
            config_explicit: true,
            log_dir: data_dir.join("log"),
            runtime_dir: fallback_runtime_dir(&data_dir),
            db_file: db,
            data_dir,
        }
    }
}

/// Where the engine makes task worktrees for the database at `db`: `worktrees` beside it. `ocio
/// check` probes there whether a server sees ocio's files.
pub fn worktree_root(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join("worktrees")
}

/// Where the engine for the database at `db` records the managed servers it started, so that
/// the next one adopts those still running: `servers/<database file name>` beside it (two
/// databases in one directory have engines of their own, which must not take each other's).
pub fn server_records(db: &Path) -> PathBuf {
    let name = db.file_name().unwrap_or(db.as_os_str());
    db.parent()
        .unwrap_or(Path::new("."))
        .join("servers")
        .join(name)
}

/// Where the runtime directory goes when the platform names none (no `XDG_RUNTIME_DIR`):
/// `/tmp/ocio-<uid>`, short enough for socket paths, or under the data directory when the
/// user id cannot be found.
fn fallback_runtime_dir(data_dir: &Path) -> PathBuf {
    match current_uid() {
        Ok(uid) => std::env::temp_dir().join(format!("ocio-{uid}")),
        Err(_) => data_dir.join("run"),
    }
}

/// The id of the user this process runs as: the owner of `/proc/self`.
fn current_uid() -> io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid())
}

impl Paths {
    /// The control socket of the engine that owns this database: in the runtime directory,
    /// named after the database's absolute path so two databases never share a socket.
    pub fn socket_file(&self) -> PathBuf {
        let db = std::fs::canonicalize(&self.db_file)
            .or_else(|_| std::path::absolute(&self.db_file))
            .unwrap_or_else(|_| self.db_file.clone());
        let hash = fnv1a(db.as_os_str().as_encoded_bytes());
        self.runtime_dir.join(format!("ocio-{hash:016x}.sock"))
    }
}

/// FNV-1a, 64 bits: stable across builds and Rust releases (unlike `DefaultHasher`), so every
/// ocio finds the same socket for the same database.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Makes sure `dir` (for the control socket) exists and only this user can enter it: created
/// 0700 when missing; an existing one must belong to this user and be closed to others.
pub(crate) fn ensure_socket_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    ensure_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    let ours = current_uid().map_or(true, |uid| uid == meta.uid());
    if !ours || mode & 0o077 != 0 {
        return Err(format!(
            "{} is not private to you (owner uid {}, mode {mode:o}), so the control socket cannot go there\n  hint: remove it, or set XDG_RUNTIME_DIR to a directory only you can enter",
            dir.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// Creates `dir` and any missing parents, readable only by the owner (mode 0700 on Unix). A
/// directory that exists already keeps its mode.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_config_and_db_are_taken_as_given() {
        let paths = Paths::resolve(
            Some(PathBuf::from("/tmp/x/my.toml")),
            Some(PathBuf::from("/tmp/y/state.redb")),
        )
        .unwrap();
        assert_eq!(paths.config_file, PathBuf::from("/tmp/x/my.toml"));
        assert!(paths.config_explicit);
        assert_eq!(paths.db_file, PathBuf::from("/tmp/y/state.redb"));
    }

    /// `--db h/h.redb` is told and used as the absolute path it names (it was echoed as given
    /// in `engine.started` and `ocio status --json`, where other places printed it absolute).
    #[test]
    fn a_relative_db_is_taken_as_the_absolute_path_it_names() {
        let paths = Paths::resolve(None, Some(PathBuf::from("h/h.redb"))).unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(paths.db_file, here.join("h/h.redb"));
    }

    #[test]
    fn default_config_is_not_explicit_and_lives_in_the_config_dir() {
        // Needs a home directory; every CI and dev box has one.
        let Ok(paths) = Paths::resolve(None, None) else {
            return;
        };
        assert!(!paths.config_explicit);
        assert!(paths.config_file.ends_with(CONFIG_FILE_NAME));
        assert_eq!(paths.db_file, paths.data_dir.join(DB_FILE_NAME));
        assert!(paths.log_dir.is_absolute());
        assert!(paths.runtime_dir.is_absolute());
    }

    #[test]
    fn without_a_home_both_overrides_are_enough() {
        let paths = Paths::beside_db(
            PathBuf::from("/etc/ocio.toml"),
            PathBuf::from("/srv/ocio/ocio.redb"),
        );
        assert_eq!(paths.data_dir, PathBuf::from("/srv/ocio"));
        assert_eq!(paths.log_dir, PathBuf::from("/srv/ocio/log"));
        assert!(paths.runtime_dir.is_absolute());
        let bare = Paths::beside_db(PathBuf::from("c.toml"), PathBuf::from("db.redb"));
        assert_eq!(bare.data_dir, PathBuf::from("."));
    }

    #[test]
    fn each_database_has_its_own_socket_and_the_name_is_stable() {
        let tmp = tempfile::tempdir().unwrap();
        let at = |db: &str| {
            Paths::beside_db(tmp.path().join("c.toml"), tmp.path().join(db)).socket_file()
        };
        assert_eq!(at("a.redb"), at("a.redb"));
        assert_ne!(at("a.redb"), at("b.redb"));
        let name = at("a.redb")
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("ocio-") && name.ends_with(".sock"),
            "{name}"
        );
        // The published FNV-1a test vector.
        assert_eq!(fnv1a(b"abc"), 0xe71f_a219_0541_574b);
    }

    #[test]
    fn a_socket_dir_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        ensure_socket_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_socket_dir(&dir).unwrap_err();
        assert!(
            err.contains("not private") && err.contains("hint:"),
            "{err}"
        );
    }

    #[test]
    fn no_home_error_says_what_to_do() {
        let text = PathsError::NoHome.to_string();
        assert!(text.contains("set HOME"), "{text}");
        assert!(text.contains("--db") && text.contains("--config"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn private_dir_is_created_with_parents_and_mode_0700() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        ensure_private_dir(&dir).unwrap();
        assert!(dir.is_dir());
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
        // Calling it again is fine.
        ensure_private_dir(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn existing_dir_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{mode:o}");
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(ensure_private_dir(&file).is_err());
    }
}
