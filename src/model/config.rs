//! Model configuration: Hugging Face BERT's `config.json` plus positio's own keys.
//!
//! Unknown keys are kept and written back, so a Hugging Face config survives a load/save
//! round trip.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// How the encoder learns where each token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PositionKind {
    /// Learned absolute position embeddings added to the token embeddings (BERT).
    Absolute,
    /// Fixed sinusoidal embeddings added to the token embeddings (Vaswani et al. 2017).
    Sinusoidal,
    /// Rotary embeddings applied to queries and keys in every layer (Su et al. 2021).
    Rope,
    /// Per-head linear distance bias on the attention scores (Press et al. 2022).
    Alibi,
    /// Learned per-head bias over log-bucketed relative positions, shared by all layers (T5).
    #[serde(rename = "t5_bias")]
    #[value(name = "t5_bias")]
    T5Bias,
    /// No positional information at all (NoPE).
    None,
}

impl PositionKind {
    pub fn name(self) -> &'static str {
        match self {
            PositionKind::Absolute => "absolute",
            PositionKind::Sinusoidal => "sinusoidal",
            PositionKind::Rope => "rope",
            PositionKind::Alibi => "alibi",
            PositionKind::T5Bias => "t5_bias",
            PositionKind::None => "none",
        }
    }

    /// Every encoding, in declaration order; derived from the enum, so a new variant is never
    /// left out of the tests and tables that loop over it.
    pub fn all() -> &'static [PositionKind] {
        <PositionKind as clap::ValueEnum>::value_variants()
    }
}

/// What encodes the sequence: Transformer blocks (all positions in parallel) or recurrent
/// layers (one time step after another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Self-attention blocks with a positional encoding (BERT).
    #[default]
    Transformer,
    /// A left-to-right LSTM (a causal language model's encoder).
    Lstm,
    /// A left-to-right GRU.
    Gru,
    /// A bidirectional LSTM.
    Bilstm,
    /// A bidirectional GRU.
    Bigru,
}

impl Arch {
    /// The recurrent cell and number of directions, or `None` for the Transformer.
    pub fn recurrence(self) -> Option<(Cell, usize)> {
        match self {
            Arch::Transformer => None,
            Arch::Lstm => Some((Cell::Lstm, 1)),
            Arch::Gru => Some((Cell::Gru, 1)),
            Arch::Bilstm => Some((Cell::Lstm, 2)),
            Arch::Bigru => Some((Cell::Gru, 2)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Transformer => "transformer",
            Arch::Lstm => "lstm",
            Arch::Gru => "gru",
            Arch::Bilstm => "bilstm",
            Arch::Bigru => "bigru",
        }
    }
}

/// Hugging Face's `problem_type` of a sequence classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    /// One label per text: softmax and cross-entropy.
    SingleLabelClassification,
    /// Any number of labels per text: a sigmoid per label and binary cross-entropy.
    MultiLabelClassification,
    /// A real-valued target (not supported by positio's heads; refused when loading).
    Regression,
}

/// How a sequence classifier turns token states into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// BERT's pooler on the \[CLS\] state: tanh(dense(h_CLS)) (as `BertForSequenceClassification`).
    #[default]
    Cls,
    /// The mean of the token states over real tokens (sentence-transformers' pooling).
    Mean,
}

/// RoPE context extension beyond the trained length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    #[serde(rename = "type", alias = "rope_type")]
    pub kind: RopeScalingKind,
    pub factor: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RopeScalingKind {
    /// Position interpolation (Chen et al. 2023): positions are divided by `factor`.
    Linear,
    /// NTK-aware scaling: the base grows to `theta * factor^(d / (d - 2))`.
    Ntk,
}

/// Where each block's LayerNorm sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NormPosition {
    /// After each residual addition (BERT).
    Post,
    /// Before each sub-layer, with a final LayerNorm after the last block (GPT-2 style).
    Pre,
}

pub use crate::kernels::activation::Activation;
use crate::kernels::recurrence::Cell;

fn d_model_type() -> String {
    "bert".into()
}
fn d_vocab() -> usize {
    30522
}
fn d_hidden() -> usize {
    768
}
fn d_layers() -> usize {
    12
}
fn d_heads() -> usize {
    12
}
fn d_intermediate() -> usize {
    3072
}
fn d_act() -> Activation {
    Activation::Gelu
}
fn d_dropout() -> f64 {
    0.1
}
fn d_max_pos() -> usize {
    512
}
fn d_type_vocab() -> usize {
    2
}
fn d_init_range() -> f64 {
    0.02
}
fn d_eps() -> f64 {
    1e-12
}
fn d_position() -> PositionKind {
    PositionKind::Absolute
}
fn d_theta() -> f64 {
    10000.0
}
fn d_buckets() -> usize {
    32
}
fn d_max_distance() -> usize {
    128
}
fn d_norm() -> NormPosition {
    NormPosition::Post
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_transformer(a: &Arch) -> bool {
    *a == Arch::Transformer
}

/// A BERT-family encoder's configuration, as `config.json` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default = "d_model_type")]
    pub model_type: String,
    /// positio key: Transformer blocks or recurrent layers.
    #[serde(default, skip_serializing_if = "is_transformer")]
    pub arch: Arch,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: Activation,
    #[serde(default = "d_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "d_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "d_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "d_init_range")]
    pub initializer_range: f64,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "d_position")]
    pub position_embedding_type: PositionKind,
    /// RoPE base (positio key).
    #[serde(default = "d_theta")]
    pub rope_theta: f64,
    /// RoPE context extension (positio key, Hugging Face's name and shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// T5 relative bias buckets (T5's key).
    #[serde(default = "d_buckets")]
    pub relative_attention_num_buckets: usize,
    /// T5 relative bias: distances beyond this share the last bucket (T5's key).
    #[serde(default = "d_max_distance")]
    pub relative_attention_max_distance: usize,
    /// positio key: `post` (BERT) or `pre` LayerNorm.
    #[serde(default = "d_norm")]
    pub norm_position: NormPosition,
    /// positio key: causal (decoder-style) self-attention.
    #[serde(default, skip_serializing_if = "is_false")]
    pub causal: bool,
    /// positio key: word pieces per window the token classifier was fine-tuned with; evaluation
    /// and prediction use the same unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_length: Option<usize>,
    /// Hugging Face's kind of sequence-classification loss: one label per text (softmax) or any
    /// number (per-label sigmoid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<ProblemType>,
    /// positio key: how a sequence classifier pools the token states (absent: BERT's \[CLS\]
    /// pooler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_pooling: Option<Pooling>,
    /// positio key: the per-label probability above which a multi-label classifier predicts a
    /// label, tuned on the development set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_threshold: Option<f64>,
    /// positio key: per-label thresholds of a multi-label classifier (label → threshold), tuned
    /// on the development set; a label absent here uses `decision_threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_thresholds: Option<BTreeMap<String, f64>>,
    /// Label names of a classification head, by class index (Hugging Face's keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<usize, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, usize>>,
    /// Every other key of the file, written back unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl ModelConfig {
    /// A small BERT-style encoder with the given positional encoding.
    pub fn small(vocab_size: usize, position: PositionKind) -> Self {
        ModelConfig {
            vocab_size,
            hidden_size: 256,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            intermediate_size: 1024,
            position_embedding_type: position,
            ..Default::default()
        }
    }

    pub(crate) fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let mut config: ModelConfig = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("malformed config: {e}")))?;
        // Hugging Face's name for a causal BERT.
        if config.extra.get("is_decoder") == Some(&serde_json::Value::Bool(true)) {
            config.causal = true;
        }
        config
            .validate()
            .map_err(|e| Error::file(path, e.to_string()))?;
        Ok(config)
    }

    /// Whether Hugging Face's BERT classes compute exactly this model: learned absolute
    /// positions, post-LN blocks (causal masking is its `is_decoder`) and, for a sequence
    /// classifier, the [CLS] pooler.
    pub(crate) fn is_plain_bert(&self) -> bool {
        self.arch == Arch::Transformer
            && self.position_embedding_type == PositionKind::Absolute
            && self.norm_position == NormPosition::Post
            && self.classifier_pooling.unwrap_or_default() == Pooling::Cls
    }

    /// Writes `config.json`. A model that Hugging Face's BERT code would load but compute
    /// differently (other positions, pre-LN) gets `model_type` "positio", so that
    /// `transformers` refuses it instead of silently ignoring its positional encoding.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut c = self.clone();
        c.model_type = if c.is_plain_bert() {
            "bert".into()
        } else {
            "positio".into()
        };
        if c.causal {
            c.extra
                .insert("is_decoder".into(), serde_json::Value::Bool(true));
        }
        let text = serde_json::to_string_pretty(&c).expect("config serialises");
        crate::io::write_atomic(path, text.as_bytes())
    }

    /// Checks that the numbers describe a model positio can build; an error names the
    /// `config.json` key at fault.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.model_type != "bert" && self.model_type != "positio" {
            return Err(Error::config(
                "model_type",
                format!(
                    "unsupported architecture '{}' (positio reads BERT encoders, model_type \"bert\", and its own, \"positio\")",
                    self.model_type
                ),
            ));
        }
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::config(*name, "must be positive"));
        }
        if self.arch == Arch::Transformer
            && !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(Error::config(
                "hidden_size",
                format!(
                    "{} is not divisible by num_attention_heads {}",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(Error::config(
                "pad_token_id",
                format!(
                    "{} is outside the vocabulary ({})",
                    self.pad_token_id, self.vocab_size
                ),
            ));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(name, format!("must be in [0, 1), got {p}")));
            }
        }
        match self.position_embedding_type {
            PositionKind::Rope if !self.head_dim().is_multiple_of(2) => {
                return Err(Error::config(
                    "position_embedding_type",
                    format!("rope needs an even head dimension, got {}", self.head_dim()),
                ));
            }
            PositionKind::Sinusoidal if !self.hidden_size.is_multiple_of(2) => {
                return Err(Error::config(
                    "hidden_size",
                    format!(
                        "sinusoidal positions need an even hidden_size, got {}",
                        self.hidden_size
                    ),
                ));
            }
            PositionKind::T5Bias if self.relative_attention_num_buckets < 4 => {
                return Err(Error::config(
                    "relative_attention_num_buckets",
                    format!(
                        "must be at least 4, got {}",
                        self.relative_attention_num_buckets
                    ),
                ));
            }
            _ => {}
        }
        if let Some((_, directions)) = self.arch.recurrence() {
            if self.position_embedding_type != PositionKind::None {
                return Err(Error::config(
                    "position_embedding_type",
                    format!(
                        "a recurrent encoder ({}) reads order from its recurrence: position_embedding_type must be none, got {}",
                        self.arch.name(),
                        self.position_embedding_type.name()
                    ),
                ));
            }
            if !self.hidden_size.is_multiple_of(directions) {
                return Err(Error::config(
                    "hidden_size",
                    format!(
                        "{} of a bidirectional encoder must be even (half per direction)",
                        self.hidden_size
                    ),
                ));
            }
            if self.causal && directions == 2 {
                return Err(Error::config(
                    "causal",
                    format!(
                        "a causal model cannot read right to left: {} is bidirectional (use lstm or gru)",
                        self.arch.name()
                    ),
                ));
            }
        }
        if let Some(s) = self.rope_scaling {
            if s.factor.is_nan() || s.factor < 1.0 {
                return Err(Error::config(
                    "rope_scaling.factor",
                    format!("must be >= 1, got {}", s.factor),
                ));
            }
        }
        if let (Some(ids), Some(labels)) = (&self.id2label, &self.label2id) {
            for (i, name) in ids {
                if labels.get(name) != Some(i) {
                    return Err(Error::config(
                        "id2label",
                        format!("id2label and label2id disagree on label '{name}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the token classifier ends in a CRF (positio key `crf`).
    pub fn crf(&self) -> bool {
        self.extra
            .get("crf")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    pub(crate) fn set_crf(&mut self, on: bool) {
        if on {
            self.extra.insert("crf".into(), true.into());
        } else {
            self.extra.remove("crf");
        }
    }

    /// Sets `id2label` / `label2id` (Hugging Face's keys) from labels in class order.
    pub fn set_labels(&mut self, labels: &[String]) {
        self.id2label = Some(labels.iter().cloned().enumerate().collect());
        self.label2id = Some(
            labels
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, l)| (l, i))
                .collect(),
        );
    }

    /// The multi-label decision threshold of each of `labels`: its own, else the global one,
    /// else 0.5.
    pub fn label_thresholds(&self, labels: &[String]) -> Vec<f64> {
        let global = self.decision_threshold.unwrap_or(0.5);
        labels
            .iter()
            .map(|l| {
                self.decision_thresholds
                    .as_ref()
                    .and_then(|m| m.get(l).copied())
                    .unwrap_or(global)
            })
            .collect()
    }

    /// Sets (or, with `None`, removes) the per-label thresholds, given in the order of `labels`.
    pub fn set_label_thresholds(&mut self, labels: &[String], thresholds: Option<&[f64]>) {
        self.decision_thresholds =
            thresholds.map(|t| labels.iter().cloned().zip(t.iter().copied()).collect());
    }

    /// The label names of a classification head in class order, if the config has them.
    pub fn labels(&self) -> Option<Vec<String>> {
        let ids = self.id2label.as_ref()?;
        let labels: Vec<String> = ids.values().cloned().collect();
        // Class indices must be 0..n without gaps.
        ids.keys()
            .enumerate()
            .all(|(i, k)| i == *k)
            .then_some(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(e: Error) -> String {
        match e {
            Error::Config { key, .. } => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn validate_names_the_key() {
        let ok = ModelConfig::small(100, PositionKind::Rope);
        assert!(ok.validate().is_ok());
        let c = ModelConfig {
            num_hidden_layers: 0,
            ..ok.clone()
        };
        assert_eq!(key_of(c.validate().unwrap_err()), "num_hidden_layers");
        let c = ModelConfig {
            model_type: "gpt2".into(),
            ..ok.clone()
        };
        let e = c.validate().unwrap_err();
        assert!(
            e.to_string().contains("unsupported architecture 'gpt2'"),
            "{e}"
        );
        let c = ModelConfig {
            pad_token_id: 100,
            ..ok.clone()
        };
        assert_eq!(key_of(c.validate().unwrap_err()), "pad_token_id");
        let c = ModelConfig {
            arch: Arch::Bilstm,
            position_embedding_type: PositionKind::None,
            causal: true,
            ..ok
        };
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("bilstm is bidirectional"), "{e}");
        assert_eq!(key_of(e), "causal");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let e = ModelConfig::load(&path).unwrap_err();
        assert!(matches!(e, Error::Io { action: "read", .. }), "{e:?}");
        std::fs::write(&path, r#"{"hidden_size": 0}"#).unwrap();
        let e = ModelConfig::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&path.display().to_string())
                && e.contains("hidden_size: must be positive"),
            "{e}"
        );
    }
}
