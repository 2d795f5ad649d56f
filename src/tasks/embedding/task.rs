//! Bi-encoder fine-tuning as a [`Task`]: (anchor, positive[, negatives]) pairs, the multiple
//! negatives ranking loss of sentence-transformers (`MultipleNegativesRankingLoss`), batches
//! without repeated texts, selection by development nDCG@10 on a BEIR directory.
//!
//! The loss: anchors `A` `[B, h]` and candidates `C` = the batch's positives then its
//! negatives `[B·(1 + m), h]`, both pooled as the model pools and L2-normalised;
//! `scores = scale · A Cᵀ` `[B, B·(1 + m)]`; cross-entropy with anchor `i`'s target at column
//! `i`, its own positive. Every other positive in the batch is a negative for free, which is why a
//! batch must not hold one text twice ([`Sampling::without_duplicates`]).

use super::{
    sentence_transformers_max_len, sentence_transformers_pooling, sentence_vectors,
    write_sentence_transformers, Embedder, SentencePooling,
};
use crate::data::beir::{self, BeirData};
use crate::data::pairs;
use crate::data::tokenizer::Tokenizer;
use crate::model::config::ModelConfig;
use crate::model::encoder::{Batch, EncoderModel};
use crate::model::pooling::l2_normalize;
use crate::tasks::retrieval::{commands::dense_run, metrics};
use crate::train::config::{FineTuneSettings, RunSettings, TrainConfig};
use crate::train::sampler::Sampling;
use crate::train::trainer::{backward, BatchGradients, BatchLoss, GradientOf, Metrics, Task};
use crate::{hf, kernels, Error, Result};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[embed]` of `run.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// The model to start from (a sentence-transformers or BERT directory).
    pub model: String,
    /// Training pairs: JSON Lines or TSV (`data::pairs`).
    pub train: String,
    /// A BEIR directory to select the best epoch by nDCG@10 (optional: without it the last model
    /// is kept).
    pub dev: String,
    /// The development qrels: `qrels/{dev_split}.tsv`.
    pub dev_split: String,
    /// Word pieces per text; 0: the model's own limit (sentence-transformers' `max_seq_length`).
    pub max_len: usize,
    /// The similarity scale of the loss (sentence-transformers' default, 20).
    pub scale: f64,
    /// Gradient cache: embed a batch this many texts at a time, so that a large batch (many
    /// in-batch negatives) trains in the memory of a small one, with the same gradients
    /// (sentence-transformers' `CachedMultipleNegativesRankingLoss`); 0: the whole batch at once.
    pub mini_batch: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            model: String::new(),
            train: String::new(),
            dev: String::new(),
            dev_split: "dev".into(),
            max_len: 0,
            scale: 20.0,
            mini_batch: 0,
        }
    }
}

/// What an embedding fine-tuning run is started with (saved as `run.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedSettings {
    pub embed: EmbedConfig,
    pub train: TrainConfig,
}

impl RunSettings for EmbedSettings {
    /// One epoch at 2e-5 with 10 % warm-up, batches of 32 pairs: sentence-transformers' own
    /// fine-tuning recipe for this loss.
    fn recipe() -> Self {
        EmbedSettings {
            train: TrainConfig::fine_tuning(2e-5, 1.0),
            ..EmbedSettings::default()
        }
    }
    fn train(&self) -> &TrainConfig {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainConfig {
        &mut self.train
    }
}

impl FineTuneSettings for EmbedSettings {
    const TABLE: &'static str = "embed";
    const DEV_REQUIRED: bool = false;
    fn inputs_mut(&mut self) -> [&mut String; 3] {
        let t = &mut self.embed;
        [&mut t.model, &mut t.train, &mut t.dev]
    }
}

/// A pair as token ids.
struct EncodedPair {
    anchor: Vec<u32>,
    positive: Vec<u32>,
    negatives: Vec<Vec<u32>>,
}

/// Embedding fine-tuning as a [`Task`].
pub struct EmbedTask {
    pairs: Vec<EncodedPair>,
    /// A hash of each pair's texts, for batches without repeats.
    keys: Vec<Vec<u64>>,
    tokenizer: Tokenizer,
    config: ModelConfig,
    pub pooling: SentencePooling,
    pub max_len: usize,
    scale: f64,
    mini_batch: usize,
    dev: Option<BeirData>,
    device: Device,
}

/// FNV-1a: a text's key, the same on every machine and Rust version (a resumed run rebuilds
/// the same batches from it).
fn text_key(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl EmbedTask {
    /// Reads the model, the pairs and the development set (everything that can fail on the
    /// input, before a run directory exists).
    pub fn prepare(cfg: &EmbedConfig, device: &Device) -> Result<(EmbedTask, EncoderModel)> {
        let dir = Path::new(&cfg.model);
        let checkpoint = hf::Checkpoint::open(dir)?;
        let model = checkpoint.encoder(device)?;
        let tokenizer = checkpoint.tokenizer()?;
        let model_max = model.max_len().unwrap_or(usize::MAX);
        let max_len = match cfg.max_len {
            0 => sentence_transformers_max_len(dir)?.unwrap_or(model_max),
            n => n,
        }
        .min(model_max);
        let pooling = sentence_transformers_pooling(dir)?;
        let raw = pairs::read(Path::new(&cfg.train))?;
        let mut encoded = Vec::with_capacity(raw.len());
        let mut keys = Vec::with_capacity(raw.len());
        for p in &raw {
            let texts = std::iter::once(&p.anchor)
                .chain(std::iter::once(&p.positive))
                .chain(&p.negatives);
            keys.push(texts.map(|t| text_key(t)).collect());
            encoded.push(EncodedPair {
                anchor: tokenizer.encode(&p.anchor, max_len)?,
                positive: tokenizer.encode(&p.positive, max_len)?,
                negatives: p
                    .negatives
                    .iter()
                    .map(|n| tokenizer.encode(n, max_len))
                    .collect::<Result<_>>()?,
            });
        }
        let dev = if cfg.dev.is_empty() {
            None
        } else {
            Some(beir::read(Path::new(&cfg.dev), &cfg.dev_split)?)
        };
        tracing::info!(
            "{} training pairs ({} negatives each), up to {max_len} word pieces per text, {} pooling",
            encoded.len(),
            raw[0].negatives.len(),
            match pooling {
                SentencePooling::Mean => "mean",
                SentencePooling::Cls => "[CLS]",
            }
        );
        let task = EmbedTask {
            pairs: encoded,
            keys,
            tokenizer,
            config: checkpoint.config.clone(),
            pooling,
            max_len,
            scale: cfg.scale,
            mini_batch: cfg.mini_batch,
            dev,
            device: device.clone(),
        };
        Ok((task, model))
    }

    /// The batch's anchors, its candidates (the positives, then every pair's negatives) and
    /// their tokens.
    fn texts(&self, picked: &[usize]) -> (Vec<Vec<u32>>, Vec<Vec<u32>>, usize) {
        let examples: Vec<&EncodedPair> = picked.iter().map(|&i| &self.pairs[i]).collect();
        let anchors: Vec<Vec<u32>> = examples.iter().map(|p| p.anchor.clone()).collect();
        let mut candidates: Vec<Vec<u32>> = examples.iter().map(|p| p.positive.clone()).collect();
        candidates.extend(examples.iter().flat_map(|p| p.negatives.iter().cloned()));
        let tokens = anchors.iter().chain(&candidates).map(Vec::len).sum();
        (anchors, candidates, tokens)
    }

    /// The multiple negatives ranking loss of unit anchors `[B, h]` against unit candidates
    /// `[B·(1 + m), h]`: anchor `i`'s target is candidate `i`.
    fn contrastive_loss(&self, a: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
        let b = a.dims()[0];
        let scores = a.matmul(c.transpose()) * self.scale; // [B, B·(1 + m)]
        let targets = Tensor::<1, Int>::from_data(
            TensorData::new((0..b as i64).collect::<Vec<_>>(), [b]),
            &self.device,
        );
        kernels::cross_entropy(scores, targets)
    }

    /// Unit-norm sentence vectors of a batch of token-id sequences, `[n, hidden]`.
    fn vectors(&self, model: &EncoderModel, ids: &[Vec<u32>]) -> Tensor<2> {
        let batch = Batch::new(ids, self.tokenizer.pad_id, &self.device);
        l2_normalize(sentence_vectors(model, &batch, self.pooling))
    }
}

impl Task for EmbedTask {
    type Model = EncoderModel;

    /// Shuffled pairs, no text twice in a batch.
    fn sampling(&self) -> Sampling {
        Sampling::without_duplicates(self.keys.clone())
    }

    /// In-batch negatives are the other pairs of the same batch: with several ranks, of the
    /// same rank's shard (as PyTorch DDP without gathering).
    fn loss(&mut self, model: &EncoderModel, picked: &[usize]) -> Result<BatchLoss> {
        let (anchors, candidates, tokens) = self.texts(picked);
        let a = self.vectors(model, &anchors);
        let c = self.vectors(model, &candidates);
        Ok(BatchLoss::per_example(
            self.contrastive_loss(a, c),
            tokens,
            picked.len(),
        ))
    }

    /// With a mini-batch, the gradient cache (Gao et al. 2021): (1) every text's vector in
    /// mini-batches without keeping their graphs; (2) the loss on those vectors and its gradient
    /// with respect to each; (3) each mini-batch again, with the same dropout masks, its
    /// parameters' gradients from `vector · its gradient`, summed. Memory holds one mini-batch's
    /// graph; the gradients are those of the whole batch.
    fn gradients(
        &mut self,
        model: &EncoderModel,
        picked: &[usize],
        of: GradientOf,
    ) -> Result<BatchGradients> {
        let result = |loss, grads, tokens| BatchGradients {
            loss,
            grads,
            tokens,
            weight: picked.len(),
        };
        let factor = of.factor(picked.len());
        if self.mini_batch == 0 || self.mini_batch >= picked.len() {
            let l = self.loss(model, picked)?;
            let (value, grads) = if factor == 1.0 {
                backward(l.loss, model)
            } else {
                let value = l.loss.clone().into_scalar::<f64>();
                (value, backward(l.loss * factor, model).1)
            };
            return Ok(result(value, grads, l.tokens));
        }
        let (anchors, candidates, tokens) = self.texts(picked);
        let chunks: Vec<&[Vec<u32>]> = anchors
            .chunks(self.mini_batch)
            .chain(candidates.chunks(self.mini_batch))
            .collect();
        // One dropout seed per mini-batch, replayed in (3).
        let base = kernels::dropout_seed();
        let seed = |j: usize| base.wrapping_add(0x9E37_79B9 * j as u64);
        let mut cached = Vec::with_capacity(chunks.len());
        for (j, chunk) in chunks.iter().enumerate() {
            kernels::seed_dropout(seed(j));
            cached.push(self.vectors(model, chunk).detach());
        }
        let n_anchor_chunks = anchors.len().div_ceil(self.mini_batch);
        let a = Tensor::cat(cached[..n_anchor_chunks].to_vec(), 0).require_grad();
        let c = Tensor::cat(cached[n_anchor_chunks..].to_vec(), 0).require_grad();
        let (value, grads) = {
            let loss = self.contrastive_loss(a.clone(), c.clone());
            let value = loss.clone().into_scalar::<f64>();
            if !value.is_finite() {
                return Ok(result(value, GradientsParams::new(), tokens));
            }
            // The loss's factor rides on into every vector's gradient, hence every parameter's.
            let scaled = if factor == 1.0 { loss } else { loss * factor };
            (value, scaled.backward())
        };
        let grad_of = |t: &Tensor<2>| -> Result<Vec<f32>> {
            let g = t
                .grad(&grads)
                .ok_or_else(|| Error::invalid("no gradient for the cached vectors"))?;
            g.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| Error::invalid(format!("cannot read a gradient: {e:?}")))
        };
        let hidden = self.config.hidden_size;
        let vector_grads = [grad_of(&a)?, grad_of(&c)?].concat();
        let mut accumulator = GradientsAccumulator::new();
        let mut row = 0;
        for (j, chunk) in chunks.iter().enumerate() {
            kernels::seed_dropout(seed(j));
            let v = self.vectors(model, chunk);
            let rows = chunk.len();
            let d = Tensor::<2>::from_data(
                TensorData::new(
                    vector_grads[row * hidden..(row + rows) * hidden].to_vec(),
                    [rows, hidden],
                ),
                &self.device,
            );
            row += rows;
            let surrogate = (v * d).sum();
            accumulator.accumulate(
                model,
                GradientsParams::from_grads(surrogate.backward(), model),
            );
        }
        kernels::seed_dropout(seed(chunks.len()));
        Ok(result(value, accumulator.grads(), tokens))
    }

    /// nDCG@10 and the other retrieval measures on the development set (exact search).
    fn evaluate(&mut self, model: &EncoderModel) -> Result<Metrics> {
        let Some(dev) = &self.dev else {
            return Ok(Vec::new());
        };
        let device = model.embeddings.word_embeddings.weight.device();
        let embedder = Embedder::from_parts(
            model.clone(),
            self.tokenizer.clone(),
            self.max_len,
            self.pooling,
            &device,
        );
        let run = dense_run(&embedder, dev, 100, 64)?;
        let m = metrics::evaluate(&run, &dev.qrels).mean;
        Ok(vec![
            ("ndcg@10".into(), m.ndcg_at_10),
            ("mrr@10".into(), m.mrr_at_10),
            ("recall@10".into(), m.recall_at_10),
            ("recall@100".into(), m.recall_at_100),
            ("map@100".into(), m.map_at_100),
        ])
    }

    fn selection(&self) -> Option<(&'static str, bool)> {
        self.dev.as_ref().map(|_| ("ndcg@10", true))
    }

    /// A sentence-transformers directory: the encoder, its tokenizer, and the pooling and
    /// normalisation modules.
    fn save_model(&self, model: &EncoderModel, dir: &Path) -> Result<()> {
        hf::save(model, &self.config, dir, Some(&self.tokenizer.path))?;
        let hidden = self.config.hidden_size;
        write_sentence_transformers(dir, hidden, self.pooling, self.max_len)
    }

    fn load_model(&self, dir: &Path) -> Result<EncoderModel> {
        hf::Checkpoint::open(dir)?.encoder(&self.device)
    }
}
