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
    ConcurrencyMode, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    StorageBackend, StorageError, TableHandle, WriteTransaction,
};

use super::tables::{META, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use super::{StoreError, StoreOptions, migrate, query, seal};

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    pub(crate) path: PathBuf,
    /// The file was created by this open.
    pub(crate) created: bool,
    /// The schema version the file had, when it was migrated.
    pub(crate) migrated_from: Option<u64>,
    /// The previous process did not close the database (crash or kill); redb rebuilt its
    /// allocator state from the last durable commit.
    pub recovered: bool,
}

pub(super) fn open_writable(
    path: &Path,
    options: &StoreOptions,
) -> Result<(Database, OpenInfo), StoreError> {
    let created = match existing_len(path)? {
        Some(_) => false,
        None => create_fresh(path)?,
    };
    // A writable open changes the file's header even if nothing is committed, so first decide
    // whether the file is ours, whole and current: nothing is written to a file that is
    // refused. A file still as its last clean close sealed it needs only its schema read;
    // any other is verified in full on a private copy.
    let verify = options.check_integrity || (!created && !sealed_and_current(path)?);
    if verify {
        Snapshot::of(path)?;
    }
    let recovered = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&recovered);
    let mut builder = Database::builder();
    // One process owns the file: readers read a private copy (see [`Snapshot`]), so the writer
    // needs no multi-process protocol, and redb commits in one phase (one fsync, its
    // checksummed commit slots), where the shared modes force two.
    builder
        .set_cache_size(options.cache_bytes)
        .set_concurrency_mode(ConcurrencyMode::ExclusiveWriter)
        .set_repair_callback(move |session| {
            if !flag.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "database was not closed cleanly; recovering from the last durable commit"
                );
            }
            tracing::debug!(progress = session.progress(), "database recovery");
        });
    let db = guard(path, || builder.open(path))?.map_err(|e| open_error(path, e))?;
    let migrated_from = guard(path, || prepare_schema(&db, path))??;
    let info = OpenInfo {
        path: path.to_path_buf(),
        created,
        migrated_from,
        recovered: recovered.load(Ordering::Relaxed),
    };
    if info.recovered {
        tracing::warn!(path = %path.display(), "database recovered after an unclean shutdown");
    }
    Ok((db, info))
}

/// Whether the file is byte for byte what its last clean close sealed and holds a schema this
/// build runs. A file that is not sealed, or cannot be read in place, returns false: it is
/// verified in full. Another process holding it, or a newer schema, is refused here.
fn sealed_and_current(path: &Path) -> Result<bool, StoreError> {
    if !seal::holds(path) {
        return Ok(false);
    }
    let db = match guard(path, || Database::builder().open_read_only(path))? {
        Ok(db) => db,
        Err(DatabaseError::DatabaseAlreadyOpen) => {
            return Err(StoreError::Locked {
                path: path.to_path_buf(),
            });
        }
        Err(_) => return Ok(false),
    };
    let version = guard(path, || {
        db.begin_read()
            .map_err(StoreError::storage)
            .and_then(|txn| query::schema_version(&txn))
    })?;
    match version {
        Ok(Some(found)) if found > SCHEMA_VERSION => Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Ok(Some(_)) => Ok(true),
        Ok(None) | Err(_) => Ok(false),
    }
}

/// Makes a fresh database beside `path` and links it into place, so no process ever sees a
/// half-made file. Returns false when another process put a file there first.
fn create_fresh(path: &Path) -> Result<bool, StoreError> {
    let io_error = |e: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", std::process::id()));
    let fresh = path.with_file_name(name);
    create_private_file(&fresh)?;
    let made = Database::builder()
        .create(&fresh)
        .map_err(|e| open_error(&fresh, e))
        .and_then(|db| prepare_schema(&db, &fresh).map(|_| ()));
    let linked = made.and_then(|()| match std::fs::hard_link(&fresh, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_error(e)),
    });
    let _ = std::fs::remove_file(&fresh);
    linked
}

/// A private, verified, in-memory copy of the file's latest commit: every page checksum checked,
/// a file left by a crash recovered and an older schema migrated in the copy only. Reading the
/// file this way never writes it and holds no lock on it, so an engine starting meanwhile is
/// never turned away.
pub(crate) struct Snapshot {
    db: Database,
    path: PathBuf,
}

impl Snapshot {
    pub(super) fn of(path: &Path) -> Result<Self, StoreError> {
        let bytes = read_consistent(path)?;
        if bytes.is_empty() {
            return Err(StoreError::Unusable {
                path: path.to_path_buf(),
                detail: "it is empty (0 bytes); ocio never leaves an empty database".into(),
            });
        }
        // Bytes a clean close sealed were verified when written; any others are walked.
        let sealed = seal::recorded(path) == Some(seal::Digest::of_bytes(&bytes));
        let mut builder = Database::builder();
        builder.set_check_integrity_on_open(!sealed);
        let backend = Copy::new(bytes);
        let db = guard(path, || builder.create_with_backend(backend))?
            .map_err(|e| damaged(path, open_error(path, e)))?;
        guard(path, || check_schema(&db, path))??;
        guard(path, || prepare_schema(&db, path))?.map_err(|e| damaged(path, e))?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Runs `read` on the copy, turning a failure inside redb into a clear refusal.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(StoreError::storage)?;
        guard(&self.path, || read(&txn))?.map_err(|e| damaged(&self.path, e))
    }
}

/// The private copy a [`Snapshot`] runs on: the file's bytes, owned, so making it costs no
/// second copy (redb's in-memory backend would zero and copy them again).
#[derive(Debug)]
struct Copy(std::sync::RwLock<Vec<u8>>);

impl Copy {
    fn new(bytes: Vec<u8>) -> Self {
        Self(std::sync::RwLock::new(bytes))
    }

    fn bytes(&self) -> std::sync::RwLockReadGuard<'_, Vec<u8>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bytes_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<u8>> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn out_of_range() -> std::io::Error {
    std::io::Error::new(ErrorKind::UnexpectedEof, "read past the end of the copy")
}

impl StorageBackend for Copy {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.bytes().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let bytes = self.bytes();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(out.len()).ok_or_else(out_of_range)?;
        out.copy_from_slice(bytes.get(start..end).ok_or_else(out_of_range)?);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let len = usize::try_from(len).map_err(|_| out_of_range())?;
        self.bytes_mut().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut bytes = self.bytes_mut();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(data.len()).ok_or_else(out_of_range)?;
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(data);
        Ok(())
    }
}

/// The whole file as of one commit: read again when its header changed while it was read (a
/// writer committed meanwhile).
fn read_consistent(path: &Path) -> Result<Vec<u8>, StoreError> {
    let io_error = |e: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let header = |bytes: &[u8]| bytes.get(..HEADER_BYTES).map(<[u8]>::to_vec);
    let mut bytes = std::fs::read(path).map_err(io_error)?;
    for _ in 0..20 {
        let again = read_header(path).map_err(io_error)?;
        if header(&bytes).unwrap_or_else(|| bytes.clone()) == again {
            return Ok(bytes);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        bytes = std::fs::read(path).map_err(io_error)?;
    }
    Err(StoreError::Io {
        path: path.to_path_buf(),
        detail: "it kept changing while it was read; try again".into(),
    })
}

/// The bytes of a redb header (the commit slots and their checksums).
const HEADER_BYTES: usize = 4096;

fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(HEADER_BYTES);
    std::fs::File::open(path)?
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// A redb or storage failure while verifying a copy means the file is damaged.
fn damaged(path: &Path, error: StoreError) -> StoreError {
    match error {
        StoreError::Storage(detail) | StoreError::Decode { detail, .. } => StoreError::Damaged {
            path: path.to_path_buf(),
            detail,
        },
        StoreError::Unusable { path, detail } if detail.contains("damaged") => {
            StoreError::Damaged { path, detail }
        }
        other => other,
    }
}

/// Refuses a file with no ocio schema record or a newer one.
fn check_schema(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db
        .begin_read()
        .map_err(|e| damaged(path, StoreError::storage(e)))?;
    match query::schema_version(&txn) {
        Ok(Some(found)) if found > SCHEMA_VERSION => Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(not_ocio(path)),
        Err(e) => Err(damaged(path, e)),
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
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked { path }
        }
        DatabaseError::UpgradeRequired(version) => StoreError::Unusable {
            path,
            detail: format!("it uses redb file format {version}, which this build cannot read"),
        },
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
            StoreError::Unusable {
                path,
                detail: "it is truncated".into(),
            }
        }
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::PermissionDenied => {
            StoreError::Io {
                path,
                detail: format!("permission denied ({e})"),
            }
        }
        DatabaseError::Storage(StorageError::Corrupted(detail)) => StoreError::Unusable {
            path,
            detail: format!("it is not a redb database or is damaged ({detail})"),
        },
        other => StoreError::Unusable {
            path,
            detail: format!("it is not a redb database or is damaged ({other})"),
        },
    }
}

/// Runs `f`, turning a panic inside redb (possible on damaged files) into a clear refusal. The
/// panic prints nothing: the refusal says it all.
fn guard<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, StoreError> {
    quiet_panics::install();
    let result = quiet_panics::QUIET.with(|quiet| {
        let before = quiet.replace(true);
        let result = catch_unwind(AssertUnwindSafe(f));
        quiet.set(before);
        result
    });
    result.map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        StoreError::Damaged {
            path: path.to_path_buf(),
            detail: format!("reading it failed: {detail}"),
        }
    })
}

/// A panic hook that stays silent on a thread inside [`guard`] and leaves every other panic
/// to the hook it wraps.
mod quiet_panics {
    use std::cell::Cell;
    use std::sync::Once;

    thread_local! {
        pub(crate) static QUIET: Cell<bool> = const { Cell::new(false) };
    }

    pub(crate) fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !QUIET.with(Cell::get) {
                    previous(info);
                }
            }));
        });
    }
}
