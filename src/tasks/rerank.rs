//! Cross-encoder rerankers: a (query, passage) pair read together by the encoder, one logit,
//! sigmoid = relevance. Trained on the same pairs as embeddings: each (anchor, positive) is a
//! relevant example, each of its negatives (the file's, or answers of other pairs drawn at
//! random) an irrelevant one, with binary cross-entropy — which is one-label multi-label
//! classification, so the classifier's task trains it and writes a
//! `BertForSequenceClassification` with one label that sentence-transformers' `CrossEncoder`
//! loads (it applies the sigmoid to a one-label model).

use crate::data::labelled::Example;
use crate::data::pairs::{self, Pair};
use crate::model::heads::sequence::SequenceClassifier;
use crate::rng::Rng;
use crate::runtime::DeviceKind;
use crate::tasks::classify::{ClassifierModel, ClassifyConfig, ClassifyTask};
use crate::train::config::{FineTuneSettings, RunSettings, TrainConfig};
use crate::train::trainer::{fine_tune, Outcome};
use crate::{Error, Result};
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The one label of a reranker.
pub const RELEVANT: &str = "relevant";

/// `[rerank]` of `run.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RerankConfig {
    /// The model to start from (any BERT directory).
    pub model: String,
    /// Training pairs: JSON Lines or TSV (`data::pairs`).
    pub train: String,
    /// Development pairs, to keep the best epoch by micro-F1 (optional: without them a tenth of
    /// the training pairs, drawn with the seed, is held out).
    pub dev: String,
    /// Negatives per pair drawn from the other pairs' answers when the file gives none.
    pub negatives: usize,
    /// Word pieces per (query, passage), \[CLS\] and both \[SEP\] included.
    pub max_len: usize,
}

impl Default for RerankConfig {
    fn default() -> Self {
        RerankConfig {
            model: String::new(),
            train: String::new(),
            dev: String::new(),
            negatives: 3,
            max_len: 256,
        }
    }
}

/// What a reranker fine-tuning run is started with (saved as `run.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RerankSettings {
    pub rerank: RerankConfig,
    pub train: TrainConfig,
}

impl RunSettings for RerankSettings {
    /// One epoch at 2e-5 with 10 % warm-up: sentence-transformers' cross-encoder recipe.
    fn recipe() -> Self {
        RerankSettings {
            train: TrainConfig::fine_tuning(2e-5, 1.0),
            ..RerankSettings::default()
        }
    }
    fn train(&self) -> &TrainConfig {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainConfig {
        &mut self.train
    }
}

impl FineTuneSettings for RerankSettings {
    const TABLE: &'static str = "rerank";
    const DEV_REQUIRED: bool = false;
    fn inputs_mut(&mut self) -> [&mut String; 3] {
        let t = &mut self.rerank;
        [&mut t.model, &mut t.train, &mut t.dev]
    }
}

/// Labelled (query, passage) examples of pairs: the positive relevant, each negative not; a
/// pair without negatives gets `drawn` answers of other pairs, chosen with `rng`.
fn examples(pairs: &[Pair], drawn: usize, rng: &mut Rng) -> Vec<Example> {
    let mut out = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let example = |passage: &str, relevant: bool| Example {
            text: p.anchor.clone(),
            pair: Some(passage.to_string()),
            labels: if relevant {
                vec![RELEVANT.into()]
            } else {
                Vec::new()
            },
            line: i + 1,
        };
        out.push(example(&p.positive, true));
        if !p.negatives.is_empty() {
            out.extend(p.negatives.iter().map(|n| example(n, false)));
            continue;
        }
        let mut taken = 0;
        for _ in 0..drawn * 20 {
            if taken == drawn {
                break;
            }
            let other = &pairs[rng.below(pairs.len())].positive;
            if *other != p.positive {
                out.push(example(other, false));
                taken += 1;
            }
        }
    }
    out
}

/// `positio finetune rerank`.
pub fn finetune(
    run: &RerankSettings,
    out: &Path,
    resume: bool,
    device: DeviceKind,
) -> Result<Outcome> {
    let cfg = &run.rerank;
    let mut rng = Rng::new(run.train.seed ^ 0x5EED_2E2A);
    let mut train = pairs::read(Path::new(&cfg.train))?;
    let dev = if cfg.dev.is_empty() {
        if train.len() < 10 {
            return Err(Error::file(
                &cfg.train,
                format!(
                    "{} pairs: give --dev, or at least 10 pairs to hold a tenth out",
                    train.len()
                ),
            ));
        }
        rng.shuffle(&mut train);
        train.split_off(train.len() - train.len() / 10)
    } else {
        pairs::read(Path::new(&cfg.dev))?
    };
    let classify = ClassifyConfig {
        model: cfg.model.clone(),
        train: cfg.train.clone(),
        dev: if cfg.dev.is_empty() {
            cfg.train.clone()
        } else {
            cfg.dev.clone()
        },
        multi_label: true,
        max_len: cfg.max_len,
        ..ClassifyConfig::default()
    };
    let (train, dev) = (
        examples(&train, cfg.negatives, &mut rng),
        examples(&dev, cfg.negatives, &mut rng),
    );
    let count = train.len();
    let prepare = |device: &Device| ClassifyTask::from_examples(&classify, train, dev, device);
    let describe = |_: &ClassifyTask, model: &SequenceClassifier| {
        tracing::info!(
            "fine-tuning {} ({} parameters) as a reranker on {} (query, passage) examples",
            cfg.model,
            model.num_params(),
            count
        )
    };
    let (_, summary) = fine_tune(run, out, resume, device, prepare, describe)?;
    Ok(summary.report("micro_f1", out))
}

/// A fine-tuned reranker: relevance in (0, 1) of passages to a query.
pub struct Reranker {
    model: ClassifierModel,
}

impl Reranker {
    /// A one-label sequence classifier (what `finetune rerank` or a sentence-transformers
    /// `CrossEncoder` with one label writes).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        use crate::hf::FromCheckpoint;
        let mut model = ClassifierModel::load(dir, None, device)?;
        if model.labels.len() != 1 {
            return Err(Error::file(
                dir.join("config.json"),
                format!(
                    "{} labels: a reranker has one (a relevance logit)",
                    model.labels.len()
                ),
            ));
        }
        // The one logit is read through a sigmoid whatever `problem_type` says: a CrossEncoder
        // saved without it would otherwise get a softmax over one logit, 1.0 everywhere.
        model.multi_label = true;
        Ok(Reranker { model })
    }

    /// sigmoid(logit) of each (query, passage), in order.
    pub fn scores(&self, query: &str, passages: &[String], batch_size: usize) -> Result<Vec<f32>> {
        let examples: Vec<Example> = passages
            .iter()
            .map(|p| Example {
                text: query.to_string(),
                pair: Some(p.clone()),
                labels: Vec::new(),
                line: 0,
            })
            .collect();
        let encoded = self.model.encode(&examples)?;
        let probs = self.model.probabilities(&encoded, batch_size);
        Ok(probs.into_iter().map(|p| p[0]).collect())
    }
}
