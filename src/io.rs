//! File output that survives interruption and failure.
//!
//! Every file is written whole or not at all ([`write_atomic`]): into a temporary file beside
//! it, synced, then renamed over the target. A save of several files (a model directory) can be
//! made all-or-nothing too ([`all_or_nothing`]): each file is written and synced to its
//! temporary, and only when all have been written are they renamed into place. A full disk or
//! an I/O error, which strikes while writing, then leaves every previous file as it was;
//! renames take no space.

use crate::{Error, Result};
use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};

thread_local! {
    /// The (temporary, target) files written by this thread's [`all_or_nothing`] so far; `None`
    /// outside one. Thread-local so that every save function keeps writing through
    /// [`write_atomic`] unchanged, whoever calls it.
    static STAGED: RefCell<Option<Vec<(PathBuf, PathBuf)>>> = const { RefCell::new(None) };
}

/// Runs `save`, holding back the renames of the files it writes through [`write_atomic`] until
/// it has succeeded; on failure, removes what it wrote and leaves the previous files. A nested
/// call commits into the outer one.
pub(crate) fn all_or_nothing<T>(save: impl FnOnce() -> Result<T>) -> Result<T> {
    let outer = STAGED.with(|s| s.borrow_mut().replace(Vec::new()));
    let result = save();
    let mut staged = STAGED
        .with(|s| std::mem::replace(&mut *s.borrow_mut(), outer))
        .unwrap_or_default();
    if result.is_err() {
        for (tmp, _) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
        return result;
    }
    let nested = STAGED.with(|s| match s.borrow_mut().as_mut() {
        Some(outer) => {
            outer.append(&mut staged);
            true
        }
        None => false,
    });
    if !nested {
        for (i, (tmp, target)) in staged.iter().enumerate() {
            if let Err(e) = std::fs::rename(tmp, target) {
                for (tmp, _) in &staged[i..] {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(Error::io(target, "write", e));
            }
        }
        let mut dirs: Vec<&Path> = staged.iter().filter_map(|(_, t)| t.parent()).collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            sync_dir(dir);
        }
    }
    result
}

/// Persists the renames in `dir`.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over the target. A reader (or a crash) sees the old file or the new one, never a
/// torn one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] of what `write` streams out (for files too large to build in memory);
/// creates the parent folder.
pub(crate) fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = dir.join(tmp_name);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        let staged = STAGED.with(|s| match s.borrow_mut().as_mut() {
            Some(staged) => {
                if !staged.iter().any(|(t, _)| *t == tmp) {
                    staged.push((tmp.clone(), path.to_path_buf()));
                }
                true
            }
            None => false,
        });
        if !staged {
            std::fs::rename(&tmp, path)?;
            sync_dir(dir);
        }
        Ok::<_, std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, "write", e)
    })
}

/// The SHA-256 of a file, as `sha256sum` prints it (lower-case hex).
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, "read", e))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, "read", e))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Writes `text` to `dir`/`name`, creating folders (for tests).
#[cfg(test)]
pub(crate) fn test_file(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_save_of_several_files_leaves_every_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_atomic(&a, b"old a").unwrap();
        write_atomic(&b, b"old b").unwrap();
        let failed: Result<()> = all_or_nothing(|| {
            write_atomic(&a, b"new a")?;
            assert_eq!(std::fs::read(&a).unwrap(), b"old a", "not renamed yet");
            Err(Error::invalid("the disk is full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"old a");
        assert_eq!(std::fs::read(&b).unwrap(), b"old b");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"], "no temporary files left");

        all_or_nothing(|| {
            write_atomic(&a, b"new a")?;
            all_or_nothing(|| write_atomic(&b, b"new b"))?;
            assert_eq!(
                std::fs::read(&b).unwrap(),
                b"old b",
                "the outer save commits"
            );
            write_atomic(&a, b"newer a")
        })
        .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"newer a");
        assert_eq!(std::fs::read(&b).unwrap(), b"new b");
        // Outside a save, files are renamed at once again.
        write_atomic(&a, b"last").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"last");
    }

    #[test]
    fn sha256_is_sha256sums() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
