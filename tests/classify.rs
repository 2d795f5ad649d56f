//! Sequence classification: the labelled-file readers and their errors, the losses, the heads
//! against transformers' logits (single texts, pairs, multi-label), the saved directory against
//! the one transformers writes, the reports against scikit-learn, the threshold search, and the
//! three commands end to end (fine-tune, resume, eval with its outputs, predict, bad input).

mod common;
use common::*;

use positio::data::labelled::{self, Columns, LabelledFormat, ReadOptions, TextEncoding};
use positio::hf;
use positio::hf::FromCheckpoint;
use positio::model::encoder::Batch;
use positio::model::heads::sequence::{binary_cross_entropy, cross_entropy};
use positio::tasks::classify::{self, report, ClassifierModel};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read(name: &str, options: &ReadOptions) -> positio::Result<Vec<labelled::Example>> {
    labelled::read(&fixture(name), options)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn every_format_reads_with_its_columns() {
    let tsv = read("classify/train.tsv", &ReadOptions::default()).unwrap();
    assert_eq!(tsv.len(), 36);
    assert_eq!(tsv[0].line, 2);
    assert!(tsv.iter().all(|e| e.labels.len() == 1 && e.pair.is_none()));

    let csv = ReadOptions {
        columns: Columns {
            text: s(&["premise"]),
            pair: Some("hypothesis".into()),
            label: Some("gold".into()),
        },
        ..Default::default()
    };
    let pairs = read("classify/pairs.csv", &csv).unwrap();
    assert_eq!(pairs[0].text, "Profit rose, sharply.");
    assert_eq!(pairs[1].text, "Net sales rose \"sharply\".");
    assert_eq!(pairs[1].pair.as_deref(), Some("Sales rose."));
    assert_eq!(pairs[1].labels, s(&["entailment"]));

    let jsonl = ReadOptions {
        columns: Columns {
            text: s(&["title", "text"]),
            pair: None,
            label: Some("topics".into()),
        },
        ..Default::default()
    };
    let topics = read("classify/topics.jsonl", &jsonl).unwrap();
    assert_eq!(topics.len(), 3, "blank lines are skipped");
    assert_eq!(topics[0].text, "PROFIT\nprofit rose");
    assert_eq!(topics[1].labels, s(&["crude", "trade"]));
    assert_eq!(topics[1].line, 3);
    assert!(topics[2].labels.is_empty());

    let latin1 = ReadOptions {
        encoding: TextEncoding::Latin1,
        ..Default::default()
    };
    let phrasebank = read("classify/latin1.txt", &latin1).unwrap();
    assert_eq!(phrasebank[1].text, "Sales at König fell .");
    assert_eq!(phrasebank[1].labels, s(&["negative"]));
    let utf8 = read("classify/utf8.txt", &ReadOptions::default()).unwrap();
    assert_eq!(utf8[0].text, phrasebank[1].text);

    for (name, format) in [
        ("a.tsv", LabelledFormat::Tsv),
        ("a.CSV", LabelledFormat::Csv),
        ("a.jsonl", LabelledFormat::Jsonl),
        ("Sentences_50Agree.txt", LabelledFormat::Phrasebank),
    ] {
        assert_eq!(LabelledFormat::of_path(Path::new(name)).unwrap(), format);
    }
    assert!(LabelledFormat::of_path(Path::new("data.xml")).is_err());
}

/// The error of reading `text` (written to a file named `name`) with `options`.
fn read_error(name: &str, text: &[u8], options: &ReadOptions) -> String {
    let dir = tmp("read-errors");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    labelled::read(&path, options).unwrap_err().to_string()
}

#[test]
fn bad_files_are_errors_naming_file_line_and_problem() {
    let none = ReadOptions::default();
    let latin1 = ReadOptions {
        encoding: TextEncoding::Latin1,
        ..Default::default()
    };
    let bytes = std::fs::read(fixture("classify/latin1.txt")).unwrap();
    let e = read_error("p.txt", &bytes, &none);
    assert!(
        e.contains("p.txt:2:") && e.contains("not valid UTF-8") && e.contains("--encoding latin-1"),
        "{e}"
    );
    let utf8 = std::fs::read(fixture("classify/utf8.txt")).unwrap();
    let e = read_error("p.txt", &utf8, &latin1);
    assert!(e.contains("p.txt:1:") && e.contains("would mangle"), "{e}");
    let e = read_error("p.tsv", b"sentence\tgold\nprofit rose\t1\n", &none);
    assert!(
        e.contains("p.tsv:1:") && e.contains("no column \"label\""),
        "{e}"
    );
    let e = read_error("p.tsv", b"sentence\tlabel\nprofit rose\n", &none);
    assert!(e.contains("p.tsv:2:") && e.contains("label"), "{e}");
    let e = read_error("p.txt", b"fine@positive\nno label here\n", &none);
    assert!(
        e.contains("p.txt:2:") && e.contains("sentence@label"),
        "{e}"
    );
    let e = read_error(
        "p.jsonl",
        b"{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\"}\n",
        &none,
    );
    assert!(
        e.contains("p.jsonl:2:") && e.contains("no label field"),
        "{e}"
    );
    let e = read_error(
        "p.jsonl",
        b"{\"text\": \"a\", \"label\": [\"x\", 3]}\n",
        &none,
    );
    assert!(
        e.contains("p.jsonl:1:") && e.contains("not a non-empty string"),
        "{e}"
    );
    let e = read_error("p.csv", b"sentence,label\n", &none);
    assert!(e.contains("no labelled examples"), "{e}");
}

#[test]
fn losses_match_their_definitions() {
    let dev = cpu();
    let logits = [0.3, -1.2, 2.0, 0.5, 0.1, -0.4];
    let t = || f64_tensor(logits.to_vec(), [2, 3], &dev);
    // Weighted cross-entropy: Σ w_y · −log p_y / Σ w_y.
    let nll = |row: &[f64], y: usize| {
        let z: f64 = row.iter().map(|x| x.exp()).sum();
        z.ln() - row[y]
    };
    let weights = [1.0f32, 2.0, 0.5];
    let expected = (2.0 * nll(&logits[..3], 1) + 0.5 * nll(&logits[3..], 2)) / 2.5;
    let got = to_vec(cross_entropy(t(), &[1, 2], Some(&weights)))[0];
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    let plain = (nll(&logits[..3], 1) + nll(&logits[3..], 2)) / 2.0;
    assert!((to_vec(cross_entropy(t(), &[1, 2], None))[0] - plain).abs() < 1e-12);
    // Binary cross-entropy with logits, mean over all entries.
    let y = [true, false, true, false, false, true];
    let expected: f64 = logits
        .iter()
        .zip(y)
        .map(|(&x, y)| {
            let p = 1.0 / (1.0 + (-x).exp());
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / 6.0;
    let targets = vec![y[..3].to_vec(), y[3..].to_vec()];
    let got = to_vec(binary_cross_entropy(t(), &targets, None))[0];
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    // With positive weights (PyTorch's pos_weight): a positive entry of label c counts w[c] times.
    let w = [3.0f32, 0.5, 2.0];
    let expected: f64 = logits
        .iter()
        .zip(y)
        .enumerate()
        .map(|(i, (&x, y))| {
            let p = 1.0 / (1.0 + (-x).exp());
            if y {
                -f64::from(w[i % 3]) * p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / 6.0;
    let got = to_vec(binary_cross_entropy(t(), &targets, Some(&w)))[0];
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
}

/// transformers' logits for single texts, pairs and a truncated pair, from the fixture.
fn check_against_transformers(name: &str, multi_label: bool) {
    let dir = fixture(&format!("hf_tiny_classify/{name}"));
    let fx = Fixture::open(&format!("hf_tiny_classify/{name}/reference.safetensors"));
    let model = ClassifierModel::load(&dir, None, &cpu()).unwrap();
    assert_eq!(model.multi_label, multi_label);
    let texts: Vec<String> = serde_json::from_str(&fx.metadata("texts")).unwrap();
    let pairs: Vec<(String, String)> = serde_json::from_str(&fx.metadata("pairs")).unwrap();
    let cases = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("single.{{}}.{i}"), t.clone(), None))
        .chain(
            pairs
                .iter()
                .enumerate()
                .map(|(i, (a, b))| (format!("pair.{{}}.{i}"), a.clone(), Some(b.clone()))),
        );
    for (key, text, pair) in cases {
        let (ids, segments) = model
            .tokenizer
            .encode_pair(&text, pair.as_deref(), 512)
            .unwrap();
        let want: Vec<u32> = fx
            .i64(&key.replace("{}", "ids"))
            .iter()
            .map(|&x| x as u32)
            .collect();
        assert_eq!(ids, want, "{key}");
        if pair.is_some() {
            let types: Vec<u32> = fx
                .i64(&key.replace("{}", "types"))
                .iter()
                .map(|&x| x as u32)
                .collect();
            assert_eq!(segments, types, "{key}");
        }
        let batch = Batch::with_segments(&[ids], Some(&[segments]), 0, &cpu());
        let logits = to_vec(model.model.logits(&batch));
        let reference: Vec<f64> = fx
            .f32(&key.replace("{}", "logits"))
            .iter()
            .map(|&x| x as f64)
            .collect();
        let diff = max_abs_diff(&logits, &reference);
        assert!(diff < 1e-5, "{name} {key}: logits differ by {diff}");
    }
    let (a, b) = &pairs[0];
    let (ids, segments) = model.tokenizer.encode_pair(a, Some(b), 12).unwrap();
    let want: Vec<u32> = fx.i64("truncated.ids").iter().map(|&x| x as u32).collect();
    let types: Vec<u32> = fx
        .i64("truncated.types")
        .iter()
        .map(|&x| x as u32)
        .collect();
    assert_eq!((ids, segments), (want, types), "longest-first truncation");
}

#[test]
fn hugging_face_sequence_classifiers_load_with_the_same_logits() {
    check_against_transformers("single", false);
    check_against_transformers("multi", true);
}

#[test]
fn a_saved_classifier_is_the_directory_transformers_writes() {
    for name in ["single", "multi"] {
        let dir = fixture(&format!("hf_tiny_classify/{name}"));
        let checkpoint = hf::Checkpoint::open(&dir).unwrap();
        let (model, labels) = checkpoint.sequence_classifier(&cpu()).unwrap();
        let out = tmp(&format!("saved-{name}"));
        hf::save(
            &model,
            &checkpoint.config,
            &out,
            Some(&dir.join("tokenizer.json")),
        )
        .unwrap();
        // The same tensor names and shapes as transformers' own file, and the same values.
        let theirs = hf::Weights::load(&dir.join("model.safetensors")).unwrap();
        let ours = hf::Weights::load(&out.join("model.safetensors")).unwrap();
        let names = theirs.names();
        assert_eq!(ours.names(), names, "{name}");
        for n in &names {
            let (a, b) = (theirs.get(n).unwrap(), ours.get(n).unwrap());
            assert_eq!(a.shape(), b.shape(), "{n}");
            a.assert_approx_eq::<f32>(b, burn::tensor::Tolerance::absolute(0.0));
        }
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["model_type"], "bert");
        assert_eq!(config["architectures"][0], "BertForSequenceClassification");
        assert_eq!(config["id2label"]["0"], labels[0].as_str());
        assert_eq!(config["label2id"][labels[0].as_str()], 0);
        let problem = if name == "multi" {
            "multi_label_classification"
        } else {
            "single_label_classification"
        };
        assert_eq!(config["problem_type"], problem);
        assert!(out.join("tokenizer_config.json").exists());
    }
}

#[test]
fn other_heads_are_refused_by_name() {
    let ner = fixture("hf_tiny_ner");
    let e = ClassifierModel::load(&ner, None, &cpu())
        .err()
        .expect("a token classifier is not a sequence classifier")
        .to_string();
    assert!(
        e.contains("config.json") && e.contains("not a sequence-classification model"),
        "{e}"
    );
}

#[derive(serde::Deserialize)]
struct Cases {
    single: serde_json::Value,
    multi: serde_json::Value,
}

fn close(a: f64, b: &serde_json::Value, what: &str) {
    let b = b.as_f64().unwrap_or_else(|| panic!("{what}: {b}"));
    assert!((a - b).abs() < 1e-12, "{what}: {a} vs scikit-learn {b}");
}

fn check_rows(report: &report::Report, sklearn: &serde_json::Value) {
    for row in report.labels.iter().chain(&report.averages) {
        let theirs = &sklearn[row.name.as_str()];
        close(
            row.precision,
            &theirs["precision"],
            &format!("{} precision", row.name),
        );
        close(
            row.recall,
            &theirs["recall"],
            &format!("{} recall", row.name),
        );
        close(row.f1, &theirs["f1-score"], &format!("{} f1", row.name));
        close(
            row.support as f64,
            &theirs["support"],
            &format!("{} support", row.name),
        );
    }
}

#[test]
fn reports_agree_with_scikit_learn() {
    let cases: Cases = serde_json::from_str(
        &std::fs::read_to_string(fixture("hf_tiny_classify/report_cases.json")).unwrap(),
    )
    .unwrap();
    let c = &cases.single;
    let labels: Vec<String> = serde_json::from_value(c["labels"].clone()).unwrap();
    let index = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| {
                labels
                    .iter()
                    .position(|x| x == l.as_str().unwrap())
                    .unwrap()
            })
            .collect()
    };
    let r = report::single_label(&index(&c["gold"]), &index(&c["predicted"]), &labels);
    check_rows(&r, &c["report"]);
    close(r.accuracy, &c["accuracy"], "accuracy");
    let confusion: Vec<Vec<usize>> = serde_json::from_value(c["confusion"].clone()).unwrap();
    assert_eq!(r.confusion.as_ref().unwrap(), &confusion);
    assert!(r.table().contains("weighted avg"));

    let c = &cases.multi;
    let labels: Vec<String> = serde_json::from_value(c["labels"].clone()).unwrap();
    let flags = |v: &serde_json::Value| -> Vec<Vec<bool>> {
        let rows: Vec<Vec<u8>> = serde_json::from_value(v.clone()).unwrap();
        rows.iter()
            .map(|r| r.iter().map(|&x| x == 1).collect())
            .collect()
    };
    let r = report::multi_label(&flags(&c["gold"]), &flags(&c["predicted"]), &labels);
    check_rows(&r, &c["report"]);
    close(r.accuracy, &c["subset_accuracy"], "subset accuracy");
    close(r.hamming_loss.unwrap(), &c["hamming_loss"], "Hamming loss");
}

#[test]
fn the_multi_label_threshold_maximises_micro_f1() {
    let labels = s(&["a", "b"]);
    let probs = vec![
        vec![0.9, 0.32],
        vec![0.28, 0.1],
        vec![0.6, 0.7],
        vec![0.2, 0.31],
    ];
    let gold = vec![vec![0, 1], vec![], vec![0, 1], vec![1]];
    let (t, f1) = classify::tune_threshold(&probs, &gold, &labels);
    // 0.30 keeps all four gold labels and no false one: micro-F1 1.
    assert!(
        (t - 0.3).abs() < 1e-9 && (f1 - 1.0).abs() < 1e-12,
        "{t} {f1}"
    );
    let decided = classify::decide(&probs, true, &[t, t]);
    assert_eq!(decided, gold);
    assert_eq!(
        classify::decide(&probs, false, &[0.5, 0.5]),
        vec![vec![0], vec![0], vec![1], vec![1]]
    );
}

#[test]
fn per_label_thresholds_maximise_each_labels_f1() {
    // Label a is best cut at 0.5 (0.52 and up in, 0.47 out), label b at 0.2; label c has two
    // positives only, too few to tune: it keeps the global threshold.
    let probs = vec![
        vec![0.55, 0.25, 0.9],
        vec![0.47, 0.1, 0.1],
        vec![0.6, 0.22, 0.2],
        vec![0.3, 0.15, 0.95],
        vec![0.52, 0.3, 0.1],
    ];
    let gold = vec![vec![0, 1, 2], vec![], vec![0, 1], vec![2], vec![0, 1]];
    let t = classify::tune_label_thresholds(&probs, &gold, 0.35);
    assert!((t[0] - 0.5).abs() < 1e-9, "{t:?}");
    assert!((t[1] - 0.2).abs() < 1e-9, "{t:?}");
    assert_eq!(t[2], 0.35, "{t:?}");
    assert_eq!(classify::decide(&probs, true, &t), gold);
    // One threshold for all cannot separate them: a's 0.47 negative is above b's positives.
    let (_, f1) = classify::tune_threshold(&probs, &gold, &s(&["a", "b", "c"]));
    assert!(f1 < 1.0, "{f1}");
}

fn config_of(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

/// `finetune classify` of the tiny fixture model on the small TSV fixture into `out`, batches of
/// 8 at lr 1e-3, with `extra` flags.
fn tiny_finetune(out: &Path, extra: &[&str]) -> Vec<String> {
    let (base, train, dev) = (
        fixture("hf_tiny_classify/single"),
        fixture("classify/train.tsv"),
        fixture("classify/dev.tsv"),
    );
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let mut args: Vec<String> = ["finetune", "classify", "--model"]
        .map(String::from)
        .to_vec();
    args.extend([path(&base), "--train".into(), path(&train)]);
    args.extend(["--dev".into(), path(&dev), "--out".into(), path(out)]);
    args.extend(["--batch-size", "8", "--lr", "1e-3"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn finetune_resume_eval_and_predict_end_to_end() {
    let dir = tmp("e2e");
    let dev = fixture("classify/dev.tsv");
    let run = dir.join("run");
    let args = |out: &Path| {
        tiny_finetune(
            out,
            &["--epochs", "3", "--save-every", "2", "--max-len", "16"],
        )
    };
    let (ok, stdout, stderr) = positio(&args(&run));
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("validation: accuracy"), "{stdout}");
    let config = config_of(&run);
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["window_length"], 16);

    // Killed after its second checkpoint and resumed: the same final weights.
    let resumed = dir.join("resumed");
    kill_after_checkpoint(&args(&resumed), &resumed, 4);
    let mut again = args(&resumed);
    again.push("--resume".into());
    let (ok, stdout, stderr) = positio(&again);
    assert!(ok, "{stdout}\n{stderr}");
    let (a, b) = (
        std::fs::read(run.join("model.safetensors")).unwrap(),
        std::fs::read(resumed.join("model.safetensors")).unwrap(),
    );
    assert!(a == b, "a resumed run ends with other weights");

    // eval: the report, a predictions file, JSON and a confusion-matrix PNG.
    let (preds, json, png) = (dir.join("p.jsonl"), dir.join("r.json"), dir.join("cm.png"));
    let (ok, stdout, stderr) = positio(&[
        "eval",
        "classify",
        "--model",
        run.to_str().unwrap(),
        "--data",
        dev.to_str().unwrap(),
        "--output",
        preds.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("accuracy") && stdout.contains("confusion matrix"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let lines = std::fs::read_to_string(&preds).unwrap();
    let correct = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["gold"][0] == v["label"])
        .count();
    let accuracy = report["report"]["accuracy"].as_f64().unwrap();
    assert!((accuracy - correct as f64 / 12.0).abs() < 1e-12);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);

    // predict: one JSON line per text, every label's score summing to 1.
    let (ok, stdout, stderr) = positio(&[
        "predict",
        "classify",
        "--model",
        run.to_str().unwrap(),
        "--text",
        "profit rose .",
        "--text",
        "shares fell sharply .",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let scores = r["scores"].as_array().unwrap();
        assert_eq!(scores.len(), 3);
        let total: f64 = scores.iter().map(|s| s["score"].as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert_eq!(r["label"], scores[0]["label"]);
    }
}

#[test]
fn multi_label_fine_tuning_saves_its_threshold() {
    let dir = tmp("multi");
    let data = dir.join("topics.jsonl");
    let mut text = String::new();
    for i in 0..24 {
        let (t, l): (&str, &[&str]) = match i % 3 {
            0 => ("profit rose in the quarter", &["earn"]),
            1 => ("shares of the company fell", &["acq", "crude"]),
            _ => ("net sales said", &[]),
        };
        text += &serde_json::json!({ "text": t, "topics": l }).to_string();
        text.push('\n');
    }
    std::fs::write(&data, text).unwrap();
    let finetune = |run: &Path| {
        let (ok, stdout, stderr) = positio(&[
            "finetune",
            "classify",
            "--model",
            fixture("hf_tiny_classify/single").to_str().unwrap(),
            "--train",
            data.to_str().unwrap(),
            "--dev",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--multi-label",
            "--label-column",
            "topics",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--lr",
            "1e-3",
        ]);
        assert!(ok, "{stdout}\n{stderr}");
    };
    let (run, again) = (dir.join("run"), dir.join("again"));
    finetune(&run);
    // The fresh 3-label head is drawn after seeding: the same run gives the same weights.
    finetune(&again);
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(
        weights(&run) == weights(&again),
        "two identical runs trained different weights"
    );
    let config = config_of(&run);
    assert_eq!(config["problem_type"], "multi_label_classification");
    assert_eq!(config["id2label"].as_object().unwrap().len(), 3);
    let t = config["decision_threshold"].as_f64().unwrap();
    assert!(t > 0.0 && t < 1.0);
    let (ok, stdout, _) = positio(&[
        "eval",
        "classify",
        "--model",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "topics",
    ]);
    assert!(
        ok && stdout.contains("Hamming loss") && stdout.contains("samples avg"),
        "{stdout}"
    );
}

#[test]
fn per_label_thresholds_round_trip_and_decide_predictions() {
    let dir = tmp("per-label");
    let data = dir.join("topics.jsonl");
    let mut text = String::new();
    for i in 0..24 {
        let (t, l): (&str, &[&str]) = match i % 3 {
            0 => ("profit rose in the quarter", &["earn"]),
            1 => ("shares of the company fell", &["acq", "crude"]),
            _ => ("net sales said", &["earn"]),
        };
        text += &serde_json::json!({ "title": t, "text": "", "topics": l }).to_string();
        text.push('\n');
    }
    // An article with neither title nor body: skipped by training, predicted by eval.
    text += &serde_json::json!({ "title": "", "text": "", "topics": ["acq"] }).to_string();
    text.push('\n');
    std::fs::write(&data, text).unwrap();
    let run = dir.join("run");
    let fields = [
        "--field",
        "title",
        "--field",
        "text",
        "--label-column",
        "topics",
    ];
    let model = fixture("hf_tiny_classify/single");
    let mut args = vec![
        "finetune",
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--train",
        data.to_str().unwrap(),
        "--dev",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--multi-label",
        "--per-label-thresholds",
        "--class-weights",
        "--head-lr",
        "1e-2",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
    ];
    args.extend(fields);
    let (ok, stdout, stderr) = positio(&args);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("skipped 1 training texts that are empty"),
        "{stdout}"
    );
    let run_toml = std::fs::read_to_string(run.join("run.toml")).unwrap();
    assert!(
        run_toml.contains("per_label_thresholds = true") && run_toml.contains("head_lr = 0.01"),
        "{run_toml}"
    );
    // Saved: one threshold per label with enough development positives (all three here).
    let mut config = config_of(&run);
    let saved = config["decision_thresholds"].as_object().unwrap().clone();
    assert_eq!(saved.len(), 3, "{saved:?}");
    // Loaded back by eval, which scores the empty article too (25 texts).
    let eval = |extra: &[&str]| {
        let json = dir.join("eval.json");
        let mut args = vec![
            "eval",
            "classify",
            "--model",
            run.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ];
        args.extend(fields);
        args.extend(extra);
        let (ok, stdout, stderr) = positio(&args);
        assert!(ok, "{stdout}\n{stderr}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        v
    };
    let v = eval(&[]);
    assert_eq!(v["report"]["texts"], 25);
    assert_eq!(v["thresholds"].as_object().unwrap(), &saved);
    assert_eq!(eval(&["--threshold", "0.4"])["thresholds"]["acq"], 0.4);
    // A label's threshold decides it: 1.01 never predicts earn, 0 always predicts crude.
    let predict = || {
        let (ok, stdout, stderr) = positio(&[
            "predict",
            "classify",
            "--model",
            run.to_str().unwrap(),
            "--text",
            "profit rose in the quarter",
            "--text",
            "",
        ]);
        assert!(ok, "{stderr}");
        stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["labels"].clone())
            .collect::<Vec<_>>()
    };
    let before = predict();
    assert!(
        before[0].as_array().unwrap().contains(&"earn".into()),
        "{before:?}"
    );
    config["decision_thresholds"]["earn"] = 1.01.into();
    config["decision_thresholds"]["crude"] = 0.0.into();
    std::fs::write(run.join("config.json"), config.to_string()).unwrap();
    for labels in predict() {
        let labels = labels.as_array().unwrap();
        assert!(
            !labels.contains(&"earn".into()) && labels.contains(&"crude".into()),
            "{labels:?}"
        );
    }
}

#[test]
fn bad_classification_input_writes_nothing() {
    let dir = tmp("bad");
    let base = fixture("hf_tiny_classify/single");
    let run = dir.join("run");
    let finetune = |train: &Path, dev: &Path, extra: &[&str]| {
        let mut args = vec![
            "finetune".to_string(),
            "classify".into(),
            "--model".into(),
            base.display().to_string(),
            "--train".into(),
            train.display().to_string(),
            "--dev".into(),
            dev.display().to_string(),
            "--out".into(),
            run.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        positio(&args)
    };
    let train = fixture("classify/train.tsv");
    let (ok, _, e) = finetune(&train, &fixture("classify/dev_unknown_label.tsv"), &[]);
    assert!(
        !ok && e.contains("dev_unknown_label.tsv:3:") && e.contains("\"bullish\""),
        "{e}"
    );
    let latin1 = fixture("classify/latin1.txt");
    let (ok, _, e) = finetune(&latin1, &latin1, &[]);
    assert!(
        !ok && e.contains("latin1.txt:2:") && e.contains("--encoding latin-1"),
        "{e}"
    );
    let (ok, _, e) = finetune(
        &train,
        &fixture("classify/dev.tsv"),
        &["--label-column", "gold"],
    );
    assert!(
        !ok && e.contains("train.tsv:1:") && e.contains("no column \"gold\""),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    assert!(!run.exists(), "nothing may be written for bad input");
}

#[test]
fn a_classifier_whose_head_does_not_fit_its_labels_is_refused() {
    let dir = tmp("misfit");
    let src = fixture("hf_tiny_classify/single");
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    // Four labels in config.json for a three-row classifier.weight.
    let mut config = config_of(&src);
    config["id2label"]["3"] = "bullish".into();
    config["label2id"]["bullish"] = 3.into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let e = ClassifierModel::load(&dir, None, &cpu())
        .err()
        .expect("a misfit head is refused")
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("classifier.weight has shape [3, 16]"),
        "{e}"
    );
}

#[test]
fn a_toml_config_sets_the_run_and_class_weights_train() {
    let dir = tmp("config");
    let config = dir.join("classify.toml");
    std::fs::write(
        &config,
        format!(
            "[classify]\nmodel = {:?}\ntrain = {:?}\ndev = {:?}\nclass_weights = true\nmax_len = 24\n\n[train]\nepochs = 1.0\nbatch_size = 8\nlr = 1e-3\n",
            fixture("hf_tiny_classify/single").display().to_string(),
            fixture("classify/train.tsv").display().to_string(),
            fixture("classify/dev.tsv").display().to_string(),
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let (ok, stdout, stderr) = positio(&[
        "finetune",
        "classify",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let saved = std::fs::read_to_string(run.join("run.toml")).unwrap();
    assert!(
        saved.contains("class_weights = true") && saved.contains("max_len = 24"),
        "{saved}"
    );
    assert_eq!(config_of(&run)["window_length"], 24);
}

/// `positio average` of classifiers fine-tuned with two seeds: the mean of every tensor, the
/// first's config and tokenizer, a model eval and predict read; thresholds averaged; models
/// that differ in labels or tensors refused, naming the file and what differs, writing nothing.
#[test]
fn average_makes_one_model_of_several_or_refuses_naming_the_difference() {
    let dir = tmp("average");
    let dev = fixture("classify/dev.tsv");
    let finetune = |seed: &str| {
        let out = dir.join(format!("seed{seed}"));
        let (ok, stdout, stderr) =
            positio(&tiny_finetune(&out, &["--epochs", "2", "--seed", seed]));
        assert!(ok, "{stdout}\n{stderr}");
        out
    };
    let (a, b) = (finetune("1"), finetune("2"));
    let soup = dir.join("soup");
    let average = |models: &[&Path], out: &Path| {
        let mut args = vec!["average".to_string()];
        for m in models {
            args.extend(["--model".to_string(), m.to_str().unwrap().to_string()]);
        }
        args.extend(["--out".to_string(), out.to_str().unwrap().to_string()]);
        positio(&args)
    };
    let (ok, stdout, stderr) = average(&[&a, &b], &soup);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("the mean of 2 models"), "{stdout}");
    let weights = |d: &Path| hf::Weights::load(&d.join("model.safetensors")).unwrap();
    let (wa, wb, ws) = (weights(&a), weights(&b), weights(&soup));
    assert_eq!(ws.names(), wa.names());
    let mut moved = 0;
    for name in wa.names() {
        let v = |w: &hf::Weights| w.get(&name).unwrap().try_to_vec::<f32>().unwrap();
        let (va, vb, vs) = (v(&wa), v(&wb), v(&ws));
        moved += usize::from(va != vb);
        for ((x, y), s) in va.iter().zip(&vb).zip(&vs) {
            assert!(
                ((x + y) / 2.0 - s).abs() <= 1e-6 * (1.0 + s.abs()),
                "{name}"
            );
        }
    }
    assert!(moved > 0, "the two seeds trained to other weights");
    assert_eq!(config_of(&soup), config_of(&a));
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        assert_eq!(
            std::fs::read(soup.join(f)).unwrap(),
            std::fs::read(a.join(f)).unwrap()
        );
    }
    assert!(!soup.join("run.toml").exists() && !soup.join("checkpoints").exists());
    let (ok, stdout, stderr) = positio(&[
        "eval",
        "classify",
        "--model",
        soup.to_str().unwrap(),
        "--data",
        dev.to_str().unwrap(),
    ]);
    assert!(ok && stdout.contains("accuracy"), "{stdout}\n{stderr}");
    // Writing over a model is refused.
    let (ok, _, stderr) = average(&[&a, &b], &soup);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");

    // Thresholds: averaged, per label too (a label one model lacks counts its global one).
    let with = |name: &str, global: f64, per_label: serde_json::Value| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["model.safetensors", "tokenizer.json"] {
            std::fs::copy(a.join(f), d.join(f)).unwrap();
        }
        let mut c = config_of(&a);
        c["decision_threshold"] = global.into();
        c["decision_thresholds"] = per_label;
        std::fs::write(d.join("config.json"), c.to_string()).unwrap();
        d
    };
    let t1 = with(
        "t1",
        0.4,
        serde_json::json!({"positive": 0.2, "negative": 0.3}),
    );
    let t2 = with("t2", 0.6, serde_json::json!({"positive": 0.4}));
    let (ok, stdout, stderr) = average(&[&t1, &t2], &dir.join("t-soup"));
    assert!(
        ok && stdout.contains("thresholds averaged"),
        "{stdout}\n{stderr}"
    );
    let c = config_of(&dir.join("t-soup"));
    assert!((c["decision_threshold"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert!((c["decision_thresholds"]["positive"].as_f64().unwrap() - 0.3).abs() < 1e-12);
    assert!((c["decision_thresholds"]["negative"].as_f64().unwrap() - 0.45).abs() < 1e-12);

    // Refusals, each naming the file and what differs, each writing nothing.
    let other_labels = dir.join("other-labels");
    std::fs::create_dir_all(&other_labels).unwrap();
    std::fs::copy(
        b.join("model.safetensors"),
        other_labels.join("model.safetensors"),
    )
    .unwrap();
    let mut c = config_of(&b);
    c["id2label"]["0"] = "bearish".into();
    std::fs::write(other_labels.join("config.json"), c.to_string()).unwrap();
    let missing = dir.join("missing-tensor");
    std::fs::create_dir_all(&missing).unwrap();
    std::fs::copy(b.join("config.json"), missing.join("config.json")).unwrap();
    let kept: Vec<(String, burn::tensor::TensorData)> = wb
        .names()
        .into_iter()
        .filter(|n| n != "classifier.bias")
        .map(|n| (n.clone(), wb.get(&n).unwrap().clone()))
        .collect();
    hf::Weights::save(&kept, &missing.join("model.safetensors")).unwrap();
    for (models, expected) in [
        (vec![a.as_path()], "at least two models".to_string()),
        (
            vec![a.as_path(), other_labels.as_path()],
            format!(
                "{}: differs from",
                other_labels.join("config.json").display()
            ),
        ),
        (
            vec![a.as_path(), missing.as_path()],
            format!(
                "{}: has no tensor 'classifier.bias'",
                missing.join("model.safetensors").display()
            ),
        ),
    ] {
        let out = dir.join("refused");
        let (ok, _, stderr) = average(&models, &out);
        assert!(!ok && stderr.contains(&expected), "{expected}: {stderr}");
        assert!(!out.exists(), "{expected}: wrote {}", out.display());
    }
    let (_, _, stderr) = average(&[&a, &other_labels], &dir.join("refused"));
    assert!(stderr.contains("'id2label'"), "{stderr}");
}
