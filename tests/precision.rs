//! `--precision bf16`: matrix products in bf16, everything else fp32 (as PyTorch autocast).
//! Runs on the CPU backend (inference through positio's bf16 linear kernel, training through
//! burn's bf16 products) so that CI checks it: the numbers stay within bf16's tolerance of fp32
//! (embeddings within cosine 0.9995 of sentence-transformers' fp32 ones) and really differ from
//! them, a training run learns and saves fp32 checkpoints. `--precision int8` (CPU inference):
//! embeddings within cosine 0.99 of sentence-transformers' fp32 ones, the task commands run with
//! it, training refuses it. (One test binary of its own: the precision switch is process-wide.)

mod common;

use common::{embeddings_of, minilm_dir, positio, tmp, Fixture};

fn embeddings(extra: &[&str]) -> Vec<Vec<f64>> {
    embeddings_of_texts(
        &[
            "Positional encodings tell the encoder where each token stands.",
            "EU rejects German call to boycott British lamb .",
        ],
        extra,
    )
}

fn embeddings_of_texts(texts: &[&str], extra: &[&str]) -> Vec<Vec<f64>> {
    let dir = minilm_dir();
    let mut args = vec!["embed", dir.to_str().unwrap()];
    for t in texts {
        args.extend(["--text", t]);
    }
    args.extend(extra);
    let (ok, out, err) = positio(&args);
    assert!(ok, "{err}");
    embeddings_of(&out)
}

#[test]
fn bf16_products_stay_within_tolerance_and_checkpoints_stay_fp32() {
    let fp32 = embeddings(&[]);
    let bf16 = embeddings(&["--precision", "bf16"]);
    let worst = fp32
        .iter()
        .zip(&bf16)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    assert!(worst <= 3e-2, "bf16 differs from fp32 by {worst}");
    assert!(
        worst > 1e-5,
        "bf16 gave fp32's numbers ({worst}): not applied"
    );
    for (a, b) in fp32.iter().zip(&bf16) {
        let cos: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cos > 0.999, "cosine {cos}");
    }

    // A short bf16 pretraining run learns and saves fp32 weights.
    let out = tmp("bf16-demo");
    let (ok, stdout, err) = positio(&[
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "40",
        "--precision",
        "bf16",
    ]);
    assert!(ok, "{stdout}{err}");
    // "    loss 10.412 → 6.120; …": the loss fell.
    let losses: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("loss "))
        .and_then(|l| l.split(';').next())
        .map(|l| l.split(" → ").map(|v| v.parse().unwrap()).collect())
        .unwrap_or_else(|| panic!("no loss line in {stdout}"));
    assert!(losses[1] < losses[0] - 0.5, "{losses:?}");
    // The dtypes as the safetensors header states them (not as a reader converts them).
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let tensors: Vec<_> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .collect();
    assert!(tensors.len() > 10);
    for (name, t) in tensors {
        assert_eq!(t["dtype"], "F32", "{name}");
    }
}

/// all-MiniLM-L6-v2's embeddings of the reference sentences (tests/fixtures/minilm_parity.safetensors:
/// short, accented, emoji and CJK, 512 word pieces) in `precision`: each within `cosine` of
/// sentence-transformers' fp32 ones, and not equal to them.
fn embeddings_stay_close_to_sentence_transformers(precision: &str, cosine: f64) {
    let fx = Fixture::open("minilm_parity.safetensors");
    let sentences: Vec<String> = serde_json::from_str(&fx.metadata("sentences")).unwrap();
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let reference = fx.f32("st.embedding");
    let got = embeddings_of_texts(&texts, &["--precision", precision]);
    let width = reference.len() / texts.len();
    let mut worst_diff = 0f64;
    for (i, e) in got.iter().enumerate() {
        let r = &reference[i * width..(i + 1) * width];
        let c: f64 = e.iter().zip(r).map(|(a, &b)| a * f64::from(b)).sum();
        assert!(c >= cosine, "{precision}, sentence {i}: cosine {c}");
        worst_diff = e
            .iter()
            .zip(r)
            .map(|(a, &b)| (a - f64::from(b)).abs())
            .fold(worst_diff, f64::max);
    }
    assert!(
        worst_diff > 1e-4,
        "{precision} gave fp32's numbers ({worst_diff})"
    );
}

#[test]
fn int8_embeddings_stay_within_cosine_0_99_of_sentence_transformers() {
    embeddings_stay_close_to_sentence_transformers("int8", 0.99);
}

/// bf16 on the CPU: the linear layers through the bf16 kernel (AVX-512 BF16, or fp32 on the
/// rounded operands), the rest fp32.
#[test]
fn bf16_embeddings_stay_within_cosine_0_9995_of_sentence_transformers() {
    embeddings_stay_close_to_sentence_transformers("bf16", 0.9995);
}

/// The task commands run in int8 and their outputs keep their shape; training commands and the
/// GPU refuse it with a message that says why.
#[test]
fn int8_runs_the_task_commands_and_training_refuses_it() {
    let ner = "tests/fixtures/hf_tiny_ner";
    let dev = "tests/fixtures/conll/dev.iob1";
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "ner", "--model", ner, "--data", dev];
        args.extend(extra);
        let (ok, out, err) = positio(&args);
        assert!(ok, "{err}");
        out
    };
    let (fp32, int8) = (eval(&[]), eval(&["--precision", "int8"]));
    assert_eq!(
        fp32.lines().count(),
        int8.lines().count(),
        "{fp32}\n---\n{int8}"
    );
    let predict = |extra: &[&str]| {
        let mut args = vec!["predict", "ner", "--model", ner, "--conll", dev];
        args.extend(extra);
        let (ok, out, err) = positio(&args);
        assert!(ok, "{err}");
        out.lines()
            .map(|l| l.rsplit_once(' ').map(|(w, _)| w.to_string()))
            .collect::<Vec<_>>()
    };
    // The same lines, each with a tag (the tags themselves may differ: a tiny random model).
    assert_eq!(predict(&[]), predict(&["--precision", "int8"]));

    let out = tmp("int8-train");
    for args in [
        vec![
            "demo",
            "--out",
            out.to_str().unwrap(),
            "--precision",
            "int8",
        ],
        vec![
            "finetune",
            "ner",
            "--model",
            ner,
            "--train",
            dev,
            "--out",
            out.to_str().unwrap(),
            "--precision",
            "int8",
        ],
    ] {
        let (ok, _, err) = positio(&args);
        assert!(!ok, "{args:?} accepted int8");
        assert!(err.contains("--precision int8 is for inference"), "{err}");
    }
    assert!(!out.join("model.safetensors").exists());
    let (ok, _, err) = positio(&[
        "embed",
        ner,
        "--text",
        "a",
        "--precision",
        "int8",
        "--device",
        "cuda",
    ]);
    assert!(!ok && err.contains("runs on the CPU"), "{err}");
}
