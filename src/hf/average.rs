//! Weight averaging of fine-tuned models ("model soups", Wortsman et al. 2022): models
//! fine-tuned from the same pretrained weights on the same task, with other seeds or settings,
//! averaged tensor by tensor into one model. It usually scores like the ensemble of its
//! ingredients, at the cost of one model at inference, so the CLI, eval and the server run it
//! unchanged.
//!
//! The models must agree on everything but their weights: the same `config.json` (architecture,
//! labels, pooling; multi-label decision thresholds may differ and are averaged too) and the
//! same tensors with the same shapes. The soup is written all or nothing.

use super::{Weights, CONFIG, SPECIAL_TOKENS_MAP, TOKENIZER, TOKENIZER_CONFIG, WEIGHTS};
use crate::{io, Error, Result};
use burn::tensor::TensorData;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The keys of `config.json` that are tuned after training and so may differ between
/// ingredients: averaged (per label for the per-label ones).
const THRESHOLD_KEYS: [&str; 2] = ["decision_threshold", "decision_thresholds"];

/// Files besides the weights and the config that make a model directory (tokenizer,
/// sentence-transformers modules, a recommender's settings): copied from the first model.
const MODEL_FILES: [&str; 8] = [
    TOKENIZER,
    TOKENIZER_CONFIG,
    SPECIAL_TOKENS_MAP,
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "recommend.json",
];

/// What [`average`] wrote.
#[derive(Debug)]
pub struct Soup {
    pub models: usize,
    pub tensors: usize,
    pub parameters: usize,
    /// Whether the models carried decision thresholds (averaged).
    pub thresholds: bool,
}

/// Averages the weights of `models` (model directories) into a new model directory `out`.
pub fn average(models: &[PathBuf], out: &Path) -> Result<Soup> {
    if models.len() < 2 {
        return Err(Error::invalid(
            "give at least two models to average (--model A --model B ...)",
        ));
    }
    super::refuse_existing_model(out, "average")?;
    let configs = models
        .iter()
        .map(|dir| read_config(dir))
        .collect::<Result<Vec<_>>>()?;
    for (dir, config) in models.iter().zip(&configs).skip(1) {
        if let Some(key) = first_difference(&configs[0], config) {
            return Err(Error::file(
                dir.join(CONFIG),
                format!(
                    "differs from {} in '{key}': only models of one architecture and one task \
                     (the same labels) can be averaged",
                    models[0].join(CONFIG).display()
                ),
            ));
        }
    }
    let (config, thresholds) = averaged_config(&configs);
    let weights = models
        .iter()
        .map(|dir| Weights::load(&dir.join(WEIGHTS)))
        .collect::<Result<Vec<_>>>()?;
    let (params, parameters) = averaged_weights(&weights)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, "create", e))?;
    io::all_or_nothing(|| {
        Weights::save(&params, &out.join(WEIGHTS))?;
        let json = serde_json::to_string_pretty(&config).expect("a JSON value serialises") + "\n";
        io::write_atomic(&out.join(CONFIG), json.as_bytes())?;
        copy_model_files(&models[0], out)
    })?;
    Ok(Soup {
        models: models.len(),
        tensors: params.len(),
        parameters,
        thresholds,
    })
}

fn read_config(dir: &Path) -> Result<Map<String, Value>> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "read", e))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::file(&path, "not a JSON object")),
        Err(e) => Err(Error::file(&path, format!("not valid JSON: {e}"))),
    }
}

/// The first key (sorted) whose value differs between two configs, thresholds aside.
fn first_difference(a: &Map<String, Value>, b: &Map<String, Value>) -> Option<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !THRESHOLD_KEYS.contains(&k.as_str()))
        .find(|k| a.get(*k) != b.get(*k))
        .cloned()
}

/// The first config with each threshold key replaced by the mean over the configs (a label's
/// own threshold where a config has one, else that config's global one, else 0.5).
fn averaged_config(configs: &[Map<String, Value>]) -> (Map<String, Value>, bool) {
    let mut config = configs[0].clone();
    let global = |c: &Map<String, Value>| {
        c.get("decision_threshold")
            .and_then(Value::as_f64)
            .unwrap_or(0.5)
    };
    let has = |key: &str| {
        configs
            .iter()
            .any(|c| c.get(key).is_some_and(|v| !v.is_null()))
    };
    let mean = |f: &dyn Fn(&Map<String, Value>) -> f64| {
        configs.iter().map(f).sum::<f64>() / configs.len() as f64
    };
    let thresholds = has("decision_threshold") || has("decision_thresholds");
    if has("decision_threshold") {
        config.insert("decision_threshold".into(), mean(&global).into());
    }
    if has("decision_thresholds") {
        let mut labels: Vec<String> = configs
            .iter()
            .filter_map(|c| c.get("decision_thresholds").and_then(Value::as_object))
            .flat_map(|m| m.keys().cloned())
            .collect();
        labels.sort();
        labels.dedup();
        let per_label: Map<String, Value> = labels
            .into_iter()
            .map(|label| {
                let own = |c: &Map<String, Value>| {
                    c.get("decision_thresholds")
                        .and_then(|m| m.get(&label))
                        .and_then(Value::as_f64)
                        .unwrap_or_else(|| global(c))
                };
                let value = mean(&own);
                (label, value.into())
            })
            .collect();
        config.insert("decision_thresholds".into(), Value::Object(per_label));
    }
    (config, thresholds)
}

/// The mean of each tensor over the models (accumulated in f64), and the parameter count.
fn averaged_weights(weights: &[Weights]) -> Result<(Vec<(String, TensorData)>, usize)> {
    let names = weights[0].names();
    for w in &weights[1..] {
        let other = w.names();
        if let Some(name) = names.iter().find(|n| !w.contains(n)) {
            return Err(Error::file(&w.path, format!("has no tensor '{name}'")));
        }
        if let Some(name) = other.iter().find(|n| !weights[0].contains(n)) {
            return Err(Error::file(
                &w.path,
                format!(
                    "has a tensor '{name}' that {} has not",
                    weights[0].path.display()
                ),
            ));
        }
    }
    let mut params = Vec::with_capacity(names.len());
    let mut parameters = 0;
    for name in names {
        let first = weights[0].get(&name).expect("listed");
        let shape = first.shape().to_vec();
        let mut sum = vec![0f64; first.num_elements()];
        for w in weights {
            let data = w.get(&name).expect("checked above");
            if data.shape().to_vec() != shape {
                return Err(Error::file(
                    &w.path,
                    format!(
                        "tensor '{name}' has shape {:?}, {} has {shape:?}",
                        data.shape(),
                        weights[0].path.display()
                    ),
                ));
            }
            let values = data.as_slice::<f32>().expect("weights are read as f32");
            for (s, &v) in sum.iter_mut().zip(values) {
                *s += f64::from(v);
            }
        }
        let n = weights.len() as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        parameters += mean.len();
        params.push((name, TensorData::new(mean, shape)));
    }
    Ok((params, parameters))
}

/// Copies the model files of `from` that it has into `to` (and the config of its
/// sentence-transformers module folders), each atomically.
fn copy_model_files(from: &Path, to: &Path) -> Result<()> {
    let modules = ["1_Pooling", "2_Normalize"].map(|m| Path::new(m).join(CONFIG));
    let files = MODEL_FILES.iter().map(PathBuf::from).chain(modules);
    for file in files {
        let src = from.join(&file);
        if src.is_file() {
            let dst = to.join(&file);
            let parent = dst.parent().expect("a file in the directory");
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
            let bytes = std::fs::read(&src).map_err(|e| Error::io(&src, "read", e))?;
            io::write_atomic(&dst, &bytes)?;
        }
    }
    Ok(())
}
