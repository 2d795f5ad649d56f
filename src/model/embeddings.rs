//! The input embeddings (Hugging Face's `BertEmbeddings`): word pieces, segments, and the
//! encodings that act on the input (learned absolute or sinusoidal positions), then
//! LayerNorm and dropout.

use crate::kernels;
use crate::model::config::{ModelConfig, PositionKind};
use crate::model::encoder::Batch;
use crate::model::layers::{normal, LayerNorm};
use crate::model::position;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding};
use burn::tensor::{Device, Tensor};

/// A table of `n` vectors of `d`, from N(0, std²) (BERT's initialisation).
pub fn embedding(n: usize, d: usize, std: f64, device: &Device) -> Embedding {
    Embedding {
        weight: normal([n, d], std, device),
    }
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
    pub fn new(c: &ModelConfig, device: &Device) -> Self {
        let std = c.initializer_range;
        Embeddings {
            word_embeddings: embedding(c.vocab_size, c.hidden_size, std, device),
            position_embeddings: (c.position_embedding_type == PositionKind::Absolute)
                .then(|| embedding(c.max_position_embeddings, c.hidden_size, std, device)),
            token_type_embeddings: (c.type_vocab_size > 0)
                .then(|| embedding(c.type_vocab_size, c.hidden_size, std, device)),
            layer_norm: LayerNorm::new(c.hidden_size, c.layer_norm_eps, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            position: c.position_embedding_type,
        }
    }

    pub fn forward(&self, batch: &Batch) -> Tensor<3> {
        let mut x = self.word_embeddings.forward(batch.input_ids.clone());
        if let Some(types) = &self.token_type_embeddings {
            x = x + types.forward(batch.token_type_ids.clone());
        }
        let x = position::add_to_embeddings(self.position, x, self.position_embeddings.as_ref());
        kernels::dropout(self.layer_norm.forward(x), &self.dropout)
    }
}
