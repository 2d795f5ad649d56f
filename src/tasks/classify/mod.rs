//! Sequence classification: one label per text (sentiment, intent) or any number (news topics),
//! single texts or sentence pairs, fine-tuned from any BERT directory.
//!
//! Setup reads top-down in [`ClassifyTask::prepare`]: the labelled files, the label set (from the
//! training file; the development file may not add labels), one reading of the checkpoint
//! (tokenizer, config, model), then the encoded texts. Training batches are length-bucketed:
//! each epoch's shuffled order is cut into pools of 50 batches, each pool is sorted by length
//! and cut into batches, and the batches are shuffled again, so a batch is padded only to a
//! length close to its texts' own (short sentences dominate sentiment data).
//!
//! Multi-label decisions: every label at or above its threshold. One global threshold is tuned
//! on the development set at each evaluation, and on request one per label
//! ([`tune_label_thresholds`]); both are saved in `config.json` and read back by
//! [`ClassifierModel`], which every consumer (eval, predict, the server, the monitor) decides
//! with.

pub mod commands;
pub mod report;

use crate::data::labelled::{self, Example, ReadOptions};
use crate::data::tokenizer::Tokenizer;
use crate::hf;
use crate::model::config::{ModelConfig, Pooling, ProblemType};
use crate::model::encoder::Batch;
use crate::model::heads::sequence::{binary_cross_entropy, cross_entropy, SequenceClassifier};
use crate::tasks::scores;
use crate::train::config::{FineTuneSettings, RunSettings, TrainConfig};
use crate::train::sampler::{Position, Sampling};
use crate::train::trainer::{BatchLoss, LegacyPosition, Metrics, Task};
use crate::{Error, Result};
use burn::tensor::Device;
use report::Report;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Fine-tuning settings specific to classification (`[classify]` of a TOML config and of the
/// run's `run.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyConfig {
    /// The model to start from: any BERT directory.
    pub model: String,
    pub train: String,
    pub dev: String,
    /// Any number of labels per text (sigmoid per label, binary cross-entropy, a decision
    /// threshold tuned on the development set).
    pub multi_label: bool,
    /// How token states become one vector [default: BERT's \[CLS\] pooler for a Transformer, the
    /// mean of the token states for a recurrent encoder, whose \[CLS\] state has seen only
    /// itself in the forward direction].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// Word pieces per text (pair) with \[CLS\] and \[SEP\]; longer inputs are truncated.
    pub max_len: usize,
    /// Weigh each class by `n / (classes · count)` in the single-label loss (scikit-learn's
    /// "balanced"); multi-label: weigh each label's positive examples by
    /// `max(1, sqrt(negatives / positives))` (PyTorch's `pos_weight`, square-rooted so that a
    /// label with one positive in thousands is not weighted a thousandfold).
    pub class_weights: bool,
    /// Multi-label: tune a decision threshold per label on the development set (labels with
    /// fewer than [`MIN_TUNING_POSITIVES`] development positives keep the global one), saved with
    /// the model and used by `eval`, `predict`, the server and the monitor.
    pub per_label_thresholds: bool,
    pub read: ReadOptions,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        ClassifyConfig {
            model: String::new(),
            train: String::new(),
            dev: String::new(),
            multi_label: false,
            pooling: None,
            max_len: 128,
            class_weights: false,
            per_label_thresholds: false,
            read: ReadOptions::default(),
        }
    }
}

/// What a classification fine-tuning run is started with (saved as `run.toml`, checked on
/// resume).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifySettings {
    pub classify: ClassifyConfig,
    pub train: TrainConfig,
}

impl RunSettings for ClassifySettings {
    /// transformers' fine-tuning recipe: lr 5e-5, 3 epochs, 10 % warm-up, linear decay.
    fn recipe() -> Self {
        ClassifySettings {
            train: TrainConfig::fine_tuning(5e-5, 3.0),
            ..ClassifySettings::default()
        }
    }
    fn train(&self) -> &TrainConfig {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainConfig {
        &mut self.train
    }
}

impl FineTuneSettings for ClassifySettings {
    const TABLE: &'static str = "classify";
    fn inputs_mut(&mut self) -> [&mut String; 3] {
        let t = &mut self.classify;
        [&mut t.model, &mut t.train, &mut t.dev]
    }
}

/// A text (pair) as the model reads it, with its gold classes.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub segments: Vec<u32>,
    pub classes: Vec<usize>,
}

/// Encodes examples, truncated to `max_len` word pieces.
pub fn encode(
    tokenizer: &Tokenizer,
    examples: &[Example],
    labels: &[String],
    max_len: usize,
) -> Result<Vec<Encoded>> {
    examples
        .iter()
        .map(|e| {
            let (ids, segments) = tokenizer.encode_pair(&e.text, e.pair.as_deref(), max_len)?;
            let classes = e
                .labels
                .iter()
                .map(|l| labels.iter().position(|x| x == l).unwrap_or(usize::MAX))
                .collect();
            Ok(Encoded {
                ids,
                segments,
                classes,
            })
        })
        .collect()
}

/// The label names of the training data in class order: numeric labels by value ("0" < "1" <
/// "10"), others alphabetically.
pub(crate) fn label_set(examples: &[Example]) -> Vec<String> {
    let mut labels: Vec<String> = examples.iter().flat_map(|e| e.labels.clone()).collect();
    labels.sort();
    labels.dedup();
    if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
        labels.sort_by_key(|l| l.parse::<i64>().expect("checked"));
    }
    labels
}

/// An error for the first example without exactly one label (a single-label task).
fn check_single_label(path: impl AsRef<Path>, examples: &[Example]) -> Result<()> {
    match examples.iter().find(|e| e.labels.len() != 1) {
        Some(e) => Err(Error::line(
            path,
            e.line,
            format!(
                "{} labels on one text of a single-label task (multi-label data needs --multi-label)",
                e.labels.len()
            ),
        )),
        None => Ok(()),
    }
}

/// An error for the first example with a label outside `labels`.
fn check_labels(path: &str, examples: &[Example], labels: &[String]) -> Result<()> {
    for e in examples {
        if let Some(l) = e.labels.iter().find(|l| !labels.contains(l)) {
            return Err(Error::line(
                path,
                e.line,
                format!("label {l:?} does not occur in the training data (labels: {labels:?})"),
            ));
        }
    }
    Ok(())
}

/// Class probabilities `[texts][labels]` (softmax, or a sigmoid per label) of `texts`,
/// `batch_size` at a time, in length-sorted batches.
pub fn probabilities(
    model: &SequenceClassifier,
    texts: &[Encoded],
    multi_label: bool,
    pad_id: u32,
    batch_size: usize,
) -> Vec<Vec<f32>> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].ids.len());
    let mut out = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        for (&i, row) in chunk.iter().zip(logits(model, texts, chunk, pad_id)) {
            out[i] = activate(&row, multi_label);
        }
    }
    out
}

/// The classifier's scores before softmax / sigmoid, `[picked][labels]`, for the texts
/// `picked` (one batch).
pub fn logits(
    model: &SequenceClassifier,
    texts: &[Encoded],
    picked: &[usize],
    pad_id: u32,
) -> Vec<Vec<f32>> {
    let device = model.classifier.weight.device();
    let logits = model.logits(&batch_of(texts, picked, pad_id, &device));
    let k = logits.dims()[1];
    let values = logits
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 scores");
    values.chunks(k).map(<[f32]>::to_vec).collect()
}

/// Probabilities from one text's logits: softmax over the labels, or a sigmoid per label
/// (multi-label).
pub(crate) fn activate(logits: &[f32], multi_label: bool) -> Vec<f32> {
    if multi_label {
        scores::sigmoid(logits)
    } else {
        scores::softmax(logits)
    }
}

fn batch_of(texts: &[Encoded], picked: &[usize], pad_id: u32, device: &Device) -> Batch {
    let ids: Vec<Vec<u32>> = picked.iter().map(|&i| texts[i].ids.clone()).collect();
    let segments: Vec<Vec<u32>> = picked.iter().map(|&i| texts[i].segments.clone()).collect();
    Batch::with_segments(&ids, Some(&segments), pad_id, device)
}

/// Predicted class sets from probabilities: the most probable class, or every class at or above
/// its threshold (multi-label; `thresholds` has one per label).
pub fn decide(probs: &[Vec<f32>], multi_label: bool, thresholds: &[f64]) -> Vec<Vec<usize>> {
    probs
        .iter()
        .map(|p| {
            if multi_label {
                (0..p.len())
                    .filter(|&c| p[c] as f64 >= thresholds[c])
                    .collect()
            } else {
                vec![scores::argmax(p)]
            }
        })
        .collect()
}

/// The report of predictions against gold class sets.
pub fn score(
    gold: &[Vec<usize>],
    predicted: &[Vec<usize>],
    labels: &[String],
    multi_label: bool,
) -> Report {
    if multi_label {
        let flags = |sets: &[Vec<usize>]| -> Vec<Vec<bool>> {
            sets.iter()
                .map(|s| (0..labels.len()).map(|c| s.contains(&c)).collect())
                .collect()
        };
        report::multi_label(&flags(gold), &flags(predicted), labels)
    } else {
        let first = |sets: &[Vec<usize>]| -> Vec<usize> { sets.iter().map(|s| s[0]).collect() };
        report::single_label(&first(gold), &first(predicted), labels)
    }
}

/// The candidate thresholds: 0.05 to 0.95 in steps of 0.05.
fn threshold_grid() -> impl Iterator<Item = f64> {
    (1..20).map(|step| f64::from(step) / 20.0)
}

/// The best of `candidates` by `score`; ties go to the one nearest `prefer`.
fn best_threshold(prefer: f64, score: impl Fn(f64) -> f64) -> (f64, f64) {
    let mut best: (f64, f64) = (prefer, f64::NEG_INFINITY);
    for t in threshold_grid() {
        let f1 = score(t);
        let nearer = (t - prefer).abs() < (best.0 - prefer).abs();
        if f1 > best.1 + 1e-12 || ((f1 - best.1).abs() <= 1e-12 && nearer) {
            best = (t, f1);
        }
    }
    best
}

/// The one decision threshold with the best micro-F1 on `gold`, from 0.05 to 0.95 in steps of
/// 0.05 (ties: the one nearest 0.5), and that micro-F1.
pub fn tune_threshold(probs: &[Vec<f32>], gold: &[Vec<usize>], labels: &[String]) -> (f64, f64) {
    best_threshold(0.5, |t| {
        let all = vec![t; labels.len()];
        score(gold, &decide(probs, true, &all), labels, true).micro_f1()
    })
}

/// Development positives a label needs for a threshold of its own.
pub const MIN_TUNING_POSITIVES: usize = 3;

/// One threshold per label: the one with the best F1 of that label on `gold` (ties: nearest
/// `global`), for labels with at least [`MIN_TUNING_POSITIVES`] positives in `gold`; `global`
/// for the others.
pub fn tune_label_thresholds(probs: &[Vec<f32>], gold: &[Vec<usize>], global: f64) -> Vec<f64> {
    let k = probs.first().map_or(0, Vec::len);
    (0..k)
        .map(|c| {
            let positives = gold.iter().filter(|g| g.contains(&c)).count();
            if positives < MIN_TUNING_POSITIVES {
                return global;
            }
            best_threshold(global, |t| {
                let (mut tp, mut predicted) = (0usize, 0usize);
                for (p, g) in probs.iter().zip(gold) {
                    if p[c] as f64 >= t {
                        predicted += 1;
                        tp += usize::from(g.contains(&c));
                    }
                }
                2.0 * tp as f64 / (predicted + positives) as f64
            })
            .0
        })
        .collect()
}

/// Loss weights from the training texts: per class `n / (classes · count)` (single-label), or
/// per label the weight of its positives, `max(1, sqrt(negatives / positives))` (multi-label).
fn class_weights(train: &[Encoded], k: usize, multi_label: bool) -> Vec<f32> {
    let mut counts = vec![0usize; k];
    for e in train {
        for &c in &e.classes {
            counts[c] += 1;
        }
    }
    let n = train.len() as f32;
    counts
        .iter()
        .map(|&c| {
            let c = c.max(1) as f32;
            if multi_label {
                ((n - c).max(0.0) / c).sqrt().max(1.0)
            } else {
                n / (k as f32 * c)
            }
        })
        .collect()
}

/// A fine-tuned classifier with its tokenizer and labels.
pub struct ClassifierModel {
    pub model: SequenceClassifier,
    pub tokenizer: Tokenizer,
    pub labels: Vec<String>,
    pub multi_label: bool,
    /// Multi-label decision thresholds, one per label (the tuned global one, or per label).
    pub thresholds: Vec<f64>,
    pub max_len: usize,
}

/// A positio or Hugging Face sequence classifier; inputs are cut at `max_len` word pieces if
/// given, else at the length it was fine-tuned with, else at its position limit.
impl hf::FromCheckpoint for ClassifierModel {
    fn from_checkpoint(
        checkpoint: &hf::Checkpoint,
        max_len: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let (model, labels) = checkpoint.sequence_classifier(device)?;
        let c = &checkpoint.config;
        let limit = model.bert.max_len().unwrap_or(512);
        Ok(ClassifierModel {
            multi_label: c.problem_type == Some(ProblemType::MultiLabelClassification),
            thresholds: c.label_thresholds(&labels),
            max_len: max_len.or(c.window_length).unwrap_or(512).min(limit),
            tokenizer: checkpoint.tokenizer()?,
            model,
            labels,
        })
    }
}

impl ClassifierModel {
    /// The examples as the model reads them (cut at `max_len`), with their gold classes.
    pub fn encode(&self, examples: &[Example]) -> Result<Vec<Encoded>> {
        encode(&self.tokenizer, examples, &self.labels, self.max_len)
    }

    /// The predicted classes of each text from its probabilities, at the model's thresholds or
    /// at `threshold` for every label.
    pub fn decide(&self, probs: &[Vec<f32>], threshold: Option<f64>) -> Vec<Vec<usize>> {
        decide(probs, self.multi_label, &self.thresholds_or(threshold))
    }

    /// The decision threshold of each label: `threshold` for all when given, else the model's.
    pub fn thresholds_or(&self, threshold: Option<f64>) -> Vec<f64> {
        match threshold {
            Some(t) => vec![t; self.labels.len()],
            None => self.thresholds.clone(),
        }
    }

    /// Probabilities per text (pair).
    pub fn probabilities(&self, texts: &[Encoded], batch_size: usize) -> Vec<Vec<f32>> {
        probabilities(
            &self.model,
            texts,
            self.multi_label,
            self.tokenizer.pad_id,
            batch_size,
        )
    }
}

/// Classification fine-tuning as a [`Task`]: length-bucketed shuffled batches, selection by
/// development accuracy (single-label) or micro-F1 at the tuned threshold (multi-label).
pub struct ClassifyTask {
    pub labels: Vec<String>,
    pub multi_label: bool,
    config: ModelConfig,
    tokenizer: Tokenizer,
    train: Vec<Encoded>,
    dev: Vec<Encoded>,
    weights: Option<Vec<f32>>,
    per_label_thresholds: bool,
    tuned: TunedThresholds,
    device: Device,
    pub last_report: Option<Report>,
}

/// The task's resumable state: the multi-label thresholds tuned at the last evaluation.
#[derive(Clone, Serialize, Deserialize)]
struct TunedThresholds {
    threshold: f64,
    /// One per label, when tuned per label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_label: Option<Vec<f64>>,
}

impl ClassifyTask {
    /// Reads the data and prepares the model: a base encoder gets a fresh head for the labels
    /// of the training data; a sequence classifier with the same labels and kind keeps its head.
    pub fn prepare(
        cfg: &ClassifyConfig,
        device: &Device,
    ) -> Result<(ClassifyTask, SequenceClassifier)> {
        let train = labelled::read(Path::new(&cfg.train), &cfg.read)?;
        let dev = labelled::read(Path::new(&cfg.dev), &cfg.read)?;
        Self::from_examples(cfg, train, dev, device)
    }

    /// The same from examples in memory (`cfg.train` and `cfg.dev` name where they came from,
    /// for messages): a reranker's pairs become one-label examples so.
    pub fn from_examples(
        cfg: &ClassifyConfig,
        mut train: Vec<Example>,
        dev: Vec<Example>,
        device: &Device,
    ) -> Result<(ClassifyTask, SequenceClassifier)> {
        // An empty text teaches nothing; evaluation keeps it (it gets a prediction).
        let before = train.len();
        train.retain(|e| !e.is_empty());
        if train.len() < before {
            tracing::info!(
                "{}: skipped {} training texts that are empty",
                cfg.train,
                before - train.len()
            );
        }
        if !cfg.multi_label {
            check_single_label(&cfg.train, &train)?;
            check_single_label(&cfg.dev, &dev)?;
        }
        let labels = label_set(&train);
        if labels.len() < 2 && !cfg.multi_label {
            return Err(Error::file(
                &cfg.train,
                format!(
                    "only {} label in the training data: nothing to classify",
                    labels.len()
                ),
            ));
        }
        check_labels(&cfg.dev, &dev, &labels)?;

        // Tokenizer and model, from one reading of the checkpoint.
        let checkpoint = hf::Checkpoint::open(Path::new(&cfg.model))?;
        let tokenizer = checkpoint.tokenizer()?;
        let problem = if cfg.multi_label {
            ProblemType::MultiLabelClassification
        } else {
            ProblemType::SingleLabelClassification
        };
        let mut config = checkpoint.config.clone();
        let pooling = cfg.pooling.unwrap_or(match config.arch.recurrence() {
            Some(_) => Pooling::Mean,
            None => Pooling::Cls,
        });
        let keep_head = config.labels().as_ref() == Some(&labels)
            && config
                .problem_type
                .unwrap_or(ProblemType::SingleLabelClassification)
                == problem
            && config.classifier_pooling.unwrap_or_default() == pooling
            && checkpoint.weights.contains("classifier.weight");
        let model = if keep_head {
            checkpoint.sequence_classifier(device)?.0
        } else {
            SequenceClassifier::new(checkpoint.encoder(device)?, labels.len(), pooling, device)
        };
        let max_len = cfg.max_len.min(model.bert.max_len().unwrap_or(usize::MAX));
        config.set_labels(&labels);
        config.problem_type = Some(problem);
        config.classifier_pooling = (pooling != Pooling::Cls).then_some(pooling);
        config.window_length = Some(max_len);
        config.architectures = vec!["BertForSequenceClassification".into()];

        // Encoded texts and class weights.
        let train = encode(&tokenizer, &train, &labels, max_len)?;
        let dev = encode(&tokenizer, &dev, &labels, max_len)?;
        let weights = cfg
            .class_weights
            .then(|| class_weights(&train, labels.len(), cfg.multi_label));
        let task = ClassifyTask {
            labels,
            multi_label: cfg.multi_label,
            config,
            tokenizer,
            train,
            dev,
            weights,
            per_label_thresholds: cfg.per_label_thresholds,
            tuned: TunedThresholds {
                threshold: 0.5,
                per_label: None,
            },
            device: device.clone(),
            last_report: None,
        };
        Ok((task, model))
    }
}

impl Task for ClassifyTask {
    type Model = SequenceClassifier;

    /// Length-bucketed batches (short sentences dominate sentiment data).
    fn sampling(&self) -> Sampling {
        Sampling::bucketed(self.train.iter().map(|e| e.ids.len()).collect())
    }

    fn loss(&mut self, model: &SequenceClassifier, picked: &[usize]) -> Result<BatchLoss> {
        let batch = batch_of(&self.train, picked, self.tokenizer.pad_id, &self.device);
        let tokens = picked.iter().map(|&i| self.train[i].ids.len()).sum();
        let logits = model.logits(&batch);
        let loss = if self.multi_label {
            let k = self.labels.len();
            let targets: Vec<Vec<bool>> = picked
                .iter()
                .map(|&i| (0..k).map(|c| self.train[i].classes.contains(&c)).collect())
                .collect();
            binary_cross_entropy(logits, &targets, self.weights.as_deref())
        } else {
            let targets: Vec<usize> = picked.iter().map(|&i| self.train[i].classes[0]).collect();
            cross_entropy(logits, &targets, self.weights.as_deref())
        };
        Ok(BatchLoss::per_example(loss, tokens, picked.len()))
    }

    fn evaluate(&mut self, model: &SequenceClassifier) -> Result<Metrics> {
        let probs = probabilities(
            model,
            &self.dev,
            self.multi_label,
            self.tokenizer.pad_id,
            64,
        );
        let gold: Vec<Vec<usize>> = self.dev.iter().map(|e| e.classes.clone()).collect();
        let k = self.labels.len();
        if self.multi_label {
            let threshold = tune_threshold(&probs, &gold, &self.labels).0;
            let per_label = self
                .per_label_thresholds
                .then(|| tune_label_thresholds(&probs, &gold, threshold));
            self.tuned = TunedThresholds {
                threshold,
                per_label,
            };
        }
        let thresholds =
            (self.tuned.per_label.clone()).unwrap_or_else(|| vec![self.tuned.threshold; k]);
        let predicted = decide(&probs, self.multi_label, &thresholds);
        let report = score(&gold, &predicted, &self.labels, self.multi_label);
        let macro_f1 = report.average("macro avg").map_or(0.0, |s| s.f1);
        let metrics = if self.multi_label {
            vec![
                ("micro_f1".into(), report.micro_f1()),
                ("macro_f1".into(), macro_f1),
                ("subset_accuracy".into(), report.accuracy),
                ("threshold".into(), self.tuned.threshold),
            ]
        } else {
            vec![
                ("accuracy".into(), report.accuracy),
                ("macro_f1".into(), macro_f1),
            ]
        };
        self.last_report = Some(report);
        Ok(metrics)
    }

    fn selection(&self) -> Option<(&'static str, bool)> {
        Some((
            if self.multi_label {
                "micro_f1"
            } else {
                "accuracy"
            },
            true,
        ))
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(self.tuned.clone()).expect("serialises")
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.tuned = serde_json::from_value(state)
            .map_err(|e| Error::invalid(format!("checkpoint task state: {e}")))?;
        Ok(())
    }

    /// Before the shared sampler, classification saved the epoch and the batches drawn in it,
    /// in the same order as now.
    fn legacy_position(&self, state: &serde_json::Value, _batch_size: usize) -> Result<Position> {
        let legacy: LegacyPosition = serde_json::from_value(state.clone())
            .map_err(|e| Error::invalid(format!("data position: {e}")))?;
        Ok(Position {
            epoch: legacy.epoch,
            batch: legacy.cursor,
        })
    }

    fn save_model(&self, model: &SequenceClassifier, dir: &Path) -> Result<()> {
        let mut config = self.config.clone();
        config.decision_threshold = self.multi_label.then_some(self.tuned.threshold);
        config.set_label_thresholds(&self.labels, self.tuned.per_label.as_deref());
        hf::save(model, &config, dir, Some(&self.tokenizer.path))
    }

    fn load_model(&self, dir: &Path) -> Result<SequenceClassifier> {
        Ok(hf::Checkpoint::open(dir)?
            .sequence_classifier(&self.device)?
            .0)
    }
}
