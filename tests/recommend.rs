//! News recommendation: MIND's measures against its official evaluate.py and scikit-learn on
//! committed cases (scripts/reference/mind_metrics.py); `finetune recommend` on a tiny click
//! log end to end (it learns, resumes exactly across an epoch's history-cache refresh, keeps
//! the encoder where the mode says; a frozen run's development measures are eval's), `eval
//! recommend` (its JSON equals the run's best development AUC, its submission file ranks every
//! candidate, it scores by the run's score pooling or the one asked for), `positio recommend`
//! (its cache file made once and reused) and bad input.

mod common;
use common::*;

use positio::hf::Weights;
use positio::tasks::recommend::metrics;
use std::path::Path;

#[test]
fn measures_equal_mind_evaluate_and_scikit_learn() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mind/metrics_cases.json"),
    )
    .unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut ranked = 0;
    for (i, case) in cases.iter().enumerate() {
        let labels: Vec<u8> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let scores: Vec<f32> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let close = |name: &str, ours: f64| {
            let theirs = case[name].as_f64().unwrap();
            assert!(
                (ours - theirs).abs() < 1e-9,
                "case {i} {name}: positio {ours}, reference {theirs}"
            );
        };
        close("auc", metrics::auc(&labels, &scores).unwrap());
        if case.get("mrr").is_some() {
            close("mrr", metrics::mrr(&labels, &scores));
            close("ndcg5", metrics::ndcg(&labels, &scores, 5));
            close("ndcg10", metrics::ndcg(&labels, &scores, 10));
            ranked += 1;
        }
    }
    assert!(cases.len() > 50 && ranked > 30, "{} cases", cases.len());
}

fn metrics_lines(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tensor(dir: &Path, name: &str) -> Vec<f32> {
    let w = Weights::load(&dir.join("model.safetensors")).unwrap();
    w.get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .clone()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

#[test]
fn finetune_resume_eval_and_recommend_end_to_end() {
    let dir = tmp("recommend");
    let run = dir.as_ref().join("run");
    // 48 impressions in batches of 8: 6 steps an epoch; 5 epochs.
    let extra = ["--epochs", "5", "--save-every", "4"];
    let stdout = train_tiny_recommender(&run, &extra);
    assert!(stdout.contains("validation: auc"), "{stdout}");
    assert!(run.join("recommend.json").exists());

    // It learns: the last steps' loss well below the first's, and users' topics are found.
    let lines = metrics_lines(&run);
    let train: Vec<f64> = lines
        .iter()
        .filter(|v| v["split"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    let (first, last) = (train[0], train[train.len() - 6..].iter().sum::<f64>() / 6.0);
    assert!(last < first - 0.3, "loss {first} → {last}");
    let best_auc = lines
        .iter()
        .filter(|v| v["split"] == "val")
        .map(|v| v["auc"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(best_auc > 0.9, "development auc {best_auc}");

    // Killed after its step-8 checkpoint (in the second epoch, whose history cache it must
    // restore) and resumed: the same final weights.
    let resumed = dir.as_ref().join("resumed");
    let args = tiny_recommender_args(&resumed, &extra);
    kill_after_checkpoint(&args, &resumed, 8);
    let mut again = args.clone();
    again.push("--resume".into());
    let (ok, out, err) = positio(&again);
    assert!(ok, "{out}\n{err}");
    assert!(
        std::fs::read(run.join("model.safetensors")).unwrap()
            == std::fs::read(resumed.join("model.safetensors")).unwrap(),
        "a resumed run ends with other weights"
    );

    // eval: the best development AUC again, through the same scoring; MIND's submission file.
    let dev = mind_fixture("dev");
    let (json, preds) = (dir.as_ref().join("r.json"), dir.as_ref().join("p.txt"));
    let (ok, out, err) = positio(&[
        "eval",
        "recommend",
        "--model",
        run.to_str().unwrap(),
        "--data",
        dev.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("auc ") && out.contains("12 impressions"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["auc", "mrr", "ndcg@5", "ndcg@10"] {
        assert!(report[key].is_f64(), "{key} in {report}");
    }
    assert!(
        (report["auc"].as_f64().unwrap() - best_auc).abs() < 1e-5,
        "{report} vs {best_auc}"
    );
    // The submission ranks every candidate of each impression once; its ranks, read as
    // scores, give the same AUC (no ties among the scores of this model).
    let behaviors = std::fs::read_to_string(dev.join("behaviors.tsv")).unwrap();
    let submission = std::fs::read_to_string(&preds).unwrap();
    let mut auc_sum = 0.0;
    for (b, p) in behaviors.lines().zip(submission.lines()) {
        let cols: Vec<&str> = b.split('\t').collect();
        let (id, ranks) = p.split_once(' ').unwrap();
        assert_eq!(id, cols[0]);
        let ranks: Vec<usize> = ranks
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|r| r.parse().unwrap())
            .collect();
        let labels: Vec<u8> = cols[4]
            .split(' ')
            .map(|c| c.ends_with("-1") as u8)
            .collect();
        let mut sorted = ranks.clone();
        sorted.sort();
        assert_eq!(sorted, (1..=labels.len()).collect::<Vec<_>>(), "{p}");
        let as_scores: Vec<f32> = ranks.iter().map(|&r| -(r as f32)).collect();
        auc_sum += metrics::auc(&labels, &as_scores).unwrap();
    }
    assert_eq!(submission.lines().count(), 12);
    assert!((auc_sum / 12.0 - report["auc"].as_f64().unwrap()).abs() < 1e-9);

    // positio recommend: candidates ranked, or the top of all news; vectors cached once.
    let news = dev.join("news.tsv");
    let recommend = |extra: &[&str]| {
        let mut args = vec![
            "recommend",
            "--model",
            run.to_str().unwrap(),
            "--news",
            news.to_str().unwrap(),
        ];
        args.extend(extra);
        positio(&args)
    };
    let parse = |out: &str| -> Vec<serde_json::Value> {
        // Every line is a result (progress goes to standard error).
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    };
    let (ok, out, err) = recommend(&["--history", "D1 D2", "--candidates", "D3 D17 D9"]);
    assert!(ok, "{out}\n{err}");
    let ranked = parse(&out);
    let ids: Vec<&str> = ranked.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ranked.len(), 3);
    assert_eq!(
        ids[0], "D3",
        "the candidate of the history's topic first: {ids:?}"
    );
    let cache_dir = run.join("news_vectors");
    let caches: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().collect();
    assert_eq!(caches.len(), 1);
    let cache = caches[0].as_ref().unwrap().path();
    let made = std::fs::metadata(&cache).unwrap().modified().unwrap();
    let (ok, out, err) = recommend(&["--history", "D1 D2", "--top", "4"]);
    assert!(ok, "{out}\n{err}");
    let top = parse(&out);
    assert_eq!(top.len(), 4);
    assert!(
        top.iter().all(|r| r["id"] != "D1" && r["id"] != "D2"),
        "{out}"
    );
    assert!(top
        .windows(2)
        .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()));
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        made,
        "the cache was rewritten"
    );
    let (ok, _, err) = recommend(&["--history", "D1 X9"]);
    assert!(
        !ok && err.contains("history: news id \"X9\" is not in the news file"),
        "{err}"
    );

    // A run trained with attention scores by the mean of the history's news vectors (the
    // cached unit rows) unless recommend.json's score_pooling says otherwise.
    let settings = run.join("recommend.json");
    let head = std::fs::read_to_string(&settings).unwrap();
    assert!(
        head.contains("\"user_pooling\": \"attention\"")
            && head.contains("\"score_pooling\": \"mean\""),
        "{head}"
    );
    let bytes = std::fs::read(&cache).unwrap();
    let dim = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let rows: Vec<f32> = bytes[64..]
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let order: Vec<String> = std::fs::read_to_string(&news)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    let row = |id: &str| {
        let i = order.iter().position(|n| n == id).unwrap();
        &rows[i * dim..(i + 1) * dim]
    };
    let (d1, d2) = (row("D1"), row("D2"));
    for by_mean in &ranked {
        let id = by_mean["id"].as_str().unwrap();
        let c = row(id);
        let expected: f64 = 20.0
            * (0..dim)
                .map(|k| f64::from((d1[k] + d2[k]) / 2.0 * c[k]))
                .sum::<f64>();
        let score = by_mean["score"].as_f64().unwrap();
        assert!(
            (score - expected).abs() < 5e-5,
            "{id}: {score} vs {expected}"
        );
    }
    // Switched to the attention, or as an older positio wrote it (no score_pooling: it scores
    // as it trained), the scores move, both the same way. (This tiny model's attention is nearly
    // uniform over two clicks: its scores differ from the mean's by 7e-4, well outside the
    // tolerance above.)
    let scores = |out: &str| -> Vec<(String, f64)> {
        parse(out)
            .iter()
            .map(|r| (r["id"].to_string(), r["score"].as_f64().unwrap()))
            .collect()
    };
    let mut by_attention = Vec::new();
    for switched in [
        head.replace(
            "\"score_pooling\": \"mean\"",
            "\"score_pooling\": \"attention\"",
        ),
        head.replace(",\n  \"score_pooling\": \"mean\"", ""),
    ] {
        assert_ne!(switched, head);
        std::fs::write(&settings, &switched).unwrap();
        let (ok, out, err) = recommend(&["--history", "D1 D2", "--candidates", "D3 D17 D9"]);
        assert!(ok, "{out}\n{err}");
        by_attention.push(scores(&out));
    }
    assert_eq!(by_attention[0], by_attention[1]);
    let moved = ranked
        .iter()
        .map(|r| {
            let (id, s) = (r["id"].to_string(), r["score"].as_f64().unwrap());
            let other = by_attention[0].iter().find(|(i, _)| *i == id).unwrap().1;
            (s - other).abs()
        })
        .fold(0.0f64, f64::max);
    assert!(moved > 2e-4, "the attention's scores again ({moved})");
}

#[test]
fn encoder_modes_train_what_they_say() {
    let dir = tmp("modes");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/st_tiny");
    let before = |name: &str| tensor(&base, name);
    let frozen = dir.as_ref().join("frozen");
    train_tiny_recommender(&frozen, &["--steps", "4", "--encoder", "frozen"]);
    let top = dir.as_ref().join("top");
    train_tiny_recommender(&top, &["--steps", "4", "--encoder", "top-1"]);
    let layer = |i: usize| format!("encoder.layer.{i}.attention.self.query.weight");
    let emb = "embeddings.word_embeddings.weight";
    assert_eq!(
        tensor(&frozen, &format!("bert.{}", layer(1))),
        before(&layer(1))
    );
    assert_eq!(tensor(&frozen, &format!("bert.{emb}")), before(emb));
    assert_ne!(
        tensor(&frozen, "news_projection.weight"),
        tensor(&top, "news_projection.weight")
    );
    assert_eq!(
        tensor(&top, &format!("bert.{}", layer(0))),
        before(&layer(0))
    );
    assert_eq!(tensor(&top, &format!("bert.{emb}")), before(emb));
    assert_ne!(
        tensor(&top, &format!("bert.{}", layer(1))),
        before(&layer(1))
    );

    let (ok, _, err) = positio(&tiny_recommender_args(
        &dir.as_ref().join("bad"),
        &["--encoder", "top-3"],
    ));
    assert!(
        !ok && err.contains("top-3: the model has 2 layers"),
        "{err}"
    );
    let (ok, _, err) = positio(&tiny_recommender_args(
        &dir.as_ref().join("bad"),
        &["--encoder", "half"],
    ));
    assert!(
        !ok && err.contains("expected finetune, frozen or top-N"),
        "{err}"
    );
}

#[test]
fn a_frozen_run_scores_its_development_set_as_eval_does() {
    // A frozen run encodes the development news once and projects the same states at every
    // evaluation: the last epoch's measures must be what `eval recommend` finds for that model.
    let dir = tmp("frozen-dev");
    let run = dir.as_ref().join("run");
    train_tiny_recommender(&run, &["--epochs", "3", "--encoder", "frozen"]);
    let last = metrics_lines(&run)
        .into_iter()
        .rfind(|v| v["split"] == "val")
        .unwrap();
    // The last checkpoint (step 18) made a recommender directory with the run's tokenizer.
    let checkpoint = run.join("checkpoints/step-00000018");
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(run.join(f), checkpoint.join(f)).unwrap();
    }
    let report = eval_report(&checkpoint, &dir.as_ref().join("r.json"), &[]);
    for key in ["auc", "mrr", "ndcg@5", "ndcg@10"] {
        let (eval, run) = (report[key].as_f64().unwrap(), last[key].as_f64().unwrap());
        assert!((eval - run).abs() < 1e-6, "{key}: eval {eval}, run {run}");
    }
    // A frozen run logs impressions a second (no token passes through the encoder).
    let train = metrics_lines(&run);
    let rate = train.iter().find(|v| v["split"] == "train").unwrap()["examples_per_s"]
        .as_f64()
        .unwrap();
    assert!(rate > 0.0, "examples/s {rate}");
}

/// `eval recommend`'s JSON report of `model` on the development fixture, with `extra` flags.
fn eval_report(model: &Path, json: &Path, extra: &[&str]) -> serde_json::Value {
    let dev = mind_fixture("dev");
    let mut args = vec![
        "eval",
        "recommend",
        "--model",
        model.to_str().unwrap(),
        "--data",
        dev.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend(extra);
    let (ok, out, err) = positio(&args);
    assert!(ok, "{out}\n{err}");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn a_run_scores_by_its_score_pooling_and_an_older_one_as_it_trained() {
    // Trained with attention, a run scores by the mean unless told otherwise; a directory
    // written before `score_pooling` existed scores with the pooling it trained.
    let dir = tmp("score-pooling");
    let run = dir.as_ref().join("run");
    // A large head learning rate, so the attention learns to weigh the clicks unevenly.
    let sharp = ["--epochs", "3", "--encoder", "frozen", "--head-lr", "0.1"];
    train_tiny_recommender(&run, &sharp);
    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("recommend.json")).unwrap())
            .unwrap();
    assert_eq!(settings["user_pooling"], "attention");
    assert_eq!(settings["score_pooling"], "mean");
    let json = dir.as_ref().join("r.json");
    let by = |model: &Path, extra: &[&str]| eval_report(model, &json, extra);
    let measures = |r: &serde_json::Value| -> Vec<f64> {
        ["auc", "mrr", "ndcg@5", "ndcg@10"]
            .iter()
            .map(|k| r[*k].as_f64().unwrap())
            .collect()
    };
    let default = measures(&by(&run, &[]));
    assert_eq!(default, measures(&by(&run, &["--score-pooling", "mean"])));
    let attention = measures(&by(&run, &["--score-pooling", "attention"]));
    assert_ne!(default, attention, "the two poolings rank alike");
    // The same directory as an older positio wrote it: no score_pooling key.
    let old = dir.as_ref().join("old");
    std::fs::create_dir(&old).unwrap();
    for entry in std::fs::read_dir(&run).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, old.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut settings = settings;
    settings.as_object_mut().unwrap().remove("score_pooling");
    std::fs::write(old.join("recommend.json"), settings.to_string()).unwrap();
    assert_eq!(measures(&by(&old, &[])), attention);
}

#[test]
fn a_recommender_continues_with_its_own_towers() {
    let dir = tmp("continue");
    let first = dir.as_ref().join("first");
    train_tiny_recommender(&first, &["--steps", "4", "--encoder", "frozen"]);
    // From the first run's directory, at a learning rate far below any weight's last bit: its
    // towers are where it starts.
    let next = dir.as_ref().join("next");
    let still = ["--steps", "1", "--lr", "1e-30", "--head-lr", "1e-30"];
    let mut args = tiny_recommender_args(&next, &still);
    let model = args.iter().position(|a| a == "--model").unwrap() + 1;
    args[model] = first.to_str().unwrap().to_string();
    let (ok, out, err) = positio(&args);
    assert!(ok, "{out}\n{err}");
    for name in [
        "news_projection.weight",
        "user_attention.query",
        "cold_start",
    ] {
        assert_eq!(tensor(&next, name), tensor(&first, name), "{name}");
    }
    // From the plain encoder, the projection starts as the identity, not the trained one.
    let fresh = dir.as_ref().join("fresh");
    train_tiny_recommender(&fresh, &still);
    assert_ne!(
        tensor(&fresh, "news_projection.weight"),
        tensor(&first, "news_projection.weight")
    );
}

#[test]
fn unlabelled_or_broken_logs_are_refused_with_file_and_line() {
    let dir = tmp("bad-mind");
    let d = dir.as_ref();
    std::fs::create_dir_all(d.join("test")).unwrap();
    std::fs::copy(
        mind_fixture("dev").join("news.tsv"),
        d.join("test/news.tsv"),
    )
    .unwrap();
    std::fs::write(d.join("test/behaviors.tsv"), "1\tU1\tT\tD1\tD2 D3\n").unwrap();
    let mut args = tiny_recommender_args(&d.join("run"), &[]);
    let dev_at = args.iter().position(|a| a == "--dev").unwrap() + 1;
    args[dev_at] = d.join("test").display().to_string();
    let (ok, _, err) = positio(&args);
    assert!(
        !ok && err.contains("behaviors.tsv: impressions without click labels"),
        "{err}"
    );
    // eval ranks a test set without labels into the submission file, and says so.
    let run = d.join("tiny");
    train_tiny_recommender(&run, &["--steps", "2"]);
    let (preds, test) = (d.join("test.txt"), d.join("test"));
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "recommend",
            "--model",
            run.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
        ];
        args.extend(extra);
        positio(&args)
    };
    let (ok, _, err) = eval(&[]);
    assert!(
        !ok && err.contains("nothing to measure; give --predictions"),
        "{err}"
    );
    let (ok, out, err) = eval(&["--predictions", preds.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("1 impressions without click labels"), "{out}");
    let line = std::fs::read_to_string(&preds).unwrap();
    assert!(line == "1 [1,2]\n" || line == "1 [2,1]\n", "{line:?}");
    std::fs::write(
        d.join("test/behaviors.tsv"),
        "1\tU1\tT\tD1\tD2-1 D3-0\n2\tU1\tT\tD99\tD2-1\n",
    )
    .unwrap();
    let (ok, _, err) = positio(&args);
    assert!(
        !ok && err.contains("behaviors.tsv:2: news id \"D99\" is not in news.tsv"),
        "{err}"
    );
    assert!(
        !d.join("run").exists(),
        "a run directory was made for bad input"
    );
}
