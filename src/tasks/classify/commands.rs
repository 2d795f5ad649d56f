//! The fine-tuning, evaluation and prediction commands for sequence classification.

use crate::data::labelled::{self, Example, ReadOptions};
use crate::data::text;
use crate::hf::FromCheckpoint;
use crate::model::heads::sequence::SequenceClassifier;
use crate::runtime::{self, DeviceKind};
use crate::tasks::classify::report::Report;
use crate::tasks::classify::{
    check_labels, check_single_label, decide, score, ClassifierModel, ClassifySettings,
    ClassifyTask,
};
use crate::tasks::EvalOutputs;
use crate::train::trainer::{fine_tune, Outcome};
use crate::{io, Error, Result};
use burn::module::Module;
use burn::tensor::Device;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `positio finetune classify`: trains until done or interrupted (then a checkpoint is saved
/// and `Outcome::Interrupted` returned).
pub fn finetune(
    run: &ClassifySettings,
    out: &Path,
    resume: bool,
    device: DeviceKind,
) -> Result<Outcome> {
    let cfg = &run.classify;
    let describe = |task: &ClassifyTask, model: &SequenceClassifier| {
        tracing::info!(
            "fine-tuning {} ({} parameters, {} pooling) for {} {} labels: {}",
            cfg.model,
            model.num_params(),
            match model.pooling {
                crate::model::config::Pooling::Cls => "[CLS]",
                crate::model::config::Pooling::Mean => "mean",
            },
            task.labels.len(),
            if task.multi_label {
                "multi-label"
            } else {
                "single-label"
            },
            task.labels.join(" ")
        )
    };
    let prepare = |device: &Device| ClassifyTask::prepare(cfg, device);
    let (task, summary) = fine_tune(run, out, resume, device, prepare, describe)?;
    Ok(summary.report(
        if task.multi_label {
            "micro-F1"
        } else {
            "accuracy"
        },
        out,
    ))
}

/// How `eval` and `predict` run the model.
pub struct Running {
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Word pieces per text (default: the model's fine-tuning length).
    pub max_len: Option<usize>,
    /// Multi-label decision threshold for every label (default: the ones saved with the model).
    pub threshold: Option<f64>,
}

/// What `positio eval classify` measured; `Display` prints it as the CLI shows it.
pub struct Evaluation {
    /// The data file, its size, the labels and the threshold.
    pub heading: String,
    /// Per-label and averaged scores (also plotted by the CLI).
    pub report: Report,
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}\n", self.heading)?;
        write!(f, "{}", self.report.table())
    }
}

/// `positio eval classify`: the report on a labelled file.
pub fn evaluate(
    model_dir: &Path,
    data: &Path,
    read: &ReadOptions,
    run: &Running,
    outputs: &EvalOutputs,
    device: DeviceKind,
) -> Result<Evaluation> {
    let model = ClassifierModel::load(model_dir, run.max_len, &runtime::device(device)?)?;
    let examples = labelled::read(data, read)?;
    let path = data.display().to_string();
    if !model.multi_label {
        check_single_label(data, &examples)?;
    }
    check_labels(&path, &examples, &model.labels)?;
    let texts = model.encode(&examples)?;
    let probs = model.probabilities(&texts, run.batch_size);
    let thresholds = model.thresholds_or(run.threshold);
    let predicted = decide(&probs, model.multi_label, &thresholds);
    let uniform = thresholds.windows(2).all(|w| w[0] == w[1]);
    let gold: Vec<Vec<usize>> = texts.into_iter().map(|t| t.classes).collect();
    let report = score(&gold, &predicted, &model.labels, model.multi_label);
    let heading = format!(
        "{}: {} texts, {} labels{}",
        data.display(),
        examples.len(),
        model.labels.len(),
        if model.multi_label {
            match (uniform, thresholds.first()) {
                (true, Some(t)) => format!(", multi-label at threshold {t}"),
                _ => ", multi-label at per-label thresholds".to_string(),
            }
        } else {
            String::new()
        }
    );
    if let Some(path) = outputs.predictions {
        let mut text = String::new();
        for ((e, p), probs) in examples.iter().zip(&predicted).zip(&probs) {
            let mut v = prediction_json(e, p, probs, &model);
            v["line"] = e.line.into();
            v["gold"] = serde_json::json!(e.labels);
            text += &v.to_string();
            text.push('\n');
        }
        io::write_atomic(path, text.as_bytes())?;
    }
    if let Some(path) = outputs.json {
        let by_label: serde_json::Map<String, serde_json::Value> = (model.labels.iter().cloned())
            .zip(thresholds.iter().map(|&t| t.into()))
            .collect();
        let value = serde_json::json!({ "data": data, "model": model_dir, "thresholds": by_label, "report": report });
        let text = serde_json::to_string_pretty(&value).expect("serialises");
        io::write_atomic(path, text.as_bytes())?;
    }
    Ok(Evaluation { heading, report })
}

/// Predictions of `examples` as `predict classify` writes them: the text (and pair), the
/// predicted label (single-label) or labels (multi-label), and every label's score, highest
/// first. `threshold` overrides the model's per-label thresholds (multi-label).
pub fn predictions(
    model: &ClassifierModel,
    examples: &[Example],
    batch_size: usize,
    threshold: Option<f64>,
) -> Result<Vec<serde_json::Value>> {
    let probs = model.probabilities(&model.encode(examples)?, batch_size);
    let predicted = model.decide(&probs, threshold);
    Ok(examples
        .iter()
        .zip(&predicted)
        .zip(&probs)
        .map(|((e, p), probs)| prediction_json(e, p, probs, model))
        .collect())
}

fn prediction_json(
    e: &Example,
    predicted: &[usize],
    probs: &[f32],
    model: &ClassifierModel,
) -> serde_json::Value {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let scores: Vec<serde_json::Value> = order
        .iter()
        .map(|&c| serde_json::json!({ "label": model.labels[c], "score": probs[c] }))
        .collect();
    let names: Vec<&String> = predicted.iter().map(|&c| &model.labels[c]).collect();
    let mut v = serde_json::json!({ "text": e.text });
    if let Some(pair) = &e.pair {
        v["text_pair"] = pair.clone().into();
    }
    if model.multi_label {
        v["labels"] = serde_json::json!(names);
    } else {
        v["label"] = serde_json::json!(names[0]);
    }
    v["scores"] = scores.into();
    v
}

/// Where `predict` reads its texts.
pub enum Inputs {
    /// Texts from the command line, each with an optional pair text.
    Texts(Vec<(String, Option<String>)>),
    /// Lines of a file, or of standard input when `None`; with `pairs`, `text<TAB>pair`.
    Lines { file: Option<PathBuf>, pairs: bool },
}

/// `positio predict classify`: one JSON object a line per text, written to `out`.
pub fn predict(
    model_dir: &Path,
    inputs: &Inputs,
    run: &Running,
    device: DeviceKind,
    out: &mut dyn Write,
) -> Result<()> {
    let model = ClassifierModel::load(model_dir, run.max_len, &runtime::device(device)?)?;
    let examples: Vec<Example> = match inputs {
        Inputs::Texts(texts) => texts
            .iter()
            .enumerate()
            .map(|(i, (t, p))| Example {
                text: t.clone(),
                pair: p.clone(),
                labels: Vec::new(),
                line: i + 1,
            })
            .collect(),
        Inputs::Lines { file, pairs } => {
            let lines = text::input_lines(file.as_deref())?;
            let source = file
                .as_ref()
                .map_or_else(|| PathBuf::from("<stdin>"), PathBuf::clone);
            let mut examples = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let (text, pair) = match (pairs, line.split_once('\t')) {
                    (true, Some((a, b))) => (a.to_string(), Some(b.to_string())),
                    (true, None) => {
                        return Err(Error::line(&source, i + 1, "expected `text<TAB>pair`"))
                    }
                    (false, _) => (line.clone(), None),
                };
                examples.push(Example {
                    text,
                    pair,
                    labels: Vec::new(),
                    line: i + 1,
                });
            }
            examples
        }
    };
    let failed = |e| Error::io(Path::new("<output>"), "write", e);
    for p in predictions(&model, &examples, run.batch_size, run.threshold)? {
        writeln!(out, "{p}").map_err(failed)?;
    }
    out.flush().map_err(failed)
}
