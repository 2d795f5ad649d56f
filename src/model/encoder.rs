//! The encoder: embeddings, then a stack of identical Transformer blocks (post-LN as BERT, or
//! pre-LN; optional causal masking; every positional encoding behind one switch) or of
//! recurrent layers (`model::recurrent`, chosen by the config's `arch`).

use crate::kernels::ScoreBias;
use crate::model::attention::AttentionContext;
use crate::model::block::Layer;
use crate::model::config::{ModelConfig, NormPosition, PositionKind};
use crate::model::embeddings::{embedding, Embeddings};
use crate::model::layers::{LayerNorm, Linear};
use crate::model::position;
use crate::model::recurrent::Recurrent;
use burn::module::Module;
use burn::nn::Embedding;
use burn::tensor::{Device, Int, Tensor, TensorData};

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

/// A 1-d index tensor, e.g. the flat `[batch × len]` positions of the tokens a head reads.
pub fn indices(values: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = values.iter().map(|&p| p as i64).collect();
    Tensor::from_data(TensorData::new(v, [values.len()]), device)
}

impl Batch {
    /// Pads `sequences` with `pad_id` to the longest one; every segment id is 0.
    pub fn new(sequences: &[Vec<u32>], pad_id: u32, device: &Device) -> Self {
        Self::with_segments(sequences, None, pad_id, device)
    }

    /// Same, with the segment ids of each sequence (sentence pairs: 0 for the first text, 1 for
    /// the second); padding gets segment 0.
    pub fn with_segments(
        sequences: &[Vec<u32>],
        segments: Option<&[Vec<u32>]>,
        pad_id: u32,
        device: &Device,
    ) -> Self {
        let len = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sequences.len() * len);
        let mut types = vec![0i64; sequences.len() * len];
        let mut mask = Vec::with_capacity(sequences.len());
        for (row, s) in sequences.iter().enumerate() {
            ids.extend(s.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(pad_id as i64, len - s.len()));
            mask.push((0..len).map(|i| u8::from(i < s.len())).collect());
            if let Some(seg) = segments {
                for (i, &t) in seg[row].iter().enumerate() {
                    types[row * len + i] = t as i64;
                }
            }
        }
        let shape = [sequences.len(), len];
        Batch {
            input_ids: Tensor::from_data(TensorData::new(ids, shape), device),
            token_type_ids: Tensor::from_data(TensorData::new(types, shape), device),
            attention_mask: mask,
        }
    }

    pub fn dims(&self) -> [usize; 2] {
        self.input_ids.dims()
    }

    /// The attention mask as a float tensor `[batch, len]` of 1 / 0.
    pub(crate) fn mask_tensor(&self, device: &Device) -> Tensor<2> {
        let [b, s] = self.dims();
        let v: Vec<f32> = self
            .attention_mask
            .iter()
            .flatten()
            .map(|&m| m as f32)
            .collect();
        Tensor::from_data(TensorData::new(v, [b, s]), device)
    }
}

/// The stack of blocks, with what the blocks share; or the recurrent layers (`rnn`, and then
/// no blocks).
#[derive(Module, Debug)]
pub struct Encoder {
    pub layer: Vec<Layer>,
    pub rnn: Option<Recurrent>,
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
    /// BERT's pooler (dense + tanh on \[CLS\]): in every new model (as Hugging Face's
    /// `BertModel`); loaded only when the checkpoint has one.
    pub pooler: Option<Linear>,
    #[module(skip)]
    pub config: ModelConfig,
}

impl EncoderModel {
    /// A freshly initialised model (weights N(0, initializer_range²), as BERT).
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let c = config;
        let recurrence = c.arch.recurrence();
        EncoderModel {
            embeddings: Embeddings::new(c, device),
            encoder: Encoder {
                layer: match recurrence {
                    None => (0..c.num_hidden_layers)
                        .map(|_| Layer::new(c, device))
                        .collect(),
                    Some(_) => Vec::new(),
                },
                rnn: recurrence.map(|(cell, dirs)| Recurrent::new(c, cell, dirs, device)),
                relative_attention_bias: (c.position_embedding_type == PositionKind::T5Bias).then(
                    || {
                        embedding(
                            c.relative_attention_num_buckets,
                            c.num_attention_heads,
                            c.initializer_range,
                            device,
                        )
                    },
                ),
                final_layer_norm: (c.norm_position == NormPosition::Pre)
                    .then(|| LayerNorm::new(c.hidden_size, c.layer_norm_eps, device)),
            },
            pooler: Some(Linear::new(
                c.hidden_size,
                c.hidden_size,
                c.initializer_range,
                device,
            )),
            config: c.clone(),
        }
    }

    /// The longest sequence the model accepts (learned absolute positions end somewhere).
    pub fn max_len(&self) -> Option<usize> {
        (self.config.position_embedding_type == PositionKind::Absolute)
            .then_some(self.config.max_position_embeddings)
    }

    /// The per-forward attention inputs of this batch: masks and position bias / rotation.
    pub fn attention_context(&self, batch: &Batch) -> AttentionContext {
        let c = &self.config;
        let [_, s] = batch.dims();
        let device = batch.input_ids.device();
        let (position, rope) =
            position::attention_hooks(c, self.encoder.relative_attention_bias.as_ref(), s, &device);
        AttentionContext {
            bias: ScoreBias::new(&batch.attention_mask, c.causal, position, &device),
            rope,
        }
    }

    /// Last hidden states `[batch, len, hidden]`.
    pub fn forward(&self, batch: &Batch) -> Tensor<3> {
        if let Some(max) = self.max_len() {
            assert!(
                batch.dims()[1] <= max,
                "sequence of {} tokens exceeds max_position_embeddings {max}",
                batch.dims()[1]
            );
        }
        let mut x = self.embeddings.forward(batch);
        if let Some(rnn) = &self.encoder.rnn {
            return rnn.forward(x, batch.mask_tensor(&batch.input_ids.device()));
        }
        let ctx = self.attention_context(batch);
        for layer in &self.encoder.layer {
            x = layer.forward(x, &ctx);
        }
        match &self.encoder.final_layer_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }

    /// BERT's pooled output: tanh(dense(hidden\[CLS\])), `[batch, hidden]`.
    pub(crate) fn pooled(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        let pooler = self.pooler.as_ref()?;
        let [b, _, h] = hidden.dims();
        Some(
            pooler
                .forward(hidden.narrow(1, 0, 1).reshape([b, h]))
                .tanh(),
        )
    }

    pub fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}
