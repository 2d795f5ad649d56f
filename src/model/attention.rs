//! Multi-head self-attention with every positional encoding's hook: RoPE rotates queries and
//! keys, ALiBi and T5 add a per-head bias to the scores, and the padding / causal masks apply.

use crate::kernels::{self, RopeTables, ScoreBias};
use crate::model::layers::Linear;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};

/// What every layer's attention needs besides its input; computed once per forward pass.
#[derive(Debug, Clone)]
pub struct AttentionContext {
    pub bias: ScoreBias,
    /// RoPE `(cos, sin)` tables `[len, head_dim]`.
    pub rope: Option<RopeTables>,
}

#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub dropout: Dropout,
    pub num_heads: usize,
}

impl SelfAttention {
    pub fn new(
        hidden: usize,
        num_heads: usize,
        dropout: f64,
        init_std: f64,
        device: &Device,
    ) -> Self {
        let lin = || Linear::new(hidden, hidden, init_std, device);
        SelfAttention {
            query: lin(),
            key: lin(),
            value: lin(),
            output: lin(),
            dropout: DropoutConfig::new(dropout).init(),
            num_heads,
        }
    }

    /// `x`: `[batch, len, hidden]` → `[batch, len, hidden]`.
    pub fn forward(&self, x: Tensor<3>, ctx: &AttentionContext) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let (nh, dh) = (self.num_heads, h / self.num_heads);
        let heads = |t: Tensor<3>| t.reshape([b, s, nh, dh]);
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x));
        let context = kernels::attention(q, k, v, &ctx.bias, ctx.rope.as_ref(), &self.dropout);
        self.output.forward(context.reshape([b, s, h]))
    }
}
