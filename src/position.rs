//! Positional encodings: the math of each, independent of the model that uses it.
//!
//! - absolute: a learned table, lives in `encoder::Embeddings`;
//! - sinusoidal: [`sinusoidal_table`], added to the token embeddings;
//! - rope: [`Rope`], rotates queries and keys in every layer;
//! - alibi: [`alibi_slopes`] and [`alibi_bias`], a fixed per-head bias on the scores;
//! - t5_bias: [`t5_bucket`] indexes a learned per-head table, shared by all layers;
//! - none: nothing.

use crate::config::{RopeScaling, RopeScalingKind};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Fixed sinusoidal position embeddings, row-major `[len, dim]`:
/// `PE(p, 2i) = sin(p / 10000^(2i/d))`, `PE(p, 2i+1) = cos(p / 10000^(2i/d))`.
pub fn sinusoidal_table(len: usize, dim: usize) -> Vec<f32> {
    let mut table = vec![0f32; len * dim];
    for p in 0..len {
        for i in 0..dim / 2 {
            let angle = p as f64 / 10000f64.powf(2.0 * i as f64 / dim as f64);
            table[p * dim + 2 * i] = angle.sin() as f32;
            table[p * dim + 2 * i + 1] = angle.cos() as f32;
        }
    }
    table
}

/// ALiBi head slopes (Press et al. 2022): for `n` a power of two, the geometric sequence
/// starting at `2^(-8/n)` with that ratio; otherwise the slopes of the closest smaller power of
/// two followed by every other slope of twice that power, as in the paper's reference code.
pub fn alibi_slopes(n: usize) -> Vec<f64> {
    fn power_of_two(n: usize) -> Vec<f64> {
        let start = 2f64.powf(-8.0 / n as f64);
        (1..=n).map(|i| start.powi(i as i32)).collect()
    }
    if n.is_power_of_two() {
        return power_of_two(n);
    }
    let closest = 1usize << (usize::BITS - 1 - n.leading_zeros());
    let mut slopes = power_of_two(closest);
    slopes.extend(power_of_two(2 * closest).into_iter().step_by(2).take(n - closest));
    slopes
}

/// ALiBi scores bias `[heads, len, len]`: `-slope_h * |i - j|` (symmetric, for bidirectional
/// attention; under a causal mask only `j <= i` survives, which is the paper's form).
pub fn alibi_bias(heads: usize, len: usize, device: &Device) -> Tensor<3> {
    let slopes = alibi_slopes(heads);
    let mut v = Vec::with_capacity(heads * len * len);
    for s in &slopes {
        for i in 0..len {
            for j in 0..len {
                v.push((-s * (i as f64 - j as f64).abs()) as f32);
            }
        }
    }
    Tensor::from_data(TensorData::new(v, [heads, len, len]), device)
}

/// T5's relative position bucket for `relative_position = key_pos - query_pos`
/// (`_relative_position_bucket` of Hugging Face's `modeling_t5.py`, computed in f32 like it):
/// exact buckets for small distances, logarithmic ones up to `max_distance`, and, when
/// bidirectional, separate halves for keys after and before the query.
pub fn t5_bucket(relative_position: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> usize {
    let mut buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let n = if bidirectional {
        buckets /= 2;
        if relative_position > 0 {
            bucket += buckets;
        }
        relative_position.abs()
    } else {
        (-relative_position).max(0)
    };
    let max_exact = buckets / 2;
    if n < max_exact {
        return (bucket + n) as usize;
    }
    let scaled = ((n as f32 / max_exact as f32).ln() / (max_distance as f64 / max_exact as f64).ln() as f32
        * (buckets - max_exact) as f32) as i64;
    (bucket + (max_exact + scaled).min(buckets - 1)) as usize
}

/// Bucket indices `[len, len]` (query × key) for the T5 bias table.
pub fn t5_buckets(len: usize, bidirectional: bool, num_buckets: usize, max_distance: usize, device: &Device) -> Tensor<2, Int> {
    let mut v = Vec::with_capacity(len * len);
    for i in 0..len as i64 {
        for j in 0..len as i64 {
            v.push(t5_bucket(j - i, bidirectional, num_buckets, max_distance) as i64);
        }
    }
    Tensor::from_data(TensorData::new(v, [len, len]), device)
}

/// Rotary position embedding with the "rotate half" pairing (dimension `i` with `i + d/2`, as
/// GPT-NeoX and Hugging Face's Llama do).
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f64>,
    position_scale: f64,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f64, scaling: Option<RopeScaling>) -> Self {
        let (theta, position_scale) = match scaling {
            None => (theta, 1.0),
            Some(RopeScaling { kind: RopeScalingKind::Linear, factor }) => (theta, 1.0 / factor),
            Some(RopeScaling { kind: RopeScalingKind::Ntk, factor }) => {
                let d = head_dim as f64;
                (theta * factor.powf(d / (d - 2.0)), 1.0)
            }
        };
        let inv_freq = (0..head_dim / 2).map(|i| theta.powf(-(2.0 * i as f64) / head_dim as f64)).collect();
        Rope { inv_freq, position_scale }
    }

    /// Rotation angle of pair `i` at position `p`.
    pub fn angle(&self, p: usize, i: usize) -> f64 {
        p as f64 * self.position_scale * self.inv_freq[i]
    }

    /// `(cos, sin)` tables `[len, head_dim]`, each half repeated to line up with rotate-half.
    pub fn tables(&self, len: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let half = self.inv_freq.len();
        let (mut cos, mut sin) = (Vec::with_capacity(len * 2 * half), Vec::with_capacity(len * 2 * half));
        for p in 0..len {
            for _ in 0..2 {
                for i in 0..half {
                    let a = self.angle(p, i);
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        let shape = [len, 2 * half];
        (
            Tensor::from_data(TensorData::new(cos, shape), device),
            Tensor::from_data(TensorData::new(sin, shape), device),
        )
    }
}

/// Applies the rotation to `x` `[batch, heads, len, head_dim]`:
/// `x * cos + rotate_half(x) * sin`, `rotate_half([a, b]) = [-b, a]`.
pub fn apply_rope(x: Tensor<4>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<4> {
    let d = x.dims()[3];
    let first = x.clone().narrow(3, 0, d / 2);
    let second = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    let dtype = x.dtype();
    let cast = |t: &Tensor<2>| t.clone().cast(dtype).unsqueeze::<4>();
    x * cast(cos) + rotated * cast(sin)
}
