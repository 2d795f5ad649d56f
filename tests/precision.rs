//! `--precision bf16`: matrix products in bf16, everything else fp32 (as PyTorch autocast).
//! Runs on the CPU backend (burn's flex computes bf16 products) so that CI checks it: the
//! numbers stay within bf16's tolerance of fp32 and really differ from them, a training run
//! learns and saves fp32 checkpoints. (One test binary of its own: the precision switch is
//! process-wide.)

mod common;

use common::{embeddings_of, minilm_dir, positio, tmp};

fn embeddings(extra: &[&str]) -> Vec<Vec<f64>> {
    let dir = minilm_dir();
    let mut args = vec!["embed", dir.to_str().unwrap()];
    for t in [
        "Positional encodings tell the encoder where each token stands.",
        "EU rejects German call to boycott British lamb .",
    ] {
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
