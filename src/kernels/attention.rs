//! Scaled dot-product attention with an additive score bias (position bias, padding and causal
//! masks): `softmax(q k^T / sqrt(d) + bias) v`.

use burn::nn::Dropout;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

/// The score given to a masked key: its softmax weight underflows to exactly 0, and, unlike
/// -inf, sums of several masks stay finite (no NaN from -inf - -inf).
pub const MASKED: f32 = -1e30;

/// Everything added to the attention scores before the softmax.
#[derive(Debug, Clone)]
pub struct ScoreBias {
    /// `[batch, len]`: 0 for a real token, [`MASKED`] for padding.
    pub key_mask: Tensor<2>,
    /// Mask keys after the query (decoder-style language modelling).
    pub causal: bool,
    /// `[heads, len, len]` position bias (ALiBi, T5), added to every batch element.
    pub position: Option<Tensor<3>>,
}

impl ScoreBias {
    /// From an attention mask of 1 (token) / 0 (padding), `[batch, len]`.
    pub fn new(attention_mask: &[Vec<u8>], causal: bool, position: Option<Tensor<3>>, device: &Device) -> Self {
        let (b, s) = (attention_mask.len(), attention_mask.first().map_or(0, Vec::len));
        let v: Vec<f32> = attention_mask.iter().flatten().map(|&m| if m == 0 { MASKED } else { 0.0 }).collect();
        ScoreBias { key_mask: Tensor::from_data(TensorData::new(v, [b, s]), device), causal, position }
    }

    /// The full additive bias, broadcastable to `[batch, heads, len, len]`.
    fn dense(&self, dtype: burn::tensor::DType) -> Tensor<4> {
        let [b, s] = self.key_mask.dims();
        let device = self.key_mask.device();
        let mut bias = self.key_mask.clone().cast(dtype).reshape([b, 1, 1, s]);
        if self.causal {
            let v: Vec<f32> = (0..s * s).map(|i| if i % s > i / s { MASKED } else { 0.0 }).collect();
            let causal = Tensor::<2>::from_data(TensorData::new(v, [s, s]), &device).cast(dtype);
            bias = bias + causal.unsqueeze::<4>();
        }
        if let Some(p) = &self.position {
            bias = bias + p.clone().cast(dtype).unsqueeze::<4>();
        }
        bias
    }
}

/// Attention over `q`, `k`, `v`: `[batch, heads, len, head_dim]`.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: &ScoreBias, dropout: &Dropout) -> Tensor<4> {
    attention_composite(q, k, v, bias, dropout)
}

/// The composite twin, from differentiable burn operations.
pub fn attention_composite(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: &ScoreBias, dropout: &Dropout) -> Tensor<4> {
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let scores = q.matmul(k.swap_dims(2, 3)) * scale + bias.dense(v.dtype());
    let probs = dropout.forward(softmax(scores, 3));
    probs.matmul(v)
}
