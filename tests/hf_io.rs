//! Saving and loading Hugging Face model directories, and the errors bad directories give.

mod common;
use common::*;

use positio::hf;
use positio::model::config::{ModelConfig, PositionKind};
use positio::model::encoder::{Batch, EncoderModel};
use positio::model::heads::LanguageModel;
use std::path::Path;

fn small(position: PositionKind) -> ModelConfig {
    ModelConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 32,
        max_position_embeddings: 32,
        ..ModelConfig::small(50, position)
    }
}

#[test]
fn save_then_load_round_trips_exactly_for_every_encoding() {
    let dev = cpu();
    for &position in PositionKind::all() {
        let config = small(position);
        let model = EncoderModel::new(&config, &dev);
        let dir = tmp(&format!("rt-{}", position.name()));
        hf::save(&model, &config, &dir, None).unwrap();
        let loaded = hf::load_encoder(&dir, &dev).unwrap();
        let loaded_config = hf::load_config(&dir).unwrap();
        // Only plain BERT is written as model_type "bert": transformers would silently drop
        // any other positional encoding.
        let expected_type = if position == PositionKind::Absolute {
            "bert"
        } else {
            "positio"
        };
        assert_eq!(loaded_config.model_type, expected_type);
        assert_eq!(
            ModelConfig {
                model_type: config.model_type.clone(),
                ..loaded_config
            },
            config
        );
        let a = hf::named_parameters(&model);
        let b = hf::named_parameters(&loaded);
        assert_eq!(a.len(), b.len());
        for ((na, da), (nb, db)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert_eq!(da, db, "{na} differs after the round trip");
        }
        let batch = Batch::new(&[vec![2, 3, 4, 5], vec![6, 7]], 0, &dev);
        assert_eq!(
            to_vec(model.forward(&batch)),
            to_vec(loaded.forward(&batch)),
            "{}",
            position.name()
        );
    }
}

#[test]
fn language_model_saves_with_bert_prefix_and_loads_as_encoder() {
    let dev = cpu();
    let config = small(PositionKind::Absolute);
    let lm = LanguageModel::new(&config, &dev);
    let dir = tmp("lm");
    hf::save(&lm, &config, &dir, None).unwrap();
    let names: Vec<String> = hf::named_parameters(&lm)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"bert.embeddings.word_embeddings.weight".to_string()));
    assert!(names.contains(&"bert.encoder.layer.1.attention.self.query.weight".to_string()));
    assert!(names.contains(&"cls.predictions.transform.LayerNorm.weight".to_string()));
    assert!(names.contains(&"cls.predictions.bias".to_string()));
    let encoder = hf::load_encoder(&dir, &dev).unwrap();
    let batch = Batch::new(&[vec![2, 3, 4]], 0, &dev);
    assert_eq!(
        to_vec(lm.bert.forward(&batch)),
        to_vec(encoder.forward(&batch))
    );
}

#[test]
fn hugging_face_names_cover_minilm_exactly() {
    // Every parameter positio builds for the MiniLM config has a tensor of that name in the
    // checkpoint, and every float tensor of the checkpoint is used.
    let dir = minilm_dir();
    let model = hf::load_encoder(&dir, &cpu()).unwrap();
    let ours: std::collections::BTreeSet<String> = hf::named_parameters(&model)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let theirs: std::collections::BTreeSet<String> = st
        .tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn loaded_parameters_are_trainable() {
    let model = hf::load_encoder(&minilm_dir(), &cpu().autodiff()).unwrap();
    let batch = Batch::new(&[vec![101, 7592, 2088, 102]], 0, &cpu().autodiff());
    let grads = model.forward(&batch).sum().backward();
    assert!(model.encoder.layer[0]
        .attention
        .query
        .weight
        .val()
        .grad(&grads)
        .is_some());
}

/// A copy of a small saved model, for corrupting.
fn model_dir(name: &str) -> common::Scratch {
    let dir = tmp(name);
    let config = small(PositionKind::Absolute);
    hf::save(
        &EncoderModel::new(&config, &cpu()),
        &config,
        &dir,
        Some(&minilm_dir().join("tokenizer.json")),
    )
    .unwrap();
    dir
}

fn assert_fails(args: &[&str], file: &Path, needle: &str) {
    let (ok, _, err) = positio(args);
    assert!(!ok, "{args:?} should fail");
    assert!(
        err.contains(&file.display().to_string()),
        "error should name {}: {err}",
        file.display()
    );
    assert!(err.contains(needle), "error should say '{needle}': {err}");
    assert!(!err.contains("panicked"), "no panics: {err}");
}

#[test]
fn cli_info_describes_a_model() {
    let (ok, out, err) = positio(&["info", minilm_dir().to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("absolute"));
    assert!(out.contains("22713216"), "{out}");
    assert!(out.contains("30522"));
}

#[test]
fn cli_errors_name_the_file_and_the_problem() {
    let missing = tmp("missing").join("nowhere");
    assert_fails(
        &["info", missing.to_str().unwrap()],
        &missing,
        "not a model directory",
    );

    let dir = model_dir("noconfig");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert_fails(
        &["info", dir.to_str().unwrap()],
        &dir.join("config.json"),
        "missing",
    );

    let dir = model_dir("badjson");
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": 16,,}").unwrap();
    assert_fails(
        &["embed", dir.to_str().unwrap(), "--text", "x"],
        &dir.join("config.json"),
        "malformed config",
    );

    let dir = model_dir("arch");
    let text = std::fs::read_to_string(dir.join("config.json"))
        .unwrap()
        .replace("\"bert\"", "\"gpt2\"");
    std::fs::write(dir.join("config.json"), text).unwrap();
    assert_fails(
        &["info", dir.to_str().unwrap()],
        &dir.join("config.json"),
        "unsupported architecture",
    );

    let dir = model_dir("posenc");
    let text = std::fs::read_to_string(dir.join("config.json"))
        .unwrap()
        .replace("\"absolute\"", "\"relative_key\"");
    std::fs::write(dir.join("config.json"), text).unwrap();
    assert_fails(
        &["info", dir.to_str().unwrap()],
        &dir.join("config.json"),
        "relative_key",
    );

    // A tensor missing from the weights.
    let dir = model_dir("missingtensor");
    let mut params = hf::named_parameters(&hf::load_encoder(&dir, &cpu()).unwrap());
    params.retain(|(n, _)| n != "encoder.layer.1.output.dense.weight");
    hf::Weights::save(&params, &dir.join("model.safetensors")).unwrap();
    assert_fails(
        &["info", dir.to_str().unwrap()],
        &dir.join("model.safetensors"),
        "missing tensor 'encoder.layer.1.output.dense.weight'",
    );

    // A tensor of the wrong shape.
    let dir = model_dir("badshape");
    let mut params = hf::named_parameters(&hf::load_encoder(&dir, &cpu()).unwrap());
    for (n, d) in params.iter_mut() {
        if n == "embeddings.word_embeddings.weight" {
            *d = burn::tensor::TensorData::new(vec![0f32; 49 * 16], [49, 16]);
        }
    }
    hf::Weights::save(&params, &dir.join("model.safetensors")).unwrap();
    assert_fails(
        &["info", dir.to_str().unwrap()],
        &dir.join("model.safetensors"),
        "has shape [49, 16], the config needs [50, 16]",
    );

    // Not a safetensors file at all.
    let dir = model_dir("garbage");
    std::fs::write(dir.join("model.safetensors"), b"definitely not tensors").unwrap();
    assert_fails(
        &["info", dir.to_str().unwrap()],
        &dir.join("model.safetensors"),
        "not a valid safetensors file",
    );

    // A broken tokenizer.
    let dir = model_dir("badtok");
    std::fs::write(dir.join("tokenizer.json"), "{").unwrap();
    assert_fails(
        &["embed", dir.to_str().unwrap(), "--text", "x"],
        &dir.join("tokenizer.json"),
        "not valid JSON: EOF while parsing an object at line 1 column 1",
    );
    std::fs::write(dir.join("tokenizer.json"), "{\"model\": 1}").unwrap();
    assert_fails(
        &["embed", dir.to_str().unwrap(), "--text", "x"],
        &dir.join("tokenizer.json"),
        "not a usable tokenizer",
    );
}
