//! An index directory as a sequence of immutable generations: `IDX/gen-000001/`, `gen-000002/`,
//! … and `IDX/CURRENT`, which names the one searches open. A write (`build`, `add`, `delete`)
//! takes `IDX/.lock`, writes the next generation beside the current one, syncs it, and only
//! then replaces `CURRENT` atomically (write to a temporary file, rename). A crash at any point
//! leaves `CURRENT` naming a complete generation; searches that opened the previous one keep
//! reading it, since a generation is removed only two writes later. The write lock is an
//! advisory `flock`, released by the kernel when the writer exits however it exits.

use crate::{io, Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

const CURRENT: &str = "CURRENT";
const LOCK: &str = ".lock";
const PREFIX: &str = "gen-";

/// The generation `CURRENT` names.
pub fn current(dir: &Path) -> Result<PathBuf> {
    let pointer = dir.join(CURRENT);
    let name = match std::fs::read_to_string(&pointer) {
        Ok(name) => name.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::file(
                dir,
                "not a positio index (no CURRENT file): build one with `positio index build`",
            ))
        }
        Err(e) => return Err(Error::io(&pointer, "read", e)),
    };
    if number(&name).is_none() {
        return Err(Error::file(
            &pointer,
            format!("corrupt index: {name:?} is not a generation name"),
        ));
    }
    let generation = dir.join(&name);
    if !generation.is_dir() {
        return Err(Error::file(
            &pointer,
            format!("corrupt index: generation {name} is missing"),
        ));
    }
    Ok(generation)
}

fn number(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

/// The generations present, by number.
fn generations(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, "list", e))? {
        let entry = entry.map_err(|e| Error::io(dir, "list", e))?;
        if let Some(n) = entry.file_name().to_str().and_then(number) {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The one writer of an index: holds its lock until dropped. Dropped without a commit (the
/// write failed: a full disk, an I/O error), it removes its generation at once, so a failed
/// write leaves no space taken; a killed writer's leftover goes at the next write.
pub struct Writer {
    dir: PathBuf,
    _lock: File,
    committed: bool,
    /// The generation being written.
    pub next: PathBuf,
    /// The generation it replaces (`None` when building).
    pub previous: Option<PathBuf>,
}

impl Writer {
    /// Locks `dir` (created when `create`) and prepares an empty next generation; leftovers of
    /// writes that crashed are removed first.
    pub fn begin(dir: &Path, create: bool) -> Result<Writer> {
        if create {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
        }
        let lock_path = dir.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, "open", e))?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
            return Err(Error::io(
                &lock_path,
                "lock",
                std::io::Error::last_os_error(),
            ));
        }
        let previous = if dir.join(CURRENT).exists() {
            Some(current(dir)?)
        } else {
            None
        };
        let current_number = previous
            .as_deref()
            .and_then(|p| p.file_name()?.to_str().and_then(number))
            .unwrap_or(0);
        for (n, path) in generations(dir)? {
            if n > current_number {
                // A write that never reached CURRENT.
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, "remove", e))?;
            }
        }
        let next = dir.join(format!("{PREFIX}{:06}", current_number + 1));
        std::fs::create_dir(&next).map_err(|e| Error::io(&next, "create", e))?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            _lock: lock,
            committed: false,
            next,
            previous,
        })
    }

    /// Makes the new generation current (after syncing its files), then removes generations
    /// older than the one it replaces.
    pub fn commit(mut self) -> Result<()> {
        for entry in std::fs::read_dir(&self.next).map_err(|e| Error::io(&self.next, "list", e))? {
            let path = entry.map_err(|e| Error::io(&self.next, "list", e))?.path();
            if path.is_file() {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(&path, "sync", e))?;
            }
        }
        let name = self
            .next
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a generation name");
        io::write_atomic(&self.dir.join(CURRENT), format!("{name}\n").as_bytes())?;
        self.committed = true;
        let keep = self
            .previous
            .as_deref()
            .unwrap_or(&self.next)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(number)
            .expect("a generation name");
        for (n, path) in generations(&self.dir)? {
            if n < keep {
                // Best effort: a reader on Windows-like filesystems could hold it; on Linux
                // open files stay readable after removal.
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_becomes_visible_only_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let idx = dir.path().join("idx");
        let e = current(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a positio index"), "{e}");
        let w = Writer::begin(&idx, true).unwrap();
        assert!(w.previous.is_none());
        std::fs::write(w.next.join("a"), "1").unwrap();
        w.commit().unwrap();
        let first = current(&idx).unwrap();
        assert!(first.ends_with("gen-000001"));
        // A failed write: its generation goes at once; CURRENT still names the first.
        let w = Writer::begin(&idx, false).unwrap();
        std::fs::write(w.next.join("a"), "2").unwrap();
        let failed = w.next.clone();
        drop(w);
        assert!(!failed.exists());
        assert_eq!(current(&idx).unwrap(), first);
        // A crashed write leaves its generation; the next write removes it and takes its number.
        std::fs::create_dir(&failed).unwrap();
        std::fs::write(failed.join("a"), "2").unwrap();
        let w = Writer::begin(&idx, false).unwrap();
        assert!(w.next.ends_with("gen-000002"));
        assert_eq!(std::fs::read_dir(&w.next).unwrap().count(), 0);
        w.commit().unwrap();
        let w = Writer::begin(&idx, false).unwrap();
        w.commit().unwrap();
        // Two writes later the first generation is gone; the one before current stays.
        assert!(!first.exists());
        assert!(idx.join("gen-000002").exists());
        assert!(current(&idx).unwrap().ends_with("gen-000003"));
        std::fs::write(idx.join(CURRENT), "junk").unwrap();
        let e = current(&idx).unwrap_err().to_string();
        assert!(e.contains("corrupt index"), "{e}");
    }
}
