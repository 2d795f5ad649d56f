//! The two-tower recommender (PLM-NR's shape, with NRMS's additive attention as the user
//! encoder): a news tower — the Transformer over title and abstract, mean-pooled, projected
//! (`news_projection`, initialised to the identity) and L2-normalised — and a user tower that
//! pools the vectors of the clicked history by additive attention
//! (`eᵢ = q · tanh(W vᵢ + b)`, `α = softmax(e)`, `u = Σ αᵢ vᵢ`) or by their mean, with a learned
//! `cold_start` vector for a user with no history. A candidate's score is `scale · u · v`.
//! Training and scoring may pool differently: a tower trained with attention and scored by the
//! plain mean ranks best on the simulated logs (docs/RESULTS.md), so that is the default.
//!
//! Scores depend on the texts and the history only, never on news or user ids, so unseen news
//! and unseen users are scored as well as seen ones. The directory is a Hugging Face one
//! (`bert.*` plus the towers' own tensors, so `AutoModel` loads the news encoder from it) with
//! `recommend.json` for the rest.

use crate::hf::{self, Checkpoint};
use crate::model::config::ModelConfig;
use crate::model::encoder::{Batch, EncoderModel};
use crate::model::layers::Linear;
use crate::model::pooling::{l2_normalize, mean_pool};
use crate::{io, Error, Result};
use burn::module::{Module, Param};
use burn::tensor::{activation::softmax, Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file of a recommender directory that holds its settings.
pub const SETTINGS_FILE: &str = "recommend.json";

/// How the user tower pools the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UserPooling {
    /// Additive attention (NRMS / PLM-NR).
    #[default]
    Attention,
    /// The mean of the history vectors (the simple baseline).
    Mean,
}

impl std::fmt::Display for UserPooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UserPooling::Attention => "attention",
            UserPooling::Mean => "mean",
        })
    }
}

/// What a recommender needs besides its tensors (`recommend.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendHead {
    /// Word pieces of a news text read (title + abstract).
    pub max_len: usize,
    /// How the user tower pooled the history in training.
    pub user_pooling: UserPooling,
    /// How a user is pooled when scoring (evaluation, serving, a run's development measures);
    /// absent in directories written before it existed, which score as they trained. It may be
    /// switched after training: the attention's tensors stay in the directory either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_pooling: Option<UserPooling>,
    /// The most recent clicks a user vector is built from.
    pub history_len: usize,
    /// Multiplies `u · v` into a score (the softmax temperature of training).
    pub scale: f64,
}

impl RecommendHead {
    /// How a user is pooled when scoring.
    pub fn scoring(&self) -> UserPooling {
        self.score_pooling.unwrap_or(self.user_pooling)
    }
}

/// Hidden units of the additive attention.
const ATTENTION_HIDDEN: usize = 128;

#[derive(Module, Debug)]
pub struct UserAttention {
    pub dense: Linear,
    pub query: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct RecommendModel {
    pub bert: EncoderModel,
    pub news_projection: Linear,
    pub user_attention: UserAttention,
    pub cold_start: Param<Tensor<1>>,
    #[module(skip)]
    pub head: RecommendHead,
}

fn normal(n: usize, std: f64, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::random([n], Distribution::Normal(0.0, std), device))
}

impl RecommendModel {
    /// Fresh towers on a pretrained encoder (which loses its pooler: mean pooling gives it no
    /// gradient).
    pub fn new(mut bert: EncoderModel, head: RecommendHead, device: &Device) -> Self {
        bert.pooler = None;
        let h = bert.config.hidden_size;
        let std = bert.config.initializer_range;
        let mut news_projection = Linear::new(h, h, std, device);
        news_projection.weight = Param::from_tensor(Tensor::eye(h, device));
        RecommendModel {
            bert,
            news_projection,
            user_attention: UserAttention {
                dense: Linear::new(h, ATTENTION_HIDDEN, std, device),
                query: normal(ATTENTION_HIDDEN, std, device),
            },
            cold_start: normal(h, std, device),
            head,
        }
    }

    /// Mean-pooled encoder states of a batch of news, before the projection, `[n, hidden]`.
    pub fn pooled(&self, batch: &Batch) -> Tensor<2> {
        mean_pool(self.bert.forward(batch), batch)
    }

    /// News vectors from pooled states: projected and L2-normalised, `[n, hidden]`.
    pub fn news_vectors(&self, pooled: Tensor<2>) -> Tensor<2> {
        l2_normalize(self.news_projection.forward(pooled))
    }

    /// User vectors `[b, hidden]` from the news vectors of their histories `[b, n, hidden]`
    /// (zero rows where `mask` `[b, n]` is 0), pooled by `pooling`; a user with no history gets
    /// `cold_start`.
    pub fn users(&self, history: Tensor<3>, mask: Tensor<2>, pooling: UserPooling) -> Tensor<2> {
        let [b, n, h] = history.dims();
        let has = mask.clone().max_dim(1); // [b, 1]: 1 when the user has a history
        let pooled = match pooling {
            UserPooling::Mean => {
                let count = mask.clone().sum_dim(1).clamp_min(1.0);
                history.sum_dim(1).reshape([b, h]) / count
            }
            UserPooling::Attention => {
                let a = &self.user_attention;
                let e = a.dense.forward(history.clone()).tanh(); // [b, n, 128]
                let scores = e
                    .matmul(a.query.val().reshape([1, ATTENTION_HIDDEN, 1]).expand([
                        b,
                        ATTENTION_HIDDEN,
                        1,
                    ]))
                    .reshape([b, n]);
                // Padding gets -1e9 (exp → 0); an all-padding row weighs zero vectors.
                let alpha = softmax(scores + (mask - 1.0) * 1e9, 1); // [b, n]
                alpha.unsqueeze_dim::<3>(1).matmul(history).reshape([b, h])
            }
        };
        let cold = self.cold_start.val().reshape([1, h]).expand([b, h]);
        pooled * has.clone() + cold * (has.neg() + 1.0)
    }

    /// Scores `[b, c]` of candidates `[b, c, hidden]` for users `[b, hidden]`.
    pub fn scores(&self, users: Tensor<2>, candidates: Tensor<3>) -> Tensor<2> {
        let [b, c, h] = candidates.dims();
        candidates.matmul(users.reshape([b, h, 1])).reshape([b, c]) * self.head.scale
    }

    /// Writes the directory: config, weights, tokenizer files and `recommend.json`.
    pub fn save(&self, config: &ModelConfig, tokenizer: &Path, dir: &Path) -> Result<()> {
        hf::save(self, config, dir, Some(tokenizer))?;
        let json = serde_json::to_string_pretty(&self.head).expect("serialises") + "\n";
        io::write_atomic(&dir.join(SETTINGS_FILE), json.as_bytes())
    }

    /// A recommender directory written by [`RecommendModel::save`].
    pub fn load(checkpoint: &Checkpoint, device: &Device) -> Result<Self> {
        let path = checkpoint.dir.join(SETTINGS_FILE);
        if !path.exists() {
            return Err(Error::file(
                &path,
                "missing: not a recommender (train one with `positio finetune recommend`)",
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "read", e))?;
        let head: RecommendHead = serde_json::from_str(&text)
            .map_err(|e| Error::file(&path, format!("malformed: {e}")))?;
        let bert = EncoderModel::new(&checkpoint.config, device);
        let model = RecommendModel::new(bert, head, device);
        checkpoint.weights.apply(model, "")
    }
}
