//! `positio finetune ner`, `positio eval ner` and `positio predict ner`.

use super::{require, set_path, DeviceArg};
use crate::data::tags::Scheme;
use crate::tasks::ner::{commands, Aggregation, NerSettings};
use crate::train::config::{self, TrainFlags};
use crate::train::trainer::Outcome;
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
    model: Option<PathBuf>,
    /// Training file (CoNLL columns, IOB1 / IOB2 / IOBES tags).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Development file, for model selection.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Output run directory: the best model as a Hugging Face BertForTokenClassification
    /// directory, plus run.toml, metrics.jsonl and checkpoints/.
    #[arg(long)]
    out: PathBuf,
    /// A TOML file with [ner] and [train] tables (a run's run.toml works); flags override.
    /// Without it, the NER recipe: 5 epochs at lr 1e-4, 10 % warm-up, batches of 32 windows.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint (with its saved run.toml).
    #[arg(long)]
    resume: bool,
    /// Add a CRF layer (Viterbi decoding restricted to valid IOB2 transitions).
    #[arg(long)]
    crf: bool,
    /// Word pieces per window ([CLS] and [SEP] included); longer sentences are split into
    /// overlapping windows. Saved with the model: eval and predict use the same length
    /// [default: 128].
    #[arg(long)]
    max_len: Option<usize>,
    #[command(flatten)]
    conll: ConllArgs,
    #[command(flatten, next_help_heading = "Training")]
    training: TrainFlags,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl FinetuneArgs {
    fn resolve(&self) -> Result<NerSettings> {
        let config = self.config.as_deref();
        let run = config::resolve(&self.out, config, self.resume, |run: &mut NerSettings| {
            let n = &mut run.ner;
            set_path(&self.model, &mut n.model);
            set_path(&self.train, &mut n.train);
            set_path(&self.dev, &mut n.dev);
            n.crf |= self.crf;
            n.max_len = self.max_len.unwrap_or(n.max_len);
            n.tag_column = self.conll.tag_column.or(n.tag_column);
            n.scheme = self.conll.scheme.or(n.scheme);
            self.training.apply(&mut run.train);
        })?;
        require(
            &[
                (&run.ner.model, "--model"),
                (&run.ner.train, "--train"),
                (&run.ner.dev, "--dev"),
            ],
            "ner",
        )?;
        Ok(run)
    }

    pub fn run(&self) -> Result<Outcome> {
        commands::finetune(&self.resolve()?, &self.out, self.resume, self.device.device)
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
        let evaluation =
            commands::evaluate(&self.model, &self.data, &read, &report, self.device.device)?;
        println!("{evaluation}");
        Ok(())
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
    /// How pieces' labels become entities: transformers' pipeline strategies (the server's
    /// `/ner` has the same default), or `words` (CoNLL-style words, windows, CRF: as `eval`).
    #[arg(long, value_enum, default_value_t)]
    aggregation_strategy: Aggregation,
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
            self.aggregation_strategy,
            self.device.device,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        )
    }
}
