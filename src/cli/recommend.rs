//! Recommendation commands: `positio finetune recommend` (a two-tower recommender on MIND click
//! logs), `positio eval recommend` (MIND's measures, its submission file) and
//! `positio recommend` (one user's ranking).

use super::{DeviceArg, FineTuningInputs, TrainingArgs};
use crate::tasks::recommend::commands::{self, NewsRanker, Request};
use crate::tasks::recommend::model::UserPooling;
use crate::tasks::recommend::task::{EncoderMode, RecommendSettings};
use crate::train::trainer::Outcome;
use crate::{Error, Result};
use std::io::Write;
use std::path::PathBuf;

/// `positio finetune recommend`.
#[derive(clap::Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    inputs: FineTuningInputs,
    /// Word pieces of a news text, title + abstract [default: 48].
    #[arg(long)]
    max_len: Option<usize>,
    /// Non-clicked candidates per click in the loss (K) [default: 4].
    #[arg(long)]
    negatives: Option<usize>,
    /// How the user tower pools the history [default: attention].
    #[arg(long, value_enum)]
    user_pooling: Option<UserPooling>,
    /// How a user is pooled when scoring: the development measures, eval and serving; it may
    /// differ from --user-pooling (the tower still trains its attention) [default: mean].
    #[arg(long, value_enum)]
    score_pooling: Option<UserPooling>,
    /// The most recent clicks a user vector is built from [default: 50].
    #[arg(long)]
    history_len: Option<usize>,
    /// Score scale (softmax temperature) [default: 20].
    #[arg(long)]
    scale: Option<f64>,
    /// Which encoder parameters train: finetune (all), frozen (none: cached vectors and a
    /// trainable top) or top-N (the top N layers) [default: finetune].
    #[arg(long)]
    encoder: Option<EncoderMode>,
    /// Times per epoch the history cache (every training news item encoded) is recomputed, so
    /// histories follow the encoder as it learns; 1: at each epoch's start [default: 10].
    #[arg(long)]
    history_refresh: Option<usize>,
    /// Leave-one-out examples from training histories per impression of a batch: a history
    /// click against random training news, the rest of the history as the user, scored from
    /// the history cache (the top learns from them, the encoder does not); 0: none [default: 16].
    #[arg(long)]
    history_examples: Option<usize>,
    #[command(flatten)]
    pub run: TrainingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl FinetuneArgs {
    pub fn run(&self) -> Result<Outcome> {
        let settings = self
            .inputs
            .resolve(&self.run, |run: &mut RecommendSettings| {
                let r = &mut run.recommend;
                r.max_len = self.max_len.unwrap_or(r.max_len);
                r.negatives = self.negatives.unwrap_or(r.negatives);
                r.user_pooling = self.user_pooling.unwrap_or(r.user_pooling);
                r.score_pooling = self.score_pooling.unwrap_or(r.score_pooling);
                r.history_len = self.history_len.unwrap_or(r.history_len);
                r.scale = self.scale.unwrap_or(r.scale);
                r.encoder = self.encoder.unwrap_or(r.encoder);
                r.history_refresh = self.history_refresh.unwrap_or(r.history_refresh);
                r.history_examples = self.history_examples.unwrap_or(r.history_examples);
            })?;
        let run = &self.run;
        commands::finetune(&settings, &run.out, run.resume, self.device.device)
    }
}

/// `positio eval recommend`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A recommender (`finetune recommend`'s run directory).
    #[arg(long)]
    model: PathBuf,
    /// A MIND directory (news.tsv, behaviors.tsv): measured where its impressions carry click
    /// labels; a test set without them is only ranked into --predictions.
    #[arg(long)]
    data: PathBuf,
    /// Write auc, mrr, ndcg@5, ndcg@10 and the impression counts as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write MIND's submission format here: `impression_id [rank,rank,…]` a line, each
    /// candidate's rank in the order shown.
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Score with this user pooling instead of the run's own (`score_pooling` of its
    /// recommend.json), e.g. to compare the trained attention with the mean.
    #[arg(long, value_enum)]
    score_pooling: Option<UserPooling>,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl EvalArgs {
    pub fn run(&self) -> Result<()> {
        let evaluation = commands::evaluate(
            &self.model,
            &self.data,
            self.json.as_deref(),
            self.predictions.as_deref(),
            self.score_pooling,
            self.device.device,
        )?;
        print!("{evaluation}");
        Ok(())
    }
}

/// `positio recommend`.
#[derive(clap::Args)]
pub struct RecommendArgs {
    /// A recommender (`finetune recommend`'s run directory).
    #[arg(long)]
    model: PathBuf,
    /// The news to recommend from: a MIND news.tsv. Its vectors are cached beside the model
    /// (computed the first time).
    #[arg(long)]
    news: PathBuf,
    /// The user's clicked news ids, oldest first, space-separated ("" for a new user).
    #[arg(long, default_value = "")]
    history: String,
    /// Rank these news ids (space-separated) instead of searching all news.
    #[arg(long, conflicts_with = "top")]
    candidates: Option<String>,
    /// Without --candidates: the best this many of all news not in the history.
    #[arg(long, default_value_t = 10)]
    top: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl RecommendArgs {
    pub fn run(&self) -> Result<()> {
        if self.top == 0 {
            return Err(Error::config("--top", "must be at least 1"));
        }
        let split = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let candidates = self.candidates.as_deref().map(split);
        if candidates.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::config("--candidates", "give at least one news id"));
        }
        let device = crate::runtime::device(self.device.device)?;
        let ranker = NewsRanker::load(&self.model, &self.news, &device)?;
        let history = split(&self.history);
        let ranked = ranker.rank(&Request {
            history: &history,
            candidates: candidates.as_deref(),
            top: self.top,
        })?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for r in ranked {
            let line = serde_json::to_string(&r).expect("serialises");
            writeln!(out, "{line}").map_err(|e| Error::io("standard output", "write", e))?;
        }
        out.flush()
            .map_err(|e| Error::io("standard output", "write", e))
    }
}
