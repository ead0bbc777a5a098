//! The one way commands print what they were asked for on stdout. A reader that went away
//! (`ocio man | head`) ends the command quietly with exit 0, as command-line tools do; any
//! other write failure is an error.

use std::io::Write;

use serde::Serialize;

use super::{Failure, exit};

/// `bytes` on stdout, as they are, flushed.
pub(crate) fn print_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::stdout_closed(),
            _ => Failure {
                code: exit::FAILED,
                message: format!("cannot write to stdout: {e}"),
            },
        })
}

/// `text` and a newline on stdout.
pub(crate) fn print_text(text: &str) -> Result<(), Failure> {
    print_bytes(format!("{text}\n").as_bytes())
}

/// A JSON value, pretty, on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure {
        code: exit::FAILED,
        message: format!("cannot encode the report: {e}"),
    })?;
    print_text(&text)
}
