//! The models a server answers with: each directory is loaded once at startup, by its head
//! (sentence embeddings for a plain encoder, sequence classification, token classification),
//! with the same loaders and the same clear errors as the command line.

use crate::data::tokenizer::Tokenizer;
use crate::hf::FromCheckpoint;
use crate::model::config::ModelConfig;
use crate::tasks::classify::{self, ClassifierModel, Encoded};
use crate::tasks::embedding::{Embedder, SentencePooling};
use crate::tasks::ner::model::WordDecoding;
use crate::tasks::ner::NerModel;
use crate::{hf, Result};
use burn::tensor::Device;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a served model computes, from its `config.json` architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// Sentence embeddings (`/embed`, `/v1/embeddings`): any encoder without a task head.
    Embedding,
    /// Labels of texts or pairs (`/predict`): `…ForSequenceClassification`.
    SequenceClassification,
    /// Entities (`/ner`): `…ForTokenClassification`.
    TokenClassification,
}

impl Head {
    fn of(config: &ModelConfig) -> Head {
        let has = |suffix: &str| config.architectures.iter().any(|a| a.ends_with(suffix));
        if has("ForSequenceClassification") {
            Head::SequenceClassification
        } else if has("ForTokenClassification") {
            Head::TokenClassification
        } else {
            Head::Embedding
        }
    }

    /// The route that serves this head.
    pub fn route(self) -> &'static str {
        match self {
            Head::Embedding => "/embed",
            Head::SequenceClassification => "/predict",
            Head::TokenClassification => "/ner",
        }
    }
}

/// What `/info` says about a model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub directory: PathBuf,
    pub head: Head,
    /// Class names (classification heads; empty for embeddings).
    pub labels: Vec<String>,
    pub multi_label: bool,
    /// A multi-label classifier's decision threshold per label (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f64>,
    /// Longest input in tokens, special tokens included.
    pub max_input_length: usize,
    pub position_encoding: String,
    pub hidden_size: usize,
    /// Sentence pooling (embedding models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooling: Option<SentencePooling>,
}

/// The network of a served model; lives on its batching thread.
/// (Boxed: the models differ in size, and only one lives per thread.)
pub enum Runner {
    Embedding(Box<Embedder>),
    SequenceClassification(Box<ClassifierModel>),
    TokenClassification(Box<NerModel>),
}

/// One input's result, before the route shapes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A sentence vector (not normalised).
    Vector(Vec<f32>),
    /// Class logits.
    Logits(Vec<f32>),
    /// Label probabilities of every token, special tokens included.
    TokenProbabilities(Vec<Vec<f32>>),
}

/// A loaded model: its description, a tokenizer for the request side, and the runner for its
/// batching thread.
pub struct Loaded {
    pub info: ModelInfo,
    pub tokenizer: Tokenizer,
    pub runner: Runner,
    /// A token classifier's `words` decoding (window length, labels, CRF scores).
    pub words: Option<WordDecoding>,
}

/// Loads `dir` as the model called `name`.
pub fn load(name: &str, dir: &Path, device: &Device) -> Result<Loaded> {
    let checkpoint = hf::Checkpoint::open(dir)?;
    let config = &checkpoint.config;
    let head = Head::of(config);
    let mut info = ModelInfo {
        name: name.to_string(),
        directory: dir.to_path_buf(),
        head,
        labels: Vec::new(),
        multi_label: false,
        thresholds: Vec::new(),
        max_input_length: 0,
        position_encoding: config.position_embedding_type.name().to_string(),
        hidden_size: config.hidden_size,
        pooling: None,
    };
    let mut words = None;
    let (tokenizer, runner) = match head {
        Head::Embedding => {
            let m = Embedder::from_checkpoint(&checkpoint, device)?;
            info.max_input_length = m.max_len;
            info.pooling = Some(m.pooling);
            (m.tokenizer.clone(), Runner::Embedding(Box::new(m)))
        }
        Head::SequenceClassification => {
            let m = ClassifierModel::from_checkpoint(&checkpoint, None, device)?;
            info.max_input_length = m.max_len;
            info.labels = m.labels.clone();
            info.multi_label = m.multi_label;
            if m.multi_label {
                info.thresholds = m.thresholds.clone();
            }
            (
                m.tokenizer.clone(),
                Runner::SequenceClassification(Box::new(m)),
            )
        }
        Head::TokenClassification => {
            let m = NerModel::from_checkpoint(&checkpoint, None, device)?;
            info.max_input_length = m.input_limit();
            info.labels = m.labels.clone();
            words = Some(m.word_decoding());
            (
                m.tokenizer.clone(),
                Runner::TokenClassification(Box::new(m)),
            )
        }
    };
    Ok(Loaded {
        info,
        tokenizer,
        runner,
        words,
    })
}

impl Runner {
    /// One forward pass over a batch of token-id sequences (with segment ids).
    pub fn run(&self, ids: &[Vec<u32>], segments: &[Vec<u32>]) -> Result<Vec<Output>> {
        match self {
            Runner::Embedding(m) => Ok(m
                .pool(ids, m.pooling, false)?
                .into_iter()
                .map(Output::Vector)
                .collect()),
            Runner::SequenceClassification(m) => {
                let texts: Vec<Encoded> = ids
                    .iter()
                    .zip(segments)
                    .map(|(i, s)| Encoded {
                        ids: i.clone(),
                        segments: s.clone(),
                        classes: Vec::new(),
                    })
                    .collect();
                let all: Vec<usize> = (0..texts.len()).collect();
                Ok(classify::logits(&m.model, &texts, &all, m.tokenizer.pad_id)
                    .into_iter()
                    .map(Output::Logits)
                    .collect())
            }
            Runner::TokenClassification(m) => Ok(m
                .piece_probabilities(ids)?
                .into_iter()
                .map(Output::TokenProbabilities)
                .collect()),
        }
    }
}
