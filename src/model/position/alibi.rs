//! ALiBi (Press et al. 2022): a fixed per-head linear distance penalty on the attention scores.

use burn::tensor::{Device, Tensor, TensorData};

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
    slopes.extend(
        power_of_two(2 * closest)
            .into_iter()
            .step_by(2)
            .take(n - closest),
    );
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
