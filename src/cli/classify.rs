//! `positio finetune classify`, `positio eval classify` and `positio predict classify`.
//!
//! Fine-tuning settings come from `--config` (a TOML file with `[classify]` and `[train]`
//! tables, the layout of a run's `run.toml`) or the defaults, then the flags given.

use super::{DeviceArg, FineTuningInputs, TextInputs, TrainingArgs};
use crate::data::labelled::{LabelledFormat, ReadOptions, TextEncoding};
use crate::model::config::Pooling;
use crate::tasks::classify::commands::{self, Inputs, Running};
use crate::tasks::classify::ClassifySettings;
use crate::tasks::EvalOutputs;
use crate::tools::plot;
use crate::train::trainer::Outcome;
use crate::{Error, Result};
use std::path::PathBuf;

/// How the labelled files are read (shared by finetune and eval).
#[derive(clap::Args, Clone, Default)]
pub(crate) struct ReadArgs {
    /// File layout (default: from the extension: .tsv, .csv, .jsonl, .txt = sentence@label).
    #[arg(long, value_enum)]
    format: Option<LabelledFormat>,
    /// Text encoding of the files; invalid UTF-8 is an error naming the line [default: utf-8].
    #[arg(long, value_enum)]
    encoding: Option<TextEncoding>,
    /// Column (TSV / CSV) or field (JSON Lines, repeatable: joined by a newline) holding the text
    /// [default: sentence, else text, else the pair sentence1 + sentence2].
    #[arg(long, visible_alias = "field")]
    text_column: Vec<String>,
    /// Column or field holding the second text of a sentence pair.
    #[arg(long)]
    text_pair_column: Option<String>,
    /// Column or field holding the label (JSON Lines: a string, or a list for multi-label)
    /// [default: label].
    #[arg(long)]
    label_column: Option<String>,
}

impl ReadArgs {
    /// These flags over `base`.
    fn over(&self, mut base: ReadOptions) -> ReadOptions {
        if self.format.is_some() {
            base.format = self.format;
        }
        if let Some(e) = self.encoding {
            base.encoding = e;
        }
        if !self.text_column.is_empty() {
            base.columns.text = self.text_column.clone();
        }
        if self.text_pair_column.is_some() {
            base.columns.pair = self.text_pair_column.clone();
        }
        if self.label_column.is_some() {
            base.columns.label = self.label_column.clone();
        }
        base
    }

    fn options(&self) -> ReadOptions {
        self.over(ReadOptions::default())
    }
}

#[derive(clap::Args)]
pub(crate) struct FinetuneArgs {
    #[command(flatten)]
    inputs: FineTuningInputs,
    /// Any number of labels per text: a sigmoid per label and binary cross-entropy; the
    /// decision threshold is tuned on the development set and saved with the model.
    #[arg(long)]
    multi_label: bool,
    /// How token states become one vector: cls (BERT's pooler, as transformers) or mean
    /// [default: cls; mean for a recurrent encoder].
    #[arg(long, value_enum)]
    pooling: Option<Pooling>,
    /// Weigh classes by n / (classes · count) in the loss (single-label); multi-label: weigh
    /// each label's positives by sqrt(negatives / positives).
    #[arg(long)]
    class_weights: bool,
    /// Multi-label: tune a decision threshold per label on the development set (labels with
    /// fewer than 3 development positives keep the global one); saved with the model.
    #[arg(long)]
    per_label_thresholds: bool,
    /// Word pieces per text or pair, [CLS] and [SEP] included; longer inputs are truncated.
    /// Saved with the model [default: 128].
    #[arg(long)]
    max_len: Option<usize>,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    pub run: TrainingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl FinetuneArgs {
    fn resolve(&self) -> Result<ClassifySettings> {
        self.inputs
            .resolve(&self.run, |run: &mut ClassifySettings| {
                let c = &mut run.classify;
                c.multi_label |= self.multi_label;
                c.class_weights |= self.class_weights;
                c.per_label_thresholds |= self.per_label_thresholds;
                if self.pooling.is_some() {
                    c.pooling = self.pooling;
                }
                c.max_len = self.max_len.unwrap_or(c.max_len);
                c.read = self.read.over(c.read.clone());
            })
    }

    pub fn run(&self) -> Result<Outcome> {
        let run = &self.run;
        commands::finetune(&self.resolve()?, &run.out, run.resume, self.device.device)
    }
}

/// How eval and predict run the model.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Word pieces per text (default: the length the model was fine-tuned with).
    #[arg(long)]
    max_len: Option<usize>,
    /// Multi-label decision threshold for every label (default: the ones tuned and saved with
    /// the model).
    #[arg(long)]
    threshold: Option<f64>,
}

impl RunArgs {
    fn running(&self) -> Running {
        Running {
            batch_size: self.batch_size,
            max_len: self.max_len,
            threshold: self.threshold,
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct EvalArgs {
    /// A fine-tuned classifier (positio's or a Hugging Face BertForSequenceClassification).
    #[arg(long)]
    model: PathBuf,
    /// A labelled file, in any format finetune reads.
    #[arg(long)]
    data: PathBuf,
    /// Write one JSON object per text (line, text, gold, predicted, every label's score) here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw the confusion matrix to this PNG (single-label models).
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl EvalArgs {
    pub fn run(&self) -> Result<()> {
        let outputs = EvalOutputs {
            predictions: self.output.as_deref(),
            json: self.json.as_deref(),
        };
        let evaluation = commands::evaluate(
            &self.model,
            &self.data,
            &self.read.options(),
            &self.run.running(),
            &outputs,
            self.device.device,
        )?;
        println!("{evaluation}");
        let report = &evaluation.report;
        if let Some(path) = &self.plot {
            let confusion = report.confusion.as_ref().ok_or_else(|| {
                Error::unsupported(
                    "--plot draws a confusion matrix, which a multi-label model has not",
                )
            })?;
            let labels: Vec<String> = report.labels.iter().map(|s| s.name.clone()).collect();
            plot::confusion(&labels, confusion, path)?;
        }
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct PredictArgs {
    /// A fine-tuned classifier.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    texts: TextInputs,
    /// The second text of a pair, one per --text, in order.
    #[arg(long)]
    text_pair: Vec<String>,
    /// Lines of --file or standard input are `text<TAB>pair`.
    #[arg(long)]
    pairs: bool,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl PredictArgs {
    pub fn run(&self) -> Result<()> {
        let texts = &self.texts.text;
        let inputs = if texts.is_empty() {
            Inputs::Lines {
                file: self.texts.file.clone(),
                pairs: self.pairs,
            }
        } else {
            if !self.text_pair.is_empty() && self.text_pair.len() != texts.len() {
                return Err(Error::config(
                    "--text-pair",
                    format!(
                        "{} given for {} --text: give one pair text per text",
                        self.text_pair.len(),
                        texts.len()
                    ),
                ));
            }
            Inputs::Texts(
                texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.clone(), self.text_pair.get(i).cloned()))
                    .collect(),
            )
        };
        commands::predict(
            &self.model,
            &inputs,
            &self.run.running(),
            self.device.device,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        )
    }
}
