//! `positio finetune embed`: contrastive fine-tuning of a sentence-embedding model.

use super::task::{EmbedSettings, EmbedTask};
use crate::runtime::DeviceKind;
use crate::train::trainer::{fine_tune, Outcome};
use crate::Result;
use burn::tensor::Device;
use std::path::Path;

/// Trains until done or interrupted (then a checkpoint is saved and `Outcome::Interrupted`
/// returned); the run directory ends as a sentence-transformers model.
pub fn finetune(
    run: &EmbedSettings,
    out: &Path,
    resume: bool,
    device: DeviceKind,
) -> Result<Outcome> {
    let describe =
        |_: &EmbedTask, _: &_| tracing::info!("fine-tuning {} for embeddings", run.embed.model);
    let prepare = |device: &Device| EmbedTask::prepare(&run.embed, device);
    let (_, summary) = fine_tune(run, out, resume, device, prepare, describe)?;
    Ok(summary.report("ndcg@10", out))
}
