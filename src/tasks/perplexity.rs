//! `positio eval lm`: a causal language model's perplexity on held-out text at a chosen length,
//! optionally with RoPE scaled past its training length, for the length-extrapolation study.
//!
//! The text is packed as pretraining packs it (documents joined, each followed by [SEP]; pieces
//! of `len - 2` tokens wrapped in \[CLS\] … [SEP]); every position but the last predicts the next
//! token. The same first `tokens` tokens of the text are read at every length, so that cells
//! compare like with like. Perplexity is per word piece: exp(mean negative log-likelihood).

use crate::data::corpus::CorpusSpec;
use crate::data::dataset::{packed, SEP};
use crate::model::config::{PositionKind, RopeScaling};
use crate::model::encoder::Batch;
use crate::train::masking::{lm_targets, next_token_targets};
use crate::{hf, Error, Result};
use burn::module::Module;
use burn::tensor::Device;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone)]
pub struct LmEvalOptions {
    /// Tokens per sequence, \[CLS\] and [SEP] included.
    pub len: usize,
    /// Text tokens to read (the same at every length).
    pub tokens: usize,
    /// RoPE scaling to apply instead of the model's own.
    pub rope_scaling: Option<RopeScaling>,
}

/// One cell of the study.
#[derive(Debug, Serialize)]
pub struct LmEvalReport {
    pub len: usize,
    pub position: String,
    pub rope_scaling: Option<RopeScaling>,
    pub sequences: usize,
    /// Predicted tokens.
    pub predictions: usize,
    /// Mean negative log-likelihood per predicted token (nats); `None` when not applicable.
    pub nll: Option<f64>,
    pub perplexity: Option<f64>,
    pub bits_per_token: Option<f64>,
    /// Why a cell has no number (a learned position table shorter than `len`).
    pub note: Option<String>,
    pub seconds: f64,
    /// Peak resident memory of the process so far (MiB).
    pub peak_rss_mib: f64,
}

/// The process's peak resident set size in MiB (Linux: `ru_maxrss` in KiB).
fn peak_rss_mib() -> f64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage fills the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            return usage.ru_maxrss as f64 / 1024.0;
        }
    }
    f64::NAN
}

/// Evaluates the causal LM in `model_dir` on the text of `corpus`.
pub fn evaluate(
    model_dir: &Path,
    corpus: &CorpusSpec,
    options: &LmEvalOptions,
    device: &Device,
) -> Result<LmEvalReport> {
    let start = Instant::now();
    let mut checkpoint = hf::Checkpoint::open(model_dir)?;
    let config = &mut checkpoint.config;
    if !config.causal {
        return Err(Error::file(
            model_dir.join(hf::CONFIG),
            "a bidirectional (masked-LM) model: eval lm measures causal LMs (pretrain --objective clm)",
        ));
    }
    if options.len < 3 {
        return Err(Error::config(
            "--len",
            format!(
                "must be at least 3 ([CLS], a token, [SEP]), got {}",
                options.len
            ),
        ));
    }
    if let Some(s) = options.rope_scaling {
        if config.position_embedding_type != PositionKind::Rope {
            return Err(Error::config(
                "--rope-scaling",
                format!(
                    "applies to RoPE models; this one uses {}",
                    config.position_embedding_type.name()
                ),
            ));
        }
        config.rope_scaling = Some(s);
    }
    let mut report = LmEvalReport {
        len: options.len,
        position: config.position_embedding_type.name().to_string(),
        rope_scaling: config.rope_scaling,
        sequences: 0,
        predictions: 0,
        nll: None,
        perplexity: None,
        bits_per_token: None,
        note: None,
        seconds: 0.0,
        peak_rss_mib: 0.0,
    };
    let model = checkpoint.language_model(device)?;
    if let Some(max) = model.bert.max_len() {
        if options.len > max {
            report.note = Some(format!("n/a: learned absolute positions end at {max}"));
            report.seconds = start.elapsed().as_secs_f64();
            report.peak_rss_mib = peak_rss_mib();
            return Ok(report);
        }
    }
    let tokenizer = checkpoint.tokenizer()?;

    // The first `tokens` tokens of the text, packed as pretraining packs them.
    let mut stream: Vec<u32> = Vec::with_capacity(options.tokens + 1);
    let enough = |s: &Vec<u32>| s.len() >= options.tokens;
    corpus.for_each_document(|doc| {
        if enough(&stream) {
            return Ok(());
        }
        let enc = tokenizer
            .inner()
            .encode(doc, false)
            .map_err(|e| Error::file(&tokenizer.path, format!("tokenisation failed: {e}")))?;
        stream.extend(enc.get_ids());
        stream.push(SEP);
        Ok(())
    })?;
    stream.truncate(options.tokens);
    let body = options.len - 2;
    let sequences: Vec<Vec<u32>> = stream
        .chunks_exact(body)
        .map(|c| packed(c.iter().copied(), options.len))
        .collect();
    if sequences.is_empty() {
        return Err(Error::invalid(format!(
            "the text has {} tokens: not one sequence of {}",
            stream.len(),
            options.len
        )));
    }
    // About 2048 predicted tokens per forward pass (the vocabulary logits dominate memory).
    let per_batch = (2048 / options.len).max(1);
    let (mut nll_sum, mut count) = (0.0f64, 0usize);
    let model = model.valid();
    for chunk in sequences.chunks(per_batch) {
        let (positions, targets) = next_token_targets(chunk, options.len);
        let t = lm_targets(&positions, &targets, device);
        let logits = model.logits(&Batch::new(chunk, 0, device), t.positions);
        let loss = crate::kernels::cross_entropy(logits, t.targets).into_scalar::<f64>();
        nll_sum += loss * targets.len() as f64;
        count += targets.len();
    }
    let nll = nll_sum / count as f64;
    report.sequences = sequences.len();
    report.predictions = count;
    report.nll = Some(nll);
    report.perplexity = Some(nll.exp());
    report.bits_per_token = Some(nll / std::f64::consts::LN_2);
    report.seconds = start.elapsed().as_secs_f64();
    report.peak_rss_mib = peak_rss_mib();
    Ok(report)
}
