//! Timing of training steps, fine-tuning steps and forward passes, for the side-by-side
//! comparison with PyTorch in `bench/compare.sh` (which runs this and `bench/torch_bench.py`
//! on the same machine, same shapes).

use crate::data::conll;
use crate::data::tags::label_set;
use crate::model::config::{ModelConfig, PositionKind};
use crate::model::encoder::{Batch, EncoderModel};
use crate::model::heads::crf::Edges;
use crate::model::heads::TokenClassifier;
use crate::model::heads::{LanguageModel, LmTargets};
use crate::runtime::DeviceKind;
use crate::tasks::ner::model::loss as ner_loss;
use crate::tasks::ner::windows::{make_batch, word_pieces, Window};
use crate::train::optim::{clip_scale, global_norm};
use crate::train::optim::{AdamW, AdamWConfig};
use crate::{hf, runtime};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::path::Path;
use std::time::Instant;

/// What `positio bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BenchTask {
    /// A masked-LM training step (forward, backward, AdamW) of the benchmark model.
    Train,
    /// Inference logits of the benchmark model at every position.
    Forward,
    /// Encoder inference of `--model` (e.g. all-MiniLM-L6-v2): last hidden states.
    Encoder,
    /// NER fine-tuning steps of `--model` on real CoNLL sentences (`--data`).
    Finetune,
    /// A token-tagging training step (9 labels at every position: encoder, linear layer,
    /// cross-entropy, backward, AdamW) of the benchmark encoder (`--arch`): Study A, and
    /// `bench/recurrent_compare.sh` against PyTorch's nn.LSTM / nn.GRU.
    TagTrain,
    /// Inference of the same tagger: label scores at every position.
    TagForward,
    /// A recommender's retrieval: one user vector against `--items` cached news vectors of
    /// `--hidden` dimensions [default: 384] (random unit vectors in a cache file, mapped), the
    /// best 10 kept, as `positio recommend --top 10` does.
    RecommendTop,
    /// fp32 matrix products through burn's CPU backend (the `gemm` crate): the 2048³ ceiling and
    /// the MLM training step's shapes, as `bench/machine.py --shapes` times them in PyTorch.
    Gemm,
}

/// The products `bench/machine.py --shapes` times: `(m, k, n, A stored transposed, B stored
/// transposed, what)` for batch 16 × 128 = 2048 positions, hidden 256, FFN 1024, vocab 30,522,
/// and the inference shapes of all-MiniLM-L6-v2 at 32 × 128 (hidden 384, FFN 1536).
pub(crate) const GEMM_SHAPES: [(usize, usize, usize, bool, bool, &str); 11] = [
    (2048, 2048, 2048, false, false, "square: the ceiling"),
    (
        2048,
        256,
        30522,
        false,
        false,
        "vocab projection forward, plain operands",
    ),
    (
        2048,
        256,
        30522,
        false,
        true,
        "vocab projection forward with the tied E (V×H): X·Eᵀ",
    ),
    (2048, 256, 1024, false, false, "FFN up forward"),
    (2048, 1024, 256, false, false, "FFN down forward"),
    (
        30522,
        2048,
        256,
        true,
        false,
        "vocab projection weight grad: dYᵀ·X",
    ),
    (
        2048,
        30522,
        256,
        false,
        false,
        "vocab projection input grad: dY·E",
    ),
    (
        2048,
        30522,
        256,
        false,
        true,
        "A·Bᵀ form of the same product",
    ),
    (
        4096,
        384,
        384,
        false,
        true,
        "all-MiniLM-L6-v2 32 × 128: attention projection X·Wᵀ",
    ),
    (
        4096,
        384,
        1536,
        false,
        true,
        "all-MiniLM-L6-v2: FFN up X·Wᵀ",
    ),
    (
        4096,
        1536,
        384,
        false,
        true,
        "all-MiniLM-L6-v2: FFN down X·Wᵀ",
    ),
];

/// Best-of-`steps` GFLOP/s of an `(m×k)·(k×n)` product on `device`; a transposed operand is
/// stored transposed and multiplied as a transposed view, as in backward passes.
pub(crate) fn gemm_gflops(
    (m, k, n): (usize, usize, usize),
    (trans_a, trans_b): (bool, bool),
    run: &Workload,
) -> crate::Result<f64> {
    let (_, _, warmup, steps, device) = run.parts();
    let device = runtime::device(device)?;
    let random = |rows: usize, cols: usize, seed: u64| {
        let mut rng = crate::rng::Rng::new(seed);
        let v: Vec<f32> = (0..rows * cols)
            .map(|_| rng.uniform() as f32 - 0.5)
            .collect();
        Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), &device)
    };
    let a = if trans_a {
        random(k, m, 1).transpose()
    } else {
        random(m, k, 1)
    };
    let b = if trans_b {
        random(n, k, 2).transpose()
    } else {
        random(k, n, 2)
    };
    let t = time(warmup, steps, || {
        let _ = a.clone().matmul(b.clone()).into_data();
    });
    Ok(2.0 * (m * k * n) as f64 / (t.min_ms / 1e3) / 1e9)
}

/// The benchmark model: BERT-style, vocabulary 30,522, hidden 256, 4 layers, 4 heads, FFN 1024.
pub(crate) fn bench_config(position: PositionKind) -> ModelConfig {
    ModelConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..ModelConfig::small(30522, position)
    }
}

/// Labels of the benchmark tagger (CoNLL-2003's IOB2 tag set has 9).
pub(crate) const TAGGER_LABELS: usize = 9;

/// A training step (`train`) or inference pass of a token tagger on `config`'s encoder: label
/// scores at every position of a full batch (no padding), random labels, cross-entropy, AdamW
/// at lr 1e-4.
pub(crate) fn tagger(config: &ModelConfig, train: bool, run: &Workload) -> crate::Result<Timing> {
    let (batch, len, warmup, steps, device) = run.parts();
    let device = if train {
        runtime::training_device(device)?
    } else {
        runtime::device(device)?
    };
    device.seed(0);
    let mut model = TokenClassifier::new(
        EncoderModel::new(config, &device),
        TAGGER_LABELS,
        false,
        &device,
    );
    let data = random_batch(batch, len, config.vocab_size, &device);
    let all = targets(batch, len, TAGGER_LABELS, 1.0, &device);
    if !train {
        let model = model.valid();
        return Ok(time(warmup, steps, || {
            let _ = model.emissions(&data, all.positions.clone()).into_data();
        }));
    }
    let mut optim = AdamW::new(AdamWConfig::default());
    Ok(time(warmup, steps, || {
        let scores = model.emissions(&data, all.positions.clone());
        let loss = crate::kernels::cross_entropy(scores, all.targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(model.clone(), grads, 1e-4, 1.0);
        let _ = loss.into_scalar::<f32>();
    }))
}

/// What one benchmark runs: batches of `batch` sequences of `len` tokens, `warmup` untimed
/// steps then `steps` timed ones, on `device`.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub batch: usize,
    pub len: usize,
    pub warmup: usize,
    pub steps: usize,
    pub device: DeviceKind,
}

impl Workload {
    /// (batch, len, warmup, steps, device)
    fn parts(&self) -> (usize, usize, usize, usize, DeviceKind) {
        (self.batch, self.len, self.warmup, self.steps, self.device)
    }
}

/// Median, min and max of a series of timings in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub total_ms: f64,
}

impl Timing {
    fn of(mut ms: Vec<f64>) -> Timing {
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Timing {
            median_ms: median,
            min_ms: ms[0],
            max_ms: ms[n - 1],
            total_ms: ms.iter().sum(),
        }
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
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
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

/// One MLM training step (forward, backward, AdamW) with the loss on `fraction` of positions,
/// from fresh weights or from a checkpoint's (`init`, for loss parity with PyTorch on the same
/// weights). Returns the timing and the loss of every step, warm-up included.
pub(crate) fn train_step(
    config: &ModelConfig,
    init: Option<&Path>,
    fraction: f64,
    run: &Workload,
) -> crate::Result<(Timing, Vec<f32>)> {
    let (batch, len, warmup, steps, device) = run.parts();
    let device = runtime::training_device(device)?;
    device.seed(0);
    let mut model = match init {
        Some(dir) => hf::load_language_model(dir, &device)?,
        None => LanguageModel::new(config, &device),
    };
    let data = random_batch(batch, len, config.vocab_size, &device);
    let tgt = targets(batch, len, config.vocab_size, fraction, &device);
    let mut optim = AdamW::new(AdamWConfig::default());
    let mut losses = Vec::with_capacity(warmup + steps);
    let timing = time(warmup, steps, || {
        let loss = model.loss(&data, &tgt);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(model.clone(), grads, 1e-4, 1.0);
        losses.push(loss.into_scalar::<f32>());
    });
    Ok((timing, losses))
}

/// Inference forward pass producing the logits at every position.
pub fn forward(config: &ModelConfig, run: &Workload) -> crate::Result<Timing> {
    let (batch, len, warmup, steps, device) = run.parts();
    let device = runtime::device(device)?;
    device.seed(0);
    let model = LanguageModel::new(config, &device);
    let data = random_batch(batch, len, config.vocab_size, &device);
    let all = targets(batch, len, config.vocab_size, 1.0, &device).positions;
    Ok(time(warmup, steps, || {
        let logits = model.logits(&data, all.clone());
        let _ = logits.into_data();
    }))
}

/// Encoder inference of a model directory (e.g. all-MiniLM-L6-v2): last hidden states.
pub(crate) fn encoder_forward(dir: &Path, run: &Workload) -> crate::Result<Timing> {
    let (batch, len, warmup, steps, device) = run.parts();
    let device = runtime::device(device)?;
    let model = hf::load_encoder(dir, &device)?.valid();
    let data = random_batch(batch, len, model.config.vocab_size, &device);
    Ok(time(warmup, steps, || {
        let _ = model.forward(&data).into_data();
    }))
}

/// NER fine-tuning steps from a pretrained checkpoint on real sentences, as
/// `bench/torch_bench.py --task finetune` does them: the sentences of `data` in file order,
/// tags in IOB2, batch `i` = sentences `[batch·i, batch·i + batch)` padded to the longest,
/// words cut at `len` word pieces, each word labelled on its first piece; cross-entropy, AdamW
/// (lr 5e-5, weight decay 0.01), clipping at 1.0, the checkpoint's dropout. Returns the
/// timing and the real (unpadded) tokens per second of the timed steps.
pub(crate) fn finetune_steps(
    dir: &Path,
    data: &Path,
    run: &Workload,
) -> crate::Result<(Timing, f64)> {
    let (batch, len, warmup, steps, device) = run.parts();
    let device = runtime::training_device(device)?;
    device.seed(0);
    let checkpoint = hf::Checkpoint::open(dir)?;
    let tokenizer = checkpoint.tokenizer()?;
    let (sentences, _) = conll::read_iob2(data, None, None)?;
    let labels = label_set(sentences.iter().flat_map(|s| &s.tags));
    let needed = batch * (warmup + steps);
    if sentences.len() < needed {
        return Err(crate::Error::file(
            data,
            format!(
                "{} sentences, the benchmark needs {needed}",
                sentences.len()
            ),
        ));
    }
    let special = |t: &str| {
        tokenizer
            .token_to_id(t)
            .ok_or_else(|| crate::Error::file(&tokenizer.path, format!("no {t} token")))
    };
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    let mut windows = Vec::with_capacity(needed);
    let mut gold = Vec::with_capacity(needed);
    for (i, s) in sentences[..needed].iter().enumerate() {
        let pieces = word_pieces(&tokenizer, &s.words)?;
        let mut w = Window {
            sentence: i,
            ids: vec![cls],
            words: Vec::new(),
            first_piece: Vec::new(),
            edges: Edges {
                starts_sentence: true,
                ends_sentence: true,
            },
        };
        let mut tags = Vec::new();
        for (k, p) in pieces.iter().enumerate() {
            if w.ids.len() < len - 1 {
                w.words.push(k);
                w.first_piece.push(w.ids.len());
                tags.push(
                    labels
                        .iter()
                        .position(|l| *l == s.tags[k])
                        .expect("label in set") as u32,
                );
            }
            w.ids
                .extend(p.iter().take((len - 1).saturating_sub(w.ids.len())));
        }
        w.ids.push(sep);
        windows.push(w);
        gold.push(tags);
    }
    let mut model =
        TokenClassifier::new(checkpoint.encoder(&device)?, labels.len(), false, &device);
    let mut optim = AdamW::new(AdamWConfig {
        weight_decay: 0.01,
        ..AdamWConfig::default()
    });
    let mut next = 0;
    let mut real_tokens = 0usize;
    let timing = time(warmup, steps, || {
        let picked: Vec<&Window> = windows[next * batch..(next + 1) * batch].iter().collect();
        let g: Vec<u32> = gold[next * batch..(next + 1) * batch]
            .iter()
            .flatten()
            .copied()
            .collect();
        if next >= warmup {
            real_tokens += picked.iter().map(|w| w.ids.len()).sum::<usize>();
        }
        next += 1;
        let wb = make_batch(&picked, tokenizer.pad_id, &device);
        let loss = ner_loss(&model, &wb, &g, &labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let scale = clip_scale(global_norm(&model, &grads), 1.0);
        model = optim.step(model.clone(), grads, 5e-5, scale);
    });
    let seconds = timing.total_ms / 1e3;
    Ok((timing, real_tokens as f64 / seconds))
}

/// One user against `items` cached news vectors of `dim` (random unit vectors written to a
/// cache file in a temporary directory, then mapped as `positio recommend` maps them), the
/// best 10 kept. Returns the timing and the file's bytes.
pub(crate) fn recommend_top(
    items: usize,
    dim: usize,
    run: &Workload,
) -> crate::Result<(Timing, u64)> {
    use crate::tasks::recommend::{read_cache, write_cache, NewsVectors};
    let mut rng = crate::rng::Rng::new(7);
    let mut flat: Vec<f32> = (0..items * dim)
        .map(|_| rng.uniform() as f32 - 0.5)
        .collect();
    for row in flat.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|x| *x /= norm);
    }
    let user: Vec<f32> = flat[..dim].to_vec();
    let path = std::env::temp_dir().join(format!("positio-bench-{}.f32", std::process::id()));
    write_cache(&path, &NewsVectors::from_rows(flat, dim))?;
    let bytes = std::fs::metadata(&path)
        .map_err(|e| crate::Error::io(&path, "read", e))?
        .len();
    let vectors = read_cache(&path, dim, items)?
        .ok_or_else(|| crate::Error::file(&path, "the cache just written does not read back"))?;
    let mut found = 0;
    let t = time(run.warmup, run.steps, || {
        found = vectors.top(&user, 10, &[]).len();
    });
    drop(vectors);
    let _ = std::fs::remove_file(&path);
    if found != 10.min(items) {
        return Err(crate::Error::invalid(
            "the top-10 search found too few news",
        ));
    }
    Ok((t, bytes))
}
