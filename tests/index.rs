//! `positio index` and `positio search` end to end with all-MiniLM-L6-v2 on the small BEIR
//! fixture: every search mode, an index searched through `eval retrieval` gives the same run as
//! exact search, HNSW finds what exact search finds, add / delete / replace, refusals of the
//! wrong model and of corrupt files, searches while `add` runs, a killed `add`, reranking equal
//! to sentence-transformers' CrossEncoder; and `positio answer` / `positio calibrate`.

mod common;
use common::*;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run_ok(args: &[&std::ffi::OsStr]) -> String {
    let (ok, out, err) = positio(args);
    assert!(ok, "positio {args:?}: {err}");
    out
}

fn s(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

fn build(out: &Path, dense: &str) -> Value {
    let m = minilm_dir();
    let corpus = fixture("retrieval/beir/corpus.jsonl");
    let line = run_ok(&[
        "index".as_ref(),
        "build".as_ref(),
        "--model".as_ref(),
        s(&m),
        "--corpus".as_ref(),
        s(&corpus),
        "--out".as_ref(),
        s(out),
        "--dense".as_ref(),
        dense.as_ref(),
    ]);
    serde_json::from_str(&line).unwrap()
}

/// `search IDX --query Q ARGS`: the hits' (id, score).
fn search(index: &Path, query: &str, args: &[&str]) -> Vec<(String, f64)> {
    let mut all: Vec<&std::ffi::OsStr> = vec![
        "search".as_ref(),
        s(index),
        "--query".as_ref(),
        query.as_ref(),
    ];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    let out = run_ok(&all);
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["query"], query);
    line["hits"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            assert_eq!(h["rank"], i + 1);
            assert!(h["text"].as_str().is_some_and(|t| !t.is_empty()), "{h}");
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn documents(index: &Path) -> u64 {
    let out = run_ok(&["index".as_ref(), "info".as_ref(), s(index)]);
    let manifest: Value = serde_json::from_str(&out).unwrap();
    manifest["documents"].as_u64().unwrap()
}

fn write_corpus(path: &Path, docs: &[(String, String)]) {
    let text: String = docs
        .iter()
        .map(|(id, text)| {
            serde_json::json!({"_id": id, "title": "", "text": text}).to_string() + "\n"
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

fn eval_run(args: &[&std::ffi::OsStr], run: &Path) -> Vec<(String, String)> {
    let data = fixture("retrieval/beir");
    let mut all: Vec<&std::ffi::OsStr> = vec![
        "eval".as_ref(),
        "retrieval".as_ref(),
        "--data".as_ref(),
        s(&data),
        "--run".as_ref(),
        s(run),
    ];
    all.extend(args);
    run_ok(&all);
    std::fs::read_to_string(run)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (format!("{} {} {}", f[0], f[2], f[3]), f[4].to_string())
        })
        .collect()
}

#[test]
fn build_search_add_delete_end_to_end() {
    let dir = tmp("index-e2e");
    let idx = dir.as_ref().join("idx");
    let built = build(&idx, "auto");
    assert_eq!(built["added"], 24);
    assert_eq!(built["graph"], false, "24 documents are searched exactly");
    // The index searched by eval retrieval ranks as exact search over the corpus embedded now.
    let m = minilm_dir();
    let exact = eval_run(&["--model".as_ref(), s(&m)], &dir.as_ref().join("a.trec"));
    let indexed = eval_run(&["--index".as_ref(), s(&idx)], &dir.as_ref().join("b.trec"));
    let ranks = |r: &[(String, String)]| r.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(ranks(&exact), ranks(&indexed));
    assert_eq!(exact.len(), 11 * 24);
    // An HNSW index of the same corpus finds the same documents in the same order.
    let hnsw = dir.as_ref().join("hnsw");
    assert_eq!(build(&hnsw, "hnsw")["graph"], true);
    let graph = eval_run(
        &["--index".as_ref(), s(&hnsw)],
        &dir.as_ref().join("c.trec"),
    );
    assert_eq!(ranks(&exact), ranks(&graph));

    let q = "Why did crude oil prices go up?";
    let dense = search(&idx, q, &["--top", "3"]);
    assert_eq!(dense[0].0, "oil1");
    let bm25 = search(
        &idx,
        "wheat exports Soviet Union",
        &["--mode", "bm25", "--top", "3"],
    );
    assert_eq!(bm25[0].0, "wheat1");
    assert!(bm25[0].1 > 1.0, "BM25 scores are not cosines: {bm25:?}");
    let hybrid = search(&idx, q, &["--mode", "hybrid", "--top", "5"]);
    assert_eq!(hybrid[0].0, "oil1");
    // Reciprocal-rank scores: at most two rankings' 1 / 61.
    assert!(
        hybrid[0].1 <= 2.0 / 61.0 + 1e-12 && hybrid[0].1 > 1.0 / 61.0,
        "{hybrid:?}"
    );
    // Query words no document has: BM25 finds nothing, hybrid falls back to dense.
    assert!(search(&idx, "zzzq", &["--mode", "bm25"]).is_empty());
    assert_eq!(
        search(&idx, "zzzq", &["--mode", "hybrid", "--top", "2"]).len(),
        2
    );

    // Add one document, replace one; then delete (an unknown id is counted, not refused).
    let more = dir.as_ref().join("more.jsonl");
    write_corpus(
        &more,
        &[
            (
                "new1".into(),
                "Gold prices hit a record as investors fled the dollar.".into(),
            ),
            (
                "oil1".into(),
                "Tea exports from Kenya fell in March.".into(),
            ),
        ],
    );
    for index in [&idx, &hnsw] {
        let added: Value = serde_json::from_str(&run_ok(&[
            "index".as_ref(),
            "add".as_ref(),
            s(index),
            "--corpus".as_ref(),
            s(&more),
        ]))
        .unwrap();
        assert_eq!(
            (added["added"].as_u64(), added["replaced"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(documents(index), 25);
        assert_eq!(
            search(index, "record gold price", &["--top", "1"])[0].0,
            "new1"
        );
        // oil1 now reads as its new text.
        assert_eq!(
            search(index, "Kenyan tea exports", &["--top", "1"])[0].0,
            "oil1"
        );
        assert_ne!(search(index, q, &["--top", "1"])[0].0, "oil1");
        let deleted: Value = serde_json::from_str(&run_ok(&[
            "index".as_ref(),
            "delete".as_ref(),
            s(index),
            "--id".as_ref(),
            "new1".as_ref(),
            "--id".as_ref(),
            "missing".as_ref(),
        ]))
        .unwrap();
        assert_eq!(
            (deleted["deleted"].as_u64(), deleted["not_found"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(documents(index), 24);
        for mode in ["dense", "bm25", "hybrid"] {
            let hits = search(index, "record gold price", &["--mode", mode, "--top", "30"]);
            assert!(hits.iter().all(|(id, _)| id != "new1"), "{mode}: {hits:?}");
            assert_eq!(hits.len().min(24), hits.len());
        }
    }
    // Three writes since the build: the current generation and the one before it remain.
    let gens: Vec<String> = std::fs::read_dir(&idx)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    assert_eq!(gens.len(), 2, "{gens:?}");
}

#[test]
fn wrong_models_corrupt_files_and_bad_corpora_get_clear_errors() {
    let dir = tmp("index-errors");
    let idx = dir.as_ref().join("idx");
    // A malformed corpus: file:line, and no index written.
    let bad = dir.as_ref().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\"}\n",
    )
    .unwrap();
    let m = minilm_dir();
    let (ok, _, err) = positio(&[
        "index".as_ref(),
        "build".as_ref(),
        "--model".as_ref(),
        s(&m),
        "--corpus".as_ref(),
        s(&bad),
        "--out".as_ref(),
        s(&idx),
    ]);
    assert!(!ok && err.contains("bad.jsonl:2: no \"text\""), "{err}");
    assert!(!idx.exists());
    build(&idx, "exact");
    // A second build into the same directory is refused.
    let (ok, _, err) = positio(&[
        "index".as_ref(),
        "build".as_ref(),
        "--model".as_ref(),
        s(&m),
        "--corpus".as_ref(),
        s(&fixture("retrieval/beir/corpus.jsonl")),
        "--out".as_ref(),
        s(&idx),
    ]);
    assert!(!ok && err.contains("already an index"), "{err}");
    // Another model than the index's is refused, for search and add.
    let other = fixture("st_tiny");
    for cmd in [
        vec![
            "search".as_ref(),
            s(&idx),
            "--query".as_ref(),
            "x".as_ref(),
            "--model".as_ref(),
            s(&other),
        ],
        vec![
            "index".as_ref(),
            "add".as_ref(),
            s(&idx),
            "--corpus".as_ref(),
            s(&fixture("retrieval/beir/corpus.jsonl")),
            "--model".as_ref(),
            s(&other),
        ],
    ] {
        let (ok, _, err) = positio(&cmd);
        assert!(
            !ok && err.contains("is not the model this index was built with"),
            "{err}"
        );
    }
    // Corrupt files: named, with what is wrong.
    let generation = idx.join(std::fs::read_to_string(idx.join("CURRENT")).unwrap().trim());
    let vectors = generation.join("vectors.f32");
    let good = std::fs::read(&vectors).unwrap();
    std::fs::write(&vectors, &good[..100]).unwrap();
    let (ok, _, err) = positio(&["search".as_ref(), s(&idx), "--query".as_ref(), "x".as_ref()]);
    assert!(
        !ok && err.contains("vectors.f32: corrupt index: 100 bytes"),
        "{err}"
    );
    std::fs::write(&vectors, &good).unwrap();
    let manifest = generation.join("manifest.json");
    std::fs::write(&manifest, "{").unwrap();
    let (ok, _, err) = positio(&["search".as_ref(), s(&idx), "--query".as_ref(), "x".as_ref()]);
    assert!(
        !ok && err.contains("manifest.json: corrupt index manifest"),
        "{err}"
    );
    std::fs::write(idx.join("CURRENT"), "gen-000009\n").unwrap();
    let (ok, _, err) = positio(&["search".as_ref(), s(&idx), "--query".as_ref(), "x".as_ref()]);
    assert!(
        !ok && err.contains("generation gen-000009 is missing"),
        "{err}"
    );
    let (ok, _, err) = positio(&[
        "search".as_ref(),
        s(dir.as_ref()),
        "--query".as_ref(),
        "x".as_ref(),
    ]);
    assert!(!ok && err.contains("not a positio index"), "{err}");
}

#[test]
fn searches_run_during_add_and_a_killed_add_leaves_the_index_searchable() {
    let dir = tmp("index-concurrent");
    let idx = dir.as_ref().join("idx");
    build(&idx, "auto");
    let many = |prefix: &str, n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                (
                    format!("{prefix}{i}"),
                    format!(
                        "Report {i} on {prefix} markets: prices moved by {} points.",
                        i % 97
                    ),
                )
            })
            .collect()
    };
    let first = dir.as_ref().join("first.jsonl");
    write_corpus(&first, &many("bulk", 400));
    let add = |corpus: &Path| {
        positio_command()
            .args(["index", "add"])
            .arg(&idx)
            .arg("--corpus")
            .arg(corpus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut writer = add(&first);
    let mut searches = 0;
    while writer.try_wait().unwrap().is_none() {
        // Every search sees a whole index: the 24 documents before, or 424 after.
        let hits = search(&idx, "wheat exports", &["--mode", "bm25", "--top", "500"]);
        assert!(!hits.is_empty());
        let n = documents(&idx);
        assert!(n == 24 || n == 424, "{n} documents");
        searches += 1;
    }
    assert!(writer.wait().unwrap().success());
    assert!(searches > 0, "the add ended before any search ran");
    assert_eq!(documents(&idx), 424);
    // An add killed part-way: the index stays searchable with what it had (or, if the add
    // finished first, with all of it); the next write clears the leftover.
    let second = dir.as_ref().join("second.jsonl");
    write_corpus(&second, &many("late", 400));
    let mut writer = add(&second);
    std::thread::sleep(Duration::from_millis(1500));
    let _ = writer.kill();
    let _ = writer.wait();
    let n = documents(&idx);
    assert!(n == 424 || n == 824, "{n} documents");
    assert_eq!(
        search(&idx, "wheat exports Soviet", &["--top", "1"])[0].0,
        "wheat1"
    );
    let tiny = dir.as_ref().join("tiny.jsonl");
    write_corpus(&tiny, &[("one".into(), "One more document.".into())]);
    let out = run_ok(&[
        "index".as_ref(),
        "add".as_ref(),
        s(&idx),
        "--corpus".as_ref(),
        s(&tiny),
    ]);
    assert!(out.contains("\"added\":1"), "{out}");
    assert_eq!(documents(&idx), n + 1);
}

/// An `add` that cannot write its generation (the disk full: a file-size limit, so writes fail
/// with an I/O error) fails with a clear error and leaves the index as it was: the same
/// documents, the same hits, and the next write succeeds.
#[test]
fn an_add_on_a_full_disk_fails_cleanly_and_keeps_the_index() {
    let dir = tmp("index-full-disk");
    let idx = dir.as_ref().join("idx");
    build(&idx, "auto");
    let before = search(&idx, "wheat exports Soviet", &["--top", "5"]);
    let docs: Vec<(String, String)> = (0..300)
        .map(|i| {
            (
                format!("big{i}"),
                format!("Report {i} on grain markets and shipping rates."),
            )
        })
        .collect();
    let corpus = dir.as_ref().join("more.jsonl");
    write_corpus(&corpus, &docs);
    let args = [
        "index".as_ref(),
        "add".as_ref(),
        s(&idx),
        "--corpus".as_ref(),
        s(&corpus),
    ];
    let (ok, _, err) = positio_on_full_disk(&args, 64 * 1024);
    assert!(!ok, "the add cannot have been written");
    assert!(err.contains("File too large"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let generations = std::fs::read_dir(&idx)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("gen-")
        })
        .count();
    assert_eq!(generations, 1, "the failed generation is removed at once");
    assert_eq!(documents(&idx), 24);
    assert_eq!(
        search(&idx, "wheat exports Soviet", &["--top", "5"]),
        before
    );
    let out = run_ok(&args);
    assert!(out.contains("\"added\":300"), "{out}");
    assert_eq!(documents(&idx), 324);
}

#[test]
fn reranked_search_scores_as_crossencoder() {
    // scripts/reference/st_tiny_rerank.py: CrossEncoder's scores of a query against passages
    // of the fixture corpus (title and text, as the index stores them).
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("rerank_tiny/reference.json")).unwrap(),
    )
    .unwrap();
    let dir = tmp("index-rerank");
    let idx = dir.as_ref().join("idx");
    build(&idx, "auto");
    let query = reference["query"].as_str().unwrap();
    let reranker = fixture("rerank_tiny");
    let reranker = reranker.to_str().unwrap();
    let out = run_ok(&[
        "search".as_ref(),
        s(&idx),
        "--query".as_ref(),
        query.as_ref(),
        "--rerank".as_ref(),
        reranker.as_ref(),
        "--rerank-top".as_ref(),
        "24".as_ref(),
        "--top".as_ref(),
        "24".as_ref(),
    ]);
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let hits = line["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 24);
    let passages = reference["passages"].as_array().unwrap();
    let scores = reference["scores"].as_array().unwrap();
    let mut checked = 0;
    let mut last = f64::INFINITY;
    for h in hits {
        let passage = format!(
            "{} {}",
            h["title"].as_str().unwrap(),
            h["text"].as_str().unwrap()
        );
        let score = h["score"].as_f64().unwrap();
        assert!(score <= last, "reranked order");
        last = score;
        if let Some(i) = passages
            .iter()
            .position(|p| p.as_str() == Some(passage.trim()))
        {
            let theirs = scores[i].as_f64().unwrap();
            assert!(
                (score - theirs).abs() < 1e-4,
                "{passage}: {score} vs {theirs}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} passages are in the reference");
}

/// `answer` without a threshold: (template, confidence) of each dev question.
fn answers(args: &[&std::ffi::OsStr]) -> Vec<Value> {
    run_ok(args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn calibrate_picks_the_threshold_that_reaches_the_target_precision() {
    let dir = tmp("answer");
    let lib = fixture("answers/library.jsonl");
    let dev = fixture("answers/dev.jsonl");
    let m = minilm_dir();
    let cal = dir.as_ref().join("calibration.json");
    let out = run_ok(&[
        "calibrate".as_ref(),
        "--library".as_ref(),
        s(&lib),
        "--model".as_ref(),
        s(&m),
        "--dev".as_ref(),
        s(&dev),
        "--target-precision".as_ref(),
        "0.9".as_ref(),
        "--out".as_ref(),
        s(&cal),
    ]);
    assert!(out.starts_with("threshold "), "{out}");
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    let threshold = c["threshold"].as_f64().unwrap();
    // Recompute from the answers themselves: the chosen threshold reaches 0.9, and the next
    // lower confidence would not (or there is none).
    let questions: Vec<Value> = std::fs::read_to_string(&dev)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let texts: Vec<String> = questions
        .iter()
        .map(|q| q["text"].as_str().unwrap().to_string())
        .collect();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "answer".as_ref(),
        "--library".as_ref(),
        s(&lib),
        "--model".as_ref(),
        s(&m),
    ];
    for t in &texts {
        args.extend([std::ffi::OsStr::new("--text"), std::ffi::OsStr::new(t)]);
    }
    let given = answers(&args);
    let outcomes: Vec<(f64, bool)> = given
        .iter()
        .zip(&questions)
        .map(|(a, q)| {
            (
                a["confidence"].as_f64().unwrap(),
                a["template"] == q["answer"],
            )
        })
        .collect();
    let precision_at = |t: f64| {
        let answered: Vec<_> = outcomes.iter().filter(|o| o.0 >= t).collect();
        (
            answered.iter().filter(|o| o.1).count() as f64 / answered.len() as f64,
            answered.len(),
        )
    };
    let (p, n) = precision_at(threshold);
    assert!(p >= 0.9, "precision {p} at {threshold}");
    assert!((c["precision"].as_f64().unwrap() - p).abs() < 1e-12);
    assert_eq!(
        c["coverage"].as_f64().unwrap(),
        n as f64 / questions.len() as f64
    );
    for lower in outcomes.iter().map(|o| o.0).filter(|&x| x < threshold) {
        assert!(
            precision_at(lower).0 < 0.9,
            "{lower} would answer more at 0.9"
        );
    }
    // Every right template is found for the answerable questions (MiniLM knows these).
    let right = outcomes.iter().filter(|o| o.1).count();
    assert!(right >= 8, "{right} of 9 answerable questions right");
    // With the calibration: an off-topic question is handed over, a clear one answered.
    args.truncate(5);
    args.extend([
        "--calibration".as_ref(),
        s(&cal),
        "--text".as_ref(),
        "What is the capital of Australia?".as_ref(),
        "--text".as_ref(),
        "I forgot my password".as_ref(),
    ]);
    let decided = answers(&args);
    assert_eq!(decided[0]["no_match"], true, "{}", decided[0]);
    assert_eq!(
        (
            decided[1]["no_match"].clone(),
            decided[1]["template"].clone()
        ),
        (Value::Bool(false), "password".into())
    );
    assert_eq!(decided[1]["threshold"].as_f64(), Some(threshold));
    // A calibration of another model is refused.
    let other = fixture("st_tiny");
    let (ok, _, err) = positio(&[
        "answer".as_ref(),
        "--library".as_ref(),
        s(&lib),
        "--model".as_ref(),
        s(&other),
        "--calibration".as_ref(),
        s(&cal),
        "--text".as_ref(),
        "x".as_ref(),
    ]);
    assert!(!ok && err.contains("calibrated for model"), "{err}");
    // An unreachable target is an error, not a threshold.
    let (ok, _, err) = positio(&[
        "calibrate".as_ref(),
        "--library".as_ref(),
        s(&lib),
        "--model".as_ref(),
        s(&other),
        "--dev".as_ref(),
        s(&dev),
        "--target-precision".as_ref(),
        "1.5".as_ref(),
        "--out".as_ref(),
        s(&dir.as_ref().join("x.json")),
    ]);
    assert!(
        !ok && err.contains("--target-precision: must be in (0, 1]"),
        "{err}"
    );
}

/// `answer --router`: each question goes to its intent's templates when the router is sure
/// enough, an intent without templates is handed over, and the router joins the calibration.
#[test]
fn a_router_sends_questions_to_their_intents_templates() {
    let dir = tmp("router");
    let embedder = fixture("st_tiny");
    let router = fixture("hf_tiny_classify/single");
    // The router's labels are negative / neutral / positive: "positive" has no templates.
    let library = std::fs::read_to_string(fixture("answers/library_intents.jsonl")).unwrap();
    let intent_of = |template: &str| -> String {
        library
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|t| t["id"] == template)
            .map(|t| t["intent"].as_str().unwrap().to_string())
            .unwrap()
    };
    let lib = dir.as_ref().join("library.jsonl");
    std::fs::write(&lib, &library).unwrap();
    let questions: Vec<String> = std::fs::read_to_string(fixture("answers/dev.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .into()
        })
        .collect();
    let with_texts = |mut args: Vec<std::ffi::OsString>| {
        for q in &questions {
            args.extend(["--text".into(), q.into()]);
        }
        args
    };
    // What the router says of each question, by `predict classify`.
    let predicted: Vec<Value> = run_ok(
        &with_texts(vec![
            "predict".into(),
            "classify".into(),
            "--model".into(),
            router.clone().into(),
        ])
        .iter()
        .map(|a| a.as_os_str())
        .collect::<Vec<_>>(),
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let answer_with = |lib: &Path, extra: &[&str]| -> Vec<Value> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "answer".into(),
            "--library".into(),
            lib.into(),
            "--model".into(),
            embedder.clone().into(),
        ];
        args.extend(extra.iter().map(|a| a.into()));
        answers(
            &with_texts(args)
                .iter()
                .map(|a| a.as_os_str())
                .collect::<Vec<_>>(),
        )
    };
    let answer = |extra: &[&str]| answer_with(&lib, extra);
    let r = router.to_str().unwrap();
    let routed = answer(&["--router", r, "--route-min", "0"]);
    for ((a, p), q) in routed.iter().zip(&predicted).zip(&questions) {
        let label = p["label"].as_str().unwrap();
        assert_eq!(a["intent"]["label"], label, "{q}: {a}");
        assert_eq!(a["intent"]["routed"], true, "{a}");
        let top = p["scores"][0]["score"].as_f64().unwrap();
        assert!((a["intent"]["probability"].as_f64().unwrap() - top).abs() < 1e-5);
        match a["template"].as_str() {
            Some(t) => assert_eq!(intent_of(t), label, "{q}: {a}"),
            None => {
                assert_eq!(label, "positive", "{q}: {a}");
                assert_eq!(a["no_match"], true);
            }
        }
    }
    // Routing changes answers: some questions lose their unrouted template to their intent's.
    let plain = answer(&[]);
    let changed = routed
        .iter()
        .zip(&plain)
        .filter(|(a, b)| a["template"] != b["template"])
        .count();
    assert!(changed > 0, "routing changed no answer");
    // An intent without templates is handed over: move every template off the first
    // question's intent.
    let first = predicted[0]["label"].as_str().unwrap();
    let other = ["negative", "neutral", "positive"]
        .into_iter()
        .find(|l| *l != first)
        .unwrap();
    let moved = dir.as_ref().join("moved.jsonl");
    let text: String = library
        .lines()
        .map(|l| {
            let mut t: Value = serde_json::from_str(l).unwrap();
            t["intent"] = other.into();
            format!("{t}\n")
        })
        .collect();
    std::fs::write(&moved, text).unwrap();
    for (a, p) in answer_with(&moved, &["--router", r, "--route-min", "0"])
        .iter()
        .zip(&predicted)
    {
        if p["label"] == first {
            assert_eq!(
                (&a["template"], &a["no_match"]),
                (&Value::Null, &Value::Bool(true)),
                "{a}"
            );
        } else {
            assert!(a["template"].is_string(), "{a}");
        }
    }
    // A router never sure enough routes nothing: the answers are the library's own.
    let unrouted = answer(&["--router", r, "--route-min", "1"]);
    for (u, p) in unrouted.iter().zip(&plain) {
        assert_eq!(u["template"], p["template"]);
        assert_eq!(u["intent"]["routed"], false);
        assert!(p.get("intent").is_none());
    }
    // The calibration records the router: one made without it is refused with it.
    let cal = dir.as_ref().join("cal.json");
    let dev = dir.as_ref().join("dev.jsonl");
    let rows: String = questions
        .iter()
        .zip(&plain)
        .map(|(q, a)| {
            format!(
                "{}\n",
                serde_json::json!({"text": q, "answer": a["template"]})
            )
        })
        .collect();
    std::fs::write(&dev, rows).unwrap();
    let calibrate = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "calibrate".as_ref(),
            "--library".as_ref(),
            s(&lib),
            "--model".as_ref(),
            s(&embedder),
            "--dev".as_ref(),
            s(&dev),
            "--target-precision".as_ref(),
            "0.5".as_ref(),
            "--out".as_ref(),
            s(&cal),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        run_ok(&args)
    };
    calibrate(&[]);
    let (ok, _, err) = positio(&[
        "answer",
        "--library",
        lib.to_str().unwrap(),
        "--model",
        embedder.to_str().unwrap(),
        "--router",
        r,
        "--calibration",
        cal.to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert!(!ok && err.contains("and no router"), "{err}");
    calibrate(&["--router", r, "--route-min", "0"]);
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    assert_eq!(c["router"][1].as_f64(), Some(0.0), "{c}");
    // Every template needs an intent the router knows.
    std::fs::write(&lib, library.replace("\"neutral\"", "\"billing\"")).unwrap();
    let (ok, _, err) = positio(&[
        "answer",
        "--library",
        lib.to_str().unwrap(),
        "--model",
        embedder.to_str().unwrap(),
        "--router",
        r,
        "--text",
        "x",
    ]);
    assert!(
        !ok && err.contains("has intent \"billing\", which is not a label of"),
        "{err}"
    );
}

/// `mine-negatives --index`: each pair's negatives are the index's best documents for its
/// anchor (by the mode asked), its own answer passed over.
#[test]
fn mine_negatives_takes_the_index_best_documents_but_the_answer() {
    let dir = tmp("mine-index");
    let idx = dir.as_ref().join("idx");
    build(&idx, "exact");
    let pairs = dir.as_ref().join("pairs.jsonl");
    let rows = [
        (
            "Why did crude oil prices go up?",
            "Oil prices Crude oil prices rose sharply after OPEC agreed to cut production.",
        ),
        (
            "wheat sales to the Soviet Union",
            "Wheat exports The Agriculture Department raised its estimate of wheat exports to the Soviet Union.",
        ),
    ];
    let text: String = rows
        .iter()
        .map(|(a, p)| serde_json::json!({"anchor": a, "positive": p}).to_string() + "\n")
        .collect();
    std::fs::write(&pairs, text).unwrap();
    for mode in ["dense", "bm25", "hybrid"] {
        let out = dir.as_ref().join(format!("{mode}.jsonl"));
        run_ok(&[
            "mine-negatives".as_ref(),
            "--index".as_ref(),
            s(&idx),
            "--mode".as_ref(),
            mode.as_ref(),
            "--train".as_ref(),
            s(&pairs),
            "--count".as_ref(),
            "2".as_ref(),
            "--skip".as_ref(),
            "1".as_ref(),
            "--out".as_ref(),
            s(&out),
        ]);
        let mined: Vec<Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(mined.len(), rows.len());
        for (row, (anchor, positive)) in mined.iter().zip(rows) {
            // The search's passages, the answer left out, one skipped, two taken.
            let found = run_ok(&[
                "search".as_ref(),
                s(&idx),
                "--query".as_ref(),
                anchor.as_ref(),
                "--mode".as_ref(),
                mode.as_ref(),
                "--top".as_ref(),
                "6".as_ref(),
            ]);
            let line: Value = serde_json::from_str(found.lines().next().unwrap()).unwrap();
            let expected: Vec<String> = line["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    format!(
                        "{} {}",
                        h["title"].as_str().unwrap(),
                        h["text"].as_str().unwrap()
                    )
                    .trim()
                    .to_string()
                })
                .filter(|p| p != positive)
                .skip(1)
                .take(2)
                .collect();
            assert_eq!(row["anchor"], anchor);
            assert_eq!(
                row["negative"],
                serde_json::json!(expected),
                "{mode}: {row}"
            );
        }
    }
    // Model and index are one or the other; --store needs --index.
    let (ok, _, err) = positio(&[
        "mine-negatives".as_ref(),
        "--train".as_ref(),
        s(&pairs),
        "--out".as_ref(),
        s(&dir.as_ref().join("x.jsonl")),
        "--store".as_ref(),
        "postgres://x@127.0.0.1/db".as_ref(),
    ]);
    assert!(!ok, "{err}");
}
