//! `positio finetune ner`, `positio eval ner` and `positio predict ner`.

use super::DeviceArg;
use crate::data::tags::Scheme;
use crate::tasks::ner::{commands, NerConfig};
use crate::train::trainer::{Outcome, TrainConfig};
use crate::Result;
use std::path::PathBuf;

/// The data flags shared by the NER commands that read tagged CoNLL files.
#[derive(clap::Args, Clone)]
pub struct ConllArgs {
    /// 0-based column holding the tag (default: the last one; the word is column 0).
    #[arg(long)]
    tag_column: Option<usize>,
    /// Tag scheme of the files (default: detected from the tags).
    #[arg(long, value_enum)]
    scheme: Option<Scheme>,
}

#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// The model to start from: any BERT directory (positio's or Hugging Face's).
    #[arg(long)]
    model: PathBuf,
    /// Training file (CoNLL columns, IOB1 / IOB2 / IOBES tags).
    #[arg(long)]
    train: PathBuf,
    /// Development file, for model selection.
    #[arg(long)]
    dev: PathBuf,
    /// Output run directory: the best model as a Hugging Face BertForTokenClassification
    /// directory, plus run.toml, metrics.jsonl and checkpoints/.
    #[arg(long)]
    out: PathBuf,
    /// Add a CRF layer (Viterbi decoding restricted to valid IOB2 transitions).
    #[arg(long)]
    crf: bool,
    /// Passes over the training data (5 epochs at 1e-4 beat transformers' usual 3 at 5e-5 on
    /// CoNLL-2003; see docs/RESULTS.md).
    #[arg(long, default_value_t = 5.0)]
    epochs: f64,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Windows per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Warm-up: a fraction of the steps (< 1) or a number of steps.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    /// AdamW weight decay (not on biases and LayerNorm weights).
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Word pieces per window ([CLS] and [SEP] included); longer sentences are split into
    /// overlapping windows. Saved with the model: eval and predict use the same length.
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// Seed of the initial head, the data order and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Checkpoint every this many steps (0: at the end only).
    #[arg(long, default_value_t = 500)]
    save_every: usize,
    /// Evaluate every this many steps (0: at the end of each epoch).
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    conll: ConllArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl FinetuneArgs {
    pub fn run(&self) -> Result<Outcome> {
        let ner = NerConfig {
            model: self.model.display().to_string(),
            train: self.train.display().to_string(),
            dev: self.dev.display().to_string(),
            crf: self.crf,
            max_len: self.max_len,
            tag_column: self.conll.tag_column,
            scheme: self.conll.scheme,
        };
        let train = TrainConfig {
            batch_size: self.batch_size,
            lr: self.lr,
            warmup: self.warmup,
            weight_decay: self.weight_decay,
            epochs: self.epochs,
            steps: 0,
            save_every: self.save_every,
            eval_every: self.eval_every,
            seed: self.seed,
            ..Default::default()
        };
        commands::finetune(&ner, &train, &self.out, self.resume, self.device.device)
    }
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A fine-tuned NER model directory.
    #[arg(long)]
    model: PathBuf,
    /// A tagged CoNLL file.
    #[arg(long)]
    data: PathBuf,
    /// Write `word gold predicted` lines (conlleval's input) here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Write both reports as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Word pieces per window (default: the length the model was fine-tuned with).
    #[arg(long)]
    max_len: Option<usize>,
    #[command(flatten)]
    conll: ConllArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl EvalArgs {
    pub fn run(&self) -> Result<()> {
        let report = commands::Report {
            output: self.output.as_deref(),
            json: self.json.as_deref(),
        };
        let read = commands::Reading {
            tag_column: self.conll.tag_column,
            scheme: self.conll.scheme,
            batch_size: self.batch_size,
            max_len: self.max_len,
        };
        commands::evaluate(&self.model, &self.data, &read, &report, self.device.device)
    }
}

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A fine-tuned NER model directory.
    #[arg(long)]
    model: PathBuf,
    /// Text to tag (repeatable). Without --text, --file or --conll, standard input is read.
    #[arg(long)]
    text: Vec<String>,
    /// A text file: each line is tagged.
    #[arg(long)]
    file: Option<PathBuf>,
    /// A CoNLL file: writes its lines with the predicted tag appended.
    #[arg(long)]
    conll: Option<PathBuf>,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Word pieces per window (default: the length the model was fine-tuned with).
    #[arg(long)]
    max_len: Option<usize>,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl PredictArgs {
    pub fn run(&self) -> Result<()> {
        let read = commands::Reading {
            tag_column: None,
            scheme: None,
            batch_size: self.batch_size,
            max_len: self.max_len,
        };
        commands::predict(
            &self.model,
            &self.text,
            self.file.as_deref(),
            self.conll.as_deref(),
            &read,
            self.device.device,
        )
    }
}
