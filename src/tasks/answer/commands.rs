//! `positio answer` and `positio calibrate`: the library embedded by a model, candidates
//! reranked when a reranker is given, and the threshold that a calibration file records.

use super::{by_relevance, pick_threshold, read_dev, Answer, AnswerLibrary, Template};
use crate::index::ModelIdentity;
use crate::tasks::embedding::Embedder;
use crate::tasks::rerank::Reranker;
use crate::{io, Error, Result};
use burn::tensor::Device;
use std::path::Path;

/// Templates the reranker reads per question.
pub const RERANK_CANDIDATES: usize = 5;

/// What `calibrate` found, and what `answer` checks before using its threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// Answer when the confidence is at least this.
    pub threshold: f64,
    pub target_precision: f64,
    /// Precision of the answers given on the development questions at this threshold.
    pub precision: f64,
    /// Share of development questions answered.
    pub coverage: f64,
    pub questions: usize,
    /// The models the confidence comes from (fingerprints, as an index records them).
    pub model: ModelIdentity,
    pub reranker: Option<ModelIdentity>,
}

impl Calibration {
    pub fn read(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("not a calibration file: {e}")))
    }

    /// Refuses a calibration made with other models than these: its threshold would mean
    /// nothing.
    pub fn check(&self, path: &Path, model: &Path, reranker: Option<&Path>) -> Result<()> {
        let same = |recorded: Option<&ModelIdentity>, dir: Option<&Path>| -> Result<bool> {
            Ok(match (recorded, dir) {
                (None, None) => true,
                (Some(r), Some(d)) => ModelIdentity::of(d)?.fingerprint == r.fingerprint,
                _ => false,
            })
        };
        if !same(Some(&self.model), Some(model))? || !same(self.reranker.as_ref(), reranker)? {
            return Err(Error::file(
                path,
                format!(
                    "calibrated for model {}{}: run calibrate again for these models",
                    self.model.path.display(),
                    match &self.reranker {
                        Some(r) => format!(" with reranker {}", r.path.display()),
                        None => " without a reranker".into(),
                    }
                ),
            ));
        }
        Ok(())
    }
}

/// The library with its models.
pub struct Answerer {
    pub library: AnswerLibrary,
    embedder: Embedder,
    reranker: Option<Reranker>,
    batch_size: usize,
}

impl Answerer {
    pub fn load(
        templates: Vec<Template>,
        model: &Path,
        reranker: Option<&Path>,
        batch_size: usize,
        device: &Device,
    ) -> Result<Answerer> {
        let embedder = Embedder::load(model, device)?;
        let vectors = embedder.embed(
            &AnswerLibrary::texts(&templates),
            embedder.pooling,
            batch_size,
        )?;
        let library = AnswerLibrary::new(templates, &vectors, device)?;
        let reranker = reranker.map(|r| Reranker::load(r, device)).transpose()?;
        Ok(Answerer {
            library,
            embedder,
            reranker,
            batch_size,
        })
    }

    /// The answer to each question.
    pub fn answer(&self, questions: &[String], threshold: Option<f64>) -> Result<Vec<Answer>> {
        let vectors = self
            .embedder
            .embed(questions, self.embedder.pooling, self.batch_size)?;
        let candidates = self.library.candidates(&vectors, RERANK_CANDIDATES)?;
        questions
            .iter()
            .zip(candidates)
            .map(|(q, candidates)| {
                let ranked = match &self.reranker {
                    Some(r) => {
                        let answers: Vec<String> = candidates
                            .iter()
                            .map(|&(t, _)| self.library.templates[t].answer.clone())
                            .collect();
                        by_relevance(&candidates, &r.scores(q, &answers, self.batch_size)?)
                    }
                    None => candidates,
                };
                Ok(self.library.decide(&ranked, threshold))
            })
            .collect()
    }
}

/// `calibrate`: answers the development questions and picks the threshold that reaches
/// `target` precision with the most answers; writes it to `out` (JSON) atomically.
pub fn calibrate(
    answerer: &Answerer,
    model: &Path,
    reranker: Option<&Path>,
    dev: &Path,
    target: f64,
    out: &Path,
) -> Result<Calibration> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(Error::config(
            "--target-precision",
            format!("must be in (0, 1], got {target}"),
        ));
    }
    let questions = read_dev(dev, &answerer.library.templates)?;
    let texts: Vec<String> = questions.iter().map(|q| q.text.clone()).collect();
    let answers = answerer.answer(&texts, None)?;
    let outcomes: Vec<(f64, bool)> = questions
        .iter()
        .zip(&answers)
        .map(|(q, a)| {
            (
                a.confidence,
                q.answer.as_deref() == Some(a.template.as_str()),
            )
        })
        .collect();
    let Some((threshold, precision, answered)) = pick_threshold(&outcomes, target) else {
        let right = outcomes.iter().filter(|o| o.1).count();
        return Err(Error::invalid(format!(
            "{}: no threshold reaches precision {target}: even the most confident answer is wrong \
             ({right} of {} best templates are right)",
            dev.display(),
            outcomes.len()
        )));
    };
    let calibration = Calibration {
        threshold,
        target_precision: target,
        precision,
        coverage: answered as f64 / questions.len() as f64,
        questions: questions.len(),
        model: ModelIdentity::of(model)?,
        reranker: reranker.map(ModelIdentity::of).transpose()?,
    };
    io::write_atomic(
        out,
        (serde_json::to_string_pretty(&calibration).expect("serialises") + "\n").as_bytes(),
    )?;
    Ok(calibration)
}
