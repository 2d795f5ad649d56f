//! Timing of training steps and forward passes, for the side-by-side comparison with PyTorch in
//! `bench/compare.sh` (which runs this and `bench/torch_bench.py` on the same machine).

use crate::config::{ModelConfig, PositionKind};
use crate::encoder::Batch;
use crate::heads::{LanguageModel, LmTargets};
use crate::{hf, runtime};
use burn::module::Module;
use crate::optim::{AdamW, AdamWConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::path::Path;
use std::time::Instant;

/// The benchmark model: BERT-style, vocabulary 30,522, hidden 256, 4 layers, 4 heads, FFN 1024.
pub fn bench_config(position: PositionKind) -> ModelConfig {
    ModelConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..ModelConfig::small(30522, position)
    }
}

/// Median, min and max of a series of timings in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Timing {
    fn of(mut ms: Vec<f64>) -> Timing {
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n % 2 == 1 { ms[n / 2] } else { (ms[n / 2 - 1] + ms[n / 2]) / 2.0 };
        Timing { median_ms: median, min_ms: ms[0], max_ms: ms[n - 1] }
    }
}

/// Times `f` `steps` times after `warmup` untimed calls.
fn time(warmup: usize, steps: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        f();
    }
    Timing::of(
        (0..steps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// Deterministic token ids in [0, n) (an LCG, as the PyTorch twin's own generator differs anyway).
fn ids(count: usize, n: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..count)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % n as u64) as u32
        })
        .collect()
}

fn random_batch(batch: usize, len: usize, vocab: usize, device: &Device) -> Batch {
    let v = ids(batch * len, vocab, 42);
    let seqs: Vec<Vec<u32>> = v.chunks(len).map(<[u32]>::to_vec).collect();
    Batch::new(&seqs, 0, device)
}

/// Loss positions: every position (`fraction` 1), or every k-th one for a masked-LM-like share.
fn targets(batch: usize, len: usize, vocab: usize, fraction: f64, device: &Device) -> LmTargets {
    let stride = (1.0 / fraction).round().max(1.0) as usize;
    let positions: Vec<i64> = (0..batch * len).step_by(stride).map(|p| p as i64).collect();
    let n = positions.len();
    let tgt: Vec<i64> = ids(n, vocab, 7).into_iter().map(i64::from).collect();
    LmTargets {
        positions: Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), device),
        targets: Tensor::<1, Int>::from_data(TensorData::new(tgt, [n]), device),
    }
}

/// One MLM training step (forward, backward, AdamW) with the loss on `fraction` of positions.
pub fn train_step(config: &ModelConfig, batch: usize, len: usize, fraction: f64, warmup: usize, steps: usize) -> (Timing, f32) {
    let device = runtime::cpu().autodiff();
    device.seed(0);
    let mut model = LanguageModel::new(config, &device);
    let data = random_batch(batch, len, config.vocab_size, &device);
    let tgt = targets(batch, len, config.vocab_size, fraction, &device);
    let mut optim = AdamW::new(AdamWConfig::default());
    let mut last = 0f32;
    let timing = time(warmup, steps, || {
        let loss = model.loss(&data, &tgt);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(model.clone(), grads, 1e-4, 1.0);
        last = loss.into_scalar::<f32>();
    });
    (timing, last)
}

/// Inference forward pass producing the logits at every position.
pub fn forward(config: &ModelConfig, batch: usize, len: usize, warmup: usize, steps: usize) -> Timing {
    let device = runtime::cpu();
    device.seed(0);
    let model = LanguageModel::new(config, &device);
    let data = random_batch(batch, len, config.vocab_size, &device);
    let all = targets(batch, len, config.vocab_size, 1.0, &device).positions;
    time(warmup, steps, || {
        let logits = model.logits(&data, all.clone());
        let _ = logits.into_data();
    })
}

/// Encoder inference of a model directory (e.g. all-MiniLM-L6-v2): last hidden states.
pub fn encoder_forward(dir: &Path, batch: usize, len: usize, warmup: usize, steps: usize) -> crate::Result<Timing> {
    let device = runtime::cpu();
    let model = hf::load_encoder(dir, &device)?.valid();
    let data = random_batch(batch, len, model.config.vocab_size, &device);
    Ok(time(warmup, steps, || {
        let _ = model.forward(&data).into_data();
    }))
}
