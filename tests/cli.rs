//! Command-line hardening: `--device` on every command that runs a model, complete `--help`,
//! clear errors for an empty corpus and for a checkpoint of the wrong head, and saved models
//! that `transformers`' `AutoTokenizer` reads with the same ids as positio.

mod common;
use common::*;

use positio::hf;
use positio::model::config::{ModelConfig, PositionKind};
use positio::model::encoder::EncoderModel;
use std::path::Path;

#[test]
fn every_model_command_takes_device_and_a_cpu_build_refuses_cuda_clearly() {
    let dir = tmp("device");
    let d = dir.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["demo", "--out", d, "--steps", "1"],
        vec!["embed", d, "--text", "x"],
        vec!["pretrain", "--corpus", d, "--out", d],
        vec![
            "finetune", "ner", "--model", d, "--train", d, "--dev", d, "--out", d,
        ],
        vec!["eval", "ner", "--model", d, "--data", d],
        vec!["predict", "ner", "--model", d, "--text", "x"],
        vec![
            "bench", "--task", "forward", "--steps", "1", "--warmup", "0",
        ],
        vec![
            "finetune", "classify", "--model", d, "--train", d, "--dev", d, "--out", d,
        ],
        vec!["eval", "classify", "--model", d, "--data", d],
        vec!["predict", "classify", "--model", d, "--text", "x"],
        vec!["serve", "--model", d, "--port", "0"],
    ];
    for args in commands {
        let mut a = args.clone();
        a.extend(["--device", "cuda:0"]);
        let (ok, _, stderr) = positio(&a);
        if cfg!(feature = "cuda") {
            continue;
        }
        assert!(!ok, "{args:?} --device cuda:0 succeeded");
        assert!(
            stderr.contains("built without GPU support") && stderr.contains("--features cuda"),
            "{args:?}: {stderr}"
        );
        let mut bad = args.clone();
        bad.extend(["--device", "tpu"]);
        let (ok, _, stderr) = positio(&bad);
        assert!(
            !ok && stderr.contains("unknown device 'tpu'"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn every_option_of_every_command_says_what_it_does() {
    for command in [
        vec!["pretrain"],
        vec!["init"],
        vec!["tokenizer", "train"],
        vec!["finetune", "ner"],
        vec!["eval", "ner"],
        vec!["predict", "ner"],
        vec!["embed"],
        vec!["bench"],
        vec!["demo"],
        vec!["plot"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let (ok, help, _) = positio(&args);
        assert!(ok);
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let option = line.trim_start();
            if option.starts_with("--")
                && !option.starts_with("--help")
                && !option.starts_with("--version")
            {
                // clap puts the description after the option, or on the next, more indented line.
                let same_line = option
                    .split_once("  ")
                    .is_some_and(|(_, d)| d.trim().len() > 3);
                let next = lines.get(i + 1).copied().unwrap_or("").trim();
                let next_line = next.len() > 3 && !next.starts_with('-');
                assert!(
                    same_line || next_line,
                    "{command:?}: {option} has no description"
                );
            }
        }
    }
    let (_, help, _) = positio(&["pretrain", "--help"]);
    assert!(
        help.contains("on average that share of the words and of the tokens"),
        "--whole-word is explained"
    );
}

#[test]
fn an_empty_corpus_is_an_error_naming_the_file() {
    let dir = tmp("empty-corpus");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let out = dir.join("tokenizer.json");
    let (ok, _, stderr) = positio(&[
        "tokenizer",
        "train",
        "--corpus",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok, "training a tokenizer on nothing must fail");
    assert!(
        stderr.contains(empty.to_str().unwrap()) && stderr.contains("no text"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_sequence_classifier_is_not_loaded_as_a_token_classifier() {
    let dir = tmp("wrong-head");
    let config = ModelConfig {
        hidden_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 32,
        ..ModelConfig::small(100, PositionKind::Absolute)
    };
    let mut seq = config.clone();
    seq.architectures = vec!["BertForSequenceClassification".into()];
    seq.set_labels(&["negative".into(), "positive".into()]);
    let model = positio::model::heads::TokenClassifier::new(
        EncoderModel::new(&config, &cpu()),
        2,
        false,
        &cpu(),
    );
    hf::save(&model, &seq, &dir, None).unwrap();
    let err = hf::load_token_classifier(&dir, 2, &cpu())
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("config.json")
            && err.contains("BertForSequenceClassification")
            && err.contains("not a token-classification model"),
        "{err}"
    );
}

/// A cased tokenizer trained by positio, saved with a model: `AutoTokenizer` must give the same
/// ids (without `tokenizer_config.json` it lowercases the input).
#[test]
fn saved_models_load_in_auto_tokenizer_with_the_same_ids() {
    let dir = tmp("auto-tokenizer");
    let corpus = dir.join("corpus.txt");
    let text: String = (0..300)
        .map(|i| {
            format!(
                "Shares of Acme rose {} % on Monday . The shares of ACME fell on Tuesday .\n",
                i % 9
            )
        })
        .collect();
    std::fs::write(&corpus, text).unwrap();
    let tok = dir.join("tokenizer.json");
    let (ok, _, stderr) = positio(&[
        "tokenizer",
        "train",
        "--corpus",
        corpus.to_str().unwrap(),
        "--vocab-size",
        "200",
        "--out",
        tok.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let config = ModelConfig {
        hidden_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 32,
        ..ModelConfig::small(200, PositionKind::Absolute)
    };
    let model_dir = dir.join("model");
    hf::save(
        &EncoderModel::new(&config, &cpu()),
        &config,
        &model_dir,
        Some(&tok),
    )
    .unwrap();
    let sentences = ["Shares of Acme rose 4 % on Monday .", "ACME acme Acme"];
    let ours: Vec<Vec<u32>> = {
        let t =
            positio::data::tokenizer::Tokenizer::load(&model_dir.join("tokenizer.json")).unwrap();
        sentences.iter().map(|s| t.encode(s, 64).unwrap()).collect()
    };
    assert_ne!(ours[1][1], ours[1][2], "the tokenizer is cased");
    let theirs = auto_tokenizer_ids(&model_dir, &sentences);
    assert_eq!(theirs, ours);
}

fn auto_tokenizer_ids(dir: &Path, sentences: &[&str]) -> Vec<Vec<u32>> {
    let script = "import json, sys\nfrom transformers import AutoTokenizer\nt = AutoTokenizer.from_pretrained(sys.argv[1])\nprint(json.dumps([t(s)['input_ids'] for s in json.loads(sys.argv[2])]))";
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            dir.to_str().unwrap(),
            &serde_json::to_string(sentences).unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `positio embed … | head -1`: the rest of the output (far more than a pipe holds) goes to a
/// closed pipe, which ends the command quietly: no panic, no error message.
#[test]
fn a_closed_output_pipe_ends_a_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let model = minilm_dir();
    let mut args = vec!["embed".to_string(), model.display().to_string()];
    for i in 0..200 {
        args.extend(["--text".to_string(), format!("sentence number {i}")]);
    }
    let mut child = common::positio_command()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("{\"text\""), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{stderr}"
    );
}
