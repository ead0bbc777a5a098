//! The log file: one global `tracing` subscriber writing daily-rotated files (`ocio.*.log`, a
//! week kept) into the log directory, never to the terminal, filtered by an `EnvFilter`
//! directive.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{InitError, RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;

/// Prefix of every log file name.
pub(crate) const FILE_PREFIX: &str = "ocio";
/// Suffix of every log file name.
pub(crate) const FILE_SUFFIX: &str = "log";
/// Rotated files kept; older ones are deleted.
pub(crate) const MAX_FILES: usize = 7;

/// Keeps the background writer alive: hold it until the program ends, since dropping it flushes
/// and stops log output.
#[must_use = "dropping the guard stops logging; keep it alive in main"]
#[derive(Debug)]
pub(crate) struct LogGuard {
    _worker: WorkerGuard,
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoggingError {
    #[error(
        "cannot create the log directory {}: {source}; check its permissions or free space",
        dir.display()
    )]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot open a log file in {}: {source}; check that the directory is writable",
        dir.display()
    )]
    OpenFile {
        dir: PathBuf,
        #[source]
        source: InitError,
    },
    #[error(
        "log filter `{directive}` is not valid: {source}; fix OCIO_LOG or `level` in the [log] section of the config (e.g. \"info\" or \"ocio=debug,warn\")"
    )]
    BadFilter {
        directive: String,
        #[source]
        source: ParseError,
    },
    #[error("logging was already set up in this process: {reason}")]
    AlreadyInitialized { reason: String },
}

/// Sends `tracing` output matching `directive` to rotating files in `log_dir` (created private
/// if missing). Call once, early in `main`, and keep the returned guard alive.
pub(crate) fn init(log_dir: &Path, directive: &str) -> Result<LogGuard, LoggingError> {
    let filter = parse_filter(directive)?;
    crate::paths::ensure_private_dir(log_dir).map_err(|source| LoggingError::CreateDir {
        dir: log_dir.to_path_buf(),
        source,
    })?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX)
        .max_log_files(MAX_FILES)
        .build(log_dir)
        .map_err(|source| LoggingError::OpenFile {
            dir: log_dir.to_path_buf(),
            source,
        })?;
    let (writer, worker) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .map_err(|err| LoggingError::AlreadyInitialized {
            reason: err.to_string(),
        })?;
    Ok(LogGuard { _worker: worker })
}

/// Parses an `EnvFilter` directive such as `info` or `ocio=debug,warn`.
pub(crate) fn parse_filter(directive: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::builder()
        .parse(directive)
        .map_err(|source| LoggingError::BadFilter {
            directive: directive.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test in the crate that installs the global subscriber.
    #[test]
    fn init_writes_events_to_a_rotating_file_and_refuses_a_second_init() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        let guard = init(&dir, "info").unwrap();
        tracing::info!("hello from the logging test");
        tracing::debug!("filtered out at info");
        let second = init(&dir, "info").unwrap_err();
        assert!(matches!(second, LoggingError::AlreadyInitialized { .. }));
        drop(guard);

        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(FILE_PREFIX))
            })
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("hello from the logging test"), "{text}");
        assert!(!text.contains("filtered out"), "{text}");
        assert!(!text.contains('\u{1b}'), "no ANSI colours in the file");
    }

    #[test]
    fn bad_directive_names_itself_and_where_to_fix_it() {
        let err = parse_filter("ocio=loud").unwrap_err();
        assert!(matches!(err, LoggingError::BadFilter { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("ocio=loud"), "{text}");
        assert!(
            text.contains("OCIO_LOG") && text.contains("[log]"),
            "{text}"
        );
    }

    #[test]
    fn usual_directives_parse() {
        for ok in ["info", "warn", "ocio=debug,warn", "ocio::store=trace"] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
    }
}
