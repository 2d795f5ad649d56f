//! The Transformer encoder: embeddings, a stack of identical blocks (post-LN as BERT, or
//! pre-LN), optional causal masking, and every positional encoding behind one switch.

use crate::attention::{AttentionContext, SelfAttention};
use crate::config::{Activation, ModelConfig, NormPosition, PositionKind};
use crate::kernels::{self, ScoreBias};
use crate::layers::{LayerNorm, Linear};
use crate::position::{alibi_bias, sinusoidal_table, t5_buckets, Rope};
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

/// A batch of token sequences, right-padded to one length.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[batch, len]` token ids.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, len]` segment ids (all 0 for single sentences).
    pub token_type_ids: Tensor<2, Int>,
    /// 1 for a token, 0 for padding, per row.
    pub attention_mask: Vec<Vec<u8>>,
}

impl Batch {
    /// Pads `sequences` with `pad_id` to the longest one.
    pub fn new(sequences: &[Vec<u32>], pad_id: u32, device: &Device) -> Self {
        let len = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sequences.len() * len);
        let mut mask = Vec::with_capacity(sequences.len());
        for s in sequences {
            ids.extend(s.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(pad_id as i64, len - s.len()));
            mask.push((0..len).map(|i| u8::from(i < s.len())).collect());
        }
        let shape = [sequences.len(), len];
        Batch {
            input_ids: Tensor::from_data(TensorData::new(ids, shape), device),
            token_type_ids: Tensor::zeros(shape, device),
            attention_mask: mask,
        }
    }

    pub fn dims(&self) -> [usize; 2] {
        self.input_ids.dims()
    }

    /// The attention mask as a float tensor `[batch, len]` of 1 / 0.
    pub fn mask_tensor(&self, device: &Device) -> Tensor<2> {
        let [b, s] = self.dims();
        let v: Vec<f32> = self.attention_mask.iter().flatten().map(|&m| m as f32).collect();
        Tensor::from_data(TensorData::new(v, [b, s]), device)
    }
}

fn embedding(n: usize, d: usize, std: f64, device: &Device) -> Embedding {
    Embedding { weight: Param::from_tensor(Tensor::random([n, d], Distribution::Normal(0.0, std), device)) }
}

#[derive(Module, Debug)]
pub struct Embeddings {
    pub word_embeddings: Embedding,
    /// Learned absolute positions (only with `absolute`).
    pub position_embeddings: Option<Embedding>,
    pub token_type_embeddings: Option<Embedding>,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub position: PositionKind,
}

impl Embeddings {
    fn new(c: &ModelConfig, device: &Device) -> Self {
        let std = c.initializer_range;
        Embeddings {
            word_embeddings: embedding(c.vocab_size, c.hidden_size, std, device),
            position_embeddings: (c.position_embedding_type == PositionKind::Absolute)
                .then(|| embedding(c.max_position_embeddings, c.hidden_size, std, device)),
            token_type_embeddings: (c.type_vocab_size > 0).then(|| embedding(c.type_vocab_size, c.hidden_size, std, device)),
            layer_norm: LayerNorm::new(c.hidden_size, c.layer_norm_eps, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            position: c.position_embedding_type,
        }
    }

    fn forward(&self, batch: &Batch) -> Tensor<3> {
        let [_, s] = batch.dims();
        let device = batch.input_ids.device();
        let mut x = self.word_embeddings.forward(batch.input_ids.clone());
        if let Some(types) = &self.token_type_embeddings {
            x = x + types.forward(batch.token_type_ids.clone());
        }
        match (self.position, &self.position_embeddings) {
            (PositionKind::Absolute, Some(table)) => {
                let positions = Tensor::<1, Int>::arange(0..s as i64, &device).unsqueeze::<2>();
                x = x + table.forward(positions);
            }
            (PositionKind::Sinusoidal, _) => {
                // As Vaswani et al., the token embeddings are scaled by sqrt(d): the table's
                // entries are of order 1, and next to embeddings initialised at std 0.02 they
                // would drown the tokens (the LayerNorm after the sum cannot undo the ratio).
                let h = x.dims()[2];
                let table = Tensor::<2>::from_data(TensorData::new(sinusoidal_table(s, h), [s, h]), &device);
                let dtype = x.dtype();
                x = x * (h as f64).sqrt() + table.cast(dtype).unsqueeze::<3>();
            }
            _ => {}
        }
        kernels::dropout(self.layer_norm.forward(x), &self.dropout)
    }
}

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
    fn new(c: &ModelConfig, device: &Device) -> Self {
        let std = c.initializer_range;
        Layer {
            attention: SelfAttention::new(c.hidden_size, c.num_attention_heads, c.attention_probs_dropout_prob, std, device),
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
        let h = kernels::bias_activation(self.intermediate.matmul(x), self.intermediate.bias.val(), self.activation);
        self.output.forward(h).reshape([b as i32, s as i32, -1])
    }

    fn forward(&self, x: Tensor<3>, ctx: &AttentionContext) -> Tensor<3> {
        match self.norm {
            NormPosition::Post => {
                let a = self.attention.forward(x.clone(), ctx);
                let x = self.attention_norm.forward(x + kernels::dropout(a, &self.dropout));
                let f = self.feed_forward(x.clone());
                self.output_norm.forward(x + kernels::dropout(f, &self.dropout))
            }
            NormPosition::Pre => {
                let a = self.attention.forward(self.attention_norm.forward(x.clone()), ctx);
                let x = x + kernels::dropout(a, &self.dropout);
                let f = self.feed_forward(self.output_norm.forward(x.clone()));
                x + kernels::dropout(f, &self.dropout)
            }
        }
    }
}

/// The stack of blocks, with what the blocks share.
#[derive(Module, Debug)]
pub struct Encoder {
    pub layer: Vec<Layer>,
    /// T5 relative bias table `[buckets, heads]`, shared by all layers.
    pub relative_attention_bias: Option<Embedding>,
    /// The final LayerNorm of a pre-LN stack.
    pub final_layer_norm: Option<LayerNorm>,
}

/// A BERT-style encoder model (Hugging Face's `BertModel`): token ids in, hidden states out.
#[derive(Module, Debug)]
pub struct EncoderModel {
    pub embeddings: Embeddings,
    pub encoder: Encoder,
    /// BERT's pooler (dense + tanh on [CLS]), present when the checkpoint has one.
    pub pooler: Option<Linear>,
    #[module(skip)]
    pub config: ModelConfig,
}

impl EncoderModel {
    /// A freshly initialised model (weights N(0, initializer_range²), as BERT).
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let c = config;
        EncoderModel {
            embeddings: Embeddings::new(c, device),
            encoder: Encoder {
                layer: (0..c.num_hidden_layers).map(|_| Layer::new(c, device)).collect(),
                relative_attention_bias: (c.position_embedding_type == PositionKind::T5Bias).then(|| {
                    embedding(c.relative_attention_num_buckets, c.num_attention_heads, c.initializer_range, device)
                }),
                final_layer_norm: (c.norm_position == NormPosition::Pre)
                    .then(|| LayerNorm::new(c.hidden_size, c.layer_norm_eps, device)),
            },
            pooler: None,
            config: c.clone(),
        }
    }

    /// The longest sequence the model accepts (learned absolute positions end somewhere).
    pub fn max_len(&self) -> Option<usize> {
        (self.config.position_embedding_type == PositionKind::Absolute).then_some(self.config.max_position_embeddings)
    }

    /// The per-forward attention inputs of this batch: masks and position bias / rotation.
    pub fn attention_context(&self, batch: &Batch) -> AttentionContext {
        let c = &self.config;
        let [_, s] = batch.dims();
        let device = batch.input_ids.device();
        let position = match c.position_embedding_type {
            PositionKind::Alibi => Some(alibi_bias(c.num_attention_heads, s, &device)),
            PositionKind::T5Bias => {
                let table = self.encoder.relative_attention_bias.as_ref().expect("t5_bias model has its table");
                let buckets = t5_buckets(s, !c.causal, c.relative_attention_num_buckets, c.relative_attention_max_distance, &device);
                Some(table.forward(buckets).permute([2, 0, 1]))
            }
            _ => None,
        };
        let rope = (c.position_embedding_type == PositionKind::Rope)
            .then(|| Rope::new(c.head_dim(), c.rope_theta, c.rope_scaling).tables(s, &device));
        AttentionContext { bias: ScoreBias::new(&batch.attention_mask, c.causal, position, &device), rope }
    }

    /// Last hidden states `[batch, len, hidden]`.
    pub fn forward(&self, batch: &Batch) -> Tensor<3> {
        if let Some(max) = self.max_len() {
            assert!(batch.dims()[1] <= max, "sequence of {} tokens exceeds max_position_embeddings {max}", batch.dims()[1]);
        }
        let ctx = self.attention_context(batch);
        let mut x = self.embeddings.forward(batch);
        for layer in &self.encoder.layer {
            x = layer.forward(x, &ctx);
        }
        match &self.encoder.final_layer_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }

    /// BERT's pooled output: tanh(dense(hidden[CLS])), `[batch, hidden]`.
    pub fn pooled(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        let pooler = self.pooler.as_ref()?;
        let [b, _, h] = hidden.dims();
        Some(pooler.forward(hidden.narrow(1, 0, 1).reshape([b, h])).tanh())
    }

    pub fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}

/// Mean of the token states, ignoring padding (sentence-transformers' mean pooling), `[batch, hidden]`.
pub fn mean_pool(hidden: Tensor<3>, batch: &Batch) -> Tensor<2> {
    let mask = batch.mask_tensor(&hidden.device()).cast(hidden.dtype());
    let counts = mask.clone().sum_dim(1).clamp_min(1e-9);
    (hidden * mask.unsqueeze_dim::<3>(2)).sum_dim(1).squeeze_dim::<2>(1) / counts
}

/// Rows scaled to unit L2 norm (`F.normalize`, eps 1e-12).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
