//! Sentence vectors from token states: mean pooling over real tokens and L2 normalisation, as
//! sentence-transformers computes them.

use crate::model::encoder::Batch;
use burn::tensor::Tensor;

/// Mean of the token states, ignoring padding (sentence-transformers' mean pooling), `[batch, hidden]`.
pub(crate) fn mean_pool(hidden: Tensor<3>, batch: &Batch) -> Tensor<2> {
    let mask = batch.mask_tensor(&hidden.device()).cast(hidden.dtype());
    let counts = mask.clone().sum_dim(1).clamp_min(1e-9);
    (hidden * mask.unsqueeze_dim::<3>(2))
        .sum_dim(1)
        .squeeze_dim::<2>(1)
        / counts
}

/// Rows scaled to unit L2 norm (`F.normalize`, eps 1e-12).
pub(crate) fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
