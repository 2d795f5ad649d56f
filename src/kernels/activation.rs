//! Bias addition fused with the feed-forward activation: `act(x + bias)`.

use crate::config::Activation;
use burn::tensor::activation::{gelu, gelu_approximate, relu};
use burn::tensor::Tensor;

/// `act(x + bias)` for `x` `[rows, width]`, `bias` `[width]`.
pub fn bias_activation(x: Tensor<2>, bias: Tensor<1>, act: Activation) -> Tensor<2> {
    bias_activation_composite(x, bias, act)
}

/// The composite twin.
pub fn bias_activation_composite(x: Tensor<2>, bias: Tensor<1>, act: Activation) -> Tensor<2> {
    let x = x + bias.unsqueeze();
    match act {
        Activation::Gelu => gelu(x),
        Activation::GeluTanh => gelu_approximate(x),
        Activation::Relu => relu(x),
    }
}
