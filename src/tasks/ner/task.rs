//! NER fine-tuning as a [`Task`]: its settings (`[ner]` + `[train]` of `run.toml`), the data
//! read into windows, selection by development entity F1.

use crate::data::conll::{self, Sentence};
use crate::data::tags::{label_set, Scheme};
use crate::data::tokenizer::Tokenizer;
use crate::model::config::ModelConfig;
use crate::model::heads::TokenClassifier;
use crate::tasks::ner::model::{loss, predict_windows};
use crate::tasks::ner::seqeval::{entity_report, token_report, Report};
use crate::tasks::ner::windows::{all_windows, make_batch, Window};
use crate::train::config::{FineTuneSettings, RunSettings, TrainConfig};
use crate::train::sampler::{Position, Sampling};
use crate::train::trainer::{BatchLoss, LegacyPosition, Metrics, Task};
use crate::{hf, Error, Result};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Fine-tuning settings specific to NER (`[ner]` of a TOML config and of the run's
/// `run.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NerConfig {
    /// The model to start from: any BERT directory.
    pub model: String,
    /// Training file (CoNLL columns).
    pub train: String,
    /// Development file, for model selection.
    pub dev: String,
    /// A CRF layer over the emissions.
    pub crf: bool,
    /// Word pieces per window, \[CLS\] and \[SEP\] included.
    pub max_len: usize,
    /// 0-based tag column (default: the last).
    pub tag_column: Option<usize>,
    /// Tag scheme of the files (default: detected).
    pub scheme: Option<Scheme>,
}

impl Default for NerConfig {
    fn default() -> Self {
        NerConfig {
            model: String::new(),
            train: String::new(),
            dev: String::new(),
            crf: false,
            max_len: 128,
            tag_column: None,
            scheme: None,
        }
    }
}

/// What a NER fine-tuning run is started with (saved as `run.toml`, checked on resume).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NerSettings {
    pub ner: NerConfig,
    pub train: TrainConfig,
}

impl RunSettings for NerSettings {
    /// 5 epochs at 1e-4 with 10 % warm-up: better than transformers' usual 3 at 5e-5 on
    /// CoNLL-2003 (docs/RESULTS.md).
    fn recipe() -> Self {
        NerSettings {
            train: TrainConfig::fine_tuning(1e-4, 5.0),
            ..NerSettings::default()
        }
    }
    fn train(&self) -> &TrainConfig {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainConfig {
        &mut self.train
    }
}

impl FineTuneSettings for NerSettings {
    const TABLE: &'static str = "ner";
    fn inputs_mut(&mut self) -> [&mut String; 3] {
        let t = &mut self.ner;
        [&mut t.model, &mut t.train, &mut t.dev]
    }
}

/// NER fine-tuning as a [`Task`]: shuffled windows, selection by development entity F1.
pub struct NerTask {
    pub labels: Vec<String>,
    config: ModelConfig,
    tokenizer: Tokenizer,
    train: Vec<Window>,
    train_gold: Vec<Vec<u32>>,
    dev: Vec<Sentence>,
    dev_windows: Vec<Window>,
    device: Device,
    pub last_reports: Option<(Report, Report)>,
}

impl NerTask {
    /// Reads the data and prepares the model: a base encoder gets a fresh head for the labels of
    /// the training data; a token-classification model with the same labels keeps its head.
    pub fn prepare(cfg: &NerConfig, device: &Device) -> Result<(NerTask, TokenClassifier)> {
        // Data: the label set comes from the training file; the development file may not add
        // labels.
        let (train, _) = conll::read_iob2(Path::new(&cfg.train), cfg.tag_column, cfg.scheme)?;
        let (dev, _) = conll::read_iob2(Path::new(&cfg.dev), cfg.tag_column, cfg.scheme)?;
        let labels = label_set(train.iter().flat_map(|s| &s.tags));
        let unknown: Vec<&String> = dev
            .iter()
            .flat_map(|s| &s.tags)
            .filter(|t| !labels.contains(t))
            .collect();
        if let Some(t) = unknown.first() {
            return Err(Error::file(
                &cfg.dev,
                format!("tag {t} does not occur in the training data"),
            ));
        }
        // Tokenizer and model, from one reading of the checkpoint.
        let checkpoint = hf::Checkpoint::open(Path::new(&cfg.model))?;
        let tokenizer = checkpoint.tokenizer()?;
        let mut config = checkpoint.config.clone();
        let keep_head = config.labels().as_ref() == Some(&labels) && config.crf() == cfg.crf;
        let model = if keep_head {
            checkpoint.token_classifier(labels.len(), device)?
        } else {
            TokenClassifier::new(checkpoint.encoder(device)?, labels.len(), cfg.crf, device)
        };
        let max_len = cfg.max_len.min(model.bert.max_len().unwrap_or(usize::MAX));
        config.set_labels(&labels);
        config.set_crf(cfg.crf);
        config.window_length = Some(max_len);
        config.architectures = vec!["BertForTokenClassification".into()];
        // Windows of at most `max_len` word pieces, with the gold label of each word.
        let train_windows = all_windows(&tokenizer, &train, max_len)?;
        let index = |t: &String| labels.iter().position(|l| l == t).expect("label in set") as u32;
        let train_gold = train_windows
            .iter()
            .map(|w| {
                w.words
                    .iter()
                    .map(|&i| index(&train[w.sentence].tags[i]))
                    .collect()
            })
            .collect();
        let dev_windows = all_windows(&tokenizer, &dev, max_len)?;
        let task = NerTask {
            labels,
            config,
            tokenizer,
            train: train_windows,
            train_gold,
            dev,
            dev_windows,
            device: device.clone(),
            last_reports: None,
        };
        Ok((task, model))
    }
}

impl Task for NerTask {
    type Model = TokenClassifier;

    /// Shuffled windows; the last batch of an epoch may be short, as in PyTorch's DataLoader.
    fn sampling(&self) -> Sampling {
        Sampling::shuffled(self.train.len())
    }

    fn loss(&mut self, model: &TokenClassifier, picked: &[usize]) -> Result<BatchLoss> {
        let ws: Vec<&Window> = picked.iter().map(|&i| &self.train[i]).collect();
        let gold: Vec<u32> = picked
            .iter()
            .flat_map(|&i| self.train_gold[i].iter().copied())
            .collect();
        let wb = make_batch(&ws, self.tokenizer.pad_id, &self.device);
        let tokens = ws.iter().map(|w| w.ids.len()).sum();
        // Cross-entropy is a mean over the labelled pieces; the CRF's over the windows.
        let weight = if model.crf.is_some() {
            ws.len()
        } else {
            gold.len()
        };
        Ok(BatchLoss {
            loss: loss(model, &wb, &gold, &self.labels),
            tokens,
            weight,
        })
    }

    fn evaluate(&mut self, model: &TokenClassifier) -> Result<Metrics> {
        let lengths: Vec<usize> = self.dev.iter().map(|s| s.words.len()).collect();
        let (predicted, _) = predict_windows(
            model,
            &self.dev_windows,
            &lengths,
            &self.labels,
            self.tokenizer.pad_id,
            64,
        )?;
        let gold: Vec<Vec<String>> = self.dev.iter().map(|s| s.tags.clone()).collect();
        let (entity, token) = (
            entity_report(&gold, &predicted),
            token_report(&gold, &predicted),
        );
        let metrics = vec![
            ("entity_precision".into(), entity.micro.precision),
            ("entity_recall".into(), entity.micro.recall),
            ("entity_f1".into(), entity.micro.f1),
            ("token_f1".into(), token.micro.f1),
        ];
        self.last_reports = Some((entity, token));
        Ok(metrics)
    }

    fn selection(&self) -> Option<(&'static str, bool)> {
        Some(("entity_f1", true))
    }

    /// Before the shared sampler, NER saved the epoch and the windows drawn in it, in the
    /// same order as now.
    fn legacy_position(&self, state: &serde_json::Value, batch_size: usize) -> Result<Position> {
        let legacy: LegacyPosition = serde_json::from_value(state.clone())
            .map_err(|e| Error::invalid(format!("data position: {e}")))?;
        Ok(Position {
            epoch: legacy.epoch,
            batch: legacy.cursor.div_ceil(batch_size.max(1)),
        })
    }

    fn save_model(&self, model: &TokenClassifier, dir: &Path) -> Result<()> {
        hf::save(model, &self.config, dir, Some(&self.tokenizer.path))
    }

    fn load_model(&self, dir: &Path) -> Result<TokenClassifier> {
        hf::load_token_classifier(dir, self.labels.len(), &self.device)
    }
}
