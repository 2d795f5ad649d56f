//! `--precision bf16`: matrix products in bf16, everything else fp32 (as PyTorch autocast).
//! Runs on the CPU backend (the linear layers through positio's bf16 kernel, in inference and
//! training) so that CI checks it: the numbers stay within bf16's tolerance of fp32 (embeddings
//! within cosine 0.9995 of sentence-transformers' fp32 ones) and really differ from them, the
//! training linear layer's gradients are the rounded operands' products, as its autocast twin's,
//! a training run learns and saves fp32 checkpoints. `--precision int8` (CPU inference):
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

/// `v` rounded to the nearest bf16 (ties to even; the values here are normal numbers).
fn bf16(v: f32) -> f64 {
    let bits = v.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) & 0xffff_0000;
    f64::from(f32::from_bits(rounded))
}

/// Training in bf16 on the CPU: the fused linear layer (positio's bf16 kernel, forward and both
/// gradients, through autodiff) computes `y = round(x) round(W)ᵀ + b`, `dx = round(dy) round(W)`,
/// `dW = round(dy)ᵀ round(x)` summed in fp32 — here against those sums in f64 — which is what its
/// composite twin computes through burn's bf16 products (autocast's arithmetic; its products
/// come out rounded to bf16, hence its tolerance of one bf16 rounding), and not what fp32 does.
#[test]
fn bf16_training_linear_takes_rounded_operands_as_its_autocast_twin() {
    use burn::tensor::{DType, Tensor, TensorData};
    use positio::kernels::{self, Precision};
    let dev = common::cpu().autodiff();
    // 70 rows (an odd pair count: 35), widths that fill no tile or block exactly.
    let (rows, d_in, d_out) = (70, 37, 21);
    let f32s = |seed, n| -> Vec<f32> {
        common::values(n, seed, 1.0)
            .iter()
            .map(|&v| v as f32)
            .collect()
    };
    let (x0, w0, b0, dy0) = (
        f32s(51, rows * d_in),
        f32s(52, d_out * d_in),
        f32s(53, d_out),
        f32s(54, rows * d_out),
    );
    // (y, dx, dW, db) for loss = sum(linear(x) * dy).
    let run = || {
        let t = |v: &[f32], shape: Vec<usize>| {
            Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), &dev)
        };
        let x = t(&x0, vec![rows, d_in]).require_grad();
        let w = t(&w0, vec![d_out, d_in]).require_grad();
        let b =
            Tensor::<1>::from_data(TensorData::new(b0.clone(), vec![d_out]), &dev).require_grad();
        let y = kernels::linear(x.clone(), w.clone(), Some(b.clone()));
        assert_eq!(y.dtype(), DType::F32);
        let g = (y.clone() * t(&dy0, vec![rows, d_out])).sum().backward();
        [
            common::to_vec(y),
            common::to_vec(x.grad(&g).unwrap()),
            common::to_vec(w.grad(&g).unwrap()),
            common::to_vec(b.grad(&g).unwrap()),
        ]
    };
    kernels::set_precision(Precision::Bf16);
    let (fused, composite) = common::both(run);
    kernels::set_precision(Precision::Fp32);
    let fp32 = run();

    let r = |v: &[f32]| v.iter().map(|&v| bf16(v)).collect::<Vec<f64>>();
    let (x, w, dy) = (r(&x0), r(&w0), r(&dy0));
    let mut want = [
        vec![0.0; rows * d_out],
        vec![0.0; rows * d_in],
        vec![0.0; d_out * d_in],
        vec![0.0; d_out],
    ];
    for i in 0..rows {
        for o in 0..d_out {
            want[0][i * d_out + o] = f64::from(b0[o])
                + (0..d_in)
                    .map(|j| x[i * d_in + j] * w[o * d_in + j])
                    .sum::<f64>();
            want[3][o] += f64::from(dy0[i * d_out + o]);
            for j in 0..d_in {
                want[1][i * d_in + j] += dy[i * d_out + o] * w[o * d_in + j];
                want[2][o * d_in + j] += dy[i * d_out + o] * x[i * d_in + j];
            }
        }
    }
    for (k, name) in ["y", "dx", "dW", "db"].iter().enumerate() {
        let scale = want[k].iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let (f, c, p) = (
            common::max_abs_diff(&fused[k], &want[k]) / scale,
            common::max_abs_diff(&composite[k], &want[k]) / scale,
            common::max_abs_diff(&fp32[k], &want[k]) / scale,
        );
        // Measured: fused 5e-8 to 2e-7, composite 2e-3 to 3e-3, fp32 (y, dx, dW) 2e-3.
        assert!(f < 1e-6, "{name}: fused bf16 off by {f} (relative)");
        assert!(
            c < 2f64.powi(-8),
            "{name}: composite bf16 off by {c} (relative)"
        );
        if *name != "db" {
            // The bias gradient is a sum of dy: fp32 either way.
            assert!(p > 1e-4, "{name}: fp32 gives the rounded numbers ({p})");
        }
    }
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
