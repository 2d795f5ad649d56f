//! Softmax cross-entropy over a large vocabulary, mean over rows.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Mean of `-log softmax(logits)[target]` over rows; `logits` `[rows, classes]`, `targets` `[rows]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    cross_entropy_composite(logits, targets)
}

/// The composite twin.
pub fn cross_entropy_composite(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let rows = targets.dims()[0];
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([rows, 1]));
    picked.mean().neg()
}
