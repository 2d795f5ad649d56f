//! The recurrent layers: the fused time loop against its composite twin and finite differences
//! (f64), and whole LSTM / GRU stacks against PyTorch's `nn.LSTM` / `nn.GRU` on the same
//! weights (fixture from `scripts/reference/recurrent_parity.py`).

mod common;
use common::*;

use burn::module::Param;
use burn::nn::DropoutConfig;
use burn::tensor::{DType, Device, Tensor};
use positio::kernels::{self, recurrence::Cell, RecurrenceOptions};
use positio::model::recurrent::{Direction, Recurrent, RecurrentLayer};

fn both<R>(f: impl Fn() -> R) -> (R, R) {
    kernels::set_fused(true);
    let fused = f();
    kernels::set_fused(false);
    let composite = f();
    kernels::set_fused(true);
    (fused, composite)
}

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
    let dev = cpu().autodiff();
    let (b, len, h) = (3, 5, 4);
    let lengths = [5, 3, 1];
    for case in cases() {
        let gh = case.cell.gates() * h;
        let dirs = case.directions;
        let x0 = values(b * len * dirs * gh, 1, 1.0);
        let w0 = values(dirs * gh * h, 2, 0.6);
        let b0 = values(dirs * gh, 3, 0.5);
        let up = values(b * len * dirs * h, 4, 1.0);
        let m = mask(&lengths, len);
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
    let dev = cpu();
    // 33 rows × 70 steps × 48 units: sizes past one SIMD vector and one gemm block.
    let (b, len, h) = (33, 70, 48);
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
