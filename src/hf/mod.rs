//! Hugging Face model directories: `config.json`, `model.safetensors`, `tokenizer.json`.
//!
//! One naming rule ([`naming::hf_name`]) maps positio's module paths to Hugging Face BERT tensor
//! names; loading, saving and the optimizer state all walk the module tree with it
//! ([`naming`]), so they cannot disagree. [`weights`] reads and writes safetensors;
//! [`average`] averages fine-tuned models into one (a model soup).

pub mod average;
pub mod naming;
pub mod weights;

pub use naming::{hf_name, named_parameters};
pub use weights::Weights;

use crate::data::tokenizer::Tokenizer;
use crate::model::config::{ModelConfig, Pooling, ProblemType};
use crate::model::encoder::EncoderModel;
use crate::model::heads::sequence::SequenceClassifier;
use crate::model::heads::{LanguageModel, LmHead, TokenClassifier};
use crate::{Error, Result};
use burn::module::Module;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

pub(crate) const CONFIG: &str = "config.json";
pub(crate) const WEIGHTS: &str = "model.safetensors";
pub(crate) const TOKENIZER: &str = "tokenizer.json";
pub(crate) const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub(crate) const SPECIAL_TOKENS_MAP: &str = "special_tokens_map.json";

/// A fine-tuned model built from an opened checkpoint, cutting inputs at `max_len` word pieces
/// if given (else at the length it was fine-tuned with); `load` opens the directory first.
pub trait FromCheckpoint: Sized {
    fn from_checkpoint(
        checkpoint: &Checkpoint,
        max_len: Option<usize>,
        device: &Device,
    ) -> Result<Self>;

    fn load(dir: &Path, max_len: Option<usize>, device: &Device) -> Result<Self> {
        Self::from_checkpoint(&Checkpoint::open(dir)?, max_len, device)
    }
}

/// A Hugging Face model directory, read once: its config and weights. A task's setup opens
/// the checkpoint, reads what it needs from `config` (labels, window length, head) and builds
/// the model from the same reading.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub weights: Weights,
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Self> {
        check_dir(dir)?;
        let config = ModelConfig::load(&dir.join(CONFIG))?;
        let path = dir.join(WEIGHTS);
        if !path.exists() {
            return Err(Error::file(
                &path,
                "missing: a model directory needs model.safetensors",
            ));
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            weights: Weights::load(&path)?,
        })
    }

    /// The directory's `tokenizer.json`.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        Tokenizer::load(&self.dir.join(TOKENIZER))
    }

    /// The name prefix of the base model: "" for `BertModel`, "bert." for a model saved with a
    /// task head.
    fn base_prefix(&self) -> &'static str {
        if self
            .weights
            .contains("bert.embeddings.word_embeddings.weight")
        {
            "bert."
        } else {
            ""
        }
    }

    /// A new encoder has BERT's pooler (as `BertModel` does, so that a saved model loads in
    /// `AutoModel` complete); a checkpoint without one (task-head models drop it) loads without
    /// it.
    fn new_encoder(&self, prefix: &str, device: &Device) -> EncoderModel {
        let mut model = EncoderModel::new(&self.config, device);
        if !self
            .weights
            .contains(&format!("{prefix}pooler.dense.weight"))
        {
            model.pooler = None;
        }
        model
    }

    /// The encoder (the base model of any head).
    pub fn encoder(&self, device: &Device) -> Result<EncoderModel> {
        let prefix = self.base_prefix();
        self.weights.apply(self.new_encoder(prefix, device), prefix)
    }

    /// The encoder with its language-modelling head. A directory without a head (a plain
    /// `BertModel`, e.g. for continued pretraining) gets a freshly initialised one.
    pub(crate) fn language_model(&self, device: &Device) -> Result<LanguageModel> {
        if self.weights.contains("cls.predictions.bias") {
            let model = LanguageModel {
                bert: self.new_encoder("bert.", device),
                head: LmHead::new(&self.config, device),
            };
            return self.weights.apply(model, "");
        }
        Ok(LanguageModel {
            bert: self.encoder(device)?,
            head: LmHead::new(&self.config, device),
        })
    }

    /// A token-classification model (`BertForTokenClassification`, plus a CRF when the config
    /// says `crf`) with `labels` classes; other architectures are refused.
    pub(crate) fn token_classifier(
        &self,
        labels: usize,
        device: &Device,
    ) -> Result<TokenClassifier> {
        let config = &self.config;
        if !config.architectures.is_empty()
            && !config
                .architectures
                .iter()
                .any(|a| a.ends_with("ForTokenClassification"))
        {
            return Err(Error::file(
                self.dir.join(CONFIG),
                format!(
                    "architectures is {:?}: not a token-classification model (expected e.g. BertForTokenClassification)",
                    config.architectures
                ),
            ));
        }
        if !self.weights.contains("classifier.weight") {
            return Err(Error::file(
                &self.weights.path,
                "no classifier weights: not a token-classification model",
            ));
        }
        let bert = self.new_encoder("bert.", device);
        self.weights
            .apply(TokenClassifier::new(bert, labels, config.crf(), device), "")
    }

    /// A sequence-classification model (`BertForSequenceClassification`; pooling from the
    /// config's `classifier_pooling`, \[CLS\] when absent) with its label names; other
    /// architectures and regression heads are refused.
    pub fn sequence_classifier(
        &self,
        device: &Device,
    ) -> Result<(SequenceClassifier, Vec<String>)> {
        let config = &self.config;
        let refuse = |m: String| Err(Error::file(self.dir.join(CONFIG), m));
        if !config.architectures.is_empty()
            && !config
                .architectures
                .iter()
                .any(|a| a.ends_with("ForSequenceClassification"))
        {
            return refuse(format!(
                "architectures is {:?}: not a sequence-classification model (expected e.g. BertForSequenceClassification)",
                config.architectures
            ));
        }
        if config.problem_type == Some(ProblemType::Regression) {
            return refuse(
                "problem_type is regression: positio's classifier predicts labels".into(),
            );
        }
        let Some(labels) = config.labels() else {
            return refuse("no id2label with classes 0..n: not a classification model".into());
        };
        let Some(weight) = self.weights.get("classifier.weight") else {
            return Err(Error::file(
                &self.weights.path,
                "no classifier weights: not a sequence-classification model",
            ));
        };
        if weight.shape().as_slice() != [labels.len(), config.hidden_size] {
            return Err(Error::file(
                &self.weights.path,
                format!(
                    "classifier.weight has shape {:?}, expected [{}, {}] for the {} labels of config.json",
                    weight.shape().as_slice(),
                    labels.len(),
                    config.hidden_size,
                    labels.len()
                ),
            ));
        }
        let pooling = config.classifier_pooling.unwrap_or_default();
        let bert = self.new_encoder("bert.", device);
        if pooling == Pooling::Cls && bert.pooler.is_none() {
            return Err(Error::file(
                &self.weights.path,
                "no bert.pooler.dense weights, which a [CLS]-pooling classifier needs",
            ));
        }
        let model = SequenceClassifier::new(bert, labels.len(), pooling, device);
        Ok((self.weights.apply(model, "")?, labels))
    }
}

/// Loads the encoder of a model directory (`config.json` + `model.safetensors`).
pub fn load_encoder(dir: &Path, device: &Device) -> Result<EncoderModel> {
    Checkpoint::open(dir)?.encoder(device)
}

/// Loads an encoder with its language-modelling head (`Checkpoint::language_model`).
pub fn load_language_model(dir: &Path, device: &Device) -> Result<LanguageModel> {
    Checkpoint::open(dir)?.language_model(device)
}

/// Loads a token-classification model (`Checkpoint::token_classifier`).
pub fn load_token_classifier(
    dir: &Path,
    labels: usize,
    device: &Device,
) -> Result<TokenClassifier> {
    Checkpoint::open(dir)?.token_classifier(labels, device)
}

/// Reads only `config.json` of a model directory.
pub fn load_config(dir: &Path) -> Result<ModelConfig> {
    check_dir(dir)?;
    ModelConfig::load(&dir.join(CONFIG))
}

fn check_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::file(
            dir,
            "not a model directory (expected config.json, model.safetensors, tokenizer.json)",
        ));
    }
    if !dir.join(CONFIG).exists() {
        return Err(Error::file(
            dir.join(CONFIG),
            "missing: a model directory needs config.json",
        ));
    }
    Ok(())
}

/// Refuses a `dir` that already holds a model (`command` writes new model directories only).
pub(crate) fn refuse_existing_model(dir: &Path, command: &str) -> Result<()> {
    let config = dir.join(CONFIG);
    if config.exists() {
        return Err(Error::file(
            config,
            format!(
                "already exists: {command} writes a new model directory, it does not overwrite one"
            ),
        ));
    }
    Ok(())
}

/// Saves `module` (an encoder, or a model with a head) with `config` as a Hugging Face
/// directory; copies `tokenizer.json` from `tokenizer_from` when given.
pub fn save<M: Module>(
    module: &M,
    config: &ModelConfig,
    dir: &Path,
    tokenizer_from: Option<&Path>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
    Weights::save(&named_parameters(module), &dir.join(WEIGHTS))?;
    config.save(&dir.join(CONFIG))?;
    if let Some(src) = tokenizer_from {
        let bytes = std::fs::read(src).map_err(|e| Error::io(src, "read", e))?;
        crate::io::write_atomic(&dir.join(TOKENIZER), &bytes)?;
        write_tokenizer_config(&Tokenizer::load(src)?, config, dir)?;
    }
    Ok(())
}

/// Writes `tokenizer.json` and the files `transformers`' `AutoTokenizer` reads beside it.
pub(crate) fn save_tokenizer(
    tokenizer: &Tokenizer,
    config: &ModelConfig,
    dir: &Path,
) -> Result<()> {
    tokenizer.save(&dir.join(TOKENIZER))?;
    write_tokenizer_config(tokenizer, config, dir)
}

/// `tokenizer_config.json` and `special_tokens_map.json`: without them `AutoTokenizer` builds a
/// `BertTokenizer` with `do_lower_case=True` and silently lowercases a cased model's input.
fn write_tokenizer_config(tokenizer: &Tokenizer, config: &ModelConfig, dir: &Path) -> Result<()> {
    let mut special = serde_json::Map::new();
    for (key, token) in [
        ("unk_token", "[UNK]"),
        ("sep_token", "[SEP]"),
        ("pad_token", "[PAD]"),
        ("cls_token", "[CLS]"),
        ("mask_token", "[MASK]"),
    ] {
        if tokenizer.token_to_id(token).is_some() {
            special.insert(key.into(), token.into());
        }
    }
    let mut tc = serde_json::json!({
        "backend": "tokenizers",
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": tokenizer.lowercases(),
        "model_max_length": config.max_position_embeddings,
        "strip_accents": null,
        "tokenize_chinese_chars": true,
    });
    tc.as_object_mut()
        .expect("an object")
        .extend(special.clone());
    let json = |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("serialises") + "\n";
    crate::io::write_atomic(&dir.join(TOKENIZER_CONFIG), json(&tc).as_bytes())?;
    crate::io::write_atomic(
        &dir.join(SPECIAL_TOKENS_MAP),
        json(&serde_json::Value::Object(special)).as_bytes(),
    )
}
