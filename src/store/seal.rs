//! The seal: a digest of the database file as a clean close left it, kept beside it in
//! `<file>.seal`.
//!
//! Verifying every page checksum reads and walks the whole file: ~0.1 s per 100 MB and growing
//! with the database. A file whose bytes still hash to the seal its last clean close wrote is
//! exactly the file that close verified-by-construction (it was verified when opened and then
//! written only by redb), so the walk is skipped and an open costs one read of the file. Any
//! change since, a flipped bit, a restored copy, a crash, an older ocio, makes the digest
//! differ, and the whole file is verified as before. A seal is never trusted for anything but
//! "these bytes are the ones ocio closed", so a stale or missing one only costs time.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

/// The first line of a seal file, naming its format.
const MAGIC: &str = "ocio database seal 1";

/// The digest of a file's bytes and their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Digest {
    len: u64,
    xxh3: u128,
}

impl Digest {
    /// The digest of bytes already in memory.
    pub(crate) fn of_bytes(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len() as u64,
            xxh3: xxhash_rust::xxh3::xxh3_128(bytes),
        }
    }

    /// The digest of a file, read in chunks (no copy of it is kept).
    pub(crate) fn of_file(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Xxh3::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buffer[..n]);
                    len += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self {
            len,
            xxh3: hasher.digest128(),
        })
    }

    fn render(self) -> String {
        format!("{MAGIC}\nlen {}\nxxh3-128 {:032x}\n", self.len, self.xxh3)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let len = lines.next()?.strip_prefix("len ")?.parse().ok()?;
        let hex = lines.next()?.strip_prefix("xxh3-128 ")?;
        let xxh3 = u128::from_str_radix(hex, 16).ok()?;
        Some(Self { len, xxh3 })
    }
}

/// Where the seal of the database at `path` lives.
pub(super) fn seal_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".seal");
    path.with_file_name(name)
}

/// The digest the last clean close recorded, if a readable seal is there.
pub(super) fn recorded(path: &Path) -> Option<Digest> {
    let text = std::fs::read_to_string(seal_path(path)).ok()?;
    Digest::parse(&text)
}

/// Whether the file at `path` is byte for byte what its last clean close sealed. Reads the
/// whole file unless there is no seal or its length differs.
pub(super) fn holds(path: &Path) -> bool {
    let Some(sealed) = recorded(path) else {
        return false;
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == sealed.len => {}
        _ => return false,
    }
    Digest::of_file(path).is_ok_and(|now| now == sealed)
}

/// Records the digest of the closed file at `path`. A seal that cannot be written is removed
/// (and the next open verifies the whole file); nothing else depends on it.
pub(super) fn write(path: &Path) {
    if let Err(error) = try_write(path) {
        tracing::warn!(%error, path = %path.display(), "cannot seal the database; the next start verifies it in full");
        let _ = std::fs::remove_file(seal_path(path));
    }
}

fn try_write(path: &Path) -> std::io::Result<()> {
    let digest = Digest::of_file(path)?;
    let seal = seal_path(path);
    let mut name = seal.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", std::process::id()));
    let fresh = seal.with_file_name(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&fresh)?;
    file.write_all(digest.render().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&fresh, &seal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_holds_until_one_byte_of_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        std::fs::write(&path, vec![7u8; 3 << 20]).unwrap();
        assert!(!holds(&path), "no seal yet");
        write(&path);
        assert!(holds(&path));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[2 << 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(!holds(&path), "one flipped bit breaks the seal");
        bytes[2 << 20] ^= 1;
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        assert!(!holds(&path), "a longer file breaks the seal");
    }

    #[test]
    fn a_garbled_seal_is_no_seal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        std::fs::write(&path, b"data").unwrap();
        write(&path);
        let text = std::fs::read_to_string(seal_path(&path)).unwrap();
        assert_eq!(
            Digest::parse(&text),
            Some(Digest::of_bytes(b"data")),
            "{text}"
        );
        std::fs::write(seal_path(&path), text.replace("len 4", "len x")).unwrap();
        assert!(!holds(&path));
        assert_eq!(recorded(&path), None);
    }
}
