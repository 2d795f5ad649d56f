//! Sequence classification (`BertForSequenceClassification`): the pooled encoder output,
//! dropout and a linear layer; softmax cross-entropy for one label per text, a sigmoid and
//! binary cross-entropy per label for multi-label tasks.
//!
//! The losses are composed from burn operations (autodiff differentiates them): they act on
//! `[batch, labels]` logits, far too small to be worth a fused kernel.

use crate::kernels;
use crate::model::config::Pooling;
use crate::model::encoder::{Batch, EncoderModel};
use crate::model::layers::Linear;
use crate::model::pooling::mean_pool;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};

#[derive(Module, Debug)]
pub struct SequenceClassifier {
    pub bert: EncoderModel,
    pub dropout: Dropout,
    pub classifier: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

impl SequenceClassifier {
    /// A fresh classification layer on `bert`. \[CLS\] pooling keeps the encoder's pooler, or
    /// gives it a freshly initialised one; mean pooling drops it (it would get no gradient).
    pub fn new(mut bert: EncoderModel, labels: usize, pooling: Pooling, device: &Device) -> Self {
        let c = bert.config.clone();
        match pooling {
            Pooling::Cls if bert.pooler.is_none() => {
                bert.pooler = Some(Linear::new(
                    c.hidden_size,
                    c.hidden_size,
                    c.initializer_range,
                    device,
                ))
            }
            Pooling::Cls => {}
            Pooling::Mean => bert.pooler = None,
        }
        SequenceClassifier {
            dropout: DropoutConfig::new(classifier_dropout(&c)).init(),
            classifier: Linear::new(c.hidden_size, labels, c.initializer_range, device),
            pooling,
            bert,
        }
    }

    /// The pooled text vectors `[batch, hidden]`.
    pub(crate) fn pooled(&self, batch: &Batch) -> Tensor<2> {
        let hidden = self.bert.forward(batch);
        match self.pooling {
            Pooling::Cls => self
                .bert
                .pooled(hidden)
                .expect("a [CLS]-pooling classifier has a pooler"),
            Pooling::Mean => mean_pool(hidden, batch),
        }
    }

    /// Label scores `[batch, labels]` (before softmax / sigmoid).
    pub fn logits(&self, batch: &Batch) -> Tensor<2> {
        self.classifier
            .forward(kernels::dropout(self.pooled(batch), &self.dropout))
    }
}

/// `classifier_dropout` when the config sets it (Hugging Face's key), else the hidden dropout.
fn classifier_dropout(c: &crate::model::config::ModelConfig) -> f64 {
    c.extra
        .get("classifier_dropout")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(c.hidden_dropout_prob)
}

/// Softmax cross-entropy of `logits` `[batch, labels]` against one class per row, averaged as
/// PyTorch's `CrossEntropyLoss(weight=...)` does: `Σ w_y · −log p_y / Σ w_y` (all weights 1
/// without `weights`).
pub fn cross_entropy(logits: Tensor<2>, targets: &[usize], weights: Option<&[f32]>) -> Tensor<1> {
    let [b, k] = logits.dims();
    let mut picked = vec![0f32; b * k];
    let mut total = 0f32;
    for (row, &t) in targets.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[t]);
        picked[row * k + t] = w;
        total += w;
    }
    let picked = Tensor::<2>::from_data(TensorData::new(picked, [b, k]), &logits.device())
        .cast(logits.dtype());
    (log_softmax(logits, 1) * picked).sum().neg() / total.max(f32::MIN_POSITIVE) as f64
}

/// Binary cross-entropy of per-label sigmoids against 0 / 1 targets `[batch, labels]`, the
/// mean over all entries, as PyTorch's `BCEWithLogitsLoss(pos_weight=...)`: a positive entry of
/// label `c` counts `positive_weights[c]` times (all 1 without them), in the stable form
/// `(1 − y)·x + (1 + (w − 1)·y)·(log(1 + e^−|x|) + max(−x, 0))`.
pub fn binary_cross_entropy(
    logits: Tensor<2>,
    targets: &[Vec<bool>],
    positive_weights: Option<&[f32]>,
) -> Tensor<1> {
    let [b, k] = logits.dims();
    let y: Vec<f32> = targets
        .iter()
        .flat_map(|row| row.iter().map(|&t| f32::from(u8::from(t))))
        .collect();
    let scale: Vec<f32> = y
        .iter()
        .enumerate()
        .map(|(i, &t)| 1.0 + (positive_weights.map_or(1.0, |w| w[i % k]) - 1.0) * t)
        .collect();
    let tensor = |v: Vec<f32>| {
        Tensor::<2>::from_data(TensorData::new(v, [b, k]), &logits.device()).cast(logits.dtype())
    };
    let (y, scale) = (tensor(y), tensor(scale));
    let softplus_neg =
        logits.clone().abs().neg().exp().log1p() + logits.clone().neg().clamp_min(0.0);
    let loss = (y.neg() + 1.0) * logits + scale * softplus_neg;
    loss.mean()
}
