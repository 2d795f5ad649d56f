//! The recurrent encoders: the fused time loop against its composite twin and finite
//! differences (f64), whole LSTM / GRU stacks against PyTorch's `nn.LSTM` / `nn.GRU` on the same
//! weights (fixture from `scripts/reference/recurrent_parity.py`), and the commands end to end
//! (causal LM with resume and `eval lm`; `init`, NER with a CRF, sequence classification).

mod common;
use common::*;

use burn::module::Param;
use burn::nn::DropoutConfig;
use burn::tensor::{DType, Device, Tensor};
use positio::kernels::{self, recurrence::Cell, RecurrenceOptions};
use positio::model::recurrent::{Direction, Recurrent, RecurrentLayer};

/// A mask `[batch, len]` for right-padded rows of these lengths.
fn mask(lengths: &[usize], len: usize) -> Vec<f64> {
    lengths
        .iter()
        .flat_map(|&l| (0..len).map(move |t| if t < l { 1.0 } else { 0.0 }))
        .collect()
}

struct Case {
    cell: Cell,
    directions: usize,
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for cell in [Cell::Lstm, Cell::Gru] {
        for directions in [1, 2] {
            v.push(Case { cell, directions });
        }
    }
    v
}

/// (output, d xproj, d w_hh, d b_hh) of `sum(recurrence(...) * upstream)`.
type Run = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

#[test]
fn fused_recurrence_matches_composite_and_finite_differences() {
    // 3 rows × 4 units: partial tiles of the few-rows product; 5 rows × 64 units: one full
    // 4 × 64 register tile (forward: 256 gate columns; backward: 64 state columns) and a partial.
    for (b, len, h, lengths) in [(3, 5, 4, vec![5, 3, 1]), (5, 4, 64, vec![4, 4, 2, 1, 3])] {
        recurrence_gradients(b, len, h, &lengths);
    }
}

fn recurrence_gradients(b: usize, len: usize, h: usize, lengths: &[usize]) {
    let dev = cpu().autodiff();
    for case in cases() {
        let gh = case.cell.gates() * h;
        let dirs = case.directions;
        let x0 = values(b * len * dirs * gh, 1, 1.0);
        let w0 = values(dirs * gh * h, 2, 0.6);
        let b0 = values(dirs * gh, 3, 0.5);
        let up = values(b * len * dirs * h, 4, 1.0);
        let m = mask(lengths, len);
        let options = RecurrenceOptions {
            cell: case.cell,
            directions: dirs,
        };
        let run = |x: &[f64], w: &[f64], bias: &[f64]| -> Run {
            let x = f64_tensor(x.to_vec(), [b, len, dirs * gh], &dev).require_grad();
            let w = f64_tensor(w.to_vec(), [dirs * gh, h], &dev).require_grad();
            let bias = f64_tensor(bias.to_vec(), [dirs * gh], &dev).require_grad();
            let y = kernels::recurrence(
                x.clone(),
                w.clone(),
                bias.clone(),
                f64_tensor(m.clone(), [b, len], &dev),
                options,
            );
            let g = (y.clone() * f64_tensor(up.clone(), [b, len, dirs * h], &dev))
                .sum()
                .backward();
            (
                to_vec(y),
                to_vec(x.grad(&g).unwrap()),
                to_vec(w.grad(&g).unwrap()),
                to_vec(bias.grad(&g).unwrap()),
            )
        };
        let (fused, composite) = both(|| run(&x0, &w0, &b0));
        let what = format!("{:?} × {dirs}", case.cell);
        for (name, a, c) in [
            ("output", &fused.0, &composite.0),
            ("d xproj", &fused.1, &composite.1),
            ("d w_hh", &fused.2, &composite.2),
            ("d b_hh", &fused.3, &composite.3),
        ] {
            let d = max_abs_diff(a, c);
            assert!(
                d < 1e-12,
                "{what}: {name} differs from the composite by {d}"
            );
        }
        // Padded positions output exactly 0.
        for (row, &l) in lengths.iter().enumerate() {
            for t in l..len {
                let at = (row * len + t) * dirs * h;
                assert!(fused.0[at..at + dirs * h].iter().all(|&v| v == 0.0));
            }
        }
        let value = |x: &[f64], w: &[f64], bias: &[f64]| -> f64 {
            let y = run(x, w, bias).0;
            y.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        let idx = sample_indices(x0.len(), 25);
        let num = numeric_grad(&|x| value(x, &w0, &b0), &x0, &idx, 1e-6);
        let ana: Vec<f64> = idx.iter().map(|&i| fused.1[i]).collect();
        assert!(
            max_abs_diff(&num, &ana) < 1e-7,
            "{what}: d xproj vs finite differences"
        );
        let idx = sample_indices(w0.len(), 25);
        let num = numeric_grad(&|w| value(&x0, w, &b0), &w0, &idx, 1e-6);
        let ana: Vec<f64> = idx.iter().map(|&i| fused.2[i]).collect();
        assert!(
            max_abs_diff(&num, &ana) < 1e-7,
            "{what}: d w_hh vs finite differences"
        );
        let idx: Vec<usize> = (0..b0.len()).collect();
        let num = numeric_grad(&|bias| value(&x0, &w0, bias), &b0, &idx, 1e-6);
        assert!(
            max_abs_diff(&num, &fused.3) < 1e-7,
            "{what}: d b_hh vs finite differences"
        );
    }
}

#[test]
fn fused_recurrence_runs_without_autodiff_in_f32() {
    // 260 rows: the gemm path; 33 and 6 rows: the few-rows product, with full and partial tiles.
    for (b, len, h) in [(260, 8, 24), (33, 70, 48), (6, 30, 80)] {
        recurrence_f32(b, len, h);
    }
}

fn recurrence_f32(b: usize, len: usize, h: usize) {
    let dev = cpu();
    let lengths: Vec<usize> = (0..b).map(|i| 1 + (i * 7) % len).collect();
    for case in cases() {
        let gh = case.cell.gates() * h;
        let dirs = case.directions;
        let f32 = |t: Tensor<1>| t.cast(DType::F32);
        let x = f32(f64_tensor(
            values(b * len * dirs * gh, 5, 1.0),
            [b * len * dirs * gh],
            &dev,
        ))
        .reshape([b, len, dirs * gh]);
        let w = f32(f64_tensor(
            values(dirs * gh * h, 6, 0.3),
            [dirs * gh * h],
            &dev,
        ))
        .reshape([dirs * gh, h]);
        let bias = f32(f64_tensor(values(dirs * gh, 7, 0.3), [dirs * gh], &dev));
        let m = f32(f64_tensor(mask(&lengths, len), [b * len], &dev)).reshape([b, len]);
        let options = RecurrenceOptions {
            cell: case.cell,
            directions: dirs,
        };
        let (fused, composite) = both(|| {
            to_vec(kernels::recurrence(
                x.clone(),
                w.clone(),
                bias.clone(),
                m.clone(),
                options,
            ))
        });
        let d = max_abs_diff(&fused, &composite);
        assert!(
            d < 1e-5,
            "{:?} × {dirs}: f32 fused vs composite {d}",
            case.cell
        );
    }
}

/// PyTorch's parameters of one direction of one layer, as f64 or f32.
fn direction(fx: &Fixture, prefix: &str, suffix: &str, dtype: DType, dev: &Device) -> Direction {
    let t2 = |name: &str| -> Param<Tensor<2>> {
        let key = format!("{prefix}.{name}{suffix}");
        let shape = fx.shape(&key);
        Param::from_tensor(f64_tensor(fx.f64(&key), [shape[0], shape[1]], dev).cast(dtype))
    };
    let t1 = |name: &str| -> Param<Tensor<1>> {
        let key = format!("{prefix}.{name}{suffix}");
        Param::from_tensor(f64_tensor(fx.f64(&key), [fx.shape(&key)[0]], dev).cast(dtype))
    };
    Direction {
        weight_ih: t2("weight_ih"),
        weight_hh: t2("weight_hh"),
        bias_ih: t1("bias_ih"),
        bias_hh: t1("bias_hh"),
    }
}

#[test]
fn lstm_and_gru_stacks_match_pytorch() {
    let fx = Fixture::open("recurrent/parity.safetensors");
    let lengths: Vec<usize> = fx.f64("lengths").iter().map(|&l| l as usize).collect();
    for (name, cell, dirs) in [
        ("lstm", Cell::Lstm, 1),
        ("bilstm", Cell::Lstm, 2),
        ("gru", Cell::Gru, 1),
        ("bigru", Cell::Gru, 2),
    ] {
        for (dtype, tol_out, tol_grad) in [(DType::F64, 1e-12, 1e-11), (DType::F32, 2e-6, 2e-5)] {
            for fused in [true, false] {
                kernels::set_fused(fused);
                let dev = cpu().autodiff();
                let layers = (0..2)
                    .map(|l| RecurrentLayer {
                        forward: direction(&fx, name, &format!("_l{l}"), dtype, &dev),
                        reverse: (dirs == 2)
                            .then(|| direction(&fx, name, &format!("_l{l}_reverse"), dtype, &dev)),
                    })
                    .collect();
                let rnn = Recurrent {
                    layer: layers,
                    dropout: DropoutConfig::new(0.0).init(),
                    cell,
                };
                let xs = fx.shape(&format!("{name}.x"));
                let [b, len, d_in] = [xs[0], xs[1], xs[2]];
                let x = f64_tensor(fx.f64(&format!("{name}.x")), [b, len, d_in], &dev)
                    .cast(dtype)
                    .require_grad();
                let m = f64_tensor(mask(&lengths, len), [b, len], &dev).cast(dtype);
                let y = rnn.forward(x.clone(), m);
                let width = y.dims()[2];
                let up = f64_tensor(fx.f64(&format!("{name}.upstream")), [b, len, width], &dev)
                    .cast(dtype);
                let g = (y.clone() * up).sum().backward();
                let what = format!("{name} {dtype:?} fused={fused}");
                let d = max_abs_diff(&to_vec(y), &fx.f64(&format!("{name}.output")));
                assert!(d < tol_out, "{what}: output differs from PyTorch by {d}");
                let d = max_abs_diff(
                    &to_vec(x.grad(&g).unwrap()),
                    &fx.f64(&format!("{name}.grad.x")),
                );
                assert!(d < tol_grad, "{what}: d x differs from PyTorch by {d}");
                for (l, layer) in rnn.layer.iter().enumerate() {
                    let dirs: Vec<(&Direction, &str)> = std::iter::once((&layer.forward, ""))
                        .chain(layer.reverse.as_ref().map(|r| (r, "_reverse")))
                        .collect();
                    for (dir, suffix) in dirs {
                        let grads = [
                            ("weight_ih", to_vec(dir.weight_ih.grad(&g).unwrap())),
                            ("weight_hh", to_vec(dir.weight_hh.grad(&g).unwrap())),
                            ("bias_ih", to_vec(dir.bias_ih.grad(&g).unwrap())),
                            ("bias_hh", to_vec(dir.bias_hh.grad(&g).unwrap())),
                        ];
                        for (param, ours) in grads {
                            let key = format!("{name}.grad.{param}_l{l}{suffix}");
                            let d = max_abs_diff(&ours, &fx.f64(&key));
                            assert!(d < tol_grad, "{what}: {key} differs from PyTorch by {d}");
                        }
                    }
                }
            }
        }
    }
    kernels::set_fused(true);
}

/// A corpus file of the demo's generated sentences.
fn corpus_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("corpus.txt");
    std::fs::write(&path, positio::tools::demo::corpus(2000, 5).join("\n")).unwrap();
    path
}

fn run_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = positio(args);
    assert!(ok, "positio {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// A left-to-right LSTM as a causal LM: it learns, `eval lm` measures it, a killed run resumes
/// to the same weights, and a bidirectional encoder is refused for causal LM before any work.
#[test]
fn recurrent_causal_lm_learns_resumes_and_is_evaluated() {
    let dir = tmp("recurrent-clm");
    let corpus = corpus_file(&dir);
    let args = |out: &std::path::Path, arch: &str| -> Vec<String> {
        [
            "pretrain",
            "--corpus",
            corpus.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--arch",
            arch,
            "--objective",
            "clm",
            "--vocab-size",
            "200",
            "--layers",
            "2",
            "--hidden",
            "32",
            "--max-len",
            "32",
            "--batch-size",
            "8",
            "--lr",
            "1e-2",
            "--steps",
            "40",
            "--save-every",
            "5",
            "--eval-every",
            "40",
            "--log-every",
            "1",
            "--seed",
            "7",
        ]
        .map(String::from)
        .to_vec()
    };
    let straight = dir.join("straight");
    let a = args(&straight, "lstm");
    run_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (first, _) = assert_learned(&straight, 1.0);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["arch"], "lstm");
    assert_eq!(config["model_type"], "positio");
    assert_eq!(config["position_embedding_type"], "none");
    // PyTorch's parameter names.
    let names = positio::hf::Weights::load(&straight.join("model.safetensors"))
        .unwrap()
        .names();
    for name in [
        "bert.encoder.rnn.weight_ih_l0",
        "bert.encoder.rnn.bias_hh_l1",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }

    let killed = dir.join("killed");
    kill_after_checkpoint(&args(&killed, "lstm"), &killed, 10);
    let mut resumed = args(&killed, "lstm");
    resumed.push("--resume".into());
    let log = run_ok(&resumed.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(log.contains("resuming from"), "{log}");
    assert!(
        std::fs::read(straight.join("model.safetensors")).unwrap()
            == std::fs::read(killed.join("model.safetensors")).unwrap(),
        "resumed weights differ from uninterrupted weights"
    );

    let eval = run_ok(&[
        "eval",
        "lm",
        "--model",
        straight.to_str().unwrap(),
        "--data",
        corpus.to_str().unwrap(),
        "--len",
        "64",
    ]);
    let report: serde_json::Value = serde_json::from_str(eval.trim()).unwrap();
    let ppl = report["perplexity"].as_f64().unwrap();
    assert!(ppl.is_finite() && ppl < (first).exp(), "perplexity {ppl}");

    let refused = dir.join("refused");
    let a = args(&refused, "bilstm");
    let (ok, _, stderr) = positio(&a);
    assert!(!ok);
    assert!(stderr.contains("bilstm is bidirectional"), "{stderr}");
    assert!(!refused.join("data").exists(), "refused before tokenizing");
}

/// `positio init` makes fresh BiLSTM / BiGRU directories; NER (with a CRF) and sequence
/// classification fine-tune, evaluate and predict with them like with a Transformer.
#[test]
fn recurrent_encoders_fine_tune_for_ner_and_classification() {
    let dir = tmp("recurrent-heads");
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let corpus = corpus_file(&dir);
    let tokenizer = dir.join("tokenizer.json");
    run_ok(&[
        "tokenizer",
        "train",
        "--corpus",
        corpus.to_str().unwrap(),
        "--corpus",
        fixtures.join("conll/train.iob1").to_str().unwrap(),
        "--vocab-size",
        "400",
        "--out",
        tokenizer.to_str().unwrap(),
    ]);
    for arch in ["bilstm", "bigru"] {
        let base = dir.join(arch);
        let log = run_ok(&[
            "init",
            "--out",
            base.to_str().unwrap(),
            "--tokenizer",
            tokenizer.to_str().unwrap(),
            "--arch",
            arch,
            "--layers",
            "2",
            "--hidden",
            "48",
        ]);
        assert!(log.contains(&format!("a fresh {arch} encoder")), "{log}");
        let info = run_ok(&["info", base.to_str().unwrap()]);
        assert!(info.contains("24 units per direction"), "{info}");
        let (ok, _, stderr) = positio(&[
            "init",
            "--out",
            base.to_str().unwrap(),
            "--tokenizer",
            tokenizer.to_str().unwrap(),
        ]);
        assert!(!ok && stderr.contains("already exists"), "{stderr}");

        let ner = dir.join(format!("{arch}-ner"));
        run_ok(&[
            "finetune",
            "ner",
            "--model",
            base.to_str().unwrap(),
            "--train",
            fixtures.join("conll/train.iob1").to_str().unwrap(),
            "--dev",
            fixtures.join("conll/dev.iob1").to_str().unwrap(),
            "--out",
            ner.to_str().unwrap(),
            "--epochs",
            "3",
            "--lr",
            "1e-2",
            "--batch-size",
            "16",
            "--max-len",
            "48",
            "--crf",
            "--save-every",
            "0",
        ]);
        let json = dir.join(format!("{arch}-report.json"));
        run_ok(&[
            "eval",
            "ner",
            "--model",
            ner.to_str().unwrap(),
            "--data",
            fixtures.join("conll/dev.iob1").to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let f1 = report["entity"]["micro"]["f1"].as_f64().unwrap();
        eprintln!("{arch}: entity F1 {f1}");
        assert!(f1 > 0.1, "{arch}: entity F1 {f1} after fine-tuning");
        let tags = run_ok(&[
            "predict",
            "ner",
            "--model",
            ner.to_str().unwrap(),
            "--text",
            "EU rejects German call",
        ]);
        assert!(!tags.contains("error"), "{tags}");

        let cls = dir.join(format!("{arch}-cls"));
        run_ok(&[
            "finetune",
            "classify",
            "--model",
            base.to_str().unwrap(),
            "--train",
            fixtures.join("classify/train.tsv").to_str().unwrap(),
            "--dev",
            fixtures.join("classify/dev.tsv").to_str().unwrap(),
            "--out",
            cls.to_str().unwrap(),
            "--epochs",
            "2",
            "--lr",
            "5e-3",
            "--batch-size",
            "8",
            "--save-every",
            "0",
        ]);
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cls.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(
            config["classifier_pooling"], "mean",
            "recurrent default pooling"
        );
        assert_eq!(config["arch"], arch);
        let out = run_ok(&[
            "predict",
            "classify",
            "--model",
            cls.to_str().unwrap(),
            "--text",
            "net sales rose .",
        ]);
        let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert!(line["label"].is_string(), "{out}");
    }
}
