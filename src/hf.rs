//! Hugging Face model directories: `config.json`, `model.safetensors`, `tokenizer.json`.
//!
//! One naming rule ([`hf_name`]) maps positio's module paths to Hugging Face BERT tensor names;
//! loading and saving both walk the module tree with it, so they cannot disagree.

use crate::config::ModelConfig;
use crate::encoder::EncoderModel;
use crate::heads::{LanguageModel, LmHead, TokenClassifier};
use crate::layers::Linear;
use crate::{Error, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";

/// Hugging Face's name for the parameter at a positio module path (segments joined by '.').
pub fn hf_name(path: &[String]) -> String {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let mapped: Vec<&str> = match p.as_slice() {
        ["embeddings", "layer_norm", rest @ ..] => [&["embeddings", "LayerNorm"], rest].concat(),
        ["encoder", "layer", i, "attention", proj @ ("query" | "key" | "value"), rest @ ..] => {
            [&["encoder", "layer", i, "attention", "self", proj], rest].concat()
        }
        ["encoder", "layer", i, "attention", "output", rest @ ..] => {
            [&["encoder", "layer", i, "attention", "output", "dense"], rest].concat()
        }
        ["encoder", "layer", i, "attention_norm", rest @ ..] => {
            [&["encoder", "layer", i, "attention", "output", "LayerNorm"], rest].concat()
        }
        ["encoder", "layer", i, "intermediate", rest @ ..] => [&["encoder", "layer", i, "intermediate", "dense"], rest].concat(),
        ["encoder", "layer", i, "output", rest @ ..] => [&["encoder", "layer", i, "output", "dense"], rest].concat(),
        ["encoder", "layer", i, "output_norm", rest @ ..] => [&["encoder", "layer", i, "output", "LayerNorm"], rest].concat(),
        ["pooler", rest @ ..] => [&["pooler", "dense"], rest].concat(),
        ["head", "transform", rest @ ..] => [&["cls", "predictions", "transform", "dense"], rest].concat(),
        ["head", "layer_norm", rest @ ..] => [&["cls", "predictions", "transform", "LayerNorm"], rest].concat(),
        ["head", "bias"] => vec!["cls", "predictions", "bias"],
        ["bert", rest @ ..] => return format!("bert.{}", hf_name(&rest.iter().map(|s| s.to_string()).collect::<Vec<_>>())),
        _ => p,
    };
    mapped.join(".")
}

/// Tracks the module path during a walk.
#[derive(Default)]
struct PathStack(Vec<String>);

impl PathStack {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
}

/// Collects every float parameter under its Hugging Face name.
struct Collect {
    path: PathStack,
    out: Vec<(String, TensorData)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push((hf_name(&self.path.0), param.val().into_data().convert::<f32>()));
    }
}

/// The parameters of `module` by Hugging Face name, in module order.
pub fn named_parameters<M: Module>(module: &M) -> Vec<(String, TensorData)> {
    let mut c = Collect { path: PathStack::default(), out: Vec::new() };
    module.visit(&mut c);
    c.out
}

/// The tensors of a safetensors file, converted to f32.
pub struct Weights {
    pub path: PathBuf,
    tensors: HashMap<String, TensorData>,
}

impl Weights {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                Dtype::F64 => data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
                // Integer buffers (e.g. BERT's `position_ids`) are not parameters.
                _ => continue,
            };
            tensors.insert(name, TensorData::new(values, shape));
        }
        Ok(Weights { path: path.to_path_buf(), tensors })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&TensorData> {
        self.tensors.get(name)
    }

    /// Writes `params` (name, f32 data) as a safetensors file, atomically.
    pub fn save(params: &[(String, TensorData)], path: &Path) -> Result<()> {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = params
            .iter()
            .map(|(name, data)| {
                let view = safetensors::tensor::TensorView::new(Dtype::F32, data.shape().to_vec(), data.as_bytes())
                    .expect("shape matches data");
                (name.clone(), view)
            })
            .collect();
        let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
        let bytes = safetensors::serialize(views, metadata).map_err(|e| Error::file(path, format!("cannot serialise: {e}")))?;
        crate::io::write_atomic(path, &bytes)
    }

    /// Replaces every float parameter of `module` by the tensor of the same Hugging Face name
    /// (with `prefix` prepended), checking shapes. Fails naming every missing or mis-shaped tensor.
    pub fn apply<M: Module>(&self, module: M, prefix: &str) -> Result<M> {
        let mut m = Apply { weights: self, prefix, path: PathStack::default(), errors: Vec::new() };
        let module = module.map(&mut m);
        if m.errors.is_empty() {
            Ok(module)
        } else {
            Err(Error::file(&self.path, m.errors.join("; ")))
        }
    }
}

struct Apply<'a> {
    weights: &'a Weights,
    prefix: &'a str,
    path: PathStack,
    errors: Vec<String>,
}

impl ModuleMapper for Apply<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = format!("{}{}", self.prefix, hf_name(&self.path.0));
        let (id, old, mapper) = param.consume();
        let expected = old.dims().to_vec();
        let value = match self.weights.tensors.get(&name) {
            None => {
                self.errors.push(format!("missing tensor '{name}' (shape {expected:?})"));
                old
            }
            Some(data) if data.shape().as_slice() != expected.as_slice() => {
                self.errors.push(format!("tensor '{name}' has shape {:?}, the config needs {expected:?}", data.shape().as_slice()));
                old
            }
            Some(data) => Tensor::from_data(data.clone(), (&old.device(), old.dtype())).set_require_grad(old.is_require_grad()),
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

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
    let mut model = EncoderModel::new(&config, device);
    if weights.contains(&format!("{prefix}pooler.dense.weight")) {
        model.pooler = Some(Linear::new(config.hidden_size, config.hidden_size, config.initializer_range, device));
    }
    weights.apply(model, prefix)
}

/// Loads an encoder with its language-modelling head. A directory without a head (a plain
/// `BertModel`, e.g. for continued pretraining) gets a freshly initialised one.
pub fn load_language_model(dir: &Path, device: &Device) -> Result<LanguageModel> {
    let config = load_config(dir)?;
    let weights = load_weights(dir)?;
    if weights.contains("cls.predictions.bias") {
        return weights.apply(LanguageModel::new(&config, device), "");
    }
    Ok(LanguageModel { bert: load_encoder(dir, device)?, head: LmHead::new(&config, device) })
}

/// Loads a token-classification model (`BertForTokenClassification`, plus a CRF when the config
/// says `crf`) with `labels` classes.
pub fn load_token_classifier(dir: &Path, labels: usize, device: &Device) -> Result<TokenClassifier> {
    let config = load_config(dir)?;
    let weights = load_weights(dir)?;
    if !weights.contains("classifier.weight") {
        return Err(Error::file(&weights.path, "no classifier weights: not a token-classification model"));
    }
    let model = TokenClassifier::new(EncoderModel::new(&config, device), labels, config.crf(), device);
    weights.apply(model, "")
}

pub fn load_config(dir: &Path) -> Result<ModelConfig> {
    check_dir(dir)?;
    ModelConfig::load(&dir.join(CONFIG))
}

pub fn load_weights(dir: &Path) -> Result<Weights> {
    let path = dir.join(WEIGHTS);
    if !path.exists() {
        return Err(Error::file(&path, "missing: a model directory needs model.safetensors"));
    }
    Weights::load(&path)
}

fn check_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::file(dir, "not a model directory (expected config.json, model.safetensors, tokenizer.json)"));
    }
    if !dir.join(CONFIG).exists() {
        return Err(Error::file(dir.join(CONFIG), "missing: a model directory needs config.json"));
    }
    Ok(())
}

/// Saves `module` (an encoder, or a model with a head) with `config` as a Hugging Face
/// directory; copies `tokenizer.json` from `tokenizer_from` when given.
pub fn save<M: Module>(module: &M, config: &ModelConfig, dir: &Path, tokenizer_from: Option<&Path>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create directory: {e}")))?;
    Weights::save(&named_parameters(module), &dir.join(WEIGHTS))?;
    config.save(&dir.join(CONFIG))?;
    if let Some(src) = tokenizer_from {
        let bytes = std::fs::read(src).map_err(|e| Error::file(src, format!("cannot read: {e}")))?;
        crate::io::write_atomic(&dir.join(TOKENIZER), &bytes)?;
    }
    Ok(())
}
