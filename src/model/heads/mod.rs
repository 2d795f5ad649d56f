//! Task heads on top of the encoder: language modelling and token classification here,
//! sequence classification in [`sequence`], the CRF over token labels in [`crf`].

pub mod crf;
pub mod sequence;

use crate::kernels;
use crate::model::config::{Activation, ModelConfig};
use crate::model::encoder::{Batch, EncoderModel};
use crate::model::heads::crf::Crf;
use crate::model::layers::{LayerNorm, Linear};
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Int, Tensor};

/// BERT's language-modelling head: dense + GELU + LayerNorm, then a decoder tied to the word
/// embeddings (its own bias only). Serves masked and causal language modelling alike.
#[derive(Module, Debug)]
pub struct LmHead {
    pub transform: Linear,
    pub layer_norm: LayerNorm,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub activation: Activation,
}

impl LmHead {
    pub fn new(c: &ModelConfig, device: &Device) -> Self {
        LmHead {
            transform: Linear::new(c.hidden_size, c.hidden_size, c.initializer_range, device),
            layer_norm: LayerNorm::new(c.hidden_size, c.layer_norm_eps, device),
            bias: Param::from_tensor(Tensor::zeros([c.vocab_size], device)),
            activation: c.hidden_act,
        }
    }

    /// Vocabulary logits `[rows, vocab]` for hidden states `[rows, hidden]`.
    pub fn forward(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let t = &self.transform;
        let h = self.layer_norm.forward(kernels::bias_activation(
            t.matmul(hidden),
            t.bias.val(),
            self.activation,
        ));
        kernels::linear(h, word_embeddings, Some(self.bias.val()))
    }
}

/// An encoder with its language-modelling head (`BertForMaskedLM`, or a causal LM).
#[derive(Module, Debug)]
pub struct LanguageModel {
    pub bert: EncoderModel,
    pub head: LmHead,
}

/// Which positions a language-modelling loss is computed at, and their targets.
#[derive(Debug, Clone)]
pub struct LmTargets {
    /// Flat indices `b * len + s` into the batch.
    pub positions: Tensor<1, Int>,
    pub targets: Tensor<1, Int>,
}

impl LanguageModel {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        LanguageModel {
            bert: EncoderModel::new(config, device),
            head: LmHead::new(config, device),
        }
    }

    /// Logits at the selected positions only: the decoder is the largest matrix product of the
    /// model, so skipping the ~85 % of unselected positions of masked LM saves most of it.
    pub fn logits(&self, batch: &Batch, positions: Tensor<1, Int>) -> Tensor<2> {
        let hidden = self.bert.forward(batch);
        let [b, s, h] = hidden.dims();
        let rows = hidden.reshape([b * s, h]).select(0, positions);
        self.head
            .forward(rows, self.bert.embeddings.word_embeddings.weight.val())
    }

    /// Mean cross-entropy at the target positions.
    pub fn loss(&self, batch: &Batch, targets: &LmTargets) -> Tensor<1> {
        let logits = self.logits(batch, targets.positions.clone());
        kernels::cross_entropy(logits, targets.targets.clone())
    }
}

/// An encoder with a per-token classification layer (`BertForTokenClassification`), optionally
/// followed by a CRF over the word labels.
#[derive(Module, Debug)]
pub struct TokenClassifier {
    pub bert: EncoderModel,
    pub dropout: Dropout,
    pub classifier: Linear,
    pub crf: Option<Crf>,
}

impl TokenClassifier {
    pub fn new(bert: EncoderModel, labels: usize, crf: bool, device: &Device) -> Self {
        let c = &bert.config;
        TokenClassifier {
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            classifier: Linear::new(c.hidden_size, labels, c.initializer_range, device),
            crf: crf.then(|| Crf::new(labels, device)),
            bert,
        }
    }

    /// Label scores `[positions, labels]` at flat positions (`b * len + s`) of the batch.
    pub fn emissions(&self, batch: &Batch, positions: Tensor<1, Int>) -> Tensor<2> {
        let hidden = self.bert.forward(batch);
        let [b, s, h] = hidden.dims();
        if !kernels::masks_keyed_by_row() {
            // Runs resumed from checkpoints before row-keyed masks: dropout after selecting,
            // as they started.
            let rows = hidden.reshape([b * s, h]).select(0, positions);
            return self
                .classifier
                .forward(kernels::dropout(rows, &self.dropout));
        }
        // Dropout on `[batch, len, hidden]`, as transformers does, so that each mask is keyed
        // by its example and position, not by its place among the selected rows.
        let hidden = kernels::dropout(hidden, &self.dropout);
        let rows = hidden.reshape([b * s, h]).select(0, positions);
        self.classifier.forward(rows)
    }
}
