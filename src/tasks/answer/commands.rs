//! `positio answer` and `positio calibrate`: questions routed by an intent classifier when one
//! is given, the library embedded by a model, candidates reranked when a reranker is given,
//! and the threshold that a calibration file records.

use super::{
    by_relevance, check_router, pick_threshold, read_dev, route, Answer, AnswerLibrary, Route,
    Template,
};
use crate::data::labelled::Example;
use crate::hf::FromCheckpoint;
use crate::index::ModelIdentity;
use crate::tasks::classify::ClassifierModel;
use crate::tasks::embedding::Embedder;
use crate::tasks::rerank::Reranker;
use crate::{io, Error, Result};
use burn::tensor::Device;
use std::path::Path;

/// The models an answerer runs, as directories.
#[derive(Debug, Clone, Copy)]
pub struct AnswerModels<'a> {
    /// The embedding model that finds candidate templates.
    pub model: &'a Path,
    /// A reranker that reorders the candidates.
    pub reranker: Option<&'a Path>,
    /// An intent classifier and the probability from which its intent is followed.
    pub router: Option<(&'a Path, f64)>,
}

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
    /// The router and its minimum probability (files from before routing have none).
    #[serde(default)]
    pub router: Option<(ModelIdentity, f64)>,
}

impl Calibration {
    pub fn read(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("not a calibration file: {e}")))
    }

    /// Refuses a calibration made with other models than these: its threshold would mean
    /// nothing.
    pub fn check(&self, path: &Path, models: &AnswerModels) -> Result<()> {
        let same = |recorded: Option<&ModelIdentity>, dir: Option<&Path>| -> Result<bool> {
            Ok(match (recorded, dir) {
                (None, None) => true,
                (Some(r), Some(d)) => ModelIdentity::of(d)?.fingerprint == r.fingerprint,
                _ => false,
            })
        };
        let router = self.router.as_ref().map(|(r, _)| r);
        let same_minimum = match (&self.router, models.router) {
            (Some((_, a)), Some((_, b))) => a == &b,
            _ => true,
        };
        if !same(Some(&self.model), Some(models.model))?
            || !same(self.reranker.as_ref(), models.reranker)?
            || !same(router, models.router.map(|(r, _)| r))?
            || !same_minimum
        {
            return Err(Error::file(
                path,
                format!(
                    "calibrated for model {}{}{}: run calibrate again for these models",
                    self.model.path.display(),
                    match &self.reranker {
                        Some(r) => format!(" with reranker {}", r.path.display()),
                        None => " without a reranker".into(),
                    },
                    match &self.router {
                        Some((r, min)) => {
                            format!(" and router {} (minimum {min})", r.path.display())
                        }
                        None => " and no router".into(),
                    }
                ),
            ));
        }
        Ok(())
    }
}

/// An intent classifier in front of the library.
struct Router {
    model: ClassifierModel,
    min_probability: f64,
}

impl Router {
    fn load(dir: &Path, min_probability: f64, device: &Device) -> Result<Router> {
        let model = ClassifierModel::load(dir, None, device)?;
        if model.multi_label || model.labels.len() < 2 {
            return Err(Error::config(
                "--router",
                format!(
                    "{} is not an intent classifier (single-label, two labels or more)",
                    dir.display()
                ),
            ));
        }
        Ok(Router {
            model,
            min_probability,
        })
    }

    fn routes(&self, questions: &[String], batch_size: usize) -> Result<Vec<Option<Route>>> {
        let examples: Vec<Example> = questions.iter().map(|q| Example::unlabelled(q)).collect();
        let probs = self
            .model
            .probabilities(&self.model.encode(&examples)?, batch_size);
        Ok(probs
            .iter()
            .map(|p| Some(route(p, &self.model.labels, self.min_probability)))
            .collect())
    }
}

/// The library with its models.
pub struct Answerer {
    pub library: AnswerLibrary,
    embedder: Embedder,
    reranker: Option<Reranker>,
    router: Option<Router>,
    batch_size: usize,
}

impl Answerer {
    pub fn load(
        templates: Vec<Template>,
        models: &AnswerModels,
        batch_size: usize,
        device: &Device,
    ) -> Result<Answerer> {
        let router = models
            .router
            .map(|(dir, min)| Router::load(dir, min, device))
            .transpose()?;
        if let (Some(router), Some((dir, _))) = (&router, models.router) {
            check_router(&templates, &router.model.labels, &dir.display().to_string())?;
        }
        let embedder = Embedder::load(models.model, device)?;
        let vectors = embedder.embed(
            &AnswerLibrary::texts(&templates),
            embedder.pooling,
            batch_size,
        )?;
        let library = AnswerLibrary::new(templates, &vectors, device)?;
        let reranker = models
            .reranker
            .map(|r| Reranker::load(r, device))
            .transpose()?;
        Ok(Answerer {
            library,
            embedder,
            reranker,
            router,
            batch_size,
        })
    }

    /// The answer to each question.
    pub fn answer(&self, questions: &[String], threshold: Option<f64>) -> Result<Vec<Answer>> {
        let routes = match &self.router {
            Some(router) => router.routes(questions, self.batch_size)?,
            None => vec![None; questions.len()],
        };
        let vectors = self
            .embedder
            .embed(questions, self.embedder.pooling, self.batch_size)?;
        let candidates = self
            .library
            .candidates(&vectors, &routes, RERANK_CANDIDATES)?;
        questions
            .iter()
            .zip(candidates)
            .zip(routes)
            .map(|((q, candidates), route)| {
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
                Ok(self.library.decide(&ranked, threshold, route))
            })
            .collect()
    }
}

/// `calibrate`: answers the development questions and picks the threshold that reaches
/// `target` precision with the most answers (a question routed to an intent without templates
/// is never answered); writes it to `out` (JSON) atomically.
pub fn calibrate(
    answerer: &Answerer,
    models: &AnswerModels,
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
        .filter(|(_, a)| a.template.is_some())
        .map(|(q, a)| (a.confidence, q.answer == a.template))
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
        model: ModelIdentity::of(models.model)?,
        reranker: models.reranker.map(ModelIdentity::of).transpose()?,
        router: models
            .router
            .map(|(r, min)| ModelIdentity::of(r).map(|id| (id, min)))
            .transpose()?,
    };
    io::write_atomic(
        out,
        (serde_json::to_string_pretty(&calibration).expect("serialises") + "\n").as_bytes(),
    )?;
    Ok(calibration)
}
