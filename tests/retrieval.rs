//! Retrieval: the measures against pytrec_eval (trec_eval) on a committed run with ties, graded
//! judgements and queries on one side only; `positio eval retrieval` end to end with
//! all-MiniLM-L6-v2 on a small BEIR directory (its run scored again by pytrec_eval, its JSON
//! keys, its errors on bad input).

mod common;
use common::*;

use positio::data::beir;
use positio::data::trec::Run;
use positio::tasks::retrieval::metrics;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// pytrec_eval's per-query measures (scripts/reference/trec_measures.py).
fn pytrec_eval(run: &Path, qrels: &Path) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/reference/trec_measures.py"))
        .args([run, qrels])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pytrec_eval failed (pip install pytrec-eval-terrier): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// positio's per-query measures equal pytrec_eval's on every query both score.
fn assert_same_as_pytrec_eval(run_path: &Path, qrels_path: &Path) -> metrics::RetrievalReport {
    let run = Run::read(run_path).unwrap();
    let qrels = beir::read_qrels(qrels_path).unwrap();
    let ours = metrics::evaluate(&run, &qrels);
    let reference = pytrec_eval(run_path, qrels_path);
    let reference = reference.as_object().unwrap();
    assert_eq!(ours.queries, reference.len(), "queries scored");
    for (q, theirs) in reference {
        let mine = serde_json::to_value(ours.per_query[q]).unwrap();
        for (name, v) in theirs.as_object().unwrap() {
            let (a, b) = (mine[name].as_f64().unwrap(), v.as_f64().unwrap());
            assert!(
                (a - b).abs() < 1e-9,
                "query {q} {name}: positio {a}, pytrec_eval {b}"
            );
        }
    }
    ours
}

#[test]
fn measures_equal_pytrec_eval_on_a_run_with_ties() {
    let report = assert_same_as_pytrec_eval(
        &fixture("retrieval/run.trec"),
        &fixture("retrieval/qrels.tsv"),
    );
    // The fixture's queries q00, q01 have no judgements and q30, q31 no results: 22 in both.
    assert_eq!(report.queries, 22);
    let m = report.mean;
    assert!(m.recall_at_100 > m.recall_at_10, "{m:?}");
    assert!(m.ndcg_at_10 > 0.0 && m.map_at_100 > 0.0, "{m:?}");
}

#[test]
fn eval_retrieval_end_to_end_with_minilm() {
    let dir = tmp("eval-retrieval");
    let (run, json) = (
        dir.as_ref().join("run.trec"),
        dir.as_ref().join("report.json"),
    );
    let data = fixture("retrieval/beir");
    let (ok, stdout, stderr) = positio(&[
        "eval".as_ref(),
        "retrieval".as_ref(),
        "--model".as_ref(),
        minilm_dir().as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--top".as_ref(),
        "10".as_ref(),
        "--run".as_ref(),
        run.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("24 documents, 11 queries"), "{stdout}");
    let report = assert_same_as_pytrec_eval(&run, &data.join("qrels/test.tsv"));
    let text = std::fs::read_to_string(&run).unwrap();
    assert_eq!(text.lines().count(), 11 * 10, "top 10 of 11 judged queries");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("q1 Q0 ") && first.contains(" 1 ") && first.ends_with(" positio"),
        "{first}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"] {
        let v = saved[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key} in {saved}"));
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert_eq!(saved["queries"], 11);
    assert_eq!(saved["ndcg@10"].as_f64().unwrap(), report.mean.ndcg_at_10);
    // An untuned MiniLM finds these: a failure here means the embeddings or the search broke.
    assert!(report.mean.ndcg_at_10 > 0.8, "{:?}", report.mean);
    assert!(report.mean.mrr_at_10 > 0.8, "{:?}", report.mean);
}

#[test]
fn eval_retrieval_refuses_bad_input_naming_file_and_line() {
    let dir = tmp("bad-beir");
    let beir = dir.as_ref();
    for name in ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"] {
        let to = beir.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture("retrieval/beir").join(name), to).unwrap();
    }
    let qrels = beir.join("qrels/test.tsv");
    let good = std::fs::read_to_string(&qrels).unwrap();
    std::fs::write(&qrels, good.clone() + "q1\tnowhere\t1\n").unwrap();
    let args = |run: &Path| {
        vec![
            "eval".into(),
            "retrieval".into(),
            "--model".into(),
            minilm_dir().into_os_string(),
            "--data".into(),
            beir.as_os_str().to_owned(),
            "--run".into(),
            run.as_os_str().to_owned(),
        ]
    };
    let run = beir.join("run.trec");
    let (ok, _, stderr) = positio(&args(&run));
    assert!(!ok);
    let line = good.lines().count() + 1;
    assert!(
        stderr.contains(&format!(
            "test.tsv:{line}: document \"nowhere\" is not in corpus.jsonl"
        )),
        "{stderr}"
    );
    assert!(!run.exists(), "nothing is written for bad input");
    std::fs::write(&qrels, good).unwrap();
    std::fs::write(
        beir.join("queries.jsonl"),
        "{\"_id\": \"q1\", \"text\": \"oil\"}\n{\"text\": \"x\"}\n",
    )
    .unwrap();
    let (ok, _, stderr) = positio(&args(&run));
    assert!(!ok);
    assert!(stderr.contains("queries.jsonl:2: no \"_id\""), "{stderr}");
    let mut zero = args(&run);
    zero.extend(["--top".into(), "0".into()]);
    let (ok, _, stderr) = positio(&zero);
    assert!(!ok);
    assert!(stderr.contains("--top: must be at least 1"), "{stderr}");
}

/// `positio embed` on a directory `finetune embed` wrote equals what sentence-transformers
/// computed with it (tests/fixtures/st_tiny, scripts/reference/st_tiny_embed.py).
#[test]
fn finetuned_directory_embeds_as_sentence_transformers_does() {
    let dir = fixture("st_tiny");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let mut args = vec!["embed".to_string(), dir.display().to_string()];
    for t in reference["texts"].as_array().unwrap() {
        args.extend(["--text".to_string(), t.as_str().unwrap().to_string()]);
    }
    let (ok, stdout, stderr) = positio(&args);
    assert!(ok, "{stderr}");
    let ours = embeddings_of(&stdout);
    let theirs = reference["embeddings"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(theirs) {
        let b: Vec<f64> = b
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            max_abs_diff(a, &b) <= 1e-4,
            "positio {a:?}\nsentence-transformers {b:?}"
        );
    }
}

/// Pairs of the small BEIR fixture: each query with its best document.
fn fixture_pairs(path: &Path) {
    let data = beir::read(&fixture("retrieval/beir"), "test").unwrap();
    let mut out = String::new();
    for q in &data.queries {
        for (d, &grade) in &data.qrels[&q.id] {
            if grade == 2 {
                let doc = data.corpus.iter().find(|x| &x.id == d).unwrap();
                let row = serde_json::json!({"anchor": q.text, "positive": doc.passage()});
                out.push_str(&format!("{row}\n"));
            }
        }
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn finetune_embed_writes_a_sentence_transformers_directory_and_resumes_exactly() {
    let dir = tmp("finetune-embed");
    let pairs = dir.as_ref().join("pairs.jsonl");
    fixture_pairs(&pairs);
    let base = fixture("st_tiny");
    let (full, split) = (dir.as_ref().join("full"), dir.as_ref().join("split"));
    let args = |out: &Path, epochs: &str| -> Vec<String> {
        [
            "finetune",
            "embed",
            "--model",
            &base.display().to_string(),
            "--train",
            &pairs.display().to_string(),
            "--dev",
            &fixture("retrieval/beir").display().to_string(),
            "--dev-split",
            "test",
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
            "--epochs",
            epochs,
            "--save-every",
            "1",
            "--keep-checkpoints",
            "9",
            "--out",
            &out.display().to_string(),
        ]
        .map(String::from)
        .to_vec()
    };
    let (ok, _, stderr) = positio(&args(&full, "2"));
    assert!(ok, "{stderr}");
    let log = std::fs::read_to_string(full.join("metrics.jsonl")).unwrap();
    assert!(log.contains("\"ndcg@10\""), "{log}");
    // The files sentence-transformers reads, as in the fixture it loaded.
    for name in [
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
    ] {
        assert_eq!(
            std::fs::read_to_string(full.join(name)).unwrap(),
            std::fs::read_to_string(base.join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(full.join("2_Normalize").is_dir());
    // Resumed from the checkpoint after step 4 (of 6, mid-epoch 2): the same run to the bit.
    let copy = |from: &Path, to: &Path| {
        for entry in walk(from) {
            let target = to.join(entry.strip_prefix(from).unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&entry, target).unwrap();
        }
    };
    copy(&full, &split);
    for step in [5, 6] {
        std::fs::remove_dir_all(split.join(format!("checkpoints/step-{step:08}"))).unwrap();
    }
    std::fs::write(split.join("checkpoints/latest"), "step-00000004\n").unwrap();
    std::fs::remove_file(split.join("model.safetensors")).unwrap();
    let mut resume = args(&split, "2");
    resume.push("--resume".into());
    let (ok, _, stderr) = positio(&resume);
    assert!(ok, "{stderr}");
    let last_val = |run: &Path| {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .rfind(|l| l.contains("\"val\""))
            .unwrap()
            .to_string()
    };
    assert_eq!(last_val(&full), last_val(&split));
    assert_eq!(
        std::fs::read(full.join("model.safetensors")).unwrap(),
        std::fs::read(split.join("model.safetensors")).unwrap()
    );
    // A bad training file is refused before the run directory exists.
    std::fs::write(&pairs, "{\"anchor\": \"q\"}\n").unwrap();
    let fresh = dir.as_ref().join("fresh");
    let (ok, _, stderr) = positio(&args(&fresh, "1"));
    assert!(!ok);
    assert!(
        stderr.contains("pairs.jsonl:1: no \"positive\""),
        "{stderr}"
    );
    assert!(!fresh.exists());
}

/// A copy of the model directory `from` in `to`/model with dropout off (its losses are then
/// deterministic functions of the weights).
fn without_dropout(from: &Path, to: &Path) -> PathBuf {
    let model = to.join("model");
    for file in walk(from) {
        let target = model.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, target).unwrap();
    }
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    let config = config
        .replace(
            "\"hidden_dropout_prob\": 0.1",
            "\"hidden_dropout_prob\": 0.0",
        )
        .replace(
            "\"attention_probs_dropout_prob\": 0.1",
            "\"attention_probs_dropout_prob\": 0.0",
        );
    assert!(config.contains("\"hidden_dropout_prob\": 0.0"), "{config}");
    std::fs::write(model.join("config.json"), config).unwrap();
    model
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The first step's loss (before any update, dropout off) on one batch of pairs with hard
/// negatives equals sentence-transformers' MultipleNegativesRankingLoss on the same model and
/// texts (tests/fixtures/st_tiny/mnrl_reference.json).
#[test]
fn contrastive_loss_equals_sentence_transformers_with_hard_negatives() {
    let st = fixture("st_tiny");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(st.join("mnrl_reference.json")).unwrap())
            .unwrap();
    let dir = tmp("mnrl-loss");
    let model = without_dropout(&st, dir.as_ref());
    let pairs = dir.as_ref().join("hard.jsonl");
    let rows: Vec<String> = reference["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    std::fs::write(&pairs, rows.join("\n") + "\n").unwrap();
    let out = dir.as_ref().join("run");
    let (ok, _, stderr) = positio(&[
        "finetune",
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--train",
        pairs.to_str().unwrap(),
        "--batch-size",
        "64",
        "--steps",
        "1",
        "--log-every",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let (ours, theirs) = (
        first["loss"].as_f64().unwrap(),
        reference["loss"].as_f64().unwrap(),
    );
    assert!(
        (ours - theirs).abs() < 1e-4 * theirs,
        "positio {ours}, sentence-transformers {theirs}"
    );

    // mine-negatives gives each pair other answers of the file, never its own.
    let mined = dir.as_ref().join("mined.jsonl");
    let (ok, _, stderr) = positio(&[
        "mine-negatives",
        "--model",
        model.to_str().unwrap(),
        "--train",
        pairs.to_str().unwrap(),
        "--count",
        "2",
        "--skip",
        "1",
        "--out",
        mined.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let answers: Vec<String> = reference["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["positive"].as_str().unwrap().to_string())
        .collect();
    let text = std::fs::read_to_string(&mined).unwrap();
    assert_eq!(text.lines().count(), answers.len());
    for line in text.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let negatives = row["negative"].as_array().unwrap();
        assert_eq!(negatives.len(), 2, "{row}");
        for n in negatives {
            assert_ne!(n, &row["positive"]);
            assert!(
                answers.iter().any(|a| a == n.as_str().unwrap()),
                "{n} is not an answer of the file"
            );
        }
    }
}

/// The gradient cache (`--mini-batch`) trains to the same weights as the whole batch at once.
#[test]
fn gradient_cache_gives_the_whole_batch_gradients() {
    let st = fixture("st_tiny");
    let dir = tmp("grad-cache");
    let st = without_dropout(&st, dir.as_ref());
    let pairs = dir.as_ref().join("pairs.jsonl");
    fixture_pairs(&pairs);
    let run = |name: &str, mini: &str| {
        let out = dir.as_ref().join(name);
        let (ok, _, stderr) = positio(&[
            "finetune",
            "embed",
            "--model",
            st.to_str().unwrap(),
            "--train",
            pairs.to_str().unwrap(),
            "--batch-size",
            "12",
            "--mini-batch",
            mini,
            "--steps",
            "2",
            "--lr",
            "1e-3",
            "--log-every",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
        let weights = positio::hf::Checkpoint::open(&out).unwrap().weights;
        let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        let losses: Vec<f64> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|v| v["loss"].as_f64())
            .collect();
        (weights, losses)
    };
    let (whole, whole_losses) = run("whole", "0");
    let (cached, cached_losses) = run("cached", "5");
    assert_eq!(whole_losses.len(), 2);
    for (a, b) in whole_losses.iter().zip(&cached_losses) {
        assert!(
            (a - b).abs() < 1e-4,
            "losses {whole_losses:?} vs {cached_losses:?}"
        );
    }
    let mut compared = 0;
    for name in whole.names() {
        let values = |w: &positio::hf::weights::Weights| {
            w.get(&name)
                .unwrap()
                .clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (a, b) = (values(&whole), values(&cached));
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{name}: weights differ by {diff}");
        compared += 1;
    }
    assert!(compared > 10);
}

/// A reranker written by `finetune rerank` scores as sentence-transformers' CrossEncoder does
/// (tests/fixtures/rerank_tiny, scripts/reference/st_tiny_rerank.py), and `eval retrieval
/// --rerank` puts each query's first documents in the reranker's order.
#[test]
fn reranker_scores_as_cross_encoder_and_reorders_the_run() {
    let dir = fixture("rerank_tiny");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let reranker = positio::tasks::rerank::Reranker::load(&dir, &cpu()).unwrap();
    let passages: Vec<String> = reference["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let ours = reranker
        .scores(reference["query"].as_str().unwrap(), &passages, 7)
        .unwrap();
    for (a, b) in ours.iter().zip(reference["scores"].as_array().unwrap()) {
        let b = b.as_f64().unwrap();
        assert!(
            (f64::from(*a) - b).abs() < 1e-5,
            "positio {a}, CrossEncoder {b}"
        );
    }
    // A CrossEncoder saved without `problem_type`: the same sigmoid scores, not a softmax
    // over its one logit.
    let bare = tmp("rerank-bare");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, bare.join(path.file_name().unwrap())).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("problem_type");
    std::fs::write(bare.join("config.json"), config.to_string()).unwrap();
    let bare = positio::tasks::rerank::Reranker::load(&bare, &cpu()).unwrap();
    let theirs = bare
        .scores(reference["query"].as_str().unwrap(), &passages, 7)
        .unwrap();
    assert_eq!(theirs, ours);

    let scratch = tmp("rerank");
    let run = scratch.as_ref().join("run.trec");
    let st = fixture("st_tiny");
    let (ok, stdout, stderr) = positio(&[
        "eval",
        "retrieval",
        "--model",
        st.to_str().unwrap(),
        "--data",
        fixture("retrieval/beir").to_str().unwrap(),
        "--rerank",
        dir.to_str().unwrap(),
        "--rerank-top",
        "5",
        "--top",
        "10",
        "--run",
        run.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("the first 5 reranked"), "{stdout}");
    let data = beir::read(&fixture("retrieval/beir"), "test").unwrap();
    let reranked = Run::read(&run).unwrap();
    for q in &data.queries {
        let docs = &reranked.queries[&q.id];
        let head: Vec<String> = docs[..5]
            .iter()
            .map(|(d, _)| data.corpus.iter().find(|x| &x.id == d).unwrap().passage())
            .collect();
        let scores = reranker.scores(&q.text, &head, 8).unwrap();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{}: {scores:?}",
            q.id
        );
        assert!(
            docs[4].1 > docs[5].1,
            "reranked documents stay above the rest"
        );
    }

    // Fine-tuning one from a sentence-transformers model: a one-label classifier.
    let pairs = scratch.as_ref().join("pairs.jsonl");
    fixture_pairs(&pairs);
    let out = scratch.as_ref().join("reranker");
    let (ok, _, stderr) = positio(&[
        "finetune",
        "rerank",
        "--model",
        st.to_str().unwrap(),
        "--train",
        pairs.to_str().unwrap(),
        "--batch-size",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let r = positio::tasks::rerank::Reranker::load(&out, &cpu()).unwrap();
    assert_eq!(r.scores("oil", &["crude".to_string()], 1).unwrap().len(), 1);
    let (ok, _, stderr) = positio(&[
        "eval",
        "retrieval",
        "--model",
        st.to_str().unwrap(),
        "--data",
        fixture("retrieval/beir").to_str().unwrap(),
        "--rerank",
        st.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("config.json"),
        "an embedding model is not a reranker: {stderr}"
    );
}
