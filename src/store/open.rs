//! Opening the database file: refusing what is not ours (not redb, damaged, newer, in use)
//! with an error naming the file and what to do, creating a fresh one private to the user,
//! and bringing an older schema up to date in one transaction.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{
    ConcurrencyMode, Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase,
    ReadableTable, StorageError, TableHandle, WriteTransaction,
};

use super::tables::{META, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use super::{StoreError, StoreOptions, migrate, query};

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    pub path: PathBuf,
    /// The file was created by this open.
    pub created: bool,
    /// The schema version the file had, when it was migrated.
    pub migrated_from: Option<u64>,
    /// The previous process did not close the database (crash or kill); redb rebuilt its
    /// allocator state from the last durable commit.
    pub recovered: bool,
}

pub(super) fn open_writable(
    path: &Path,
    options: &StoreOptions,
) -> Result<(Database, OpenInfo), StoreError> {
    let existing = existing_len(path)?.is_some_and(|len| len > 0);
    if existing {
        // A writable open changes the file's header even if nothing is committed, so decide
        // read-only whether the file is ours. Only a file left by a crash (which a read-only
        // open cannot recover) goes on to the writable open unchecked; it is checked after.
        match probe(path) {
            Ok(_) | Err(Probe::NeedsRecovery) => {}
            Err(Probe::Refused(error)) => return Err(error),
        }
    } else {
        create_private_file(path)?;
    }
    let recovered = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&recovered);
    let mut builder = Database::builder();
    builder
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .set_check_integrity_on_open(options.check_integrity)
        .set_repair_callback(move |session| {
            if !flag.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "database was not closed cleanly; recovering from the last durable commit"
                );
            }
            tracing::debug!(progress = session.progress(), "database recovery");
        });
    // Damaged files may make redb panic rather than return an error; either way the answer is
    // the same clear refusal.
    let opened = guard(path, || {
        if existing {
            builder.open(path)
        } else {
            builder.create(path)
        }
    })?;
    let db = opened.map_err(|e| open_error(path, e))?;
    let migrated_from = guard(path, || prepare_schema(&db, path))??;
    let info = OpenInfo {
        path: path.to_path_buf(),
        created: !existing,
        migrated_from,
        recovered: recovered.load(Ordering::Relaxed),
    };
    if info.recovered {
        tracing::warn!(path = %path.display(), "database recovered after an unclean shutdown");
    }
    Ok((db, info))
}

/// Why a read-only look at a file did not give a usable schema version.
enum Probe {
    /// The last writer did not close it; only a writable open can recover it.
    NeedsRecovery,
    Refused(StoreError),
}

/// Opens the file read-only (which never modifies it) and checks it is an ocio database this
/// build can use. Returns the open database and its schema version (maybe older than ours).
fn probe(path: &Path) -> Result<(ReadOnlyDatabase, u64), Probe> {
    let mut builder = Database::builder();
    builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    let db = match guard(path, || builder.open_read_only(path)).map_err(Probe::Refused)? {
        Ok(db) => db,
        Err(DatabaseError::RepairAborted) => return Err(Probe::NeedsRecovery),
        Err(error) => return Err(Probe::Refused(open_error(path, error))),
    };
    let damaged = |e: StoreError| match e {
        StoreError::Storage(detail) => Probe::Refused(StoreError::Unusable {
            path: path.to_path_buf(),
            detail: format!("it is damaged or truncated ({detail})"),
        }),
        refused => Probe::Refused(refused),
    };
    let txn = db
        .begin_read()
        .map_err(|e| damaged(StoreError::storage(e)))?;
    let found = guard(path, || query::schema_version(&txn))
        .and_then(|r| r)
        .map_err(damaged)?;
    drop(txn);
    match found {
        None => Err(Probe::Refused(not_ocio(path))),
        Some(found) if found > SCHEMA_VERSION => Err(Probe::Refused(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        })),
        Some(found) => Ok((db, found)),
    }
}

/// A read-only view of a database another ocio process may be writing.
pub struct ReadOnlyStore {
    db: ReadOnlyDatabase,
    path: PathBuf,
}

impl ReadOnlyStore {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `read` on a consistent snapshot of the latest commit.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(StoreError::storage)?;
        read(&txn)
    }
}

pub(super) fn open_read_only(path: &Path) -> Result<ReadOnlyStore, StoreError> {
    if existing_len(path)?.is_none() {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            detail: "no such file".into(),
        });
    }
    match probe(path) {
        Ok((db, found)) if found == SCHEMA_VERSION => Ok(ReadOnlyStore {
            db,
            path: path.to_path_buf(),
        }),
        Ok((_, found)) => Err(StoreError::NeedsMigration {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Err(Probe::NeedsRecovery) => Err(open_error(path, DatabaseError::RepairAborted)),
        Err(Probe::Refused(error)) => Err(error),
    }
}

/// Creates every table of a fresh file, or checks and migrates an existing one, in one
/// transaction. Returns the version migrated from, if any.
fn prepare_schema(db: &Database, path: &Path) -> Result<Option<u64>, StoreError> {
    let txn = db.begin_write().map_err(StoreError::storage)?;
    let tables: Vec<String> = txn
        .list_tables()
        .map_err(StoreError::storage)?
        .map(|t| t.name().to_string())
        .collect();
    if tables.is_empty() {
        migrate::create_current(&txn)?;
        txn.commit().map_err(StoreError::storage)?;
        return Ok(None);
    }
    let found = if tables.iter().any(|t| t == META.name()) {
        read_meta_version(&txn)?
    } else {
        None
    };
    let Some(found) = found else {
        let _ = txn.abort();
        return Err(not_ocio(path));
    };
    if found > SCHEMA_VERSION {
        let _ = txn.abort();
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        let _ = txn.abort();
        return Ok(None);
    }
    migrate::upgrade(&txn, found)?;
    txn.commit().map_err(StoreError::storage)?;
    tracing::info!(
        from = found,
        to = SCHEMA_VERSION,
        "database schema migrated"
    );
    Ok(Some(found))
}

fn read_meta_version(txn: &WriteTransaction) -> Result<Option<u64>, StoreError> {
    let meta = txn.open_table(META).map_err(StoreError::storage)?;
    Ok(meta
        .get(SCHEMA_VERSION_KEY)
        .map_err(StoreError::storage)?
        .map(|v| v.value()))
}

fn not_ocio(path: &Path) -> StoreError {
    StoreError::Unusable {
        path: path.to_path_buf(),
        detail: "it is a redb database, but not one ocio wrote (no schema version record)".into(),
    }
}

/// The file's length, or None when it does not exist.
fn existing_len(path: &Path) -> Result<Option<u64>, StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
        Ok(_) => Err(StoreError::Io {
            path: path.to_path_buf(),
            detail: "it is not a regular file".into(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

/// Creates the file readable by its owner only, in a directory only its owner can enter.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let io_error = |e: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::paths::ensure_private_dir(dir).map_err(io_error)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_error)?;
    Ok(())
}

fn open_error(path: &Path, error: DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => StoreError::Locked { path },
        DatabaseError::UpgradeRequired(version) => StoreError::Unusable {
            path,
            detail: format!("it uses redb file format {version}, which this build cannot read"),
        },
        DatabaseError::RepairAborted => StoreError::Unusable {
            path,
            detail: "it was not closed cleanly and cannot be recovered read-only; open it without another ocio running".into(),
        },
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
            StoreError::Unusable { path, detail: "it is truncated".into() }
        }
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::PermissionDenied => {
            StoreError::Io { path, detail: format!("permission denied ({e})") }
        }
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            StoreError::Unusable { path, detail: format!("it is not a redb database or is damaged ({detail})") }
        }
        other => StoreError::Unusable { path, detail: format!("it is not a redb database or is damaged ({other})") },
    }
}

/// Runs `f`, turning a panic inside redb (possible on damaged files) into a clear refusal.
fn guard<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        StoreError::Unusable {
            path: path.to_path_buf(),
            detail: format!("it is damaged (reading it failed: {detail})"),
        }
    })
}
