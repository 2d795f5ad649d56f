//! The learning-rate schedule: linear warm-up, then linear or cosine decay to zero (BERT's and
//! transformers' `get_linear_schedule_with_warmup` / `get_cosine_schedule_with_warmup`).

use serde::{Deserialize, Serialize};

/// How the learning rate decays after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Linearly to 0 at the last step.
    Linear,
    /// Half a cosine period to 0 at the last step.
    Cosine,
}

/// Learning rate at `step` (0-based) of `total`: linear warm-up to `peak` over `warmup` steps,
/// then linear or cosine decay to 0 at `total`.
pub fn learning_rate(
    step: usize,
    total: usize,
    warmup: usize,
    peak: f64,
    schedule: Schedule,
) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    if schedule == Schedule::Cosine {
        peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    } else {
        peak * (1.0 - progress)
    }
}
