//! The NER commands end to end on a tiny model: fine-tune (linear and CRF), evaluate with both
//! reports and a predictions file, predict from raw text and from a CoNLL file, resume a killed
//! fine-tuning to the same weights, plot it, and refuse bad input clearly.

mod common;
use common::*;

use positio::hf;
use positio::hf::FromCheckpoint;
use positio::model::config::{ModelConfig, PositionKind};
use positio::model::encoder::EncoderModel;
use std::path::{Path, PathBuf};

/// A small random BERT with MiniLM's (uncased, 30,522-piece) tokenizer.
fn tiny_model(dir: &Path) -> PathBuf {
    let out = dir.join("base");
    let config = ModelConfig {
        vocab_size: 30522,
        hidden_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 64,
        ..ModelConfig::small(30522, PositionKind::Absolute)
    };
    hf::save(
        &EncoderModel::new(&config, &cpu()),
        &config,
        &out,
        Some(&minilm_dir().join("tokenizer.json")),
    )
    .unwrap();
    out
}

fn config_window(dir: &Path) -> Option<u64> {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    config["window_length"].as_u64()
}

fn head(path: &str, lines: usize, out: &Path) -> PathBuf {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/conll")
        .join(path);
    let text: Vec<String> = std::fs::read_to_string(full)
        .unwrap()
        .lines()
        .take(lines)
        .map(String::from)
        .collect();
    std::fs::write(out, text.join("\n") + "\n").unwrap();
    out.to_path_buf()
}

#[test]
fn finetune_eval_and_predict_end_to_end() {
    let dir = tmp("e2e");
    let base = tiny_model(&dir);
    let train = head("train.iob1", 1200, &dir.join("train.conll"));
    let dev = head("dev.iob1", 2000, &dir.join("dev.conll"));
    for crf in [false, true] {
        let out = dir.join(if crf { "crf" } else { "linear" });
        let mut args = vec![
            "finetune",
            "ner",
            "--model",
            base.to_str().unwrap(),
            "--train",
            train.to_str().unwrap(),
            "--dev",
            dev.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "2",
            "--lr",
            "1e-3",
            "--batch-size",
            "16",
            "--max-len",
            "24",
        ];
        if crf {
            args.push("--crf");
        }
        let (ok, stdout, stderr) = positio(&args);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains("best development entity F1"), "{stdout}");
        // Each epoch's development scores are on the console, with the best so far.
        let epochs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("epoch ")).collect();
        assert_eq!(epochs.len(), 2, "{stdout}");
        for line in &epochs {
            assert!(
                line.contains("entity_f1")
                    && line.contains("token_f1")
                    && line.contains("best entity_f1 so far"),
                "{line}"
            );
        }
        // The window length is saved, and evaluation uses it rather than the position limit.
        assert_eq!(config_window(&out), Some(24));
        let model = positio::tasks::ner::NerModel::load(&out, None, &cpu()).unwrap();
        assert_eq!(model.max_len, 24);
        assert_eq!(
            positio::tasks::ner::NerModel::load(&out, Some(40), &cpu())
                .unwrap()
                .max_len,
            40
        );
        assert!(
            out.join("tokenizer_config.json").exists()
                && out.join("special_tokens_map.json").exists()
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["id2label"]["0"], "O");
        assert_eq!(config["label2id"]["B-PER"], 7);
        assert_eq!(config["architectures"][0], "BertForTokenClassification");
        assert_eq!(config["crf"].as_bool().unwrap_or(false), crf);

        let preds = out.join("preds.conll");
        let json = out.join("report.json");
        let (ok, report, stderr) = positio(&[
            "eval",
            "ner",
            "--model",
            out.to_str().unwrap(),
            "--data",
            dev.to_str().unwrap(),
            "--output",
            preds.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
        for row in [
            "B-LOC",
            "I-LOC",
            "B-MISC",
            "I-MISC",
            "B-ORG",
            "I-ORG",
            "B-PER",
            "I-PER",
            "micro avg",
            "macro avg",
            "weighted avg",
            "precision",
            "recall",
            "f1-score",
            "support",
        ] {
            assert!(report.contains(row), "{row} missing from\n{report}");
        }
        let lines = std::fs::read_to_string(&preds).unwrap();
        let first: Vec<&str> = lines.lines().next().unwrap().split(' ').collect();
        assert_eq!(first.len(), 3, "word gold predicted");
        let parsed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!(parsed["entity"]["micro"]["f1"].is_number() && parsed["token"]["rows"].is_array());
        if crf {
            // Viterbi under IOB2 constraints never predicts I-X without B-X / I-X before it.
            let mut prev = "O".to_string();
            for l in lines.lines() {
                let t = l.split(' ').nth(2).unwrap_or("O").to_string();
                if let Some(ty) = t.strip_prefix("I-") {
                    assert!(prev != "O" && prev.ends_with(ty), "{prev} → {t}");
                }
                prev = if l.is_empty() { "O".into() } else { t };
            }
        }

        let (ok, stdout, stderr) = positio(&[
            "predict",
            "ner",
            "--model",
            out.to_str().unwrap(),
            "--text",
            "EU rejects German call to boycott British lamb .",
            "--text",
            "Peter Blackburn",
            "--aggregation-strategy",
            "words",
        ]);
        assert!(ok, "{stderr}");
        for line in stdout.lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            let (start, end) = (
                e["start"].as_u64().unwrap() as usize,
                e["end"].as_u64().unwrap() as usize,
            );
            let source = if e["line"] == 1 {
                "EU rejects German call to boycott British lamb ."
            } else {
                "Peter Blackburn"
            };
            assert_eq!(
                &source.chars().collect::<Vec<_>>()[start..end]
                    .iter()
                    .collect::<String>(),
                e["word"].as_str().unwrap()
            );
            assert!(["PER", "LOC", "ORG", "MISC"].contains(&e["entity_group"].as_str().unwrap()));
            assert!((0.0..=1.0).contains(&e["score"].as_f64().unwrap()));
        }
        let (ok, stdout, _) = positio(&[
            "predict",
            "ner",
            "--model",
            out.to_str().unwrap(),
            "--conll",
            dev.to_str().unwrap(),
        ]);
        assert!(ok);
        let first = stdout.lines().next().unwrap();
        assert_eq!(
            first.split(' ').count(),
            5,
            "the input columns and the prediction: {first}"
        );
    }
}

#[test]
fn a_killed_finetuning_resumes_to_the_same_weights_and_plots() {
    let dir = tmp("resume");
    let base = tiny_model(&dir);
    let train = head("train.iob1", 2000, &dir.join("train.conll"));
    let dev = head("dev.iob1", 600, &dir.join("dev.conll"));
    let args = |out: &Path| -> Vec<String> {
        [
            "finetune",
            "ner",
            "--model",
            base.to_str().unwrap(),
            "--train",
            train.to_str().unwrap(),
            "--dev",
            dev.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "4",
            "--lr",
            "1e-3",
            "--batch-size",
            "8",
            "--max-len",
            "24",
            "--save-every",
            "4",
            "--crf",
        ]
        .map(String::from)
        .to_vec()
    };
    let straight = dir.join("straight");
    let (ok, stdout, stderr) = positio(&args(&straight));
    assert!(ok, "{stdout}\n{stderr}");

    // The same run, killed once a mid-run checkpoint exists, then resumed.
    let killed = dir.join("killed");
    kill_after_checkpoint(&args(&killed), &killed, 12);
    let mut resumed = args(&killed);
    resumed.push("--resume".into());
    let (ok, stdout, stderr) = positio(&resumed);
    assert!(ok && stdout.contains("resuming from"), "{stdout}\n{stderr}");
    let log = |d: &Path| -> Vec<String> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!(
                    "{} {} {} {}",
                    v["step"], v["split"], v["loss"], v["entity_f1"]
                )
            })
            .collect()
    };
    assert_eq!(
        log(&straight),
        log(&killed),
        "every step once, with the same losses and scores"
    );
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(
        weights(&straight) == weights(&killed),
        "resumed weights differ from uninterrupted weights"
    );

    let (ok, _, stderr) = positio(&["plot", killed.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(std::fs::metadata(killed.join("curves.png")).unwrap().len() > 1000);
}

#[test]
fn bad_ner_input_is_reported_clearly() {
    let dir = tmp("bad");
    let base = tiny_model(&dir);
    let train = dir.join("train.conll");
    std::fs::write(
        &train,
        "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-PER\n",
    )
    .unwrap();
    let (ok, _, err) = positio(&[
        "finetune",
        "ner",
        "--model",
        base.to_str().unwrap(),
        "--train",
        train.to_str().unwrap(),
        "--dev",
        train.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains(&format!("{}:4:", train.display()))
            && err.contains("expected 4 columns"),
        "{err}"
    );
    // A development tag the training data never had.
    let good = dir.join("good.conll");
    std::fs::write(&good, "EU I-ORG\nrejects O\n").unwrap();
    let odd = dir.join("odd.conll");
    std::fs::write(&odd, "Paris I-LOC\n").unwrap();
    let (ok, _, err) = positio(&[
        "finetune",
        "ner",
        "--model",
        base.to_str().unwrap(),
        "--train",
        good.to_str().unwrap(),
        "--dev",
        odd.to_str().unwrap(),
        "--out",
        dir.join("o2").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("B-LOC does not occur in the training data"),
        "{err}"
    );
    // Evaluating a model that has no token-classification head.
    let (ok, _, err) = positio(&[
        "eval",
        "ner",
        "--model",
        base.to_str().unwrap(),
        "--data",
        good.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("not a token-classification model"),
        "{err}"
    );
}
