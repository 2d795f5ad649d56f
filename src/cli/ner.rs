//! `positio finetune ner`, `positio eval ner` and `positio predict ner`.

use super::{DeviceArg, FineTuningInputs, TextInputs, TrainingArgs};
use crate::data::tags::Scheme;
use crate::tasks::ner::{commands, Aggregation, NerSettings};
use crate::tasks::EvalOutputs;
use crate::train::trainer::Outcome;
use crate::Result;
use std::path::PathBuf;

/// The data flags shared by the NER commands that read tagged CoNLL files.
#[derive(clap::Args, Clone)]
pub(crate) struct ConllArgs {
    /// 0-based column holding the tag (default: the last one; the word is column 0).
    #[arg(long)]
    tag_column: Option<usize>,
    /// Tag scheme of the files (default: detected from the tags).
    #[arg(long, value_enum)]
    scheme: Option<Scheme>,
}

#[derive(clap::Args)]
pub(crate) struct FinetuneArgs {
    #[command(flatten)]
    inputs: FineTuningInputs,
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
    #[command(flatten)]
    pub run: TrainingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl FinetuneArgs {
    fn resolve(&self) -> Result<NerSettings> {
        self.inputs.resolve(&self.run, |run: &mut NerSettings| {
            let n = &mut run.ner;
            n.crf |= self.crf;
            n.max_len = self.max_len.unwrap_or(n.max_len);
            n.tag_column = self.conll.tag_column.or(n.tag_column);
            n.scheme = self.conll.scheme.or(n.scheme);
        })
    }

    pub fn run(&self) -> Result<Outcome> {
        let run = &self.run;
        commands::finetune(&self.resolve()?, &run.out, run.resume, self.device.device)
    }
}

#[derive(clap::Args)]
pub(crate) struct EvalArgs {
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
        let outputs = EvalOutputs {
            predictions: self.output.as_deref(),
            json: self.json.as_deref(),
        };
        let read = commands::Reading {
            tag_column: self.conll.tag_column,
            scheme: self.conll.scheme,
            batch_size: self.batch_size,
            max_len: self.max_len,
        };
        let evaluation =
            commands::evaluate(&self.model, &self.data, &read, &outputs, self.device.device)?;
        println!("{evaluation}");
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct PredictArgs {
    /// A fine-tuned NER model directory.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    texts: TextInputs,
    /// A CoNLL file instead of texts: writes its lines with the predicted tag appended.
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
        let strategy = self.aggregation_strategy;
        let inputs = match (&self.conll, self.texts.text.is_empty()) {
            (Some(path), _) => commands::Inputs::Conll(path),
            (None, false) => commands::Inputs::Texts(&self.texts.text, strategy),
            (None, true) => commands::Inputs::Lines(self.texts.file.as_deref(), strategy),
        };
        commands::predict(
            &self.model,
            inputs,
            &read,
            self.device.device,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        )
    }
}
