//! Each fused kernel against its composite twin (forward and gradients) and against finite
//! differences, in f64.

mod common;
use common::*;

use positio::kernels;

#[test]
fn layer_norm_matches_composite_and_finite_differences() {
    let dev = cpu().autodiff();
    let (rows, width) = (6, 10);
    let x0 = values(rows * width, 1, 2.0);
    let w0: Vec<f64> = values(width, 2, 1.0).iter().map(|v| 1.0 + v).collect();
    let b0 = values(width, 3, 0.5);
    let upstream = values(rows * width, 4, 1.0);

    // loss = sum(LN(x) * upstream): a generic linear functional of the output.
    let loss = |x: &[f64], w: &[f64], b: &[f64]| {
        let x = f64_tensor(x.to_vec(), [2, rows / 2, width], &dev).require_grad();
        let w = f64_tensor(w.to_vec(), [width], &dev).require_grad();
        let b = f64_tensor(b.to_vec(), [width], &dev).require_grad();
        let u = f64_tensor(upstream.clone(), [2, rows / 2, width], &dev);
        let y = kernels::layer_norm(x.clone(), w.clone(), b.clone(), 1e-5);
        let l = (y.clone() * u).sum();
        let g = l.backward();
        (
            to_vec(y),
            to_vec(x.grad(&g).unwrap()),
            to_vec(w.grad(&g).unwrap()),
            to_vec(b.grad(&g).unwrap()),
        )
    };
    let (fused, composite) = both(|| loss(&x0, &w0, &b0));
    assert!(
        max_abs_diff(&fused.0, &composite.0) < 1e-12,
        "forward differs: {}",
        max_abs_diff(&fused.0, &composite.0)
    );
    assert!(max_abs_diff(&fused.1, &composite.1) < 1e-12, "dx differs");
    assert!(
        max_abs_diff(&fused.2, &composite.2) < 1e-12,
        "dweight differs"
    );
    assert!(
        max_abs_diff(&fused.3, &composite.3) < 1e-12,
        "dbias differs"
    );

    let value = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        let y = loss(x, w, b).0;
        y.iter().zip(&upstream).map(|(a, b)| a * b).sum()
    };
    let idx = sample_indices(rows * width, 15);
    let num = numeric_grad(&|x| value(x, &w0, &b0), &x0, &idx, 1e-6);
    let ana: Vec<f64> = idx.iter().map(|&i| fused.1[i]).collect();
    assert!(
        max_abs_diff(&num, &ana) < 1e-7,
        "dx vs finite differences: {num:?} {ana:?}"
    );
    let idx: Vec<usize> = (0..width).collect();
    let num = numeric_grad(&|w| value(&x0, w, &b0), &w0, &idx, 1e-6);
    assert!(
        max_abs_diff(&num, &fused.2) < 1e-7,
        "dweight vs finite differences"
    );
    let num = numeric_grad(&|b| value(&x0, &w0, b), &b0, &idx, 1e-6);
    assert!(
        max_abs_diff(&num, &fused.3) < 1e-7,
        "dbias vs finite differences"
    );
}

#[test]
fn layer_norm_runs_without_autodiff() {
    let dev = cpu();
    let x = f64_tensor(values(40, 5, 1.0), [4, 10], &dev);
    let w = f64_tensor(vec![1.0; 10], [10], &dev);
    let b = f64_tensor(vec![0.0; 10], [10], &dev);
    let (fused, composite) =
        both(|| to_vec(kernels::layer_norm(x.clone(), w.clone(), b.clone(), 1e-12)));
    assert!(max_abs_diff(&fused, &composite) < 1e-5);
}

/// Without autodiff, LayerNorm and bias + activation overwrite their input when it is a
/// temporary nothing else holds (`x * 1`, `cast`) and leave a shared one alone.
#[test]
fn row_kernels_overwrite_only_unshared_inputs() {
    use burn::tensor::DType;
    use positio::model::config::Activation;
    let dev = cpu();
    let (rows, width) = (70, 24);
    for dtype in [DType::F64, DType::F32] {
        let x = f64_tensor(values(rows * width, 7, 2.0), [rows, width], &dev).cast(dtype);
        let w = f64_tensor(values(width, 8, 1.0), [width], &dev).cast(dtype);
        let b = f64_tensor(values(width, 9, 1.0), [width], &dev).cast(dtype);
        let before = to_vec(x.clone());
        let (fused, composite) = both(|| {
            let norm = kernels::layer_norm(x.clone() * 1.0, w.clone(), b.clone(), 1e-12);
            let act = kernels::bias_activation(x.clone() * 1.0, b.clone(), Activation::Gelu);
            let shared = kernels::layer_norm(x.clone(), w.clone(), b.clone(), 1e-12);
            [to_vec(norm), to_vec(act), to_vec(shared)]
        });
        for (f, c) in fused.iter().zip(&composite) {
            assert!(
                max_abs_diff(f, c) < 1e-5,
                "{dtype:?}: {}",
                max_abs_diff(f, c)
            );
        }
        assert_eq!(
            to_vec(x),
            before,
            "{dtype:?}: a shared input was overwritten"
        );
    }
}

#[test]
fn cross_entropy_matches_composite_and_finite_differences() {
    use burn::tensor::{Int, Tensor, TensorData};
    let dev = cpu().autodiff();
    let (rows, classes) = (7, 37);
    let x0 = values(rows * classes, 31, 4.0);
    let targets = vec![0i64, 36, 5, 5, 17, 2, 30];
    let run = |x: &[f64]| {
        let logits = f64_tensor(x.to_vec(), [rows, classes], &dev).require_grad();
        let t = Tensor::<1, Int>::from_data(TensorData::new(targets.clone(), [rows]), &dev);
        let loss = kernels::cross_entropy(logits.clone(), t);
        let g = loss.clone().backward();
        (to_vec(loss)[0], to_vec(logits.grad(&g).unwrap()))
    };
    let (fused, composite) = both(|| run(&x0));
    assert!(
        (fused.0 - composite.0).abs() < 1e-12,
        "loss {} vs {}",
        fused.0,
        composite.0
    );
    assert!(
        max_abs_diff(&fused.1, &composite.1) < 1e-12,
        "gradient differs"
    );
    let idx = sample_indices(x0.len(), 25);
    let num = numeric_grad(&|x| run(x).0, &x0, &idx, 1e-6);
    let ana: Vec<f64> = idx.iter().map(|&i| fused.1[i]).collect();
    assert!(
        max_abs_diff(&num, &ana) < 1e-8,
        "vs finite differences: {num:?} {ana:?}"
    );
}

#[test]
fn cross_entropy_f32_fused_agrees_with_composite() {
    use burn::tensor::{Int, Tensor, TensorData};
    let dev = cpu().autodiff();
    let (rows, classes) = (33, 1000);
    let x: Vec<f32> = values(rows * classes, 41, 8.0)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let targets: Vec<i64> = (0..rows as i64)
        .map(|r| (r * 97) % classes as i64)
        .collect();
    let run = || {
        let logits = Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, classes]), &dev)
            .require_grad();
        let t = Tensor::<1, Int>::from_data(TensorData::new(targets.clone(), [rows]), &dev);
        let loss = kernels::cross_entropy(logits.clone(), t);
        let g = loss.clone().backward();
        (to_vec(loss)[0], to_vec(logits.grad(&g).unwrap()))
    };
    let (fused, composite) = both(run);
    assert!(
        (fused.0 - composite.0).abs() < 1e-5 * composite.0.abs(),
        "loss {} vs {}",
        fused.0,
        composite.0
    );
    assert!(
        max_abs_diff(&fused.1, &composite.1) < 1e-7,
        "gradient differs by {}",
        max_abs_diff(&fused.1, &composite.1)
    );
}

#[test]
fn bias_activation_matches_composite_and_finite_differences() {
    use positio::model::config::Activation;
    let dev = cpu().autodiff();
    let (rows, width) = (9, 13);
    let x0 = values(rows * width, 51, 3.0);
    let b0 = values(width, 52, 1.0);
    let upstream = values(rows * width, 53, 1.0);
    for act in [Activation::Gelu, Activation::GeluTanh, Activation::Relu] {
        let run = |x: &[f64], b: &[f64]| {
            let x = f64_tensor(x.to_vec(), [rows, width], &dev).require_grad();
            let b = f64_tensor(b.to_vec(), [width], &dev).require_grad();
            let y = kernels::bias_activation(x.clone(), b.clone(), act);
            let l = (y.clone() * f64_tensor(upstream.clone(), [rows, width], &dev)).sum();
            let g = l.clone().backward();
            (
                to_vec(l)[0],
                to_vec(y),
                to_vec(x.grad(&g).unwrap()),
                to_vec(b.grad(&g).unwrap()),
            )
        };
        let (fused, composite) = both(|| run(&x0, &b0));
        assert!(
            max_abs_diff(&fused.1, &composite.1) < 1e-12,
            "{act:?} forward"
        );
        assert!(
            max_abs_diff(&fused.2, &composite.2) < 1e-10,
            "{act:?} dx {}",
            max_abs_diff(&fused.2, &composite.2)
        );
        assert!(
            max_abs_diff(&fused.3, &composite.3) < 1e-10,
            "{act:?} dbias"
        );
        let idx = sample_indices(x0.len(), 30);
        let num = numeric_grad(&|x| run(x, &b0).0, &x0, &idx, 1e-6);
        let ana: Vec<f64> = idx.iter().map(|&i| fused.2[i]).collect();
        // ReLU's kink: finite differences are only valid away from 0 (none of our samples is near it).
        assert!(
            max_abs_diff(&num, &ana) < 1e-7,
            "{act:?} dx vs finite differences"
        );
        let idx: Vec<usize> = (0..width).collect();
        let num = numeric_grad(&|b| run(&x0, b).0, &b0, &idx, 1e-6);
        assert!(
            max_abs_diff(&num, &fused.3) < 1e-7,
            "{act:?} dbias vs finite differences"
        );
    }
}

#[test]
fn bias_gelu_f32_fused_agrees_with_composite() {
    use burn::tensor::{Tensor, TensorData};
    use positio::model::config::Activation;
    let dev = cpu().autodiff();
    let (rows, width) = (64, 300);
    let x: Vec<f32> = values(rows * width, 61, 6.0)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let b: Vec<f32> = values(width, 62, 1.0).iter().map(|&v| v as f32).collect();
    let run = || {
        let xt =
            Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, width]), &dev).require_grad();
        let bt = Tensor::<1>::from_data(TensorData::new(b.clone(), [width]), &dev).require_grad();
        let y = kernels::bias_activation(xt.clone(), bt.clone(), Activation::Gelu);
        let g = y.clone().sum().backward();
        (
            to_vec(y),
            to_vec(xt.grad(&g).unwrap()),
            to_vec(bt.grad(&g).unwrap()),
        )
    };
    let (fused, composite) = both(run);
    // The vectorised erf is within 5e-7 of libm's: outputs within |x| * 2.5e-7.
    assert!(
        max_abs_diff(&fused.0, &composite.0) < 2e-6,
        "forward {}",
        max_abs_diff(&fused.0, &composite.0)
    );
    assert!(
        max_abs_diff(&fused.1, &composite.1) < 2e-6,
        "dx {}",
        max_abs_diff(&fused.1, &composite.1)
    );
    assert!(
        max_abs_diff(&fused.2, &composite.2) < 1e-4,
        "dbias {}",
        max_abs_diff(&fused.2, &composite.2)
    );
}

mod attention {
    use super::*;
    use burn::nn::DropoutConfig;
    use burn::tensor::{DType, Tensor};
    use positio::kernels::ScoreBias;
    use positio::model::position::{alibi_bias, Rope};

    const B: usize = 2;
    const S: usize = 6;
    const H: usize = 2;
    const D: usize = 4;

    struct Case {
        causal: bool,
        bias: bool,
        rope: bool,
    }

    fn cases() -> Vec<Case> {
        let mut v = Vec::new();
        for causal in [false, true] {
            for (bias, rope) in [(false, false), (true, false), (false, true), (true, true)] {
                v.push(Case { causal, bias, rope });
            }
        }
        v
    }

    /// sum(attention(q, k, v) * upstream) and its gradients w.r.t. q, k, v and the bias.
    fn run(
        case: &Case,
        q: &[f64],
        k: &[f64],
        v: &[f64],
        bias: &[f64],
        p: f64,
    ) -> (f64, Vec<Vec<f64>>) {
        let dev = cpu().autodiff();
        let t = |x: &[f64]| f64_tensor(x.to_vec(), [B, S, H, D], &dev).require_grad();
        let (q, k, v) = (t(q), t(k), t(v));
        let pos = case
            .bias
            .then(|| f64_tensor(bias.to_vec(), [H, S, S], &dev).require_grad());
        // The second sequence has two padding positions.
        let mask = vec![vec![1u8; S], [vec![1u8; S - 2], vec![0u8; 2]].concat()];
        let sb = ScoreBias::new(&mask, case.causal, pos.clone(), &dev);
        let rope = case
            .rope
            .then(|| Rope::new(D, 10000.0, None).tables(S, &dev));
        let dropout = DropoutConfig::new(p).init();
        let out = kernels::attention(
            q.clone(),
            k.clone(),
            v.clone(),
            &sb,
            rope.as_ref(),
            &dropout,
        );
        let up = f64_tensor(values(B * S * H * D, 99, 1.0), [B, S, H, D], &dev);
        let loss = (out * up).sum();
        let g = loss.clone().backward();
        let mut grads = vec![
            to_vec(q.grad(&g).unwrap()),
            to_vec(k.grad(&g).unwrap()),
            to_vec(v.grad(&g).unwrap()),
        ];
        if let Some(pos) = pos {
            grads.push(to_vec(pos.grad(&g).unwrap()));
        }
        (to_vec(loss)[0], grads)
    }

    fn inputs() -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = B * S * H * D;
        (
            values(n, 71, 1.5),
            values(n, 72, 1.5),
            values(n, 73, 1.0),
            to_vec(alibi_bias(H, S, &cpu()).cast(DType::F64)),
        )
    }

    #[test]
    fn fused_attention_matches_composite_in_every_configuration() {
        let (q, k, v, bias) = inputs();
        let bias: Vec<f64> = bias
            .iter()
            .zip(values(H * S * S, 74, 0.5))
            .map(|(a, b)| a + b)
            .collect();
        for case in cases() {
            let (fused, composite) = both(|| run(&case, &q, &k, &v, &bias, 0.0));
            let label = format!(
                "causal={} bias={} rope={}",
                case.causal, case.bias, case.rope
            );
            assert!((fused.0 - composite.0).abs() < 1e-12, "{label}: output");
            for (i, (a, b)) in fused.1.iter().zip(&composite.1).enumerate() {
                assert!(
                    max_abs_diff(a, b) < 1e-12,
                    "{label}: gradient {i} differs by {}",
                    max_abs_diff(a, b)
                );
            }
        }
    }

    #[test]
    fn fused_attention_gradients_match_finite_differences_with_dropout() {
        // Dropout masks are a function of the seed, so the fused op is deterministic given it.
        let (q, k, v, bias) = inputs();
        for case in cases() {
            let p = 0.25;
            let seeded = |q: &[f64], k: &[f64], v: &[f64], b: &[f64]| {
                kernels::seed_dropout(1234);
                run(&case, q, k, v, b, p)
            };
            let (_, grads) = seeded(&q, &k, &v, &bias);
            let label = format!(
                "causal={} bias={} rope={}",
                case.causal, case.bias, case.rope
            );
            let idx = sample_indices(q.len(), 12);
            let check = |name: &str,
                         analytic: &[f64],
                         f: &dyn Fn(&[f64]) -> f64,
                         x: &[f64],
                         idx: &[usize]| {
                let num = numeric_grad(f, x, idx, 1e-6);
                let ana: Vec<f64> = idx.iter().map(|&i| analytic[i]).collect();
                assert!(
                    max_abs_diff(&num, &ana) < 1e-7,
                    "{label}: d{name} vs finite differences: {num:?} {ana:?}"
                );
            };
            check("q", &grads[0], &|x| seeded(x, &k, &v, &bias).0, &q, &idx);
            check("k", &grads[1], &|x| seeded(&q, x, &v, &bias).0, &k, &idx);
            check("v", &grads[2], &|x| seeded(&q, &k, x, &bias).0, &v, &idx);
            if case.bias {
                check(
                    "bias",
                    &grads[3],
                    &|x| seeded(&q, &k, &v, x).0,
                    &bias,
                    &sample_indices(bias.len(), 12),
                );
            }
        }
        // Dropout really drops: the output differs from the undropped one.
        let case = Case {
            causal: false,
            bias: false,
            rope: false,
        };
        kernels::seed_dropout(1);
        let dropped = run(&case, &q, &k, &v, &bias, 0.5).0;
        assert!((dropped - run(&case, &q, &k, &v, &bias, 0.0).0).abs() > 1e-6);
    }

    #[test]
    fn fused_attention_f32_agrees_with_composite() {
        let dev = cpu();
        let (b, s, h, d) = (3, 40, 4, 16);
        let mk = |seed| {
            Tensor::<4>::from_data(
                burn::tensor::TensorData::new(
                    values(b * s * h * d, seed, 2.0)
                        .iter()
                        .map(|&v| v as f32)
                        .collect::<Vec<_>>(),
                    [b, s, h, d],
                ),
                &dev,
            )
        };
        let (q, k, v) = (mk(81), mk(82), mk(83));
        let mask = vec![
            vec![1u8; s],
            vec![1u8; s - 7].into_iter().chain(vec![0; 7]).collect(),
            vec![1u8; 1].into_iter().chain(vec![0; s - 1]).collect(),
        ];
        let sb = ScoreBias::new(&mask, false, Some(alibi_bias(h, s, &dev)), &dev);
        let rope = Rope::new(d, 10000.0, None).tables(s, &dev);
        let dropout = DropoutConfig::new(0.1).init();
        let (fused, composite) = both(|| {
            to_vec(kernels::attention(
                q.clone(),
                k.clone(),
                v.clone(),
                &sb,
                Some(&rope),
                &dropout,
            ))
        });
        assert!(
            max_abs_diff(&fused, &composite) < 1e-5,
            "{}",
            max_abs_diff(&fused, &composite)
        );
    }
}

#[test]
fn linear_matches_composite_and_finite_differences() {
    let dev = cpu().autodiff();
    // 70 rows: all-core gemm, more rows than one parallel task; 5 rows: the few-rows path.
    for rows in [70, 5] {
        linear_gradients(&dev, rows);
    }
}

fn linear_gradients(dev: &burn::tensor::Device, rows: usize) {
    let dev = dev.clone();
    let (d_in, d_out) = (9, 5);
    let x0 = values(rows * d_in, 41, 1.0);
    let w0 = values(d_out * d_in, 42, 0.5);
    let b0 = values(d_out, 43, 0.5);
    let upstream = values(rows * d_out, 44, 1.0);
    for with_bias in [true, false] {
        // loss = sum(linear(x) * upstream).
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let x = f64_tensor(x.to_vec(), [rows, d_in], &dev).require_grad();
            let w = f64_tensor(w.to_vec(), [d_out, d_in], &dev).require_grad();
            let b = f64_tensor(b.to_vec(), [d_out], &dev).require_grad();
            let u = f64_tensor(upstream.clone(), [rows, d_out], &dev);
            let y = kernels::linear(x.clone(), w.clone(), with_bias.then(|| b.clone()));
            let g = (y.clone() * u).sum().backward();
            (
                to_vec(y),
                to_vec(x.grad(&g).unwrap()),
                to_vec(w.grad(&g).unwrap()),
                b.grad(&g).map(to_vec),
            )
        };
        let (fused, composite) = both(|| loss(&x0, &w0, &b0));
        assert!(
            max_abs_diff(&fused.0, &composite.0) < 1e-12,
            "forward differs"
        );
        assert!(max_abs_diff(&fused.1, &composite.1) < 1e-12, "dx differs");
        assert!(
            max_abs_diff(&fused.2, &composite.2) < 1e-12,
            "dweight differs"
        );
        assert_eq!(
            fused.3.is_some(),
            with_bias,
            "a missing bias gets no gradient"
        );
        if let (Some(a), Some(b)) = (&fused.3, &composite.3) {
            assert!(max_abs_diff(a, b) < 1e-12, "dbias differs");
        }
        let value = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            let y = loss(x, w, b).0;
            y.iter().zip(&upstream).map(|(a, b)| a * b).sum()
        };
        let idx = sample_indices(rows * d_in, 12);
        let num = numeric_grad(&|x| value(x, &w0, &b0), &x0, &idx, 1e-6);
        let ana: Vec<f64> = idx.iter().map(|&i| fused.1[i]).collect();
        assert!(max_abs_diff(&num, &ana) < 1e-7, "dx vs finite differences");
        let idx = sample_indices(d_out * d_in, 12);
        let num = numeric_grad(&|w| value(&x0, w, &b0), &w0, &idx, 1e-6);
        let ana: Vec<f64> = idx.iter().map(|&i| fused.2[i]).collect();
        assert!(
            max_abs_diff(&num, &ana) < 1e-7,
            "dweight vs finite differences"
        );
        if with_bias {
            let idx: Vec<usize> = (0..d_out).collect();
            let num = numeric_grad(&|b| value(&x0, &w0, b), &b0, &idx, 1e-6);
            assert!(
                max_abs_diff(&num, fused.3.as_ref().unwrap()) < 1e-7,
                "dbias vs finite differences"
            );
        }
    }
}

#[test]
fn linear_runs_without_autodiff_in_f32() {
    let dev = cpu();
    // 1..64 rows take the few-rows path (70 outputs: a full column block of 64 and a partial
    // one), more rows the all-core gemm.
    for (rows, d_in, d_out) in [
        (130, 24, 17),
        (1, 40, 70),
        (7, 40, 70),
        (16, 40, 70),
        (64, 40, 70),
        (65, 40, 70),
    ] {
        let x = f64_tensor(values(rows * d_in, 45, 1.0), [rows, d_in], &dev)
            .cast(burn::tensor::DType::F32);
        let w = f64_tensor(values(d_out * d_in, 46, 1.0), [d_out, d_in], &dev)
            .cast(burn::tensor::DType::F32);
        let b = f64_tensor(values(d_out, 47, 1.0), [d_out], &dev).cast(burn::tensor::DType::F32);
        let (fused, composite) =
            both(|| to_vec(kernels::linear(x.clone(), w.clone(), Some(b.clone()))));
        assert!(
            max_abs_diff(&fused, &composite) < 1e-5,
            "{rows} rows: {}",
            max_abs_diff(&fused, &composite)
        );
    }
}
