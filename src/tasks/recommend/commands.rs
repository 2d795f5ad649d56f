//! `positio finetune recommend`, `positio eval recommend` and `positio recommend` (one user's
//! ranking), each a thin course over the shared [`Recommender`].

use super::model::{RecommendModel, UserPooling};
use super::task::{RecommendSettings, RecommendTask};
use super::{NewsVectors, Recommender};
use crate::data::mind::{self, NewsSet};
use crate::runtime::{self, DeviceKind};
use crate::train::trainer::{fine_tune, Outcome};
use crate::{io, Error, Result};
use burn::tensor::Device;
use serde::Serialize;
use std::path::Path;

/// Trains until done or interrupted (then a checkpoint is saved and `Outcome::Interrupted`
/// returned); the run directory ends as a recommender directory.
pub fn finetune(
    run: &RecommendSettings,
    out: &Path,
    resume: bool,
    device: DeviceKind,
) -> Result<Outcome> {
    let describe = |_: &RecommendTask, model: &RecommendModel| {
        tracing::info!(
            "fine-tuning {} ({} encoder parameters) as a news recommender",
            run.recommend.model,
            model.bert.num_params()
        )
    };
    let prepare = |device: &Device| RecommendTask::prepare(run, device);
    let (_, summary) = fine_tune(run, out, resume, device, prepare, describe)?;
    Ok(summary.report("auc", out))
}

/// `eval recommend`'s result: MIND's four measures over the labelled impressions (none in a
/// test set without click labels) and how many impressions there were of each kind.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub auc: Option<f64>,
    pub mrr: Option<f64>,
    #[serde(rename = "ndcg@5")]
    pub ndcg5: Option<f64>,
    #[serde(rename = "ndcg@10")]
    pub ndcg10: Option<f64>,
    /// Impressions the measures average.
    pub impressions: usize,
    /// Impressions left out: all candidates clicked or none (AUC is undefined).
    pub skipped: usize,
    /// Impressions without click labels: ranked into the predictions only.
    pub unlabelled: usize,
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (Some(auc), Some(mrr), Some(n5), Some(n10)) =
            (self.auc, self.mrr, self.ndcg5, self.ndcg10)
        {
            writeln!(
                f,
                "auc {auc:.4}  mrr {mrr:.4}  ndcg@5 {n5:.4}  ndcg@10 {n10:.4}  ({} impressions, {} skipped: one class only)",
                self.impressions, self.skipped
            )?;
        }
        if self.unlabelled > 0 {
            writeln!(
                f,
                "{} impressions without click labels: ranked into the predictions only",
                self.unlabelled
            )?;
        }
        Ok(())
    }
}

/// Scores every impression of `data` (a MIND directory) with the recommender in `model`;
/// writes the report as JSON and MIND's submission file when asked. A test set without click
/// labels is ranked into the submission file (which must then be asked for). `score_pooling`
/// overrides the run's own.
pub fn evaluate(
    model: &Path,
    data: &Path,
    json: Option<&Path>,
    predictions: Option<&Path>,
    score_pooling: Option<UserPooling>,
    device: DeviceKind,
) -> Result<Evaluation> {
    let device = runtime::device(device)?;
    let mut recommender = Recommender::load(model, &device)?;
    if let Some(pooling) = score_pooling {
        recommender.model.head.score_pooling = Some(pooling);
    }
    let set = mind::read(data)?;
    if !set.labelled() && predictions.is_none() {
        return Err(Error::file(
            data.join(mind::BEHAVIORS),
            "impressions without click labels (a test set): nothing to measure; give --predictions to write MIND's submission file",
        ));
    }
    let vectors = recommender.cached_news_vectors(&set.news, &data.join(mind::NEWS))?;
    let mut lines = Vec::new();
    let totals = recommender.evaluate(
        &set,
        &vectors,
        predictions
            .is_some()
            .then_some(&mut lines as &mut dyn std::io::Write),
    )?;
    let m = totals.means();
    let measure = |i: usize| (totals.counted > 0).then_some(m[i].1);
    let evaluation = Evaluation {
        auc: measure(0),
        mrr: measure(1),
        ndcg5: measure(2),
        ndcg10: measure(3),
        impressions: totals.counted,
        skipped: totals.skipped,
        unlabelled: totals.unlabelled,
    };
    if let Some(path) = predictions {
        io::write_atomic(path, &lines)?;
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&evaluation).expect("serialises") + "\n";
        io::write_atomic(path, text.as_bytes())?;
    }
    Ok(evaluation)
}

/// One recommended news item.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub rank: usize,
    pub id: String,
    pub score: f32,
    pub title: String,
}

/// A user's request: clicked history (oldest first) and either the candidates to rank or how
/// many of all news to return.
pub struct Request<'a> {
    pub history: &'a [String],
    pub candidates: Option<&'a [String]>,
    pub top: usize,
}

/// A recommender with the news it ranks: what `positio recommend` and the server's
/// `/recommend` run.
pub struct NewsRanker {
    pub recommender: Recommender,
    pub news: NewsSet,
    pub vectors: NewsVectors,
}

impl NewsRanker {
    /// Loads the recommender and the news, with their vectors from the cache beside the model
    /// (computed and cached the first time).
    pub fn load(model: &Path, news: &Path, device: &Device) -> Result<Self> {
        let recommender = Recommender::load(model, device)?;
        let set = mind::read_news(news)?;
        let vectors = recommender.cached_news_vectors(&set, news)?;
        Ok(NewsRanker {
            recommender,
            news: set,
            vectors,
        })
    }

    /// The request's candidates ranked best first (all of them), or the `top` best of all news
    /// not in the history (exact: one pass over the cached vectors).
    pub fn rank(&self, request: &Request) -> Result<Vec<Recommendation>> {
        let slots = |ids: &[String], what: &str| -> Result<Vec<usize>> {
            ids.iter()
                .map(|id| {
                    self.news.slot(id).ok_or_else(|| {
                        Error::invalid(format!("{what}: news id {id:?} is not in the news file"))
                    })
                })
                .collect()
        };
        let history = slots(request.history, "history")?;
        let user = self.recommender.users(&self.vectors, &[&history])?;
        let scored: Vec<(usize, f32)> = match request.candidates {
            Some(candidates) => {
                let candidates = slots(candidates, "candidates")?;
                let scores = self.recommender.scores(&user, &self.vectors, &candidates);
                super::metrics::ranking(&scores)
                    .into_iter()
                    .map(|i| (candidates[i], scores[i]))
                    .collect()
            }
            None => self
                .recommender
                .top(&user, &self.vectors, request.top, &history),
        };
        Ok(scored
            .into_iter()
            .enumerate()
            .map(|(r, (slot, score))| Recommendation {
                rank: r + 1,
                id: self.news.items[slot].id.clone(),
                score,
                title: self.news.items[slot].title.clone(),
            })
            .collect())
    }
}
