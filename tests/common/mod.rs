//! Shared helpers for the integration tests: deterministic data and finite-difference checks.
#![allow(dead_code)]

use burn::tensor::{DType, Device, Tensor, TensorData};

pub fn cpu() -> Device {
    positio::runtime::cpu()
}

/// Deterministic pseudo-random values in [-scale, scale) (SplitMix64).
pub fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// An f64 tensor on `device`.
pub fn f64_tensor<const D: usize>(v: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Central finite differences of a scalar function of one flat input vector, at `indices`.
pub fn numeric_grad(f: &dyn Fn(&[f64]) -> f64, x: &[f64], indices: &[usize], h: f64) -> Vec<f64> {
    indices
        .iter()
        .map(|&i| {
            let mut xp = x.to_vec();
            let mut xm = x.to_vec();
            xp[i] += h;
            xm[i] -= h;
            (f(&xp) - f(&xm)) / (2.0 * h)
        })
        .collect()
}

/// Every `stride`-th index below `n`, plus the last: a spread-out sample for FD checks.
pub fn sample_indices(n: usize, count: usize) -> Vec<usize> {
    let stride = (n / count).max(1);
    let mut v: Vec<usize> = (0..n).step_by(stride).collect();
    if *v.last().unwrap() != n - 1 {
        v.push(n - 1);
    }
    v
}
