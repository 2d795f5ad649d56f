//! The fine-tuning, evaluation and prediction commands for named-entity recognition.

use crate::conll;
use crate::metrics::{entity_report, token_report};
use crate::ner::{entities_of, parse_scheme, split_words, NerConfig, NerModel, NerTask};
use crate::trainer::{latest_checkpoint, TrainConfig, Trainer};
use crate::{io, runtime, Error, Result};
use burn::module::Module;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// What a NER fine-tuning run was started with (saved as `run.toml`, checked on resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NerRun {
    ner: NerConfig,
    train: TrainConfig,
}

/// `positio finetune ner`.
pub fn ner(cfg: &NerConfig, train: &TrainConfig, out: &Path, resume: bool) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, format!("cannot create: {e}")))?;
    let run = NerRun { ner: cfg.clone(), train: train.clone() };
    let saved = out.join("run.toml");
    if resume {
        let text = std::fs::read_to_string(&saved).map_err(|e| Error::file(&saved, format!("cannot read: {e}")))?;
        let previous: NerRun = toml::from_str(&text).map_err(|e| Error::file(&saved, format!("invalid: {e}")))?;
        if previous != run {
            return Err(Error::file(&saved, "the settings differ from the run being resumed; resume with the same ones (they are in this file)"));
        }
    } else {
        if latest_checkpoint(out)?.is_some() {
            return Err(Error::file(out, "already holds a run: pass --resume to continue it, or choose another --out"));
        }
        io::write_atomic(&saved, toml::to_string_pretty(&run).expect("serialises").as_bytes())?;
    }
    let device = runtime::cpu().autodiff();
    device.seed(train.seed);
    let (mut task, model) = NerTask::prepare(cfg, train.seed, &device)?;
    println!(
        "fine-tuning {} ({} parameters{}) for {} labels: {}",
        cfg.model,
        model.num_params(),
        if cfg.crf { ", CRF" } else { "" },
        task.labels.len(),
        task.labels.join(" ")
    );
    let trainer = Trainer { config: train.clone(), run_dir: out.to_path_buf(), progress: true };
    let (_, summary) = trainer.run(&mut task, model, resume)?;
    if summary.interrupted {
        println!("interrupted at step {}: checkpoint saved; continue with --resume", summary.steps);
        std::process::exit(130);
    }
    println!(
        "done: {} steps in {:.0} s ({:.0} tokens/s); best development entity F1 {:.4}; model in {}",
        summary.steps,
        summary.elapsed_s,
        summary.tokens as f64 / summary.elapsed_s.max(1e-9),
        summary.best.unwrap_or(f64::NAN),
        out.display()
    );
    Ok(())
}

/// `positio eval ner`: both reports, optionally the predictions and a JSON copy.
pub fn eval_ner(model_dir: &Path, data: &Path, output: Option<&Path>, json: Option<&Path>, batch_size: usize, tag_column: Option<usize>, scheme: Option<&str>) -> Result<()> {
    let model = NerModel::load(model_dir, &runtime::cpu())?;
    let scheme = scheme.map(parse_scheme).transpose()?;
    let (sentences, detected) = conll::read_iob2(data, tag_column, scheme)?;
    let (predicted, _) = model.tag(&sentences, batch_size)?;
    let gold: Vec<Vec<String>> = sentences.iter().map(|s| s.tags.clone()).collect();
    let (entity, token) = (entity_report(&gold, &predicted), token_report(&gold, &predicted));
    let tokens: usize = gold.iter().map(Vec::len).sum();
    println!("{}: {} sentences, {} tokens, tags read as {detected:?}, scored as IOB2\n", data.display(), sentences.len(), tokens);
    println!("entity level (seqeval / conlleval: type and both boundaries must match)\n");
    println!("{}", entity.table());
    println!("token level (IOB2 tags)\n");
    println!("{}", token.table());
    if let Some(path) = output {
        conll::write_predictions(path, &sentences, &predicted)?;
    }
    if let Some(path) = json {
        let value = serde_json::json!({ "data": data, "entity": entity, "token": token });
        io::write_atomic(path, serde_json::to_string_pretty(&value).expect("serialises").as_bytes())?;
    }
    Ok(())
}

/// `positio predict ner`.
pub fn predict_ner(model_dir: &Path, texts: &[String], file: Option<&Path>, conll_file: Option<&Path>, batch_size: usize) -> Result<()> {
    let model = NerModel::load(model_dir, &runtime::cpu())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write = |out: &mut dyn Write, line: &str| writeln!(out, "{line}").map_err(|e| Error::invalid(format!("cannot write output: {e}")));
    if let Some(path) = conll_file {
        // Tag the words of a CoNLL file; its lines are echoed with the predicted tag appended.
        let sentences = read_words(path)?;
        let (tags, _) = model.tag(&sentences, batch_size)?;
        for (t, cols) in tags.iter().zip(conll_lines(path)?) {
            for (line, tag) in cols.iter().zip(t) {
                write(&mut out, &format!("{line} {tag}"))?;
            }
            write(&mut out, "")?;
        }
        return Ok(());
    }
    let lines: Vec<String> = match (texts.is_empty(), file) {
        (false, _) => texts.to_vec(),
        (true, Some(path)) => std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?.lines().map(str::to_string).collect(),
        (true, None) => std::io::stdin().lock().lines().collect::<std::io::Result<_>>().map_err(|e| Error::invalid(format!("cannot read standard input: {e}")))?,
    };
    let words: Vec<Vec<crate::ner::Word>> = lines.iter().map(|l| split_words(l)).collect();
    let sentences: Vec<conll::Sentence> = words
        .iter()
        .map(|w| conll::Sentence { words: w.iter().map(|w| w.text.clone()).collect(), tags: vec!["O".into(); w.len()], line: 0 })
        .collect();
    let (tags, probs) = model.tag(&sentences, batch_size)?;
    for (i, line) in lines.iter().enumerate() {
        for e in entities_of(&words[i], &tags[i], &probs[i], line) {
            let mut v = serde_json::to_value(&e).expect("serialises");
            v["line"] = (i + 1).into();
            write(&mut out, &v.to_string())?;
        }
    }
    Ok(())
}

/// The sentences of a CoNLL file by their words (tags, if any, are ignored).
fn read_words(path: &Path) -> Result<Vec<conll::Sentence>> {
    Ok(conll_lines(path)?
        .into_iter()
        .map(|lines| {
            let words: Vec<String> = lines.iter().map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect();
            let n = words.len();
            conll::Sentence { words, tags: vec!["O".into(); n], line: 0 }
        })
        .collect())
}

/// The non-blank, non-`-DOCSTART-` lines of a CoNLL file, grouped by sentence.
fn conll_lines(path: &Path) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let mut out = vec![Vec::new()];
    for line in text.trim_start_matches('\u{feff}').lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with("-DOCSTART-") {
            if !out.last().is_some_and(Vec::is_empty) {
                out.push(Vec::new());
            }
        } else {
            out.last_mut().expect("non-empty").push(line.to_string());
        }
    }
    out.retain(|s| !s.is_empty());
    Ok(out)
}
