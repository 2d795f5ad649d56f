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
