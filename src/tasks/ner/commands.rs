//! The fine-tuning, evaluation and prediction commands for named-entity recognition.

use crate::data::tags::Scheme;
use crate::data::{conll, text};
use crate::hf::FromCheckpoint;
use crate::model::heads::TokenClassifier;
use crate::runtime::{self, DeviceKind};
use crate::tasks::ner::seqeval::{entity_report, token_report, Report as ScoreReport};
use crate::tasks::ner::{Aggregation, NerModel, NerSettings, NerTask};
use crate::tasks::EvalOutputs;
use crate::train::trainer::{fine_tune, Outcome};
use crate::{io, Error, Result};
use burn::module::Module;
use burn::tensor::Device;
use std::io::Write;
use std::path::Path;

/// `positio finetune ner`: trains until done or interrupted (then a checkpoint is saved and
/// `Outcome::Interrupted` returned).
pub fn finetune(
    run: &NerSettings,
    out: &Path,
    resume: bool,
    device: DeviceKind,
) -> Result<Outcome> {
    let cfg = &run.ner;
    let describe = |task: &NerTask, model: &TokenClassifier| {
        tracing::info!(
            "fine-tuning {} ({} parameters{}) for {} labels: {}",
            cfg.model,
            model.num_params(),
            if cfg.crf { ", CRF" } else { "" },
            task.labels.len(),
            task.labels.join(" ")
        )
    };
    let prepare = |device: &Device| NerTask::prepare(cfg, device);
    let (_, summary) = fine_tune(run, out, resume, device, prepare, describe)?;
    Ok(summary.report("entity F1", out))
}

/// How `eval` and `predict` read their input and run the model.
pub struct Reading {
    /// 0-based tag column of the CoNLL file (default: the last).
    pub tag_column: Option<usize>,
    /// Tag scheme (default: detected).
    pub scheme: Option<Scheme>,
    /// Windows per forward pass.
    pub batch_size: usize,
    /// Word pieces per window (default: the model's fine-tuning length).
    pub max_len: Option<usize>,
}

/// What `positio eval ner` measured; `Display` prints both reports as the CLI shows them.
pub struct Evaluation {
    /// The data file, its size and the scheme its tags were read as.
    pub heading: String,
    /// Entity-level report (seqeval / conlleval).
    pub entity: ScoreReport,
    /// Token-level report over IOB2 tags.
    pub token: ScoreReport,
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}\n", self.heading)?;
        writeln!(
            f,
            "entity level (seqeval / conlleval: type and both boundaries must match)\n"
        )?;
        writeln!(f, "{}", self.entity.table())?;
        writeln!(f, "token level (IOB2 tags)\n")?;
        write!(f, "{}", self.token.table())
    }
}

/// `positio eval ner`: both reports, optionally the predictions and a JSON copy.
pub fn evaluate(
    model_dir: &Path,
    data: &Path,
    read: &Reading,
    outputs: &EvalOutputs,
    device: DeviceKind,
) -> Result<Evaluation> {
    let model = NerModel::load(model_dir, read.max_len, &runtime::device(device)?)?;
    let (sentences, detected) = conll::read_iob2(data, read.tag_column, read.scheme)?;
    let (predicted, _) = model.tag(&sentences, read.batch_size)?;
    let gold: Vec<Vec<String>> = sentences.iter().map(|s| s.tags.clone()).collect();
    let (entity, token) = (
        entity_report(&gold, &predicted),
        token_report(&gold, &predicted),
    );
    let tokens: usize = gold.iter().map(Vec::len).sum();
    let heading = format!(
        "{}: {} sentences, {} tokens, tags read as {detected:?}, scored as IOB2",
        data.display(),
        sentences.len(),
        tokens
    );
    if let Some(path) = outputs.predictions {
        conll::write_predictions(path, &sentences, &predicted)?;
    }
    if let Some(path) = outputs.json {
        let value = serde_json::json!({ "data": data, "entity": entity, "token": token });
        io::write_atomic(
            path,
            serde_json::to_string_pretty(&value)
                .expect("serialises")
                .as_bytes(),
        )?;
    }
    Ok(Evaluation {
        heading,
        entity,
        token,
    })
}

/// What `predict` tags.
pub enum Inputs<'a> {
    /// Texts (from the command line), decoded into entities by the strategy.
    Texts(&'a [String], Aggregation),
    /// The lines of a file, or of standard input when `None`, the same way.
    Lines(Option<&'a Path>, Aggregation),
    /// The words of a CoNLL file: its lines are echoed with the predicted tag appended.
    Conll(&'a Path),
}

/// `positio predict ner`: the tags of a CoNLL file's words, or the entities of texts (one
/// JSON object a line, with the text's 1-based `line`).
pub fn predict(
    model_dir: &Path,
    inputs: Inputs,
    read: &Reading,
    device: DeviceKind,
    out: &mut dyn Write,
) -> Result<()> {
    let model = NerModel::load(model_dir, read.max_len, &runtime::device(device)?)?;
    let batch_size = read.batch_size;
    let mut write = |line: &str| {
        writeln!(out, "{line}").map_err(|e| Error::io(Path::new("<output>"), "write", e))
    };
    let (lines, strategy) = match inputs {
        Inputs::Texts(texts, strategy) => (texts.to_vec(), strategy),
        Inputs::Lines(file, strategy) => (text::input_lines(file)?, strategy),
        Inputs::Conll(path) => {
            let (sentences, lines) = conll::read_words(path)?;
            let (tags, _) = model.tag(&sentences, batch_size)?;
            for (t, cols) in tags.iter().zip(lines) {
                for (line, tag) in cols.iter().zip(t) {
                    write(&format!("{line} {tag}"))?;
                }
                write("")?;
            }
            return Ok(());
        }
    };
    let found = model.entities(&lines, strategy, batch_size)?;
    for (i, entities) in found.iter().enumerate() {
        for e in entities {
            let mut v = serde_json::to_value(e).expect("serialises");
            v["line"] = (i + 1).into();
            write(&v.to_string())?;
        }
    }
    Ok(())
}
