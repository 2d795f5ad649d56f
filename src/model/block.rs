//! One Transformer block (Hugging Face's `BertLayer`): self-attention and a feed-forward
//! network, each with a residual connection, LayerNorm after (post-LN, BERT) or before (pre-LN).

use crate::kernels;
use crate::model::attention::{AttentionContext, SelfAttention};
use crate::model::config::{Activation, ModelConfig, NormPosition};
use crate::model::layers::{LayerNorm, Linear};
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};

/// One Transformer block: self-attention and a feed-forward network, each with a residual.
#[derive(Module, Debug)]
pub struct Layer {
    pub attention: SelfAttention,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: Activation,
    #[module(skip)]
    pub norm: NormPosition,
}

impl Layer {
    pub fn new(c: &ModelConfig, device: &Device) -> Self {
        let std = c.initializer_range;
        Layer {
            attention: SelfAttention::new(
                c.hidden_size,
                c.num_attention_heads,
                c.attention_probs_dropout_prob,
                std,
                device,
            ),
            attention_norm: LayerNorm::new(c.hidden_size, c.layer_norm_eps, device),
            intermediate: Linear::new(c.hidden_size, c.intermediate_size, std, device),
            output: Linear::new(c.intermediate_size, c.hidden_size, std, device),
            output_norm: LayerNorm::new(c.hidden_size, c.layer_norm_eps, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            activation: c.hidden_act,
            norm: c.norm_position,
        }
    }

    fn feed_forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let h = kernels::bias_activation(
            self.intermediate.matmul(x),
            self.intermediate.bias.val(),
            self.activation,
        );
        self.output.forward(h).reshape([b as i32, s as i32, -1])
    }

    pub fn forward(&self, x: Tensor<3>, ctx: &AttentionContext) -> Tensor<3> {
        match self.norm {
            NormPosition::Post => {
                let a = self.attention.forward(x.clone(), ctx);
                let x = self
                    .attention_norm
                    .forward(x + kernels::dropout(a, &self.dropout));
                let f = self.feed_forward(x.clone());
                self.output_norm
                    .forward(x + kernels::dropout(f, &self.dropout))
            }
            NormPosition::Pre => {
                let a = self
                    .attention
                    .forward(self.attention_norm.forward(x.clone()), ctx);
                let x = x + kernels::dropout(a, &self.dropout);
                let f = self.feed_forward(self.output_norm.forward(x.clone()));
                x + kernels::dropout(f, &self.dropout)
            }
        }
    }
}
