//! Run directories: the one place that decides whether `--out` may start a new run or continue
//! one. A new run refuses a directory that already holds a checkpoint and records its settings
//! in `run.toml`; `--resume` requires the same settings as that file, so a resumed run is the
//! run that was interrupted.

use crate::train::config::{load_over, RunSettings};
use crate::{io, Error, Result};
use std::path::{Path, PathBuf};

/// The settings file of a run.
pub(crate) const SETTINGS: &str = "run.toml";

/// The checkpoints folder of a run.
pub fn checkpoints(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// A checkpoint's checksums: `sha256sum`'s format (`HEX  NAME` per file), so that
/// `sha256sum -c checksums.sha256` inside the checkpoint checks it too.
const CHECKSUMS: &str = "checksums.sha256";

/// Writes the checksums of every file in checkpoint `dir` (written last: a checkpoint with
/// them is complete).
pub(crate) fn seal(dir: &Path) -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "list", e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != CHECKSUMS && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut text = String::new();
    for name in names {
        text += &format!("{}  {name}\n", io::sha256_file(&dir.join(&name))?);
    }
    io::write_atomic(&dir.join(CHECKSUMS), text.as_bytes())
}

/// Checks checkpoint `dir` against its checksums: a file missing or changed since it was
/// written (a damaged disk, a copy cut short, a hand edit) is an error naming it. Checkpoints
/// from before checksums pass unchecked.
pub(crate) fn verify(dir: &Path) -> Result<()> {
    let path = dir.join(CHECKSUMS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&path, "read", e)),
    };
    for (i, line) in text.lines().enumerate() {
        let (sum, name) = line
            .split_once("  ")
            .filter(|(sum, name)| sum.len() == 64 && !name.contains('/'))
            .ok_or_else(|| Error::line(&path, i + 1, "not `SHA256  FILE`"))?;
        let file = dir.join(name);
        if !file.exists() {
            return Err(Error::file(&file, "missing from the checkpoint"));
        }
        if io::sha256_file(&file)? != sum {
            return Err(Error::file(
                &file,
                format!(
                    "damaged: its SHA-256 differs from the one written with the checkpoint ({})",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The newest complete checkpoint of a run, if any.
pub(crate) fn latest_checkpoint(run_dir: &Path) -> Result<Option<PathBuf>> {
    let pointer = checkpoints(run_dir).join("latest");
    match std::fs::read_to_string(&pointer) {
        Ok(name) => {
            let dir = checkpoints(run_dir).join(name.trim());
            if dir.join("state.json").exists() {
                Ok(Some(dir))
            } else {
                Err(Error::file(
                    &pointer,
                    format!(
                        "names checkpoint '{}', which is incomplete or missing",
                        name.trim()
                    ),
                ))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&pointer, "read", e)),
    }
}

/// Prepares `run_dir` for a run with `settings`: creates it; with `resume`, checks that the
/// saved settings are the same; otherwise refuses a directory holding a run and saves them.
pub fn prepare<S: RunSettings>(run_dir: &Path, settings: &S, resume: bool) -> Result<()> {
    // Unusable settings leave no directory behind.
    settings.train().validate()?;
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, "create", e))?;
    let saved = run_dir.join(SETTINGS);
    if resume {
        let previous = load_over(&saved, &S::recipe())?;
        if previous != *settings {
            return Err(Error::file(&saved, "the settings differ from the run being resumed; resume with the same ones (they are in this file)"));
        }
        return Ok(());
    }
    if latest_checkpoint(run_dir)?.is_some() {
        return Err(Error::file(
            run_dir,
            "already holds a run: pass --resume to continue it, or choose another --out",
        ));
    }
    let text = toml::to_string_pretty(settings)
        .map_err(|e| Error::file(&saved, format!("cannot serialise the settings: {e}")))?;
    io::write_atomic(&saved, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_checkpoints_verify_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("model.safetensors"), b"weights").unwrap();
        std::fs::write(d.join("state.json"), b"{}").unwrap();
        verify(d).unwrap(); // an old checkpoint without checksums
        seal(d).unwrap();
        let sums = std::fs::read_to_string(d.join(CHECKSUMS)).unwrap();
        assert_eq!(sums.lines().count(), 2, "{sums}");
        assert!(sums.ends_with("  state.json\n"), "{sums}");
        verify(d).unwrap();
        std::fs::write(d.join("model.safetensors"), b"weightz").unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("damaged"),
            "{e}"
        );
        std::fs::remove_file(d.join("model.safetensors")).unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("missing"),
            "{e}"
        );
        std::fs::write(d.join(CHECKSUMS), "xyz state.json\n").unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert!(e.contains("checksums.sha256:1: not"), "{e}");
    }
}
