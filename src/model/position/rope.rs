//! Rotary position embedding (Su et al. 2021) with position interpolation and NTK-aware
//! scaling for context extension; rotates queries and keys in every layer.

use crate::model::config::{RopeScaling, RopeScalingKind};
use burn::tensor::{Device, Tensor, TensorData};

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
            Some(RopeScaling {
                kind: RopeScalingKind::Linear,
                factor,
            }) => (theta, 1.0 / factor),
            Some(RopeScaling {
                kind: RopeScalingKind::Ntk,
                factor,
            }) => {
                let d = head_dim as f64;
                (theta * factor.powf(d / (d - 2.0)), 1.0)
            }
        };
        let inv_freq = (0..head_dim / 2)
            .map(|i| theta.powf(-(2.0 * i as f64) / head_dim as f64))
            .collect();
        Rope {
            inv_freq,
            position_scale,
        }
    }

    /// Rotation angle of pair `i` at position `p`.
    pub fn angle(&self, p: usize, i: usize) -> f64 {
        p as f64 * self.position_scale * self.inv_freq[i]
    }

    /// `(cos, sin)` tables `[len, head_dim]`, each half repeated to line up with rotate-half.
    pub fn tables(&self, len: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let half = self.inv_freq.len();
        let (mut cos, mut sin) = (
            Vec::with_capacity(len * 2 * half),
            Vec::with_capacity(len * 2 * half),
        );
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
