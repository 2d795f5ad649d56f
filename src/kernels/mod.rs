//! Fused CPU kernels with hand-written backward passes.
//!
//! Each operation has one public function (`layer_norm`, ...) that runs the fused kernel when
//! the tensors live on the CPU (`flex`) backend in f32/f64, and otherwise (GPU backends, other
//! dtypes, or when fusion is switched off with [`set_fused`]) its composite twin built from
//! differentiable burn operations. The twin is the reference the fused kernel is tested against.
//!
//! The kernels reach the backend through burn's backend-extension mechanism: [`FusedOps`] is
//! implemented for `Flex` (forward only) and for `Autodiff<Flex>` (forward that records a
//! backward step calling our own gradient kernel).

pub mod activation;
pub mod attention;
pub mod cross_entropy;
pub mod layer_norm;
mod math;
mod tensor;

use burn::backend::{backend_extension, tensor::FloatTensor, tensor::IntTensor, Autodiff, Backend, Flex};
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::tensor::{DType, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

pub use activation::{bias_activation, bias_activation_composite};
pub use attention::{attention, attention_composite, ScoreBias, MASKED};
pub use cross_entropy::{cross_entropy, cross_entropy_composite};
pub use layer_norm::{layer_norm, layer_norm_composite};

static FUSED: AtomicBool = AtomicBool::new(true);

/// Switches the fused kernels on (default) or off; off runs every op as its composite twin.
/// Used by tests and benchmarks to compare the two paths in one process.
pub fn set_fused(on: bool) {
    FUSED.store(on, Ordering::SeqCst);
}

pub fn fused_enabled() -> bool {
    FUSED.load(Ordering::SeqCst)
}

/// Whether the fused CPU kernels can run on `x` and the other operands' dtypes.
pub(crate) fn use_fused<const D: usize>(x: &Tensor<D>, others: &[DType]) -> bool {
    use burn::backend::DispatchDevice;
    let dtype = x.dtype();
    fused_enabled()
        && matches!(dtype, DType::F32 | DType::F64)
        && others.iter().all(|d| *d == dtype)
        && matches!(x.device().as_dispatch().clone().inner(), DispatchDevice::Flex(_))
}

/// Operations positio implements itself on the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// LayerNorm over the last dimension: `(x - mean) / sqrt(var + eps) * weight + bias`.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;

    /// `act(x + bias)` for `x` `[rows, width]`.
    fn fused_bias_activation(x: FloatTensor<Self>, bias: FloatTensor<Self>, act: crate::config::Activation) -> FloatTensor<Self>;

    /// Mean softmax cross-entropy of `logits` `[rows, classes]` against `targets` `[rows]`.
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self>;
}

impl FusedOps for Flex {
    fn fused_layer_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        layer_norm::primal(x, weight, bias, eps)
    }
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        cross_entropy::primal(logits, targets)
    }
    fn fused_bias_activation(x: FloatTensor<Self>, bias: FloatTensor<Self>, act: crate::config::Activation) -> FloatTensor<Self> {
        activation::primal(x, bias, act)
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn fused_layer_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        layer_norm::autodiff::<C>(x, weight, bias, eps)
    }
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        cross_entropy::autodiff::<C>(logits, targets)
    }
    fn fused_bias_activation(x: FloatTensor<Self>, bias: FloatTensor<Self>, act: crate::config::Activation) -> FloatTensor<Self> {
        activation::autodiff::<C>(x, bias, act)
    }
}
