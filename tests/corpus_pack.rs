//! Packed corpora (`positio corpus pack`, `pretrain --packed`): token ids round-trip through
//! shards, pretraining on a pack trains exactly what pretraining on the text trains, and a
//! damaged pack or another tokenizer's pack is refused with the file named.

mod common;
use common::{positio, tmp};
use positio::tools::demo::corpus;
use std::path::Path;

fn ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = positio(args);
    assert!(ok, "positio {args:?}:\n{stdout}\n{stderr}");
    stdout
}

/// A corpus of `n` generated sentences and a WordPiece tokenizer trained on it.
fn corpus_and_tokenizer(dir: &Path, n: usize) -> (String, String) {
    let text = dir.join("corpus.txt");
    std::fs::write(&text, corpus(n, 9).join("\n")).unwrap();
    let tok = dir.join("tokenizer.json");
    let (text, tok) = (text.display().to_string(), tok.display().to_string());
    ok(&[
        "tokenizer",
        "train",
        "--corpus",
        &text,
        "--vocab-size",
        "300",
        "--out",
        &tok,
    ]);
    (text, tok)
}

/// `positio corpus pack` of `text` with `tok` into `out`, with `extra` flags.
fn pack(text: &str, tok: &str, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["corpus", "pack", "--corpus", text, "--tokenizer", tok];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    positio(&args)
}

/// A one-layer model of width 16 on sequences of 24.
const TINY: [&str; 10] = [
    "--layers",
    "1",
    "--hidden",
    "16",
    "--heads",
    "2",
    "--ffn",
    "32",
    "--max-len",
    "24",
];

fn index(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("corpus.json")).unwrap()).unwrap()
}

#[test]
fn token_ids_round_trip_through_shards() {
    let dir = tmp("pack-roundtrip");
    let (text, tok) = corpus_and_tokenizer(&dir, 400);
    let packed = dir.join("packed");
    let (good, out, err) = pack(
        &text,
        &tok,
        &packed,
        &["--shard-size", "1KB", "--val-fraction", "0"],
    );
    assert!(good, "{err}");
    assert!(out.contains("packed 400 documents"), "{out}");
    let index = index(&packed);
    assert_eq!(index["token_bytes"], 2, "a 300-piece vocabulary fits u16");
    let shards = index["train"]["shards"].as_array().unwrap();
    assert!(shards.len() > 3, "1 KB shards: several");
    let mut stream = Vec::new();
    for shard in shards {
        let bytes = std::fs::read(packed.join(shard[0].as_str().unwrap())).unwrap();
        assert_eq!(bytes.len() as u64, 2 * shard[1].as_u64().unwrap());
        assert!(bytes.len() <= 1024);
        stream.extend(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32),
        );
    }
    // Every document's ids, then [SEP], in order: what the tokenizer itself gives.
    let reference = tokenizers::Tokenizer::from_file(&tok).unwrap();
    let sep = reference.token_to_id("[SEP]").unwrap();
    let mut expected = Vec::new();
    for line in std::fs::read_to_string(&text).unwrap().lines() {
        expected.extend_from_slice(reference.encode(line, false).unwrap().get_ids());
        expected.push(sep);
    }
    assert_eq!(stream, expected);
    assert_eq!(
        index["train"]["tokens"].as_u64().unwrap(),
        expected.len() as u64
    );
    assert!(packed.join("tokenizer.json").exists());
    assert!(
        !dir.join("packed.tmp").exists(),
        "written under a temporary name, then renamed"
    );
}

#[test]
fn pretraining_on_a_pack_trains_what_pretraining_on_the_text_trains() {
    let dir = tmp("pack-train");
    let (text, tok) = corpus_and_tokenizer(&dir, 600);
    let packed = dir.join("packed");
    assert!(
        pack(
            &text,
            &tok,
            &packed,
            &["--shard-size", "2KB", "--seed", "5"]
        )
        .0
    );
    let common: Vec<&str> = TINY
        .into_iter()
        .chain([
            "--batch-size",
            "8",
            "--steps",
            "12",
            "--eval-every",
            "6",
            "--seed",
            "5",
        ])
        .collect();
    let (from_text, from_pack) = (dir.join("text-run"), dir.join("pack-run"));
    let mut a = vec![
        "pretrain",
        "--corpus",
        &text,
        "--tokenizer",
        &tok,
        "--out",
        from_text.to_str().unwrap(),
    ];
    a.extend(&common);
    ok(&a);
    let mut b = vec![
        "pretrain",
        "--packed",
        packed.to_str().unwrap(),
        "--out",
        from_pack.to_str().unwrap(),
    ];
    b.extend(&common);
    let log = ok(&b);
    assert!(log.contains("validation sequences"), "{log}");
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(
        weights(&from_text) == weights(&from_pack),
        "the same sequences in the same order give the same model"
    );
    assert!(
        !from_pack.join("data").exists(),
        "a pack is read where it is, not copied"
    );
}

#[test]
fn a_damaged_pack_or_another_tokenizers_pack_is_refused() {
    let dir = tmp("pack-bad");
    let (text, tok) = corpus_and_tokenizer(&dir, 200);
    let packed = dir.join("packed");
    assert!(pack(&text, &tok, &packed, &["--shard-size", "1KB"]).0);
    let train = |extra: &[&str]| {
        let out = dir.join("run");
        let _ = std::fs::remove_dir_all(&out);
        let mut args = vec!["pretrain", "--packed", packed.to_str().unwrap()];
        args.extend(["--out", out.to_str().unwrap(), "--steps", "2"]);
        args.extend(TINY);
        args.extend(extra);
        positio(&args)
    };

    // A model with another vocabulary than the pack's.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("c.txt"),
        corpus(200, 4).join("\n").to_uppercase(),
    )
    .unwrap();
    let other_tok = other.join("tokenizer.json");
    ok(&[
        "tokenizer",
        "train",
        "--corpus",
        other.join("c.txt").to_str().unwrap(),
        "--vocab-size",
        "120",
        "--out",
        other_tok.to_str().unwrap(),
    ]);
    let (good, _, err) = train(&["--tokenizer", other_tok.to_str().unwrap()]);
    assert!(!good);
    assert!(
        err.contains("corpus.json") && err.contains("another tokenizer"),
        "{err}"
    );

    // A shard cut short.
    let first = packed.join("train-00001.bin");
    let bytes = std::fs::read(&first).unwrap();
    std::fs::write(&first, &bytes[..bytes.len() - 2]).unwrap();
    let (good, _, err) = train(&[]);
    assert!(!good);
    assert!(
        err.contains("train-00001.bin") && err.contains("pack the corpus again"),
        "{err}"
    );

    // No index at all.
    std::fs::remove_file(packed.join("corpus.json")).unwrap();
    let (good, _, err) = train(&[]);
    assert!(!good);
    assert!(err.contains("corpus.json"), "{err}");

    let (good, _, err) = pack(&text, &tok, &packed, &["--shard-size", "lots"]);
    assert!(!good);
    assert!(
        err.contains("--shard-size") && err.contains("'lots'"),
        "{err}"
    );
}
