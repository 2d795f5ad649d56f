//! `--store postgres://…`: the same index commands against a real PostgreSQL with pgvector,
//! which scripts/test.sh starts (scripts/pg_test_server.sh) and names in `POSITIO_TEST_PG`.
//! Dense search in the database finds what the index on disk finds; add, replace and delete
//! are transactions; the model check holds; hybrid and lexical search run; `eval retrieval`
//! and `mine-negatives` read the database's index as they read a directory.

mod common;
use common::*;

use serde_json::Value;

fn database() -> String {
    std::env::var("POSITIO_TEST_PG").expect(
        "POSITIO_TEST_PG names no database: run scripts/test.sh, which starts PostgreSQL with pgvector",
    )
}

fn run(args: &[&str]) -> String {
    let (ok, out, err) = positio(args);
    assert!(ok, "positio {args:?}: {err}");
    out
}

fn hits(out: &str) -> Vec<(String, f64)> {
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    line["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_index_commands_work_in_postgres_with_pgvector() {
    let url = database();
    let m = minilm_dir();
    let m = m.to_str().unwrap();
    let corpus = "tests/fixtures/retrieval/beir/corpus.jsonl";
    // A name of its own per run: the database outlives a test run.
    let name = format!(
        "t{}_{}",
        std::process::id(),
        std::time::UNIX_EPOCH.elapsed().unwrap().as_millis()
    );
    let built: Value = serde_json::from_str(&run(&[
        "index", "build", "--model", m, "--corpus", corpus, "--out", &name, "--store", &url,
    ]))
    .unwrap();
    assert_eq!(built["documents"], 24);
    let (ok, _, err) = positio(&[
        "index", "build", "--model", m, "--corpus", corpus, "--out", &name, "--store", &url,
    ]);
    assert!(!ok && err.contains("already has an index"), "{err}");
    // Dense search: the same documents, in the same order, with the same cosines as on disk.
    let dir = tmp("pg-disk");
    let disk = dir.as_ref().join("idx");
    run(&[
        "index",
        "build",
        "--model",
        m,
        "--corpus",
        corpus,
        "--out",
        disk.to_str().unwrap(),
    ]);
    for q in [
        "Why did crude oil prices go up?",
        "wheat sales to the Soviet Union",
        "gold",
    ] {
        let pg = hits(&run(&[
            "search", &name, "--store", &url, "--query", q, "--top", "5",
        ]));
        let local = hits(&run(&[
            "search",
            disk.to_str().unwrap(),
            "--query",
            q,
            "--top",
            "5",
        ]));
        let ids = |h: &[(String, f64)]| h.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&pg), ids(&local), "{q}");
        for ((_, a), (_, b)) in pg.iter().zip(&local) {
            assert!((a - b).abs() < 1e-5, "{q}: {a} vs {b}");
        }
    }
    let lexical = hits(&run(&[
        "search",
        &name,
        "--store",
        &url,
        "--query",
        "wheat exports Soviet",
        "--mode",
        "bm25",
    ]));
    assert_eq!(lexical[0].0, "wheat1");
    let hybrid = hits(&run(&[
        "search",
        &name,
        "--store",
        &url,
        "--query",
        "Why did crude oil prices go up?",
        "--mode",
        "hybrid",
    ]));
    assert_eq!(hybrid[0].0, "oil1");
    // eval retrieval through the database scores as through the directory.
    let scores = |index: &str, store: &[&str]| -> Value {
        let json = dir.as_ref().join("scores.json");
        let mut args = vec![
            "eval",
            "retrieval",
            "--index",
            index,
            "--data",
            "tests/fixtures/retrieval/beir",
            "--json",
            json.to_str().unwrap(),
        ];
        args.extend(store);
        run(&args);
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
    };
    let (pg, local) = (
        scores(&name, &["--store", &url]),
        scores(disk.to_str().unwrap(), &[]),
    );
    for key in ["ndcg@10", "mrr@10", "recall@10", "map@100"] {
        let (a, b) = (pg[key].as_f64().unwrap(), local[key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-4, "{key}: {a} vs {b}");
    }
    // mine-negatives from the database's documents finds what it finds on disk.
    let pairs = dir.as_ref().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"anchor\": \"Why did crude oil prices go up?\", \"positive\": \"Oil prices Crude oil prices rose sharply after OPEC agreed to cut production.\"}\n\
         {\"anchor\": \"wheat sales to the Soviet Union\", \"positive\": \"Wheat exports The Agriculture Department raised its estimate of wheat exports to the Soviet Union.\"}\n",
    )
    .unwrap();
    let mined = |index: &str, store: &[&str]| -> Vec<Value> {
        let out = dir.as_ref().join("mined.jsonl");
        let mut args = vec![
            "mine-negatives",
            "--index",
            index,
            "--train",
            pairs.to_str().unwrap(),
            "--count",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(store);
        run(&args);
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["negative"].clone())
            .collect()
    };
    let from_pg = mined(&name, &["--store", &url]);
    assert_eq!(from_pg, mined(disk.to_str().unwrap(), &[]));
    assert_eq!(from_pg[0].as_array().unwrap().len(), 2, "{from_pg:?}");
    // Add (one new, one replaced), then delete; the wrong model is refused.
    let more = dir.as_ref().join("more.jsonl");
    std::fs::write(
        &more,
        "{\"_id\": \"new1\", \"title\": \"Gold\", \"text\": \"Gold prices hit a record as investors fled the dollar.\"}\n\
         {\"_id\": \"oil1\", \"title\": \"\", \"text\": \"Tea exports from Kenya fell in March.\"}\n",
    )
    .unwrap();
    let added: Value = serde_json::from_str(&run(&[
        "index",
        "add",
        &name,
        "--store",
        &url,
        "--corpus",
        more.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(
        (
            added["added"].as_u64(),
            added["replaced"].as_u64(),
            added["documents"].as_u64()
        ),
        (Some(1), Some(1), Some(25))
    );
    let found = hits(&run(&[
        "search",
        &name,
        "--store",
        &url,
        "--query",
        "record gold price",
        "--top",
        "1",
    ]));
    assert_eq!(found[0].0, "new1");
    let found = hits(&run(&[
        "search",
        &name,
        "--store",
        &url,
        "--query",
        "Kenyan tea exports",
        "--top",
        "1",
    ]));
    assert_eq!(found[0].0, "oil1");
    let (ok, _, err) = positio(&[
        "index",
        "add",
        &name,
        "--store",
        &url,
        "--corpus",
        more.to_str().unwrap(),
        "--model",
        "tests/fixtures/st_tiny",
    ]);
    assert!(
        !ok && err.contains("is not the model this index was built with"),
        "{err}"
    );
    let deleted: Value = serde_json::from_str(&run(&[
        "index", "delete", &name, "--store", &url, "--id", "new1", "--id", "missing",
    ]))
    .unwrap();
    assert_eq!(
        (
            deleted["deleted"].as_u64(),
            deleted["not_found"].as_u64(),
            deleted["documents"].as_u64()
        ),
        (Some(1), Some(1), Some(24))
    );
    let found = hits(&run(&[
        "search",
        &name,
        "--store",
        &url,
        "--query",
        "record gold price",
        "--top",
        "30",
    ]));
    assert!(found.iter().all(|(id, _)| id != "new1"));
    // Unknown index, bad name, unreachable server: clear errors.
    let (ok, _, err) = positio(&["search", "nothing_here", "--store", &url, "--query", "x"]);
    assert!(!ok && err.contains("no index \"nothing_here\""), "{err}");
    let (ok, _, err) = positio(&["search", "Bad-Name", "--store", &url, "--query", "x"]);
    assert!(!ok && err.contains("lowercase letters"), "{err}");
    let (ok, _, err) = positio(&[
        "search",
        "x",
        "--store",
        "postgres://nobody@127.0.0.1:1/db",
        "--query",
        "x",
    ]);
    assert!(!ok && err.contains("PostgreSQL"), "{err}");
}
