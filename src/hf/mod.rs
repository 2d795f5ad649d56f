//! Hugging Face model directories: `config.json`, `model.safetensors`, `tokenizer.json`.
//!
//! One naming rule ([`naming::hf_name`]) maps positio's module paths to Hugging Face BERT tensor
//! names; loading, saving and the optimizer state all walk the module tree with it
//! ([`naming`]), so they cannot disagree. [`weights`] reads and writes safetensors.

pub mod naming;
pub mod weights;

pub use naming::{hf_name, named_parameters};
pub use weights::Weights;

use crate::data::tokenizer::Tokenizer;
use crate::model::config::ModelConfig;
use crate::model::encoder::EncoderModel;
use crate::model::heads::{LanguageModel, LmHead, TokenClassifier};
use crate::{Error, Result};
use burn::module::Module;
use burn::tensor::Device;
use std::path::Path;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const SPECIAL_TOKENS_MAP: &str = "special_tokens_map.json";

/// The name prefix of the base model in a checkpoint: "" for `BertModel`, "bert." for a model
/// saved with a task head.
fn base_prefix(weights: &Weights) -> &'static str {
    if weights.contains("bert.embeddings.word_embeddings.weight") {
        "bert."
    } else {
        ""
    }
}

/// Loads the encoder of a model directory (`config.json` + `model.safetensors`).
pub fn load_encoder(dir: &Path, device: &Device) -> Result<EncoderModel> {
    let config = load_config(dir)?;
    let weights = load_weights(dir)?;
    let prefix = base_prefix(&weights);
    weights.apply(
        fit_pooler(EncoderModel::new(&config, device), &weights, prefix),
        prefix,
    )
}

/// A new encoder has BERT's pooler (as `BertModel` does, so that a saved model loads in
/// `AutoModel` complete); a checkpoint without one (task-head models drop it) loads without it.
fn fit_pooler(mut model: EncoderModel, weights: &Weights, prefix: &str) -> EncoderModel {
    if !weights.contains(&format!("{prefix}pooler.dense.weight")) {
        model.pooler = None;
    }
    model
}

/// Loads an encoder with its language-modelling head. A directory without a head (a plain
/// `BertModel`, e.g. for continued pretraining) gets a freshly initialised one.
pub fn load_language_model(dir: &Path, device: &Device) -> Result<LanguageModel> {
    let config = load_config(dir)?;
    let weights = load_weights(dir)?;
    if weights.contains("cls.predictions.bias") {
        let mut model = LanguageModel::new(&config, device);
        model.bert = fit_pooler(model.bert, &weights, "bert.");
        return weights.apply(model, "");
    }
    Ok(LanguageModel {
        bert: load_encoder(dir, device)?,
        head: LmHead::new(&config, device),
    })
}

/// Loads a token-classification model (`BertForTokenClassification`, plus a CRF when the config
/// says `crf`) with `labels` classes.
pub fn load_token_classifier(
    dir: &Path,
    labels: usize,
    device: &Device,
) -> Result<TokenClassifier> {
    let config = load_config(dir)?;
    if !config.architectures.is_empty()
        && !config
            .architectures
            .iter()
            .any(|a| a.ends_with("ForTokenClassification"))
    {
        return Err(Error::file(
            dir.join(CONFIG),
            format!(
                "architectures is {:?}: not a token-classification model (expected e.g. BertForTokenClassification)",
                config.architectures
            ),
        ));
    }
    let weights = load_weights(dir)?;
    if !weights.contains("classifier.weight") {
        return Err(Error::file(
            &weights.path,
            "no classifier weights: not a token-classification model",
        ));
    }
    let bert = fit_pooler(EncoderModel::new(&config, device), &weights, "bert.");
    weights.apply(TokenClassifier::new(bert, labels, config.crf(), device), "")
}

pub fn load_config(dir: &Path) -> Result<ModelConfig> {
    check_dir(dir)?;
    ModelConfig::load(&dir.join(CONFIG))
}

pub fn load_weights(dir: &Path) -> Result<Weights> {
    let path = dir.join(WEIGHTS);
    if !path.exists() {
        return Err(Error::file(
            &path,
            "missing: a model directory needs model.safetensors",
        ));
    }
    Weights::load(&path)
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

/// Saves `module` (an encoder, or a model with a head) with `config` as a Hugging Face
/// directory; copies `tokenizer.json` from `tokenizer_from` when given.
pub fn save<M: Module>(
    module: &M,
    config: &ModelConfig,
    dir: &Path,
    tokenizer_from: Option<&Path>,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create directory: {e}")))?;
    Weights::save(&named_parameters(module), &dir.join(WEIGHTS))?;
    config.save(&dir.join(CONFIG))?;
    if let Some(src) = tokenizer_from {
        let bytes =
            std::fs::read(src).map_err(|e| Error::file(src, format!("cannot read: {e}")))?;
        crate::io::write_atomic(&dir.join(TOKENIZER), &bytes)?;
        write_tokenizer_config(&Tokenizer::load(src)?, config, dir)?;
    }
    Ok(())
}

/// Writes `tokenizer.json` and the files `transformers`' `AutoTokenizer` reads beside it.
pub fn save_tokenizer(tokenizer: &Tokenizer, config: &ModelConfig, dir: &Path) -> Result<()> {
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
