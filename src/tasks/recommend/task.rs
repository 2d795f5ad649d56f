//! Recommender fine-tuning as a [`Task`]: one training example per impression and epoch — one
//! clicked candidate drawn uniformly and `negatives` non-clicked ones from the same impression
//! (without replacement; with it when the impression shows fewer) — softmax cross-entropy over
//! the 1 + K scores with the click as target (NRMS's loss, K = 4). Selection by development AUC.
//!
//! The user tower reads the history through a cache of pooled encoder states of every training
//! news item, computed in inference mode `history_refresh` times an epoch (frozen: once): the
//! projection and the attention train on it, while the encoder learns from the candidates.
//! Encoding fifty histories per impression with gradients would cost ten times the candidates.
//! Refreshing matters: a cache kept for a whole epoch lags the encoder, and the model learns to
//! match fresh candidates to stale histories, which inference never shows it (development AUC
//! 0.736 with one refresh an epoch, 0.783 with ten, docs/RESULTS.md). The cache is saved with
//! each checkpoint, so a resumed run continues exactly.
//!
//! Each batch of impressions also carries `history_examples` leave-one-out examples per
//! impression, drawn from the training users' histories: one history item is the click, the
//! rest of that history the user, and `negatives` random training news (outside the history)
//! the non-clicks, all scored from the cache. An impression records a handful of clicks, a
//! history a dozen more; these examples teach the top (projection and attention) what a user's
//! clicks have in common at almost no cost, since nothing of them runs through the encoder.
//! Eight of them per impression lift one epoch's development AUC on the simulated logs from
//! 0.786 to 0.793 with the encoder frozen, from 0.783 to 0.792 fine-tuned (docs/RESULTS.md).
//!
//! A batch projects each distinct cached news item once and gathers its rows (histories repeat
//! news, and padding repeats row 0); with the encoder frozen the development news' pooled
//! states are also encoded once, so a frozen step is the towers' work alone.
//!
//! The negatives of an impression are drawn from a stream keyed by (seed, batches seen,
//! impression), the history examples of a batch from one keyed by (seed, batches seen), so a
//! resumed run draws the same ones.

use super::model::{RecommendHead, RecommendModel, UserPooling, SETTINGS_FILE};
use super::{pad_histories, NewsVectors, Recommender};
use crate::data::mind::{self, MindData};
use crate::data::tokenizer::Tokenizer;
use crate::hf::{self, Weights};
use crate::model::config::ModelConfig;
use crate::model::encoder::Batch;
use crate::rng::Rng;
use crate::train::config::{FineTuneSettings, RunSettings, TrainConfig};
use crate::train::sampler::Sampling;
use crate::train::trainer::{BatchLoss, Metrics, Task};
use crate::{kernels, Error, Result};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which encoder parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderMode {
    /// All of them, end to end.
    #[default]
    Finetune,
    /// None: news vectors come from the cache, only the towers' top trains.
    Frozen,
    /// The top `n` layers (the embeddings and the layers below stay).
    Top(usize),
}

impl std::str::FromStr for EncoderMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "finetune" => Ok(EncoderMode::Finetune),
            "frozen" => Ok(EncoderMode::Frozen),
            _ => s
                .strip_prefix("top-")
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .map(EncoderMode::Top)
                .ok_or_else(|| {
                    format!("encoder {s:?}: expected finetune, frozen or top-N (N ≥ 1 layers)")
                }),
        }
    }
}

impl std::fmt::Display for EncoderMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncoderMode::Finetune => write!(f, "finetune"),
            EncoderMode::Frozen => write!(f, "frozen"),
            EncoderMode::Top(n) => write!(f, "top-{n}"),
        }
    }
}

impl Serialize for EncoderMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EncoderMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `[recommend]` of `run.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendConfig {
    /// The model to start from (a BERT or sentence-transformers directory).
    pub model: String,
    /// A MIND directory (news.tsv, behaviors.tsv) with click labels.
    pub train: String,
    /// A MIND directory to select the best epoch by AUC (optional: without it the last model
    /// is kept).
    pub dev: String,
    /// Word pieces of a news text (title + abstract).
    pub max_len: usize,
    /// Non-clicked candidates per click in the loss (K).
    pub negatives: usize,
    /// How the user tower pools the history in training.
    pub user_pooling: UserPooling,
    /// How a user is pooled when scoring (the development measures, eval, serving).
    pub score_pooling: UserPooling,
    /// The most recent clicks a user vector is built from.
    pub history_len: usize,
    /// Score scale (softmax temperature).
    pub scale: f64,
    /// finetune, frozen or top-N.
    pub encoder: EncoderMode,
    /// Times per epoch the history cache is recomputed (1: at each epoch's start), so the
    /// histories follow the encoder as it learns.
    pub history_refresh: usize,
    /// Leave-one-out examples from training histories per impression of a batch (0: none).
    pub history_examples: usize,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        RecommendConfig {
            model: String::new(),
            train: String::new(),
            dev: String::new(),
            max_len: 48,
            negatives: 4,
            user_pooling: UserPooling::Attention,
            score_pooling: UserPooling::Mean,
            history_len: 50,
            scale: 20.0,
            encoder: EncoderMode::Finetune,
            history_refresh: 10,
            history_examples: 16,
        }
    }
}

/// What a recommender fine-tuning run is started with (saved as `run.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendSettings {
    pub recommend: RecommendConfig,
    pub train: TrainConfig,
}

impl RunSettings for RecommendSettings {
    /// One epoch, the encoder at 2e-5 and the towers at 1e-3 (they start from scratch), 10 %
    /// warm-up, batches of 32 impressions.
    fn recipe() -> Self {
        RecommendSettings {
            train: TrainConfig {
                head_lr: 1e-3,
                adam_eps: 1e-6,
                ..TrainConfig::fine_tuning(2e-5, 1.0)
            },
            ..RecommendSettings::default()
        }
    }
    fn train(&self) -> &TrainConfig {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainConfig {
        &mut self.train
    }
}

impl FineTuneSettings for RecommendSettings {
    const TABLE: &'static str = "recommend";
    const DEV_REQUIRED: bool = false;
    fn inputs_mut(&mut self) -> [&mut String; 3] {
        let t = &mut self.recommend;
        [&mut t.model, &mut t.train, &mut t.dev]
    }
}

/// Pooled encoder states of every training news item, and the round (a share of an epoch,
/// `history_refresh` of them an epoch) they were computed in.
struct HistoryCache {
    round: u64,
    pooled: Vec<f32>,
}

const CACHE_FILE: &str = "history_cache.safetensors";

pub struct RecommendTask {
    train: MindData,
    /// Token ids of each training news item.
    tokens: Vec<Vec<u32>>,
    /// Training impressions with a click and a non-click.
    examples: Vec<usize>,
    /// Leave-one-out examples: (an impression whose history it is, the held-out position),
    /// each distinct (user, history) once, histories of at least two clicks.
    held_out: Vec<(usize, usize)>,
    history_examples: usize,
    dev: Option<MindData>,
    /// Pooled states of the development news, kept while the encoder is frozen (they cannot
    /// change; only the projection does).
    dev_pooled: Option<Vec<f32>>,
    cache: Option<HistoryCache>,
    batches_seen: u64,
    /// Batches between history-cache refreshes.
    refresh_every: u64,
    seed: u64,
    negatives: usize,
    mode: EncoderMode,
    tokenizer: Tokenizer,
    config: ModelConfig,
    device: Device,
}

/// Reads a MIND directory that must carry click labels.
fn read_labelled(dir: &Path) -> Result<MindData> {
    let data = mind::read(dir)?;
    if !data.labelled() {
        return Err(Error::file(
            dir.join(mind::BEHAVIORS),
            "impressions without click labels (a test set): training and its development set need N-1 / N-0",
        ));
    }
    Ok(data)
}

impl RecommendTask {
    /// Reads the model and both data sets (everything that can fail on the input, before a run
    /// directory exists).
    pub fn prepare(
        settings: &RecommendSettings,
        device: &Device,
    ) -> Result<(RecommendTask, RecommendModel)> {
        let cfg = &settings.recommend;
        if cfg.negatives == 0 {
            return Err(Error::config("negatives", "must be at least 1"));
        }
        if cfg.max_len < 3 || cfg.history_len == 0 || cfg.history_refresh == 0 {
            return Err(Error::config(
                "max_len / history_len / history_refresh",
                "max_len must be at least 3 word pieces, history_len and history_refresh at least 1",
            ));
        }
        let checkpoint = hf::Checkpoint::open(Path::new(&cfg.model))?;
        let mut head = RecommendHead {
            max_len: cfg.max_len,
            user_pooling: cfg.user_pooling,
            score_pooling: Some(cfg.score_pooling),
            history_len: cfg.history_len,
            scale: cfg.scale,
        };
        // A recommender's directory starts with its own towers (e.g. a frozen run's top, before
        // the encoder is fine-tuned under it), under this run's settings; any other BERT
        // directory with fresh ones.
        let mut model = match checkpoint.dir.join(SETTINGS_FILE).exists() {
            true => RecommendModel::load(&checkpoint, device)?,
            false => RecommendModel::new(checkpoint.encoder(device)?, head, device),
        };
        let layers = model.bert.encoder.layer.len();
        if let EncoderMode::Top(n) = cfg.encoder {
            if n > layers {
                return Err(Error::config(
                    "encoder",
                    format!("top-{n}: the model has {layers} layers"),
                ));
            }
        }
        head.max_len = cfg.max_len.min(model.bert.max_len().unwrap_or(usize::MAX));
        let max_len = head.max_len;
        model.head = head;
        let model = freeze(model, cfg.encoder);
        let tokenizer = checkpoint.tokenizer()?;
        let train = read_labelled(Path::new(&cfg.train))?;
        let dev = match cfg.dev.as_str() {
            "" => None,
            d => Some(read_labelled(Path::new(d))?),
        };
        let tokens = train
            .news
            .items
            .iter()
            .map(|n| tokenizer.encode(&n.text(), max_len))
            .collect::<Result<Vec<_>>>()?;
        let examples: Vec<usize> = (0..train.impressions.len())
            .filter(|&i| {
                let labels = train.impressions[i].labels.as_deref().unwrap_or(&[]);
                labels.contains(&1) && labels.contains(&0)
            })
            .collect();
        if examples.is_empty() {
            return Err(Error::file(
                Path::new(&cfg.train).join(mind::BEHAVIORS),
                "no impression has both a click and a non-click: nothing to learn from",
            ));
        }
        let held_out = match cfg.history_examples {
            0 => Vec::new(),
            _ => held_out_clicks(&train),
        };
        let skipped = train.impressions.len() - examples.len();
        tracing::info!(
            "{} training impressions ({skipped} without both a click and a non-click skipped), {} leave-one-out history clicks ({} a batch per impression), {} news, up to {max_len} word pieces each; encoder {}, {} user pooling, scored by {}",
            examples.len(),
            held_out.len(),
            cfg.history_examples,
            train.news.len(),
            cfg.encoder,
            cfg.user_pooling,
            cfg.score_pooling,
        );
        let batch = settings.train.batch_size.max(1);
        let task = RecommendTask {
            refresh_every: (examples.len().div_ceil(batch) as u64)
                .div_ceil(cfg.history_refresh as u64)
                .max(1),
            train,
            tokens,
            examples,
            held_out,
            history_examples: cfg.history_examples,
            dev,
            dev_pooled: None,
            cache: None,
            batches_seen: 0,
            seed: settings.train.seed,
            negatives: cfg.negatives,
            mode: cfg.encoder,
            tokenizer,
            config: checkpoint.config.clone(),
            device: device.clone(),
        };
        Ok((task, model))
    }

    /// Recomputes the history cache when a round starts (frozen: only the first time).
    fn refresh_cache(&mut self, model: &RecommendModel) -> Result<()> {
        let round = self.batches_seen / self.refresh_every;
        let fresh = match (&self.cache, self.mode) {
            (None, _) => false,
            (Some(_), EncoderMode::Frozen) => true,
            (Some(c), _) => c.round == round,
        };
        if fresh {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let recommender =
            Recommender::from_parts(model.clone().valid(), self.tokenizer.clone(), &self.device);
        let pooled = recommender.pooled(&self.tokens)?;
        tracing::info!(
            "history cache: {} news encoded in {:.0} s",
            self.tokens.len(),
            started.elapsed().as_secs_f64()
        );
        self.cache = Some(HistoryCache { round, pooled });
        Ok(())
    }

    /// News vectors of cached news, `[rows.len(), hidden]`: each distinct row's pooled state
    /// projected once, then gathered (a batch's histories name the same news many times over,
    /// and padding names row 0 again and again). The gather's backward adds the gradients of
    /// repeated rows, so the loss and its gradients are those of projecting every row.
    fn cached_vectors(&self, model: &RecommendModel, rows: &[usize]) -> Tensor<2> {
        let h = self.config.hidden_size;
        let pooled = &self.cache.as_ref().expect("refreshed").pooled;
        let mut distinct = rows.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut flat = Vec::with_capacity(distinct.len() * h);
        for &r in &distinct {
            flat.extend_from_slice(&pooled[r * h..(r + 1) * h]);
        }
        let states =
            Tensor::<2>::from_data(TensorData::new(flat, [distinct.len(), h]), &self.device);
        let index: Vec<i64> = rows
            .iter()
            .map(|r| distinct.binary_search(r).expect("a distinct row") as i64)
            .collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows.len()]), &self.device);
        model.news_vectors(states).select(0, index)
    }

    /// One click and `negatives` non-clicks of impression `i`, click first.
    fn draw(&self, i: usize) -> Vec<usize> {
        let imp = &self.train.impressions[i];
        let labels = imp.labels.as_deref().expect("labelled");
        let (mut clicks, mut others) = (Vec::new(), Vec::new());
        for (&news, &y) in imp.candidates.iter().zip(labels) {
            if y == 1 {
                clicks.push(news)
            } else {
                others.push(news)
            }
        }
        let mut rng = Rng::new(
            self.seed
                ^ self.batches_seen.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        let mut drawn = vec![clicks[rng.below(clicks.len())]];
        if others.len() >= self.negatives {
            let mut pool = others;
            for k in 0..self.negatives {
                let j = k + rng.below(pool.len() - k);
                pool.swap(k, j);
                drawn.push(pool[k]);
            }
        } else {
            drawn.extend((0..self.negatives).map(|_| others[rng.below(others.len())]));
        }
        drawn
    }

    /// The leave-one-out examples of this batch (`history_examples` per impression; none
    /// without a pool), from a stream keyed by (seed, batches seen).
    fn draw_held_out(&self, impressions: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
        if self.held_out.is_empty() {
            return Vec::new();
        }
        let mut rng = Rng::new(
            (self.seed ^ self.batches_seen.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .wrapping_add(0xA076_1D64_78BD_642F),
        );
        let count = impressions * self.history_examples;
        let draw = HeldOutDraw {
            pool: &self.held_out,
            impressions: &self.train.impressions,
            news: self.tokens.len(),
            negatives: self.negatives,
        };
        (0..count).map(|_| draw.one(&mut rng)).collect()
    }
}

/// Draws leave-one-out examples from a pool of (impression, held-out position).
struct HeldOutDraw<'a> {
    pool: &'a [(usize, usize)],
    impressions: &'a [mind::Impression],
    /// Training news to draw non-clicks from.
    news: usize,
    negatives: usize,
}

impl HeldOutDraw<'_> {
    /// (the history without its held-out click, the click then `negatives` news outside the
    /// history: a few tries each, so that a history covering the news set still ends).
    fn one(&self, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
        let (i, j) = self.pool[rng.below(self.pool.len())];
        let history = &self.impressions[i].history;
        let mut rest = history.clone();
        let mut candidates = vec![rest.remove(j)];
        while candidates.len() <= self.negatives {
            let mut n = rng.below(self.news);
            for _ in 0..8 {
                if !history.contains(&n) {
                    break;
                }
                n = rng.below(self.news);
            }
            candidates.push(n);
        }
        (rest, candidates)
    }
}

/// The leave-one-out examples of a training set: every click of every distinct (user,
/// history) of at least two clicks, as (an impression with that history, the position).
fn held_out_clicks(train: &MindData) -> Vec<(usize, usize)> {
    let mut seen = std::collections::HashSet::new();
    let mut held_out = Vec::new();
    for (i, imp) in train.impressions.iter().enumerate() {
        if imp.history.len() >= 2 && seen.insert((&imp.user, &imp.history)) {
            held_out.extend((0..imp.history.len()).map(|j| (i, j)));
        }
    }
    held_out
}

/// Stops gradients where the mode says the encoder stays.
fn freeze(mut model: RecommendModel, mode: EncoderMode) -> RecommendModel {
    match mode {
        EncoderMode::Finetune => model,
        EncoderMode::Frozen => {
            model.bert = model.bert.no_grad();
            model
        }
        EncoderMode::Top(n) => {
            let bert = &mut model.bert;
            bert.embeddings = bert.embeddings.clone().no_grad();
            let below = bert.encoder.layer.len().saturating_sub(n);
            for layer in &mut bert.encoder.layer[..below] {
                *layer = layer.clone().no_grad();
            }
            model
        }
    }
}

impl Task for RecommendTask {
    type Model = RecommendModel;

    fn sampling(&self) -> Sampling {
        Sampling::shuffled(self.examples.len())
    }

    fn loss(&mut self, model: &RecommendModel, batch: &[usize]) -> Result<BatchLoss> {
        self.refresh_cache(model)?;
        let impressions: Vec<usize> = batch.iter().map(|&e| self.examples[e]).collect();
        let drawn: Vec<usize> = impressions.iter().flat_map(|&i| self.draw(i)).collect();
        let held_out = self.draw_held_out(impressions.len());
        self.batches_seen += 1;
        let (b, c, h) = (
            impressions.len() + held_out.len(),
            1 + self.negatives,
            self.config.hidden_size,
        );
        // Histories [b, n, h], zero rows (and mask 0) as padding, and the candidates [b, c, h]:
        // everything from the cache but the impressions' candidates when the encoder trains.
        let histories: Vec<&[usize]> = impressions
            .iter()
            .map(|&i| &self.train.impressions[i].history[..])
            .chain(held_out.iter().map(|(rest, _)| &rest[..]))
            .collect();
        let (mut rows, mask, n) = pad_histories(&histories, model.head.history_len);
        let encoded = match self.mode {
            EncoderMode::Frozen => 0,
            _ => drawn.len(),
        };
        rows.extend(&drawn[encoded..]);
        rows.extend(held_out.iter().flat_map(|(_, c)| c.iter().copied()));
        let cached = self.cached_vectors(model, &rows);
        let history = cached.clone().narrow(0, 0, b * n).reshape([b, n, h]);
        let (mut candidates, mut tokens) = (Vec::new(), 0);
        if encoded > 0 {
            let ids: Vec<Vec<u32>> = drawn
                .iter()
                .map(|&news| self.tokens[news].clone())
                .collect();
            tokens = ids.iter().map(Vec::len).sum();
            let batch = Batch::new(&ids, self.tokenizer.pad_id, &self.device);
            candidates.push(model.news_vectors(model.pooled(&batch)));
        }
        if rows.len() > b * n {
            candidates.push(cached.narrow(0, b * n, rows.len() - b * n));
        }
        let candidates = Tensor::cat(candidates, 0).reshape([b, c, h]);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, n]), &self.device);
        let history = history * mask.clone().unsqueeze_dim::<3>(2);
        let users = model.users(history, mask, model.head.user_pooling);
        let scores = model.scores(users, candidates); // [b, 1 + K], the click first
        let targets = Tensor::<1, Int>::zeros([b], &self.device);
        Ok(BatchLoss::per_example(
            kernels::cross_entropy(scores, targets),
            tokens,
            b,
        ))
    }

    /// AUC, MRR, nDCG@5 and nDCG@10 on the development impressions.
    fn evaluate(&mut self, model: &RecommendModel) -> Result<Metrics> {
        let Some(dev) = &self.dev else {
            return Ok(Vec::new());
        };
        let recommender =
            Recommender::from_parts(model.clone(), self.tokenizer.clone(), &self.device);
        let texts = || {
            dev.news
                .items
                .iter()
                .map(|n| n.text())
                .collect::<Vec<String>>()
        };
        let vectors = match self.mode {
            EncoderMode::Frozen => {
                if self.dev_pooled.is_none() {
                    self.dev_pooled = Some(recommender.pooled(&recommender.encode(&texts())?)?);
                }
                let pooled = self.dev_pooled.clone().expect("just encoded");
                NewsVectors::from_rows(recommender.project(pooled)?, self.config.hidden_size)
            }
            _ => recommender.news_vectors(&texts())?,
        };
        Ok(recommender.evaluate(dev, &vectors, None)?.means())
    }

    fn selection(&self) -> Option<(&'static str, bool)> {
        self.dev.as_ref().map(|_| ("auc", true))
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "batches_seen": self.batches_seen,
            "cache_round": self.cache.as_ref().map(|c| c.round),
        })
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.batches_seen = state["batches_seen"].as_u64().unwrap_or(0);
        if let (Some(cache), Some(round)) = (&mut self.cache, state["cache_round"].as_u64()) {
            cache.round = round;
        }
        Ok(())
    }

    /// The history cache, so that a resumed run scores histories as the interrupted one did.
    fn save_state_files(&self, dir: &Path) -> Result<()> {
        let Some(cache) = &self.cache else {
            return Ok(());
        };
        let h = self.config.hidden_size;
        let data = TensorData::new(cache.pooled.clone(), [cache.pooled.len() / h, h]);
        Weights::save(&[("pooled".into(), data)], &dir.join(CACHE_FILE))
    }

    fn load_state_files(&mut self, dir: &Path) -> Result<()> {
        let path = dir.join(CACHE_FILE);
        if !path.exists() {
            return Ok(());
        }
        let weights = Weights::load(&path)?;
        let pooled = weights
            .get("pooled")
            .ok_or_else(|| Error::file(&path, "no 'pooled' tensor"))?
            .clone()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::file(&path, format!("unreadable: {e:?}")))?;
        if pooled.len() != self.tokens.len() * self.config.hidden_size {
            return Err(Error::file(
                &path,
                "the cache does not match the training news (were the data changed since?)",
            ));
        }
        // The round comes with the task state (`restore`, called after).
        self.cache = Some(HistoryCache { round: 0, pooled });
        Ok(())
    }

    fn save_model(&self, model: &RecommendModel, dir: &Path) -> Result<()> {
        model.save(&self.config, &self.tokenizer.path, dir)
    }

    fn load_model(&self, dir: &Path) -> Result<RecommendModel> {
        let model = RecommendModel::load(&hf::Checkpoint::open(dir)?, &self.device)?;
        Ok(freeze(model, self.mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn impression(user: &str, history: &[usize]) -> mind::Impression {
        mind::Impression {
            id: String::new(),
            user: user.into(),
            time: String::new(),
            history: history.to_vec(),
            candidates: vec![0, 1],
            labels: Some(vec![1, 0]),
        }
    }

    #[test]
    fn every_click_of_each_distinct_user_history_is_held_out_once() {
        let impressions = vec![
            impression("U1", &[3, 5, 7]),
            impression("U1", &[3, 5, 7]), // the same user's second impression: not again
            impression("U2", &[3, 5, 7]), // another user with the same clicks: counted
            impression("U3", &[4]),       // one click: no rest to be a user
            impression("U1", &[3, 5, 7, 9]),
        ];
        let train = MindData {
            news: mind::NewsSet::default(),
            impressions,
        };
        let pool = held_out_clicks(&train);
        let expected: Vec<(usize, usize)> = [(0, 3), (2, 3), (4, 4)]
            .iter()
            .flat_map(|&(i, n)| (0..n).map(move |j| (i, j)))
            .collect();
        assert_eq!(pool, expected);
    }

    #[test]
    fn a_held_out_click_is_scored_against_news_outside_the_rest_of_its_history() {
        let impressions = vec![impression("U1", &[2, 4, 6, 8]), impression("U2", &[1, 3])];
        let pool = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)];
        let draw = HeldOutDraw {
            pool: &pool,
            impressions: &impressions,
            news: 1000,
            negatives: 4,
        };
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let (rest, candidates) = draw.one(&mut rng);
            assert_eq!(candidates.len(), 5);
            let click = candidates[0];
            let history = if rest.len() == 3 {
                &[2, 4, 6, 8][..]
            } else {
                &[1, 3][..]
            };
            let mut whole = rest.clone();
            whole.insert(history.iter().position(|&h| h == click).unwrap(), click);
            assert_eq!(whole, history, "the rest keeps its order, less the click");
            assert!(candidates[1..]
                .iter()
                .all(|n| !history.contains(n) && *n < 1000));
        }
        // The same stream draws the same examples (exact resume).
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        assert_eq!(draw.one(&mut a), draw.one(&mut b));
    }
}
