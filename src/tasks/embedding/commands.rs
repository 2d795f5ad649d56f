//! `positio finetune embed`: contrastive fine-tuning of a sentence-embedding model.

use super::task::{EmbedSettings, EmbedTask};
use crate::runtime::{self, DeviceKind};
use crate::train::run_dir;
use crate::train::trainer::{Outcome, Trainer};
use crate::Result;
use std::path::Path;

/// Trains until done or interrupted (then a checkpoint is saved and `Outcome::Interrupted`
/// returned); the run directory ends as a sentence-transformers model.
pub fn finetune(
    run: &EmbedSettings,
    out: &Path,
    resume: bool,
    device: DeviceKind,
) -> Result<Outcome> {
    let device = runtime::training_device(device)?;
    device.seed(run.train.seed);
    // Everything that can fail on the input is checked before the run directory is touched.
    let (mut task, model) = EmbedTask::prepare(&run.embed, &device)?;
    run_dir::prepare(out, run, resume)?;
    tracing::info!("fine-tuning {} for embeddings", run.embed.model);
    let trainer = Trainer {
        config: run.train.clone(),
        run_dir: out.to_path_buf(),
        progress: true,
    };
    let (_, summary) = trainer.run(&mut task, model, resume)?;
    Ok(summary.report("ndcg@10", out))
}
